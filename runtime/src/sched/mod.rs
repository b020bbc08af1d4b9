//! Goroutine scheduler (Go's proc.go, runtime2.go).
//!
//! The scheduler's job is to run goroutines on OS threads. As in Go:
//!
//! - **G** — a goroutine: a corosensei coroutine, its stack, id, status and
//!   wait reason (`g.rs`).
//! - **M** — an OS thread running the scheduler loop on its own native
//!   stack, Go's `g0` (`m.rs`).
//! - **P** — a logical processor: an M must hold one to run goroutines.
//!   GOMAXPROCS of them, each with a 256-slot lock-free run queue plus a
//!   `runnext` slot and a stack cache (`p.rs`, `runq.rs`).
//!
//! # Where a goroutine runs
//!
//! A goroutine that has started stays on the M that started it (its *home*)
//! for life, because Rust code keeps thread-bound state across calls
//! (thread-local addresses cached by LLVM, `!Send` guards). So there are
//! two kinds of runnable goroutine:
//!
//! - *Unstarted* (and `migratable`) goroutines live in P run queues and the
//!   global queue, exactly as in Go: `runqput` puts a new goroutine in the
//!   creator's `runnext`, `runqputslow` spills half a full ring to the global
//!   queue, idle Ms steal half of a victim's queue (`runqsteal`), and
//!   `findRunnable` checks the global queue one time in 61.
//! - *Started* goroutines, when readied, go back to their home M: into the
//!   M's `home_next` slot when the readier is that M (Go's `runnext`: the
//!   readied goroutine runs next and inherits the time slice), else into
//!   the M's home queue (a mutex-protected FIFO). A goroutine the M itself
//!   requeues (`gosched`, a displaced `home_next`) goes to a lock-free local
//!   FIFO only that M touches; the two FIFOs are served in turn. This is
//!   Go's machinery for locked goroutines (`startlockedm`/`stoplockedm`)
//!   without the exclusivity.
//!
//! Worker Ms normally keep their P, so a home queue is served by the M
//! that owns it at its next scheduling point. An M that sleeps without a P
//! (it had nothing to do) and gets a goroutine readied into its home queue
//! is found a P by the readier: an idle P at once, else a place in
//! `sched.mwantp`, a FIFO of Ms waiting for a P, served before the idle
//! list whenever a P is released. An M that holds a P while others wait in
//! `mwantp` passes it on after 1 ms at its next scheduling point, so Ms take
//! turns like time slices. `home.nop` and `home.wanting`, both under the
//! home lock, make this free of lost wake-ups: the M sets `nop` and then
//! re-checks its queue under the same lock a readier pushes under. They
//! also keep an M from being handed two Ps (the second would be lost,
//! Running with no M, and the next stop-the-world would wait for ever):
//! the M takes its `nextp` and clears `nop` in one critical section of the
//! home lock, the readier's request re-checks `nop` and `nextp` under the
//! scheduler lock and then the home lock, and an M is on at most one of
//! `midle` and `mwantp`. Handing a P to an M that has one is fatal
//! (`startm: m has p`, as in Go).
//!
//! First-run placement: when an M pops an unstarted goroutine while
//! goroutines homed on it are already waiting, and a P is idle or an M
//! spins, it passes the newcomer to the global queue and wakes a spinning
//! M instead of starting it (homing it here for life). A dispatcher that
//! spawns one CPU-bound handler at a time therefore spreads them over every
//! P.
//!
//! Cross-thread wake-ups cost what Go avoids by migrating: the readied
//! goroutine's own M must run it. To keep that cheap, an M whose goroutine
//! just parked spins for up to 20 µs (pausing, then yielding the CPU)
//! before it gives up its P, so a reply from another thread is picked up
//! without a futex round trip.
//!
//! Locked goroutines: one born locked (`Builder::locked`) gets a fresh M of
//! kind `Locked` that runs nothing else and exits with it. `lock_os_thread`
//! mid-life *pins* a worker M: it runs only its homed goroutines, admits no
//! new ones, and, if a goroutine exits still locked, retires once the last
//! homed goroutine has exited. A locked or pinned M whose P has unstarted
//! goroutines hands that P to an M that may start them (`handoffp`) and
//! queues for a P for its own goroutines.
//!
//! # findRunnable order (Go's, adapted)
//!
//! stop-the-world pending → `gcstopm`; this P's due timers; Ms waiting for
//! a P and our slice is over → hand off; `home_next`; one in 61: one
//! goroutine from the global queue; one in 31: the home queues first;
//! `runqget`; the home queues; a batch from the global queue; every P's due
//! timers, then steal (4 random passes, the last also takes `runnext`),
//! only if `spinning || 2*nmspinning < gomaxprocs-npidle`; the short spin
//! for a just-parked goroutine; then release the P (a locked or pinned M
//! through `handoffp`) and, if we were spinning, drop `nmspinning`,
//! StoreLoad, and recheck every queue before sleeping (Go's `checkRunqsNoP`).
//! The last M to go idle runs `checkdead`; an idle M may sleep only until
//! the earliest timer.
//! Go's `Gosched` puts the goroutine on the global queue; a homed goroutine
//! goes to the tail of its home queue instead, and the run queue is served
//! before the home queue so the two take turns.
//!
//! # Worker thread parking/unparking
//!
//! Go's protocol, unchanged: a submitter enqueues, then (StoreLoad) reads
//! `nmspinning` in `wakep`, which starts a spinning M on an idle P only if
//! nobody spins (CAS 0→1) and sets `needspinning` when no P is idle so an M
//! about to park spins instead. A spinner that finds work calls
//! `resetspinning` (decrement, then `wakep`); a spinner giving up decrements,
//! StoreLoads and rechecks every source. Idle Ms sleep on a futex `Note`.
//!
//! # Syscalls, sysmon, stop-the-world
//!
//! `syscall.rs`: unlocked goroutines run blocking calls on a pool thread
//! while parked; locked ones run them inline with Go's P hand-off by
//! sysmon (`sysmon.rs`), which also sets preemption requests after 10 ms
//! and reports threads blocked outside the runtime. `stop_the_world` stops
//! Ps at their next scheduling point (Ps in a syscall are taken at once)
//! and names the goroutine it waits for after a second; `gomaxprocs(n)`
//! uses it to `procresize`.
//!
//! Rejected: moving started goroutines between Ms (unsound for Rust code);
//! one global run queue for started goroutines (every ready would contend
//! on it); pinning Ps to Ms forever (a P lent to a locked goroutine would
//! then need a second mechanism anyway).

#[cfg(not(loom))]
pub(crate) mod api;
#[cfg(not(loom))]
pub(crate) mod checkdead;
#[cfg(not(loom))]
pub(crate) mod env;
#[cfg(not(loom))]
pub(crate) mod g;
pub(crate) mod join;
#[cfg(not(loom))]
pub(crate) mod local;
#[cfg(not(loom))]
pub(crate) mod m;
pub(crate) mod note;
#[cfg(not(loom))]
pub(crate) mod p;
#[cfg(not(loom))]
pub(crate) mod park;
#[cfg(not(loom))]
pub(crate) mod preempt;
#[cfg(not(loom))]
pub(crate) mod proc;
#[cfg(not(loom))]
mod report;
pub(crate) mod runq;
pub(crate) mod spin;
#[cfg(not(loom))]
pub(crate) mod syscall;
#[cfg(not(loom))]
mod sysmon;
