//! `select` (Go's select.go `selectgo`): the runtime half of `select!`.
//!
//! The macro builds one case value per arm on the caller's stack (each
//! holding its own waiter record, Go's per-case `sudog`) and calls
//! [`select`] with them as `&dyn Case`. Then, as Go:
//!
//! 1. *pollorder*: a uniformly random permutation of the cases
//!    (inside-out Fisher–Yates with a per-thread generator), so every
//!    ready case is equally likely to be chosen;
//! 2. *lockorder*: the cases sorted by channel address; every channel is
//!    locked in that order (a channel named twice is locked once), so two
//!    selects over the same channels cannot deadlock;
//! 3. pass 1 polls the cases in pollorder and completes the first ready
//!    one; with `default` (non-blocking) nothing ready returns `None`;
//! 4. pass 2 queues a sudog on every channel, all sharing one claim word
//!    (`Sel`), and parks; the channel locks are released after the switch;
//! 5. the first peer (or `close`, or the deadline timer) to win the claim
//!    completes that case and wakes us; pass 3 relocks everything and
//!    unlinks the sudogs that were not chosen.

use super::super::sync::wake::Reason;
use super::hchan::{RawChan, Sel, SendFail, Sudog, Wakeup, TIMEOUT};
use super::timer::Deadline;

/// The outcome of polling a case under its channel's lock.
#[derive(Debug)]
pub enum Poll {
    /// Not ready.
    Pending,
    /// Completed; wake this peer after unlocking.
    Ready(Option<Wakeup>),
    /// A send case on a closed channel: the select panics.
    SendClosed,
}

/// One arm of a select, as seen by [`select`]. Implemented by
/// [`RecvCase`] and [`SendCase`]; the methods other than `key` are called
/// with the case's channel locked (by [`select`]).
pub trait Case {
    /// The channel's address (lock order).
    fn key(&self) -> usize;
    /// Locks the case's channel.
    fn lock(&self);
    /// Unlocks the case's channel.
    fn unlock(&self);
    /// Tries to complete at once.
    fn poll(&self) -> Poll;
    /// Queues this case's sudog for `sel`, reporting `case` when chosen.
    fn enqueue(&self, sel: &Sel, case: usize);
    /// Unlinks this case's sudog if it is still queued.
    fn dequeue(&self);
    /// Whether this is a send case.
    fn is_send(&self) -> bool;
}

/// How long a select may block.
#[derive(Debug, Clone, Copy)]
pub enum Block {
    /// Has a `default` arm: never block.
    No,
    /// Block until a case is ready.
    Forever,
    /// `default(timeout)`: block until a case is ready or the deadline.
    Until(Deadline),
}

/// A receive arm: `recv(ch) -> v`.
#[derive(Debug)]
pub struct RecvCase<'a, T> {
    ch: &'a RawChan<T>,
    sg: Sudog<T>,
}

impl<'a, T> RecvCase<'a, T> {
    /// A receive case on `ch`.
    pub fn new(ch: &'a RawChan<T>) -> Self {
        RecvCase { ch, sg: Sudog::new(None) }
    }

    /// The received value once the case was chosen: `None` means the
    /// channel is closed (and drained).
    pub fn take(&self) -> Option<T> {
        self.sg.take()
    }
}

impl<T> Case for RecvCase<'_, T> {
    fn key(&self) -> usize {
        self.ch.key()
    }
    fn lock(&self) {
        self.ch.lock();
    }
    fn unlock(&self) {
        self.ch.unlock();
    }
    fn poll(&self) -> Poll {
        match self.ch.recv_locked() {
            Ok((v, w)) => {
                if let Some(v) = v {
                    self.sg.put(v);
                }
                Poll::Ready(w)
            }
            Err(_) => Poll::Pending,
        }
    }
    fn enqueue(&self, sel: &Sel, case: usize) {
        self.ch.enqueue(&self.sg, sel, case, false);
    }
    fn dequeue(&self) {
        self.ch.dequeue_sudog(&self.sg, false);
    }
    fn is_send(&self) -> bool {
        false
    }
}

/// A send arm: `send(ch, v)`. The value is evaluated when the select
/// starts (as Go) and dropped if another arm is chosen.
#[derive(Debug)]
pub struct SendCase<'a, T> {
    ch: &'a RawChan<T>,
    sg: Sudog<T>,
}

impl<'a, T> SendCase<'a, T> {
    /// A send case of `v` on `ch`.
    pub fn new(ch: &'a RawChan<T>, v: T) -> Self {
        SendCase { ch, sg: Sudog::new(Some(v)) }
    }
}

impl<T> Case for SendCase<'_, T> {
    fn key(&self) -> usize {
        self.ch.key()
    }
    fn lock(&self) {
        self.ch.lock();
    }
    fn unlock(&self) {
        self.ch.unlock();
    }
    fn poll(&self) -> Poll {
        let v = self.sg.take().expect("gort: send case without a value");
        match self.ch.send_locked(v) {
            Ok(w) => Poll::Ready(w),
            Err(SendFail::Full(v)) => {
                self.sg.put(v);
                Poll::Pending
            }
            Err(SendFail::Closed(v)) => {
                self.sg.put(v);
                Poll::SendClosed
            }
        }
    }
    fn enqueue(&self, sel: &Sel, case: usize) {
        self.ch.enqueue(&self.sg, sel, case, true);
    }
    fn dequeue(&self) {
        self.ch.dequeue_sudog(&self.sg, true);
    }
    fn is_send(&self) -> bool {
        true
    }
}

fn sellock(cases: &[&dyn Case], keys: &[usize], lockorder: &[usize]) {
    let mut last = None;
    for &i in lockorder {
        let k = keys[i];
        if last != Some(k) {
            cases[i].lock();
            last = Some(k);
        }
    }
}

fn selunlock(cases: &[&dyn Case], keys: &[usize], lockorder: &[usize]) {
    // Go unlocks in reverse lock order; any order is correct.
    let mut last = None;
    for &i in lockorder.iter().rev() {
        let k = keys[i];
        if last != Some(k) {
            cases[i].unlock();
            last = Some(k);
        }
    }
}

/// Go's `cheaprandn`: a per-thread wyrand generator.
#[cfg(not(loom))]
fn cheaprandn(n: usize) -> usize {
    use std::cell::Cell;
    thread_local! {
        static SEED: Cell<u64> = Cell::new({
            let x = 0u8;
            (&x as *const u8 as u64) ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    }
    SEED.with(|s| {
        let seed = s.get().wrapping_add(0xa076_1d64_78bd_642f);
        s.set(seed);
        let t = (seed as u128).wrapping_mul((seed ^ 0xe703_7ed1_a0b4_28db) as u128);
        let r = ((t >> 64) as u64) ^ (t as u64);
        ((r as u32 as u64 * n as u64) >> 32) as usize
    })
}

/// Under loom the poll order is fixed (loom explores interleavings, not
/// random choices).
#[cfg(loom)]
fn cheaprandn(_n: usize) -> usize {
    0
}

/// Go's `selectgo`: runs a select over `cases` and returns the index of
/// the chosen case, or `None` when nothing was ready and `block` is
/// [`Block::No`] or its deadline passed. A chosen receive case's value is
/// then read with [`RecvCase::take`]. Panics with Go's
/// `send on closed channel` if a send case's channel is (or gets) closed.
/// With no cases and no deadline it blocks forever.
pub fn select<const N: usize>(cases: [&dyn Case; N], block: Block) -> Option<usize> {
    if N == 0 {
        return match block {
            Block::No => None,
            #[cfg(not(loom))]
            Block::Forever => super::super::sync::wake::park_forever(Reason::SelectNoCases),
            #[cfg(loom)]
            Block::Forever => panic!("select with no cases blocks forever"),
            Block::Until(d) => {
                let sel = Sel::new();
                sel.park(Reason::SelectNoCases, &mut || {}, Some(d));
                None
            }
        };
    }
    // Generate the permuted poll order.
    let mut pollorder = [0usize; N];
    for i in 0..N {
        let j = cheaprandn(i + 1);
        pollorder[i] = pollorder[j];
        pollorder[j] = i;
    }
    // Sort by channel address, starting from the poll order so that cases
    // on the same channel are permuted too.
    // Each case's channel address, read once (a dynamic call each).
    let keys: [usize; N] = std::array::from_fn(|i| cases[i].key());
    let mut lockorder = pollorder;
    lockorder.sort_unstable_by_key(|&i| keys[i]);

    sellock(&cases, &keys, &lockorder);

    // Pass 1: look for something already waiting.
    for &i in &pollorder {
        match cases[i].poll() {
            Poll::Pending => {}
            Poll::Ready(w) => {
                selunlock(&cases, &keys, &lockorder);
                if let Some(w) = w {
                    w.wake();
                }
                return Some(i);
            }
            Poll::SendClosed => {
                selunlock(&cases, &keys, &lockorder);
                panic!("send on closed channel");
            }
        }
    }
    let deadline = match block {
        Block::No => {
            selunlock(&cases, &keys, &lockorder);
            return None;
        }
        Block::Forever => None,
        Block::Until(d) => Some(d),
    };

    // Pass 2: enqueue on all channels, in lock order.
    let sel = Sel::new();
    for &i in &lockorder {
        cases[i].enqueue(&sel, i);
    }
    let (chosen, ok) = sel.park(Reason::Select, &mut || selunlock(&cases, &keys, &lockorder), deadline);

    // Pass 3: dequeue from the channels that were not chosen.
    sellock(&cases, &keys, &lockorder);
    for &i in &lockorder {
        if i != chosen {
            cases[i].dequeue();
        }
    }
    selunlock(&cases, &keys, &lockorder);

    if chosen == TIMEOUT {
        return None;
    }
    if cases[chosen].is_send() && !ok {
        panic!("send on closed channel");
    }
    Some(chosen)
}
