//! `select` (Go's select.go `selectgo`): the runtime half of `select!`.
//!
//! The macro builds one case value per arm on the caller's stack (each
//! holding its own waiter record, Go's per-case `sudog`) and calls
//! [`select`] with them as `&dyn Case`. Then, as Go:
//!
//! 1. *pollorder*: a uniformly random permutation of the cases
//!    (inside-out Fisher–Yates with a per-thread generator), so every
//!    ready case is equally likely to be chosen;
//! 2. pass 0 (not in Go): polls the cases in pollorder, locking one
//!    channel at a time, and completes the first ready one;
//! 3. only if that found nothing: *lockorder*, the cases sorted by
//!    channel address; every channel is locked in that order (a channel
//!    named twice is locked once), so two selects over the same channels
//!    cannot deadlock;
//! 4. pass 1 polls the cases in pollorder again under all the locks and
//!    completes the first ready one; with `default` (non-blocking)
//!    nothing ready returns `None`;
//! 5. pass 2 queues a sudog on every channel, all sharing one claim word
//!    (`Sel`), and parks; the channel locks are released after the switch;
//! 6. the first peer (or `close`, or the deadline timer) to win the claim
//!    completes that case and wakes us; pass 3 relocks everything and
//!    unlinks the sudogs that were not chosen.
//!
//! Why pass 0 keeps Go's semantics: a case it completes was ready at that
//! moment (its lock was held), and each case polled before it was not
//! ready when polled, so the select linearizes at the completion. For
//! cases that stay ready the choice is exactly Go's (the first ready one
//! in a uniform order); cases whose readiness changes during the select
//! are a race either way, whose outcome Go's snapshot does not define
//! either. The one outcome pass 0 cannot vouch for is "nothing was
//! ready" (a case polled early may have become ready while a later one
//! stopped being so, with no instant when all were idle), so blocking and
//! `default` are decided only by pass 1's snapshot under all locks. What
//! it buys: a select that finds a ready case locks one channel instead of
//! all N (Go pays the N lock round trips and the sort on every select),
//! and does not take the cache lines of the other channels away from the
//! goroutines on other threads that are using them.

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
    /// Locks the channel, [`poll`](Case::poll)s and unlocks: one dynamic
    /// call for select's pass 0.
    fn poll_alone(&self) -> Poll {
        self.lock();
        let r = self.poll();
        self.unlock();
        r
    }
    /// Queues this case's sudog for `sel`, reporting `case` when chosen.
    fn enqueue(&self, sel: &Sel, case: usize);
    /// Unlinks this case's sudog if it is still queued.
    fn dequeue(&self);
    /// Whether this is a send case.
    fn is_send(&self) -> bool;
    /// A hint read without the lock: whether a poll might succeed now
    /// (a buffered value or room, or a close). Never trusted for an
    /// outcome: only to end a spin early.
    fn maybe_ready(&self) -> bool;
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
    fn maybe_ready(&self) -> bool {
        self.ch.maybe_ready(false)
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
    fn maybe_ready(&self) -> bool {
        self.ch.maybe_ready(true)
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

/// Go's `cheaprand`: a per-thread wyrand generator (64 bits a call).
#[cfg(not(loom))]
#[inline(never)]
fn cheaprand64() -> u64 {
    use std::cell::Cell;
    // Constant-initialised (no lazy-init check on each access); seeded on
    // first use from the slot's address and the clock.
    thread_local! {
        static SEED: Cell<u64> = const { Cell::new(0) };
    }
    SEED.with(|s| {
        let mut seed = s.get();
        if seed == 0 {
            seed = (s as *const Cell<u64> as u64)
                ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        }
        let seed = seed.wrapping_add(0xa076_1d64_78bd_642f);
        s.set(seed);
        let t = (seed as u128).wrapping_mul((seed ^ 0xe703_7ed1_a0b4_28db) as u128);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

/// Uniform draws in `0..n` for the poll order (Go's `cheaprandn`, one
/// call per case), several from one 64-bit random word: the draw is the
/// high half of `word * n` and the low half is the word for the next draw
/// (Lemire's batched ranged draws, without the rejection step). Each draw
/// consumes log2(n) of the word's bits; a fresh word is taken once the
/// product of the bounds would pass 2^32, so every draw is as close to
/// uniform as Go's 32-bit `cheaprandn` (bias below n / 2^32). Selects of
/// up to 12 cases take one word.
#[cfg_attr(loom, allow(dead_code))]
struct PollRand {
    word: u64,
    /// Product of the bounds drawn from `word` so far.
    used: u64,
}

impl PollRand {
    fn new() -> PollRand {
        PollRand { word: 0, used: u64::MAX }
    }

    #[cfg(not(loom))]
    #[inline(always)]
    fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        self.used = self.used.saturating_mul(n);
        if self.used > 1 << 32 {
            self.word = cheaprand64();
            self.used = n;
        }
        let m = self.word as u128 * n as u128;
        self.word = m as u64;
        (m >> 64) as usize
    }

    /// Under loom the poll order is fixed (loom explores interleavings,
    /// not random choices).
    #[cfg(loom)]
    fn below(&mut self, _n: usize) -> usize {
        0
    }
}

/// Go's poll order: a uniformly random permutation of `0..N` (inside-out
/// Fisher–Yates).
fn pollorder<const N: usize>() -> [usize; N] {
    let mut order = [0usize; N];
    let mut rand = PollRand::new();
    for i in 0..N {
        let j = rand.below(i + 1);
        order[i] = order[j];
        order[j] = i;
    }
    order
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
    let pollorder = pollorder::<N>();

    // Pass 0 (see the module documentation): the first ready case in poll
    // order, one channel locked at a time. Nothing ready proves nothing,
    // except with one case, whose lock is a snapshot already. A select
    // that would block may spin a little and poll again (`may_spin`).
    let mut spins = 0;
    loop {
        for &i in &pollorder {
            match cases[i].poll_alone() {
                Poll::Pending => {}
                Poll::Ready(w) => {
                    if let Some(w) = w {
                        w.wake();
                    }
                    return Some(i);
                }
                Poll::SendClosed => panic!("send on closed channel"),
            }
        }
        if matches!(block, Block::No) || !super::hchan::may_spin(&mut spins) {
            break;
        }
        super::hchan::spin_round(|| cases.iter().any(|c| c.maybe_ready()));
    }
    if N == 1 && matches!(block, Block::No) {
        return None;
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{pollorder, PollRand};

    /// Every permutation of 4 cases is about equally likely (so is which
    /// of any subset of ready cases comes first), and so are the draws of
    /// a select too large for one random word.
    #[test]
    fn pollorder_is_uniform() {
        const ROUNDS: usize = 240_000;
        let mut counts = std::collections::HashMap::new();
        for _ in 0..ROUNDS {
            *counts.entry(pollorder::<4>()).or_insert(0usize) += 1;
        }
        assert_eq!(counts.len(), 24, "{counts:?}");
        // Expected 10,000 each, standard deviation about 98.
        for (perm, &c) in &counts {
            assert!((9_000..=11_000).contains(&c), "{perm:?} drawn {c} times of {ROUNDS}");
        }

        let mut first = [0usize; 16];
        let mut last = [0usize; 16];
        for _ in 0..ROUNDS {
            let order = pollorder::<16>();
            first[order[0]] += 1;
            last[order[15]] += 1;
        }
        for (i, (&f, &l)) in first.iter().zip(&last).enumerate() {
            // Expected 15,000 each, standard deviation about 119.
            assert!((13_500..=16_500).contains(&f), "case {i} first {f} times: {first:?}");
            assert!((13_500..=16_500).contains(&l), "case {i} last {l} times: {last:?}");
        }
    }

    #[test]
    fn pollrand_stays_in_range() {
        let mut r = PollRand::new();
        for n in (1..200).chain([1 << 20, usize::MAX >> 1]) {
            assert!(r.below(n) < n);
        }
    }
}
