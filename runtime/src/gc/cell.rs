//! Cells for mutable state inside `Gc` objects: `GcMutex`, `GcRwLock` and
//! `GcAtomic`, with the collector's barriers (PROTOCOL.md §2).
//!
//! Every acquisition — read guards included — raises the thread's barrier
//! mark before it tries the lock and, while a cycle runs, runs the cell's
//! barrier before lowering it: the first acquisition after the cycle's
//! count has counted the cell queues its current children for the
//! collector; one before the count does nothing, and the count then skips
//! the cell (`barrier_shade`). A lock that is busy is waited for with the
//! mark down: the goroutine parks (a plain thread blocks) until the lock
//! is released, then tries again. The collector only ever *tries* a
//! cell's lock; a cell it finds busy is skipped: the count leaves its
//! children as roots, and the marker relies on the holder's barrier.
//!
//! The children of a cell nested inline in the value count too: an
//! exclusive acquisition queues them, reading the nested cells without
//! their locks (the holder could move one out through its guard and empty
//! it with `into_inner`, which runs no barrier). A shared acquisition skips
//! them: through `&T` they are reached only by acquiring the nested cell.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};

use super::barrier::{self, Entered};
use super::handle::Gc;
use super::header::{Header, IN_SLOT};
use super::snapshot;
use super::stall;
use super::trace::{Mode, Trace, Tracer};
use crate::loom::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use crate::loom::{const_fn, LoadSeqCst};
use crate::sync::sema::{semacquire, semrelease};
use crate::sync::wake::Reason;

const WRITER: u64 = 1;
const READER: u64 = 2;
const READERS: u64 = 0x7FFF_FFFE;
/// Held by a tracer (the collector, an assist or a mark worker) reading
/// the value: excludes writers, not readers.
const COLLECTOR: u64 = 1 << 31;
const WAITER: u64 = 1 << 32;

/// A reader-writer lock word with waiters parked on a semaphore. Barging:
/// a released lock wakes every waiter and they all try again.
struct RawRw {
    state: AtomicU64,
    sema: AtomicU32,
    /// Who reached the cell first in the cycle under way, and whether
    /// its children have been queued since: [`record`] of the cycle's
    /// number, plus one of the states [`ACQUIRED`], [`COUNTED`],
    /// [`QUEUED`], [`QUEUED_EXCLUSIVE`], [`TRACED`], [`SKIPPED`],
    /// [`TOUCHED`] or [`SNAPPED`] (see
    /// [`barrier_shade`]). A record of an earlier cycle means neither has
    /// yet.
    shaded: AtomicU32,
}

/// Bits of a record (`RawRw::shaded`) below the cycle's number.
const STATE_BITS: u32 = 3;
/// The state in a record.
const STATE: u32 = (1 << STATE_BITS) - 1;
// Every cycle number fits above the state bits.
const _: () = assert!(barrier::MAX_EPOCH <= u32::MAX >> STATE_BITS);
/// In a record: a barrier reached the cell before the count, which skips
/// it; or, after a [`TRACED`] or [`SKIPPED`], a barrier touched it since.
const ACQUIRED: u32 = 0;
/// In a record: the count counted the children; no barrier has queued
/// them since.
const COUNTED: u32 = 1;
/// In a record: counted, then queued by a shared barrier (which skips
/// nested cells).
const QUEUED: u32 = 2;
/// In a record: counted, then queued by an exclusive barrier.
const QUEUED_EXCLUSIVE: u32 = 3;
/// In a record: counted, then traced by the mark before any barrier
/// ([`RawRw::stamp_traced`]); barriers queue nothing.
const TRACED: u32 = 4;
/// In a record: the count skipped the cell because a barrier touched it in
/// the previous cycle ([`RawRw::stamp_counted`]); barriers queue nothing.
const SKIPPED: u32 = 5;
/// In a record: a barrier touched the cell in this cycle and the count
/// has visited it: [`ACQUIRED`] once the count skipped it, or a barrier
/// after [`TRACED`] or [`SKIPPED`]. Barriers queue nothing. A cell left
/// [`ACQUIRED`] was never visited by the count: that of an object born
/// during the cycle, which is not hot in the next one (its garbage is
/// freed by that cycle, as before).
const TOUCHED: u32 = 6;
/// In a record: counted, and the children the count read are kept
/// (`snapshot.rs`); no barrier has run since. The first barrier pins the
/// list ([`QUEUED_EXCLUSIVE`]) and the mark shades it without the lock
/// ([`TRACED`]), whichever comes first.
const SNAPPED: u32 = 7;

/// The record of cycle `epoch` with no state bits.
#[inline]
fn record(epoch: u32) -> u32 {
    epoch << STATE_BITS
}

/// Whether this cycle's count skips the cells a barrier touched in the
/// previous cycle ([`RawRw::stamp_counted`]): on for the cycles the pacer
/// starts, off for those that serve `gort::gc()`, which frees everything
/// unreachable when it was called (Go's `runtime.GC`). Set by the
/// collector before the cycle begins. (Under loom, one per execution, so
/// that models running side by side do not share it; a std atomic inside,
/// which adds no interleavings.)
#[cfg(not(loom))]
static SKIP_HOT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
#[cfg(loom)]
loom::lazy_static! {
    static ref SKIP_HOT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
}

/// Sets [`SKIP_HOT`] for the next cycle.
pub(crate) fn set_skip_hot(on: bool) {
    SKIP_HOT.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// The fewest handles a young cell holds for the pacer's count to skip it
/// ([`RawRw::stamp_counted`]): a barrier's copy of 1,024 handles takes a
/// microsecond or two. (Under loom, set per model by
/// `__loom::gc::young_skip_min`; none is skipped unless a model sets it.)
#[cfg(not(loom))]
const YOUNG_SKIP_MIN: usize = 1024;
#[cfg(loom)]
loom::lazy_static! {
    static ref YOUNG_SKIP_MIN_LOOM: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(usize::MAX);
}

/// See [`YOUNG_SKIP_MIN`].
#[inline]
fn young_skip_min() -> usize {
    #[cfg(not(loom))]
    return YOUNG_SKIP_MIN;
    #[cfg(loom)]
    return YOUNG_SKIP_MIN_LOOM.load(std::sync::atomic::Ordering::Relaxed);
}

/// Sets the young cells' threshold for a loom model (`loom_heap.rs`).
#[cfg(loom)]
pub(crate) fn set_young_skip_min(n: usize) {
    YOUNG_SKIP_MIN_LOOM.store(n, std::sync::atomic::Ordering::Relaxed);
}

/// What the mark does at a cell ([`RawRw::needs_trace`]).
enum Need {
    /// Nothing: its children are roots, queued or traced already.
    Nothing,
    /// Trace its value, under a try-lock.
    Value,
    /// Shade the children the count kept (`snapshot.rs`).
    Kept,
}

/// What the count does with a cell it holds ([`RawRw::stamp_counted`]).
enum Stamp {
    /// Count its children (the record says [`COUNTED`]).
    Count,
    /// Leave them roots.
    Skip,
    /// A young cell, in a pacer's cycle: count it only if it holds fewer
    /// than [`YOUNG_SKIP_MIN`] handles. Carries the record read.
    Young(u32),
}

impl RawRw {
    const_fn! {
        fn new() -> RawRw {
            RawRw { state: AtomicU64::new(0), sema: AtomicU32::new(0), shaded: AtomicU32::new(0) }
        }
    }

    /// The count's side of [`barrier_shade`]'s record: whether the count
    /// of the cycle under way reached this cell before any barrier (and
    /// so owns its record: the next barrier queues the children).
    ///
    /// A hot cell is skipped as if a barrier had reached it first, when
    /// [`SKIP_HOT`] is on: one whose record says a barrier touched it in
    /// the previous cycle, whose count visited it ([`QUEUED`],
    /// [`QUEUED_EXCLUSIVE`], [`TOUCHED`] of that cycle; not [`ACQUIRED`],
    /// which is left on the cells of objects born in that cycle). Its
    /// children look held from outside and are roots, and no barrier of
    /// this cycle copies them: on a heap whose cells are
    /// locked all the time (gc_wait's), that was a copy of up to 10,000
    /// handles at the first acquisition of each cell after the count. The
    /// count may skip any cell it likes, as it skips a busy one
    /// (PROTOCOL.md §8, model flags `--count-skip-hot`, `--count-skip-all`).
    /// The price is floating garbage: a cell that became garbage after
    /// the previous cycle keeps its children for this one, so a garbage
    /// cycle through it is freed by the next.
    ///
    /// The pacer's count also skips a young cell holding at least
    /// [`YOUNG_SKIP_MIN`] handles: one the previous cycle's count never
    /// reached (born since, or busy then). Its size is known only by
    /// reading it: [`Stamp::Young`] asks the caller to count its handles
    /// first. In the first cycle after a large heap is built (gc_wait's)
    /// most cells are young. Counted, they were copied by the mutators'
    /// first locks while the count ran: up to 2,935 cells of 10,000
    /// handles, more than the chunks kept ready, so barriers faulted fresh
    /// ones in (up to 1,660 chunks, and barriers of several hundred µs).
    /// Skipped, 1,260-2,024 cells were copied and no chunk was fresh (four
    /// alternated runs each): those the cycle before had counted. Same
    /// price: a garbage cycle through a large young cell is freed a cycle
    /// later. Small cells, whose copies cost little, are counted: a ring
    /// of them made and dropped between two cycles is freed by the next,
    /// as before.
    fn stamp_counted(&self) -> Stamp {
        let e = barrier::epoch();
        let now = record(e);
        let s = self.shaded.load(Ordering::SeqCst);
        if s & !STATE == now {
            // A barrier got there first: skipped, and hot for the next
            // cycle. Lost: only to another barrier, which writes nothing
            // over ACQUIRED.
            let _ = self.shaded.compare_exchange(now | ACQUIRED, now | TOUCHED, Ordering::SeqCst, Ordering::SeqCst);
            return Stamp::Skip;
        }
        if !SKIP_HOT.load(std::sync::atomic::Ordering::Relaxed) {
            return self.stamp(s, COUNTED);
        }
        let previous = barrier::previous_epoch(e).map(record);
        if previous == Some(s & !STATE) && matches!(s & STATE, QUEUED | QUEUED_EXCLUSIVE | TOUCHED) {
            // Hot. Lost to a barrier: ACQUIRED, skipped as well.
            let _ = self.stamp(s, SKIPPED);
            return Stamp::Skip;
        }
        if previous != Some(s & !STATE) {
            return Stamp::Young(s);
        }
        self.stamp(s, COUNTED)
    }

    /// The count's record `now | state` over `s`, read before; [`Stamp::Count`]
    /// if it is written and says [`COUNTED`], [`Stamp::Skip`] otherwise
    /// (lost to a barrier, whose ACQUIRED means skipped).
    fn stamp(&self, s: u32, state: u32) -> Stamp {
        let now = record(barrier::epoch());
        match self.shaded.compare_exchange(s, now | state, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) if state == COUNTED => Stamp::Count,
            _ => Stamp::Skip,
        }
    }

    /// Whether the mark must trace this cell's value, read without the
    /// lock (`trace_cell`, [`Mode::Collector`]): only if its record is
    /// [`COUNTED`] or [`QUEUED`] in this cycle. Any other record covers
    /// the value's children without the mark (PROTOCOL.md §8, model flag
    /// `--mark-counted-only`):
    /// - [`SKIPPED`], [`ACQUIRED`] or [`TOUCHED`]: the count skipped the
    ///   cell, so its children, nested cells' included, look held from
    ///   outside and are roots;
    /// - an earlier cycle's record: the count found the cell busy and
    ///   skipped it (an object born during the cycle is born marked and
    ///   never traced);
    /// - [`QUEUED_EXCLUSIVE`]: an exclusive barrier queued the children,
    ///   nested cells' included;
    /// - [`TRACED`]: traced already.
    ///
    /// Children put in the cell since come from handles that had their own
    /// barriers. None of those records becomes [`COUNTED`] or [`QUEUED`]
    /// again in the cycle, so the answer holds once read. A [`QUEUED`]
    /// cell is traced, because a shared barrier skips nested cells: their
    /// counted children are covered by nobody else.
    ///
    /// In gc_wait's steady state under the pacer every cell is hot, and
    /// this is what spares the mutators the collector's hold of a cell of
    /// 10,000 handles: the mark no longer takes the lock of a cell the
    /// count skipped.
    ///
    /// A [`SNAPPED`] cell needs its kept list traced, not its value
    /// ([`Need::Kept`]), and no lock.
    fn needs_trace(&self) -> Need {
        let now = record(barrier::epoch());
        match self.shaded.load(Ordering::SeqCst) ^ now {
            COUNTED | QUEUED => Need::Value,
            SNAPPED => Need::Kept,
            _ => Need::Nothing,
        }
    }

    /// The count's record once it has kept the children it counted
    /// (`snapshot.rs`): [`COUNTED`] to [`SNAPPED`], unless a `GcRwLock`
    /// reader's barrier queued them meanwhile (whether it was written).
    fn stamp_snapped(&self) -> bool {
        let now = record(barrier::epoch());
        self.shaded.compare_exchange(now | COUNTED, now | SNAPPED, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// The mark's claim on a [`SNAPPED`] cell's kept list, without the
    /// lock: whether it moved the record to [`TRACED`] (then the list is
    /// its to shade) before a barrier pinned it.
    fn stamp_kept_traced(&self) -> bool {
        let now = record(barrier::epoch());
        self.shaded.compare_exchange(now | SNAPPED, now | TRACED, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// The mark's side of the record, called by a tracer holding the cell
    /// before it traces the value (`trace_cell`, [`Mode::Collector`]):
    /// whether to trace it ([`needs_trace`](Self::needs_trace), read again
    /// under the hold). If the count counted the cell and no barrier has
    /// queued its children since, the children the count counted are the
    /// ones this trace finds (only a barrier's holder can take one out),
    /// and they go on the tracer's mark stack in this hold, so no later
    /// barrier of the cycle needs to queue them: the record goes to
    /// [`TRACED`] (PROTOCOL.md §8, model flag `--mark-stamp`), which
    /// barriers treat as [`QUEUED_EXCLUSIVE`]: the trace also goes into the
    /// nested cells, and traces each one it finds free that needs it; a
    /// busy one has a writer, whose own barrier queued its counted children
    /// (or the count found it busy or acquired and skipped it). The stamp
    /// must come in the same hold as the trace: stamped before the
    /// try-lock, a barrier in between would queue nothing and take out a
    /// child the trace then misses (`--mark-stamp-early` fails S3 and ten
    /// more scenarios).
    fn stamp_traced(&self) -> bool {
        let now = record(barrier::epoch());
        match self.shaded.load(Ordering::SeqCst) ^ now {
            // A reader's barrier may store QUEUED meanwhile (a `GcRwLock`'s
            // readers share the tracer's hold): then the CAS fails, or the
            // store overwrites it, and a later exclusive barrier queues the
            // children again, which is only work. Traced either way.
            COUNTED => {
                let _ = self.shaded.compare_exchange(now | COUNTED, now | TRACED, Ordering::SeqCst, Ordering::SeqCst);
                true
            }
            QUEUED => true,
            _ => false,
        }
    }

    /// Takes the lock for writing if no goroutine holds it. A tracer's
    /// hold is waited out (it copies the value's handles and never waits
    /// for anything meanwhile): as Go's `TryLock`, this fails only when a
    /// goroutine or thread holds the lock.
    fn try_write(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & (WRITER | READERS) == 0 {
            if s & COLLECTOR != 0 {
                s = self.wait_out_tracer();
                continue;
            }
            match self.state.compare_exchange_weak(s, s | WRITER, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(a) => s = a,
            }
        }
        false
    }

    /// Spins (then yields, then sleeps) until no tracer holds the lock, or
    /// a goroutine or thread does (`try_write` then fails); returns the
    /// lock word then. Timed as [`stall::Kind::TracerWait`]: a tracer
    /// preempted while holding the cell makes the writer wait for the OS
    /// to run it again. A writer that kept yielding then burned its CPU in
    /// system calls (gc_wait: 1.1–1.4 ms on the CPU in one wait) and could
    /// keep the tracer it waited for off that CPU: after 16 yields it
    /// sleeps instead, 20 µs at first and twice as long each time, up to
    /// 640 µs. (Sleeping 20 µs at a time, it slept a hundred times or more
    /// behind a tracer switched out for a time slice, a few µs of system
    /// time each: up to 265 µs on the CPU in one wait.)
    #[cold]
    fn wait_out_tracer(&self) -> u64 {
        let t = stall::start();
        let mut turns = 0;
        let mut nap = 20;
        let mut s = self.state.load(Ordering::Relaxed);
        while s & COLLECTOR != 0 && s & (WRITER | READERS) == 0 {
            if cfg!(not(loom)) && turns >= 80 {
                std::thread::sleep(std::time::Duration::from_micros(nap));
                nap = (nap * 2).min(640);
            } else {
                crate::loom::spin_turn(&mut turns);
            }
            s = self.state.load(Ordering::Relaxed);
        }
        t.stop(stall::Kind::TracerWait);
        s
    }

    /// A tracer's hold: shared with readers, excluding writers and other
    /// tracers (a cell busy with either is skipped: its holder shades, or
    /// traces, its children).
    fn try_collect(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & (WRITER | COLLECTOR) == 0 {
            match self.state.compare_exchange_weak(s, s | COLLECTOR, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(a) => s = a,
            }
        }
        false
    }

    fn try_read(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & WRITER == 0 {
            match self.state.compare_exchange_weak(s, s + READER, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(a) => s = a,
            }
        }
        false
    }

    /// Parks until the lock may be free for `write` (or a read); returns
    /// at once if it already is.
    #[cold]
    fn wait(&self, write: bool, reason: Reason) {
        let busy = if write { WRITER | READERS | COLLECTOR } else { WRITER };
        let mut s = self.state.load(Ordering::Relaxed);
        while s & busy != 0 {
            match self.state.compare_exchange_weak(s, s + WAITER, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => {
                    let t = stall::start();
                    semacquire(&self.sema, false, reason);
                    t.stop(stall::Kind::LockWait);
                    return;
                }
                Err(a) => s = a,
            }
        }
    }

    fn unlock(&self, delta: u64) {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let mut n = s - delta;
            let free = n & (WRITER | READERS | COLLECTOR) == 0;
            let woken = if free { n >> 32 } else { 0 };
            n -= woken * WAITER;
            match self.state.compare_exchange_weak(s, n, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => {
                    for _ in 0..woken {
                        semrelease(&self.sema, false);
                    }
                    return;
                }
                Err(a) => s = a,
            }
        }
    }

    /// Acquires with the barrier mark up from before the successful try;
    /// returns the still-raised mark.
    #[inline]
    fn acquire(&self, write: bool, reason: Reason) -> Entered {
        loop {
            let e = barrier::enter();
            if if write { self.try_write() } else { self.try_read() } {
                return e;
            }
            drop(e);
            self.wait(write, reason);
        }
    }
}

/// The barrier of a cell the caller has just acquired (`exclusive`: for
/// writing), holding `v`, its value: while a cycle is on, the children of
/// `v` are queued for the collector to shade if the cycle's count has
/// counted them and no barrier has queued them since.
///
/// The barrier exists for children the count saw inside the cell: a
/// mutator that takes one out makes it neither counted (the count saw it
/// inside) nor shaded. So the cell's record (`RawRw::shaded`) settles,
/// once per cycle and by a compare-exchange, which of the count and the
/// first barrier reaches the cell first (PROTOCOL.md §8, model flag
/// `--count-stamp`):
/// - the barrier ([`ACQUIRED`]): it queues nothing, and the count skips
///   the cell as if it were busy, so its children, then and later, look
///   held from outside and are roots (or were put in by a mutator after
///   the count, from a handle that is a root, was shaded, or is to a
///   newborn);
/// - the count ([`COUNTED`]): the next barrier queues every child, before
///   its holder can take one out, and records that ([`QUEUED`],
///   [`QUEUED_EXCLUSIVE`]); later barriers of the cycle do nothing. If
///   the mark traces the cell before any barrier, it records [`TRACED`]
///   (`RawRw::stamp_traced`), and no barrier of the cycle queues
///   anything: only the first acquisition between the count's visit and
///   the mark's copies the handles.
/// - in the pacer's cycles, the count skips a cell a barrier touched in
///   the previous cycle, recording [`SKIPPED`] (`RawRw::stamp_counted`):
///   as after [`ACQUIRED`], its children are roots and barriers queue
///   nothing.
///
/// - if the count kept the children of a large cell ([`SNAPPED`],
///   `snapshot.rs`), the first barrier copies nothing: it pins the kept
///   list for the collector and records [`QUEUED_EXCLUSIVE`]. On gc_wait's
///   heap that took the barriers that copied 10,000 handles in
///   `gort::gc()`'s cycles from 268-1,378 per cycle to 0-1 (a barrier
///   between the count's hold and its record).
///
/// A barrier that finds [`TRACED`] or [`SKIPPED`] records [`TOUCHED`]:
/// the cell was touched in this cycle, so the next one's count skips it;
/// so does the count that finds [`ACQUIRED`].
///
/// See [`Mode`] for the children inside cells nested in `v`: a shared
/// barrier skips them, so only an exclusive one spares a later exclusive
/// barrier its work.
///
/// The children are queued as pending entries (`Entered::queue_all`: a
/// copy of the handles, no header read; model flag `--defer-shade`).
#[inline]
fn barrier_shade<T: Trace + ?Sized>(raw: &RawRw, e: &Entered, v: &T, exclusive: bool) {
    if !barrier::phase_on() {
        return;
    }
    let now = record(barrier::epoch());
    let mut s = raw.shaded.load(Ordering::SeqCst);
    if s & !STATE != now {
        match raw.shaded.compare_exchange(s, now | ACQUIRED, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return,
            // The count got there first.
            Err(a) => s = a,
        }
    }
    let queue = match s & STATE {
        COUNTED => true,
        QUEUED => exclusive,
        SNAPPED => {
            // The count kept the children: pin them for the collector, which
            // shades them before marking terminates, whatever becomes of
            // the cell (PROTOCOL.md §8, model flag `--count-snap`). Lost:
            // the mark took the list, or another reader pinned it.
            if raw.shaded.compare_exchange(s, now | QUEUED_EXCLUSIVE, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                snapshot::snapshots().pin(raw as *const RawRw as usize);
            }
            false
        }
        TRACED | SKIPPED => {
            // Nothing to queue; the touch makes the cell hot for the next
            // cycle's count. Lost: another barrier touched it.
            let _ = raw.shaded.compare_exchange(s, now | TOUCHED, Ordering::SeqCst, Ordering::SeqCst);
            false
        }
        _ => false,
    };
    if queue {
        queue_children(e, v, exclusive);
        // Every child is queued in our buffer: later barriers may rely on
        // it. A shared barrier never overwrites an exclusive one's record
        // (an exclusive holder is alone). It may overwrite what was
        // written since it read COUNTED, by the count (SNAPPED, after its
        // hold) or by another reader pinning that: the list is then left
        // to the cycle's end, or a later exclusive barrier queues the
        // children again (work, not safety: ours are queued).
        raw.shaded.store(now | if exclusive { QUEUED_EXCLUSIVE } else { QUEUED }, Ordering::SeqCst);
    }
}

/// A cell's acquisition: the lock taken with the barrier mark up, then,
/// during a cycle, the value's children shaded before the mark goes down.
#[inline]
fn lock_shaded<T: Trace + ?Sized>(raw: &RawRw, v: &UnsafeCell<T>, write: bool, reason: Reason) {
    let e = raw.acquire(write, reason);
    // SAFETY: the lock is held (exclusively if `write`).
    barrier_shade(raw, &e, unsafe { &*v.get() }, write);
}

/// Queues the children of a value the caller holds locked on the thread's
/// grey buffer as pending entries for the collector to shade
/// (`Entered::queue_all`): the barrier copies the handles and touches none
/// of their headers.
#[cold]
fn queue_children<T: Trace + ?Sized>(e: &Entered, v: &T, exclusive: bool) {
    let t = stall::start();
    let mode = if exclusive { Mode::ExclusiveBarrier } else { Mode::SharedBarrier };
    // A child of a value we hold locked is live, and stays allocated until
    // the drain takes it (`Obj::to_trace`).
    e.queue_all(mode, |t| v.trace(t));
    t.stop(stall::Kind::Barrier);
}

/// Traces the value behind a cell, as the tracer's [`Mode`] says. A
/// tracer's hold on a `GcMutex` is exclusive in effect (the mutex has no
/// readers; other tracers are excluded), on a `GcRwLock` shared with
/// readers (`T: Sync` there).
fn trace_cell<T: Trace + ?Sized>(lock: &RawRw, v: &UnsafeCell<T>, t: &mut Tracer<'_>) {
    match t.mode() {
        mode @ (Mode::Collector | Mode::Count) => {
            if mode == Mode::Collector {
                match lock.needs_trace() {
                    Need::Nothing => return,
                    Need::Kept => {
                        if lock.stamp_kept_traced() {
                            let kept = snapshot::snapshots().take(lock as *const RawRw as usize);
                            debug_assert!(kept.is_some(), "a snapped cell's children were not kept");
                            if let Some(k) = kept {
                                t.pending_run(k.children());
                            }
                        }
                        return;
                    }
                    Need::Value => {}
                }
            }
            let held = stall::start_wall();
            if lock.try_collect() {
                // What the count counted here: the handles, whether the
                // cell is nested in no other's value, and where its edges
                // start in the count's edge buffer.
                let mut counted = None;
                // The count skips a cell a barrier reached first in this
                // cycle, as if it were busy (see `barrier_shade`).
                if mode == Mode::Collector {
                    if lock.stamp_traced() {
                        // SAFETY: the tracer's hold excludes writers
                        // (readers never change the value).
                        unsafe { (*v.get()).trace(t) };
                    }
                } else {
                    let count = match lock.stamp_counted() {
                        Stamp::Count => true,
                        Stamp::Skip => false,
                        Stamp::Young(s) => {
                            // Its handles, counted without reading a nested
                            // cell (whose record this must not touch).
                            let mut size = Tracer::counting(Mode::SharedBarrier);
                            // SAFETY: as above.
                            unsafe { (*v.get()).trace(&mut size) };
                            let state = if size.reported() >= young_skip_min() { SKIPPED } else { COUNTED };
                            matches!(lock.stamp(s, state), Stamp::Count)
                        }
                    };
                    if count {
                        let (before, at) = (t.reported(), t.edges_len());
                        let top = t.enter_cell();
                        // SAFETY: as above.
                        unsafe { (*v.get()).trace(t) };
                        t.leave_cell();
                        counted = Some((t.reported() - before, top, at));
                    }
                }
                lock.unlock(COLLECTOR);
                held.stop(stall::Kind::CollectorHold);
                if let Some((n, top, at)) = counted {
                    keep_counted(lock, n, top, t.edges_since(at));
                }
            }
        }
        Mode::ExclusiveBarrier => {
            // SAFETY: this cell is inside the value of a cell the tracing
            // thread holds exclusively, so no other thread can reach it but
            // the collector, which only reads the value. Nobody writes it.
            unsafe { (*v.get()).trace(t) }
        }
        Mode::SharedBarrier => {}
    }
}

/// After the count's hold of a cell in which it counted `n` handles (`top`:
/// nested in no other cell's value; `edges`: what it read), keeps them for
/// the mark and the barriers if the cell is large (`snapshot.rs`), and
/// otherwise tells the grey-chunk stock about a copy to come.
///
/// Kept outside the hold, so that the copy does not lengthen it: the
/// record, [`COUNTED`] since the hold, goes to [`SNAPPED`] only if no
/// barrier has run since, which is then still the hold's value. A barrier
/// in between queues the children itself, and the list is dropped. Only a
/// top cell's address stays its own for the cycle (the objects holding it
/// are immutable and not freed before the sweep; a nested cell can be
/// moved out of its container), and the address keys the list.
fn keep_counted(lock: &RawRw, n: usize, top: bool, edges: &[(barrier::Obj, usize)]) {
    let key = lock as *const RawRw as usize;
    let snaps = snapshot::snapshots();
    if top && n >= snapshot::min_handles() && snaps.keep(key, edges.iter().map(|e| e.0)) {
        if !lock.stamp_snapped() {
            snaps.forget(key);
        }
    } else {
        barrier::counted_cell(n);
    }
}

/// A mutual-exclusion lock for state inside `Gc` objects (Go's
/// `sync.Mutex` with the collector's barrier). `lock()` returns the guard
/// directly: no poisoning, as in Go. Blocking parks the goroutine.
///
/// ```
/// use gort::gc::{Gc, GcMutex};
///
/// let list = Gc::new(GcMutex::new(Vec::<Gc<u32>>::new()));
/// list.lock().push(Gc::new(1));
/// assert_eq!(*list.lock()[0], 1);
/// ```
pub struct GcMutex<T: ?Sized> {
    raw: RawRw,
    value: UnsafeCell<T>,
}

// SAFETY: the lock gives one thread at a time access to `T`.
unsafe impl<T: ?Sized + Send> Send for GcMutex<T> {}
// SAFETY: as above; `T: Send` suffices, as for `std::sync::Mutex`.
unsafe impl<T: ?Sized + Send> Sync for GcMutex<T> {}

impl<T> GcMutex<T> {
    const_fn! {
        /// A new unlocked mutex holding `value`.
        pub fn new(value: T) -> GcMutex<T> {
            GcMutex { raw: RawRw::new(), value: UnsafeCell::new(value) }
        }
    }

    /// Consumes the mutex, returning the value.
    ///
    /// ```
    /// assert_eq!(gort::gc::GcMutex::new(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: Trace + ?Sized> GcMutex<T> {
    /// Locks the mutex, parking the goroutine (or blocking the thread)
    /// while another holder has it. Wait reason: `sync.Mutex.Lock`.
    ///
    /// ```
    /// let m = gort::gc::GcMutex::new(0);
    /// *m.lock() += 1;
    /// assert_eq!(*m.lock(), 1);
    /// ```
    pub fn lock(&self) -> GcMutexGuard<'_, T> {
        lock_shaded(&self.raw, &self.value, true, Reason::SyncMutexLock);
        GcMutexGuard { m: self, _not_send: PhantomData }
    }

    /// Locks the mutex if it is free.
    ///
    /// ```
    /// let m = gort::gc::GcMutex::new(0);
    /// let g = m.lock();
    /// assert!(m.try_lock().is_none());
    /// drop(g);
    /// assert!(m.try_lock().is_some());
    /// ```
    pub fn try_lock(&self) -> Option<GcMutexGuard<'_, T>> {
        let e = barrier::enter();
        if !self.raw.try_write() {
            return None;
        }
        // SAFETY: the lock is held.
        barrier_shade(&self.raw, &e, unsafe { &*self.value.get() }, true);
        drop(e);
        Some(GcMutexGuard { m: self, _not_send: PhantomData })
    }
}

impl<T: Default> Default for GcMutex<T> {
    fn default() -> GcMutex<T> {
        GcMutex::new(T::default())
    }
}

impl<T: Trace + ?Sized + fmt::Debug> fmt::Debug for GcMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Some(g) => f.debug_struct("GcMutex").field("data", &&*g).finish(),
            None => f.debug_struct("GcMutex").field("data", &format_args!("<locked>")).finish(),
        }
    }
}

// SAFETY: reports the value's handles when the collector can take the
// lock; a busy cell is skipped (see `barrier_shade`).
unsafe impl<T: Trace + ?Sized> Trace for GcMutex<T> {
    fn trace(&self, t: &mut Tracer<'_>) {
        trace_cell(&self.raw, &self.value, t);
    }
}

/// The guard of a [`GcMutex`]; the lock is released when it is dropped.
pub struct GcMutexGuard<'a, T: ?Sized> {
    m: &'a GcMutex<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a guard gives `&T` only, as `std::sync::MutexGuard` does.
unsafe impl<T: ?Sized + Sync> Sync for GcMutexGuard<'_, T> {}

impl<T: ?Sized> Deref for GcMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.m.value.get() }
    }
}

impl<T: ?Sized> DerefMut for GcMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock exclusively.
        unsafe { &mut *self.m.value.get() }
    }
}

impl<T: ?Sized> Drop for GcMutexGuard<'_, T> {
    fn drop(&mut self) {
        self.m.raw.unlock(WRITER);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for GcMutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A reader-writer lock for state inside `Gc` objects (Go's
/// `sync.RWMutex` with the collector's barrier, run on read guards too).
///
/// ```
/// use gort::gc::{Gc, GcRwLock};
///
/// let cfg = Gc::new(GcRwLock::new(String::from("v1")));
/// *cfg.write() = "v2".into();
/// assert_eq!(*cfg.read(), "v2");
/// ```
pub struct GcRwLock<T: ?Sized> {
    raw: RawRw,
    value: UnsafeCell<T>,
}

// SAFETY: as `std::sync::RwLock`.
unsafe impl<T: ?Sized + Send> Send for GcRwLock<T> {}
// SAFETY: as `std::sync::RwLock`: readers share `&T` across threads.
unsafe impl<T: ?Sized + Send + Sync> Sync for GcRwLock<T> {}

impl<T> GcRwLock<T> {
    const_fn! {
        /// A new unlocked lock holding `value`.
        pub fn new(value: T) -> GcRwLock<T> {
            GcRwLock { raw: RawRw::new(), value: UnsafeCell::new(value) }
        }
    }

    /// Consumes the lock, returning the value.
    ///
    /// ```
    /// assert_eq!(gort::gc::GcRwLock::new(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: Trace + ?Sized> GcRwLock<T> {
    /// Shared access; parks while a writer holds the lock. Wait reason:
    /// `sync.RWMutex.RLock`.
    ///
    /// ```
    /// let l = gort::gc::GcRwLock::new(5);
    /// let (a, b) = (l.read(), l.read());
    /// assert_eq!(*a + *b, 10);
    /// ```
    pub fn read(&self) -> GcReadGuard<'_, T> {
        lock_shaded(&self.raw, &self.value, false, Reason::SyncRWMutexRLock);
        GcReadGuard { l: self, _not_send: PhantomData }
    }

    /// Exclusive access; parks while anyone holds the lock. Wait reason:
    /// `sync.RWMutex.Lock`.
    ///
    /// ```
    /// let l = gort::gc::GcRwLock::new(5);
    /// *l.write() += 1;
    /// assert_eq!(*l.read(), 6);
    /// ```
    pub fn write(&self) -> GcWriteGuard<'_, T> {
        lock_shaded(&self.raw, &self.value, true, Reason::SyncRWMutexLock);
        GcWriteGuard { l: self, _not_send: PhantomData }
    }
}

impl<T: Default> Default for GcRwLock<T> {
    fn default() -> GcRwLock<T> {
        GcRwLock::new(T::default())
    }
}

impl<T: ?Sized> fmt::Debug for GcRwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcRwLock").finish_non_exhaustive()
    }
}

// SAFETY: as for `GcMutex`, with a shared lock (readers never change it).
unsafe impl<T: Trace + ?Sized> Trace for GcRwLock<T> {
    fn trace(&self, t: &mut Tracer<'_>) {
        trace_cell(&self.raw, &self.value, t);
    }
}

/// Shared access to a [`GcRwLock`]'s value.
pub struct GcReadGuard<'a, T: ?Sized> {
    l: &'a GcRwLock<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: gives `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for GcReadGuard<'_, T> {}

impl<T: ?Sized> Deref for GcReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read lock is held.
        unsafe { &*self.l.value.get() }
    }
}

impl<T: ?Sized> Drop for GcReadGuard<'_, T> {
    fn drop(&mut self) {
        self.l.raw.unlock(READER);
    }
}

/// Exclusive access to a [`GcRwLock`]'s value.
pub struct GcWriteGuard<'a, T: ?Sized> {
    l: &'a GcRwLock<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: gives `&T` to sharers only.
unsafe impl<T: ?Sized + Sync> Sync for GcWriteGuard<'_, T> {}

impl<T: ?Sized> Deref for GcWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write lock is held.
        unsafe { &*self.l.value.get() }
    }
}

impl<T: ?Sized> DerefMut for GcWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write lock is held exclusively.
        unsafe { &mut *self.l.value.get() }
    }
}

impl<T: ?Sized> Drop for GcWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.l.raw.unlock(WRITER);
    }
}

/// A single swappable `Option<Gc<T>>` (PROTOCOL.md `GcAtomic`): `load`
/// clones the handle out, `store`/`swap`/`compare_exchange` replace it.
/// Each operation is lock-free and runs the collector's barrier.
///
/// ```
/// use gort::gc::{Gc, GcAtomic};
///
/// let slot = GcAtomic::new(Some(Gc::new(1)));
/// let old = slot.swap(Some(Gc::new(2)));
/// assert_eq!(old.as_deref(), Some(&1));
/// assert_eq!(slot.load().as_deref(), Some(&2));
/// ```
pub struct GcAtomic<T: Trace + Send + Sync + 'static> {
    slot: AtomicPtr<Header>,
    _owns: PhantomData<Option<Gc<T>>>,
}

// SAFETY: holds an `Option<Gc<T>>`, which is `Send + Sync`.
unsafe impl<T: Trace + Send + Sync + 'static> Send for GcAtomic<T> {}
// SAFETY: as above; every access is atomic.
unsafe impl<T: Trace + Send + Sync + 'static> Sync for GcAtomic<T> {}

/// The pointer a slot stores for `v`. The object is flagged first: a
/// `load` counts a handle to it from the slot's pointer alone, so it is
/// never freed when its last handle goes (`reclaim`), only by the
/// collector, after a grace period.
fn raw<T: Trace + Send + Sync + 'static>(v: Option<Gc<T>>) -> *mut Header {
    v.map_or(ptr::null_mut(), |g| {
        g.header().set_flag(IN_SLOT);
        g.into_header().as_ptr()
    })
}

/// # Safety
/// `p` is null or carries one counted handle to a live `GcBox<T>`.
unsafe fn from_raw<T: Trace + Send + Sync + 'static>(p: *mut Header) -> Option<Gc<T>> {
    // SAFETY: as the caller guarantees.
    NonNull::new(p).map(|h| unsafe { Gc::from_header(h) })
}

impl<T: Trace + Send + Sync + 'static> GcAtomic<T> {
    /// A slot holding `v`.
    pub fn new(v: Option<Gc<T>>) -> GcAtomic<T> {
        GcAtomic { slot: AtomicPtr::new(raw(v)), _owns: PhantomData }
    }

    /// A new handle to the current value. The mark is up before the load:
    /// between the load and the increment only the grace period keeps the
    /// object from being swept (S10, S11, S13).
    ///
    /// ```
    /// let a = gort::gc::GcAtomic::<u8>::new(None);
    /// assert!(a.load().is_none());
    /// ```
    pub fn load(&self) -> Option<Gc<T>> {
        let e = barrier::enter();
        let p = self.slot.load_seqcst();
        let r = NonNull::new(p).map(|h| {
            // SAFETY: the slot's object is live: the slot holds a handle,
            // or, if it was swapped out and dropped since our load, our
            // raised mark keeps the sweep away until we have counted ours.
            let hd = unsafe { h.as_ref() };
            if hd.handles.fetch_add(1, Ordering::SeqCst) == u32::MAX {
                std::process::abort();
            }
            if barrier::phase_on() {
                e.shade(h);
            }
            // SAFETY: we own the count just added.
            unsafe { Gc::from_header(h) }
        });
        drop(e);
        r
    }

    /// Replaces the value, returning the old one. The old value is shaded
    /// while a cycle runs (S11–S13).
    ///
    /// ```
    /// use gort::gc::{Gc, GcAtomic};
    /// let a = GcAtomic::new(None);
    /// assert!(a.swap(Some(Gc::new(1))).is_none());
    /// ```
    pub fn swap(&self, new: Option<Gc<T>>) -> Option<Gc<T>> {
        let e = barrier::enter();
        let old = self.slot.swap(raw(new), Ordering::SeqCst);
        if let Some(o) = NonNull::new(old).filter(|_| barrier::phase_on()) {
            // The old value's handle is now ours: it is live.
            e.shade(o);
        }
        drop(e);
        // SAFETY: the slot's handle moves to the caller.
        unsafe { from_raw(old) }
    }

    /// Stores `new`, dropping the old value's handle.
    ///
    /// ```
    /// use gort::gc::{Gc, GcAtomic};
    /// let a = GcAtomic::new(Some(Gc::new(1)));
    /// a.store(None);
    /// assert!(a.load().is_none());
    /// ```
    pub fn store(&self, new: Option<Gc<T>>) {
        drop(self.swap(new));
    }

    /// Replaces the value with `new` if it is `current` (compared by
    /// object identity). `Ok` holds the replaced handle; `Err` gives `new`
    /// back with a handle to the value found.
    ///
    /// ```
    /// use gort::gc::{Gc, GcAtomic};
    /// let one = Gc::new(1);
    /// let a = GcAtomic::new(Some(one.clone()));
    /// assert!(a.compare_exchange(None, Some(Gc::new(9))).is_err());
    /// let old = a.compare_exchange(Some(&one), Some(Gc::new(2))).unwrap();
    /// assert!(Gc::ptr_eq(old.as_ref().unwrap(), &one));
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn compare_exchange(
        &self,
        current: Option<&Gc<T>>,
        new: Option<Gc<T>>,
    ) -> Result<Option<Gc<T>>, (Option<Gc<T>>, Option<Gc<T>>)> {
        let cur = current.map_or(ptr::null_mut(), |g| g.header_ptr().as_ptr());
        let newp = new.as_ref().map_or(ptr::null_mut(), |g| {
            // As in `raw`, before the object can be in the slot.
            g.header().set_flag(IN_SLOT);
            g.header_ptr().as_ptr()
        });
        let e = barrier::enter();
        // A failure reads the slot like `load` (under loom, that read needs
        // the fence of `load_seqcst`).
        crate::loom::fence_before_seqcst_reads();
        match self.slot.compare_exchange(cur, newp, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(old) => {
                // `new`'s count moved into the slot.
                std::mem::forget(new);
                if let Some(o) = NonNull::new(old).filter(|_| barrier::phase_on()) {
                    // The old value's handle is now ours: it is live.
                    e.shade(o);
                }
                drop(e);
                // SAFETY: the slot's handle moves to the caller.
                Ok(unsafe { from_raw(old) })
            }
            Err(actual) => {
                // A failure that hands back the value found is a load.
                let found = NonNull::new(actual).map(|h| {
                    // SAFETY: as in `load`: our mark is up since before
                    // the read.
                    let hd = unsafe { h.as_ref() };
                    if hd.handles.fetch_add(1, Ordering::SeqCst) == u32::MAX {
                        std::process::abort();
                    }
                    if barrier::phase_on() {
                        e.shade(h);
                    }
                    // SAFETY: we own the count just added.
                    unsafe { Gc::from_header(h) }
                });
                drop(e);
                Err((new, found))
            }
        }
    }

    /// Takes the value out, leaving `None`.
    ///
    /// ```
    /// use gort::gc::{Gc, GcAtomic};
    /// let a = GcAtomic::new(Some(Gc::new(1)));
    /// assert!(a.take().is_some());
    /// assert!(a.take().is_none());
    /// ```
    pub fn take(&self) -> Option<Gc<T>> {
        self.swap(None)
    }
}

impl<T: Trace + Send + Sync + 'static> Default for GcAtomic<T> {
    fn default() -> GcAtomic<T> {
        GcAtomic::new(None)
    }
}

impl<T: Trace + Send + Sync + 'static> Drop for GcAtomic<T> {
    fn drop(&mut self) {
        #[cfg(not(loom))]
        let p = *self.slot.get_mut();
        #[cfg(loom)]
        let p = self.slot.with_mut(|p| *p);
        // SAFETY: the slot's handle is ours to drop.
        drop(unsafe { from_raw::<T>(p) });
    }
}

impl<T: Trace + Send + Sync + 'static + fmt::Debug> fmt::Debug for GcAtomic<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GcAtomic").field(&self.load()).finish()
    }
}

// SAFETY: reports the one handle the slot holds (one atomic read).
unsafe impl<T: Trace + Send + Sync + 'static> Trace for GcAtomic<T> {
    fn trace(&self, t: &mut Tracer<'_>) {
        let p = self.slot.load_seqcst();
        if let Some(h) = NonNull::new(p) {
            t.edge(h, &self.slot as *const AtomicPtr<Header> as usize, Gc::<T>::VT.class);
        }
    }
}
