//! The header in front of every object, and the per-type table.

use super::trace::Tracer;
use crate::loom::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use crate::loom::LoadSeqCst;

/// Marked: grey or black (shaded this cycle). Which of the two is not
/// recorded: no decision depends on it.
pub(crate) const MARKED: u32 = 1;
/// Allocated while a cycle ran: not old in that cycle.
pub(crate) const NEWBORN: u32 = 4;
/// In `internal`, not `state`: old in the current cycle (counted, and
/// swept if left unmarked). Only the collector reads or writes it.
pub(crate) const OLD: u32 = 1 << 31;
/// Found unreachable: its drop glue runs or has run, its memory is about
/// to be freed. No longer published to the collector.
pub(crate) const GARBAGE: u32 = 16;
/// Under loom: freed at zero (the memory stays allocated until the model
/// ends, so that a collector touching it is caught, not undefined).
#[cfg(loom)]
pub(crate) const FREED: u32 = 32;
/// Under loom: its value was dropped by a claim at zero.
#[cfg(loom)]
pub(crate) const DROPPED: u32 = 64;

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

/// Precedes the value in every box (`#[repr(C)]` `GcBox<T>`).
#[repr(C)]
pub(crate) struct Header {
    /// Handles to this object anywhere (stacks, other objects, slots).
    pub(crate) handles: AtomicU32,
    /// Edges to this object counted by the current cycle, and the [`OLD`]
    /// bit (collector only).
    pub(crate) internal: AtomicU32,
    /// Colour and cycle flags (the constants above). Mutators write only
    /// MARKED (a shade) and, before publishing, the allocation state.
    pub(crate) state: AtomicU32,
    /// [`SPECIAL`] and [`IN_SLOT`]: set by a mutator holding a handle, at
    /// any time, and never cleared. An object with either is never freed
    /// when its last handle goes (`reclaim`): only the collector frees it.
    pub(crate) flags: AtomicU8,
    pub(crate) vt: &'static VTable,
}

impl Header {
    #[inline]
    pub(crate) fn state(&self) -> u32 {
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
        unsafe { (h.as_ref().vt.trace)(h.as_ptr(), t) }
    }
}
