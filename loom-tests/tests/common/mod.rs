//! A miniature of `runtime/src/sched/proc.rs` for the scheduler loom models
//! (`spinning.rs`, `stw.rs`).
//!
//! What is real and what is re-created:
//!
//! - **Real** (gort's own code, through `gort::__loom`): [`Spinning`]
//!   (`sched.nmspinning` / `sched.needspinning`), [`SyscallSlot`], [`Note`]
//!   (M parking, `sched.stopnote`) and [`RunQ`] (the per-P run queues).
//! - **Re-created**: everything proc.rs keeps under `sched.lock` (`Locked`:
//!   the idle-P list, idle-M list, `mwantp`, the global run queue,
//!   `stopwait`), held in a `loom::sync::Mutex` exactly where proc.rs holds
//!   `sched.lock`; the lock-free mirrors beside it (`npidle`, `runqsize`,
//!   `nmwantp`, `gcwaiting`, P `status`, `P.m`, `M.nextp`, `M.spinning`)
//!   as loom atomics with proc.rs's orderings. Each function below is named
//!   after, and follows statement for statement, its proc.rs counterpart,
//!   minus what the models do not need (home queues, `mwantp` hand-off
//!   after a time slice, first-run placement, `schedtick`, `gomaxprocs`
//!   changes, sysmon wake-ups). The 1-in-61 global-queue check is
//!   `globrunqget_fair`, outside `find_runnable` (used by `globrunq.rs`).
//!
//! Deliberate simplifications, none of which touches the protocols checked:
//!
//! - `steal_work` makes one pass over the other Ps that also takes `runnext`
//!   (proc.rs: four random passes, the last takes `runnext`); it passes
//!   `victim_running = false`, skipping the 3 µs back-off (a heuristic).
//! - An M that takes a work item runs it *forever*: its thread ends while
//!   still holding its P. That is the worst case for a lost wake-up (nobody
//!   comes back to look at the queues).
//! - An M parks forever in `stop_m` unless handed a P. Loom needs every
//!   thread to end, so the model's main thread ends the run with a
//!   *shutdown*: under the lock it sets `shutdown` and empties the idle-M
//!   list, then wakes those Ms (with no P, they exit); an M that reaches
//!   `stop_m` after that exits instead of sleeping. Shutdown only replaces
//!   "sleep forever" by "exit"; it never lets an M look at a queue. An M
//!   waiting for a P in `mwantp` is *not* woken by shutdown: if nobody
//!   serves it, loom reports a deadlock.
//!
//! Ghost state (plain `std` atomics, invisible to loom, updated next to the
//! loom operation that makes the transition so no other thread can run in
//! between) records who owns each P and how many times each P was stopped
//! for a stop-the-world, and asserts the transitions are exclusive. Each P
//! also holds a loom `UnsafeCell` that its owner writes on acquiring and
//! releasing it, so a hand-off without happens-before is a loom error.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize as GhostUsize, Ordering::Relaxed as GR};

pub use gort::__loom::{Note, RunQ, Spinning, SyscallSlot};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use loom::sync::{Mutex, MutexGuard};
use loom::thread;
use std::sync::Arc;

/// Most Ms a model may use (loom allows 5 threads, the main thread included).
pub const MAXM: usize = 5;

pub const P_IDLE: u32 = 0;
pub const P_RUNNING: u32 = 1;
pub const P_GCSTOP: u32 = 3;

/// Ghost owner of a P that nobody holds (idle list, `nextp` in flight, or
/// between a `take` and `handoffp`).
pub const FREE: usize = usize::MAX;
/// Ghost owner of a P stopped for a stop-the-world (the coordinator).
pub const COORD: usize = 1000;

/// A goroutine: a loom cell written by whoever queues it and read by
/// whoever takes it, so a missing happens-before is a causality error.
pub type Item = UnsafeCell<usize>;

pub struct Ptr(pub NonNull<Item>);
// SAFETY: items are moved between threads by the queues, as `*mut G` is.
unsafe impl Send for Ptr {}

pub fn item(v: usize) -> NonNull<Item> {
    let it = Box::leak(Box::new(UnsafeCell::new(0)));
    // SAFETY: not shared yet.
    it.with_mut(|p| unsafe { *p = v });
    NonNull::from(it)
}

/// Takes back ownership of an item and returns its value.
pub fn take(p: NonNull<Item>) -> usize {
    // SAFETY: every item is a leaked Box handed out once by the queues.
    let it = unsafe { Box::from_raw(p.as_ptr()) };
    // SAFETY: we own it; loom checks the write happened-before.
    it.with(|p| unsafe { *p })
}

pub struct P {
    pub id: usize,
    pub runq: RunQ<Item>,
    pub status: AtomicU32,
    /// `P.m`: owning M id + 1, 0 for none.
    pub m: AtomicUsize,
    /// P-local state (Go's mcache, gort's stack cache): only the owner
    /// touches it.
    pub local: UnsafeCell<u32>,
}

pub struct M {
    pub id: usize,
    pub note: Note,
    /// `M.nextp`: P id + 1, 0 for none.
    pub nextp: AtomicUsize,
    pub spinning: AtomicBool,
    pub syscall: SyscallSlot,
    /// Model configuration, not protocol state: `M::admits_new()` (false
    /// for a locked or pinned M, which runs only its own goroutines).
    pub admits: std::sync::atomic::AtomicBool,
}

/// proc.rs `Locked`, under `sched.lock`.
pub struct Locked {
    pub pidle: Vec<usize>,
    pub midle: Vec<usize>,
    pub mwantp: VecDeque<usize>,
    pub runq: VecDeque<Ptr>,
    pub stopwait: i32,
    /// Next unused M struct (models `newm` allocating an M).
    pub mnext: usize,
    /// Model only: see the module docs.
    pub shutdown: bool,
    /// Model only: parked Ms that do not admit new goroutines (proc.rs
    /// keeps them off `midle`), so that shutdown can wake them.
    pub mparked: Vec<usize>,
}

pub struct Ghost {
    pub owner: Vec<GhostUsize>,
    pub stops: Vec<GhostUsize>,
    pub taken: std::sync::Mutex<Vec<usize>>,
    pub started: GhostUsize,
}

/// proc.rs `Sched` plus the model's Ps and Ms.
pub struct Sched {
    pub lock: Mutex<Locked>,
    pub npidle: AtomicU32,
    pub spinning: Spinning,
    pub runqsize: AtomicU32,
    pub nmwantp: AtomicU32,
    pub gcwaiting: AtomicBool,
    pub stopnote: Note,
    pub ps: Vec<P>,
    pub ms: Vec<M>,
    pub ghost: Ghost,
    pub threads: std::sync::Mutex<Vec<thread::JoinHandle<()>>>,
}

impl Sched {
    /// `nprocs` Ps, all idle and free; `nms` Ms already exist (ids
    /// `0..nms`), the rest are for `newm`.
    // Not `Sync`: each P's `local` is a loom `UnsafeCell`, shared on
    // purpose so that loom checks who touches it. Loom runs every model
    // thread on one OS thread and `loom::thread::spawn` does not need `Send`.
    #[allow(clippy::arc_with_non_send_sync)]
    pub fn new(nprocs: usize, nms: usize) -> Arc<Sched> {
        let ps = (0..nprocs)
            .map(|id| P {
                id,
                runq: RunQ::new(),
                status: AtomicU32::new(P_IDLE),
                m: AtomicUsize::new(0),
                local: UnsafeCell::new(0),
            })
            .collect();
        let ms = (0..MAXM)
            .map(|id| M {
                id,
                note: Note::new(),
                nextp: AtomicUsize::new(0),
                spinning: AtomicBool::new(false),
                syscall: SyscallSlot::new(),
                admits: std::sync::atomic::AtomicBool::new(true),
            })
            .collect();
        Arc::new(Sched {
            lock: Mutex::new(Locked {
                pidle: (0..nprocs).rev().collect(),
                midle: Vec::new(),
                mwantp: VecDeque::new(),
                runq: VecDeque::new(),
                stopwait: 0,
                mnext: nms,
                shutdown: false,
                mparked: Vec::new(),
            }),
            npidle: AtomicU32::new(nprocs as u32),
            spinning: Spinning::new(),
            runqsize: AtomicU32::new(0),
            nmwantp: AtomicU32::new(0),
            gcwaiting: AtomicBool::new(false),
            stopnote: Note::new(),
            ps,
            ms,
            ghost: Ghost {
                owner: (0..nprocs).map(|_| GhostUsize::new(FREE)).collect(),
                stops: (0..nprocs).map(|_| GhostUsize::new(0)).collect(),
                taken: std::sync::Mutex::new(Vec::new()),
                started: GhostUsize::new(0),
            },
            threads: std::sync::Mutex::new(Vec::new()),
        })
    }

    pub fn nprocs(&self) -> usize {
        self.ps.len()
    }

    pub fn lock(&self) -> MutexGuard<'_, Locked> {
        self.lock.lock().unwrap()
    }

    // -- ghost ownership ---------------------------------------------------

    /// `who` takes P `p`, which must be free.
    pub fn ghost_acquire(&self, p: usize, who: usize) {
        let was = self.ghost.owner[p].swap(who, GR);
        assert_eq!(was, FREE, "P{p} acquired by {who} while owned by {was}");
    }

    /// `who` gives up P `p`, which it must own.
    pub fn ghost_release(&self, p: usize, who: usize) {
        let was = self.ghost.owner[p].swap(FREE, GR);
        assert_eq!(was, who, "P{p} released by {who} but owned by {was}");
    }

    pub fn ghost_owner(&self, p: usize) -> usize {
        self.ghost.owner[p].load(GR)
    }

    /// P `p` stopped for the stop-the-world: exactly once, by its owner.
    pub fn ghost_stop(&self, p: usize) {
        let n = self.ghost.stops[p].fetch_add(1, GR);
        assert_eq!(n, 0, "P{p} stopped twice");
        self.ghost_acquire(p, COORD);
    }

    /// Setup only: M `m` starts out running on P `p`, taken from the idle list.
    pub fn setup_running(&self, m: usize, p: usize) {
        let mut l = self.lock();
        let i = l.pidle.iter().position(|&x| x == p).expect("P not idle");
        l.pidle.remove(i);
        self.npidle.fetch_sub(1, Ordering::AcqRel);
        drop(l);
        self.acquirep(m, p);
    }

    /// Setup only: M `m` is locked or pinned (`admits_new() == false`).
    pub fn setup_locked(&self, m: usize) {
        self.ms[m].admits.store(false, GR);
    }

    /// Setup only: M `m` (holding no P) is a spinning M (`become_spinning`).
    pub fn setup_spinning(&self, m: usize) {
        self.become_spinning(m);
    }

    // -- proc.rs ---------------------------------------------------------

    pub fn pidleget(&self, l: &mut Locked) -> Option<usize> {
        let p = l.pidle.pop()?;
        self.npidle.fetch_sub(1, Ordering::AcqRel);
        Some(p)
    }

    /// Releases `p` (under the lock; the caller no longer owns it): to a
    /// pending stop-the-world, else to the first M in `mwantp` (returned,
    /// to be woken after unlocking), else to the idle list.
    pub fn pidleput(&self, l: &mut Locked, p: usize) -> Option<usize> {
        let pp = &self.ps[p];
        if self.gcwaiting.load(Ordering::Acquire) {
            pp.m.store(0, Ordering::Release);
            pp.status.store(P_GCSTOP, Ordering::Release);
            l.stopwait -= 1;
            assert!(l.stopwait >= 0, "stopwait went negative");
            self.ghost_stop(p);
            if l.stopwait == 0 {
                self.stopnote.wakeup();
            }
            return None;
        }
        if let Some(m) = l.mwantp.pop_front() {
            self.nmwantp.store(l.mwantp.len() as u32, Ordering::Release);
            self.give_p(p, m);
            return Some(m);
        }
        pp.m.store(0, Ordering::Release);
        pp.status.store(P_IDLE, Ordering::Release);
        l.pidle.push(p);
        self.npidle.fetch_add(1, Ordering::AcqRel);
        None
    }

    /// Hands `p` to the sleeping `m` (under the lock); the caller wakes it.
    pub fn give_p(&self, p: usize, m: usize) {
        self.ps[p].status.store(P_RUNNING, Ordering::Release);
        self.ps[p].m.store(m + 1, Ordering::Release);
        self.ms[m].nextp.store(p + 1, Ordering::Release);
    }

    /// Go's `wakep`.
    pub fn wakep(self: &Arc<Self>) {
        if !self.spinning.claim() {
            return;
        }
        let mut l = self.lock();
        let Some(p) = self.pidleget(&mut l) else {
            self.spinning.no_idle_p();
            return;
        };
        self.startm_locked(l, p, true);
    }

    /// Go's `startm(pp, spinning)`: an idle M, or a new thread.
    pub fn startm_locked(self: &Arc<Self>, mut l: MutexGuard<'_, Locked>, p: usize, spinning: bool) {
        self.ghost.started.fetch_add(1, GR);
        match l.midle.pop() {
            Some(m) => {
                self.give_p(p, m);
                self.ms[m].spinning.store(spinning, Ordering::Relaxed);
                drop(l);
                self.ms[m].note.wakeup();
            }
            None => {
                self.ps[p].status.store(P_RUNNING, Ordering::Release);
                // Allocating the M struct (proc.rs: `freem` under the lock,
                // or a new leaked M).
                let m = l.mnext;
                l.mnext += 1;
                assert!(m < MAXM, "model needs more Ms");
                drop(l);
                self.newm(m, p, spinning);
            }
        }
    }

    /// Go's `newm` + `mstart`: a new thread starting on `p`.
    pub fn newm(self: &Arc<Self>, m: usize, p: usize, spinning: bool) {
        self.ps[p].m.store(m + 1, Ordering::Release);
        self.ms[m].nextp.store(p + 1, Ordering::Release);
        self.ms[m].spinning.store(spinning, Ordering::Relaxed);
        let s = self.clone();
        let h = thread::spawn(move || s.mstart(m));
        self.threads.lock().unwrap().push(h);
    }

    /// Go's `handoffp`.
    pub fn handoffp(self: &Arc<Self>, p: usize) {
        let mut l = self.lock();
        if self.gcwaiting.load(Ordering::Acquire) {
            self.pidleput(&mut l, p);
            return;
        }
        if let Some(m) = l.mwantp.pop_front() {
            self.nmwantp.store(l.mwantp.len() as u32, Ordering::Release);
            self.give_p(p, m);
            drop(l);
            self.ms[m].note.wakeup();
            return;
        }
        if !self.ps[p].runq.is_empty() || !l.runq.is_empty() {
            self.startm_locked(l, p, false);
            return;
        }
        if self.spinning.claim_if_none(self.npidle.load(Ordering::SeqCst)) {
            self.startm_locked(l, p, true);
            return;
        }
        self.pidleput(&mut l, p);
    }

    pub fn acquirep(&self, m: usize, p: usize) {
        self.ghost_acquire(p, m);
        let pp = &self.ps[p];
        // SAFETY (loom-checked): only the owner touches `local`.
        pp.local.with_mut(|x| unsafe { *x += 1 });
        pp.m.store(m + 1, Ordering::Release);
        pp.status.store(P_RUNNING, Ordering::Release);
    }

    pub fn releasep(&self, m: usize, p: usize) {
        // SAFETY (loom-checked): only the owner touches `local`.
        self.ps[p].local.with_mut(|x| unsafe { *x += 1 });
        self.ghost_release(p, m);
    }

    /// Go's `stopm`: sleeps until handed a P. `None`: the model shuts down.
    pub fn stop_m(&self, m: usize) -> Option<usize> {
        loop {
            {
                let mut l = self.lock();
                if l.shutdown {
                    return None;
                }
                if self.ms[m].nextp.load(Ordering::Relaxed) == 0 {
                    if !self.ms[m].admits.load(GR) {
                        if !l.mparked.contains(&m) {
                            l.mparked.push(m);
                        }
                    } else if !l.midle.contains(&m) {
                        l.midle.push(m);
                    }
                }
            }
            match self.park_for_p(m) {
                Some(p) => return Some(p),
                None => {
                    if self.lock().shutdown {
                        return None;
                    }
                }
            }
        }
    }

    /// Sleeps on the M's note once; takes the P it was woken with, if any.
    pub fn park_for_p(&self, m: usize) -> Option<usize> {
        let mm = &self.ms[m];
        mm.note.sleep();
        mm.note.clear();
        let p = mm.nextp.swap(0, Ordering::Acquire);
        if p == 0 {
            return None;
        }
        self.acquirep(m, p - 1);
        Some(p - 1)
    }

    /// Go's `exitsyscallNoP` half of `request_p`: an idle P at once, else a
    /// place in `mwantp`.
    pub fn request_p(&self, m: usize) {
        let mut l = self.lock();
        if self.ms[m].nextp.load(Ordering::Relaxed) != 0 {
            return;
        }
        if let Some(i) = l.midle.iter().position(|&x| x == m) {
            l.midle.swap_remove(i);
        }
        if let Some(p) = self.pidleget(&mut l) {
            self.give_p(p, m);
            drop(l);
            self.ms[m].note.wakeup();
        } else if !l.mwantp.contains(&m) {
            l.mwantp.push_back(m);
            self.nmwantp.store(l.mwantp.len() as u32, Ordering::Release);
        }
    }

    /// Go's `exitsyscall` for an M whose syscall may have lost its P:
    /// returns the P the M holds afterwards.
    pub fn exitsyscall(&self, m: usize, p: usize) -> usize {
        match self.ms[m].syscall.exit() {
            Ok(true) => {
                // Kept the P: the CAS HAS_P→NONE won, so nobody took it.
                assert_eq!(self.ghost_owner(p), m, "exitsyscall kept P{p} that was taken");
                p
            }
            Ok(false) => panic!("exitsyscall outside a syscall"),
            Err(()) => {
                // The P is gone (ghost-released by whoever took it).
                self.request_p(m);
                loop {
                    if let Some(p) = self.park_for_p(m) {
                        return p;
                    }
                }
            }
        }
    }

    /// Go's `gcstopm` (minus its `stop_m`, which the caller does).
    pub fn gcstopm(&self, m: usize, p: usize) {
        if self.ms[m].spinning.swap(false, Ordering::Relaxed) {
            self.spinning.stop();
        }
        self.releasep(m, p);
        let mut l = self.lock();
        let w = self.pidleput(&mut l, p);
        drop(l);
        if let Some(w) = w {
            self.ms[w].note.wakeup();
        }
    }

    pub fn become_spinning(&self, m: usize) {
        self.ms[m].spinning.store(true, Ordering::Relaxed);
        self.spinning.become_spinning();
    }

    /// Go's `resetspinning`.
    pub fn resetspinning(self: &Arc<Self>, m: usize) {
        self.ms[m].spinning.store(false, Ordering::Relaxed);
        self.spinning.stop();
        self.wakep();
    }

    /// Setup only: goroutines already on the global queue.
    pub fn setup_global(&self, items: &[usize]) {
        let mut l = self.lock();
        for &i in items {
            l.runq.push_back(Ptr(item(i)));
        }
        self.runqsize.store(l.runq.len() as u32, Ordering::Release);
    }

    /// proc.rs `find_runnable`'s 1-in-61 check of the global queue (an
    /// admitting M; `place` left out). `decrement_after_unlock`: the
    /// version before the fix, which popped under `sched.lock` and
    /// decremented the `runqsize` mirror after dropping it.
    pub fn globrunqget_fair(&self, decrement_after_unlock: bool) -> Option<Ptr> {
        if self.runqsize.load(Ordering::Relaxed) == 0 {
            return None;
        }
        if decrement_after_unlock {
            let g = self.lock().runq.pop_front();
            if g.is_some() {
                self.runqsize.fetch_sub(1, Ordering::Relaxed);
            }
            g
        } else {
            let mut l = self.lock();
            let g = l.runq.pop_front();
            self.runqsize.store(l.runq.len() as u32, Ordering::Release);
            g
        }
    }

    pub fn any_runq_nonempty(&self) -> bool {
        self.ps.iter().any(|p| !p.runq.is_empty())
    }

    /// Go's `stealWork` (one pass, `runnext` included).
    fn steal_work(&self, p: usize) -> Option<NonNull<Item>> {
        for v in 0..self.nprocs() {
            if self.gcwaiting.load(Ordering::Relaxed) {
                return None;
            }
            let victim = &self.ps[v];
            if v == p || victim.status.load(Ordering::Acquire) != P_RUNNING {
                continue;
            }
            // SAFETY: we own `p` (ghost-checked).
            if let Some(g) = unsafe { self.ps[p].runq.steal(&victim.runq, true, false) } {
                return Some(g);
            }
        }
        None
    }

    /// Go's `findRunnable` for an M holding P `p`. `Some((g, p))`: run `g`
    /// holding `p` (the P may have changed). `None`: the M released its P
    /// and must `stop_m`. `own` counts goroutines the M already has (its
    /// home queue), run one per scheduling point; `skip_to_tail` starts at
    /// the "nothing to do" tail, as an M that already looked everywhere.
    pub fn find_runnable(
        self: &Arc<Self>,
        m: usize,
        mut p: usize,
        own: &mut usize,
        mut skip_to_tail: bool,
    ) -> Option<Run> {
        let mm = &self.ms[m];
        let admits = mm.admits.load(GR);
        'top: loop {
            if !skip_to_tail {
                if self.gcwaiting.load(Ordering::Acquire) {
                    self.gcstopm(m, p);
                    return None;
                }
                if *own > 0 {
                    *own -= 1;
                    return Some(Run::Own(p));
                }
                if admits {
                    // SAFETY: we own `p`.
                    if let Some((g, _)) = unsafe { self.ps[p].runq.get() } {
                        return Some(Run::Item(Ptr(g), p));
                    }
                } else if !self.ps[p].runq.is_empty() || self.runqsize.load(Ordering::Relaxed) > 0 {
                    // A locked M must not start these: give the P away.
                    self.releasep(m, p);
                    self.handoffp(p);
                    return None;
                }
                if admits && self.runqsize.load(Ordering::Relaxed) > 0 {
                    // globrunqget_batch, batch of one.
                    let mut l = self.lock();
                    if let Some(g) = l.runq.pop_front() {
                        self.runqsize.store(l.runq.len() as u32, Ordering::Release);
                        return Some(Run::Item(g, p));
                    }
                }
                let procs = self.nprocs() as u32;
                if admits
                    && self.spinning.may_spin(
                        mm.spinning.load(Ordering::Relaxed),
                        procs,
                        self.npidle.load(Ordering::SeqCst),
                    )
                {
                    if !mm.spinning.load(Ordering::Relaxed) {
                        self.become_spinning(m);
                    }
                    if let Some(g) = self.steal_work(p) {
                        return Some(Run::Item(Ptr(g), p));
                    }
                }
            }
            skip_to_tail = false;
            // Nothing to do: release the P and sleep (findRunnable's tail).
            let mut l = self.lock();
            if self.gcwaiting.load(Ordering::Acquire) {
                continue 'top;
            }
            if admits {
                if let Some(g) = l.runq.pop_front() {
                    self.runqsize.store(l.runq.len() as u32, Ordering::Release);
                    return Some(Run::Item(g, p));
                }
                if !mm.spinning.load(Ordering::Relaxed) && self.spinning.needed() {
                    self.become_spinning(m);
                    continue 'top;
                }
            }
            self.releasep(m, p);
            if admits {
                let waiter = self.pidleput(&mut l, p);
                drop(l);
                if let Some(w) = waiter {
                    self.ms[w].note.wakeup();
                }
            } else {
                drop(l);
                self.handoffp(p);
            }
            let was_spinning = mm.spinning.swap(false, Ordering::Relaxed);
            if was_spinning {
                self.spinning.stop();
                if self.runqsize.load(Ordering::SeqCst) > 0 || self.any_runq_nonempty() {
                    let mut l = self.lock();
                    if let Some(np) = self.pidleget(&mut l) {
                        drop(l);
                        self.acquirep(m, np);
                        p = np;
                        self.become_spinning(m);
                        continue 'top;
                    }
                }
            }
            return None;
        }
    }

    /// `mstart`: a thread started by `newm` with `nextp` set.
    pub fn mstart(self: &Arc<Self>, m: usize) {
        let p = self.ms[m].nextp.swap(0, Ordering::Acquire);
        assert_ne!(p, 0);
        self.acquirep(m, p - 1);
        self.schedule(m, Some(p - 1), 0, false);
    }

    /// The `mstart` loop: `find_runnable`, `resetspinning` if spinning,
    /// `execute`. A work item is run forever (the thread ends holding its
    /// P); the M's own goroutines run and come back to a scheduling point.
    pub fn schedule(self: &Arc<Self>, m: usize, mut p: Option<usize>, mut own: usize, mut skip_to_tail: bool) {
        loop {
            let cur = match p {
                Some(p) => p,
                None => match self.stop_m(m) {
                    Some(p) => p,
                    None => return,
                },
            };
            match self.find_runnable(m, cur, &mut own, skip_to_tail) {
                Some(Run::Item(g, _p)) => {
                    if self.ms[m].spinning.load(Ordering::Relaxed) {
                        self.resetspinning(m);
                    }
                    self.ghost.taken.lock().unwrap().push(take(g.0));
                    return;
                }
                Some(Run::Own(p2)) => {
                    if self.ms[m].spinning.load(Ordering::Relaxed) {
                        self.resetspinning(m);
                    }
                    p = Some(p2);
                }
                None => p = None,
            }
            skip_to_tail = false;
        }
    }

    /// Ends the model (see the module docs): shuts idle Ms down and joins
    /// every thread in `hs` and every thread `newm` started.
    pub fn shutdown_and_join(&self, hs: Vec<thread::JoinHandle<()>>) {
        let idle = {
            let mut l = self.lock();
            l.shutdown = true;
            let mut v = std::mem::take(&mut l.midle);
            v.append(&mut l.mparked);
            v
        };
        for m in idle {
            self.ms[m].note.wakeup();
        }
        for h in hs {
            h.join().unwrap();
        }
        loop {
            let h = self.threads.lock().unwrap().pop();
            match h {
                Some(h) => h.join().unwrap(),
                None => break,
            }
        }
    }

    /// After `shutdown_and_join`: takes every item still queued anywhere.
    pub fn drain_all(&self) -> Vec<usize> {
        let mut left = Vec::new();
        for p in &self.ps {
            // SAFETY: every thread has been joined.
            left.extend(unsafe { p.runq.drain() }.into_iter().map(take));
        }
        let mut l = self.lock();
        left.extend(l.runq.drain(..).map(|g| take(g.0)));
        left
    }
}

pub enum Run {
    /// A work item from a queue, and the P the M holds.
    Item(Ptr, usize),
    /// One of the M's own goroutines (it comes back to a scheduling point).
    Own(usize),
}

/// Runs `f` under loom (with `bound` as the preemption bound unless
/// `LOOM_MAX_PREEMPTIONS` sets one) and reports how many executions it
/// explored.
pub fn model(name: &str, bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::AtomicUsize;
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = bound;
    }
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let start = std::time::Instant::now();
    b.check(move || {
        counter.fetch_add(1, GR);
        f();
    });
    eprintln!(
        "{name}: {} executions in {:.2?} (preemption bound {:?})",
        runs.load(GR),
        start.elapsed(),
        b.preemption_bound
    );
}
