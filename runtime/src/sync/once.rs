//! `Once` (Go's sync.Once, once.go).

use std::sync::atomic::{AtomicU32, Ordering};

use super::mutex::RawMutex;

/// Performs exactly one action (Go's `sync.Once`).
///
/// The first [`call_once`](Once::call_once) runs its function; concurrent
/// callers wait (parking their goroutines) until it has returned, and
/// later callers return at once. As in Go, a function that panics still
/// counts as done (std's `Once` poisons instead).
///
/// ```
/// use gort::sync::Once;
/// static INIT: Once = Once::new();
/// let mut n = 0;
/// INIT.call_once(|| n += 1);
/// INIT.call_once(|| n += 1);
/// assert_eq!(n, 1);
/// ```
pub struct Once {
    /// 1 once the action has completed; the fast path reads only this.
    done: AtomicU32,
    m: RawMutex,
}

impl Once {
    /// A fresh `Once`.
    ///
    /// ```
    /// assert!(!gort::sync::Once::new().is_completed());
    /// ```
    pub const fn new() -> Once {
        Once { done: AtomicU32::new(0), m: RawMutex::new() }
    }

    /// Go's `Do`: runs `f` if no call has run before; waits for a
    /// concurrent first call to finish.
    ///
    /// ```
    /// let once = gort::sync::Once::new();
    /// once.call_once(|| println!("once"));
    /// assert!(once.is_completed());
    /// ```
    #[doc(alias = "Do")]
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        // Go: the fast path must not CAS done from 0 to 1, because later
        // callers must wait until f has *finished*.
        if self.done.load(Ordering::Acquire) == 0 {
            self.do_slow(f);
        }
    }

    #[cold]
    fn do_slow<F: FnOnce()>(&self, f: F) {
        struct Unlock<'a>(&'a Once, bool);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                if self.1 {
                    self.0.done.store(1, Ordering::Release);
                }
                self.0.m.unlock();
            }
        }
        self.m.lock();
        let mut g = Unlock(self, false);
        if self.done.load(Ordering::Relaxed) == 0 {
            g.1 = true;
            f();
        }
    }

    /// Whether the action has completed.
    ///
    /// ```
    /// let once = gort::sync::Once::new();
    /// once.call_once(|| {});
    /// assert!(once.is_completed());
    /// ```
    pub fn is_completed(&self) -> bool {
        self.done.load(Ordering::Acquire) != 0
    }
}

impl Default for Once {
    fn default() -> Self {
        Once::new()
    }
}

impl std::fmt::Debug for Once {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Once").field("done", &self.is_completed()).finish()
    }
}
