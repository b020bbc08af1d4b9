//! Per-P timer heaps (Go ≥ 1.14's `p.timers`), and the idle M that sleeps
//! until the earliest timer.
//!
//! Each P owns a min-heap of `(when, seq, timer)` under its own lock, with
//! the earliest `when` mirrored in an atomic (`timer0`) so the scheduler
//! can skip a P with nothing due in one load. A timer is added to the
//! caller's P (P 0 from a thread without one). Timers are run by whoever
//! finds them due: the P's owner in `findRunnable`, a thief in its last
//! stealing pass (even from an idle or stuck P, so a thread blocked outside
//! the runtime delays nobody else's timers), or the idle M that sleeps until
//! the earliest timer.
//!
//! Stopping or resetting a timer bumps its generation; heap entries of an
//! older generation are skipped when popped (lazy deletion).
//!
//! The sleeper: an M about to sleep without a P computes the earliest timer
//! over all Ps under `SLEEPER`'s lock and, if it is earlier than the
//! current sleeper's, sleeps on its note with that timeout. Adding a timer
//! earlier than the sleeper's deadline wakes the sleeper (or starts a
//! spinning M if there is none), also under that lock, so no timer is added
//! unseen while every M sleeps.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::sched::m::M;
use crate::sched::p::P;
use crate::sched::proc::{self, nanotime};

/// What a timer does when it fires. Runs on whatever thread found it due,
/// outside any lock; must not block.
pub(crate) enum Action {
    /// Ready a goroutine parked in `sleep`.
    Ready(std::ptr::NonNull<crate::sched::g::G>),
    /// Call a function (start a goroutine, send without blocking) with the
    /// generation that fired; it re-checks it under its own lock if a
    /// concurrent stop must win.
    Func(Box<dyn Fn(u64) + Send + Sync>),
}

/// A timer's shared state: its generation and action.
pub(crate) struct TimerShared {
    pub(crate) gen: AtomicU64,
    /// Armed and not yet fired or stopped (one-shot timers; Go's `Stop` and
    /// `Reset` results). Firing and stopping each swap it to false, so
    /// exactly one of them wins.
    pub(crate) active: std::sync::atomic::AtomicBool,
    /// Period in ns for a ticker (0: one-shot).
    pub(crate) period: AtomicU64,
    pub(crate) action: Action,
}

// SAFETY: the G pointer in `Action::Ready` is only used to ready the
// goroutine (once), which any thread may do.
unsafe impl Send for TimerShared {}
// SAFETY: as above; everything else is atomic or `Sync`.
unsafe impl Sync for TimerShared {}

struct Entry {
    when: u64,
    seq: u64,
    gen: u64,
    timer: Arc<TimerShared>,
}

impl TimerShared {
    /// An armed timer's state (generation 0, active).
    pub(crate) fn value(period: u64, action: Action) -> TimerShared {
        TimerShared {
            gen: AtomicU64::new(0),
            active: std::sync::atomic::AtomicBool::new(true),
            period: AtomicU64::new(period),
            action,
        }
    }

    pub(crate) fn new(period: u64, action: Action) -> Arc<TimerShared> {
        Arc::new(TimerShared::value(period, action))
    }
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.when, self.seq) == (o.when, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.when, self.seq).cmp(&(o.when, o.seq))
    }
}

/// One P's timers.
pub(crate) struct Timers {
    heap: Mutex<BinaryHeap<Reverse<Entry>>>,
    /// Earliest `when` in the heap, `u64::MAX` if empty.
    timer0: AtomicU64,
    /// Some thread is running this heap's due timers.
    running: std::sync::atomic::AtomicBool,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            heap: Mutex::new(BinaryHeap::new()),
            timer0: AtomicU64::new(u64::MAX),
            running: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BinaryHeap<Reverse<Entry>>> {
        self.heap.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The earliest deadline (`u64::MAX`: none).
    pub(crate) fn next(&self) -> u64 {
        self.timer0.load(Ordering::SeqCst)
    }

    fn push(&self, when: u64, gen: u64, timer: Arc<TimerShared>) {
        let mut h = self.lock();
        h.push(Reverse(Entry { when, seq: SEQ.fetch_add(1, Ordering::Relaxed), gen, timer }));
        self.timer0.store(h.peek().map_or(u64::MAX, |e| e.0.when), Ordering::SeqCst);
    }

    /// Runs every timer due at `now`. Returns how many fired. One thread
    /// at a time runs a heap (others skip it), so its timers fire in
    /// deadline order; actions run outside the heap lock because they take
    /// channel and scheduler locks, and a channel arms its timers while
    /// holding its own lock.
    pub(crate) fn run(&self, now: u64) -> usize {
        if self.next() > now || self.running.swap(true, Ordering::Acquire) {
            return 0;
        }
        let fired = self.run_locked(now);
        self.running.store(false, Ordering::Release);
        fired
    }

    fn run_locked(&self, now: u64) -> usize {
        let mut due = Vec::new();
        let _busy = crate::sched::checkdead::Busy::new();
        {
            let mut h = self.lock();
            while h.peek().is_some_and(|e| e.0.when <= now) {
                let Reverse(e) = h.pop().unwrap();
                if e.timer.gen.load(Ordering::Acquire) != e.gen {
                    continue; // stopped or reset since
                }
                let period = e.timer.period.load(Ordering::Relaxed);
                if period > 0 {
                    let when = e.when.saturating_add(period).max(now + 1);
                    h.push(Reverse(Entry {
                        when,
                        seq: SEQ.fetch_add(1, Ordering::Relaxed),
                        gen: e.gen,
                        timer: e.timer.clone(),
                    }));
                }
                due.push((e.timer, e.gen));
            }
            self.timer0.store(h.peek().map_or(u64::MAX, |e| e.0.when), Ordering::SeqCst);
        }
        for (t, gen) in &due {
            match &t.action {
                Action::Ready(g) => proc::ready(*g),
                Action::Func(f) => f(*gen),
            }
        }
        due.len()
    }

    /// Moves every entry to `dst` (a P destroyed by `procresize`).
    pub(crate) fn move_to(&self, dst: &Timers) {
        let entries: Vec<_> = std::mem::take(&mut *self.lock()).into_vec();
        self.timer0.store(u64::MAX, Ordering::Release);
        for Reverse(e) in entries {
            dst.push(e.when, e.gen, e.timer);
        }
    }
}

/// Adds `timer` (at its current generation) to fire at `when` (nanotime),
/// on the caller's P, and makes sure some M will notice it.
pub(crate) fn add(timer: &Arc<TimerShared>, when: u64) {
    proc::ensure_started();
    // The caller's P — also from the M's stack, where parks arm their timers.
    let p: &P = match proc::getm().and_then(|m| m.p()) {
        Some(p) => p,
        None => proc::allp(0),
    };
    p.timers.push(when, timer.gen.load(Ordering::Acquire), timer.clone());
    let s = lock_sleeper();
    if when < s.when {
        match s.m {
            // SAFETY: Ms are never freed.
            Some(m) => unsafe { &*m }.note.wakeup(),
            None => {
                drop(s);
                proc::wakep();
            }
        }
    }
}

struct Sleeper {
    when: u64,
    m: Option<*const M>,
}
// SAFETY: the M pointer is only used to wake its note; Ms are never freed.
unsafe impl Send for Sleeper {}

static SLEEPER: Mutex<Sleeper> = Mutex::new(Sleeper { when: u64::MAX, m: None });

fn lock_sleeper() -> std::sync::MutexGuard<'static, Sleeper> {
    SLEEPER.lock().unwrap_or_else(|e| e.into_inner())
}

/// The earliest timer over every P (`u64::MAX`: none).
pub(crate) fn earliest() -> u64 {
    (0..proc::gomaxprocs()).map(|i| proc::allp(i).timers.next()).min().unwrap_or(u64::MAX)
}

/// Runs the timers due now on every P. Returns how many fired.
pub(crate) fn run_all_due() -> usize {
    if earliest() == u64::MAX {
        return 0;
    }
    let now = nanotime();
    (0..proc::gomaxprocs()).map(|i| proc::allp(i).timers.run(now)).sum()
}

/// Sleeps `m` (which holds no P) on its note: until woken, or until the
/// earliest timer if it becomes the timer sleeper, in which case it runs
/// the due timers after the timeout.
pub(crate) fn sleep_m(m: &'static M) {
    let deadline = {
        let mut s = lock_sleeper();
        let next = earliest();
        if next < s.when || s.m.is_none() && next != u64::MAX {
            s.when = next;
            s.m = Some(m);
            Some(next)
        } else {
            None
        }
    };
    let Some(deadline) = deadline else {
        m.note.sleep();
        return;
    };
    let now = nanotime();
    let woken = deadline <= now || m.note.sleep_timeout(std::time::Duration::from_nanos(deadline - now));
    {
        let mut s = lock_sleeper();
        if s.m == Some(m as *const M) {
            s.m = None;
            s.when = u64::MAX;
        }
    }
    if !woken || deadline <= now {
        run_all_due();
    }
}
