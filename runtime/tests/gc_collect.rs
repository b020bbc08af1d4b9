//! Collection through the public API: cycles are freed, handles the
//! collector cannot see (a stack, a std `Mutex` shared with a thread, a
//! channel in flight, an untraced field) keep their objects alive,
//! `gort::gc()` works from goroutines and threads and concurrently, the
//! cells behave as locks, objects of every size and alignment are
//! allocated and freed, and automatic cycles follow GOGC.
//!
//! Tests run in parallel and share one collector: each checks only its own
//! objects (by id), which other tests' cycles must not disturb. Tests that
//! count cycles or set GOGC or GOMAXPROCS run in a child process.
//!
//! Not checked here: the wait reasons of goroutines blocked on the cells
//! (`sync.Mutex.Lock`, `sync.RWMutex.RLock`, `sync.RWMutex.Lock`). They
//! show only in checkdead's deadlock report, which needs a `harness =
//! false` binary (see `tests/deadlock.rs`).

mod common;
#[path = "common/gc.rs"]
mod gcc;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, with_timeout, OrPanic};
use gcc::*;
use gort::chan::Chan;
use gort::gc::{Gc, GcAtomic, GcMutex, GcRwLock, Trace, Tracer};

fn ids<const P: usize>(v: &[Gc<NodeOf<P>>]) -> Vec<u64> {
    v.iter().map(|n| n.id).collect()
}

#[track_caller]
fn assert_all_freed(what: &str, ids: &[u64]) {
    let n = count_dropped(ids);
    assert_eq!(n, ids.len(), "{what}: only {n} of {} objects were freed", ids.len());
}

#[track_caller]
fn assert_none_freed(what: &str, ids: &[u64]) {
    let n = count_dropped(ids);
    assert_eq!(n, 0, "{what}: {n} of {} reachable objects were freed", ids.len());
}

/// Follows `cell` edges from `head` for `n` steps, checking each node.
fn walk_ring(head: &Gc<Node>, ids: &[u64]) {
    let mut cur = head.clone();
    for (i, &id) in ids.iter().enumerate() {
        assert_eq!(cur.id, id, "ring position {i}");
        cur.verify("ring node");
        let next = cur.cell_child().expect("ring broken");
        cur = next;
    }
    assert!(Gc::ptr_eq(&cur, head), "the ring does not close");
}

// ------------------------------------------------------------- cycles --

#[test]
fn a_ring_of_1000_nodes_is_collected() {
    let nodes: Vec<Gc<Node>> = (0..1000).map(|_| Node::leaf()).collect();
    for (i, n) in nodes.iter().enumerate() {
        *n.cell.lock() = SlotOf(Some(nodes[(i + 1) % nodes.len()].clone()));
    }
    let ids = ids(&nodes);
    let head = nodes[0].clone();
    drop(nodes);
    for _ in 0..3 {
        gort::gc();
        walk_ring(&head, &ids);
    }
    assert_none_freed("held ring", &ids);
    drop(head);
    gort::gc();
    assert_all_freed("dropped ring", &ids);
}

#[test]
fn a_doubly_linked_list_is_collected() {
    // next in the GcMutex, prev in the GcRwLock.
    let nodes: Vec<Gc<Node>> = (0..500).map(|_| Node::leaf()).collect();
    for w in nodes.windows(2) {
        *w[0].cell.lock() = SlotOf(Some(w[1].clone()));
        *w[1].rw.write() = SlotOf(Some(w[0].clone()));
    }
    let ids = ids(&nodes);
    let mid = nodes[250].clone();
    drop(nodes);
    for _ in 0..3 {
        gort::gc();
        let mut cur = mid.clone();
        for &id in &ids[250..] {
            assert_eq!(cur.id, id);
            cur.verify("list node (forward)");
            match cur.cell_child() {
                Some(n) => cur = n,
                None => assert_eq!(id, *ids.last().unwrap()),
            }
        }
        let mut cur = mid.clone();
        for &id in ids[..=250].iter().rev() {
            assert_eq!(cur.id, id);
            cur.verify("list node (backward)");
            let prev = cur.rw.read().0.clone();
            match prev {
                Some(n) => cur = n,
                None => assert_eq!(id, ids[0]),
            }
        }
    }
    drop(mid);
    gort::gc();
    assert_all_freed("dropped list", &ids);
}

/// A deterministic pseudo-random sequence.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// The ids reachable from `roots` through every kind of edge.
fn reachable(roots: &[Gc<Node>]) -> std::collections::BTreeSet<u64> {
    let mut seen = std::collections::BTreeSet::new();
    let mut todo: Vec<Gc<Node>> = roots.to_vec();
    while let Some(n) = todo.pop() {
        if !seen.insert(n.id) {
            continue;
        }
        n.verify("graph node");
        todo.extend(n.imm.clone());
        todo.extend(n.cell.lock().0.clone());
        todo.extend(n.rw.read().0.clone());
        todo.extend(n.atom.load());
        todo.extend(n.edges.lock().0.iter().cloned());
    }
    seen
}

#[test]
fn a_graph_with_self_loops_frees_exactly_the_unreachable() {
    let mut r = Lcg(7);
    let mut nodes: Vec<Gc<Node>> = Vec::new();
    for i in 0..400 {
        // An immutable edge to an earlier node now and then.
        let imm = (i > 0 && r.next(3) == 0).then(|| nodes[r.next(i)].clone());
        nodes.push(Node::new(Parts { imm, ..Default::default() }));
    }
    for (i, n) in nodes.iter().enumerate() {
        let mut e = n.edges.lock();
        e.0.push(n.clone()); // a self-loop
        for _ in 0..r.next(4) {
            e.0.push(nodes[r.next(nodes.len())].clone());
        }
        drop(e);
        match r.next(4) {
            0 => *n.cell.lock() = SlotOf(Some(nodes[r.next(nodes.len())].clone())),
            1 => *n.rw.write() = SlotOf(Some(n.clone())),
            2 => n.atom.store(Some(nodes[(i + 1) % nodes.len()].clone())),
            _ => {}
        }
    }
    let all = ids(&nodes);
    let roots: Vec<Gc<Node>> = (0..3).map(|_| nodes[r.next(nodes.len())].clone()).collect();
    drop(nodes);
    let live = reachable(&roots);
    let dead: Vec<u64> = all.iter().copied().filter(|i| !live.contains(i)).collect();
    let live: Vec<u64> = live.into_iter().collect();
    assert!(!dead.is_empty() && !live.is_empty(), "a degenerate graph");
    gort::gc();
    assert_all_freed("unreachable part", &dead);
    assert_none_freed("reachable part", &live);
    assert_eq!(reachable(&roots).len(), live.len());
    gort::gc();
    assert_none_freed("reachable part, second cycle", &live);
    drop(roots);
    gort::gc();
    assert_all_freed("the whole graph", &all);
}

// --------------------------------------------- handles outside the heap --

/// Nodes with a child each, for the root tests below.
fn parents(n: usize) -> (Vec<Gc<Node>>, Vec<u64>) {
    let v: Vec<Gc<Node>> =
        (0..n).map(|_| Node::new(Parts { cell: Some(Node::leaf()), ..Default::default() })).collect();
    let mut ids = ids(&v);
    ids.extend(v.iter().map(|p| p.cell_child().unwrap().id));
    (v, ids)
}

fn verify_parents(v: &[Gc<Node>]) {
    for p in v {
        p.verify("parent");
        p.cell_child().unwrap().verify("child");
    }
}

#[test]
fn a_vec_on_the_stack_keeps_its_objects() {
    let (v, ids) = parents(100);
    for _ in 0..3 {
        gort::gc();
        verify_parents(&v);
    }
    assert_none_freed("held from a Vec", &ids);
    drop(v);
    gort::gc();
    assert_all_freed("dropped Vec", &ids);
}

#[test]
fn a_std_mutex_shared_with_a_thread_keeps_its_objects() {
    let (v, ids) = parents(100);
    let shared = Arc::new(Mutex::new(v));
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let s2 = shared.clone();
    let t = std::thread::spawn(move || {
        go_rx.recv().unwrap();
        verify_parents(&s2.lock().unwrap());
        drop(s2);
    });
    drop(shared);
    for _ in 0..3 {
        gort::gc();
    }
    assert_none_freed("held by the thread", &ids);
    go_tx.send(()).unwrap();
    t.join().or_panic();
    gort::gc();
    assert_all_freed("dropped by the thread", &ids);
}

#[test]
fn a_channel_in_flight_keeps_its_objects() {
    // Buffered: the values sit in the channel.
    let (v, ids) = parents(10);
    let ch: Chan<Gc<Node>> = Chan::new(16);
    for p in v {
        ch.send(p);
    }
    for _ in 0..3 {
        gort::gc();
    }
    assert_none_freed("in a channel's buffer", &ids);
    let got: Vec<Gc<Node>> = (0..10).map(|_| ch.recv().unwrap()).collect();
    verify_parents(&got);
    drop(got);
    gort::gc();
    assert_all_freed("received and dropped", &ids);

    // Unbuffered: the value is held by a goroutine blocked in `send`.
    with_timeout("unbuffered send", 60, || {
        gort::run(|| {
            let (v, ids) = parents(1);
            let ch: Chan<Gc<Node>> = Chan::new(0);
            let tx = ch.clone();
            let sent = Arc::new(AtomicBool::new(false));
            let s2 = sent.clone();
            let mut v = v;
            let p = v.pop().unwrap();
            gort::go(move || {
                tx.send(p);
                s2.store(true, SeqCst);
            });
            gort::time::sleep(Duration::from_millis(20));
            for _ in 0..3 {
                gort::gc();
            }
            assert!(!sent.load(SeqCst));
            assert_none_freed("held by a blocked sender", &ids);
            let p = ch.recv().unwrap();
            verify_parents(&[p]);
            gort::gc();
            assert_all_freed("received and dropped", &ids);
        })
    });
}

/// An object with a field the collector is not told about.
#[derive(Trace)]
#[trace(unsafe_drop)] // its Drop only records the id
struct Skippy {
    id: u64,
    traced: GcMutex<Option<Gc<Skippy>>>,
    #[trace(skip)]
    skipped: Option<Gc<Skippy>>,
}

impl Drop for Skippy {
    fn drop(&mut self) {
        record_drop(self.id);
    }
}

fn skippy(skipped: Option<Gc<Skippy>>) -> Gc<Skippy> {
    Gc::new(Skippy { id: new_id(), traced: GcMutex::new(None), skipped })
}

#[test]
fn an_untraced_field_keeps_its_target_and_a_cycle_through_it_leaks() {
    // Held only from a skipped field of a live object: a root.
    let n = skippy(None);
    let nid = n.id;
    let s = skippy(Some(n));
    let sid = s.id;
    for _ in 0..3 {
        gort::gc();
        assert_none_freed("target of the skipped field", &[nid]);
        assert_eq!(s.skipped.as_ref().unwrap().id, nid);
    }
    // Once the holder is garbage, its drop glue drops the handle: the
    // target is freed by a later cycle.
    drop(s);
    gort::gc();
    assert_all_freed("holder", &[sid]);
    gort::gc();
    assert_all_freed("target, after its holder", &[nid]);

    // A cycle through a skipped field is never collected (like an `Arc`
    // cycle): a → (traced) → b → (skipped) → a.
    let a = skippy(None);
    let b = skippy(Some(a.clone()));
    *a.traced.lock() = Some(b.clone());
    let ids = [a.id, b.id];
    drop((a, b));
    for _ in 0..2 {
        gort::gc();
    }
    assert_none_freed("a cycle through a skipped field", &ids);
}

// ------------------------------------------------- who calls gort::gc() --

/// Allocates garbage and a kept node, collects, checks both.
fn collect_own_objects() {
    let kept = Node::new(Parts { cell: Some(Node::leaf()), ..Default::default() });
    let garbage: Vec<Gc<Node>> =
        (0..50).map(|_| Node::new(Parts { cell: Some(Node::leaf()), ..Default::default() })).collect();
    let mut dead = ids(&garbage);
    dead.extend(garbage.iter().map(|g| g.cell_child().unwrap().id));
    drop(garbage);
    gort::gc();
    assert_all_freed("garbage", &dead);
    verify_parents(&[kept]);
}

#[test]
fn gc_from_goroutines_and_threads() {
    with_timeout("gc() from goroutines and threads", 120, || {
        let threads: Vec<_> = (0..3)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..5 {
                        collect_own_objects();
                    }
                })
            })
            .collect();
        gort::run(|| {
            let gs: Vec<_> = (0..6)
                .map(|_| {
                    gort::spawn(|| {
                        for _ in 0..5 {
                            collect_own_objects();
                        }
                    })
                })
                .collect();
            for g in gs {
                g.join().or_panic();
            }
        });
        for t in threads {
            t.join().or_panic();
        }
    });
}

#[test]
fn concurrent_gc_callers_all_return() {
    with_timeout("concurrent gc() callers", 120, || {
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicUsize::new(0));
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let calls = calls.clone();
                std::thread::spawn(move || {
                    for _ in 0..30 {
                        gort::gc();
                        calls.fetch_add(1, SeqCst);
                    }
                })
            })
            .collect();
        // Meanwhile a mutator keeps a structure busy.
        let s2 = stop.clone();
        let m = std::thread::spawn(move || {
            let head = Node::leaf();
            let mut n = 0;
            while !s2.load(SeqCst) {
                let new = Node::new(Parts { cell: head.cell.lock().0.take(), ..Default::default() });
                *head.cell.lock() = SlotOf(Some(new));
                n += 1;
                if n % 64 == 0 {
                    head.cell.lock().0 = None;
                    // Pace the allocation: cycles stay short.
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            head.verify("mutator's head");
        });
        for t in ts {
            t.join().or_panic();
        }
        stop.store(true, SeqCst);
        m.join().or_panic();
        assert_eq!(calls.load(SeqCst), 60);
    });
}

// ---------------------------------------------------------------- cells --

/// A counter behind a cell (no handles).
struct Count(u64);

// SAFETY: holds no handle.
unsafe impl Trace for Count {
    fn trace(&self, _: &mut Tracer<'_>) {}
}

/// A `GcMutex` counter and the list of nodes appended under it.
struct Shared {
    count: GcMutex<Count>,
    rw: GcRwLock<Count>,
    list: GcMutex<EdgesOf<0>>,
    head: GcAtomic<Node>,
}

// SAFETY: reports the cells, which report their handles.
unsafe impl Trace for Shared {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.count.trace(t);
        self.rw.trace(t);
        self.list.trace(t);
        self.head.trace(t);
    }
}

fn shared() -> Gc<Shared> {
    Gc::new(Shared {
        count: GcMutex::new(Count(0)),
        rw: GcRwLock::new(Count(0)),
        list: GcMutex::new(EdgesOf(Vec::new())),
        head: GcAtomic::new(None),
    })
}

#[test]
fn cells_from_many_goroutines_during_collections() {
    with_timeout("cells from many goroutines", 120, || {
        gort::run(|| {
            const G: usize = 12;
            const N: usize = 300;
            let s = shared();
            let stop = Arc::new(AtomicBool::new(false));
            let st = stop.clone();
            let collector = gort::spawn(move || {
                let mut n = 0;
                while !st.load(SeqCst) {
                    gort::gc();
                    n += 1;
                }
                n
            });
            let workers: Vec<_> = (0..G)
                .map(|g| {
                    let s = s.clone();
                    gort::spawn(move || {
                        for i in 0..N {
                            {
                                let mut c = s.count.lock();
                                let v = c.0;
                                if i % 32 == 0 {
                                    gort::gosched(); // hold it across a switch
                                }
                                c.0 = v + 1;
                            }
                            if i % 8 == 0 {
                                s.list.lock().0.push(Node::leaf());
                            }
                            if i % 4 == g % 4 {
                                s.rw.write().0 += 1;
                            } else {
                                let _ = s.rw.read().0;
                            }
                            // A lock-free stack through the GcAtomic: push.
                            loop {
                                let cur = s.head.load();
                                let new = Node::new(Parts { imm: cur.clone(), ..Default::default() });
                                if s.head.compare_exchange(cur.as_ref(), Some(new)).is_ok() {
                                    break;
                                }
                            }
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().or_panic();
            }
            stop.store(true, SeqCst);
            let cycles = collector.join().or_panic();
            assert!(cycles > 0);
            assert_eq!(s.count.lock().0, (G * N) as u64);
            let writes: usize = (0..G).map(|g| (0..N).filter(|i| i % 4 == g % 4).count()).sum();
            assert_eq!(s.rw.read().0, writes as u64);
            let list = s.list.lock();
            assert_eq!(list.0.len(), G * N.div_ceil(8));
            for n in &list.0 {
                n.verify("list node");
            }
            drop(list);
            // Every push is in the chain, each node intact.
            let mut cur = s.head.load();
            let mut len = 0;
            while let Some(n) = cur {
                n.verify("stack node");
                len += 1;
                cur = n.imm.clone();
            }
            assert_eq!(len, G * N);
        })
    });
}

#[test]
fn rwlock_readers_share_and_writers_exclude() {
    with_timeout("GcRwLock", 60, || {
        gort::run(|| {
            let s = shared();
            let inside = Arc::new(AtomicUsize::new(0));
            let readers: Vec<_> = (0..4)
                .map(|_| {
                    let (s, inside) = (s.clone(), inside.clone());
                    gort::spawn(move || {
                        let g = s.rw.read();
                        inside.fetch_add(1, SeqCst);
                        // All four readers hold the lock at once.
                        assert!(common::spin_until(30, || inside.load(SeqCst) == 4), "readers do not share");
                        let v = g.0;
                        drop(g);
                        v
                    })
                })
                .collect();
            for r in readers {
                assert_eq!(r.join().or_panic(), 0);
            }
            let w = s.rw.write();
            let s2 = s.clone();
            let got = Arc::new(AtomicBool::new(false));
            let g2 = got.clone();
            let reader = gort::spawn(move || {
                let v = s2.rw.read().0;
                g2.store(true, SeqCst);
                v
            });
            gort::time::sleep(Duration::from_millis(30));
            assert!(!got.load(SeqCst), "a reader got in beside a writer");
            drop(w);
            assert_eq!(reader.join().or_panic(), 0);
        })
    });
}

#[test]
fn a_goroutine_waiting_for_a_cell_parks() {
    // One P: if waiting for a held GcMutex blocked the thread, the ticker
    // could not run while the lock is held, and the holder waits for it.
    let out = common::in_child("a_goroutine_waiting_for_a_cell_parks", &[("GOMAXPROCS", "1")], || {
        gort::run(|| {
            let s = shared();
            let held = Arc::new(AtomicBool::new(false));
            let ticked = Arc::new(AtomicBool::new(false));
            let (s1, h1, t1) = (s.clone(), held.clone(), ticked.clone());
            let holder = gort::spawn(move || {
                let g = s1.count.lock();
                h1.store(true, SeqCst);
                assert!(common::spin_until(60, || t1.load(SeqCst)), "the ticker never ran while the lock was held");
                assert_eq!(g.0, 0);
                drop(g);
            });
            assert!(common::spin_until(30, || held.load(SeqCst)));
            let waiters: Vec<_> = (0..50)
                .map(|_| {
                    let s = s.clone();
                    gort::spawn(move || s.count.lock().0 += 1)
                })
                .collect();
            let ticker = gort::spawn(move || {
                for _ in 0..20 {
                    gort::time::sleep(Duration::from_millis(1));
                }
                ticked.store(true, SeqCst);
            });
            ticker.join().or_panic();
            holder.join().or_panic();
            for w in waiters {
                w.join().or_panic();
            }
            assert_eq!(s.count.lock().0, 50);
        })
    });
    if let Some(out) = out {
        out.assert_success();
    }
}

// ------------------------------------------------- sizes and alignments --

/// A tracked blob of `N` bytes, filled with a pattern of its id.
#[repr(C)]
struct Blob<const N: usize> {
    id: u64,
    data: [u8; N],
}

impl<const N: usize> Blob<N> {
    fn new() -> Blob<N> {
        let id = new_id();
        let mut data = [0u8; N];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (id as u8).wrapping_add((i % 251) as u8);
        }
        Blob { id, data }
    }

    fn intact(&self) -> bool {
        !dropped(self.id)
            && self.data.iter().enumerate().all(|(i, &b)| b == (self.id as u8).wrapping_add((i % 251) as u8))
    }
}

impl<const N: usize> Drop for Blob<N> {
    fn drop(&mut self) {
        record_drop(self.id);
    }
}

// SAFETY: holds no handle.
unsafe impl<const N: usize> Trace for Blob<N> {
    fn trace(&self, _: &mut Tracer<'_>) {}
}

macro_rules! aligned {
    ($name:ident, $a:literal) => {
        #[repr(C, align($a))]
        struct $name<const N: usize>(Blob<N>);
        // SAFETY: holds no handle.
        unsafe impl<const N: usize> Trace for $name<N> {
            fn trace(&self, _: &mut Tracer<'_>) {}
        }
    };
}
aligned!(A64, 64);
aligned!(A128, 128);
aligned!(A4096, 4096);

/// Allocates `n` objects made by `make`, checks alignment and contents
/// across a cycle, frees half, then the rest.
fn exercise<T: Trace + Send + Sync + 'static>(n: usize, make: impl Fn() -> T, blob: impl Fn(&T) -> &dyn Check) {
    let v: Vec<Gc<T>> = (0..n).map(|_| Gc::new(make())).collect();
    let align = std::mem::align_of::<T>();
    for g in &v {
        assert_eq!(Gc::as_ptr(g) as usize % align, 0, "{} misaligned", std::any::type_name::<T>());
    }
    let all: Vec<u64> = v.iter().map(|g| blob(g).id()).collect();
    let (keep, drop_now): (Vec<_>, Vec<_>) = v.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let dead: Vec<u64> = drop_now.iter().map(|(_, g)| blob(g).id()).collect();
    drop(drop_now);
    gort::gc();
    assert_all_freed(std::any::type_name::<T>(), &dead);
    for (_, g) in &keep {
        assert!(blob(g).ok(), "{} damaged", std::any::type_name::<T>());
    }
    drop(keep);
    gort::gc();
    assert_all_freed(std::any::type_name::<T>(), &all);
}

trait Check {
    fn id(&self) -> u64;
    fn ok(&self) -> bool;
}

impl<const N: usize> Check for Blob<N> {
    fn id(&self) -> u64 {
        self.id
    }
    fn ok(&self) -> bool {
        self.intact()
    }
}

fn sizes() {
    macro_rules! plain {
        ($($n:expr => $k:expr),*) => {$( exercise($k, Blob::<$n>::new, |b| b as &dyn Check); )*};
    }
    // Every range of the size classes, the largest class, and large
    // objects (a span each).
    plain!(0 => 200, 8 => 200, 16 => 200, 40 => 200, 100 => 200, 250 => 200, 500 => 100, 1000 => 100,
           2000 => 100, 3000 => 50, 5000 => 50, 8000 => 30, 9000 => 30, 16000 => 20, 20000 => 20,
           32000 => 10, 32744 => 10, 32745 => 10, 40000 => 10, 100_000 => 5, 1_000_000 => 3);
    macro_rules! over {
        ($($w:ident, $n:expr => $k:expr),*) => {$( exercise($k, || $w(Blob::<$n>::new()), |b| &b.0 as &dyn Check); )*};
    }
    // Over-aligned: 64 fits the size classes; 128 and 4096 are large.
    over!(A64, 8 => 100, A64, 1000 => 50, A128, 8 => 20, A128, 5000 => 10, A4096, 8 => 10, A4096, 40000 => 4);
}

/// Two spans' worth and more of each size class (a `Blob<N>` box is
/// `N + 16` bytes: header, id, data): the collector's count of a span's
/// last slot once lay in its first slot's header, which only a full span
/// shows (that object was then never freed).
fn full_spans() {
    macro_rules! plain {
        ($($n:expr => $k:expr),*) => {$( exercise($k, Blob::<$n>::new, |b| b as &dyn Check); )*};
    }
    plain!(0 => 8194, 8 => 5463, 16 => 4098, 32 => 2732, 48 => 2050, 64 => 1640, 80 => 1367, 96 => 1172, 112 => 1026,
           128 => 912, 144 => 821, 160 => 746, 176 => 684, 192 => 632, 208 => 587, 224 => 548, 240 => 514,
           272 => 457, 304 => 411, 336 => 374, 368 => 343, 400 => 317, 432 => 294, 464 => 275, 496 => 258,
           560 => 229, 624 => 206, 688 => 188, 752 => 172, 880 => 148, 1008 => 130, 1136 => 115, 1264 => 104,
           1392 => 95, 1520 => 87, 1776 => 75, 2032 => 66, 2288 => 58, 2672 => 50, 3056 => 44, 3184 => 42,
           3440 => 39, 4080 => 34, 4848 => 28, 5360 => 26, 6128 => 23, 6512 => 22, 6768 => 21, 6896 => 20,
           8176 => 18, 9456 => 57, 9712 => 55, 10224 => 53, 10864 => 50, 12272 => 44, 13552 => 40, 14320 => 38,
           16368 => 34, 18416 => 30, 19056 => 29, 20464 => 27, 21744 => 26, 24560 => 23, 27248 => 21, 28656 => 20,
           32752 => 18);
}

#[test]
fn full_spans_of_every_size_class() {
    std::thread::Builder::new().stack_size(64 << 20).spawn(full_spans).unwrap().join().or_panic();
}

#[test]
fn objects_of_every_size_and_alignment() {
    // Big values are built on the stack: a thread with room for them.
    std::thread::Builder::new().stack_size(64 << 20).spawn(sizes).unwrap().join().or_panic();
}

// ------------------------------------------------------------- pacing --

/// A 1 KiB object holding a handle to itself: garbage only the collector
/// frees (dropping its last outside handle leaves the one inside).
#[derive(Trace)]
struct Looped {
    blob: Blob<1000>,
    me: GcMutex<Option<Gc<Looped>>>,
}

/// Allocates about `bytes` of garbage in 1 KiB self-referencing objects;
/// returns their ids.
fn garbage(bytes: usize) -> Vec<u64> {
    (0..bytes / 1024)
        .map(|_| {
            let b = Gc::new(Looped { blob: Blob::new(), me: GcMutex::new(None) });
            *b.me.lock() = Some(b.clone());
            b.blob.id
        })
        .collect()
}

#[test]
fn automatic_cycles_start_when_the_heap_grows() {
    let out = common::in_child("automatic_cycles_start_when_the_heap_grows", &[("GOGC", "100")], || {
        let kept = Node::new(Parts { cell: Some(Node::leaf()), ..Default::default() });
        let before = gort::gc::__hooks::num_gc();
        let mut ids = Vec::new();
        // The first goal is 4 MiB: a few times that must start cycles.
        for _ in 0..8 {
            ids.extend(garbage(4 << 20));
            if gort::gc::__hooks::num_gc() > before + 1 {
                break;
            }
        }
        assert!(common::eventually(30, || gort::gc::__hooks::num_gc() > before), "no automatic cycle");
        assert!(common::eventually(30, || count_dropped(&ids) > 0), "automatic cycles freed nothing");
        verify_parents(&[kept]);
    });
    if let Some(out) = out {
        out.assert_success();
    }
}

#[test]
fn gogc_off_disables_automatic_cycles() {
    let out = common::in_child("gogc_off_disables_automatic_cycles", &[("GOGC", "off")], || {
        let ids = garbage(32 << 20);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(gort::gc::__hooks::num_gc(), 0, "a cycle ran with GOGC=off");
        assert_eq!(count_dropped(&ids), 0);
        gort::gc();
        assert_eq!(gort::gc::__hooks::num_gc(), 1);
        assert_all_freed("garbage, after gort::gc()", &ids);
    });
    if let Some(out) = out {
        out.assert_success();
    }
}

#[test]
fn a_fast_allocator_does_not_outrun_the_collector() {
    // A thread allocating flat out (a chain of 64 nodes at a time, then
    // garbage) beside automatic cycles and a gort::gc() loop: the heap
    // must stay bounded (back pressure, and a goal that does not count
    // what was allocated during the cycle).
    let out = common::in_child("a_fast_allocator_does_not_outrun_the_collector", &[("GOGC", "100")], || {
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let m = std::thread::spawn(move || {
            let head = Node::leaf();
            let mut n = 0u64;
            while !s2.load(SeqCst) {
                let new = Node::new(Parts { cell: head.cell.lock().0.take(), ..Default::default() });
                *head.cell.lock() = SlotOf(Some(new));
                n += 1;
                if n % 64 == 0 {
                    head.cell.lock().0 = None;
                }
            }
            n
        });
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            gort::gc();
        }
        stop.store(true, SeqCst);
        let n = m.join().or_panic();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let hwm: u64 = status
            .lines()
            .find(|l| l.starts_with("VmHWM"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap();
        println!("allocated {n} nodes, peak RSS {hwm} kB");
        assert!(hwm < 256 * 1024, "peak RSS {hwm} kB after allocating {n} nodes: the heap outran the collector");
    });
    if let Some(out) = out {
        out.assert_success();
    }
}

#[test]
fn allocating_threads_assist_marking() {
    // A large live graph takes the collector a while to mark; meanwhile a
    // goroutine allocates flat out past the goal. It must pay with mark
    // work (Go's mark assist), not only with waiting.
    let out = common::in_child("allocating_threads_assist_marking", &[("GOGC", "100")], || {
        let live: Vec<Gc<Node>> =
            (0..200).map(|_| Node::new(Parts { cell: Some(Node::leaf()), ..Default::default() })).collect();
        let mut chain = Node::leaf();
        for _ in 0..100_000 {
            chain = Node::new(Parts { cell: Some(chain), ..Default::default() });
        }
        let before = gort::gc::__hooks::assisted();
        let cycles = gort::gc::__hooks::num_gc();
        let alloc = gort::spawn(move || {
            let start = std::time::Instant::now();
            while gort::gc::__hooks::assisted() == before && start.elapsed() < Duration::from_secs(20) {
                drop(garbage(1 << 20));
            }
        });
        alloc.join().or_panic();
        let assisted = gort::gc::__hooks::assisted() - before;
        println!("assists traced {assisted} objects over {} cycles", gort::gc::__hooks::num_gc() - cycles);
        assert!(assisted > 0, "no allocation paid for marking");
        verify_parents(&live);
        verify_parents(&[chain]);
    });
    if let Some(out) = out {
        out.assert_success();
    }
}

#[test]
fn mark_workers_scale_with_gomaxprocs() {
    // GOMAXPROCS 8: two mark workers (25%), the collector's thread and one
    // more, which must take part in marking a large graph.
    let out = common::in_child("mark_workers_scale_with_gomaxprocs", &[("GOMAXPROCS", "8")], || {
        let mut chains: Vec<Gc<Node>> = Vec::new();
        for _ in 0..64 {
            let mut c = Node::leaf();
            for _ in 0..2000 {
                c = Node::new(Parts { cell: Some(c), ..Default::default() });
            }
            chains.push(c);
        }
        let roots = Node::new(Parts { edges: chains.clone(), ..Default::default() });
        drop(chains);
        let mut n = 0;
        while gort::gc::__hooks::worked() == 0 && n < 200 {
            gort::gc();
            n += 1;
        }
        assert!(gort::gc::__hooks::worked() > 0, "no background worker marked anything in {n} cycles");
        let heads: Vec<Gc<Node>> = roots.edges.lock().0.clone();
        assert_eq!(heads.len(), 64);
        for h in heads {
            let (mut at, mut depth) = (Some(h), 0);
            while let Some(x) = at {
                x.verify("chain");
                at = x.cell_child();
                depth += 1;
            }
            assert_eq!(depth, 2001);
        }
    });
    if let Some(out) = out {
        out.assert_success();
    }
}

#[test]
fn walks_split_over_idle_cpus_keep_the_live_and_free_the_garbage() {
    // A heap over 64 MiB (6M 16-byte leaves in 600 cells), and CPUs idle while
    // `gort::gc()` waits: the cycle's walks are split over threads and
    // marking uses the idle CPUs too. Live objects must survive and
    // garbage (rings, and nodes with cleanups) be freed as with one thread.
    let envs = [("GOMAXPROCS", "2")];
    let out = common::in_child("walks_split_over_idle_cpus_keep_the_live_and_free_the_garbage", &envs, || {
        let big: Vec<Gc<GcMutex<Vec<Gc<u64>>>>> = (0..600u64)
            .map(|i| Gc::new(GcMutex::new((0..10_000).map(|j| Gc::new(i * 10_000 + j)).collect())))
            .collect();
        let (live, _) = parents(200);
        let cleaned = Arc::new(AtomicUsize::new(0));
        let split_before = gort::gc::__hooks::split_walks();
        let worked_before = gort::gc::__hooks::worked();
        for round in 0..10 {
            let nodes: Vec<Gc<Node>> = (0..1000).map(|_| Node::leaf()).collect();
            for (i, n) in nodes.iter().enumerate() {
                *n.cell.lock() = SlotOf(Some(nodes[(i + 1) % nodes.len()].clone()));
            }
            for n in &nodes[..10] {
                let c = cleaned.clone();
                let _ = gort::add_cleanup(
                    n,
                    move |_| {
                        c.fetch_add(1, SeqCst);
                    },
                    (),
                );
            }
            let ring = ids(&nodes);
            drop(nodes);
            gort::gc();
            assert_all_freed("a ring", &ring);
            assert!(eventually(10, || cleaned.load(SeqCst) == 10 * (round + 1)), "cleanups of round {round} ran");
            verify_parents(&live);
            for (i, c) in big.iter().enumerate() {
                let v = c.lock();
                assert!(v.iter().enumerate().all(|(j, x)| **x == (i * 10_000 + j) as u64), "cell {i} intact");
            }
            if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2
                || (gort::gc::__hooks::split_walks() > split_before && gort::gc::__hooks::worked() > worked_before)
            {
                return;
            }
        }
        panic!(
            "in 10 cycles over an idle 2-CPU process: {} walks split, {} objects marked by workers",
            gort::gc::__hooks::split_walks() - split_before,
            gort::gc::__hooks::worked() - worked_before
        );
    });
    if let Some(out) = out {
        out.assert_success();
    }
}

#[test]
fn try_lock_fails_only_when_a_goroutine_holds_the_lock() {
    // The collector (and assists) hold a cell briefly to copy its handles;
    // as Go's TryLock, `try_lock` must not fail because of that: only a
    // goroutine or thread holding the lock makes it fail.
    let big: Gc<GcMutex<Vec<Gc<Node>>>> = Gc::new(GcMutex::new((0..10_000).map(|_| Node::leaf()).collect()));
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let collector = std::thread::spawn(move || {
        let mut n = 0;
        while !s2.load(SeqCst) {
            gort::gc();
            n += 1;
        }
        n
    });
    let mut tries = 0u64;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(500) || tries < 1000 {
        let g = big.try_lock();
        assert!(g.is_some(), "try_lock failed with no holder (try {tries}) while the collector traced the cell");
        drop(g);
        tries += 1;
    }
    stop.store(true, SeqCst);
    let cycles = collector.join().or_panic();
    assert!(cycles > 0);
    assert_eq!(big.lock().len(), 10_000);
}
