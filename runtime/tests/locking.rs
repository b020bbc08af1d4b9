//! `lock_os_thread` / `unlock_os_thread` and goroutines born locked
//! (`Builder::locked`).
//!
//! Whether the calling goroutine is locked is observable through
//! `gort::syscall`: a locked goroutine runs the function inline on its own
//! thread, an unlocked one on a blocking-pool thread.

mod common;

use common::OrPanic;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use common::{eventually, kernel_tid, spin_until, task_exists, with_timeout};

fn me() -> ThreadId {
    std::thread::current().id()
}

/// Whether `gort::syscall` runs inline, i.e. the goroutine is locked.
fn syscall_inline() -> bool {
    let here = me();
    gort::syscall(|| std::thread::current().id()) == here
}

#[test]
fn lock_os_thread_keeps_the_thread_across_gosched_while_others_run() {
    const OTHERS: usize = 8;
    with_timeout("lock_os_thread + gosched", 120, || {
        gort::run(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let progress = Arc::new(AtomicU64::new(0));
            let started = Arc::new(AtomicUsize::new(0));
            let others: Vec<_> = (0..OTHERS)
                .map(|_| {
                    let (stop, progress, started) = (stop.clone(), progress.clone(), started.clone());
                    gort::spawn(move || {
                        started.fetch_add(1, Ordering::SeqCst);
                        while !stop.load(Ordering::SeqCst) {
                            progress.fetch_add(1, Ordering::SeqCst);
                            gort::gosched();
                        }
                    })
                })
                .collect();
            assert!(spin_until(60, || started.load(Ordering::SeqCst) == OTHERS), "the other goroutines never started");

            gort::lock_os_thread();
            let t = me();
            // At least 1000 calls, and on until the others have made progress:
            // 1000 calls take ~70 us, and on a loaded machine the OS may not
            // run the others' thread at all in so short a window.
            let before = progress.load(Ordering::SeqCst);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let mut i = 0u64;
            while i < 1000 || (progress.load(Ordering::SeqCst) == before && std::time::Instant::now() < deadline) {
                gort::gosched();
                assert_eq!(me(), t, "a locked goroutine changed threads after {i} gosched calls");
                i += 1;
            }
            let after = progress.load(Ordering::SeqCst);
            assert!(syscall_inline(), "gort::syscall did not run inline for a locked goroutine");
            gort::unlock_os_thread();
            assert!(
                after > before,
                "no other goroutine ran during 30 s of gosched calls by a locked goroutine ({i} calls)"
            );

            stop.store(true, Ordering::SeqCst);
            for h in others {
                h.join().or_panic();
            }
        })
    });
}

#[test]
fn lock_os_thread_nests_and_extra_unlocks_are_no_ops() {
    with_timeout("lock nesting", 60, || {
        gort::spawn(|| {
            assert!(!syscall_inline(), "an unlocked goroutine ran gort::syscall inline");
            gort::lock_os_thread();
            assert!(syscall_inline(), "after lock: not locked");
            gort::lock_os_thread();
            gort::unlock_os_thread();
            assert!(syscall_inline(), "after lock, lock, unlock: no longer locked (nesting not counted)");
            gort::unlock_os_thread();
            assert!(!syscall_inline(), "after lock, lock, unlock, unlock: still locked");
            // Unlocking more than locked does nothing...
            gort::unlock_os_thread();
            gort::unlock_os_thread();
            assert!(!syscall_inline(), "extra unlocks locked the goroutine");
            // ...and in particular is not remembered as a debt.
            gort::lock_os_thread();
            assert!(syscall_inline(), "one lock after extra unlocks did not lock");
            gort::unlock_os_thread();
            assert!(!syscall_inline(), "one unlock after extra unlocks did not unlock");
        })
        .join()
        .or_panic();
    });
    // On a plain thread both are no-ops.
    gort::lock_os_thread();
    gort::unlock_os_thread();
    gort::unlock_os_thread();
}

#[test]
fn locked_thread_admits_no_new_goroutines() {
    with_timeout("pinned M", 60, || {
        gort::spawn(|| {
            gort::lock_os_thread();
            let t = me();
            for i in 0..20 {
                let child = gort::spawn(me).join().or_panic();
                assert_ne!(child, t, "goroutine {i} spawned by a locked goroutine started on the locked thread");
            }
            assert_eq!(me(), t);
            gort::unlock_os_thread();
        })
        .join()
        .or_panic();
    });
}

#[test]
fn born_locked_goroutine_has_a_thread_of_its_own_that_exits_with_it() {
    const COMPETITORS: usize = 16;
    let (locked_tid, locked_thread, seen) = with_timeout("born locked", 120, || {
        gort::run(|| {
            let seen = Arc::new(Mutex::new(HashSet::new()));
            let done = Arc::new(AtomicBool::new(false));
            let competitors: Vec<_> = (0..COMPETITORS)
                .map(|_| {
                    let (seen, done) = (seen.clone(), done.clone());
                    gort::spawn(move || {
                        let mut mine = HashSet::new();
                        let mut i = 0u32;
                        while !done.load(Ordering::SeqCst) || i < 100 {
                            mine.insert(me());
                            match i % 3 {
                                0 => mine.insert(gort::spawn(me).join().or_panic()),
                                1 => {
                                    gort::gosched();
                                    false
                                }
                                _ => gort::syscall(|| false),
                            };
                            i += 1;
                        }
                        seen.lock().unwrap().extend(mine);
                    })
                })
                .collect();
            let h = gort::Builder::new()
                .locked()
                .name("locked".into())
                .spawn(|| {
                    let tid = kernel_tid();
                    let t = me();
                    for i in 0..1000 {
                        if i % 2 == 0 {
                            gort::gosched();
                        } else {
                            assert_eq!(gort::syscall(me), t, "syscall of a born-locked goroutine did not run inline");
                        }
                        assert_eq!(me(), t, "a born-locked goroutine changed threads");
                    }
                    let child = gort::spawn(me).join().or_panic();
                    assert_ne!(child, t, "a goroutine spawned by a born-locked one ran on the locked thread");
                    (tid, t)
                })
                .unwrap();
            let (tid, t) = h.join().or_panic();
            done.store(true, Ordering::SeqCst);
            for c in competitors {
                c.join().or_panic();
            }
            let seen = std::mem::take(&mut *seen.lock().unwrap());
            (tid, t, seen)
        })
    });
    assert!(
        !seen.contains(&locked_thread),
        "another goroutine ran on the thread of a born-locked goroutine ({} threads seen)",
        seen.len()
    );
    assert!(
        eventually(30, || !task_exists(locked_tid)),
        "thread {locked_tid} of a born-locked goroutine still exists 30 s after the goroutine exited"
    );
}

#[test]
fn goroutine_exiting_locked_retires_its_thread() {
    // Started from a plain thread so that no goroutine of this test is
    // homed on the same thread; other tests' goroutines may be, and the
    // thread retires once they have exited too.
    let tid = with_timeout("exit while locked", 60, || {
        gort::spawn(|| {
            gort::lock_os_thread();
            gort::lock_os_thread();
            kernel_tid()
        })
        .join()
        .or_panic()
    });
    assert!(
        eventually(60, || !task_exists(tid)),
        "thread {tid} of a goroutine that exited locked still exists 60 s later"
    );
}
