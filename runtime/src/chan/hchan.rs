//! `RawChan<T>`: the channel protocol core (Go's `hchan`, `sudog`,
//! `waitq`, `chansend`, `chanrecv`, `closechan`), free of scheduler types
//! so that the loom models in `loom-tests/` run this exact code with loom
//! threads as waiters. The design and invariants are in the `chan` module
//! documentation.

use std::cell::Cell;
use std::collections::VecDeque;
use std::ptr;

use super::super::sync::lock::RawLock;
use super::super::sync::wake::{self, Reason, Waker};
use super::timer::{self, Deadline};
use crate::loom::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use crate::loom::sync::UnsafeCell;

/// The case index a timer reports when it wins the claim.
pub const TIMEOUT: usize = usize::MAX;

/// The claim word and wake-up record shared by every waiter record of one
/// blocked operation (Go's `g.selectDone` plus `g.param` and
/// `sudog.success`). It lives on the blocked party's stack.
///
/// Whoever wins [`claim`](Sel::claim) (a peer that found one of our
/// sudogs in a queue, `close`, or the timeout timer) is the only party
/// that completes the operation: it writes the hand-off, then
/// [`complete`](Sel::complete)s and wakes us. Everyone else skips our
/// sudogs. So every blocked operation is completed exactly once.
#[derive(Debug)]
pub struct Sel {
    /// 0 = waiting, 1 = claimed. CAS'd by would-be completers.
    done: AtomicU32,
    /// Set (release) by the claimer as its last access to this record.
    woken: AtomicBool,
    /// `(case, ok)`: which case completed, and whether it carried a value
    /// (false: the channel was closed, or `case == TIMEOUT`). Written by
    /// the claimer before `woken`, read by the owner after it.
    result: UnsafeCell<(usize, bool)>,
    /// Taken by the claimer.
    waker: UnsafeCell<Option<Waker>>,
}

impl Default for Sel {
    fn default() -> Self {
        Sel::new()
    }
}

impl Sel {
    /// A record for the calling goroutine or thread, not yet claimed.
    pub fn new() -> Sel {
        Sel {
            done: AtomicU32::new(0),
            woken: AtomicBool::new(false),
            result: UnsafeCell::new((TIMEOUT, false)),
            waker: UnsafeCell::new(Some(Waker::current())),
        }
    }

    /// Go's `selectDone` CAS: true for exactly one caller, who must then
    /// call [`complete`](Sel::complete) and wake the owner.
    pub fn claim(&self) -> bool {
        self.done.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Records the outcome and takes the waker. Only the claimer calls it,
    /// once; the owner is woken by [`Wakeup::wake`].
    pub fn complete(&self, case: usize, ok: bool) -> Wakeup {
        // SAFETY: the claim gives the caller exclusive access to `result`
        // and `waker` until it sets `woken`; the owner reads them only after.
        self.result.with_mut(|r| unsafe { *r = (case, ok) });
        // SAFETY: as above.
        let waker = self.waker.with_mut(|w| unsafe { (*w).take() }).expect("gort: waiter completed twice");
        Wakeup { woken: &self.woken, waker }
    }

    /// `(case, ok)` once woken: the owner calls it after `park` returned.
    pub fn result(&self) -> (usize, bool) {
        debug_assert!(self.woken.load(Ordering::Relaxed));
        // SAFETY: `woken` was loaded with acquire by `park`, so the
        // claimer's write happened before and nobody writes it any more.
        self.result.with(|r| unsafe { *r })
    }

    /// Blocks until claimed. `unlock` releases the caller's locks once the
    /// caller can no longer miss its wake-up; `deadline`, if any, is armed
    /// at that point too, so a timeout can only claim an owner that is
    /// really parked (a goroutine must not be readied before it switched
    /// out). Returns the result.
    pub fn park(&self, reason: Reason, unlock: &mut dyn FnMut(), deadline: Option<Deadline>) -> (usize, bool) {
        let mut key = None;
        wake::park(
            reason,
            &mut || {
                if let Some(d) = deadline {
                    key = Some(timer::arm(d, self));
                }
                unlock();
            },
            &self.woken,
        );
        let r = self.result();
        if let Some(k) = key {
            if r.0 != TIMEOUT {
                timer::disarm(k);
            }
        }
        r
    }
}

/// The right to wake a claimed owner. Holds a pointer into the owner's
/// stack, valid until [`wake`](Wakeup::wake) stores `woken`.
#[must_use]
#[derive(Debug)]
pub struct Wakeup {
    woken: *const AtomicBool,
    waker: Waker,
}

impl Wakeup {
    /// Publishes the outcome and readies the owner. Call it after releasing
    /// channel locks (Go's `goready` after `unlockf`).
    pub fn wake(self) {
        // SAFETY: the owner cannot return before it sees `woken`, so the
        // record is live here; this store is our last access to it.
        unsafe { (*self.woken).store(true, Ordering::Release) };
        self.waker.wake();
    }
}

/// A waiter record in a channel queue (Go's `sudog`), on the blocked
/// party's stack. Links are touched only under the channel's lock; `elem`
/// by the owner before it is queued and after it is woken, and by its
/// claimer in between.
#[derive(Debug)]
pub struct Sudog<T> {
    sel: Cell<*const Sel>,
    case: Cell<usize>,
    next: Cell<*const Sudog<T>>,
    prev: Cell<*const Sudog<T>>,
    queued: Cell<bool>,
    /// A sender's value, or the slot a receiver's value lands in.
    elem: UnsafeCell<Option<T>>,
}

impl<T> Sudog<T> {
    /// A record holding `elem` (`Some(v)` for a sender, `None` for a receiver).
    pub fn new(elem: Option<T>) -> Sudog<T> {
        Sudog {
            sel: Cell::new(ptr::null()),
            case: Cell::new(0),
            next: Cell::new(ptr::null()),
            prev: Cell::new(ptr::null()),
            queued: Cell::new(false),
            elem: UnsafeCell::new(elem),
        }
    }

    /// Takes the value out. The owner calls it when not queued (before
    /// enqueueing, or once woken or dequeued again under the lock).
    pub fn take(&self) -> Option<T> {
        // SAFETY: the owner is the only party touching `elem` outside the
        // claim window (see the type's doc).
        self.elem.with_mut(|e| unsafe { (*e).take() })
    }

    /// Puts a value back (a send case that found nowhere to put it).
    pub(crate) fn put(&self, v: T) {
        // SAFETY: as `take`.
        self.elem.with_mut(|e| unsafe { *e = Some(v) });
    }

    fn sel(&self) -> &Sel {
        // SAFETY: a queued sudog's `sel` points at its owner's record,
        // which lives at least as long as the sudog is queued or claimed.
        unsafe { &*self.sel.get() }
    }
}

/// Go's `waitq`: a FIFO of sudogs, under the channel lock.
#[derive(Debug)]
struct WaitQ<T> {
    first: *const Sudog<T>,
    last: *const Sudog<T>,
}

impl<T> WaitQ<T> {
    const fn new() -> Self {
        WaitQ { first: ptr::null(), last: ptr::null() }
    }

    fn is_empty(&self) -> bool {
        self.first.is_null()
    }

    fn enqueue(&mut self, sg: &Sudog<T>) {
        sg.next.set(ptr::null());
        sg.prev.set(self.last);
        sg.queued.set(true);
        let p: *const Sudog<T> = sg;
        if self.last.is_null() {
            self.first = p;
        } else {
            // SAFETY: queued sudogs are live (their owners are blocked).
            unsafe { (*self.last).next.set(p) };
        }
        self.last = p;
    }

    /// Go's `dequeue`: pops sudogs until one whose claim we win. A sudog
    /// whose claim is lost (its select completed elsewhere, or it timed
    /// out) is just unlinked; its owner sees `queued == false` later.
    fn dequeue(&mut self) -> Option<&Sudog<T>> {
        loop {
            // SAFETY: queued sudogs are live until claimed and woken, which
            // needs this lock (held by our caller) or their own claim.
            let sg = unsafe { self.first.as_ref()? };
            self.first = sg.next.get();
            if self.first.is_null() {
                self.last = ptr::null();
            } else {
                // SAFETY: as above.
                unsafe { (*self.first).prev.set(ptr::null()) };
            }
            sg.next.set(ptr::null());
            sg.queued.set(false);
            if sg.sel().claim() {
                return Some(sg);
            }
        }
    }

    /// Go's `dequeueSudoG`: unlinks `sg` if it is still queued.
    fn remove(&mut self, sg: &Sudog<T>) {
        if !sg.queued.get() {
            return;
        }
        sg.queued.set(false);
        let (prev, next) = (sg.prev.get(), sg.next.get());
        if prev.is_null() {
            self.first = next;
        } else {
            // SAFETY: neighbours in the queue are live queued sudogs.
            unsafe { (*prev).next.set(next) };
        }
        if next.is_null() {
            self.last = prev;
        } else {
            // SAFETY: as above.
            unsafe { (*next).prev.set(prev) };
        }
        sg.next.set(ptr::null());
        sg.prev.set(ptr::null());
    }
}

/// Everything under the channel lock.
#[derive(Debug)]
struct State<T> {
    /// The ring buffer (capacity `cap`, never grown).
    buf: VecDeque<T>,
    recvq: WaitQ<T>,
    sendq: WaitQ<T>,
}

/// Why a send could not complete at once.
#[derive(Debug, PartialEq, Eq)]
pub enum SendFail<T> {
    /// The buffer is full and no receiver waits (the value is returned).
    Full(T),
    /// The channel is closed (the value is returned).
    Closed(T),
}

/// Why a receive could not complete at once.
#[derive(Debug, PartialEq, Eq)]
pub enum RecvFail {
    /// Nothing buffered and no sender waits.
    Empty,
}

/// Whether a blocking channel operation that found nothing ready may spin
/// one more round ([`spin_round`]) and poll again instead of parking now
/// (counting the round in `spins`). As Go's mutex spins
/// (`sync_runtime_canSpin`): on a multicore machine with GOMAXPROCS > 1,
/// a few rounds, and only while nothing else could run on this thread.
///
/// Go parks at once. But where Go's scheduler delays a woken goroutine
/// (it waits in the waker's P's `runnext`), so that a sender woken by a
/// receiver draining a full channel finds many free slots when it runs,
/// gort wakes it on its own thread at once, and each value would cost a
/// cross-thread wake-up. A short spin on the other side of that exchange
/// avoids the park.
#[cfg(not(loom))]
pub(crate) fn may_spin(spins: &mut u32) -> bool {
    const ROUNDS: u32 = 8;
    if *spins >= ROUNDS || crate::sched::proc::gomaxprocs() < 2 || !crate::sched::proc::nothing_else_to_run() {
        return false;
    }
    *spins += 1;
    true
}

/// Under loom the models park at once (the spin is a performance
/// heuristic: the protocol is the same either way).
#[cfg(loom)]
pub(crate) fn may_spin(_: &mut u32) -> bool {
    false
}

/// One round of that spin: up to 200 pause instructions, ending early once
/// `ready()` says polling again may succeed.
pub(crate) fn spin_round(ready: impl Fn() -> bool) {
    for _ in 0..200 {
        if ready() {
            break;
        }
        std::hint::spin_loop();
    }
}

/// Go's `hchan`: a lock, a ring buffer and two FIFO wait queues.
#[derive(Debug)]
pub struct RawChan<T> {
    lock: RawLock,
    cap: usize,
    /// Written under the lock; read without it by `is_closed`.
    closed: AtomicBool,
    /// The number of buffered values, written under the lock; read without
    /// it by a sender spinning for room (`send_until`).
    qcount: AtomicUsize,
    state: UnsafeCell<State<T>>,
}

// SAFETY: values of type T move between threads through the channel (hence
// `T: Send`); all shared mutable state is behind `lock` or atomic.
unsafe impl<T: Send> Send for RawChan<T> {}
// SAFETY: as above; `&RawChan` only gives access through the lock.
unsafe impl<T: Send> Sync for RawChan<T> {}

impl<T> RawChan<T> {
    /// A channel with room for `cap` buffered values (0: unbuffered).
    pub fn new(cap: usize) -> RawChan<T> {
        RawChan {
            lock: RawLock::new(),
            cap,
            closed: AtomicBool::new(false),
            qcount: AtomicUsize::new(0),
            state: UnsafeCell::new(State {
                buf: VecDeque::with_capacity(cap),
                recvq: WaitQ::new(),
                sendq: WaitQ::new(),
            }),
        }
    }

    /// The buffer capacity.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Whether `close` has run.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The number of buffered values.
    pub fn len(&self) -> usize {
        self.lock.lock();
        let n = self.with_state(|st| st.buf.len());
        self.lock.unlock();
        n
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sort key for select's lock order (Go's `sortkey`).
    pub(crate) fn key(&self) -> usize {
        self as *const Self as usize
    }

    pub(crate) fn lock(&self) {
        self.lock.lock();
    }

    pub(crate) fn unlock(&self) {
        self.lock.unlock();
    }

    /// Runs `f` on the locked state. The caller holds `lock`; `f` must not
    /// call back into `with_state`.
    #[inline]
    fn with_state<R>(&self, f: impl FnOnce(&mut State<T>) -> R) -> R {
        // SAFETY: the caller holds `lock`, which serialises all access to
        // `state`, and no `with_state` nests inside another.
        self.state.with_mut(|st| f(unsafe { &mut *st }))
    }

    /// Send under the lock, without blocking: Go's `chansend` up to the
    /// park. A waiting receiver gets `v` directly (its sudog's slot) and
    /// must be woken by the caller after unlocking.
    pub(crate) fn send_locked(&self, v: T) -> Result<Option<Wakeup>, SendFail<T>> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(SendFail::Closed(v));
        }
        let cap = self.cap;
        self.with_state(|st| {
            if let Some(sg) = st.recvq.dequeue() {
                sg.put(v);
                return Ok(Some(sg.sel().complete(sg.case.get(), true)));
            }
            if st.buf.len() < cap {
                st.buf.push_back(v);
                self.qcount.store(st.buf.len(), Ordering::Relaxed);
                return Ok(None);
            }
            Err(SendFail::Full(v))
        })
    }

    /// Receive under the lock, without blocking: Go's `chanrecv` up to the
    /// park. `Ok((None, None))` means closed and drained.
    pub(crate) fn recv_locked(&self) -> Result<(Option<T>, Option<Wakeup>), RecvFail> {
        let closed = self.closed.load(Ordering::Relaxed);
        self.with_state(|st| {
            if !closed {
                if let Some(sg) = st.sendq.dequeue() {
                    // Go's `recv`: unbuffered, take the sender's value;
                    // buffered (so full), take the head and queue the
                    // sender's value at the tail.
                    let sv = sg.take().expect("gort: sender without a value");
                    let v = match st.buf.pop_front() {
                        Some(head) => {
                            st.buf.push_back(sv);
                            head
                        }
                        None => sv,
                    };
                    return Ok((Some(v), Some(sg.sel().complete(sg.case.get(), true))));
                }
            }
            match st.buf.pop_front() {
                Some(v) => {
                    self.qcount.store(st.buf.len(), Ordering::Relaxed);
                    Ok((Some(v), None))
                }
                None if closed => Ok((None, None)),
                None => Err(RecvFail::Empty),
            }
        })
    }

    /// Queues `sg` (owned by a blocked party whose record is `sel`) as a
    /// sender (`send = true`) or receiver for case `case`. Under the lock.
    pub(crate) fn enqueue(&self, sg: &Sudog<T>, sel: &Sel, case: usize, send: bool) {
        sg.sel.set(sel);
        sg.case.set(case);
        self.with_state(|st| if send { st.sendq.enqueue(sg) } else { st.recvq.enqueue(sg) });
    }

    /// Unlinks `sg` if still queued. Under the lock.
    pub(crate) fn dequeue_sudog(&self, sg: &Sudog<T>, send: bool) {
        self.with_state(|st| if send { st.sendq.remove(sg) } else { st.recvq.remove(sg) });
    }

    /// Non-blocking send.
    pub fn try_send(&self, v: T) -> Result<(), SendFail<T>> {
        self.lock.lock();
        let r = self.send_locked(v);
        self.lock.unlock();
        r.map(|w| w.map_or((), Wakeup::wake))
    }

    /// Non-blocking receive: `Ok(None)` once closed and drained.
    pub fn try_recv(&self) -> Result<Option<T>, RecvFail> {
        self.lock.lock();
        let r = self.recv_locked();
        self.lock.unlock();
        r.map(|(v, w)| {
            if let Some(w) = w {
                w.wake();
            }
            v
        })
    }

    /// Blocking send (Go's `chansend` with `block = true`), giving up at
    /// `deadline`. `Err(Closed(v))` if the channel is or gets closed
    /// (the caller panics), `Err(Full(v))` on timeout.
    pub fn send_until(&self, v: T, deadline: Option<Deadline>) -> Result<(), SendFail<T>> {
        let mut v = v;
        let mut spins = 0;
        let v = loop {
            self.lock.lock();
            match self.send_locked(v) {
                Ok(w) => {
                    self.lock.unlock();
                    if let Some(w) = w {
                        w.wake();
                    }
                    return Ok(());
                }
                Err(SendFail::Full(back)) if self.spin_for_room(&mut spins) => v = back,
                Err(SendFail::Full(v)) => break v,
                Err(e) => {
                    self.lock.unlock();
                    return Err(e);
                }
            }
        };
        let sel = Sel::new();
        let sg = Sudog::new(Some(v));
        self.enqueue(&sg, &sel, 0, true);
        let (case, ok) = sel.park(Reason::ChanSend, &mut || self.lock.unlock(), deadline);
        if ok {
            return Ok(());
        }
        if case == TIMEOUT {
            self.lock.lock();
            self.dequeue_sudog(&sg, true);
            self.lock.unlock();
            return Err(SendFail::Full(sg.take().expect("gort: timed-out sender lost its value")));
        }
        Err(SendFail::Closed(sg.take().expect("gort: sender woken by close lost its value")))
    }

    /// Called with the lock held on a full buffer: either says to park
    /// (false, the lock still held: nothing changed since the poll), or
    /// unlocks and spins a round ([`spin_round`]) until a receiver may have
    /// made room, and says to retry (true). Only when no sender is parked,
    /// so parked senders keep their FIFO turn.
    fn spin_for_room(&self, spins: &mut u32) -> bool {
        if self.cap == 0 || self.with_state(|st| !st.sendq.is_empty()) || !may_spin(spins) {
            return false;
        }
        self.lock.unlock();
        spin_round(|| self.maybe_ready(true));
        true
    }

    /// A hint read without the lock: whether a receive (`send`: a send)
    /// might complete now from the buffer, or the channel is closed.
    pub(crate) fn maybe_ready(&self, send: bool) -> bool {
        let n = self.qcount.load(Ordering::Relaxed);
        (if send { n < self.cap } else { n > 0 }) || self.closed.load(Ordering::Relaxed)
    }

    /// Blocking receive (Go's `chanrecv` with `block = true`), giving up
    /// at `deadline` (`Err(Empty)`). `Ok(None)` once closed and drained.
    pub fn recv_until(&self, deadline: Option<Deadline>) -> Result<Option<T>, RecvFail> {
        self.lock.lock();
        match self.recv_locked() {
            Ok((v, w)) => {
                self.lock.unlock();
                if let Some(w) = w {
                    w.wake();
                }
                return Ok(v);
            }
            Err(RecvFail::Empty) => {}
        }
        let sel = Sel::new();
        let sg = Sudog::new(None);
        self.enqueue(&sg, &sel, 0, false);
        let (case, ok) = sel.park(Reason::ChanReceive, &mut || self.lock.unlock(), deadline);
        if case == TIMEOUT {
            self.lock.lock();
            self.dequeue_sudog(&sg, false);
            self.lock.unlock();
            return Err(RecvFail::Empty);
        }
        Ok(if ok { sg.take() } else { None })
    }

    /// Go's `closechan`: marks the channel closed and completes every
    /// waiter — receivers get nothing, senders are told to panic. Returns
    /// false (and changes nothing) if it was already closed.
    pub fn close(&self) -> bool {
        self.lock.lock();
        if self.closed.load(Ordering::Relaxed) {
            self.lock.unlock();
            return false;
        }
        self.closed.store(true, Ordering::Release);
        let wakeups = self.with_state(|st| {
            let mut list = Vec::new();
            while let Some(sg) = st.recvq.dequeue() {
                list.push(sg.sel().complete(sg.case.get(), false));
            }
            while let Some(sg) = st.sendq.dequeue() {
                list.push(sg.sel().complete(sg.case.get(), false));
            }
            list
        });
        self.lock.unlock();
        for w in wakeups {
            w.wake();
        }
        true
    }

    /// Whether any receiver waits (tests only).
    pub fn has_receivers(&self) -> bool {
        self.lock.lock();
        let r = self.with_state(|st| !st.recvq.is_empty());
        self.lock.unlock();
        r
    }

    /// Whether any sender waits (tests only).
    pub fn has_senders(&self) -> bool {
        self.lock.lock();
        let r = self.with_state(|st| !st.sendq.is_empty());
        self.lock.unlock();
        r
    }
}
