//! `Note`: a one-shot sleep/wake-up event, Go's `note` (lock_futex.go).
//!
//! One thread sleeps on a note; any thread wakes it. A wake-up that comes
//! before the sleep is not lost: the key stays set until `clear`. Idle Ms,
//! sysmon and the stop-the-world coordinator sleep on notes.
//!
//! On Linux the note is a futex word (0 = clear, 1 = woken). Under loom it
//! is a `Mutex<bool>` and a `Condvar`, which loom can explore.

use std::time::Duration;

#[cfg(not(loom))]
use crate::loom::sync::atomic::{AtomicU32, Ordering};

/// Go's `note`: `notesleep`, `notetsleep`, `notewakeup`, `noteclear`.
#[derive(Debug, Default)]
pub struct Note {
    #[cfg(not(loom))]
    key: AtomicU32,
    #[cfg(loom)]
    state: crate::loom::sync::Mutex<bool>,
    #[cfg(loom)]
    cv: crate::loom::sync::Condvar,
}

#[cfg(not(loom))]
impl Note {
    /// A cleared note.
    pub const fn new() -> Self {
        Note { key: AtomicU32::new(0) }
    }

    /// Go's `noteclear`: re-arms the note. Only the sleeper calls it, when no
    /// wake-up can be in flight for the previous round.
    pub fn clear(&self) {
        self.key.store(0, Ordering::Relaxed);
    }

    /// Go's `notewakeup`: wakes the sleeper, or makes its next sleep return at once.
    pub fn wakeup(&self) {
        if self.key.swap(1, Ordering::Release) == 0 {
            futex_wake(&self.key);
        }
    }

    /// Whether the note has been woken (without sleeping).
    #[allow(dead_code)]
    pub fn is_woken(&self) -> bool {
        self.key.load(Ordering::Acquire) != 0
    }

    /// Go's `notesleep`: blocks until `wakeup`.
    pub fn sleep(&self) {
        while self.key.load(Ordering::Acquire) == 0 {
            futex_wait(&self.key, None);
        }
    }

    /// Go's `notetsleep`: blocks until `wakeup` or the timeout; returns
    /// whether the note was woken.
    pub fn sleep_timeout(&self, d: Duration) -> bool {
        let deadline = std::time::Instant::now() + d;
        loop {
            if self.key.load(Ordering::Acquire) != 0 {
                return true;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            futex_wait(&self.key, Some(deadline - now));
        }
    }
}

#[cfg(loom)]
impl Note {
    /// A cleared note.
    pub fn new() -> Self {
        Note { state: crate::loom::sync::Mutex::new(false), cv: crate::loom::sync::Condvar::new() }
    }
    /// Re-arms the note.
    pub fn clear(&self) {
        *crate::loom::lock(&self.state) = false;
    }
    /// Wakes the sleeper.
    pub fn wakeup(&self) {
        *crate::loom::lock(&self.state) = true;
        self.cv.notify_one();
    }
    /// Whether the note has been woken.
    pub fn is_woken(&self) -> bool {
        *crate::loom::lock(&self.state)
    }
    /// Blocks until `wakeup`.
    pub fn sleep(&self) {
        let mut g = crate::loom::lock(&self.state);
        while !*g {
            g = self.cv.wait(g).unwrap();
        }
    }
    /// Under loom a timed sleep is modelled as "woken or not, without blocking".
    pub fn sleep_timeout(&self, _d: Duration) -> bool {
        self.is_woken()
    }
}

#[cfg(not(loom))]
fn futex_wait(key: &AtomicU32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `key` is a live, aligned u32 for the duration of the call; the
    // kernel only reads it, and `ts_ptr` is null or points at `ts` on our stack.
    unsafe {
        libc::syscall(libc::SYS_futex, key.as_ptr(), libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG, 0u32, ts_ptr);
    }
}

#[cfg(not(loom))]
fn futex_wake(key: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key; it is live and aligned.
    unsafe {
        libc::syscall(libc::SYS_futex, key.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, 1i32);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn wakeup_before_sleep_is_kept() {
        let n = Note::new();
        n.wakeup();
        n.sleep();
        assert!(n.is_woken());
        n.clear();
        assert!(!n.sleep_timeout(Duration::from_millis(1)));
    }

    #[test]
    fn wakes_a_sleeping_thread() {
        let n = Arc::new(Note::new());
        let n2 = n.clone();
        let t = std::thread::spawn(move || n2.sleep());
        std::thread::sleep(Duration::from_millis(10));
        n.wakeup();
        t.join().unwrap();
    }
}
