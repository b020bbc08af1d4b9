//! `Weak<T>`: Go 1.24's `weak.Pointer`.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

use super::barrier::Obj;
use super::handle::Gc;
use super::special::{self, WeakCell};
use super::trace::Trace;
use crate::loom::sync::atomic::AtomicBool;

/// A weak pointer to a [`Gc`] object (Go 1.24's `weak.Pointer`): it does
/// not keep the object alive, and [`upgrade`](Weak::upgrade) returns a
/// handle to it until the collector finds it unreachable, `None` after.
///
/// Weak pointers made from the same object compare equal, even after it
/// is collected (Go's `weak.Make` rule). They are cleared before the
/// object's finalizer is queued and stay cleared if the finalizer
/// resurrects it. A `Weak` holds no handle: it is not traced, and may be
/// kept anywhere, including inside the object it points to.
///
/// ```
/// use gort::gc::Gc;
/// use gort::weak::Weak;
///
/// let page = Gc::new(String::from("cached page"));
/// let w = Weak::new(&page);
/// assert_eq!(w.upgrade().as_deref().map(String::as_str), Some("cached page"));
/// drop(page);
/// gort::gc();
/// assert!(w.upgrade().is_none());
/// ```
pub struct Weak<T: Trace + Send + Sync + 'static> {
    cell: Arc<WeakCell>,
    _t: PhantomData<fn() -> Gc<T>>,
}

impl<T: Trace + Send + Sync + 'static> Weak<T> {
    /// A weak pointer to `gc`'s object (Go's `weak.Make`). Not a barrier:
    /// it never touches the object's handles.
    ///
    /// ```
    /// use gort::gc::Gc;
    /// use gort::weak::Weak;
    ///
    /// let g = Gc::new(1);
    /// assert_eq!(Weak::new(&g), Weak::new(&g));
    /// ```
    pub fn new(gc: &Gc<T>) -> Weak<T> {
        let h = gc.header_ptr();
        let cell = special::with_entry(h, |e| {
            e.weak.get_or_insert_with(|| Arc::new(WeakCell { obj: Obj(h), cleared: AtomicBool::new(false) })).clone()
        });
        Weak { cell, _t: PhantomData }
    }

    /// A new handle to the object, or `None` if the collector has found
    /// it unreachable (Go's `Pointer.Value`). During the few microseconds
    /// between the end of a cycle's marking and the clearing of weak
    /// pointers, an upgrade of an object the cycle did not mark waits for
    /// the outcome instead of guessing.
    ///
    /// ```
    /// use gort::gc::Gc;
    /// use gort::weak::Weak;
    ///
    /// let g = Gc::new([1, 2, 3]);
    /// let w = Weak::new(&g);
    /// assert!(Gc::ptr_eq(&w.upgrade().unwrap(), &g));
    /// ```
    pub fn upgrade(&self) -> Option<Gc<T>> {
        // SAFETY: `upgrade` returns a counted handle to the cell's object,
        // which is a `GcBox<T>` (the cell was made from a `Gc<T>`).
        special::upgrade(&self.cell).map(|h| unsafe { Gc::from_header(h) })
    }
}

impl<T: Trace + Send + Sync + 'static> Clone for Weak<T> {
    fn clone(&self) -> Self {
        Weak { cell: self.cell.clone(), _t: PhantomData }
    }
}

impl<T: Trace + Send + Sync + 'static> PartialEq for Weak<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }
}

impl<T: Trace + Send + Sync + 'static> Eq for Weak<T> {}

impl<T: Trace + Send + Sync + 'static> Hash for Weak<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.cell).hash(state)
    }
}

impl<T: Trace + Send + Sync + 'static> fmt::Debug for Weak<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(Weak)")
    }
}

// SAFETY: a weak pointer holds no handle; it reports nothing.
unsafe impl<T: Trace + Send + Sync + 'static> Trace for Weak<T> {
    fn trace(&self, _: &mut super::trace::Tracer<'_>) {}
}
