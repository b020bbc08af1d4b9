//! Cooperative preemption: sysmon sets a request on an M whose goroutine
//! ran for more than 10 ms; the goroutine honours it at its next check
//! point (`gort::preempt_point`, every runtime call that may block, and the
//! loop back-edges `#[goroutine]` instruments).
//!
//! The check is one thread-local load of a pointer to the M's flag plus a
//! load of the flag and a predictable branch. The thread-local is bound
//! once per thread and names the M's flag, so it stays right even for a
//! migratable goroutine that moved (the address is re-read at every check,
//! from a non-inlined function).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use super::m::M;

static NEVER: AtomicBool = AtomicBool::new(false);

thread_local! {
    static FLAG: Cell<&'static AtomicBool> = const { Cell::new(&NEVER) };
}

/// Points this thread's check at `m`'s preemption flag.
pub(crate) fn bind(m: &'static M) {
    FLAG.with(|f| f.set(&m.preempt));
}

/// Whether a preemption request is pending for the calling thread.
#[inline(never)]
pub(crate) fn requested() -> bool {
    FLAG.with(|f| f.get().load(Ordering::Relaxed))
}

/// A preemption check point: yields if sysmon asked this goroutine to.
///
/// Go preempts a goroutine that has run for more than 10 ms without a
/// scheduling point (asynchronously, with a signal). gort cannot interrupt
/// arbitrary Rust code safely, so long-running loops call this (the
/// `#[goroutine]` macro inserts it at every loop back-edge). It costs a
/// couple of loads and a branch when no request is pending, and does
/// nothing outside a goroutine.
///
/// ```
/// gort::run(|| {
///     let mut x = 0u64;
///     for i in 0..1_000_000u64 {
///         x = x.wrapping_add(i * i);
///         gort::preempt_point();
///     }
///     assert!(x > 0);
/// });
/// ```
#[inline]
pub fn preempt_point() {
    if requested() {
        super::api::gosched();
    }
}
