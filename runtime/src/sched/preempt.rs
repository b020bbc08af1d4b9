//! Cooperative preemption: sysmon sets a request on an M whose goroutine
//! ran for more than 10 ms; the goroutine honours it at its next check
//! point (`gort::preempt_point`, every runtime call that may block, and the
//! loop back-edges `#[goroutine]` instruments).
//!
//! The inlined check is one load of a global count of pending requests and
//! a predictable branch. Only when some request is pending anywhere does
//! it call the slow path, which reads this thread's M flag through a
//! thread-local bound once per thread (re-read at every call, from a
//! non-inlined function, so it stays right for a migratable goroutine).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::m::M;

static NEVER: AtomicBool = AtomicBool::new(false);

/// Number of Ms with a preemption request set.
static PENDING: AtomicU32 = AtomicU32::new(0);

/// sysmon or stop-the-world asks the goroutine running on `m` to yield.
pub(crate) fn request(m: &M) {
    if !m.preempt.swap(true, Ordering::Relaxed) {
        PENDING.fetch_add(1, Ordering::Relaxed);
    }
}

/// The M reached a scheduling point: its request, if any, is honoured.
#[inline]
pub(crate) fn clear(m: &M) {
    if m.preempt.load(Ordering::Relaxed) && m.preempt.swap(false, Ordering::Relaxed) {
        PENDING.fetch_sub(1, Ordering::Relaxed);
    }
}

thread_local! {
    static FLAG: Cell<&'static AtomicBool> = const { Cell::new(&NEVER) };
}

/// Points this thread's check at `m`'s preemption flag.
pub(crate) fn bind(m: &'static M) {
    FLAG.with(|f| f.set(&m.preempt));
}

/// Whether a preemption request is pending for the calling thread.
#[inline(never)]
fn requested() -> bool {
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
    if PENDING.load(Ordering::Relaxed) != 0 {
        slow_path();
    }
}

#[cold]
#[inline(never)]
fn slow_path() {
    if requested() {
        super::api::gosched();
    }
}
