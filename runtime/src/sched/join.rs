//! The lock-free handshake between a goroutine that finishes and the one
//! thread or goroutine that joins it (`JoinHandle::join`), kept apart so
//! the loom model in `loom-tests/tests/join.rs` runs this exact code.
//!
//! One state word holds two bits, each set once:
//!
//! - `DONE`, set by the finishing goroutine ([`JoinCore::complete`]) after
//!   it wrote its result (release: the joiner that sees `DONE` with an
//!   acquire load sees the result);
//! - `WAITING`, set by the joiner ([`JoinCore::register`]) after it stored
//!   its waiter in the cell (release: the finisher that sees `WAITING`
//!   sees the waiter).
//!
//! Both are `fetch_or`s on the same word, so exactly one of them sees the
//! other's bit: if the finisher sees `WAITING` it takes the waiter and
//! wakes it; otherwise the joiner sees `DONE` and does not wait (and takes
//! its waiter back). No wake-up is lost, and the waiter cell is touched by
//! one side at a time. A goroutine joiner registers inside its park's
//! unlock callback, after it has switched out (Go's `goparkunlock`), so
//! the wake-up cannot come before the park. Once `register` has set
//! `WAITING`, the joiner may be readied and (if migratable) resumed on
//! another thread at once: the callback must not write to the joiner's
//! stack afterwards, so the joiner, once resumed, takes its waiter cell
//! back unconditionally instead of learning what `register` returned.
//!
//! Rejected: a `Mutex` around `done` and the waiter (the previous design):
//! two lock/unlock pairs per spawn and join where two `fetch_or`s do.

use crate::loom::sync::atomic::{AtomicU32, Ordering};
use crate::loom::sync::UnsafeCell;

const DONE: u32 = 1;
const WAITING: u32 = 2;

/// Completion state and the joiner's waiter `W`.
#[derive(Debug)]
pub struct JoinCore<W> {
    state: AtomicU32,
    /// Written by the joiner before `register`, read by the finisher only
    /// after seeing `WAITING`, or taken back by the joiner when
    /// `register` found `DONE`.
    waiter: UnsafeCell<Option<W>>,
}

// SAFETY: the waiter cell is handed from the joiner to the finisher
// through the state word (see the module docs); `W` itself crosses threads.
unsafe impl<W: Send> Sync for JoinCore<W> {}

impl<W> JoinCore<W> {
    /// Not finished, nobody waiting.
    pub fn new() -> Self {
        JoinCore { state: AtomicU32::new(0), waiter: UnsafeCell::new(None) }
    }

    /// Whether the goroutine has finished (its result is visible).
    pub fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) & DONE != 0
    }

    /// The finisher, after writing its result: marks it done and returns
    /// the waiter to wake, if one registered.
    ///
    /// # Safety
    /// Called once, by the finisher.
    pub unsafe fn complete(&self) -> Option<W> {
        if self.state.fetch_or(DONE, Ordering::AcqRel) & WAITING == 0 {
            return None;
        }
        // SAFETY: `WAITING` was set after the joiner stored the waiter
        // (we acquired it), and the joiner no longer touches the cell.
        self.waiter.with_mut(|w| unsafe { (*w).take() })
    }

    /// The joiner: stores its waiter. Follow with [`JoinCore::register`].
    ///
    /// # Safety
    /// Only the joiner calls it, once, before `register`.
    pub unsafe fn set_waiter(&self, w: W) {
        // SAFETY: `WAITING` is not set yet, so the finisher does not read
        // the cell; only the joiner writes it.
        self.waiter.with_mut(|c| unsafe { *c = Some(w) });
    }

    /// The joiner, after `set_waiter`: returns true if it must now wait for
    /// the waiter to be woken, false if the goroutine had already finished
    /// (the waiter was not taken: call [`JoinCore::take_waiter`]).
    pub fn register(&self) -> bool {
        self.state.fetch_or(WAITING, Ordering::AcqRel) & DONE == 0
    }

    /// The joiner, after `register` returned false, or after its waiter
    /// was woken: takes its waiter back (`None` if the finisher took it).
    ///
    /// # Safety
    /// Only the joiner calls it, after `register` returned false (the
    /// finisher saw no `WAITING` and never touches the cell) or after the
    /// wake-up (which the finisher sends after taking the waiter, and
    /// which must order that take before this call).
    pub unsafe fn take_waiter(&self) -> Option<W> {
        // SAFETY: per the contract the cell is the joiner's alone.
        self.waiter.with_mut(|c| unsafe { (*c).take() })
    }
}

impl<W> Default for JoinCore<W> {
    fn default() -> Self {
        Self::new()
    }
}
