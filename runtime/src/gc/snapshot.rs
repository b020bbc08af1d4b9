//! The children the count read from large cells, kept so that no mutator's
//! barrier has to copy them (PROTOCOL.md §8, model flag `--count-snap`).
//!
//! The count reads a cell's handles under its hold to count them. For a
//! cell that holds at least [`min_handles`] of them, is not nested in
//! another cell's value (so its address is fixed for the cycle: the
//! objects holding it are immutable and not freed before the sweep), and
//! fits in the cycle's [budget](Snapshots::set_budget), it keeps that list here,
//! keyed by the cell's address, and records `SNAPPED` in the cell
//! (`cell.rs`). Then:
//! - the mark, reaching the cell first, moves the record to `TRACED` and
//!   shades the list, without taking the cell's lock ([`Snapshots::take`]);
//! - a mutator's barrier, reaching it first, moves the record to
//!   `QUEUED_EXCLUSIVE` and only [pins](Snapshots::pin) the list: the collector shades
//!   every pinned list before marking can terminate, whether or not the
//!   cell is ever reached ([`Snapshots::take_pinned`]).
//!
//! A record still `SNAPPED` means no barrier has run since the count's
//! hold, so no acquisition has changed the value: the list is what a
//! barrier's copy would queue. One compare-exchange on the record decides
//! who shades it, exactly once. The pin must not be conditional on the cell
//! being marked: a mutator may take a child out and then drop the cell's
//! last handle (S3's shape).
//!
//! Go has no counterpart: its write barrier records each pointer written
//! (`wbBuf`), which needs no snapshot of a whole object.

use std::collections::BTreeMap;

use super::barrier::Obj;
use super::work_mem;
use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::loom::sync::Mutex;

/// The fewest handles a cell holds for the count to keep them: 1,024 (a
/// barrier's copy of fewer takes a microsecond or two), or what a test set
/// with `__hooks::snap_min`. (Under loom, set per model by
/// `__loom::gc::snap_min`; none is kept unless a model sets it.)
#[cfg(not(loom))]
static SNAP_MIN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1024);

/// The cycle's kept lists and pins (one for the process: [`SNAPSHOTS`]).
pub(crate) struct Snapshots {
    /// Lists kept, by cell address.
    table: Mutex<BTreeMap<usize, Kept>>,
    /// Pinned cells' addresses.
    pins: Mutex<Vec<usize>>,
    /// Whether any is pinned (read by the collector's drain without the
    /// lock).
    pinned_any: AtomicBool,
    /// The bytes the cycle under way may keep (0 under loom: no limit).
    budget: std::sync::atomic::AtomicUsize,
}

#[cfg(not(loom))]
static SNAPSHOTS: Snapshots = Snapshots::new();
#[cfg(loom)]
loom::lazy_static! {
    static ref SNAPSHOTS: Snapshots = Snapshots::new();
    static ref SNAP_MIN_LOOM: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(usize::MAX);
}

/// The bytes all kept lists hold.
static KEPT_BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Lists kept since the process started, and the most bytes held at once
/// since [`kept`] last read it (`__hooks::kept_lists`).
static KEPT_LISTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static KEPT_PEAK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Lists kept since the process started, and the most bytes they held at
/// once since the last call.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn kept() -> (u64, usize) {
    use std::sync::atomic::Ordering::Relaxed;
    (KEPT_LISTS.load(Relaxed), KEPT_PEAK.swap(0, Relaxed))
}

/// One cell's list, counted in `MemStats::gc_sys` while it lives.
pub(crate) struct Kept(Vec<Obj>);

impl Kept {
    /// The children (plain entries; a tracer pushes them as pending).
    pub(crate) fn children(&self) -> &[Obj] {
        &self.0
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        let bytes = work_mem::capacity_bytes(&self.0);
        work_mem::shrank(bytes);
        KEPT_BYTES.fetch_sub(bytes, std::sync::atomic::Ordering::Relaxed);
    }
}

/// See [`SNAP_MIN`].
#[inline]
pub(crate) fn min_handles() -> usize {
    #[cfg(not(loom))]
    return SNAP_MIN.load(std::sync::atomic::Ordering::Relaxed);
    #[cfg(loom)]
    return SNAP_MIN_LOOM.load(std::sync::atomic::Ordering::Relaxed);
}

/// Sets [`min_handles`] (`__hooks::snap_min`, `loom_heap.rs`): any value
/// is sound, it only moves copies between barriers and the count.
pub(crate) fn set_min_handles(n: usize) {
    #[cfg(not(loom))]
    SNAP_MIN.store(n, std::sync::atomic::Ordering::Relaxed);
    #[cfg(loom)]
    SNAP_MIN_LOOM.store(n, std::sync::atomic::Ordering::Relaxed);
}

/// The process's lists and pins.
#[inline]
pub(crate) fn snapshots() -> &'static Snapshots {
    &SNAPSHOTS
}

impl Snapshots {
    crate::loom::const_fn! {
        fn new() -> Snapshots {
            Snapshots {
                table: Mutex::new(BTreeMap::new()),
                pins: Mutex::new(Vec::new()),
                pinned_any: AtomicBool::new(false),
                budget: std::sync::atomic::AtomicUsize::new(0),
            }
        }
    }

    /// The budget of the cycle about to start, `heap` being the bytes in
    /// use: a quarter of them. Within it the count keeps lists in the
    /// order it meets cells; beyond it, it counts cells as before, and
    /// their first barriers copy. gc_wait (1 GiB) keeps 20-40 MiB in most
    /// cycles: most of its cells are locked before the count reaches them,
    /// and it skips those. Its first cycle after the heap is built met
    /// quiet cells: up to 156 MiB were kept, and with an eighth of the heap
    /// its barriers still copied 446-991 cells in three runs of four (none
    /// in five runs at a quarter). A heap of large cells nobody locks fills
    /// the budget. With a memory limit set, the budget is at most half of
    /// what the limit leaves unused (`limit_room`), so that the lists do
    /// not take the process over it; a tight limit keeps none, and the
    /// barriers copy as before.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn set_budget(&self, heap: usize, limit_room: usize) {
        self.budget.store((heap / 4).min(limit_room / 2), std::sync::atomic::Ordering::Relaxed);
    }

    /// Keeps `children` (what the count just read from the cell at
    /// `cell`, which it holds) if the budget has room: whether it did. The
    /// caller then records `SNAPPED`, or [`forget`](Self::forget)s the
    /// list if a barrier got there first.
    pub(crate) fn keep(&self, cell: usize, children: impl ExactSizeIterator<Item = Obj>) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let bytes = children.len() * std::mem::size_of::<Obj>();
        if !cfg!(loom) && KEPT_BYTES.load(Relaxed) + bytes > self.budget.load(Relaxed) {
            return false;
        }
        let list: Vec<Obj> = children.collect();
        let bytes = work_mem::capacity_bytes(&list);
        work_mem::grew(bytes);
        let held = KEPT_BYTES.fetch_add(bytes, Relaxed) + bytes;
        KEPT_PEAK.fetch_max(held, Relaxed);
        KEPT_LISTS.fetch_add(1, Relaxed);
        let old = crate::loom::lock_spinning(&self.table).insert(cell, Kept(list));
        debug_assert!(old.is_none(), "a cell's children kept twice in a cycle");
        true
    }

    /// Drops the list kept for `cell`: the count lost its record to a
    /// barrier, which queued the children itself.
    pub(crate) fn forget(&self, cell: usize) {
        drop(self.take(cell));
    }

    /// The list kept for `cell`, taken by whoever moved its record out of
    /// `SNAPPED` (the mark; [`take_pinned`](Self::take_pinned) for a
    /// barrier).
    pub(crate) fn take(&self, cell: usize) -> Option<Kept> {
        crate::loom::lock_spinning(&self.table).remove(&cell)
    }

    /// A barrier moved `cell`'s record out of `SNAPPED`: its list is the
    /// collector's to shade before marking terminates. Called with the
    /// barrier's mark up, so the grace period before the collector's last
    /// look at the pins ([`take_pinned`](Self::take_pinned)) waits for it.
    pub(crate) fn pin(&self, cell: usize) {
        crate::loom::lock(&self.pins).push(cell);
        self.pinned_any.store(true, Ordering::SeqCst);
    }

    /// Pushes the children of every pinned list onto `out` as pending
    /// entries (collector threads: the drain, the walks' absorbs).
    pub(crate) fn take_pinned(&self, out: &mut Vec<Obj>) {
        if !self.pinned_any.load(Ordering::SeqCst) {
            return;
        }
        let pins = {
            let mut p = crate::loom::lock_spinning(&self.pins);
            self.pinned_any.store(false, Ordering::SeqCst);
            std::mem::take(&mut *p)
        };
        for cell in pins {
            let kept = self.take(cell);
            debug_assert!(kept.is_some(), "a pinned cell's children were not kept");
            if let Some(k) = kept {
                out.extend(k.children().iter().map(|o| Obj::pending(o.0)));
            }
        }
    }

    /// The end of a cycle's mark: the lists no one took are of cells the
    /// mark never reached (garbage, or a cell a `GcRwLock` reader's
    /// barrier queued while the count held it).
    pub(crate) fn end_cycle(&self) {
        debug_assert!(crate::loom::lock_spinning(&self.pins).is_empty(), "pins left after marking terminated");
        let left = std::mem::take(&mut *crate::loom::lock_spinning(&self.table));
        drop(left);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::gc::Gc;

    /// A kept list is taken once, by a pin or by the mark; a pin hands its
    /// children to the collector as pending entries; the budget is kept.
    #[test]
    fn a_pinned_list_is_taken_once() {
        let s = Snapshots::new();
        let v: Vec<Gc<u64>> = (0..3).map(Gc::new).collect();
        let objs: Vec<Obj> = v.iter().map(|g| Obj(g.header_ptr())).collect();
        let (a, b) = (1usize, 2usize);
        s.set_budget(usize::MAX, usize::MAX);
        assert!(s.keep(a, objs.iter().copied()));
        assert!(s.keep(b, objs.iter().copied()));
        s.pin(a);
        let mut out = Vec::new();
        s.take_pinned(&mut out);
        assert_eq!(out, objs.iter().map(|o| Obj::pending(o.0)).collect::<Vec<_>>());
        assert!(s.take(a).is_none(), "a pinned list taken twice");
        s.take_pinned(&mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(s.take(b).map(|k| k.children().to_vec()), Some(objs.clone()));
        s.set_budget(usize::MAX, 0);
        assert!(!s.keep(a, objs.iter().copied()), "kept beyond the budget");
        s.end_cycle();
    }
}
