//! `gort::sync` under contention, with invariant checks, from goroutines
//! and from plain OS threads.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

use gort::sync::{Cond, Mutex, Once, RwLock, WaitGroup};

type Spawn<'a> = &'a dyn Fn(Box<dyn FnOnce() + Send>);

fn goroutines(f: Box<dyn FnOnce() + Send>) {
    gort::go(f)
}

fn threads(f: Box<dyn FnOnce() + Send>) {
    std::thread::spawn(f);
}

fn panic_message(e: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = e.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("<non-string panic>")
    }
}

/// Mutex: a counter and a "holders" gauge that must never exceed 1.
fn mutex_contention(spawn: Spawn, workers: usize, iters: usize) {
    struct S {
        n: u64,
        inside: usize,
    }
    let m = Arc::new(Mutex::new(S { n: 0, inside: 0 }));
    let wg = Arc::new(WaitGroup::new());
    for _ in 0..workers {
        wg.add(1);
        let (m, wg) = (m.clone(), wg.clone());
        spawn(Box::new(move || {
            for i in 0..iters {
                let mut g = m.lock();
                g.inside += 1;
                assert_eq!(g.inside, 1, "two holders at once");
                g.n += 1;
                if i % 64 == 0 {
                    gort::gosched(); // hold it across a switch now and then
                }
                g.inside -= 1;
            }
            wg.done();
        }));
    }
    wg.wait();
    assert_eq!(m.lock().n, (workers * iters) as u64);
}

#[test]
fn mutex_under_contention_goroutines() {
    gort::run(|| mutex_contention(&goroutines, 16, 5_000));
}

#[test]
fn mutex_under_contention_threads() {
    mutex_contention(&threads, 4, 5_000);
}

/// Starvation mode: a waiter blocked behind a busy lock for more than
/// 1 ms still gets it while others keep hammering.
#[test]
fn mutex_starvation_mode_lets_waiters_in() {
    gort::run(|| {
        let m = Arc::new(Mutex::new(0u64));
        let stop = Arc::new(AtomicUsize::new(0));
        let wg = Arc::new(WaitGroup::new());
        for _ in 0..4 {
            wg.add(1);
            let (m, stop, wg) = (m.clone(), stop.clone(), wg.clone());
            gort::go(move || {
                while stop.load(Ordering::Relaxed) == 0 {
                    let mut g = m.lock();
                    *g += 1;
                    let t = std::time::Instant::now();
                    while t.elapsed() < std::time::Duration::from_micros(200) {}
                    drop(g);
                }
                wg.done();
            });
        }
        for _ in 0..20 {
            drop(m.lock());
        }
        stop.store(1, Ordering::Relaxed);
        wg.wait();
    });
}

/// RwLock: readers see a consistent pair; writers are exclusive; readers
/// and a writer are never inside together.
fn rwlock_contention(spawn: Spawn, readers: usize, writers: usize, iters: usize) {
    let l = Arc::new(RwLock::new((0u64, 0u64)));
    let active = Arc::new(AtomicI64::new(0)); // >0 readers, -1 writer
    let wg = Arc::new(WaitGroup::new());
    for _ in 0..writers {
        wg.add(1);
        let (l, active, wg) = (l.clone(), active.clone(), wg.clone());
        spawn(Box::new(move || {
            for _ in 0..iters {
                let mut g = l.write();
                assert_eq!(active.swap(-1, Ordering::SeqCst), 0, "writer with others inside");
                g.0 += 1;
                g.1 += 1;
                assert_eq!(active.swap(0, Ordering::SeqCst), -1);
            }
            wg.done();
        }));
    }
    for _ in 0..readers {
        wg.add(1);
        let (l, active, wg) = (l.clone(), active.clone(), wg.clone());
        spawn(Box::new(move || {
            for i in 0..iters {
                let g = l.read();
                assert!(active.fetch_add(1, Ordering::SeqCst) >= 0, "reader inside with a writer");
                assert_eq!(g.0, g.1, "torn read");
                if i % 128 == 0 {
                    gort::gosched();
                }
                active.fetch_sub(1, Ordering::SeqCst);
            }
            wg.done();
        }));
    }
    wg.wait();
    let g = l.read();
    assert_eq!(*g, ((writers * iters) as u64, (writers * iters) as u64));
}

#[test]
fn rwlock_under_contention_goroutines() {
    gort::run(|| rwlock_contention(&goroutines, 8, 4, 3_000));
}

#[test]
fn rwlock_under_contention_threads() {
    rwlock_contention(&threads, 3, 2, 3_000);
}

/// WaitGroup: wait returns only after every done; reusable afterwards.
fn waitgroup_rounds(spawn: Spawn, n: usize, rounds: usize) {
    let wg = Arc::new(WaitGroup::new());
    let count = Arc::new(AtomicUsize::new(0));
    for r in 1..=rounds {
        wg.add(n as isize);
        for _ in 0..n {
            let (wg, count) = (wg.clone(), count.clone());
            spawn(Box::new(move || {
                count.fetch_add(1, Ordering::SeqCst);
                wg.done();
            }));
        }
        wg.wait();
        assert_eq!(count.load(Ordering::SeqCst), r * n);
    }
}

#[test]
fn waitgroup_goroutines() {
    gort::run(|| waitgroup_rounds(&goroutines, 100, 20));
}

#[test]
fn waitgroup_threads() {
    waitgroup_rounds(&threads, 8, 5);
}

#[test]
fn waitgroup_many_waiters() {
    gort::run(|| {
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let out = Arc::new(WaitGroup::new());
        for _ in 0..50 {
            out.add(1);
            let (wg, out) = (wg.clone(), out.clone());
            gort::go(move || {
                wg.wait();
                out.done();
            });
        }
        let t = {
            let (wg, out) = (wg.clone(), out.clone());
            out.add(1);
            std::thread::spawn(move || {
                wg.wait();
                out.done();
            })
        };
        gort::gosched();
        wg.done();
        out.wait();
        t.join().unwrap();
    });
}

#[test]
fn waitgroup_negative_counter_panics() {
    let wg = WaitGroup::new();
    let e = catch_unwind(AssertUnwindSafe(|| wg.done())).unwrap_err();
    assert_eq!(panic_message(e), "sync: negative WaitGroup counter");
}

#[test]
fn waitgroup_go() {
    gort::run(|| {
        let wg = Arc::new(WaitGroup::new());
        let n = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let n = n.clone();
            wg.go(move || {
                n.fetch_add(1, Ordering::SeqCst);
            });
        }
        wg.wait();
        assert_eq!(n.load(Ordering::SeqCst), 100);
    });
}

/// Cond: a bounded queue with "not empty"/"not full" conditions; the
/// length never exceeds the bound and every item is consumed once.
fn cond_bounded_queue(spawn: Spawn, producers: usize, per: usize) {
    const CAP: usize = 4;
    struct Q {
        items: Mutex<Vec<usize>>,
        not_empty: Cond,
        not_full: Cond,
    }
    let q = Arc::new(Q { items: Mutex::new(Vec::new()), not_empty: Cond::new(), not_full: Cond::new() });
    let wg = Arc::new(WaitGroup::new());
    for p in 0..producers {
        wg.add(1);
        let (q, wg) = (q.clone(), wg.clone());
        spawn(Box::new(move || {
            for i in 0..per {
                let mut g = q.not_full.wait_while(q.items.lock(), |v| v.len() >= CAP);
                g.push(p * per + i);
                assert!(g.len() <= CAP);
                drop(g);
                q.not_empty.signal();
            }
            wg.done();
        }));
    }
    let mut seen = Vec::new();
    for _ in 0..producers * per {
        let mut g = q.not_empty.wait_while(q.items.lock(), |v| v.is_empty());
        seen.push(g.remove(0));
        drop(g);
        q.not_full.broadcast();
    }
    wg.wait();
    seen.sort_unstable();
    assert_eq!(seen, (0..producers * per).collect::<Vec<_>>());
}

#[test]
fn cond_under_contention_goroutines() {
    gort::run(|| cond_bounded_queue(&goroutines, 8, 1_000));
}

#[test]
fn cond_under_contention_threads() {
    cond_bounded_queue(&threads, 3, 500);
}

#[test]
fn once_runs_once_under_contention() {
    gort::run(|| {
        let once = Arc::new(Once::new());
        let n = Arc::new(AtomicUsize::new(0));
        let wg = Arc::new(WaitGroup::new());
        for _ in 0..50 {
            wg.add(1);
            let (once, n, wg) = (once.clone(), n.clone(), wg.clone());
            gort::go(move || {
                once.call_once(|| {
                    gort::gosched(); // others arrive while it runs
                    n.fetch_add(1, Ordering::SeqCst);
                });
                // Everyone returns only after the action completed.
                assert_eq!(n.load(Ordering::SeqCst), 1);
                wg.done();
            });
        }
        wg.wait();
        assert!(once.is_completed());
    });
}

#[test]
fn once_panic_counts_as_done() {
    let once = Once::new();
    assert!(catch_unwind(AssertUnwindSafe(|| once.call_once(|| panic!("boom")))).is_err());
    let mut ran = false;
    once.call_once(|| ran = true);
    assert!(!ran);
}

/// Goroutines and threads contending for the same mutex.
#[test]
fn mutex_goroutines_and_threads_mixed() {
    let m = Arc::new(Mutex::new(0u64));
    let ts: Vec<_> = (0..2)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    *m.lock() += 1;
                }
            })
        })
        .collect();
    gort::run(|| mutex_contention(&goroutines, 4, 2_000));
    let m2 = m.clone();
    gort::run(move || {
        let wg = Arc::new(WaitGroup::new());
        for _ in 0..4 {
            wg.add(1);
            let (m, wg) = (m2.clone(), wg.clone());
            gort::go(move || {
                for _ in 0..10_000 {
                    *m.lock() += 1;
                }
                wg.done();
            });
        }
        wg.wait();
    });
    for t in ts {
        t.join().unwrap();
    }
    assert_eq!(*m.lock(), 60_000);
}

#[test]
fn try_lock_fails_on_a_locked_mutex_and_keeps_it_locked() {
    let m = Mutex::new(1);
    let g = m.lock();
    assert!(m.try_lock().is_none());
    assert!(m.try_lock().is_none());
    drop(g);
    let g = m.try_lock().unwrap();
    assert!(m.try_lock().is_none());
    drop(g);
}
