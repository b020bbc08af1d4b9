//! Time (Go's time.go and package time): `sleep`, `after`, `after_func`,
//! `Timer` and `Ticker`.
//!
//! Timers live in per-P heaps (`heap.rs`); a sleeping goroutine costs no
//! thread, and an idle M sleeps until the earliest timer.
//!
//! Channel timers follow Go 1.23: once `stop` or `reset` returns, no value
//! from before the call can be received. The firing timer sends under a
//! per-timer lock after re-checking its generation, and `stop`/`reset`
//! bump the generation and drain the channel under the same lock.

pub(crate) mod heap;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use heap::{Action, TimerShared};

use crate::chan::Chan;
use crate::sched::g::WaitReason;
use crate::sched::proc::{self, nanotime};

fn when_after(d: Duration) -> u64 {
    nanotime().saturating_add(d.as_nanos().min(u64::MAX as u128) as u64)
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
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
    let timer = TimerShared::new(0, Action::Ready(std::ptr::NonNull::from(g)));
    // The timer is armed only after the goroutine switched out (Go's
    // resetForSleep), so it cannot ready a goroutine that is still running.
    proc::gopark(g, WaitReason::Sleep, &mut || {
        heap::add(&timer, when);
        true
    });
}

/// The state a channel timer shares with its firing action.
struct Shared {
    ch: Chan<Instant>,
    /// Held while sending a tick and while stopping (Go 1.23's guarantee).
    send: Mutex<()>,
}

impl Shared {
    /// Stops `timer` (bumps its generation) and drains the channel, under
    /// the send lock so no tick from before the call survives it. Returns
    /// whether the timer was active.
    fn stop(&self, timer: &TimerShared) -> bool {
        let _g = self.send.lock().unwrap_or_else(|e| e.into_inner());
        timer.gen.fetch_add(1, Ordering::AcqRel);
        while self.ch.try_recv().is_ok() {}
        timer.active.swap(false, Ordering::AcqRel)
    }
}

/// Builds a timer with a fresh channel of capacity 1. When it fires,
/// `fire` runs under the send lock, and only if no `stop`/`reset` came
/// since (the generation that fired is still current). A one-shot timer
/// fires only while active; a periodic one every period.
fn new_timer(period: u64, fire: impl Fn(&Shared) + Send + Sync + 'static) -> (Arc<TimerShared>, Arc<Shared>) {
    let shared = Arc::new(Shared { ch: Chan::new(1), send: Mutex::new(()) });
    let s = shared.clone();
    let timer = Arc::new_cyclic(|weak: &std::sync::Weak<TimerShared>| {
        let weak = weak.clone();
        TimerShared::value(
            period,
            Action::Func(Box::new(move |gen| {
                let Some(t) = weak.upgrade() else { return };
                let _g = s.send.lock().unwrap_or_else(|e| e.into_inner());
                let current = t.gen.load(Ordering::Acquire) == gen;
                if current && (t.period.load(Ordering::Relaxed) > 0 || t.active.swap(false, Ordering::AcqRel)) {
                    fire(&s);
                }
            })),
        )
    });
    (timer, shared)
}

/// A timer that sends the time on its channel (dropping a tick the reader
/// has not taken yet, as Go's tickers do).
fn channel_timer(period: u64) -> (Arc<TimerShared>, Arc<Shared>) {
    new_timer(period, |s| {
        let _ = s.ch.try_send(Instant::now());
    })
}

/// A single event: Go's `*time.Timer`. Made by [`Timer::new`] (the time is
/// sent on [`Timer::channel`]) or by [`after_func`] (a function runs in its
/// own goroutine; the channel never receives).
pub struct Timer {
    timer: Arc<TimerShared>,
    shared: Arc<Shared>,
}

impl Timer {
    /// A timer that sends the current time on its channel after `d` (Go's
    /// `time.NewTimer`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gort::time::Timer::new(Duration::from_millis(1));
    /// assert!(t.channel().recv().is_some());
    /// ```
    pub fn new(d: Duration) -> Timer {
        let (timer, shared) = channel_timer(0);
        heap::add(&timer, when_after(d));
        Timer { timer, shared }
    }

    /// The channel the time is sent on (Go's `Timer.C`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gort::time::Timer::new(Duration::from_millis(1));
    /// gort::select! {
    ///     recv(t.channel()) -> at => assert!(at.is_some()),
    /// }
    /// ```
    pub fn channel(&self) -> &Chan<Instant> {
        &self.shared.ch
    }

    /// Prevents the timer from firing. Returns true if the call stopped it,
    /// false if it had already fired or been stopped (Go's `Timer.Stop`).
    /// After it returns, no stale value can be received from the channel.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gort::time::after_func(Duration::from_secs(3600), || unreachable!());
    /// assert!(t.stop());
    /// assert!(!t.stop());
    /// ```
    pub fn stop(&self) -> bool {
        self.shared.stop(&self.timer)
    }

    /// Changes the timer to fire after `d`. Returns true if it had been
    /// active (Go's `Timer.Reset`); no stale value can be received after it.
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
        self.timer.active.store(true, Ordering::Release);
        heap::add(&self.timer, when_after(d));
        was_active
    }
}

/// Waits for `d`, then sends the current time on the returned channel
/// (Go's `time.After`).
///
/// ```
/// use std::time::Duration;
/// gort::run(|| {
///     let work: gort::chan::Chan<u32> = gort::chan::Chan::new(0);
///     gort::select! {
///         recv(work) -> v => unreachable!("{v:?}"),
///         recv(gort::time::after(Duration::from_millis(5))) -> _ => println!("gave up"),
///     }
/// });
/// ```
pub fn after(d: Duration) -> Chan<Instant> {
    Timer::new(d).shared.ch.clone()
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
    let (timer, shared) = new_timer(0, move |_| {
        let f = f.clone();
        crate::go(move || f());
    });
    heap::add(&timer, when_after(d));
    Timer { timer, shared }
}

/// Sends the time on its channel every period (Go's `*time.Ticker`). A
/// reader that falls behind misses ticks rather than receiving a backlog.
pub struct Ticker {
    timer: Arc<TimerShared>,
    shared: Arc<Shared>,
}

impl Ticker {
    /// A ticker with period `d` (Go's `time.NewTicker`).
    ///
    /// # Panics
    /// If `d` is zero, with Go's message `non-positive interval for NewTicker`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gort::time::Ticker::new(Duration::from_millis(1));
    /// for _ in 0..3 {
    ///     t.channel().recv().unwrap();
    /// }
    /// t.stop();
    /// ```
    pub fn new(d: Duration) -> Ticker {
        if d.is_zero() {
            panic!("non-positive interval for NewTicker");
        }
        let (timer, shared) = channel_timer(nanos(d));
        heap::add(&timer, when_after(d));
        Ticker { timer, shared }
    }

    /// The channel the ticks are sent on (Go's `Ticker.C`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gort::time::Ticker::new(Duration::from_millis(1));
    /// assert!(t.channel().recv().is_some());
    /// ```
    pub fn channel(&self) -> &Chan<Instant> {
        &self.shared.ch
    }

    /// Turns the ticker off; no tick from before the call can be received
    /// after it (Go's `Ticker.Stop`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gort::time::Ticker::new(Duration::from_millis(1));
    /// t.stop();
    /// assert!(t.channel().recv_timeout(Duration::from_millis(20)).is_err());
    /// ```
    pub fn stop(&self) {
        self.shared.stop(&self.timer);
    }

    /// Stops the ticker and restarts it with period `d` (Go's `Ticker.Reset`).
    ///
    /// # Panics
    /// If `d` is zero, with Go's message `non-positive interval for Ticker.Reset`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gort::time::Ticker::new(Duration::from_secs(3600));
    /// t.reset(Duration::from_millis(1));
    /// assert!(t.channel().recv().is_some());
    /// ```
    pub fn reset(&self, d: Duration) {
        if d.is_zero() {
            panic!("non-positive interval for Ticker.Reset");
        }
        self.stop();
        self.timer.period.store(nanos(d), Ordering::Relaxed);
        heap::add(&self.timer, when_after(d));
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        // Unlike Go, nothing else can stop a dropped ticker; stop it so it
        // does not keep firing into a channel nobody reads.
        self.timer.gen.fetch_add(1, Ordering::AcqRel);
    }
}
