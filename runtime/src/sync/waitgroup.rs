//! `WaitGroup` (Go's sync.WaitGroup, waitgroup.go).
//!
//! `state` packs the counter (high 32 bits) and the number of waiters (low
//! 32 bits) so that `add` can tell atomically whether the counter reached
//! zero with waiters present; `sema` is the semaphore they sleep on. When
//! the counter drops to zero with `w` waiters, `add` resets the state to 0
//! and releases the semaphore `w` times. This file also builds under loom.

use super::sema::{semacquire, semrelease};
use super::wake::Reason;
use crate::loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Waits for a collection of goroutines to finish (Go's `sync.WaitGroup`).
///
/// The main goroutine calls [`add`](WaitGroup::add) to set the number of
/// goroutines to wait for; each of them calls [`done`](WaitGroup::done)
/// when finished; [`wait`](WaitGroup::wait) blocks until all have. Share
/// it through an `Arc` (or a scope). Waiting parks the goroutine.
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::WaitGroup;
///
/// let wg = Arc::new(WaitGroup::new());
/// for _ in 0..4 {
///     wg.add(1);
///     let wg = wg.clone();
///     gort::go(move || wg.done());
/// }
/// wg.wait();
/// ```
#[derive(Debug, Default)]
pub struct WaitGroup {
    state: AtomicU64,
    sema: AtomicU32,
}

impl WaitGroup {
    /// A wait group with counter 0.
    ///
    /// ```
    /// gort::sync::WaitGroup::new().wait(); // returns at once
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> WaitGroup {
        WaitGroup { state: AtomicU64::new(0), sema: AtomicU32::new(0) }
    }

    /// A wait group with counter 0.
    #[cfg(loom)]
    pub fn new() -> WaitGroup {
        WaitGroup { state: AtomicU64::new(0), sema: AtomicU32::new(0) }
    }

    /// Go's `Add`: adds `delta` (may be negative) to the counter. When it
    /// reaches zero every goroutine blocked in [`wait`](WaitGroup::wait) is
    /// released. Calls with a positive delta that start from zero must
    /// happen before `wait`.
    ///
    /// # Panics
    ///
    /// `sync: negative WaitGroup counter` if the counter goes below zero;
    /// `sync: WaitGroup misuse: Add called concurrently with Wait` as Go.
    ///
    /// ```
    /// let wg = gort::sync::WaitGroup::new();
    /// wg.add(2);
    /// wg.add(-2);
    /// wg.wait();
    /// ```
    pub fn add(&self, delta: isize) {
        let d = delta as i32;
        assert!(d as isize == delta, "sync: WaitGroup delta out of range");
        let state =
            self.state.fetch_add((d as i64 as u64) << 32, Ordering::SeqCst).wrapping_add((d as i64 as u64) << 32);
        let v = (state >> 32) as i32;
        let w = state as u32;
        if v < 0 {
            panic!("sync: negative WaitGroup counter");
        }
        if w != 0 && d > 0 && v == d {
            panic!("sync: WaitGroup misuse: Add called concurrently with Wait");
        }
        if v > 0 || w == 0 {
            return;
        }
        // The counter is 0 and there are waiters: nobody may change the
        // state now (Adds must not happen concurrently with Wait; Wait
        // does not add waiters when the counter is 0). Reset and wake.
        if self.state.load(Ordering::SeqCst) != state {
            panic!("sync: WaitGroup misuse: Add called concurrently with Wait");
        }
        self.state.store(0, Ordering::SeqCst);
        for _ in 0..w {
            semrelease(&self.sema, false);
        }
    }

    /// Go's `Done`: `add(-1)`.
    ///
    /// ```
    /// let wg = gort::sync::WaitGroup::new();
    /// wg.add(1);
    /// wg.done();
    /// wg.wait();
    /// ```
    pub fn done(&self) {
        self.add(-1);
    }

    /// Go's `Wait`: blocks until the counter is zero.
    ///
    /// # Panics
    ///
    /// `sync: WaitGroup is reused before previous Wait has returned` as Go.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let wg = Arc::new(gort::sync::WaitGroup::new());
    /// wg.add(1);
    /// let w = wg.clone();
    /// std::thread::spawn(move || w.done());
    /// wg.wait();
    /// ```
    pub fn wait(&self) {
        #[cfg(not(loom))]
        crate::preempt_point();
        let mut state = self.state.load(Ordering::SeqCst);
        loop {
            if (state >> 32) as i32 == 0 {
                return;
            }
            // Increment the waiter count.
            match self.state.compare_exchange(state, state + 1, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    semacquire(&self.sema, false, Reason::SyncWaitGroupWait);
                    if self.state.load(Ordering::SeqCst) != 0 {
                        panic!("sync: WaitGroup is reused before previous Wait has returned");
                    }
                    return;
                }
                Err(s) => state = s,
            }
        }
    }

    /// Go 1.25's `WaitGroup.Go`: runs `f` in a new goroutine counted by
    /// this group (`add(1)` now, `done()` when `f` returns or panics).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// let wg = Arc::new(gort::sync::WaitGroup::new());
    /// let n = Arc::new(AtomicU32::new(0));
    /// for _ in 0..3 {
    ///     let n = n.clone();
    ///     wg.go(move || {
    ///         n.fetch_add(1, Ordering::Relaxed);
    ///     });
    /// }
    /// wg.wait();
    /// assert_eq!(n.load(Ordering::Relaxed), 3);
    /// ```
    #[cfg(not(loom))]
    pub fn go<F>(self: &std::sync::Arc<Self>, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        struct Done(std::sync::Arc<WaitGroup>);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.done();
            }
        }
        self.add(1);
        let d = Done(self.clone());
        crate::go(move || {
            let _d = d;
            f();
        });
    }
}
