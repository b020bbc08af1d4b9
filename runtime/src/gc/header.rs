//! The header in front of every object, and the per-type table.

use super::trace::Tracer;
use crate::loom::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use crate::loom::LoadSeqCst;
use std::collections::HashMap;
use std::sync::atomic::AtomicPtr;
use std::sync::Mutex;

/// Marked: grey or black (shaded this cycle). Which of the two is not
/// recorded: no decision depends on it.
pub(crate) const MARKED: u8 = 1;
/// Allocated while a cycle ran: not old in that cycle.
pub(crate) const NEWBORN: u8 = 4;
/// In `internal`, not `state`: old in the current cycle (counted, and
/// swept if left unmarked). Only the collector reads or writes it.
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
    /// Frees the box (dropped value) under loom, where objects are boxes.
    #[cfg(loom)]
    pub(crate) dealloc: unsafe fn(*mut Header),
}

/// Precedes the value in every box (`#[repr(C)]` `GcBox<T>`): 16 bytes, so
/// a box of two handles fills a 32-byte slot (Go's header is the span's
/// bitmap, 0 bytes per object; 16 bytes is what the counts and the state
/// need).
#[repr(C)]
pub(crate) struct Header {
    /// Handles to this object anywhere (stacks, other objects, slots).
    pub(crate) handles: AtomicU32,
    /// Edges to this object counted by the current cycle, and the [`OLD`]
    /// bit (collector only).
    pub(crate) internal: AtomicU32,
    /// Colour and cycle flags (the constants above). Mutators write only
    /// MARKED (a shade) and, before publishing, the allocation state.
    pub(crate) state: AtomicU8,
    /// [`SPECIAL`] and [`IN_SLOT`]: set by a mutator holding a handle, at
    /// any time, and never cleared. An object with either is never freed
    /// when its last handle goes (`reclaim`): only the collector frees it.
    pub(crate) flags: AtomicU8,
    /// The value's [`VTable`].
    pub(crate) vt: VtRef,
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

    /// Old in the current cycle (collector only).
    #[inline]
    pub(crate) fn is_old(&self) -> bool {
        self.internal.load(Ordering::Relaxed) & OLD != 0
    }

    /// Sets the marked bit; true if this call turned the object from white
    /// to grey (the caller must then queue it for tracing).
    #[inline]
    pub(crate) fn shade(&self) -> bool {
        #[cfg(loom)]
        assert!(self.state.load(Ordering::SeqCst) & FREED == 0, "gort: shaded an object freed at zero");
        self.state.load(Ordering::Relaxed) & MARKED == 0 && self.state.fetch_or(MARKED, Ordering::SeqCst) & MARKED == 0
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
        // SAFETY: the caller guarantees the object is live; `vt` matches it.
        unsafe { (h.as_ref().vt.get().trace)(h.as_ptr(), t) }
    }
}

/// A `&'static VTable` in 32 bits, so that the header is 16 bytes.
///
/// Tables are constants promoted to statics of the binary that names the
/// type, so almost always within a few GiB of [`ANCHOR`]: such a table is
/// its distance from the anchor in units of 4 bytes (tables are 8-aligned,
/// so the low bit is 0). A table out of that reach (another shared object
/// loaded far away) gets a slot in [`FAR`] instead, the index tagged with
/// the low bit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(transparent)]
pub(crate) struct VtRef(u32);

/// The point tables are measured from (8-aligned, like every table).
static ANCHOR: VTable = VTable {
    trace: |_, _| {},
    drop: |_| {},
    type_name: || "gort::gc anchor",
    #[cfg(loom)]
    dealloc: |_| {},
};

/// Tables out of reach of [`ANCHOR`], by [`VtRef`] index; filled once each
/// under [`FAR_INDEX`], read without a lock.
static FAR: [AtomicPtr<VTable>; FAR_MAX] = [const { AtomicPtr::new(std::ptr::null_mut()) }; FAR_MAX];
const FAR_MAX: usize = 4096;
static FAR_INDEX: Mutex<Option<HashMap<usize, u32>>> = Mutex::new(None);

impl VtRef {
    /// The reference for `vt` (per allocation: a subtraction and a range
    /// check, unless `vt` is out of reach).
    #[inline]
    pub(crate) fn new(vt: &'static VTable) -> VtRef {
        // The address is exposed so that `get` may turn it back into a
        // pointer with this provenance.
        let off = (vt as *const VTable).expose_provenance().wrapping_sub((&raw const ANCHOR).addr()) as isize;
        let q = off >> 2;
        if q as i32 as isize == q {
            VtRef(q as i32 as u32)
        } else {
            Self::far(vt)
        }
    }

    #[cold]
    #[inline(never)]
    fn far(vt: &'static VTable) -> VtRef {
        let key = (vt as *const VTable).addr();
        let mut index = FAR_INDEX.lock().unwrap_or_else(|e| e.into_inner());
        let index = index.get_or_insert_with(HashMap::new);
        if let Some(&i) = index.get(&key) {
            return VtRef(i << 1 | 1);
        }
        let i = index.len();
        assert!(
            i < FAR_MAX,
            "gort: more than {FAR_MAX} types of Gc objects whose code lies over 8 GiB from gort's; \
             link gort and the crates defining them into one binary"
        );
        FAR[i].store((vt as *const VTable).cast_mut(), std::sync::atomic::Ordering::Release);
        index.insert(key, i as u32);
        VtRef((i as u32) << 1 | 1)
    }

    /// The table.
    #[inline]
    pub(crate) fn get(self) -> &'static VTable {
        if self.0 & 1 == 0 {
            let addr = (&raw const ANCHOR).addr().wrapping_add_signed((self.0 as i32 as isize) << 2);
            // SAFETY: `new` made this from the exposed address of a
            // `&'static VTable`, which is valid for ever.
            unsafe { &*std::ptr::with_exposed_provenance::<VTable>(addr) }
        } else {
            let p = FAR[(self.0 >> 1) as usize].load(std::sync::atomic::Ordering::Acquire);
            // SAFETY: `far` stored a `&'static VTable` in this slot before
            // the reference tagged with its index was made (the header
            // holding it is published after, with a release store).
            unsafe { &*p }
        }
    }
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Header>() == 16);

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    static NEAR: VTable = VTable { trace: |_, _| {}, drop: |_| {}, type_name: || "near" };
    static FAR_ONE: VTable = VTable { trace: |_, _| {}, drop: |_| {}, type_name: || "far one" };
    static FAR_TWO: VTable = VTable { trace: |_, _| {}, drop: |_| {}, type_name: || "far two" };

    #[test]
    fn a_table_in_reach_round_trips_through_its_offset() {
        let r = VtRef::new(&NEAR);
        assert_eq!(r.0 & 1, 0, "a table in this binary is within reach of the anchor");
        assert!(std::ptr::eq(r.get(), &NEAR));
        assert_eq!((r.get().type_name)(), "near");
        assert!(std::ptr::eq(VtRef::new(&ANCHOR).get(), &ANCHOR));
    }

    #[test]
    fn a_table_out_of_reach_gets_one_far_slot() {
        let (a, b) = (VtRef::far(&FAR_ONE), VtRef::far(&FAR_TWO));
        assert_eq!((a.0 & 1, b.0 & 1), (1, 1));
        assert_ne!(a, b);
        assert_eq!(VtRef::far(&FAR_ONE), a, "registered once");
        assert_eq!((a.get().type_name)(), "far one");
        assert_eq!((b.get().type_name)(), "far two");
    }
}
