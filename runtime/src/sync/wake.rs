//! Parking and waking for the channel and semaphore protocols: the one
//! place that knows whether the blocked party is a goroutine, an OS thread
//! or (under loom) a model thread.
//!
//! The protocols never rely on the wake itself to carry data. A blocked
//! party publishes a `woken: AtomicBool` next to its waiter record; the
//! waker writes the hand-off (value, result), takes the [`Waker`] out of the
//! record, stores `woken = true` (release) and only then calls
//! [`Waker::wake`]. After the store it never touches the record again: the
//! owner may return and free it (it lives on the owner's stack) as soon as
//! it sees the flag. [`park`] returns only once the flag is set, so
//! spurious thread wake-ups are absorbed here.

use crate::loom::sync::atomic::{AtomicBool, Ordering};

/// Why a goroutine blocks (a subset of the scheduler's `WaitReason`, kept
/// here so the protocol code also builds under loom, where the scheduler's
/// goroutine types do not exist).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// `chan receive`
    ChanReceive,
    /// `chan send`
    ChanSend,
    /// `select`
    Select,
    /// `select (no cases)`
    SelectNoCases,
    /// `sync.Mutex.Lock`
    SyncMutexLock,
    /// `sync.RWMutex.RLock`
    SyncRWMutexRLock,
    /// `sync.RWMutex.Lock`
    SyncRWMutexLock,
    /// `sync.WaitGroup.Wait`
    SyncWaitGroupWait,
    /// `sync.Cond.Wait`
    SyncCondWait,
    /// `semacquire`
    Semacquire,
}

#[cfg(not(loom))]
impl Reason {
    fn wait_reason(self) -> crate::sched::g::WaitReason {
        use crate::sched::g::WaitReason as W;
        match self {
            Reason::ChanReceive => W::ChanReceive,
            Reason::ChanSend => W::ChanSend,
            Reason::Select => W::Select,
            Reason::SelectNoCases => W::SelectNoCases,
            Reason::SyncMutexLock => W::SyncMutexLock,
            Reason::SyncRWMutexRLock => W::SyncRWMutexRLock,
            Reason::SyncRWMutexLock => W::SyncRWMutexLock,
            Reason::SyncWaitGroupWait => W::SyncWaitGroupWait,
            Reason::SyncCondWait => W::SyncCondWait,
            Reason::Semacquire => W::Semacquire,
        }
    }
}

/// Wakes one blocked goroutine or thread, once (consumed by [`wake`](Waker::wake)).
#[derive(Debug)]
pub struct Waker {
    #[cfg(not(loom))]
    w: WaiterDebug,
    #[cfg(loom)]
    p: loom::sync::Arc<LoomParker>,
}

/// Under loom a thread sleeps on its own mutex and condition variable
/// rather than `thread::park`: a stale `unpark` meant for an earlier wait
/// would otherwise wake the thread out of an unrelated loom `Condvar`
/// wait (which loom does not tolerate), and the owner's `woken` flag is
/// the condition either way.
#[cfg(loom)]
#[derive(Debug, Default)]
pub struct LoomParker {
    m: loom::sync::Mutex<()>,
    cv: loom::sync::Condvar,
}

#[cfg(loom)]
loom::thread_local! {
    static PARKER: loom::sync::Arc<LoomParker> = loom::sync::Arc::new(LoomParker::default());
}

#[cfg(not(loom))]
struct WaiterDebug(crate::sched::park::Waiter);

#[cfg(not(loom))]
impl std::fmt::Debug for WaiterDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            crate::sched::park::Waiter::G(g) => write!(f, "G({g:p})"),
            crate::sched::park::Waiter::Thread(t) => write!(f, "Thread({:?})", t.id()),
        }
    }
}

impl Waker {
    /// A waker for the calling goroutine (or thread, when not on a goroutine).
    pub fn current() -> Waker {
        #[cfg(not(loom))]
        {
            Waker { w: WaiterDebug(crate::sched::park::Waiter::current()) }
        }
        #[cfg(loom)]
        {
            Waker { p: PARKER.with(|p| p.clone()) }
        }
    }

    /// Readies the goroutine (Go's `goready`) or unparks the thread. The
    /// caller has already set the owner's `woken` flag.
    pub fn wake(self) {
        #[cfg(not(loom))]
        self.w.0.wake();
        #[cfg(loom)]
        {
            let _g = self.p.m.lock().unwrap();
            self.p.cv.notify_all();
        }
    }
}

/// Blocks the caller until `woken` is set. `unlock` releases the locks the
/// caller holds while registering itself; it runs exactly once, when a
/// wake-up can no longer be missed: for a goroutine on its M after the
/// switch (Go's `gopark` unlock function), for a thread before it sleeps
/// (the `woken` flag and thread-park token keep the wake-up).
pub fn park(reason: Reason, unlock: &mut dyn FnMut(), woken: &AtomicBool) {
    #[cfg(not(loom))]
    {
        match crate::sched::proc::current() {
            Some((_, g)) => {
                let mut unlock = Some(unlock);
                while !woken.load(Ordering::Acquire) {
                    crate::sched::proc::gopark(g, reason.wait_reason(), &mut || {
                        if let Some(u) = unlock.take() {
                            u();
                        }
                        true
                    });
                }
            }
            None => {
                unlock();
                while !woken.load(Ordering::Acquire) {
                    std::thread::park();
                }
            }
        }
    }
    #[cfg(loom)]
    {
        let _ = reason;
        unlock();
        let p = PARKER.with(|p| p.clone());
        let mut g = p.m.lock().unwrap();
        while !woken.load(Ordering::Acquire) {
            g = p.cv.wait(g).unwrap();
        }
    }
}

/// Blocks the caller forever (Go's `block()` for `select {}`).
#[cfg(not(loom))]
pub fn park_forever(reason: Reason) -> ! {
    loop {
        match crate::sched::proc::current() {
            Some((_, g)) => crate::sched::proc::gopark(g, reason.wait_reason(), &mut || true),
            None => std::thread::park(),
        }
    }
}

/// Gives up the processor after a direct hand-off (Go's `goyield` in
/// `semrelease1`), so the readied waiter can run on this thread.
#[cfg(not(loom))]
pub fn yield_now() {
    if let Some((_, g)) = crate::sched::proc::current() {
        crate::sched::proc::gosched_g(g);
    }
}
