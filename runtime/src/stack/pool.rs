//! The global stack pool (Go's `stackpool` and `stackLarge`): per size class,
//! a free list of idle slots and the slab that fresh slots are carved from,
//! behind one mutex per class.

use std::io;

use super::os;
use super::size::{class_size, DEDICATED_ABOVE, NCLASS};
use crate::loom::lock;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::Mutex;

/// Idle stacks in the global pool whose pages are still committed, in usable
/// bytes, summed over all classes. Above this, `put` gives the oldest idle
/// stacks' pages back to the OS.
const IDLE_WATERMARK: usize = 64 << 20;

/// Address space of one slab at most (small classes double up to this).
const MAX_SLAB_BYTES: usize = 4 << 30;

/// Address space of a class's first slab at most (and at most 64 slots).
const FIRST_SLAB_BYTES: usize = 32 << 20;

/// Per-P cache capacity for a class: up to 32 stacks and 2 MiB of them;
/// 0 for classes of 4 MiB and above, which always use the global pool.
pub(crate) fn cache_cap(c: usize) -> usize {
    // `usable(c)` is a power of two (a class size or the page size): a
    // shift, not a division, on every alloc and free.
    ((2usize << 20) >> usable(c).trailing_zeros()).min(32)
}

/// Usable bytes of a class-`c` slot.
pub(crate) fn usable(c: usize) -> usize {
    class_size(c).max(os::page_size())
}

/// Bytes of a class-`c` slot: one guard page below the usable stack.
pub(crate) fn slot_size(c: usize) -> usize {
    usable(c) + os::page_size()
}

/// One class of the global pool. Protected by its entry in `POOLS`.
struct ClassPool {
    /// Base addresses (the guard page) of idle slots, oldest first. Every
    /// slot here has its guard page installed.
    free: Vec<usize>,
    /// `free[..released]` have had their usable pages returned to the OS
    /// (`MADV_DONTNEED`); the rest are "dirty" and counted in `IDLE_DIRTY`.
    released: usize,
    /// Next never-used slot of the current slab, and the slab's end.
    carve: usize,
    carve_end: usize,
    /// Slots in this class's next slab (0: no slab yet).
    next_slab_slots: usize,
}

static POOLS: [Mutex<ClassPool>; NCLASS] =
    [const { Mutex::new(ClassPool { free: Vec::new(), released: 0, carve: 0, carve_end: 0, next_slab_slots: 0 }) };
        NCLASS];

/// Usable bytes of stacks outside the global pool: running, parked, or in a
/// per-P cache (Go's StackInuse also counts cached stacks). Updated under a
/// class lock, read anywhere.
static INUSE: AtomicUsize = AtomicUsize::new(0);
/// Bytes of slab address space mapped. Slabs are never unmapped.
static SYS: AtomicUsize = AtomicUsize::new(0);
/// Usable bytes of idle, not yet released stacks in the global pool.
static IDLE_DIRTY: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn inuse_bytes() -> usize {
    INUSE.load(Ordering::Relaxed)
}

pub(crate) fn sys_bytes() -> usize {
    SYS.load(Ordering::Relaxed)
}

/// Appends between 1 and `n` slots of class `c` to `out`: idle ones first
/// (newest first, so warm pages are reused), then fresh ones carved from the
/// class's slab, mapping a new slab if needed. Fresh slots get their guard
/// page here, outside the lock. Idle slots cost no system call.
pub(crate) fn take(c: usize, n: usize, out: &mut Vec<usize>) -> io::Result<()> {
    debug_assert!(n >= 1);
    let slot = slot_size(c);
    let start = out.len();
    let fresh_start;
    {
        let mut p = lock(&POOLS[c]);
        let k = n.min(p.free.len());
        let keep = p.free.len() - k;
        let dirty = p.free.len() - p.released.max(keep);
        p.released = p.released.min(keep);
        IDLE_DIRTY.fetch_sub(dirty * usable(c), Ordering::Relaxed);
        out.extend(p.free.drain(keep..).rev());
        fresh_start = out.len();
        while out.len() - start < n {
            if p.carve == p.carve_end {
                if out.len() > start {
                    break; // have some: do not map a slab for a batch's tail
                }
                p.new_slab(c)?;
            }
            out.push(p.carve);
            p.carve += slot;
        }
        INUSE.fetch_add((out.len() - start) * usable(c), Ordering::Relaxed);
    }
    for i in fresh_start..out.len() {
        if let Err(e) = os::install_guard(out[i]) {
            // The failed slot and the rest of the batch are abandoned: they
            // stay mapped but unused (address space only, nothing committed).
            INUSE.fetch_sub((out.len() - i) * usable(c), Ordering::Relaxed);
            out.truncate(i);
            if out.len() == start {
                return Err(e);
            }
            break;
        }
        os::leak_check_root(out[i] + os::page_size(), usable(c));
    }
    Ok(())
}

/// Returns idle slots of class `c` to the global pool, then returns the pages
/// of the oldest idle stacks to the OS while the pool holds more than
/// `IDLE_WATERMARK` bytes of committed idle stacks.
pub(crate) fn put(c: usize, slots: impl IntoIterator<Item = usize>) {
    let u = usable(c);
    let mut p = lock(&POOLS[c]);
    let before = p.free.len();
    p.free.extend(slots);
    let added = p.free.len() - before;
    INUSE.fetch_sub(added * u, Ordering::Relaxed);
    let mut dirty = IDLE_DIRTY.fetch_add(added * u, Ordering::Relaxed) + added * u;
    while dirty > IDLE_WATERMARK && p.released < p.free.len() {
        os::release(p.free[p.released] + os::page_size(), u);
        p.released += 1;
        dirty = IDLE_DIRTY.fetch_sub(u, Ordering::Relaxed) - u;
    }
}

impl ClassPool {
    /// Maps and registers the next slab of class `c` and makes it the carve
    /// target. Slabs grow geometrically (64 slots or 32 MiB first, doubling
    /// up to 4 GiB) so a million stacks take under a hundred mappings;
    /// classes above 64 MiB get one dedicated mapping per slot.
    fn new_slab(&mut self, c: usize) -> io::Result<()> {
        let slot = slot_size(c);
        let cap = (MAX_SLAB_BYTES / slot).max(1);
        if self.next_slab_slots == 0 {
            self.next_slab_slots = (FIRST_SLAB_BYTES / slot).clamp(1, 64);
        }
        let slots = self.next_slab_slots;
        let len = slots * slot;
        let lo = os::map_slab(len)?;
        if let Err(e) = os::register_slab(lo, len, slot) {
            os::unmap_slab(lo, len);
            return Err(e);
        }
        SYS.fetch_add(len, Ordering::Relaxed);
        self.carve = lo;
        self.carve_end = lo + len;
        self.next_slab_slots = if usable(c) > DEDICATED_ABOVE { 1 } else { (slots * 2).min(cap) };
        Ok(())
    }
}
