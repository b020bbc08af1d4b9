//! Stress: std threads and goroutines mutate a shared graph through every
//! kind of edge (`GcMutex`, `GcRwLock`, `GcAtomic`, immutable fields) while
//! another thread runs `gort::gc()` in a loop. Every node carries a
//! checksum that its `Drop` poisons, checked on every visit; a set of
//! anchor nodes is always reachable and must never be dropped; at the end
//! the whole reachable graph is checked, then released, and every node
//! ever allocated must be freed.
//!
//! Every handle in the graph is stored with the id of the node it was
//! made from, and checked against it when followed: a handle to an object
//! that was freed and whose memory now holds another node is caught even
//! though that node's own checksum is fine.
//!
//! Runs for `GORT_GC_STRESS_SECS` seconds (default 2, so CI stays fast):
//!
//! ```text
//! GORT_GC_STRESS_SECS=10 cargo test --release --test gc_stress -- --nocapture
//! ```

mod common;
#[path = "common/gc.rs"]
mod gcc;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::OrPanic;
use gcc::{checksum, count_dropped, dropped, new_id, next_id, record_drop, POISON};
use gort::gc::{Gc, GcAtomic, GcMutex, GcRwLock, Trace, Tracer};

/// A handle with the id of the node it points to.
#[derive(Clone)]
struct Link {
    id: u64,
    to: Gc<Node>,
}

impl Link {
    fn new(to: Gc<Node>) -> Link {
        Link { id: to.id, to }
    }

    /// The node, checked to be the one this link was made for and intact.
    #[track_caller]
    fn get(&self) -> &Gc<Node> {
        assert_eq!(
            self.to.id, self.id,
            "a handle to node {} reads node {}: freed while reachable, memory reused",
            self.id, self.to.id
        );
        visit(&self.to);
        &self.to
    }
}

// SAFETY: reports its one handle.
unsafe impl Trace for Link {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.to.trace(t);
    }
}

struct One(Option<Link>);
struct Many(Vec<Link>);

// SAFETY: reports the handle, if any.
unsafe impl Trace for One {
    fn trace(&self, t: &mut Tracer<'_>) {
        if let Some(l) = &self.0 {
            l.trace(t);
        }
    }
}

// SAFETY: reports each handle once.
unsafe impl Trace for Many {
    fn trace(&self, t: &mut Tracer<'_>) {
        for l in &self.0 {
            l.trace(t);
        }
    }
}

/// A node of the stress graph.
struct Node {
    id: u64,
    check: AtomicU64,
    imm: Option<Link>,
    cell: GcMutex<One>,
    rw: GcRwLock<One>,
    /// The one untagged edge (a `GcAtomic` holds a bare handle).
    atom: GcAtomic<Node>,
    edges: GcMutex<Many>,
}

// SAFETY: reports every handle the node owns, once.
unsafe impl Trace for Node {
    fn trace(&self, t: &mut Tracer<'_>) {
        if let Some(l) = &self.imm {
            l.trace(t);
        }
        self.cell.trace(t);
        self.rw.trace(t);
        self.atom.trace(t);
        self.edges.trace(t);
    }
}

impl Drop for Node {
    /// Poisons the checksum and records the drop (no `Gc` dereferenced).
    fn drop(&mut self) {
        *self.check.get_mut() = POISON;
        record_drop(self.id);
    }
}

fn node(imm: Option<Link>, cell: Option<Link>, atom: Option<Gc<Node>>) -> Gc<Node> {
    let id = new_id();
    Gc::new(Node {
        id,
        check: AtomicU64::new(checksum(id)),
        imm,
        cell: GcMutex::new(One(cell)),
        rw: GcRwLock::new(One(None)),
        atom: GcAtomic::new(atom),
        edges: GcMutex::new(Many(Vec::new())),
    })
}

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// Checks a node on a visit.
#[track_caller]
fn visit(n: &Node) {
    assert!(!dropped(n.id), "node {} was dropped while still reachable", n.id);
    let c = n.check.load(SeqCst);
    assert_eq!(c, checksum(n.id), "node {}: checksum {c:#x} is wrong (freed and reused?)", n.id);
}

/// A new handle to a random neighbour of `n`, through a random kind of
/// edge (an immutable field, a mutex, a read lock, an atomic load, the
/// edge list), or `None`.
fn step(n: &Node, r: &mut Rng) -> Option<Gc<Node>> {
    let next = match r.below(5) {
        0 => n.imm.as_ref().map(|l| l.get().clone()),
        1 => n.cell.lock().0.as_ref().map(|l| l.get().clone()),
        2 => n.rw.read().0.as_ref().map(|l| l.get().clone()),
        3 => n.atom.load(),
        _ => {
            let e = n.edges.lock();
            (!e.0.is_empty()).then(|| e.0[r.below(e.0.len())].get().clone())
        }
    };
    if let Some(x) = &next {
        visit(x);
    }
    next
}

/// A random walk from a random anchor: the node reached.
fn walk(anchors: &[Gc<Node>], r: &mut Rng) -> Gc<Node> {
    let mut cur = anchors[r.below(anchors.len())].clone();
    visit(&cur);
    for _ in 0..r.below(8) {
        match step(&cur, r) {
            Some(n) => cur = n, // the handle to the previous node is dropped here
            None => break,
        }
    }
    cur
}

#[derive(Default)]
struct Stats {
    ops: AtomicU64,
    guarded_gcs: AtomicU64,
}

/// One mutator: random walks and random changes until `stop`.
fn mutate(anchors: Arc<Vec<Gc<Node>>>, seed: u64, stop: Arc<AtomicBool>, stats: Arc<Stats>, goroutine: bool) {
    let mut r = Rng(seed | 1);
    // Handles held on this mutator's stack for a while.
    let mut held: Vec<Gc<Node>> = Vec::new();
    let mut ops = 0u64;
    while !stop.load(SeqCst) {
        let a = walk(&anchors, &mut r);
        let b = walk(&anchors, &mut r);
        match r.below(12) {
            // Add an edge a → b.
            0 | 1 => {
                let mut e = a.edges.lock();
                if e.0.len() < 6 {
                    e.0.push(Link::new(b.clone()));
                } else {
                    let i = r.below(e.0.len());
                    e.0[i] = Link::new(b.clone());
                }
            }
            // Remove an edge (the handle is dropped under the lock).
            2 => {
                let mut e = a.edges.lock();
                if !e.0.is_empty() {
                    let i = r.below(e.0.len());
                    e.0.swap_remove(i).get();
                }
            }
            // Replace a's cell content with a new node made of neighbours
            // (the new node's immutable field points to b).
            3 => {
                let old = a.cell.lock().0.take();
                let n = node(Some(Link::new(b.clone())), old, None);
                a.cell.lock().0 = Some(Link::new(n));
            }
            // Take a's cell content out onto the stack.
            4 => {
                if let Some(x) = a.cell.lock().0.take() {
                    x.get();
                    held.push(x.to);
                }
            }
            // Write b into a's read-write lock, or clear it.
            5 => a.rw.write().0 = (!r.one_in(4)).then(|| Link::new(b.clone())),
            // GcAtomic: swap in a new node, keep the old one for a while.
            6 => {
                let n = node(Some(Link::new(a.clone())), None, b.atom.load());
                if let Some(old) = a.atom.swap(Some(n)) {
                    visit(&old);
                    held.push(old);
                }
            }
            // GcAtomic: compare-exchange from what was loaded.
            7 => {
                let cur = a.atom.load();
                match a.atom.compare_exchange(cur.as_ref(), Some(b.clone())) {
                    Ok(old) => {
                        if let Some(old) = old {
                            visit(&old);
                        }
                    }
                    Err((_, found)) => {
                        if let Some(f) = found {
                            visit(&f);
                        }
                    }
                }
            }
            // Store a held handle back somewhere.
            8 => {
                if let Some(x) = held.pop() {
                    let mut e = a.edges.lock();
                    if e.0.len() < 6 {
                        e.0.push(Link::new(x));
                    }
                }
            }
            // Clone a chain of handles out of immutable fields, dropping
            // each parent (GC_DESIGN's S9 pattern).
            9 => {
                let mut cur = b.clone();
                while let Some(next) = cur.imm.as_ref().map(|l| l.get().clone()) {
                    cur = next;
                }
            }
            // Read a's cells in place, holding the guards for a moment.
            10 => {
                let g = a.rw.read();
                let m = a.cell.lock();
                if let Some(x) = g.0.as_ref() {
                    x.get();
                }
                if let Some(x) = m.0.as_ref() {
                    x.get();
                }
                // Now and then, collect while holding both guards.
                if r.one_in(2000) {
                    gort::gc();
                    stats.guarded_gcs.fetch_add(1, SeqCst);
                }
            }
            // Drop what is held.
            _ => held.clear(),
        }
        if held.len() > 16 {
            held.remove(0);
        }
        ops += 1;
        if ops % 64 == 0 {
            if goroutine {
                gort::gosched();
            } else {
                std::thread::yield_now();
            }
        }
    }
    for x in &held {
        visit(x);
    }
    stats.ops.fetch_add(ops, SeqCst);
}

fn secs() -> f64 {
    std::env::var("GORT_GC_STRESS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0)
}

/// Peak resident memory of this process, from `/proc/self/status`.
fn vm_hwm() -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM"))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[test]
fn shared_graph_under_concurrent_mutation_and_collection() {
    stress("");
}

/// The same with every walk of every cycle split over three threads, and
/// two mark workers beside the collector (on its own, a small heap's
/// cycle uses neither), in a child process.
#[test]
fn shared_graph_under_concurrent_mutation_and_split_collection() {
    let out = common::in_child("shared_graph_under_concurrent_mutation_and_split_collection", &[], || {
        gort::gc::__hooks::force_walkers(3);
        let (before, worked) = (gort::gc::__hooks::split_walks(), gort::gc::__hooks::worked());
        stress(" (walks split)");
        assert!(gort::gc::__hooks::split_walks() > before, "no walk was split");
        assert!(gort::gc::__hooks::worked() > worked, "no mark worker marked");
    });
    if let Some(out) = out {
        out.assert_success();
        print!("{}", out.stdout);
    }
}

/// The same with the count keeping the children of every cell it counts
/// (`__hooks::snap_min(1)`), so that barriers pin kept lists and the mark
/// shades them instead of reading cells, in a child process.
#[test]
fn shared_graph_under_concurrent_mutation_and_collection_with_kept_lists() {
    let out = common::in_child("shared_graph_under_concurrent_mutation_and_collection_with_kept_lists", &[], || {
        gort::gc::__hooks::snap_min(1);
        let kept = gort::gc::__hooks::kept_lists().0;
        stress(" (kept lists)");
        assert!(gort::gc::__hooks::kept_lists().0 > kept, "no cell's children were kept");
    });
    if let Some(out) = out {
        out.assert_success();
        print!("{}", out.stdout);
    }
}

fn stress(what: &str) {
    const ANCHORS: usize = 32;
    const THREADS: u64 = 2;
    const GOROUTINES: u64 = 4;
    let secs = secs();
    let first_id = next_id();
    let anchors: Vec<Gc<Node>> = (0..ANCHORS).map(|_| node(None, None, None)).collect();
    // Start with some structure: each anchor points at the next.
    for (i, a) in anchors.iter().enumerate() {
        a.edges.lock().0.push(Link::new(anchors[(i + 1) % ANCHORS].clone()));
    }
    let anchor_ids: Vec<u64> = anchors.iter().map(|a| a.id).collect();
    let anchors = Arc::new(anchors);
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Stats::default());
    let cycles_before = gort::gc::__hooks::num_gc();

    let collector = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(SeqCst) {
                gort::gc();
                n += 1;
            }
            n
        })
    };
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let (a, s, st) = (anchors.clone(), stop.clone(), stats.clone());
            std::thread::spawn(move || mutate(a, 0x9E37_79B9 + i, s, st, false))
        })
        .collect();
    let goroutines = {
        let (a, s, st) = (anchors.clone(), stop.clone(), stats.clone());
        std::thread::spawn(move || {
            gort::run(move || {
                let hs: Vec<_> = (0..GOROUTINES)
                    .map(|i| {
                        let (a, s, st) = (a.clone(), s.clone(), st.clone());
                        gort::spawn(move || mutate(a, 0xC0FF_EE00 + i, s, st, true))
                    })
                    .collect();
                for h in hs {
                    h.join().or_panic();
                }
            })
        })
    };

    let start = Instant::now();
    while start.elapsed() < Duration::from_secs_f64(secs) {
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(count_dropped(&anchor_ids), 0, "an anchor was freed");
        for a in anchors.iter() {
            visit(a);
        }
    }
    stop.store(true, SeqCst);
    for t in threads {
        t.join().or_panic();
    }
    goroutines.join().or_panic();
    let forced = collector.join().or_panic();
    let elapsed = start.elapsed();

    // Everything reachable from the anchors is intact.
    let mut seen = std::collections::BTreeSet::new();
    let mut todo: Vec<Gc<Node>> = anchors.iter().cloned().collect();
    while let Some(n) = todo.pop() {
        if !seen.insert(n.id) {
            continue;
        }
        visit(&n);
        todo.extend(n.imm.as_ref().map(|l| l.get().clone()));
        todo.extend(n.cell.lock().0.as_ref().map(|l| l.get().clone()));
        todo.extend(n.rw.read().0.as_ref().map(|l| l.get().clone()));
        todo.extend(n.atom.load());
        todo.extend(n.edges.lock().0.iter().map(|l| l.get().clone()));
    }
    gort::gc();
    assert_eq!(count_dropped(&anchor_ids), 0, "an anchor was freed");
    let reachable = seen.len();
    for id in &seen {
        assert!(!dropped(*id), "node {id} was reachable and got freed");
    }

    // Released, everything is freed.
    drop(anchors);
    gort::gc();
    gort::gc();
    let last_id = next_id();
    let leaked: Vec<u64> = (first_id..last_id).filter(|&i| !dropped(i)).collect();
    let cycles = gort::gc::__hooks::num_gc() - cycles_before;
    println!(
        "gc_stress{what}: {:.1} s, {} mutator ops ({} threads, {} goroutines), {} nodes allocated, {} reachable at the end, \
         {} cycles ({} from the gc loop, {} under guards), peak RSS {}",
        elapsed.as_secs_f64(),
        stats.ops.load(SeqCst),
        THREADS,
        GOROUTINES,
        last_id - first_id,
        reachable,
        cycles,
        forced,
        stats.guarded_gcs.load(SeqCst),
        vm_hwm(),
    );
    assert!(leaked.is_empty(), "{} nodes were never freed, e.g. {:?}", leaked.len(), &leaked[..leaked.len().min(10)]);
}
