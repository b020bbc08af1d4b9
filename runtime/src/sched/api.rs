//! The goroutine API: `go`, `spawn`, `Builder`, `JoinHandle`, `run`,
//! `scope`, `gosched`, `goexit` and the runtime queries.

use std::cell::UnsafeCell;
use std::io;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::g::WaitReason;
use super::join::JoinCore;
use super::park::{park_unlock, Waiter};
use super::proc::{self, NewG, SCHED};
use crate::stack;

// ---------------------------------------------------------------------------
// Starting goroutines.

/// Starts a detached goroutine running `f`: Go's `go f()`.
///
/// The goroutine is queued on the caller's logical processor and runs when
/// a thread of the runtime picks it (often next, when the caller blocks).
/// The runtime starts on first use; `go` may be called from any thread.
///
/// **Where it runs.** A goroutine that has started running stays on the OS
/// thread that started it for the rest of its life: thread-locals, a
/// `!Send` guard (a `std::sync::MutexGuard`, a `tracing` span guard, a
/// `ThreadRng`) held across a blocking call stay valid, because Rust code
/// relies on them and gort never moves a started goroutine. Only
/// goroutines that have not started yet move between threads to balance
/// load. The price: a goroutine that blocks its thread outside the runtime
/// (std I/O, `std::thread::sleep`, a contended std `Mutex`) stalls the
/// other goroutines homed on that thread; wrap such calls in
/// [`syscall`](crate::syscall). See [`Builder::migratable`] for Go's full
/// migration.
///
/// **Panics.** As in Go, an unrecovered panic in a detached goroutine
/// prints `panic: MSG`, the goroutine's header and a backtrace to stderr
/// and exits the process with code 2. Use [`spawn`] to get the panic back.
///
/// ```
/// use std::sync::mpsc;
/// let (tx, rx) = mpsc::channel();
/// gort::go(move || tx.send(6 * 7).unwrap());
/// assert_eq!(rx.recv().unwrap(), 42);
/// ```
pub fn go<F>(f: F)
where
    F: FnOnce() + Send + 'static,
{
    Builder::new().go(f).expect("gort: cannot start goroutine");
}

/// Starts a goroutine and returns a handle to join it, like
/// `std::thread::spawn`. A panic in `f` is returned by
/// [`JoinHandle::join`], not fatal. Where the goroutine runs: see [`go`].
///
/// ```
/// let h = gort::spawn(|| (1..=10).sum::<u32>());
/// assert_eq!(h.join().unwrap(), 55);
/// ```
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().spawn(f).expect("gort: cannot start goroutine")
}

/// Settings for a new goroutine: name, stack size, locking, migration.
///
/// ```
/// let h = gort::Builder::new()
///     .name("worker".into())
///     .stack_size(1 << 20)
///     .spawn(|| gort::current().unwrap().name().map(String::from))
///     .unwrap();
/// assert_eq!(h.join().unwrap().as_deref(), Some("worker"));
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
    locked: bool,
    migratable: bool,
}

impl Builder {
    /// Default settings: no name, the default stack size (256 KiB, or
    /// `GORT_STACK_SIZE`), homed on the thread that first runs it.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the goroutine (shown by [`current`], in panics and dumps).
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// Stack size in bytes (rounded up to a power of two). Outside
    /// 16 KiB ..= 1 GiB, `spawn` returns an `InvalidInput` error naming the
    /// allowed range.
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    /// Born locked (Go's `LockOSThread` at the top of the goroutine): the
    /// goroutine starts on a fresh OS thread of its own, no other goroutine
    /// ever runs on that thread, and the thread exits with the goroutine.
    ///
    /// ```
    /// let h = gort::Builder::new().locked().spawn(|| std::thread::current().id()).unwrap();
    /// let tid = h.join().unwrap();
    /// assert_ne!(tid, std::thread::current().id());
    /// ```
    pub fn locked(mut self) -> Builder {
        self.locked = true;
        self
    }

    /// Lets the scheduler move this goroutine between OS threads whenever
    /// it blocks, as Go does for every goroutine. This makes communicating
    /// goroutines cheaper to wake (no cross-thread hand-off to the home
    /// thread), at a price the caller must pay in care.
    ///
    /// # Safety
    /// The goroutine must not keep thread-bound state across any call that
    /// may block or yield (`join`, `gosched`, channel operations, `gort::sync`
    /// locks, `syscall`, `preempt_point`): no `thread_local!` reference or
    /// value derived from a thread-local's address (the compiler may cache a
    /// thread-local's address across such calls), no `!Send` value (a
    /// `std::sync::MutexGuard`, `Rc`, a `tracing` span guard, `ThreadRng`),
    /// and no [`local!`](crate::local) value that is `!Send`. A goroutine
    /// that is unwinding is never moved.
    ///
    /// ```
    /// // SAFETY: the body keeps no thread-bound state across blocking calls.
    /// let b = unsafe { gort::Builder::new().migratable() };
    /// assert_eq!(b.spawn(|| 1 + 1).unwrap().join().unwrap(), 2);
    /// ```
    pub unsafe fn migratable(mut self) -> Builder {
        self.migratable = true;
        self
    }

    fn newg(&self, detached: bool) -> io::Result<NewG> {
        let stack_size = match self.stack_size {
            Some(n) => stack::check_stack_size(n)?,
            None => stack::default_stack_size(),
        };
        if self.locked && self.migratable {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a goroutine cannot be both locked() and migratable(): choose one",
            ));
        }
        Ok(NewG {
            name: self.name.as_deref().map(Arc::from),
            stack_size,
            locked: self.locked,
            migratable: self.migratable,
            detached,
            system: false,
        })
    }

    /// Starts a detached goroutine with these settings (see [`go`]).
    ///
    /// ```
    /// gort::Builder::new().name("logger".into()).go(|| println!("hello")).unwrap();
    /// ```
    pub fn go<F>(self, f: F) -> io::Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        let opts = self.newg(true)?;
        proc::newproc(opts, Entry::new(f)).map(|_| ())
    }

    /// Starts a detached runtime-owned goroutine (Go's system goroutines,
    /// such as the finalizer goroutine): not counted by `num_goroutine`
    /// or deadlock detection. A panic in it follows [`go`]'s rules.
    pub(crate) fn go_system<F>(self, f: F) -> io::Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        let mut opts = self.newg(true)?;
        opts.system = true;
        proc::newproc(opts, Entry::new(f)).map(|_| ())
    }

    /// Starts a goroutine with these settings (see [`spawn`]).
    ///
    /// ```
    /// let err = gort::Builder::new().stack_size(100).spawn(|| ()).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // SAFETY: `F` and `T` are 'static.
        unsafe { self.spawn_unchecked(f, None) }.map(JoinHandle)
    }

    /// # Safety
    /// Whatever `f` and `T` borrow must outlive the goroutine: the caller
    /// joins it (or waits for `scope`) before the borrow ends.
    unsafe fn spawn_unchecked<'a, F, T>(self, f: F, scope: Option<Arc<ScopeData>>) -> io::Result<JoinInner<T>>
    where
        F: FnOnce() -> T + Send + 'a,
        T: Send + 'a,
    {
        let opts = self.newg(false)?;
        if let Some(s) = &scope {
            s.running.fetch_add(1, Ordering::Relaxed);
        }
        // One allocation holds the closure, then the result in its place:
        // the goroutine runs it through `Entry`, the joiner reads the result.
        let task: Arc<Task<F, T>> =
            Arc::new(Task { stage: UnsafeCell::new(Stage::Pending(f)), join: JoinCore::new(), scope });
        let joinable: Arc<dyn Joinable<T> + 'a> = task.clone();
        let main: Arc<dyn Run + 'a> = task;
        // SAFETY: only the lifetimes are erased; the caller's contract
        // keeps the borrows alive until the goroutine finished (and the
        // scope, or the caller, outlives every handle).
        let (main, task) = unsafe {
            (
                std::mem::transmute::<Arc<dyn Run + 'a>, Arc<dyn Run>>(main),
                std::mem::transmute::<Arc<dyn Joinable<T> + 'a>, Arc<dyn Joinable<T>>>(joinable),
            )
        };
        // On failure the task is dropped unrun, which tells the scope.
        proc::newproc(opts, Entry(main)).map(|id| JoinInner { id, task })
    }
}

// ---------------------------------------------------------------------------
// What a goroutine runs.

/// Runs a goroutine's body once (the goroutine calls it exactly once).
pub(crate) trait Run: Send + Sync {
    fn run(&self);
}

/// A goroutine's body: one allocation, shared with the joiner for
/// `spawn` (the closure and the result slot live together).
pub(crate) struct Entry(Arc<dyn Run>);

impl Entry {
    /// The body of a detached goroutine.
    pub(crate) fn new<F: FnOnce() + Send + 'static>(f: F) -> Entry {
        Entry(Arc::new(Detached(UnsafeCell::new(Some(f)))))
    }

    pub(crate) fn run(self) {
        self.0.run()
    }
}

struct Detached<F>(UnsafeCell<Option<F>>);

// SAFETY: the closure is taken once, by the goroutine that runs it; the
// `Arc` is shared with nobody else.
unsafe impl<F: Send> Sync for Detached<F> {}

impl<F: FnOnce() + Send> Run for Detached<F> {
    fn run(&self) {
        // SAFETY: see the `Sync` impl: only the goroutine touches it, once.
        let f = unsafe { (*self.0.get()).take() }.expect("goroutine started twice");
        f()
    }
}

/// What a joinable goroutine's cell holds: its closure until it starts,
/// then nothing while it runs, then its result until joined (tokio's
/// `Stage`). The closure and the result share the space.
enum Stage<F, T> {
    Pending(F),
    Taken,
    Done(std::thread::Result<T>),
}

/// A joinable goroutine's closure or result, and the join handshake.
struct Task<F, T> {
    /// Touched by the goroutine until it sets `DONE` in `join`, then by
    /// the joiner (or whoever drops the task last).
    stage: UnsafeCell<Stage<F, T>>,
    join: JoinCore<Waiter>,
    scope: Option<Arc<ScopeData>>,
}

// SAFETY: `stage` is handed from the goroutine to the joiner through
// `join` (written before `complete`, read after `is_done`); `join` is
// `Sync` on its own.
unsafe impl<F: Send, T: Send> Sync for Task<F, T> {}

impl<F: FnOnce() -> T + Send, T: Send> Run for Task<F, T> {
    fn run(&self) {
        // SAFETY: before `complete`, only the goroutine touches the stage.
        let f = match unsafe { std::mem::replace(&mut *self.stage.get(), Stage::Taken) } {
            Stage::Pending(f) => f,
            _ => unreachable!("goroutine started twice"),
        };
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        // Like a thread's locals, a goroutine's are gone once it can be joined.
        let r = match super::local::destroy_current() {
            Err(p) if r.is_ok() => Err(p),
            _ => r,
        };
        // SAFETY: as above; `complete` publishes the write.
        unsafe { *self.stage.get() = Stage::Done(r) };
        // SAFETY: the goroutine completes once. The task stays alive
        // until this returns (the goroutine holds a reference).
        if let Some(w) = unsafe { self.join.complete() } {
            w.wake();
        }
    }
}

impl<F, T> Drop for Task<F, T> {
    fn drop(&mut self) {
        // An unjoined panic in a scoped goroutine makes `scope` panic (std's rule).
        let unhandled = matches!(self.stage.get_mut(), Stage::Done(Err(p)) if !p.is::<Goexit>());
        // Drop the result (or an unrun closure) before telling the scope,
        // as it may borrow from it.
        *self.stage.get_mut() = Stage::Taken;
        if let Some(scope) = self.scope.take() {
            if unhandled {
                scope.panicked.store(true, Ordering::Relaxed);
            }
            scope.decrement();
        }
    }
}

/// The joiner's view of a [`Task`], without its closure type.
trait Joinable<T>: Send + Sync {
    fn core(&self) -> &JoinCore<Waiter>;
    /// Takes the result.
    ///
    /// # Safety
    /// Only the joiner, once, after seeing `core().is_done()`.
    unsafe fn take_result(&self) -> std::thread::Result<T>;
}

impl<F: FnOnce() -> T + Send, T: Send> Joinable<T> for Task<F, T> {
    fn core(&self) -> &JoinCore<Waiter> {
        &self.join
    }

    unsafe fn take_result(&self) -> std::thread::Result<T> {
        // SAFETY: `DONE` was seen (acquire): the goroutine no longer
        // touches the stage, and only the joiner reads it.
        match unsafe { std::mem::replace(&mut *self.stage.get(), Stage::Taken) } {
            Stage::Done(r) => r,
            _ => unreachable!("goroutine result taken twice"),
        }
    }
}

// ---------------------------------------------------------------------------
// Joining.

struct JoinInner<T> {
    id: u64,
    task: Arc<dyn Joinable<T>>,
}

impl<T> JoinInner<T> {
    fn join(self) -> std::thread::Result<T> {
        let core = self.task.core();
        if !core.is_done() {
            match proc::current() {
                Some((_, g)) => {
                    // SAFETY: the handle is consumed: we are the only joiner.
                    unsafe { core.set_waiter(Waiter::G(NonNull::from(g))) };
                    // Registering after the switch: the wake-up (a `ready`)
                    // cannot come before the park. Nothing may touch this
                    // stack after `register` (a migratable goroutine may
                    // already run elsewhere), so the outcome is not stored.
                    proc::gopark(g, WaitReason::Join, &mut || core.register());
                    // Either `register` found `DONE` (the waiter is still
                    // there) or the finisher took it before readying us.
                    // SAFETY: in both cases the finisher is done with the cell.
                    drop(unsafe { core.take_waiter() });
                }
                None => {
                    // SAFETY: as above.
                    unsafe { core.set_waiter(Waiter::Thread(std::thread::current())) };
                    if core.register() {
                        while !core.is_done() {
                            std::thread::park();
                        }
                    } else {
                        // SAFETY: `register` found `DONE`.
                        drop(unsafe { core.take_waiter() });
                    }
                }
            }
        }
        // A goroutine is readied exactly once, by the finisher after `DONE`.
        assert!(core.is_done(), "join woken before the goroutine finished");
        // SAFETY: `DONE` seen; the handle is consumed, so this runs once.
        unsafe { self.task.take_result() }
    }

    fn is_finished(&self) -> bool {
        self.task.core().is_done()
    }
}

/// An owned permission to join a goroutine (wait for it and take its
/// result), like `std::thread::JoinHandle`. Dropping it detaches the
/// goroutine.
pub struct JoinHandle<T>(JoinInner<T>);

impl<T> JoinHandle<T> {
    /// Waits for the goroutine to finish and returns its result, or `Err`
    /// with the panic payload if it panicked (or a [`Goexit`] payload if it
    /// called [`goexit`]). Called from a goroutine it parks the goroutine;
    /// from another thread it parks that thread.
    ///
    /// ```
    /// let h = gort::spawn(|| panic!("oops"));
    /// assert!(h.join().is_err());
    /// ```
    pub fn join(self) -> std::thread::Result<T> {
        self.0.join()
    }

    /// Whether the goroutine has finished running its function.
    ///
    /// ```
    /// let h = gort::spawn(|| ());
    /// while !h.is_finished() { std::thread::yield_now(); }
    /// h.join().unwrap();
    /// ```
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    /// The goroutine's id (Go's goroutine id, as in `goroutine 7 [running]:`).
    ///
    /// ```
    /// let h = gort::spawn(|| gort::current().unwrap().id());
    /// let id = h.id();
    /// assert_eq!(h.join().unwrap(), id);
    /// ```
    pub fn id(&self) -> u64 {
        self.0.id
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.0.id).finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------
// run and scope.

/// Runs `f` as a goroutine (the main goroutine, id 1, when it is the first
/// of the process) and returns its result, blocking the calling thread
/// meanwhile. `f` may borrow from the caller. Called on a goroutine, it
/// simply calls `f`. It may be called again later.
///
/// A panic in `f` propagates to the caller. If `f` calls [`goexit`], the
/// program goes on until every other goroutine has exited, then dies with
/// Go's `fatal error: no goroutines (main called runtime.Goexit) - deadlock!`.
///
/// ```
/// let v = vec![1, 2, 3];
/// let sum = gort::run(|| {
///     let h = gort::spawn(|| 40);
///     h.join().unwrap() + v.len() as i32 - 1
/// });
/// assert_eq!(sum, 42);
/// ```
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    if proc::current().is_some() {
        return f();
    }
    super::checkdead::RUN_CALLERS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: we join before returning (or never return), so the borrows of
    // `f` and `T` outlive the goroutine.
    let h = unsafe { Builder::new().spawn_unchecked(f, None) }.expect("gort: cannot start goroutine");
    let r = h.join();
    super::checkdead::RUN_CALLERS.fetch_sub(1, Ordering::SeqCst);
    match r {
        Ok(v) => v,
        Err(p) if p.is::<Goexit>() => {
            while proc::gcount() > 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            proc::fatal("no goroutines (main called runtime.Goexit) - deadlock!")
        }
        Err(p) => panic::resume_unwind(p),
    }
}

struct ScopeData {
    running: AtomicUsize,
    panicked: AtomicBool,
    waiter: Mutex<Option<Waiter>>,
}

impl ScopeData {
    fn decrement(&self) {
        if self.running.fetch_sub(1, Ordering::Release) == 1 {
            let w = self.waiter.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(w) = w {
                w.wake();
            }
        }
    }
}

/// A scope for goroutines that borrow from the caller; see [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// A handle to join a goroutine started in a [`scope`].
pub struct ScopedJoinHandle<'scope, T> {
    inner: JoinInner<T>,
    _scope: PhantomData<&'scope ()>,
}

/// Starts goroutines that may borrow from the caller's stack; all of them
/// are joined before `scope` returns, like `std::thread::scope`.
///
/// If a goroutine panicked and was not joined, `scope` panics after all
/// have finished.
///
/// ```
/// let mut data = vec![1, 2, 3];
/// let total = std::sync::atomic::AtomicI32::new(0);
/// gort::scope(|s| {
///     for x in &data {
///         let total = &total;
///         s.spawn(move || total.fetch_add(*x, std::sync::atomic::Ordering::Relaxed));
///     }
/// });
/// data.push(4);
/// assert_eq!(total.into_inner(), 6);
/// ```
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        data: Arc::new(ScopeData {
            running: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            waiter: Mutex::new(None),
        }),
        scope: PhantomData,
        env: PhantomData,
    };
    let r = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
    // Wait for every goroutine of the scope, even if `f` panicked.
    let mut w = scope.data.waiter.lock().unwrap_or_else(|e| e.into_inner());
    while scope.data.running.load(Ordering::Acquire) != 0 {
        *w = Some(Waiter::current());
        w = park_unlock(&scope.data.waiter, w, WaitReason::SyncWaitGroupWait);
    }
    drop(w);
    match r {
        Err(p) => panic::resume_unwind(p),
        Ok(_) if scope.data.panicked.load(Ordering::Relaxed) => panic!("a scoped goroutine panicked"),
        Ok(v) => v,
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Starts a goroutine in the scope; it may borrow anything that
    /// outlives the scope.
    ///
    /// ```
    /// let name = String::from("gort");
    /// let len = gort::scope(|s| s.spawn(|| name.len()).join().unwrap());
    /// assert_eq!(len, 4);
    /// ```
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        // SAFETY: `scope` waits for every goroutine it started before the
        // borrows ('scope) end.
        let inner = unsafe { Builder::new().spawn_unchecked(f, Some(self.data.clone())) }
            .expect("gort: cannot start goroutine");
        ScopedJoinHandle { inner, _scope: PhantomData }
    }
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the goroutine and returns its result (see [`JoinHandle::join`]).
    ///
    /// ```
    /// gort::scope(|s| assert_eq!(s.spawn(|| 7).join().unwrap(), 7));
    /// ```
    pub fn join(self) -> std::thread::Result<T> {
        self.inner.join()
    }

    /// Whether the goroutine has finished.
    ///
    /// ```
    /// gort::scope(|s| { let h = s.spawn(|| ()); h.join().unwrap(); });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// The goroutine's id.
    ///
    /// ```
    /// gort::scope(|s| assert!(s.spawn(|| ()).id() > 0));
    /// ```
    pub fn id(&self) -> u64 {
        self.inner.id
    }
}

// ---------------------------------------------------------------------------
// Yielding and exiting.

/// Yields the processor, letting other goroutines run; the caller resumes
/// later on its own thread. Go's `runtime.Gosched`. On a thread that is
/// not a goroutine it yields the OS thread.
///
/// ```
/// gort::run(|| {
///     let h = gort::spawn(|| 1);
///     gort::gosched();
///     assert_eq!(h.join().unwrap(), 1);
/// });
/// ```
pub fn gosched() {
    match proc::current() {
        Some((_, g)) => proc::gosched_g(g),
        None => std::thread::yield_now(),
    }
}

/// The payload of a goroutine that ended by [`goexit`], as seen by
/// [`JoinHandle::join`].
#[derive(Debug)]
pub struct Goexit;

/// Ends the calling goroutine, running its destructors on the way (Go's
/// `runtime.Goexit` runs deferred calls). Its joiner gets `Err` holding a
/// [`Goexit`] payload. It unwinds like a panic, so a `catch_unwind` in
/// between stops it. On a thread that is not a goroutine it unwinds the
/// thread the same way.
///
/// ```
/// let h = gort::spawn(|| {
///     let _guard = std::fs::File::open("/dev/null"); // closed by the unwind
///     gort::goexit();
/// });
/// assert!(h.join().unwrap_err().is::<gort::Goexit>());
/// ```
pub fn goexit() -> ! {
    panic::resume_unwind(Box::new(Goexit))
}

// ---------------------------------------------------------------------------
// Queries.

/// The number of goroutines that currently exist (started or not, running
/// or blocked). Go's `runtime.NumGoroutine`.
///
/// ```
/// let h = gort::spawn(|| gort::num_goroutine());
/// assert!(h.join().unwrap() >= 1);
/// ```
pub fn num_goroutine() -> usize {
    proc::gcount().max(0) as usize
}

/// The number of CPUs this process may use (Go's `runtime.NumCPU`).
///
/// ```
/// assert!(gort::num_cpu() >= 1);
/// ```
pub fn num_cpu() -> usize {
    super::env::ncpu()
}

/// Sets the number of logical processors (Ps) that run goroutines at once
/// and returns the previous setting; `n == 0` only queries. Go's
/// `runtime.GOMAXPROCS`. The default is the CPU count (or the `GOMAXPROCS`
/// environment variable); values above 1024 are capped.
///
/// Resizing stops the world briefly. Started goroutines never move: a
/// goroutine whose P was removed keeps its thread, which borrows one of the
/// remaining Ps to run it.
///
/// ```
/// let prev = gort::gomaxprocs(0);
/// assert!(prev >= 1);
/// gort::gomaxprocs(prev); // unchanged
/// ```
pub fn gomaxprocs(n: usize) -> usize {
    proc::ensure_started();
    let prev = proc::gomaxprocs() as usize;
    if n == 0 || n == prev {
        return prev;
    }
    let n = n.min(proc::MAX_PROCS) as u32;
    let stw = proc::stop_the_world("GOMAXPROCS");
    let prev = proc::gomaxprocs() as usize;
    proc::start_the_world(stw, Some(n));
    prev
}

/// Go's `runtime.NumCgoCall`: the number of calls made through
/// [`syscall`](crate::syscall).
///
/// ```
/// let before = gort::num_cgo_call();
/// gort::syscall(|| ());
/// assert!(gort::num_cgo_call() > before);
/// ```
pub fn num_cgo_call() -> u64 {
    SCHED.ncgocall.load(Ordering::Relaxed)
}

/// gort's version, in Go's style: `"gort0.1.0"` (Go returns `"go1.27.3"`).
///
/// ```
/// assert!(gort::version().starts_with("gort"));
/// ```
pub fn version() -> &'static str {
    concat!("gort", env!("CARGO_PKG_VERSION"))
}

/// The operating system, spelled as Go's `runtime.GOOS`.
///
/// ```
/// if cfg!(target_os = "linux") {
///     assert_eq!(gort::GOOS, "linux");
/// }
/// ```
pub const GOOS: &str = if cfg!(target_os = "linux") {
    "linux"
} else if cfg!(target_os = "macos") {
    "darwin"
} else if cfg!(target_os = "windows") {
    "windows"
} else if cfg!(target_os = "freebsd") {
    "freebsd"
} else {
    std::env::consts::OS
};

/// The architecture, spelled as Go's `runtime.GOARCH` (`amd64`, `arm64`, …).
///
/// ```
/// if cfg!(target_arch = "x86_64") {
///     assert_eq!(gort::GOARCH, "amd64");
/// }
/// ```
pub const GOARCH: &str = if cfg!(target_arch = "x86_64") {
    "amd64"
} else if cfg!(target_arch = "aarch64") {
    "arm64"
} else if cfg!(target_arch = "x86") {
    "386"
} else if cfg!(target_arch = "riscv64") {
    "riscv64"
} else {
    std::env::consts::ARCH
};

/// The running goroutine: its id and name.
#[derive(Clone, Debug)]
pub struct Goroutine {
    id: u64,
    name: Option<Arc<str>>,
}

impl Goroutine {
    /// Go's goroutine id.
    ///
    /// ```
    /// let h = gort::spawn(|| gort::current().unwrap().id());
    /// assert_eq!(h.id(), h.join().unwrap());
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }
    /// The name given with [`Builder::name`], if any.
    ///
    /// ```
    /// let h = gort::Builder::new().name("fetcher".into()).spawn(|| gort::current().unwrap()).unwrap();
    /// assert_eq!(h.join().unwrap().name(), Some("fetcher"));
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

/// The goroutine running this code, or `None` on a thread that is not a
/// goroutine.
///
/// ```
/// assert!(gort::current().is_none());
/// let id = gort::run(|| gort::current().unwrap().id());
/// assert!(id >= 1);
/// ```
pub fn current() -> Option<Goroutine> {
    proc::current().map(|(_, g)| Goroutine { id: g.id, name: g.name.clone() })
}

/// Wires the calling goroutine to its OS thread (Go's
/// `runtime.LockOSThread`). Calls nest: the goroutine is unlocked after as
/// many [`unlock_os_thread`] calls; unlocking more than locked does nothing.
///
/// gort's goroutines already stay on their thread once started, so what
/// locking adds is exclusivity: **mid-life**, a thread may already host
/// other goroutines that cannot move, so `lock_os_thread` cannot evict
/// them; it pins the thread, admits no *new* goroutines to it, and makes
/// [`syscall`](crate::syscall) run inline on it. If the goroutine exits
/// while still locked, the thread retires once its last homed goroutine has
/// exited (Go kills it at once). For Go's exact semantics from the start —
/// a thread of its own that no other goroutine ever uses and that exits
/// with the goroutine — use [`Builder::locked`]. On a thread that is not a
/// goroutine it does nothing.
///
/// ```
/// gort::run(|| {
///     gort::lock_os_thread();
///     let t = std::thread::current().id();
///     gort::gosched();
///     assert_eq!(std::thread::current().id(), t);
///     gort::unlock_os_thread();
/// });
/// ```
pub fn lock_os_thread() {
    let Some((m, g)) = proc::current() else { return };
    let n = g.locked_ext.get();
    if n == u32::MAX {
        panic!("LockOSThread nesting overflow");
    }
    g.locked_ext.set(n + 1);
    if n == 0 && !g.born_locked {
        m.pinned.set(m.pinned.get() + 1);
    }
}

/// Undoes one [`lock_os_thread`] (Go's `runtime.UnlockOSThread`); a no-op
/// when the goroutine is not locked.
///
/// ```
/// gort::unlock_os_thread(); // not locked: nothing happens
/// ```
pub fn unlock_os_thread() {
    let Some((m, g)) = proc::current() else { return };
    let n = g.locked_ext.get();
    if n == 0 {
        return;
    }
    g.locked_ext.set(n - 1);
    if n == 1 && !g.born_locked {
        m.pinned.set(m.pinned.get() - 1);
    }
}
