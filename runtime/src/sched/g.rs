//! G: one goroutine (Go's `g` in runtime2.go).

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::Arc;

use corosensei::{Coroutine, Yielder};

use super::m::M;
use crate::stack::Stack;

/// What a goroutine asks of its M when it suspends (Go's `mcall` targets).
/// The request runs on the M's own stack after the goroutine's stack is no
/// longer in use.
pub(crate) enum Req {
    /// `gosched_m`: put me back on the run queue.
    Gosched,
    /// `park_m`: I am waiting. Run `unlock` after the switch; if it returns
    /// false, the park is abandoned and I run again at once.
    Park(RawUnlock),
}

/// A pointer to the unlock callback of a park, living on the parked
/// goroutine's stack. Valid while the goroutine is suspended, and only used
/// by the M that suspended it, on the same thread.
pub(crate) struct RawUnlock(pub(crate) *mut (dyn FnMut() -> bool + 'static));

pub(crate) type Coro = Coroutine<(), Req, (), Stack>;
pub(crate) type GYielder = Yielder<(), Req>;

/// Goroutine states (Go's `_Gidle`… `_Gdead`); the names show in dumps.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Created, never run (its closure is still `Send` and may be stolen).
    Runnable = 1,
    Running = 2,
    Syscall = 3,
    Waiting = 4,
    Dead = 6,
}

/// Go's wait reasons (runtime2.go `waitReasonStrings`), the ones gort uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)]
pub(crate) enum WaitReason {
    None,
    ChanReceive,
    ChanSend,
    Select,
    SelectNoCases,
    Sleep,
    SyncMutexLock,
    SyncRWMutexRLock,
    SyncRWMutexLock,
    SyncWaitGroupWait,
    SyncCondWait,
    Semacquire,
    /// Waiting in `JoinHandle::join` (Go has no join; we report it like a
    /// WaitGroup wait, the closest Go idiom).
    Join,
    /// Parked while `gort::syscall` runs its function on a blocking thread.
    Syscall,
    StoppingTheWorld,
    Preempted,
}

impl WaitReason {
    /// Go's exact string for the reason (for goroutine dumps).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WaitReason::None => "",
            WaitReason::ChanReceive => "chan receive",
            WaitReason::ChanSend => "chan send",
            WaitReason::Select => "select",
            WaitReason::SelectNoCases => "select (no cases)",
            WaitReason::Sleep => "sleep",
            WaitReason::SyncMutexLock => "sync.Mutex.Lock",
            WaitReason::SyncRWMutexRLock => "sync.RWMutex.RLock",
            WaitReason::SyncRWMutexLock => "sync.RWMutex.Lock",
            WaitReason::SyncWaitGroupWait | WaitReason::Join => "sync.WaitGroup.Wait",
            WaitReason::SyncCondWait => "sync.Cond.Wait",
            WaitReason::Semacquire => "semacquire",
            WaitReason::Syscall => "syscall",
            WaitReason::StoppingTheWorld => "stopping the world",
            WaitReason::Preempted => "preempted",
        }
    }
}

/// A goroutine.
///
/// Ownership: a `G` is a leaked `Box` from `newproc` until `gdestroy`. While
/// runnable it is owned by the queue holding it; while running, by its M;
/// while waiting, by whatever will ready it (exactly one party). It is freed
/// only by its M after its coroutine returned, so a parked goroutine that is
/// never readied is leaked, never dropped: dropping a suspended coroutine
/// would unwind its stack on whatever thread dropped it.
///
/// Cache-line aligned and kept to three lines (192 bytes): a G's memory is
/// reused through the free lists, often by another thread than the one
/// that freed it, and `newproc` writes all of it.
#[repr(align(64))]
pub(crate) struct G {
    pub(crate) id: u64,
    /// Id of the goroutine that created this one (0: created by a plain thread).
    pub(crate) parent_id: u64,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) status: AtomicU32,
    pub(crate) wait_reason: Cell<WaitReason>,
    /// The M this goroutine is homed on once started; null before its first
    /// run and always for a migratable goroutine. Written by the home M
    /// before the first resume, read by `ready` from any thread (the
    /// goroutine was published to the waker after that write).
    pub(crate) home: AtomicPtr<M>,
    /// `Builder::migratable()`: Go's full migration (unsafe opt-in).
    pub(crate) migratable: bool,
    /// `Builder::locked()`: born locked on a fresh M of its own.
    pub(crate) born_locked: bool,
    /// Detached (`gort::go`): an unrecovered panic is fatal, as in Go.
    pub(crate) detached: bool,
    /// Runtime-owned (see `NewG::system`).
    pub(crate) system: bool,
    /// Requested stack size in bytes.
    pub(crate) stack_size: usize,
    /// `LockOSThread` nesting count (Go's `m.lockedExt`, kept per goroutine
    /// since several goroutines share one M). Touched only by the goroutine.
    pub(crate) locked_ext: Cell<u32>,
    /// The body, until the first run moves it into the coroutine.
    pub(crate) entry: UnsafeCell<Option<super::api::Entry>>,
    /// The coroutine, created on the first run by the home M.
    pub(crate) coro: UnsafeCell<Option<Coro>>,
    /// The coroutine's yielder, set when the body starts.
    pub(crate) yielder: Cell<*const GYielder>,
    /// Links in the home M's list of goroutines (Go's `allgs`, kept per M
    /// so starting and exiting take no lock). Home M's thread only.
    pub(crate) allg_prev: Cell<*mut G>,
    pub(crate) allg_next: Cell<*mut G>,
    /// Goroutine-local storage (`gort::local!`), dropped when the body ends.
    pub(crate) locals: UnsafeCell<Vec<Option<Box<dyn Any>>>>,
    /// Message and backtrace of a panic captured by the hook, for the fatal
    /// report of a detached goroutine (boxed: rare, and the G stays small).
    pub(crate) panic_report: UnsafeCell<Option<Box<(String, std::backtrace::Backtrace)>>>,
}

// SAFETY: a G is handed between threads only through the scheduler's queues
// (which synchronise), and its `Cell`/`UnsafeCell` fields are touched only by
// the thread currently running it or, before its first run, by the thread
// that owns it in a queue. The `!Send` contents (coroutine, locals) never
// leave the home M of a non-migratable goroutine; a migratable goroutine's
// author promised they may (unsafe `Builder::migratable`).
unsafe impl Send for G {}
// SAFETY: see `Send`; shared access from other threads is limited to the
// atomics (`status`, `home`) and the immutable fields.
unsafe impl Sync for G {}

impl G {
    pub(crate) fn status(&self) -> Status {
        match self.status.load(Ordering::Acquire) {
            1 => Status::Runnable,
            2 => Status::Running,
            3 => Status::Syscall,
            4 => Status::Waiting,
            _ => Status::Dead,
        }
    }

    pub(crate) fn set_status(&self, s: Status) {
        self.status.store(s as u32, Ordering::Release);
    }

    /// Go's status word in a goroutine header: the wait reason when waiting.
    pub(crate) fn status_str(&self) -> &'static str {
        match self.status() {
            Status::Runnable => "runnable",
            Status::Running => "running",
            Status::Syscall => "syscall",
            Status::Waiting => self.wait_reason.get().as_str(),
            Status::Dead => "dead",
        }
    }

    /// Go's goroutine header, `goroutine N [status]:`, with the name on a
    /// line of its own (Go goroutines have none).
    pub(crate) fn header(&self) -> String {
        let mut s = format!("goroutine {} [{}", self.id, self.status_str());
        if self.born_locked || self.locked_ext.get() > 0 {
            s.push_str(", locked to thread");
        }
        s.push_str("]:\n");
        if let Some(n) = &self.name {
            s.push_str(&format!("goroutine name: {n:?}\n"));
        }
        s
    }

    /// Whether the goroutine has started running (and is homed if not migratable).
    pub(crate) fn started(&self) -> bool {
        // SAFETY: `coro` is only written by the M that runs the goroutine,
        // which is the caller whenever it matters (callers hold the G).
        unsafe { (*self.coro.get()).is_some() }
    }
}

const _: () = assert!(std::mem::size_of::<G>() <= 192, "G grew past three cache lines");
