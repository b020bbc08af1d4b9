//! The collector: one background thread runs each cycle of PROTOCOL.md
//! (`loom-tests/gc-protocol-model/PROTOCOL.md`, steps C1–C11) beside the
//! mutators, and a system goroutine runs the garbage's drop glue.
//!
//! A cycle: turn the phase on (C2), snapshot and count internal edges in
//! one walk (C3–C4), shade the roots (`handles != internal`, C5, with what
//! finalizable objects reach), mark with grace periods until no grey
//! object is left anywhere (C6, helped by mark assists and extra workers),
//! close weak pointers and mark what upgrades shaded (C7), turn the phase
//! off, clear the weak cells of unmarked objects (C8), resurrect unmarked
//! finalizable objects for their finalizers (C9), then choose the old
//! objects left white as garbage in a walk that also resets the others for
//! the next cycle (C10, C1). The garbage's drop glue runs on the drop
//! goroutine, then its memory is freed; finalizers, and the garbage's
//! cleanups once it is freed, run on the finalizer goroutine
//! (`finalize.rs`). Cycles never overlap, and a cycle ends only when its
//! sweep is complete (C0). On a heap of 64 MiB or more, each walk is split
//! over one thread per idle P (`idle_threads`), and as many mark workers
//! help marking. The cycles the pacer starts do not count the cells a
//! barrier touched in the cycle before (`cell.rs`, `RawRw::stamp_counted`);
//! those of `gort::gc()` count every cell.
//!
//! The protocol's steps are in `cycle.rs`, which the loom models run too;
//! this file drives them over the heap.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

use super::barrier::Obj;
pub use super::cycle::Step;
use super::cycle::{self, Objects};
use super::finalize;
use super::heap::{self, Found, HEAP_LIVE};
use super::pacer;
use super::stall;
use super::stats;
use crate::chan::Chan;
use crate::sched::checkdead::Busy;

/// The heap size that starts the next automatic cycle: the smaller of
/// GOGC's goal and the memory limit's (`pacer.rs`). 0 until [`PACED`].
static NEXT_GC: AtomicUsize = AtomicUsize::new(0);
/// Heap size over which allocation waits for the cycle under way because
/// the memory limit is reached (`usize::MAX`: the goal is not the limit's).
static HARD_GOAL: AtomicUsize = AtomicUsize::new(usize::MAX);
/// The goal has been computed once (GOGC and GOMEMLIMIT read).
static PACED: AtomicBool = AtomicBool::new(false);
/// Bytes that survived the last cycle's marking (the goal's base).
static LAST_MARKED: AtomicUsize = AtomicUsize::new(0);
const MIN_HEAP: usize = 4 << 20;
/// GOGC; negative when automatic cycles are off.
static GOGC: AtomicI64 = AtomicI64::new(i64::MIN);
/// Completed cycles (counted by `stats::CycleClock::end`).
pub(crate) static NUM_GC: AtomicU64 = AtomicU64::new(0);
/// Cycles started by `gort::gc()`.
pub(crate) static NUM_FORCED_GC: AtomicU64 = AtomicU64::new(0);
/// An automatic cycle has been asked for and not yet started.
static TRIGGERED: AtomicBool = AtomicBool::new(false);
/// The heap has grown past its goal: allocating threads assist the cycle
/// under way (see [`assist`]).
pub(crate) static PRESSURE: AtomicBool = AtomicBool::new(false);
/// The marking work an assist does per span its thread takes (64 KiB for
/// small objects): objects traced plus children shaded (see
/// `barrier::assist_mark`), so that an assist never traces thousands of
/// objects that each have thousands of children. Most units are pending
/// entries whose headers miss the cache: at 1,024 an assist took up to
/// 70–240 µs in gc_wait, at 512 up to 70 µs.
const ASSIST_WORK: usize = 512;
/// Objects traced by assists, ever (for tests).
pub(crate) static ASSISTED: AtomicU64 = AtomicU64::new(0);
/// How long a thread waits for the cycle under way, once per span it takes
/// while the heap is over twice its goal and no marking is left to share.
/// Short, so that no allocation stalls for long; once per span (64 KiB for
/// small objects), so that a thread allocating flat out is held to about
/// 600 MB/s, the pace of a cycle over a large heap. The wait never blocks
/// a cycle: it ends when the cycle does, or at this limit, whichever is
/// first. (A parked thread may wait longer for the OS to run it again on a
/// busy machine: spinning instead was tried and bought nothing measurable.)
const ASSIST_WAIT: std::time::Duration = std::time::Duration::from_micros(100);
/// The same wait while the heap is over what the memory limit allows
/// ([`HARD_GOAL`]): about 64 MB/s per allocating thread until the cycle
/// ends, so the limit is overshot by little (Go's assists pace a cycle to
/// end near its goal). Still bounded, so no allocation waits for long.
const ASSIST_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_millis(1);

thread_local! {
    /// Threads that must never wait for a cycle: the collector's and the
    /// drop goroutine's (the cycle waits for them).
    static EXEMPT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// This thread took a span while the heap was over its goal and has
    /// not assisted for it yet.
    static OWED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Channels of finished assist waits, for reuse.
static SPARE_WAITS: Mutex<Vec<Chan<()>>> = Mutex::new(Vec::new());

/// Someone waiting for a cycle that starts after its request.
struct Waiter {
    done: Chan<Option<String>>,
    /// Keeps deadlock detection off while the request is outstanding.
    _busy: Busy,
}

#[derive(Default)]
struct Control {
    /// Waiting for the next cycle to start and finish.
    pending: Vec<Waiter>,
    /// Allocations waiting for the end of the cycle under way.
    assisting: Vec<Chan<()>>,
    started: bool,
}

static CONTROL: Mutex<Control> = Mutex::new(Control { pending: Vec::new(), assisting: Vec::new(), started: false });
static WAKE: Condvar = Condvar::new();

/// Test hooks: called by the collector between steps, so tests can force
/// an interleaving (see `gort::gc::__hooks`).
pub(crate) static HOOK: Mutex<Option<fn(Step)>> = Mutex::new(None);

fn hook(step: Step) {
    let h = *HOOK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(f) = h {
        f(step);
    }
}

fn gogc() -> i64 {
    let v = GOGC.load(Ordering::Relaxed);
    if v != i64::MIN {
        return v;
    }
    let v = parse_gogc(std::env::var("GOGC").ok().as_deref());
    // A racing `set_gc_percent` wins over the environment.
    match GOGC.compare_exchange(i64::MIN, v, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => v,
        Err(now) => now,
    }
}

/// The heap goal (Go's `NextGC`).
pub(crate) fn next_gc() -> usize {
    if !PACED.load(Ordering::Acquire) {
        set_goal(LAST_MARKED.load(Ordering::Relaxed));
    }
    NEXT_GC.load(Ordering::Relaxed)
}

/// `debug.SetGCPercent`: sets GOGC (negative: automatic cycles off) and
/// returns the previous value; the goal is recomputed from the last
/// cycle's marked bytes at once, which may start a cycle.
pub(crate) fn set_gc_percent(pct: i64) -> i64 {
    gogc();
    let prev = GOGC.swap(pct.max(-1), Ordering::Relaxed);
    set_goal(LAST_MARKED.load(Ordering::Relaxed));
    maybe_trigger();
    prev
}

/// `debug.SetMemoryLimit`: a negative `limit` only reads the limit;
/// otherwise it is set and the goal recomputed at once (which may start a
/// cycle, and return idle memory to the OS). Returns the previous limit.
pub(crate) fn set_memory_limit(limit: i64) -> i64 {
    if limit < 0 {
        return pacer::memory_limit();
    }
    let prev = pacer::swap_memory_limit(limit);
    if prev != limit {
        set_goal(LAST_MARKED.load(Ordering::Relaxed));
        maybe_trigger();
    }
    prev
}

/// Sets the goal from `marked`, the bytes that survived the last cycle:
/// the smaller of GOGC's goal (`marked` grown by GOGC percent, at least
/// 4 MiB × GOGC/100; none while GOGC is negative) and the memory limit's
/// (`pacer::limit_goal`, which may return idle spans to the OS first).
fn set_goal(marked: usize) {
    let g = gogc();
    let gogc_goal = if g >= 0 {
        let goal = marked.saturating_add(marked / 100 * g as usize);
        goal.max(MIN_HEAP * g.max(1) as usize / 100)
    } else {
        usize::MAX
    };
    let limit = pacer::limit_goal(marked);
    let (goal, hard) = if limit.goal < gogc_goal { (limit.goal, limit.hard) } else { (gogc_goal, usize::MAX) };
    NEXT_GC.store(goal, Ordering::Relaxed);
    HARD_GOAL.store(hard, Ordering::Relaxed);
    PACED.store(true, Ordering::Release);
}

/// GOGC as Go reads it: a percentage, or `off` (negative: no automatic
/// cycles). A bad value warns and falls back to 100.
fn parse_gogc(v: Option<&str>) -> i64 {
    match v {
        None | Some("") => 100,
        Some("off") => -1,
        Some(s) => match s.parse::<i64>() {
            Ok(n) => n.max(-1),
            Err(_) => {
                eprintln!("gort: GOGC={s:?} is not a number or \"off\"; using GOGC=100");
                100
            }
        },
    }
}

/// Starts an automatic cycle once the heap has grown past its goal
/// (GOGC's or the memory limit's, see [`set_goal`]), and until that cycle
/// ends makes each thread that takes a span pay for it with a mark assist
/// (see [`assist`]). The first call computes the goal.
#[inline]
pub(crate) fn maybe_trigger() {
    let (live, goal) = (HEAP_LIVE.load(Ordering::Relaxed), NEXT_GC.load(Ordering::Relaxed));
    if live < goal {
        return;
    }
    if !PACED.load(Ordering::Acquire) {
        set_goal(LAST_MARKED.load(Ordering::Relaxed));
        if live < NEXT_GC.load(Ordering::Relaxed) {
            return;
        }
    }
    if !PRESSURE.load(Ordering::Relaxed) {
        PRESSURE.store(true, Ordering::Relaxed);
        super::barrier::set_assists(true);
    }
    let _ = OWED.try_with(|o| o.set(true));
    if !TRIGGERED.swap(true, Ordering::AcqRel) {
        let mut c = CONTROL.lock().unwrap_or_else(|e| e.into_inner());
        start_collector(&mut c);
        WAKE.notify_one();
    }
}

/// Go's mark assist (`gcAssistAlloc`): a thread that took a span while
/// the heap was over its goal pays for it, at its next allocation, by
/// doing [`ASSIST_WORK`] of the marking of the grey objects the collector
/// shares (`barrier::assist_mark`), so a mutator allocating faster than
/// marking progresses speeds the cycle up instead of outrunning it. Go
/// sizes each assist from the scan work left and the heap left before the
/// goal; gort's is a fixed amount per span.
///
/// When no marking is left to share (counting, or the end of marking) and
/// the heap has reached twice its goal, the thread instead waits for the
/// cycle under way to end or for [`ASSIST_WAIT`], as Go's assist parks when
/// it finds no work: a thread that allocates faster than the collector
/// frees cannot grow the heap without bound. While the heap is over what
/// the memory limit allows ([`HARD_GOAL`]) it waits, up to
/// [`ASSIST_WAIT_LIMIT`], even after assisting.
#[cold]
pub(crate) fn assist() {
    if !OWED.try_with(|o| o.replace(false)).unwrap_or(false) || EXEMPT.with(|e| e.get()) {
        return;
    }
    let t = stall::start();
    let (mut owed, mut traced) = (ASSIST_WORK, 0);
    while owed > 0 {
        match super::barrier::assist_mark(owed) {
            (_, 0) => break,
            (n, work) => {
                traced += n;
                owed = owed.saturating_sub(work);
            }
        }
    }
    ASSISTED.fetch_add(traced as u64, Ordering::Relaxed);
    t.stop(stall::Kind::AssistMark);
    let live = HEAP_LIVE.load(Ordering::Relaxed);
    let limited = live >= HARD_GOAL.load(Ordering::Relaxed);
    if limited || (owed > 0 && live / 2 >= NEXT_GC.load(Ordering::Relaxed)) {
        // A channel from the pool: making one allocates, and a malloc may
        // sleep on an arena lock that a collector thread holds.
        let done = SPARE_WAITS.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_else(|| Chan::new(1));
        // A token left by the cycle end of an earlier wait that timed out
        // (the channel stayed registered) would end this wait at once.
        while done.try_recv().is_ok() {}
        CONTROL.lock().unwrap_or_else(|e| e.into_inner()).assisting.push(done.clone());
        let t = stall::start();
        let _ = done.recv_timeout(if limited { ASSIST_WAIT_LIMIT } else { ASSIST_WAIT });
        t.stop(stall::Kind::AssistWait);
        SPARE_WAITS.lock().unwrap_or_else(|e| e.into_inner()).push(done);
    }
}

/// Runs a full collection and returns once a cycle that started after the
/// call has finished marking and sweeping (Go's `runtime.GC`). Called from
/// a goroutine, it parks the goroutine; from a plain thread, the thread.
pub(crate) fn gc() {
    let done = Chan::new(1);
    {
        let mut c = CONTROL.lock().unwrap_or_else(|e| e.into_inner());
        c.pending.push(Waiter { done: done.clone(), _busy: Busy::new() });
        start_collector(&mut c);
        WAKE.notify_one();
    }
    if let Some(Some(report)) = done.recv() {
        panic!("{report}");
    }
}

fn start_collector(c: &mut Control) {
    if c.started {
        return;
    }
    c.started = true;
    let b = std::thread::Builder::new().name("gort-gc".into());
    crate::sched::checkdead::spawn_thread(b, collector_main).expect("gort: cannot start the collector thread");
}

fn collector_main() {
    EXEMPT.with(|e| e.set(true));
    loop {
        let waiters = {
            let mut c = CONTROL.lock().unwrap_or_else(|e| e.into_inner());
            while c.pending.is_empty() && !TRIGGERED.load(Ordering::Acquire) {
                c = WAKE.wait(c).unwrap_or_else(|e| e.into_inner());
            }
            std::mem::take(&mut c.pending)
        };
        TRIGGERED.store(false, Ordering::Release);
        let forced = !waiters.is_empty();
        if forced {
            NUM_FORCED_GC.fetch_add(1, Ordering::Relaxed);
        }
        let busy = Busy::new();
        let report = cycle(forced);
        drop(busy);
        if waiters.is_empty() {
            if let Some(r) = &report {
                crate::sched::proc::fatal(r);
            }
        }
        for w in waiters {
            w.done.send(report.clone());
        }
        PRESSURE.store(false, Ordering::Relaxed);
        super::barrier::set_assists(false);
        let assisting = std::mem::take(&mut CONTROL.lock().unwrap_or_else(|e| e.into_inner()).assisting);
        for a in assisting {
            let _ = a.try_send(());
        }
    }
}

/// The span heap, walked through its allocation bitmaps.
struct SpanHeap;

impl Objects for SpanHeap {
    type Item = Found;
    #[inline]
    fn for_each(&self, f: impl FnMut(Found)) {
        heap::for_each_object(f)
    }
    #[inline]
    fn obj(f: &Found) -> Obj {
        f.obj
    }
    fn walkers(&self) -> usize {
        idle_threads()
    }
    fn for_each_split<S: Send>(
        &self,
        walkers: usize,
        make: impl Fn() -> S + Sync,
        f: impl Fn(&mut S, Found) + Sync,
    ) -> Vec<S> {
        heap::for_each_object_split(walkers, make, f)
    }
    /// From the span and slot the walk has at hand: no read of the
    /// object's type.
    #[inline]
    unsafe fn internal<'a>(f: &Found) -> &'a std::sync::atomic::AtomicU32 {
        // SAFETY: a walked span is live while the cycle uses its objects
        // (large ones are freed only by a sweep, between cycles).
        unsafe { f.span.0.as_ref() }.internal(f.slot as usize)
    }
}

/// The threads a cycle may use, its collector's included. As Go's idle
/// mark workers (`gcMarkWorkerIdleMode`) run on idle Ps, one per P that
/// runs no goroutine (idle or spinning), and no more than the CPUs no P
/// is using to run goroutines (GOMAXPROCS may exceed the CPUs); the
/// collector's thread counts as one. At least 1, at most
/// [`MAX_WALKERS`]; 1 on a heap under [`SPLIT_WALK_MIN`]. With GOMAXPROCS
/// 2 on 2 CPUs and a goroutine running, that is 1; with GOMAXPROCS 1,
/// always 1. Before the scheduler starts, every P counts as idle.
fn idle_threads() -> usize {
    let forced = FORCE_WALKERS.load(Ordering::Relaxed);
    if forced != 0 {
        return forced;
    }
    if HEAP_LIVE.load(Ordering::Relaxed) < SPLIT_WALK_MIN {
        return 1;
    }
    let sched = &crate::sched::proc::SCHED;
    let (procs, idle) = match crate::sched::proc::gomaxprocs() {
        0 => {
            // GOMAXPROCS as the scheduler will read it (quietly: it warns
            // about a bad value itself when it starts).
            static PROCS: OnceLock<u32> = OnceLock::new();
            let n = *PROCS.get_or_init(|| crate::sched::env::gomaxprocs_from_env().0);
            (n, n)
        }
        n => (n, sched.npidle.load(Ordering::Relaxed) + sched.spinning.count()),
    };
    let busy = procs.saturating_sub(idle) as usize;
    let free_cpus = crate::sched::env::ncpu().saturating_sub(busy);
    (idle as usize).min(free_cpus).clamp(1, MAX_WALKERS)
}

/// If not 0, what [`idle_threads`] returns, whatever the heap and the
/// CPUs (`__hooks::force_walkers`, for tests).
pub(crate) static FORCE_WALKERS: AtomicUsize = AtomicUsize::new(0);
/// Test hook (`__hooks::skip_hot_when_forced`): the cycles of `gort::gc()`
/// skip hot cells as the pacer's do.
pub(crate) static SKIP_HOT_WHEN_FORCED: AtomicBool = AtomicBool::new(false);

/// The heap in use from which a cycle may use idle CPUs (a smaller heap's
/// walk takes a few milliseconds at most).
const SPLIT_WALK_MIN: usize = 64 << 20;
/// The most threads a split walk (or marking) uses.
const MAX_WALKERS: usize = 8;

/// One collection (`forced`: run for `gort::gc()`). Returns the report of
/// a `Trace` impl that reported a handle twice, if one was found.
pub(crate) fn cycle(forced: bool) -> Option<String> {
    let mut clock = stats::CycleClock::start(forced);
    // `gort::gc()` frees everything unreachable when it was called, as
    // Go's `runtime.GC` does: its cycles count every cell.
    super::cell::set_skip_hot(!forced || SKIP_HOT_WHEN_FORCED.load(Ordering::Relaxed));
    let mut dead: Vec<Found> = Vec::new();
    let steps = |s| {
        clock.step(s);
        match s {
            Step::Rooted => workers::start(),
            Step::Terminated => workers::stop(),
            _ => {}
        }
        hook(s)
    };
    // The old objects that survived marking: the live heap at the cycle's
    // snapshot (Go's `heapMarked` without what was allocated black during
    // the cycle), the base of the next goal. Counting what the mutator
    // allocated meanwhile would let a fast allocator raise the goal every
    // cycle without bound.
    let out = cycle::run(&SpanHeap, steps, |f| dead.push(f), |f| f.span.get().size);
    let marked = out.survived;
    // Objects freed at zero whose slots waited for the walks to end.
    heap::free_deferred();
    clock.step(Step::Swept);
    hook(Step::Swept);
    finalize::queue(out.finalizers);
    sweep(dead);
    finalize::queue(out.cleanups);
    LAST_MARKED.store(marked, Ordering::Relaxed);
    set_goal(marked);
    clock.end(marked);
    out.double.map(|t| {
        format!(
            "gort: the Trace impl of `{t}` reports the same Gc handle twice (internal > handles); \
             each handle must be reported exactly once"
        )
    })
}

/// Garbage on its way to the drop goroutine.
struct Batch(Vec<Found>, Chan<()>);

/// Runs the drop glue of `dead` on the drop goroutine (no user code on the
/// collector's thread), then frees their memory, and waits for both.
fn sweep(dead: Vec<Found>) {
    if dead.is_empty() {
        return;
    }
    // Miri cannot switch stacks: under it (unit tests only) the collector
    // runs the drop glue itself.
    if cfg!(miri) {
        drop_and_free(&dead);
        return;
    }
    static DROPPER: OnceLock<Chan<Batch>> = OnceLock::new();
    let ch = DROPPER.get_or_init(|| {
        let ch: Chan<Batch> = Chan::new(1);
        let rx = ch.clone();
        // Locked to a thread of its own: a goroutine homed on a busy M
        // would wait behind whatever runs there, and the heap with it.
        crate::Builder::new()
            .name("gort-gc-drop".into())
            .locked()
            .go_system(move || {
                EXEMPT.with(|e| e.set(true));
                for Batch(dead, done) in &rx {
                    drop_and_free(&dead);
                    done.send(());
                }
            })
            .expect("gort: cannot start the GC's drop goroutine");
        ch
    });
    let done = Chan::new(1);
    ch.send(Batch(dead, done.clone()));
    done.recv();
}

/// Pass 1: every dead value's drop glue; pass 2: free them all. Handles
/// from garbage to garbage are not decremented (`Gc::drop` sees GARBAGE).
pub(crate) fn drop_and_free(dead: &[Found]) {
    for f in dead {
        let h = f.obj.0.as_ptr();
        // SAFETY: `h` is garbage: unreachable, so nothing else uses its
        // value, and its drop glue has not run. User `Drop` impls do not
        // dereference handles (the derive's rule), so dropping one value
        // never touches another dead value's contents.
        unsafe { ((*h).vt.get().drop)(h) };
    }
    heap::free(dead);
}

/// Background mark workers beside the collector's thread, so that marking
/// uses about 25% of GOMAXPROCS as Go's dedicated workers do
/// (`gcBackgroundUtilization`): `(GOMAXPROCS + 2) / 4` workers in all,
/// the collector's thread being the first. Below GOMAXPROCS 6 that is the
/// collector alone (Go would add a fractional worker; gort's collector is
/// a whole thread already). When more CPUs than that are idle as marking
/// starts on a large heap (`idle_threads`), that many work (Go's idle
/// workers); as goroutines take those CPUs back, the workers beyond what
/// is idle pause (checked after each take of grey objects). The extra
/// workers take the grey objects the collector shares, exactly as mark
/// assists do (`barrier::assist_mark`).
pub(crate) mod workers {
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    /// Marking is under way: workers take shared grey objects.
    static MARKING: AtomicBool = AtomicBool::new(false);
    /// Objects traced by the extra workers, ever (for tests).
    pub(crate) static WORKED: AtomicU64 = AtomicU64::new(0);
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    /// The extra workers wanted in the cycle under way: those started
    /// beyond them (for an earlier cycle with more idle CPUs) sleep.
    static ACTIVE: AtomicUsize = AtomicUsize::new(0);
    static GATE: Mutex<()> = Mutex::new(());
    static WAKE: Condvar = Condvar::new();

    /// The work a worker does per take of shared grey objects
    /// (`barrier::assist_mark`'s budget).
    const WORKER_BUDGET: usize = 16 * 1024;

    fn wanted() -> usize {
        (crate::sched::proc::gomaxprocs() as usize + 2) / 4
    }

    /// The workers wanted beside the collector's thread now.
    fn extra() -> usize {
        wanted().max(super::idle_threads()).saturating_sub(1)
    }

    /// Marking starts: wakes (and first starts) the extra workers, and
    /// as many more as there are idle CPUs (`idle_threads`).
    pub(super) fn start() {
        let n = extra();
        if n == 0 {
            return;
        }
        super::super::barrier::set_assists(true);
        ACTIVE.store(n, Ordering::SeqCst);
        MARKING.store(true, Ordering::SeqCst);
        while STARTED.load(Ordering::Relaxed) < n {
            let i = STARTED.fetch_add(1, Ordering::Relaxed);
            let b = std::thread::Builder::new().name("gort-gc-worker".into());
            if crate::sched::checkdead::spawn_thread(b, move || work(i)).is_err() {
                break; // marking goes on with the workers there are
            }
        }
        let _g = GATE.lock().unwrap_or_else(|e| e.into_inner());
        WAKE.notify_all();
    }

    /// Marking has terminated: workers go back to sleep. Assists stay on
    /// if the heap is over its goal.
    pub(super) fn stop() {
        if MARKING.swap(false, Ordering::SeqCst) && !super::PRESSURE.load(Ordering::Relaxed) {
            super::super::barrier::set_assists(false);
        }
    }

    /// Worker `i` (0 for the first extra one) of those started.
    fn work(i: usize) {
        super::EXEMPT.with(|e| e.set(true));
        let on = || MARKING.load(Ordering::SeqCst) && i < ACTIVE.load(Ordering::SeqCst);
        loop {
            {
                let mut g = GATE.lock().unwrap_or_else(|e| e.into_inner());
                while !on() {
                    g = WAKE.wait(g).unwrap_or_else(|e| e.into_inner());
                }
            }
            while on() {
                if i >= extra() {
                    // Goroutines took the CPUs back: leave them alone.
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                match super::super::barrier::assist_mark(WORKER_BUDGET) {
                    (_, 0) => std::thread::sleep(Duration::from_micros(20)),
                    (n, _) => drop(WORKED.fetch_add(n as u64, Ordering::Relaxed)),
                }
            }
        }
    }
}
