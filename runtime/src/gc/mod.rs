//! gort's shared heap: [`Gc<T>`] handles that goroutines and threads share
//! freely, with cycles collected by a concurrent collector that never
//! stops the world.
//!
//! ```
//! use gort::gc::{Gc, GcMutex, Trace};
//!
//! #[derive(Trace)]
//! struct Person {
//!     name: String,
//!     friends: GcMutex<Vec<Gc<Person>>>,
//! }
//!
//! let ann = Gc::new(Person { name: "Ann".into(), friends: GcMutex::new(vec![]) });
//! let bob = Gc::new(Person { name: "Bob".into(), friends: GcMutex::new(vec![ann.clone()]) });
//! ann.friends.lock().push(bob.clone()); // a cycle
//! let names: Vec<String> = ann.friends.lock().iter().map(|p| p.name.clone()).collect();
//! assert_eq!(names, ["Bob"]);
//! drop((ann, bob));
//! gort::gc(); // both are freed
//! ```
//!
//! # How it works
//!
//! Rust has no stack maps, so the collector *infers* roots: each object
//! counts its handles (`Gc::clone` increments, `Drop` decrements), a cycle
//! counts the edges between heap objects, and an object with more handles
//! than edges is held from outside the heap — a root. Marking then runs
//! concurrently from the roots, with a snapshot barrier on every
//! acquisition of a cell ([`GcMutex`], [`GcRwLock`], [`GcAtomic`]) and on
//! `Gc::clone`, and ends after grace periods in which every thread has been
//! seen outside a barrier. Unreachable objects are dropped on a system
//! goroutine (never on a collector thread), then freed. The protocol is in
//! `loom-tests/gc-protocol-model/PROTOCOL.md`, model-checked with loom.
//!
//! Most garbage never waits for a cycle: dropping the last handle of an
//! object frees it at once, as `Arc` does (its `Drop` runs before that
//! `drop` returns, iteratively, so long chains do not overflow the stack),
//! unless a cycle that started before the object's allocation is under
//! way, or the object was ever in a [`GcAtomic`],
//! has a weak pointer, finalizer or cleanup, or is larger than 32 KiB.
//! Cycles, and those objects, are the collector's.
//!
//! Handles in places the collector cannot see — a `Vec<Gc<_>>` on a stack,
//! an `Arc<Mutex<Vec<Gc<_>>>>` shared with a thread, a channel in flight, a
//! `#[trace(skip)]` field — are simply roots.
//!
//! # Types must not implement `Drop`
//!
//! `#[derive(Trace)]` rejects a `Drop` impl on the type: the sweep runs the
//! drop glue of all garbage before freeing any of it, and a `Drop` that
//! dereferenced a `Gc` could reach a value already dropped. Opt out with
//! `#[trace(unsafe_drop)]`, promising that your `Drop` never dereferences
//! a `Gc`.

pub(crate) mod barrier;
mod cell;
#[cfg(not(loom))]
mod collector;
mod cycle;
// Under loom the public API that calls these is not built.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod finalize;
pub(crate) mod free_slots;
mod handle;
mod header;
#[cfg(not(loom))]
mod heap;
/// Boxes instead of spans, and the loom models' API (`gort::__loom::gc`).
#[cfg(loom)]
#[path = "loom_heap.rs"]
pub(crate) mod heap;
mod impls;
#[cfg(not(loom))]
mod pacer;
#[cfg(not(loom))]
mod pages;
mod reclaim;
mod snapshot;
mod special;
// Under loom nothing is timed.
#[cfg_attr(loom, allow(dead_code))]
mod stall;
#[cfg(not(loom))]
pub(crate) mod stats;
mod trace;
pub(crate) mod weak;
mod work_mem;

#[cfg(test)]
mod tests;

pub use cell::{GcAtomic, GcMutex, GcMutexGuard, GcReadGuard, GcRwLock, GcWriteGuard};
pub use gort_macros::Trace;
pub use handle::Gc;
#[doc(hidden)]
pub use impls::MustNotImplementDrop_UseTraceUnsafeDropIfDropNeverDereferencesAGc;
#[doc(hidden)]
pub use trace::{NoHandlesProbe, ProbeAny, ProbeSized};
pub use trace::{Trace, Tracer};

#[cfg(not(loom))]
pub(crate) use collector::{gc, set_gc_percent, set_memory_limit};
#[cfg(not(loom))]
pub(crate) use heap::release_free_spans;
#[cfg(not(loom))]
pub(crate) use stats::read_gc_stats;

/// Test hooks into the collector (not public API): tests use them to force
/// the interleavings of PROTOCOL.md's scenarios.
#[cfg(not(loom))]
#[doc(hidden)]
pub mod __hooks {
    pub use super::collector::Step;

    /// Calls `f` at each [`Step`] of every cycle (`None` removes it). The
    /// hook runs on the collector's thread.
    pub fn set(f: Option<fn(Step)>) {
        *super::collector::HOOK.lock().unwrap_or_else(|e| e.into_inner()) = f;
    }

    /// Whether a cycle is between its start and the end of marking.
    pub fn phase_on() -> bool {
        super::barrier::phase_on()
    }

    /// Objects traced by mark assists since the process started.
    pub fn assisted() -> u64 {
        super::collector::ASSISTED.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Objects traced by the background mark workers beside the
    /// collector's thread since the process started.
    pub fn worked() -> u64 {
        super::collector::workers::WORKED.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Makes every walk of every cycle, and marking, use `n` threads,
    /// whatever the heap and the idle CPUs (0: decide as usual).
    pub fn force_walkers(n: usize) {
        super::collector::FORCE_WALKERS.store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Makes the cycles of `gort::gc()` skip hot cells as the cycles the
    /// pacer starts do (a cell a barrier touched in the previous cycle is
    /// not counted; its children are roots), so that tests can force them.
    pub fn skip_hot_when_forced(on: bool) {
        super::collector::SKIP_HOT_WHEN_FORCED.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Heap walks split over more than one thread since the process
    /// started (a cycle makes three walks).
    pub fn split_walks() -> u64 {
        super::heap::SPLIT_WALKS.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Completed cycles.
    pub fn num_gc() -> u64 {
        super::collector::NUM_GC.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts (clearing what was recorded) or stops timing the waits of
    /// mutators on the collector (see [`stalls`]).
    pub fn watch_stalls(on: bool) {
        super::stall::watch(on)
    }

    /// Per kind of wait on the collector since [`watch_stalls`] started:
    /// its name, the longest wait in ns, the longest time the waiting
    /// thread was on the CPU during one wait in ns (the rest is the OS
    /// running something else, or the thread parked), and how many waits
    /// exceeded 50 µs.
    /// Kinds: `barrier` (a lock barrier shading a cell's children),
    /// `lock_wait` (parked on a busy cell, whoever held it),
    /// `collector_hold` (the collector, a worker or an assist holding a
    /// cell's try-lock), `assist_mark`, `assist_wait` (back-pressure),
    /// `weak_wait` (`Weak::upgrade` parked), `tracer_wait` (a writer spinning
    /// until a tracer's hold on the cell ends) and `heap_lock` (a span list's
    /// lock taken by an allocating thread).
    pub fn stalls() -> Vec<(&'static str, u64, u64, u64)> {
        super::stall::read()
    }

    /// Per kind of wait, as [`stalls`]: its name, how many waits spent
    /// over 50 µs on the CPU, and the minor page faults and involuntary
    /// context switches of the thread during the wait with the longest
    /// time on the CPU (what that maximum was made of).
    pub fn stall_details() -> Vec<(&'static str, u64, u64, u64)> {
        super::stall::details()
    }

    /// Per kind of wait, as [`stalls`]: its name and how many waits spent
    /// 0-10 µs, 10-20 µs, ... on the CPU (the last bucket: 110 µs and
    /// more).
    pub fn stall_histograms() -> Vec<(&'static str, [u64; super::stall::HIST_BUCKETS])> {
        super::stall::histograms()
    }

    /// The fewest handles a cell must hold for the count to keep its
    /// children (`snapshot.rs`; 1,024 by default). Tests lower it so that
    /// small cells take that path too.
    pub fn snap_min(n: usize) {
        super::snapshot::set_min_handles(n)
    }

    /// Cells whose children a count kept since the process started
    /// (`snapshot.rs`), and the most bytes the kept lists held at once
    /// since the last call.
    pub fn kept_lists() -> (u64, usize) {
        super::snapshot::kept()
    }

    /// Grey-buffer chunks allocated fresh since the process started
    /// because none was in stock: each one's pages fault in as the thread
    /// that took it (usually a cell barrier) fills them.
    pub fn fresh_grey_chunks() -> u64 {
        super::barrier::FRESH_CHUNKS.load(std::sync::atomic::Ordering::Relaxed)
    }
}
