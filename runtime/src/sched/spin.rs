//! The lock-free half of Go's spinning-M protocol ("Worker thread
//! parking/unparking" in proc.go), kept apart so the loom models in
//! `loom-tests/` run this exact code.
//!
//! Invariant: a goroutine made runnable is never left unnoticed while Ps
//! are idle. Both sides use a StoreLoad (SeqCst) between their write and
//! their read:
//!
//! - a submitter enqueues, then reads `nmspinning` ([`Spinning::claim`]):
//!   if some M spins, that M will find the work; otherwise it claims the
//!   right to start one;
//! - a spinner that gives up decrements `nmspinning`, then re-reads every
//!   queue ([`Spinning::stop`] then the caller's recheck): if it misses the
//!   work, the submitter saw `nmspinning == 0` and started a spinner.
//!
//! `needspinning` covers the case where the submitter claimed but found no
//! idle P: an M about to release its P spins once more instead.

use crate::loom::sync::atomic::{fence, AtomicU32, Ordering};

/// `sched.nmspinning` and `sched.needspinning`.
#[derive(Debug, Default)]
pub struct Spinning {
    nmspinning: AtomicU32,
    needspinning: AtomicU32,
}

impl Spinning {
    /// No spinning M.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Spinning { nmspinning: AtomicU32::new(0), needspinning: AtomicU32::new(0) }
    }

    /// No spinning M.
    #[cfg(loom)]
    pub fn new() -> Self {
        Spinning { nmspinning: AtomicU32::new(0), needspinning: AtomicU32::new(0) }
    }

    /// Number of spinning Ms.
    pub fn count(&self) -> u32 {
        self.nmspinning.load(Ordering::SeqCst)
    }

    /// `wakep`'s gate, called after the work was enqueued: returns true if
    /// the caller now owns one unit of `nmspinning` and must start a
    /// spinning M (or give it back with [`Spinning::no_idle_p`]).
    pub fn claim(&self) -> bool {
        // The submitter's StoreLoad: its enqueue (a release store) must be
        // visible before it reads `nmspinning`.
        fence(Ordering::SeqCst);
        self.nmspinning.load(Ordering::SeqCst) == 0
            && self.nmspinning.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// `handoffp`'s variant: claim only if nobody spins and no P is idle.
    pub fn claim_if_none(&self, npidle: u32) -> bool {
        self.nmspinning.load(Ordering::SeqCst) + npidle == 0
            && self.nmspinning.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// `wakep` claimed but found no idle P (`pidlegetSpinning`): ask an M
    /// about to park to spin, and give the claim back.
    pub fn no_idle_p(&self) {
        self.needspinning.store(1, Ordering::SeqCst);
        self.nmspinning.fetch_sub(1, Ordering::SeqCst);
    }

    /// Go's `becomeSpinning`.
    pub fn become_spinning(&self) {
        self.nmspinning.fetch_add(1, Ordering::SeqCst);
        self.needspinning.store(0, Ordering::SeqCst);
    }

    /// Whether a submitter asked an M about to park to spin instead.
    pub fn needed(&self) -> bool {
        self.needspinning.load(Ordering::SeqCst) == 1
    }

    /// A spinning M stops spinning (found work, or gives up). The caller
    /// that gives up must recheck every source afterwards: the SeqCst fence
    /// orders this decrement before those reads.
    pub fn stop(&self) {
        self.nmspinning.fetch_sub(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Go's rule against too many spinners: spin if already spinning or
    /// if `2*nmspinning < gomaxprocs - npidle`.
    pub fn may_spin(&self, spinning: bool, gomaxprocs: u32, npidle: u32) -> bool {
        spinning || 2 * self.count() < gomaxprocs.saturating_sub(npidle)
    }
}

/// A locked goroutine's inline syscall and who owns its P (Go keeps this in
/// the goroutine's `_Gsyscall` status and `_Gscan` bit). The M moves
/// NONE→HAS_P on entry; on exit it keeps the P only by CAS HAS_P→NONE.
/// sysmon and stop-the-world take the P only by CAS HAS_P→LOST_P, so the P
/// is owned by exactly one side.
#[derive(Debug, Default)]
pub struct SyscallSlot {
    state: AtomicU32,
    tick: AtomicU32,
}

/// Not in a syscall.
pub const SYSCALL_NONE: u32 = 0;
/// In a syscall, still owning the P.
pub const SYSCALL_HAS_P: u32 = 1;
/// In a syscall; the P was taken.
pub const SYSCALL_LOST_P: u32 = 2;

impl SyscallSlot {
    /// Not in a syscall.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        SyscallSlot { state: AtomicU32::new(SYSCALL_NONE), tick: AtomicU32::new(0) }
    }

    /// Not in a syscall.
    #[cfg(loom)]
    pub fn new() -> Self {
        SyscallSlot { state: AtomicU32::new(SYSCALL_NONE), tick: AtomicU32::new(0) }
    }

    /// `entersyscall`: the M still owns its P.
    pub fn enter(&self) {
        self.tick.fetch_add(1, Ordering::Relaxed);
        self.state.store(SYSCALL_HAS_P, Ordering::SeqCst);
    }

    /// `exitsyscall`'s fast path. `Ok(true)`: we kept the P. `Ok(false)`:
    /// not in a syscall (nothing to do). `Err(())`: the P was taken; the
    /// state is reset and the caller must get a P back.
    #[allow(clippy::result_unit_err)]
    pub fn exit(&self) -> Result<bool, ()> {
        match self.state.compare_exchange(SYSCALL_HAS_P, SYSCALL_NONE, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => Ok(true),
            Err(SYSCALL_NONE) => Ok(false),
            Err(_) => {
                self.state.store(SYSCALL_NONE, Ordering::SeqCst);
                Err(())
            }
        }
    }

    /// sysmon's `retake` / stop-the-world: take the P of an M in a syscall.
    pub fn take(&self) -> bool {
        self.state.compare_exchange(SYSCALL_HAS_P, SYSCALL_LOST_P, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// The current state (`SYSCALL_*`).
    pub fn state(&self) -> u32 {
        self.state.load(Ordering::SeqCst)
    }

    /// Counts syscalls, so sysmon can tell a new one from a long one.
    pub fn tick(&self) -> u32 {
        self.tick.load(Ordering::Relaxed)
    }
}
