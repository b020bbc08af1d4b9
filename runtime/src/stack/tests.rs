//! Unit tests of the stack allocator. Tests run in parallel threads of one
//! process and share the global pool, so each test that reasons about the
//! pool uses a size class no other test uses, and syscall counts are per
//! thread.

use std::hint::black_box;
use std::process::{Command, Output};

use super::*;
use corosensei::stack::Stack as _;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Tells a re-executed test binary which child scenario to run.
const CHILD_ENV: &str = "GORT_STACK_TEST_CHILD";

fn maps_lines() -> usize {
    std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps").lines().count()
}

fn syscalls() -> u64 {
    os::syscalls_on_this_thread()
}

#[test]
fn stack_is_send_sync_and_cache_is_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Stack>();
    send::<StackCache>();
}

#[test]
fn cache_reuses_the_same_slot_without_syscalls() {
    let mut cache = StackCache::new();
    let a = cache.alloc(256 * KIB).unwrap();
    let a_lo = a.bounds().0;
    cache.free(a);
    let before = syscalls();
    let b = cache.alloc(256 * KIB).unwrap();
    assert_eq!(b.bounds().0, a_lo, "the cache hands back the slot just freed");
    for _ in 0..10_000 {
        let s = cache.alloc(200 * KIB).unwrap();
        cache.free(s);
    }
    assert_eq!(syscalls(), before, "reuse made a system call");
    cache.free(b);
}

#[test]
fn global_pool_reuses_without_syscalls() {
    // 4 MiB is above the per-P cache limit and used by no other test.
    let a = alloc_global(3 * MIB).unwrap();
    assert_eq!(a.size(), 4 * MIB);
    let a_lo = a.bounds().0;
    free_global(a);
    let before = syscalls();
    let b = alloc_global(4 * MIB).unwrap();
    assert_eq!(syscalls(), before, "reuse from the global pool made a system call");
    assert_eq!(b.bounds().0, a_lo);
    // A P's cache also goes straight to the pool for this class.
    let mut cache = StackCache::new();
    cache.free(b);
    let c = cache.alloc(4 * MIB).unwrap();
    assert_eq!(c.bounds().0, a_lo);
    assert_eq!(syscalls(), before);
    drop(c); // Drop returns it to the pool as well
    let d = alloc_global(4 * MIB).unwrap();
    assert_eq!(d.bounds().0, a_lo);
    assert_eq!(syscalls(), before);
}

#[test]
fn sizes_round_up_to_power_of_two_classes() {
    let page = os::page_size();
    let mut cache = StackCache::new();
    for (ask, got) in [
        (0, 16 * KIB),
        (1, 16 * KIB),
        (16 * KIB, 16 * KIB),
        (16 * KIB + 1, 32 * KIB),
        (100 * KIB, 128 * KIB),
        (256 * KIB, 256 * KIB),
    ] {
        let s = cache.alloc(ask).unwrap();
        assert_eq!(s.size(), got, "alloc({ask})");
        let (lo, hi) = s.bounds();
        assert_eq!(hi - lo, got);
        assert_eq!(s.base().get(), hi);
        assert_eq!(s.limit().get(), lo - page, "limit includes the guard page");
        assert_eq!(hi % page, 0);
        assert_eq!(hi % corosensei::stack::STACK_ALIGNMENT, 0);
        cache.free(s);
    }
    let e = cache.alloc(MAX_STACK_SIZE + 1).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(size::class_of(MAX_STACK_SIZE), Some(NCLASS - 1));
    assert_eq!(size::class_of(MAX_STACK_SIZE + 1), None);
}

#[test]
fn check_stack_size_range_and_message() {
    assert_eq!(check_stack_size(MIN_STACK_SIZE).unwrap(), MIN_STACK_SIZE);
    assert_eq!(check_stack_size(MAX_STACK_SIZE).unwrap(), MAX_STACK_SIZE);
    assert_eq!(check_stack_size(300_000).unwrap(), 300_000);
    let e = check_stack_size(100).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(e.to_string(), "stack size 100 bytes is out of range: must be between 16384 and 1073741824 bytes");
    let e = check_stack_size(MAX_STACK_SIZE + 1).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("1073741825 bytes is out of range"));
    assert!(check_stack_size(0).is_err());
    assert!(check_stack_size(usize::MAX).is_err());
}

#[test]
fn parse_gort_stack_size() {
    use size::parse_stack_size as p;
    assert_eq!(p("262144"), Ok(262144));
    assert_eq!(p("256K"), Ok(256 * KIB));
    assert_eq!(p("256KiB"), Ok(256 * KIB));
    assert_eq!(p("256k"), Ok(256 * KIB));
    assert_eq!(p(" 1 MiB "), Ok(MIB));
    assert_eq!(p("8M"), Ok(8 * MIB));
    assert_eq!(p("1G"), Ok(1 << 30));
    assert_eq!(p("1GiB"), Ok(1 << 30));
    assert!(p("").unwrap_err().contains("not a number"));
    assert!(p("abc").unwrap_err().contains("not a number"));
    assert!(p("-5").unwrap_err().contains("not a number"));
    assert!(p("12KB").unwrap_err().contains("unknown suffix \"KB\""));
    assert!(p("1.5M").unwrap_err().contains("unknown suffix"));
    assert!(p("2G").unwrap_err().contains("out of range"));
    assert!(p("100").unwrap_err().contains("out of range"));
    assert!(p("99999999999999999999999").unwrap_err().contains("too large"));
    assert!(p("99999999999999G").unwrap_err().contains("too large"));
    // Whatever the environment says, the default is a valid size.
    assert!(check_stack_size(default_stack_size()).is_ok());
}

#[test]
fn twenty_thousand_live_stacks_take_few_mappings() {
    // 64 KiB: a class no other test uses, so every slot here is fresh.
    let before = maps_lines();
    let mut cache = StackCache::new();
    let stacks: Vec<Stack> = (0..20_000).map(|_| cache.alloc(64 * KIB).unwrap()).collect();
    for s in &stacks {
        let (lo, hi) = s.bounds();
        // SAFETY: [lo, hi) is the usable part of a stack we own.
        unsafe {
            (lo as *mut u8).write_volatile(1);
            ((hi - 1) as *mut u8).write_volatile(2);
        }
    }
    let after = maps_lines();
    eprintln!("20k stacks: /proc/self/maps {before} -> {after} lines, guard mode {}", guard_mode());
    if guard_mode() == "madvise" {
        assert!(after < before + 40, "maps grew from {before} to {after}");
    }
    assert!(stack_sys_bytes() >= 20_000 * 64 * KIB);
    assert!(stack_inuse_bytes() >= 20_000 * 64 * KIB);
    let mut sorted: Vec<usize> = stacks.iter().map(|s| s.bounds().0).collect();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 20_000, "a slot was handed out twice");
    for s in stacks {
        cache.free(s);
    }
}

#[test]
fn whole_usable_area_is_writable() {
    let mut cache = StackCache::new();
    for size in [16 * KIB, 256 * KIB] {
        let s = cache.alloc(size).unwrap();
        let (lo, hi) = s.bounds();
        // SAFETY: [lo, hi) is the usable part of a stack we own.
        let area = unsafe { std::slice::from_raw_parts_mut(lo as *mut u8, hi - lo) };
        area.fill(0xA5);
        assert!(area.iter().all(|&b| b == 0xA5));
        cache.free(s);
    }
}

#[inline(never)]
fn recurse(depth: usize, limit: usize) -> usize {
    let mut buf = [0u8; 512];
    black_box(&mut buf);
    if black_box(depth) >= limit {
        return depth;
    }
    recurse(depth + 1, limit) + buf[depth % 512] as usize
}

#[test]
fn code_runs_on_a_stack_and_across_threads() {
    let mut s = alloc_global(256 * KIB).unwrap();
    // ~100 frames of > 512 bytes: well inside 256 KiB.
    assert_eq!(corosensei::on_stack(&mut s, || recurse(0, 100)), 100);
    let t = std::thread::spawn(move || {
        let mut s = s;
        let r = corosensei::on_stack(&mut s, || recurse(0, 50));
        let mut cache = StackCache::new();
        cache.free(s);
        cache.flush();
        r
    });
    assert_eq!(t.join().unwrap(), 50);
}

#[test]
fn idle_pages_are_released_above_the_watermark() {
    // 1 MiB: a class no other test uses. 100 touched stacks = 100 MiB idle,
    // above the 64 MiB watermark: at least 36 must be released.
    let n = 100;
    let stacks: Vec<Stack> = (0..n).map(|_| alloc_global(MIB).unwrap()).collect();
    for s in &stacks {
        let (lo, hi) = s.bounds();
        // SAFETY: [lo, hi) is the usable part of a stack we own.
        unsafe { std::ptr::write_bytes(lo as *mut u8, 0xAB, hi - lo) };
    }
    let before = syscalls();
    for s in stacks {
        free_global(s);
    }
    let released = syscalls() - before;
    assert!(released >= 36, "only {released} stacks released");
    let before = syscalls();
    let again: Vec<Stack> = (0..n).map(|_| alloc_global(MIB).unwrap()).collect();
    assert_eq!(syscalls(), before, "reusing released stacks made a system call");
    let zeroed = again
        .iter()
        // SAFETY: `lo` is the first usable byte of a stack we own.
        .filter(|s| unsafe { *(s.bounds().0 as *const u8) } == 0)
        .count();
    assert!(zeroed as u64 >= released.min(n as u64), "{zeroed} zeroed, {released} released");
    for s in again {
        free_global(s);
    }
}

#[test]
fn guard_mode_is_known() {
    let m = guard_mode();
    assert!(m == "madvise" || m == "mprotect", "{m}");
}

#[test]
fn ensure_altstack_adds_one_only_when_missing() {
    std::thread::spawn(|| {
        // SAFETY: (whole block) stack_t values are plain data; we query,
        // disable and later restore std's alternate stack for this thread,
        // and no signal handler runs on it meanwhile.
        unsafe {
            let mut std_ss: libc::stack_t = std::mem::zeroed();
            libc::sigaltstack(std::ptr::null(), &mut std_ss);
            ensure_altstack();
            let mut cur: libc::stack_t = std::mem::zeroed();
            libc::sigaltstack(std::ptr::null(), &mut cur);
            assert_eq!(cur.ss_sp, std_ss.ss_sp, "an existing altstack was replaced");

            let off = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
            libc::sigaltstack(&off, std::ptr::null_mut());
            ensure_altstack();
            libc::sigaltstack(std::ptr::null(), &mut cur);
            assert_eq!(cur.ss_flags & libc::SS_DISABLE, 0, "no altstack installed");
            assert!(cur.ss_size >= 64 * KIB);
            let ours = cur.ss_sp;
            ensure_altstack();
            libc::sigaltstack(std::ptr::null(), &mut cur);
            assert_eq!(cur.ss_sp, ours, "ensure_altstack is not idempotent");
            // Give std its own back (ours is then leaked at thread exit).
            if std_ss.ss_flags & libc::SS_DISABLE == 0 {
                libc::sigaltstack(&std_ss, std::ptr::null_mut());
            }
        }
    })
    .join()
    .unwrap();
}

fn run_child(test: &str, scenario: &str, extra_env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", &format!("stack::tests::{test}"), "--nocapture", "--test-threads=1"]).env(CHILD_ENV, scenario);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().expect("spawn child test process")
}

fn is_child(scenario: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == scenario)
}

fn describe42(buf: &mut [u8]) -> usize {
    let msg = b"goroutine 42 [running]:\n";
    let n = msg.len().min(buf.len());
    buf[..n].copy_from_slice(&msg[..n]);
    n
}

/// Child half of `overflow_reports_fatal_error_and_exits_2`: a no-op in a
/// normal test run.
#[test]
fn overflow_child() {
    if !is_child("overflow") {
        return;
    }
    install_overflow_handler(describe42);
    let mut s = alloc_global(64 * KIB).unwrap();
    eprintln!("guard mode {}", guard_mode());
    let r = corosensei::on_stack(&mut s, || recurse(0, usize::MAX));
    panic!("recursion returned {r} instead of overflowing");
}

fn assert_overflow_report(out: &Output) {
    use std::os::unix::process::ExitStatusExt;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "status {:?} (signal {:?}), stderr:\n{stderr}",
        out.status,
        out.status.signal()
    );
    assert!(
        stderr.contains(
            "runtime: goroutine stack exceeds 65536-byte limit\nfatal error: stack overflow\n\ngoroutine 42 [running]:\n"
        ),
        "stderr:\n{stderr}"
    );
}

#[test]
fn overflow_reports_fatal_error_and_exits_2() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    assert_overflow_report(&run_child("overflow_child", "overflow", &[]));
}

#[test]
fn overflow_is_reported_with_mprotect_guards_too() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let out = run_child("overflow_child", "overflow", &[("GORT_STACK_TEST_FORCE_MPROTECT", "1")]);
    assert_overflow_report(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("guard mode mprotect"));
}

/// Child half of `other_faults_chain_to_the_previous_handler`.
#[test]
fn fault_child() {
    if !is_child("fault") {
        return;
    }
    install_overflow_handler(describe42);
    let mut s = alloc_global(64 * KIB).unwrap();
    corosensei::on_stack(&mut s, || {
        // SAFETY: maps a fresh inaccessible page, then reads it on purpose:
        // the read faults, which is what this child exists to do.
        unsafe {
            let p =
                libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            assert_ne!(p, libc::MAP_FAILED);
            black_box(std::ptr::read_volatile(p as *const u8));
        }
    });
    panic!("reading a PROT_NONE page did not fault");
}

#[test]
fn other_faults_chain_to_the_previous_handler() {
    use std::os::unix::process::ExitStatusExt;
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let out = run_child("fault_child", "fault", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "status {:?}, stderr:\n{stderr}", out.status);
    assert!(!stderr.contains("stack overflow"), "stderr:\n{stderr}");
}

/// Child half of `thread_overflow_still_gets_std_report`.
#[test]
fn thread_overflow_child() {
    if !is_child("thread") {
        return;
    }
    install_overflow_handler(describe42);
    let t =
        std::thread::Builder::new().name("deep".into()).stack_size(64 * KIB).spawn(|| recurse(0, usize::MAX)).unwrap();
    let r = t.join();
    panic!("thread recursion ended without overflowing: {r:?}");
}

#[test]
fn thread_overflow_still_gets_std_report() {
    use std::os::unix::process::ExitStatusExt;
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let out = run_child("thread_overflow_child", "thread", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "status {:?}, stderr:\n{stderr}", out.status);
    assert!(stderr.contains("thread 'deep'") && stderr.contains("has overflowed its stack"), "stderr:\n{stderr}");
    assert!(!stderr.contains("goroutine 42"), "stderr:\n{stderr}");
}

/// Measures, does not assert: `cargo test -p gort --release --lib
/// stack::tests::bench -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_alloc_free() {
    use std::time::Instant;
    let n = 1_000_000;
    let mut cache = StackCache::new();
    let s = cache.alloc(256 * KIB).unwrap();
    cache.free(s);
    let t = Instant::now();
    for _ in 0..n {
        let s = cache.alloc(black_box(256 * KIB)).unwrap();
        cache.free(black_box(s));
    }
    let per_cache = t.elapsed().as_nanos() / n as u128;
    let t = Instant::now();
    for _ in 0..n {
        let s = alloc_global(black_box(256 * KIB)).unwrap();
        free_global(black_box(s));
    }
    let per_global = t.elapsed().as_nanos() / n as u128;
    // Fresh slots: one guard-page syscall each.
    let m = 100_000;
    let t = Instant::now();
    let v: Vec<Stack> = (0..m).map(|_| cache.alloc(256 * KIB).unwrap()).collect();
    let per_fresh = t.elapsed().as_nanos() / m as u128;
    drop(v);
    eprintln!(
        "alloc+free: per-P cache {per_cache} ns, global pool {per_global} ns; \
         fresh slot alloc {per_fresh} ns"
    );
}

/// The 1M-goroutine footprint without a scheduler: a million live 256 KiB
/// stacks, each with its top page touched.
#[test]
#[ignore]
fn million_stacks_maps_lines() {
    let before = maps_lines();
    let mut cache = StackCache::new();
    let t = std::time::Instant::now();
    let stacks: Vec<Stack> = (0..1_000_000)
        .map(|_| {
            let s = cache.alloc(256 * KIB).unwrap();
            // SAFETY: the byte below `hi` is in the usable part of our stack.
            unsafe { ((s.bounds().1 - 8) as *mut u64).write_volatile(7) };
            s
        })
        .collect();
    let el = t.elapsed();
    let after = maps_lines();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status.lines().find(|l| l.starts_with(name)).map_or(String::new(), |l| l.split_whitespace().skip(1).collect())
    };
    eprintln!(
        "1M stacks in {el:?}: maps {before} -> {after} lines; sys {} GiB, inuse {} GiB; \
         VmRSS {}, VmPTE {}",
        stack_sys_bytes() >> 30,
        stack_inuse_bytes() >> 30,
        field("VmRSS"),
        field("VmPTE"),
    );
    assert!(after < before + 100, "maps grew from {before} to {after}");
    drop(stacks);
}
