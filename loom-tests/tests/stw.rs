//! Loom models of gort's stop-the-world handshake and of sysmon's `retake`,
//! each racing an M that leaves a syscall, using the real
//! `gort::__loom::SyscallSlot` (the CAS HAS_P→NONE / HAS_P→LOST_P that
//! decides who owns the P), `Note` (`sched.stopnote`, M parking),
//! `Spinning` and `RunQ`. The harness (`common/mod.rs`) re-creates proc.rs's
//! `stop_the_world`, `start_the_world`, `pidleput`, `gcstopm`, `handoffp`,
//! `exitsyscall`/`request_p`/`park_for_p`, `find_runnable` and sysmon.rs's
//! `retake`, with `sched.lock` a `loom::sync::Mutex` held exactly where
//! proc.rs holds it and `gcwaiting` a SeqCst-stored atomic.
//!
//! What the models prove:
//!
//! - **Every P is stopped exactly once**: by the coordinator (idle P, or
//!   `SyscallSlot::take` of a P whose M is in a syscall) or by its M at its
//!   next scheduling point (`gcstopm` → `pidleput` under the lock, which
//!   decrements `stopwait`); `stopwait` never goes negative and reaches 0.
//! - **The coordinator's note is woken exactly when all are stopped**: when
//!   its sleep returns every P is `GcStop` and owned by the coordinator, and
//!   when it did not need to sleep no stale wake-up is left on the note.
//!   A missing wake-up is a loom deadlock.
//! - **No P has two owners** (ghost ownership, asserted on every transition;
//!   plus a loom `UnsafeCell` per P that each owner writes, so a hand-off
//!   without happens-before is a loom error): an M leaving its syscall keeps
//!   its P (`exit() == Ok(true)`, and must then stop it at its next
//!   scheduling point) only if nobody took it; `Err(())` means it lost it and
//!   waits in `mwantp` until `start_the_world` (or a released P) serves it.
//! - After the restart (or the retake), the M that left the syscall holds
//!   a P again: nobody waits in `mwantp` forever (else loom deadlocks).
//!
//! Models:
//!
//! 1. `stw_vs_syscall_exit`: coordinator (a thread without a P) stops 2
//!    Ps while M0 runs a goroutine on P0 (and then goes idle) and M1, in a
//!    syscall on P1, leaves it.
//! 2. `retake_vs_exitsyscall`: sysmon retakes P1 from M1 (in a syscall) and
//!    hands it off (`handoffp` starts a spinning M on it, which releases it
//!    to M1 in `mwantp`) while M1 leaves the syscall; P0 is busy.
//! 3. `retake_vs_exitsyscall_idle_p`: the same with P0 idle, so `handoffp`
//!    puts P1 on the idle list instead and M1 picks up an idle P.
//! 4. `stw_vs_retake_vs_syscall_exit`: all three at once: the coordinator,
//!    sysmon and M1 race for P1 (the loser of a `take` must not count it),
//!    and sysmon's `handoffp` under `gcwaiting` stops the P for the
//!    coordinator.
//!
//! Not modelled: `start_the_world`'s final `wakep` and its `startm` for Ps
//! with queued work (the models queue no work), `preempt_all`, and the
//! `stop_the_world` caller keeping its own P.
//!
//! Mutation check (done by hand when this was written): `pidleput`
//! ignoring `gcwaiting` deadlocks models 1 and 4 (the coordinator is never
//! woken); stopping a syscall P on `state() == HAS_P` instead of
//! `SyscallSlot::take()` (coordinator or sysmon) trips the ownership check
//! in every model that races it. Removing `handoffp`'s own `gcwaiting`
//! check does *not* fail: every branch it would take instead either ends
//! in `pidleput` (which stops the P) or hands the P to an M that stops it
//! at its next scheduling point, so that check is only a shortcut.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p gort-loom-tests --release --test stw`.
#![cfg(loom)]

mod common;

use std::sync::Arc;

use common::{model, Sched, COORD, P_GCSTOP, P_RUNNING};
use gort::__loom::{SYSCALL_HAS_P, SYSCALL_NONE};
use loom::sync::atomic::Ordering;
use loom::thread;

/// proc.rs `stop_the_world` for a caller without a P, up to the world being
/// stopped; then checks the stopped world.
fn stop_the_world(s: &Sched) {
    let mut l = s.lock();
    s.gcwaiting.store(true, Ordering::SeqCst);
    l.stopwait = s.nprocs() as i32;
    for p in 0..s.nprocs() {
        let pp = &s.ps[p];
        if pp.status.load(Ordering::Acquire) != P_RUNNING {
            continue;
        }
        let pm = pp.m.load(Ordering::Acquire);
        if pm == 0 {
            continue;
        }
        if s.ms[pm - 1].syscall.take() {
            // The M in the syscall owned it; now nobody, then the coordinator.
            s.ghost_release(p, pm - 1);
            pp.m.store(0, Ordering::Release);
            pp.status.store(P_GCSTOP, Ordering::Release);
            l.stopwait -= 1;
            assert!(l.stopwait >= 0, "stopwait went negative");
            s.ghost_stop(p);
        }
    }
    while let Some(p) = s.pidleget(&mut l) {
        s.ps[p].status.store(P_GCSTOP, Ordering::Release);
        l.stopwait -= 1;
        assert!(l.stopwait >= 0, "stopwait went negative");
        s.ghost_stop(p);
    }
    let wait = l.stopwait > 0;
    drop(l);
    if wait {
        // proc.rs loops on a 10 ms `sleep_timeout` (calling `preempt_all`
        // between); only the wake-up ends it.
        s.stopnote.sleep();
        s.stopnote.clear();
    } else {
        assert!(!s.stopnote.is_woken(), "stopnote woken although the coordinator stopped every P itself");
    }
    // The world is stopped.
    let l = s.lock();
    assert_eq!(l.stopwait, 0, "stopnote woken before every P stopped");
    for (p, pp) in s.ps.iter().enumerate() {
        assert_eq!(pp.status.load(Ordering::Acquire), P_GCSTOP, "P{p} not stopped");
        assert_eq!(s.ghost_owner(p), COORD, "P{p} still owned by an M");
        assert_eq!(s.ghost.stops[p].load(std::sync::atomic::Ordering::Relaxed), 1);
        // SAFETY (loom-checked): the coordinator owns every P now; the last
        // owner's writes must happen-before this read.
        pp.local.with(|_| ());
    }
}

/// proc.rs `start_the_world` (no `procresize`; no work is queued, so no
/// `startm`; the final `wakep` is left out).
fn start_the_world(s: &Sched) {
    let mut l = s.lock();
    s.gcwaiting.store(false, Ordering::SeqCst);
    let mut wake = Vec::new();
    for p in 0..s.nprocs() {
        if s.ps[p].status.load(Ordering::Acquire) != P_GCSTOP {
            continue;
        }
        s.ghost_release(p, COORD);
        if let Some(m) = s.pidleput(&mut l, p) {
            wake.push(m);
        }
        assert!(s.ps[p].runq.is_empty());
    }
    drop(l);
    for m in wake {
        s.ms[m].note.wakeup();
    }
}

/// sysmon.rs `retake` for P `p`, once, when the syscall has been seen
/// twice (the tick heuristics are left out: sysmon decided to retake).
fn retake(s: &Arc<Sched>, p: usize) -> bool {
    let pp = &s.ps[p];
    if pp.status.load(Ordering::Acquire) != P_RUNNING {
        return false;
    }
    let pm = pp.m.load(Ordering::Acquire);
    if pm == 0 {
        return false;
    }
    let m = &s.ms[pm - 1];
    if m.syscall.state() == SYSCALL_HAS_P && m.syscall.take() {
        s.ghost_release(p, pm - 1);
        pp.m.store(0, Ordering::Release);
        s.handoffp(p);
        return true;
    }
    false
}

/// M1, in a syscall on P1, leaves it and returns to its goroutine, which
/// later reaches a scheduling point.
fn m1_leaves_syscall(s: &Arc<Sched>) -> thread::JoinHandle<()> {
    let s = s.clone();
    thread::spawn(move || {
        let p = s.exitsyscall(1, 1);
        s.schedule(1, Some(p), 0, false);
    })
}

fn setup_syscall(s: &Sched, m: usize, p: usize) {
    s.setup_running(m, p);
    s.ms[m].syscall.enter();
}

#[test]
fn stw_vs_syscall_exit() {
    model("stw_vs_syscall_exit", Some(2), || {
        let s = Sched::new(2, 2);
        s.setup_running(0, 0);
        setup_syscall(&s, 1, 1);
        let m0 = {
            let s = s.clone();
            // One goroutine to run, then nothing: two scheduling points.
            thread::spawn(move || s.schedule(0, Some(0), 1, false))
        };
        let m1 = m1_leaves_syscall(&s);
        stop_the_world(&s);
        start_the_world(&s);
        s.shutdown_and_join(vec![m0, m1]);
        assert_eq!(s.spinning.count(), 0);
        assert_eq!(s.ms[1].syscall.state(), SYSCALL_NONE);
    });
}

/// M1 leaves its syscall as a goroutine that then runs forever: returns
/// the P it holds.
fn m1_exits_and_runs(s: &Arc<Sched>) -> thread::JoinHandle<usize> {
    let s = s.clone();
    thread::spawn(move || {
        let p = s.exitsyscall(1, 1);
        assert_eq!(s.ghost_owner(p), 1);
        p
    })
}

fn retake_model(p0_busy: bool) {
    let s = Sched::new(2, 2);
    if p0_busy {
        // M0 runs on P0 forever (no thread needed).
        s.setup_running(0, 0);
    }
    setup_syscall(&s, 1, 1);
    let m1 = m1_exits_and_runs(&s);
    let took = retake(&s, 1);
    s.shutdown_and_join(vec![]);
    let p = m1.join().unwrap();
    assert_eq!(s.ms[1].syscall.state(), SYSCALL_NONE, "exitsyscall left the slot set");
    assert_eq!(s.ghost_owner(p), 1, "M1 does not own the P it returned with");
    if !took {
        assert_eq!(p, 1);
    }
    if p0_busy {
        assert_eq!(s.ghost_owner(0), 0);
    }
}

#[test]
fn retake_vs_exitsyscall() {
    model("retake_vs_exitsyscall", None, || retake_model(true));
}

#[test]
fn retake_vs_exitsyscall_idle_p() {
    model("retake_vs_exitsyscall_idle_p", None, || retake_model(false));
}

#[test]
fn stw_vs_retake_vs_syscall_exit() {
    model("stw_vs_retake_vs_syscall_exit", Some(2), || {
        let s = Sched::new(2, 2);
        s.setup_running(0, 0);
        setup_syscall(&s, 1, 1);
        let m0 = {
            let s = s.clone();
            // M0 has looked everywhere and found nothing: it is at the tail.
            thread::spawn(move || s.schedule(0, Some(0), 0, true))
        };
        let m1 = m1_leaves_syscall(&s);
        let sysmon = {
            let s = s.clone();
            thread::spawn(move || {
                retake(&s, 1);
            })
        };
        stop_the_world(&s);
        start_the_world(&s);
        sysmon.join().unwrap();
        s.shutdown_and_join(vec![m0, m1]);
        assert_eq!(s.spinning.count(), 0);
        assert_eq!(s.ms[1].syscall.state(), SYSCALL_NONE);
    });
}
