//! Deadlock detection (Go's `checkdead`): when no goroutine can ever run
//! again, print `fatal error: all goroutines are asleep - deadlock!` and
//! every goroutine's header, and exit with code 2.
//!
//! It runs when an M makes the last P idle, under `sched.lock`. It fires
//! only if all of these hold:
//! - a thread is inside `gort::run` (or `#[gort::main]`): the process
//!   entered through the runtime;
//! - no goroutine is runnable (every run queue and home queue is empty, no
//!   M waits for a P), none is in a syscall (inline or on the blocking
//!   pool), no timer is pending and none is firing;
//! - every thread of the process is a runtime thread (M, sysmon, blocking
//!   pool) or a caller waiting in `gort::run`. Any other thread could still
//!   wake a goroutine (it may hold a channel, or be about to use one it was
//!   handed), so while one exists the check stays off. This is stricter
//!   than "disarmed once a foreign thread registers" (Go's rule for threads
//!   that call in from C): it needs no registration, so it also covers a
//!   thread that has not touched gort yet, at the price of never reporting
//!   a deadlock while, say, a logging thread lives. A missed report leaves
//!   a hang; a false one would kill a working program.
//!
//! The same count of runtime threads enforces Go's thread limit
//! (`debug.SetMaxThreads`, [`set_max_threads`]): creating a thread beyond
//! it is Go's fatal error `thread exhaustion`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::g::G;
use super::proc::{self, Locked, SCHED};

/// Threads parked in `gort::run`.
pub(crate) static RUN_CALLERS: AtomicUsize = AtomicUsize::new(0);
/// Live runtime threads (Ms, sysmon, blocking-pool threads).
static RUNTIME_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Work in flight outside any queue: timers being fired, blocking-pool
/// jobs between their dequeue and the ready of their goroutine.
static BUSY: AtomicUsize = AtomicUsize::new(0);

/// Set when `checkdead` stood down only because the process has threads
/// it does not count; sysmon then checks again while every P stays idle.
static RECHECK: AtomicBool = AtomicBool::new(false);

/// Go's `sched.maxmcount`: the most runtime threads that may exist at
/// once (`debug.SetMaxThreads`; Go's default).
static MAX_THREADS: AtomicUsize = AtomicUsize::new(10_000);

/// Spawns a runtime thread (an M, sysmon, a blocking-pool thread, the
/// collector's thread), counted from before the OS thread exists until its
/// body has returned. Counting inside the thread instead would let
/// `checkdead` see a thread it cannot account for and stand down with
/// nothing left to call it again. A thread beyond the limit is fatal
/// ([`checkmcount`]).
pub(crate) fn spawn_thread<F: FnOnce() + Send + 'static>(b: std::thread::Builder, f: F) -> std::io::Result<()> {
    struct Counted;
    impl Drop for Counted {
        fn drop(&mut self) {
            RUNTIME_THREADS.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let n = RUNTIME_THREADS.fetch_add(1, Ordering::SeqCst) + 1;
    let counted = Counted;
    checkmcount(n);
    b.spawn(move || {
        let _counted = counted;
        f()
    })
    .map(drop)
}

/// Go's `setMaxThreads`: sets the limit (at most `i32::MAX`, as Go's is an
/// `int32`) and returns the previous one. As in Go, a limit below the
/// threads that exist already is fatal at once.
pub(crate) fn set_max_threads(n: usize) -> usize {
    let prev = MAX_THREADS.swap(n.min(i32::MAX as usize), Ordering::SeqCst);
    checkmcount(RUNTIME_THREADS.load(Ordering::SeqCst));
    prev
}

/// Go's `checkmcount`: `count` runtime threads (the one about to be created
/// included) must not exceed the limit; otherwise Go's two lines and exit
/// status 2. (Go's `throw` then prints the runtime's stack; gort's fatal
/// errors print no stack.)
fn checkmcount(count: usize) {
    let max = MAX_THREADS.load(Ordering::SeqCst);
    if count > max {
        let _ = std::io::stdout().flush();
        // Held across `fatal`, which locks it again (it is reentrant), so
        // the two lines stay together.
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "runtime: program exceeds {max}-thread limit");
        proc::fatal("thread exhaustion");
    }
}

/// Whether sysmon should call [`recheck`] soon.
pub(crate) fn recheck_wanted() -> bool {
    RECHECK.load(Ordering::Relaxed)
}

/// Sysmon's second look after `checkdead` stood down because of threads
/// it did not count: one of them may have been a runtime thread still
/// exiting after its count dropped, and nothing else would look again.
pub(crate) fn recheck() {
    if !RECHECK.swap(false, Ordering::Relaxed) {
        return;
    }
    let l = proc::lock();
    if SCHED.npidle.load(Ordering::SeqCst) == proc::gomaxprocs() {
        checkdead(&l);
    }
}

/// Marks work in flight for as long as it lives.
pub(crate) struct Busy(());

impl Busy {
    pub(crate) fn new() -> Busy {
        BUSY.fetch_add(1, Ordering::SeqCst);
        Busy(())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Called with `sched.lock` held when every P has just become idle.
pub(crate) fn checkdead(l: &Locked) {
    let callers = RUN_CALLERS.load(Ordering::SeqCst);
    if callers == 0 || proc::gcount() <= 0 {
        return;
    }
    if !l.runq.is_empty() || !l.mwantp.is_empty() || SCHED.gcwaiting.load(Ordering::SeqCst) {
        return;
    }
    // Queued work first, then in-flight work: a timer is marked busy before
    // it leaves its heap, a pool job when it leaves the queue (under the
    // pool's lock), and a goroutine is readied before its work stops being
    // busy. Reading in the other order could miss work moving between them.
    if crate::time::heap::earliest() != u64::MAX || !super::syscall::pool_idle() || BUSY.load(Ordering::SeqCst) != 0 {
        return;
    }
    let allm = SCHED.allm.lock().unwrap_or_else(|e| e.into_inner());
    let live: Vec<_> = allm.iter().filter(|m| !m.dead.load(Ordering::Acquire)).collect();
    if live.iter().any(|m| m.runnable_homed() > 0 || m.syscall.state() != super::spin::SYSCALL_NONE) {
        return;
    }
    if (0..proc::gomaxprocs()).any(|i| !proc::allp(i).runq.is_empty()) {
        return;
    }
    // A runtime thread that is exiting is still listed for a moment after
    // its count dropped; sysmon looks again for that case.
    let threads = std::fs::read_dir("/proc/self/task").map_or(usize::MAX, |d| d.count());
    if threads > RUNTIME_THREADS.load(Ordering::SeqCst) + callers {
        RECHECK.store(true, Ordering::Relaxed);
        return;
    }
    // Every M is asleep without a P: their goroutine lists are stable, and
    // `sched.lock` orders their last changes before this read.
    let mut gs: Vec<&G> = Vec::new();
    for m in &live {
        let mut g = m.allg.get();
        // SAFETY: see above; list members are live goroutines.
        while let Some(gr) = unsafe { g.as_ref() } {
            if !gr.system {
                gs.push(gr);
            }
            g = gr.allg_next.get();
        }
    }
    gs.sort_by_key(|g| g.id);
    let mut out = String::from("fatal error: all goroutines are asleep - deadlock!\n");
    for g in gs {
        out.push('\n');
        out.push_str(&g.header());
    }
    let _ = std::io::stdout().flush();
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(out.as_bytes());
    let _ = e.flush();
    std::process::exit(2);
}
