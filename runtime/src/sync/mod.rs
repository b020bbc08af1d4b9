//! Goroutine-aware synchronisation (Go's sema.go and package sync).
//!
//! # Design
//!
//! Every primitive here blocks by parking the *goroutine* — its thread goes
//! on running other goroutines — and works from plain OS threads too (the
//! thread parks). None of them allocates to block: waiter records live on
//! the waiter's stack.
//!
//! The layering is Go's:
//!
//! - `lock.rs` — the runtime's own short-hold lock (`RawLock`, Go's runtime
//!   `mutex`, futex-based), never held across user code or a switch;
//! - `wake.rs` — parking and waking a goroutine or thread (the only code
//!   that knows which), with a `woken` flag that makes every wake-up
//!   exactly-once and absorbs spurious thread wake-ups;
//! - `sema.rs` — the semaphore table (Go's `semTable`): 251 roots hashed by
//!   address, each with FIFO (or LIFO on request) queues per address, and
//!   Go's `nwait` Dekker check that makes release-before-acquire safe;
//! - [`Mutex`], [`RwLock`], [`WaitGroup`], [`Once`] — Go's algorithms
//!   (including the mutex's spinning and its starvation mode after 1 ms,
//!   and the RWMutex's writer preference) over one or two atomic words
//!   plus semaphores; [`Cond`] — Go's ticket-based notify list.
//!
//! Invariants: a semaphore waiter is woken by exactly one releaser, which
//! dequeued it under the root lock; it re-checks the count when it wakes
//! (unless it was handed a ticket), so barging is allowed in normal mode
//! and ruled out in hand-off mode. Lock guards are Rust guards: unlocking
//! happens on drop and there is no poisoning.
//!
//! Rejected: `std::sync` primitives (they block the OS thread, stalling
//! every goroutine homed on it); a treap of addresses per root as Go has
//! (a list is enough while few distinct addresses collide in a root).

#[cfg(loom)]
pub mod lock;
#[cfg(not(loom))]
pub(crate) mod lock;
#[cfg(loom)]
pub mod sema;
#[cfg(not(loom))]
pub(crate) mod sema;
#[cfg(loom)]
pub mod waitgroup;
#[cfg(not(loom))]
mod waitgroup;
#[cfg(loom)]
pub mod wake;
#[cfg(not(loom))]
pub(crate) mod wake;

#[cfg(not(loom))]
mod cond;
#[cfg(not(loom))]
mod mutex;
#[cfg(not(loom))]
mod once;
#[cfg(not(loom))]
mod rwlock;

#[cfg(not(loom))]
pub use cond::Cond;
#[cfg(not(loom))]
pub use mutex::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub use once::Once;
#[cfg(not(loom))]
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use waitgroup::WaitGroup;
