//! Go's `runtime/debug` knobs for the collector: [`set_gc_percent`],
//! [`read_gc_stats`] and [`free_os_memory`].

pub use crate::gc::stats::GcStats;

/// Sets the collector's target percentage (Go's `debug.SetGCPercent`,
/// the `GOGC` variable's value) and returns the previous setting. A cycle
/// starts automatically when the heap has grown by `percent` percent over
/// what survived the last cycle; a negative `percent` turns automatic
/// cycles off (explicit [`gc`](crate::gc()) calls still run). The new goal
/// takes effect at once.
///
/// ```
/// let prev = gort::debug::set_gc_percent(200);
/// assert_eq!(gort::debug::set_gc_percent(prev), 200);
/// ```
pub fn set_gc_percent(percent: i64) -> i64 {
    crate::gc::set_gc_percent(percent)
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
