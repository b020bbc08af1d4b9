//! `Gc<T>`: a handle to an object on the shared heap.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

use super::barrier;
use super::header::{Header, VTable, GARBAGE, NEWBORN};
use super::heap;
use super::reclaim;
use super::trace::{Trace, Tracer};
use crate::loom::sync::atomic::Ordering;

/// The allocation behind a `Gc<T>`: header, then value.
#[repr(C)]
pub(crate) struct GcBox<T> {
    pub(crate) header: Header,
    pub(crate) value: T,
}

/// A handle to a value on gort's shared, garbage-collected heap.
///
/// Handles are shared freely between goroutines and threads (`Gc<T>` is
/// `Send + Sync`), cloned cheaply, and may form cycles: the collector frees
/// an object once nothing outside the heap reaches it. `Deref` is a plain
/// load. Interior mutability goes through gort's cells
/// ([`GcMutex`](super::GcMutex), [`GcRwLock`](super::GcRwLock),
/// [`GcAtomic`](super::GcAtomic)), which carry the barriers the concurrent
/// collector needs.
///
/// Dropping the last handle of an object frees it at once, as with `Arc`
/// (its `Drop` runs before that `drop` returns), unless a collection that
/// started before the object was allocated is under way, the object has
/// a weak pointer, finalizer or cleanup, was
/// ever stored in a [`GcAtomic`](super::GcAtomic), or is larger than
/// 32 KiB. Those objects, and cycles, are reclaimed by the collector
/// (automatic when the heap reaches its goal, or
/// [`gort::gc()`](crate::gc())), whose drop goroutine runs their `Drop`,
/// never a collector thread.
///
/// ```
/// use gort::gc::{Gc, GcMutex, Trace};
///
/// #[derive(Trace)]
/// struct Node {
///     id: u32,
///     next: GcMutex<Option<Gc<Node>>>,
/// }
///
/// // A two-node cycle: collected once unreachable, like any garbage in Go.
/// let a = Gc::new(Node { id: 1, next: GcMutex::new(None) });
/// let b = Gc::new(Node { id: 2, next: GcMutex::new(Some(a.clone())) });
/// *a.next.lock() = Some(b.clone());
/// assert_eq!(a.next.lock().as_ref().unwrap().id, 2);
/// drop((a, b));
/// gort::gc();
/// ```
pub struct Gc<T: Trace + Send + Sync + 'static> {
    ptr: NonNull<GcBox<T>>,
    _owns: PhantomData<GcBox<T>>,
}

// SAFETY: `T: Send + Sync`; a handle gives shared access to `T` from any
// thread, and the object is freed only by the collector once unreachable.
unsafe impl<T: Trace + Send + Sync + 'static> Send for Gc<T> {}
// SAFETY: as above.
unsafe impl<T: Trace + Send + Sync + 'static> Sync for Gc<T> {}

impl<T: Trace + Send + Sync + 'static> Gc<T> {
    /// The object's size class, `None` for a large object (under loom,
    /// where objects are boxes, any).
    #[cfg(not(loom))]
    const CLASS: Option<usize> = heap::class_for(std::alloc::Layout::new::<GcBox<T>>());
    #[cfg(loom)]
    const CLASS: Option<usize> = Some(0);

    pub(crate) const VT: VTable = VTable {
        trace: trace_box::<T>,
        drop: drop_box::<T>,
        type_name: std::any::type_name::<T>,
        no_handles: T::holds_no_handles,
        class: match Self::CLASS {
            Some(c) => c as u8,
            None => heap::LARGE,
        },
        #[cfg(loom)]
        dealloc: heap::dealloc_box::<T>,
    };

    /// Moves `value` onto the shared heap and returns the first handle.
    ///
    /// It reads the collector's phase before publishing the object, so an
    /// object allocated during a cycle is neither counted nor swept by it.
    ///
    /// ```
    /// let g = gort::gc::Gc::new(42u64);
    /// assert_eq!(*g, 42);
    /// ```
    pub fn new(value: T) -> Gc<T> {
        let ptr = heap::alloc_object::<T>(value, &Self::VT, Self::CLASS);
        Gc { ptr, _owns: PhantomData }
    }

    /// Whether two handles point to the same object.
    ///
    /// ```
    /// use gort::gc::Gc;
    /// let a = Gc::new(1);
    /// assert!(Gc::ptr_eq(&a, &a.clone()));
    /// assert!(!Gc::ptr_eq(&a, &Gc::new(1)));
    /// ```
    pub fn ptr_eq(a: &Gc<T>, b: &Gc<T>) -> bool {
        a.ptr == b.ptr
    }

    /// The address of the value. It stays valid while a handle (or
    /// [`keep_alive`](crate::keep_alive) later in the code) keeps the
    /// object reachable.
    ///
    /// ```
    /// use gort::gc::Gc;
    /// let a = Gc::new(7u8);
    /// // SAFETY: `a` is alive for this read.
    /// assert_eq!(unsafe { *Gc::as_ptr(&a) }, 7);
    /// ```
    pub fn as_ptr(this: &Gc<T>) -> *const T {
        // SAFETY: the box is live while `this` exists.
        unsafe { &raw const (*this.ptr.as_ptr()).value }
    }

    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the box is live while a handle exists.
        unsafe { &self.ptr.as_ref().header }
    }

    pub(crate) fn header_ptr(&self) -> NonNull<Header> {
        self.ptr.cast()
    }

    /// Turns a counted header pointer back into a handle (the caller gives
    /// up one count of `handles`).
    ///
    /// # Safety
    /// `h` is the header of a live `GcBox<T>`, and the caller owns one
    /// count of its `handles`.
    pub(crate) unsafe fn from_header(h: NonNull<Header>) -> Gc<T> {
        Gc { ptr: h.cast(), _owns: PhantomData }
    }

    /// Gives up the handle without decrementing: its count now belongs to
    /// the caller (see [`from_header`](Self::from_header)).
    pub(crate) fn into_header(self) -> NonNull<Header> {
        let h = self.header_ptr();
        std::mem::forget(self);
        h
    }
}

/// # Safety
/// `h` is the header of a live `GcBox<T>`.
unsafe fn trace_box<T: Trace>(h: *const Header, t: &mut Tracer<'_>) {
    // SAFETY: `h` starts a live `GcBox<T>` (`#[repr(C)]`, header first).
    unsafe { (*h.cast::<GcBox<T>>()).value.trace(t) }
}

/// # Safety
/// `h` is the header of a `GcBox<T>` whose value has not been dropped,
/// and nothing uses the value again.
unsafe fn drop_box<T>(h: *mut Header) {
    // SAFETY: as the caller guarantees.
    unsafe { std::ptr::drop_in_place(&raw mut (*h.cast::<GcBox<T>>()).value) }
}

impl<T: Trace + Send + Sync + 'static> Clone for Gc<T> {
    /// A new handle to the same object. While a collection runs it also
    /// shades the object, so a handle cloned out of an object the collector
    /// has not visited yet is never missed (GC_DESIGN.md: clone shading).
    #[inline]
    fn clone(&self) -> Gc<T> {
        let h = self.header();
        if h.handles.fetch_add(1, Ordering::SeqCst) == u32::MAX {
            std::process::abort();
        }
        if barrier::phase_on() {
            barrier::shade_from_mutator(self.header_ptr());
        }
        Gc { ptr: self.ptr, _owns: PhantomData }
    }
}

impl<T: Trace + Send + Sync + 'static> Drop for Gc<T> {
    /// Gives up the handle. The last handle of an object frees it at once
    /// when no collection is walking the heap, and it has no weak pointer,
    /// finalizer or cleanup and was never stored in a `GcAtomic` (see
    /// [`Gc`]); otherwise the collector frees it.
    #[inline]
    fn drop(&mut self) {
        let h = self.header();
        // The cycle number before the decrement: a cycle that starts after
        // it may free the object once it reads the count at zero, and the
        // object is freed at zero only if no cycle started or ended since.
        let seq = barrier::cycle_seq();
        // Read after the cycle number (model flag `--pf-newborn`): NEWBORN
        // here means the object is not old in cycle `seq` (only the walk
        // that ends a cycle clears it, before the number moves on), so
        // that cycle never frees it and, if the number is unchanged when
        // the count reaches zero, it may be freed at zero even though the
        // cycle is under way (`reclaim::drain`).
        let st = h.state.load(Ordering::Relaxed);
        // A handle inside garbage to other garbage: both die together, and
        // the count of an object being swept is never read again.
        if st & GARBAGE != 0 {
            return;
        }
        let newborn = st & NEWBORN != 0;
        // The only handle, of an object no `GcAtomic::load` or weak
        // upgrade can count a handle to from a pointer: no other thread can
        // change the count, so a plain store replaces the read-modify-write
        // (often a cache miss, and a fence on x86). The Acquire load
        // synchronizes with every earlier decrement, and the flags are read
        // after it: one set before any of those decrements is seen.
        if h.handles.load(Ordering::Acquire) == 1 && h.flags.load(Ordering::Relaxed) == 0 {
            // Ordered before the claim's second read of the cycle number
            // by the fence there (`reclaim::drain`), as the collector's
            // bump is before its reads of counts.
            h.handles.store(0, Ordering::Release);
            reclaim::last_handle_dropped(self.header_ptr(), Self::CLASS, seq, newborn);
        } else if h.handles.fetch_sub(1, Ordering::SeqCst) == 1 {
            reclaim::last_handle_dropped(self.header_ptr(), Self::CLASS, seq, newborn);
        }
    }
}

impl<T: Trace + Send + Sync + 'static> Deref for Gc<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the box is live while a handle exists.
        unsafe { &self.ptr.as_ref().value }
    }
}

impl<T: Trace + Send + Sync + 'static> AsRef<T> for Gc<T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: Trace + Send + Sync + 'static> Borrow<T> for Gc<T> {
    fn borrow(&self) -> &T {
        self
    }
}

// SAFETY: reports exactly the one handle this is.
unsafe impl<T: Trace + Send + Sync + 'static> Trace for Gc<T> {
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        t.edge(self.header_ptr(), self as *const Gc<T> as usize, Self::VT.class);
    }

    #[inline]
    fn trace_slice(slice: &[Self], t: &mut Tracer<'_>) {
        t.edge_run(slice);
    }
}

impl<T: Trace + Send + Sync + 'static + fmt::Debug> fmt::Debug for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: Trace + Send + Sync + 'static + fmt::Display> fmt::Display for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: Trace + Send + Sync + 'static> fmt::Pointer for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Pointer::fmt(&Gc::as_ptr(self), f)
    }
}

impl<T: Trace + Send + Sync + 'static + PartialEq> PartialEq for Gc<T> {
    fn eq(&self, other: &Gc<T>) -> bool {
        **self == **other
    }
}

impl<T: Trace + Send + Sync + 'static + Eq> Eq for Gc<T> {}

impl<T: Trace + Send + Sync + 'static + PartialOrd> PartialOrd for Gc<T> {
    fn partial_cmp(&self, other: &Gc<T>) -> Option<std::cmp::Ordering> {
        (**self).partial_cmp(&**other)
    }
}

impl<T: Trace + Send + Sync + 'static + Ord> Ord for Gc<T> {
    fn cmp(&self, other: &Gc<T>) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl<T: Trace + Send + Sync + 'static + Hash> Hash for Gc<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}
