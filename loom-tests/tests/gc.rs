//! Loom models of the collector's protocol (PROTOCOL.md in
//! `gc-protocol-model/`) running the real code: `Gc` handles, `GcMutex`,
//! `GcRwLock` and `GcAtomic` with their barriers, the barrier registry,
//! grey buffers and grace periods, and one cycle's real steps (reset,
//! count, roots, mark and termination, the choice of garbage) from
//! `gort::__loom::gc::collect`, which runs them over the model's objects in
//! the order given. Every model runs with both visit orders.
//!
//! The check: no object is chosen as garbage while a mutator can still
//! reach it. Ghost state (plain `std` atomics, invisible to loom) follows
//! each object: handles the mutators hold on their stacks, and whether the
//! collector chose it. The collector's choice of one object and the ghost
//! update happen in one loom step, so a mutator that obtains, uses or drops
//! a handle to an object the collector chose — or holds one when it does —
//! fails the model, as does a final handle or one reachable from it.
//! Each model also counts the executions in which the object the scenario
//! makes garbage was collected, so a collector that frees nothing fails.
//!
//! 1. Clone vs. counting and roots (the Dekker pair `handles += 1; read
//!    phase` / `phase := On; read handles`):
//!    `clone_out_of_immutable_field` (S9).
//! 2. Cell barriers vs. counting and marking (the collector try-locks and
//!    skips busy cells; the acquirer shades the children with its barrier
//!    mark up; the grace period): `mutex_take_child_drop_container` (S3),
//!    `mutex_use_child_in_place` (S6 with a lock the collector cannot
//!    share), `mutex_move_child_between_cells` (S7's move),
//!    `rwlock_read_then_take_child` (a read guard, then a write guard that
//!    takes the child out), `mutex_nested_cell_moved_out` (a mutex inside a
//!    mutex's value, moved out through the guard and emptied with
//!    `into_inner`: the outer lock's barrier must shade the inner cell's
//!    children; it did not before this model), `mutex_hot_cell_take_child`
//!    (two cycles with the pacer's rule: the second count skips a cell the
//!    first cycle's barrier touched).
//! 3. Termination vs. in-flight shading (`GcAtomic::load` between its slot
//!    read and its increment; the grace period and the drains after it):
//!    `atomic_load_drop_container` (S10), `atomic_load_vs_swap_and_drop`
//!    (S11, with a grandchild that only the drain after the grace period
//!    reaches), `atomic_compare_exchange_drop_comparand` (S12: a success
//!    shades the old value) and `atomic_failed_compare_exchange_vs_swap`
//!    (S13: a failure is a load).
//! 4. Weak pointers and finalizers (the weak close, its grace period, the
//!    clearing before finalizers are queued): `weak_upgrade_vs_collection`
//!    (S15: an upgrade racing with mark termination either fails or keeps
//!    the object and what it reaches) and `weak_cleared_before_finalizer`
//!    (S16: a finalizable object's weak pointer is cleared when its
//!    finalizer is queued; what it reaches stays marked, as in Go).
//!
//! What differs from the std build (`gort::__loom::gc`, `runtime/src/loom.rs`):
//! objects are boxes, not span slots, and a cycle works on the model's list
//! instead of the heap walk; the phase and the barrier registry are
//! per-execution statics, and records are not recycled; the protocol's
//! `SeqCst` loads (and the failed compare-exchange of `GcAtomic`) are
//! preceded by a `fence(SeqCst)`, because loom models a plain `SeqCst` load
//! as an `Acquire` one (without the fence most models report a false
//! use-after-free). Loom's fence also acts as an acquire fence for the
//! thread's earlier `Relaxed` reads, so these models cannot see a missing
//! acquire between such a read and a later protocol load: the fence at the
//! start of the grace period, which provides it in the std build, is
//! argued in `barrier.rs`, not checked here.
//!
//! Mutation check (done by hand when this was written; each makes at least
//! the models named fail): no clone shade (S9); no shading on lock
//! acquisition (every cell model); the mark raised after the lock is taken
//! (the `GcMutex` ones); no grace period (S3, S6, S7, S11); the
//! `GcAtomic::load` mark raised after the slot read (S11); no shade in
//! `load` (S10, S11) or `swap` (S11); one `mark` pass with no drain after
//! its grace period and none after the phase goes off (S11's grandchild);
//! no shade in a successful (S12) or failed (S13) `compare_exchange`; the
//! mark raised after the compare-exchange (S13).
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p gort-loom-tests --release --test gc`.
#![cfg(loom)]

use std::sync::atomic::{AtomicBool as GhostBool, AtomicUsize as GhostUsize, Ordering::SeqCst as G};
use std::sync::Arc;

use gort::__loom::gc::{self, Gc, GcAtomic, GcMutex, GcRwLock, Object, Trace, Tracer};
use loom::thread;

/// Runs `f` under loom (preemption bound 3 unless `LOOM_MAX_PREEMPTIONS`
/// sets one) and reports how many executions it explored.
fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    let runs = Arc::new(GhostUsize::new(0));
    let counter = runs.clone();
    let start = std::time::Instant::now();
    b.check(move || {
        counter.fetch_add(1, G);
        f();
    });
    eprintln!(
        "{name}: {} executions in {:.2?} (preemption bound {:?})",
        runs.load(G),
        start.elapsed(),
        b.preemption_bound
    );
}

/// Runs `scenario` under both collector visit orders, and checks that the
/// object it names as garbage-to-be was collected in some execution.
fn both_orders(name: &str, scenario: fn(&Arc<Ghost>, bool)) {
    orders(name, scenario, false);
}

/// As [`both_orders`], then again with each of the cycle's walks split
/// over two threads, each taking half of the objects in that order (the
/// collector's walks on a large heap with idle CPUs).
fn both_orders_and_split(name: &str, scenario: fn(&Arc<Ghost>, bool)) {
    orders(name, scenario, false);
    orders(name, scenario, true);
}

fn orders(name: &str, scenario: fn(&Arc<Ghost>, bool), split: bool) {
    for rev in [false, true] {
        let collected = Arc::new(GhostUsize::new(0));
        let c = collected.clone();
        let label = format!(
            "{name} ({} order{})",
            if rev { "reverse" } else { "forward" },
            if split { ", walks split" } else { "" }
        );
        model(&label, move || {
            let ghost = Arc::new(Ghost::default());
            ghost.split.store(split, G);
            scenario(&ghost, rev);
            if ghost.expected_collected() {
                c.fetch_add(1, G);
            }
            ghost.free();
        });
        assert!(collected.load(G) > 0, "{label}: the garbage was never collected");
    }
}

// ------------------------------------------------------------ the objects

/// A cell's content.
struct Link<T: Trace + Send + Sync + 'static>(Option<Gc<T>>);

// SAFETY: reports the one handle it may hold.
unsafe impl<T: Trace + Send + Sync + 'static> Trace for Link<T> {
    fn trace(&self, t: &mut Tracer<'_>) {
        if let Some(g) = &self.0 {
            g.trace(t);
        }
    }
}

/// An object with an immutable field.
struct Imm(Link<Imm>);
// SAFETY: reports its field.
unsafe impl Trace for Imm {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.0.trace(t);
    }
}

/// An object with a mutex.
struct M(GcMutex<Link<M>>);
// SAFETY: reports its cell.
unsafe impl Trace for M {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.0.trace(t);
    }
}

/// An object with a reader-writer lock.
struct R(GcRwLock<Link<R>>);
// SAFETY: reports its cell.
unsafe impl Trace for R {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.0.trace(t);
    }
}

/// An object with an atomic slot.
struct A(GcAtomic<A>);
// SAFETY: reports its slot.
unsafe impl Trace for A {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.0.trace(t);
    }
}

// ---------------------------------------------------------------- ghosts

/// Ghost state of one model execution (see the module docs).
#[derive(Default)]
struct Ghost {
    objs: std::sync::Mutex<Vec<(&'static str, Object)>>,
    /// Per object: chosen as garbage.
    freed: [GhostBool; 7],
    /// Per object: handles held on mutator stacks.
    held: [GhostUsize; 7],
    /// The object the scenario makes unreachable (for the count).
    expected: GhostUsize,
    /// The cycle's walks are split over two threads (`collect_split`).
    split: GhostBool,
}

impl Ghost {
    /// Names the objects (in index order) and the handles the mutators
    /// will start with; `garbage` becomes unreachable in the scenario.
    fn setup(&self, objs: &[(&'static str, Object)], held: &[usize], garbage: usize) {
        *self.objs.lock().unwrap() = objs.to_vec();
        for (i, n) in held.iter().enumerate() {
            self.held[i].store(*n, G);
        }
        self.expected.store(garbage, G);
    }

    fn index(&self, o: Object) -> usize {
        self.objs.lock().unwrap().iter().position(|(_, x)| *x == o).expect("not a model object")
    }

    fn name(&self, i: usize) -> &'static str {
        self.objs.lock().unwrap()[i].0
    }

    fn assert_live(&self, i: usize, what: &str) {
        assert!(!self.freed[i].load(G), "{} {what} after the collector chose it as garbage", self.name(i));
    }

    /// The collector chose `o`.
    fn dead(&self, o: Object) {
        let i = self.index(o);
        assert_eq!(self.held[i].load(G), 0, "{} chosen as garbage while a mutator holds it", self.name(i));
        self.freed[i].store(true, G);
    }

    /// A mutator has a new handle on its stack.
    fn got<T: Trace + Send + Sync + 'static>(&self, g: &Gc<T>) {
        let i = self.index(Object::of(g));
        self.assert_live(i, "obtained");
        self.held[i].fetch_add(1, G);
    }

    /// A mutator uses an object.
    fn used<T: Trace + Send + Sync + 'static>(&self, g: &Gc<T>) {
        self.assert_live(self.index(Object::of(g)), "used");
    }

    /// A handle leaves a mutator's stack (moved into the heap, or about to
    /// be dropped).
    fn gave<T: Trace + Send + Sync + 'static>(&self, g: &Gc<T>) {
        let i = self.index(Object::of(g));
        self.assert_live(i, "given up");
        self.held[i].fetch_sub(1, G);
    }

    /// A mutator drops a handle.
    fn discard<T: Trace + Send + Sync + 'static>(&self, g: Gc<T>) {
        self.gave(&g);
        drop(g);
    }

    /// Runs one real cycle over the objects, in index order or reversed.
    fn collect(&self, rev: bool) -> gc::Collected {
        let mut order: Vec<Object> = self.objs.lock().unwrap().iter().map(|(_, o)| *o).collect();
        if rev {
            order.reverse();
        }
        let out = if self.split.load(G) {
            gc::collect_split(&order, |o| self.dead(o))
        } else {
            gc::collect(&order, |o| self.dead(o))
        };
        assert_eq!(out.double, None);
        out
    }

    /// A mutator publishes the object it has just allocated, for the
    /// walks of [`collect_published`](Self::collect_published).
    fn publish<T: Trace + Send + Sync + 'static>(&self, p: &gc::Published, name: &'static str, g: &Gc<T>) {
        self.objs.lock().unwrap().push((name, Object::of(g)));
        p.publish(Object::of(g));
    }

    /// The objects named so far, in index order.
    fn objects(&self) -> Vec<Object> {
        self.objs.lock().unwrap().iter().map(|(_, o)| *o).collect()
    }

    /// Runs one real cycle whose walks each visit the objects published
    /// when it starts.
    fn collect_published(&self, p: &gc::Published, rev: bool) -> gc::Collected {
        let out = gc::collect_published(p, rev, |o| self.dead(o));
        assert_eq!(out.double, None);
        out
    }

    fn is_freed(&self, i: usize) -> bool {
        self.freed[i].load(G)
    }

    fn expected_collected(&self) -> bool {
        self.freed[self.expected.load(G)].load(G)
    }

    /// Frees every object; all handles to them are gone.
    fn free(&self) {
        let objs: Vec<Object> = self.objs.lock().unwrap().iter().map(|(_, o)| *o).collect();
        // SAFETY: the model's threads are joined and its handles dropped;
        // the objects' values hold handles to each other only.
        unsafe { gc::free(&objs) };
    }
}

fn obj<T: Trace + Send + Sync + 'static>(name: &'static str, g: &Gc<T>) -> (&'static str, Object) {
    (name, Object::of(g))
}

// ------------------------------------------------------------- 1. clone

/// S9: stack Q; Q's immutable field → X. The mutator clones X out of the
/// field (no cell barrier sees it), drops Q and uses X. In the reverse
/// order the collector reads X's handles before the clone and Q's after
/// the drop: neither is a root, and only the clone's shade (it read the
/// phase on, since its increment came after the collector read the count)
/// keeps X.
#[test]
fn clone_out_of_immutable_field() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        let x = Gc::new(Imm(Link(None)));
        let xo = Object::of(&x);
        let q = Gc::new(Imm(Link(Some(x))));
        ghost.setup(&[obj("Q", &q), ("X", xo)], &[1, 0], 0);
        let g = ghost.clone();
        let m = thread::spawn(move || {
            let x = q.0 .0.as_ref().unwrap().clone();
            g.got(&x);
            g.discard(q);
            g.used(&x);
            x
        });
        let _ = ghost.collect(rev);
        let x = m.join().unwrap();
        ghost.used(&x);
        ghost.discard(x);
    }
    both_orders_and_split("clone_out_of_immutable_field", scenario);
}

// ------------------------------------------------------------- 2. cells

/// S3: stack C; C.mutex → X. The mutator takes X out of the cell onto its
/// stack, drops C and uses X. X was counted as C's child; the write
/// guard's barrier must shade it.
#[test]
fn mutex_take_child_drop_container() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        take_child_drop_container(ghost, rev, false, 1);
    }
    both_orders_and_split("mutex_take_child_drop_container", scenario);
}

/// Stack C; C.mutex → X. The mutator locks C's mutex once first if
/// `touch`, then takes X out, drops C and keeps X, while the collector
/// runs `cycles` cycles (S3 and the skip rules' scenarios).
fn take_child_drop_container(ghost: &Arc<Ghost>, rev: bool, touch: bool, cycles: usize) {
    let x = Gc::new(M(GcMutex::new(Link(None))));
    let xo = Object::of(&x);
    let c = Gc::new(M(GcMutex::new(Link(Some(x)))));
    ghost.setup(&[obj("C", &c), ("X", xo)], &[1, 0], 0);
    let g = ghost.clone();
    let m = thread::spawn(move || {
        if touch {
            drop(c.0.lock());
        }
        let x = c.0.lock().0.take().unwrap();
        g.got(&x);
        g.discard(c);
        g.used(&x);
        x
    });
    for _ in 0..cycles {
        let _ = ghost.collect(rev);
    }
    let x = m.join().unwrap();
    ghost.used(&x);
    ghost.discard(x);
}

/// S6 with a lock the collector cannot share: stack Q; Q.mutex → P. The
/// mutator locks Q's mutex and uses P in place through the guard, while
/// the collector may find the cell busy and skip it: P must be shaded by
/// the lock's barrier. Then the mutator drops Q (so that Q and P are
/// garbage in executions where the cycle reads Q's count after that).
#[test]
fn mutex_use_child_in_place() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        let p = Gc::new(M(GcMutex::new(Link(None))));
        let po = Object::of(&p);
        let q = Gc::new(M(GcMutex::new(Link(Some(p)))));
        ghost.setup(&[obj("Q", &q), ("P", po)], &[1, 0], 1);
        let g = ghost.clone();
        let m = thread::spawn(move || {
            {
                let guard = q.0.lock();
                let p = guard.0.as_ref().unwrap();
                g.used(p);
                // P's own lock, still under Q's guard.
                drop(p.0.lock());
                g.used(p);
            }
            g.discard(q);
        });
        let _ = ghost.collect(rev);
        m.join().unwrap();
    }
    both_orders("mutex_use_child_in_place", scenario);
}

/// S7's move: stack S, D; S.mutex → X, D's mutex empty. The mutator moves
/// X from S's cell into D's, drops S and keeps D. If the collector traced
/// D before the move and S after it, only the barrier of S's lock shades X.
#[test]
fn mutex_move_child_between_cells() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        let x = Gc::new(M(GcMutex::new(Link(None))));
        let xo = Object::of(&x);
        let s = Gc::new(M(GcMutex::new(Link(Some(x)))));
        let d = Gc::new(M(GcMutex::new(Link(None))));
        ghost.setup(&[obj("S", &s), obj("D", &d), ("X", xo)], &[1, 1, 0], 0);
        let g = ghost.clone();
        let m = thread::spawn(move || {
            let x = s.0.lock().0.take().unwrap();
            g.got(&x);
            let mut guard = d.0.lock();
            g.gave(&x);
            guard.0 = Some(x);
            drop(guard);
            g.discard(s);
            d
        });
        let _ = ghost.collect(rev);
        let d = m.join().unwrap();
        {
            let guard = d.0.lock();
            ghost.used(guard.0.as_ref().unwrap());
        }
        ghost.discard(d);
    }
    both_orders("mutex_move_child_between_cells", scenario);
}

/// Stack Q; Q.rwlock → P. The mutator read-locks Q's lock and uses P in
/// place, then write-locks it, takes P out, drops Q and keeps P. The
/// collector shares the lock with readers but skips it while it is
/// written: P, counted as Q's child, is then shaded only by the write
/// guard's barrier. The read guard's barrier and the count race to stamp
/// Q's record first (`cell::barrier_shade`). (Checked to fail when both
/// stamp it with a plain load and store instead of a compare-exchange:
/// the reader's "acquired" overwrites the count's "counted", and the
/// write guard's barrier then queues nothing.)
#[test]
fn rwlock_read_then_take_child() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        let p = Gc::new(R(GcRwLock::new(Link(None))));
        let po = Object::of(&p);
        let q = Gc::new(R(GcRwLock::new(Link(Some(p)))));
        ghost.setup(&[obj("Q", &q), ("P", po)], &[1, 0], 0);
        let g = ghost.clone();
        let m = thread::spawn(move || {
            {
                let guard = q.0.read();
                g.used(guard.0.as_ref().unwrap());
            }
            let p = q.0.write().0.take().unwrap();
            g.got(&p);
            g.discard(q);
            g.used(&p);
            p
        });
        let _ = ghost.collect(rev);
        let p = m.join().unwrap();
        ghost.used(&p);
        ghost.discard(p);
    }
    both_orders("rwlock_read_then_take_child", scenario);
}

/// An object whose mutex holds another mutex inline.
struct N(GcMutex<GcMutex<Link<N>>>);
// SAFETY: reports its cell (and through it the inner one).
unsafe impl Trace for N {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.0.trace(t);
    }
}

/// A cell inside a cell's value: stack Q; Q.mutex holds a mutex → X. The
/// mutator locks Q's mutex, moves the inner mutex out of the value through
/// the guard (`mem::replace`), takes X out of it with `into_inner` (no
/// lock, no barrier of its own), drops Q and keeps X. X was counted
/// through the inner mutex; only the outer lock's barrier can shade it.
#[test]
fn mutex_nested_cell_moved_out() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        let x = Gc::new(N(GcMutex::new(GcMutex::new(Link(None)))));
        let xo = Object::of(&x);
        let q = Gc::new(N(GcMutex::new(GcMutex::new(Link(Some(x))))));
        ghost.setup(&[obj("Q", &q), ("X", xo)], &[1, 0], 0);
        let g = ghost.clone();
        let m = thread::spawn(move || {
            let inner = std::mem::replace(&mut *q.0.lock(), GcMutex::new(Link(None)));
            let x = inner.into_inner().0.unwrap();
            g.got(&x);
            g.discard(q);
            g.used(&x);
            x
        });
        let _ = ghost.collect(rev);
        let x = m.join().unwrap();
        ghost.used(&x);
        ghost.discard(x);
    }
    both_orders("mutex_nested_cell_moved_out", scenario);
}

/// A hot cell (PROTOCOL.md §8, model flag `--count-skip-hot`): stack C;
/// C.mutex → X. The mutator locks C's mutex once (touching it while the
/// first cycle may be on), then again to take X out, drops C and keeps X,
/// while two cycles run with the pacer's rule: the second cycle's count
/// skips C if a barrier touched it in the first, and then no barrier of
/// that cycle copies X, so X must be a root. (Checked to fail when the
/// count stamps a hot cell SKIPPED and counts it anyway.)
#[test]
fn mutex_hot_cell_take_child() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        gc::skip_hot(true);
        take_child_drop_container(ghost, rev, true, 2);
    }
    both_orders("mutex_hot_cell_take_child", scenario);
}

/// A young cell (PROTOCOL.md §8, "the count may skip any cell", model
/// flag `--count-skip-all`): with the pacer's rule and the young cells'
/// threshold at one handle, the first cycle's count finds C young, counts
/// its handles and skips it. Stack C; C.mutex → X. The mutator locks C to
/// take X out, drops C and keeps X while two cycles run: X must be a root
/// in the first (its edge from C was never counted), and C is hot or
/// counted in the second. (Checked to fail when the young cell is stamped
/// SKIPPED and counted anyway.)
#[test]
fn mutex_young_cell_take_child() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        gc::skip_hot(true);
        gc::young_skip_min(1);
        take_child_drop_container(ghost, rev, false, 2);
    }
    both_orders("mutex_young_cell_take_child", scenario);
}

/// S3 with the count keeping C's children (`snapshot.rs`, PROTOCOL.md §8,
/// model flag `--count-snap`): the mutator's barrier only pins the kept
/// list, the mark shades it if it reaches C first, and X, taken out before
/// C is dropped, must be shaded from it either way. Fails (X freed while
/// held) when the barrier does not pin the list, or when the collector
/// shades pinned lists only for cells its mark reaches.
#[test]
fn mutex_snapped_cell_take_child() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        gc::snap_min(1);
        take_child_drop_container(ghost, rev, false, 1);
    }
    both_orders_and_split("mutex_snapped_cell_take_child", scenario);
}

/// The same over two cycles, the first lock before or during the first:
/// a record of cycle 1 (pinned, traced or still kept) read by cycle 2's
/// count and barriers.
#[test]
fn mutex_snapped_cell_two_cycles() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        gc::snap_min(1);
        take_child_drop_container(ghost, rev, true, 2);
    }
    both_orders("mutex_snapped_cell_two_cycles", scenario);
}

// ---------------------------------------------------------- 3. GcAtomic

/// S10: stack C; C.atomic → X. The mutator loads X, drops C and uses X:
/// the load's increment may come after the collector read X's count, so
/// the load must shade.
#[test]
fn atomic_load_drop_container() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        let x = Gc::new(A(GcAtomic::new(None)));
        let xo = Object::of(&x);
        let c = Gc::new(A(GcAtomic::new(Some(x))));
        ghost.setup(&[obj("C", &c), ("X", xo)], &[1, 0], 0);
        let g = ghost.clone();
        let m = thread::spawn(move || {
            let x = c.0.load().unwrap();
            g.got(&x);
            g.discard(c);
            g.used(&x);
            x
        });
        let _ = ghost.collect(rev);
        let x = m.join().unwrap();
        ghost.used(&x);
        ghost.discard(x);
    }
    both_orders("atomic_load_drop_container", scenario);
}

/// S11, with a grandchild: stack C (both mutators); C.atomic → X,
/// X.atomic → Y. M0 loads X and keeps it; M1 swaps C's slot to empty and
/// drops the X it got. Between M0's read of the slot and its increment X
/// may have no handle at all: only M0's barrier mark, which the grace
/// period waits for, keeps the collector from choosing X before the
/// load's shade lands, and only the drain after the grace period traces X
/// to keep Y.
#[test]
fn atomic_load_vs_swap_and_drop() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        let y = Gc::new(A(GcAtomic::new(None)));
        let yo = Object::of(&y);
        let x = Gc::new(A(GcAtomic::new(Some(y))));
        let xo = Object::of(&x);
        let c = Gc::new(A(GcAtomic::new(Some(x))));
        let c1 = c.clone();
        ghost.setup(&[obj("C", &c), ("X", xo), ("Y", yo)], &[2, 0, 0], 1);
        let (g0, g1) = (ghost.clone(), ghost.clone());
        let m0 = thread::spawn(move || {
            let x = c.0.load();
            if let Some(x) = &x {
                g0.got(x);
            }
            g0.discard(c);
            x
        });
        let m1 = thread::spawn(move || {
            if let Some(x) = c1.0.swap(None) {
                g1.got(&x);
                g1.discard(x);
            }
            g1.discard(c1);
        });
        let _ = ghost.collect(rev);
        let x = m0.join().unwrap();
        m1.join().unwrap();
        if let Some(x) = x {
            ghost.used(&x);
            let y = x.0.load().unwrap();
            ghost.got(&y);
            ghost.discard(y);
            ghost.discard(x);
        }
    }
    both_orders("atomic_load_vs_swap_and_drop", scenario);
}

/// S12: stack C, Y; C.atomic → Y. A successful `compare_exchange(&Y,
/// None)` moves the slot's handle to the caller, who drops its comparand
/// and C and keeps the returned Y: the exchange must shade the old value
/// even though the caller held a handle to it when it ran.
#[test]
fn atomic_compare_exchange_drop_comparand() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        let y = Gc::new(A(GcAtomic::new(None)));
        let c = Gc::new(A(GcAtomic::new(Some(y.clone()))));
        ghost.setup(&[obj("C", &c), obj("Y", &y)], &[1, 1], 0);
        let g = ghost.clone();
        let m = thread::spawn(move || {
            let old = c.0.compare_exchange(Some(&y), None).ok().unwrap().unwrap();
            g.got(&old);
            g.discard(y);
            g.discard(c);
            g.used(&old);
            old
        });
        let _ = ghost.collect(rev);
        let y = m.join().unwrap();
        ghost.used(&y);
        ghost.discard(y);
    }
    both_orders("atomic_compare_exchange_drop_comparand", scenario);
}

/// S13: stack C (both mutators) and X (M0); C.atomic → Y. M0's
/// `compare_exchange(None, X)` fails and hands back a new handle to what
/// it found (a load: mark first, then increment and shade); M1 swaps the
/// slot to empty and drops what it got. Y then lives on M0's handle only.
#[test]
fn atomic_failed_compare_exchange_vs_swap() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        let y = Gc::new(A(GcAtomic::new(None)));
        let yo = Object::of(&y);
        let x = Gc::new(A(GcAtomic::new(None)));
        let c = Gc::new(A(GcAtomic::new(Some(y))));
        let c1 = c.clone();
        ghost.setup(&[obj("C", &c), obj("X", &x), ("Y", yo)], &[2, 1, 0], 2);
        let (g0, g1) = (ghost.clone(), ghost.clone());
        let m0 = thread::spawn(move || {
            g0.gave(&x);
            let r = c.0.compare_exchange(None, Some(x));
            if let Err((Some(x), found)) = &r {
                g0.got(x);
                if let Some(y) = found {
                    g0.got(y);
                }
            }
            (c, r)
        });
        let m1 = thread::spawn(move || {
            if let Some(v) = c1.0.swap(None) {
                g1.got(&v);
                g1.discard(v);
            }
            c1
        });
        let _ = ghost.collect(rev);
        let (c, r) = m0.join().unwrap();
        let c1 = m1.join().unwrap();
        if let Err((Some(x), found)) = r {
            ghost.discard(x);
            if let Some(y) = found {
                ghost.used(&y);
                ghost.discard(y);
            }
        }
        ghost.discard(c);
        ghost.discard(c1);
    }
    both_orders("atomic_failed_compare_exchange_vs_swap", scenario);
}

/// S5 on one thread, where a cell's barrier may skip shading: stack S
/// and X. The mutator write-locks S's mutex, moves X in and unlocks; then
/// write-locks it again, takes X out, drops S and keeps X. A barrier that
/// reaches the cell before the cycle's count queues nothing (PROTOCOL.md
/// §8, `--count-stamp`), and the second barrier of the cycle nothing
/// either: X, put in from the stack, must then not be counted inside S.
/// (Checked to fail when the count counts a cell a barrier reached first,
/// `RawRw::stamp_counted` always true.)
#[test]
fn mutex_shade_once_after_roots() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        let x = Gc::new(M(GcMutex::new(Link(None))));
        let s = Gc::new(M(GcMutex::new(Link(None))));
        let garbage = Gc::new(M(GcMutex::new(Link(None))));
        // A ring of one: only the collector frees it (an acyclic object
        // is freed when its last handle goes).
        garbage.0.lock().0 = Some(garbage.clone());
        ghost.setup(&[obj("S", &s), obj("X", &x), obj("G", &garbage)], &[1, 1, 0], 2);
        drop(garbage);
        let g = ghost.clone();
        let m = thread::spawn(move || {
            g.gave(&x);
            s.0.lock().0 = Some(x);
            let x = s.0.lock().0.take().unwrap();
            g.got(&x);
            g.discard(s);
            g.used(&x);
            x
        });
        let _ = ghost.collect(rev);
        let x = m.join().unwrap();
        ghost.used(&x);
        ghost.discard(x);
    }
    both_orders("mutex_shade_once_after_roots", scenario);
}

/// Freeing at zero (PROTOCOL.md §2 `drop(Gc)`, `--prompt-free`): X holds
/// Y in an immutable field; the mutator drops the last handle of X while a
/// cycle runs. X and Y are freed once, at zero (when the claim comes
/// before the cycle) or by the collector, which never traces, shades or
/// chooses an object claimed at zero (the asserts in `header.rs` and
/// `loom_heap::collect`). Fails without the grace period of
/// `barrier::begin_cycle` (the count traces X while its value drops).
#[test]
fn last_drop_vs_cycle() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        let y = Gc::new(Many(vec![]));
        let yo = Object::of(&y);
        let x = Gc::new(Many(vec![y]));
        let garbage = Gc::new(M(GcMutex::new(Link(None))));
        // A ring of one: only the collector frees it.
        garbage.0.lock().0 = Some(garbage.clone());
        ghost.setup(&[obj("X", &x), ("Y", yo), obj("G", &garbage)], &[1, 0, 0], 2);
        drop(garbage);
        let g = ghost.clone();
        let m = thread::spawn(move || g.discard(x));
        let _ = ghost.collect(rev);
        m.join().unwrap();
    }
    both_orders("last_drop_vs_cycle", scenario);
}

/// Freeing at zero during a cycle an object born in it (PROTOCOL.md §8,
/// model flag `--pf-newborn`, S22 over two cycles): the mutator allocates
/// N (before, during or between the cycles) and drops it while the
/// collector runs two cycles. N is claimed at zero when no cycle runs or
/// it was NEWBORN in the one under way (the cycle number unchanged since
/// the drop read it); else the collector frees it. No walk counts,
/// traces, shades or chooses N once claimed (the asserts in `header.rs`
/// and `loom_heap`). Fails when the reset in `cycle::run`'s C10 walk is a
/// plain store (the claim's GARBAGE is lost and the second cycle counts
/// N's dropped value), and when a claim during a cycle does not need the
/// cycle number unchanged.
#[test]
fn newborn_drop_vs_two_cycles() {
    /// A value that must be dropped once and never traced after.
    struct Tracked(&'static GhostBool);
    // SAFETY: holds no handle.
    unsafe impl Trace for Tracked {
        fn trace(&self, _: &mut Tracer<'_>) {
            assert!(!self.0.load(G), "the collector traced a value dropped at zero");
        }
    }
    impl Drop for Tracked {
        fn drop(&mut self) {
            assert!(!self.0.swap(true, G), "a value was dropped twice");
        }
    }
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        let garbage = Gc::new(M(GcMutex::new(Link(None))));
        garbage.0.lock().0 = Some(garbage.clone());
        ghost.setup(&[obj("G", &garbage)], &[0], 0);
        drop(garbage);
        let published = Arc::new(gc::Published::new(&ghost.objects()));
        let (g, p) = (ghost.clone(), published.clone());
        let m = thread::spawn(move || {
            // Leaked: a value dropped twice must not free it twice.
            let n = Gc::new(Tracked(Box::leak(Box::new(GhostBool::new(false)))));
            g.publish(&p, "N", &n);
            g.got(&n);
            g.discard(n);
        });
        let _ = ghost.collect_published(&published, rev);
        let _ = ghost.collect_published(&published, rev);
        m.join().unwrap();
    }
    both_orders("newborn_drop_vs_two_cycles", scenario);
}

/// S23 on the real code: stack C; the mutator allocates N, moves it into
/// C's mutex, takes it out again and drops it, while a cycle runs. The
/// count may read C.mutex → N and the mark shade N while N is claimed:
/// N's header must stay allocated and N is never greyed (it is born
/// marked), nor chosen.
#[test]
fn newborn_in_cell_vs_cycle() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        let c = Gc::new(M(GcMutex::new(Link(None))));
        let garbage = Gc::new(M(GcMutex::new(Link(None))));
        garbage.0.lock().0 = Some(garbage.clone());
        ghost.setup(&[obj("C", &c), obj("G", &garbage)], &[1, 0], 1);
        drop(garbage);
        let published = Arc::new(gc::Published::new(&ghost.objects()));
        let (g, p) = (ghost.clone(), published.clone());
        let m = thread::spawn(move || {
            let n = Gc::new(M(GcMutex::new(Link(None))));
            g.publish(&p, "N", &n);
            g.got(&n);
            g.gave(&n);
            c.0.lock().0 = Some(n);
            let n = c.0.lock().0.take().unwrap();
            g.got(&n);
            g.discard(n);
            c
        });
        let _ = ghost.collect_published(&published, rev);
        let c = m.join().unwrap();
        ghost.discard(c);
    }
    both_orders("newborn_in_cell_vs_cycle", scenario);
}

// ---------------------------------------------------------- 4. weak pointers

/// S15: X.mutex → Y; nothing holds X; a `Weak` points to X. The mutator
/// upgrades X and, if it got it, read-locks X's mutex and uses Y, keeping
/// X. A successful upgrade must keep X and Y alive; a failed one means X
/// was chosen as garbage, and then its weak pointer reads as cleared.
#[test]
fn weak_upgrade_vs_collection() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        let y = Gc::new(M(GcMutex::new(Link(None))));
        let yo = Object::of(&y);
        let x = Gc::new(M(GcMutex::new(Link(Some(y)))));
        let w = gc::Weak::new(&x);
        ghost.setup(&[obj("X", &x), ("Y", yo)], &[0, 0], 0);
        drop(x);
        let g = ghost.clone();
        let w2 = w.clone();
        let m = thread::spawn(move || {
            let x = w2.upgrade()?;
            g.got(&x);
            {
                let guard = x.0.lock();
                g.used(guard.0.as_ref().unwrap());
            }
            Some(x)
        });
        let _ = ghost.collect(rev);
        let x = m.join().unwrap();
        match x {
            Some(x) => {
                ghost.used(&x);
                ghost.used(x.0.lock().0.as_ref().unwrap());
                ghost.discard(x);
            }
            None => assert!(ghost.is_freed(0), "an upgrade failed for an object that was not collected"),
        }
        if ghost.is_freed(0) {
            assert!(w.upgrade().is_none(), "X was collected but its weak pointer still upgrades");
        }
    }
    both_orders("weak_upgrade_vs_collection", scenario);
}

/// S16 without its racing mutator: F.mutex → C; F has a finalizer;
/// nothing holds F; weak pointers to F and C. The real cycle must queue
/// F's finalizer with F's weak pointer already cleared (Go clears weak
/// pointers before queueing finalizers) and C's still upgrading: what a
/// finalizable object reaches is marked (Go's `markrootSpans`) and kept
/// for the finalizer; nothing is freed; the finalizer gets F intact.
///
/// The scenario's mutator (upgrade F, then upgrade and use C, racing with
/// the cycle) is checked by the protocol model (`gc-protocol-model`, `s16
/// --fin-roots-in-mark`), not here: with it, loom 0.7.3 fails its own
/// assertion on two read-modify-writes of one atomic by two threads
/// (`assert_ne!(mo_i, mo_j)` in `match_load_to_stores`, loom issue #252)
/// before checking anything. `weak_upgrade_vs_collection` races an upgrade
/// with the same close, clear and reopen code.
#[test]
fn weak_cleared_before_finalizer() {
    for rev in [false, true] {
        let label = format!("weak_cleared_before_finalizer ({})", if rev { "reverse" } else { "forward" });
        model(&label, move || {
            let ghost = Arc::new(Ghost::default());
            let c = Gc::new(M(GcMutex::new(Link(None))));
            let co = Object::of(&c);
            let wc = gc::Weak::new(&c);
            let f = Gc::new(M(GcMutex::new(Link(Some(c)))));
            let wf = gc::Weak::new(&f);
            let ran = Arc::new(GhostBool::new(false));
            let r2 = ran.clone();
            gc::set_finalizer(&f, move |f: Gc<M>| {
                assert!(f.0.lock().0.is_some(), "the finalizer's object lost its child");
                r2.store(true, G);
            });
            ghost.setup(&[obj("F", &f), ("C", co)], &[0, 0], 0);
            drop(f);
            let out = ghost.collect(rev);
            assert!(!ghost.is_freed(0) && !ghost.is_freed(1), "freed in the cycle that queues the finalizer");
            assert_eq!(out.finalizers.len(), 1, "F's finalizer was not queued");
            assert!(wf.upgrade().is_none(), "F's finalizer was queued but its weak pointer upgrades");
            let c = wc.upgrade().expect("what a finalizable object reaches lost its weak pointer");
            ghost.used(&c);
            drop(c);
            for job in out.finalizers {
                job();
            }
            assert!(ran.load(G));
            ghost.free();
        });
    }
}

// ------------------------------------------------------------ 5. assists

/// An object with any number of immutable children.
struct Many(Vec<Gc<Many>>);
// SAFETY: reports its children.
unsafe impl Trace for Many {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.0.trace(t);
    }
}

/// Mark assists vs. termination: stack Q; Q → A, B, D, E; A → C. With
/// assists on, the collector shares half of its grey objects as it drains
/// (two of Q's four children); the mutator runs an assist with a budget
/// of one unit, so it may take two, trace one (shading its child into its
/// own grey buffer) and put the other back while its mark is up. Then it
/// hands Q back. C is reachable throughout: it must never be chosen,
/// whoever traced A (the grace period waits for an assist holding taken
/// objects; the collector then takes back what was put back, and drains
/// the assist's buffer).
#[test]
fn assist_vs_termination() {
    fn scenario(ghost: &Arc<Ghost>, rev: bool) {
        let c = Gc::new(Many(vec![]));
        let co = Object::of(&c);
        let a = Gc::new(Many(vec![c]));
        let ao = Object::of(&a);
        let (b, d, e) = (Gc::new(Many(vec![])), Gc::new(Many(vec![])), Gc::new(Many(vec![])));
        let (bo, d_o, eo) = (Object::of(&b), Object::of(&d), Object::of(&e));
        let q = Gc::new(Many(vec![a, b, d, e]));
        let garbage = Gc::new(M(GcMutex::new(Link(None))));
        // A ring of one: only the collector frees it (an acyclic object
        // is freed when its last handle goes).
        garbage.0.lock().0 = Some(garbage.clone());
        ghost.setup(
            &[obj("Q", &q), ("A", ao), ("C", co), ("B", bo), ("D", d_o), ("E", eo), obj("G", &garbage)],
            &[1, 0, 0, 0, 0, 0, 0],
            6,
        );
        drop(garbage);
        gc::set_assists(true);
        let g = ghost.clone();
        let m = thread::spawn(move || {
            gc::assist_mark(1);
            g.used(&q);
            q
        });
        let _ = ghost.collect(rev);
        let q = m.join().unwrap();
        ghost.used(&q);
        for child in &q.0 {
            ghost.used(child);
        }
        ghost.used(&q.0[0].0[0]);
        ghost.discard(q);
    }
    both_orders("assist_vs_termination", scenario);
}
