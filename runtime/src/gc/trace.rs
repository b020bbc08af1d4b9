//! The `Trace` trait: how the collector finds the `Gc` handles a value owns.

use std::ptr::NonNull;

use super::barrier::{push_grey, refill_grey, Obj};
use super::handle::Gc;
use super::header::Header;

/// A value whose `Gc` handles the collector can find.
///
/// `trace` reports every [`Gc`](super::Gc) handle the value owns — directly
/// or through owned containers — by calling `trace` on each field that
/// holds one. Derive it with `#[derive(Trace)]`; impls exist for std's
/// owning types (`Vec`, `Box`, `Option`, `HashMap`, tuples, arrays, ...)
/// and for gort's cells.
///
/// There is deliberately no impl for `Arc`, `Rc`, references, raw pointers
/// or std's cells: a handle behind shared ownership or a lock the collector
/// cannot see would be counted wrongly. Put such a field behind
/// `#[trace(skip)]`: handles the collector never sees stay roots (a cycle
/// through them is never collected, like an `Arc` cycle).
///
/// ```
/// use gort::gc::{Gc, Trace};
///
/// #[derive(Trace)]
/// struct Node {
///     name: String,
///     next: Option<Gc<Node>>,
/// }
///
/// let tail = Gc::new(Node { name: "tail".into(), next: None });
/// let head = Gc::new(Node { name: "head".into(), next: Some(tail) });
/// assert_eq!(head.next.as_ref().unwrap().name, "tail");
/// ```
///
/// # Safety
///
/// `trace` must report each handle the value owns exactly once, report no
/// handle it does not own, and not create or drop handles. Reporting a
/// handle twice is detected by the collector (it panics naming the type)
/// and never freed early; reporting a handle the value does not own can
/// free a live object. The type's drop glue must not dereference a `Gc`
/// it reports: the sweep drops all garbage before freeing any, so such a
/// handle may point to a value already dropped (`#[derive(Trace)]`
/// enforces this by forbidding `Drop` impls).
///
/// The hidden method `holds_no_handles` is for `#[derive(Trace)]` and
/// gort's own impls: an impl that overrides it returns `true` only if
/// `trace` reports nothing for every value of the type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `gort::gc::Trace`, so the collector cannot find the handles in it",
    label = "the collector cannot trace this",
    note = "derive it with `#[derive(Trace)]`, or mark the field `#[trace(skip)]` (its handles then stay roots)"
)]
pub unsafe trait Trace {
    /// Reports each `Gc` handle owned by `self` to `tracer`, by calling
    /// `Trace::trace` on every field that may hold one.
    fn trace(&self, tracer: &mut Tracer<'_>);

    /// Traces each element of `slice`: what the impls for slices, arrays,
    /// `Vec` and `VecDeque` call. `Gc<T>` copies a run of handles at once
    /// (a cell of 10,000 handles is copied while the cell is held: by the
    /// collector, or by a mutator's barrier); other types need not
    /// override it, and an override must report exactly what tracing each
    /// element would.
    #[doc(hidden)]
    #[inline]
    fn trace_slice(slice: &[Self], tracer: &mut Tracer<'_>)
    where
        Self: Sized,
    {
        for x in slice {
            x.trace(tracer);
        }
    }

    /// Whether no value of the type holds a handle: `trace` then reports
    /// nothing, whatever the value, and the collector never calls it for
    /// an object of the type (its count and its mark skip the call, an
    /// indirect one per object: a heap of small leaves is mostly such
    /// calls). `false`, the default, is always right. A wrong `true`
    /// frees nothing early, since the count and the mark both skip the
    /// object: the handles in it then count as held from outside the heap
    /// (roots), and a cycle through the type is never collected.
    /// Overridden by the impls for std's leaf types (`true`), for
    /// containers (their elements' answer) and by `#[derive(Trace)]` (all
    /// traced fields' answer, through [`NoHandlesProbe`]).
    #[doc(hidden)]
    #[inline]
    fn holds_no_handles() -> bool
    where
        Self: Sized,
    {
        false
    }
}

/// How `#[derive(Trace)]` asks a field's type for
/// [`Trace::holds_no_handles`], which needs a sized type, when the type
/// may be unsized (a last field of type `str`, or `T: ?Sized`):
/// `(&&NoHandlesProbe::<F>::NEW).holds_no_handles()` resolves to
/// [`ProbeSized`] where `F: Trace` is known sized, and otherwise to
/// [`ProbeAny`], which answers `false`. Method resolution picks the first
/// at the derive's expansion, so a generic `T: ?Sized` field answers
/// `false` even for a sized `T`: sound, only slower.
#[doc(hidden)]
pub struct NoHandlesProbe<T: ?Sized>(std::marker::PhantomData<T>);

impl<T: ?Sized> NoHandlesProbe<T> {
    #[doc(hidden)]
    pub const NEW: NoHandlesProbe<T> = NoHandlesProbe(std::marker::PhantomData);
}

/// See [`NoHandlesProbe`].
#[doc(hidden)]
pub trait ProbeSized {
    fn holds_no_handles(&self) -> bool;
}

impl<T: Trace> ProbeSized for &NoHandlesProbe<T> {
    #[inline]
    fn holds_no_handles(&self) -> bool {
        T::holds_no_handles()
    }
}

/// See [`NoHandlesProbe`].
#[doc(hidden)]
pub trait ProbeAny {
    fn holds_no_handles(&self) -> bool;
}

impl<T: ?Sized> ProbeAny for NoHandlesProbe<T> {
    #[inline]
    fn holds_no_handles(&self) -> bool {
        false
    }
}

/// What a [`Trace`] impl reports handles to. Its only use is to be passed
/// on to the fields' `trace`.
pub struct Tracer<'a> {
    sink: Sink<'a>,
    mode: Mode,
    /// Edges reported so far.
    reported: usize,
    /// Cells entered and not yet left ([`enter_cell`](Self::enter_cell)).
    depth: u32,
}

/// Where the class sits in an [`edge_key`].
const CLASS_SHIFT: u32 = 56;

/// An edge's key in [`Tracer::edges`]' output: the handle's address, with
/// the object's size class in the top byte (addresses are below 2^56 on
/// every 64-bit target Rust supports). The same handle always has the same
/// key, so keys find a handle reported twice; and the count pass finds the
/// child's count from its address and this class without reading the
/// child's header (a cache miss per edge).
#[inline]
pub(crate) fn edge_key(at: usize, class: u8) -> usize {
    debug_assert!(at >> CLASS_SHIFT == 0, "handle address {at:#x} uses the top byte");
    at | (class as usize) << CLASS_SHIFT
}

/// The object's size class in an [`edge_key`].
#[inline]
pub(crate) fn edge_class(key: usize) -> u8 {
    (key >> CLASS_SHIFT) as u8
}

/// Where a [`Tracer`] puts the edges reported to it. The two buffers are
/// pushed to inline, in the loop of the `Trace` impl that reports them (a
/// `Vec<Gc<T>>` of 10,000 handles is then a copy loop, not 10,000
/// indirect calls): the collector and the cell barriers copy cells'
/// handles while holding the cell, so their cost per edge is the cell's
/// hold time.
enum Sink<'a> {
    /// (object, [`edge_key`]) pairs, appended.
    Edges(&'a mut Vec<(Obj, usize)>),
    /// A thread's grey buffer (locked), each object queued as a pending
    /// entry (`barrier::Entered::queue_all`).
    Pending(&'a mut Vec<Obj>),
    /// The collector's mark stack, each object pushed as a pending entry
    /// (shaded when the drain pops it), the stack growing as needed.
    Stack(&'a mut Vec<Obj>),
    /// Nowhere: only [`Tracer::reported`] counts them (the size of a
    /// young cell, `cell.rs`).
    Count,
}

/// Who traces, which decides how a cell nested in the traced value is read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// The collector marking (or a mark assist): it leaves a cell whose
    /// record says its children are roots or queued already
    /// (`cell::RawRw::needs_trace`), try-locks the others and skips a busy
    /// one (its holder's barrier queued the children).
    Collector,
    /// The collector counting (C4): as `Collector`, and it also skips a
    /// cell a barrier reached first in this cycle (`cell::barrier_shade`),
    /// whose children then stay roots.
    Count,
    /// A mutator's barrier on an exclusive acquisition (`GcMutex`, a
    /// `GcRwLock` write). Cells nested in the value are read without their
    /// locks: only the holder can reach them (and the collector, which just
    /// reads), and through its `&mut` it can move one out and empty it with
    /// `into_inner`, which runs no barrier. So their children are shaded
    /// too, as PROTOCOL.md asks for every child of the value.
    ExclusiveBarrier,
    /// A mutator's barrier on a shared acquisition (a `GcRwLock` read).
    /// Cells nested in the value are skipped: through `&T` their contents
    /// are reached only by acquiring them, which runs their own barrier.
    SharedBarrier,
}

impl<'a> Tracer<'a> {
    /// A tracer that appends (object, address of the handle) per edge to
    /// `edges`.
    pub(crate) fn edges(mode: Mode, edges: &'a mut Vec<(Obj, usize)>) -> Tracer<'a> {
        Tracer { sink: Sink::Edges(edges), mode, reported: 0, depth: 0 }
    }

    /// A tracer that queues each edge's object on `grey`, the calling
    /// thread's locked grey buffer, as a pending entry.
    pub(crate) fn pending(mode: Mode, grey: &'a mut Vec<Obj>) -> Tracer<'a> {
        Tracer { sink: Sink::Pending(grey), mode, reported: 0, depth: 0 }
    }

    /// A tracer that only counts the edges reported to it.
    pub(crate) fn counting(mode: Mode) -> Tracer<'static> {
        Tracer { sink: Sink::Count, mode, reported: 0, depth: 0 }
    }

    /// A tracer that pushes each edge's object on the collector's mark
    /// stack as a pending entry.
    pub(crate) fn stack(mode: Mode, stack: &'a mut Vec<Obj>) -> Tracer<'a> {
        Tracer { sink: Sink::Stack(stack), mode, reported: 0, depth: 0 }
    }

    /// Reports one handle: the object it points to, where the handle
    /// itself lives (which tells a handle reported twice from two handles
    /// to the same object) and the object's size class (`VTable::class`,
    /// known from the handle's type).
    #[inline]
    pub(crate) fn edge(&mut self, obj: NonNull<Header>, at: usize, class: u8) {
        self.reported += 1;
        match &mut self.sink {
            Sink::Edges(v) => v.push((Obj(obj), edge_key(at, class))),
            Sink::Pending(grey) => push_grey(grey, Obj::pending(obj)),
            Sink::Stack(v) => v.push(Obj::pending(obj)),
            Sink::Count => {}
        }
    }

    /// Reports a run of handles, as [`edge`](Self::edge) each would:
    /// appended with one capacity check per buffer chunk, so the copy
    /// loop has no branch per handle.
    #[inline]
    pub(crate) fn edge_run<T: Trace + Send + Sync + 'static>(&mut self, run: &[Gc<T>]) {
        self.reported += run.len();
        match &mut self.sink {
            Sink::Edges(v) => v.extend(
                run.iter().map(|g| (Obj(g.header_ptr()), edge_key(g as *const Gc<T> as usize, Gc::<T>::VT.class))),
            ),
            Sink::Stack(v) => v.extend(run.iter().map(|g| Obj::pending(g.header_ptr()))),
            Sink::Count => {}
            Sink::Pending(grey) => {
                let mut rest = run;
                while !rest.is_empty() {
                    let room = grey.capacity() - grey.len();
                    if room == 0 {
                        refill_grey(grey);
                        continue;
                    }
                    let (now, later) = rest.split_at(room.min(rest.len()));
                    grey.extend(now.iter().map(|g| Obj::pending(g.header_ptr())));
                    rest = later;
                }
            }
        }
    }

    /// Pushes `run` (plain entries: the children a count kept,
    /// `snapshot.rs`) as pending entries, as reporting each handle would.
    /// Only the mark's tracers (a stack) take them.
    pub(crate) fn pending_run(&mut self, run: &[Obj]) {
        self.reported += run.len();
        match &mut self.sink {
            Sink::Stack(v) => v.extend(run.iter().map(|o| Obj::pending(o.0))),
            _ => unreachable!("a kept list traced by a tracer of mode {:?}", self.mode),
        }
    }

    /// The length of an edge buffer (0 for other sinks): where the edges
    /// reported next start.
    pub(crate) fn edges_len(&self) -> usize {
        match &self.sink {
            Sink::Edges(v) => v.len(),
            _ => 0,
        }
    }

    /// The edges appended to an edge buffer since it was `at` long (none
    /// for other sinks).
    pub(crate) fn edges_since(&self, at: usize) -> &[(Obj, usize)] {
        match &self.sink {
            Sink::Edges(v) => &v[at..],
            _ => &[],
        }
    }

    /// Enters a cell's value: whether it is nested in no other cell's
    /// value traced by this tracer. [`leave_cell`](Self::leave_cell) after.
    pub(crate) fn enter_cell(&mut self) -> bool {
        self.depth += 1;
        self.depth == 1
    }

    /// Leaves the value [`enter_cell`](Self::enter_cell) entered.
    pub(crate) fn leave_cell(&mut self) {
        self.depth -= 1;
    }

    /// How many edges were reported to this tracer.
    pub(crate) fn reported(&self) -> usize {
        self.reported
    }

    /// Who traces (see [`Mode`]).
    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A run reports what tracing each handle would, in order, to both
    /// sinks (the pending one within its chunk's room: a run crossing it
    /// hands a chunk to the collector, which a unit test must not do).
    #[test]
    fn a_run_of_handles_reports_each_handle_once_in_order() {
        let v: Vec<Gc<u64>> = (0..100).map(Gc::new).collect();
        let (mut one, mut run) = (Vec::new(), Vec::new());
        for g in &v {
            g.trace(&mut Tracer::edges(Mode::Collector, &mut one));
        }
        let mut t = Tracer::edges(Mode::Collector, &mut run);
        v.trace(&mut t);
        assert_eq!(t.reported(), 100);
        assert_eq!(run, one);
        assert_eq!(run[7], (Obj(v[7].header_ptr()), edge_key(&v[7] as *const Gc<u64> as usize, Gc::<u64>::VT.class)));

        let mut grey = Vec::with_capacity(256);
        grey.push(Obj::pending(v[0].header_ptr()));
        let mut t = Tracer::pending(Mode::Collector, &mut grey);
        v[..].trace(&mut t);
        assert_eq!(t.reported(), 100);
        let want: Vec<usize> = std::iter::once(&v[0]).chain(&v).map(|g| g.header_ptr().addr().get() | 1).collect();
        assert_eq!(grey.iter().map(|o| o.0.addr().get()).collect::<Vec<_>>(), want);
    }
}
