//! The floor of the switching rows: one `corosensei` resume/suspend pair
//! (two stack switches, no scheduler), the least a gosched or a ping-pong
//! half-trip can cost on stackful coroutines.

use std::hint::black_box;
use std::time::Instant;

use corosensei::{Coroutine, Yielder};
use gort_bench::*;

const BENCHES: &[Bench] =
    &[("ping_pong", resume_suspend), ("gosched2", resume_suspend), ("gosched100", resume_suspend)];

fn main() {
    main_with(BENCHES)
}

fn resume_suspend(n: u64) -> Outcome {
    let mut co = Coroutine::new(|y: &Yielder<u64, u64>, mut v: u64| loop {
        v = y.suspend(black_box(v));
    });
    let t = Instant::now();
    for i in 0..n {
        black_box(co.resume(i));
    }
    Outcome::one(ns_per(t.elapsed(), n), "ns/op")
}
