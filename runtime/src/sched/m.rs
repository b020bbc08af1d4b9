//! M: an OS thread running the scheduler loop on its own native stack (Go's
//! `m` and its `g0`), and the home queue of the goroutines homed on it.

use std::cell::Cell;
use std::collections::VecDeque;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use super::g::G;
use super::note::Note;
use super::p::P;
use super::spin::SyscallSlot;

/// What kind of thread this M is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MKind {
    /// A worker: runs any goroutine it starts, admits new ones unless pinned.
    Worker,
    /// Created for one goroutine born locked (`Builder::locked`): runs only
    /// that goroutine and exits with it.
    Locked,
}

/// The readied goroutines homed on an M, and whether the M sleeps without a P.
pub(crate) struct Home {
    pub(crate) q: VecDeque<NonNull<G>>,
    /// The M holds no P and is (about to be) asleep in `stop_m`: a readier
    /// must find it a P.
    pub(crate) nop: bool,
    /// A P has been requested for the M (it is in `mwantp` or has `nextp`).
    pub(crate) wanting: bool,
}

pub(crate) struct M {
    pub(crate) id: u64,
    pub(crate) kind: Cell<MKind>,
    /// The P this M holds (null if none). Only the M itself touches it.
    pub(crate) p: Cell<*const P>,
    /// A P handed to this M while it slept (Go's `m.nextp`). Set under
    /// `sched.lock`, taken by the M after its note is woken.
    pub(crate) nextp: AtomicPtr<P>,
    /// Set with `nextp` when the M is started as a spinner.
    pub(crate) spinning: AtomicBool,
    /// Where the M sleeps (Go's `m.park`).
    pub(crate) note: Note,
    /// Readied goroutines homed here; `home_len` mirrors `home.q.len()` for
    /// lock-free peeks.
    pub(crate) home: Mutex<Home>,
    pub(crate) home_len: AtomicU32,
    /// Go's `runnext` for goroutines readied by this M itself. Only the M's
    /// own thread touches it.
    pub(crate) home_next: Cell<*mut G>,
    /// Runnable homed goroutines queued by this M itself (a `gosched`, a
    /// `runnext` displaced by a newer ready): no lock. Own thread only; it
    /// is empty whenever the M sleeps.
    pub(crate) home_local: std::cell::UnsafeCell<VecDeque<NonNull<G>>>,
    /// `home_local.len()`, for sysmon (written by the owner only).
    pub(crate) home_local_len: AtomicU32,
    /// Started goroutines homed here that have not exited. Own thread only.
    pub(crate) homed: Cell<usize>,
    /// Head of the list of goroutines homed here (through `G::allg_*`).
    /// Own thread only; read by `checkdead` only while every M is idle.
    pub(crate) allg: Cell<*mut G>,
    /// The goroutine this M ran last parked (its wake-up is likely to come
    /// soon from another thread). Own thread only.
    pub(crate) just_parked: Cell<bool>,
    /// Homed goroutines currently inside `lock_os_thread`. Own thread only.
    pub(crate) pinned: Cell<u32>,
    /// A goroutine exited while locked: admit nothing new, exit when the
    /// last homed goroutine exits (Go kills the thread at once; ours may
    /// still hold goroutines that cannot move).
    pub(crate) retiring: Cell<bool>,
    /// The running goroutine (null on the scheduler stack). Read by sysmon
    /// and stop-the-world under `inspect` to name a stuck goroutine.
    pub(crate) curg: AtomicPtr<G>,
    /// Spin lock held while another thread reads `*curg`, and by the M
    /// while it frees a goroutine, so the reader never sees a freed G.
    pub(crate) inspect: AtomicBool,
    /// Inline syscall state of a locked goroutine, and who owns the P.
    pub(crate) syscall: SyscallSlot,
    /// Preemption request, set by sysmon, consumed at the next check point.
    pub(crate) preempt: AtomicBool,
    /// Kernel thread id, for sysmon's report (`/proc/self/task/TID`).
    pub(crate) tid: AtomicI32,
    /// When (ns since runtime start) this M last acquired its P.
    pub(crate) p_since: AtomicU64,
    /// The thread has exited; the struct waits in `sched.freem` for reuse.
    pub(crate) dead: AtomicBool,
    /// xorshift state for steal order.
    pub(crate) fastrand: Cell<u32>,
}

// SAFETY: the `Cell` fields are touched only by the M's own thread (see each
// field); the rest are atomics, a Mutex or a Note.
unsafe impl Sync for M {}
// SAFETY: as above.
unsafe impl Send for M {}

impl M {
    pub(crate) fn new(id: u64, kind: MKind) -> M {
        M {
            id,
            kind: Cell::new(kind),
            p: Cell::new(ptr::null()),
            nextp: AtomicPtr::new(ptr::null_mut()),
            spinning: AtomicBool::new(false),
            note: Note::new(),
            home: Mutex::new(Home { q: VecDeque::new(), nop: false, wanting: false }),
            home_len: AtomicU32::new(0),
            home_next: Cell::new(ptr::null_mut()),
            home_local: std::cell::UnsafeCell::new(VecDeque::new()),
            home_local_len: AtomicU32::new(0),
            homed: Cell::new(0),
            allg: Cell::new(ptr::null_mut()),
            just_parked: Cell::new(false),
            pinned: Cell::new(0),
            retiring: Cell::new(false),
            curg: AtomicPtr::new(ptr::null_mut()),
            inspect: AtomicBool::new(false),
            syscall: SyscallSlot::new(),
            preempt: AtomicBool::new(false),
            tid: AtomicI32::new(0),
            p_since: AtomicU64::new(0),
            dead: AtomicBool::new(false),
            fastrand: Cell::new((id as u32).wrapping_mul(0x9E37_79B9) | 1),
        }
    }

    /// The P this M holds.
    pub(crate) fn p(&self) -> Option<&'static P> {
        let p = self.p.get();
        // SAFETY: Ps are never freed (allp entries live for the process).
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// Whether this M may start goroutines that have not run yet (Go: an M
    /// with a locked goroutine runs nothing else).
    pub(crate) fn admits_new(&self) -> bool {
        self.kind.get() == MKind::Worker && self.pinned.get() == 0 && !self.retiring.get()
    }

    pub(crate) fn fastrand(&self) -> u32 {
        let mut x = self.fastrand.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.fastrand.set(x);
        x
    }

    pub(crate) fn lock_home(&self) -> std::sync::MutexGuard<'_, Home> {
        self.home.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a goroutine starting here to the list of homed goroutines.
    pub(crate) fn allg_insert(&self, g: &G) {
        let gp = g as *const G as *mut G;
        let head = self.allg.get();
        g.allg_prev.set(ptr::null_mut());
        g.allg_next.set(head);
        // SAFETY: list members are live goroutines homed here; only this
        // M's thread touches the links.
        if let Some(h) = unsafe { head.as_ref() } {
            h.allg_prev.set(gp);
        }
        self.allg.set(gp);
    }

    /// Removes an exiting goroutine from the list.
    pub(crate) fn allg_remove(&self, g: &G) {
        let (prev, next) = (g.allg_prev.get(), g.allg_next.get());
        // SAFETY: as in `allg_insert`.
        unsafe {
            match prev.as_ref() {
                Some(p) => p.allg_next.set(next),
                None => self.allg.set(next),
            }
            if let Some(n) = next.as_ref() {
                n.allg_prev.set(prev);
            }
        }
    }

    /// Queues a runnable goroutine homed here, from this M's own thread.
    pub(crate) fn home_push_local(&self, g: NonNull<G>) {
        // SAFETY: `home_local` is only touched by this M's thread, and no
        // reference to it outlives this call.
        let local = unsafe { &mut *self.home_local.get() };
        local.push_back(g);
        self.home_local_len.store(local.len() as u32, Ordering::Relaxed);
    }

    /// Pops a runnable goroutine homed here: the ones this M queued itself
    /// and, every fourth tick or when there are none, the ones other
    /// threads readied (so neither queue starves the other). Own thread.
    pub(crate) fn home_pop(&self, tick: u32) -> Option<NonNull<G>> {
        // SAFETY: as in `home_push_local`.
        let local = unsafe { &mut *self.home_local.get() };
        if self.home_len.load(Ordering::Acquire) != 0 && (local.is_empty() || tick % 4 == 0) {
            let mut h = self.lock_home();
            if let Some(g) = h.q.pop_front() {
                self.home_len.store(h.q.len() as u32, Ordering::Release);
                return Some(g);
            }
        }
        let g = local.pop_front();
        self.home_local_len.store(local.len() as u32, Ordering::Relaxed);
        g
    }

    /// Runnable goroutines homed here, as another thread (sysmon,
    /// `checkdead`) sees them. `home_next` and the local queue are empty
    /// whenever the M sleeps.
    pub(crate) fn runnable_homed(&self) -> u32 {
        self.home_len.load(Ordering::SeqCst) + self.home_local_len.load(Ordering::SeqCst)
    }

    /// Whether any readied goroutine homed here waits. Own thread only.
    pub(crate) fn has_home_work(&self) -> bool {
        // SAFETY: as in `home_push_local`.
        let local_empty = unsafe { (*self.home_local.get()).is_empty() };
        self.home_len.load(Ordering::Acquire) != 0 || !self.home_next.get().is_null() || !local_empty
    }

    /// Runs `f` with the goroutine currently on this M, if any, guaranteeing
    /// it is not freed meanwhile. For sysmon and stop-the-world reports.
    pub(crate) fn inspect_curg<R>(&self, f: impl FnOnce(Option<&G>) -> R) -> R {
        while self.inspect.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            std::hint::spin_loop();
        }
        let g = self.curg.load(Ordering::Acquire);
        // SAFETY: the M frees a G only while holding `inspect`, after
        // clearing `curg`; we hold it, so `g` is null or live.
        let r = f(unsafe { g.as_ref() });
        self.inspect.store(false, Ordering::Release);
        r
    }
}
