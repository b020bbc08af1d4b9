//! Loom model of the `runqsize` mirror of the global run queue
//! (`sched.runqsize` beside `sched.lock`'s `runq`).
//!
//! `runqsize` is read without the lock: an admitting M uses it to decide
//! whether to look at the global queue, and a locked or pinned M
//! (`admits_new() == false`) that sees it non-zero gives its P away
//! (`handoffp`) and queues for another instead of running its own
//! goroutines, since it may not start those. The mirror must therefore
//! equal `runq.len()` whenever nobody holds the lock: proc.rs stores
//! `len()` under the lock everywhere.
//!
//! Everywhere but one place: `find_runnable`'s 1-in-61 fairness check
//! popped under the lock and then did `runqsize.fetch_sub(1)` after
//! dropping it. If another M stored the new length in between (here: the
//! tail of `find_runnable` popping the other goroutine and storing 0), the
//! late decrement wrapped `runqsize` to `u32::MAX`, with the queue empty.
//! Nothing corrects it until the next global-queue operation, and once
//! every goroutine is blocked there is none: the gc_stress hang (1 run in
//! ~25 under load) was the locked `gort-gc-drop` goroutine's M looping in
//! `find_runnable` -> `handoffp` -> `stop_m` -> `request_p` (state R, 100%
//! CPU) with its goroutine runnable, the collector waiting for it in
//! `sweep`, a goroutine in `gort::gc()` holding a `GcMutex`, and the std
//! threads waiting for that mutex.
//!
//! 1. `fair_pop_vs_tail_pop`: the fixed code; loom checks that the mirror
//!    equals the queue's length once both Ms are done.
//! 2. `fair_pop_decrement_after_unlock_wraps`: the code before the fix;
//!    loom must find a lost update of the mirror (expected to panic).
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p gort-loom-tests --release --test globrunq`.
#![cfg(loom)]

mod common;

use common::{model, take, Sched};
use loom::sync::atomic::Ordering;
use loom::thread;

fn fair_pop_vs_tail_pop(decrement_after_unlock: bool) {
    let s = Sched::new(2, 2);
    s.setup_global(&[0, 1]);
    // M1 on its 61st tick: the fairness check.
    let m1 = {
        let s = s.clone();
        thread::spawn(move || s.globrunqget_fair(decrement_after_unlock).map(|g| take(g.0)))
    };
    // M0 at find_runnable's tail: under the lock, pop and store the length.
    let got0 = {
        let mut l = s.lock();
        let g = l.runq.pop_front();
        s.runqsize.store(l.runq.len() as u32, Ordering::Release);
        g.map(|g| take(g.0))
    };
    let got1 = m1.join().unwrap();
    let l = s.lock();
    let size = s.runqsize.load(Ordering::Relaxed);
    assert_eq!(
        size as usize,
        l.runq.len(),
        "runqsize {size} but the global queue holds {} (M0 took {got0:?}, M1 took {got1:?})",
        l.runq.len()
    );
    drop(l);
    s.drain_all();
}

#[test]
fn fair_pop_vs_tail_pop_keeps_runqsize() {
    model("fair_pop_vs_tail_pop", None, || fair_pop_vs_tail_pop(false));
}

#[test]
#[should_panic(expected = "but the global queue holds 0")]
fn fair_pop_decrement_after_unlock_wraps() {
    model("fair_pop_decrement_after_unlock_wraps", None, || fair_pop_vs_tail_pop(true));
}
