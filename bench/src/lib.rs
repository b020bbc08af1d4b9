//! The benchmark harness shared by every Rust variant of the suite.
//!
//! Each variant is one binary (`bench_gort`, `bench_tokio`, `bench_may`,
//! `bench_dumpster`, `bench_gc`, `bench_arc`, `bench_corosensei`; Go's is
//! built from `bench/go/`). A binary is called as `BINARY BENCH SIZE`, runs
//! that benchmark once and prints one line per measured row:
//!
//! ```text
//! RESULT <row> <value> <unit>      a measurement
//! RESULT <row> not-yet             gort lacks the feature the program needs
//! RESULT <row> n/a <why>           the variant cannot express the program
//! ```
//!
//! `bench/run` alternates the variants process by process, so a crash is a
//! status of its own and every variant starts from a fresh process.
//!
//! Adding a variant of a benchmark is one function in the variant's binary
//! plus its line in that binary's table ([`Bench`]).

use std::hint::black_box;
use std::time::Duration;

/// What one run of a benchmark produced.
pub enum Outcome {
    /// Measured rows: (row suffix appended to the bench name, value, unit).
    /// The first has the suffix `""`.
    Ok(Vec<(&'static str, f64, &'static str)>),
    /// gort does not have the feature the program needs yet.
    NotYet,
    /// The variant cannot express the program (the reason is printed).
    Na(&'static str),
}

impl Outcome {
    /// One measured row.
    pub fn one(value: f64, unit: &'static str) -> Outcome {
        Outcome::Ok(vec![("", value, unit)])
    }
}

/// A benchmark of one variant: its name and the function running it once
/// with the given size.
pub type Bench = (&'static str, fn(u64) -> Outcome);

/// Parses `BENCH SIZE` from the command line, runs the benchmark and
/// prints its `RESULT` lines, then exits without running destructors (the
/// peers' runtimes and leftover tasks are not part of the measurement).
/// `list` prints the benchmark names the binary knows.
pub fn main_with(benches: &[Bench]) -> ! {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("list") {
        for (name, _) in benches {
            println!("{name}");
        }
        std::process::exit(0);
    }
    let (Some(name), Some(size)) = (args.get(1), args.get(2).and_then(|s| s.parse::<u64>().ok())) else {
        eprintln!("usage: {} BENCH SIZE   (or: list)", args[0]);
        std::process::exit(2);
    };
    let Some((_, f)) = benches.iter().find(|(n, _)| n == name) else {
        eprintln!("{}: unknown benchmark {name:?}", args[0]);
        std::process::exit(2);
    };
    match f(size) {
        Outcome::Ok(rows) => {
            for (suffix, value, unit) in rows {
                println!("RESULT {name}{suffix} {value} {unit}");
            }
        }
        Outcome::NotYet => println!("RESULT {name} not-yet"),
        Outcome::Na(why) => println!("RESULT {name} n/a {why}"),
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(0)
}

/// The number of Ps / workers: `GOMAXPROCS` (set by `bench/run`), else
/// the CPU count. gort reads the same variable itself.
pub fn procs() -> usize {
    std::env::var("GOMAXPROCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Nanoseconds per operation.
pub fn ns_per(d: Duration, ops: u64) -> f64 {
    d.as_nanos() as f64 / ops.max(1) as f64
}

/// Resident memory of this process in KiB (`VmRSS`).
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) used by the whole process so far.
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The dispatcher's CPU-bound handler: `iters` rounds of an LCG step and a
/// xor-shift, the same arithmetic as `work` in `bench/go/main.go`.
pub fn work(seed: u64, iters: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..iters {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        x ^= x >> 33;
    }
    black_box(x)
}

/// Handler work per dispatcher job (about 50 µs on a 2020s x86-64 core).
pub const DISPATCH_WORK: u64 = 25_000;

/// The dispatcher rows from the wall time and process CPU time of a run
/// of `jobs` jobs on `procs` Ps: CPU utilisation in percent of
/// `wall × procs`, and throughput in jobs per second.
pub fn dispatcher_rows(jobs: u64, wall: Duration, cpu: Duration, procs: usize) -> Outcome {
    let util = 100.0 * cpu.as_secs_f64() / (wall.as_secs_f64() * procs as f64);
    Outcome::Ok(vec![("", util, "% busy"), ("_throughput", jobs as f64 / wall.as_secs_f64(), "jobs/s")])
}

/// The sleep100k rows: total wall time in ms and the p50/p99 of the
/// wake-up lateness (ns values) in µs.
pub fn sleep_rows(wall: Duration, mut late_ns: Vec<u64>) -> Outcome {
    late_ns.sort_unstable();
    let pct = |p: f64| {
        let i = ((late_ns.len() as f64 - 1.0) * p).round() as usize;
        late_ns.get(i).copied().unwrap_or(0) as f64 / 1000.0
    };
    Outcome::Ok(vec![
        ("", wall.as_secs_f64() * 1000.0, "ms"),
        ("_p50", pct(0.50), "us late"),
        ("_p99", pct(0.99), "us late"),
    ])
}

/// Depths of the binary-trees rounds for a maximum depth: 4, 6, … `max`.
pub fn tree_depths(max: u32) -> impl Iterator<Item = u32> {
    (4..=max).step_by(2)
}

/// Trees built at `depth` when the maximum depth is `max`: with max 14 the
/// rounds allocate 6.25M nodes in all (2^(max−depth+5) trees of
/// 2^(depth+1)−1 nodes each).
pub fn tree_iterations(depth: u32, max: u32) -> u64 {
    1 << (max - depth + 5)
}

/// Depth of the long-lived tree that gc_stall keeps alive while it
/// allocates and drops small trees.
pub const STALL_LONG_DEPTH: u32 = 18;

/// Size of the tree timed in gc_stall (31 nodes).
pub const STALL_TREE_DEPTH: u32 = 4;

/// Runs `body` `trees` times after building the long-lived structure
/// `keep`, timing each call; returns the longest call in µs. This is the
/// longest stall a mutator saw while the collector ran alongside.
pub fn max_stall_us<K>(keep: impl FnOnce() -> K, trees: u64, mut body: impl FnMut() -> u64) -> Outcome {
    let kept = keep();
    let mut worst = Duration::ZERO;
    let mut sum = 0u64;
    for _ in 0..trees {
        let t = std::time::Instant::now();
        sum = sum.wrapping_add(body());
        worst = worst.max(t.elapsed());
    }
    black_box(sum);
    drop(black_box(kept));
    Outcome::one(worst.as_secs_f64() * 1e6, "us")
}

/// Leaves per cell in gc_mark's heap (the 10,000 children per cell of
/// the collector's stall target).
pub const GC_MARK_KIDS: u64 = 10_000;

/// Forced cycles gc_mark times (it reports their median).
pub const GC_MARK_CYCLES: usize = 5;

/// Thread id of the calling OS thread.
pub fn gettid() -> i64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// The work done inside every syscall row: a real `getpid` system call.
pub fn getpid_syscall() -> i64 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::syscall(libc::SYS_getpid) }
}
