//! The collector's protocol, scenario by scenario
//! (`loom-tests/gc-protocol-model/PROTOCOL.md`, scenarios S1–S17 of the loom
//! model in `src/main.rs`, and the counterexamples of `shared/GC_DESIGN.md`),
//! on the real collector. Weak pointers (S15, S16) and finalizers do not
//! exist yet.
//!
//! Each test forces the interleaving of its scenario: the collector pauses
//! at a step of its cycle (`gort::gc::__hooks`) while the test thread plays
//! the mutator, or a thread is held at a finer point: inside `Gc::new`, or
//! at its first touch of a trapped page (the collector in the middle of
//! its roots pass; a mutator between a slot's read and its increment, at
//! its barrier mark's write, or between a cell's acquisition and its
//! shading; see `common/gc.rs`). Then it checks that the object the
//! missing barrier would free is intact (not dropped, checksum right,
//! after other allocations reused the freed memory), and finally that
//! everything is freed once released.
//!
//! Each test's doc names the barrier it guards and the edit of
//! `runtime/src/gc` that was checked to make it fail (each edit alone, in
//! `--release`):
//!
//! | edit | fails |
//! |---|---|
//! | `barrier_shade` a no-op | S1, S3, S4b, S4c, S5, S6, S7, S17 (the `GcMutex` and `write` variants), `nested_cell_emptied_through_an_exclusive_guard`, `grace_period_waits_for_a_cell_barrier` |
//! | the count counts a cell a barrier reached first (`RawRw::stamp_counted` always true) | S5 |
//! | an exclusive barrier skips nested cells (`trace_cell`) | `nested_cell_emptied_through_an_exclusive_guard` |
//! | `grace_period` a no-op | S11 (load), S13, `grace_period_waits_for_a_cell_barrier` |
//! | `enter()` after the successful try in `RawRw::acquire` | `cell_barrier_mark_up_before_the_lock` |
//! | `enter()` after the slot access in `load` / `compare_exchange` / `swap` | `atomic_barrier_mark_up_before_the_slot_access` |
//! | no shade in `Gc::clone` | S9 |
//! | no shade in `GcAtomic::load` | S10, S11 (load) |
//! | no shade of the old value in `swap` | S11 (swap) |
//! | no shade of the old value in a successful `compare_exchange` | S12 |
//! | no shade in a failed `compare_exchange` | S13 |
//! | `alloc_object` sets `MARKED│SCANNED` without `NEWBORN` | S8, S14 |
//! | the snapshot (C3) ignores `NEWBORN` | S8, S14 |
//! | no reset of `internal` between cycles | S3 (use-after-free, the model's `rb-no-internal-reset.cycles2.s3`); most others leak |
//! | `assert!(handles >= internal)` in the roots pass | S17 |
//! | the mark traces every cell it can try-lock (`RawRw::needs_trace`, `stamp_traced` always true) | `the_mark_leaves_a_cell_the_count_skipped` |
//! | the mark leaves a cell a shared barrier queued (`needs_trace` without `QUEUED`) | `the_mark_traces_the_cells_nested_in_a_cell_a_reader_queued` |
//! | `RawRw::acquire` parks with the mark up | `gc_while_holding_a_guard_with_a_parked_waiter` (hangs) |
//!
//! Edits no test here can fail, and why: the barrier of `GcRwLock::read`
//! (the marker takes a shared lock, which succeeds beside readers, so a
//! read guard never makes it skip a cell; the model's locks are exclusive),
//! the phase read moved after `publish` in `alloc_object` (with the NEWBORN
//! flag, unsafe only if the snapshot reaches the object between the publish
//! and the flag write, a window inside `alloc_object` nothing can hold
//! open), roots on `handles > internal` instead of `!=` (PROTOCOL.md C5
//! allows both), and the second `mark()` after the phase goes off (not
//! needed: the model passes with the phase off at termination).
//!
//! Every test runs in a child process of its own with `GOGC=off`: the hook
//! and the page traps are process-global, and no automatic cycle may
//! interleave with the forced one. `GORT_GC_VIA=Mutex|Read|Write` runs only
//! that variant of the cell scenarios (for experiments).

mod common;
#[path = "common/gc.rs"]
mod gcc;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;

use common::OrPanic;
use gcc::*;
use gort::gc::__hooks::Step;
use gort::gc::{Gc, GcMutex, GcRwLock, Trace};

/// A scenario test: its body runs in a child process (see the file doc).
macro_rules! scenario {
    ($(#[$m:meta])* fn $name:ident() $body:block) => {
        $(#[$m])*
        #[test]
        fn $name() {
            isolated(stringify!($name), || $body)
        }
    };
}

/// The variants of a scenario to run: all of `all`, or only the one named
/// by `GORT_GC_VIA` (`Mutex`, `Read`, `Write`), for experiments.
fn vias(all: &[Via]) -> Vec<Via> {
    match std::env::var("GORT_GC_VIA") {
        Ok(v) => all.iter().copied().filter(|a| format!("{a:?}") == v).collect(),
        Err(_) => all.to_vec(),
    }
}

fn join<T>(h: JoinHandle<T>) -> T {
    let end = std::time::Instant::now() + MUST;
    while !h.is_finished() {
        assert!(std::time::Instant::now() < end, "a thread of the scenario did not finish (hang?)");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    h.join().or_panic()
}

/// Asserts that the node of every id in `ids` has been dropped.
#[track_caller]
fn assert_freed(what: &str, ids: &[u64]) {
    let n = count_dropped(ids);
    assert_eq!(n, ids.len(), "{what}: only {n} of {} nodes were freed", ids.len());
}

/// Panics unless `n` is the node `id` and intact.
#[track_caller]
fn expect<const P: usize>(n: &NodeOf<P>, id: u64, what: &str) {
    assert!(!dropped(id), "{what} (node {id}) was dropped while still reachable");
    assert_eq!(n.id, id, "{what}: the handle reads node {} instead of {id} (freed and reused)", n.id);
    n.verify(what);
}

/// The child of `n`'s `via` cell, checked to be node `id`.
#[track_caller]
fn expect_child<const P: usize>(n: &NodeOf<P>, via: Via, id: u64, what: &str) -> Gc<NodeOf<P>> {
    let g = acquire(n, via);
    let c = g.get().as_ref().unwrap_or_else(|| panic!("{what}: the cell is empty"));
    expect(c, id, what);
    c.clone()
}

scenario! {
    /// S1: stack Q; Q.cell → P; P.cell → X. Clone P out of Q, lock P's
    /// cell and hold it while the marker runs; clone X out after the cycle;
    /// drop P and Q, keep X.
    ///
    /// Guards the cell barrier's child shading (`cell.rs` `barrier_shade`):
    /// the marker finds P's cell busy and skips it, so only the barrier of
    /// the acquisition marks X. Fails (X dropped while in P's cell) with
    /// `barrier_shade` made a no-op. The `GcRwLock::read` variant cannot
    /// fail: the marker traces a read-locked cell (it takes a shared lock
    /// beside the readers), so the read barrier's removal passes it (see
    /// PROTOCOL.md: the model's locks are exclusive).
    fn s1_clone_through_two_locked_cells() {
        for via in vias(&[Via::Mutex, Via::Read]) {
            let x = Node::leaf();
            let p = holding(via, Some(x.clone()));
            let q = holding(via, Some(p.clone()));
            let (xid, pid, qid) = (x.id, p.id, q.id);
            drop((x, p));
            steps::script(&[Step::Rooted]);
            let gc = spawn_gc();
            steps::wait_paused(Step::Rooted);
            // Q is a root; P and X are reachable only through the cells.
            let p = acquire(&q, via).get().clone().unwrap();
            let gp = acquire(&p, via);
            steps::resume();
            join(gc);
            churn::<0>(2000);
            let x = {
                let c = gp.get().as_ref().expect("X left P's cell");
                expect(c, xid, &format!("{via:?}: X, cloned out after the cycle"));
                c.clone()
            };
            drop(gp);
            drop((p, q));
            gort::gc();
            assert_freed("P and Q", &[pid, qid]);
            expect(&x, xid, "X, kept");
            drop(x);
            gort::gc();
            assert_freed("X", &[xid]);
        }
    }
}

scenario! {
    /// S2 (control): stack C, X; move X into C's cell during the cycle,
    /// keep C. A moved-in handle needs no barrier: passes under every edit.
    fn s2_move_into_cell() {
        for via in vias(&[Via::Mutex, Via::Write]) {
            let c = holding::<0>(via, None);
            let x = Node::leaf();
            let (cid, xid) = (c.id, x.id);
            steps::script(&[Step::Rooted]);
            let gc = spawn_gc();
            steps::wait_paused(Step::Rooted);
            *acquire(&c, via).get_mut() = Some(x);
            steps::resume();
            join(gc);
            churn::<0>(2000);
            drop(expect_child(&c, via, xid, "X in C"));
            drop(c);
            gort::gc();
            assert_freed("C and X", &[cid, xid]);
        }
    }
}

scenario! {
    /// S3: stack C; C.cell → X. Take X out onto the stack while the marker
    /// has not traced C, drop C, keep X.
    ///
    /// Guards the child shading of a write acquisition (`cell.rs`
    /// `barrier_shade`): the marker traces C's cell after the take and
    /// finds it empty; X was counted as internal, so it is no root. Fails
    /// (X dropped while on the stack) with `barrier_shade` a no-op. Also
    /// fails (X dropped by the next cycle, a stale count making it look
    /// internal) without the reset of `internal` before each cycle
    /// (`collector.rs` C1; the model's `--no-internal-reset`).
    fn s3_take_out_of_cell_then_drop_container() {
        for via in vias(&[Via::Mutex, Via::Write]) {
            let x = Node::leaf();
            let c = holding(via, Some(x.clone()));
            let (cid, xid) = (c.id, x.id);
            drop(x);
            steps::script(&[Step::Rooted]);
            let gc = spawn_gc();
            steps::wait_paused(Step::Rooted);
            let x = acquire(&c, via).get_mut().take().unwrap();
            drop(c);
            steps::resume();
            join(gc);
            churn::<0>(2000);
            expect(&x, xid, &format!("{via:?}: X, taken out of C"));
            gort::gc();
            assert_freed("C", &[cid]);
            expect(&x, xid, "X, kept");
            drop(x);
            gort::gc();
            assert_freed("X", &[xid]);
        }
    }
}

scenario! {
    /// S4a (liveness control): a garbage cycle A ↔ B (through a mutex and
    /// a read-write lock), and a self-loop, with no handle outside the
    /// heap, are freed by one cycle. No barrier may keep them alive.
    fn s4a_garbage_cycle_is_freed() {
        let a = holding::<0>(Via::Mutex, None);
        let b = holding(Via::Write, Some(a.clone()));
        *a.cell.lock() = SlotOf(Some(b.clone()));
        let s = Node::leaf();
        *s.cell.lock() = SlotOf(Some(s.clone()));
        let ids = [a.id, b.id, s.id];
        drop((a, b, s));
        steps::script(&[]);
        gort::gc();
        assert_freed("the garbage cycle", &ids);
    }
}

scenario! {
    /// S4b: cycle A ↔ B; the mutator holds A, locks A's cell and reads B
    /// through it (no clone) while the marker runs.
    ///
    /// Guards the barrier on every acquisition and its child shading
    /// (`cell.rs` `barrier_shade`): the marker skips A's busy cell, and B's
    /// only handle is counted. Fails (B dropped under the guard) with
    /// `barrier_shade` a no-op. The `GcRwLock::read` variant cannot fail
    /// (the marker traces read-locked cells).
    fn s4b_read_through_locked_cell_of_a_cycle() {
        for via in vias(&[Via::Mutex, Via::Read]) {
            let a = holding::<0>(via, None);
            let b = holding(via, Some(a.clone()));
            *acquire(&a, writer(via)).get_mut() = Some(b.clone());
            let (aid, bid) = (a.id, b.id);
            drop(b);
            steps::script(&[Step::Rooted]);
            let gc = spawn_gc();
            steps::wait_paused(Step::Rooted);
            let g = acquire(&a, via);
            steps::resume();
            join(gc);
            churn::<0>(2000);
            expect(g.get().as_ref().unwrap(), bid, &format!("{via:?}: B, read in place"));
            drop(g);
            drop(a);
            gort::gc();
            assert_freed("A and B", &[aid, bid]);
        }
    }
}

scenario! {
    /// S4c: cycle A ↔ B; the mutator holds A, takes B out of A's cell onto
    /// the stack, drops A.
    ///
    /// Guards the child shading of a write acquisition (`cell.rs`
    /// `barrier_shade`). Fails (B dropped while on the stack) with
    /// `barrier_shade` a no-op.
    fn s4c_take_out_of_a_cycle() {
        for via in vias(&[Via::Mutex, Via::Write]) {
            let a = holding::<0>(via, None);
            let b = holding(via, Some(a.clone()));
            *acquire(&a, via).get_mut() = Some(b.clone());
            let (aid, bid) = (a.id, b.id);
            drop(b);
            steps::script(&[Step::Rooted]);
            let gc = spawn_gc();
            steps::wait_paused(Step::Rooted);
            let b = acquire(&a, via).get_mut().take().unwrap();
            drop(a);
            steps::resume();
            join(gc);
            churn::<0>(2000);
            expect(&b, bid, &format!("{via:?}: B, taken out"));
            drop(expect_child(&b, via, aid, "A, in B's cell"));
            drop(b);
            gort::gc();
            assert_freed("A and B", &[aid, bid]);
        }
    }
}

scenario! {
    /// S4d (control): cycle A ↔ B; the mutator only clones its handle to A
    /// and drops the original during the cycle. Passes under every edit.
    fn s4d_handle_traffic_only() {
        let a = holding::<0>(Via::Mutex, None);
        let b = holding(Via::Mutex, Some(a.clone()));
        *a.cell.lock() = SlotOf(Some(b.clone()));
        let (aid, bid) = (a.id, b.id);
        drop(b);
        steps::script(&[Step::Rooted]);
        let gc = spawn_gc();
        steps::wait_paused(Step::Rooted);
        let a2 = a.clone();
        drop(a);
        steps::resume();
        join(gc);
        churn::<0>(2000);
        expect(&a2, aid, "A");
        drop(expect_child(&a2, Via::Mutex, bid, "B"));
        drop(a2);
        gort::gc();
        assert_freed("A and B", &[aid, bid]);
    }
}

scenario! {
    /// S5: S is shared by two mutators. M0 moves X into S's cell before the
    /// count and drops S; M1 takes X out after the roots were read and
    /// keeps S and X.
    ///
    /// Guards the cell barrier (`cell.rs` `barrier_shade`): M0's
    /// acquisition reaches S's cell before the count, which then skips the
    /// cell, so X is not counted inside it and stays a root; M1's barrier
    /// queues nothing. Fails (X dropped while M1 holds it) with
    /// `barrier_shade` a no-op: the count then counts X in S's cell, so it
    /// is no root, and the marker finds the cell empty.
    fn s5_hand_over_through_a_shared_cell() {
        for via in vias(&[Via::Mutex, Via::Write]) {
            let s = holding::<0>(via, None);
            let x = Node::leaf();
            let (sid, xid) = (s.id, x.id);
            let s1 = s.clone();
            steps::script(&[Step::PhaseOn, Step::Rooted]);
            let gc = spawn_gc();
            steps::wait_paused(Step::PhaseOn);
            join(std::thread::spawn(move || {
                *acquire(&s, via).get_mut() = Some(x);
                drop(s);
            }));
            steps::resume();
            steps::wait_paused(Step::Rooted);
            let m1 = std::thread::spawn(move || {
                let x = acquire(&s1, via).get_mut().take();
                (s1, x)
            });
            let (s1, x) = join(m1);
            steps::resume();
            join(gc);
            churn::<0>(2000);
            let x = x.expect("M1 found X in S's cell");
            expect(&x, xid, &format!("{via:?}: X, taken by M1"));
            drop((s1, x));
            gort::gc();
            assert_freed("S and X", &[sid, xid]);
        }
    }
}

scenario! {
    /// S6: stack Q; Q.cell → P. Lock Q's cell and use P in place (no
    /// clone) while the marker runs; keep Q.
    ///
    /// Guards the barrier on every acquisition and its child shading
    /// (`cell.rs` `barrier_shade`). Fails (P dropped under the guard) with
    /// `barrier_shade` a no-op. The `GcRwLock::read` variant cannot fail
    /// (the marker traces read-locked cells).
    fn s6_use_child_in_place_under_lock() {
        for via in vias(&[Via::Mutex, Via::Read]) {
            let p = Node::leaf();
            let q = holding(via, Some(p.clone()));
            let (pid, qid) = (p.id, q.id);
            drop(p);
            steps::script(&[Step::Rooted]);
            let gc = spawn_gc();
            steps::wait_paused(Step::Rooted);
            let g = acquire(&q, via);
            steps::resume();
            join(gc);
            churn::<0>(2000);
            expect(g.get().as_ref().unwrap(), pid, &format!("{via:?}: P, used in place"));
            drop(g);
            drop(q);
            gort::gc();
            assert_freed("P and Q", &[pid, qid]);
        }
    }
}

scenario! {
    /// S7: stack Q, X; Q.cell → C. Lock Q's cell and hold it; through the
    /// borrowed handle, lock C's cell and move X into it; keep Q.
    ///
    /// Guards the barrier on every acquisition and its child shading
    /// (`cell.rs` `barrier_shade`): C's only handle is in Q's busy cell.
    /// Fails (C dropped under Q's guard, then locked) with `barrier_shade`
    /// a no-op. The `GcRwLock::read` variant cannot fail (the marker traces
    /// read-locked cells).
    fn s7_lock_a_child_through_a_borrowed_handle() {
        for via in vias(&[Via::Mutex, Via::Read]) {
            let c = holding::<0>(writer(via), None);
            let q = holding(via, Some(c.clone()));
            let x = Node::leaf();
            let (cid, qid, xid) = (c.id, q.id, x.id);
            drop(c);
            steps::script(&[Step::Rooted]);
            let gc = spawn_gc();
            steps::wait_paused(Step::Rooted);
            let gq = acquire(&q, via);
            *acquire(gq.get().as_ref().unwrap(), writer(via)).get_mut() = Some(x);
            steps::resume();
            join(gc);
            churn::<0>(2000);
            let c = gq.get().as_ref().unwrap();
            expect(c, cid, &format!("{via:?}: C, under Q's guard"));
            drop(expect_child(c, writer(via), xid, "X, in C"));
            drop(gq);
            drop(q);
            gort::gc();
            assert_freed("Q, C and X", &[qid, cid, xid]);
        }
    }
}

scenario! {
    /// S8: stack X; `Gc::new(N)` while the phase is on (before the count),
    /// move X into N's cell, keep N.
    ///
    /// Guards "a newborn is not old in its cycle" (`heap.rs`
    /// `alloc_object`: the phase read before publishing, and the NEWBORN
    /// flag it sets): N is born black, so if the cycle counted it as old,
    /// X would be counted as internal and N never traced. Fails (X dropped
    /// while in N) when `alloc_object` sets `MARKED | SCANNED` without
    /// `NEWBORN`, and when the snapshot (`collector.rs` C3) ignores
    /// `NEWBORN`. Moving the phase read after `publish` does NOT fail it:
    /// with the NEWBORN flag that order is unsafe only if the snapshot
    /// reaches N between the publish and the flag write, a window inside
    /// `alloc_object` that no hook can hold open.
    ///
    /// Second part (no edit fails it; it pins PROTOCOL.md §4's "read Off,
    /// published after C2 is old if the snapshot saw it"): `Gc::new` reads
    /// the phase before the cycle and publishes N only after the phase is
    /// on (held in the allocator); N is then old, a root, and traced.
    fn s8_newborn_receives_a_child() {
        for via in vias(&[Via::Mutex, Via::Write]) {
            let x = Node::leaf();
            let xid = x.id;
            steps::script(&[Step::PhaseOn]);
            let gc = spawn_gc();
            steps::wait_paused(Step::PhaseOn);
            let n = Node::leaf();
            *acquire(&n, via).get_mut() = Some(x);
            steps::resume();
            join(gc);
            churn::<0>(2000);
            let nid = n.id;
            drop(expect_child(&n, via, xid, &format!("{via:?}: X, in the newborn N")));
            gort::gc();
            drop(expect_child(&n, via, xid, "X, in N, one cycle later"));
            drop(n);
            gort::gc();
            assert_freed("N and X", &[nid, xid]);
        }
        // Read Off, publish after C2.
        let x = Big::leaf();
        let xid = x.id;
        let m = std::thread::spawn(|| {
            pause_my_next_span_alloc();
            Big::leaf()
        });
        assert!(alloc_paused_within(MUST), "Gc::new did not allocate a span");
        assert!(!gort::gc::__hooks::phase_on());
        steps::script(&[Step::PhaseOn]);
        let gc = spawn_gc();
        steps::wait_paused(Step::PhaseOn);
        release_alloc();
        let n = join(m);
        *n.cell.lock() = SlotOf(Some(x));
        steps::resume();
        join(gc);
        churn::<BIG_PAD>(8);
        drop(expect_child(&n, Via::Mutex, xid, "X, in N published after the phase went on"));
        let nid = n.id;
        drop(n);
        gort::gc();
        assert_freed("N and X", &[nid, xid]);
    }
}

scenario! {
    /// S9 (GC_DESIGN's clone out of an immutable field): stack Q; Q.imm → X
    /// (an immutable field: read with no lock). The roots pass reads X (one
    /// handle, one counted edge: no root); before it reads Q, the mutator
    /// clones X out of Q.imm and drops Q; Q then reads as no root either.
    ///
    /// Guards clone shading (`handle.rs` `Gc::clone`: `shade_from_mutator`
    /// while the phase is on): no cell barrier sees this clone. Fails (X
    /// dropped while the mutator holds it) with the shade removed from
    /// `Gc::clone`. The collector is held in the middle of its roots pass
    /// by page traps on X's and Q's headers (large objects, X's span
    /// first): the test checks that it reads X before Q.
    fn s9_clone_out_of_an_immutable_field() {
        PageTrap::install();
        let x = Big::leaf();
        let q = Big::new(Parts { imm: Some(x.clone()), ..Default::default() });
        let (xid, qid) = (x.id, q.id);
        drop(x);
        steps::script(&[Step::Counted]);
        let gc = spawn_gc();
        steps::wait_paused(Step::Counted);
        let tx = PageTrap::arm(q.imm.as_ref().unwrap());
        let tq = PageTrap::arm(&q);
        steps::resume();
        tx.wait_hit("the roots pass, at X");
        assert_eq!(tq.hits(), 0, "the roots pass read Q before X: the scenario needs the other order");
        tx.release();
        tq.wait_hit("the roots pass, at Q");
        tq.open();
        let x = q.imm.clone().unwrap();
        drop(q);
        tq.release();
        join(gc);
        churn::<BIG_PAD>(8);
        expect(&x, xid, "X, cloned out of Q.imm");
        gort::gc();
        assert_freed("Q", &[qid]);
        drop(x);
        gort::gc();
        assert_freed("X", &[xid]);
    }
}

scenario! {
    /// S10: stack A; A.atom → X. The roots pass reads X (no root); before
    /// it reads A, the mutator loads X out of A's `GcAtomic` and drops A.
    ///
    /// Guards the clone shading of `GcAtomic::load` (`cell.rs`: the
    /// `e.shade` after the increment). Fails (X dropped while held) with
    /// that shade removed. Held in the roots pass by page traps, as S9.
    fn s10_atomic_load_then_drop_the_container() {
        PageTrap::install();
        let x = Big::leaf();
        let a = Big::new(Parts { atom: Some(x.clone()), ..Default::default() });
        let (xid, aid) = (x.id, a.id);
        let px = page_of(&x);
        drop(x);
        steps::script(&[Step::Counted]);
        let gc = spawn_gc();
        steps::wait_paused(Step::Counted);
        let tx = PageTrap::arm_page(px);
        let ta = PageTrap::arm(&a);
        steps::resume();
        tx.wait_hit("the roots pass, at X");
        assert_eq!(ta.hits(), 0, "the roots pass read A before X: the scenario needs the other order");
        tx.release();
        ta.wait_hit("the roots pass, at A");
        ta.open();
        let x = a.atom.load().unwrap();
        drop(a);
        ta.release();
        join(gc);
        churn::<BIG_PAD>(8);
        expect(&x, xid, "X, loaded out of A.atom");
        gort::gc();
        assert_freed("A", &[aid]);
        drop(x);
        gort::gc();
        assert_freed("X", &[xid]);
    }
}

scenario! {
    /// S11's second mutator, alone: stack A; A.atom → X. After the roots
    /// are read (X: one handle, one counted edge), the mutator swaps X out
    /// of the slot and keeps it; the marker then finds the slot empty.
    ///
    /// Guards the shade of the old value in `GcAtomic::swap` (`cell.rs`:
    /// `e.shade(o)` in `swap`; `store` is `swap` plus a drop). Fails (X
    /// dropped while held) with that shade removed.
    fn s11_swap_out_of_an_atomic_during_the_cycle() {
        let x = Node::leaf();
        let a = Node::new(Parts { atom: Some(x.clone()), ..Default::default() });
        let (xid, aid) = (x.id, a.id);
        drop(x);
        steps::script(&[Step::Rooted]);
        let gc = spawn_gc();
        steps::wait_paused(Step::Rooted);
        let x = a.atom.swap(None).unwrap();
        steps::resume();
        join(gc);
        churn::<0>(2000);
        expect(&x, xid, "X, swapped out");
        drop((a, x));
        gort::gc();
        assert_freed("A and X", &[aid, xid]);
    }
}

/// A value with a cell inside, behind a cell.
#[derive(Trace)]
struct Inner {
    cell: GcMutex<Option<Gc<Node>>>,
}

#[derive(Trace)]
struct Nest {
    m: GcMutex<Inner>,
    w: GcRwLock<Inner>,
}

scenario! {
    /// A cell nested in the value of another: N.m (or N.w) holds a value
    /// whose own `GcMutex` holds X. The mutator locks the outer cell
    /// exclusively after the roots were read, moves the nested cell out
    /// through its guard and empties it with `into_inner` (no barrier),
    /// keeps X.
    ///
    /// Guards the shading of nested cells' children on an exclusive
    /// acquisition (`cell.rs` `trace_cell`, `Mode::ExclusiveBarrier`).
    /// Fails (X dropped while held) when that arm traces nothing.
    fn nested_cell_emptied_through_an_exclusive_guard() {
        for via in vias(&[Via::Mutex, Via::Write]) {
            let write = via == Via::Write;
            let x = Node::leaf();
            let xid = x.id;
            let empty = || Inner { cell: GcMutex::new(None) };
            let full = Inner { cell: GcMutex::new(Some(x)) };
            let n = if write {
                Gc::new(Nest { m: GcMutex::new(empty()), w: GcRwLock::new(full) })
            } else {
                Gc::new(Nest { m: GcMutex::new(full), w: GcRwLock::new(empty()) })
            };
            steps::script(&[Step::Rooted]);
            let gc = spawn_gc();
            steps::wait_paused(Step::Rooted);
            let inner = if write {
                std::mem::replace(&mut *n.w.write(), empty())
            } else {
                std::mem::replace(&mut *n.m.lock(), empty())
            };
            let x = inner.cell.into_inner().unwrap();
            steps::resume();
            join(gc);
            churn::<0>(2000);
            expect(&x, xid, &format!("{via:?}: X, out of a nested cell"));
            drop((n, x));
            gort::gc();
            assert_freed("X", &[xid]);
        }
    }
}

/// S11 and S13: `op` runs on its own thread and is held by a page trap on
/// `y`'s header at its first touch of it (the increment of a load, after
/// the slot was read); meanwhile the test thread swaps `y` out of `a.atom`
/// and drops it, then runs a cycle. The cycle must wait for the held
/// thread; if it reaches its sweep within `MUST_NOT`, the held thread is
/// let go then (too late: its object is garbage already). Returns what
/// `op` returned.
fn load_races_swap_and_drop(
    a: &Gc<Big>,
    y: Gc<Big>,
    op: impl FnOnce() -> Option<Gc<Big>> + Send + 'static,
) -> Option<Gc<Big>> {
    let py = page_of(&y);
    drop(y);
    let ty = PageTrap::arm_page(py);
    let m = std::thread::spawn(op);
    ty.wait_hit("the load's increment");
    ty.open();
    let y = a.atom.swap(None).unwrap();
    drop(y);
    steps::script(&[Step::Swept]);
    let gc = spawn_gc();
    let early = steps::paused_within(Step::Swept, MUST_NOT);
    ty.release();
    let got = join(m);
    if !early {
        steps::wait_paused(Step::Swept);
    }
    steps::resume();
    join(gc);
    got
}

scenario! {
    /// S11: A.atom → X; both mutators hold A. M0 loads A.atom; between its
    /// read of the slot and its increment of X's count (held there by a
    /// page trap on X's header), M1 swaps the slot to empty and drops X: X
    /// has no handle at all. A cycle runs meanwhile.
    ///
    /// Guards the grace period that waits for a load's barrier mark, and
    /// the load's shade. Fails (X dropped while M0 holds the handle its
    /// load returned) with `barrier::grace_period` a no-op, and with the
    /// load's shade removed. (M0 is held after its mark went up, so moving
    /// `enter()` after the slot's read does not fail it:
    /// `atomic_barrier_mark_up_before_the_slot_access` catches that.)
    fn s11_atomic_load_races_swap_and_drop() {
        PageTrap::install();
        let x = Big::leaf();
        let a = Big::new(Parts { atom: Some(x.clone()), ..Default::default() });
        let (xid, aid) = (x.id, a.id);
        let a0 = a.clone();
        let got = load_races_swap_and_drop(&a, x, move || a0.atom.load());
        churn::<BIG_PAD>(8);
        let x = got.expect("M0's load found X");
        expect(&x, xid, "X, returned by M0's load");
        drop(a);
        gort::gc();
        assert_freed("A", &[aid]);
        expect(&x, xid, "X, kept");
        drop(x);
        gort::gc();
        assert_freed("X", &[xid]);
    }
}

scenario! {
    /// S12: stack A, Y; A.atom → Y. `compare_exchange(Some(&Y), None)`
    /// succeeds and hands back the slot's handle; the mutator drops its
    /// comparand and A, and keeps the returned Y. The roots pass reads Y
    /// after that (held by a page trap): one handle, one counted edge.
    ///
    /// Guards the shade of the old value on a successful
    /// `compare_exchange` (`cell.rs`: `e.shade(old)` in the `Ok` arm),
    /// although the caller held the comparand. Fails (Y dropped while held)
    /// with that shade removed.
    fn s12_compare_exchange_then_drop_the_comparand() {
        PageTrap::install();
        let y = Big::leaf();
        let a = Big::new(Parts { atom: Some(y.clone()), ..Default::default() });
        let (yid, aid) = (y.id, a.id);
        steps::script(&[Step::Counted]);
        let gc = spawn_gc();
        steps::wait_paused(Step::Counted);
        let ty = PageTrap::arm(&y);
        let ta = PageTrap::arm(&a);
        steps::resume();
        ty.wait_hit("the roots pass, at Y");
        assert_eq!(ta.hits(), 0, "the roots pass read A before Y: the scenario needs the other order");
        ty.open();
        ta.open();
        let got = a.atom.compare_exchange(Some(&y), None).ok().unwrap().unwrap();
        drop(y);
        drop(a);
        ty.release();
        ta.release();
        join(gc);
        churn::<BIG_PAD>(8);
        expect(&got, yid, "Y, returned by compare_exchange");
        gort::gc();
        assert_freed("A", &[aid]);
        drop(got);
        gort::gc();
        assert_freed("Y", &[yid]);
    }
}

scenario! {
    /// S13: A.atom → Y; M0 holds A and X, M1 holds A. M0's
    /// `compare_exchange(None, Some(X))` fails and returns a new handle to
    /// Y (a load); between its read of the slot and its increment of Y
    /// (held by a page trap), M1 swaps the slot to empty and drops Y. A
    /// cycle runs meanwhile. M0 then uses Y and drops A.
    ///
    /// Guards the clone shade of a failed `compare_exchange` and the grace
    /// period. Fails (Y dropped while M0 holds it) with
    /// `barrier::grace_period` a no-op, and with the `Err` arm's shade
    /// removed. (Its mark's position: see
    /// `atomic_barrier_mark_up_before_the_slot_access`.)
    fn s13_failed_compare_exchange_races_swap() {
        PageTrap::install();
        let y = Big::leaf();
        let x = Big::leaf();
        let a = Big::new(Parts { atom: Some(y.clone()), ..Default::default() });
        let (yid, xid, aid) = (y.id, x.id, a.id);
        let a0 = a.clone();
        let got = load_races_swap_and_drop(&a, y, move || {
            let r = a0.atom.compare_exchange(None, Some(x));
            drop(a0);
            match r {
                Err((Some(_x), found)) => found,
                _ => panic!("compare_exchange(None, ..) succeeded on a full slot"),
            }
        });
        churn::<BIG_PAD>(8);
        let y = got.expect("M0's compare_exchange found Y");
        expect(&y, yid, "Y, returned by the failed compare_exchange");
        drop(a);
        gort::gc();
        assert_freed("A and X", &[aid, xid]);
        drop(y);
        gort::gc();
        assert_freed("Y", &[yid]);
    }
}

scenario! {
    /// S14: two cycles back to back. Stack Q, X. `Gc::new(N)` reads the
    /// phase while cycle 1 is on and publishes N only after cycle 2 turned
    /// the phase on (held in the allocator across the cycle boundary); then
    /// X moves into N's cell and N into Q's; only Q is kept.
    ///
    /// Guards "a newborn is not old in its cycle" across the boundary
    /// (cycle 2's reset touches published objects only, and N keeps the
    /// NEWBORN flag of its phase read): otherwise N is old and black in
    /// cycle 2, never traced, and X, counted in N's cell, is swept. Fails
    /// (X dropped while reachable from Q) when `alloc_object` sets `MARKED
    /// | SCANNED` without `NEWBORN`, and when the snapshot ignores
    /// `NEWBORN`.
    fn s14_newborn_across_two_cycles() {
        let q = Big::leaf();
        let x = Big::leaf();
        let (qid, xid) = (q.id, x.id);
        steps::script(&[Step::Terminated, Step::PhaseOn]);
        let gc1 = spawn_gc();
        steps::wait_paused(Step::Terminated);
        let m = std::thread::spawn(|| {
            pause_my_next_span_alloc();
            Big::leaf()
        });
        assert!(alloc_paused_within(MUST), "Gc::new did not allocate a span");
        steps::resume();
        join(gc1);
        let gc2 = spawn_gc();
        steps::wait_paused(Step::PhaseOn);
        release_alloc();
        let n = join(m);
        let nid = n.id;
        *n.cell.lock() = SlotOf(Some(x));
        *q.cell.lock() = SlotOf(Some(n));
        steps::resume();
        join(gc2);
        churn::<BIG_PAD>(8);
        let n = expect_child(&q, Via::Mutex, nid, "N, in Q");
        drop(expect_child(&n, Via::Mutex, xid, "X, in N"));
        drop(n);
        gort::gc();
        let n = expect_child(&q, Via::Mutex, nid, "N, one cycle later");
        drop(expect_child(&n, Via::Mutex, xid, "X, one cycle later"));
        drop((n, q));
        gort::gc();
        assert_freed("Q, N and X", &[qid, nid, xid]);
    }
}

scenario! {
    /// S17: stack C; C.cell → X. During the cycle the mutator takes X out
    /// of C and keeps it past the sweep (first part), or drops it before
    /// the roots are read, so that X has fewer handles than counted edges
    /// (second part).
    ///
    /// First part guards the child shading of a write acquisition
    /// (`cell.rs` `barrier_shade`): fails (X dropped while held) with it a
    /// no-op. Second part guards "never abort on `handles < internal`"
    /// (PROTOCOL.md C5, GC_DESIGN's invalid `internal <= handles` check):
    /// `gort::gc()` must return normally, and X is freed by a later cycle;
    /// fails (the collector thread dies, the cycle never ends) with an
    /// `assert!(handles >= internal)` in the roots pass. Roots on `handles >
    /// internal` instead of `!=` pass it (PROTOCOL.md C5 allows both).
    fn s17_take_out_and_drop() {
        for via in vias(&[Via::Mutex, Via::Write]) {
            let x = Node::leaf();
            let c = holding(via, Some(x.clone()));
            let (cid, xid) = (c.id, x.id);
            drop(x);
            steps::script(&[Step::Rooted]);
            let gc = spawn_gc();
            steps::wait_paused(Step::Rooted);
            let x = acquire(&c, via).get_mut().take().unwrap();
            steps::resume();
            join(gc);
            churn::<0>(2000);
            expect(&x, xid, &format!("{via:?}: X, taken out"));
            drop(x);
            gort::gc();
            assert_freed("X", &[xid]);
            // handles < internal.
            *acquire(&c, via).get_mut() = Some(Node::leaf());
            let x2id = acquire(&c, via).get().as_ref().unwrap().id;
            steps::script(&[Step::Counted]);
            let gc = spawn_gc();
            steps::wait_paused(Step::Counted);
            drop(acquire(&c, via).get_mut().take());
            steps::resume();
            join(gc);
            gort::gc();
            assert_freed("X, dropped with fewer handles than counted edges", &[x2id]);
            drop(c);
            gort::gc();
            assert_freed("C", &[cid]);
        }
    }
}

scenario! {
    /// A mutator is inside a cell's barrier (lock taken, mark up, children
    /// not shaded yet) while the marker skips the busy cell and looks for
    /// termination. C.cell → X; the mutator takes X out and keeps it. The
    /// mutator is held by a page trap on the part of its barrier record
    /// that holds its grey buffer (the barrier shades into it under its
    /// lock), which it touches right after taking the cell's lock.
    ///
    /// Guards the grace period of mark termination (`barrier.rs`
    /// `grace_period`, PROTOCOL.md C6): the cycle must not end before the
    /// mutator's shades are in. Fails (X dropped while held) with
    /// `grace_period` a no-op. (The mutator is held after its mark went up:
    /// "mark up before the lock" is `cell_barrier_mark_up_before_the_lock`.)
    fn grace_period_waits_for_a_cell_barrier() {
        // Register this thread before any record page is trapped.
        drop(gort::gc::GcAtomic::<Node>::new(None).load());
        let mut threads = Vec::new();
        for via in vias(&[Via::Mutex, Via::Write]) {
            let x = Node::leaf();
            let c = holding(via, Some(x.clone()));
            let (cid, xid) = (c.id, x.id);
            drop(x);
            let c0 = c.clone();
            // The record's grey buffer (its first 32 bytes) on one page,
            // its barrier mark on the next.
            let m = OwnRecord::spawn_split(32, move || {
                let x = acquire(&c0, via).get_mut().take();
                drop(c0);
                x
            });
            steps::script(&[Step::Rooted, Step::Swept]);
            let gc = spawn_gc();
            steps::wait_paused(Step::Rooted);
            let trap = PageTrap::arm_page(m.page);
            m.go();
            trap.wait_hit("the mutator's grey buffer");
            if via == Via::Mutex {
                assert!(
                    c.cell.try_lock().is_none(),
                    "the mutator was held before it took the lock: its barrier record is not laid out as this test \
                     assumes (grey buffer in the first 32 bytes, mark after)"
                );
            }
            // The collector may drain the (empty, unlocked) grey buffer.
            trap.open();
            steps::resume();
            let early = steps::paused_within(Step::Swept, MUST_NOT);
            trap.release();
            let x = m.result().expect("X was in C");
            if !early {
                steps::wait_paused(Step::Swept);
            }
            steps::resume();
            join(gc);
            churn::<0>(2000);
            expect(&x, xid, &format!("{via:?}: X, taken out by the held mutator"));
            threads.push(m);
            drop((x, c));
            gort::gc();
            assert_freed("C and X", &[cid, xid]);
        }
        drop(threads);
    }
}

scenario! {
    /// A mutator acquires a cell while the marker runs, and is held at the
    /// first write of its barrier mark (a page trap on its barrier record).
    /// C.cell → X; the mutator takes X out and keeps it.
    ///
    /// Guards "the mark is up before the lock is taken" (PROTOCOL.md
    /// `--flag-after-lock`, GC_DESIGN's "raising it after the lock is taken
    /// is the same use-after-free"): with the mark raised after a
    /// successful try, the thread holds the lock with its mark down, the
    /// marker skips the busy cell, the grace period does not wait, and the
    /// phase is off when the barrier finally reads it. Fails (X dropped
    /// while held) when `RawRw::acquire` calls `enter()` after the
    /// successful `try_write`/`try_read`.
    fn cell_barrier_mark_up_before_the_lock() {
        // Register this thread before any record page is trapped.
        drop(gort::gc::GcAtomic::<Node>::new(None).load());
        let mut threads = Vec::new();
        for via in vias(&[Via::Mutex, Via::Write]) {
            let x = Node::leaf();
            let c = holding(via, Some(x.clone()));
            let (cid, xid) = (c.id, x.id);
            drop(x);
            let c0 = c.clone();
            let m = OwnRecord::spawn(move || {
                let x = acquire(&c0, via).get_mut().take();
                drop(c0);
                x
            });
            steps::script(&[Step::Rooted, Step::Swept]);
            let gc = spawn_gc();
            steps::wait_paused(Step::Rooted);
            let trap = PageTrap::arm_page(m.page2);
            m.go();
            trap.wait_hit("the mutator's barrier mark");
            trap.open();
            steps::resume();
            steps::wait_paused(Step::Swept);
            trap.release();
            let x = m.result().expect("X was in C");
            steps::resume();
            join(gc);
            churn::<0>(2000);
            expect(&x, xid, &format!("{via:?}: X, taken out by the late mutator"));
            threads.push(m);
            drop((x, c));
            gort::gc();
            assert_freed("C and X", &[cid, xid]);
        }
        drop(threads);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AtomicOp {
    Load,
    FailedCas,
    Swap,
}

scenario! {
    /// A mutator runs a `GcAtomic` operation and is held at the first
    /// write of its barrier mark (a page trap on its barrier record).
    /// A.atom → X. `load` and a failed `compare_exchange` (which returns
    /// the value found): meanwhile, before the cycle, the test thread swaps
    /// X out and drops it (S11, S13). `swap`: the mutator swaps X out during
    /// the cycle, after the count, and keeps it.
    ///
    /// Guards "the mark is up before the slot is accessed" (PROTOCOL.md
    /// `--atomic-mark-late`). Fails (X dropped while the mutator holds the
    /// handle the operation returned) when `enter()` is moved after the
    /// slot access: after the `slot.load` in `load`, after the
    /// `slot.compare_exchange`, after the `slot.swap`.
    fn atomic_barrier_mark_up_before_the_slot_access() {
        drop(gort::gc::GcAtomic::<Node>::new(None).load());
        let mut threads = Vec::new();
        for op in [AtomicOp::Load, AtomicOp::FailedCas, AtomicOp::Swap] {
            let x = Node::leaf();
            let a = Node::new(Parts { atom: Some(x.clone()), ..Default::default() });
            let (aid, xid) = (a.id, x.id);
            drop(x);
            let a0 = a.clone();
            let m = OwnRecord::spawn(move || match op {
                AtomicOp::Load => a0.atom.load(),
                // Succeeds (and returns None) if it comes after the swap.
                AtomicOp::FailedCas => match a0.atom.compare_exchange(None, Some(Node::leaf())) {
                    Err((_, found)) => found,
                    Ok(old) => old,
                },
                AtomicOp::Swap => a0.atom.swap(None),
            });
            // Armed once the collector is paused: its grace periods read
            // the mutator's record too.
            let (trap, gc) = if op == AtomicOp::Swap {
                steps::script(&[Step::Rooted, Step::Swept]);
                let gc = spawn_gc();
                steps::wait_paused(Step::Rooted);
                let trap = PageTrap::arm_page(m.page2);
                m.go();
                trap.wait_hit("the mutator's barrier mark");
                trap.open();
                steps::resume();
                (trap, gc)
            } else {
                let trap = PageTrap::arm_page(m.page2);
                m.go();
                trap.wait_hit("the mutator's barrier mark");
                trap.open();
                drop(a.atom.swap(None));
                steps::script(&[Step::Swept]);
                (trap, spawn_gc())
            };
            steps::wait_paused(Step::Swept);
            trap.release();
            let got = m.result();
            steps::resume();
            join(gc);
            churn::<0>(2000);
            match (op, got) {
                (AtomicOp::Swap, None) => panic!("swap found the slot empty"),
                (_, Some(x)) => {
                    expect(&x, xid, &format!("{op:?}: X, returned to the late mutator"));
                    drop(x);
                }
                (_, None) => {} // the operation came after the test's swap
            }
            threads.push(m);
            drop(a);
            gort::gc();
            assert_freed("A and X", &[aid, xid]);
        }
        drop(threads);
    }
}

/// Holds `c`'s cell on this thread or goroutine, lets `waiter` block on
/// the same cell, then collects twice: both `gc()` calls must return.
fn gc_while_holding(c: &Gc<Node>, xid: u64, waiter: impl FnOnce(Box<dyn FnOnce() + Send>)) {
    let g = c.cell.lock();
    let c2 = c.clone();
    let started = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let (s2, d2) = (started.clone(), done.clone());
    waiter(Box::new(move || {
        s2.store(true, SeqCst);
        let id = c2.cell.lock().0.as_ref().unwrap().id;
        assert_eq!(id, xid);
        d2.store(true, SeqCst);
    }));
    assert!(common::spin_until(30, || started.load(SeqCst)));
    // Give it time to park on the lock.
    gort::time::sleep(std::time::Duration::from_millis(50));
    gort::gc();
    gort::gc();
    expect(g.0.as_ref().unwrap(), xid, "X, in the held cell");
    assert!(!done.load(SeqCst), "the waiter got a held lock");
    drop(g);
    assert!(common::spin_until(30, || done.load(SeqCst)), "the waiter never got the lock");
}

scenario! {
    /// GC_DESIGN's liveness counterexample for the rejected "retry busy
    /// cells" design, and the rule "never park with the barrier mark up": a
    /// goroutine (then a plain thread) holds a `GcMutex` while another
    /// waits for it, and calls `gort::gc()`. The collector skips the busy
    /// cell and the grace period does not wait for the parked waiter.
    ///
    /// Fails (hangs, reported after 60 s) when `RawRw::acquire` keeps the
    /// mark up while it waits for the lock (`drop(e)` moved after
    /// `self.wait(..)`).
    fn gc_while_holding_a_guard_with_a_parked_waiter() {
        common::with_timeout("gc() by a guard holder", 60, || {
            let x = Node::leaf();
            let xid = x.id;
            let c = Node::new(Parts { cell: Some(x), ..Default::default() });
            let c1 = c.clone();
            gort::run(move || {
                gc_while_holding(&c1, xid, gort::go);
            });
            gc_while_holding(&c, xid, |f| {
                std::thread::spawn(f);
            });
        });
    }
}

scenario! {
    /// The stall instrument behind `gc_wait`: a cell locked after the count
    /// reached it queues its 200,000 children (49 grey chunks, more than a
    /// small heap's stock of 32 while the collector is held at the count
    /// and takes none back), and the barrier is timed once, in the
    /// histogram as in the maximum, and its fresh chunks are counted.
    fn the_stall_instrument_times_a_barrier_and_counts_its_fresh_chunks() {
        use gort::gc::__hooks::{fresh_grey_chunks, stall_histograms, stalls, watch_stalls};
        let cell = Gc::new(GcMutex::new((0..200_000u64).map(Gc::new).collect::<Vec<_>>()));
        watch_stalls(true);
        let fresh = fresh_grey_chunks();
        steps::script(&[Step::Counted]);
        let gc = spawn_gc();
        steps::wait_paused(Step::Counted);
        assert_eq!(cell.lock().len(), 200_000);
        steps::resume();
        join(gc);
        watch_stalls(false);
        let barrier = |v: Vec<(&'static str, u64, u64, u64)>| v.into_iter().find(|s| s.0 == "barrier").unwrap();
        let (_, longest, longest_cpu, _) = barrier(stalls());
        assert!(longest > 0 && longest_cpu > 0, "the barrier was not timed");
        let (_, h) = stall_histograms().into_iter().find(|h| h.0 == "barrier").unwrap();
        assert_eq!(h.iter().sum::<u64>(), 1, "one barrier, in one bucket: {h:?}");
        assert!(fresh_grey_chunks() > fresh, "49 chunks with a stock of 32 took none fresh");
    }
}

scenario! {
    /// `MemStats::gc_sys` counts the collector's work memory: after a
    /// cycle, the grey chunks kept ready for barriers (32 of 32 KiB at
    /// least); during one, each chunk a barrier had to allocate fresh (a
    /// cell of 200,000 children locked while the collector is held after
    /// its count: 49 chunks against a stock of 32), exactly; and what a
    /// cycle took on it gives back, so ten such cycles leave it where one
    /// did (give or take an edge buffer: 4 MiB). Fails if fresh chunks are
    /// not counted, or if the chunks or mark stacks freed are not
    /// uncounted.
    fn gc_sys_counts_the_grey_chunks_and_gives_back_what_a_cycle_held() {
        use gort::gc::__hooks::fresh_grey_chunks;
        const CHUNK: u64 = 32 << 10;
        let cell = Gc::new(GcMutex::new((0..200_000u64).map(Gc::new).collect::<Vec<_>>()));
        gort::gc();
        let idle = gort::read_mem_stats().gc_sys;
        assert!(idle >= 32 * CHUNK, "the chunks kept ready are not counted: {idle}");
        for _ in 0..10 {
            steps::script(&[Step::Counted]);
            let gc = spawn_gc();
            steps::wait_paused(Step::Counted);
            let (before, fresh) = (gort::read_mem_stats().gc_sys, fresh_grey_chunks());
            assert_eq!(cell.lock().len(), 200_000);
            let fresh = fresh_grey_chunks() - fresh;
            assert!(fresh > 0, "49 chunks with a stock of 32 took none fresh");
            assert_eq!(gort::read_mem_stats().gc_sys - before, fresh * CHUNK, "{fresh} fresh chunks");
            steps::resume();
            join(gc);
        }
        let after = gort::read_mem_stats();
        assert_eq!(after.sys, after.heap_sys + after.stack_sys + after.gc_sys);
        assert!(
            after.gc_sys >= 32 * CHUNK && after.gc_sys <= idle + (4 << 20),
            "ten cycles held {} bytes of work memory, one {idle}",
            after.gc_sys
        );
    }
}

scenario! {
    /// The grey chunks kept ready grow within a cycle with the handles its
    /// count found in cells (one chunk per 4,096, up to an eighth of the
    /// heap), and the cycle's end gives back what the next cycle's stock
    /// does not need. A cell of 4M handles (a heap of about 100 MB, so up
    /// to 12 MiB of chunks): past the mark the stock holds at least 8 MiB,
    /// after the cycle the work memory is back under 6 MiB (32 chunks and
    /// an edge buffer of at most 4 MiB). Fails without the give-back.
    fn the_stock_grown_for_a_cycles_copies_is_given_back_at_its_end() {
        let cell = Gc::new(GcMutex::new((0..4_000_000u64).map(Gc::new).collect::<Vec<_>>()));
        steps::script(&[Step::Terminated]);
        let gc = spawn_gc();
        steps::wait_paused(Step::Terminated);
        let during = gort::read_mem_stats().gc_sys;
        steps::resume();
        join(gc);
        let after = gort::read_mem_stats().gc_sys;
        assert!(during >= 8 << 20, "the stock did not follow the counted handles: {during} bytes");
        assert!(after < 6 << 20, "the stock was not given back: {after} bytes after, {during} during the cycle");
        assert_eq!(cell.lock().len(), 4_000_000);
    }
}

scenario! {
    /// A cell the mark has traced costs later barriers of the cycle nothing
    /// (`cell.rs` `RawRw::stamp_traced`, PROTOCOL.md §8, model flag
    /// `--mark-stamp`). Stack C; C's cell → X. In one cycle, C is locked
    /// after the count and before the mark (paused at `Rooted`): that
    /// barrier queues C's children. In another, it is locked after the
    /// mark has traced C (paused at `Terminated`): the barrier queues
    /// nothing, and X, taken out then with C dropped, survives, because
    /// the trace marked it. Fails (a barrier timed at `Terminated`) without
    /// the stamp.
    fn a_cell_the_mark_traced_costs_its_barrier_nothing() {
        use gort::gc::__hooks::{stall_histograms, watch_stalls};
        let barriers = || {
            let (_, h) = stall_histograms().into_iter().find(|h| h.0 == "barrier").unwrap();
            h.iter().sum::<u64>()
        };
        for via in vias(&[Via::Mutex, Via::Write]) {
            for (step, queued) in [(Step::Rooted, 1), (Step::Terminated, 0)] {
                let x = Node::leaf();
                let c = holding(via, Some(x.clone()));
                let (cid, xid) = (c.id, x.id);
                drop(x);
                steps::script(&[step]);
                watch_stalls(true);
                let gc = spawn_gc();
                steps::wait_paused(step);
                let x = acquire(&c, via).get_mut().take().unwrap();
                let seen = barriers();
                drop(c);
                steps::resume();
                join(gc);
                watch_stalls(false);
                assert_eq!(seen, queued, "{via:?}: barriers that queued C's children, C locked at {step:?}");
                churn::<0>(2000);
                expect(&x, xid, &format!("{via:?}: X, taken out of C at {step:?}"));
                gort::gc();
                assert_freed("C", &[cid]);
                drop(x);
                gort::gc();
                assert_freed("X", &[xid]);
            }
        }
    }
}

scenario! {
    /// A hot cell (`cell.rs` `RawRw::stamp_counted`, PROTOCOL.md §8, model
    /// flag `--count-skip-hot`), in the cycles the pacer starts (here the
    /// cycles of `gort::gc()`, with `__hooks::skip_hot_when_forced`). Stack
    /// C; C's cell → X. C is locked while a first cycle is paused after
    /// its count: that barrier copies C's children. A second cycle's count
    /// skips C, which a barrier touched in the first: locking C then copies
    /// nothing, and X, taken out with C dropped, survives, a root now. Fails
    /// (a second barrier timed) when the count counts hot cells.
    ///
    /// Then the price: a garbage ring A ↔ B through a cell locked during a
    /// cycle survives the next of the pacer's cycles (A's cell is skipped,
    /// so B is a root, and B reaches A) and is freed by the one after;
    /// `gort::gc()` counts every cell and frees it at once. A ring born and
    /// linked during a cycle is not hot in the next (the count never
    /// visited its cells): that cycle frees it. Fails (the ring survives)
    /// when a cell acquired before any count visit counts as hot.
    fn a_hot_cell_is_skipped_by_the_pacers_count() {
        use gort::gc::__hooks::{skip_hot_when_forced, stall_histograms, watch_stalls};
        let barriers = || stall_histograms().into_iter().find(|h| h.0 == "barrier").unwrap().1.iter().sum::<u64>();
        for via in vias(&[Via::Mutex, Via::Write]) {
            let x = Node::leaf();
            let c = holding(via, Some(x.clone()));
            let (cid, xid) = (c.id, x.id);
            drop(x);
            skip_hot_when_forced(true);
            watch_stalls(true);
            steps::script(&[Step::Counted, Step::Counted]);
            let gc = spawn_gc();
            steps::wait_paused(Step::Counted);
            drop(acquire(&c, via));
            steps::resume();
            join(gc);
            assert_eq!(barriers(), 1, "{via:?}: C locked after the first count");
            let gc = spawn_gc();
            steps::wait_paused(Step::Counted);
            let x = acquire(&c, via).get_mut().take().unwrap();
            drop(c);
            steps::resume();
            join(gc);
            assert_eq!(barriers(), 1, "{via:?}: C, hot, locked after the second count");
            watch_stalls(false);
            skip_hot_when_forced(false);
            churn::<0>(2000);
            expect(&x, xid, &format!("{via:?}: X, taken out of the skipped C"));
            gort::gc();
            assert_freed("C", &[cid]);
            drop(x);
            gort::gc();
            assert_freed("X", &[xid]);
        }
        for pacer in [true, false] {
            let a = holding::<0>(Via::Mutex, None);
            let b = holding(Via::Mutex, Some(a.clone()));
            *a.cell.lock() = SlotOf(Some(b.clone()));
            let ids = [a.id, b.id];
            skip_hot_when_forced(pacer);
            steps::script(&[Step::Counted]);
            let gc = spawn_gc();
            steps::wait_paused(Step::Counted);
            drop(a.cell.lock());
            steps::resume();
            join(gc);
            drop((a, b));
            gort::gc();
            if pacer {
                assert_eq!(count_dropped(&ids), 0, "the ring through a hot cell, one cycle after");
                gort::gc();
            }
            skip_hot_when_forced(false);
            assert_freed(if pacer { "the ring, two pacer's cycles after" } else { "the ring, after gort::gc()" }, &ids);
        }
        skip_hot_when_forced(true);
        steps::script(&[Step::Counted]);
        let gc = spawn_gc();
        steps::wait_paused(Step::Counted);
        let a = holding::<0>(Via::Mutex, None);
        let b = holding(Via::Mutex, Some(a.clone()));
        *a.cell.lock() = SlotOf(Some(b.clone()));
        let ids = [a.id, b.id];
        drop((a, b));
        steps::resume();
        join(gc);
        gort::gc();
        skip_hot_when_forced(false);
        assert_freed("a ring born during a cycle, one pacer's cycle after", &ids);
    }
}

/// An object with a cell of `n` leaves and a link (see
/// `a_large_young_cell_is_skipped_by_the_pacers_count`).
#[derive(Trace)]
struct Wide {
    cell: GcMutex<WideCell>,
}

#[derive(Trace)]
struct WideCell {
    leaves: Vec<Gc<u64>>,
    link: Option<Gc<Wide>>,
}

fn big(n: u64, link: Option<Gc<Wide>>) -> Gc<Wide> {
    Gc::new(Wide { cell: GcMutex::new(WideCell { leaves: (0..n).map(Gc::new).collect(), link }) })
}

scenario! {
    /// A young cell (`cell.rs` `RawRw::stamp_counted`, PROTOCOL.md §8,
    /// "the count may skip any cell"): in the pacer's cycles (here
    /// `gort::gc()`'s, with `__hooks::skip_hot_when_forced`) the count
    /// skips a cell of at least 1,024 handles that the previous count
    /// never reached, so locking it after the count copies nothing; a
    /// young cell of 100 handles is counted, and locking it copies. Fails
    /// (two barriers timed) if large young cells are counted.
    ///
    /// Then the price: a garbage ring A ↔ B through A's young cell of
    /// 2,000 handles survives the first of the pacer's cycles (B is a root)
    /// and is freed by the next, which finds A's cell no longer young;
    /// `gort::gc()` frees it at once.
    fn a_large_young_cell_is_skipped_by_the_pacers_count() {
        use gort::gc::__hooks::{skip_hot_when_forced, stall_histograms, watch_stalls};
        let barriers = || stall_histograms().into_iter().find(|h| h.0 == "barrier").unwrap().1.iter().sum::<u64>();
        let (large, small) = (big(2000, None), big(100, None));
        skip_hot_when_forced(true);
        watch_stalls(true);
        steps::script(&[Step::Counted]);
        let gc = spawn_gc();
        steps::wait_paused(Step::Counted);
        assert_eq!(large.cell.lock().leaves.len(), 2000);
        assert_eq!(barriers(), 0, "the large young cell was counted, and its barrier copied it");
        assert_eq!(small.cell.lock().leaves.len(), 100);
        assert_eq!(barriers(), 1, "the small young cell was not counted");
        steps::resume();
        join(gc);
        watch_stalls(false);
        for pacer in [true, false] {
            let a = big(2000, None);
            let b = big(0, Some(a.clone()));
            a.cell.lock().link = Some(b.clone());
            let w = gort::weak::Weak::new(&a);
            drop((a, b));
            skip_hot_when_forced(pacer);
            gort::gc();
            if pacer {
                assert!(w.upgrade().is_some(), "the ring through a large young cell, one pacer's cycle after");
                gort::gc();
            }
            skip_hot_when_forced(false);
            assert!(w.upgrade().is_none(), "the ring survived {}", if pacer { "two pacer's cycles" } else { "gort::gc()" });
        }
    }
}

scenario! {
    /// The count keeps a large cell's children (`snapshot.rs`, PROTOCOL.md
    /// §8, model flag `--count-snap`), so no barrier copies them.
    ///
    /// First the pin (S3's shape on a cell of 2,000 leaves): `gort::gc()`'s
    /// cycle is paused after its count, which counted A's cell and kept its
    /// children. The mutator locks it (no copy: the barrier pins the list),
    /// takes the leaves out, and drops A, which no mark then reaches. The
    /// leaves, each held only by the mutator and counted inside A, must be
    /// shaded from the pinned list. Fails (the leaves freed while held, seen
    /// through weak pointers) if the barrier does not pin the list, or if
    /// pinned lists are shaded only when the mark reaches their cell.
    ///
    /// Then the mark's side: a cell of 2,000 leaves reached by the mark
    /// with no barrier before it is traced from its kept list, without its
    /// lock: its value is read once per cycle, by the count. And a garbage
    /// ring through such a cell is freed by `gort::gc()` at once.
    fn a_large_cells_children_are_kept_by_the_count() {
        use gort::gc::__hooks::{stall_histograms, watch_stalls};
        let barriers = || stall_histograms().into_iter().find(|h| h.0 == "barrier").unwrap().1.iter().sum::<u64>();
        let a = big(2000, None);
        // A cell's record is of the cycle before: A is no longer young, and
        // counted by the exact cycle below anyway.
        gort::gc();
        watch_stalls(true);
        steps::script(&[Step::Counted]);
        let gc = spawn_gc();
        steps::wait_paused(Step::Counted);
        let leaves = std::mem::take(&mut a.cell.lock().leaves);
        assert_eq!(barriers(), 0, "the barrier copied a cell whose children the count kept");
        drop(a);
        let weak: Vec<_> = leaves.iter().step_by(97).map(gort::weak::Weak::new).collect();
        steps::resume();
        join(gc);
        watch_stalls(false);
        churn::<0>(2000);
        for (i, w) in weak.iter().enumerate() {
            assert!(w.upgrade().is_some(), "leaf {} freed while held (pinned list not shaded)", i * 97);
        }
        assert!(leaves.iter().enumerate().all(|(i, l)| **l == i as u64), "a leaf's value changed");
        drop((leaves, weak));

        let traced = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let leaves: Vec<Gc<u64>> = (0..2000).map(Gc::new).collect();
        let c = Gc::new(GcMutex::new(Counted { child: leaves, traced: traced.clone() }));
        let weak: Vec<_> = c.lock().child.iter().step_by(97).map(gort::weak::Weak::new).collect();
        traced.store(0, SeqCst);
        gort::gc();
        assert_eq!(traced.load(SeqCst), 1, "traces of a large cell in an exact cycle: the count's only");
        churn::<0>(2000);
        assert!(weak.iter().all(|w| w.upgrade().is_some()), "a leaf of a kept list was freed");
        drop(c);

        let a = big(2000, None);
        let b = big(0, Some(a.clone()));
        a.cell.lock().link = Some(b.clone());
        gort::gc();
        let w = gort::weak::Weak::new(&a);
        drop((a, b));
        gort::gc();
        assert!(w.upgrade().is_none(), "a garbage ring through a large counted cell survived gort::gc()");
    }
}

/// A cell value that counts how often the collector or a barrier traces
/// it (`Trace::trace` calls), reporting the handles in `child` each time.
struct Counted<T = Option<Gc<Node>>> {
    child: T,
    traced: Arc<std::sync::atomic::AtomicUsize>,
}

// SAFETY: reports the handles `child` owns, once per call.
unsafe impl<T: Trace> Trace for Counted<T> {
    fn trace(&self, t: &mut gort::gc::Tracer<'_>) {
        self.traced.fetch_add(1, SeqCst);
        self.child.trace(t);
    }
}

scenario! {
    /// The mark leaves a cell whose record covers its children (`cell.rs`
    /// `RawRw::needs_trace`, PROTOCOL.md §8, model flag
    /// `--mark-counted-only`): in gc_wait's steady state the mark then no
    /// longer holds the hot cells, 10,000 handles each, that mutators wait
    /// on. Stack C, a `GcMutex` whose value counts its traces; C → X. A
    /// first pacer's cycle is paused after its count while C is locked,
    /// so C is hot in the second: its count skips C, and so does its mark
    /// (no trace at all), and X, a root, survives. An exact cycle
    /// (`gort::gc()`) then traces C twice: in the count and in the mark.
    /// Fails (one trace in the second cycle) when the mark traces every
    /// cell it can try-lock, as it did before.
    fn the_mark_leaves_a_cell_the_count_skipped() {
        use gort::gc::__hooks::skip_hot_when_forced;
        let traced = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let x = Node::leaf();
        let xid = x.id;
        let c = Gc::new(GcMutex::new(Counted { child: Some(x), traced: traced.clone() }));
        skip_hot_when_forced(true);
        steps::script(&[Step::Counted]);
        let gc = spawn_gc();
        steps::wait_paused(Step::Counted);
        drop(c.lock());
        steps::resume();
        join(gc);
        traced.store(0, SeqCst);
        gort::gc();
        assert_eq!(traced.load(SeqCst), 0, "traces of hot C in a pacer's cycle (count and mark)");
        skip_hot_when_forced(false);
        churn::<0>(2000);
        expect(c.lock().child.as_ref().unwrap(), xid, "X, in the skipped C");
        gort::gc();
        assert_eq!(traced.load(SeqCst), 2, "traces of C in an exact cycle (count and mark)");
        let x = c.lock().child.take().unwrap();
        drop(c);
        gort::gc();
        expect(&x, xid, "X, taken out of C");
        drop(x);
        gort::gc();
        assert_freed("X", &[xid]);
    }
}

scenario! {
    /// The mark traces a cell a shared barrier queued (`cell.rs`
    /// `RawRw::needs_trace`): a `GcRwLock` read's barrier queues the
    /// value's own children but not those of cells nested in it, so only
    /// the mark covers those. Stack O, a `GcRwLock` holding a `GcMutex`
    /// → X. The cycle is paused after its count, which counted both
    /// cells; O is read-locked then (its record goes to QUEUED) and
    /// nothing locks the nested mutex. X, held only there, survives the
    /// cycle. Fails (X dropped while reachable) when the mark leaves a
    /// QUEUED cell as it leaves the others it need not trace.
    fn the_mark_traces_the_cells_nested_in_a_cell_a_reader_queued() {
        let x = Node::leaf();
        let xid = x.id;
        let o = Gc::new(GcRwLock::new(GcMutex::new(Some(x))));
        steps::script(&[Step::Counted]);
        let gc = spawn_gc();
        steps::wait_paused(Step::Counted);
        drop(o.read());
        steps::resume();
        join(gc);
        churn::<0>(2000);
        let x = o.read().lock().clone().unwrap();
        expect(&x, xid, "X, in the mutex nested in O");
        drop(o);
        gort::gc();
        expect(&x, xid, "X, after O was freed");
        drop(x);
        gort::gc();
        assert_freed("X", &[xid]);
    }
}
