//! Time (Go's time.go and package time): `sleep`, `after_func`, `Timer`.
//!
//! Timers live in per-P heaps (`heap.rs`); a sleeping goroutine costs no
//! thread, and an idle M sleeps until the earliest timer.

pub(crate) mod heap;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use heap::{Action, TimerShared};

use crate::sched::g::WaitReason;
use crate::sched::proc::{self, nanotime};

fn when_after(d: Duration) -> u64 {
    nanotime().saturating_add(d.as_nanos().min(u64::MAX as u128) as u64)
}

/// Pauses the calling goroutine for at least `d` (Go's `time.Sleep`). The
/// goroutine parks and its thread runs others meanwhile; a sleeping
/// goroutine costs no thread. On a thread that is not a goroutine it is
/// `std::thread::sleep`.
///
/// ```
/// use std::time::{Duration, Instant};
/// gort::run(|| {
///     let t = Instant::now();
///     gort::time::sleep(Duration::from_millis(5));
///     assert!(t.elapsed() >= Duration::from_millis(5));
/// });
/// ```
pub fn sleep(d: Duration) {
    if d.is_zero() {
        return;
    }
    let Some((_, g)) = proc::current() else {
        std::thread::sleep(d);
        return;
    };
    let when = when_after(d);
    let timer = Arc::new(TimerShared {
        gen: AtomicU64::new(0),
        active: AtomicBool::new(true),
        period: AtomicU64::new(0),
        action: Action::Ready(std::ptr::NonNull::from(g)),
    });
    // The timer is armed only after the goroutine switched out (Go's
    // resetForSleep), so it cannot ready a goroutine that is still running.
    proc::gopark(g, WaitReason::Sleep, &mut || {
        heap::add(&timer, when);
        true
    });
}

/// A timer created by [`after_func`]: Go's `*time.Timer` without a channel.
pub struct Timer {
    shared: Arc<TimerShared>,
}

/// Waits for `d` to elapse and then calls `f` in its own goroutine (Go's
/// `time.AfterFunc`). The returned [`Timer`] can stop or reset it.
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// let (tx, rx) = mpsc::channel();
/// let _t = gort::time::after_func(Duration::from_millis(1), move || tx.send("fired").unwrap());
/// assert_eq!(rx.recv().unwrap(), "fired");
/// ```
pub fn after_func<F>(d: Duration, f: F) -> Timer
where
    F: Fn() + Send + Sync + 'static,
{
    let f = Arc::new(f);
    let shared = Arc::new_cyclic(|weak: &std::sync::Weak<TimerShared>| {
        let weak = weak.clone();
        TimerShared {
            gen: AtomicU64::new(0),
            active: AtomicBool::new(true),
            period: AtomicU64::new(0),
            action: Action::Func(Box::new(move || {
                if weak.upgrade().is_some_and(|t| t.active.swap(false, Ordering::AcqRel)) {
                    let f = f.clone();
                    crate::go(move || f());
                }
            })),
        }
    });
    heap::add(&shared, when_after(d));
    Timer { shared }
}

impl Timer {
    /// Prevents the timer from firing. Returns true if the call stopped it,
    /// false if it had already fired or been stopped (Go's `Timer.Stop`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gort::time::after_func(Duration::from_secs(3600), || unreachable!());
    /// assert!(t.stop());
    /// assert!(!t.stop());
    /// ```
    pub fn stop(&self) -> bool {
        self.shared.gen.fetch_add(1, Ordering::AcqRel);
        self.shared.active.swap(false, Ordering::AcqRel)
    }

    /// Changes the timer to fire after `d`. Returns true if it had been
    /// active (Go's `Timer.Reset`).
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// let (tx, rx) = mpsc::channel();
    /// let t = gort::time::after_func(Duration::from_secs(3600), move || tx.send(()).unwrap());
    /// assert!(t.reset(Duration::from_millis(1)));
    /// rx.recv().unwrap();
    /// ```
    pub fn reset(&self, d: Duration) -> bool {
        let was_active = self.stop();
        self.shared.active.store(true, Ordering::Release);
        heap::add(&self.shared, when_after(d));
        was_active
    }
}
