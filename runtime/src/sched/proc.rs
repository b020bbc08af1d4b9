//! The scheduler's procedures, named after proc.go: `newproc`, `ready`,
//! `gopark`, `schedule`/`findRunnable`, `execute`, `wakep`, `startm`,
//! `stopm`, `handoffp`, `gdestroy`, syscalls, stop-the-world and
//! `procresize`. The design is in `sched/mod.rs`.

use std::cell::Cell;
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult};

use super::g::{Req, Status, WaitReason, G};
use super::m::{MKind, M};
use super::note::Note;
use super::p::{PStatus, P};
use super::spin::{Spinning, SYSCALL_NONE};
use crate::stack;

/// Go's `_MaxGomaxprocs`.
pub(crate) const MAX_PROCS: usize = 1024;

/// Time slice: sysmon asks a goroutine to yield after this (Go's `forcePreemptNS`).
pub(crate) const FORCE_PREEMPT: Duration = Duration::from_millis(10);

/// State under `sched.lock` (Go's `schedt` fields "protected by lock").
pub(crate) struct Locked {
    pub(crate) pidle: Vec<&'static P>,
    pub(crate) midle: Vec<&'static M>,
    /// Ms with runnable homed goroutines waiting for a P, FIFO.
    pub(crate) mwantp: VecDeque<&'static M>,
    /// The global run queue (unstarted and migratable goroutines).
    pub(crate) runq: VecDeque<NonNull<G>>,
    /// Ps not yet stopped by a pending stop-the-world.
    pub(crate) stopwait: i32,
    /// Exited Ms whose structs can be reused.
    pub(crate) freem: Vec<&'static M>,
}

// SAFETY: the raw G pointers in the global queue are owned by the queue and
// only handed out under the lock.
unsafe impl Send for Locked {}

/// Go's `schedt`.
pub(crate) struct Sched {
    pub(crate) lock: Mutex<Locked>,
    pub(crate) npidle: AtomicU32,
    pub(crate) spinning: Spinning,
    /// Mirrors `Locked::runq.len()`.
    pub(crate) runqsize: AtomicU32,
    /// Mirrors `Locked::mwantp.len()`.
    pub(crate) nmwantp: AtomicU32,
    pub(crate) gomaxprocs: AtomicU32,
    /// A stop-the-world is pending or in force (Go's `sched.gcwaiting`).
    pub(crate) gcwaiting: AtomicBool,
    pub(crate) stopnote: Note,
    /// Go's `worldsema`: one stop-the-world at a time.
    pub(crate) worldsema: AtomicBool,
    /// Goroutines created and exited by threads without a P; each P
    /// counts its own (`P::gcount`). `gcount()` sums them.
    pub(crate) gcreated: AtomicU64,
    pub(crate) gexited: AtomicU64,
    pub(crate) goidgen: AtomicU64,
    pub(crate) mnext: AtomicU64,
    pub(crate) ncgocall: AtomicU64,
    pub(crate) allp: [AtomicPtr<P>; MAX_PROCS],
    pub(crate) allm: Mutex<Vec<&'static M>>,
    pub(crate) sysmonwait: AtomicBool,
    pub(crate) sysmonnote: Note,
}

#[allow(clippy::declare_interior_mutable_const)]
const NULL_P: AtomicPtr<P> = AtomicPtr::new(ptr::null_mut());

pub(crate) static SCHED: Sched = Sched {
    lock: Mutex::new(Locked {
        pidle: Vec::new(),
        midle: Vec::new(),
        mwantp: VecDeque::new(),
        runq: VecDeque::new(),
        stopwait: 0,
        freem: Vec::new(),
    }),
    npidle: AtomicU32::new(0),
    spinning: Spinning::new(),
    runqsize: AtomicU32::new(0),
    nmwantp: AtomicU32::new(0),
    gomaxprocs: AtomicU32::new(0),
    gcwaiting: AtomicBool::new(false),
    stopnote: Note::new(),
    worldsema: AtomicBool::new(false),
    gcreated: AtomicU64::new(0),
    gexited: AtomicU64::new(0),
    goidgen: AtomicU64::new(0),
    mnext: AtomicU64::new(0),
    ncgocall: AtomicU64::new(0),
    allp: [NULL_P; MAX_PROCS],
    allm: Mutex::new(Vec::new()),
    sysmonwait: AtomicBool::new(false),
    sysmonnote: Note::new(),
};

pub(crate) fn lock() -> MutexGuard<'static, Locked> {
    SCHED.lock.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn gomaxprocs() -> u32 {
    SCHED.gomaxprocs.load(Ordering::Acquire)
}

pub(crate) fn allp(i: u32) -> &'static P {
    // SAFETY: entries below gomaxprocs (and any ever created) are non-null
    // and never freed.
    unsafe { &*SCHED.allp[i as usize].load(Ordering::Acquire) }
}

/// Every P ever created (`allp` entries are filled in order and never
/// cleared, including those beyond a lowered GOMAXPROCS).
fn allp_ever() -> impl Iterator<Item = &'static P> {
    SCHED.allp.iter().map_while(|p| {
        // SAFETY: non-null entries are Ps that are never freed.
        unsafe { p.load(Ordering::Acquire).as_ref() }
    })
}

/// Live goroutines, not counting system ones (Go's `gcount`). Exits are
/// summed before creations (see `P::gcount`): the result may still count
/// a goroutine that exited meanwhile, but never misses a live one, so
/// "no goroutine left" is never reported early.
pub(crate) fn gcount() -> i64 {
    let mut exited = SCHED.gexited.load(Ordering::Acquire);
    for p in allp_ever() {
        exited += p.gcount.exited.load(Ordering::Acquire);
    }
    let mut created = SCHED.gcreated.load(Ordering::Acquire);
    for p in allp_ever() {
        created += p.gcount.created.load(Ordering::Acquire);
    }
    created as i64 - exited as i64
}

/// Go's goid allocation: from the P's batch (`_GoidCacheBatch`, 16),
/// else one at a time from `sched.goidgen`.
fn newgoid(p: Option<&P>) -> u64 {
    const BATCH: u64 = 16;
    let Some(p) = p else {
        return SCHED.goidgen.fetch_add(1, Ordering::Relaxed) + 1;
    };
    if p.goidcache.get() == p.goidcacheend.get() {
        let end = SCHED.goidgen.fetch_add(BATCH, Ordering::Relaxed) + BATCH + 1;
        p.goidcache.set(end - BATCH);
        p.goidcacheend.set(end);
    }
    let id = p.goidcache.get();
    p.goidcache.set(id + 1);
    id
}

static START: Once = Once::new();
static mut EPOCH: Option<Instant> = None;

/// Nanoseconds since the runtime started (monotonic).
pub(crate) fn nanotime() -> u64 {
    // SAFETY: EPOCH is written once inside `START.call_once` before any
    // reader can run (every reader goes through `ensure_started` first or
    // reads after a thread the runtime created started).
    let epoch = unsafe { (*ptr::addr_of!(EPOCH)).unwrap_or_else(Instant::now) };
    epoch.elapsed().as_nanos() as u64
}

/// Starts the runtime on first use: Ps, sysmon, the panic hook and the
/// stack-overflow handler. Go does this in `schedinit`/`main`.
pub(crate) fn ensure_started() {
    if START.is_completed() {
        return;
    }
    START.call_once(|| {
        // SAFETY: only this closure writes EPOCH, once, before readers.
        unsafe { *ptr::addr_of_mut!(EPOCH) = Some(Instant::now()) };
        stack::install_overflow_handler(super::report::describe_overflow);
        super::report::install_panic_hook();
        let n = super::env::initial_gomaxprocs();
        let mut l = lock();
        for i in 0..n {
            let p: &'static P = Box::leak(Box::new(P::new(i)));
            SCHED.allp[i as usize].store(p as *const P as *mut P, Ordering::Release);
            p.set_status(PStatus::Idle);
            l.pidle.push(p);
        }
        l.pidle.reverse();
        SCHED.npidle.store(n, Ordering::Release);
        SCHED.gomaxprocs.store(n, Ordering::Release);
        drop(l);
        super::sysmon::start();
    });
}

// ---------------------------------------------------------------------------
// Thread-local access. Read only through these non-inlined accessors and
// never held across a switch (ARCHITECTURE.md, "Where a goroutine runs").

thread_local! {
    static CUR_M: Cell<*const M> = const { Cell::new(ptr::null()) };
}

/// The M of the calling thread, if it is a runtime thread.
#[inline(never)]
pub(crate) fn getm() -> Option<&'static M> {
    let m = CUR_M.with(|c| c.get());
    // SAFETY: M structs are never freed.
    unsafe { m.as_ref() }
}

/// The running goroutine, or null on a thread that is not running one.
#[inline(never)]
pub(crate) fn getg() -> *mut G {
    match getm() {
        Some(m) => m.curg.load(Ordering::Relaxed),
        None => ptr::null_mut(),
    }
}

/// The running goroutine and its M, after making sure the M holds a P
/// again if a locked goroutine's inline syscall lost it (Go's
/// `exitsyscall` before any runtime work).
pub(crate) fn current() -> Option<(&'static M, &'static G)> {
    let m = getm()?;
    let g = m.curg.load(Ordering::Relaxed);
    if g.is_null() {
        return None;
    }
    if m.syscall.state() != SYSCALL_NONE {
        exitsyscall(m);
    }
    // SAFETY: the running goroutine is live while it runs (it is us).
    Some((m, unsafe { &*g }))
}

/// Whether the calling goroutine's thread has nothing else to run now:
/// its P's run queue (`runnext` included) is empty and no goroutine homed
/// on it is ready (Go's `runqempty` test in `sync_runtime_canSpin`). True
/// on a thread that is not running a goroutine.
pub(crate) fn nothing_else_to_run() -> bool {
    let Some(m) = getm() else { return true };
    !m.has_home_work() && m.p().is_none_or(|p| p.runq.is_empty())
}

// ---------------------------------------------------------------------------
// Creating and readying goroutines.

/// Options for `newproc`.
pub(crate) struct NewG {
    pub(crate) name: Option<std::sync::Arc<str>>,
    pub(crate) stack_size: usize,
    pub(crate) locked: bool,
    pub(crate) migratable: bool,
    pub(crate) detached: bool,
    /// A runtime-owned goroutine (Go's system goroutines): not counted by
    /// `num_goroutine` or deadlock detection, not listed in reports.
    pub(crate) system: bool,
}

/// Go's `newproc`: creates a goroutine running `entry` and makes it
/// runnable: in the creator's P's `runnext` (so a spawned goroutine runs
/// next where it was made), or the global queue from a thread without a P,
/// or on a fresh M of its own when born locked. Returns the goroutine id.
pub(crate) fn newproc(opts: NewG, entry: super::api::Entry) -> std::io::Result<u64> {
    ensure_started();
    // Every runtime call is a preemption check point (a goroutine spawning
    // in a loop must not keep its P's timers and home queue waiting).
    super::preempt::preempt_point();
    let cur = current();
    let curp = cur.and_then(|(m, _)| m.p());
    let id = newgoid(curp);
    // Allocate first and build the G in place (a G built before its
    // memory is known is assembled on the stack and copied).
    let mem = galloc(curp);
    // SAFETY: `mem` is memory for a G that no live G occupies.
    unsafe {
        mem.as_ptr().write(G {
            id,
            parent_id: cur.map_or(0, |(_, g)| g.id),
            name: opts.name,
            status: AtomicU32::new(Status::Runnable as u32),
            wait_reason: Cell::new(WaitReason::None),
            home: AtomicPtr::new(ptr::null_mut()),
            migratable: opts.migratable,
            born_locked: opts.locked,
            detached: opts.detached,
            system: opts.system,
            stack_size: opts.stack_size,
            locked_ext: Cell::new(0),
            entry: std::cell::UnsafeCell::new(Some(entry)),
            coro: std::cell::UnsafeCell::new(None),
            yielder: Cell::new(ptr::null()),
            allg_prev: Cell::new(ptr::null_mut()),
            allg_next: Cell::new(ptr::null_mut()),
            locals: std::cell::UnsafeCell::new(Vec::new()),
            panic_report: std::cell::UnsafeCell::new(None),
        })
    };
    let g = mem;
    // Counted before it is published, so its exit is counted after.
    if !opts.system {
        count_g(curp, true);
    }
    if opts.locked {
        if let Err(e) = newm_locked(g) {
            if !opts.system {
                count_g(curp, false);
            }
            // SAFETY: the G was never published.
            unsafe { gfree(None, g) };
            return Err(e);
        }
        return Ok(id);
    }
    match curp {
        Some(p) => runqput(p, g, true),
        None => globrunqput(g),
    }
    wakep();
    Ok(id)
}

/// Counts a goroutine created (or exited) by the caller: on its P, owned
/// by the caller, else on the shared counters.
fn count_g(p: Option<&P>, created: bool) {
    match (p, created) {
        (Some(p), true) => super::p::GCount::bump(&p.gcount.created),
        (Some(p), false) => super::p::GCount::bump(&p.gcount.exited),
        (None, true) => drop(SCHED.gcreated.fetch_add(1, Ordering::AcqRel)),
        (None, false) => drop(SCHED.gexited.fetch_add(1, Ordering::AcqRel)),
    }
}

/// Memory of exited goroutines beyond what Ps keep (Go's `sched.gFree`).
static GFREE: Mutex<Vec<GMem>> = Mutex::new(Vec::new());

struct GMem(NonNull<G>);
// SAFETY: the memory holds no live G; it is only handed out again.
unsafe impl Send for GMem {}

/// Go's `gfget`: memory for a new G from the P's free list, refilled from
/// the global one, else fresh. Gs are never returned to the allocator
/// (as in Go), so spawning reuses memory instead of a malloc/free pair that
/// would often cross threads.
fn galloc(p: Option<&P>) -> NonNull<G> {
    if let Some(p) = p {
        // SAFETY: the caller's M owns `p`.
        let local = unsafe { &mut *p.gfree.get() };
        if local.is_empty() {
            let mut global = GFREE.lock().unwrap_or_else(|e| e.into_inner());
            let n = global.len().min(32);
            let at = global.len() - n;
            local.extend(global.drain(at..).map(|m| m.0));
        }
        if let Some(g) = local.pop() {
            return g;
        }
    }
    NonNull::from(Box::leak(Box::<std::mem::MaybeUninit<G>>::new_uninit())).cast()
}

/// Go's `gfput`: drops the exited G in place and keeps its memory, half of
/// a long local list going to the global one.
///
/// # Safety
/// `g` is a live G nobody references any more; `p`, if given, is owned by
/// the caller's M.
unsafe fn gfree(p: Option<&P>, g: NonNull<G>) {
    // SAFETY: per the contract.
    unsafe { ptr::drop_in_place(g.as_ptr()) };
    match p {
        Some(p) => {
            // SAFETY: per the contract.
            let local = unsafe { &mut *p.gfree.get() };
            local.push(g);
            if local.len() > 64 {
                let mut global = GFREE.lock().unwrap_or_else(|e| e.into_inner());
                global.extend(local.drain(..32).map(GMem));
            }
        }
        None => GFREE.lock().unwrap_or_else(|e| e.into_inner()).push(GMem(g)),
    }
}

/// Go's `runqput` plus `runqputslow`'s spill to the global queue.
fn runqput(p: &P, g: NonNull<G>, next: bool) {
    // SAFETY: the caller's M owns `p`.
    if let Some(batch) = unsafe { p.runq.put(g, next) } {
        let mut l = lock();
        for g in batch {
            l.runq.push_back(g);
        }
        SCHED.runqsize.store(l.runq.len() as u32, Ordering::Release);
    }
}

pub(crate) fn globrunqput(g: NonNull<G>) {
    let mut l = lock();
    l.runq.push_back(g);
    SCHED.runqsize.store(l.runq.len() as u32, Ordering::Release);
}

/// Go's `goready`/`ready`: makes a waiting goroutine runnable. A started
/// goroutine goes back to its home M: into the M's `home_next` when we are
/// that M (a readied goroutine runs next, as Go's `runnext`), else into its
/// home queue, finding the M a P if it sleeps without one.
pub(crate) fn ready(g: NonNull<G>) {
    // SAFETY: the caller owns the waiting G (it was handed the G by whoever
    // parked it), so it is live.
    let gr = unsafe { g.as_ref() };
    debug_assert!(gr.status() == Status::Waiting, "ready of a goroutine that is not waiting");
    gr.set_status(Status::Runnable);
    let home = gr.home.load(Ordering::Acquire);
    if home.is_null() {
        // Migratable (or never started): Go's runqput(next) + wakep.
        match current().and_then(|(m, _)| m.p()) {
            Some(p) => runqput(p, g, true),
            None => globrunqput(g),
        }
        wakep();
        return;
    }
    // SAFETY: Ms are never freed.
    let hm = unsafe { &*home };
    if let Some((m, _)) = current() {
        if ptr::eq(m, hm) && m.p().is_some() {
            let old = m.home_next.replace(g.as_ptr());
            if let Some(old) = NonNull::new(old) {
                m.home_push_local(old);
            }
            return;
        }
    }
    home_push(hm, g);
}

/// Appends a runnable goroutine to `m`'s home queue and, if `m` sleeps
/// without a P, asks for one on its behalf.
pub(crate) fn home_push(m: &'static M, g: NonNull<G>) {
    let mut h = m.lock_home();
    h.q.push_back(g);
    m.home_len.store(h.q.len() as u32, Ordering::Release);
    let need = h.nop && !h.wanting;
    if need {
        h.wanting = true;
    }
    drop(h);
    if need {
        request_p(m);
    }
}

/// Finds `m` a P: an idle one at once, else a place in `mwantp`, served
/// when a P is released. The caller set `wanting`; the request lapses if
/// the M no longer sleeps without a P (`nop`), or has a P coming.
fn request_p(m: &'static M) {
    let mut l = lock();
    {
        // `park_for_p` takes `nextp` and clears `nop` under the home lock,
        // so under both locks the M either still needs a P or has one.
        // (A readier that saw `nop` just before the M took its P used to
        // hand the running M a second one, lost for good.)
        let h = m.lock_home();
        if !h.nop || !m.nextp.load(Ordering::Relaxed).is_null() || l.mwantp.iter().any(|x| ptr::eq(*x, m)) {
            return;
        }
    }
    if let Some(i) = l.midle.iter().position(|x| ptr::eq(*x, m)) {
        l.midle.swap_remove(i);
    }
    if let Some(p) = pidleget(&mut l) {
        give_p(p, m);
        drop(l);
        m.note.wakeup();
        wake_sysmon();
    } else {
        l.mwantp.push_back(m);
        SCHED.nmwantp.store(l.mwantp.len() as u32, Ordering::Release);
    }
}

/// Hands `p` to the sleeping `m` (under `sched.lock`); the caller wakes it.
/// An M is on at most one of `midle` and `mwantp`, and on neither once it
/// has a `nextp`: a second P handed to it would be lost, Running with no
/// M, and the next stop-the-world would wait for it for ever (Go throws
/// the same way in `startm`).
fn give_p(p: &'static P, m: &'static M) {
    if !m.nextp.load(Ordering::Relaxed).is_null() {
        fatal("startm: m has p");
    }
    p.set_status(PStatus::Running);
    p.m.store(m as *const M as *mut M, Ordering::Release);
    m.nextp.store(p as *const P as *mut P, Ordering::Release);
}

fn pidleget(l: &mut Locked) -> Option<&'static P> {
    let p = l.pidle.pop()?;
    SCHED.npidle.fetch_sub(1, Ordering::AcqRel);
    Some(p)
}

/// Releases `p` (under `sched.lock`): to a pending stop-the-world, else to
/// the first M waiting for a P (returned, to be woken after unlocking),
/// else to the idle list.
fn pidleput(l: &mut Locked, p: &'static P) -> Option<&'static M> {
    if p.status() == PStatus::Dead {
        return None;
    }
    if SCHED.gcwaiting.load(Ordering::Acquire) {
        p.m.store(ptr::null_mut(), Ordering::Release);
        p.set_status(PStatus::GcStop);
        l.stopwait -= 1;
        if l.stopwait == 0 {
            SCHED.stopnote.wakeup();
        }
        return None;
    }
    if let Some(m) = l.mwantp.pop_front() {
        SCHED.nmwantp.store(l.mwantp.len() as u32, Ordering::Release);
        give_p(p, m);
        return Some(m);
    }
    p.m.store(ptr::null_mut(), Ordering::Release);
    p.set_status(PStatus::Idle);
    l.pidle.push(p);
    SCHED.npidle.fetch_add(1, Ordering::AcqRel);
    None
}

// ---------------------------------------------------------------------------
// Ms: starting, stopping, spinning.

/// Go's `wakep`: starts a spinning M on an idle P if nobody spins.
pub(crate) fn wakep() {
    if !SCHED.spinning.claim() {
        return;
    }
    let mut l = lock();
    let Some(p) = pidleget(&mut l) else {
        SCHED.spinning.no_idle_p();
        return;
    };
    startm_locked(l, p, true);
}

/// Go's `startm(pp, spinning)`: runs `p` on an idle M, or a new one.
fn startm_locked(mut l: MutexGuard<'static, Locked>, p: &'static P, spinning: bool) {
    match l.midle.pop() {
        Some(m) => {
            give_p(p, m);
            m.spinning.store(spinning, Ordering::Relaxed);
            drop(l);
            m.note.wakeup();
        }
        None => {
            p.set_status(PStatus::Running);
            drop(l);
            if let Err(e) = newm(MKind::Worker, Some(p), spinning, None) {
                fatal(&format!("runtime: cannot create an OS thread: {e}"));
            }
        }
    }
    wake_sysmon();
}

/// Go's `handoffp`: gives away a P whose M blocks or stops. Starts an M
/// for it when there is work, else releases it.
pub(crate) fn handoffp(p: &'static P) {
    let mut l = lock();
    if SCHED.gcwaiting.load(Ordering::Acquire) {
        pidleput(&mut l, p);
        return;
    }
    if let Some(m) = l.mwantp.pop_front() {
        SCHED.nmwantp.store(l.mwantp.len() as u32, Ordering::Release);
        give_p(p, m);
        drop(l);
        m.note.wakeup();
        return;
    }
    // SAFETY: `is_empty` is a lock-free read allowed from any thread.
    if !p.runq.is_empty() || !l.runq.is_empty() {
        startm_locked(l, p, false);
        return;
    }
    if SCHED.spinning.claim_if_none(SCHED.npidle.load(Ordering::SeqCst)) {
        startm_locked(l, p, true);
        return;
    }
    pidleput(&mut l, p);
}

fn acquirep(m: &'static M, p: &'static P) {
    m.p.set(p);
    p.m.store(m as *const M as *mut M, Ordering::Release);
    p.set_status(PStatus::Running);
    m.p_since.store(nanotime(), Ordering::Relaxed);
}

fn releasep(m: &M) -> &'static P {
    let p = m.p().expect("releasep without a P");
    // A request for this M lapses when it gives up its P.
    super::preempt::clear(m);
    m.p.set(ptr::null());
    p
}

/// Go's `stopm`: the M (holding no P) sleeps until it is handed one. If
/// goroutines homed here are runnable, it queues for a P first; an idle
/// worker also offers itself to `startm`.
pub(crate) fn stop_m(m: &'static M) {
    debug_assert!(m.p().is_none());
    loop {
        let has_home = {
            let mut h = m.lock_home();
            h.nop = true;
            let has = m.has_home_work();
            if has && !h.wanting {
                h.wanting = true;
                Some(true)
            } else if has {
                Some(false)
            } else {
                None
            }
        };
        match has_home {
            Some(true) => request_p(m),
            Some(false) => {}
            None => {
                if m.admits_new() {
                    // Under `sched.lock`, as `request_p`: a goroutine readied
                    // since the check above may have queued us on `mwantp`,
                    // and an M on both lists would be handed two Ps.
                    let mut l = lock();
                    if m.nextp.load(Ordering::Relaxed).is_null()
                        && !l.midle.iter().any(|x| ptr::eq(*x, m))
                        && !l.mwantp.iter().any(|x| ptr::eq(*x, m))
                    {
                        l.midle.push(m);
                    }
                }
            }
        }
        if park_for_p(m) {
            return;
        }
    }
}

/// Sleeps on the M's note once (until the earliest timer, if it becomes
/// the timer sleeper); if it was woken with a P, takes it and returns true
/// (Go's `mPark` then `acquirep(nextp)`).
fn park_for_p(m: &'static M) -> bool {
    crate::time::heap::sleep_m(m);
    m.note.clear();
    let p = {
        // One critical section with `request_p`'s check of `nop`.
        let mut h = m.lock_home();
        let p = m.nextp.swap(ptr::null_mut(), Ordering::Acquire);
        if p.is_null() {
            return false;
        }
        h.nop = false;
        h.wanting = false;
        p
    };
    // SAFETY: Ps are never freed.
    acquirep(m, unsafe { &*p });
    true
}

/// Go's `newm`: a new OS thread running the scheduler, starting on `p`
/// (or, for a locked M, asking for a P for `g`, homed there).
fn newm(kind: MKind, p: Option<&'static P>, spinning: bool, g: Option<NonNull<G>>) -> std::io::Result<&'static M> {
    let reused = lock().freem.pop();
    let m: &'static M = match reused {
        Some(m) => {
            m.kind.set(kind);
            m.dead.store(false, Ordering::Release);
            m.retiring.set(false);
            m.pinned.set(0);
            m.homed.set(0);
            m
        }
        None => {
            let id = SCHED.mnext.fetch_add(1, Ordering::Relaxed);
            let m: &'static M = Box::leak(Box::new(M::new(id, kind)));
            SCHED.allm.lock().unwrap_or_else(|e| e.into_inner()).push(m);
            m
        }
    };
    if let Some(p) = p {
        p.m.store(m as *const M as *mut M, Ordering::Release);
        m.nextp.store(p as *const P as *mut P, Ordering::Release);
    }
    m.spinning.store(spinning, Ordering::Relaxed);
    if let Some(g) = g {
        let mut h = m.lock_home();
        // SAFETY: the new G is ours until published.
        unsafe { g.as_ref() }.home.store(m as *const M as *mut M, Ordering::Release);
        h.q.push_back(g);
        m.home_len.store(1, Ordering::Release);
    }
    let name = format!("gort-m{}", m.id);
    let r =
        super::checkdead::spawn_thread(std::thread::Builder::new().name(name).stack_size(2 << 20), move || mstart(m));
    if let Err(e) = r {
        m.dead.store(true, Ordering::Release);
        return Err(e);
    }
    Ok(m)
}

fn newm_locked(g: NonNull<G>) -> std::io::Result<()> {
    newm(MKind::Locked, None, false, Some(g)).map(|_| ())
}

/// Go's `mstart`: the body of every M thread.
fn mstart(m: &'static M) {
    CUR_M.with(|c| c.set(m));
    super::preempt::bind(m);
    stack::ensure_altstack();
    // SAFETY: gettid has no preconditions.
    m.tid.store(unsafe { libc::gettid() }, Ordering::Relaxed);
    let p = m.nextp.swap(ptr::null_mut(), Ordering::Acquire);
    if p.is_null() {
        stop_m(m);
    } else {
        // SAFETY: Ps are never freed.
        acquirep(m, unsafe { &*p });
    }
    loop {
        let (g, inherit) = find_runnable(m);
        if m.spinning.load(Ordering::Relaxed) {
            resetspinning(m);
        }
        if execute(m, g, inherit) {
            break;
        }
    }
    mexit(m);
}

/// Go's `mexit`: the thread of a locked (or retiring) M ends.
fn mexit(m: &'static M) {
    if let Some(p) = m.p() {
        m.p.set(ptr::null());
        handoffp(p);
    }
    m.dead.store(true, Ordering::Release);
    lock().freem.push(m);
}

/// Go's `gcstopm`: stops this M's P for a pending stop-the-world, then
/// sleeps until the world restarts and a P is handed back.
fn gcstopm(m: &'static M) {
    if m.spinning.swap(false, Ordering::Relaxed) {
        SCHED.spinning.stop();
    }
    let p = releasep(m);
    let mut l = lock();
    let w = pidleput(&mut l, p);
    drop(l);
    if let Some(w) = w {
        w.note.wakeup();
    }
    stop_m(m);
}

fn become_spinning(m: &M) {
    m.spinning.store(true, Ordering::Relaxed);
    SCHED.spinning.become_spinning();
}

/// Go's `resetspinning`: a spinner found work; let another M spin.
fn resetspinning(m: &M) {
    m.spinning.store(false, Ordering::Relaxed);
    SCHED.spinning.stop();
    wakep();
}

// ---------------------------------------------------------------------------
// The scheduler loop.

/// Go's `findRunnable`, for an M that holds a P. Returns the goroutine to
/// run and whether it inherits the time slice. See `sched/mod.rs` for the
/// order and how it differs from Go's.
fn find_runnable(m: &'static M) -> (NonNull<G>, bool) {
    'top: loop {
        if SCHED.gcwaiting.load(Ordering::Acquire) {
            gcstopm(m);
            continue;
        }
        let p = m.p().expect("find_runnable without a P");
        if p.timers.next() != u64::MAX {
            p.timers.run(nanotime());
        }
        // Another M waits for a P and this one has had it for a slice:
        // take turns (Go hands its P to a locked M in `startlockedm`).
        if SCHED.nmwantp.load(Ordering::Relaxed) != 0
            && nanotime().saturating_sub(m.p_since.load(Ordering::Relaxed)) >= 1_000_000
            && handoff_to_waiter(m)
        {
            continue;
        }
        if let Some(g) = NonNull::new(m.home_next.replace(ptr::null_mut())) {
            return (g, true);
        }
        let admits = m.admits_new();
        let tick = p.schedtick.load(Ordering::Relaxed);
        if admits && tick % 61 == 0 && SCHED.runqsize.load(Ordering::Relaxed) > 0 {
            // The mirror is updated under the lock, as every other writer
            // does: a decrement after unlocking could land after another
            // M's store of the new length and leave `runqsize` wrong for
            // good (0 - 1 wraps), and a locked or pinned M that sees it
            // non-zero gives its P away instead of running its own
            // goroutines, forever.
            let g = {
                let mut l = lock();
                let g = l.runq.pop_front();
                SCHED.runqsize.store(l.runq.len() as u32, Ordering::Release);
                g
            };
            if let Some(g) = g {
                if place(m, g) {
                    return (g, false);
                }
                return (run_home_instead(m, tick), false);
            }
        }
        if tick % 31 == 0 {
            if let Some(g) = m.home_pop(tick) {
                return (g, false);
            }
        }
        if admits {
            // SAFETY: we own `p`.
            if let Some((g, inherit)) = unsafe { p.runq.get() } {
                if place(m, g) {
                    return (g, inherit);
                }
                return (run_home_instead(m, tick), false);
            }
        } else if !p.runq.is_empty() || SCHED.runqsize.load(Ordering::Relaxed) > 0 {
            // A locked or pinned M must not start these; give the P to an M
            // that may, and queue for a P for our own goroutines.
            m.p.set(ptr::null());
            handoffp(p);
            stop_m(m);
            continue;
        }
        if let Some(g) = m.home_pop(tick) {
            return (g, false);
        }
        if admits {
            if SCHED.runqsize.load(Ordering::Relaxed) > 0 {
                if let Some(g) = globrunqget_batch(p) {
                    return (g, false);
                }
            }
            let procs = gomaxprocs();
            if SCHED.spinning.may_spin(m.spinning.load(Ordering::Relaxed), procs, SCHED.npidle.load(Ordering::SeqCst)) {
                if !m.spinning.load(Ordering::Relaxed) {
                    become_spinning(m);
                }
                // Go's last stealing pass also runs other Ps' timers, idle
                // or stuck ones included.
                if crate::time::heap::run_all_due() > 0 {
                    continue 'top;
                }
                if let Some(g) = steal_work(m, p) {
                    return (g, false);
                }
            }
        }
        if spin_for_home(m) {
            continue 'top;
        }
        // Nothing to do: release the P and sleep (Go's findRunnable tail).
        let mut l = lock();
        if SCHED.gcwaiting.load(Ordering::Acquire) {
            continue 'top;
        }
        if admits {
            if let Some(g) = l.runq.pop_front() {
                SCHED.runqsize.store(l.runq.len() as u32, Ordering::Release);
                return (g, false);
            }
            if !m.spinning.load(Ordering::Relaxed) && SCHED.spinning.needed() {
                become_spinning(m);
                continue 'top;
            }
        }
        if m.has_home_work() {
            continue 'top;
        }
        let p = releasep(m);
        if admits {
            let waiter = pidleput(&mut l, p);
            if waiter.is_none() && SCHED.npidle.load(Ordering::SeqCst) == gomaxprocs() {
                super::checkdead::checkdead(&l);
            }
            drop(l);
            if let Some(w) = waiter {
                w.note.wakeup();
            }
        } else {
            // A locked or pinned M did not look at `needspinning`: hand the
            // P off as Go's `handoffp` does, which starts a spinner when
            // nobody spins and no P is idle (the loom model
            // `locked_m_releasing_p_vs_no_idle_p` loses a wake-up otherwise).
            drop(l);
            handoffp(p);
        }
        let was_spinning = m.spinning.swap(false, Ordering::Relaxed);
        if was_spinning {
            SCHED.spinning.stop();
            // Recheck every source (Go's checkRunqsNoP): a submitter that
            // saw us spinning did not wake anyone.
            if SCHED.runqsize.load(Ordering::SeqCst) > 0 || any_runq_nonempty() {
                let mut l = lock();
                if let Some(p) = pidleget(&mut l) {
                    drop(l);
                    acquirep(m, p);
                    become_spinning(m);
                    continue 'top;
                }
            }
        }
        stop_m(m);
    }
}

/// Gives our P to the first M in `mwantp` and queues behind it if we still
/// have work. Returns false if nobody was waiting.
fn handoff_to_waiter(m: &'static M) -> bool {
    let mut l = lock();
    let Some(w) = l.mwantp.pop_front() else {
        return false;
    };
    SCHED.nmwantp.store(l.mwantp.len() as u32, Ordering::Release);
    let p = releasep(m);
    give_p(p, w);
    drop(l);
    w.note.wakeup();
    if m.spinning.load(Ordering::Relaxed) {
        // A submitter may have relied on us spinning: let another M spin.
        resetspinning(m);
    }
    stop_m(m);
    true
}

/// How long an M whose goroutines are parked waits for one of them to be
/// readied by another thread before it gives up its P and sleeps.
const HOME_SPIN_NS: u64 = 20_000;

/// Before releasing its P, an M whose goroutine just parked spins briefly:
/// a goroutine readied by another thread (the other half of a cross-thread
/// ping-pong, a `syscall` finishing on the pool) is then picked up without
/// a futex wake-up and a P hand-off. Go gets the same from its spinning Ms,
/// which may run any goroutine; ours can only run their own. Returns true
/// if work may have arrived.
fn spin_for_home(m: &M) -> bool {
    // Only right after one of ours parked: a goroutine parked long ago is
    // not about to be readied, and spinning would take a core from the
    // thread that will ready it.
    if !m.just_parked.replace(false) {
        return false;
    }
    spin_wait(Duration::from_nanos(HOME_SPIN_NS), || {
        m.home_len.load(Ordering::Acquire) != 0
            || SCHED.gcwaiting.load(Ordering::Relaxed)
            || SCHED.runqsize.load(Ordering::Relaxed) > 0
    })
}

/// Waits up to `budget` for `ready()`: one pause per check at first (a
/// pause can take ~100 cycles, and the event awaited is usually a single
/// store by another core), then yielding the CPU between checks, since on
/// a machine with fewer free cores than busy threads the thread we wait
/// for may need ours. Returns whether `ready()` became true.
pub(crate) fn spin_wait(budget: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + budget;
    for i in 0u32.. {
        if i < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
        if ready() {
            return true;
        }
        if i % 16 == 15 && Instant::now() >= deadline {
            return false;
        }
    }
    false
}

fn any_runq_nonempty() -> bool {
    (0..gomaxprocs()).any(|i| !allp(i).runq.is_empty())
}

/// First-run placement: a goroutine that has not started goes where a P
/// is idle when this M already has homed goroutines waiting, so CPU-bound
/// goroutines spawned one at a time spread over the Ps.
fn place(m: &M, g: NonNull<G>) -> bool {
    // SAFETY: we own g (just popped it).
    if unsafe { g.as_ref() }.started() {
        return true;
    }
    // A P is free if one is idle or a spinning M (not us) is looking for
    // work: `wakep` in `newproc` usually has already turned the idle P into
    // a spinner, which would otherwise only get the goroutine from our
    // `runnext` after a delay, too late.
    let spinners = SCHED.spinning.count().saturating_sub(m.spinning.load(Ordering::Relaxed) as u32);
    if m.has_home_work() && (SCHED.npidle.load(Ordering::SeqCst) > 0 || spinners > 0) {
        globrunqput(g);
        wakep();
        return false;
    }
    true
}

/// After `place` sent a new goroutine elsewhere because this M has its own
/// work, takes that work. Going round the loop instead would pop the same
/// goroutine again from the global queue (the tick has not moved), and two
/// Ms with homed work and each other as spinners did so for ever.
fn run_home_instead(m: &M, tick: u32) -> NonNull<G> {
    m.home_pop(tick).expect("place() declined a goroutine but this M has no homed work")
}

/// Go's `globrunqgetbatch`: moves a fair share of the global queue into
/// our run queue and returns one to run.
fn globrunqget_batch(p: &P) -> Option<NonNull<G>> {
    let mut l = lock();
    let size = l.runq.len() as u32;
    if size == 0 {
        return None;
    }
    let n = size.min(size / gomaxprocs() + 1).min(128);
    let first = l.runq.pop_front();
    let mut rest: Vec<NonNull<G>> = (1..n).filter_map(|_| l.runq.pop_front()).collect();
    SCHED.runqsize.store(l.runq.len() as u32, Ordering::Release);
    drop(l);
    // SAFETY: we own `p`.
    unsafe { p.runq.put_batch(&mut rest) };
    if !rest.is_empty() {
        let mut l = lock();
        for g in rest.into_iter().rev() {
            l.runq.push_front(g);
        }
        SCHED.runqsize.store(l.runq.len() as u32, Ordering::Release);
    }
    first
}

/// Go's `stealWork`: four passes over the other Ps in random order; the
/// last pass also takes `runnext`.
fn steal_work(m: &M, p: &P) -> Option<NonNull<G>> {
    let procs = gomaxprocs();
    for pass in 0..4 {
        let steal_runnext = pass == 3;
        let start = m.fastrand() % procs;
        for k in 0..procs {
            if SCHED.gcwaiting.load(Ordering::Relaxed) {
                return None;
            }
            let victim = allp((start + k) % procs);
            if ptr::eq(victim, p) || victim.status() != PStatus::Running {
                continue;
            }
            let vm = victim.m.load(Ordering::Acquire);
            // SAFETY: Ms are never freed.
            let running = !vm.is_null() && !unsafe { &*vm }.curg.load(Ordering::Relaxed).is_null();
            // SAFETY: we own `p` (the thief side).
            if let Some(g) = unsafe { p.runq.steal(&victim.runq, steal_runnext, running) } {
                return Some(g);
            }
        }
    }
    None
}

/// Go's `execute` plus the `mcall` targets: runs `g` until it suspends or
/// exits. Returns true when this M's thread must exit.
fn execute(m: &'static M, g: NonNull<G>, inherit: bool) -> bool {
    // SAFETY: we own the runnable G we were handed.
    let gr = unsafe { g.as_ref() };
    let p = m.p().expect("execute without a P");
    if !inherit {
        // Only the owner writes it (sysmon reads): no read-modify-write needed.
        p.schedtick.store(p.schedtick.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }
    super::preempt::clear(m);
    gr.set_status(Status::Running);
    if !gr.started() {
        start_g(m, p, gr);
    }
    m.curg.store(g.as_ptr(), Ordering::Release);
    // SAFETY: only the M running `g` touches its coroutine, and we are it.
    let coro = unsafe { (*gr.coro.get()).as_mut().unwrap() };
    let r = coro.resume(());
    m.curg.store(ptr::null_mut(), Ordering::Release);
    match r {
        CoroutineResult::Return(()) => gdestroy(m, g),
        CoroutineResult::Yield(Req::Gosched) => {
            gr.set_status(Status::Runnable);
            requeue(m, g);
            false
        }
        CoroutineResult::Yield(Req::Park(unlock)) => {
            // SAFETY: the callback lives on the parked goroutine's stack,
            // which stays valid while it is suspended; we are the M that
            // suspended it, on the same thread.
            let keep_parked = unsafe { (*unlock.0)() };
            m.just_parked.set(keep_parked && !gr.home.load(Ordering::Relaxed).is_null());
            if !keep_parked {
                // Go's park_m: the park was abandoned; run it again next.
                gr.set_status(Status::Runnable);
                if gr.home.load(Ordering::Relaxed).is_null() {
                    requeue(m, g);
                } else if let Some(old) = NonNull::new(m.home_next.replace(g.as_ptr())) {
                    m.home_push_local(old);
                }
            }
            false
        }
    }
}

/// A goroutine that yielded goes to the back of its queue: its home queue
/// (Go: the global queue, which a homed goroutine cannot use).
fn requeue(m: &'static M, g: NonNull<G>) {
    // SAFETY: we own the runnable G.
    if unsafe { g.as_ref() }.home.load(Ordering::Relaxed).is_null() {
        globrunqput(g);
        wakep();
    } else {
        m.home_push_local(g);
    }
}

/// First run: allocate the stack, build the coroutine, home the goroutine.
fn start_g(m: &'static M, p: &P, g: &G) {
    // SAFETY: we own `p`; no other reference to its cache is live.
    let st = match unsafe { p.stacks() }.alloc(g.stack_size) {
        Ok(s) => s,
        Err(e) => fatal(&format!("runtime: cannot allocate goroutine stack: {e}\nfatal error: out of memory")),
    };
    if !g.migratable {
        g.home.store(m as *const M as *mut M, Ordering::Release);
        m.homed.set(m.homed.get() + 1);
        m.allg_insert(g);
    }
    let gp = SendPtr(g as *const G);
    let coro: super::g::Coro = Coroutine::with_stack(st, move |y, ()| {
        let gp = gp;
        // SAFETY: the G outlives its coroutine (freed only after it returned).
        let g = unsafe { &*gp.0 };
        g.yielder.set(y as *const _);
        goroutine_main(g);
    });
    // SAFETY: only this M touches the coroutine slot of the G it runs.
    unsafe { *g.coro.get() = Some(coro) };
}

#[derive(Clone, Copy)]
struct SendPtr(*const G);
// SAFETY: the pointer is only dereferenced on the goroutine's own stack.
unsafe impl Send for SendPtr {}

/// The body of every goroutine, on its own stack.
fn goroutine_main(g: &G) {
    // SAFETY: only the running goroutine touches `entry`.
    let entry = unsafe { (*g.entry.get()).take() }.expect("goroutine started twice");
    let r = panic::catch_unwind(AssertUnwindSafe(|| entry.run()));
    let r2 = super::local::destroy_locals(g);
    for r in [r, r2] {
        if let Err(payload) = r {
            if !payload.is::<super::api::Goexit>() {
                super::report::fatal_panic(g, &*payload);
            }
        }
    }
}

/// Go's `goexit0`/`gdestroy`: frees an exited goroutine; returns true if
/// the M's thread must exit with it (a locked M, or a retiring one that
/// has no homed goroutines left).
fn gdestroy(m: &'static M, g: NonNull<G>) -> bool {
    // SAFETY: the goroutine has exited; we own it.
    let gr = unsafe { g.as_ref() };
    gr.set_status(Status::Dead);
    // SAFETY: only this M touches the coroutine of the G it ran.
    let coro = unsafe { (*gr.coro.get()).take() }.expect("exited goroutine has no coroutine");
    let st = coro.into_stack();
    match m.p() {
        // SAFETY: we own `p`.
        Some(p) => unsafe { p.stacks() }.free(st),
        None => stack::free_global(st),
    }
    if !gr.home.load(Ordering::Relaxed).is_null() {
        m.homed.set(m.homed.get() - 1);
        if !gr.migratable {
            m.allg_remove(gr);
        }
    }
    if gr.locked_ext.get() > 0 && !gr.born_locked {
        // Go: a goroutine that exits while locked takes its thread with it.
        m.pinned.set(m.pinned.get() - 1);
        m.retiring.set(true);
    }
    if !gr.system {
        count_g(m.p(), false);
    }
    while m.inspect.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        std::hint::spin_loop();
    }
    // SAFETY: nobody else references an exited G; `inspect` keeps
    // sysmon/STW readers out while it is freed.
    unsafe { gfree(m.p(), g) };
    m.inspect.store(false, Ordering::Release);
    m.kind.get() == MKind::Locked || (m.retiring.get() && m.homed.get() == 0)
}

// ---------------------------------------------------------------------------
// Suspending the running goroutine.

/// Suspends the running goroutine with `req` (Go's `mcall`).
fn mcall(g: &G, req: Req) {
    if g.home.load(Ordering::Relaxed).is_null() && std::thread::panicking() {
        // A migratable goroutine that is unwinding never migrates: its
        // unwinder state is thread-bound. Home it here for good.
        if let Some(m) = getm() {
            g.home.store(m as *const M as *mut M, Ordering::Release);
            m.homed.set(m.homed.get() + 1);
        }
    }
    let y = g.yielder.get();
    // SAFETY: the yielder belongs to the running coroutine, which is us;
    // it is valid until the coroutine returns.
    unsafe { (*y).suspend(req) };
}

/// Go's `gopark`: parks the running goroutine, then runs `unlock` on the
/// M's stack once the goroutine's stack is no longer in use; if it returns
/// false the goroutine is resumed at once. Must be called on a goroutine.
pub(crate) fn gopark(g: &G, reason: WaitReason, unlock: &mut dyn FnMut() -> bool) {
    g.wait_reason.set(reason);
    g.set_status(Status::Waiting);
    let raw: *mut (dyn FnMut() -> bool + '_) = unlock;
    // SAFETY: only the lifetime is erased; `unlock` stays borrowed until
    // `mcall` returns, which is after the M has called it.
    let raw: *mut (dyn FnMut() -> bool + 'static) = unsafe { std::mem::transmute(raw) };
    mcall(g, Req::Park(super::g::RawUnlock(raw)));
    g.wait_reason.set(WaitReason::None);
}

/// Go's `Gosched` for the running goroutine.
pub(crate) fn gosched_g(g: &G) {
    mcall(g, Req::Gosched);
}

// ---------------------------------------------------------------------------
// Syscalls (Go's entersyscall/exitsyscall) for locked goroutines.

pub(crate) fn entersyscall(m: &M, g: &G) {
    g.set_status(Status::Syscall);
    m.syscall.enter();
}

/// Go's `exitsyscall`: keep the P if nobody took it, else get one back
/// (an idle one, or wait for one). Idempotent.
pub(crate) fn exitsyscall(m: &'static M) {
    if m.syscall.exit().is_err() {
        // Go's exitsyscallNoP: an idle P, else wait our turn in `mwantp`.
        m.p.set(ptr::null());
        {
            let mut h = m.lock_home();
            h.nop = true;
            h.wanting = true;
        }
        request_p(m);
        while !park_for_p(m) {}
    }
    let g = m.curg.load(Ordering::Relaxed);
    if !g.is_null() {
        // SAFETY: the running goroutine is live.
        unsafe { &*g }.set_status(Status::Running);
    }
}

// ---------------------------------------------------------------------------
// Stop-the-world (Go's stopTheWorldWithSema / startTheWorldWithSema).

/// A stopped world; `start_the_world` restarts it.
pub(crate) struct Stw {
    /// The caller's M, which keeps running with its P.
    me: Option<&'static M>,
}

/// Stops every P at its next scheduling point; Ps whose M is in a syscall
/// are taken at once. The caller (goroutine or plain thread) keeps running.
pub(crate) fn stop_the_world(reason: &'static str) -> Stw {
    ensure_started();
    while SCHED.worldsema.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        match current() {
            Some((_, g)) => gosched_g(g),
            None => std::thread::sleep(Duration::from_micros(50)),
        }
    }
    let me = current().map(|(m, _)| m);
    let mut l = lock();
    SCHED.gcwaiting.store(true, Ordering::SeqCst);
    l.stopwait = gomaxprocs() as i32;
    if let Some(p) = me.and_then(|m| m.p()) {
        p.set_status(PStatus::GcStop);
        l.stopwait -= 1;
    }
    for i in 0..gomaxprocs() {
        let p = allp(i);
        if p.status() != PStatus::Running {
            continue;
        }
        let pm = p.m.load(Ordering::Acquire);
        if pm.is_null() {
            continue;
        }
        // SAFETY: Ms are never freed.
        let pm = unsafe { &*pm };
        if pm.syscall.take() {
            p.m.store(ptr::null_mut(), Ordering::Release);
            p.set_status(PStatus::GcStop);
            l.stopwait -= 1;
        }
    }
    while let Some(p) = pidleget(&mut l) {
        p.set_status(PStatus::GcStop);
        l.stopwait -= 1;
    }
    let wait = l.stopwait > 0;
    drop(l);
    if wait {
        let started = Instant::now();
        let mut reported = false;
        loop {
            preempt_all();
            if SCHED.stopnote.sleep_timeout(Duration::from_millis(10)) {
                break;
            }
            if !reported && started.elapsed() >= Duration::from_secs(1) {
                reported = true;
                super::report::stw_stuck(reason, started.elapsed());
            }
        }
        SCHED.stopnote.clear();
    }
    Stw { me }
}

fn preempt_all() {
    for i in 0..gomaxprocs() {
        let p = allp(i);
        let pm = p.m.load(Ordering::Acquire);
        if p.status() == PStatus::Running && !pm.is_null() {
            // SAFETY: Ms are never freed.
            super::preempt::request(unsafe { &*pm });
        }
    }
}

/// Restarts the world, resizing to `newprocs` Ps first if given (Go's
/// `procresize`).
pub(crate) fn start_the_world(stw: Stw, newprocs: Option<u32>) {
    let mut l = lock();
    let my_p = stw.me.and_then(|m| m.p());
    if let Some(n) = newprocs {
        procresize(&mut l, n, stw.me);
    }
    let my_p = stw.me.and_then(|m| m.p()).or(my_p);
    SCHED.gcwaiting.store(false, Ordering::SeqCst);
    let mut wake = Vec::new();
    let mut start = Vec::new();
    for i in 0..gomaxprocs() {
        let p = allp(i);
        if my_p.is_some_and(|mp| ptr::eq(mp, p)) {
            p.set_status(PStatus::Running);
            continue;
        }
        if p.status() != PStatus::GcStop {
            continue;
        }
        if let Some(m) = pidleput(&mut l, p) {
            wake.push(m);
        } else if !p.runq.is_empty() {
            let q = l.pidle.pop();
            debug_assert!(q.is_some_and(|q| ptr::eq(q, p)));
            SCHED.npidle.fetch_sub(1, Ordering::AcqRel);
            start.push(p);
        }
    }
    drop(l);
    for m in wake {
        m.note.wakeup();
    }
    for p in start {
        let l = lock();
        startm_locked(l, p, false);
    }
    SCHED.worldsema.store(false, Ordering::Release);
    wakep();
}

/// Go's `procresize`, with the world stopped: creates or destroys Ps. The
/// run queues of destroyed Ps go to the head of the global queue. If the
/// caller's P is destroyed, the caller takes P 0.
fn procresize(l: &mut Locked, n: u32, me: Option<&'static M>) {
    let old = gomaxprocs();
    for i in old..n {
        let slot = &SCHED.allp[i as usize];
        if slot.load(Ordering::Acquire).is_null() {
            let p: &'static P = Box::leak(Box::new(P::new(i)));
            slot.store(p as *const P as *mut P, Ordering::Release);
        }
        allp(i).set_status(PStatus::GcStop);
    }
    for i in (n..old).rev() {
        let p = allp(i);
        // SAFETY: the world is stopped: no M owns `p`.
        let mut gs = unsafe { p.runq.drain() };
        while let Some(g) = gs.pop() {
            l.runq.push_front(g);
        }
        // SAFETY: as above.
        unsafe { p.stacks() }.flush();
        p.timers.move_to(&allp(0).timers);
        // SAFETY: as above.
        let gs = std::mem::take(unsafe { &mut *p.gfree.get() });
        GFREE.lock().unwrap_or_else(|e| e.into_inner()).extend(gs.into_iter().map(GMem));
        p.m.store(ptr::null_mut(), Ordering::Release);
        p.set_status(PStatus::Dead);
    }
    SCHED.runqsize.store(l.runq.len() as u32, Ordering::Release);
    if let Some(m) = me {
        if m.p().is_some_and(|p| p.id >= n) {
            let p0 = allp(0);
            m.p.set(p0);
            p0.m.store(m as *const M as *mut M, Ordering::Release);
        }
    }
    SCHED.gomaxprocs.store(n, Ordering::Release);
}

pub(crate) fn wake_sysmon() {
    if SCHED.sysmonwait.load(Ordering::Relaxed) && SCHED.sysmonwait.swap(false, Ordering::AcqRel) {
        SCHED.sysmonnote.wakeup();
    }
}

/// Go's `fatal`/`throw`: prints `fatal error: MSG` and exits with code 2.
pub(crate) fn fatal(msg: &str) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let mut e = std::io::stderr().lock();
    if msg.starts_with("runtime:") {
        let _ = writeln!(e, "{msg}");
    } else {
        let _ = writeln!(e, "fatal error: {msg}");
    }
    let _ = e.flush();
    std::process::exit(2)
}
