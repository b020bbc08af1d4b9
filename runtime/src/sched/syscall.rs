//! `gort::syscall`: running a blocking call without stalling the other
//! goroutines of the M (Go's `entersyscall`/`exitsyscall`, and cgo calls).
//!
//! Two paths:
//! - An unlocked goroutine parks and its function runs on a blocking-pool
//!   thread, which readies the goroutine when the function has returned.
//!   The function borrows the parked goroutine's stack, so the goroutine
//!   resumes only after it finished: the park is exact (only the pool
//!   thread readies it, once, after the function returned), and a parked
//!   goroutine's coroutine is never dropped. A panic in the function is
//!   caught on the pool thread and resumed in the goroutine.
//! - A locked goroutine (born locked, or inside `lock_os_thread`) must stay
//!   on its thread, so the function runs inline; the M keeps its P but
//!   marks it as in a syscall, and sysmon hands the P off after 20 µs
//!   (Go's `retake`). Runtime calls made inside the function get a P back
//!   first (`proc::current` calls `exitsyscall`).

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::g::{WaitReason, G};
use super::proc::{self, SCHED};

type Job = (Box<dyn FnOnce() + Send + 'static>, NonNull<G>);

struct Pool {
    jobs: VecDeque<SendJob>,
    /// Threads asleep on the condvar.
    idle: usize,
    /// Threads spinning for the next job (they will take one without a wake-up).
    spinning: usize,
    threads: usize,
}

struct SendJob(Job);
// SAFETY: the closure is Send; the G pointer is only used to ready it.
unsafe impl Send for SendJob {}

static POOL: Mutex<Pool> = Mutex::new(Pool { jobs: VecDeque::new(), idle: 0, spinning: 0, threads: 0 });
static POOL_CV: Condvar = Condvar::new();
const POOL_IDLE_EXIT: Duration = Duration::from_secs(10);
/// How long a pool thread spins for the next job before it sleeps.
const POOL_SPIN: Duration = Duration::from_micros(20);
/// Mirrors `Pool::jobs.len()` for the spinning threads' lock-free peek.
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// Runs a blocking call without stalling the other goroutines on this
/// goroutine's thread: the Rust counterpart of a Go system call or cgo call.
///
/// Wrap blocking work that does not go through gort (std file or socket
/// I/O, `std::thread::sleep`, FFI, a std `Mutex` that may be held long) in
/// `syscall`. For an ordinary goroutine, `f` runs on a thread of a blocking
/// pool while the goroutine parks; `f` may borrow from the goroutine's
/// stack. For a goroutine locked to its thread ([`lock_os_thread`],
/// [`Builder::locked`]) `f` runs inline on that thread and the scheduler
/// hands the thread's logical processor to others after 20 µs, as Go does.
/// Called from a thread that is not a goroutine, it just calls `f`.
///
/// A panic in `f` propagates to the caller. Each call counts in
/// [`num_cgo_call`].
///
/// [`lock_os_thread`]: crate::lock_os_thread
/// [`Builder::locked`]: crate::Builder::locked
/// [`num_cgo_call`]: crate::num_cgo_call
///
/// ```
/// use std::time::Duration;
/// let n = gort::run(|| {
///     let data = vec![1, 2, 3];
///     gort::syscall(|| {
///         std::thread::sleep(Duration::from_millis(1)); // blocks a pool thread, not the scheduler
///         data.iter().sum::<i32>()
///     })
/// });
/// assert_eq!(n, 6);
/// ```
pub fn syscall<F, R>(f: F) -> R
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    SCHED.ncgocall.fetch_add(1, Ordering::Relaxed);
    let Some((m, g)) = proc::current() else {
        return f();
    };
    if g.born_locked || g.locked_ext.get() > 0 {
        proc::entersyscall(m, g);
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        proc::exitsyscall(m);
        return r.unwrap_or_else(|p| panic::resume_unwind(p));
    }
    let mut result: Option<std::thread::Result<R>> = None;
    let result_ptr = SendPtr(&mut result as *mut _);
    let job: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
        let result_ptr = result_ptr;
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        // SAFETY: the goroutine owning `result` is parked until we ready it.
        unsafe { *result_ptr.0 = Some(r) };
    });
    // SAFETY: only the lifetime is erased. The goroutine whose stack `job`
    // borrows stays parked until the pool thread has run `job` and readied
    // it (nothing else knows the goroutine is parked), and a parked
    // goroutine is never dropped.
    let job: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(job) };
    let mut job = Some(SendJob((job, NonNull::from(g))));
    proc::gopark(g, WaitReason::Syscall, &mut || {
        submit(job.take().expect("syscall job submitted twice"));
        true
    });
    match result.take().expect("gort::syscall resumed before its function finished") {
        Ok(r) => r,
        Err(p) => panic::resume_unwind(p),
    }
}

struct SendPtr<T>(*mut T);
// SAFETY: see the use in `syscall`: exclusive access is handed over by the park.
unsafe impl<T> Send for SendPtr<T> {}

/// Whether the blocking pool has no queued job (`checkdead`; jobs being
/// run are counted as busy).
pub(crate) fn pool_idle() -> bool {
    POOL.lock().unwrap_or_else(|e| e.into_inner()).jobs.is_empty()
}

/// Queues a job; starts a pool thread unless enough are idle to take
/// every queued job (`idle` counts threads waiting on the condvar, kept by
/// the threads themselves, so spurious wake-ups cannot skew it).
fn submit(job: SendJob) {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    pool.jobs.push_back(job);
    QUEUED.store(pool.jobs.len(), Ordering::Relaxed);
    // The pool is bounded by the runtime's thread limit (Go's
    // `debug.SetMaxThreads`; `checkdead::spawn_thread` enforces it): as in
    // Go, where each goroutine blocked in a syscall holds an M, exceeding
    // it is fatal rather than a queue that waits.
    let spawn = pool.jobs.len() > pool.idle + pool.spinning;
    if spawn {
        pool.threads += 1;
    }
    // std's notify costs a futex call even with nobody asleep.
    let sleeper = pool.idle > 0 && pool.jobs.len() > pool.spinning;
    drop(pool);
    if sleeper {
        POOL_CV.notify_one();
    }
    if spawn
        && super::checkdead::spawn_thread(std::thread::Builder::new().name("gort-syscall".into()), pool_thread).is_err()
    {
        POOL.lock().unwrap_or_else(|e| e.into_inner()).threads -= 1;
    }
}

fn pool_thread() {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(SendJob((f, g))) = pool.jobs.pop_front() {
            QUEUED.store(pool.jobs.len(), Ordering::Relaxed);
            // Busy from before the queue looks empty until the goroutine is
            // readied, so `checkdead` never sees this work as missing.
            let _busy = super::checkdead::Busy::new();
            drop(pool);
            f();
            proc::ready(g);
            drop(_busy);
            pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        // Spin briefly before sleeping: back-to-back syscalls then cost no
        // futex round trip (Go's Ms spin the same way).
        pool.spinning += 1;
        drop(pool);
        proc::spin_wait(POOL_SPIN, || QUEUED.load(Ordering::Relaxed) != 0);
        pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        pool.spinning -= 1;
        if !pool.jobs.is_empty() {
            continue;
        }
        pool.idle += 1;
        let (p, timeout) = POOL_CV.wait_timeout(pool, POOL_IDLE_EXIT).unwrap_or_else(|e| e.into_inner());
        pool = p;
        pool.idle -= 1;
        if timeout.timed_out() && pool.jobs.is_empty() {
            pool.threads -= 1;
            return;
        }
    }
}
