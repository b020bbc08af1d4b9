//! The heap under loom, and what the loom models use of the collector
//! (`gort::__loom::gc`).
//!
//! Each object is a `Box`. Nothing is published: a model names the objects
//! a cycle works on itself (the C3 snapshot), and gets the garbage the real
//! cycle steps (`cycle.rs`) choose one object at a time, the moment it is
//! chosen. Nothing is swept: the model frees every object when its
//! execution ends.

use std::alloc::Layout;
use std::ptr::NonNull;

use super::barrier::{self, Obj};
use super::cycle::{self, Objects};
use super::handle::{Gc, GcBox};
use super::header::{Header, VTable, VtRef, DROPPED, FREED, GARBAGE, MARKED, NEWBORN};
use super::trace::Trace;
use crate::loom::sync::atomic::{AtomicU32, AtomicU8};

/// The class `Gc`'s table gives a large object (under loom, never: every
/// object is a box of class 0).
pub(crate) const LARGE: u8 = u8::MAX;

/// Allocates a `GcBox<T>` holding `value`, with one handle (the protocol
/// of `heap::alloc_object`: the phase is read before the object exists).
pub(crate) fn alloc_object<T>(value: T, vt: &'static VTable, _class: Option<usize>) -> NonNull<GcBox<T>> {
    let on = barrier::phase_on();
    let state = if on { NEWBORN | MARKED } else { 0 };
    let header = Header {
        handles: AtomicU32::new(1),
        state: AtomicU8::new(state),
        flags: AtomicU8::new(0),
        vt: VtRef::new(vt),
        internal: AtomicU32::new(0),
    };
    NonNull::from(Box::leak(Box::new(GcBox { header, value })))
}

/// The collector's count of `o` (`heap::internal`): a header field here,
/// objects being boxes with no span.
///
/// # Safety
/// `o` is allocated for as long as the reference is used.
pub(crate) unsafe fn internal<'a>(o: super::barrier::Obj) -> &'a AtomicU32 {
    // SAFETY: as the caller guarantees.
    unsafe { &(*o.0.as_ptr()).internal }
}

/// [`internal`] from the header, as `heap::internal_of_slot` finds it from
/// a slot's address and class (boxes keep it in the header).
///
/// # Safety
/// As [`internal`].
pub(crate) unsafe fn internal_of_slot<'a>(h: NonNull<Header>, _class: u8) -> &'a AtomicU32 {
    // SAFETY: as the caller guarantees.
    unsafe { &(*h.as_ptr()).internal }
}

/// # Safety
/// `h` is the header of a box from [`alloc_object`] whose value has been
/// dropped, and nothing uses it again.
pub(crate) unsafe fn dealloc_box<T>(h: *mut Header) {
    // SAFETY: allocated by `Box::new` with this layout (the value is
    // dropped already, so the memory is freed without dropping it again).
    unsafe { std::alloc::dealloc(h.cast(), Layout::new::<GcBox<T>>()) }
}

/// An object, as the models name it: the header of a `Gc`'s box.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Object(Obj);

// SAFETY: an `Object` is a name: it gives access to the object only
// through `collect` and `free`, whose contracts cover sharing.
unsafe impl Sync for Object {}

impl Object {
    /// The object `g` points to.
    pub fn of<T: Trace + Send + Sync + 'static>(g: &Gc<T>) -> Object {
        Object(Obj(g.header_ptr()))
    }
}

impl Objects for [Object] {
    type Item = Object;
    fn for_each(&self, f: impl FnMut(Object)) {
        self.iter().copied().for_each(f)
    }
    fn obj(o: &Object) -> Obj {
        o.0
    }
}

/// The walks of [`collect_split`]: each split over two threads, a loom
/// thread taking the second half of the objects (in the given order)
/// while the collector's takes the first.
struct Split<'a>(&'a [Object]);

impl Objects for Split<'_> {
    type Item = Object;
    fn for_each(&self, f: impl FnMut(Object)) {
        self.0.iter().copied().for_each(f)
    }
    fn walkers(&self) -> usize {
        2
    }
    fn for_each_split<S: Send>(
        &self,
        _walkers: usize,
        make: impl Fn() -> S + Sync,
        f: impl Fn(&mut S, Object) + Sync,
    ) -> Vec<S> {
        let (mine, theirs) = self.0.split_at(self.0.len() / 2);
        let mut out: Option<S> = None;
        let slot = &mut out;
        // Joined before `make`, `f`, `theirs` and `out` go out of scope,
        // on return and on unwinding alike.
        struct Join(Option<loom::thread::JoinHandle<()>>);
        impl Drop for Join {
            fn drop(&mut self) {
                if let Some(h) = self.0.take() {
                    let r = h.join();
                    if !std::thread::panicking() {
                        r.expect("gort: a split walk's helper panicked");
                    }
                }
            }
        }
        let work: Box<dyn FnOnce() + Send + '_> = Box::new(|| {
            let mut st = make();
            theirs.iter().for_each(|&o| f(&mut st, o));
            *slot = Some(st);
        });
        // SAFETY: only the lifetime changes: the thread running `work` is
        // joined (`Join`) before what it borrows (`make`, `f`, `theirs`,
        // `out`) goes, and `out` is not read until then.
        let work: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(work) };
        let join = Join(Some(loom::thread::spawn(work)));
        let mut st = make();
        mine.iter().for_each(|&o| f(&mut st, o));
        drop(join);
        let theirs = out.take().expect("gort: a split walk's helper left no state");
        vec![st, theirs]
    }
    fn obj(o: &Object) -> Obj {
        o.0
    }
}

/// As [`collect`], with every walk split over two threads (the collector's
/// and a helper).
pub fn collect_split(objects: &[Object], mut dead: impl FnMut(Object)) -> Collected {
    let mut dead = |o: Object| {
        // SAFETY: the model's objects are allocated until it ends.
        let st = unsafe { o.0 .0.as_ref() }.state.load(crate::loom::sync::atomic::Ordering::SeqCst);
        assert!(st & (FREED | DROPPED) == 0, "gort: the collector chose an object claimed at zero");
        dead(o)
    };
    let out = cycle::run(&Split(objects), |_| {}, &mut dead, |_| 0);
    Collected { double: out.double, finalizers: out.finalizers, cleanups: out.cleanups }
}

/// What [`collect`] found besides the garbage.
pub struct Collected {
    /// The type whose `Trace` impl reported a handle twice, if one did.
    pub double: Option<&'static str>,
    /// Finalizers queued (each with its resurrected object's handle).
    pub finalizers: Vec<Box<dyn FnOnce() + Send>>,
    /// Cleanups of the garbage.
    pub cleanups: Vec<Box<dyn FnOnce() + Send>>,
}

/// Runs one real collection cycle over `objects`, visited in that order,
/// up to the choice of garbage (C1–C9, C10's choice). `dead` gets each
/// object found garbage the moment it is marked so, before the next object
/// is looked at.
pub fn collect(objects: &[Object], mut dead: impl FnMut(Object)) -> Collected {
    let mut dead = |o: Object| {
        // SAFETY: the model's objects are allocated until it ends.
        let st = unsafe { o.0 .0.as_ref() }.state.load(crate::loom::sync::atomic::Ordering::SeqCst);
        assert!(st & (FREED | DROPPED) == 0, "gort: the collector chose an object claimed at zero");
        dead(o)
    };
    let out = cycle::run(objects, |_| {}, &mut dead, |_| 0);
    Collected { double: out.double, finalizers: out.finalizers, cleanups: out.cleanups }
}

/// The objects a model's cycles walk, where a mutator may publish the
/// object it allocates while a cycle runs (as the real heap's allocation
/// byte does): every walk visits the objects published when it starts.
/// Publishing and each walk's start are read-modify-writes of one loom
/// word, so that loom orders them.
pub struct Published {
    objs: std::sync::Mutex<Vec<Object>>,
    /// How many objects are published: a walk visits that many (the
    /// read-modify-write that reads it synchronizes with the publisher's,
    /// as the real walk's read of an allocation byte does).
    len: crate::loom::sync::atomic::AtomicUsize,
}

impl Published {
    /// A list holding `objs`.
    pub fn new(objs: &[Object]) -> Published {
        Published {
            objs: std::sync::Mutex::new(objs.to_vec()),
            len: crate::loom::sync::atomic::AtomicUsize::new(objs.len()),
        }
    }

    /// Publishes `o` (just allocated) to the walks that start from now.
    pub fn publish(&self, o: Object) {
        self.objs.lock().unwrap().push(o);
        self.len.fetch_add(1, crate::loom::sync::atomic::Ordering::SeqCst);
    }

    /// Every object published so far.
    fn all(&self) -> Vec<Object> {
        let n = self.len.fetch_add(0, crate::loom::sync::atomic::Ordering::SeqCst);
        self.objs.lock().unwrap()[..n].to_vec()
    }
}

/// The walks of [`collect_published`]: forward or reversed.
struct Walk<'a>(&'a Published, bool);

impl Objects for Walk<'_> {
    type Item = Object;
    fn for_each(&self, f: impl FnMut(Object)) {
        let mut v = self.0.all();
        if self.1 {
            v.reverse();
        }
        v.into_iter().for_each(f)
    }
    fn obj(o: &Object) -> Obj {
        o.0
    }
}

/// As [`collect`], over the objects of `objects` published when each walk
/// starts, visited in publication order or (`rev`) reversed.
pub fn collect_published(objects: &Published, rev: bool, mut dead: impl FnMut(Object)) -> Collected {
    let mut dead = |o: Object| {
        // SAFETY: the model's objects are allocated until it ends.
        let st = unsafe { o.0 .0.as_ref() }.state.load(crate::loom::sync::atomic::Ordering::SeqCst);
        assert!(st & (FREED | DROPPED) == 0, "gort: the collector chose an object claimed at zero");
        dead(o)
    };
    let out = cycle::run(&Walk(objects, rev), |_| {}, &mut dead, |_| 0);
    Collected { double: out.double, finalizers: out.finalizers, cleanups: out.cleanups }
}

/// Whether the next cycles' counts skip hot cells (`cell::SKIP_HOT`, the
/// pacer's cycles) or count every cell (`gort::gc()`'s), for the rest of
/// the execution.
pub fn skip_hot(on: bool) {
    super::cell::set_skip_hot(on)
}

/// The fewest handles a young cell holds for the counts that skip hot
/// cells to skip it too (`cell::YOUNG_SKIP_MIN`; none by default), for
/// the rest of the execution.
pub fn young_skip_min(n: usize) {
    super::cell::set_young_skip_min(n)
}

/// The fewest handles a cell holds for the count to keep its children
/// (`snapshot::min_handles`; none by default), for the rest of the
/// execution.
pub fn snap_min(n: usize) {
    super::snapshot::set_min_handles(n)
}

/// Whether the collector's phase is on.
pub fn phase_on() -> bool {
    barrier::phase_on()
}

/// Drops every object's value (handles between them are decremented or
/// ignored as the sweep does), then frees them all.
///
/// # Safety
/// The objects are distinct, no handle to any of them is used again, and
/// every handle their values hold points into `objects`.
pub unsafe fn free(objects: &[Object]) {
    // As the sweep: handles between them are not decremented (nor their
    // targets freed at zero).
    for o in objects {
        // SAFETY: every object is still allocated.
        let h = unsafe { o.0 .0.as_ref() };
        h.state.store(
            h.state.load(crate::loom::sync::atomic::Ordering::SeqCst) | GARBAGE,
            crate::loom::sync::atomic::Ordering::SeqCst,
        );
    }
    for o in objects {
        let h = o.0 .0.as_ptr();
        // Claimed at zero: its value is dropped already.
        // SAFETY: every object is still allocated (pass 2 frees them).
        if unsafe { (*h).state.load(crate::loom::sync::atomic::Ordering::SeqCst) } & DROPPED != 0 {
            continue;
        }
        // SAFETY: every object is still allocated (pass 2 frees them), and
        // the caller gives up all handles to them.
        unsafe { ((*h).vt.get().drop)(h) };
    }
    for o in objects {
        let h = o.0 .0.as_ptr();
        // SAFETY: the value is dropped, and nothing refers to it any more.
        unsafe { ((*h).vt.get().dealloc)(h) };
    }
}
