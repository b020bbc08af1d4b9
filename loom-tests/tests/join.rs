//! Loom models of the join handshake (`gort::__loom::JoinCore`, used by
//! `JoinHandle::join`): a finishing goroutine against its joiner.
//!
//! 1. `thread_joiner`: the joiner blocks with `park` (a thread joining a
//!    goroutine) whether it comes before, during or after the finish; it
//!    returns only after the result is written (loom checks the cell) and
//!    is always woken (no lost wake-up: loom reports a deadlock otherwise).
//! 2. `park_after_switch`: the goroutine joiner's order, where `register`
//!    runs after the joiner "switched out" and the wake-up is a flag the
//!    finisher sets; exactly one of the two sides sees the other, so the
//!    joiner is woken exactly when it waits; afterwards it takes its
//!    waiter cell back unconditionally (`None` when the finisher took it),
//!    without data races either way.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p gort-loom-tests --release --test join`.
#![cfg(loom)]

use gort::__loom::JoinCore;
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use loom::sync::Arc;
use loom::thread;

struct Shared<W> {
    core: JoinCore<W>,
    result: UnsafeCell<u32>,
}

// SAFETY: `result` is written by the finisher before `complete` and read
// by the joiner after `is_done`; loom checks the ordering.
unsafe impl<W: Send> Sync for Shared<W> {}
// SAFETY: as above.
unsafe impl<W: Send> Send for Shared<W> {}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

#[test]
fn thread_joiner() {
    model(|| {
        let s = Arc::new(Shared { core: JoinCore::<thread::Thread>::new(), result: UnsafeCell::new(0) });
        let s2 = s.clone();
        let finisher = thread::spawn(move || {
            // SAFETY: only the finisher writes, before `complete`.
            s2.result.with_mut(|p| unsafe { *p = 42 });
            // SAFETY: the finisher completes once.
            if let Some(t) = unsafe { s2.core.complete() } {
                t.unpark();
            }
        });
        // The joiner (JoinInner::join's thread path).
        if !s.core.is_done() {
            // SAFETY: the only joiner, once, before `register`.
            unsafe { s.core.set_waiter(thread::current()) };
            if s.core.register() {
                while !s.core.is_done() {
                    thread::park();
                }
            } else {
                // SAFETY: `register` found `DONE`.
                assert!(unsafe { s.core.take_waiter() }.is_some(), "waiter lost");
            }
        }
        assert!(s.core.is_done());
        // SAFETY: `DONE` seen with acquire.
        assert_eq!(s.result.with(|p| unsafe { *p }), 42);
        finisher.join().unwrap();
    });
}

/// A goroutine's waiter: records that it was woken.
struct Wake(Arc<AtomicU32>);

#[test]
fn park_after_switch() {
    model(|| {
        let s = Arc::new(Shared { core: JoinCore::<Wake>::new(), result: UnsafeCell::new(0) });
        let woken = Arc::new(AtomicU32::new(0));
        let parked = Arc::new(AtomicBool::new(false));
        let s2 = s.clone();
        let finisher = thread::spawn(move || {
            // SAFETY: only the finisher writes, before `complete`.
            s2.result.with_mut(|p| unsafe { *p = 7 });
            // SAFETY: the finisher completes once.
            if let Some(Wake(w)) = unsafe { s2.core.complete() } {
                w.fetch_add(1, Ordering::SeqCst);
            }
        });
        let mut took_back = false;
        if !s.core.is_done() {
            // SAFETY: the only joiner, once, before `register`.
            unsafe { s.core.set_waiter(Wake(woken.clone())) };
            // The park's unlock callback, run after the switch. The
            // joiner's own code does not learn its result (it may resume
            // elsewhere before the callback returns); the scheduler does.
            let waiting = s.core.register();
            parked.store(waiting, Ordering::SeqCst);
            if waiting {
                // Parked: resumed only by the wake-up (a `ready`).
                while woken.load(Ordering::SeqCst) == 0 {
                    thread::yield_now();
                }
            }
            // Resumed (or never parked): the waiter is taken back
            // unconditionally, as `JoinInner::join` does.
            // SAFETY: `register` found `DONE`, or the wake-up (after the
            // finisher's take) happened before this.
            took_back = unsafe { s.core.take_waiter() }.is_some();
            assert_eq!(took_back, !waiting, "waiter lost or taken twice");
        }
        assert!(s.core.is_done());
        // SAFETY: `DONE` seen with acquire.
        assert_eq!(s.result.with(|p| unsafe { *p }), 7);
        finisher.join().unwrap();
        let n = woken.load(Ordering::SeqCst);
        assert_eq!(n, u32::from(parked.load(Ordering::SeqCst)), "woken {n} times");
        assert!(!(took_back && n > 0));
    });
}
