//! Unit tests of the collector core, without the derive (hand-written
//! `Trace` impls) so they also run under Miri.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;

/// Counts drops of the values that hold it.
struct Tally(Arc<AtomicUsize>);

impl Drop for Tally {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct Node {
    id: usize,
    check: usize,
    next: GcMutex<Option<Gc<Node>>>,
    _tally: Tally,
}

// SAFETY: reports the one handle in `next`.
unsafe impl Trace for Node {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.next.trace(t);
    }
}

// SAFETY: reports the handle if there is one.
unsafe impl<T: Trace> Trace for Option<T> {
    fn trace(&self, t: &mut Tracer<'_>) {
        if let Some(v) = self {
            v.trace(t);
        }
    }
}

fn node(id: usize, tally: &Arc<AtomicUsize>) -> Gc<Node> {
    Gc::new(Node { id, check: id ^ 0x5a5a, next: GcMutex::new(None), _tally: Tally(tally.clone()) })
}

fn ring(n: usize, tally: &Arc<AtomicUsize>) -> Gc<Node> {
    let first = node(0, tally);
    let mut prev = first.clone();
    for i in 1..n {
        let x = node(i, tally);
        *prev.next.lock() = Some(x.clone());
        prev = x;
    }
    *prev.next.lock() = Some(first.clone());
    first
}

#[test]
fn a_dropped_ring_is_collected_and_a_held_one_survives() {
    let dead = Arc::new(AtomicUsize::new(0));
    let kept = Arc::new(AtomicUsize::new(0));
    let garbage = ring(1000, &dead);
    let live = ring(1000, &kept);
    drop(garbage);
    gc();
    assert_eq!(dead.load(Ordering::SeqCst), 1000);
    assert_eq!(kept.load(Ordering::SeqCst), 0);
    // Walk the live ring: every node intact.
    let mut cur = live.clone();
    for i in 0..1000 {
        assert_eq!(cur.id, i);
        assert_eq!(cur.check, i ^ 0x5a5a);
        let next = cur.next.lock().clone().unwrap();
        cur = next;
    }
    drop((cur, live));
    gc();
    assert_eq!(kept.load(Ordering::SeqCst), 1000);
}
