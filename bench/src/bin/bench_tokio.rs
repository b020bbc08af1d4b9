//! tokio's variant (multi-thread runtime, `GOMAXPROCS` workers). tokio has
//! no rendezvous channel: its unbuffered rows use `mpsc::channel(1)`, the
//! smallest bound. tokio moves tasks freely, so `ping_pong_cross` runs the
//! same program as `ping_pong`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort_bench::*;
use tokio::sync::{mpsc, Notify, Semaphore};

const BENCHES: &[Bench] = &[
    ("spawn_join", spawn_join),
    ("seq_spawn", seq_spawn),
    ("ping_pong", ping_pong),
    ("ping_pong_cross", ping_pong),
    ("dispatcher", dispatcher),
    ("syscall", syscall),
    ("chan_buf_1x1", chan_buf_1x1),
    ("chan_buf_4x4", |_| Outcome::Na("tokio has no multi-consumer channel")),
    ("select4", select4),
    ("gosched2", |n| gosched(n, 2)),
    ("gosched100", |n| gosched(n, 100)),
    ("mutex8", mutex8),
    ("waitgroup", waitgroup),
    ("sleep100k", sleep100k),
    ("sieve", sieve),
    ("parked1m", parked1m),
];

fn main() {
    main_with(BENCHES)
}

/// Runs `f` as a task on a multi-thread runtime with `procs()` workers.
fn drive<F>(f: F) -> Outcome
where
    F: std::future::Future<Output = Outcome> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(procs()).enable_all().build().unwrap();
    let out = rt.block_on(async { tokio::spawn(f).await.unwrap() });
    std::mem::forget(rt);
    out
}

fn spawn_join(n: u64) -> Outcome {
    drive(async move {
        let t = Instant::now();
        let hs: Vec<_> = (0..n).map(|i| tokio::spawn(async move { black_box(i) })).collect();
        for h in hs {
            black_box(h.await.unwrap());
        }
        Outcome::one(ns_per(t.elapsed(), n), "ns/op")
    })
}

fn seq_spawn(n: u64) -> Outcome {
    drive(async move {
        let t = Instant::now();
        for i in 0..n {
            black_box(tokio::spawn(async move { black_box(i) }).await.unwrap());
        }
        Outcome::one(ns_per(t.elapsed(), n), "ns/op")
    })
}

fn ping_pong(n: u64) -> Outcome {
    drive(async move {
        let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
        let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
        let echo = tokio::spawn(async move {
            while let Some(v) = ping_rx.recv().await {
                pong_tx.send(v).await.unwrap();
            }
        });
        let t = Instant::now();
        for i in 0..n {
            ping_tx.send(i).await.unwrap();
            black_box(pong_rx.recv().await);
        }
        let el = t.elapsed();
        drop(ping_tx);
        echo.await.unwrap();
        Outcome::one(ns_per(el, n), "ns/op")
    })
}

fn dispatcher(n: u64) -> Outcome {
    drive(async move {
        let cpu0 = process_cpu();
        let t = Instant::now();
        let (tx, mut rx) = mpsc::channel::<u64>(1);
        tokio::spawn(async move {
            for i in 0..n {
                tx.send(i).await.unwrap();
            }
        });
        let mut hs = Vec::with_capacity(n as usize);
        while let Some(j) = rx.recv().await {
            hs.push(tokio::spawn(async move { work(j, DISPATCH_WORK) }));
        }
        for h in hs {
            black_box(h.await.unwrap());
        }
        dispatcher_rows(n, t.elapsed(), process_cpu() - cpu0, procs())
    })
}

fn syscall(n: u64) -> Outcome {
    drive(async move {
        let t = Instant::now();
        for _ in 0..n {
            black_box(tokio::task::spawn_blocking(getpid_syscall).await.unwrap());
        }
        Outcome::one(ns_per(t.elapsed(), n), "ns/op")
    })
}

fn chan_buf_1x1(n: u64) -> Outcome {
    drive(async move {
        let (tx, mut rx) = mpsc::channel::<u64>(128);
        let t = Instant::now();
        let cons = tokio::spawn(async move {
            let mut k = 0u64;
            while let Some(v) = rx.recv().await {
                black_box(v);
                k += 1;
            }
            k
        });
        tokio::spawn(async move {
            for i in 0..n {
                tx.send(i).await.unwrap();
            }
        })
        .await
        .unwrap();
        assert_eq!(cons.await.unwrap(), n);
        Outcome::one(ns_per(t.elapsed(), n), "ns/msg")
    })
}

fn select4(n: u64) -> Outcome {
    drive(async move {
        let per = n / 4;
        let t = Instant::now();
        let mut rxs = Vec::new();
        for _ in 0..4 {
            let (tx, rx) = mpsc::channel::<u64>(128);
            rxs.push(rx);
            tokio::spawn(async move {
                for i in 0..per {
                    tx.send(i).await.unwrap();
                }
            });
        }
        let [mut r0, mut r1, mut r2, mut r3]: [mpsc::Receiver<u64>; 4] = rxs.try_into().unwrap();
        for _ in 0..per * 4 {
            tokio::select! {
                v = r0.recv() => { black_box(v); }
                v = r1.recv() => { black_box(v); }
                v = r2.recv() => { black_box(v); }
                v = r3.recv() => { black_box(v); }
            }
        }
        Outcome::one(ns_per(t.elapsed(), per * 4), "ns/op")
    })
}

fn gosched(n: u64, k: u64) -> Outcome {
    drive(async move {
        let per = n / k;
        let t = Instant::now();
        let hs: Vec<_> = (0..k)
            .map(|_| {
                tokio::spawn(async move {
                    for _ in 0..per {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
        Outcome::one(ns_per(t.elapsed(), per * k), "ns/op")
    })
}

fn mutex8(n: u64) -> Outcome {
    drive(async move {
        let per = n / 8;
        let mu = Arc::new(tokio::sync::Mutex::new(0u64));
        let t = Instant::now();
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let mu = mu.clone();
                tokio::spawn(async move {
                    for _ in 0..per {
                        *mu.lock().await += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
        let el = t.elapsed();
        assert_eq!(*mu.lock().await, per * 8);
        Outcome::one(ns_per(el, per * 8), "ns/op")
    })
}

/// tokio has no WaitGroup: an atomic count and a `Notify` make one.
fn waitgroup(n: u64) -> Outcome {
    drive(async move {
        let wg = Arc::new((AtomicU64::new(n), Notify::new()));
        let t = Instant::now();
        for _ in 0..n {
            let wg = wg.clone();
            tokio::spawn(async move {
                if wg.0.fetch_sub(1, SeqCst) == 1 {
                    wg.1.notify_one();
                }
            });
        }
        while wg.0.load(SeqCst) != 0 {
            wg.1.notified().await;
        }
        Outcome::one(ns_per(t.elapsed(), n), "ns/op")
    })
}

fn sleep100k(n: u64) -> Outcome {
    drive(async move {
        const D: Duration = Duration::from_millis(1);
        let t = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|_| {
                tokio::spawn(async move {
                    let s = Instant::now();
                    tokio::time::sleep(D).await;
                    s.elapsed().saturating_sub(D).as_nanos() as u64
                })
            })
            .collect();
        let mut late = Vec::with_capacity(n as usize);
        for h in hs {
            late.push(h.await.unwrap());
        }
        sleep_rows(t.elapsed(), late)
    })
}

fn sieve(n: u64) -> Outcome {
    drive(async move {
        let t = Instant::now();
        let (tx, mut rx) = mpsc::channel::<u64>(1);
        tokio::spawn(async move {
            let mut i = 2;
            while tx.send(i).await.is_ok() {
                i += 1;
            }
        });
        let mut last = 0;
        for _ in 0..n {
            let prime = rx.recv().await.unwrap();
            last = prime;
            let (otx, orx) = mpsc::channel::<u64>(1);
            let mut inp = rx;
            tokio::spawn(async move {
                while let Some(v) = inp.recv().await {
                    if v % prime != 0 && otx.send(v).await.is_err() {
                        return;
                    }
                }
            });
            rx = orx;
        }
        let el = t.elapsed();
        assert!(n != 5000 || last == 48611, "the 5000th prime is 48611, got {last}");
        Outcome::one(el.as_secs_f64() * 1000.0, "ms")
    })
}

fn parked1m(n: u64) -> Outcome {
    drive(async move {
        let started = Arc::new(AtomicU64::new(0));
        let gate = Arc::new(Semaphore::new(0));
        let base = rss_kib();
        for _ in 0..n {
            let (s, g) = (started.clone(), gate.clone());
            tokio::spawn(async move {
                s.fetch_add(1, SeqCst);
                let _permit = g.acquire().await.unwrap();
                s.fetch_sub(1, SeqCst);
            });
        }
        while started.load(SeqCst) != n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let kib = rss_kib().saturating_sub(base) as f64 / n as f64;
        gate.add_permits(n as usize);
        while started.load(SeqCst) != 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Outcome::one(kib, "KiB/goroutine")
    })
}
