//! Freeing at zero: an object whose last handle goes is freed at once, as
//! with `Arc`, when no cycle is walking the heap and nothing can count a
//! handle to it from a pointer (PROTOCOL.md §2 `drop(Gc)`, model flag
//! `--prompt-free`); otherwise the collector frees it.
//!
//! Every test runs in a child process with `GOGC=off`: no automatic cycle
//! may make an object the collector's by accident.

mod common;
#[path = "common/gc.rs"]
mod gcc;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use common::OrPanic;
use gcc::*;
use gort::gc::__hooks::Step;
use gort::gc::{Gc, GcAtomic, Trace};

macro_rules! isolated_test {
    ($(#[$m:meta])* fn $name:ident() $body:block) => {
        $(#[$m])*
        #[test]
        fn $name() {
            isolated(stringify!($name), || $body)
        }
    };
}

/// A binary tree of `depth` levels of test nodes (immutable edges).
fn tree(depth: u32, ids: &mut Vec<u64>) -> Gc<Node> {
    let (imm, cell) = if depth == 0 { (None, None) } else { (Some(tree(depth - 1, ids)), Some(tree(depth - 1, ids))) };
    let n = Node::new(Parts { imm, cell, ..Default::default() });
    ids.push(n.id);
    n
}

isolated_test! {
    /// Dropping a tree's root handle drops every node before `drop`
    /// returns, and MemStats counts the frees; the slots are reused.
    fn the_last_handle_frees_a_tree_at_once() {
        let mut ids = Vec::new();
        let root = tree(10, &mut ids);
        let before = gort::read_mem_stats();
        drop(root);
        assert_all_freed_now(&ids);
        let after = gort::read_mem_stats();
        assert_eq!(after.num_gc, before.num_gc, "a cycle ran");
        assert!(after.frees >= before.frees + ids.len() as u64, "frees {} -> {}", before.frees, after.frees);
        assert!(after.heap_objects + ids.len() as u64 <= before.heap_objects, "{} -> {}", before.heap_objects, after.heap_objects);
        // The heap does not grow when the same tree is built again and again.
        let sys = gort::read_mem_stats().heap_sys;
        for _ in 0..200 {
            drop(tree(10, &mut Vec::new()));
        }
        assert_eq!(gort::read_mem_stats().heap_sys, sys, "freed slots were not reused");
    }
}

isolated_test! {
    /// Objects freed one at a time all over the heap, each replaced by a
    /// new one (a program updating a large table), have their slots
    /// reused: the heap stops growing. A full span goes back to its list
    /// once a 32nd of its slots are free, so the heap grows by about that
    /// share of the table; if such spans were never listed it would grow
    /// by every replacement (25 MB here).
    fn slots_freed_one_at_a_time_across_the_heap_are_reused() {
        const N: usize = 200_000;
        let mut table: Vec<Gc<u64>> = (0..N as u64).map(Gc::new).collect();
        let sys = gort::read_mem_stats().heap_sys;
        for k in 0..4 * N {
            table[k * 7919 % N] = Gc::new(k as u64);
        }
        let after = gort::read_mem_stats();
        assert_eq!(after.num_gc, 0, "a cycle ran");
        let grown = after.heap_sys - sys;
        assert!(grown <= sys / 8, "the heap grew by {grown} bytes from {sys} replacing objects in place");
        drop(table);
    }
}

isolated_test! {
    /// A shared object is freed when the last of its handles goes, on
    /// whichever thread drops it.
    fn the_last_of_several_handles_frees() {
        let x = Node::leaf();
        let id = x.id;
        let copies: Vec<Gc<Node>> = (0..8).map(|_| x.clone()).collect();
        drop(x);
        let t = std::thread::spawn(move || drop(copies));
        t.join().or_panic();
        assert!(dropped(id), "the last handle, dropped on another thread, did not free X");
    }
}

/// A singly linked list node.
#[derive(Trace)]
struct Link {
    next: Option<Gc<Link>>,
    #[trace(skip)]
    _count: Counted,
}

struct Counted;
static LINKS_DROPPED: AtomicUsize = AtomicUsize::new(0);
impl Drop for Counted {
    fn drop(&mut self) {
        LINKS_DROPPED.fetch_add(1, SeqCst);
    }
}

isolated_test! {
    /// A million-node list is dropped iteratively: on a goroutine's small
    /// stack, where a recursive drop (as `Arc`'s) would overflow.
    fn a_long_list_drops_without_recursion() {
        const N: usize = 1_000_000;
        let head = (0..N).fold(None, |next, _| Some(Gc::new(Link { next, _count: Counted })));
        gort::run(move || {
            gort::spawn(move || drop(head)).join().or_panic();
        });
        assert_eq!(LINKS_DROPPED.load(SeqCst), N);
    }
}

/// A value whose `Drop` panics.
#[derive(Trace)]
struct Bomb {
    #[trace(skip)]
    _fuse: Fuse,
    child: Option<Gc<Node>>,
}

struct Fuse;
impl Drop for Fuse {
    fn drop(&mut self) {
        panic!("boom");
    }
}

isolated_test! {
    /// A panic in a drop glue run at zero propagates from `drop`; what the
    /// unwinding drops reaches zero too and is left to the collector (the
    /// panicking object's own memory leaks, as an `Arc`'s does), and
    /// freeing at zero goes on working afterwards on that thread.
    fn a_panicking_drop_does_not_stop_later_frees() {
        let child = Node::leaf();
        let cid = child.id;
        let b = Gc::new(Bomb { _fuse: Fuse, child: Some(child) });
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(b)));
        assert!(r.is_err(), "the Drop's panic was lost");
        // The other fields were dropped while unwinding, as for any value.
        gort::gc();
        assert!(dropped(cid), "the child of the panicking value was not freed");
        let x = Node::leaf();
        let id = x.id;
        drop(x);
        assert!(dropped(id), "freeing at zero stopped after a panic");
    }
}

isolated_test! {
    /// Objects that `GcAtomic::load` or a weak pointer could still count a
    /// handle to, or with a finalizer, are left to the collector.
    fn objects_a_pointer_can_reach_are_left_to_the_collector() {
        // Once in a slot.
        let x = Node::leaf();
        let xid = x.id;
        let slot = GcAtomic::new(Some(x));
        drop(slot.take());
        drop(slot);
        // With a weak pointer.
        let y = Node::leaf();
        let yid = y.id;
        let w = gort::weak::Weak::new(&y);
        drop(y);
        // With a finalizer.
        let z = Node::leaf();
        let zid = z.id;
        gort::set_finalizer(&z, |_| {});
        drop(z);
        assert_eq!(count_dropped(&[xid, yid, zid]), 0, "freed at zero");
        gort::gc();
        assert!(dropped(xid) && dropped(yid), "the collector did not free them");
        assert!(w.upgrade().is_none());
        // That cycle queued the finalizer; the object goes in a cycle after
        // the finalizer goroutine has run it, which a loaded machine may do
        // only after several more cycles.
        assert!(common::eventually(30, || {
            gort::gc();
            dropped(zid)
        }), "the finalized object was not freed");
    }
}

isolated_test! {
    /// During a cycle a dropped last handle leaves the object to the
    /// collector (its walks may be reading it), which frees it in that
    /// cycle or the next.
    fn during_a_cycle_the_collector_frees() {
        let x = Node::leaf();
        let xid = x.id;
        let parent = Node::new(Parts { imm: Some(x), ..Default::default() });
        let pid = parent.id;
        steps::script(&[Step::Counted]);
        let gc = spawn_gc();
        steps::wait_paused(Step::Counted);
        drop(parent);
        assert_eq!(count_dropped(&[pid, xid]), 0, "freed at zero while the cycle walks the heap");
        steps::resume();
        gc.join().or_panic();
        gort::gc();
        gort::gc();
        assert_all_freed_now(&[pid, xid]);
        // After the cycles, freeing at zero is back.
        let y = Node::leaf();
        let yid = y.id;
        drop(y);
        assert!(dropped(yid));
    }
}

isolated_test! {
    /// Objects born during a cycle are freed at zero in it (PROTOCOL.md §8,
    /// model flag `--pf-newborn`): they are not old in it, so its walks
    /// never count, trace or sweep them. What they hold that is old is
    /// still the collector's. Fails without the NEWBORN case of
    /// `reclaim::drain` (nothing freed), and when a claim during a cycle
    /// ignores NEWBORN (the old Y is freed at zero).
    fn objects_born_during_a_cycle_are_freed_at_zero_in_it() {
        let y = Node::leaf();
        let yid = y.id;
        let c = Node::leaf();
        steps::script(&[Step::Counted]);
        let gc = spawn_gc();
        steps::wait_paused(Step::Counted);
        // A newborn tree: freed at once.
        let n = Node::new(Parts { imm: Some(Node::leaf()), cell: Some(Node::leaf()), ..Default::default() });
        let nids = [n.id, n.imm.as_ref().unwrap().id, n.cell_child().unwrap().id];
        drop(n);
        assert_all_freed_now(&nids);
        // A newborn holding the old Y's last handle: the newborn is freed,
        // Y is left to the collector.
        let m = Node::new(Parts { imm: Some(y), ..Default::default() });
        let mid = m.id;
        drop(m);
        assert!(dropped(mid), "a newborn holding an old object was not freed at zero");
        assert!(!dropped(yid), "an old object was freed at zero during a cycle");
        // A newborn stored in an old cell, taken out, cloned and dropped.
        let k = Node::leaf();
        let kid = k.id;
        c.cell.lock().0 = Some(k);
        let k = c.cell.lock().0.take().unwrap();
        let k2 = k.clone();
        drop(k);
        assert!(!dropped(kid));
        k2.verify("the clone of a newborn");
        drop(k2);
        assert!(dropped(kid), "a newborn moved through a cell was not freed at zero");
        // One with a weak pointer is the collector's.
        let w = Node::leaf();
        let wid = w.id;
        let weak = gort::weak::Weak::new(&w);
        drop(w);
        assert!(!dropped(wid), "an object with a weak pointer was freed at zero");
        steps::resume();
        gc.join().or_panic();
        gort::gc();
        gort::gc();
        assert!(dropped(yid) && dropped(wid));
        assert!(weak.upgrade().is_none());
        c.verify("the old container");
    }
}

/// A test object that checks it is dropped once and never traced after.
struct Once {
    id: u64,
    kids: Vec<Gc<Once>>,
}

static ONCE_DROPPED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: reports each child once.
unsafe impl Trace for Once {
    fn trace(&self, t: &mut gort::gc::Tracer<'_>) {
        assert!(!dropped(self.id), "the collector traced a value dropped at zero");
        for k in &self.kids {
            k.trace(t);
        }
    }
}

impl Drop for Once {
    fn drop(&mut self) {
        assert!(!dropped(self.id), "a value was dropped twice");
        record_drop(self.id);
        ONCE_DROPPED.fetch_add(1, SeqCst);
    }
}

fn once_tree(depth: u32, ids: &mut Vec<u64>) -> Gc<Once> {
    let kids = if depth == 0 { vec![] } else { vec![once_tree(depth - 1, ids), once_tree(depth - 1, ids)] };
    let id = new_id();
    ids.push(id);
    Gc::new(Once { id, kids })
}

isolated_test! {
    /// Threads build and drop small trees (some through a shared cell)
    /// while cycles run back to back: drops race with the cycle's start,
    /// its count, its end (whose walk resets newborns) and the next one.
    /// Every value is dropped exactly once, never traced after, and the
    /// heap goes back to what it held. (A smoke test: the race of a claim
    /// with the reset of the cycle's last walk, whose window is a few
    /// instructions, is checked by the loom model
    /// `newborn_drop_vs_two_cycles`, not reliably here.)
    fn newborns_dropped_while_cycles_run() {
        let shared = Node::leaf();
        let before = gort::read_mem_stats().heap_objects;
        let total = std::sync::Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..3)
            .map(|w| {
                let (total, shared) = (total.clone(), shared.clone());
                std::thread::spawn(move || {
                    // A fixed amount of work: with GOGC off, slots freed
                    // during a cycle are reused only after it.
                    for i in 0..3000u64 {
                        let mut ids = Vec::new();
                        let t = once_tree(4, &mut ids);
                        if (i + w) % 3 == 0 {
                            // Through a cell of an old object, as a Node.
                            let n = Node::leaf();
                            shared.cell.lock().0 = Some(n);
                            drop(shared.cell.lock().0.take());
                        }
                        let t2 = t.clone();
                        drop(t);
                        drop(t2);
                        total.fetch_add(ids.len(), SeqCst);
                    }
                })
            })
            .collect();
        while !workers.iter().all(|w| w.is_finished()) {
            gort::gc();
        }
        for w in workers {
            w.join().or_panic();
        }
        gort::gc();
        gort::gc();
        assert_eq!(ONCE_DROPPED.load(SeqCst), total.load(SeqCst), "not every value was dropped once");
        let after = gort::read_mem_stats().heap_objects;
        assert!(after <= before + 1, "heap objects {before} -> {after}");
        shared.verify("the shared container");
    }
}

isolated_test! {
    /// A cycle is still the collector's: dropping the last outside handle
    /// of a ring leaves it (each node holds the next), and `gort::gc()`
    /// frees it.
    fn cycles_are_left_to_the_collector() {
        let a = Node::leaf();
        let b = Node::new(Parts { cell: Some(a.clone()), ..Default::default() });
        a.cell.lock().0 = Some(b.clone());
        let ids = [a.id, b.id];
        drop((a, b));
        assert_eq!(count_dropped(&ids), 0);
        gort::gc();
        assert_all_freed_now(&ids);
    }
}

isolated_test! {
    /// The race the "never in a slot" rule is for: a `GcAtomic::load` has
    /// read X from the slot and is held (a page trap on X's header) before
    /// it counts its handle; meanwhile the test thread swaps X out and
    /// drops the last counted handle. Freed at zero, X would be gone under
    /// the load's new handle. Fails with `raw` in `cell.rs` not setting
    /// `IN_SLOT`.
    fn a_load_racing_the_last_drop_keeps_its_object() {
        PageTrap::install();
        let a = Node::leaf();
        // X on another page than A (whose slot the load reads first); the
        // fillers around X are not touched while the trap is armed.
        let fill: Vec<Gc<Node>> = (0..64).map(|_| Node::leaf()).collect();
        let x = Node::leaf();
        let xid = x.id;
        let header = Gc::as_ptr(&x) as usize - 24;
        assert_ne!(header / 4096, Gc::as_ptr(&a) as usize / 4096, "X shares A's page");
        a.atom.store(Some(x));
        let a0 = a.clone();
        let trap = PageTrap::arm_page(header & !4095);
        let m = std::thread::spawn(move || a0.atom.load());
        trap.wait_hit("the load's increment");
        trap.open();
        drop(a.atom.swap(None));
        trap.release();
        let got = m.join().or_panic().expect("the load found X");
        churn::<0>(2000);
        assert!(!dropped(xid), "X was freed while a load was counting a handle to it");
        assert_eq!(got.id, xid, "the load's handle reads another node (freed and reused)");
        assert!(got.intact(), "X was damaged");
        drop((got, a, fill));
        gort::gc();
        assert!(dropped(xid));
    }
}

isolated_test! {
    /// A whole cycle between the decrement to zero and the claim: the
    /// dropping thread is held at its barrier mark's first write (a page
    /// trap on its barrier record) after the count reached zero, while a
    /// cycle finds the object unreachable and frees it and the memory is
    /// reused. The claim must then not happen (the cycle number changed,
    /// model `counterexamples/pf-proposed.s18.txt`); claiming would drop
    /// and free a live node that now occupies the slot. Fails with the
    /// `z.seq != now` check in `reclaim::drain` removed.
    fn a_cycle_between_the_last_drop_and_the_claim() {
        PageTrap::install();
        let x = Node::leaf();
        let xid = x.id;
        let m = OwnRecord::spawn(move || drop(x));
        let trap = PageTrap::arm_page(m.page2);
        m.go();
        trap.wait_hit("the dropping thread's barrier mark");
        trap.open();
        gort::gc();
        assert!(dropped(xid), "the cycle did not free X (count zero, unreachable)");
        // X's memory now holds live nodes.
        let keep: Vec<Gc<Node>> = (0..2000).map(|_| Node::leaf()).collect();
        trap.release();
        m.result();
        for n in &keep {
            assert!(n.intact(), "node {} was freed by the late claim of X", n.id);
        }
    }
}

#[track_caller]
fn assert_all_freed_now(ids: &[u64]) {
    let n = count_dropped(ids);
    assert_eq!(n, ids.len(), "only {n} of {} objects were freed", ids.len());
}

/// Builds and drops trees when the thread-local it lives in is destroyed
/// at thread exit, keeping one tree's root in `out`.
struct AtExit {
    ids: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
    out: std::sync::mpsc::Sender<Gc<Node>>,
}

impl Drop for AtExit {
    fn drop(&mut self) {
        let mut ids = Vec::new();
        for _ in 0..20 {
            drop(tree(6, &mut ids));
        }
        let kept = tree(4, &mut ids);
        assert!(kept.intact());
        self.out.send(kept).unwrap();
        self.ids.lock().unwrap().extend(ids);
    }
}

std::thread_local! {
    static AT_EXIT: std::cell::RefCell<Option<AtExit>> = const { std::cell::RefCell::new(None) };
}

isolated_test! {
    /// A thread-local destructor allocates and drops objects at thread
    /// exit, once registered before the thread first touched the heap (so
    /// destroyed after gort's own per-thread caches and queue: it allocates
    /// from one-off caches and leaves objects at zero to the collector) and
    /// once after (destroyed first: the thread's caches still serve it).
    /// Every object is dropped exactly once, the kept tree stays intact,
    /// and the collector frees what the dying thread left.
    fn objects_made_and_dropped_by_destructors_at_thread_exit() {
        let ids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for heap_first in [false, true] {
            let (ids, out) = (ids.clone(), tx.clone());
            std::thread::spawn(move || {
                if heap_first {
                    drop(Node::leaf());
                }
                AT_EXIT.with(|a| *a.borrow_mut() = Some(AtExit { ids, out }));
                if !heap_first {
                    drop(Node::leaf());
                }
            })
            .join()
            .or_panic();
        }
        drop(tx);
        let kept: Vec<Gc<Node>> = rx.iter().collect();
        assert_eq!(kept.len(), 2);
        let ids = std::mem::take(&mut *ids.lock().unwrap());
        assert_eq!(ids.len(), 2 * (20 * 127 + 31));
        let kept_ids: Vec<u64> = kept.iter().flat_map(tree_ids).collect();
        for _ in 0..3 {
            gort::gc();
        }
        for k in &kept {
            assert!(k.intact());
        }
        let dead: Vec<u64> = ids.iter().copied().filter(|i| !kept_ids.contains(i)).collect();
        assert_all_freed_now(&dead);
        assert_eq!(count_dropped(&kept_ids), 0);
        drop(kept);
        gort::gc();
        assert_all_freed_now(&ids);
    }
}

/// The ids of a tree built by [`tree`] (children in `imm` and `cell`).
fn tree_ids(n: &Gc<Node>) -> Vec<u64> {
    let mut out = vec![n.id];
    if let Some(c) = &n.imm {
        out.extend(tree_ids(c));
    }
    if let Some(c) = &n.cell.lock().0 {
        out.extend(tree_ids(c));
    }
    out
}
