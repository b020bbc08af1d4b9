//! The memory limit (`gort::debug::set_memory_limit`, `GOMEMLIMIT`) and the
//! thread limit (`gort::debug::set_max_threads`).
//!
//! Every test runs in a child process: the limits, GOGC, the heap's size
//! and the exit status are process-wide.

mod common;

use std::time::Duration;

use common::{in_child, run_child, OrPanic};
use gort::gc::Gc;

const MIB: u64 = 1 << 20;

/// The number printed after `key=` in `text`.
fn field(text: &str, key: &str) -> Option<u64> {
    let pat = format!("{key}=");
    let rest = &text[text.find(&pat)? + pat.len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

// ----------------------------------------------------------- memory limit --

/// Four goroutines, each keeping 2 MiB alive (and replacing it bit by bit)
/// while it allocates 128 MiB of garbage, in 1 KiB objects (self-referencing: only
/// the collector frees them): 8 MiB live,
/// 512 MiB allocated in all. Prints the heap's figures at the end.
fn churn() {
    gort::run(|| {
        let workers: Vec<_> = (0..4u8)
            .map(|k| {
                gort::spawn(move || {
                    let mut live: Vec<Gc<[u8; 1000]>> = (0..2048).map(|_| Gc::new([k; 1000])).collect();
                    for i in 0..128 * 1024usize {
                        common::collector_garbage(i as u8);
                        if i % 64 == 0 {
                            live[(i / 64) % 2048] = Gc::new([k; 1000]);
                        }
                    }
                    assert!(live.iter().all(|g| g[0] == k && g[999] == k), "the live set was damaged");
                })
            })
            .collect();
        for w in workers {
            w.join().or_panic();
        }
    });
    let m = gort::read_mem_stats();
    println!(
        "heap_sys={} heap_released={} stack_inuse={} next_gc={} num_gc={} total_alloc={}",
        m.heap_sys, m.heap_released, m.stack_inuse, m.next_gc, m.num_gc, m.total_alloc
    );
}

#[test]
fn memory_limit_holds_the_heap_with_gogc_off() {
    const NAME: &str = "memory_limit_holds_the_heap_with_gogc_off";
    if common::is_child(NAME) {
        churn();
        return;
    }
    let limit = 64 * MIB;
    let run = |gomemlimit: &str| {
        let out = run_child(NAME, &[("GOGC", "off"), ("GOMEMLIMIT", gomemlimit)]);
        out.assert_success();
        let get = |k| field(&out.stdout, k).unwrap_or_else(|| panic!("no {k}: {}", out.dump()));
        eprintln!("GOMEMLIMIT={gomemlimit}: {}", out.stdout.lines().find(|l| l.contains("heap_sys=")).unwrap());
        (get("heap_sys"), get("heap_released"), get("num_gc"), get("total_alloc"))
    };
    // The heap's spans are never unmapped (only released), so `heap_sys`
    // at the end is the most heap memory there ever was.
    let (sys, released, cycles, total) = run("64MiB");
    assert!(total >= 512 * MIB, "allocated only {total} bytes");
    assert!(cycles >= 2, "{cycles} cycles under the limit with GOGC=off");
    assert!(sys <= limit * 3 / 2, "heap_sys {} MiB under a {} MiB limit", sys / MIB, limit / MIB);
    assert!(sys - released <= limit * 3 / 2);
    // The same program without the limit: nothing collects.
    let (sys, _, cycles, _) = run("off");
    assert_eq!(cycles, 0, "a cycle ran with GOGC=off and no limit");
    assert!(sys >= 4 * limit, "heap_sys {} MiB without a limit: the program is not a test of it", sys / MIB);
}

/// After a `gort::gc()` that leaves `live` bytes in 1 KiB objects, prints
/// `next_gc`.
fn goal_after_gc(live: usize) {
    let kept: Vec<Gc<[u8; 1000]>> = (0..live / 1024).map(|_| Gc::new([1; 1000])).collect();
    gort::gc();
    let m = gort::read_mem_stats();
    println!("heap_alloc={} next_gc={}", m.heap_alloc, m.next_gc);
    drop(kept);
}

#[test]
fn the_goal_is_the_smaller_of_gogc_and_the_limit() {
    const NAME: &str = "the_goal_is_the_smaller_of_gogc_and_the_limit";
    if common::is_child(NAME) {
        goal_after_gc(24 << 20);
        return;
    }
    let goal = |gogc: &str, gomemlimit: &str| {
        let out = run_child(NAME, &[("GOGC", gogc), ("GOMEMLIMIT", gomemlimit)]);
        out.assert_success();
        let get = |k| field(&out.stdout, k).unwrap_or_else(|| panic!("no {k}: {}", out.dump()));
        (get("heap_alloc"), get("next_gc"))
    };
    // GOGC=100 alone: twice the live heap.
    let (live, g) = goal("100", "off");
    assert!((24 * MIB..25 * MIB).contains(&live), "live heap {live}");
    assert!(g >= 2 * live - live / 100, "GOGC=100 goal {g} for {live} live");
    // A 32 MiB limit leaves less: the limit's goal, below the limit.
    let (live, g) = goal("100", "32MiB");
    assert!(g < 32 * MIB && g > live, "goal {g} with 32 MiB limit, {live} live");
    // GOGC=off: the limit's goal alone.
    let (_, g) = goal("off", "32MiB");
    assert!(g < 32 * MIB && g > live, "goal {g} with GOGC=off and a 32 MiB limit");
    // GOGC=off and no limit: no goal to speak of (Go's is about 8.9e18).
    let (_, g) = goal("off", "");
    assert!(g >= 1 << 62, "goal {g} with GOGC=off and no limit");
    // A limit below the live heap: the floor, an eighth over the live heap
    // (rather than a goal at the live heap and cycles back to back).
    let (live, g) = goal("100", "8MiB");
    let floor = live + live / 8;
    assert!(g + 64 * 1024 >= floor && g <= floor + 64 * 1024, "goal {g} for {live} live under an 8 MiB limit");
    // GOGC's goal still applies when it is the smaller.
    let (live, g) = goal("10", "8MiB");
    assert!(g < floor && g >= live, "GOGC=10 goal {g} for {live} live");
}

#[test]
fn lowering_the_limit_returns_idle_memory() {
    let Some(out) = in_child("lowering_the_limit_returns_idle_memory", &[("GOMEMLIMIT", "")], || {
        let v: Vec<Gc<[u8; 1000]>> = (0..48 * 1024).map(|_| Gc::new([3; 1000])).collect();
        drop(v);
        gort::gc();
        let m = gort::read_mem_stats();
        assert_eq!(m.heap_released, 0, "released before any limit");
        assert!(m.heap_sys >= 48 * MIB);
        // Over 95% of the new limit: idle spans go back to the OS at once.
        gort::debug::set_memory_limit(16 << 20);
        let m = gort::read_mem_stats();
        let mapped = m.heap_sys - m.heap_released;
        assert!(mapped <= 16 * MIB, "{} MiB still mapped under a 16 MiB limit", mapped / MIB);
    }) else {
        return;
    };
    out.assert_success();
}

/// The count keeps large cells' children (`snapshot.rs`) within half of
/// what the memory limit leaves unused: under a limit just over what the
/// process maps, a quiet cell of 2,000 handles is counted and its list not
/// kept (its first barrier would copy it); with no limit it is kept.
#[test]
fn the_memory_limit_bounds_the_kept_lists() {
    let Some(out) = in_child("the_memory_limit_bounds_the_kept_lists", &[("GOMEMLIMIT", "")], || {
        use gort::gc::__hooks::kept_lists;
        let cell = Gc::new(gort::gc::GcMutex::new((0..2000u64).map(Gc::new).collect::<Vec<_>>()));
        gort::gc();
        let m = gort::read_mem_stats();
        gort::debug::set_memory_limit((m.sys + 4096) as i64);
        let before = kept_lists().0;
        gort::gc();
        assert_eq!(kept_lists().0, before, "a list kept with no room under the limit");
        gort::debug::set_memory_limit(i64::MAX);
        gort::gc();
        assert!(kept_lists().0 > before, "no list kept with no limit");
        assert_eq!(cell.lock().len(), 2000);
    }) else {
        return;
    };
    out.assert_success();
}

#[test]
fn set_memory_limit_returns_previous() {
    const NAME: &str = "set_memory_limit_returns_previous";
    if common::is_child(NAME) {
        let start: i64 = std::env::var("WANT").unwrap().parse().unwrap();
        assert_eq!(gort::debug::set_memory_limit(-1), start, "initial limit");
        assert_eq!(gort::debug::set_memory_limit(100 << 20), start);
        assert_eq!(gort::debug::set_memory_limit(-1), 100 << 20, "a negative limit only reads");
        assert_eq!(gort::debug::set_memory_limit(i64::MIN), 100 << 20);
        assert_eq!(gort::debug::set_memory_limit(0), 100 << 20);
        assert_eq!(gort::debug::set_memory_limit(i64::MAX), 0);
        assert_eq!(gort::debug::set_memory_limit(-1), i64::MAX);
        return;
    }
    run_child(NAME, &[("GOMEMLIMIT", ""), ("WANT", &i64::MAX.to_string())]).assert_success();
    run_child(NAME, &[("GOMEMLIMIT", "1GiB"), ("WANT", &(1i64 << 30).to_string())]).assert_success();
}

#[test]
fn gomemlimit_is_parsed_as_go_and_bad_values_warn() {
    const NAME: &str = "gomemlimit_is_parsed_as_go_and_bad_values_warn";
    if common::is_child(NAME) {
        let want: i64 = std::env::var("WANT").unwrap().parse().unwrap();
        assert_eq!(gort::debug::set_memory_limit(-1), want);
        return;
    }
    let max = i64::MAX.to_string();
    for (v, want) in [
        ("123", "123"),
        ("123B", "123"),
        ("2KiB", "2048"),
        ("64MiB", "67108864"),
        ("3GiB", "3221225472"),
        ("1TiB", "1099511627776"),
        ("off", max.as_str()),
        ("", max.as_str()),
    ] {
        let out = run_child(NAME, &[("GOMEMLIMIT", v), ("WANT", want)]);
        out.assert_success();
        assert!(!out.stderr.contains("GOMEMLIMIT"), "warned about GOMEMLIMIT={v:?}: {}", out.dump());
    }
    for bad in ["1.5GiB", "64MB", "-1", "lots", "10M"] {
        let out = run_child(NAME, &[("GOMEMLIMIT", bad), ("WANT", &max)]);
        out.assert_success();
        assert!(
            out.stderr.contains(&format!("GOMEMLIMIT={bad:?}")),
            "no warning naming GOMEMLIMIT={bad}: {}",
            out.dump()
        );
    }
}

// ----------------------------------------------------------- thread limit --

#[test]
fn set_max_threads_returns_previous() {
    let Some(out) = in_child("set_max_threads_returns_previous", &[], || {
        assert_eq!(gort::debug::set_max_threads(20_000), 10_000, "Go's default is 10000");
        assert_eq!(gort::debug::set_max_threads(5_000), 20_000);
        // Go's limit is an int32.
        assert_eq!(gort::debug::set_max_threads(usize::MAX), 5_000);
        assert_eq!(gort::debug::set_max_threads(10_000), i32::MAX as usize);
        // The runtime works under a limit it stays within.
        let n: i32 = gort::run(|| {
            let hs: Vec<_> = (0..8).map(|i| gort::spawn(move || gort::syscall(move || i))).collect();
            hs.into_iter().map(|h| h.join().or_panic()).sum()
        });
        assert_eq!(n, 28);
    }) else {
        return;
    };
    out.assert_success();
}

/// Go's report when a program needs thread `max + 1`.
fn exhaustion(max: usize) -> String {
    format!("runtime: program exceeds {max}-thread limit\nfatal error: thread exhaustion\n")
}

#[test]
fn goroutines_blocked_in_syscalls_exhaust_the_thread_limit() {
    let Some(out) = in_child("goroutines_blocked_in_syscalls_exhaust_the_thread_limit", &[("GOMAXPROCS", "2")], || {
        gort::run(|| {
            gort::debug::set_max_threads(12);
            println!("limit set");
            // Each blocked call holds a blocking-pool thread (Go: an M).
            for _ in 0..32 {
                gort::go(|| gort::syscall(|| std::thread::sleep(Duration::from_secs(20))));
            }
            gort::syscall(|| std::thread::sleep(Duration::from_secs(30)));
        });
        panic!("32 goroutines blocked in syscalls under a 12-thread limit, and nothing happened");
    }) else {
        return;
    };
    assert!(out.stdout.contains("limit set"), "the limit was fatal before any syscall: {}", out.dump());
    assert_eq!(out.code(), Some(2), "{}", out.dump());
    assert!(out.stderr.contains(&exhaustion(12)), "not Go's report: {}", out.dump());
}

#[test]
fn locked_goroutines_exhaust_the_thread_limit() {
    let Some(out) = in_child("locked_goroutines_exhaust_the_thread_limit", &[("GOMAXPROCS", "2")], || {
        gort::run(|| {
            gort::debug::set_max_threads(10);
            println!("limit set");
            // Each goroutine born locked gets an M of its own.
            let stop = gort::chan::Chan::<()>::new(0);
            let mut hs = Vec::new();
            for _ in 0..16 {
                let stop = stop.clone();
                hs.push(gort::Builder::new().locked().spawn(move || stop.recv()).unwrap());
            }
            stop.close();
            for h in hs {
                let _ = h.join();
            }
        });
        panic!("16 locked goroutines under a 10-thread limit, and nothing happened");
    }) else {
        return;
    };
    assert!(out.stdout.contains("limit set"), "the limit was fatal before any locked goroutine: {}", out.dump());
    assert_eq!(out.code(), Some(2), "{}", out.dump());
    assert!(out.stderr.contains(&exhaustion(10)), "not Go's report: {}", out.dump());
}

#[test]
fn a_limit_below_the_threads_in_use_is_fatal_at_once() {
    let Some(out) = in_child("a_limit_below_the_threads_in_use_is_fatal_at_once", &[], || {
        gort::run(|| {
            // sysmon and this goroutine's M exist already (Go checks the
            // new limit against its Ms at once too).
            gort::debug::set_max_threads(1);
            println!("still running");
        });
    }) else {
        return;
    };
    assert_eq!(out.code(), Some(2), "{}", out.dump());
    assert!(!out.stdout.contains("still running"), "{}", out.dump());
    assert!(out.stderr.contains(&exhaustion(1)), "not Go's report: {}", out.dump());
}
