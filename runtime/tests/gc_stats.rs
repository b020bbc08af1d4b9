//! `gort::read_mem_stats`, the `gort::debug` knobs (`set_gc_percent`,
//! `read_gc_stats`, `free_os_memory`), GOGC and `GODEBUG=gctrace=1`.
//!
//! Anything that depends on process-global state (GOGC, the number of
//! cycles an allocation pattern causes, stderr, exact object counts) runs
//! in a child process.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{in_child, with_timeout};
use gort::gc::Gc;
use gort::MemStats;

/// Every invariant a single reading must satisfy, whatever runs meanwhile.
fn check(m: &MemStats) {
    assert_eq!(m.mallocs - m.frees, m.heap_objects, "{m:?}");
    assert_eq!(m.alloc, m.heap_alloc);
    assert!(m.heap_alloc <= m.heap_inuse, "heap_alloc {} > heap_inuse {}", m.heap_alloc, m.heap_inuse);
    assert!(m.heap_inuse <= m.heap_sys, "heap_inuse {} > heap_sys {}", m.heap_inuse, m.heap_sys);
    assert_eq!(m.heap_idle + m.heap_inuse, m.heap_sys);
    assert!(m.heap_released <= m.heap_idle);
    assert_eq!(m.sys, m.heap_sys + m.stack_sys + m.gc_sys);
    assert!(m.stack_inuse <= m.stack_sys);
    assert!(m.total_alloc >= m.heap_alloc);
    let (bm, bf): (u64, u64) = m.by_size.iter().fold((0, 0), |(a, b), c| (a + c.mallocs, b + c.frees));
    // Large objects are not in by_size (as in Go).
    assert!(bm <= m.mallocs && bf <= m.frees);
    assert!(m.mallocs - bm >= m.frees - bf, "more large objects freed than allocated");
    for w in m.by_size.windows(2) {
        assert!(w[0].size < w[1].size);
    }
    for c in &m.by_size {
        assert!(c.mallocs >= c.frees);
    }
    assert!((0.0..=1.0).contains(&m.gc_cpu_fraction), "gc_cpu_fraction {}", m.gc_cpu_fraction);
    assert!(m.num_forced_gc <= m.num_gc + 1);
    if m.num_gc > 0 {
        let last = (m.num_gc as usize + 255) % 256;
        assert_eq!(m.pause_end[last], m.last_gc);
        assert!(m.pause_total_ns >= m.pause_ns[last]);
    }
}

#[test]
fn mem_stats_invariants_after_gc() {
    with_timeout("mem_stats_invariants_after_gc", 120, || {
        let small: Vec<Gc<u64>> = (0..5000).map(Gc::new).collect();
        let mid: Vec<Gc<[u8; 1000]>> = (0..500).map(|_| Gc::new([7; 1000])).collect();
        let large: Vec<Gc<[u8; 40000]>> = (0..8).map(|_| Gc::new([9; 40000])).collect();
        let m = gort::read_mem_stats();
        check(&m);
        assert!(m.heap_objects >= 5508, "{}", m.heap_objects);
        assert!(m.heap_alloc >= 5000 * 16 + 500 * 1024 + 8 * 40000);
        drop((small, mid, large));
        let mut prev = gort::read_mem_stats();
        for _ in 0..3 {
            gort::gc();
            let m = gort::read_mem_stats();
            check(&m);
            assert!(m.num_gc > prev.num_gc, "num_gc {} -> {}", prev.num_gc, m.num_gc);
            assert!(m.num_forced_gc > prev.num_forced_gc);
            assert!(m.mallocs >= prev.mallocs && m.frees >= prev.frees && m.total_alloc >= prev.total_alloc);
            assert!(m.last_gc > 0);
            prev = m;
        }
        assert!(prev.frees >= 5508, "{}", prev.frees);
    });
}

#[test]
fn mem_stats_counts_are_exact() {
    // A child process: nothing else allocates, so the counts are known.
    let Some(out) = in_child("mem_stats_counts_are_exact", &[], || {
        let before = gort::read_mem_stats();
        check(&before);
        let small: Vec<Gc<u64>> = (0..1000).map(Gc::new).collect();
        let large: Vec<Gc<[u8; 40000]>> = (0..5).map(|_| Gc::new([1; 40000])).collect();
        let m = gort::read_mem_stats();
        check(&m);
        assert_eq!(m.mallocs - before.mallocs, 1005);
        assert_eq!(m.heap_objects - before.heap_objects, 1005);
        let bm: u64 = m.by_size.iter().map(|c| c.mallocs).sum();
        let bm0: u64 = before.by_size.iter().map(|c| c.mallocs).sum();
        assert_eq!(bm - bm0, 1000, "by_size counts the small objects");
        assert_eq!(m.mallocs - bm, (before.mallocs - bm0) + 5, "large objects are the rest");
        let class16 = m.by_size.iter().position(|c| c.size == 16).unwrap();
        assert_eq!(m.by_size[class16].mallocs - before.by_size[class16].mallocs, 1000, "a Gc<u64> is 16 bytes");
        assert_eq!(m.total_alloc - before.total_alloc, 1000 * 16 + 5 * 40960);
        drop((small, large));
        gort::gc();
        let after = gort::read_mem_stats();
        check(&after);
        assert_eq!(after.frees - m.frees, 1005);
        assert_eq!(after.heap_objects, before.heap_objects);
        assert_eq!(after.heap_alloc, before.heap_alloc);
        let bf: u64 = after.by_size.iter().map(|c| c.frees).sum();
        let bf0: u64 = m.by_size.iter().map(|c| c.frees).sum();
        assert_eq!(bf - bf0, 1000);
        assert_eq!(after.by_size[class16].frees - m.by_size[class16].frees, 1000);
    }) else {
        return;
    };
    out.assert_success();
}

#[test]
fn mem_stats_read_while_allocating_and_collecting() {
    with_timeout("mem_stats_read_while_allocating_and_collecting", 120, || {
        // Bounded work (the heap stays well under 100 MiB even if nothing
        // were collected).
        let workers: Vec<_> = (0..2)
            .map(|w| {
                std::thread::spawn(move || {
                    let mut keep = Vec::new();
                    for i in 0..40_000u64 {
                        let _s = Gc::new(i);
                        let _m = Gc::new([i as u8; 300]);
                        if i % 64 == w {
                            let _l = Gc::new([0u8; 50000]);
                        }
                        keep.push(Gc::new(i));
                        if keep.len() > 2000 {
                            keep.clear();
                        }
                        if i % 1000 == 0 {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                })
            })
            .collect();
        let mut prev = gort::read_mem_stats();
        let mut i = 0;
        while i < 20 || workers.iter().any(|w| !w.is_finished()) {
            i += 1;
            if i % 20 == 0 {
                gort::gc();
            }
            let m = gort::read_mem_stats();
            check(&m);
            assert!(m.mallocs >= prev.mallocs, "mallocs went back: {} -> {}", prev.mallocs, m.mallocs);
            assert!(m.frees >= prev.frees);
            assert!(m.total_alloc >= prev.total_alloc);
            assert!(m.num_gc >= prev.num_gc);
            for (a, b) in prev.by_size.iter().zip(&m.by_size) {
                assert!(b.mallocs >= a.mallocs && b.frees >= a.frees);
            }
            prev = m;
        }
        for w in workers {
            w.join().unwrap();
        }
    });
}

#[test]
fn read_gc_stats_history() {
    with_timeout("read_gc_stats_history", 120, || {
        gort::gc();
        gort::gc();
        let s = gort::debug::read_gc_stats();
        assert!(s.num_gc >= 2);
        assert_eq!(s.pause.len(), s.num_gc.min(256) as usize);
        assert_eq!(s.pause_end.len(), s.pause.len());
        assert_eq!(s.pause_end[0], s.last_gc, "most recent first");
        for w in s.pause_end.windows(2) {
            assert!(w[0] >= w[1], "pause_end not most recent first");
        }
        assert!(s.pause_total >= s.pause.iter().sum::<Duration>());
        let age = SystemTime::now().duration_since(s.last_gc).expect("last_gc in the future");
        assert!(age < Duration::from_secs(60), "last_gc {age:?} ago");
        assert!(s.last_gc > UNIX_EPOCH);
        let m = gort::read_mem_stats();
        assert!(m.num_gc as i64 >= s.num_gc);
        assert!(m.pause_total_ns >= s.pause_total.as_nanos() as u64);
    });
}

#[test]
fn set_gc_percent_returns_previous() {
    let Some(out) = in_child("set_gc_percent_returns_previous", &[("GOGC", "")], || {
        assert_eq!(gort::debug::set_gc_percent(50), 100, "default GOGC is 100");
        assert_eq!(gort::debug::set_gc_percent(-1), 50);
        assert_eq!(gort::debug::set_gc_percent(-7), -1, "negative is stored as -1");
        // Off: no automatic cycle, however much is allocated.
        let n0 = gort::read_mem_stats().num_gc;
        for _ in 0..64 * 1024 {
            common::collector_garbage(0);
        }
        assert_eq!(gort::read_mem_stats().num_gc, n0, "a cycle ran with GOGC off");
        assert!(gort::read_mem_stats().heap_alloc >= 60 << 20);
        // An explicit cycle still runs.
        gort::gc();
        assert!(gort::read_mem_stats().num_gc > n0);
        // Back on: the goal applies at once.
        assert_eq!(gort::debug::set_gc_percent(100), -1);
        let n1 = gort::read_mem_stats().num_gc;
        for _ in 0..64 * 1024 {
            common::collector_garbage(0);
        }
        assert!(
            common::eventually(30, || gort::read_mem_stats().num_gc > n1),
            "no automatic cycle after turning GOGC back on"
        );
        assert_eq!(gort::debug::set_gc_percent(100), 100);
    }) else {
        return;
    };
    out.assert_success();
}

/// The same allocation pattern in each GOGC child: a live set of 4 MiB
/// and 64 MiB of garbage, in 1 KiB objects, 64 KiB at a time.
fn churn_cycles() -> u32 {
    let live: Vec<Gc<[u8; 1000]>> = (0..4096).map(|_| Gc::new([1; 1000])).collect();
    gort::gc();
    let n0 = gort::read_mem_stats().num_gc;
    for _ in 0..1024 {
        for _ in 0..64 {
            common::collector_garbage(2);
        }
        // Over the goal, a cycle has started: wait for it (a collector
        // slower than the allocation would otherwise decide the count, and
        // the garbage allocated during a cycle, which survives it, would
        // raise the next goal).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let m = gort::read_mem_stats();
            if m.heap_alloc < m.next_gc || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let n = gort::read_mem_stats().num_gc - n0;
    assert!(live.iter().all(|g| g[999] == 1));
    n
}

#[test]
fn gogc_changes_cycle_count() {
    const NAME: &str = "gogc_changes_cycle_count";
    if common::is_child(NAME) {
        println!("cycles={}", churn_cycles());
        return;
    }
    let cycles = |gogc: &str| -> u32 {
        let out = common::run_child(NAME, &[("GOGC", gogc)]);
        out.assert_success();
        // libtest prints "test NAME ... " on the same line.
        let n = out.stdout.split("cycles=").nth(1).and_then(|l| l.lines().next());
        n.and_then(|n| n.trim().parse().ok()).unwrap_or_else(|| panic!("no cycle count: {}", out.dump()))
    };
    let (c50, c100, c200) = (cycles("50"), cycles("100"), cycles("200"));
    eprintln!("cycles: GOGC=50 {c50}, GOGC=100 {c100}, GOGC=200 {c200}");
    assert!(c50 > c100 && c100 > c200, "GOGC=50: {c50}, 100: {c100}, 200: {c200} cycles");
}

#[test]
fn bad_gogc_warns_and_uses_default() {
    const NAME: &str = "bad_gogc_warns_and_uses_default";
    if common::is_child(NAME) {
        let want: i64 = std::env::var("WANT").unwrap().parse().unwrap();
        assert_eq!(gort::debug::set_gc_percent(100), want);
        return;
    }
    let out = common::run_child(NAME, &[("GOGC", "lots"), ("WANT", "100")]);
    out.assert_success();
    assert!(out.stderr.contains("GOGC=\"lots\""), "no warning naming GOGC: {}", out.dump());
    let out = common::run_child(NAME, &[("GOGC", "off"), ("WANT", "-1")]);
    out.assert_success();
    assert!(!out.stderr.contains("GOGC="), "warned about a good value: {}", out.dump());
    let out = common::run_child(NAME, &[("GOGC", "300"), ("WANT", "300")]);
    out.assert_success();
}

#[test]
fn free_os_memory_releases_idle_spans() {
    let Some(out) = in_child("free_os_memory_releases_idle_spans", &[], || {
        let v: Vec<Gc<[u8; 1000]>> = (0..16 * 1024).map(|_| Gc::new([3; 1000])).collect();
        drop(v);
        assert_eq!(gort::read_mem_stats().heap_released, 0);
        gort::debug::free_os_memory();
        let m = gort::read_mem_stats();
        check(&m);
        assert!(m.heap_released >= 8 << 20, "released only {} bytes", m.heap_released);
        // Released spans are reused, their memory faulting back in.
        let v: Vec<Gc<[u8; 1000]>> = (0..16 * 1024).map(|i| Gc::new([i as u8; 1000])).collect();
        let m2 = gort::read_mem_stats();
        check(&m2);
        assert!(m2.heap_released < m.heap_released, "{} -> {}", m.heap_released, m2.heap_released);
        assert!(m2.heap_sys <= m.heap_sys + (1 << 20), "spans were not reused: {} -> {}", m.heap_sys, m2.heap_sys);
        for (i, g) in v.iter().enumerate() {
            assert!(g.iter().all(|&b| b == i as u8));
        }
        drop(v);
        gort::debug::free_os_memory();
        check(&gort::read_mem_stats());
    }) else {
        return;
    };
    out.assert_success();
}

/// One parsed gctrace line.
#[derive(Debug)]
struct Trace {
    n: u64,
    at_s: f64,
    clock: Vec<f64>,
    cpu: Vec<f64>,
    mb: Vec<u64>,
    goal: u64,
    procs: u64,
    forced: bool,
}

/// Parses Go's format:
/// `gc N @T.TTTs U%: a+b+c ms clock, d+e/f/g+h ms cpu, x->y->z MB, G MB goal, S MB stacks, L MB globals, P P (forced)`.
fn parse_trace(line: &str) -> Option<Trace> {
    let rest = line.strip_prefix("gc ")?;
    let (n, rest) = rest.split_once(" @")?;
    let (at, rest) = rest.split_once("s ")?;
    let (_util, rest) = rest.split_once("%: ")?;
    let (clock, rest) = rest.split_once(" ms clock, ")?;
    let (cpu, rest) = rest.split_once(" ms cpu, ")?;
    let (mb, rest) = rest.split_once(" MB, ")?;
    let (goal, rest) = rest.split_once(" MB goal, ")?;
    let (_stacks, rest) = rest.split_once(" MB stacks, ")?;
    let (_globals, rest) = rest.split_once(" MB globals, ")?;
    let (procs, forced) = match rest.strip_suffix(" P (forced)") {
        Some(p) => (p, true),
        None => (rest.strip_suffix(" P")?, false),
    };
    let nums = |s: &str, seps: &[char]| s.split(seps).map(|x| x.parse::<f64>().ok()).collect::<Option<Vec<_>>>();
    let at_parts: Vec<&str> = at.split('.').collect();
    if at_parts.len() != 2 || at_parts[1].len() != 3 {
        return None;
    }
    Some(Trace {
        n: n.parse().ok()?,
        at_s: at.parse().ok()?,
        clock: nums(clock, &['+'])?,
        cpu: nums(cpu, &['+', '/'])?,
        mb: mb.split("->").map(|x| x.parse().ok()).collect::<Option<Vec<_>>>()?,
        goal: goal.parse().ok()?,
        procs: procs.parse().ok()?,
        forced,
    })
}

#[test]
fn gctrace_prints_go_format() {
    const NAME: &str = "gctrace_prints_go_format";
    if common::is_child(NAME) {
        let live: Vec<Gc<[u8; 1000]>> = (0..3 * 1024).map(|_| Gc::new([1; 1000])).collect();
        gort::gc();
        gort::gc();
        drop(live);
        return;
    }
    let out = common::run_child(NAME, &[("GODEBUG", "gctrace=1"), ("GOMAXPROCS", "2")]);
    out.assert_success();
    let lines: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("gc ")).collect();
    assert!(lines.len() >= 2, "{}", out.dump());
    let traces: Vec<Trace> =
        lines.iter().map(|l| parse_trace(l).unwrap_or_else(|| panic!("not Go's gctrace format: {l:?}"))).collect();
    for (i, t) in traces.iter().enumerate() {
        assert_eq!(t.n, i as u64 + 1, "cycles numbered from 1: {traces:?}");
        assert_eq!(t.clock.len(), 3);
        assert_eq!(t.cpu.len(), 5);
        assert_eq!(t.mb.len(), 3);
        assert_eq!(t.procs, 2);
        assert!(t.at_s < 60.0);
        assert!(t.goal >= 4);
    }
    let forced: Vec<&Trace> = traces.iter().filter(|t| t.forced).collect();
    assert!(forced.len() >= 2, "{traces:?}");
    // The last forced cycle started with the 3 MiB live set.
    let last = forced.last().unwrap();
    assert!(last.mb[0] >= 3 && last.mb[2] >= 2, "{last:?}");
    assert!(parse_trace("gc 3 @0.052s 0%: 0.16+0.20+0.003 ms clock, 0.32+0/0.13/0.087+0.006 ms cpu, 11->11->3 MB, 19 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)").is_some(), "the parser reads Go's own line");

    // Without GODEBUG, nothing is printed.
    let out = common::run_child(NAME, &[]);
    out.assert_success();
    assert!(!out.stderr.lines().any(|l| l.starts_with("gc ")), "{}", out.dump());
}
