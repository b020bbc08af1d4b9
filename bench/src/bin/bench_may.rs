//! `may`'s variant (`GOMAXPROCS` workers). may's channels are unbounded,
//! so the rows that need a bounded or rendezvous channel are n/a; may
//! moves coroutines freely, so `ping_pong_cross` runs the same program as
//! `ping_pong`. Crashes (may maps each coroutine stack separately and
//! runs into the kernel's mapping limit) are recorded by `bench/run`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort_bench::*;
use may::sync::{mpmc, mpsc};

const BENCHES: &[Bench] = &[
    ("spawn_join", spawn_join),
    ("seq_spawn", seq_spawn),
    ("ping_pong", ping_pong),
    ("ping_pong_cross", ping_pong),
    ("dispatcher", dispatcher),
    ("syscall", |_| Outcome::Na("may has no hand-off for blocking calls")),
    ("chan_buf_1x1", |_| Outcome::Na("may has no bounded channel")),
    ("chan_buf_4x4", |_| Outcome::Na("may has no bounded channel")),
    ("select4", |_| Outcome::Na("may has no bounded channel")),
    ("gosched2", |n| gosched(n, 2)),
    ("gosched100", |n| gosched(n, 100)),
    ("mutex8", mutex8),
    ("waitgroup", waitgroup),
    ("sleep100k", sleep100k),
    ("sieve", |_| Outcome::Na("may has no bounded channel: the generator would run away")),
    ("parked1m", parked1m),
];

fn main() {
    may::config().set_workers(procs());
    main_with(BENCHES)
}

/// Runs `f` in a coroutine and waits for it from the main thread.
fn drive<F>(f: F) -> Outcome
where
    F: FnOnce() -> Outcome + Send + 'static,
{
    may::go!(f).join().unwrap()
}

fn spawn_join(n: u64) -> Outcome {
    drive(move || {
        let t = Instant::now();
        let hs: Vec<_> = (0..n).map(|i| may::go!(move || black_box(i))).collect();
        for h in hs {
            black_box(h.join().unwrap());
        }
        Outcome::one(ns_per(t.elapsed(), n), "ns/op")
    })
}

fn seq_spawn(n: u64) -> Outcome {
    drive(move || {
        let t = Instant::now();
        for i in 0..n {
            black_box(may::go!(move || black_box(i)).join().unwrap());
        }
        Outcome::one(ns_per(t.elapsed(), n), "ns/op")
    })
}

fn ping_pong(n: u64) -> Outcome {
    drive(move || {
        let (ping_tx, ping_rx) = mpsc::channel::<u64>();
        let (pong_tx, pong_rx) = mpsc::channel::<u64>();
        let echo = may::go!(move || {
            while let Ok(v) = ping_rx.recv() {
                pong_tx.send(v).unwrap();
            }
        });
        let t = Instant::now();
        for i in 0..n {
            ping_tx.send(i).unwrap();
            black_box(pong_rx.recv().unwrap());
        }
        let el = t.elapsed();
        drop(ping_tx);
        echo.join().unwrap();
        Outcome::one(ns_per(el, n), "ns/op")
    })
}

fn dispatcher(n: u64) -> Outcome {
    drive(move || {
        let cpu0 = process_cpu();
        let t = Instant::now();
        let (tx, rx) = mpsc::channel::<u64>();
        may::go!(move || {
            for i in 0..n {
                tx.send(i).unwrap();
            }
        });
        let mut hs = Vec::with_capacity(n as usize);
        while let Ok(j) = rx.recv() {
            hs.push(may::go!(move || work(j, DISPATCH_WORK)));
        }
        for h in hs {
            black_box(h.join().unwrap());
        }
        dispatcher_rows(n, t.elapsed(), process_cpu() - cpu0, procs())
    })
}

fn gosched(n: u64, k: u64) -> Outcome {
    drive(move || {
        let per = n / k;
        let t = Instant::now();
        let hs: Vec<_> = (0..k)
            .map(|_| {
                may::go!(move || {
                    for _ in 0..per {
                        may::coroutine::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        Outcome::one(ns_per(t.elapsed(), per * k), "ns/op")
    })
}

fn mutex8(n: u64) -> Outcome {
    drive(move || {
        let per = n / 8;
        let mu = Arc::new(may::sync::Mutex::new(0u64));
        let t = Instant::now();
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let mu = mu.clone();
                may::go!(move || {
                    for _ in 0..per {
                        *mu.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let el = t.elapsed();
        assert_eq!(*mu.lock().unwrap(), per * 8);
        Outcome::one(ns_per(el, per * 8), "ns/op")
    })
}

/// may's WaitGroup is crossbeam's: each coroutine holds a clone and drops
/// it when done.
fn waitgroup(n: u64) -> Outcome {
    drive(move || {
        let wg = may::sync::WaitGroup::new();
        let t = Instant::now();
        for _ in 0..n {
            let wg = wg.clone();
            may::go!(move || drop(wg));
        }
        wg.wait();
        Outcome::one(ns_per(t.elapsed(), n), "ns/op")
    })
}

fn sleep100k(n: u64) -> Outcome {
    drive(move || {
        const D: Duration = Duration::from_millis(1);
        let t = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|_| {
                may::go!(move || {
                    let s = Instant::now();
                    may::coroutine::sleep(D);
                    s.elapsed().saturating_sub(D).as_nanos() as u64
                })
            })
            .collect();
        let late = hs.into_iter().map(|h| h.join().unwrap()).collect();
        sleep_rows(t.elapsed(), late)
    })
}

fn parked1m(n: u64) -> Outcome {
    drive(move || {
        let started = Arc::new(AtomicU64::new(0));
        let (gate_tx, gate_rx) = mpmc::channel::<()>();
        let base = rss_kib();
        for _ in 0..n {
            let (s, g) = (started.clone(), gate_rx.clone());
            may::go!(move || {
                s.fetch_add(1, SeqCst);
                let _ = g.recv();
                s.fetch_sub(1, SeqCst);
            });
        }
        while started.load(SeqCst) != n {
            may::coroutine::sleep(Duration::from_millis(1));
        }
        may::coroutine::sleep(Duration::from_millis(50));
        let kib = rss_kib().saturating_sub(base) as f64 / n as f64;
        drop(gate_tx);
        while started.load(SeqCst) != 0 {
            may::coroutine::sleep(Duration::from_millis(1));
        }
        Outcome::one(kib, "KiB/goroutine")
    })
}
