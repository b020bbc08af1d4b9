//! Loom models of the channel protocol (`gort::__loom::chan`, Go's
//! chan.go and select.go), against the real `RawChan`, sudogs, claim CAS
//! and `select`; the blocked parties are loom threads (the runtime's
//! `Waker` is a loom thread handle under `--cfg loom`).
//!
//! Every model checks conservation — each value sent is received exactly
//! once or handed back to its sender, never lost or duplicated — and that
//! every blocked party wakes (loom reports a deadlock otherwise). The
//! values are loom-tracked cells written by the sender and read by the
//! receiver, so a hand-off that is not ordered by the protocol's
//! release/acquire pairs fails as a causality violation.
//!
//! 1. `unbuffered_send_recv`: rendezvous; either side may block first.
//! 2. `buffered_fill_drain_close`: a sender fills a 1-slot buffer (the
//!    second send blocks and is moved into the buffer by the receive) then
//!    closes; the receiver drains two values, then sees the close.
//! 3. `unbuffered_send_vs_close`: a blocked or arriving sender races
//!    `close` and a receiver: the value is received, or handed back with
//!    `Closed`, exactly once; the receiver gets the value or `None`.
//! 4. `two_receivers_vs_close`: two blocked receivers, one buffered value
//!    and a close: exactly one gets the value.
//! 5. `select_two_cases_vs_close_and_send`: a two-case select racing a
//!    close of one channel and a send on the other (loser of the claim
//!    CAS must skip the select's sudog and block, and then see the close).
//! 6. `select_nonblocking_never_misses_a_ready_case`: one of two channels
//!    holds a value at every instant while a mover fills the first and
//!    drains the second; a non-blocking select must still complete a case.
//!    Its pass 0 polls one lock at a time and can see both empty, so this
//!    checks that "nothing ready" is only concluded under both locks.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p gort-loom-tests --release --test chan`.
#![cfg(loom)]

use gort::__loom::chan::hchan::{RawChan, SendFail};
use gort::__loom::chan::select::{select, Block, Case, RecvCase};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

/// A value whose payload is a loom-tracked cell: the receiver's read must
/// happen after the sender's write.
struct Val(UnsafeCell<u32>);

// SAFETY: the cell is written only before the value is sent and read only
// after it is received; loom checks that ordering.
unsafe impl Send for Val {}

fn val(v: u32) -> Val {
    let c = UnsafeCell::new(0);
    // SAFETY: not shared yet.
    c.with_mut(|p| unsafe { *p = v });
    Val(c)
}

fn get(v: &Val) -> u32 {
    // SAFETY: we own the received value; loom checks the hand-off.
    v.0.with(|p| unsafe { *p })
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

#[test]
fn unbuffered_send_recv() {
    model(|| {
        let ch = Arc::new(RawChan::<Val>::new(0));
        let c = ch.clone();
        let t = thread::spawn(move || {
            c.send_until(val(7), None).map_err(|_| ()).unwrap();
        });
        let v = ch.recv_until(None).unwrap().unwrap();
        assert_eq!(get(&v), 7);
        t.join().unwrap();
    });
}

#[test]
fn buffered_fill_drain_close() {
    model(|| {
        let ch = Arc::new(RawChan::<Val>::new(1));
        let c = ch.clone();
        let t = thread::spawn(move || {
            c.send_until(val(1), None).map_err(|_| ()).unwrap();
            c.send_until(val(2), None).map_err(|_| ()).unwrap();
            assert!(c.close());
        });
        let a = ch.recv_until(None).unwrap().unwrap();
        let b = ch.recv_until(None).unwrap().unwrap();
        assert_eq!((get(&a), get(&b)), (1, 2));
        assert!(ch.recv_until(None).unwrap().is_none());
        t.join().unwrap();
    });
}

#[test]
fn unbuffered_send_vs_close() {
    model(|| {
        let ch = Arc::new(RawChan::<Val>::new(0));
        let (c1, c2) = (ch.clone(), ch.clone());
        let sender = thread::spawn(move || match c1.send_until(val(5), None) {
            Ok(()) => None,
            Err(SendFail::Closed(v)) => Some(get(&v)),
            Err(SendFail::Full(_)) => panic!("blocking send timed out"),
        });
        let receiver = thread::spawn(move || c2.recv_until(None).unwrap().map(|v| get(&v)));
        assert!(ch.close());
        let back = sender.join().unwrap();
        let got = receiver.join().unwrap();
        // Exactly one of: delivered, handed back.
        match (got, back) {
            (Some(5), None) | (None, Some(5)) => {}
            other => panic!("value lost or duplicated: {other:?}"),
        }
    });
}

#[test]
fn two_receivers_vs_close() {
    model(|| {
        let ch = Arc::new(RawChan::<Val>::new(1));
        let (c1, c2) = (ch.clone(), ch.clone());
        let r1 = thread::spawn(move || c1.recv_until(None).unwrap().map(|v| get(&v)));
        let r2 = thread::spawn(move || c2.recv_until(None).unwrap().map(|v| get(&v)));
        ch.try_send(val(9)).map_err(|_| ()).unwrap();
        assert!(ch.close());
        let mut got = [r1.join().unwrap(), r2.join().unwrap()];
        got.sort();
        assert_eq!(got, [None, Some(9)]);
    });
}

#[test]
fn select_two_cases_vs_close_and_send() {
    model(|| {
        let a = Arc::new(RawChan::<Val>::new(0));
        let b = Arc::new(RawChan::<Val>::new(0));
        let (a1, b1) = (a.clone(), b.clone());
        let selector = thread::spawn(move || {
            let ca = RecvCase::new(&a1);
            let cb = RecvCase::new(&b1);
            let cases: [&dyn Case; 2] = [&ca, &cb];
            match select(cases, Block::Forever) {
                Some(0) => ("a", ca.take().map(|v| get(&v))),
                Some(1) => ("b", cb.take().map(|v| get(&v))),
                other => panic!("bad select result {other:?}"),
            }
        });
        let b2 = b.clone();
        let sender = thread::spawn(move || match b2.send_until(val(3), None) {
            Ok(()) => None,
            Err(SendFail::Closed(v)) => Some(get(&v)),
            Err(SendFail::Full(_)) => panic!("blocking send timed out"),
        });
        assert!(a.close());
        let (case, got) = selector.join().unwrap();
        // The sender may still be blocked on b if the select took a's close.
        assert!(b.close());
        let back = sender.join().unwrap();
        match (case, got, back) {
            ("a", None, Some(3)) | ("b", Some(3), None) => {}
            other => panic!("bad outcome {other:?}"),
        }
    });
}

#[test]
fn select_nonblocking_never_misses_a_ready_case() {
    model(|| {
        let a = Arc::new(RawChan::<Val>::new(1));
        let b = Arc::new(RawChan::<Val>::new(1));
        b.try_send(val(2)).map_err(|_| ()).unwrap();
        let (a1, b1) = (a.clone(), b.clone());
        let mover = thread::spawn(move || {
            a1.try_send(val(1)).map_err(|_| ()).unwrap();
            b1.try_recv().ok().flatten().map(|v| get(&v))
        });
        let cb = RecvCase::new(&b);
        let ca = RecvCase::new(&a);
        // Under loom the poll order is fixed, last case first: `a` is
        // polled before `b`, the order in which pass 0 can see both empty.
        let cases: [&dyn Case; 2] = [&cb, &ca];
        let chosen = select(cases, Block::No);
        let moved = mover.join().unwrap();
        let left = a.try_recv().ok().flatten().map(|v| get(&v));
        match chosen {
            Some(0) => {
                assert_eq!(cb.take().map(|v| get(&v)), Some(2));
                assert_eq!((moved, left), (None, Some(1)));
            }
            Some(1) => {
                assert_eq!(ca.take().map(|v| get(&v)), Some(1));
                assert_eq!((moved, left), (Some(2), None));
            }
            other => panic!("select found nothing ready: {other:?}"),
        }
    });
}
