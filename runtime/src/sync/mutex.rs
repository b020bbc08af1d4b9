//! `Mutex<T>` (Go's sync.Mutex, internal/sync/mutex.go, with the data it
//! guards, in the way of Rust).

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::sema::{semacquire, semrelease};
use super::wake::Reason;

const MUTEX_LOCKED: i32 = 1;
const MUTEX_WOKEN: i32 = 2;
const MUTEX_STARVING: i32 = 4;
const MUTEX_WAITER_SHIFT: u32 = 3;
const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);

/// Go's `sync.Mutex` state machine without the data: `state` packs
/// locked, woken, starving and the waiter count; `sema` is the semaphore
/// waiters sleep on.
pub(crate) struct RawMutex {
    state: AtomicI32,
    sema: AtomicU32,
}

impl RawMutex {
    pub(crate) const fn new() -> RawMutex {
        RawMutex { state: AtomicI32::new(0), sema: AtomicU32::new(0) }
    }

    #[inline]
    pub(crate) fn lock(&self) {
        // Fast path: grab an unlocked mutex.
        if self.state.compare_exchange(0, MUTEX_LOCKED, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return;
        }
        self.lock_slow();
    }

    pub(crate) fn try_lock(&self) -> bool {
        let old = self.state.load(Ordering::Relaxed);
        if old & (MUTEX_LOCKED | MUTEX_STARVING) != 0 {
            return false;
        }
        self.state.compare_exchange(old, old | MUTEX_LOCKED, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    #[cold]
    fn lock_slow(&self) {
        crate::preempt_point();
        let mut wait_start: Option<Instant> = None;
        let mut starving = false;
        let mut awoke = false;
        let mut iter = 0;
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            // Don't spin in starvation mode: ownership is handed off to
            // waiters, so we can't acquire the mutex anyway.
            if old & (MUTEX_LOCKED | MUTEX_STARVING) == MUTEX_LOCKED && can_spin(iter) {
                // Active spinning makes sense. Try to set the woken flag to
                // tell Unlock not to wake other blocked goroutines.
                if !awoke
                    && old & MUTEX_WOKEN == 0
                    && old >> MUTEX_WAITER_SHIFT != 0
                    && self.state.compare_exchange(old, old | MUTEX_WOKEN, Ordering::Relaxed, Ordering::Relaxed).is_ok()
                {
                    awoke = true;
                }
                do_spin();
                iter += 1;
                old = self.state.load(Ordering::Relaxed);
                continue;
            }
            let mut new = old;
            // Don't try to acquire a starving mutex: new arrivals must queue.
            if old & MUTEX_STARVING == 0 {
                new |= MUTEX_LOCKED;
            }
            if old & (MUTEX_LOCKED | MUTEX_STARVING) != 0 {
                new += 1 << MUTEX_WAITER_SHIFT;
            }
            // Switch to starvation mode, unless the mutex is unlocked (then
            // Unlock expects waiters, which may not be true).
            if starving && old & MUTEX_LOCKED != 0 {
                new |= MUTEX_STARVING;
            }
            if awoke {
                // The goroutine has been woken from sleep, so reset the flag.
                assert!(new & MUTEX_WOKEN != 0, "sync: inconsistent mutex state");
                new &= !MUTEX_WOKEN;
            }
            match self.state.compare_exchange(old, new, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => {
                    if old & (MUTEX_LOCKED | MUTEX_STARVING) == 0 {
                        return; // locked the mutex with CAS
                    }
                    // If we were already waiting before, queue at the front.
                    let lifo = wait_start.is_some();
                    let start = *wait_start.get_or_insert_with(Instant::now);
                    semacquire(&self.sema, lifo, Reason::SyncMutexLock);
                    starving = starving || start.elapsed() > STARVATION_THRESHOLD;
                    old = self.state.load(Ordering::Relaxed);
                    if old & MUTEX_STARVING != 0 {
                        // Ownership was handed off to us, but the state is
                        // not fixed up yet: locked is unset and we are still
                        // counted as a waiter.
                        assert!(
                            old & (MUTEX_LOCKED | MUTEX_WOKEN) == 0 && old >> MUTEX_WAITER_SHIFT != 0,
                            "sync: inconsistent mutex state"
                        );
                        let mut delta = MUTEX_LOCKED - (1 << MUTEX_WAITER_SHIFT);
                        if !starving || old >> MUTEX_WAITER_SHIFT == 1 {
                            // Exit starvation mode (as Go: when we are the
                            // last waiter, or waited less than 1 ms).
                            delta -= MUTEX_STARVING;
                        }
                        self.state.fetch_add(delta, Ordering::Acquire);
                        return;
                    }
                    awoke = true;
                    iter = 0;
                }
                Err(x) => old = x,
            }
        }
    }

    #[inline]
    pub(crate) fn unlock(&self) {
        let new = self.state.fetch_sub(MUTEX_LOCKED, Ordering::Release) - MUTEX_LOCKED;
        if new != 0 {
            self.unlock_slow(new);
        }
    }

    #[cold]
    fn unlock_slow(&self, new: i32) {
        if (new + MUTEX_LOCKED) & MUTEX_LOCKED == 0 {
            crate::sched::proc::fatal("sync: unlock of unlocked mutex");
        }
        if new & MUTEX_STARVING == 0 {
            let mut old = new;
            loop {
                // No waiters, or a goroutine has already been woken or
                // grabbed the lock: nobody to wake.
                if old >> MUTEX_WAITER_SHIFT == 0 || old & (MUTEX_LOCKED | MUTEX_WOKEN | MUTEX_STARVING) != 0 {
                    return;
                }
                // Grab the right to wake someone.
                let new = (old - (1 << MUTEX_WAITER_SHIFT)) | MUTEX_WOKEN;
                match self.state.compare_exchange(old, new, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => {
                        semrelease(&self.sema, false);
                        return;
                    }
                    Err(x) => old = x,
                }
            }
        } else {
            // Starving mode: hand ownership to the next waiter and yield
            // our time slice so it can start running at once.
            semrelease(&self.sema, true);
        }
    }
}

/// Go's `runtime_canSpin`: spin only a few times, only on a multicore
/// machine, and only while other processors are running.
fn can_spin(iter: u32) -> bool {
    iter < 4 && crate::num_cpu() > 1 && crate::sched::proc::gomaxprocs() > 1
}

/// Go's `runtime_doSpin`: 30 pause instructions.
fn do_spin() {
    for _ in 0..30 {
        std::hint::spin_loop();
    }
}

/// A mutual-exclusion lock for goroutines (Go's `sync.Mutex`) that owns
/// the data it protects.
///
/// A goroutine that finds it locked spins briefly, then parks (its thread
/// runs other goroutines); a plain OS thread parks itself. As Go's mutex
/// it has two modes: *normal*, where a woken waiter competes with newly
/// arriving goroutines (which usually win — they are already on a CPU),
/// and *starvation*, entered when a waiter has waited more than 1 ms,
/// where ownership is handed directly from the unlocking goroutine to the
/// waiter at the front of the queue.
///
/// Rust differences: [`lock`](Mutex::lock) returns a guard that unlocks on
/// drop (so "unlock of unlocked mutex" cannot happen), and there is no
/// poisoning: a panic while holding the guard simply unlocks.
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::{Mutex, WaitGroup};
///
/// let count = Arc::new(Mutex::new(0));
/// let wg = Arc::new(WaitGroup::new());
/// for _ in 0..10 {
///     wg.add(1);
///     let (count, wg) = (count.clone(), wg.clone());
///     gort::go(move || {
///         *count.lock() += 1;
///         wg.done();
///     });
/// }
/// wg.wait();
/// assert_eq!(*count.lock(), 10);
/// ```
pub struct Mutex<T: ?Sized> {
    raw: RawMutex,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands out access to `T` to one holder at a time, from
// any thread, so `T: Send` suffices for both (as `std::sync::Mutex`).
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `v`.
    ///
    /// ```
    /// let m = gort::sync::Mutex::new(vec![1]);
    /// m.lock().push(2);
    /// assert_eq!(m.into_inner(), [1, 2]);
    /// ```
    pub const fn new(v: T) -> Mutex<T> {
        Mutex { raw: RawMutex::new(), data: UnsafeCell::new(v) }
    }

    /// Consumes the mutex, returning the data.
    ///
    /// ```
    /// assert_eq!(gort::sync::Mutex::new(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Go's `Lock`: waits until the mutex is free, then returns a guard
    /// giving access to the data; dropping the guard is Go's `Unlock`.
    ///
    /// ```
    /// let m = gort::sync::Mutex::new(1);
    /// *m.lock() += 1;
    /// assert_eq!(*m.lock(), 2);
    /// ```
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock();
        MutexGuard { m: self }
    }

    /// Go's `TryLock`: the guard if the mutex is free now.
    ///
    /// ```
    /// let m = gort::sync::Mutex::new(());
    /// let g = m.lock();
    /// assert!(m.try_lock().is_none());
    /// drop(g);
    /// assert!(m.try_lock().is_some());
    /// ```
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.raw.try_lock().then(|| MutexGuard { m: self })
    }

    /// Mutable access without locking (the borrow proves exclusivity).
    ///
    /// ```
    /// let mut m = gort::sync::Mutex::new(1);
    /// *m.get_mut() = 5;
    /// assert_eq!(*m.lock(), 5);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Access to a locked [`Mutex`]'s data; unlocks when dropped.
///
/// ```
/// let m = gort::sync::Mutex::new(String::new());
/// let mut g = m.lock();
/// g.push_str("hi");
/// drop(g);
/// assert_eq!(*m.lock(), "hi");
/// ```
pub struct MutexGuard<'a, T: ?Sized> {
    m: &'a Mutex<T>,
}

// SAFETY: a shared guard only gives `&T`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks (for `Cond::wait`).
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.m
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so no one else accesses the data.
        unsafe { &*self.m.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as `deref`, and `&mut self` makes this access unique.
        unsafe { &mut *self.m.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.m.raw.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
