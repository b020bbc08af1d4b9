//! P: a logical processor (Go's `p`). GOMAXPROCS of them exist; an M must
//! hold one to run goroutines.

use std::cell::{Cell, UnsafeCell};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use super::g::G;
use super::m::M;
use super::runq::RunQ;
use crate::stack::StackCache;
use crate::time::heap::Timers;

/// Go's `_Pidle` … `_Pdead`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PStatus {
    Idle = 0,
    Running = 1,
    GcStop = 3,
    Dead = 4,
}

pub(crate) struct P {
    pub(crate) id: u32,
    /// Protected by `sched.lock` for transitions; read atomically anywhere.
    pub(crate) status: AtomicU32,
    /// Unstarted (and migratable) goroutines. Only the owner M pushes;
    /// thieves steal.
    pub(crate) runq: RunQ<G>,
    /// Incremented by the owner on every new time slice; sysmon reads it.
    pub(crate) schedtick: AtomicU32,
    /// The M that owns this P (null when idle). Written under `sched.lock`
    /// or by the owner itself; read by sysmon and thieves.
    pub(crate) m: AtomicPtr<M>,
    /// Per-P stack cache. Touched only by the owner M (or by `procresize`
    /// while the world is stopped).
    pub(crate) stacks: UnsafeCell<StackCache>,
    /// This P's timers (Go's `p.timers`), under their own lock.
    pub(crate) timers: Timers,
    /// Memory of exited goroutines, for reuse (Go's `p.gFree`). Owner only.
    pub(crate) gfree: UnsafeCell<Vec<NonNull<G>>>,
    /// Goroutines created and exited on this P (see [`GCount`]).
    pub(crate) gcount: GCount,
    /// Go's `p.goidcache`/`p.goidcacheend`: ids `[next, end)` reserved
    /// from `sched.goidgen` in batches, so creating a goroutine touches no
    /// shared cache line. Owner only.
    pub(crate) goidcache: Cell<u64>,
    pub(crate) goidcacheend: Cell<u64>,
}

/// A P's share of the goroutine count (Go computes `gcount` from per-P
/// free lists for the same reason: one shared counter, incremented by the
/// spawning thread and decremented by the exiting one, bounces its cache
/// line on every spawn). Two monotonic counters, each written only by the
/// P's owner (load, then store-release: no read-modify-write needed).
/// `proc::gcount` sums every P's `exited` first and then every P's
/// `created` with acquire loads, so each exit it counts brings its
/// creation along (the creation happens before the goroutine is queued,
/// hence before it exits): the sum may count a goroutine that has just
/// exited, but never misses a live one. On its own cache line, away from
/// the run queue that thieves write.
#[repr(align(64))]
pub(crate) struct GCount {
    pub(crate) created: AtomicU64,
    pub(crate) exited: AtomicU64,
}

impl GCount {
    const fn new() -> GCount {
        GCount { created: AtomicU64::new(0), exited: AtomicU64::new(0) }
    }

    /// Adds one to `c`. Only the owner of the P (or the coordinator of a
    /// stopped world) writes these counters.
    pub(crate) fn bump(c: &AtomicU64) {
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Release);
    }
}

// SAFETY: `stacks`, `gfree` and the `goidcache` cells are only accessed by the M that owns the P (ownership
// handed over under `sched.lock`, which orders the accesses) or by the
// stop-the-world coordinator while no M owns it. Everything else is atomic
// or `RunQ` (itself Sync).
unsafe impl Sync for P {}
// SAFETY: as for `Sync`.
unsafe impl Send for P {}

impl P {
    pub(crate) fn new(id: u32) -> P {
        P {
            id,
            status: AtomicU32::new(PStatus::GcStop as u32),
            runq: RunQ::new(),
            schedtick: AtomicU32::new(0),
            m: AtomicPtr::new(std::ptr::null_mut()),
            stacks: UnsafeCell::new(StackCache::new()),
            timers: Timers::new(),
            gfree: UnsafeCell::new(Vec::new()),
            gcount: GCount::new(),
            goidcache: Cell::new(0),
            goidcacheend: Cell::new(0),
        }
    }

    pub(crate) fn status(&self) -> PStatus {
        match self.status.load(Ordering::Acquire) {
            0 => PStatus::Idle,
            1 => PStatus::Running,
            3 => PStatus::GcStop,
            _ => PStatus::Dead,
        }
    }

    pub(crate) fn set_status(&self, s: PStatus) {
        self.status.store(s as u32, Ordering::Release);
    }

    /// The stack cache.
    ///
    /// # Safety
    /// Only the M that owns this P may call it, and must not hold two
    /// references at once.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn stacks(&self) -> &mut StackCache {
        // SAFETY: the caller owns the P (see above).
        unsafe { &mut *self.stacks.get() }
    }
}
