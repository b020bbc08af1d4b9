//! What the preemption checks `#[goroutine]` / `#[gort::preemptible]`
//! insert at loop back-edges cost: the same loops with and without them,
//! with bodies the optimiser cannot fold (`black_box`), one costing about
//! 1 ns per iteration and one about 20 ns.
//!
//! Runs inside a goroutine (so the check reads a real M's flag, and sysmon
//! asks the instrumented loop to yield every 10 ms, as in production),
//! alternates the variants round by round and prints medians.
//!
//! `cargo run --release -p gort-bench --bin preempt [ROUNDS]`

use std::hint::black_box;
use std::time::Instant;

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// About 1 ns: one multiply-add through `black_box`.
fn tiny_plain(n: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..n {
        x = black_box(x.wrapping_mul(K).wrapping_add(i));
    }
    x
}

#[gort::preemptible]
fn tiny_checked(n: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..n {
        x = black_box(x.wrapping_mul(K).wrapping_add(i));
    }
    x
}

/// About 20 ns of dependent arithmetic, not instrumented (a separate
/// function without the attribute), so only the outer loop is checked.
#[inline(never)]
fn work20(mut x: u64) -> u64 {
    for _ in 0..7 {
        x = black_box(x.wrapping_mul(K).rotate_left(17) ^ (x >> 3));
    }
    x
}

fn medium_plain(n: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..n {
        x = work20(x ^ i);
    }
    x
}

#[gort::preemptible]
fn medium_checked(n: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..n {
        x = work20(x ^ i);
    }
    x
}

/// Nanoseconds per iteration of one run of `f(n)`.
fn time(f: fn(u64) -> u64, n: u64) -> f64 {
    let t = Instant::now();
    black_box(f(black_box(n)));
    t.elapsed().as_nanos() as f64 / n as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Alternates `plain` and `checked` for `rounds` rounds; returns the
/// median ns/iteration of each.
fn compare(plain: fn(u64) -> u64, checked: fn(u64) -> u64, n: u64, rounds: usize) -> (f64, f64) {
    // Warm up both.
    time(plain, n / 10);
    time(checked, n / 10);
    let (mut p, mut c) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        // Alternate which goes first so drift hits both alike.
        if r % 2 == 0 {
            p.push(time(plain, n));
            c.push(time(checked, n));
        } else {
            c.push(time(checked, n));
            p.push(time(plain, n));
        }
    }
    (median(&mut p), median(&mut c))
}

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(31);
    gort::run(|| {
        println!("preemption check overhead, median of {rounds} alternating rounds (inside a goroutine)");
        for (label, plain, checked, n) in [
            ("~1 ns body", tiny_plain as fn(u64) -> u64, tiny_checked as fn(u64) -> u64, 20_000_000),
            ("~20 ns body", medium_plain, medium_checked, 2_000_000),
        ] {
            let (p, c) = compare(plain, checked, n, rounds);
            println!(
                "{label:>12}: without check {p:6.2} ns/iter, with check {c:6.2} ns/iter, overhead {:+.2} ns ({:+.1}%)",
                c - p,
                (c / p - 1.0) * 100.0
            );
        }
    });
}
