//! Unit tests of the collector core, without the derive (hand-written
//! `Trace` impls) so they also run under Miri:
//! `MIRIFLAGS="-Zmiri-ignore-leaks -Zmiri-disable-isolation" cargo +nightly miri test -p gort --lib gc::`
//! (the collector thread outlives the tests; gctrace reads the clock).

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

// SAFETY: holds no handles.
unsafe impl Trace for Tally {
    fn trace(&self, _: &mut Tracer<'_>) {}
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
    let garbage = ring(N, &dead);
    let live = ring(N, &kept);
    drop(garbage);
    gc();
    assert_eq!(dead.load(Ordering::SeqCst), N);
    assert_eq!(kept.load(Ordering::SeqCst), 0);
    // Walk the live ring: every node intact.
    let mut cur = live.clone();
    for i in 0..N {
        assert_eq!(cur.id, i);
        assert_eq!(cur.check, i ^ 0x5a5a);
        let next = cur.next.lock().clone().unwrap();
        cur = next;
    }
    drop((cur, live));
    gc();
    assert_eq!(kept.load(Ordering::SeqCst), N);
}

/// Ring sizes: Miri interprets every step, so it gets small rings.
const N: usize = if cfg!(miri) { 50 } else { 1000 };

#[test]
fn objects_of_every_size_class_and_large_ones_are_freed() {
    #[repr(align(64))]
    struct Aligned([u8; 64]);
    // SAFETY: holds no handles.
    unsafe impl Trace for Aligned {
        fn trace(&self, _: &mut Tracer<'_>) {}
    }
    let tally = Arc::new(AtomicUsize::new(0));
    let mut keep = Vec::new();
    let sizes: &[usize] =
        if cfg!(miri) { &[0, 100, 40_000] } else { &[0, 1, 24, 100, 1000, 5000, 20_000, 40_000, 1 << 20] };
    for &n in sizes {
        let v = Gc::new((vec![n as u8; n], Tally(tally.clone())));
        assert_eq!(v.0.len(), n);
        keep.push(Gc::new((vec![7u8; n], Tally(tally.clone()))));
    }
    let a = Gc::new(Aligned([3; 64]));
    assert_eq!(Gc::as_ptr(&a) as usize % 64, 0);
    assert_eq!(a.0[63], 3);
    gc();
    assert_eq!(tally.load(Ordering::SeqCst), sizes.len());
    for (k, &n) in keep.iter().zip(sizes) {
        assert!(k.0.len() == n && k.0.iter().all(|&b| b == 7));
    }
}

#[test]
fn gc_atomic_and_rwlock_keep_what_they_hold() {
    let tally = Arc::new(AtomicUsize::new(0));
    let slot = Gc::new(GcAtomic::new(Some(ring(N, &tally))));
    let table = Gc::new(GcRwLock::new(vec![ring(N, &tally)]));
    gc();
    assert_eq!(tally.load(Ordering::SeqCst), 0);
    assert_eq!(slot.load().unwrap().id, 0);
    assert_eq!(table.read()[0].check, 0x5a5a);
    let old = slot.swap(None).unwrap();
    drop(old);
    table.write().clear();
    gc();
    assert_eq!(tally.load(Ordering::SeqCst), 2 * N);
}

/// The container the hook below empties, and what it took out.
static TAKE_FROM: std::sync::Mutex<Option<Gc<Node>>> = std::sync::Mutex::new(None);
static TAKEN: std::sync::Mutex<Option<Gc<Node>>> = std::sync::Mutex::new(None);

/// After the count: takes the child out of [`TAKE_FROM`]'s cell and drops
/// the container (S3's shape), on the collector's thread.
fn take_after_count(s: __hooks::Step) {
    if matches!(s, __hooks::Step::Counted) {
        if let Some(c) = TAKE_FROM.lock().unwrap().take() {
            let x = c.next.lock().take();
            drop(c);
            *TAKEN.lock().unwrap() = x;
        }
    }
}

/// With every counted cell's children kept (`snapshot.rs`), a child taken
/// out of a counted cell after the count, its container dropped, is shaded
/// from the list the barrier pinned, and survives; the container is freed.
/// Fails (X dropped by the first cycle too) if the barrier does not pin the
/// list.
#[test]
fn a_child_taken_out_of_a_kept_cell_after_the_count_survives() {
    super::snapshot::set_min_handles(1);
    let tally = Arc::new(AtomicUsize::new(0));
    let c = node(0, &tally);
    *c.next.lock() = Some(node(1, &tally));
    *TAKE_FROM.lock().unwrap() = Some(c);
    __hooks::set(Some(take_after_count));
    gc();
    __hooks::set(None);
    let x = TAKEN.lock().unwrap().take().expect("the hook took X out");
    // The container, dropped before the roots were read, is garbage.
    assert_eq!(tally.load(Ordering::SeqCst), 1, "X dropped while held, or its container kept");
    assert_eq!((x.id, x.check), (1, 1 ^ 0x5a5a));
    drop(x);
    gc();
    assert_eq!(tally.load(Ordering::SeqCst), 2);
}
