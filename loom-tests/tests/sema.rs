//! Loom models of the semaphore table (`gort::__loom::sync::sema`, Go's
//! sema.go `semacquire1`/`semrelease1`), with loom threads as waiters and
//! a two-root table so that addresses share roots.
//!
//! 1. `release_before_or_after_acquire`: a release may land before the
//!    acquirer checks, between its `nwait` increment and its queueing, or
//!    after it sleeps: the acquirer must always wake (no lost wake-up —
//!    loom would report a deadlock) and the count must end at 0.
//! 2. `two_acquirers_two_releasers`: every acquire is matched by one
//!    release, whatever the interleaving; the count ends at 0.
//! 3. `handoff_release`: a hand-off release gives the count to the woken
//!    waiter as a ticket; a barging acquirer cannot also take it.
//! 4. `two_addresses_one_root`: waiters on different addresses in the
//!    same root are not woken by each other's releases.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p gort-loom-tests --release --test sema`.
#![cfg(loom)]

use gort::__loom::sync::sema::semtable;
use gort::__loom::sync::wake::Reason;
use loom::sync::atomic::{AtomicU32, Ordering};
use loom::sync::Arc;
use loom::thread;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

#[test]
fn release_before_or_after_acquire() {
    model(|| {
        let sema = Arc::new(AtomicU32::new(0));
        let s = sema.clone();
        let t = thread::spawn(move || semtable().acquire(&s, false, Reason::Semacquire));
        semtable().release(&sema, false);
        t.join().unwrap();
        assert_eq!(sema.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn two_acquirers_two_releasers() {
    model(|| {
        let sema = Arc::new(AtomicU32::new(0));
        let (s1, s2, s3) = (sema.clone(), sema.clone(), sema.clone());
        let a1 = thread::spawn(move || semtable().acquire(&s1, false, Reason::Semacquire));
        let a2 = thread::spawn(move || semtable().acquire(&s2, true, Reason::Semacquire));
        let r = thread::spawn(move || {
            semtable().release(&s3, false);
        });
        semtable().release(&sema, false);
        a1.join().unwrap();
        a2.join().unwrap();
        r.join().unwrap();
        assert_eq!(sema.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn handoff_release() {
    model(|| {
        let sema = Arc::new(AtomicU32::new(0));
        let (s1, s2) = (sema.clone(), sema.clone());
        let waiter = thread::spawn(move || semtable().acquire(&s1, false, Reason::Semacquire));
        let barger = thread::spawn(move || {
            // A non-blocking attempt (Go's cansemacquire) racing the hand-off.
            let v = s2.load(Ordering::SeqCst);
            v > 0 && s2.compare_exchange(v, v - 1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
        });
        semtable().release(&sema, true);
        let barged = barger.join().unwrap();
        if barged {
            // The barger took the count before the waiter: give it one more.
            semtable().release(&sema, true);
        }
        waiter.join().unwrap();
        assert_eq!(sema.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn two_addresses_one_root() {
    model(|| {
        // Two counts in one allocation, 8 bytes apart: with two roots
        // hashed by (addr >> 3) they share a root in one of two layouts,
        // and Go's per-address queues must keep their waiters apart.
        let pair = Arc::new([AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0)]);
        let p1 = pair.clone();
        let t = thread::spawn(move || semtable().acquire(&p1[0], false, Reason::Semacquire));
        let p2 = pair.clone();
        let u = thread::spawn(move || semtable().acquire(&p2[2], false, Reason::Semacquire));
        semtable().release(&pair[2], false);
        semtable().release(&pair[0], false);
        t.join().unwrap();
        u.join().unwrap();
        assert_eq!(pair[0].load(Ordering::SeqCst) + pair[2].load(Ordering::SeqCst), 0);
    });
}
