//! Scheduling order and GOMAXPROCS. Every test here changes GOMAXPROCS, a
//! process-wide setting, so each runs its body in a child process.

mod common;

use common::OrPanic;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::in_child;

/// With one P, two goroutines that yield only at `gosched` take turns.
///
/// Why this holds: a yielding started goroutine goes to the tail of its
/// home queue, and once both have started the run queue is empty, so the
/// M alternates between the two queued goroutines. Before both have
/// started, the scheduler's "home queue first one time in 31" rule may
/// run the first one twice before the second starts, so strict
/// alternation is asserted from the point where both have run.
#[test]
fn gosched_alternates_two_goroutines_on_one_p() {
    const ROUNDS: usize = 20;
    let Some(out) = in_child("gosched_alternates_two_goroutines_on_one_p", &[], || {
        let prev = gort::gomaxprocs(1);
        assert_eq!(prev, gort::num_cpu().min(1024), "default GOMAXPROCS is not the CPU count");
        assert_eq!(gort::gomaxprocs(0), 1);
        let log = Arc::new(Mutex::new(Vec::new()));
        gort::run(|| {
            let hs: Vec<_> = ['A', 'B']
                .into_iter()
                .map(|id| {
                    let log = log.clone();
                    gort::spawn(move || {
                        for _ in 0..ROUNDS {
                            log.lock().unwrap().push(id);
                            gort::gosched();
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().or_panic();
            }
        });
        let log: String = log.lock().unwrap().iter().collect();
        println!("log {log}");
        assert_eq!(log.len(), 2 * ROUNDS);
        assert_eq!(log.matches('A').count(), ROUNDS);
        let first = log.chars().next().unwrap();
        // Both have run from here on...
        let both = log.find(|c| c != first).unwrap();
        // ...until one of them has finished.
        let a_done = log.char_indices().filter(|&(_, c)| c == 'A').nth(ROUNDS - 1).unwrap().0;
        let b_done = log.char_indices().filter(|&(_, c)| c == 'B').nth(ROUNDS - 1).unwrap().0;
        let end = a_done.min(b_done);
        let window = &log.as_bytes()[both - 1..=end];
        assert!(
            window.windows(2).all(|w| w[0] != w[1]),
            "with one P, goroutines yielding with gosched did not alternate: {log} (checked {}..={end})",
            both - 1
        );
        // Only the start-up rule may delay the second goroutine, once.
        assert!(both <= 2, "the second goroutine started only after {both} turns of the first: {log}");
    }) else {
        return;
    };
    out.assert_success();
}

/// `GODEBUG=schedtrace=10`: sysmon prints Go's summary line of the
/// scheduler every 10 ms, field for field; with `scheddetail=1` the summary
/// gains the stop-the-world fields and is followed by a line per P and per
/// thread (M).
#[test]
fn godebug_schedtrace_prints_the_scheduler_every_period() {
    for godebug in ["schedtrace=10", "schedtrace=10,scheddetail=1"] {
        let Some(out) = in_child(
            "godebug_schedtrace_prints_the_scheduler_every_period",
            &[("GOMAXPROCS", "2"), ("GODEBUG", godebug)],
            || {
                gort::run(|| {
                    let hs: Vec<_> = (0..4)
                        .map(|_| {
                            gort::spawn(|| {
                                let end = std::time::Instant::now() + std::time::Duration::from_millis(120);
                                while std::time::Instant::now() < end {
                                    gort::gosched();
                                }
                            })
                        })
                        .collect();
                    for h in hs {
                        h.join().or_panic();
                    }
                })
            },
        ) else {
            return;
        };
        out.assert_success();
        let lines: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("SCHED ")).collect();
        assert!(lines.len() >= 3, "{godebug}: fewer than 3 SCHED lines in 120 ms:\n{}", out.dump());
        // Go: "SCHED 12ms: gomaxprocs=2 idleprocs=0 threads=3 spinningthreads=0
        // needspinning=0 idlethreads=1 runqueue=0 [ 0 0 ] schedticks=[ 5 7 ]".
        let names =
            ["gomaxprocs", "idleprocs", "threads", "spinningthreads", "needspinning", "idlethreads", "runqueue"];
        for l in &lines {
            let mut w = l.split(' ');
            assert_eq!(w.next(), Some("SCHED"));
            let ms = w.next().unwrap_or_default();
            assert!(ms.strip_suffix("ms:").is_some_and(|n| n.parse::<u64>().is_ok()), "{godebug}: bad time in {l:?}");
            for name in names {
                let f = w.next().unwrap_or_default();
                let v = f.strip_prefix(name).and_then(|f| f.strip_prefix('=')).unwrap_or("x");
                assert!(v.parse::<u64>().is_ok(), "{godebug}: expected {name}=N, found {f:?} in {l:?}");
            }
            assert!(l.contains(" gomaxprocs=2 "), "{l:?}");
            let rest: Vec<&str> = w.collect();
            if godebug.contains("scheddetail") {
                assert!(rest[0].starts_with("gcwaiting=") && rest[1].starts_with("stopwait="), "{l:?}");
            } else {
                // Two Ps: "[ 0 0 ] schedticks=[ 5 7 ]".
                assert_eq!(rest.len(), 8, "{l:?}");
                assert_eq!((rest[0], rest[3], rest[4], rest[7]), ("[", "]", "schedticks=[", "]"), "{l:?}");
            }
        }
        let detail = out.stderr.lines().any(|l| l.starts_with("  P1: status="))
            && out.stderr.lines().any(|l| l.starts_with("  M0: p="));
        assert_eq!(detail, godebug.contains("scheddetail"), "{godebug}: per-P and per-M lines:\n{}", out.dump());
    }
}

/// From a goroutine, resizes between 2 and 3 Ps until `done` reaches
/// `workers`, calling `pause` after each resize; returns how many it made.
/// A watchdog thread ends the process (exit code 3) if no resize finishes
/// for 20 s: a lost P hangs the next stop-the-world for ever, and the
/// runtime's report of the scheduler's state is then in the output.
fn resize_until(done: &AtomicU64, workers: u64, pause: impl Fn()) -> u64 {
    let resizes = Arc::new(AtomicU64::new(0));
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watchdog = {
        let (resizes, running) = (resizes.clone(), running.clone());
        std::thread::spawn(move || {
            let mut last = (0, std::time::Instant::now());
            while running.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(100));
                let n = resizes.load(Ordering::SeqCst);
                if n != last.0 {
                    last = (n, std::time::Instant::now());
                } else if last.1.elapsed() > std::time::Duration::from_secs(20) {
                    eprintln!("no resize finished for 20 s after {n}: a P was lost");
                    std::process::exit(3);
                }
            }
        })
    };
    while done.load(Ordering::SeqCst) < workers {
        let n = 2 + resizes.load(Ordering::SeqCst) % 2;
        gort::gomaxprocs(n as usize);
        resizes.fetch_add(1, Ordering::SeqCst);
        pause();
    }
    running.store(false, Ordering::SeqCst);
    gort::syscall(move || watchdog.join()).unwrap();
    resizes.load(Ordering::SeqCst)
}

/// Stop-the-world while blocking-pool threads ready goroutines on threads
/// that are going to sleep or waking up: no P is lost on the way. A
/// readier that saw a thread without a P just as it took one used to hand
/// it a second P, which then stayed Running with no thread; the next
/// stop-the-world waited for it for ever (here a resize, as in Go's
/// `GOMAXPROCS`). Also a thread queued for a P while it put itself on the
/// idle list was handed two. A watchdog turns a stuck resize into a
/// failure after 20 s, with the runtime's report of the scheduler's state.
#[test]
fn resizes_while_syscalls_ready_goroutines_lose_no_p() {
    const WORKERS: u64 = 6;
    const CALLS: u64 = 1000;
    let Some(out) = in_child("resizes_while_syscalls_ready_goroutines_lose_no_p", &[("GOMAXPROCS", "2")], || {
        let done = Arc::new(AtomicU64::new(0));
        gort::run(|| {
            let hs: Vec<_> = (0..WORKERS)
                .map(|_| {
                    let done = done.clone();
                    gort::spawn(move || {
                        let mut sum = 0;
                        for i in 0..CALLS {
                            // Long enough that the thread gives up
                            // waiting for the goroutine and parks.
                            sum += gort::syscall(|| {
                                std::thread::sleep(std::time::Duration::from_micros(i % 5 * 25));
                                i
                            });
                        }
                        done.fetch_add(1, Ordering::SeqCst);
                        sum
                    })
                })
                .collect();
            let resizes = resize_until(&done, WORKERS, || gort::syscall(|| ()));
            for h in hs {
                assert_eq!(h.join().or_panic(), CALLS * (CALLS - 1) / 2);
            }
            println!("{resizes} resizes");
        });
    }) else {
        return;
    };
    out.assert_success();
}

/// As above, with the other ways a thread loses and regains a P: locked
/// goroutines whose inline syscalls sysmon retakes the P from, and timers
/// that wake sleeping goroutines (run by a thread without a P, or another
/// P's). Resizes go on until every goroutine is done; none may hang.
#[test]
fn resizes_while_timers_and_locked_syscalls_lose_no_p() {
    const LOCKED: u64 = 3;
    const PLAIN: u64 = 4;
    const ROUNDS: u64 = 400;
    let Some(out) = in_child("resizes_while_timers_and_locked_syscalls_lose_no_p", &[("GOMAXPROCS", "2")], || {
        let done = Arc::new(AtomicU64::new(0));
        gort::run(|| {
            let us = std::time::Duration::from_micros;
            let mut hs = Vec::new();
            for k in 0..LOCKED + PLAIN {
                let done = done.clone();
                let b = if k < LOCKED { gort::Builder::new().locked() } else { gort::Builder::new() };
                hs.push(
                    b.spawn(move || {
                        for i in 0..ROUNDS {
                            gort::syscall(|| std::thread::sleep(us(i % 4 * 30)));
                            gort::time::sleep(us(i % 3 * 40));
                        }
                        done.fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap(),
                );
            }
            let resizes = resize_until(&done, LOCKED + PLAIN, || gort::time::sleep(us(100)));
            for h in hs {
                h.join().or_panic();
            }
            println!("{resizes} resizes");
        });
    }) else {
        return;
    };
    out.assert_success();
}

/// `gomaxprocs(n)` returns the previous setting; resizing up and down
/// while goroutines run (and block in joins and syscalls) loses none of
/// them, and started goroutines keep their threads through the resizes.
#[test]
fn gomaxprocs_resizes_while_goroutines_run() {
    const WORKERS: usize = 32;
    const ITERS: u64 = 300;
    let Some(out) = in_child("gomaxprocs_resizes_while_goroutines_run", &[("GOMAXPROCS", "3")], || {
        assert_eq!(gort::gomaxprocs(0), 3, "GOMAXPROCS=3 in the environment was not honoured");
        let done = Arc::new(AtomicU64::new(0));
        let total = gort::run(|| {
            let hs: Vec<_> = (0..WORKERS as u64)
                .map(|k| {
                    let done = done.clone();
                    gort::spawn(move || {
                        let t = std::thread::current().id();
                        let mut sum = 0u64;
                        for i in 0..ITERS {
                            sum += match i % 4 {
                                0 => gort::spawn(move || i).join().or_panic(),
                                1 => {
                                    gort::gosched();
                                    i
                                }
                                2 => gort::syscall(|| {
                                    std::thread::sleep(std::time::Duration::from_micros(200));
                                    i
                                }),
                                _ => {
                                    gort::preempt_point();
                                    i
                                }
                            };
                            assert_eq!(std::thread::current().id(), t, "worker {k} changed threads");
                        }
                        done.fetch_add(1, Ordering::SeqCst);
                        sum
                    })
                })
                .collect();
            // Resize from a goroutine, over and over until the workers are done.
            let mut expect = 3;
            let mut resizes = 0;
            while resizes < 6 || done.load(Ordering::SeqCst) < WORKERS as u64 {
                let n = [1, 4, 2, 1, 3, 2][resizes % 6];
                assert_eq!(gort::gomaxprocs(n), expect, "gomaxprocs({n}) did not return the previous value");
                expect = n;
                assert_eq!(gort::gomaxprocs(0), n);
                resizes += 1;
                gort::syscall(|| std::thread::sleep(std::time::Duration::from_millis(1)));
            }
            assert_eq!(gort::gomaxprocs(2), expect);
            println!("{resizes} resizes while the workers ran");
            hs.into_iter().map(|h| h.join().or_panic()).sum::<u64>()
        });
        assert_eq!(done.load(Ordering::SeqCst), WORKERS as u64);
        assert_eq!(total, WORKERS as u64 * ITERS * (ITERS - 1) / 2);
        // From a plain thread too; the same value is a no-op.
        assert_eq!(gort::gomaxprocs(4), 2);
        assert_eq!(gort::gomaxprocs(4), 4);
        // Values above 1024 are capped.
        assert_eq!(gort::gomaxprocs(5000), 4);
        assert_eq!(gort::gomaxprocs(0), 1024);
        assert_eq!(gort::gomaxprocs(2), 1024);
        // The runtime still works after all that.
        let hs: Vec<_> = (0..100u64).map(|i| gort::spawn(move || i)).collect();
        assert_eq!(hs.into_iter().map(|h| h.join().or_panic()).sum::<u64>(), 4950);
    }) else {
        return;
    };
    out.assert_success();
}

/// Shrinking to one P while two goroutines spin (yielding) on different
/// threads: both keep running, sharing the remaining P.
#[test]
fn shrinking_gomaxprocs_keeps_started_goroutines_running() {
    let Some(out) = in_child("shrinking_gomaxprocs_keeps_started_goroutines_running", &[("GOMAXPROCS", "2")], || {
        let counts: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let stop = Arc::new(AtomicU64::new(0));
        let hs: Vec<_> = (0..2)
            .map(|k| {
                let (counts, stop) = (counts.clone(), stop.clone());
                gort::spawn(move || {
                    let t = std::thread::current().id();
                    while stop.load(Ordering::SeqCst) == 0 {
                        counts[k].fetch_add(1, Ordering::SeqCst);
                        gort::preempt_point();
                        gort::gosched();
                    }
                    assert_eq!(std::thread::current().id(), t);
                })
            })
            .collect();
        assert!(
            common::eventually(60, || counts.iter().all(|c| c.load(Ordering::SeqCst) > 0)),
            "the two goroutines did not both start"
        );
        assert_eq!(gort::gomaxprocs(1), 2);
        let base = [counts[0].load(Ordering::SeqCst), counts[1].load(Ordering::SeqCst)];
        let progressed = common::eventually(60, || (0..2).all(|k| counts[k].load(Ordering::SeqCst) > base[k] + 1000));
        assert!(
            progressed,
            "after shrinking to one P, not both goroutines made progress: {base:?} -> [{}, {}]",
            counts[0].load(Ordering::SeqCst),
            counts[1].load(Ordering::SeqCst)
        );
        stop.store(1, Ordering::SeqCst);
        for h in hs {
            h.join().or_panic();
        }
    }) else {
        return;
    };
    out.assert_success();
}
