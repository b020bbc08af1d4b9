//! Loom models of the per-P run queue (`gort::__loom::RunQ`, Go's `runq` +
//! `runnext`), built with a 4-slot ring so wrap-around and overflow are
//! reachable.
//!
//! Each model runs the owner's operations on the model's main thread and the
//! thieves on loom threads (each thief owns its own `RunQ`, as a P would), then
//! drains every queue and checks that each item was obtained exactly once:
//! none lost, none duplicated, under every interleaving and every weak-memory
//! outcome loom explores (within the preemption bound where one is set).
//! Loom also checks that the stale slot reads the algorithm makes are not data
//! races.
//!
//! 1. `owner_put_get_vs_thief`: owner puts, gets and `put_batch`es (wrapping
//!    the ring) while a thief steals half, twice.
//! 2. `overflow_spill_vs_thief`: the owner's put into a full ring spills half
//!    plus one (`runqputslow`) while a thief races for the same head; a lost
//!    CAS must retry the put.
//! 3. `runnext_steal_vs_owner`: a thief steals `runnext` (back-off path) while
//!    the owner kicks the old `runnext` to the ring and gets.
//! 4. `two_thieves_vs_owner`: two thieves steal (ring and `runnext`)
//!    concurrently with an owner get and runnext put.
//! 5. `steal_chain`: A steals from the owner while B steals from A, so items
//!    reach B only through A's tail publication (`runqsteal`'s store-release).
//!
//! Mutation check (done by hand when this was written): weakening any of the
//! tail store-releases, the thieves' tail load-acquire, or the `runnext`
//! swap/CAS to `Relaxed` makes at least one model fail. Weakening the `head`
//! CAS-release / load-acquire pair does not: that pair stops a consumer's slot
//! read from seeing the owner's *later* reuse of the slot (load buffering),
//! which loom does not model.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p gort-loom-tests --release --test runq`.
#![cfg(loom)]

use std::ptr::NonNull;

use gort::__loom::RunQ;
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

/// An item carries a loom-tracked cell, written by the thread that queues it
/// and read by the thread that takes it: if the queue's orderings did not make
/// the write visible to the taker, loom would report a causality violation.
type Item = UnsafeCell<usize>;
type Q = RunQ<Item>;

fn item(v: usize) -> NonNull<Item> {
    let it = Box::leak(Box::new(UnsafeCell::new(0)));
    // SAFETY: the item is not shared yet.
    it.with_mut(|p| unsafe { *p = v });
    NonNull::from(it)
}

/// Takes back ownership of an item and returns its value.
fn take(p: NonNull<Item>) -> usize {
    // SAFETY: every item comes from `item` (a leaked Box) and the queue hands
    // each out once, so the caller is its only owner.
    let it = unsafe { Box::from_raw(p.as_ptr()) };
    // SAFETY: we own the item; loom checks the write happened-before.
    it.with(|p| unsafe { *p })
}

/// A thief: `steals` times, steals from `victim` into a queue it owns and
/// runs what it got (the returned item, then its own ring via `get`).
/// Returns every item it obtained.
fn thief(victim: &Q, steals: usize, steal_runnext: bool, victim_running: bool) -> Vec<usize> {
    let own = Q::new();
    let mut got = Vec::new();
    for _ in 0..steals {
        // SAFETY: this thread owns `own`, and its ring is empty here.
        unsafe {
            if let Some(g) = own.steal(victim, steal_runnext, victim_running) {
                got.push(take(g));
            }
            while let Some((g, inherit)) = own.get() {
                assert!(!inherit, "stolen items land in the ring");
                got.push(take(g));
            }
        }
    }
    got
}

/// Everything left in `q` after all threads joined (the P is stopped and the
/// join orders its last owner's writes before this).
fn drain_rest(q: &Q) -> Vec<usize> {
    // SAFETY: every other user of `q` has been joined.
    unsafe { q.drain() }.into_iter().map(take).collect()
}

fn assert_exactly_once(mut got: Vec<usize>, n: usize) {
    got.sort_unstable();
    assert_eq!(got, (0..n).collect::<Vec<_>>(), "items lost or duplicated");
}

/// Runs `f` under loom (with `bound` as the preemption bound unless
/// `LOOM_MAX_PREEMPTIONS` sets one) and reports how many executions it explored.
fn model(name: &str, bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = bound;
    }
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let start = std::time::Instant::now();
    b.check(move || {
        counter.fetch_add(1, Relaxed);
        f();
    });
    eprintln!(
        "{name}: {} executions in {:.2?} (preemption bound {:?})",
        runs.load(Relaxed),
        start.elapsed(),
        b.preemption_bound
    );
}

#[test]
fn owner_put_get_vs_thief() {
    assert_eq!(Q::CAPACITY, 4);
    model("owner_put_get_vs_thief", None, || {
        let q = Arc::new(Q::new());
        let mut got = Vec::new();
        // SAFETY: the main thread owns `q` until the final drain.
        unsafe {
            // Advance the indices so the concurrent part wraps the ring.
            for i in 0..3 {
                assert!(q.put(item(i), false).is_none());
            }
            for _ in 0..3 {
                got.push(take(q.get().unwrap().0));
            }
        }
        let t = {
            let q = q.clone();
            thread::spawn(move || thief(&q, 2, false, false))
        };
        // SAFETY: the main thread owns `q`.
        unsafe {
            for i in 3..6 {
                assert!(q.put(item(i), false).is_none(), "4 slots, 3 items: no spill");
            }
            if let Some((g, inherit)) = q.get() {
                assert!(!inherit);
                got.push(take(g));
            }
            // A get or steal made room for at least one; what does not fit
            // stays with the caller (it would go to the global queue).
            let mut batch = vec![item(6), item(7)];
            let n = q.put_batch(&mut batch);
            assert!(n >= 1 && n + batch.len() == 2);
            got.extend(batch.into_iter().map(take));
        }
        got.extend(t.join().unwrap());
        got.extend(drain_rest(&q));
        assert_exactly_once(got, 8);
    });
}

#[test]
fn overflow_spill_vs_thief() {
    model("overflow_spill_vs_thief", None, || {
        let q = Arc::new(Q::new());
        let mut got = Vec::new();
        // SAFETY: the main thread owns `q` until the final drain.
        unsafe {
            // Start at index 2 so the full ring wraps.
            q.put(item(100), false);
            q.put(item(101), false);
            assert_eq!(take(q.get().unwrap().0), 100);
            assert_eq!(take(q.get().unwrap().0), 101);
            for i in 0..4 {
                assert!(q.put(item(i), false).is_none());
            }
        }
        let t = {
            let q = q.clone();
            thread::spawn(move || thief(&q, 2, true, false))
        };
        for i in 4..7 {
            // SAFETY: the main thread owns `q`.
            if let Some(batch) = unsafe { q.put(item(i), false) } {
                // Half the ring (oldest first) plus the item being put.
                let batch: Vec<usize> = batch.into_iter().map(take).collect();
                assert_eq!(batch.len(), Q::CAPACITY / 2 + 1);
                assert_eq!(batch.last(), Some(&i));
                assert!(batch.windows(2).all(|w| w[0] < w[1]), "FIFO order");
                got.extend(batch);
            }
        }
        got.extend(t.join().unwrap());
        got.extend(drain_rest(&q));
        assert_exactly_once(got, 7);
    });
}

#[test]
fn runnext_steal_vs_owner() {
    model("runnext_steal_vs_owner", None, || {
        let q = Arc::new(Q::new());
        let mut got = Vec::new();
        // SAFETY: the main thread owns `q` until the final drain.
        unsafe {
            assert!(q.put(item(0), true).is_none());
        }
        let t = {
            let q = q.clone();
            thread::spawn(move || thief(&q, 2, true, true))
        };
        // SAFETY: the main thread owns `q`.
        unsafe {
            // Each put kicks the previous runnext (if the thief has not taken
            // it) to the ring.
            for i in 1..3 {
                assert!(q.put(item(i), true).is_none());
                if let Some((g, inherit)) = q.get() {
                    let v = take(g);
                    // runnext comes with inherit_time; ring items without.
                    assert_eq!(inherit, v == i);
                    got.push(v);
                }
            }
        }
        got.extend(t.join().unwrap());
        got.extend(drain_rest(&q));
        assert_exactly_once(got, 3);
    });
}

#[test]
fn two_thieves_vs_owner() {
    model("two_thieves_vs_owner", Some(4), || {
        let q = Arc::new(Q::new());
        let mut got = Vec::new();
        // SAFETY: the main thread owns `q` until the final drain.
        unsafe {
            for i in 0..3 {
                assert!(q.put(item(i), false).is_none());
            }
            assert!(q.put(item(3), true).is_none());
        }
        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || thief(&q, 2, true, false))
            })
            .collect();
        // SAFETY: the main thread owns `q`.
        unsafe {
            if let Some((g, _)) = q.get() {
                got.push(take(g));
            }
            assert!(q.put(item(4), true).is_none());
        }
        for t in thieves {
            got.extend(t.join().unwrap());
        }
        got.extend(drain_rest(&q));
        assert_exactly_once(got, 5);
    });
}

#[test]
fn steal_chain() {
    model("steal_chain", None, || {
        let q = Arc::new(Q::new());
        let mid = Arc::new(Q::new());
        let a = {
            let (q, mid) = (q.clone(), mid.clone());
            thread::spawn(move || {
                // SAFETY: thread A owns `mid` until it is joined.
                unsafe { mid.steal(&q, false, false) }.map(take)
            })
        };
        let b = {
            let mid = mid.clone();
            thread::spawn(move || thief(&mid, 1, false, false))
        };
        // SAFETY: the main thread owns `q`.
        unsafe {
            for i in 0..3 {
                assert!(q.put(item(i), false).is_none());
            }
        }
        let mut got: Vec<usize> = a.join().unwrap().into_iter().collect();
        got.extend(b.join().unwrap());
        got.extend(drain_rest(&mid));
        got.extend(drain_rest(&q));
        assert_exactly_once(got, 3);
    });
}
