//! Loom models of `WaitGroup` (`gort::__loom::sync::WaitGroup`, Go's
//! waitgroup.go) on the real semaphore table, with loom threads.
//!
//! 1. `wait_sees_all_done`: two workers write a loom-tracked cell each and
//!    call `done`; `wait` returns only after both, and the writes are
//!    visible (causality) — whether `wait` blocks or finds 0.
//! 2. `two_waiters`: both waiters are released by the last `done` (the
//!    waiter count in the low word, `w` semaphore releases).
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p gort-loom-tests --release --test waitgroup`.
#![cfg(loom)]

use gort::__loom::sync::WaitGroup;
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

struct Shared {
    wg: WaitGroup,
    a: UnsafeCell<u32>,
    b: UnsafeCell<u32>,
}

// SAFETY: `a` and `b` are each written by one worker before its `done`
// and read by the waiter after `wait`; loom checks the ordering.
unsafe impl Sync for Shared {}
// SAFETY: as above.
unsafe impl Send for Shared {}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

#[test]
fn wait_sees_all_done() {
    model(|| {
        let s = Arc::new(Shared { wg: WaitGroup::new(), a: UnsafeCell::new(0), b: UnsafeCell::new(0) });
        s.wg.add(2);
        let s1 = s.clone();
        let t1 = thread::spawn(move || {
            // SAFETY: only this worker writes `a`, before `done`.
            s1.a.with_mut(|p| unsafe { *p = 1 });
            s1.wg.done();
        });
        let s2 = s.clone();
        let t2 = thread::spawn(move || {
            // SAFETY: only this worker writes `b`, before `done`.
            s2.b.with_mut(|p| unsafe { *p = 2 });
            s2.wg.done();
        });
        s.wg.wait();
        // SAFETY: both workers' `done` happened before `wait` returned.
        let (a, b) = (s.a.with(|p| unsafe { *p }), s.b.with(|p| unsafe { *p }));
        assert_eq!((a, b), (1, 2));
        t1.join().unwrap();
        t2.join().unwrap();
    });
}

#[test]
fn two_waiters() {
    model(|| {
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let w1 = wg.clone();
        let t1 = thread::spawn(move || w1.wait());
        let w2 = wg.clone();
        let t2 = thread::spawn(move || w2.wait());
        wg.done();
        t1.join().unwrap();
        t2.join().unwrap();
    });
}
