//! Spawning, joining, results, panics, goexit, scopes, goroutine-local
//! storage and the runtime queries.

mod common;

use common::OrPanic;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};

use common::{eventually, in_child, spin_until, with_timeout};

/// A migratable joiner may resume on another thread as soon as the
/// finishing goroutine readies it, while the thread it parked on is still
/// finishing the park: nothing may write to the joiner's stack then. (An
/// earlier lock-free join stored the park's outcome there and corrupted
/// the joiner's frame about every other run of this loop.)
#[test]
fn migratable_goroutines_join_one_child_at_a_time() {
    const N: u64 = 50_000;
    let sum = with_timeout("migratable joins", 120, || {
        gort::run(|| {
            let mig = || {
                // SAFETY: these bodies keep no thread-bound state.
                unsafe { gort::Builder::new().migratable() }
            };
            let driver = mig().spawn(move || {
                let mut sum = 0u64;
                for i in 0..N {
                    sum += mig().spawn(move || std::hint::black_box(i)).unwrap().join().or_panic();
                }
                sum
            });
            driver.unwrap().join().or_panic()
        })
    });
    assert_eq!(sum, N * (N - 1) / 2);
}

#[test]
fn spawn_and_join_100k_goroutines() {
    const N: u64 = 100_000;
    let sum = with_timeout("100k goroutines", 120, || {
        gort::run(|| {
            let handles: Vec<_> = (0..N).map(|i| gort::spawn(move || i * 3)).collect();
            assert_eq!(handles.len() as u64, N);
            handles.into_iter().map(|h| h.join().expect("goroutine panicked")).sum::<u64>()
        })
    });
    assert_eq!(sum, 3 * N * (N - 1) / 2);
}

/// Each goroutine of the chain spawns the next and joins it, so all of
/// them are alive at once at the deepest point.
fn chain(depth: u32, max: u32, at_bottom: &'static (dyn Fn() + Sync)) -> u32 {
    if depth == max {
        at_bottom();
        return depth;
    }
    gort::spawn(move || chain(depth + 1, max, at_bottom)).join().expect("chain link panicked")
}

static MAPS_AT_BOTTOM: AtomicUsize = AtomicUsize::new(0);
static GOROUTINES_AT_BOTTOM: AtomicUsize = AtomicUsize::new(0);

fn maps_lines() -> usize {
    std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps").lines().count()
}

/// A million goroutines alive at once cost a handful of memory mappings,
/// not two per stack (`vm.max_map_count` is 65530 by default). Runs in a
/// child process (about 4-5 GB of RSS, which the parent must not carry),
/// and only in optimized builds: debug builds use several times the stack
/// per goroutine and take minutes.
#[test]
fn chain_of_one_million_goroutines_uses_few_mappings() {
    const N: u32 = 1_000_000;
    if cfg!(debug_assertions) {
        eprintln!("skipped in debug: a million live goroutines need an optimized build (run with --release)");
        return;
    }
    let Some(out) = in_child("chain_of_one_million_goroutines_uses_few_mappings", &[], || {
        let before = maps_lines();
        let bottom = gort::run(|| {
            chain(0, N, &|| {
                MAPS_AT_BOTTOM.store(maps_lines(), Ordering::SeqCst);
                GOROUTINES_AT_BOTTOM.store(gort::num_goroutine(), Ordering::SeqCst);
            })
        });
        let maps = MAPS_AT_BOTTOM.load(Ordering::SeqCst);
        println!("maps before {before}, at the deepest point {maps}");
        assert_eq!(bottom, N, "the chain did not reach its end");
        // The main goroutine plus N links, every one blocked in join.
        assert_eq!(GOROUTINES_AT_BOTTOM.load(Ordering::SeqCst), N as usize + 1);
        assert!(maps < 1000, "/proc/self/maps has {maps} lines with {N} live goroutines (expected < 1000)");
    }) else {
        return;
    };
    out.assert_success();
    if let Some(line) = out.stdout.lines().find(|l| l.starts_with("maps before")) {
        println!("{line}");
    }
}

#[test]
fn join_returns_the_panic_payload() {
    with_timeout("join panic", 60, || {
        // From a plain thread.
        let h = gort::spawn(|| -> u32 { panic!("oops") });
        let p = h.join().expect_err("a panicking goroutine joined Ok");
        assert_eq!(p.downcast_ref::<&str>(), Some(&"oops"));

        // From a goroutine, with a formatted (String) payload; the process
        // goes on (a joinable goroutine's panic is not fatal).
        let msg = gort::run(|| {
            let n = std::hint::black_box(42);
            let h = gort::spawn(move || -> u32 { panic!("oops {n}") });
            let p = h.join().expect_err("a panicking goroutine joined Ok");
            p.downcast_ref::<String>().cloned()
        });
        assert_eq!(msg.as_deref(), Some("oops 42"));

        // A custom payload type comes back as is.
        #[derive(Debug, PartialEq)]
        struct Custom(u32);
        let p = gort::spawn(|| std::panic::panic_any(Custom(7))).join().unwrap_err();
        assert_eq!(p.downcast_ref::<Custom>(), Some(&Custom(7)));
    });
}

#[test]
fn goexit_runs_destructors_and_join_sees_goexit() {
    static DROPPED: AtomicBool = AtomicBool::new(false);
    static AFTER: AtomicBool = AtomicBool::new(false);
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            DROPPED.store(true, Ordering::SeqCst);
        }
    }
    fn nested() {
        let _g = Guard;
        gort::goexit();
    }
    with_timeout("goexit", 60, || {
        let h = gort::spawn(|| -> u32 {
            nested();
            AFTER.store(true, Ordering::SeqCst);
            1
        });
        let p = h.join().expect_err("a goroutine that called goexit joined Ok");
        assert!(p.is::<gort::Goexit>(), "join payload is not gort::Goexit");
        assert!(DROPPED.load(Ordering::SeqCst), "goexit did not run the destructor of a live value");
        assert!(!AFTER.load(Ordering::SeqCst), "code after goexit ran");
    });
}

#[test]
fn stack_size_out_of_range_is_invalid_input() {
    for size in [100usize, 1 << 40] {
        let e = gort::Builder::new().stack_size(size).spawn(|| ()).expect_err("out-of-range stack size accepted");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "stack_size({size})");
        let msg = e.to_string();
        assert!(
            msg.contains(&size.to_string()) && msg.contains("16384") && msg.contains("1073741824"),
            "stack_size({size}) error does not name the size and the allowed range: {msg:?}"
        );
        let e = gort::Builder::new().stack_size(size).go(|| ()).expect_err("out-of-range stack size accepted by go");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}

#[test]
fn stack_size_gives_room_for_deep_recursion() {
    #[inline(never)]
    fn eat(n: u32) -> u64 {
        let mut buf = [0u8; 4096];
        buf[n as usize % 4096] = n as u8;
        let buf = std::hint::black_box(buf);
        if n == 0 {
            return buf[0] as u64;
        }
        eat(n - 1) + buf[n as usize % 4096] as u64
    }
    // About 8 MiB of frames (more in debug builds) in a 64 MiB stack: far
    // beyond the default stack, well within this one.
    let r = with_timeout("deep recursion", 60, || {
        gort::Builder::new().stack_size(64 << 20).spawn(|| eat(2000)).unwrap().join()
    });
    let expected: u64 = (0..=2000u64).map(|n| n as u8 as u64).sum();
    assert_eq!(r.unwrap(), expected);
}

#[test]
fn scope_borrows_from_the_stack() {
    fn work() -> (Vec<u64>, u64) {
        let mut data: Vec<u64> = (0..1000).collect();
        let shared = String::from("gort");
        let total = AtomicU64::new(0);
        let lens = gort::scope(|s| {
            for chunk in data.chunks_mut(100) {
                let total = &total;
                s.spawn(move || {
                    for x in chunk.iter_mut() {
                        *x *= 2;
                        total.fetch_add(*x, Ordering::Relaxed);
                    }
                });
            }
            let h = s.spawn(|| shared.len());
            h.join().or_panic()
        });
        assert_eq!(lens, 4);
        (data, total.into_inner())
    }
    with_timeout("scope", 60, || {
        for (data, total) in [work(), gort::run(work)] {
            assert_eq!(data, (0..1000).map(|x| x * 2).collect::<Vec<u64>>());
            assert_eq!(total, 999 * 1000);
        }
    });
}

#[test]
fn scope_panics_if_a_goroutine_panicked_unjoined() {
    let r = with_timeout("scope panic", 60, || {
        std::panic::catch_unwind(|| {
            gort::scope(|s| {
                s.spawn(|| panic!("scoped boom"));
            })
        })
    });
    assert!(r.is_err(), "scope returned normally although a goroutine panicked unjoined");
}

#[test]
fn run_returns_the_value_and_the_main_goroutine_is_1() {
    let Some(out) = in_child("run_returns_the_value_and_the_main_goroutine_is_1", &[], || {
        assert!(gort::current().is_none());
        let (id, nested) = gort::run(|| {
            let g = gort::current().expect("no current goroutine inside run");
            // `run` on a goroutine just calls the function.
            let nested = gort::run(|| gort::current().unwrap().id());
            (g.id(), nested)
        });
        assert_eq!(id, 1, "the first run of a fresh process is not goroutine 1");
        assert_eq!(nested, 1, "a nested run started a new goroutine");
        // `run` may be called again; the borrowed value comes back.
        let v = [1, 2, 3];
        let (sum, id2) = gort::run(|| (v.iter().sum::<i32>(), gort::current().unwrap().id()));
        assert_eq!(sum, 6);
        assert!(id2 > 1, "second run reused goroutine id {id2}");
        assert!(gort::current().is_none());
    }) else {
        return;
    };
    out.assert_success();
}

#[test]
fn current_is_none_on_plain_threads_and_names_goroutines() {
    assert!(gort::current().is_none(), "current() on the test thread");
    assert!(std::thread::spawn(|| gort::current().is_none()).join().or_panic(), "current() on a std thread");
    with_timeout("current", 60, || {
        let h = gort::Builder::new()
            .name("named".into())
            .spawn(|| {
                let g = gort::current().unwrap();
                (g.id(), g.name().map(String::from))
            })
            .unwrap();
        let hid = h.id();
        let (id, name) = h.join().or_panic();
        assert_eq!(id, hid, "JoinHandle::id differs from current().id()");
        assert_eq!(name.as_deref(), Some("named"));
        let (a, b) = (gort::spawn(|| gort::current().unwrap().id()), gort::spawn(|| gort::current().unwrap().id()));
        let (a, b) = (a.join().or_panic(), b.join().or_panic());
        assert_ne!(a, b, "two goroutines share an id");
        assert!(gort::spawn(|| gort::current().unwrap().name().is_none()).join().or_panic());
    });
}

#[test]
fn num_goroutine_counts_live_goroutines() {
    static RELEASE: AtomicBool = AtomicBool::new(false);
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    const N: usize = 100;
    let Some(out) = in_child("num_goroutine_counts_live_goroutines", &[], || {
        assert_eq!(gort::num_goroutine(), 0, "a fresh process has goroutines");
        let handles: Vec<_> = (0..N)
            .map(|_| {
                gort::spawn(|| {
                    STARTED.fetch_add(1, Ordering::SeqCst);
                    assert!(spin_until(60, || RELEASE.load(Ordering::SeqCst)), "never released");
                })
            })
            .collect();
        // Started or not, all N exist.
        assert_eq!(gort::num_goroutine(), N);
        assert!(eventually(60, || STARTED.load(Ordering::SeqCst) == N), "not all goroutines started");
        assert_eq!(gort::num_goroutine(), N);
        // Counted inside a goroutine too (itself included).
        assert_eq!(gort::spawn(gort::num_goroutine).join().or_panic(), N + 1);
        RELEASE.store(true, Ordering::SeqCst);
        for h in handles {
            h.join().or_panic();
        }
        assert!(
            eventually(60, || gort::num_goroutine() == 0),
            "num_goroutine() is {} after every goroutine exited",
            gort::num_goroutine()
        );
    }) else {
        return;
    };
    out.assert_success();
}

#[test]
fn goroutines_started_from_many_std_threads() {
    const THREADS: usize = 8;
    const PER: u64 = 2000;
    let total = with_timeout("spawn from std threads", 120, || {
        let barrier = Arc::new(Barrier::new(THREADS));
        let (tx, rx) = mpsc::channel::<u64>();
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let barrier = barrier.clone();
                let tx = tx.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut handles = Vec::new();
                    for i in 0..PER {
                        if i % 2 == 0 {
                            handles.push(gort::spawn(move || t as u64 * PER + i));
                        } else {
                            let tx = tx.clone();
                            gort::go(move || tx.send(t as u64 * PER + i).unwrap());
                        }
                    }
                    handles.into_iter().map(|h| h.join().or_panic()).sum::<u64>()
                })
            })
            .collect();
        drop(tx);
        let joined: u64 = threads.into_iter().map(|t| t.join().or_panic()).sum();
        let sent: u64 = rx.iter().sum();
        joined + sent
    });
    let n = THREADS as u64 * PER;
    assert_eq!(total, n * (n - 1) / 2);
}

struct Counted(u32);
static LOCAL_DROPS: AtomicUsize = AtomicUsize::new(0);
static LOCAL_DROP_SUM: AtomicU64 = AtomicU64::new(0);
impl Drop for Counted {
    fn drop(&mut self) {
        LOCAL_DROPS.fetch_add(1, Ordering::SeqCst);
        LOCAL_DROP_SUM.fetch_add(self.0 as u64, Ordering::SeqCst);
    }
}

gort::local! {
    static VALUE: std::cell::Cell<u32> = std::cell::Cell::new(0);
    static DROPPED_AT_EXIT: std::cell::RefCell<Option<Counted>> = std::cell::RefCell::new(None);
}

#[test]
fn local_values_are_per_goroutine_and_dropped_at_exit() {
    const N: u32 = 50;
    with_timeout("gort::local!", 60, || {
        let handles: Vec<_> = (1..=N)
            .map(|i| {
                gort::spawn(move || {
                    assert_eq!(VALUE.with(|v| v.get()), 0, "a fresh goroutine saw another's value");
                    VALUE.with(|v| v.set(i));
                    DROPPED_AT_EXIT.with(|d| *d.borrow_mut() = Some(Counted(i)));
                    // Other goroutines (some on this thread) set theirs meanwhile.
                    for _ in 0..10 {
                        gort::gosched();
                        assert_eq!(VALUE.with(|v| v.get()), i, "goroutine-local value changed under us");
                    }
                    gort::spawn(move || VALUE.with(|v| v.get())).join().or_panic()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().or_panic(), 0, "a child goroutine inherited its parent's local");
        }
        // The values are dropped as each goroutine exits (that may be just
        // after its joiner woke).
        assert!(
            eventually(30, || LOCAL_DROPS.load(Ordering::SeqCst) == N as usize),
            "{} of {N} goroutine-local values dropped",
            LOCAL_DROPS.load(Ordering::SeqCst)
        );
        assert_eq!(LOCAL_DROP_SUM.load(Ordering::SeqCst), (N * (N + 1) / 2) as u64);
    });
    // On a plain thread, a local is per thread.
    VALUE.with(|v| v.set(77));
    assert_eq!(std::thread::spawn(|| VALUE.with(|v| v.get())).join().or_panic(), 0);
    assert_eq!(VALUE.with(|v| v.get()), 77);
}
