//! Helpers for the collector's integration tests (`gc_protocol`,
//! `gc_collect`, `gc_stress`), included with `#[path]` next to `common`.
//!
//! - [`NodeOf`]: a test object with every kind of edge (an immutable field,
//!   a `GcMutex`, a `GcRwLock`, a `GcAtomic`, a `GcMutex<Vec>`), a checksum
//!   that its `Drop` poisons, and a process-wide record of dropped ids, so
//!   a test can tell "dropped while still reachable" from "intact".
//!   `NodeOf<BIG_PAD>` is a large object: a span of its own, its header
//!   alone at the start of a page (for [`PageTrap`]).
//! - [`steps`]: drives `gort::gc::__hooks`: pause the collector at a
//!   [`Step`], let the test thread act, resume it.
//! - Ways to stop a thread at a point the step hook does not reach:
//!   [`pause_my_next_span_alloc`] (inside `Gc::new` of a large object,
//!   after it read the phase and before it publishes the object, through
//!   this test binary's global allocator), and [`PageTrap`] (the first
//!   thread that touches a protected page faults and is held there until
//!   released): on a large object's header page it holds the collector in
//!   the middle of its roots pass, or a mutator between a `GcAtomic` slot's
//!   read and its increment; on the page of an [`OwnRecord`] thread's
//!   barrier record (which the allocator gives pages of its own) it holds
//!   that thread at the first write of its barrier mark, i.e. wherever
//!   `enter()` stands relative to the lock or slot access, or (with the
//!   record split across two pages) at its grey buffer's lock, between a
//!   cell's acquisition and its shading.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use gort::gc::__hooks::Step;
use gort::gc::{Gc, GcAtomic, GcMutex, GcMutexGuard, GcReadGuard, GcRwLock, GcWriteGuard, Trace, Tracer};

/// How long a test waits for something that must happen (a pause point
/// reached): a hang becomes a failure naming the wait.
pub const MUST: Duration = Duration::from_secs(60);
/// How long a test waits for something that must NOT happen while the
/// protocol is intact (the collector passing a grace period a mutator is
/// holding up). Generous: with the rule removed it happens in microseconds.
pub const MUST_NOT: Duration = Duration::from_millis(1500);

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ------------------------------------------------------------ drop record --

/// One bit per id: dropped. Lock-free (the stress test checks it on every
/// visit); ids up to 2^30 (128 MiB of address space, touched lazily).
static DROPPED: OnceLock<Box<[AtomicU64]>> = OnceLock::new();
const MAX_ID: u64 = 1 << 30;
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn dropped_bits() -> &'static [AtomicU64] {
    DROPPED.get_or_init(|| {
        let words = (MAX_ID / 64) as usize;
        // SAFETY: zeroed memory is a valid `[AtomicU64]`; calloc maps it
        // lazily, so untouched pages cost nothing.
        unsafe {
            let p = std::alloc::alloc_zeroed(Layout::array::<AtomicU64>(words).unwrap()).cast::<AtomicU64>();
            assert!(!p.is_null());
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, words))
        }
    })
}

/// A fresh id for a tracked test object.
pub fn new_id() -> u64 {
    let id = NEXT_ID.fetch_add(1, SeqCst);
    assert!(id < MAX_ID, "too many test objects");
    id
}

/// The next id [`new_id`] will hand out.
pub fn next_id() -> u64 {
    NEXT_ID.load(SeqCst)
}

/// Records that the tracked object `id` was dropped (from its `Drop`).
pub fn record_drop(id: u64) {
    dropped_bits()[(id / 64) as usize].fetch_or(1 << (id % 64), SeqCst);
}

/// Whether the object with this id has been dropped (by the sweep).
pub fn dropped(id: u64) -> bool {
    dropped_bits()[(id / 64) as usize].load(SeqCst) & (1 << (id % 64)) != 0
}

/// How many of `ids` have been dropped.
pub fn count_dropped(ids: &[u64]) -> usize {
    ids.iter().filter(|&&i| dropped(i)).count()
}

pub const POISON: u64 = 0xDEAD_BEEF_DEAD_BEEF;

/// The value a live node's checksum holds.
pub fn checksum(id: u64) -> u64 {
    id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5A5A_1234_C0DE_F00D
}

// ------------------------------------------------------------- test nodes --

/// Padding of a large node: past 32 KiB, so it gets a span of its own
/// whose first page holds the header and the padding only.
pub const BIG_PAD: usize = 36 * 1024;

/// A test object. `pad` comes first (`repr(C)`), so in a large node every
/// field the tests touch lies beyond the header's page.
#[repr(C)]
pub struct NodeOf<const P: usize> {
    pub pad: [u8; P],
    pub id: u64,
    check: AtomicU64,
    /// An immutable edge: read with no lock and no barrier.
    pub imm: Option<Gc<NodeOf<P>>>,
    pub cell: GcMutex<SlotOf<P>>,
    pub rw: GcRwLock<SlotOf<P>>,
    pub atom: GcAtomic<NodeOf<P>>,
    pub edges: GcMutex<EdgesOf<P>>,
}

pub type Node = NodeOf<0>;
pub type Big = NodeOf<BIG_PAD>;

/// One optional handle behind a cell.
pub struct SlotOf<const P: usize>(pub Option<Gc<NodeOf<P>>>);

/// Any number of handles behind a cell.
pub struct EdgesOf<const P: usize>(pub Vec<Gc<NodeOf<P>>>);

// SAFETY: reports every handle the node owns, once: the immutable field,
// and the four cells (which report their contents themselves).
unsafe impl<const P: usize> Trace for NodeOf<P> {
    fn trace(&self, t: &mut Tracer<'_>) {
        if let Some(g) = &self.imm {
            g.trace(t);
        }
        self.cell.trace(t);
        self.rw.trace(t);
        self.atom.trace(t);
        self.edges.trace(t);
    }
}

// SAFETY: reports the one handle, if any.
unsafe impl<const P: usize> Trace for SlotOf<P> {
    fn trace(&self, t: &mut Tracer<'_>) {
        if let Some(g) = &self.0 {
            g.trace(t);
        }
    }
}

// SAFETY: reports each handle of the vector once.
unsafe impl<const P: usize> Trace for EdgesOf<P> {
    fn trace(&self, t: &mut Tracer<'_>) {
        for g in &self.0 {
            g.trace(t);
        }
    }
}

impl<const P: usize> Drop for NodeOf<P> {
    /// Poisons the checksum and records the drop. Dereferences no `Gc`.
    fn drop(&mut self) {
        *self.check.get_mut() = POISON;
        record_drop(self.id);
    }
}

/// The pieces of a new node; `..Default::default()` for the rest.
pub struct Parts<const P: usize> {
    pub imm: Option<Gc<NodeOf<P>>>,
    pub cell: Option<Gc<NodeOf<P>>>,
    pub rw: Option<Gc<NodeOf<P>>>,
    pub atom: Option<Gc<NodeOf<P>>>,
    pub edges: Vec<Gc<NodeOf<P>>>,
}

impl<const P: usize> Default for Parts<P> {
    fn default() -> Self {
        Parts { imm: None, cell: None, rw: None, atom: None, edges: Vec::new() }
    }
}

impl<const P: usize> NodeOf<P> {
    /// The value of a new node (not yet on the heap).
    pub fn value(p: Parts<P>) -> NodeOf<P> {
        let id = new_id();
        NodeOf {
            pad: [0; P],
            id,
            check: AtomicU64::new(checksum(id)),
            imm: p.imm,
            cell: GcMutex::new(SlotOf(p.cell)),
            rw: GcRwLock::new(SlotOf(p.rw)),
            atom: GcAtomic::new(p.atom),
            edges: GcMutex::new(EdgesOf(p.edges)),
        }
    }

    pub fn new(p: Parts<P>) -> Gc<NodeOf<P>> {
        Gc::new(Self::value(p))
    }

    pub fn leaf() -> Gc<NodeOf<P>> {
        Self::new(Parts::default())
    }

    /// Whether the node is alive and its checksum holds.
    pub fn intact(&self) -> bool {
        self.check.load(SeqCst) == checksum(self.id) && !dropped(self.id)
    }

    /// Panics unless the node is intact, naming `what`.
    #[track_caller]
    pub fn verify(&self, what: &str) {
        assert!(!dropped(self.id), "{what} (node {}) was dropped while still reachable", self.id);
        let c = self.check.load(SeqCst);
        assert_eq!(c, checksum(self.id), "{what} (node {}): checksum {c:#x} is wrong (freed and reused?)", self.id);
    }

    /// A new handle to the child in `cell`.
    pub fn cell_child(&self) -> Option<Gc<NodeOf<P>>> {
        self.cell.lock().0.clone()
    }
}

/// Allocates and drops `n` nodes of size `P`: freed slots (and freed large
/// spans) get reused with other ids and checksums, so a handle to a freed
/// object reads a wrong checksum.
pub fn churn<const P: usize>(n: usize) {
    let v: Vec<Gc<NodeOf<P>>> = (0..n).map(|_| NodeOf::<P>::leaf()).collect();
    drop(v);
}

/// Which cell of a node a scenario goes through, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `GcMutex::lock` on `cell`.
    Mutex,
    /// `GcRwLock::read` on `rw`.
    Read,
    /// `GcRwLock::write` on `rw`.
    Write,
}

pub enum Guard<'a, const P: usize> {
    M(GcMutexGuard<'a, SlotOf<P>>),
    R(GcReadGuard<'a, SlotOf<P>>),
    W(GcWriteGuard<'a, SlotOf<P>>),
}

impl<const P: usize> Guard<'_, P> {
    pub fn get(&self) -> &Option<Gc<NodeOf<P>>> {
        match self {
            Guard::M(g) => &g.0,
            Guard::R(g) => &g.0,
            Guard::W(g) => &g.0,
        }
    }

    pub fn get_mut(&mut self) -> &mut Option<Gc<NodeOf<P>>> {
        match self {
            Guard::M(g) => &mut g.0,
            Guard::R(_) => panic!("a read guard cannot change the slot"),
            Guard::W(g) => &mut g.0,
        }
    }
}

/// Acquires the cell of `n` that `via` names.
pub fn acquire<const P: usize>(n: &NodeOf<P>, via: Via) -> Guard<'_, P> {
    match via {
        Via::Mutex => Guard::M(n.cell.lock()),
        Via::Read => Guard::R(n.rw.read()),
        Via::Write => Guard::W(n.rw.write()),
    }
}

/// The same cell acquired for writing (`Read` becomes `Write`).
pub fn writer(via: Via) -> Via {
    if via == Via::Read {
        Via::Write
    } else {
        via
    }
}

/// A node whose `via` cell holds `child`.
pub fn holding<const P: usize>(via: Via, child: Option<Gc<NodeOf<P>>>) -> Gc<NodeOf<P>> {
    match via {
        Via::Mutex => NodeOf::new(Parts { cell: child, ..Default::default() }),
        Via::Read | Via::Write => NodeOf::new(Parts { rw: child, ..Default::default() }),
    }
}

// ------------------------------------------------------ the step hook --

pub mod steps {
    //! Scripted pauses of the collector at its [`Step`]s (process-global:
    //! one scenario at a time per process).
    use super::*;

    const ALL: [Step; 5] = [Step::PhaseOn, Step::Counted, Step::Rooted, Step::Terminated, Step::Swept];

    struct State {
        script: [Option<Step>; 8],
        next: usize,
        paused: Option<Step>,
        seen: [u32; 5],
    }

    static STATE: Mutex<State> = Mutex::new(State { script: [None; 8], next: 0, paused: None, seen: [0; 5] });
    static CV: Condvar = Condvar::new();

    /// The hook: counts the step and, if it is the next one of the script,
    /// pauses the collector there until [`resume`].
    fn on_step(step: Step) {
        let mut s = lock(&STATE);
        if let Some(i) = ALL.iter().position(|&a| a == step) {
            s.seen[i] += 1;
        }
        if s.next < s.script.len() && s.script[s.next] == Some(step) {
            s.next += 1;
            s.paused = Some(step);
            CV.notify_all();
            while s.paused.is_some() {
                s = CV.wait(s).unwrap_or_else(|e| e.into_inner());
            }
        }
    }

    /// Installs the hook: the collector pauses at each of `script`'s steps
    /// in turn (the first cycle reaching the first one, and so on), then
    /// runs freely.
    pub fn script(script: &[Step]) {
        assert!(script.len() <= 8);
        let mut s = lock(&STATE);
        assert!(s.paused.is_none(), "a new script while the collector is paused");
        s.script = [None; 8];
        for (i, &st) in script.iter().enumerate() {
            s.script[i] = Some(st);
        }
        s.next = 0;
        drop(s);
        gort::gc::__hooks::set(Some(on_step));
    }

    /// Whether the collector is paused at `step` within `d`.
    pub fn paused_within(step: Step, d: Duration) -> bool {
        let s = lock(&STATE);
        let (s, _) = CV.wait_timeout_while(s, d, |s| s.paused != Some(step)).unwrap_or_else(|e| e.into_inner());
        s.paused == Some(step)
    }

    /// Waits until the collector is paused at `step`.
    #[track_caller]
    pub fn wait_paused(step: Step) {
        assert!(paused_within(step, MUST), "the collector did not reach {step:?}");
    }

    /// Lets the paused collector go on.
    #[track_caller]
    pub fn resume() {
        let mut s = lock(&STATE);
        assert!(s.paused.is_some(), "resume while the collector is not paused");
        s.paused = None;
        CV.notify_all();
    }

    /// How many times the collector has passed `step` since the process
    /// started (with a hook installed).
    pub fn seen(step: Step) -> u32 {
        let i = ALL.iter().position(|&a| a == step).unwrap();
        lock(&STATE).seen[i]
    }
}

/// `gort::gc()` on a new thread (the collector then runs beside the test
/// thread, which plays the mutator).
pub fn spawn_gc() -> std::thread::JoinHandle<()> {
    std::thread::Builder::new().name("gc-caller".into()).spawn(gort::gc).unwrap()
}

// ------------------------------------------------- the pausing allocator --

/// This test binary's allocator: the system's, plus one pause point for
/// [`pause_my_next_span_alloc`].
pub struct TestAlloc;

#[global_allocator]
static GLOBAL: TestAlloc = TestAlloc;

static ALLOC_ARMED: AtomicBool = AtomicBool::new(false);
/// 0 idle, 1 paused, 2 released.
static ALLOC_PAUSE: AtomicU8 = AtomicU8::new(0);

thread_local! {
    static ALLOC_ARM: Cell<bool> = const { Cell::new(false) };
}

/// The calling thread's next page-aligned allocation (a new span: in
/// `Gc::new` of a large object, right after the phase was read and before
/// the object is published) pauses until [`release_alloc`].
pub fn pause_my_next_span_alloc() {
    ALLOC_ARM.with(|a| a.set(true));
    ALLOC_ARMED.store(true, SeqCst);
}

/// Whether a thread paused in the allocator within `d`.
pub fn alloc_paused_within(d: Duration) -> bool {
    let end = Instant::now() + d;
    while ALLOC_PAUSE.load(SeqCst) != 1 {
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Lets the thread paused in the allocator go on.
pub fn release_alloc() {
    assert_eq!(ALLOC_PAUSE.load(SeqCst), 1, "no thread is paused in the allocator");
    ALLOC_PAUSE.store(2, SeqCst);
    while ALLOC_PAUSE.load(SeqCst) != 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[inline]
fn alloc_pause_point(l: Layout) {
    if ALLOC_ARMED.load(SeqCst) && l.align() >= 4096 && ALLOC_ARM.try_with(|a| a.replace(false)).unwrap_or(false) {
        ALLOC_ARMED.store(false, SeqCst);
        ALLOC_PAUSE.store(1, SeqCst);
        while ALLOC_PAUSE.load(SeqCst) != 2 {
            std::thread::sleep(Duration::from_millis(1));
        }
        ALLOC_PAUSE.store(0, SeqCst);
    }
}

static ISOLATE_ARMED: AtomicBool = AtomicBool::new(false);
/// Blocks handed out by [`isolate_my_next_alloc`]: (block, base of its two
/// pages). Never more than a few.
static ISOLATED: [(AtomicUsize, AtomicUsize); 8] = [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; 8];
static LAST_ISOLATED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// `Some(split)`: isolate this thread's next allocation, its first
    /// `split` bytes ending one page and the rest starting the next.
    static ISOLATE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The calling thread's next allocation (of at most a page) gets two
/// pages of its own, placed so that its first `split` bytes end the first
/// page and the rest starts the second (`split` 0: the block starts the
/// second page). [`take_isolated`] tells the first page's address.
pub fn isolate_my_next_alloc(split: usize) {
    assert!(split < PAGE);
    LAST_ISOLATED.store(0, SeqCst);
    ISOLATE.with(|a| a.set(Some(split)));
    ISOLATE_ARMED.store(true, SeqCst);
}

/// The first of the two pages handed out since [`isolate_my_next_alloc`],
/// if any (the request is cancelled either way).
pub fn take_isolated() -> Option<usize> {
    ISOLATE.with(|a| a.set(None));
    ISOLATE_ARMED.store(false, SeqCst);
    Some(LAST_ISOLATED.swap(0, SeqCst)).filter(|&p| p != 0)
}

fn two_pages() -> Layout {
    Layout::from_size_align(2 * PAGE, PAGE).unwrap()
}

fn isolated_alloc(l: Layout) -> Option<*mut u8> {
    if !ISOLATE_ARMED.load(SeqCst) || l.size() > PAGE || l.align() > PAGE {
        return None;
    }
    let split = ISOLATE.try_with(|a| a.take()).ok().flatten()?;
    if split % l.align() != 0 {
        return None;
    }
    // SAFETY: a valid non-zero layout.
    let base = unsafe { System.alloc_zeroed(two_pages()) };
    if base.is_null() {
        return Some(base);
    }
    let p = base as usize + PAGE - split;
    let slot = ISOLATED.iter().find(|s| s.0.compare_exchange(0, p, SeqCst, SeqCst).is_ok());
    slot.expect("too many isolated allocations").1.store(base as usize, SeqCst);
    LAST_ISOLATED.store(base as usize, SeqCst);
    Some(p as *mut u8)
}

/// Frees `p` if it is an isolated block.
fn isolated_free(p: *mut u8) -> bool {
    match ISOLATED.iter().find(|s| s.0.load(SeqCst) == p as usize) {
        Some(s) => {
            let base = s.1.load(SeqCst);
            s.0.store(0, SeqCst);
            // SAFETY: allocated by `isolated_alloc` with this layout.
            unsafe { System.dealloc(base as *mut u8, two_pages()) };
            true
        }
        None => false,
    }
}

// SAFETY: forwards to `System`; the pause point does not allocate, and an
// isolated block is a page-aligned page, enough for any layout it serves.
unsafe impl GlobalAlloc for TestAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        alloc_pause_point(l);
        if let Some(p) = isolated_alloc(l) {
            return p;
        }
        // SAFETY: as the caller guarantees.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        alloc_pause_point(l);
        if let Some(p) = isolated_alloc(l) {
            return p;
        }
        // SAFETY: as the caller guarantees.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if !isolated_free(p) {
            // SAFETY: as the caller guarantees.
            unsafe { System.dealloc(p, l) }
        }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if ISOLATED.iter().any(|s| s.0.load(SeqCst) == p as usize) {
            // SAFETY: as the caller guarantees.
            let q = unsafe { System.alloc(Layout::from_size_align_unchecked(n, l.align())) };
            if !q.is_null() {
                // SAFETY: both blocks hold at least min(old, new) bytes.
                unsafe { std::ptr::copy_nonoverlapping(p, q, l.size().min(n)) };
                isolated_free(p);
            }
            return q;
        }
        // SAFETY: as the caller guarantees.
        unsafe { System.realloc(p, l, n) }
    }
}

/// A mutator thread whose barrier record (the per-thread state gort's
/// grace period reads) has pages of its own: a [`PageTrap`] on its page
/// holds the thread at its first touch of the record after the trap is
/// armed. With [`spawn`](Self::spawn), the record starts the second page
/// and [`page2`](Self::page2) is the one to trap: the thread is held at
/// its barrier mark's first write, which is where `enter()` stands
/// relative to the lock or slot access it protects. With
/// [`spawn_split`](Self::spawn_split), the record's first bytes (its
/// grey buffer's lock, in the record's current layout) are on
/// [`page`](Self::page), the rest (its barrier mark) on `page2`.
/// The thread stays alive (its record is not recycled) until dropped:
/// keep every such thread of a test until its end, or the next one may
/// reuse the record instead of allocating its own.
pub struct OwnRecord<T> {
    /// The first of the record's two pages.
    pub page: usize,
    /// The second.
    pub page2: usize,
    go: Option<std::sync::mpsc::Sender<()>>,
    result: std::sync::mpsc::Receiver<T>,
    exit: std::sync::mpsc::Sender<()>,
    h: Option<std::thread::JoinHandle<()>>,
}

impl<T: Send + 'static> OwnRecord<T> {
    /// Starts the thread; it registers (its first barrier) and runs `f`
    /// once [`go`](Self::go) is called.
    pub fn spawn(f: impl FnOnce() -> T + Send + 'static) -> OwnRecord<T> {
        OwnRecord::spawn_split(0, f)
    }

    /// As [`spawn`](Self::spawn), with the record's first `split` bytes on
    /// the first page.
    pub fn spawn_split(split: usize, f: impl FnOnce() -> T + Send + 'static) -> OwnRecord<T> {
        use std::sync::mpsc::channel;
        let (ptx, prx) = channel();
        let (gtx, grx) = channel::<()>();
        let (rtx, rrx) = channel();
        let (etx, erx) = channel::<()>();
        let h = std::thread::spawn(move || {
            isolate_my_next_alloc(split);
            // The first barrier of this thread registers it.
            drop(GcAtomic::<Node>::new(None).load());
            let page = take_isolated();
            ptx.send(page).unwrap();
            if page.is_some() && grx.recv().is_ok() {
                let _ = rtx.send(f());
            }
            let _ = erx.recv();
        });
        let page = prx.recv().unwrap().expect("the thread reused a recycled barrier record: no fresh registration");
        OwnRecord { page, page2: page + PAGE, go: Some(gtx), result: rrx, exit: etx, h: Some(h) }
    }

    /// Lets the thread run its body.
    pub fn go(&self) {
        self.go.as_ref().unwrap().send(()).unwrap();
    }

    /// What the body returned (panics if it panicked).
    pub fn result(&self) -> T {
        self.result.recv_timeout(MUST).expect("the mutator thread did not finish its body")
    }
}

impl<T> Drop for OwnRecord<T> {
    fn drop(&mut self) {
        self.go = None;
        let _ = self.exit.send(());
        if let Some(h) = self.h.take() {
            if h.join().is_err() && !std::thread::panicking() {
                panic!("the mutator thread panicked");
            }
        }
    }
}

// ------------------------------------------------------------ page traps --

const PAGE: usize = 4096;
const TRAPS: usize = 4;
const FREE: u8 = 0;
/// The page is protected: a thread touching it faults and is held.
const ARMED: u8 = 1;
/// The page is accessible again, but the threads that faulted on it are
/// still held.
const HOLD: u8 = 2;

static TRAP_PAGE: [AtomicUsize; TRAPS] = [const { AtomicUsize::new(0) }; TRAPS];
static TRAP_STATE: [AtomicU8; TRAPS] = [const { AtomicU8::new(FREE) }; TRAPS];
static TRAP_HITS: [AtomicUsize; TRAPS] = [const { AtomicUsize::new(0) }; TRAPS];
static TRAP_INSIDE: [AtomicUsize; TRAPS] = [const { AtomicUsize::new(0) }; TRAPS];
static TRAP_TID: [AtomicI32; TRAPS] = [const { AtomicI32::new(0) }; TRAPS];
/// Order of first hits: the n-th trap hit first gets n (from 1).
static TRAP_ORDER: [AtomicUsize; TRAPS] = [const { AtomicUsize::new(0) }; TRAPS];
static TRAP_NEXT_ORDER: AtomicUsize = AtomicUsize::new(1);

struct SigAction(libc::sigaction);
// SAFETY: written once before our handler is installed, then only read.
unsafe impl Sync for SigAction {}
// SAFETY: as above.
unsafe impl Send for SigAction {}
static PREV_SEGV: OnceLock<SigAction> = OnceLock::new();

extern "C" fn trap_handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    for i in 0..TRAPS {
        let page = TRAP_PAGE[i].load(SeqCst);
        if page != 0 && addr >= page && addr < page + PAGE && TRAP_STATE[i].load(SeqCst) != FREE {
            TRAP_INSIDE[i].fetch_add(1, SeqCst);
            if TRAP_HITS[i].fetch_add(1, SeqCst) == 0 {
                // SAFETY: gettid has no preconditions.
                TRAP_TID[i].store(unsafe { libc::gettid() }, SeqCst);
                TRAP_ORDER[i].store(TRAP_NEXT_ORDER.fetch_add(1, SeqCst), SeqCst);
            }
            while TRAP_STATE[i].load(SeqCst) != FREE {
                // SAFETY: sched_yield is async-signal-safe.
                unsafe { libc::sched_yield() };
            }
            TRAP_INSIDE[i].fetch_sub(1, SeqCst);
            // The access is retried: the page is accessible again.
            return;
        }
    }
    // Not ours: the handler installed before ours (gort's overflow
    // reporter, which chains to std's), or the default action.
    if let Some(SigAction(prev)) = PREV_SEGV.get() {
        let h = prev.sa_sigaction;
        if h != libc::SIG_DFL && h != libc::SIG_IGN {
            if prev.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: registered with SA_SIGINFO: a three-argument handler.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(h) };
                f(sig, info, ctx);
            } else {
                // SAFETY: registered without SA_SIGINFO: a one-argument handler.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
                f(sig);
            }
            return;
        }
    }
    // SAFETY: restoring the default action; the access faults again and
    // the process dies with SIGSEGV, as it would have without us.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

fn install_trap_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // gort installs its overflow handler when its first goroutine
        // stack is made: make sure that happened, so ours comes after it
        // and chains to it.
        gort::run(|| {});
        // SAFETY: an all-zero sigaction is valid (SIG_DFL, empty mask).
        let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
        act.sa_sigaction = trap_handler as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) as usize;
        act.sa_flags = libc::SA_SIGINFO;
        // SAFETY: a valid sigset owned by us.
        unsafe { libc::sigemptyset(&mut act.sa_mask) };
        // SAFETY: as above.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: `old` is written before our handler can run: it only
        // runs for our traps, which are armed after this returns, and it
        // reads PREV_SEGV only for faults that are not ours.
        let r = unsafe { libc::sigaction(libc::SIGSEGV, std::ptr::null(), &mut old) };
        assert_eq!(r, 0);
        let _ = PREV_SEGV.set(SigAction(old));
        // SAFETY: installing a valid handler.
        let r = unsafe { libc::sigaction(libc::SIGSEGV, &act, std::ptr::null_mut()) };
        assert_eq!(r, 0);
    });
}

/// A page trap on the header of a large object: the first thread that
/// reads or writes the header faults and is held in the signal handler
/// until [`PageTrap::release`]. Several traps may be armed at once.
pub struct PageTrap {
    i: usize,
}

fn protect(page: usize, prot: libc::c_int) {
    // SAFETY: `page` is the start of a page of a live large object's span
    // (heap memory we may change the protection of).
    let r = unsafe { libc::mprotect(page as *mut libc::c_void, PAGE, prot) };
    assert_eq!(r, 0, "mprotect: {}", std::io::Error::last_os_error());
}

/// The page holding the header of the large object `g` (its header
/// starts a page of its own).
pub fn page_of<const P: usize>(g: &Gc<NodeOf<P>>) -> usize {
    assert!(P >= BIG_PAD, "a page trap needs a large object");
    Gc::as_ptr(g) as usize & !(PAGE - 1)
}

impl PageTrap {
    /// Installs the SIGSEGV handler (once per process).
    pub fn install() {
        install_trap_handler();
    }

    /// Protects the page holding `g`'s header.
    pub fn arm<const P: usize>(g: &Gc<NodeOf<P>>) -> PageTrap {
        PageTrap::arm_page(page_of(g))
    }

    /// Protects `page` (from [`page_of`]; the object must still be live).
    pub fn arm_page(page: usize) -> PageTrap {
        install_trap_handler();
        let i = (0..TRAPS)
            .find(|&i| TRAP_STATE[i].load(SeqCst) == FREE && TRAP_INSIDE[i].load(SeqCst) == 0)
            .expect("too many page traps");
        TRAP_HITS[i].store(0, SeqCst);
        TRAP_TID[i].store(0, SeqCst);
        TRAP_ORDER[i].store(0, SeqCst);
        TRAP_PAGE[i].store(page, SeqCst);
        TRAP_STATE[i].store(ARMED, SeqCst);
        protect(page, libc::PROT_NONE);
        PageTrap { i }
    }

    /// Whether a thread has hit the trap within `d`.
    pub fn hit_within(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while TRAP_HITS[self.i].load(SeqCst) == 0 {
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Waits until a thread has hit the trap.
    #[track_caller]
    pub fn wait_hit(&self, what: &str) {
        assert!(self.hit_within(MUST), "{what}: nobody touched the trapped header");
    }

    pub fn hits(&self) -> usize {
        TRAP_HITS[self.i].load(SeqCst)
    }

    /// The rank of this trap's first hit among all traps (1 = first), or 0.
    pub fn order(&self) -> usize {
        TRAP_ORDER[self.i].load(SeqCst)
    }

    /// Makes the page accessible again while the threads that hit it stay
    /// held: the test thread can now touch the object.
    pub fn open(&self) {
        if TRAP_STATE[self.i].load(SeqCst) == ARMED {
            protect(TRAP_PAGE[self.i].load(SeqCst), libc::PROT_READ | libc::PROT_WRITE);
            TRAP_STATE[self.i].store(HOLD, SeqCst);
        }
    }

    /// Opens the page and lets the held threads go on.
    pub fn release(&self) {
        self.open();
        TRAP_STATE[self.i].store(FREE, SeqCst);
        while TRAP_INSIDE[self.i].load(SeqCst) != 0 {
            std::thread::yield_now();
        }
    }
}

impl Drop for PageTrap {
    fn drop(&mut self) {
        self.release();
    }
}

// ------------------------------------------------------ child processes --

/// Runs `body` in a child process of its own (the step hook and the page
/// traps are process-global; a use-after-free then kills the child only),
/// with `GOGC=off` so that no automatic cycle interleaves with the forced
/// one. Children run one at a time.
pub fn isolated(name: &str, body: impl FnOnce()) {
    static SERIAL: Mutex<()> = Mutex::new(());
    if super::common::is_child(name) {
        body();
        return;
    }
    let _one = lock(&SERIAL);
    super::common::run_child(name, &[("GOGC", "off")]).assert_success();
}
