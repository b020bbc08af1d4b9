//! Issue 5's latency target, as a program: "the longest time any mutator
//! operation waits on the collector ≤ 50 µs with a 1 GiB heap whose cells
//! hold at most 10,000 children each".
//!
//!     gc_wait [--heap-mib N] [--children N] [--secs S] [--mutators M] [--as-paced | --idle [--rings]] [--after-first]
//!     gc_wait --gc-stall [TREES]
//!     gc_wait --noise-floor [--secs S]
//!     gc_wait --copy-floor [--heap-mib N] [--children K] [--secs S]
//!
//! Builds a heap of about N MiB (default 1024): a root `GcRwLock` holding
//! buckets, each a `GcMutex<Vec<Gc<Leaf>>>` of `--children` leaves (default
//! 10,000). Then `--mutators` goroutines (default 2) run random operations
//! on it for S seconds (default 20) while cycles run back to back (a plain
//! thread calls `gort::gc()` in a loop; `--idle`: no forced cycles, GOGC
//! paces them). Each operation takes the root's read lock, then one of:
//! lock a bucket and read a leaf; lock a bucket and replace a leaf with a
//! new one (the garbage); clone a leaf out; upgrade a weak pointer to a
//! leaf; build and drop a 31-node tree (allocation, assists).
//!
//! `--as-paced`: the forced cycles skip the cells locked in the cycle
//! before, as the cycles the pacer starts do (`cell.rs`; a test hook,
//! `__hooks::skip_hot_when_forced`): `gort::gc()` itself counts every cell,
//! so that it frees everything unreachable when called, as Go's
//! `runtime.GC` does. This is the pacer's cycles back to back, as under a
//! tight memory limit. The waits are then recorded from the end of the
//! first cycle, in which no cell is hot yet. Both modes print how many
//! barriers copied a cell's handles in each cycle.
//!
//! `--idle`: the pacer starts the cycles (GOGC, or back to back under a
//! `GOMEMLIMIT` below the live heap, e.g. `GOMEMLIMIT=512MiB`). A watcher
//! thread counts the copies per cycle, and the waits are recorded from the
//! end of the first cycle that ends during the run, as with `--as-paced`.
//!
//! `--after-first` records the waits from the end of the first cycle in
//! the default mode too. That cycle is unlike the others: it is usually
//! one the pacer started while the heap was being built, and it counts
//! the cells the cycle before it counted (those born since are young and
//! skipped, `cell.rs`) before any mutator touched them, so the mutators'
//! first locks copy thousands of cells' handles, at times more than the
//! grey-buffer chunks kept ready hold (`barrier.rs`).
//!
//! `--rings` (with `--idle`) builds a 31-node ring through `GcMutex`es
//! instead of the tree: garbage that only the collector frees (a tree is
//! freed at its last drop), so that the heap grows and the pacer starts
//! cycles as it would in a program that makes cyclic garbage (GOGC=25
//! gives one every few seconds). Those cycles skip the cells locked in
//! the cycle before, which `gort::gc()`'s do not (`cell.rs`).
//!
//! Prints, per kind of wait on the collector, the longest wait and how many
//! exceeded 50 µs (`gort::gc::__hooks::stalls`: see `runtime/src/gc/stall.rs`)
//! and a histogram of their times on the CPU, the grey-buffer chunks that
//! had to be allocated fresh (their pages fault in on a barrier's time),
//! then the operations' longest wall time and the longest time an
//! operation's thread was off the CPU during it (the OS's share: the
//! machine is shared) and on it (its own work, barriers and assists
//! included). Lines start with `RESULT` for scripts.
//!
//! `--gc-stall` runs bench_gort's `gc_stall` row instead (a depth-18 tree
//! kept alive while TREES 31-node trees are built and checked, default
//! 200,000; cycles paced by GOGC) and prints the same waits beside the
//! longest build+check.
//!
//! `--noise-floor` runs no gort code: three plain threads (one more than
//! the two cores of the machine these figures come from) time a 0.3 µs
//! loop for S seconds (default 10) and print how many iterations took over
//! 50 µs of thread CPU time, and the longest. On a VM the thread CPU clock
//! also counts interrupts and time the host took, so this is the floor
//! under the on-CPU figures above.
//!
//! `--copy-floor` runs no gort code either: it times, on the CPU, the copy
//! a cell barrier makes, without gort: two threads copy the `--children`
//! handles of a random cell (cells of plain `usize`s, as many as the heap
//! holds: 358 MB for the defaults) into 32 KiB chunks whose pages are
//! resident, tagging each handle as a pending grey entry, while a third
//! thread reads the rest of the heap, as the collector's count does. It
//! prints the copies, how many took over 50 µs, the 99.9th percentile and
//! the longest: the floor under a barrier's copy of a cell on this
//! machine.

use std::time::{Duration, Instant};

use gort::gc::{Gc, GcMutex, GcRwLock, Trace};

#[derive(Trace)]
struct Leaf {
    v: [u64; 2],
}

type Bucket = GcMutex<Vec<Gc<Leaf>>>;

#[derive(Trace)]
struct Node {
    l: Option<Gc<Node>>,
    r: Option<Gc<Node>>,
}

fn tree(d: u32) -> Gc<Node> {
    if d == 0 {
        Gc::new(Node { l: None, r: None })
    } else {
        Gc::new(Node { l: Some(tree(d - 1)), r: Some(tree(d - 1)) })
    }
}

#[derive(Trace)]
struct RingNode {
    next: GcMutex<Option<Gc<RingNode>>>,
    v: u64,
}

/// A ring of `n` nodes, returned by its first.
fn ring(n: u64) -> Gc<RingNode> {
    let first = Gc::new(RingNode { next: GcMutex::new(None), v: 0 });
    let mut last = first.clone();
    for v in 1..n {
        let node = Gc::new(RingNode { next: GcMutex::new(None), v });
        *last.next.lock() = Some(node.clone());
        last = node;
    }
    *last.next.lock() = Some(first.clone());
    first
}

/// The sum of a ring's values, going round it once.
fn ring_sum(first: &Gc<RingNode>) -> u64 {
    let mut sum = first.v;
    let mut at = first.next.lock().clone().expect("a ring");
    while !Gc::ptr_eq(&at, first) {
        sum += at.v;
        let next = at.next.lock().clone().expect("a ring");
        at = next;
    }
    sum
}

/// Barriers that copied a cell's handles since the stalls were last
/// cleared (the sum of their histogram).
fn barriers_timed() -> u64 {
    gort::gc::__hooks::stall_histograms().into_iter().find(|h| h.0 == "barrier").map_or(0, |h| h.1.iter().sum())
}

fn count(n: &Node) -> u64 {
    1 + n.l.as_deref().map_or(0, count) + n.r.as_deref().map_or(0, count)
}

/// xorshift64*.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[derive(Default, Clone, Copy)]
struct Worst {
    ops: u64,
    wall: Duration,
    off_cpu: Duration,
    on_cpu: Duration,
    over_50us: u64,
    /// Operations that spent over 50 µs on the CPU.
    over_50us_cpu: u64,
    /// Minor faults and involuntary switches during the longest on-CPU one.
    on_cpu_why: (u64, u64),
}

const OPS: [&str; 5] = ["lock_read", "lock_replace", "clone", "upgrade", "tree31"];

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map_or(default, |v| v.parse().expect(name))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let heap_mib = arg(&args, "--heap-mib", 1024) as usize;
    let children = arg(&args, "--children", 10_000) as usize;
    let secs = arg(&args, "--secs", 20);
    let mutators = arg(&args, "--mutators", 2) as usize;
    let idle = args.iter().any(|a| a == "--idle");
    let rings = args.iter().any(|a| a == "--rings");
    let as_paced = args.iter().any(|a| a == "--as-paced");
    gort::gc::__hooks::skip_hot_when_forced(as_paced);
    if args.iter().any(|a| a == "--noise-floor") {
        return noise_floor(arg(&args, "--secs", 10));
    }
    if args.iter().any(|a| a == "--copy-floor") {
        return copy_floor(heap_mib, children, arg(&args, "--secs", 10));
    }
    if let Some(i) = args.iter().position(|a| a == "--gc-stall") {
        let trees = args.get(i + 1).map_or(200_000, |v| v.parse().expect("TREES"));
        return gort::run(move || gc_stall(trees));
    }
    // Waits recorded from the end of the first cycle on.
    let after_first = as_paced || idle || args.iter().any(|a| a == "--after-first");
    gort::run(move || run(heap_mib, children, secs, mutators, idle, rings, after_first));
}

/// See the module documentation.
fn noise_floor(secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..3u64)
        .map(|t| {
            std::thread::spawn(move || {
                let (mut iters, mut over, mut longest) = (0u64, 0u64, Duration::ZERO);
                let mut x = t + 1;
                while Instant::now() < deadline {
                    let c0 = thread_cpu();
                    for _ in 0..300 {
                        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    }
                    std::hint::black_box(x);
                    let d = thread_cpu() - c0;
                    iters += 1;
                    over += u64::from(d > Duration::from_micros(50));
                    longest = longest.max(d);
                }
                (iters, over, longest)
            })
        })
        .collect();
    for (t, h) in threads.into_iter().enumerate() {
        let (iters, over, longest) = h.join().unwrap();
        println!(
            "thread {t}: {iters} iterations, {over} over 50 us on the CPU, longest {:.1} us",
            longest.as_secs_f64() * 1e6
        );
        println!("RESULT noise_thread{t} over_50us_cpu {over} longest {:.1} us", longest.as_secs_f64() * 1e6);
    }
}

/// See the module documentation.
fn copy_floor(heap_mib: usize, children: usize, secs: u64) {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    const CHUNK: usize = 4096;
    // As `run` builds it: a cell's bytes are its handles and, per handle,
    // a 24-byte leaf (`Gc<Leaf>`'s box).
    let cells = (heap_mib << 20) / (children * 32);
    let handles: Vec<usize> = (0..cells * children).map(|i| 0x7f00_0000_0000 + i * 24).collect();
    let rest: Vec<u64> = vec![1; cells * children * 3];
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut sum = 0u64;
            while !stop.load(Relaxed) {
                for line in rest.chunks(8) {
                    sum = sum.wrapping_add(line[0]);
                }
            }
            std::hint::black_box(sum);
        });
        let copiers: Vec<_> = (0..2u64)
            .map(|t| {
                let handles = &handles;
                s.spawn(move || {
                    // Resident chunks, reused in turn as the stock is.
                    let mut stock: Vec<Vec<usize>> = (0..1024).map(|_| vec![0; CHUNK]).collect();
                    let mut rng = Rng(t * 7919 + 1);
                    let mut times = Vec::new();
                    let (mut at, deadline) = (0, Instant::now() + Duration::from_secs(secs));
                    while Instant::now() < deadline {
                        let c = rng.below(cells);
                        let src = &handles[c * children..(c + 1) * children];
                        let c0 = thread_cpu();
                        for part in src.chunks(CHUNK) {
                            let chunk = &mut stock[at % 1024];
                            at += 1;
                            chunk.clear();
                            chunk.extend(part.iter().map(|&p| p | 1));
                        }
                        times.push(thread_cpu() - c0);
                    }
                    times
                })
            })
            .collect();
        let mut times: Vec<Duration> = copiers.into_iter().flat_map(|h| h.join().unwrap()).collect();
        stop.store(true, Relaxed);
        times.sort();
        let n = times.len();
        let over = times.iter().filter(|&&d| d > Duration::from_micros(50)).count();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{n} copies of {children} handles: median {:.1} us, 99.9th percentile {:.1} us, longest {:.1} us on the CPU; \
             {over} over 50 us",
            us(times[n / 2]),
            us(times[n * 999 / 1000]),
            us(times[n - 1])
        );
        println!(
            "RESULT copy_floor copies {n} over_50us_cpu {over} p999 {:.1} us longest {:.1} us",
            us(times[n * 999 / 1000]),
            us(times[n - 1])
        );
    });
}

fn print_stalls() {
    println!(
        "waits on the collector: longest wall, longest on-CPU (us), count over 50 us wall, over 50 us on-CPU; \
         minor faults and involuntary switches during the longest on-CPU"
    );
    let details = gort::gc::__hooks::stall_details();
    for ((name, ns, cpu, over), (_, over_cpu, faults, switches)) in gort::gc::__hooks::stalls().into_iter().zip(details)
    {
        println!(
            "  {name:15} {:10.1} {:10.1} {over:8} {over_cpu:8} {faults:6} {switches:4}",
            ns as f64 / 1e3,
            cpu as f64 / 1e3
        );
        println!(
            "RESULT wait_{name} {:.1} us on_cpu {:.1} us over_50us_cpu {over_cpu} faults {faults} switches {switches}",
            ns as f64 / 1e3,
            cpu as f64 / 1e3
        );
    }
    println!("on-CPU time of the waits, in 10 us buckets (the last: 110 us and more)");
    for (name, h) in gort::gc::__hooks::stall_histograms() {
        if h.iter().any(|&n| n > 0) {
            println!("  {name:15} {h:?}");
        }
    }
    println!("RESULT fresh_grey_chunks {}", gort::gc::__hooks::fresh_grey_chunks());
}

/// The calling thread's minor page faults and involuntary context switches.
fn usage() -> (u64, u64) {
    // SAFETY: an all-zero `rusage` is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid rusage to write to.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    (ru.ru_minflt as u64, ru.ru_nivcsw as u64)
}

fn gc_stall(trees: u64) {
    gort::spawn(move || {
        let long = tree(18);
        gort::gc::__hooks::watch_stalls(true);
        let gc0 = gort::gc::__hooks::num_gc();
        let (mut wall, mut off, mut on) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let mut sum = 0;
        for _ in 0..trees {
            let (w0, c0) = (Instant::now(), thread_cpu());
            sum += count(&tree(4));
            let (w, c) = (w0.elapsed(), thread_cpu() - c0);
            wall = wall.max(w);
            off = off.max(w.saturating_sub(c));
            on = on.max(c.min(w));
        }
        std::hint::black_box((sum, &long));
        let la = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "gc_stall: {} cycles; load average {}",
            gort::gc::__hooks::num_gc() - gc0,
            la.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        );
        print_stalls();
        let ms = gort::read_mem_stats();
        println!(
            "RESULT gc_stall_heap heap_sys {} MiB, next_gc {} MiB, frees {}, gc_cpu_fraction {:.3}",
            ms.heap_sys >> 20,
            ms.next_gc >> 20,
            ms.frees,
            ms.gc_cpu_fraction
        );
        println!("RESULT gc_stall {:.1} us", wall.as_secs_f64() * 1e6);
        println!("RESULT gc_stall_off_cpu {:.1} us", off.as_secs_f64() * 1e6);
        println!("RESULT gc_stall_on_cpu {:.1} us", on.as_secs_f64() * 1e6);
    })
    .join()
    .unwrap();
}

fn run(heap_mib: usize, children: usize, secs: u64, mutators: usize, idle: bool, rings: bool, after_first: bool) {
    // A leaf is a 24-byte slot (8-byte header + 16), a bucket 64.
    let buckets = (heap_mib << 20) / (children * 24 + 64);
    let t = Instant::now();
    let root: Gc<GcRwLock<Vec<Gc<Bucket>>>> = Gc::new(GcRwLock::new(Vec::with_capacity(buckets)));
    for b in 0..buckets {
        let v: Vec<Gc<Leaf>> = (0..children).map(|i| Gc::new(Leaf { v: [b as u64, i as u64] })).collect();
        root.write().push(Gc::new(GcMutex::new(v)));
    }
    let weaks: Vec<gort::weak::Weak<Leaf>> = {
        let r = root.read();
        let mut rng = Rng(7);
        (0..1000).map(|_| gort::weak::Weak::new(&r[rng.below(buckets)].lock()[rng.below(children)])).collect()
    };
    let weaks = std::sync::Arc::new(weaks);
    let ms = gort::read_mem_stats();
    println!(
        "built {buckets} buckets x {children} leaves in {:.1}s: heap_alloc {} MiB",
        t.elapsed().as_secs_f64(),
        ms.heap_alloc >> 20
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The cycler returns, per cycle, how many barriers copied a cell's
    // handles in it (and in the gap before it).
    // With `--as-paced`, the waits are recorded from the end of the first
    // cycle: in it no cell is hot yet (the steady state comes after).
    // With `--idle`, a watcher does the same for the pacer's cycles,
    // polling the cycle count; the waits are recorded from the end of the
    // first cycle that ends during the run (its cells are not hot yet).
    let gc0 = gort::gc::__hooks::num_gc();
    let cycler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut per_cycle = Vec::new();
            let mut seen = 0;
            let mut fresh_seen = gort::gc::__hooks::fresh_grey_chunks();
            let mut kept_seen = gort::gc::__hooks::kept_lists().0;
            let mut kept = Vec::new();
            let mut ended = gc0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if idle {
                    std::thread::sleep(Duration::from_millis(1));
                    let n = gort::gc::__hooks::num_gc();
                    if n == ended {
                        continue;
                    }
                    ended = n;
                } else {
                    gort::gc();
                }
                let fresh = gort::gc::__hooks::fresh_grey_chunks();
                let fresh_here = fresh - fresh_seen;
                fresh_seen = fresh;
                let (lists, peak) = gort::gc::__hooks::kept_lists();
                kept.push((lists - kept_seen, peak >> 20));
                kept_seen = lists;
                if after_first && per_cycle.is_empty() {
                    per_cycle.push((barriers_timed(), fresh_here));
                    gort::gc::__hooks::watch_stalls(true);
                    continue;
                }
                let now = barriers_timed();
                per_cycle.push((now - seen, fresh_here));
                seen = now;
            }
            (per_cycle, kept)
        })
    };
    gort::gc::__hooks::watch_stalls(true);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let hs: Vec<_> = (0..mutators)
        .map(|m| {
            let root = root.clone();
            let weaks = weaks.clone();
            // Each mutator on a thread of its own: a goroutine sharing its
            // thread would wait behind the other's loop, which has no
            // scheduling point, and that wait is not the collector's.
            gort::Builder::new()
                .locked()
                .spawn(move || {
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (m as u64 + 1));
                    let mut worst = [Worst::default(); OPS.len()];
                    let mut sink = 0u64;
                    while Instant::now() < deadline {
                        // A scheduling point between batches, outside the
                        // timed operations (what `#[goroutine]` inserts at a
                        // loop's back edge; Go preempts such a loop with a
                        // signal): without it, sysmon could not take this
                        // loop's P for the collector's drop goroutine, and
                        // sweeping waited until the run ended.
                        gort::preempt_point();
                        for _ in 0..64 {
                            let op = rng.below(OPS.len());
                            let u0 = usage();
                            let (w0, c0) = (Instant::now(), thread_cpu());
                            let b = root.read()[rng.below(buckets)].clone();
                            match op {
                                0 => sink += b.lock()[rng.below(children)].v[0],
                                1 => {
                                    let i = rng.below(children);
                                    b.lock()[i] = Gc::new(Leaf { v: [sink, i as u64] });
                                }
                                2 => sink += b.lock()[rng.below(children)].clone().v[1],
                                3 => sink += weaks[rng.below(weaks.len())].upgrade().map_or(0, |l| l.v[0]),
                                _ if rings => sink += ring_sum(&ring(31)),
                                _ => sink += count(&tree(4)),
                            }
                            drop(b);
                            let (wall, cpu) = (w0.elapsed(), thread_cpu() - c0);
                            let u = usage();
                            let w = &mut worst[op];
                            w.ops += 1;
                            w.over_50us += u64::from(wall > Duration::from_micros(50));
                            w.over_50us_cpu += u64::from(cpu.min(wall) > Duration::from_micros(50));
                            if wall > w.wall {
                                w.wall = wall;
                            }
                            w.off_cpu = w.off_cpu.max(wall.saturating_sub(cpu));
                            if cpu.min(wall) > w.on_cpu {
                                w.on_cpu = cpu.min(wall);
                                w.on_cpu_why = (u.0 - u0.0, u.1 - u0.1);
                            }
                        }
                    }
                    std::hint::black_box(sink);
                    worst
                })
                .expect("spawn mutator")
        })
        .collect();
    let per: Vec<[Worst; OPS.len()]> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    let cycles = gort::gc::__hooks::num_gc() - gc0;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    // A blocking std call from a goroutine: in `gort::syscall`, or it
    // holds its P, and the drop goroutine the cycler's last `gort::gc()`
    // waits for may find no P to run on (a hang seen once).
    let (per_cycle, kept) = gort::syscall(move || cycler.join()).unwrap();
    println!("barriers that copied, per cycle: {:?}", per_cycle.iter().map(|c| c.0).collect::<Vec<_>>());
    println!("fresh grey chunks, per cycle: {:?}", per_cycle.iter().map(|c| c.1).collect::<Vec<_>>());
    println!("cells whose children the count kept, per cycle: {:?}", kept.iter().map(|c| c.0).collect::<Vec<_>>());
    println!("most MiB the kept lists held, per cycle: {:?}", kept.iter().map(|c| c.1).collect::<Vec<_>>());
    if after_first && !per_cycle.is_empty() {
        println!("(the waits below are from the end of the first cycle on)");
    }
    let la = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{cycles} cycles in {secs}s; load average {}",
        la.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    print_stalls();
    println!(
        "operations: count, longest wall, longest off-CPU, longest on-CPU (us), count over 50 us wall, over 50 us \
         on-CPU; minor faults and involuntary switches during the longest on-CPU"
    );
    let mut all = Worst::default();
    for (i, &name) in OPS.iter().enumerate() {
        let name = if rings && name == "tree31" { "ring31" } else { name };
        let mut w = Worst::default();
        for p in &per {
            w.ops += p[i].ops;
            w.over_50us += p[i].over_50us;
            w.over_50us_cpu += p[i].over_50us_cpu;
            w.wall = w.wall.max(p[i].wall);
            w.off_cpu = w.off_cpu.max(p[i].off_cpu);
            if p[i].on_cpu > w.on_cpu {
                w.on_cpu = p[i].on_cpu;
                w.on_cpu_why = p[i].on_cpu_why;
            }
        }
        println!(
            "  {name:13} {:10} {:10.1} {:10.1} {:10.1} {:8} {:8} {:6} {:4}",
            w.ops,
            w.wall.as_secs_f64() * 1e6,
            w.off_cpu.as_secs_f64() * 1e6,
            w.on_cpu.as_secs_f64() * 1e6,
            w.over_50us,
            w.over_50us_cpu,
            w.on_cpu_why.0,
            w.on_cpu_why.1
        );
        println!(
            "RESULT op_{name} on_cpu {:.1} us over_50us_cpu {} faults {} switches {}",
            w.on_cpu.as_secs_f64() * 1e6,
            w.over_50us_cpu,
            w.on_cpu_why.0,
            w.on_cpu_why.1
        );
        all.ops += w.ops;
        all.over_50us += w.over_50us;
        all.over_50us_cpu += w.over_50us_cpu;
        all.wall = all.wall.max(w.wall);
        all.off_cpu = all.off_cpu.max(w.off_cpu);
        all.on_cpu = all.on_cpu.max(w.on_cpu);
    }
    println!("RESULT op_wall_max {:.1} us", all.wall.as_secs_f64() * 1e6);
    println!("RESULT op_on_cpu_max {:.1} us", all.on_cpu.as_secs_f64() * 1e6);
    println!("RESULT op_off_cpu_max {:.1} us", all.off_cpu.as_secs_f64() * 1e6);
    println!("RESULT ops {} over_50us {} over_50us_cpu {}", all.ops, all.over_50us, all.over_50us_cpu);
    drop(root);
}
