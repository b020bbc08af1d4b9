//! `gort::syscall`: blocking calls that do not stall the scheduler.

mod common;

use common::OrPanic;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use common::{in_child, spin_until, with_timeout};

fn me() -> ThreadId {
    std::thread::current().id()
}

#[test]
fn syscall_runs_on_a_pool_thread_and_borrows_the_stack() {
    with_timeout("syscall on the pool", 60, || {
        gort::spawn(|| {
            let t = me();
            let mut data = vec![1u64, 2, 3];
            let (pool_thread, name) = gort::syscall(|| {
                data.push(4);
                (me(), std::thread::current().name().map(String::from))
            });
            assert_ne!(pool_thread, t, "an unlocked goroutine's syscall ran inline");
            assert_eq!(name.as_deref(), Some("gort-syscall"));
            assert_eq!(data, [1, 2, 3, 4], "the syscall's write to a borrowed local was lost");
            assert_eq!(me(), t, "the goroutine came back on another thread");
        })
        .join()
        .or_panic();
    });
    // Outside a goroutine the function runs inline.
    assert_eq!(gort::syscall(me), me());
}

#[test]
fn syscall_panic_resumes_in_the_goroutine() {
    with_timeout("syscall panic", 60, || {
        for locked in [false, true] {
            let b = if locked { gort::Builder::new().locked() } else { gort::Builder::new() };
            let msg = b
                .spawn(|| {
                    let t = me();
                    let n = std::hint::black_box(7);
                    let r = std::panic::catch_unwind(|| gort::syscall(move || -> u32 { panic!("syscall boom {n}") }));
                    assert_eq!(me(), t);
                    // The goroutine goes on working after the panic.
                    assert_eq!(gort::syscall(|| 5), 5);
                    r.unwrap_err().downcast_ref::<String>().cloned()
                })
                .unwrap()
                .join()
                .or_panic();
            assert_eq!(msg.as_deref(), Some("syscall boom 7"), "locked: {locked}");
        }
    });
}

/// 64 goroutines block in syscalls that can only complete once all 64
/// are in progress at the same time: the pool grows to run them all.
#[test]
fn many_syscalls_run_concurrently() {
    const N: usize = 64;
    with_timeout("64 concurrent syscalls (a hang means they did not all run at once)", 60, || {
        let barrier = Arc::new(Barrier::new(N));
        let hs: Vec<_> = (0..N)
            .map(|i| {
                let barrier = barrier.clone();
                gort::spawn(move || {
                    gort::syscall(|| {
                        barrier.wait();
                        i
                    })
                })
            })
            .collect();
        let sum: usize = hs.into_iter().map(|h| h.join().or_panic()).sum();
        assert_eq!(sum, N * (N - 1) / 2);
    });
}

#[test]
fn num_cgo_call_counts_syscalls() {
    let Some(out) = in_child("num_cgo_call_counts_syscalls", &[], || {
        assert_eq!(gort::num_cgo_call(), 0);
        gort::syscall(|| ()); // from a plain thread: counted too
        gort::run(|| {
            for _ in 0..10 {
                gort::syscall(|| ());
            }
        });
        assert_eq!(gort::num_cgo_call(), 11);
    }) else {
        return;
    };
    out.assert_success();
}

// ---------------------------------------------------------------------------
// With one P, a goroutine in a syscall does not stop another from running.
//
// The syscall's function first announces itself, sleeps 100 ms, then waits
// (up to 10 s) for a flag that only the *other* goroutine sets, after it
// has seen the announcement. If the scheduler were stalled while the
// syscall runs, the other goroutine could never set the flag and the wait
// would time out: an ordering check, not a timing one.

static IN_SYSCALL: AtomicBool = AtomicBool::new(false);
static SYSCALL_DONE: AtomicBool = AtomicBool::new(false);
static FLAG: AtomicBool = AtomicBool::new(false);
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Returns whether the flag was seen and the thread the function ran on.
fn blocking_call() -> (bool, ThreadId) {
    let r = gort::syscall(|| {
        IN_SYSCALL.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !FLAG.load(Ordering::SeqCst) {
            if Instant::now() >= deadline {
                return (false, me());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        (true, me())
    });
    SYSCALL_DONE.store(true, Ordering::SeqCst);
    r
}

fn other() {
    assert!(spin_until(30, || IN_SYSCALL.load(Ordering::SeqCst)), "the syscall never started");
    for _ in 0..10_000 {
        COUNTER.fetch_add(1, Ordering::Relaxed);
        gort::preempt_point();
    }
    assert!(!SYSCALL_DONE.load(Ordering::SeqCst), "the syscall ended before the other goroutine set the flag");
    FLAG.store(true, Ordering::SeqCst);
}

fn check(saw_flag: bool, how: &str) {
    assert!(
        saw_flag,
        "with GOMAXPROCS=1, a goroutine in gort::syscall ({how}) stopped the other goroutine from running: \
         it did not set the flag within 10 s (counter at {})",
        COUNTER.load(Ordering::SeqCst)
    );
    assert_eq!(COUNTER.load(Ordering::SeqCst), 10_000);
}

#[test]
fn syscall_does_not_stall_the_p() {
    let Some(out) = in_child("syscall_does_not_stall_the_p", &[], || {
        gort::gomaxprocs(1);
        gort::run(|| {
            let s = gort::spawn(|| {
                let t = me();
                let (saw, ran_on) = blocking_call();
                assert_ne!(ran_on, t, "an unlocked goroutine's syscall ran inline");
                saw
            });
            let o = gort::spawn(other);
            let saw = s.join().or_panic();
            o.join().or_panic();
            check(saw, "unlocked, pool thread");
        });
    }) else {
        return;
    };
    out.assert_success();
}

#[test]
fn born_locked_syscall_does_not_stall_the_p() {
    let Some(out) = in_child("born_locked_syscall_does_not_stall_the_p", &[], || {
        gort::gomaxprocs(1);
        gort::run(|| {
            let s = gort::Builder::new()
                .locked()
                .spawn(|| {
                    let t = me();
                    let (saw, ran_on) = blocking_call();
                    assert_eq!(ran_on, t, "a born-locked goroutine's syscall did not run inline");
                    saw
                })
                .unwrap();
            let o = gort::spawn(other);
            let saw = s.join().or_panic();
            o.join().or_panic();
            check(saw, "born locked, inline: sysmon must hand the P off");
        });
    }) else {
        return;
    };
    out.assert_success();
}

#[test]
fn lock_os_thread_syscall_does_not_stall_the_p() {
    let Some(out) = in_child("lock_os_thread_syscall_does_not_stall_the_p", &[], || {
        gort::gomaxprocs(1);
        gort::run(|| {
            let saw = gort::spawn(|| {
                gort::lock_os_thread();
                let t = me();
                // Not started yet: it may start on another thread once
                // sysmon hands our P off.
                let o = gort::spawn(other);
                let (saw, ran_on) = blocking_call();
                assert_eq!(ran_on, t, "a locked goroutine's syscall did not run inline");
                gort::unlock_os_thread();
                o.join().or_panic();
                saw
            })
            .join()
            .or_panic();
            check(saw, "lock_os_thread, inline: sysmon must hand the P off");
        });
    }) else {
        return;
    };
    out.assert_success();
}
