//! The `Arc` reference point of the GC rows: the same trees, freed by
//! reference counting (no collector, so no collection stall).

use std::time::Instant;

use gort_bench::*;
use std::sync::Arc as Ptr;

const BENCHES: &[Bench] = &[("binary_trees", binary_trees), ("gc_stall", gc_stall), ("gc_clone_drop", gc_clone_drop)];

fn main() {
    main_with(BENCHES)
}

struct Node {
    left: Option<Ptr<Node>>,
    right: Option<Ptr<Node>>,
}

fn bottom_up(depth: u32) -> Ptr<Node> {
    if depth == 0 {
        Ptr::new(Node { left: None, right: None })
    } else {
        Ptr::new(Node { left: Some(bottom_up(depth - 1)), right: Some(bottom_up(depth - 1)) })
    }
}

fn check(n: &Node) -> u64 {
    1 + n.left.as_ref().map_or(0, |l| check(l)) + n.right.as_ref().map_or(0, |r| check(r))
}

/// Binary-trees, depths 4..=max step 2, with a long-lived tree of depth
/// `max` kept alive throughout (6.25M nodes allocated for max = 14).
fn binary_trees(max: u64) -> Outcome {
    let max = max as u32;
    let t = Instant::now();
    let long = bottom_up(max);
    let mut nodes = 0;
    for d in tree_depths(max) {
        for _ in 0..tree_iterations(d, max) {
            nodes += check(&bottom_up(d));
        }
    }
    nodes += check(&long);
    std::hint::black_box(nodes);
    Outcome::one(t.elapsed().as_secs_f64() * 1000.0, "ms")
}

/// The longest time one small tree took to build and check while a large
/// tree stays alive: the longest stall the collector caused.
fn gc_stall(trees: u64) -> Outcome {
    max_stall_us(|| bottom_up(STALL_LONG_DEPTH), trees, || check(&bottom_up(STALL_TREE_DEPTH)))
}

/// `Arc::clone` + drop of one handle on one thread, `n` times.
fn gc_clone_drop(n: u64) -> Outcome {
    let g = Ptr::new(Node { left: None, right: None });
    let t = Instant::now();
    for _ in 0..n {
        drop(std::hint::black_box(std::hint::black_box(&g).clone()));
    }
    Outcome::one(ns_per(t.elapsed(), n), "ns/op")
}
