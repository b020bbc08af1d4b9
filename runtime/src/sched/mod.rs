//! Goroutine scheduler (placeholder while the core is written).
pub(crate) mod runq;
