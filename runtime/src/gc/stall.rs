//! How long mutators wait on the collector, by kind of wait: the
//! instrument behind issue 5's latency target ("the longest time any
//! mutator operation waits on the collector"), read through the hidden
//! `gort::gc::__hooks::stalls`.
//!
//! Off by default: each place that may wait reads one `Relaxed` flag, and
//! only while watching (`__hooks::watch_stalls(true)`) takes the time and
//! keeps, per kind, the longest wait, the longest time the waiting thread
//! spent on the CPU during one wait (the rest is the OS running something
//! else, or the thread parked), and how many waits exceeded 50 µs.
//! Every measured place is on a slow path already (a parked lock, a
//! barrier that shades, an assist), so the flag costs nothing measurable.
//! Under loom nothing is measured.

#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A kind of wait (see [`NAMES`]).
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// A lock barrier shading a cell's children during a cycle.
    Barrier,
    /// A mutator parked on a busy cell (any holder; the collector's
    /// try-lock is one, measured by [`Kind::CollectorHold`]).
    LockWait,
    /// The collector (or a mark worker or assist) holding a cell's
    /// try-lock: the longest a mutator can wait on it for that.
    CollectorHold,
    /// A mark assist's tracing (`collector::assist`).
    AssistMark,
    /// An assist's back-pressure wait for the cycle's end.
    AssistWait,
    /// `Weak::upgrade` parked until weak pointers reopen.
    WeakWait,
    /// A heap lock taken by an allocating thread (span lists).
    HeapLock,
}

/// The kinds' names, in [`Kind`]'s order.
pub(crate) const NAMES: [&str; 7] =
    ["barrier", "lock_wait", "collector_hold", "assist_mark", "assist_wait", "weak_wait", "heap_lock"];

#[cfg(not(loom))]
static WATCH: AtomicBool = AtomicBool::new(false);
#[cfg(not(loom))]
static MAX_NS: [AtomicU64; NAMES.len()] = [const { AtomicU64::new(0) }; NAMES.len()];
#[cfg(not(loom))]
static OVER_50US: [AtomicU64; NAMES.len()] = [const { AtomicU64::new(0) }; NAMES.len()];
#[cfg(not(loom))]
static MAX_CPU_NS: [AtomicU64; NAMES.len()] = [const { AtomicU64::new(0) }; NAMES.len()];

/// A wait being timed (nothing while not watching).
#[must_use]
pub(crate) struct Timer(#[cfg(not(loom))] Option<(std::time::Instant, u64)>);

/// The calling thread's CPU time in ns.
#[cfg(not(loom))]
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to write.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Starts timing a wait if stalls are watched.
#[inline]
pub(crate) fn start() -> Timer {
    #[cfg(not(loom))]
    return Timer(WATCH.load(Ordering::Relaxed).then(|| (std::time::Instant::now(), thread_cpu_ns())));
    #[cfg(loom)]
    Timer()
}

impl Timer {
    /// Records the wait as one of `kind`.
    #[inline]
    pub(crate) fn stop(self, kind: Kind) {
        #[cfg(not(loom))]
        if let Some((t, cpu)) = self.0 {
            record(kind, t.elapsed().as_nanos() as u64, thread_cpu_ns().saturating_sub(cpu));
        }
        #[cfg(loom)]
        let _ = kind;
    }
}

#[cfg(not(loom))]
#[cold]
fn record(kind: Kind, ns: u64, cpu_ns: u64) {
    MAX_NS[kind as usize].fetch_max(ns, Ordering::Relaxed);
    MAX_CPU_NS[kind as usize].fetch_max(cpu_ns.min(ns), Ordering::Relaxed);
    if ns > 50_000 {
        OVER_50US[kind as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// Starts (clearing what was recorded) or stops watching.
#[cfg(not(loom))]
pub(crate) fn watch(on: bool) {
    if on {
        for a in MAX_NS.iter().chain(&OVER_50US).chain(&MAX_CPU_NS) {
            a.store(0, Ordering::Relaxed);
        }
    }
    WATCH.store(on, Ordering::Relaxed);
}

/// Per kind: its name, the longest wait (ns), the longest time on the CPU
/// during one wait (ns) and the waits over 50 µs.
#[cfg(not(loom))]
pub(crate) fn read() -> Vec<(&'static str, u64, u64, u64)> {
    let at = |a: &[AtomicU64; NAMES.len()], i: usize| a[i].load(Ordering::Relaxed);
    NAMES.iter().enumerate().map(|(i, n)| (*n, at(&MAX_NS, i), at(&MAX_CPU_NS, i), at(&OVER_50US, i))).collect()
}
