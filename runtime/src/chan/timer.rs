//! Deadlines for blocked channel operations (`recv_timeout`,
//! `send_timeout`, `select!`'s `default(timeout)`).
//!
//! Interim design until `gort::time` provides per-P timers: one helper
//! thread keeps an ordered map of `(deadline, seq) → waiter record`. When a
//! deadline passes it tries the waiter's claim CAS (the same `Sel::claim` a
//! sender, receiver or `close` uses): if it wins, it completes the waiter
//! with case `TIMEOUT` and wakes it; if it loses, somebody else already
//! completed the operation and the timer does nothing.
//!
//! Lifetime rule: the map holds a raw pointer to a record on the waiter's
//! stack. Timers fire *under the map lock*, and a waiter woken by anyone
//! other than its timer removes its entry (`disarm`, under the same lock)
//! before its frame ends, so the pointer is never used after the record is
//! gone. A waiter woken by its timer has no entry left (firing removes it)
//! and the timer's last access to the record is the `woken` store.
//!
//! The timer is armed from the park's unlock callback, i.e. after a
//! goroutine has switched out, so it can never ready a goroutine that is
//! still running. Under loom there are no deadlines (`Deadline` is
//! uninhabited).

#[cfg(not(loom))]
pub use imp::*;

#[cfg(loom)]
pub use stub::*;

#[cfg(not(loom))]
mod imp {
    use std::collections::BTreeMap;
    use std::sync::{Condvar, Mutex, OnceLock};
    use std::time::Instant;

    use super::super::hchan::{Sel, TIMEOUT};

    /// When a blocked operation gives up.
    pub type Deadline = Instant;

    /// Identifies an armed timer.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    pub struct Key(Instant, u64);

    struct SelPtr(*const Sel);
    // SAFETY: the pointer is only dereferenced by the timer thread under
    // the map lock while the record is live (see the module doc); `Sel` is
    // built from atomics and cells accessed under its claim protocol.
    unsafe impl Send for SelPtr {}

    struct Timers {
        map: Mutex<(BTreeMap<Key, SelPtr>, u64)>,
        cv: Condvar,
    }

    fn timers() -> &'static Timers {
        static T: OnceLock<&'static Timers> = OnceLock::new();
        T.get_or_init(|| {
            let t: &'static Timers =
                Box::leak(Box::new(Timers { map: Mutex::new((BTreeMap::new(), 0)), cv: Condvar::new() }));
            std::thread::Builder::new()
                .name("gort-chan-timer".into())
                .spawn(move || run(t))
                .expect("gort: cannot start the channel timer thread");
            t
        })
    }

    fn run(t: &'static Timers) {
        let mut g = t.map.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            while let Some(entry) = g.0.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let SelPtr(sel) = entry.remove();
                // SAFETY: the entry was still in the map, so its owner has
                // not disarmed it and its record is live; we hold the lock.
                let sel = unsafe { &*sel };
                if sel.claim() {
                    sel.complete(TIMEOUT, false).wake();
                }
            }
            g = match g.0.first_key_value() {
                Some((k, _)) => {
                    let d = k.0.saturating_duration_since(Instant::now());
                    t.cv.wait_timeout(g, d).unwrap_or_else(|e| e.into_inner()).0
                }
                None => t.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }

    /// Arms a timer that claims and wakes `sel` at `deadline`.
    pub fn arm(deadline: Deadline, sel: &Sel) -> Key {
        let t = timers();
        let mut g = t.map.lock().unwrap_or_else(|e| e.into_inner());
        g.1 += 1;
        let key = Key(deadline, g.1);
        let first = g.0.first_key_value().is_none_or(|(k, _)| key < *k);
        g.0.insert(key, SelPtr(sel));
        drop(g);
        if first {
            t.cv.notify_one();
        }
        key
    }

    /// Removes a timer that has not fired. After it returns the timer
    /// thread holds no pointer to the record.
    pub fn disarm(key: Key) {
        let mut g = timers().map.lock().unwrap_or_else(|e| e.into_inner());
        g.0.remove(&key);
    }
}

#[cfg(loom)]
mod stub {
    use super::super::hchan::Sel;

    /// No deadlines under loom.
    #[derive(Debug, Clone, Copy)]
    pub enum Deadline {}

    /// No timers under loom.
    #[derive(Debug, Clone, Copy)]
    pub enum Key {}

    /// Unreachable: `Deadline` has no values.
    pub fn arm(d: Deadline, _sel: &Sel) -> Key {
        match d {}
    }

    /// Unreachable: `Key` has no values.
    pub fn disarm(k: Key) {
        match k {}
    }
}
