//! The steps of one collection cycle (PROTOCOL.md C1–C6 and C10's choice
//! of garbage), over a set of objects given as a parameter.
//!
//! The std build's collector (`collector.rs`) runs them over the heap walk,
//! then hands the garbage to the drop goroutine. The loom models in
//! `loom-tests/tests/gc.rs` run the same steps over their own two or three
//! boxed objects, beside mutator threads using the real handles, cells and
//! barriers, and check the garbage they choose.

use super::barrier::{self, Obj, PREFETCH};
use super::header::{Header, GARBAGE, MARKED, NEWBORN, OLD, SPECIAL};
use super::heap;
use super::snapshot;
use super::special::{self, Job};
use super::trace::{edge_class, Mode, Tracer};
use super::work_mem;
use crate::loom::sync::atomic::Ordering;
use crate::loom::LoadSeqCst;

/// The objects a cycle works on: every published object (including last
/// cycle's garbage until it is freed), in a fixed order for one walk.
pub(crate) trait Objects {
    /// What a walk yields per object (and the sweep gets back for garbage).
    type Item: Copy + Send;
    /// Calls `f` for every published object.
    fn for_each(&self, f: impl FnMut(Self::Item));
    /// How many threads this cycle's walks may use: 1 (the collector's),
    /// or more if the heap is large and processors are idle. Asked before
    /// each walk.
    fn walkers(&self) -> usize {
        1
    }
    /// Calls `f` for every published object, as [`for_each`](Self::for_each),
    /// on up to `walkers` threads at once (this one among them), each with
    /// a state of its own made by `make`; returns the states. Each object
    /// is passed once, to one thread.
    fn for_each_split<S: Send>(
        &self,
        walkers: usize,
        make: impl Fn() -> S + Sync,
        f: impl Fn(&mut S, Self::Item) + Sync,
    ) -> Vec<S> {
        let _ = walkers;
        let mut s = make();
        self.for_each(|x| f(&mut s, x));
        vec![s]
    }
    /// The object's header.
    fn obj(item: &Self::Item) -> Obj;
    /// The object's count ([`heap::internal`]).
    ///
    /// # Safety
    /// As [`heap::internal`].
    #[inline]
    unsafe fn internal<'a>(item: &Self::Item) -> &'a crate::loom::sync::atomic::AtomicU32 {
        // SAFETY: as the caller guarantees.
        unsafe { heap::internal(Self::obj(item)) }
    }
}

/// The points of a cycle a test hook sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[doc(hidden)]
pub enum Step {
    /// The phase is on; nothing is counted yet.
    PhaseOn,
    /// Counting is done; roots are not read yet.
    Counted,
    /// Roots are shaded; marking has not started.
    Rooted,
    /// Marking terminated; the phase is still on.
    Terminated,
    /// The sweep's garbage is chosen; its drop glue has not run.
    #[cfg_attr(loom, allow(dead_code))]
    Swept,
}

/// What a cycle leaves to do besides freeing its garbage.
#[derive(Default)]
pub(crate) struct Outcome {
    /// The sum of `survived` over the old objects that survived.
    pub(crate) survived: usize,
    /// The type whose `Trace` impl reported a handle twice, if one did.
    pub(crate) double: Option<&'static str>,
    /// Finalizers of unreachable objects, each resurrected with a handle
    /// for it (C9), in the order found.
    pub(crate) finalizers: Vec<Job>,
    /// Cleanups of the garbage: run them once it is freed.
    pub(crate) cleanups: Vec<Job>,
}

/// Runs one cycle over `objs` up to the choice of garbage: C2 phase on, C3 + C4 snapshot and count, C5 roots (and, as Go's
/// `markrootSpans`, everything finalizable objects reach, not the objects
/// themselves), C6 mark and terminate, C7 close weak pointers, phase off,
/// C8 clear the weak cells of unmarked objects, C9 queue finalizers, then
/// C10's choice, which also resets the other objects for the next cycle
/// (C1). Each old object left white is unpublished (marked
/// GARBAGE) and passed to `dead`, at once if the walk is the collector's
/// alone, else once the walk is over; the other old objects' `survived`
/// are summed. `hook` sees each step but `Swept` (the caller's).
///
/// Each walk may be split over several threads (`Objects::walkers`): each
/// object is then handled by one of them, the count's increments of the
/// children's counts are read-modify-writes (two threads may count
/// children of one object), and the shades and the garbage each thread
/// finds are gathered after the walk.
pub(crate) fn run<O: Objects + ?Sized>(
    objs: &O,
    mut hook: impl FnMut(Step),
    mut dead: impl FnMut(O::Item),
    survived: impl Fn(&O::Item) -> usize + Sync,
) -> Outcome {
    let mut mk = Marker::new();
    // C1, the reset, ran in the previous cycle's C10 walk (PROTOCOL.md §8,
    // model flag `--reset-in-sweep`): every object published by then and
    // not garbage is white, not newborn, with `internal` 0. Objects
    // allocated since are born so, or (having read the phase on in the last
    // cycle) newborn, and then not old in this one.
    // Objects whose last handle goes are the collector's from here; those
    // freed at zero before are unpublished (model flag `--prompt-free`).
    barrier::begin_cycle();
    // C2.
    barrier::set_phase(true);
    hook(Step::PhaseOn);
    // C3 + C4: old := published and not newborn (read after C2); count.
    let walkers = objs.walkers();
    let shared = walkers > 1;
    let parts = objs.for_each_split(walkers, Marker::new, |mk, f| {
        let o = O::obj(&f);
        // SAFETY: a walked object is published, and published objects are
        // freed only by a sweep (this cycle's comes after its walks) or,
        // once the walks are over, at zero.
        let h = unsafe { o.0.as_ref() };
        if h.state() & (GARBAGE | NEWBORN) == 0 {
            // SAFETY: as above.
            let internal = unsafe { O::internal(&f) };
            // Only collector threads write `internal`: a read-modify-write
            // only if another one may count a child of this object now.
            if shared {
                internal.fetch_or(OLD, Ordering::Relaxed);
            } else {
                internal.store(internal.load(Ordering::Relaxed) | OLD, Ordering::Relaxed);
            }
            mk.count(o, shared);
        }
        mk.walked();
    });
    mk.gather(parts);
    hook(Step::Counted);
    // C5: a root is held from outside the heap. `handles < internal` is
    // normal mid-cycle (a counted handle taken out and dropped, S17);
    // treating it as a root is the conservative choice.
    let parts = objs.for_each_split(objs.walkers(), Marker::new, |mk, f| {
        let o = O::obj(&f);
        // SAFETY: as above.
        let h = unsafe { o.0.as_ref() };
        // SAFETY: as above.
        let iv = unsafe { O::internal(&f) }.load(Ordering::Relaxed);
        if iv & OLD != 0 && h.handles.load_seqcst() != iv & !OLD {
            mk.shade(o);
        }
        mk.walked();
    });
    mk.gather(parts);
    // Go marks everything a finalizable object reaches, but not the
    // object: for A -> B both finalizable and unreachable, only A's
    // finalizer runs this cycle. An object given a finalizer after this
    // read is held by the thread that gave it, so it is marked anyway.
    let fins: Vec<Obj> = special::finalizable()
        .into_iter()
        // SAFETY: objects in the specials table are live.
        .filter(|&o| unsafe { is_old(o) })
        .collect();
    for &o in &fins {
        mk.shade_children(o);
    }
    hook(Step::Rooted);
    // C6.
    mk.mark();
    hook(Step::Terminated);
    // C7: from here an upgrade succeeds only for a marked object; the
    // grace periods of this round wait out upgrades that read "open".
    special::close_weak();
    mk.mark();
    barrier::set_phase(false);
    // Shades that raced with the phase change are marked too: marking more
    // than needed is always safe.
    mk.mark();
    // No barrier pins a kept list from here (phase off, and a grace period
    // since): those left are of cells the mark never reached.
    snapshot::snapshots().end_cycle();
    // C8, before any finalizer is queued (Go's order).
    // SAFETY: objects in the specials table are live.
    special::clear_weak_and_reopen(|o| unsafe { is_old(o) && o.0.as_ref().state() & MARKED == 0 });
    // An upgrade that read "closed" and "not cleared" before the clearing
    // reads its object's colour next: wait for it before anything is
    // chosen as garbage (model flag `--clear-grace`,
    // `counterexamples/rb-no-clear-grace.s15.txt`).
    barrier::grace_period();
    // C9: each finalizable object left unmarked is resurrected for its
    // finalizer and made black without tracing: its children are marked
    // already. They were shaded as finalizer roots above, or they were
    // roots themselves (the count skipped a cell busy, acquired in this
    // cycle before the count reached it, or hot), or a barrier queued them (a cell
    // acquired after the count);
    // and an object unmarked at termination was unreachable since the
    // snapshot, so nothing has changed its children since.
    let mut out = Outcome::default();
    for o in fins {
        // SAFETY: as above.
        let h = unsafe { o.0.as_ref() };
        // SAFETY: as above.
        if !unsafe { is_old(o) } || h.state() & MARKED != 0 {
            continue;
        }
        if let Some(f) = special::take_finalizer(o) {
            h.state.fetch_or(MARKED, Ordering::SeqCst);
            h.handles.fetch_add(1, Ordering::SeqCst);
            out.finalizers.push(Box::new(move || {
                let o: Obj = o;
                f(o.0)
            }));
        }
    }
    // C10: the old objects left white are garbage. They are unpublished
    // (GARBAGE) before any drop glue runs. The walk also resets every other
    // object for the next cycle (its C1).
    let walkers = objs.walkers();
    if walkers > 1 {
        let parts = objs.for_each_split(walkers, End::<O>::default, |e, f| match end_one::<O>(&f, &mut e.cleanups) {
            Verdict::Dead => e.dead.push(f),
            Verdict::Survived => e.survived += survived(&f),
            Verdict::Other => {}
        });
        for mut e in parts {
            e.dead.into_iter().for_each(&mut dead);
            out.survived += e.survived;
            out.cleanups.append(&mut e.cleanups);
        }
    } else {
        objs.for_each(|f| match end_one::<O>(&f, &mut out.cleanups) {
            Verdict::Dead => dead(f),
            Verdict::Survived => out.survived += survived(&f),
            Verdict::Other => {}
        });
    }
    // No walk of this cycle reads an object from here: mutators may free
    // objects at zero again.
    barrier::end_cycle();
    out.double = mk.double;
    out
}

/// What the end walk found an object to be.
enum Verdict {
    /// Old and unmarked: unpublished (GARBAGE) now.
    Dead,
    /// Old and marked.
    Survived,
    /// Not old in this cycle, or garbage already.
    Other,
}

/// What a thread of a split end walk found.
struct End<O: Objects + ?Sized> {
    dead: Vec<O::Item>,
    survived: usize,
    cleanups: Vec<Job>,
}

impl<O: Objects + ?Sized> Default for End<O> {
    fn default() -> Self {
        End { dead: Vec::new(), survived: 0, cleanups: Vec::new() }
    }
}

/// C10 for one object: the choice of garbage and the reset for the next
/// cycle (C1). The cleanups of an object found garbage go to `cleanups`.
#[inline]
fn end_one<O: Objects + ?Sized>(f: &O::Item, cleanups: &mut Vec<Job>) -> Verdict {
    // SAFETY: a walked object is published, and published objects are
    // freed only by a sweep (this cycle's comes after its walks) or, once
    // the walks are over, at zero.
    let h = unsafe { O::obj(f).0.as_ref() };
    // SAFETY: as above.
    let internal = unsafe { O::internal(f) };
    let iv = internal.load(Ordering::Relaxed);
    // Cleared in every object walked, garbage included: a slot's next
    // object starts at 0 (`heap::internal`).
    if iv != 0 {
        internal.store(0, Ordering::Relaxed);
    }
    let st = h.state();
    if st & GARBAGE != 0 {
        return Verdict::Other;
    }
    if iv & OLD != 0 && st & MARKED == 0 {
        // Unreachable, and every barrier begun before the last grace
        // period has ended: no other thread writes its state now.
        // (Release, not SeqCst: an x86 SeqCst store is a full fence.
        // The drop goroutine, the only reader, gets the garbage through
        // a channel.)
        h.state.store(st | GARBAGE, Ordering::Release);
        if h.flags.load(Ordering::SeqCst) & SPECIAL != 0 {
            special::remove_dead(O::obj(f), cleanups);
        }
        return Verdict::Dead;
    }
    // Plain stores: no mutator writes the state now (every shade lands
    // before the last grace period, `shade_from_mutator` re-reading the
    // phase under its mark), except a claim at zero of an object born
    // in this cycle (`reclaim`): for those, a read-modify-write that
    // keeps GARBAGE (model flag `--pf-newborn`; a store loses the claim
    // and the next cycle counts a dropped value,
    // `counterexamples/nb-reset-store.cycles2.s22.txt`).
    if st & NEWBORN != 0 {
        h.state.fetch_and(KEEP_ON_RESET, Ordering::Release);
    } else if st != 0 {
        h.state.store(0, Ordering::Release);
    }
    if iv & OLD != 0 {
        Verdict::Survived
    } else {
        Verdict::Other
    }
}

/// Old in the current cycle (collector only).
///
/// # Safety
/// `o` is live.
unsafe fn is_old(o: Obj) -> bool {
    // SAFETY: as the caller guarantees.
    unsafe { heap::internal(o) }.load(Ordering::Relaxed) & OLD != 0
}

/// What the reset of a NEWBORN object keeps: a claim's GARBAGE (and,
/// under loom, the bits its free writes in the state: `loom_heap`).
#[cfg(not(loom))]
const KEEP_ON_RESET: u8 = GARBAGE;
#[cfg(loom)]
const KEEP_ON_RESET: u8 = GARBAGE | super::header::FREED | super::header::DROPPED;

/// The drain offers assists work every `SHARE_EVERY` entries, when it has
/// at least `SHARE_MIN` (under loom, whose models have three objects:
/// always).
const SHARE_EVERY: u32 = if cfg!(loom) { 1 } else { 64 };
const SHARE_MIN: usize = if cfg!(loom) { 2 } else { 32 };
/// The walks before marking (count, roots) take the grey buffers threads
/// handed over every `ABSORB_EVERY` objects (under loom, whose walks see
/// three objects: never). Until the roots are shaded every cell barrier
/// queues all of its cell's children (`cell::barrier_shade`), so on a
/// large heap the queued entries would otherwise pile up for the whole
/// count, and every barrier would fill fresh chunks whose pages fault in.
const ABSORB_EVERY: usize = 4096;

/// The collector's own tracing state (and that of each thread of a split
/// walk).
struct Marker {
    stack: Vec<Obj>,
    /// Edges of the object being counted: (object, [`edge_key`]).
    edges: Vec<(Obj, usize)>,
    /// Objects this thread has walked in the walk under way.
    walked: usize,
    /// First `Trace` impl found reporting a handle twice.
    double: Option<&'static str>,
    /// `stack` and `edges` as `MemStats::gc_sys` last counted them
    /// ([`note_memory`](Self::note_memory)).
    counted: work_mem::Counted,
}

#[cfg(not(loom))]
impl Drop for Marker {
    /// Keeps the edge buffer for the thread's next walk, still counted in
    /// `gc_sys`, unless the thread keeps a larger one (a cycle's own
    /// marker, made first, takes the kept buffer and is dropped last, after
    /// the walks' markers); the stack is freed, uncounted with `counted`.
    fn drop(&mut self) {
        let kept = EDGES.take();
        if self.edges.capacity() <= EDGES_KEPT && self.edges.capacity() > kept.0.capacity() {
            self.edges.clear();
            self.counted.set(work_mem::capacity_bytes(&self.edges));
            EDGES.set((std::mem::take(&mut self.edges), std::mem::take(&mut self.counted)));
        } else {
            EDGES.set(kept);
        }
    }
}

#[cfg(not(loom))]
thread_local! {
    /// The edge buffer of the thread that runs cycles, kept from one cycle
    /// to the next if at most [`EDGES_KEPT`] long: it grows while the
    /// collector holds a cell (copying its handles), and a fresh one took
    /// 40 page faults there at the first 10,000-child cell of every cycle
    /// (gc_wait: holds of 200 µs).
    static EDGES: std::cell::Cell<(Vec<(Obj, usize)>, work_mem::Counted)> =
        const { std::cell::Cell::new((Vec::new(), work_mem::Counted::NONE)) };
}
#[cfg(not(loom))]
const EDGES_KEPT: usize = 1 << 18;

impl Marker {
    fn new() -> Marker {
        #[cfg(not(loom))]
        let (edges, counted) = EDGES.take();
        #[cfg(loom)]
        let (edges, counted) = Default::default();
        Marker { stack: Vec::new(), edges, walked: 0, double: None, counted }
    }

    /// Counts the stack's and the edge buffer's capacity in `gc_sys`
    /// (`work_mem`): called where they may have grown, often enough that
    /// a reading lags by no more than a cell's or a few chunks' entries.
    #[inline]
    fn note_memory(&mut self) {
        self.counted.set(work_mem::capacity_bytes(&self.stack) + work_mem::capacity_bytes(&self.edges));
    }

    /// One more object walked: every [`ABSORB_EVERY`] of them, the full
    /// grey buffers threads handed over go onto this marker's stack.
    #[inline]
    fn walked(&mut self) {
        self.walked += 1;
        if self.walked % ABSORB_EVERY == 0 {
            self.absorb_flushed();
        }
    }

    /// Takes in what the threads of a split walk found: their stacks
    /// (roots, absorbed grey buffers) and a double report.
    fn gather(&mut self, parts: Vec<Marker>) {
        for mut p in parts {
            self.stack.append(&mut p.stack);
            self.double = self.double.or(p.double);
        }
        self.note_memory();
    }

    /// Counts one old object's edges (C4). A handle reported twice (same
    /// address) is counted once and remembered for the report. `shared`:
    /// other threads count too, so the increments are read-modify-writes.
    fn count(&mut self, o: Obj, shared: bool) {
        self.edges.clear();
        // SAFETY: the object is old in this cycle, and only this cycle's
        // sweep frees old objects.
        unsafe { Header::trace(o.0, &mut Tracer::edges(Mode::Count, &mut self.edges)) };
        // SAFETY: as above.
        let h = unsafe { o.0.as_ref() };
        // Handles are usually reported in strictly increasing address
        // order (fields in layout order, a Vec's elements): then none is
        // reported twice. Otherwise sort, and drop repeats.
        if !self.edges.windows(2).all(|w| w[0].1 < w[1].1) {
            self.edges.sort_unstable_by_key(|e| e.1);
            let before = self.edges.len();
            self.edges.dedup_by_key(|e| e.1);
            if self.edges.len() != before && self.double.is_none() {
                self.double = Some((h.vt.get().type_name)());
            }
        }
        for &(Obj(c), key) in &self.edges {
            // SAFETY: a child of a live object is live, and its class is
            // its handle's (`Gc<T>` points at a box of its own `T`).
            let internal = unsafe { heap::internal_of_slot(c, edge_class(key)) };
            let iv = internal.load(Ordering::Relaxed);
            if iv & !OLD != !OLD {
                if shared {
                    // Checked for saturation before the add: threads
                    // passing the check together go past it only with
                    // about 2^31 handles to one object.
                    internal.fetch_add(1, Ordering::Relaxed);
                } else {
                    internal.store(iv + 1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Moves the entries of the full grey buffers threads handed over
    /// (most of them pending children queued by cell barriers) onto the
    /// mark stack, and gives the chunks back for reuse; the drain shades
    /// pending entries as it pops them (`Obj::to_trace`). Nothing is
    /// shaded here, so taking a chunk is a copy. Barriers fill chunks at
    /// the speed of memory, and shading each entry (a header's cache miss
    /// apiece) makes a collector fall behind them: the barriers then take
    /// fresh chunks, whose pages fault in. (gc_wait could not tell the two
    /// apart: the OS's scheduling of the collector decides more.)
    fn absorb_flushed(&mut self) {
        // Fresh chunks for the barriers queueing meanwhile.
        barrier::stock_spare();
        barrier::take_flushed(&mut self.stack);
        self.note_memory();
    }

    fn shade(&mut self, o: Obj) {
        // SAFETY: callers pass live objects.
        if unsafe { o.0.as_ref() }.shade_to_trace() {
            self.stack.push(o);
        }
    }

    /// Traces grey objects until none is left here or shared (C6
    /// `drain`). While assists run, half of the stack is shared with them
    /// whenever they have taken all that was shared.
    fn drain(&mut self) {
        let mut n = 0u32;
        loop {
            while let Some(g) = self.stack.pop() {
                // Pending entries (cell barriers' children) are shaded
                // here, most of them found marked: their headers are
                // fetched a few entries ahead.
                if let Some(&ahead) = self.stack.len().checked_sub(PREFETCH).and_then(|i| self.stack.get(i)) {
                    ahead.prefetch();
                }
                // Every entry counts towards the next offer: most are
                // leaves, traced by nobody (`Header::shade_to_trace`), and
                // counting traced objects only left the mark workers
                // without work on a heap of cells of leaves (gc_mark).
                n = n.wrapping_add(1);
                if let Some(o) = g.to_trace() {
                    self.shade_children(o);
                }
                if n % SHARE_EVERY == 0 {
                    // Full grey buffers mutators handed over meanwhile,
                    // and fresh ones for them (a cell barrier queueing
                    // 10,000 children takes a few).
                    barrier::take_flushed(&mut self.stack);
                    barrier::stock_spare();
                    self.note_memory();
                    if self.stack.len() >= SHARE_MIN {
                        barrier::share_grey(&mut self.stack);
                    }
                }
            }
            barrier::unshare_grey(&mut self.stack);
            barrier::take_flushed(&mut self.stack);
            if self.stack.is_empty() {
                return;
            }
        }
    }

    /// Shades the children of live object `o`: pushes them on the stack
    /// as pending entries, which the drain shades as it pops them (as it
    /// does a cell barrier's or an assist's: `Obj::to_trace`). A cell's
    /// lock is then held only for a copy of its handles, 8 bytes each,
    /// not for a read-modify-write on each child (nor for a 16-byte edge
    /// each, read again after: holds of 10,000 handles took 40–190 µs).
    /// A child read under the lock stays live until the sweep even if a
    /// mutator takes it out right after: taking it out acquires the cell,
    /// whose barrier queues it.
    fn shade_children(&mut self, Obj(o): Obj) {
        // SAFETY: the caller passes a live object.
        unsafe { Header::trace(o, &mut Tracer::stack(Mode::Collector, &mut self.stack)) };
    }

    /// C6: drain, grace period, until no thread holds a grey object. An
    /// assist that took shared objects before the grace period is waited
    /// for by it, and its shades are in its grey buffer after.
    fn mark(&mut self) {
        loop {
            barrier::drain_grey(&mut self.stack);
            self.drain();
            barrier::grace_period();
            barrier::drain_grey(&mut self.stack);
            // What an assist put back before the grace period ended.
            barrier::unshare_grey(&mut self.stack);
            self.note_memory();
            if self.stack.is_empty() {
                barrier::release_shared();
                return;
            }
        }
    }
}
