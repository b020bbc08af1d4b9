//! Deadlines for blocked channel operations (`recv_timeout`,
//! `send_timeout`, `select!`'s `default(timeout)`).
//!
//! Each deadline is a `gort::time` timer (per-P heaps, run by the
//! scheduler). When it fires it tries the waiter's claim CAS (the same
//! `Sel::claim` a sender, receiver or `close` uses): if it wins, it
//! completes the waiter with case `TIMEOUT` and wakes it; if it loses,
//! somebody else already completed the operation and the timer does
//! nothing.
//!
//! Lifetime rule: the timer reaches the waiter's record (on the waiter's
//! stack) through a slot that it reads *under the slot's lock*, and a
//! waiter woken by anyone other than its timer empties the slot (`disarm`,
//! under the same lock) before its frame ends, so the pointer is never used
//! after the record is gone. A waiter woken by its timer finds the slot
//! already emptied, and the timer's last access to the record is the
//! `woken` store.
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
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use super::super::hchan::{Sel, TIMEOUT};
    use crate::time::heap::{self, Action, TimerShared};

    /// When a blocked operation gives up.
    pub type Deadline = Instant;

    struct SelPtr(*const Sel);
    // SAFETY: the pointer is only dereferenced by the firing timer under the
    // slot lock while the record is live (see the module doc); `Sel` is
    // built from atomics and cells accessed under its claim protocol.
    unsafe impl Send for SelPtr {}

    /// An armed timer: the heap's timer and the slot it reaches the waiter by.
    pub struct Key {
        timer: Arc<TimerShared>,
        slot: Arc<Mutex<Option<SelPtr>>>,
    }

    /// Arms a timer that claims and wakes `sel` at `deadline`.
    pub fn arm(deadline: Deadline, sel: &Sel) -> Key {
        let slot = Arc::new(Mutex::new(Some(SelPtr(sel))));
        let fire = slot.clone();
        let timer = TimerShared::new(
            0,
            Action::Func(Box::new(move |_gen| {
                let mut s = fire.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(SelPtr(sel)) = s.take() {
                    // SAFETY: the slot still held the pointer, so its owner
                    // has not disarmed it and the record is live; we hold
                    // the slot lock.
                    let sel = unsafe { &*sel };
                    if sel.claim() {
                        sel.complete(TIMEOUT, false).wake();
                    }
                }
            })),
        );
        let now = Instant::now();
        let when = crate::sched::proc::nanotime()
            .saturating_add(deadline.saturating_duration_since(now).as_nanos().min(u64::MAX as u128) as u64);
        heap::add(&timer, when);
        Key { timer, slot }
    }

    /// Removes a timer that has not fired. After it returns the timer holds
    /// no pointer to the record.
    pub fn disarm(key: Key) {
        key.timer.gen.fetch_add(1, Ordering::AcqRel);
        *key.slot.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

#[cfg(loom)]
mod stub {
    use super::super::hchan::Sel;

    /// No deadlines under loom.
    #[derive(Debug, Clone, Copy)]
    pub enum Deadline {}

    /// No timers under loom.
    #[derive(Debug)]
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
