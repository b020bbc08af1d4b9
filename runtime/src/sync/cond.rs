//! `Cond` (Go's sync.Cond on the runtime's `notifyList`, sema.go).
//!
//! A notify list hands out tickets: `wait` takes the next ticket (`wait`
//! counter) *before* unlocking the user's mutex, then sleeps until the
//! `notify` counter passes it. `signal` advances `notify` by one and wakes
//! the waiter holding that ticket (if it has queued yet; if not, it sees
//! the advanced counter and does not sleep); `broadcast` advances it to
//! `wait` and wakes everyone queued. So a signal can never be lost in the
//! window between unlocking the mutex and sleeping.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::lock::RawLock;
use super::mutex::{Mutex, MutexGuard};
use super::wake::{self, Reason, Waker};

struct Waiter {
    ticket: u32,
    next: Cell<*const Waiter>,
    woken: AtomicBool,
    waker: Cell<Option<Waker>>,
}

/// A condition variable for goroutines (Go's `sync.Cond`), used with a
/// [`Mutex`] guard.
///
/// As with any condition variable, wait in a loop that re-checks the
/// condition. Waiting parks the goroutine.
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::{Cond, Mutex};
///
/// let pair = Arc::new((Mutex::new(false), Cond::new()));
/// let p = pair.clone();
/// gort::go(move || {
///     *p.0.lock() = true;
///     p.1.signal();
/// });
/// let (m, c) = &*pair;
/// let mut ready = m.lock();
/// while !*ready {
///     ready = c.wait(ready);
/// }
/// ```
pub struct Cond {
    /// Ticket of the next waiter (Go's `notifyList.wait`).
    wait: AtomicU32,
    /// Ticket of the next waiter to notify; under `lock`, read without it.
    notify: AtomicU32,
    lock: RawLock,
    /// FIFO of sleeping waiters; under `lock`.
    head: Cell<*const Waiter>,
    tail: Cell<*const Waiter>,
}

// SAFETY: `head`/`tail` and the waiters they link are touched only under
// `lock`; the counters are atomic.
unsafe impl Send for Cond {}
// SAFETY: as above.
unsafe impl Sync for Cond {}

/// Go's `less`: ticket order with wrap-around.
fn less(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl Cond {
    /// A condition variable with no waiters.
    ///
    /// ```
    /// let c = gort::sync::Cond::new();
    /// c.signal(); // nobody waits: no effect
    /// ```
    pub const fn new() -> Cond {
        Cond {
            wait: AtomicU32::new(0),
            notify: AtomicU32::new(0),
            lock: RawLock::new(),
            head: Cell::new(ptr::null()),
            tail: Cell::new(ptr::null()),
        }
    }

    /// Go's `Wait`: atomically unlocks the guard's mutex and parks until
    /// signalled, then relocks it and returns the new guard.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gort::sync::{Cond, Mutex};
    /// let s = Arc::new((Mutex::new(0), Cond::new()));
    /// let s2 = s.clone();
    /// gort::go(move || {
    ///     *s2.0.lock() = 1;
    ///     s2.1.broadcast();
    /// });
    /// let mut g = s.0.lock();
    /// while *g == 0 {
    ///     g = s.1.wait(g);
    /// }
    /// assert_eq!(*g, 1);
    /// ```
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let m: &'a Mutex<T> = guard.mutex();
        let t = self.wait.fetch_add(1, Ordering::SeqCst);
        drop(guard);
        self.notify_list_wait(t);
        m.lock()
    }

    /// Like [`wait`](Cond::wait) in a loop: waits while `condition` holds.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gort::sync::{Cond, Mutex};
    /// let s = Arc::new((Mutex::new(0), Cond::new()));
    /// let s2 = s.clone();
    /// gort::go(move || {
    ///     *s2.0.lock() = 3;
    ///     s2.1.signal();
    /// });
    /// let g = s.1.wait_while(s.0.lock(), |v| *v == 0);
    /// assert_eq!(*g, 3);
    /// ```
    pub fn wait_while<'a, T: ?Sized, F: FnMut(&mut T) -> bool>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> MutexGuard<'a, T> {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// Go's `notifyListWait`.
    fn notify_list_wait(&self, t: u32) {
        self.lock.lock();
        // Return right away if this ticket has already been notified.
        if less(t, self.notify.load(Ordering::SeqCst)) {
            self.lock.unlock();
            return;
        }
        let w = Waiter {
            ticket: t,
            next: Cell::new(ptr::null()),
            woken: AtomicBool::new(false),
            waker: Cell::new(Some(Waker::current())),
        };
        let wp: *const Waiter = &w;
        let tail = self.tail.get();
        if tail.is_null() {
            self.head.set(wp);
        } else {
            // SAFETY: queued waiters are live; we hold the lock.
            unsafe { (*tail).next.set(wp) };
        }
        self.tail.set(wp);
        wake::park(Reason::SyncCondWait, &mut || self.lock.unlock(), &w.woken);
    }

    /// Wakes one waiter, if any (Go's `Signal`). Holding the mutex is
    /// allowed but not required.
    ///
    /// ```
    /// gort::sync::Cond::new().signal();
    /// ```
    pub fn signal(&self) {
        // Fast path: no new waiters since the last notification.
        if self.wait.load(Ordering::SeqCst) == self.notify.load(Ordering::SeqCst) {
            return;
        }
        self.lock.lock();
        let t = self.notify.load(Ordering::SeqCst);
        if t == self.wait.load(Ordering::SeqCst) {
            self.lock.unlock();
            return;
        }
        self.notify.store(t.wrapping_add(1), Ordering::SeqCst);
        // Find the waiter with ticket t. If it has not queued yet it will
        // see the new notify value and not sleep.
        let mut p: *const Waiter = ptr::null();
        let mut s = self.head.get();
        // SAFETY: queued waiters are live until woken; we hold the lock.
        while let Some(sr) = unsafe { s.as_ref() } {
            if sr.ticket == t {
                let n = sr.next.get();
                // SAFETY: as above.
                match unsafe { p.as_ref() } {
                    Some(pr) => pr.next.set(n),
                    None => self.head.set(n),
                }
                if n.is_null() {
                    self.tail.set(p);
                }
                self.lock.unlock();
                ready(sr);
                return;
            }
            p = s;
            s = sr.next.get();
        }
        self.lock.unlock();
    }

    /// Wakes all waiters (Go's `Broadcast`).
    ///
    /// ```
    /// gort::sync::Cond::new().broadcast();
    /// ```
    pub fn broadcast(&self) {
        if self.wait.load(Ordering::SeqCst) == self.notify.load(Ordering::SeqCst) {
            return;
        }
        self.lock.lock();
        let mut s = self.head.replace(ptr::null());
        self.tail.set(ptr::null());
        self.notify.store(self.wait.load(Ordering::SeqCst), Ordering::SeqCst);
        self.lock.unlock();
        // SAFETY: the detached list's waiters are live until woken, and
        // only we hold them now.
        while let Some(sr) = unsafe { s.as_ref() } {
            s = sr.next.get();
            ready(sr);
        }
    }
}

/// Wakes a dequeued waiter; its record may be gone after this.
fn ready(w: &Waiter) {
    let waker = w.waker.take().expect("gort: cond waiter woken twice");
    w.woken.store(true, Ordering::Release);
    waker.wake();
}

impl Default for Cond {
    fn default() -> Self {
        Cond::new()
    }
}

impl std::fmt::Debug for Cond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cond { .. }")
    }
}
