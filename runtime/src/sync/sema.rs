//! The semaphore table (Go's sema.go): sleep and wake-up for the
//! contended paths of `Mutex`, `RwLock` and `WaitGroup`.
//!
//! As Go says, don't think of these as semaphores: they are a way to
//! implement sleep and wake-up such that every sleep is paired with a
//! single wake-up, even if, due to races, the wake-up happens before the
//! sleep. The count is a `u32` owned by the primitive (`Mutex::sema`…);
//! waiters are kept off to the side in a fixed table of 251 roots hashed by
//! the count's address, so a primitive costs no more than its words.
//!
//! A root holds a runtime lock, `nwait` (waiters on this root, read
//! without the lock) and a list with one entry per distinct address; each
//! entry heads a FIFO of the other waiters on the same address (Go keeps
//! the distinct addresses in a treap; a list is enough while few
//! addresses collide in one root, and keeps the code short). Waiter
//! records live on the waiters' stacks.
//!
//! Missed wake-ups are ruled out Go's way: `semacquire` increments `nwait`
//! and then re-checks the count under the root lock before it queues;
//! `semrelease` increments the count and then reads `nwait` (both
//! sequentially consistent, a Dekker pair), taking the lock only when
//! someone may be waiting. With `handoff`, the releaser passes the count
//! straight to the woken waiter (a "ticket") and yields to it: Go's
//! starvation-mode direct hand-off.

use std::cell::Cell;
use std::ptr;

use super::lock::RawLock;
use super::wake::{self, Reason, Waker};
use crate::loom::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use crate::loom::sync::UnsafeCell;

/// Prime so as not to correlate with any user pattern (Go's).
#[cfg(not(loom))]
const SEMTABSIZE: usize = 251;
/// Under loom two roots keep the model small while still mixing addresses.
#[cfg(loom)]
const SEMTABSIZE: usize = 2;

/// A waiting goroutine or thread (Go's `sudog` as sema uses it).
struct Waiter {
    addr: usize,
    /// Top-level list of distinct addresses (heads only).
    next: Cell<*const Waiter>,
    prev: Cell<*const Waiter>,
    /// The FIFO of further waiters on the same address, from a head.
    waitlink: Cell<*const Waiter>,
    waittail: Cell<*const Waiter>,
    /// Set by a hand-off release: the count was passed to us.
    ticket: UnsafeCell<bool>,
    woken: AtomicBool,
    waker: UnsafeCell<Option<Waker>>,
}

impl Waiter {
    fn new(addr: usize) -> Waiter {
        Waiter {
            addr,
            next: Cell::new(ptr::null()),
            prev: Cell::new(ptr::null()),
            waitlink: Cell::new(ptr::null()),
            waittail: Cell::new(ptr::null()),
            ticket: UnsafeCell::new(false),
            woken: AtomicBool::new(false),
            waker: UnsafeCell::new(Some(Waker::current())),
        }
    }
}

/// Go's `semaRoot`.
struct Root {
    lock: RawLock,
    nwait: AtomicU32,
    /// Head and tail of the distinct-address list; under `lock`.
    list: UnsafeCell<(*const Waiter, *const Waiter)>,
}

impl Root {
    #[cfg(not(loom))]
    const fn new() -> Root {
        Root { lock: RawLock::new(), nwait: AtomicU32::new(0), list: UnsafeCell::new((ptr::null(), ptr::null())) }
    }

    #[cfg(loom)]
    fn new() -> Root {
        Root { lock: RawLock::new(), nwait: AtomicU32::new(0), list: UnsafeCell::new((ptr::null(), ptr::null())) }
    }

    /// Runs `f` on the list. The caller holds `lock`.
    fn with_list<R>(&self, f: impl FnOnce(&mut (*const Waiter, *const Waiter)) -> R) -> R {
        // SAFETY: the caller holds `lock`, which serialises list access.
        self.list.with_mut(|l| f(unsafe { &mut *l }))
    }

    /// Go's `semaRoot.queue`: adds `s` as a waiter on `s.addr`, at the back
    /// of that address's FIFO, or at the front if `lifo`. Under `lock`.
    fn queue(&self, s: &Waiter, lifo: bool) {
        self.with_list(|l| {
            let sp: *const Waiter = s;
            s.waitlink.set(ptr::null());
            s.waittail.set(ptr::null());
            let mut t = l.0;
            // SAFETY (whole block): queued waiters are live until dequeued
            // (their owners sleep until then), and we hold the root lock.
            unsafe {
                while let Some(tr) = t.as_ref() {
                    if tr.addr == s.addr {
                        if lifo {
                            // Replace t with s in the top-level list.
                            s.prev.set(tr.prev.get());
                            s.next.set(tr.next.get());
                            replace_links(l, tr, sp);
                            s.waitlink.set(t);
                            s.waittail.set(if tr.waittail.get().is_null() { t } else { tr.waittail.get() });
                            tr.waittail.set(ptr::null());
                            tr.next.set(ptr::null());
                            tr.prev.set(ptr::null());
                        } else {
                            match tr.waittail.get().as_ref() {
                                None => tr.waitlink.set(sp),
                                Some(tail) => tail.waitlink.set(sp),
                            }
                            tr.waittail.set(sp);
                        }
                        return;
                    }
                    t = tr.next.get();
                }
                // A new address: append to the top-level list.
                s.next.set(ptr::null());
                s.prev.set(l.1);
                match l.1.as_ref() {
                    None => l.0 = sp,
                    Some(last) => last.next.set(sp),
                }
                l.1 = sp;
            }
        })
    }

    /// Go's `semaRoot.dequeue`: removes the first waiter on `addr`. Under `lock`.
    fn dequeue(&self, addr: usize) -> Option<&Waiter> {
        self.with_list(|l| {
            // SAFETY (whole block): as in `queue`.
            unsafe {
                let mut s = l.0;
                while let Some(sr) = s.as_ref() {
                    if sr.addr == addr {
                        match sr.waitlink.get().as_ref() {
                            Some(t) => {
                                // t takes s's place in the top-level list.
                                t.prev.set(sr.prev.get());
                                t.next.set(sr.next.get());
                                replace_links(l, sr, t);
                                let tail = sr.waittail.get();
                                t.waittail.set(if ptr::eq(tail, t) { ptr::null() } else { tail });
                            }
                            None => {
                                let (p, n) = (sr.prev.get(), sr.next.get());
                                match p.as_ref() {
                                    None => l.0 = n,
                                    Some(p) => p.next.set(n),
                                }
                                match n.as_ref() {
                                    None => l.1 = p,
                                    Some(n) => n.prev.set(p),
                                }
                            }
                        }
                        sr.next.set(ptr::null());
                        sr.prev.set(ptr::null());
                        sr.waitlink.set(ptr::null());
                        sr.waittail.set(ptr::null());
                        return Some(&*s);
                    }
                    s = sr.next.get();
                }
                None
            }
        })
    }
}

/// Points `old`'s neighbours (and the list ends) at `new`, whose own
/// `prev`/`next` already copy `old`'s.
///
/// # Safety
///
/// `old`'s neighbours are live queued waiters; the root lock is held.
unsafe fn replace_links(l: &mut (*const Waiter, *const Waiter), old: &Waiter, new: *const Waiter) {
    // SAFETY: per the contract.
    unsafe {
        match old.prev.get().as_ref() {
            None => l.0 = new,
            Some(p) => p.next.set(new),
        }
        match old.next.get().as_ref() {
            None => l.1 = new,
            Some(n) => n.prev.set(new),
        }
    }
}

/// Go's `semTable`.
pub struct SemTable {
    roots: [Padded; SEMTABSIZE],
}

#[repr(align(64))]
struct Padded(Root);

// SAFETY: all shared state is atomic or under a root's lock; the raw
// pointers in the lists name waiters that are live while queued.
unsafe impl Sync for SemTable {}
// SAFETY: as above.
unsafe impl Send for SemTable {}

impl std::fmt::Debug for SemTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SemTable { .. }")
    }
}

#[cfg(not(loom))]
static SEMTABLE: SemTable = SemTable::new();

#[cfg(loom)]
loom::lazy_static! {
    static ref SEMTABLE: SemTable = SemTable::new();
}

impl Default for SemTable {
    fn default() -> Self {
        SemTable::new()
    }
}

impl SemTable {
    /// An empty table.
    #[cfg(not(loom))]
    pub const fn new() -> SemTable {
        // A `const` item is the way to repeat a non-`Copy` initialiser in an
        // array expression; each element is a fresh value.
        #[allow(clippy::declare_interior_mutable_const)]
        const R: Padded = Padded(Root::new());
        SemTable { roots: [R; SEMTABSIZE] }
    }

    /// An empty table.
    #[cfg(loom)]
    pub fn new() -> SemTable {
        SemTable { roots: std::array::from_fn(|_| Padded(Root::new())) }
    }

    fn root_for(&self, addr: &AtomicU32) -> &Root {
        let a = addr as *const AtomicU32 as usize;
        &self.roots[(a >> 3) % SEMTABSIZE].0
    }

    /// Go's `semacquire1`: waits until `*addr > 0`, then decrements it.
    /// `lifo` queues at the front (a waiter that already waited once).
    pub fn acquire(&self, addr: &AtomicU32, lifo: bool, reason: Reason) {
        if cansemacquire(addr) {
            return;
        }
        let root = self.root_for(addr);
        let a = addr as *const AtomicU32 as usize;
        loop {
            root.lock.lock();
            // Add ourselves to nwait to disable the "easy case" in release.
            root.nwait.fetch_add(1, Ordering::SeqCst);
            // Check cansemacquire to avoid a missed wake-up.
            if cansemacquire(addr) {
                root.nwait.fetch_sub(1, Ordering::SeqCst);
                root.lock.unlock();
                return;
            }
            // Any release after the check knows we are waiting (nwait).
            let w = Waiter::new(a);
            root.queue(&w, lifo);
            wake::park(reason, &mut || root.lock.unlock(), &w.woken);
            // SAFETY: the releaser wrote `ticket` before storing `woken`,
            // which `park` loaded with acquire; nobody writes it any more.
            let ticket = w.ticket.with(|t| unsafe { *t });
            if ticket || cansemacquire(addr) {
                return;
            }
        }
    }

    /// Go's `semrelease1`: increments `*addr` and wakes one waiter on it,
    /// if any. With `handoff`, passes the count straight to that waiter
    /// and yields to it. Returns whether it handed off.
    pub fn release(&self, addr: &AtomicU32, handoff: bool) -> bool {
        let root = self.root_for(addr);
        addr.fetch_add(1, Ordering::SeqCst);
        // Easy case: no waiters? Must come after the add (see `acquire`).
        // Read with an RMW rather than a load: in the Dekker pair with
        // `acquire` (its `nwait` increment, then its count check) the RMW
        // either reads that increment or is read by it, which orders the
        // two sides without relying on a total order of SeqCst loads
        // (which loom does not model).
        if root.nwait.fetch_add(0, Ordering::SeqCst) == 0 {
            return false;
        }
        root.lock.lock();
        if root.nwait.load(Ordering::SeqCst) == 0 {
            // The count was already consumed by another waiter.
            root.lock.unlock();
            return false;
        }
        let s = root.dequeue(addr as *const AtomicU32 as usize);
        if s.is_some() {
            root.nwait.fetch_sub(1, Ordering::SeqCst);
        }
        root.lock.unlock();
        let Some(s) = s else { return false };
        // `s` is ours alone now: dequeued, and asleep until `woken`.
        let ticket = handoff && cansemacquire(addr);
        // SAFETY: exclusive access (see above); the owner reads it after `woken`.
        s.ticket.with_mut(|t| unsafe { *t = ticket });
        // SAFETY: as above.
        let waker = s.waker.with_mut(|w| unsafe { (*w).take() }).expect("gort: semaphore waiter woken twice");
        s.woken.store(true, Ordering::Release);
        // `s` may be gone from here on.
        waker.wake();
        ticket
    }
}

/// Go's `cansemacquire`: decrements `*addr` if positive.
fn cansemacquire(addr: &AtomicU32) -> bool {
    let mut v = addr.load(Ordering::SeqCst);
    loop {
        if v == 0 {
            return false;
        }
        match addr.compare_exchange_weak(v, v - 1, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return true,
            Err(x) => v = x,
        }
    }
}

/// The process-wide table (Go's `semtable`).
pub fn semtable() -> &'static SemTable {
    &SEMTABLE
}

/// `semacquire` on the global table.
pub fn semacquire(addr: &AtomicU32, lifo: bool, reason: Reason) {
    semtable().acquire(addr, lifo, reason)
}

/// `semrelease` on the global table; yields to the woken waiter after a
/// hand-off (Go's `goyield`).
pub fn semrelease(addr: &AtomicU32, handoff: bool) {
    if semtable().release(addr, handoff) {
        #[cfg(not(loom))]
        wake::yield_now();
    }
}
