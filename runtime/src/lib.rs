//! gort: Go's runtime for Rust applications.
#![warn(missing_docs)]

mod loom;

#[cfg(not(loom))]
mod stack;

pub(crate) mod sched;

/// Internals re-exported for the loom models in `loom-tests/` only.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::sched::runq::RunQ;
}
