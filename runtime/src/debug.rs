//! Go's `runtime/debug` knobs: for the collector [`set_gc_percent`],
//! [`set_memory_limit`], [`read_gc_stats`] and [`free_os_memory`]; for the
//! scheduler [`set_max_threads`].

pub use crate::gc::stats::GcStats;

/// Sets the collector's target percentage (Go's `debug.SetGCPercent`,
/// the `GOGC` variable's value) and returns the previous setting. A cycle
/// starts automatically when the heap has grown by `percent` percent over
/// what survived the last cycle; a negative `percent` turns automatic
/// cycles off (explicit [`gc`](crate::gc()) calls still run), except those
/// a memory limit starts ([`set_memory_limit`]), which also caps the goal.
/// The new goal takes effect at once.
///
/// ```
/// let prev = gort::debug::set_gc_percent(200);
/// assert_eq!(gort::debug::set_gc_percent(prev), 200);
/// ```
pub fn set_gc_percent(percent: i64) -> i64 {
    crate::gc::set_gc_percent(percent)
}

/// Sets a soft limit on the memory the runtime holds (Go's
/// `debug.SetMemoryLimit`, the `GOMEMLIMIT` variable's value), in bytes,
/// and returns the previous limit. A negative `limit` changes nothing and
/// only returns the current one, as in Go. The default is `i64::MAX` (no
/// limit) unless `GOMEMLIMIT` is set: a byte count with an optional
/// suffix `B`, `KiB`, `MiB`, `GiB` or `TiB` (powers of 1024, e.g.
/// `GOMEMLIMIT=512MiB`), or `off`. A malformed `GOMEMLIMIT` prints a
/// warning naming it and leaves the limit off (Go stops the program).
///
/// What is limited: the heap's spans not released to the OS plus the
/// stacks of live goroutines, i.e. `MemStats` [`heap_sys`] −
/// [`heap_released`] + [`stack_inuse`] (Go's `Sys - HeapReleased`; gort's
/// [`sys`] also counts stack address space never used, which the limit
/// does not). The collector's heap goal becomes the smaller of GOGC's and
/// what the limit leaves for the heap (less 3% of headroom, as Go), so
/// cycles run as the limit is approached, even with GOGC off
/// ([`set_gc_percent`]`(-1)`). After each cycle, idle heap memory is
/// returned to the OS while the total is above 95% of the limit, and a
/// thread allocating past what the limit allows waits for the cycle under
/// way (1 ms per 64 KiB at most).
///
/// The limit is soft. If the program keeps more alive than the limit
/// allows, the heap may still grow by an eighth of what survived the last
/// cycle (at least 1 MiB) before the next one: the collector then runs
/// often, but not back to back (Go bounds the collector to about half the
/// CPU instead). The new limit applies at once.
///
/// [`heap_sys`]: crate::MemStats::heap_sys
/// [`heap_released`]: crate::MemStats::heap_released
/// [`stack_inuse`]: crate::MemStats::stack_inuse
/// [`sys`]: crate::MemStats::sys
///
/// ```
/// use gort::gc::{Gc, GcMutex, Trace};
///
/// // Holds a handle to itself: only the collector frees it (an acyclic
/// // object is freed as soon as its last handle goes).
/// #[derive(Trace)]
/// struct Looped {
///     data: [u8; 1000],
///     me: GcMutex<Option<Gc<Looped>>>,
/// }
///
/// // With automatic cycles off, the limit alone starts cycles.
/// gort::debug::set_gc_percent(-1);
/// let prev = gort::debug::set_memory_limit(64 << 20); // i64::MAX unless GOMEMLIMIT is set
/// assert_eq!(gort::debug::set_memory_limit(-1), 64 << 20); // negative: only reads
/// let before = gort::read_mem_stats().num_gc;
/// for _ in 0..256 * 1024 {
///     let g = Gc::new(Looped { data: [0; 1000], me: GcMutex::new(None) });
///     *g.me.lock() = Some(g.clone()); // 256 MiB of garbage in all
/// }
/// let m = gort::read_mem_stats();
/// assert!(m.num_gc > before, "the limit started no cycle");
/// assert!(m.heap_sys - m.heap_released < 128 << 20, "{} bytes of heap", m.heap_sys - m.heap_released);
/// assert_eq!(gort::debug::set_memory_limit(prev), 64 << 20);
/// ```
pub fn set_memory_limit(limit: i64) -> i64 {
    crate::gc::set_memory_limit(limit)
}

/// Sets the maximum number of OS threads the runtime may create (Go's
/// `debug.SetMaxThreads`) and returns the previous setting; the default
/// is 10000, as Go's. A program that needs more dies with Go's fatal
/// error and exit status 2:
///
/// ```text
/// runtime: program exceeds 10000-thread limit
/// fatal error: thread exhaustion
/// ```
///
/// As in Go, the limit exists to stop a runaway program (say, thousands
/// of goroutines blocked in [`syscall`](crate::syscall)) from creating
/// thread after thread, not to schedule threads: nothing waits for a
/// thread to become free. Setting a limit below the number of threads
/// that exist already is fatal at once, as it is in Go. Values above
/// `i32::MAX` are stored as `i32::MAX`.
///
/// The threads counted are those the runtime creates, as Go counts its
/// Ms: the threads running goroutines (Ms, including one per goroutine
/// started [`locked`](crate::Builder::locked)), sysmon, the blocking-pool
/// threads that run [`syscall`](crate::syscall) calls (Go's Ms blocked in
/// a system call), and the collector's thread. Threads the program
/// created itself, including the one calling [`run`](crate::run), are not
/// counted (Go counts its main thread; it excludes threads created by C
/// code). A blocking-pool thread stays counted while it idles, until it
/// exits after 10 s without work.
///
/// ```
/// let prev = gort::debug::set_max_threads(20_000);
/// assert_eq!(prev, 10_000); // the default
/// assert_eq!(gort::debug::set_max_threads(prev), 20_000);
/// ```
pub fn set_max_threads(threads: usize) -> usize {
    crate::sched::checkdead::set_max_threads(threads)
}

/// The collector's history (Go's `debug.ReadGCStats`): the time of the
/// last cycle, the number of cycles, the total pause, and the recent
/// pauses and their end times, most recent first (at most 256). What a
/// pause is for gort's concurrent collector, which stops no thread: see
/// [`MemStats`](crate::MemStats), "Pauses".
///
/// ```
/// gort::gc();
/// let s = gort::debug::read_gc_stats();
/// assert!(s.num_gc >= 1);
/// assert_eq!(s.pause.len(), s.num_gc.min(256) as usize);
/// assert_eq!(s.pause_end[0], s.last_gc);
/// ```
pub fn read_gc_stats() -> GcStats {
    crate::gc::read_gc_stats()
}

/// Runs a collection, then returns the memory of every empty span that no
/// thread has cached for allocation to the OS (Go's `debug.FreeOSMemory`;
/// `madvise(MADV_DONTNEED)`). Such spans stay in the heap, counted in
/// [`MemStats::heap_released`](crate::MemStats::heap_released) until
/// reused; their pages come back as zeros on reuse.
///
/// ```
/// use gort::gc::Gc;
/// let v: Vec<Gc<[u8; 1000]>> = (0..2000).map(|_| Gc::new([0; 1000])).collect();
/// drop(v);
/// gort::debug::free_os_memory();
/// assert!(gort::read_mem_stats().heap_released > 0);
/// ```
pub fn free_os_memory() {
    crate::gc();
    crate::gc::release_free_spans();
}
