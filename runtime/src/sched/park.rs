//! Blocking that works for goroutines and plain threads alike: a goroutine
//! parks (its M runs others), a thread that is not a goroutine parks the
//! OS thread. Used by `scope`, and later by channels and
//! `gort::sync`.

use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard};

use super::g::{WaitReason, G};
use super::proc;

/// Who to wake.
pub(crate) enum Waiter {
    /// A parked goroutine (readied exactly once).
    G(NonNull<G>),
    /// A parked OS thread (`Thread::unpark`; spurious wake-ups are
    /// tolerated by the caller's loop).
    Thread(std::thread::Thread),
}

// SAFETY: the G pointer is only used to ready the goroutine, which
// `proc::ready` does from any thread.
unsafe impl Send for Waiter {}

impl Waiter {
    /// The calling goroutine, or the calling thread.
    pub(crate) fn current() -> Waiter {
        match proc::current() {
            Some((_, g)) => Waiter::G(NonNull::from(g)),
            None => Waiter::Thread(std::thread::current()),
        }
    }

    pub(crate) fn wake(self) {
        match self {
            Waiter::G(g) => proc::ready(g),
            Waiter::Thread(t) => t.unpark(),
        }
    }
}

/// Parks the caller until woken, releasing `guard` only once it can no
/// longer miss a wake-up (after the goroutine switched out, Go's
/// `goparkunlock`), then re-locks `lock`. The caller registered a
/// [`Waiter`] under the lock and re-checks its condition in a loop.
pub(crate) fn park_unlock<'a, T>(
    lock: &'a Mutex<T>,
    guard: MutexGuard<'a, T>,
    reason: WaitReason,
) -> MutexGuard<'a, T> {
    match proc::current() {
        Some((_, g)) => {
            let mut guard = Some(guard);
            proc::gopark(g, reason, &mut || {
                drop(guard.take());
                true
            });
        }
        None => {
            drop(guard);
            std::thread::park();
        }
    }
    lock.lock().unwrap_or_else(|e| e.into_inner())
}
