//! [`Trace`] impls for std's owning types, and the hidden trait behind
//! `#[derive(Trace)]`'s ban on `Drop`.
//!
//! # The rules
//!
//! An impl calls `Trace::trace` exactly once on every value the type owns
//! that may hold a handle — each element of a collection, both keys and
//! values of a map, each field of a tuple — and on nothing it does not
//! own. Types that cannot hold a handle (numbers, strings, `Duration`,
//! atomics, ...) report nothing.
//!
//! The collector counts: an object is a root while more handles point to it
//! than the traced objects report. So a handle that is never reported is
//! not a bug, it is a root: the object it points to lives as long as the
//! handle does, and a cycle through it is never collected (like an `Arc`
//! cycle). Reporting a handle the value does not own, on the other hand,
//! could make a live object look like garbage. Hence:
//!
//! - **No impls for `Arc`, `Rc`, `&T`, `&mut T` or raw pointers.** A value
//!   behind shared ownership is owned by no single object: reporting its
//!   handles from each owner would count them several times, and the
//!   collector cannot know how many owners there are. References and raw
//!   pointers own nothing.
//! - **No impls for std's `Mutex`, `RwLock`, `Cell`, `RefCell`,
//!   `OnceCell` (nor `gort::sync::Mutex`).** Their contents change without
//!   the barriers the concurrent collector relies on, and a lock the
//!   collector cannot take would block or race with it. Use gort's cells
//!   (`GcMutex`, `GcRwLock`, `GcAtomic`) for mutable handles.
//! - **`gort::chan::Chan`, `Sender` and `Receiver` trace nothing.** A
//!   channel is shared by its holders like an `Arc`, and the values
//!   buffered in it are in flight between goroutines: handles sent through
//!   a channel stay roots until received.
//!
//! A field of one of the types without an impl can still be part of a
//! derived type: mark it `#[trace(skip)]`, and the handles in it stay
//! roots.
//!
//! # `Drop`
//!
//! The sweep runs the drop glue of all the garbage it found before it
//! frees any of it, in no particular order, so a `Drop` impl that
//! dereferences a `Gc` could read an object of the same garbage that has
//! already been dropped. `#[derive(Trace)]` therefore implements
//! [`MustNotImplementDrop_UseTraceUnsafeDropIfDropNeverDereferencesAGc`]
//! for the type, which conflicts with the blanket impl for every `T: Drop`
//! here: a `Drop` impl on a derived type is a compile error unless the type
//! is marked `#[trace(unsafe_drop)]` (a promise that its `Drop` never
//! dereferences a `Gc`). The drop glue of std's types only drops handles,
//! which is fine: dropping a handle reads only its object's header, which
//! is freed after all the drop glue ran.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, LinkedList, VecDeque};
use std::ffi::{CStr, CString, OsStr, OsString};
use std::marker::PhantomData;
use std::num::{
    NonZeroI128, NonZeroI16, NonZeroI32, NonZeroI64, NonZeroI8, NonZeroIsize, NonZeroU128, NonZeroU16, NonZeroU32,
    NonZeroU64, NonZeroU8, NonZeroUsize, Saturating, Wrapping,
};
use std::ops::{Bound, Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{
    AtomicBool, AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicIsize, AtomicU16, AtomicU32, AtomicU64, AtomicU8,
    AtomicUsize,
};
use std::time::{Duration, Instant, SystemTime};

use super::trace::{Trace, Tracer};

/// Implemented by `#[derive(Trace)]` for the type it derives for (unless
/// the type says `#[trace(unsafe_drop)]`). The blanket impl for every
/// `T: Drop` then conflicts with it, so a `Drop` impl on the type is a
/// compile error: see the [module docs](self) for why, and use
/// `#[trace(unsafe_drop)]` if the type's `Drop` never dereferences a `Gc`.
#[doc(hidden)]
#[allow(non_camel_case_types)]
pub trait MustNotImplementDrop_UseTraceUnsafeDropIfDropNeverDereferencesAGc {}

#[allow(drop_bounds)] // the point: only types with a `Drop` impl of their own
impl<T: Drop + ?Sized> MustNotImplementDrop_UseTraceUnsafeDropIfDropNeverDereferencesAGc for T {}

/// Types that never hold a handle: their `trace` reports nothing.
macro_rules! trace_nothing {
    ($([$($g:tt)*] $t:ty),* $(,)?) => {$(
        // SAFETY: a value of this type holds no handle, so there is nothing
        // to report.
        unsafe impl<$($g)*> Trace for $t {
            #[inline]
            fn trace(&self, _: &mut Tracer<'_>) {}

            // Unused for the unsized ones (`str`, `Path`, ...).
            #[allow(dead_code)]
            #[inline]
            fn holds_no_handles() -> bool {
                true
            }
        }
    )*};
}

trace_nothing!(
    [] (), [] bool, [] char,
    [] u8, [] u16, [] u32, [] u64, [] u128, [] usize,
    [] i8, [] i16, [] i32, [] i64, [] i128, [] isize,
    [] f32, [] f64,
    [] NonZeroU8, [] NonZeroU16, [] NonZeroU32, [] NonZeroU64, [] NonZeroU128, [] NonZeroUsize,
    [] NonZeroI8, [] NonZeroI16, [] NonZeroI32, [] NonZeroI64, [] NonZeroI128, [] NonZeroIsize,
    [] AtomicBool, [] AtomicU8, [] AtomicU16, [] AtomicU32, [] AtomicU64, [] AtomicUsize,
    [] AtomicI8, [] AtomicI16, [] AtomicI32, [] AtomicI64, [] AtomicIsize,
    [] str, [] String, [] Cow<'static, str>,
    [] CStr, [] CString, [] OsStr, [] OsString, [] Path, [] PathBuf,
    [] Duration, [] Instant, [] SystemTime,
    [] std::cmp::Ordering, [] std::convert::Infallible, [] RangeFull,
    // `PhantomData` owns no value.
    [T: ?Sized] PhantomData<T>,
);

/// Channels: the values buffered in one are shared by all its holders and
/// in flight between goroutines, so their handles are not reported and
/// stay roots (see the module docs).
#[cfg(not(loom))]
macro_rules! trace_channels {
    ($($t:ident),*) => {$(
        // SAFETY: reports nothing. A handle that is not reported is counted
        // by the collector as held from outside the heap (a root), so its
        // object is never freed while the channel holds it.
        unsafe impl<T> Trace for crate::chan::$t<T> {
            #[inline]
            fn trace(&self, _: &mut Tracer<'_>) {}

            #[inline]
            fn holds_no_handles() -> bool {
                true
            }
        }
    )*};
}

#[cfg(not(loom))]
trace_channels!(Chan, Sender, Receiver);

/// Types that own the values they iterate over by reference: each element
/// is traced once.
macro_rules! trace_elements {
    ($([$($g:tt)*] $t:ty),* $(,)?) => {$(
        // SAFETY: the collection owns each element and iterating visits
        // each once; each element's impl reports its handles.
        unsafe impl<$($g)*> Trace for $t {
            #[inline]
            fn trace(&self, t: &mut Tracer<'_>) {
                for x in self {
                    Trace::trace(x, t);
                }
            }

            #[inline]
            fn holds_no_handles() -> bool {
                T::holds_no_handles()
            }
        }
    )*};
}

/// Contiguous elements: traced as a slice ([`Trace::trace_slice`], a bulk
/// copy for `Gc` handles).
macro_rules! trace_slices {
    ($([$($g:tt)*] $t:ty),* $(,)?) => {$(
        // SAFETY: the collection owns each element; `trace_slice` reports
        // what tracing each element once would.
        unsafe impl<$($g)*> Trace for $t {
            #[inline]
            fn trace(&self, t: &mut Tracer<'_>) {
                T::trace_slice(&self[..], t);
            }

            // Unused for `[T]`.
            #[allow(dead_code)]
            #[inline]
            fn holds_no_handles() -> bool {
                T::holds_no_handles()
            }
        }
    )*};
}

trace_slices!(
    [T: Trace] [T],
    [T: Trace, const N: usize] [T; N],
    [T: Trace] Vec<T>,
);

// SAFETY: the deque owns each element, in its two slices once each.
unsafe impl<T: Trace> Trace for VecDeque<T> {
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        let (a, b) = self.as_slices();
        T::trace_slice(a, t);
        T::trace_slice(b, t);
    }

    #[inline]
    fn holds_no_handles() -> bool {
        T::holds_no_handles()
    }
}

trace_elements!(
    [T: Trace] LinkedList<T>,
    [T: Trace] BinaryHeap<T>,
    [T: Trace] BTreeSet<T>,
    [T: Trace, S] HashSet<T, S>,
);

/// Maps: each key and each value is traced once.
macro_rules! trace_maps {
    ($([$($g:tt)*] $t:ty),* $(,)?) => {$(
        // SAFETY: the map owns each key and value, and iterating visits
        // each entry once.
        unsafe impl<$($g)*> Trace for $t {
            #[inline]
            fn trace(&self, t: &mut Tracer<'_>) {
                for (k, v) in self {
                    Trace::trace(k, t);
                    Trace::trace(v, t);
                }
            }

            #[inline]
            fn holds_no_handles() -> bool {
                K::holds_no_handles() && V::holds_no_handles()
            }
        }
    )*};
}

trace_maps!([K: Trace, V: Trace] BTreeMap<K, V>, [K: Trace, V: Trace, S] HashMap<K, V, S>);

/// Wrappers that own one value, reached by `|x| &...`.
macro_rules! trace_wrapper {
    ($([$($g:tt)*] $t:ty => |$x:ident| $get:expr),* $(,)?) => {$(
        // SAFETY: the wrapper owns exactly the one value traced.
        unsafe impl<$($g)*> Trace for $t {
            #[inline]
            fn trace(&self, t: &mut Tracer<'_>) {
                let $x = self;
                Trace::trace($get, t);
            }

            #[inline]
            fn holds_no_handles() -> bool {
                // `T` may be unsized (`Box<str>`): see `NoHandlesProbe`.
                #[allow(unused_imports)]
                use super::trace::{ProbeAny as _, ProbeSized as _};
                (&&super::trace::NoHandlesProbe::<T>::NEW).holds_no_handles()
            }
        }
    )*};
}

trace_wrapper!(
    // Covers `Box<str>`, `Box<[T]>` and `Box<dyn ...>` of a `Trace` type too.
    [T: Trace + ?Sized] Box<T> => |b| &**b,
    [T: Trace + ?Sized] Pin<Box<T>> => |b| b.as_ref().get_ref(),
    [T: Trace] Reverse<T> => |r| &r.0,
    [T: Trace] Wrapping<T> => |w| &w.0,
    [T: Trace] Saturating<T> => |s| &s.0,
    [T: Trace] RangeFrom<T> => |r| &r.start,
    [T: Trace] RangeTo<T> => |r| &r.end,
    [T: Trace] RangeToInclusive<T> => |r| &r.end,
);

// SAFETY: an `Option` owns at most one value, traced once.
unsafe impl<T: Trace> Trace for Option<T> {
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        if let Some(v) = self {
            v.trace(t);
        }
    }

    #[inline]
    fn holds_no_handles() -> bool {
        T::holds_no_handles()
    }
}

// SAFETY: a `Result` owns the one value of its variant, traced once.
unsafe impl<T: Trace, E: Trace> Trace for Result<T, E> {
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        match self {
            Ok(v) => v.trace(t),
            Err(e) => e.trace(t),
        }
    }

    #[inline]
    fn holds_no_handles() -> bool {
        T::holds_no_handles() && E::holds_no_handles()
    }
}

// SAFETY: a `Bound` owns at most one value, traced once.
unsafe impl<T: Trace> Trace for Bound<T> {
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        match self {
            Bound::Included(v) | Bound::Excluded(v) => v.trace(t),
            Bound::Unbounded => {}
        }
    }

    #[inline]
    fn holds_no_handles() -> bool {
        T::holds_no_handles()
    }
}

// SAFETY: a range owns its two ends, each traced once.
unsafe impl<T: Trace> Trace for Range<T> {
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        self.start.trace(t);
        self.end.trace(t);
    }

    #[inline]
    fn holds_no_handles() -> bool {
        T::holds_no_handles()
    }
}

// SAFETY: a range owns its two ends, each traced once.
unsafe impl<T: Trace> Trace for RangeInclusive<T> {
    #[inline]
    fn trace(&self, t: &mut Tracer<'_>) {
        self.start().trace(t);
        self.end().trace(t);
    }

    #[inline]
    fn holds_no_handles() -> bool {
        T::holds_no_handles()
    }
}

/// Tuples of 1 to 12 fields: each field is traced once.
macro_rules! trace_tuples {
    ([$($done:ident)*]) => {};
    ([$($done:ident)*] $next:ident $($rest:ident)*) => {
        // SAFETY: a tuple owns each of its fields, each traced once.
        unsafe impl<$($done: Trace,)* $next: Trace> Trace for ($($done,)* $next,) {
            #[inline]
            #[allow(non_snake_case)]
            fn trace(&self, t: &mut Tracer<'_>) {
                let ($($done,)* $next,) = self;
                $($done.trace(t);)*
                $next.trace(t);
            }

            #[inline]
            fn holds_no_handles() -> bool {
                $($done::holds_no_handles() &&)* $next::holds_no_handles()
            }
        }
        trace_tuples!([$($done)* $next] $($rest)*);
    };
}

trace_tuples!([] A B C D E F G H I J K L);
