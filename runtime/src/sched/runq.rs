//! Local run queue: Go's per-P `runq` ring plus the `runnext` slot.
//!
//! This is `runqput`, `runqputslow`, `runqputbatch`, `runqget`, `runqdrain`,
//! `runqgrab`, `runqsteal` and `runqempty` from Go's `proc.go`, line for line,
//! generic over the item type so the scheduler can queue `*mut G` and the
//! tests can queue `Box<u64>`.
//!
//! # The algorithm
//!
//! A P owns a ring of [`RunQ::CAPACITY`] slots (256, as in Go; 4 under
//! `cfg(loom)` so the models reach the wrap-around and overflow cases) indexed
//! by two free-running `u32` counters: the live items are the slots
//! `head..tail` (mod capacity). Counters wrap at 2³², a multiple of the
//! capacity, so `counter % CAPACITY` stays continuous across the wrap.
//!
//! * **put** (owner): write the slot at `tail`, then publish with a
//!   store-release of `tail + 1`. If the ring is full, **put_slow** takes the
//!   older half of the ring (128 items) plus the new item by CAS-ing `head`
//!   forward and hands the 129 items back to the caller for the global queue.
//!   If the CAS loses to a thief, the ring is no longer full: retry the put.
//! * **get** (owner): `runnext` first, then read the slot at `head` and CAS
//!   `head` to `head + 1`; retry on a lost CAS.
//! * **steal** (the thief, which owns *another* queue): read `head` and
//!   `tail`, copy `n - n/2` slots from the victim straight into the thief's
//!   own ring *beyond its tail* (invisible to everyone until the thief
//!   publishes its tail), then CAS the victim's `head` forward. A lost CAS
//!   means someone else consumed some of those items first: discard the copies
//!   (they are still beyond the thief's tail) and retry. When the victim's
//!   ring is empty the thief may take `runnext` instead, after backing off
//!   3µs if the victim is running a goroutine (it is likely about to run that
//!   very `runnext` itself; stealing it would just bounce the G between Ps).
//! * **runnext** is one extra slot the owner fills when a G readies another G
//!   (`put(g, true)`): that G runs next and inherits the time slice, so a
//!   communicating pair behaves like one G. Only the owner makes it non-null;
//!   the owner and thieves CAS it back to null to take it.
//!
//! # Who touches what
//!
//! | field     | written by                                  | read by                     |
//! |-----------|---------------------------------------------|-----------------------------|
//! | `tail`    | owner only (store-release)                  | owner (plain), thieves (acquire) |
//! | `ring`    | owner only, and only outside `head..tail`   | owner, thieves (possibly stale, see below) |
//! | `head`    | CAS-release by owner *and* thieves          | everyone (acquire)          |
//! | `runnext` | owner: null → item; owner and thieves: item → null (CAS) | everyone       |
//!
//! A consumer reads a slot *before* its CAS on `head` commits the read. If
//! it lost the race, the slot may meanwhile have been overwritten by the
//! owner (the ring wrapped): that read is stale and is thrown away with the
//! failed CAS. Go tolerates this as a benign race on a plain word; in Rust a
//! concurrent plain read and write is undefined behaviour, so the slots are
//! `AtomicPtr`s accessed with `Relaxed` (on every target we run on this is the
//! same instruction as a plain load/store).
//!
//! # Memory orderings (Go's, one for one)
//!
//! * `tail` store-release (Go `StoreRel`) ⟶ thief's `tail` load-acquire
//!   (`LoadAcq`): the slot writes, and everything the owner did to the G before
//!   queueing it, are visible to a thief that sees the new tail. A thief that
//!   steals into its own ring passes this on with its own tail store-release.
//! * `head` CAS-release (Go `CasRel`) ⟶ owner's `head` load-acquire: a
//!   consumer's read of a slot happens-before the owner reuses that slot, so
//!   the read cannot see the owner's later write. (Later CASes on `head` are
//!   read-modify-writes, so they continue the release sequence.) The owner's
//!   own `tail` read is `Relaxed`: it is the only writer.
//! * `runnext` CAS / swap are `SeqCst`, where Go uses its full `Cas`. The
//!   queue itself only needs acquire-release there (a successful CAS to null
//!   reads the owner's release of the item); `SeqCst` keeps the translation
//!   literal. Plain reads of `runnext` in Go are `Relaxed` loads here: the
//!   value is only ever used as the expected value of a CAS.
//! * `is_empty`/`len` use acquire loads (Go's `atomic.Load`) and Go's
//!   re-read-`tail` loop, so `is_empty` never reports empty spuriously.
//!
//! The queue gives no StoreLoad ordering: a scheduler that puts work and then
//! checks for spinning Ms (Go's "Worker thread parking/unparking" protocol)
//! must issue its own `SeqCst` fence between the two.
//!
//! # Rejected
//!
//! * **`UnsafeCell` slots read with plain loads** (Go's literal code): the
//!   stale read above would be a data race, i.e. UB, and loom would flag it.
//! * **tokio's packed `(steal, real)` head**, which lets a thief copy slots
//!   *after* claiming them and so never reads a stale slot: it would change
//!   Go's algorithm (and Go's `runqputslow` semantics); gort follows Go.
//! * **Separate `Local`/`Steal` handle types** (tokio): a P's queue is
//!   embedded in the P and its owner changes with `acquirep`/`releasep`, so
//!   single-ownership is a property of the P, not of a Rust borrow. Owner-only
//!   methods are `unsafe fn` instead, with the contract spelled out.
//! * **Cache-line padding** between `head` and `tail`: Go does not pad;
//!   measure before adding it.
//! * `put(g, true)` uses a `swap` where Go spins on a CAS of `runnext`: the
//!   loop is exactly a swap.
//!
//! Two deliberate departures from Go's letter: the spill is returned as a
//! `Vec` (129 pointers, allocated only on the overflow path) for the caller to
//! put on the global queue, instead of linking Gs through `schedlink` under
//! `sched.lock` here; and `steal` checks that its own ring has room for the
//! grab *before* copying into it (Go throws after), so a misuse panics without
//! having overwritten live slots.

// The scheduler core that calls this is being written alongside; until it
// lands, parts of the API only have callers in tests and loom models.

use std::ptr::{self, NonNull};

use crate::loom::sync::atomic::{
    AtomicPtr, AtomicU32,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
};

/// Slots in the ring (Go's `len(pp.runq)`).
#[cfg(not(loom))]
const RUNQ_SIZE: usize = 256;
/// Slots in the ring: small under loom so the models reach wrap-around.
#[cfg(loom)]
const RUNQ_SIZE: usize = 4;

const _: () = assert!(RUNQ_SIZE.is_power_of_two() && RUNQ_SIZE >= 2);

/// What `put_slow` takes from a full ring, and the most a steal takes.
const HALF: u32 = (RUNQ_SIZE / 2) as u32;

/// Ring slot of a free-running counter (Go's `i % uint32(len(pp.runq))`).
#[inline(always)]
fn slot(i: u32) -> usize {
    i as usize & (RUNQ_SIZE - 1)
}

/// A P's local run queue: a lock-free single-producer, multi-consumer ring of
/// [`RunQ::CAPACITY`] items plus the `runnext` slot.
///
/// Items are `NonNull<T>` (the scheduler queues `*mut G`). While an item is
/// in the queue the queue owns that pointer; it never dereferences it, and it
/// never frees it: dropping a non-empty queue leaks its items (and trips a
/// debug assertion).
///
/// `RunQ<T>` is `Send + Sync` for every `T` (it inherits both from its
/// atomics). That is sound because the queue only moves pointers between
/// threads and never touches a `T`; whoever dereferences an item taken from
/// the queue answers for `T` being safe to use on that thread.
pub struct RunQ<T> {
    /// Next slot to consume. CAS'd forward (release) by the owner (`get`,
    /// `put`'s spill, `drain`) and by thieves (`steal`); loaded with acquire.
    head: AtomicU32,
    /// Next slot to fill. Written only by the owner (store-release, after the
    /// slots are written); thieves load it with acquire.
    tail: AtomicU32,
    /// Written only by the owner, only at slots outside `head..tail`. Read by
    /// the owner and by thieves, possibly stale (see the module docs).
    ring: [AtomicPtr<T>; RUNQ_SIZE],
    /// The G to run next, or null. Only the owner sets it non-null; the owner
    /// and thieves take it with a CAS to null.
    runnext: AtomicPtr<T>,
}

impl<T> RunQ<T> {
    /// Number of slots in the ring (256; 4 under `cfg(loom)`). `runnext`
    /// holds one more item on top of these.
    #[cfg_attr(not(any(test, loom, feature = "internals")), allow(dead_code))]
    pub const CAPACITY: usize = RUNQ_SIZE;

    /// An empty queue.
    pub fn new() -> Self {
        RunQ {
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            ring: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            runnext: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Go's `runqput`: queues `g`.
    ///
    /// With `next == false`, `g` goes to the tail of the ring. With
    /// `next == true`, `g` goes into `runnext` and the previous `runnext` (if
    /// any) goes to the tail of the ring instead.
    ///
    /// When the ring is full this is Go's `runqputslow`: the older half of the
    /// ring (half of [`RunQ::CAPACITY`], from the head) and the item being
    /// put are taken out and returned, oldest first, for the caller to append
    /// to the global run queue; the ring is left half full. Otherwise returns
    /// `None`.
    ///
    /// # Safety
    ///
    /// Only the thread that currently owns the P may call this.
    pub unsafe fn put(&self, g: NonNull<T>, next: bool) -> Option<Vec<NonNull<T>>> {
        let mut g = g.as_ptr();
        if next {
            let old = self.runnext.swap(g, SeqCst);
            if old.is_null() {
                return None;
            }
            // Kick the old runnext out to the tail of the ring.
            g = old;
        }
        loop {
            let h = self.head.load(Acquire); // synchronize with consumers
            let t = self.tail.load(Relaxed); // we are the only writer
            if t.wrapping_sub(h) < RUNQ_SIZE as u32 {
                // Slot `t` is outside `head..tail`: nobody consumes it, only
                // stale readers may look at it (hence the atomic slot).
                self.ring[slot(t)].store(g, Relaxed);
                self.tail.store(t.wrapping_add(1), Release); // publish the item
                return None;
            }
            if let Some(batch) = self.put_slow(g, h, t) {
                return Some(batch);
            }
            // A thief took items first: the ring is no longer full.
        }
    }

    /// Go's `runqputslow`: moves the older half of a full ring plus `g` out,
    /// or returns `None` if a thief moved `head` first.
    fn put_slow(&self, g: *mut T, h: u32, t: u32) -> Option<Vec<NonNull<T>>> {
        let n = t.wrapping_sub(h) / 2;
        assert_eq!(n, HALF, "runqputslow: queue is not full");
        let mut batch = Vec::with_capacity(RUNQ_SIZE / 2 + 1);
        for i in 0..n {
            batch.push(self.ring[slot(h.wrapping_add(i))].load(Relaxed));
        }
        // Commit the consume; on failure the reads above may be stale.
        if self.head.compare_exchange(h, h.wrapping_add(n), Release, Relaxed).is_err() {
            return None;
        }
        batch.push(g);
        Some(batch.into_iter().map(|p| live(p)).collect())
    }

    /// Go's `runqputbatch`: moves items from the front of `items` to the tail
    /// of the ring, as many as fit, keeping their order. What did not fit is
    /// left in `items` (in order) for the caller to put on the global queue.
    /// Returns how many were queued. `runnext` is not touched.
    ///
    /// # Safety
    ///
    /// Only the thread that currently owns the P may call this.
    pub unsafe fn put_batch(&self, items: &mut Vec<NonNull<T>>) -> usize {
        if items.is_empty() {
            return 0;
        }
        let h = self.head.load(Acquire); // synchronize with consumers
        let t = self.tail.load(Relaxed); // we are the only writer
        let free = RUNQ_SIZE - t.wrapping_sub(h) as usize;
        let n = free.min(items.len());
        for (i, g) in items.drain(..n).enumerate() {
            self.ring[slot(t.wrapping_add(i as u32))].store(g.as_ptr(), Relaxed);
        }
        self.tail.store(t.wrapping_add(n as u32), Release); // publish them
        n
    }

    /// Go's `runqget`: takes `runnext` if set, else the item at the head of
    /// the ring. The flag is `inheritTime`: true for `runnext`, whose G should
    /// run in the rest of the current time slice rather than start a new one.
    ///
    /// # Safety
    ///
    /// Only the thread that currently owns the P may call this.
    pub unsafe fn get(&self) -> Option<(NonNull<T>, bool)> {
        let next = self.runnext.load(Relaxed);
        // Only the owner sets runnext non-null, so a failed CAS means a thief
        // took it: no need to retry.
        if !next.is_null() && self.runnext.compare_exchange(next, ptr::null_mut(), SeqCst, Relaxed).is_ok() {
            return Some((live(next), true));
        }
        loop {
            let h = self.head.load(Acquire); // synchronize with other consumers
            let t = self.tail.load(Relaxed); // we are the only writer
            if t == h {
                return None;
            }
            let g = self.ring[slot(h)].load(Relaxed);
            // Commit the consume.
            if self.head.compare_exchange(h, h.wrapping_add(1), Release, Relaxed).is_ok() {
                return Some((live(g), false));
            }
        }
    }

    /// Go's `runqdrain` (and what `p.destroy` moves to the global queue):
    /// takes everything, `runnext` first, then the ring oldest first. That is
    /// the order to run them in; `procresize` puts them at the head of the
    /// global queue in this order.
    ///
    /// # Safety
    ///
    /// Only the thread that currently owns the P may call this, or any thread
    /// while the P is stopped (no owner), provided the last owner's writes
    /// happen-before the call (as releasing/handing off a P guarantees).
    pub unsafe fn drain(&self) -> Vec<NonNull<T>> {
        let mut out = Vec::new();
        let next = self.runnext.load(Relaxed);
        if !next.is_null() && self.runnext.compare_exchange(next, ptr::null_mut(), SeqCst, Relaxed).is_ok() {
            out.push(live(next));
        }
        loop {
            let h = self.head.load(Acquire); // synchronize with other consumers
            let t = self.tail.load(Relaxed); // we are the only writer
            let n = t.wrapping_sub(h);
            if n == 0 {
                return out;
            }
            if n as usize > RUNQ_SIZE {
                continue; // inconsistent h and t
            }
            // Claim first, read after (as Go does): once head has moved past
            // them, no thief can take these items, and only we write slots.
            if self.head.compare_exchange(h, h.wrapping_add(n), Release, Relaxed).is_err() {
                continue;
            }
            out.reserve(n as usize);
            for i in 0..n {
                out.push(live(self.ring[slot(h.wrapping_add(i))].load(Relaxed)));
            }
            return out;
        }
    }

    /// Go's `runqsteal`: steals half (`n - n/2`) of `victim`'s ring into this
    /// queue and returns one of the stolen items (the last) to run now. If the
    /// victim's ring is empty and `steal_runnext` is set, takes the victim's
    /// `runnext` instead, first backing off for 3µs if `victim_running` (the
    /// victim's P is running a G that is not in a syscall: it may be about to
    /// run that `runnext` itself). Returns `None` if there was nothing to take.
    ///
    /// # Panics
    ///
    /// If this queue's ring holds more than half of [`RunQ::CAPACITY`]
    /// (Go throws "runqsteal: runq overflow"; the scheduler only steals when
    /// its own ring is empty).
    ///
    /// # Safety
    ///
    /// Only the thread that currently owns the P of `self` (the thief) may
    /// call this. `victim` may be any other queue, in any state.
    pub unsafe fn steal(&self, victim: &RunQ<T>, steal_runnext: bool, victim_running: bool) -> Option<NonNull<T>> {
        debug_assert!(!ptr::eq(self, victim), "runqsteal: stealing from self");
        let t = self.tail.load(Relaxed); // we are the only writer
        let h = self.head.load(Acquire);
        // Checked before grabbing (Go checks after): grabbed items are written
        // beyond our tail and must not land on live slots.
        assert!(t.wrapping_sub(h) <= HALF, "runqsteal: runq overflow (own ring more than half full)");
        let n = victim.grab(self, t, steal_runnext, victim_running);
        if n == 0 {
            return None;
        }
        let n = n - 1;
        let g = self.ring[slot(t.wrapping_add(n))].load(Relaxed);
        if n > 0 {
            self.tail.store(t.wrapping_add(n), Release); // publish the rest
        }
        Some(live(g))
    }

    /// Go's `runqgrab`: copies `n - n/2` items of `self` (the victim) into
    /// `into`'s ring starting at slot `into_tail`, commits by CAS-ing
    /// `self.head`, and returns how many. Falls back to `runnext`.
    ///
    /// Only the owner of `into` may call this, with `into_tail` its tail and
    /// at least `HALF` free slots there.
    fn grab(&self, into: &RunQ<T>, into_tail: u32, steal_runnext: bool, victim_running: bool) -> u32 {
        loop {
            let h = self.head.load(Acquire); // synchronize with other consumers
            let t = self.tail.load(Acquire); // synchronize with the producer
            let n = t.wrapping_sub(h);
            let n = n - n / 2;
            if n == 0 {
                if steal_runnext {
                    let next = self.runnext.load(Relaxed);
                    if !next.is_null() {
                        if victim_running {
                            // Give the victim a chance to run its runnext
                            // itself instead of bouncing the G between Ps.
                            backoff();
                        }
                        if self.runnext.compare_exchange(next, ptr::null_mut(), SeqCst, Relaxed).is_err() {
                            continue;
                        }
                        into.ring[slot(into_tail)].store(next, Relaxed);
                        return 1;
                    }
                }
                return 0;
            }
            if n > HALF {
                continue; // inconsistent h and t
            }
            for i in 0..n {
                // Possibly stale; only used if the CAS below succeeds. The
                // destination slots are beyond `into`'s tail: unpublished.
                let g = self.ring[slot(h.wrapping_add(i))].load(Relaxed);
                into.ring[slot(into_tail.wrapping_add(i))].store(g, Relaxed);
            }
            // Commit the consume.
            if self.head.compare_exchange(h, h.wrapping_add(n), Release, Relaxed).is_ok() {
                return n;
            }
        }
    }

    /// Approximate number of queued items, `runnext` included. Exact when
    /// called by the owner with no thief active; otherwise a snapshot that may
    /// already be stale.
    pub fn len(&self) -> usize {
        loop {
            let h = self.head.load(Acquire);
            let t = self.tail.load(Acquire);
            let next = self.runnext.load(Acquire);
            if t == self.tail.load(Acquire) {
                let ring = (t.wrapping_sub(h) as usize).min(RUNQ_SIZE);
                return ring + usize::from(!next.is_null());
            }
        }
    }

    /// Go's `runqempty`: whether neither the ring nor `runnext` holds an item.
    /// Never reports empty spuriously: it re-reads `tail` to rule out an item
    /// moving from `runnext` to the ring between the reads.
    pub fn is_empty(&self) -> bool {
        loop {
            let h = self.head.load(Acquire);
            let t = self.tail.load(Acquire);
            let next = self.runnext.load(Acquire);
            if t == self.tail.load(Acquire) {
                return h == t && next.is_null();
            }
        }
    }
}

impl<T> Default for RunQ<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for RunQ<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunQ")
            .field("head", &self.head.load(Relaxed))
            .field("tail", &self.tail.load(Relaxed))
            .field("runnext", &self.runnext.load(Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(all(debug_assertions, not(loom)))]
impl<T> Drop for RunQ<T> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            debug_assert!(self.is_empty(), "RunQ dropped while holding items (they leak)");
        }
    }
}

/// A pointer read from a slot that a committed consume (or `runnext` CAS)
/// proved live.
#[inline(always)]
fn live<T>(p: *mut T) -> NonNull<T> {
    debug_assert!(!p.is_null(), "runq: null item in a live slot");
    // SAFETY: only `NonNull` items are ever stored into `runnext` or into a
    // slot before it is published (`put`, `put_batch`, `grab` copying live
    // slots), and callers pass only values read from `runnext` by a
    // successful CAS or from slots inside `head..tail` whose consume committed.
    unsafe { NonNull::new_unchecked(p) }
}

/// Go's `usleep(3)` before stealing a running P's `runnext`.
#[inline]
fn backoff() {
    #[cfg(not(loom))]
    std::thread::sleep(std::time::Duration::from_micros(3));
    #[cfg(loom)]
    crate::loom::thread::yield_now();
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    const CAP: usize = RunQ::<u64>::CAPACITY;

    fn item(v: u64) -> NonNull<u64> {
        NonNull::from(Box::leak(Box::new(v)))
    }

    /// Takes back ownership of an item and returns its value.
    fn take(p: NonNull<u64>) -> u64 {
        // SAFETY: every item in these tests comes from `item` (a leaked Box)
        // and the queue hands each out once, so this is the only owner.
        *unsafe { Box::from_raw(p.as_ptr()) }
    }

    fn take_all(v: Vec<NonNull<u64>>) -> Vec<u64> {
        v.into_iter().map(take).collect()
    }

    #[test]
    fn send_sync() {
        fn check<X: Send + Sync>() {}
        check::<RunQ<u64>>();
        check::<RunQ<std::cell::Cell<u8>>>();
    }

    #[test]
    fn fifo_order() {
        let q = RunQ::new();
        assert!(q.is_empty());
        // Go around the ring a few times.
        for round in 0..5u64 {
            for i in 0..CAP as u64 {
                // SAFETY: this thread owns q.
                assert!(unsafe { q.put(item(round * 1000 + i), false) }.is_none());
            }
            assert_eq!(q.len(), CAP);
            for i in 0..CAP as u64 {
                // SAFETY: this thread owns q.
                let (g, inherit) = unsafe { q.get() }.unwrap();
                assert!(!inherit);
                assert_eq!(take(g), round * 1000 + i);
            }
            // SAFETY: this thread owns q.
            assert!(unsafe { q.get() }.is_none());
            assert!(q.is_empty());
        }
    }

    #[test]
    fn runnext_semantics() {
        let q = RunQ::new();
        // SAFETY (all unsafe calls in this test): this thread owns q.
        unsafe {
            assert!(q.put(item(1), false).is_none());
            assert!(q.put(item(2), true).is_none());
            assert_eq!(q.len(), 2);
            // 3 replaces 2 in runnext; 2 goes to the tail, behind 1.
            assert!(q.put(item(3), true).is_none());
            assert_eq!(q.len(), 3);
            let got: Vec<(u64, bool)> = std::iter::from_fn(|| q.get()).map(|(g, inherit)| (take(g), inherit)).collect();
            assert_eq!(got, [(3, true), (1, false), (2, false)]);
        }
        assert!(q.is_empty());
    }

    #[test]
    fn overflow_spills_half_plus_one() {
        let q = RunQ::new();
        // SAFETY (all unsafe calls in this test): this thread owns q.
        unsafe {
            for i in 0..CAP as u64 {
                assert!(q.put(item(i), false).is_none());
            }
            let spilled = take_all(q.put(item(999), false).expect("ring full: must spill"));
            assert_eq!(spilled.len(), CAP / 2 + 1);
            let want: Vec<u64> = (0..CAP as u64 / 2).chain([999]).collect();
            assert_eq!(spilled, want);
            // The newer half stays, in order.
            assert_eq!(q.len(), CAP / 2);
            let rest = take_all(q.drain());
            assert_eq!(rest, (CAP as u64 / 2..CAP as u64).collect::<Vec<_>>());

            // A runnext kick into a full ring spills the kicked item.
            for i in 0..CAP as u64 {
                assert!(q.put(item(i), false).is_none());
            }
            assert!(q.put(item(500), true).is_none());
            let spilled = take_all(q.put(item(501), true).expect("must spill"));
            assert_eq!(spilled.last(), Some(&500));
            assert_eq!(spilled.len(), CAP / 2 + 1);
            let rest = take_all(q.drain());
            assert_eq!(rest[0], 501);
            assert_eq!(rest.len(), CAP / 2 + 1);
        }
    }

    #[test]
    fn put_batch_fills_and_returns_rest() {
        let q = RunQ::new();
        // SAFETY (all unsafe calls in this test): this thread owns q.
        unsafe {
            assert_eq!(q.put_batch(&mut Vec::new()), 0);
            for i in 0..10 {
                q.put(item(i), false);
            }
            let mut batch: Vec<_> = (100..100 + CAP as u64).map(item).collect();
            assert_eq!(q.put_batch(&mut batch), CAP - 10);
            assert_eq!(take_all(batch), (100 + CAP as u64 - 10..100 + CAP as u64).collect::<Vec<_>>());
            let all = take_all(q.drain());
            let want: Vec<u64> = (0..10).chain(100..100 + CAP as u64 - 10).collect();
            assert_eq!(all, want);
        }
    }

    #[test]
    fn steal_takes_half() {
        let victim = RunQ::new();
        let thief = RunQ::new();
        // SAFETY (all unsafe calls in this test): this thread owns both
        // queues (it plays the victim's owner and the thief in turn).
        unsafe {
            for i in 0..7 {
                victim.put(item(i), false);
            }
            victim.put(item(70), true);
            // 7 in the ring: steal 7 - 3 = 4 (items 0..4), run the last.
            let g = thief.steal(&victim, true, false).unwrap();
            assert_eq!(take(g), 3);
            assert_eq!(thief.len(), 3);
            assert_eq!(victim.len(), 3 + 1);
            assert_eq!(take_all(thief.drain()), [0, 1, 2]);
            // 3 left: steal 2, run item 5, keep 4.
            assert_eq!(take(thief.steal(&victim, true, false).unwrap()), 5);
            assert_eq!(take_all(thief.drain()), [4]);
            // 1 left: steal it, nothing published.
            assert_eq!(take(thief.steal(&victim, true, false).unwrap()), 6);
            assert!(thief.is_empty());
            // Ring empty: without steal_runnext nothing is taken.
            assert!(thief.steal(&victim, false, true).is_none());
            assert_eq!(victim.len(), 1);
            // With it, runnext goes (after the back-off, since "running").
            assert_eq!(take(thief.steal(&victim, true, true).unwrap()), 70);
            assert!(victim.is_empty());
            assert!(thief.steal(&victim, true, true).is_none());
            assert!(thief.is_empty());
        }
    }

    #[test]
    fn steal_full_ring_takes_half() {
        let victim = RunQ::new();
        let thief = RunQ::new();
        // SAFETY (all unsafe calls in this test): this thread owns both.
        unsafe {
            // Offset the thief's indices so the stolen batch wraps its ring.
            for i in 0..CAP as u64 - 3 {
                thief.put(item(i), false);
            }
            drop(take_all(thief.drain()));
            for i in 0..CAP as u64 {
                victim.put(item(i), false);
            }
            let g = thief.steal(&victim, false, false).unwrap();
            assert_eq!(take(g), CAP as u64 / 2 - 1);
            assert_eq!(take_all(thief.drain()), (0..CAP as u64 / 2 - 1).collect::<Vec<_>>());
            assert_eq!(take_all(victim.drain()), (CAP as u64 / 2..CAP as u64).collect::<Vec<_>>());
        }
    }

    #[test]
    #[should_panic(expected = "runqsteal: runq overflow")]
    fn steal_into_busy_ring_panics() {
        let victim = RunQ::new();
        let thief = RunQ::new();
        // SAFETY: this thread owns both queues. The items leak on panic.
        unsafe {
            for i in 0..CAP as u64 / 2 + 1 {
                thief.put(item(i), false);
            }
            victim.put(item(0), false);
            thief.steal(&victim, false, false);
        }
    }

    #[test]
    fn drain_order() {
        let q = RunQ::new();
        // SAFETY (all unsafe calls in this test): this thread owns q.
        unsafe {
            assert!(q.drain().is_empty());
            for i in 0..5 {
                q.put(item(i), false);
            }
            q.get().map(|(g, _)| take(g));
            q.put(item(9), true);
            assert_eq!(take_all(q.drain()), [9, 1, 2, 3, 4]);
            assert!(q.is_empty());
            assert_eq!(q.len(), 0);
        }
    }

    /// One owner pushes (sometimes into runnext) and pops 1e6 items while
    /// three thieves steal from it and from each other; spills go through a
    /// mock global queue that the thieves refill their rings from with
    /// `put_batch`. Every item must come out exactly once.
    #[test]
    fn stress_every_item_exactly_once() {
        const N: usize = if cfg!(miri) { 2_000 } else { 1_000_000 };
        const THIEVES: usize = 3;

        struct Shared {
            queues: Vec<RunQ<u64>>,
            global: Mutex<VecDeque<NonNull<u64>>>,
            seen: Vec<AtomicU8>,
            done: AtomicUsize,
        }
        // SAFETY: the `NonNull<u64>`s in `global` are owned boxes, moved
        // between threads under the mutex; u64 is Send.
        unsafe impl Send for Shared {}
        // SAFETY: as above; all other fields are Sync.
        unsafe impl Sync for Shared {}

        impl Shared {
            fn run(&self, g: NonNull<u64>) {
                let v = take(g) as usize;
                let prev = self.seen[v].fetch_add(1, Ordering::Relaxed);
                assert_eq!(prev, 0, "item {v} seen twice");
                self.done.fetch_add(1, Ordering::Relaxed);
            }
            fn spill(&self, batch: Option<Vec<NonNull<u64>>>) {
                if let Some(b) = batch {
                    self.global.lock().unwrap().extend(b);
                }
            }
            fn take_global(&self, max: usize) -> Vec<NonNull<u64>> {
                let mut g = self.global.lock().unwrap();
                let n = max.min(g.len());
                g.drain(..n).collect()
            }
        }

        let sh = Arc::new(Shared {
            queues: (0..=THIEVES).map(|_| RunQ::new()).collect(),
            global: Mutex::new(VecDeque::new()),
            seen: (0..N).map(|_| AtomicU8::new(0)).collect(),
            done: AtomicUsize::new(0),
        });

        let thieves: Vec<_> = (1..=THIEVES)
            .map(|me| {
                let sh = sh.clone();
                std::thread::spawn(move || {
                    let own = &sh.queues[me];
                    let mut victim = 0;
                    let mut rounds = 0u64;
                    while sh.done.load(Ordering::Relaxed) < N {
                        rounds += 1;
                        // SAFETY: this thread owns queue `me`.
                        if let Some((g, _)) = unsafe { own.get() } {
                            sh.run(g);
                            continue;
                        }
                        let mut batch = sh.take_global(16);
                        if !batch.is_empty() {
                            // SAFETY: this thread owns queue `me`.
                            unsafe { own.put_batch(&mut batch) };
                            assert!(batch.is_empty(), "own ring was empty");
                            continue;
                        }
                        victim = (victim + 1) % sh.queues.len();
                        if victim == me {
                            continue;
                        }
                        // SAFETY: this thread owns queue `me`; its ring is
                        // empty (the get above failed and only we add to it).
                        if let Some(g) = unsafe { own.steal(&sh.queues[victim], rounds % 3 == 0, rounds % 5 == 0) } {
                            sh.run(g);
                        }
                    }
                })
            })
            .collect();

        // The owner of queue 0.
        let own = &sh.queues[0];
        for i in 0..N as u64 {
            // SAFETY: this thread owns queue 0.
            sh.spill(unsafe { own.put(item(i), i % 7 == 0) });
            if i % 3 == 0 {
                // SAFETY: this thread owns queue 0.
                if let Some((g, _)) = unsafe { own.get() } {
                    sh.run(g);
                }
            }
        }
        while sh.done.load(Ordering::Relaxed) < N {
            // SAFETY: this thread owns queue 0.
            if let Some((g, _)) = unsafe { own.get() } {
                sh.run(g);
            } else if let Some(g) = sh.take_global(1).pop() {
                sh.run(g);
            } else {
                std::thread::yield_now();
            }
        }
        for t in thieves {
            t.join().unwrap();
        }
        assert!(sh.seen.iter().all(|s| s.load(Ordering::Relaxed) == 1));
        assert!(sh.queues.iter().all(|q| q.is_empty()));
        assert!(sh.global.lock().unwrap().is_empty());
    }
}
