//! Loom models of Go's "worker thread parking/unparking" protocol as gort
//! implements it: the real `gort::__loom::Spinning` (`nmspinning`,
//! `needspinning`), `RunQ` and `Note`, driven by a harness
//! (`common/mod.rs`) that re-creates proc.rs's `wakep`, `startm`,
//! `find_runnable` (steal, then the tail: under `sched.lock` check the
//! global queue and `needspinning`, release the P with `pidleput`, then
//! `Spinning::stop()` and recheck every queue, `stop_m`), `resetspinning`,
//! `newproc`'s `runqput(next)` + `wakep` and `globrunqput` + `wakep`, with
//! `sched.lock` as a `loom::sync::Mutex` held exactly where proc.rs holds it.
//!
//! What every model proves: **no lost wake-up**. The model's main thread is
//! M0, running on P0, a goroutine that spawns work and then keeps its P
//! forever (never reaching a scheduling point: the worst case). When every
//! thread has ended or sleeps, there is no work item in any queue while a P
//! sits idle; i.e. each item was taken by an M that was spinning, or by an
//! M that was started (an idle M woken through its `Note` with a P, or a new
//! loom thread) for it. Also checked: `nmspinning` is back to 0, every P
//! has at most one owner at any time and hand-offs carry happens-before,
//! and each item is taken exactly once with its contents visible.
//!
//! 1. `wakep_vs_spinner_giving_up`: M0 queues an item in P0's `runnext` and
//!    calls `wakep` while M1, spinning on P1, steals, finds nothing, gives
//!    P1 back and stops spinning. Either `wakep` sees M1 still spinning (and
//!    M1's recheck after `stop()` must then see the item, take P1 back and
//!    steal), or it claims and starts an M on the idle P.
//! 2. `no_idle_p_sets_needspinning`: M1 is *not* spinning and is at the
//!    tail, about to release P1. If `wakep` runs first it claims, finds no
//!    idle P and sets `needspinning` (`no_idle_p`); M1's check of
//!    `Spinning::needed()` under the lock must then make it spin instead of
//!    releasing P1.
//! 3. `resetspinning_wakes_for_second_item`: 3 Ps. M0 queues two items
//!    (two `wakep`s, both possibly refused while M1 spins). M1 steals one
//!    and runs it forever; its `resetspinning` (`stop()` then `wakep`) must
//!    get an M started on the idle P2 for the other.
//! 4. `global_queue_vs_spinner`: a thread without a P (M0 here holds none)
//!    puts the item on the global queue (`globrunqput`) and calls `wakep`,
//!    while M1 spins and gives up; P0 is idle throughout.
//! 5. `locked_m_releasing_p_vs_no_idle_p`: as 2, but M1 is a locked or
//!    pinned M (`admits_new() == false`) whose goroutine just blocked. It
//!    found a lost wake-up in the first version of `find_runnable`'s tail,
//!    which checked `Spinning::needed()` only for admitting Ms and let a
//!    non-admitting M with empty queues release its P with a bare
//!    `pidleput`: M0 queues the item in P0's `runnext`; `wakep` claims,
//!    finds no idle P (M1 still holds P1) and calls `no_idle_p`; M1 skips
//!    the `needed()` check, parks P1 idle, and nobody ever runs the item.
//!    Go's locked Ms give their P away through `handoffp`, which starts a
//!    spinning M when `nmspinning + npidle == 0`; proc.rs (and this
//!    harness) now do the same for every non-admitting M.
//!
//! Mutation check (done by hand when this was written): removing the
//! `needed()` check, the recheck after `stop()`, or `resetspinning`'s
//! `wakep` from the harness makes models 2, 1/3/4 and 3 fail respectively;
//! removing either SeqCst fence in the real `Spinning::claim` or
//! `Spinning::stop` (in a scratch copy of the crate) makes models 1, 3
//! and 4 fail with a lost wake-up, so loom does explore the StoreLoad race
//! those fences close.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p gort-loom-tests --release --test spinning`.
#![cfg(loom)]

mod common;

use common::{item, model, Ptr, Sched};
use loom::sync::atomic::Ordering;
use loom::thread;

/// The final check: every thread has ended (or was shut down while
/// sleeping without a P).
fn check_no_lost_wakeup(s: &Sched, n: usize) {
    let idle = s.lock().pidle.clone();
    let left = s.drain_all();
    assert!(
        left.is_empty() || idle.is_empty(),
        "lost wake-up: items {left:?} queued while P{idle:?} idle and every M asleep (started {} Ms)",
        s.ghost.started.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert_eq!(s.spinning.count(), 0, "nmspinning leaked");
    let mut all = std::mem::take(&mut *s.ghost.taken.lock().unwrap());
    all.extend(left);
    all.sort_unstable();
    assert_eq!(all, (0..n).collect::<Vec<_>>(), "items lost or duplicated");
}

#[test]
fn wakep_vs_spinner_giving_up() {
    model("wakep_vs_spinner_giving_up", None, || {
        let s = Sched::new(2, 2);
        s.setup_running(0, 0);
        s.setup_running(1, 1);
        s.setup_spinning(1);
        let m1 = {
            let s = s.clone();
            thread::spawn(move || s.schedule(1, Some(1), 0, false))
        };
        // newproc: runqput(p, g, next=true), then wakep.
        // SAFETY: M0 owns P0.
        assert!(unsafe { s.ps[0].runq.put(item(0), true) }.is_none());
        s.wakep();
        s.shutdown_and_join(vec![m1]);
        check_no_lost_wakeup(&s, 1);
    });
}

#[test]
fn no_idle_p_sets_needspinning() {
    model("no_idle_p_sets_needspinning", None, || {
        let s = Sched::new(2, 2);
        s.setup_running(0, 0);
        s.setup_running(1, 1);
        // M1 found nothing and is not spinning: it starts at the tail.
        let m1 = {
            let s = s.clone();
            thread::spawn(move || s.schedule(1, Some(1), 0, true))
        };
        // SAFETY: M0 owns P0.
        assert!(unsafe { s.ps[0].runq.put(item(0), true) }.is_none());
        s.wakep();
        s.shutdown_and_join(vec![m1]);
        check_no_lost_wakeup(&s, 1);
    });
}

#[test]
fn resetspinning_wakes_for_second_item() {
    model("resetspinning_wakes_for_second_item", Some(3), || {
        let s = Sched::new(3, 2);
        s.setup_running(0, 0);
        s.setup_running(1, 1);
        s.setup_spinning(1);
        let m1 = {
            let s = s.clone();
            thread::spawn(move || s.schedule(1, Some(1), 0, false))
        };
        for i in 0..2 {
            // SAFETY: M0 owns P0.
            assert!(unsafe { s.ps[0].runq.put(item(i), true) }.is_none());
            s.wakep();
        }
        s.shutdown_and_join(vec![m1]);
        check_no_lost_wakeup(&s, 2);
    });
}

#[test]
fn global_queue_vs_spinner() {
    model("global_queue_vs_spinner", Some(4), || {
        let s = Sched::new(2, 2);
        s.setup_running(1, 1);
        s.setup_spinning(1);
        let m1 = {
            let s = s.clone();
            thread::spawn(move || s.schedule(1, Some(1), 0, false))
        };
        // globrunqput, then wakep (newproc from a thread without a P).
        {
            let mut l = s.lock();
            l.runq.push_back(Ptr(item(0)));
            s.runqsize.store(l.runq.len() as u32, Ordering::Release);
        }
        s.wakep();
        s.shutdown_and_join(vec![m1]);
        check_no_lost_wakeup(&s, 1);
    });
}

#[test]
fn locked_m_releasing_p_vs_no_idle_p() {
    model("locked_m_releasing_p_vs_no_idle_p", Some(3), || {
        let s = Sched::new(2, 2);
        s.setup_running(0, 0);
        s.setup_running(1, 1);
        // M1 is locked to its goroutine (`admits_new() == false`); that
        // goroutine just blocked, so M1 is at the tail, about to release P1.
        s.setup_locked(1);
        let m1 = {
            let s = s.clone();
            thread::spawn(move || s.schedule(1, Some(1), 0, true))
        };
        // SAFETY: M0 owns P0.
        assert!(unsafe { s.ps[0].runq.put(item(0), true) }.is_none());
        s.wakep();
        s.shutdown_and_join(vec![m1]);
        check_no_lost_wakeup(&s, 1);
    });
}
