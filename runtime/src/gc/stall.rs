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
//!
//! What the worst on-CPU wait of each kind was made of is kept beside it:
//! the minor page faults the thread took and the times the OS switched it
//! out during that wait (`getrusage(RUSAGE_THREAD)`, read outside the
//! timed window), and how many waits of the kind spent over 50 µs on the
//! CPU: a maximum alone is one event, and on a shared machine often the
//! OS's. A histogram of each kind's on-CPU times (10 µs buckets) shows
//! whether a tail is a mode of its own: it is how the barriers that took
//! fresh grey chunks (40-80 µs, their pages faulting in) were told from
//! the rest (10-20 µs).

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
    /// try-lock: the longest a mutator can wait on it for that. Timed by
    /// the wall clock only ([`start_wall`]): its on-CPU figures are the
    /// wall's.
    CollectorHold,
    /// A mark assist's tracing (`collector::assist`).
    AssistMark,
    /// An assist's back-pressure wait for the cycle's end.
    AssistWait,
    /// `Weak::upgrade` parked until weak pointers reopen.
    WeakWait,
    /// A heap lock taken by an allocating thread (span lists).
    HeapLock,
    /// A writer spinning until a tracer's hold on a cell ends (the wait
    /// [`Kind::CollectorHold`] bounds while the tracer runs; longer when
    /// the OS has switched the tracer out).
    TracerWait,
}

/// The kinds' names, in [`Kind`]'s order.
pub(crate) const NAMES: [&str; 8] =
    ["barrier", "lock_wait", "collector_hold", "assist_mark", "assist_wait", "weak_wait", "heap_lock", "tracer_wait"];

#[cfg(not(loom))]
static WATCH: AtomicBool = AtomicBool::new(false);
#[cfg(not(loom))]
static MAX_NS: [AtomicU64; NAMES.len()] = [const { AtomicU64::new(0) }; NAMES.len()];
#[cfg(not(loom))]
static OVER_50US: [AtomicU64; NAMES.len()] = [const { AtomicU64::new(0) }; NAMES.len()];
#[cfg(not(loom))]
static MAX_CPU_NS: [AtomicU64; NAMES.len()] = [const { AtomicU64::new(0) }; NAMES.len()];
#[cfg(not(loom))]
static OVER_50US_CPU: [AtomicU64; NAMES.len()] = [const { AtomicU64::new(0) }; NAMES.len()];
/// The worst on-CPU wait's minor faults and involuntary context switches,
/// packed (faults << 32 | switches); written by whoever raised the maximum
/// last, so racing records may pair one wait's time with another's counts.
#[cfg(not(loom))]
static MAX_CPU_WHY: [AtomicU64; NAMES.len()] = [const { AtomicU64::new(0) }; NAMES.len()];
/// Buckets of [`HIST`]: 10 µs wide, the last one open.
#[cfg(not(loom))]
pub(crate) const HIST_BUCKETS: usize = 12;
/// Per kind, how many waits spent 0-10 µs, 10-20 µs, ... on the CPU.
#[cfg(not(loom))]
static HIST: [[AtomicU64; HIST_BUCKETS]; NAMES.len()] =
    [const { [const { AtomicU64::new(0) }; HIST_BUCKETS] }; NAMES.len()];

/// A wait being timed (nothing while not watching): its start, and the
/// thread's CPU time and [`usage`] then (none for [`start_wall`]).
#[must_use]
pub(crate) struct Timer(#[cfg(not(loom))] Option<(std::time::Instant, Option<OnCpu>)>);

/// The thread's CPU time (ns) and [`usage`] at a wait's start.
#[cfg(not(loom))]
type OnCpu = (u64, (u64, u64));

/// The calling thread's minor page faults and involuntary context
/// switches so far.
#[cfg(not(loom))]
fn usage() -> (u64, u64) {
    // SAFETY: an all-zero `rusage` is a valid value (integers and timevals).
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid rusage for the call to write.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    (ru.ru_minflt as u64, ru.ru_nivcsw as u64)
}

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
    return Timer(WATCH.load(Ordering::Relaxed).then(|| {
        // The usage first: its system call is then outside the window.
        let u = usage();
        (std::time::Instant::now(), Some((thread_cpu_ns(), u)))
    }));
    #[cfg(loom)]
    Timer()
}

/// Starts timing a wait by the clock on the wall only, if stalls are
/// watched: its time on the CPU is recorded as the whole wait, with no
/// faults or switches. For the collector's holds of cells
/// ([`Kind::CollectorHold`]): a cycle takes millions of them (every small
/// cell of a heap), and the four system calls of [`start`] and
/// [`Timer::stop`] (the thread's CPU clock and usage; several µs on a VM)
/// made gc_wait's collector spend most of its time timing itself. A hold
/// the OS preempted then counts whole, as a mutator arriving then would
/// wait it (its side of that wait is [`Kind::TracerWait`]).
#[inline]
pub(crate) fn start_wall() -> Timer {
    #[cfg(not(loom))]
    return Timer(WATCH.load(Ordering::Relaxed).then(|| (std::time::Instant::now(), None)));
    #[cfg(loom)]
    Timer()
}

impl Timer {
    /// Records the wait as one of `kind`.
    #[inline]
    pub(crate) fn stop(self, kind: Kind) {
        #[cfg(not(loom))]
        if let Some((t, on_cpu)) = self.0 {
            let ns = t.elapsed().as_nanos() as u64;
            match on_cpu {
                Some((cpu, u0)) => {
                    let cpu = thread_cpu_ns().saturating_sub(cpu);
                    let u = usage();
                    record(kind, ns, cpu, (u.0.saturating_sub(u0.0), u.1.saturating_sub(u0.1)));
                }
                None => record(kind, ns, ns, (0, 0)),
            }
        }
        #[cfg(loom)]
        let _ = kind;
    }
}

#[cfg(not(loom))]
#[cold]
fn record(kind: Kind, ns: u64, cpu_ns: u64, (faults, switches): (u64, u64)) {
    let k = kind as usize;
    MAX_NS[k].fetch_max(ns, Ordering::Relaxed);
    let cpu_ns = cpu_ns.min(ns);
    HIST[k][((cpu_ns / 10_000) as usize).min(HIST_BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
    if MAX_CPU_NS[k].fetch_max(cpu_ns, Ordering::Relaxed) < cpu_ns {
        MAX_CPU_WHY[k].store(faults.min(u32::MAX as u64) << 32 | switches.min(u32::MAX as u64), Ordering::Relaxed);
    }
    if ns > 50_000 {
        OVER_50US[k].fetch_add(1, Ordering::Relaxed);
    }
    if cpu_ns > 50_000 {
        OVER_50US_CPU[k].fetch_add(1, Ordering::Relaxed);
    }
}

/// Starts (clearing what was recorded) or stops watching.
#[cfg(not(loom))]
pub(crate) fn watch(on: bool) {
    if on {
        for a in MAX_NS
            .iter()
            .chain(&OVER_50US)
            .chain(&MAX_CPU_NS)
            .chain(&OVER_50US_CPU)
            .chain(&MAX_CPU_WHY)
            .chain(HIST.iter().flatten())
        {
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

/// Per kind: its name, how many waits spent over 50 µs on the CPU, and the
/// minor page faults and involuntary context switches during the wait
/// with the longest time on the CPU.
#[cfg(not(loom))]
pub(crate) fn details() -> Vec<(&'static str, u64, u64, u64)> {
    NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let why = MAX_CPU_WHY[i].load(Ordering::Relaxed);
            (*n, OVER_50US_CPU[i].load(Ordering::Relaxed), why >> 32, why & u32::MAX as u64)
        })
        .collect()
}

/// Per kind: its name and its histogram of on-CPU times (see [`HIST`]).
#[cfg(not(loom))]
pub(crate) fn histograms() -> Vec<(&'static str, [u64; HIST_BUCKETS])> {
    NAMES.iter().zip(&HIST).map(|(n, h)| (*n, std::array::from_fn(|b| h[b].load(Ordering::Relaxed)))).collect()
}
