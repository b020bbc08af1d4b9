//! The mutator side of the collector's protocol: the phase, thread
//! registration, the per-thread barrier mark, grey buffers, and the grace
//! period (PROTOCOL.md §0–§2 in `loom-tests/gc-protocol-model/`).
//!
//! Every thread that runs a barrier registers on its first one (a
//! thread-local record, recycled after the thread exits). Its `in_barrier`
//! mark is up from before the lock, slot or weak state it reads until its
//! shades are in its grey buffer; the collector's grace period waits until
//! it has seen every registered thread's mark down once, then drains the
//! buffers. A barrier sequence has no yield point, so a goroutine is never
//! switched out with its thread's mark up.
//!
//! Under loom the statics are `loom::lazy_static!`s and `REC` is loom's
//! thread-local, all fresh in every execution. Records are not recycled
//! (loom drops the statics before the main thread's locals) but freed with
//! the registry at the end of the execution.

use std::cell::Cell;
use std::ptr::NonNull;

use super::header::Header;
use super::trace::{Mode, Tracer};
use crate::loom::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use crate::loom::sync::Mutex;
use crate::loom::LoadSeqCst;

/// On from the start of a cycle's counting until marking has terminated.
#[cfg(not(loom))]
static PHASE: AtomicBool = AtomicBool::new(false);
/// Bumped at the start of every cycle (before its phase goes on, then a
/// grace period) and at the end of its walks: odd while a cycle is
/// active. While it is even no collector thread reads an object's header
/// or value, so a mutator may free an object whose last handle it dropped
/// (`reclaim`) — if the number it read before the decrement is the one it
/// reads after: a whole cycle may otherwise have run in between, found the
/// object unreachable and freed it (model flag `--pf-drop-seq`,
/// `counterexamples/pf-proposed.s18.txt`).
#[cfg(not(loom))]
static CYCLE_SEQ: AtomicU32 = AtomicU32::new(0);
/// The number of the cycle under way or last run.
#[cfg(not(loom))]
static EPOCH: AtomicU32 = AtomicU32::new(0);
#[cfg(loom)]
loom::lazy_static! {
    static ref PHASE: AtomicBool = AtomicBool::new(false);
    static ref CYCLE_SEQ: AtomicU32 = AtomicU32::new(0);
    static ref EPOCH: AtomicU32 = AtomicU32::new(0);
}

/// A registered thread.
pub(crate) struct ThreadRec {
    in_barrier: AtomicBool,
    /// Objects this thread shaded white → grey, for the collector.
    grey: Mutex<Vec<Obj>>,
    /// Owned by a live thread (records are recycled, never freed).
    owned: AtomicBool,
}

/// A header pointer that may cross threads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Obj(pub(crate) NonNull<Header>);
// SAFETY: headers are shared between threads by design; every access to
// their fields is atomic, and values are reached only under the protocol.
unsafe impl Send for Obj {}

impl Obj {
    /// A grey-buffer entry for `h` not shaded yet (the low address bit:
    /// headers are 8-aligned): a cell barrier queues a cell's children so,
    /// and whoever takes the entry (the collector's drain, an assist)
    /// shades it, and traces it if that turned it grey
    /// ([`to_trace`](Self::to_trace)).
    #[inline]
    pub(crate) fn pending(h: NonNull<Header>) -> Obj {
        Obj(h.map_addr(|a| a | 1))
    }

    /// The header, without the pending tag.
    #[inline]
    pub(crate) fn header(self) -> NonNull<Header> {
        // The untagged address is the header's, which is never null.
        self.0.map_addr(|a| std::num::NonZero::new(a.get() & !1).unwrap())
    }

    /// What to trace for a grey-buffer entry: a shaded object as it is; a
    /// pending one only if this call shades it (else it was marked
    /// already, and whoever marked it traces it or has) and its type holds
    /// handles (`Header::shade_to_trace`).
    #[inline]
    pub(crate) fn to_trace(self) -> Option<Obj> {
        if self.0.addr().get() & 1 == 0 {
            return Some(self);
        }
        let h = self.header();
        // A pending object was live when queued, under a barrier mark,
        // during this cycle, and every entry is taken by the cycle's
        // termination loop, which follows a grace period. An old object is
        // freed only by this cycle's sweep, after the last take. Only
        // newborns are claimed at zero during a cycle, and their slots are
        // freed after the cycle's walks (`heap::free_deferred`); a newborn
        // is born marked and keeps MARKED until the walk that ends the
        // cycle, so this shade never makes a claimed one grey (model:
        // `--defer-shade --count-stamp --pf-newborn`).
        // SAFETY: the header is still allocated (see above).
        unsafe { h.as_ref() }.shade_to_trace().then_some(Obj(h))
    }

    /// Asks the CPU to fetch the entry's header into the cache: the
    /// drains read thousands of headers queued by cell barriers, most of
    /// them cache misses, and issuing them ahead overlaps the misses.
    #[inline]
    pub(crate) fn prefetch(self) {
        #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
        // SAFETY: a prefetch is a hint: it never faults, whatever the
        // address, and reads nothing the program sees.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(self.header().as_ptr().cast())
        };
    }
}

/// Every record ever made.
struct Registry(Mutex<Vec<&'static ThreadRec>>);

#[cfg(not(loom))]
static REGISTRY: Registry = Registry(Mutex::new(Vec::new()));
#[cfg(loom)]
loom::lazy_static! {
    static ref REGISTRY: Registry = Registry(Mutex::new(Vec::new()));
}

impl Registry {
    fn snapshot(&self) -> Vec<&'static ThreadRec> {
        crate::loom::lock(&self.0).clone()
    }
}

#[cfg(loom)]
impl Drop for Registry {
    /// The end of a loom execution: every thread has finished, and no
    /// thread-local refers to a record when it is destroyed.
    fn drop(&mut self) {
        for r in self.0.get_mut().unwrap().drain(..) {
            // SAFETY: made by `Box::leak` in `register`; the execution that
            // used it is over, so no reference to it is used again.
            drop(unsafe { Box::from_raw(std::ptr::from_ref(r).cast_mut()) });
        }
    }
}

#[cfg(not(loom))]
struct Registration(&'static ThreadRec);

#[cfg(not(loom))]
impl Drop for Registration {
    fn drop(&mut self) {
        // Later destructors on this thread that run a barrier must not use
        // a record another thread may claim: they find none, and register
        // again without a way to give it back (REG is gone), keeping it.
        let _ = REC.try_with(|r| r.set(None));
        // Its shades stay in the buffer for the collector, which drains
        // recycled records too.
        self.0.owned.store(false, Ordering::SeqCst);
    }
}

#[cfg(not(loom))]
thread_local! {
    static REC: Cell<Option<&'static ThreadRec>> = const { Cell::new(None) };
    static REG: Cell<Option<Registration>> = const { Cell::new(None) };
}
#[cfg(loom)]
loom::thread_local! {
    static REC: Cell<Option<&'static ThreadRec>> = Cell::new(None);
}

/// This thread's record, registering the thread on first use. Registration
/// is under the registry lock, which a grace period also takes: a thread
/// the collector does not wait for reads the phase after the collector set
/// it.
#[inline]
fn rec() -> &'static ThreadRec {
    REC.with(|r| match r.get() {
        Some(rec) => rec,
        None => register(r),
    })
}

#[cold]
fn register(slot: &Cell<Option<&'static ThreadRec>>) -> &'static ThreadRec {
    let mut reg = crate::loom::lock(&REGISTRY.0);
    let rec =
        match reg.iter().find(|r| r.owned.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_ok()) {
            Some(r) => *r,
            None => {
                let r: &'static ThreadRec = Box::leak(Box::new(ThreadRec {
                    in_barrier: AtomicBool::new(false),
                    grey: Mutex::new(Vec::new()),
                    owned: AtomicBool::new(true),
                }));
                reg.push(r);
                r
            }
        };
    drop(reg);
    slot.set(Some(rec));
    // The record is released when the thread's locals are destroyed. A
    // thread that can no longer run destructors keeps it (harmless).
    #[cfg(not(loom))]
    let _ = REG.try_with(|g| g.set(Some(Registration(rec))));
    rec
}

/// Whether a cycle is between its start and the end of marking.
#[inline]
pub(crate) fn phase_on() -> bool {
    PHASE.load_seqcst()
}

/// The cycle number of [`CYCLE_SEQ`] (odd: a cycle's walks may read
/// objects). Read under a barrier mark, an even value stays current until
/// the mark goes down: [`begin_cycle`] waits for a grace period after
/// bumping it. `Gc::drop` reads it before its decrement too (SeqCst both:
/// the collector bumps it before it reads any count).
#[inline]
pub(crate) fn cycle_seq() -> u32 {
    CYCLE_SEQ.load_seqcst()
}

/// The start of a cycle, before its phase goes on: from here mutators
/// leave objects whose last handle goes to the collector, and those that
/// claimed one before are past the claim (the grace period), so every
/// walk of this cycle sees it unpublished.
pub(crate) fn begin_cycle() {
    #[cfg(not(loom))]
    {
        let heap = super::heap::HEAP_LIVE.load(Ordering::Relaxed);
        set_spare_stock(heap);
        super::snapshot::snapshots().set_budget(heap, super::pacer::limit_room());
    }
    stock_spare();
    CYCLE_SEQ.fetch_add(1, Ordering::SeqCst);
    grace_period();
}

/// The end of a cycle's walks (after C10's choice of garbage): mutators
/// may free objects whose last handle goes again (those whose count they
/// decremented from here on).
pub(crate) fn end_cycle() {
    CYCLE_SEQ.fetch_add(1, Ordering::SeqCst);
    // The stock for the next cycle, now: what this one's barriers took
    // beyond it goes back to the allocator here, not at the next start.
    #[cfg(not(loom))]
    set_spare_stock(super::heap::HEAP_LIVE.load(Ordering::Relaxed));
}

/// Turns the phase on (a new cycle, whose number goes up first) or off.
pub(crate) fn set_phase(on: bool) {
    if on {
        // 1 ..= MAX_EPOCH, wrapping (cells keep it shifted left by three;
        // a cell's record that matches again after a wrap makes the count
        // skip the cell, which is safe).
        let e = EPOCH.load(Ordering::Relaxed) % MAX_EPOCH + 1;
        EPOCH.store(e, Ordering::SeqCst);
    }
    PHASE.store(on, Ordering::SeqCst);
}

/// The largest cycle number ([`epoch`]); the next is 1 again. Cells keep
/// it above three state bits (`cell.rs` asserts that it fits).
pub(crate) const MAX_EPOCH: u32 = (1 << 29) - 1;

/// The number of the cycle before cycle `e`; `None` for cycle 1 (the
/// first, or the first after a wrap: then no cell counts as touched in
/// the previous cycle, which only costs that cycle's barriers their copies).
#[inline]
pub(crate) fn previous_epoch(e: u32) -> Option<u32> {
    (e > 1).then(|| e - 1)
}

/// The current cycle's number (1, 2, ...; read with the phase on, under a
/// barrier mark, it cannot change before the mark goes down: the cycle
/// ends only after a grace period).
#[inline]
pub(crate) fn epoch() -> u32 {
    EPOCH.load(Ordering::SeqCst)
}

/// The barrier mark of the calling thread, up for as long as it lives.
pub(crate) struct Entered(&'static ThreadRec);

/// Raises the calling thread's barrier mark (PROTOCOL.md `enter()`),
/// before it reads the lock, slot or state its barrier depends on.
#[inline]
pub(crate) fn enter() -> Entered {
    let r = rec();
    r.in_barrier.store(true, Ordering::SeqCst);
    Entered(r)
}

impl Entered {
    /// Shades `h` (white → grey) into this thread's grey buffer. `h`
    /// carries the whole box's provenance (the collector traces through it).
    #[inline]
    pub(crate) fn shade(&self, h: NonNull<Header>) {
        // SAFETY: callers pass live objects.
        if unsafe { h.as_ref() }.shade_to_trace() {
            push_grey(&mut crate::loom::lock(&self.0.grey), Obj(h));
        }
    }

    /// Queues every object `each` reports for the drain to shade, taking
    /// the grey buffer's lock once for all of them: a cell's barrier may
    /// report thousands of children, and reading each one's header here
    /// (a cache miss apiece, most of them marked already) was three
    /// quarters of the barrier's time.
    ///
    /// Deferred shading (PROTOCOL.md §8, model flag `--defer-shade`, which
    /// passes in gort's cycle order): equivalent to shading them here for
    /// the protocol, since no decision reads a colour before the drains of
    /// the termination loop, which take every queued entry after each
    /// grace period, the phase going off included (`cycle::run`'s `mark()`
    /// after `set_phase(false)`, mandatory with deferred shading), and the
    /// entries' objects stay allocated until then. This is Go's write
    /// barrier buffer (`wbBuf` in runtime/mwbbuf.go): pointers recorded
    /// cheaply, shaded by `wbBufFlush`; gort's flush is the collector's
    /// drain (or an assist), not the mutator. Cell barriers and assists
    /// always queue.
    ///
    /// `trace` traces the value with the tracer it is given (of `mode`);
    /// returns how many children were queued.
    #[inline]
    pub(crate) fn queue_all(&self, mode: Mode, trace: impl FnOnce(&mut Tracer<'_>)) -> usize {
        let mut grey = crate::loom::lock(&self.0.grey);
        let mut t = Tracer::pending(mode, &mut grey);
        trace(&mut t);
        t.reported()
    }
}

impl Drop for Entered {
    /// Lowers the mark (`exit()`): the shades are in the buffer by now.
    #[inline]
    fn drop(&mut self) {
        self.0.in_barrier.store(false, Ordering::SeqCst);
    }
}

/// How far ahead of its reads a loop over many headers fetches them.
pub(crate) const PREFETCH: usize = 16;

/// Grey objects a thread's buffer holds before it hands them to
/// [`FLUSHED`]: a buffer is always one chunk of this capacity (or none,
/// just after the collector took it), so a barrier that queues thousands
/// of children never reallocates, and the collector takes buffers in O(1)
/// under the thread's lock. (Under loom, whose models shade a few
/// objects, never filled.)
const GREY_CHUNK: usize = 4096;
/// Empty chunks, their pages resident, that the collector keeps ready
/// during a cycle (and that are kept for reuse, at most), for the barriers
/// that queue cells' children right after the count reached them: the
/// larger of [`SPARE_STOCK`], set at each cycle's start, and one chunk per
/// [`GREY_CHUNK`] handles in the cells the count has counted so far
/// ([`counted_cell`]), at most [`SPARE_CAP`]. See [`spare_target`].
///
/// A fresh chunk's pages fault in as a barrier fills them (eight faults,
/// about 24 us on this VM, where a first touch of a page costs 3 us, and
/// at times several times that); a reused one's are resident, and so are
/// the stock's ([`fault_in`]). A barrier copying 10,000 handles fills two
/// or three chunks: from the stock it spends 10-30 us on the CPU, from
/// fresh chunks 40-100 us and more. The barriers' demand comes in bursts:
/// when a cycle has counted most cells before the mutators touch them
/// (gc_wait's first cycle, started by the pacer while the heap was
/// built), their first locks queue hundreds of MB, and the collector,
/// which walks the heap meanwhile, takes full chunks back more slowly
/// than barriers fill them. A stock sized by the last cycle's shortfall
/// alone left those barriers 15-4,400 fresh chunks in the first cycle of
/// a gc_wait run (four runs); one that follows the counted handles, none
/// in three runs of six and 194-2,792 in the others. They are taken
/// during the count (in one run of eight, during the roots walk), while
/// the collector, which takes full chunks back and stocks more, is off
/// the CPU: with [`SPARE_CAP`] at a sixteenth of the heap, half of eight
/// runs took 696-2,445; at an eighth, half took 523-862.
#[cfg(not(loom))]
static SPARE_STOCK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(SPARE_MIN);
/// The most chunks the stock ever holds for a cycle: one per 256 KiB of
/// heap, so at most an eighth of the heap's bytes (128 MiB for 1 GiB),
/// set at each cycle's start and end. `MemStats::gc_sys` counts them, and
/// the memory limit. The end of a cycle gives back what the stock holds
/// beyond [`SPARE_STOCK`].
#[cfg(not(loom))]
static SPARE_CAP: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(SPARE_MIN);
/// Handles in the cells the count has counted in this cycle: each may be
/// copied by a barrier before the mark traces its cell.
#[cfg(not(loom))]
static COUNTED_HANDLES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// [`FRESH_CHUNKS`] when the stock was last set: it fell short by the
/// chunks made since.
#[cfg(not(loom))]
static FRESH_AT_START: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
#[cfg(not(loom))]
const SPARE_MIN: usize = 32;
/// Fresh chunks made since the process started (`__hooks`).
#[cfg(not(loom))]
pub(crate) static FRESH_CHUNKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The stock for the next cycle (called at a cycle's end, and at its
/// start, the heap having grown since), `heap` being the bytes in use:
/// one chunk per 2 MiB of heap (512, 16 MiB, for 1 GiB) or, if more, the
/// last cycle's stock plus twice the fresh chunks it needed, at most
/// [`SPARE_CAP`], at least [`SPARE_MIN`]; chunks beyond it are freed. (In gc_wait's forced
/// cycles, a cycle whose barriers copied twice as many cells as the one
/// before ran short of a stock grown by the shortfall alone.)
#[cfg(not(loom))]
fn set_spare_stock(heap: usize) {
    use std::sync::atomic::Ordering::Relaxed;
    let fresh = FRESH_CHUNKS.load(Relaxed);
    let short = (fresh - FRESH_AT_START.swap(fresh, Relaxed)) as usize;
    let cap = (heap >> 18).max(SPARE_MIN);
    let want = (heap >> 21).max(SPARE_STOCK.load(Relaxed) + 2 * short).clamp(SPARE_MIN, cap);
    SPARE_CAP.store(cap, Relaxed);
    SPARE_STOCK.store(want, Relaxed);
    COUNTED_HANDLES.store(0, Relaxed);
    // What a cycle's copies took beyond that goes back.
    let extra: Vec<Vec<Obj>> = {
        let mut spare = crate::loom::lock_spinning(&SPARE);
        let keep = spare.len().min(want);
        spare.split_off(keep)
    };
    for chunk in extra {
        super::work_mem::shrank(super::work_mem::capacity_bytes(&chunk));
    }
}

/// The count counted a cell holding `handles` handles (`cell.rs`): the
/// stock grows to cover their copy.
#[inline]
pub(crate) fn counted_cell(handles: usize) {
    #[cfg(not(loom))]
    COUNTED_HANDLES.fetch_add(handles, Ordering::Relaxed);
    #[cfg(loom)]
    let _ = handles;
}

/// How many chunks the stock is to hold now (see [`SPARE_STOCK`]).
#[cfg(not(loom))]
fn spare_target() -> usize {
    use std::sync::atomic::Ordering::Relaxed;
    let counted = COUNTED_HANDLES.load(Relaxed) / GREY_CHUNK;
    SPARE_STOCK.load(Relaxed).max(counted.min(SPARE_CAP.load(Relaxed)))
}

/// Full grey buffers handed over by threads, for the collector's drain;
/// and emptied chunks for the threads to reuse.
#[cfg(not(loom))]
static FLUSHED: Mutex<Vec<Vec<Obj>>> = Mutex::new(Vec::new());
#[cfg(not(loom))]
static FLUSHED_ANY: AtomicBool = AtomicBool::new(false);
/// Full buffers [`FLUSHED`] has room for, kept between the collector's
/// takes.
const FLUSHED_ROOM: usize = if cfg!(loom) { 0 } else { 1024 };
/// (Under loom, chunks are not reused: the pool's lock would only add
/// interleavings to explore.)
#[cfg(not(loom))]
static SPARE: Mutex<Vec<Vec<Obj>>> = Mutex::new(Vec::new());
#[cfg(loom)]
loom::lazy_static! {
    static ref FLUSHED: Mutex<Vec<Vec<Obj>>> = Mutex::new(Vec::new());
    static ref FLUSHED_ANY: AtomicBool = AtomicBool::new(false);
}

/// Pushes an entry on the calling thread's grey buffer (`grey`, locked),
/// handing the buffer to [`FLUSHED`] once it is full. The collector drains
/// the threads' buffers before [`FLUSHED`] (see [`drain_grey`]), so an
/// entry in a buffer that moves meanwhile is still seen.
#[inline]
pub(crate) fn push_grey(grey: &mut Vec<Obj>, o: Obj) {
    if grey.len() == grey.capacity() {
        refill_grey(grey);
    }
    grey.push(o);
}

/// Gives a thread whose buffer is full (or was taken) an empty chunk,
/// handing the full one to [`FLUSHED`] (Go's `wbBufFlush`, which hands
/// the pointers to the collector's work buffers).
#[cold]
pub(crate) fn refill_grey(grey: &mut Vec<Obj>) {
    #[cfg(not(loom))]
    let chunk = crate::loom::lock(&SPARE).pop().unwrap_or_else(|| {
        FRESH_CHUNKS.fetch_add(1, Ordering::Relaxed);
        new_chunk()
    });
    #[cfg(loom)]
    let chunk = Vec::with_capacity(GREY_CHUNK);
    let full = std::mem::replace(grey, chunk);
    if !full.is_empty() {
        crate::loom::lock(&FLUSHED).push(full);
        FLUSHED_ANY.store(true, Ordering::SeqCst);
    }
}

/// Stocks [`SPARE`] with chunks whose pages are resident, up to the
/// target of the moment (`spare_target`): the collector, before a cycle
/// and as it walks and drains, so that the faults are its, not a
/// barrier's.
pub(crate) fn stock_spare() {
    #[cfg(not(loom))]
    let want = spare_target();
    #[cfg(not(loom))]
    while crate::loom::lock_spinning(&SPARE).len() < want {
        let mut chunk = new_chunk();
        fault_in(chunk.spare_capacity_mut());
        crate::loom::lock_spinning(&SPARE).push(chunk);
    }
}

/// A new empty chunk, counted in `MemStats::gc_sys` until
/// [`take_chunk`] drops it (chunks live nowhere else: a thread's buffer
/// is one, and records are recycled, never freed).
#[cfg(not(loom))]
fn new_chunk() -> Vec<Obj> {
    let chunk = Vec::with_capacity(GREY_CHUNK);
    super::work_mem::grew(super::work_mem::capacity_bytes(&chunk));
    chunk
}

/// Makes the pages of `room` resident by writing a byte to each.
///
/// Filling it with zeroes did not: the compiler turns an allocation
/// followed by a zero fill into a zeroed allocation, and the allocator
/// hands out fresh pages as they are (the kernel zeroes them), untouched.
/// The stock's pages then faulted in on the barriers' time, and gc_wait's
/// barriers spent 40-80 µs on the CPU at every sixth copy or so, chunks
/// from the stock and fresh ones alike.
#[cfg(not(loom))]
fn fault_in(room: &mut [std::mem::MaybeUninit<Obj>]) {
    const PAGE: usize = 4096;
    let bytes = std::mem::size_of_val(room);
    let base = room.as_mut_ptr().cast::<u8>();
    for at in (0..bytes).step_by(PAGE).chain(bytes.checked_sub(1)) {
        // SAFETY: `at < bytes`, inside `room`, whose bytes may be written
        // (they are uninitialised capacity); volatile, so it is not
        // dropped as a write nobody reads.
        unsafe { base.add(at).write_volatile(0) };
    }
}

/// Moves a taken buffer's entries to `out` and keeps the chunk for reuse.
fn take_chunk(out: &mut Vec<Obj>, mut chunk: Vec<Obj>) {
    out.append(&mut chunk);
    #[cfg(not(loom))]
    if chunk.capacity() == GREY_CHUNK {
        let mut spare = crate::loom::lock_spinning(&SPARE);
        if spare.len() < spare_target() {
            spare.push(chunk);
        } else {
            drop(spare);
            super::work_mem::shrank(super::work_mem::capacity_bytes(&chunk));
        }
    }
}

/// The collector takes the full buffers threads handed over, if any: a
/// cheap check its drain makes now and then, so that a long drain does
/// not leave them piling up.
pub(crate) fn take_flushed(out: &mut Vec<Obj>) {
    if FLUSHED_ANY.load(Ordering::Relaxed) {
        take_all_flushed(out);
    }
    super::snapshot::snapshots().take_pinned(out);
}

fn take_all_flushed(out: &mut Vec<Obj>) {
    // Cleared before the take: a buffer handed over after the take sets
    // it again.
    FLUSHED_ANY.store(false, Ordering::Relaxed);
    // Drained, not taken: the list keeps its room, so a thread handing a
    // buffer over does not grow it. Growing it, a push reallocated in the
    // barrier (gc_wait: pushes of 45-115 µs on the CPU, most of the
    // barriers over 90 µs).
    let full: Vec<Vec<Obj>> = {
        let mut flushed = crate::loom::lock_spinning(&FLUSHED);
        let full = flushed.drain(..).collect();
        flushed.reserve(FLUSHED_ROOM);
        full
    };
    for b in full {
        take_chunk(out, b);
    }
}

/// A mutator's shade outside any other barrier (`Gc::clone` that read
/// the phase on). The phase is read again with the mark up, so the shade
/// lands before the grace period that follows the phase going off, or not
/// at all: no grey object outlives its cycle, and an object freed at zero
/// after the cycle is in no grey buffer (model flag `--prompt-free`). A
/// shade skipped that way is one that could have landed after the cycle
/// chose its garbage anyway (PROTOCOL.md: the clone needs no mark).
#[cold]
pub(crate) fn shade_from_mutator(h: NonNull<Header>) {
    let e = enter();
    if phase_on() {
        e.shade(h);
    }
}

/// The collector's grace period: returns once every registered thread has
/// been seen with its barrier mark down. A barrier holds no lock a
/// collector could need and never parks, so this never waits for long.
pub(crate) fn grace_period() {
    // The collector acts on Relaxed reads of what a barrier wrote after
    // raising its mark: a lock word found busy (the cell is skipped: its
    // holder shades the children) and a colour found marked (nothing is
    // pushed: whoever marked it does). Those writes are SeqCst (release)
    // RMWs, so this fence makes each such read synchronize with its write:
    // the mark's rise then happens before the loads below, which see it up
    // or see its lowering after the shades. Without the fence nothing
    // orders a Relaxed read before a later load of another variable.
    crate::loom::sync::atomic::fence(Ordering::SeqCst);
    for r in REGISTRY.snapshot() {
        let mut turns = 0u32;
        while r.in_barrier.load_seqcst() {
            crate::loom::spin_turn(&mut turns);
        }
    }
}

/// Grey objects the collector has handed out for mark assists (Go's
/// global work buffers, `gcWork`), and whether assists run (the heap has
/// reached its goal, so allocating threads pay for marking).
#[cfg(not(loom))]
static SHARED: Mutex<Vec<Obj>> = Mutex::new(Vec::new());
#[cfg(not(loom))]
static ASSISTS: AtomicBool = AtomicBool::new(false);
#[cfg(loom)]
loom::lazy_static! {
    static ref SHARED: Mutex<Vec<Obj>> = Mutex::new(Vec::new());
    static ref ASSISTS: AtomicBool = AtomicBool::new(false);
}

/// Turns mark assists on (the collector then shares grey objects) or off.
pub fn set_assists(on: bool) {
    ASSISTS.store(on, Ordering::Relaxed);
}

/// [`SHARED`]'s capacity as `MemStats::gc_sys` last counted it (updated
/// under its lock by the collector, the only thread that grows or frees
/// it).
static SHARED_COUNTED: std::sync::Mutex<super::work_mem::Counted> =
    std::sync::Mutex::new(super::work_mem::Counted::NONE);
/// Entries [`SHARED`] keeps room for from one cycle to the next.
const SHARED_KEPT: usize = 1 << 16;

/// Counts [`SHARED`]'s capacity in `gc_sys`.
fn note_shared(w: &Vec<Obj>) {
    let bytes = super::work_mem::capacity_bytes(w);
    SHARED_COUNTED.lock().unwrap_or_else(|e| e.into_inner()).set(bytes);
}

/// If assists run and none is shared now, shares half of `stack`. The
/// half is copied outside [`SHARED`]'s lock, into the shared buffer taken
/// out for the copy (keeping its room), so that an assist never waits for
/// it: half of a stack that took in a few cells' children is tens of
/// thousands of entries. Until it is back the entries are only this
/// collector thread's, which is the one that decides termination.
pub(crate) fn share_grey(stack: &mut Vec<Obj>) {
    if !ASSISTS.load(Ordering::Relaxed) {
        return;
    }
    let mut buf = {
        let mut w = crate::loom::lock_spinning(&SHARED);
        if !w.is_empty() {
            return;
        }
        std::mem::take(&mut *w)
    };
    let half = stack.len() / 2;
    buf.extend(stack.drain(..half));
    let mut w = crate::loom::lock_spinning(&SHARED);
    if w.is_empty() {
        // Assists that put entries back meanwhile left nothing: no copy.
        std::mem::swap(&mut *w, &mut buf);
    } else {
        w.append(&mut buf);
    }
    note_shared(&w);
}

/// The collector takes back the grey objects no assist has taken.
pub(crate) fn unshare_grey(out: &mut Vec<Obj>) {
    out.append(&mut crate::loom::lock_spinning(&SHARED));
}

/// The end of a cycle's mark: frees [`SHARED`]'s room if it is empty and
/// grew past [`SHARED_KEPT`] entries (half of a mark stack, at most).
pub(crate) fn release_shared() {
    let mut w = crate::loom::lock_spinning(&SHARED);
    if w.is_empty() && w.capacity() > SHARED_KEPT {
        *w = Vec::new();
        note_shared(&w);
    }
}

/// Grey objects an assist takes from the shared ones at a time: this
/// many, or a sixteenth of its budget if more (a mark worker's budget is
/// large: with batches of 16, the shared lock was taken once per 16
/// objects marked), up to [`MAX_BATCH`].
const ASSIST_BATCH: usize = if cfg!(loom) { 2 } else { 16 };
const MAX_BATCH: usize = if cfg!(loom) { 2 } else { 1024 };

/// A mark assist (Go's `gcAssistAlloc`), and the mark workers' loop: with
/// this thread's barrier mark up, takes grey-buffer entries the collector
/// shared and does with them what the collector's drain does: a pending
/// entry (queued by a cell barrier, or a child pushed here) is shaded, and
/// an entry that is grey (or that this shade turned grey) is traced, its
/// children pushed on this call's own stack as pending entries (copied,
/// their headers untouched) and taken next, until it has done `budget`
/// units of work (an entry taken and each child pushed are one unit each)
/// or none are shared. Returns how many objects it traced and the work
/// done (0: none were shared). The work, not the objects, bounds how long
/// an allocation assists: an object may have thousands of children.
/// Entries left on the stack go back to the shared ones. (Queueing the
/// children on the thread's grey buffer instead sent a cell's children
/// back to the collector to shade: a worker that took cells marked
/// nothing else.)
///
/// Sound for the reasons a barrier's queueing is: the mark is up from
/// before the take until every entry taken or pushed is shaded or back
/// with the shared ones, so a grace period that starts after the take
/// waits for it, and the collector takes the shared ones back after each
/// grace period; an object taken is grey or pending, hence live until the
/// sweep, which follows the last grace period, and so is a child read from
/// it. Cells are try-locked as the collector does (`Mode::Collector`); one
/// this thread holds is skipped, its barrier having queued its children
/// when it was acquired (or the count, finding it busy, having made them
/// roots).
pub fn assist_mark(budget: usize) -> (usize, usize) {
    let _e = enter();
    let (mut traced, mut work) = (0, 0);
    let mut stack: Vec<Obj> = Vec::new();
    while work < budget {
        if stack.is_empty() {
            let mut w = crate::loom::lock(&SHARED);
            let n = w.len().min(ASSIST_BATCH.max(budget / 16).min(MAX_BATCH));
            let at = w.len() - n;
            stack.extend(w.drain(at..));
            drop(w);
            if stack.is_empty() {
                break;
            }
            // Most entries are pending children of a cell, most of them
            // marked already: fetch their headers together.
            stack.iter().for_each(|o| o.prefetch());
        }
        let Some(g) = stack.pop() else { break };
        if let Some(&ahead) = stack.len().checked_sub(PREFETCH).and_then(|i| stack.get(i)) {
            ahead.prefetch();
        }
        work += 1;
        let Some(Obj(o)) = g.to_trace() else { continue };
        // A grey object is live until the sweep (above). Its children are
        // copied under the cell's try-lock.
        let mut t = Tracer::stack(Mode::Collector, &mut stack);
        // SAFETY: as above.
        unsafe { Header::trace(o, &mut t) };
        traced += 1;
        work += t.reported();
    }
    if !stack.is_empty() {
        // Still grey or pending, and still covered by our mark until they
        // are back (the collector takes the shared ones back after each
        // grace period).
        crate::loom::lock(&SHARED).append(&mut stack);
    }
    (traced, work)
}

/// Moves every thread's grey objects into `out`: each thread's buffer,
/// then the full buffers threads handed over (in that order: a buffer
/// handed over while this runs is then seen in one place or the other).
/// A thread's buffer is swapped out under its lock, never copied there, so
/// a barrier never waits for the collector to copy it.
pub(crate) fn drain_grey(out: &mut Vec<Obj>) {
    for r in REGISTRY.snapshot() {
        let b = std::mem::take(&mut *crate::loom::lock_spinning(&r.grey));
        take_chunk(out, b);
    }
    take_all_flushed(out);
    // Kept lists that barriers pinned (`snapshot.rs`), after the buffers:
    // a barrier pins with its mark up, as it queues.
    super::snapshot::snapshots().take_pinned(out);
}
