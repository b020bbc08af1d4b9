//! Drives gort's weak pointers, finalizers and cleanups with random graph
//! operations from several threads at once and checks them against a
//! model of Go's rules.
//!
//! The graph is `gc_graph`'s: every node has, per thread, an edge list
//! (`GcMutex`) and a slot (`GcAtomic`) that only that thread writes, so
//! each thread's model of its own edges is exact whatever the
//! interleaving. On top of the graph operations (create a node, add or
//! remove an edge, store or take a slot, drop or clone a root, clone a
//! handle out of any thread's edges, walk, `gort::gc()`), the threads make
//! weak pointers to their roots and upgrade them, set and clear finalizers
//! (only on nodes they created, so each node's finalizer state has one
//! writer), add cleanups and stop them. A finalizer records its run and
//! either drops its handle or resurrects the node into a per-input root
//! set (chosen when it is set); a cleanup records its run.
//!
//! Checked while the threads run (exact whatever the timing):
//! - an upgrade that returns a handle returns the right node, intact
//!   (checksum), not dropped, and not after its finalizer ran or it was
//!   dropped (both read before the upgrade);
//! - an upgrade of a node the thread reaches from its own roots through
//!   its own edges (which only it writes) returns a handle;
//! - weak pointers to the same node compare equal, to different nodes
//!   unequal (a freed node's address reused must get a new weak cell);
//! - in a finalizer: the right node, intact, not dropped, its weak
//!   pointers already cleared, each finalizer run at most once, one at a
//!   time, always on the same goroutine; a weak pointer it makes to the
//!   node is a new one (unequal to the cleared one) and upgrades;
//! - in a cleanup: its node has been dropped (exactly once), and the
//!   cleanup runs at most once.
//!
//! The input is a series of phases; between phases the threads are joined
//! and a checkpoint checks the real graph reachable from the roots (the
//! threads' roots and the resurrected set) against the model, edge for
//! edge, and that no node reachable from the roots was finalized, except
//! the resurrected nodes themselves, finalized exactly once and reachable
//! from no other root nor from themselves. Then it
//! predicts the quiescent state by simulating Go's cycles on the model
//! from that state: mark from the roots and from the children (not
//! themselves) of every node whose finalizer is set; each finalizable node
//! left unmarked runs its finalizer (and joins the roots if it
//! resurrects); the rest of the unmarked nodes are freed; repeat until no
//! finalizer runs. A node in or below a cycle through a finalizable node
//! is thus kept forever, its finalizer never run. Finalizers that ran
//! during the phase are history the checkpoint reads (with the resurrected
//! set, under the same lock, so the two agree); one queued but not run yet
//! counts as still set, which leads to the same quiescent state. The real
//! collector is then driven to quiescence (`gort::gc()`, then a probe
//! finalizer to wait for the finalizer goroutine, repeated), and the
//! outcome must be exactly the prediction: which nodes were dropped (each
//! once), which finalizers ran (each once), the resurrected set, and
//! every cleanup of a dropped node ran once unless stopped (a stop while
//! the thread reached the node cancels it for sure; a stop after the node
//! was seen dropped is too late for sure; otherwise either is allowed),
//! none of a live node. Every weak pointer then upgrades exactly when its
//! node is alive and was never finalized (one made by a finalizer: when
//! its node is alive), and for every model edge A -> B out of a finalized
//! node (its edges froze when it became unreachable), if B was finalized
//! too, A's finalizer ran first. The intermediate, timing dependent steps
//! (which cycle ran which finalizer) are not checked.
//!
//! At the end all roots go, the resurrected set is emptied (repeatedly:
//! finalizers may still resurrect), and the quiescent state is checked as
//! above; the nodes kept by finalizer cycles are then reached through
//! weak pointers (which they must still have), their finalizers cleared,
//! and after that every node must have been dropped exactly once and
//! every cleanup not surely stopped run once.
//!
//! `cargo +nightly fuzz run gc_weak` (from `fuzz/`); with `GC_WEAK_STATS`
//! set in the environment, each input prints what it exercised (nodes,
//! finalizers set and run, cleanups added and run, stops by kind, rounds
//! of clearing finalizer cycles at the end).
#![no_main]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gort::chan::Chan;
use gort::gc::{Gc, GcAtomic, GcMutex, Trace, Tracer};
use gort::weak::Weak;
use gort::Cleanup;
use libfuzzer_sys::fuzz_target;

/// Threads (and edge lists / slots per node).
const THREADS: usize = 4;
/// Nodes per input.
const MAX_NODES: usize = 512;
/// Handles per edge list.
const MAX_EDGES: usize = 16;
/// Roots per thread.
const MAX_ROOTS: usize = 64;
/// Weak pointers per thread.
const MAX_WEAKS: usize = 32;
/// Cleanup tokens kept per thread (more cleanups may be added).
const MAX_TOKENS: usize = 32;
/// `set_finalizer` calls per input.
const MAX_FINS: usize = 256;
/// `add_cleanup` calls per input.
const MAX_CLEANUPS: usize = 512;
/// `gort::gc()` calls from the threads per input.
const MAX_GCS: u32 = 8;

/// The finalizer goroutine's id, the same for every finalizer of the
/// process (0: none seen yet).
static FIN_GOROUTINE: AtomicU64 = AtomicU64::new(0);

/// What finalizers write, under one lock so a checkpoint reads a
/// consistent picture.
struct FinState {
    /// Runs of each finalizer, by serial.
    runs: Vec<u32>,
    /// Finalizer runs per node.
    finalized: Vec<u32>,
    /// When each node's finalizer ran (its position among all the runs).
    seq: Vec<u32>,
    order: u32,
    /// Nodes resurrected by their finalizer: roots the model knows.
    resurrected: Vec<Gc<Node>>,
    /// Weak pointers each finalizer made to its node (a new weak cell).
    after: Vec<(Weak<Node>, u32)>,
}

/// Per-input state shared with every node, finalizer and cleanup.
struct Shared {
    /// Times each node id was dropped.
    drops: Box<[AtomicU32]>,
    /// Nodes whose checksum was wrong when dropped.
    bad_drops: AtomicU32,
    next_id: AtomicU32,
    gcs: AtomicU32,
    next_fin: AtomicU32,
    next_cleanup: AtomicU32,
    /// Runs of each cleanup, by serial.
    cleanup_runs: Box<[AtomicU32]>,
    /// Finalizers running now (must stay at most 1).
    fin_active: AtomicU32,
    fin: Mutex<FinState>,
    /// Rule violations seen on the finalizer goroutine (a panic there
    /// would exit the process as Go does, not report a crash).
    errors: Mutex<Vec<String>>,
    salt: u64,
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
    fn error(&self, e: String) {
        self.errors.lock().unwrap().push(e);
    }
    fn dropped(&self, id: u32) -> u32 {
        self.drops[id as usize].load(SeqCst)
    }
    fn check_errors(&self) {
        let e = self.errors.lock().unwrap();
        assert!(e.is_empty(), "on the finalizer goroutine: {e:#?}");
        assert_eq!(self.bad_drops.load(SeqCst), 0, "a node had a bad checksum when dropped");
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
    /// The thread that created it: the only one that sets or clears its
    /// finalizer.
    owner: usize,
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
    /// What is wrong with the node (a handle to it is held, so the
    /// collector must not have dropped it), if anything.
    fn check(&self, sh: &Shared) -> Result<(), String> {
        let id = self.id;
        if id as usize >= MAX_NODES || id >= sh.next_id.load(SeqCst) {
            return Err(format!("node id {id} never created"));
        }
        if self.sum != sh.sum(id) || self.pad != pad(self.sum) || self.tally.id != id || self.tally.sum != self.sum {
            return Err(format!("checksum of node {id}"));
        }
        let d = sh.dropped(id);
        if d != 0 {
            return Err(format!("node {id} is reachable (a handle is held) but was dropped {d} time(s)"));
        }
        Ok(())
    }

    fn verify(&self, sh: &Shared) {
        if let Err(e) = self.check(sh) {
            panic!("{e}");
        }
    }
}

fn new_node(sh: &Arc<Shared>, owner: usize) -> Option<Gc<Node>> {
    let id = sh.next_id.fetch_add(1, SeqCst);
    if id as usize >= MAX_NODES {
        sh.next_id.fetch_sub(1, SeqCst);
        return None;
    }
    let sum = sh.sum(id);
    Some(Gc::new(Node {
        id,
        owner,
        sum,
        pad: pad(sum),
        edges: std::array::from_fn(|_| GcMutex::new(Edges(Vec::new()))),
        slots: std::array::from_fn(|_| GcAtomic::new(None)),
        tally: Tally { id, sum, shared: sh.clone() },
    }))
}

/// A `set_finalizer` call.
struct FinRec {
    serial: u32,
    id: u32,
    resurrect: bool,
    /// Cleared by `clear_finalizer` before it ran.
    cleared: bool,
    /// To the node, made when the finalizer was set.
    weak: Weak<Node>,
}

/// Whether a `Cleanup::stop` cancelled the cleanup.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Stop {
    /// Not stopped, or stopped after the node was seen dropped (so the
    /// cleanup was queued already): it runs once the node is freed.
    No,
    /// Stopped while the thread reached the node: it never runs.
    Yes,
    /// Stopped with the node unreached: either.
    Maybe,
}

/// An `add_cleanup` call.
struct CleanRec {
    serial: u32,
    id: u32,
    stop: Stop,
}

/// One thread's model: its edges and slots (exact: only it writes them),
/// the finalizers it set (on nodes it created: exact too) and the
/// cleanups it added.
#[derive(Default)]
struct Model {
    edges: HashMap<u32, Vec<u32>>,
    slots: HashMap<u32, u32>,
    /// Node → index in `fins` of the finalizer it set and did not clear.
    /// The finalizer may have run since (the node then cannot be a root
    /// again, so the entry is never looked up).
    set: HashMap<u32, usize>,
    fins: Vec<FinRec>,
    cleanups: Vec<CleanRec>,
}

/// One thread's handles and model.
#[derive(Default)]
struct Thread {
    roots: Vec<(Gc<Node>, u32)>,
    weaks: Vec<(Weak<Node>, u32)>,
    /// Cleanup and index in `m.cleanups`.
    tokens: Vec<(Cleanup, usize)>,
    m: Model,
}

impl Thread {
    /// The nodes this thread reaches from its roots through its own lists
    /// and slots: held whatever the other threads do.
    fn own_reach(&self) -> HashSet<u32> {
        let mut seen = HashSet::new();
        let mut q: VecDeque<u32> = self.roots.iter().map(|r| r.1).collect();
        while let Some(id) = q.pop_front() {
            if seen.insert(id) {
                q.extend(self.m.edges.get(&id).into_iter().flatten().copied());
                q.extend(self.m.slots.get(&id).copied());
            }
        }
        seen
    }
}

#[derive(Clone, Copy, Debug)]
struct Op {
    code: u8,
    a: u8,
    b: u8,
}

const NOPS: u8 = 20;

fn id_of(g: &Option<Gc<Node>>) -> Option<u32> {
    g.as_ref().map(|g| g.id)
}

fn try_gc(sh: &Shared) -> bool {
    sh.gcs.fetch_add(1, SeqCst) < MAX_GCS
}

fn finalizer(sh: Arc<Shared>, serial: u32, id: u32, resurrect: bool, w: Weak<Node>) -> impl FnOnce(Gc<Node>) + Send {
    move |g: Gc<Node>| {
        if sh.fin_active.fetch_add(1, SeqCst) != 0 {
            sh.error(format!("finalizer {serial} of node {id} runs while another one does"));
        }
        match gort::current().map(|g| g.id()) {
            None => sh.error(format!("finalizer {serial} of node {id} runs outside a goroutine")),
            Some(gid) => {
                if let Err(old) = FIN_GOROUTINE.compare_exchange(0, gid, SeqCst, SeqCst) {
                    if old != gid {
                        sh.error(format!("finalizers run on goroutines {old} and {gid}"));
                    }
                }
            }
        }
        if g.id != id {
            sh.error(format!("finalizer {serial} of node {id} got node {}", g.id));
        } else if let Err(e) = g.check(&sh) {
            sh.error(format!("in finalizer {serial}: {e}"));
        }
        if let Some(u) = w.upgrade() {
            sh.error(format!("a weak pointer to node {id} upgrades (to node {}) in its finalizer", u.id));
        }
        // A new weak pointer gets a new cell, which works.
        let w2 = Weak::new(&g);
        if w2 == w {
            sh.error(format!("a weak pointer to node {id} made in its finalizer equals the cleared one"));
        }
        if !w2.upgrade().is_some_and(|u| Gc::ptr_eq(&u, &g)) {
            sh.error(format!("a weak pointer to node {id} made in its finalizer does not upgrade"));
        }
        {
            let mut st = sh.fin.lock().unwrap();
            st.runs[serial as usize] += 1;
            st.finalized[id as usize] += 1;
            st.seq[id as usize] = st.order;
            st.order += 1;
            st.after.push((w2, id));
            if st.runs[serial as usize] != 1 {
                drop(st);
                sh.error(format!("finalizer {serial} of node {id} ran twice"));
            } else if resurrect {
                st.resurrected.push(g);
            }
        }
        sh.fin_active.fetch_sub(1, SeqCst);
    }
}

fn cleanup((sh, serial, id): (Arc<Shared>, u32, u32)) {
    let d = sh.dropped(id);
    if d != 1 {
        sh.error(format!("cleanup {serial} of node {id} runs with the node dropped {d} time(s)"));
    }
    if sh.cleanup_runs[serial as usize].fetch_add(1, SeqCst) != 0 {
        sh.error(format!("cleanup {serial} of node {id} ran twice"));
    }
}

/// Runs one thread's operations of a phase.
fn run_thread(k: usize, ops: &[Op], t: &mut Thread, sh: &Arc<Shared>) {
    for &Op { code, a, b } in ops {
        let n = t.roots.len();
        let pick = |x: u8| (x as usize) % n.max(1);
        match code {
            0 | 1 if n < MAX_ROOTS => {
                if let Some(g) = new_node(sh, k) {
                    let id = g.id;
                    t.roots.push((g, id));
                }
            }
            // Add an edge roots[a] -> roots[b] to this thread's list.
            2 if n > 0 => {
                let (x, xid) = &t.roots[pick(a)];
                let (y, yid) = &t.roots[pick(b)];
                let mut l = x.edges[k].lock();
                if l.0.len() < MAX_EDGES {
                    l.0.push(y.clone());
                    t.m.edges.entry(*xid).or_default().push(*yid);
                }
            }
            // Store roots[b] (or None) in roots[a]'s slot.
            3 if n > 0 => {
                let (x, xid) = &t.roots[pick(a)];
                if b & 1 == 0 {
                    let (y, yid) = &t.roots[pick(b >> 1)];
                    x.slots[k].store(Some(y.clone()));
                    t.m.slots.insert(*xid, *yid);
                } else {
                    x.slots[k].store(None);
                    t.m.slots.remove(xid);
                }
            }
            // Remove an edge from roots[a]'s list.
            4 if n > 0 => {
                let (x, xid) = &t.roots[pick(a)];
                let mut l = x.edges[k].lock();
                let me = t.m.edges.entry(*xid).or_default();
                assert_eq!(l.0.len(), me.len(), "length of own list of node {xid}");
                if !l.0.is_empty() {
                    let i = b as usize % l.0.len();
                    let g = l.0.remove(i);
                    assert_eq!(g.id, me.remove(i), "removed edge of node {xid}");
                    g.verify(sh);
                }
            }
            // Take roots[a]'s slot, keeping the value as a root (b odd).
            5 if n > 0 => {
                let (x, xid) = &t.roots[pick(a)];
                let old = x.slots[k].take();
                assert_eq!(id_of(&old), t.m.slots.remove(xid), "take of own slot of node {xid}");
                if let Some(o) = old {
                    o.verify(sh);
                    if b & 1 == 1 && t.roots.len() < MAX_ROOTS {
                        let id = o.id;
                        t.roots.push((o, id));
                    }
                }
            }
            6 | 7 if n > 0 => {
                let (g, id) = t.roots.swap_remove(pick(a));
                assert_eq!(g.id, id);
                g.verify(sh);
            }
            // Clone a handle out of any thread's list or slot of roots[a].
            8 if n > 0 && n < MAX_ROOTS => {
                let (x, _) = &t.roots[pick(a)];
                let j = b as usize % THREADS;
                let got = if b & 4 == 0 {
                    let l = x.edges[j].lock();
                    let i = (b >> 3) as usize;
                    (!l.0.is_empty()).then(|| l.0[i % l.0.len()].clone())
                } else {
                    x.slots[j].load()
                };
                if let Some(g) = got {
                    g.verify(sh);
                    let id = g.id;
                    t.roots.push((g, id));
                }
            }
            // Walk everything roots[a] reaches (at most 64 nodes).
            9 if n > 0 => {
                let (x, _) = &t.roots[pick(a)];
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
            10 if try_gc(sh) => gort::gc(),
            // A weak pointer to roots[a].
            11 if n > 0 => {
                let (x, xid) = &t.roots[pick(a)];
                let w = Weak::new(x);
                for (v, vid) in &t.weaks {
                    assert_eq!(*v == w, *vid == *xid, "weak pointers to nodes {vid} and {xid}: equality");
                }
                if t.weaks.len() < MAX_WEAKS {
                    t.weaks.push((w, *xid));
                } else {
                    t.weaks[b as usize % MAX_WEAKS] = (w, *xid);
                }
            }
            // Upgrade a weak pointer, keeping the handle as a root (b odd).
            12 | 13 if !t.weaks.is_empty() => {
                let (w, id) = &t.weaks[a as usize % t.weaks.len()];
                let id = *id;
                let must = t.own_reach().contains(&id);
                let fin_before = sh.fin.lock().unwrap().finalized[id as usize];
                let drop_before = sh.dropped(id);
                match w.upgrade() {
                    Some(g) => {
                        assert_eq!(g.id, id, "a weak pointer to node {id} upgraded to node {}", g.id);
                        assert_eq!(fin_before, 0, "a weak pointer to node {id} upgraded after its finalizer ran");
                        assert_eq!(drop_before, 0, "a weak pointer to node {id} upgraded after it was dropped");
                        g.verify(sh);
                        if b & 1 == 1 && t.roots.len() < MAX_ROOTS {
                            t.roots.push((g, id));
                        }
                    }
                    None => assert!(!must, "a weak pointer to node {id} is cleared while the thread reaches it"),
                }
            }
            // Set a finalizer on roots[a] (resurrecting if b odd).
            14 if n > 0 => {
                let (x, xid) = &t.roots[pick(a)];
                if x.owner == k && !t.m.set.contains_key(xid) {
                    let serial = sh.next_fin.fetch_add(1, SeqCst);
                    if serial as usize >= MAX_FINS {
                        sh.next_fin.fetch_sub(1, SeqCst);
                        continue;
                    }
                    let w = Weak::new(x);
                    gort::set_finalizer(x, finalizer(sh.clone(), serial, *xid, b & 1 == 1, w.clone()));
                    t.m.set.insert(*xid, t.m.fins.len());
                    t.m.fins.push(FinRec { serial, id: *xid, resurrect: b & 1 == 1, cleared: false, weak: w });
                }
            }
            // Clear roots[a]'s finalizer (with none set too, if b odd).
            15 if n > 0 => {
                let (x, xid) = &t.roots[pick(a)];
                if x.owner == k {
                    if let Some(i) = t.m.set.remove(xid) {
                        gort::clear_finalizer(x);
                        t.m.fins[i].cleared = true;
                    } else if b & 1 == 1 {
                        gort::clear_finalizer(x);
                    }
                }
            }
            // Add a cleanup to roots[a].
            16 if n > 0 => {
                let (x, xid) = &t.roots[pick(a)];
                let serial = sh.next_cleanup.fetch_add(1, SeqCst);
                if serial as usize >= MAX_CLEANUPS {
                    sh.next_cleanup.fetch_sub(1, SeqCst);
                    continue;
                }
                let c = gort::add_cleanup(x, cleanup, (sh.clone(), serial, *xid));
                t.m.cleanups.push(CleanRec { serial, id: *xid, stop: Stop::No });
                if t.tokens.len() < MAX_TOKENS {
                    t.tokens.push((c, t.m.cleanups.len() - 1));
                }
            }
            // Stop a cleanup.
            17 if !t.tokens.is_empty() => {
                let (c, i) = t.tokens.swap_remove(a as usize % t.tokens.len());
                let id = t.m.cleanups[i].id;
                let reached = t.own_reach().contains(&id);
                let gone = sh.dropped(id) != 0;
                c.stop();
                if t.m.cleanups[i].stop == Stop::No {
                    t.m.cleanups[i].stop = if reached {
                        Stop::Yes
                    } else if gone {
                        Stop::No
                    } else {
                        Stop::Maybe
                    };
                }
            }
            18 if n < MAX_ROOTS && n > 0 => {
                let (g, id) = t.roots[pick(a)].clone();
                t.roots.push((g, id));
            }
            // A collection while this thread holds one of its lists locked.
            19 if n > 0 && try_gc(sh) => {
                let (x, _) = &t.roots[pick(a)];
                let _l = x.edges[k].lock();
                gort::gc();
            }
            _ => {}
        }
        for (g, id) in t.roots.iter() {
            assert_eq!(g.id, *id);
        }
    }
}

/// Collects, then waits until the finalizer goroutine has run everything
/// queued before: a probe finalized by a later cycle runs after all of it
/// (the queue is first in, first out).
fn flush() {
    gort::gc();
    let ch = Chan::new(1);
    let tx = ch.clone();
    let probe = Gc::new(0u8);
    gort::set_finalizer(&probe, move |_| {
        let _ = tx.try_send(());
    });
    drop(probe);
    for _ in 0..1000 {
        gort::gc();
        if ch.recv_timeout(Duration::from_millis(20)).is_ok() {
            return;
        }
    }
    panic!("a probe finalizer did not run in 1000 cycles");
}

/// Everything reachable from `seeds` in the model.
fn reach(models: &[&Model], seeds: impl IntoIterator<Item = u32>) -> BTreeSet<u32> {
    let mut seen = BTreeSet::new();
    let mut q: VecDeque<u32> = seeds.into_iter().collect();
    while let Some(id) = q.pop_front() {
        if seen.insert(id) {
            for m in models {
                q.extend(m.edges.get(&id).into_iter().flatten().copied());
                q.extend(m.slots.get(&id).copied());
            }
        }
    }
    seen
}

/// The successors of `id` in the model.
fn succ(models: &[&Model], id: u32) -> Vec<u32> {
    let mut c = Vec::new();
    for m in models {
        c.extend(m.edges.get(&id).into_iter().flatten().copied());
        c.extend(m.slots.get(&id).copied());
    }
    c
}

/// The quiescent state the model predicts.
struct Prediction {
    alive: BTreeSet<u32>,
    /// Finalizers that have run, by serial.
    ran: BTreeSet<u32>,
    resurrected: BTreeSet<u32>,
    /// Nodes whose finalizer is still set: kept by finalizer cycles, or
    /// reachable from the roots.
    set: BTreeMap<u32, u32>,
    /// Simulated cycles in which a finalizer ran.
    cycles: usize,
}

/// Simulates Go's cycles from the model's state until no finalizer runs.
fn predict(
    models: &[&Model],
    roots: &BTreeSet<u32>,
    mut resurrected: BTreeSet<u32>,
    mut ran: BTreeSet<u32>,
    set: &BTreeMap<u32, (u32, bool)>,
) -> Prediction {
    let mut set = set.clone();
    let mut cycles = 0;
    loop {
        let children = set.keys().flat_map(|&f| succ(models, f));
        let marked = reach(models, roots.iter().chain(resurrected.iter()).copied().chain(children));
        let run: Vec<u32> = set.keys().copied().filter(|f| !marked.contains(f)).collect();
        if run.is_empty() {
            return Prediction {
                alive: marked,
                ran,
                resurrected,
                set: set.into_iter().map(|(id, (s, _))| (id, s)).collect(),
                cycles,
            };
        }
        for f in run {
            let (serial, res) = set.remove(&f).unwrap();
            ran.insert(serial);
            if res {
                resurrected.insert(f);
            }
        }
        cycles += 1;
    }
}

/// Joins nothing (the threads are joined): checks the graph against the
/// model, predicts the quiescent state, drives the collector there and
/// checks it. Returns the nodes kept by finalizer cycles and whether the
/// resurrected set is empty.
fn checkpoint(ts: &mut [Thread], sh: &Shared) -> (Vec<(usize, usize)>, bool) {
    sh.check_errors();
    let created = sh.next_id.load(SeqCst);
    // History: the finalizers that ran and the nodes they resurrected.
    let (ran, res): (BTreeSet<u32>, Vec<(Gc<Node>, u32)>) = {
        let st = sh.fin.lock().unwrap();
        let ran = (0..sh.next_fin.load(SeqCst)).filter(|&s| st.runs[s as usize] > 0).collect();
        (ran, st.resurrected.iter().map(|g| (g.clone(), g.id)).collect())
    };
    let resurrected: BTreeSet<u32> = res.iter().map(|r| r.1).collect();
    assert_eq!(resurrected.len(), res.len(), "a node was resurrected twice");
    let roots: BTreeSet<u32> = ts.iter().flat_map(|t| t.roots.iter().map(|r| r.1)).collect();
    // Finalizers still set (or queued and not run: the same outcome).
    let mut set: BTreeMap<u32, (u32, bool)> = BTreeMap::new();
    for t in ts.iter() {
        for f in &t.m.fins {
            if !f.cleared && !ran.contains(&f.serial) {
                assert!(set.insert(f.id, (f.serial, f.resurrect)).is_none(), "two finalizers set on node {}", f.id);
            }
        }
    }
    let models: Vec<&Model> = ts.iter().map(|t| &t.m).collect();
    let pred = {
        // The real graph reachable from the roots, edge for edge.
        let all = reach(&models, roots.iter().chain(resurrected.iter()).copied());
        let mut seen: BTreeSet<u32> = BTreeSet::new();
        let mut q: VecDeque<Gc<Node>> = ts
            .iter()
            .flat_map(|t| t.roots.iter().map(|r| r.0.clone()))
            .chain(res.iter().map(|r| r.0.clone()))
            .collect();
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
        assert_eq!(seen, all, "reachable set");
        // Finalized only when unreachable: a node the roots reach was not,
        // but for the resurrected ones (once), which nothing else reaches
        // (not even themselves: a node in a cycle is never finalized).
        let others = reach(&models, roots.iter().copied().chain(resurrected.iter().flat_map(|&r| succ(&models, r))));
        let st = sh.fin.lock().unwrap();
        for &id in &all {
            let f = st.finalized[id as usize];
            let res = resurrected.contains(&id);
            assert!(!(res && others.contains(&id)), "resurrected node {id} is reachable from another root or itself");
            assert_eq!(f, u32::from(res), "node {id} is reachable from the roots: finalized {f} time(s)");
        }
        drop(st);
        drop(res);
        predict(&models, &roots, resurrected, ran, &set)
    };
    // Drive the collector to the quiescent state.
    let matches = |loud: bool| -> bool {
        let st = sh.fin.lock().unwrap();
        let mut ok = true;
        let mut fail = |cond: bool, msg: &dyn Fn() -> String| {
            if !cond {
                ok = false;
                if loud {
                    panic!("{}", msg());
                }
            }
        };
        for id in 0..created {
            let d = sh.dropped(id);
            let want = u32::from(!pred.alive.contains(&id));
            fail(d == want, &|| format!("node {id}: dropped {d} time(s), expected {want} at quiescence"));
        }
        for s in 0..sh.next_fin.load(SeqCst) {
            let r = st.runs[s as usize];
            let want = u32::from(pred.ran.contains(&s));
            fail(r == want, &|| format!("finalizer {s}: ran {r} time(s), expected {want} at quiescence"));
        }
        let res: BTreeSet<u32> = st.resurrected.iter().map(|g| g.id).collect();
        fail(res == pred.resurrected, &|| format!("resurrected {res:?}, expected {:?}", pred.resurrected));
        for t in ts.iter() {
            for c in &t.m.cleanups {
                let r = sh.cleanup_runs[c.serial as usize].load(SeqCst);
                let freed = !pred.alive.contains(&c.id);
                let good = match (freed, c.stop) {
                    (false, _) | (true, Stop::Yes) => r == 0,
                    (true, Stop::No) => r == 1,
                    (true, Stop::Maybe) => r <= 1,
                };
                fail(good, &|| {
                    format!("cleanup {} of node {} ({:?}, freed: {freed}): ran {r} time(s)", c.serial, c.id, c.stop)
                });
            }
        }
        ok
    };
    let mut i = 0;
    loop {
        flush();
        i += 1;
        if matches(false) || i > pred.cycles + 4 {
            break;
        }
    }
    // Once more: nothing else happens at quiescence.
    flush();
    sh.check_errors();
    matches(true);
    // For A -> B, A's finalizer runs first (B is kept while A's is set or
    // queued). A finalized node's edges are frozen: it was unreachable.
    {
        let st = sh.fin.lock().unwrap();
        for m in &models {
            for (&a, bs) in
                m.edges.iter().map(|(a, bs)| (a, bs.clone())).chain(m.slots.iter().map(|(a, b)| (a, vec![*b])))
            {
                if st.finalized[a as usize] == 0 {
                    continue;
                }
                for b in bs {
                    if st.finalized[b as usize] > 0 {
                        let (sa, sb) = (st.seq[a as usize], st.seq[b as usize]);
                        assert!(
                            sa < sb,
                            "node {a} -> node {b}: finalizer of {b} ran (#{sb}) before the one of {a} (#{sa})"
                        );
                    }
                }
            }
        }
    }
    // Every weak pointer upgrades exactly when its node is alive and was
    // never finalized (its cell was cleared in the cycle that found it
    // unreachable otherwise).
    {
        let (finalized, after) = {
            let st = sh.fin.lock().unwrap();
            (st.finalized.clone(), st.after.clone())
        };
        let weaks = ts
            .iter()
            .flat_map(|t| t.weaks.iter().map(|(w, id)| (w, *id)).chain(t.m.fins.iter().map(|f| (&f.weak, f.id))));
        for (w, id) in weaks {
            let want = pred.alive.contains(&id) && finalized[id as usize] == 0;
            let got = w.upgrade();
            if let Some(g) = &got {
                assert_eq!(g.id, id, "a weak pointer to node {id} upgraded to node {}", g.id);
                g.verify(sh);
            }
            assert_eq!(
                got.is_some(),
                want,
                "weak pointer to node {id} at quiescence (finalized {} time(s))",
                finalized[id as usize]
            );
        }
        // One made by the finalizer: its node was marked in every cycle
        // since, if it is still alive.
        for (w, id) in &after {
            let got = w.upgrade();
            if let Some(g) = &got {
                assert_eq!(g.id, *id, "a weak pointer to node {id} made by its finalizer upgraded to node {}", g.id);
                g.verify(sh);
            }
            let want = pred.alive.contains(id);
            assert_eq!(got.is_some(), want, "weak pointer to node {id} made by its finalizer, at quiescence");
        }
    }
    // Forget the edges of the dropped nodes.
    for t in ts.iter_mut() {
        t.m.edges.retain(|id, _| pred.alive.contains(id));
        t.m.slots.retain(|id, _| pred.alive.contains(id));
    }
    // The finalizers left set on nodes the roots do not reach.
    let live = reach(&models_of(ts), roots.iter().chain(pred.resurrected.iter()).copied());
    let stuck_nodes: BTreeSet<u32> = pred.set.keys().copied().filter(|id| !live.contains(id)).collect();
    let mut stuck = Vec::new();
    for (k, t) in ts.iter().enumerate() {
        for (i, f) in t.m.fins.iter().enumerate() {
            if !f.cleared && stuck_nodes.contains(&f.id) && pred.set.get(&f.id) == Some(&f.serial) {
                stuck.push((k, i));
            }
        }
    }
    (stuck, pred.resurrected.is_empty())
}

fn models_of(ts: &[Thread]) -> Vec<&Model> {
    ts.iter().map(|t| &t.m).collect()
}

fuzz_target!(|data: &[u8]| {
    let (Some(&h0), Some(&h1)) = (data.first(), data.get(1)) else { return };
    let nthreads = 2 + h0 as usize % (THREADS - 1);
    let sh = Arc::new(Shared {
        drops: (0..MAX_NODES).map(|_| AtomicU32::new(0)).collect(),
        bad_drops: AtomicU32::new(0),
        next_id: AtomicU32::new(0),
        gcs: AtomicU32::new(0),
        next_fin: AtomicU32::new(0),
        next_cleanup: AtomicU32::new(0),
        cleanup_runs: (0..MAX_CLEANUPS).map(|_| AtomicU32::new(0)).collect(),
        fin_active: AtomicU32::new(0),
        fin: Mutex::new(FinState {
            runs: vec![0; MAX_FINS],
            finalized: vec![0; MAX_NODES],
            seq: vec![0; MAX_NODES],
            order: 0,
            resurrected: Vec::new(),
            after: Vec::new(),
        }),
        errors: Mutex::new(Vec::new()),
        salt: mix(u64::from(h1)),
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
    let mut ts: Vec<Thread> = (0..THREADS).map(|_| Thread::default()).collect();
    for phase in &phases {
        let results: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = ts
                .drain(..)
                .enumerate()
                .map(|(k, mut t)| {
                    let (ops, sh) = (&phase[k], &sh);
                    s.spawn(move || {
                        run_thread(k, ops, &mut t, sh);
                        t
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join()).collect()
        });
        for r in results {
            match r {
                Ok(t) => ts.push(t),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        checkpoint(&mut ts, &sh);
    }
    // Release everything. Finalizers may resurrect, and finalizer cycles
    // keep their nodes: reach those through their weak pointers and clear
    // their finalizers, until nothing is left.
    for t in ts.iter_mut() {
        t.roots.clear();
    }
    let mut rounds = 0;
    loop {
        let res = std::mem::take(&mut sh.fin.lock().unwrap().resurrected);
        drop(res);
        let (stuck, empty) = checkpoint(&mut ts, &sh);
        if stuck.is_empty() && empty {
            break;
        }
        rounds += 1;
        assert!(rounds < 8, "nodes left after {rounds} rounds of clearing");
        for (k, i) in stuck {
            let m = &mut ts[k].m;
            let f = &mut m.fins[i];
            let g =
                f.weak.upgrade().unwrap_or_else(|| panic!("node {} in a finalizer cycle lost its weak pointer", f.id));
            gort::clear_finalizer(&g);
            f.cleared = true;
            m.set.remove(&f.id);
        }
    }
    let created = sh.next_id.load(SeqCst);
    for id in 0..created {
        assert_eq!(sh.dropped(id), 1, "node {id}: dropped {} times at the end", sh.dropped(id));
    }
    sh.check_errors();
    if std::env::var_os("GC_WEAK_STATS").is_some() {
        let st = sh.fin.lock().unwrap();
        let fins = || ts.iter().flat_map(|t| &t.m.fins);
        let ran = fins().filter(|f| st.runs[f.serial as usize] > 0).count();
        let resurrected = fins().filter(|f| f.resurrect && st.runs[f.serial as usize] > 0).count();
        let cleanups = || ts.iter().flat_map(|t| &t.m.cleanups);
        let cran = cleanups().filter(|c| sh.cleanup_runs[c.serial as usize].load(SeqCst) > 0).count();
        let stops = [Stop::No, Stop::Yes, Stop::Maybe].map(|s| cleanups().filter(|c| c.stop == s).count());
        eprintln!(
            "gc_weak: {created} nodes; finalizers {} set, {ran} ran, {resurrected} resurrected; \
             cleanups {} added, {cran} ran; stops (no, yes, maybe) {stops:?}; rounds of clearing {rounds}",
            fins().count(),
            cleanups().count(),
        );
    }
});
