//! The `Trace` trait: how the collector finds the `Gc` handles a value owns.

use std::ptr::NonNull;

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
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `gort::gc::Trace`, so the collector cannot find the handles in it",
    label = "the collector cannot trace this",
    note = "derive it with `#[derive(Trace)]`, or mark the field `#[trace(skip)]` (its handles then stay roots)"
)]
pub unsafe trait Trace {
    /// Reports each `Gc` handle owned by `self` to `tracer`, by calling
    /// `Trace::trace` on every field that may hold one.
    fn trace(&self, tracer: &mut Tracer<'_>);
}

/// What a [`Trace`] impl reports handles to. Its only use is to be passed
/// on to the fields' `trace`.
pub struct Tracer<'a> {
    visit: &'a mut dyn FnMut(NonNull<Header>, usize),
    /// A mutator's barrier shades the children of one cell only: cells
    /// nested inside its value run their own barrier when acquired.
    in_barrier: bool,
}

impl<'a> Tracer<'a> {
    /// A tracer that calls `visit(object, address of the handle)` per edge.
    pub(crate) fn new(in_barrier: bool, visit: &'a mut dyn FnMut(NonNull<Header>, usize)) -> Tracer<'a> {
        Tracer { visit, in_barrier }
    }

    /// Reports one handle: the object it points to and where the handle
    /// itself lives (which tells a handle reported twice from two handles
    /// to the same object).
    #[inline]
    pub(crate) fn edge(&mut self, obj: NonNull<Header>, at: usize) {
        (self.visit)(obj, at)
    }

    /// Whether this trace runs inside a mutator's cell barrier (nested
    /// cells are then not entered).
    pub(crate) fn in_barrier(&self) -> bool {
        self.in_barrier
    }
}
