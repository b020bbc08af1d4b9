//! `RawLock`: the runtime's own short-hold lock (Go's `mutex` with
//! `lock2`/`unlock2` from lock_futex.go), guarding channels, semaphore
//! roots and notify lists.
//!
//! It is held only for a few hundred instructions and never across user
//! code or a goroutine switch (a parked goroutine's lock is released by the
//! M after the switch), so blocking the OS thread on contention is right:
//! goroutines waiting for a *user* lock park instead (`gort::sync::Mutex`).
//!
//! Protocol (Go's): `key` is 0 (unlocked), 1 (locked) or 2 (locked, a
//! thread may sleep on the futex). `lock` swaps in 1; on contention it
//! spins actively (4 rounds of 30 pauses when there is more than one CPU),
//! yields once, then swaps in 2 and sleeps on the futex. `unlock` swaps in
//! 0 and wakes one sleeper if the old value was 2. Under loom it is a
//! `Mutex<bool>` plus `Condvar` (loom cannot explore unbounded spinning);
//! what the models check is the protocol the lock protects.

use crate::loom::sync::atomic::{AtomicU32, Ordering};

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
#[cfg(not(loom))]
const SLEEPING: u32 = 2;

/// Go's runtime `mutex`. Not re-entrant; `lock`/`unlock` are unpaired raw
/// calls so that several locks can be held at once (select) and released
/// from a park callback.
#[derive(Debug, Default)]
pub struct RawLock {
    key: AtomicU32,
    /// Under loom: a blocking lock (loom cannot explore unbounded spinning).
    #[cfg(loom)]
    m: crate::loom::sync::Mutex<bool>,
    #[cfg(loom)]
    cv: crate::loom::sync::Condvar,
}

impl RawLock {
    /// An unlocked lock.
    #[cfg(not(loom))]
    pub const fn new() -> RawLock {
        RawLock { key: AtomicU32::new(UNLOCKED) }
    }

    /// An unlocked lock.
    #[cfg(loom)]
    pub fn new() -> RawLock {
        RawLock {
            key: AtomicU32::new(UNLOCKED),
            m: crate::loom::sync::Mutex::new(false),
            cv: crate::loom::sync::Condvar::new(),
        }
    }

    /// Acquires the lock (Go's `lock2`).
    #[inline]
    pub fn lock(&self) {
        #[cfg(not(loom))]
        if self.key.compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed).is_err() {
            self.lock_slow();
        }
        #[cfg(loom)]
        {
            let mut g = crate::loom::lock(&self.m);
            while *g {
                g = self.cv.wait(g).unwrap();
            }
            *g = true;
            self.key.store(LOCKED, Ordering::Relaxed);
        }
    }

    #[cfg(not(loom))]
    #[cold]
    fn lock_slow(&self) {
        let v = self.key.swap(LOCKED, Ordering::Acquire);
        if v == UNLOCKED {
            return;
        }
        // `wait` is what we store when we take the lock: if we (or whoever
        // we displaced) ever slept, there may be sleepers, so keep 2.
        let mut wait = v;
        let spin = if multicore() { 4 } else { 0 };
        loop {
            for i in 0..=spin {
                while self.key.load(Ordering::Relaxed) == UNLOCKED {
                    if self.key.compare_exchange(UNLOCKED, wait, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                        return;
                    }
                }
                if i < spin {
                    for _ in 0..30 {
                        std::hint::spin_loop();
                    }
                } else {
                    std::thread::yield_now();
                }
            }
            if self.key.swap(SLEEPING, Ordering::Acquire) == UNLOCKED {
                return;
            }
            wait = SLEEPING;
            futex_wait(&self.key, SLEEPING);
        }
    }

    /// Releases the lock (Go's `unlock2`). The caller holds it.
    #[inline]
    pub fn unlock(&self) {
        #[cfg(not(loom))]
        {
            if self.key.swap(UNLOCKED, Ordering::Release) == SLEEPING {
                futex_wake(&self.key);
            }
        }
        #[cfg(loom)]
        {
            self.key.store(UNLOCKED, Ordering::Relaxed);
            *crate::loom::lock(&self.m) = false;
            self.cv.notify_one();
        }
    }
}

#[cfg(not(loom))]
fn multicore() -> bool {
    use std::sync::atomic::AtomicU8;
    static N: AtomicU8 = AtomicU8::new(0);
    match N.load(Ordering::Relaxed) {
        0 => {
            let multi = std::thread::available_parallelism().map_or(1, |n| n.get()) > 1;
            N.store(if multi { 2 } else { 1 }, Ordering::Relaxed);
            multi
        }
        n => n == 2,
    }
}

#[cfg(not(loom))]
fn futex_wait(key: &AtomicU32, val: u32) {
    // SAFETY: `key` is a live, aligned u32 for the duration of the call; the
    // kernel only reads it and sleeps while it still equals `val`.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            key.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            val,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

#[cfg(not(loom))]
fn futex_wake(key: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key. The lock is live:
    // the caller holds a reference to it.
    unsafe {
        libc::syscall(libc::SYS_futex, key.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, 1i32);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::RawLock;
    use std::sync::Arc;

    #[test]
    fn counts_under_contention() {
        struct Shared(RawLock, std::cell::UnsafeCell<u64>);
        // SAFETY: the cell is only touched under the lock.
        unsafe impl Sync for Shared {}
        let s = Arc::new(Shared(RawLock::new(), std::cell::UnsafeCell::new(0)));
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..100_000 {
                        s.0.lock();
                        // SAFETY: we hold the lock.
                        unsafe { *s.1.get() += 1 };
                        s.0.unlock();
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        // SAFETY: all threads joined.
        assert_eq!(unsafe { *s.1.get() }, 400_000);
    }
}
