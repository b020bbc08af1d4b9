//! The header in front of every object, and the per-type table.

use super::trace::Tracer;
use crate::loom::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use crate::loom::LoadSeqCst;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::AtomicPtr;
use std::sync::Mutex;

/// Marked: grey or black (shaded this cycle). Which of the two is not
/// recorded: no decision depends on it.
pub(crate) const MARKED: u8 = 1;
/// Allocated while a cycle ran: not old in that cycle.
pub(crate) const NEWBORN: u8 = 4;
/// In an object's `internal` count (`heap::internal`), not `state`: old
/// in the current cycle (counted, and swept if left unmarked). Only the
/// collector reads or writes it.
pub(crate) const OLD: u32 = 1 << 31;
/// Found unreachable: its drop glue runs or has run, its memory is about
/// to be freed. No longer published to the collector.
pub(crate) const GARBAGE: u8 = 16;
/// Under loom: freed at zero (the memory stays allocated until the model
/// ends, so that a collector touching it is caught, not undefined).
#[cfg(loom)]
pub(crate) const FREED: u8 = 32;
/// Under loom: its value was dropped by a claim at zero.
#[cfg(loom)]
pub(crate) const DROPPED: u8 = 64;

/// In `flags`: has an entry in the specials table (finalizer, cleanups,
/// weak cell).
pub(crate) const SPECIAL: u8 = 1;
/// In `flags`: was stored in a `GcAtomic` slot, whose `load` counts a
/// handle it read without one.
pub(crate) const IN_SLOT: u8 = 2;

/// Per-type operations on an object.
pub(crate) struct VTable {
    /// Reports the value's handles.
    pub(crate) trace: unsafe fn(*const Header, &mut Tracer<'_>),
    /// Drops the value in place.
    pub(crate) drop: unsafe fn(*mut Header),
    /// The value's type, for reports.
    pub(crate) type_name: fn() -> &'static str,
    /// `Trace::holds_no_handles` of the value's type, asked once, when
    /// the table gets its index ([`VtRef::holds_no_handles`]).
    pub(crate) no_handles: fn() -> bool,
    /// The box's size class, [`LARGE`](super::heap::LARGE) for a large
    /// object (under loom, where objects are boxes, 0 and unread).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) class: u8,
    /// Frees the box (dropped value) under loom, where objects are boxes.
    #[cfg(loom)]
    pub(crate) dealloc: unsafe fn(*mut Header),
}

/// Precedes the value in every box (`#[repr(C)]` `GcBox<T>`): 8 bytes, so
/// a box of two handles fills a 24-byte slot (Go's header is the span's
/// bitmap, 0 bytes per object). The collector's own count per object
/// (`internal`) is kept beside the span's slots (`heap::internal`), not
/// here: only the collector reads it, and only during a cycle.
#[repr(C)]
pub(crate) struct Header {
    /// Handles to this object anywhere (stacks, other objects, slots).
    pub(crate) handles: AtomicU32,
    /// Colour and cycle flags (the constants above). Mutators write only
    /// MARKED (a shade) and, before publishing, the allocation state.
    pub(crate) state: AtomicU8,
    /// [`SPECIAL`] and [`IN_SLOT`]: set by a mutator holding a handle, at
    /// any time, and never cleared. An object with either is never freed
    /// when its last handle goes (`reclaim`): only the collector frees it.
    pub(crate) flags: AtomicU8,
    /// The value's [`VTable`].
    pub(crate) vt: VtRef,
    /// Under loom, where objects are boxes and have no span, the count
    /// `heap::internal` keeps beside a span's slots.
    #[cfg(loom)]
    pub(crate) internal: AtomicU32,
}

impl Header {
    #[inline]
    pub(crate) fn state(&self) -> u8 {
        self.state.load_seqcst()
    }

    /// Sets `flag` (a bit of `flags`) for good; the caller holds a handle.
    #[inline]
    pub(crate) fn set_flag(&self, flag: u8) {
        if self.flags.load(Ordering::Relaxed) & flag == 0 {
            self.flags.fetch_or(flag, Ordering::SeqCst);
        }
    }

    /// Sets the marked bit; true if this call set it. Callers go through
    /// [`shade_to_trace`](Self::shade_to_trace), which says whether to
    /// queue the object.
    #[inline]
    fn shade(&self) -> bool {
        #[cfg(loom)]
        assert!(self.state.load(Ordering::SeqCst) & FREED == 0, "gort: shaded an object freed at zero");
        self.state.load(Ordering::Relaxed) & MARKED == 0 && self.state.fetch_or(MARKED, Ordering::SeqCst) & MARKED == 0
    }

    /// [`shade`](Self::shade), and whether the object must then be traced:
    /// not if its type holds no handles ([`VtRef::holds_no_handles`]), as
    /// tracing it would report nothing. Such an object goes from white to
    /// black at once and is queued nowhere: under the pacer every leaf of
    /// a hot cell is a root, and gc_wait's roots pass pushed its 44.7
    /// million leaves (358 MB of mark stack) only for the drain and the
    /// assists to pop each one, read its header again and trace nothing.
    #[inline]
    pub(crate) fn shade_to_trace(&self) -> bool {
        self.shade() && !self.vt.holds_no_handles()
    }

    /// Traces the value of the object at `h` (a pointer with the whole
    /// box's provenance, not one derived from `&Header`).
    ///
    /// # Safety
    /// The object is live.
    #[inline]
    pub(crate) unsafe fn trace(h: std::ptr::NonNull<Header>, t: &mut Tracer<'_>) {
        // No tracer reads a value being dropped or dropped: neither the
        // sweep's garbage nor an object claimed at zero.
        #[cfg(loom)]
        assert!(
            // SAFETY: the caller guarantees the object is live.
            unsafe { h.as_ref() }.state.load(Ordering::SeqCst) & (FREED | GARBAGE | DROPPED) == 0,
            "gort: traced an object claimed or freed"
        );
        // SAFETY: the caller guarantees the object is live.
        let vt = unsafe { h.as_ref() }.vt;
        if vt.holds_no_handles() {
            return;
        }
        // SAFETY: the caller guarantees the object is live; `vt` matches it.
        unsafe { (vt.get().trace)(h.as_ptr(), t) }
    }
}

/// A `&'static VTable` in 16 bits, so that the header is 8 bytes: the
/// table's index in [`TABLES`], where each table gets a slot the first
/// time a thread allocates an object of its type. Go needs no such index:
/// its objects' types are found from their span (`mspan.spanclass` and
/// the heap bitmap); here a span holds objects of many types of one size.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(transparent)]
pub(crate) struct VtRef(u16);

/// Every table given an index, by [`VtRef`] index: filled once each under
/// [`INDEX`], read without a lock. The low bit of an entry (tables are
/// 8-aligned) says that the table's type holds no handles
/// ([`NO_HANDLES`]).
static TABLES: [AtomicPtr<VTable>; MAX_TABLES] = [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_TABLES];
const MAX_TABLES: usize = 1 << 16;
/// Indexes given so far, by table address.
static INDEX: Mutex<Option<HashMap<usize, u16>>> = Mutex::new(None);

/// Entries of a thread's cache of indexes ([`VT_CACHE`]).
const CACHED: usize = 64;

std::thread_local! {
    /// This thread's indexes of recently allocated types, direct-mapped by
    /// table address: `address | index << 48` (addresses are below
    /// 2^48), 0 when empty. A plain cache of [`INDEX`].
    static VT_CACHE: [Cell<usize>; CACHED] = const { [const { Cell::new(0) }; CACHED] };
}

impl VtRef {
    /// The reference for `vt` (per allocation: a look-up in this thread's
    /// cache, a lock the first time this thread meets the table there).
    #[inline]
    pub(crate) fn new(vt: &'static VTable) -> VtRef {
        let addr = (vt as *const VTable).addr();
        // A constant thread-local with no destructor: always there.
        let e = VT_CACHE.with(|c| c[cache_slot(addr)].get());
        if e & ADDR_MASK == addr {
            VtRef((e >> 48) as u16)
        } else {
            Self::index(vt)
        }
    }

    /// The index of `vt`, given now if it has none; cached for this thread.
    #[cold]
    #[inline(never)]
    fn index(vt: &'static VTable) -> VtRef {
        let addr = (vt as *const VTable).addr();
        assert!(addr & !ADDR_MASK == 0, "gort: a type table above 2^48");
        let i = {
            let mut index = INDEX.lock().unwrap_or_else(|e| e.into_inner());
            let index = index.get_or_insert_with(HashMap::new);
            match index.get(&addr) {
                Some(&i) => i,
                None => {
                    let i = index.len();
                    assert!(
                        i < MAX_TABLES,
                        "gort: more than {MAX_TABLES} types of Gc objects in one process; \
                         a `Gc<T>` of each instance of a generic type counts as one"
                    );
                    let tag = if (vt.no_handles)() { NO_HANDLES } else { 0 };
                    let p = (vt as *const VTable).cast_mut().map_addr(|a| a | tag);
                    TABLES[i].store(p, std::sync::atomic::Ordering::Release);
                    index.insert(addr, i as u16);
                    i as u16
                }
            }
        };
        VT_CACHE.with(|c| c[cache_slot(addr)].set(addr | (i as usize) << 48));
        VtRef(i)
    }

    /// The table.
    #[inline]
    pub(crate) fn get(self) -> &'static VTable {
        let p = TABLES[self.0 as usize].load(std::sync::atomic::Ordering::Acquire);
        // SAFETY: `index` stored a `&'static VTable` in this slot (tagged
        // with `NO_HANDLES`, masked here) before the reference with its
        // index was made (the header holding it is published after, with a
        // release store; an index read from a thread's cache was made by
        // that thread).
        unsafe { &*p.map_addr(|a| a & !NO_HANDLES) }
    }

    /// Whether the type's `Trace::holds_no_handles` said so: tracing an
    /// object of it reports nothing, so the collector does not call its
    /// `trace` (an indirect call, and a read of the table, per object).
    /// Read as [`get`](Self::get) reads the table.
    #[inline]
    pub(crate) fn holds_no_handles(self) -> bool {
        TABLES[self.0 as usize].load(std::sync::atomic::Ordering::Acquire).addr() & NO_HANDLES != 0
    }
}

/// The tag of a [`TABLES`] entry whose type holds no handles.
const NO_HANDLES: usize = 1;

const ADDR_MASK: usize = (1 << 48) - 1;

/// The [`VT_CACHE`] entry of the table at `addr` (tables are 8-aligned).
#[inline]
fn cache_slot(addr: usize) -> usize {
    (addr >> 3) % CACHED
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Header>() == 8);

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    static ONE: VTable = VTable { trace: |_, _| {}, drop: |_| {}, type_name: || "one", no_handles: || false, class: 0 };
    static TWO: VTable = VTable { trace: |_, _| {}, drop: |_| {}, type_name: || "two", no_handles: || true, class: 1 };

    #[test]
    fn a_table_gets_one_index_for_every_thread() {
        let (a, b) = (VtRef::new(&ONE), VtRef::new(&TWO));
        assert_ne!(a, b);
        assert_eq!(VtRef::new(&ONE), a, "cached");
        assert_eq!(std::thread::spawn(|| VtRef::new(&TWO)).join().unwrap(), b, "one index per table");
        assert!(std::ptr::eq(a.get(), &ONE));
        assert!(std::ptr::eq(b.get(), &TWO), "the tag is not part of the address");
        assert_eq!((b.get().type_name)(), "two");
        assert!(!a.holds_no_handles() && b.holds_no_handles());
    }

    #[test]
    fn an_object_without_handles_is_marked_but_not_queued_for_tracing() {
        let header = |vt| Header {
            handles: AtomicU32::new(1),
            state: AtomicU8::new(0),
            flags: AtomicU8::new(0),
            vt: VtRef::new(vt),
        };
        let (with, without) = (header(&ONE), header(&TWO));
        assert!(with.shade_to_trace(), "white with handles: to trace");
        assert!(!with.shade_to_trace(), "marked already: someone else traces it");
        assert!(!without.shade_to_trace(), "no handles: nothing to trace");
        assert_eq!(without.state.load(Ordering::Relaxed) & MARKED, MARKED, "but marked all the same");
    }

    #[test]
    fn tables_sharing_a_cache_entry_evict_each_other_and_keep_their_indexes() {
        // Tables `CACHED * 8` bytes apart share this thread's cache entry.
        static MANY: [VTable; CACHED + 1] =
            [const { VTable { trace: |_, _| {}, drop: |_| {}, type_name: || "many", no_handles: || false, class: 2 } };
                CACHED + 1];
        assert_eq!(std::mem::size_of::<VTable>() % 8, 0);
        let stride = CACHED * 8 / std::mem::size_of::<VTable>();
        let (first, last) = (&MANY[0], &MANY[stride.min(CACHED)]);
        let a = VtRef::new(first);
        let b = VtRef::new(last);
        assert_ne!(a, b);
        assert_eq!(VtRef::new(first), a);
        assert_eq!(VtRef::new(last), b);
        assert!(std::ptr::eq(a.get(), first) && std::ptr::eq(b.get(), last));
    }
}
