//! Drives gort's collector with random graph operations from several
//! threads at once and checks it against a model of reachability.
//!
//! Every node has, per thread, an edge list (`GcMutex`) and a slot
//! (`GcAtomic`) that only that thread writes, so each thread's model of
//! its own edges is exact whatever the interleaving; reads (cloning a
//! handle out, walking the graph) go through every thread's edges. The
//! input is a series of phases: in each, the threads run their operations
//! concurrently (create a node, add or remove an edge, store / swap /
//! compare-exchange / take a slot, drop or clone a root, clone a handle
//! out of any thread's edges, walk the graph, `gort::gc()`, `gort::gc()`
//! while holding an edge list's lock). Between phases the threads are
//! joined and the merged model is checked: the real graph reachable from
//! the roots is the model's, edge for edge; after `gort::gc()` every node
//! the roots do not reach has been dropped exactly once and every reached
//! one not at all. Each node carries a checksum checked on every visit and
//! when it is dropped. At the end all roots go, and after `gort::gc()`
//! every node must have been dropped exactly once. Inputs whose first
//! byte has its top bit set split every cycle's walks over three threads.
//! Inputs with the next bit set run the threads' and checkpoints' cycles
//! as the pacer's (`__hooks::skip_hot_when_forced`: cells a barrier touched
//! in the cycle before are not counted): a checkpoint then only checks
//! that no reachable node was dropped and none twice (garbage through such
//! a cell is freed a cycle later); the final `gort::gc()` is exact again.
//! Inputs whose second byte has its top bit set have the count keep the
//! children of every cell it counts (`__hooks::snap_min(1)`).
//!
//! `cargo +nightly fuzz run gc_graph` (from `fuzz/`).
#![no_main]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Arc;

use gort::gc::{Gc, GcAtomic, GcMutex, Trace, Tracer};
use libfuzzer_sys::fuzz_target;

/// Threads (and edge lists / slots per node).
const THREADS: usize = 4;
/// Nodes per input.
const MAX_NODES: usize = 1024;
/// Handles per edge list.
const MAX_EDGES: usize = 16;
/// Roots per thread.
const MAX_ROOTS: usize = 64;
/// `gort::gc()` calls from the threads per input (each checkpoint adds one).
const MAX_GCS: u32 = 12;

/// Per-input state shared with every node.
struct Shared {
    /// Times each node id was dropped.
    drops: Box<[AtomicU32]>,
    /// Nodes whose checksum was wrong when dropped.
    bad_drops: AtomicU32,
    next_id: AtomicU32,
    gcs: AtomicU32,
    salt: u64,
    /// The cycles skip hot cells, as the pacer's do.
    paced: bool,
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Shared {
    fn sum(&self, id: u32) -> u64 {
        mix(self.salt ^ u64::from(id))
    }
}

/// Counts its node's drop (on the collector's drop goroutine).
struct Tally {
    id: u32,
    sum: u64,
    shared: Arc<Shared>,
}

impl Drop for Tally {
    fn drop(&mut self) {
        if self.sum != self.shared.sum(self.id) {
            self.shared.bad_drops.fetch_add(1, SeqCst);
        }
        if let Some(d) = self.shared.drops.get(self.id as usize) {
            d.fetch_add(1, SeqCst);
        } else {
            self.shared.bad_drops.fetch_add(1, SeqCst);
        }
    }
}

struct Edges(Vec<Gc<Node>>);

// SAFETY: reports each handle of the list once.
unsafe impl Trace for Edges {
    fn trace(&self, t: &mut Tracer<'_>) {
        for g in &self.0 {
            g.trace(t);
        }
    }
}

struct Node {
    id: u32,
    sum: u64,
    /// More words derived from `sum`, so a slot reused or overwritten is
    /// noticed.
    pad: [u64; 3],
    edges: [GcMutex<Edges>; THREADS],
    slots: [GcAtomic<Node>; THREADS],
    tally: Tally,
}

// SAFETY: reports every handle the node owns (its lists and slots) once;
// `tally` holds none, and no drop glue of the node dereferences a handle
// (`Tally::drop` reads only its own fields).
unsafe impl Trace for Node {
    fn trace(&self, t: &mut Tracer<'_>) {
        for e in &self.edges {
            e.trace(t);
        }
        for s in &self.slots {
            s.trace(t);
        }
    }
}

fn pad(sum: u64) -> [u64; 3] {
    [sum.rotate_left(13), !sum, sum.rotate_left(41) ^ 0x5555_5555_5555_5555]
}

impl Node {
    /// Checks the node is intact and not dropped: called with a handle to
    /// it held, so the collector must not have dropped it.
    fn verify(&self, sh: &Shared) {
        let id = self.id;
        assert!((id as usize) < MAX_NODES && id < sh.next_id.load(SeqCst), "node id {id} never created");
        assert_eq!(self.sum, sh.sum(id), "checksum of node {id}");
        assert_eq!(self.pad, pad(self.sum), "payload of node {id}");
        assert_eq!(self.tally.id, id, "tally of node {id}");
        assert_eq!(self.tally.sum, self.sum, "tally checksum of node {id}");
        let d = sh.drops[id as usize].load(SeqCst);
        assert_eq!(d, 0, "node {id} is reachable (a handle is held) but was dropped {d} time(s)");
    }
}

fn new_node(sh: &Arc<Shared>) -> Option<Gc<Node>> {
    let id = sh.next_id.fetch_add(1, SeqCst);
    if id as usize >= MAX_NODES {
        sh.next_id.fetch_sub(1, SeqCst);
        return None;
    }
    let sum = sh.sum(id);
    Some(Gc::new(Node {
        id,
        sum,
        pad: pad(sum),
        edges: std::array::from_fn(|_| GcMutex::new(Edges(Vec::new()))),
        slots: std::array::from_fn(|_| GcAtomic::new(None)),
        tally: Tally { id, sum, shared: sh.clone() },
    }))
}

/// One thread's model: its edges and slots (exact: only it writes them)
/// and its roots (handle, expected id).
#[derive(Default)]
struct Model {
    edges: HashMap<u32, Vec<u32>>,
    slots: HashMap<u32, u32>,
}

#[derive(Clone, Copy, Debug)]
struct Op {
    code: u8,
    a: u8,
    b: u8,
}

const NOPS: u8 = 15;

fn id_of(g: &Option<Gc<Node>>) -> Option<u32> {
    g.as_ref().map(|g| g.id)
}

fn try_gc(sh: &Shared) -> bool {
    sh.gcs.fetch_add(1, SeqCst) < MAX_GCS
}

/// Runs one thread's operations of a phase.
fn run_thread(k: usize, ops: &[Op], roots: &mut Vec<(Gc<Node>, u32)>, m: &mut Model, sh: &Arc<Shared>) {
    for &Op { code, a, b } in ops {
        let n = roots.len();
        let pick = |x: u8| (x as usize) % n.max(1);
        match code {
            0 | 1 if n < MAX_ROOTS => {
                if let Some(g) = new_node(sh) {
                    let id = g.id;
                    roots.push((g, id));
                }
            }
            // Add an edge roots[a] -> roots[b] to this thread's list.
            2 if n > 0 => {
                let (x, xid) = &roots[pick(a)];
                let (y, yid) = &roots[pick(b)];
                let mut l = x.edges[k].lock();
                if l.0.len() < MAX_EDGES {
                    l.0.push(y.clone());
                    m.edges.entry(*xid).or_default().push(*yid);
                }
            }
            // Store roots[b] (or None) in roots[a]'s slot.
            3 if n > 0 => {
                let (x, xid) = &roots[pick(a)];
                if b & 1 == 0 {
                    let (y, yid) = &roots[pick(b >> 1)];
                    x.slots[k].store(Some(y.clone()));
                    m.slots.insert(*xid, *yid);
                } else {
                    x.slots[k].store(None);
                    m.slots.remove(xid);
                }
            }
            // Swap roots[b] into roots[a]'s slot; the old value becomes a root.
            4 if n > 0 => {
                let (x, xid) = &roots[pick(a)];
                let (y, yid) = &roots[pick(b)];
                let old = x.slots[k].swap(Some(y.clone()));
                let want = m.slots.insert(*xid, *yid);
                assert_eq!(id_of(&old), want, "swap of own slot of node {xid}");
                if let Some(o) = old {
                    o.verify(sh);
                    if roots.len() < MAX_ROOTS {
                        let id = o.id;
                        roots.push((o, id));
                    }
                }
            }
            // Compare-exchange roots[a]'s slot, with the right current value
            // (b even) or a wrong one.
            5 if n > 0 => {
                let (x, xid) = roots[pick(a)].clone();
                let (y, yid) = roots[pick(b >> 1)].clone();
                let cur = m.slots.get(&xid).copied();
                let cur_h = x.slots[k].load();
                assert_eq!(id_of(&cur_h), cur, "load of own slot of node {xid}");
                if b & 1 == 0 {
                    let r = x.slots[k].compare_exchange(cur_h.as_ref(), Some(y.clone()));
                    let old = r.unwrap_or_else(|_| panic!("compare_exchange with the current value of node {xid}"));
                    assert_eq!(id_of(&old), cur, "compare_exchange returned the old value");
                    m.slots.insert(xid, yid);
                } else if cur != Some(yid) {
                    match x.slots[k].compare_exchange(Some(&y), None) {
                        Ok(_) => panic!("compare_exchange succeeded against {yid}, slot of node {xid} held {cur:?}"),
                        Err((back, found)) => {
                            assert!(back.is_none());
                            assert_eq!(id_of(&found), cur, "compare_exchange's found value");
                            if let Some(f) = found {
                                f.verify(sh);
                            }
                        }
                    }
                }
            }
            // Remove an edge from roots[a]'s list.
            6 if n > 0 => {
                let (x, xid) = &roots[pick(a)];
                let mut l = x.edges[k].lock();
                let me = m.edges.entry(*xid).or_default();
                assert_eq!(l.0.len(), me.len(), "length of own list of node {xid}");
                if !l.0.is_empty() {
                    let i = b as usize % l.0.len();
                    let g = l.0.remove(i);
                    assert_eq!(g.id, me.remove(i), "removed edge of node {xid}");
                    g.verify(sh);
                }
            }
            // Take roots[a]'s slot, keeping the value as a root (b odd).
            7 if n > 0 => {
                let (x, xid) = &roots[pick(a)];
                let old = x.slots[k].take();
                assert_eq!(id_of(&old), m.slots.remove(xid), "take of own slot of node {xid}");
                if let Some(o) = old {
                    o.verify(sh);
                    if b & 1 == 1 && roots.len() < MAX_ROOTS {
                        let id = o.id;
                        roots.push((o, id));
                    }
                }
            }
            8 | 9 if n > 0 => {
                let (g, id) = roots.swap_remove(pick(a));
                assert_eq!(g.id, id);
                g.verify(sh);
            }
            // Clone a handle out of any thread's list or slot of roots[a].
            10 if n > 0 && n < MAX_ROOTS => {
                let (x, xid) = &roots[pick(a)];
                let j = b as usize % THREADS;
                let got = if b & 4 == 0 {
                    let l = x.edges[j].lock();
                    let i = (b >> 3) as usize;
                    let g = (!l.0.is_empty()).then(|| l.0[i % l.0.len()].clone());
                    if j == k {
                        let me = m.edges.get(xid).map_or(&[][..], |v| &v[..]);
                        assert_eq!(l.0.len(), me.len(), "length of own list of node {xid}");
                        assert_eq!(id_of(&g), (!me.is_empty()).then(|| me[i % me.len()]), "own edge of {xid}");
                    }
                    g
                } else {
                    let g = x.slots[j].load();
                    if j == k {
                        assert_eq!(id_of(&g), m.slots.get(xid).copied(), "own slot of node {xid}");
                    }
                    g
                };
                if let Some(g) = got {
                    g.verify(sh);
                    let id = g.id;
                    roots.push((g, id));
                }
            }
            // Walk everything roots[a] reaches (at most 64 nodes).
            11 if n > 0 => {
                let (x, _) = &roots[pick(a)];
                let mut seen = HashSet::new();
                let mut q = VecDeque::from([x.clone()]);
                while let Some(g) = q.pop_front() {
                    g.verify(sh);
                    if !seen.insert(g.id) || seen.len() > 64 {
                        continue;
                    }
                    for j in 0..THREADS {
                        q.extend(g.edges[j].lock().0.iter().cloned());
                        q.extend(g.slots[j].load());
                    }
                }
            }
            12 if n < MAX_ROOTS && n > 0 => {
                let (g, id) = roots[pick(a)].clone();
                roots.push((g, id));
            }
            13 if try_gc(sh) => gort::gc(),
            // A collection while this thread holds one of its lists locked.
            14 if n > 0 && try_gc(sh) => {
                let (x, xid) = &roots[pick(a)];
                let (y, yid) = &roots[pick(b)];
                let mut l = x.edges[k].lock();
                gort::gc();
                if l.0.len() < MAX_EDGES {
                    l.0.push(y.clone());
                    m.edges.entry(*xid).or_default().push(*yid);
                }
            }
            _ => {}
        }
        for (g, id) in roots.iter() {
            assert_eq!(g.id, *id);
        }
    }
}

/// Joins the phase's threads, then checks the real graph against the
/// merged model, collects, and checks who was dropped.
fn checkpoint(roots: &[Vec<(Gc<Node>, u32)>], models: &mut [Model], sh: &Shared) {
    // The model's reachable set.
    let mut reach: HashSet<u32> = HashSet::new();
    let mut q: VecDeque<u32> = roots.iter().flatten().map(|r| r.1).collect();
    while let Some(id) = q.pop_front() {
        if !reach.insert(id) {
            continue;
        }
        for m in models.iter() {
            q.extend(m.edges.get(&id).into_iter().flatten().copied());
            q.extend(m.slots.get(&id).copied());
        }
    }
    // The real one, edge for edge.
    {
        let mut seen: HashSet<u32> = HashSet::new();
        let mut q: VecDeque<Gc<Node>> = roots.iter().flatten().map(|r| r.0.clone()).collect();
        while let Some(g) = q.pop_front() {
            g.verify(sh);
            if !seen.insert(g.id) {
                continue;
            }
            for (k, m) in models.iter().enumerate() {
                let l = g.edges[k].lock();
                let ids: Vec<u32> = l.0.iter().map(|e| e.id).collect();
                assert_eq!(&ids[..], m.edges.get(&g.id).map_or(&[][..], |v| &v[..]), "list {k} of node {}", g.id);
                q.extend(l.0.iter().cloned());
                let s = g.slots[k].load();
                assert_eq!(id_of(&s), m.slots.get(&g.id).copied(), "slot {k} of node {}", g.id);
                q.extend(s);
            }
        }
        assert_eq!(seen, reach, "reachable set");
    }
    gort::gc();
    let created = sh.next_id.load(SeqCst);
    for id in 0..created {
        let d = sh.drops[id as usize].load(SeqCst);
        if reach.contains(&id) {
            assert_eq!(d, 0, "node {id} is reachable but was dropped");
        } else if sh.paced {
            assert!(d <= 1, "node {id} was dropped {d} times");
        } else {
            assert_eq!(d, 1, "node {id} is unreachable: after gc() it must have been dropped once");
        }
    }
    assert_eq!(sh.bad_drops.load(SeqCst), 0, "a node had a bad checksum when dropped");
    for m in models.iter_mut() {
        m.edges.retain(|id, _| reach.contains(id));
        m.slots.retain(|id, _| reach.contains(id));
    }
}

fuzz_target!(|data: &[u8]| {
    let (Some(&h0), Some(&h1)) = (data.first(), data.get(1)) else { return };
    let nthreads = 2 + h0 as usize % (THREADS - 1);
    // Half the inputs split every cycle's walks (and marking) over three
    // threads, which a heap this small never does on its own.
    gort::gc::__hooks::force_walkers(if h0 & 0x80 != 0 { 3 } else { 0 });
    let paced = h0 & 0x40 != 0;
    gort::gc::__hooks::skip_hot_when_forced(paced);
    // Half the inputs have the count keep every counted cell's children
    // (`snapshot.rs`): barriers then pin lists instead of copying.
    gort::gc::__hooks::snap_min(if h1 & 0x80 != 0 { 1 } else { 1024 });
    let sh = Arc::new(Shared {
        drops: (0..MAX_NODES).map(|_| AtomicU32::new(0)).collect(),
        bad_drops: AtomicU32::new(0),
        next_id: AtomicU32::new(0),
        gcs: AtomicU32::new(0),
        salt: mix(u64::from(h1)),
        paced,
    });
    // Phases of per-thread operations, split at 0xFF bytes (4 at most).
    let mut phases: Vec<Vec<Vec<Op>>> = vec![vec![Vec::new(); THREADS]];
    let mut bytes = data[2..].iter().copied();
    while let Some(c) = bytes.next() {
        if c == 0xFF {
            if phases.len() < 4 {
                phases.push(vec![Vec::new(); THREADS]);
            }
            continue;
        }
        let t = (c >> 5) as usize % nthreads;
        let op = Op { code: (c & 0x1F) % NOPS, a: bytes.next().unwrap_or(0), b: bytes.next().unwrap_or(0) };
        phases.last_mut().unwrap()[t].push(op);
    }
    let mut roots: Vec<Vec<(Gc<Node>, u32)>> = (0..THREADS).map(|_| Vec::new()).collect();
    let mut models: Vec<Model> = (0..THREADS).map(|_| Model::default()).collect();
    for phase in &phases {
        let results: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = roots
                .drain(..)
                .zip(models.drain(..))
                .enumerate()
                .map(|(k, (mut r, mut m))| {
                    let (ops, sh) = (&phase[k], &sh);
                    s.spawn(move || {
                        run_thread(k, ops, &mut r, &mut m, sh);
                        (r, m)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join()).collect()
        });
        for r in results {
            match r {
                Ok((r, m)) => {
                    roots.push(r);
                    models.push(m);
                }
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        checkpoint(&roots, &mut models, &sh);
    }
    // Release everything: every node must go (an exact cycle: the pacer's
    // could keep garbage held through a hot cell for one more).
    roots.clear();
    gort::gc::__hooks::skip_hot_when_forced(false);
    gort::gc();
    let created = sh.next_id.load(SeqCst);
    for id in 0..created {
        let d = sh.drops[id as usize].load(SeqCst);
        assert_eq!(d, 1, "node {id}: dropped {d} times after every root went and gc()");
    }
    assert_eq!(sh.bad_drops.load(SeqCst), 0, "a node had a bad checksum when dropped");
});
