//! gort's variant of every benchmark (see the crate docs for the protocol).
//!
//! A row whose gort feature is missing returns `Outcome::NotYet`. The
//! `cfg`s `gort_chan`, `gort_select`, `gort_mutex`, `gort_waitgroup` and
//! `gort_gc` are set by `build.rs` when gort's sources have the feature, so a row turns on
//! by itself once its feature lands; adding a row is one function here plus
//! its line in `BENCHES`.
//!
//! The scheduling rows also run as `<bench>_migratable`: every goroutine of
//! the program (the driver included) is spawned with
//! `Builder::migratable()`, Go's free migration, so the price of homing
//! started goroutines on their thread is visible.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(gort_chan)]
use gort::chan::Chan;
use gort_bench::*;

const BENCHES: &[Bench] = &[
    ("spawn_join", |n| spawn_join(n, false)),
    ("spawn_join_migratable", |n| spawn_join(n, true)),
    ("seq_spawn", |n| seq_spawn(n, false)),
    ("seq_spawn_migratable", |n| seq_spawn(n, true)),
    ("ping_pong", |n| ping_pong(n, false, false)),
    ("ping_pong_migratable", |n| ping_pong(n, true, false)),
    ("ping_pong_cross", |n| ping_pong(n, false, true)),
    ("ping_pong_cross_migratable", |n| ping_pong(n, true, true)),
    ("dispatcher", |n| dispatcher(n, false)),
    ("dispatcher_migratable", |n| dispatcher(n, true)),
    ("syscall", |n| syscall(n, false)),
    ("syscall_migratable", |n| syscall(n, true)),
    ("chan_buf_1x1", |n| chan_buf(n, 1)),
    ("chan_buf_4x4", |n| chan_buf(n, 4)),
    ("select4", select4),
    ("gosched2", |n| gosched(n, 2, false)),
    ("gosched2_migratable", |n| gosched(n, 2, true)),
    ("gosched100", |n| gosched(n, 100, false)),
    ("gosched100_migratable", |n| gosched(n, 100, true)),
    ("mutex8", mutex8),
    ("waitgroup", waitgroup),
    ("sleep100k", sleep100k),
    ("sieve", sieve),
    ("parked1m", parked1m),
    ("binary_trees", binary_trees),
    ("gc_stall", gc_stall),
    ("gc_clone_drop", gc_clone_drop),
    ("gc_mark", gc_mark),
];

fn main() {
    main_with(BENCHES)
}

fn builder(migratable: bool) -> gort::Builder {
    if migratable {
        // SAFETY: the benchmark bodies keep no thread-bound state (no
        // thread-locals, no `!Send` values) across blocking calls; the
        // thread ids they read are plain integers compared right away.
        unsafe { gort::Builder::new().migratable() }
    } else {
        gort::Builder::new()
    }
}

/// Runs `f` in gort, in a driver goroutine started with the variant's
/// builder (so a migratable run migrates both ends of every exchange).
fn drive<F>(migratable: bool, f: F) -> Outcome
where
    F: FnOnce() -> Outcome + Send + 'static,
{
    gort::run(move || builder(migratable).spawn(f).expect("spawn driver").join().expect("driver panicked"))
}

fn spawn_join(n: u64, mig: bool) -> Outcome {
    drive(mig, move || {
        let t = Instant::now();
        let hs: Vec<_> = (0..n).map(|i| builder(mig).spawn(move || black_box(i)).unwrap()).collect();
        for h in hs {
            black_box(h.join().unwrap());
        }
        Outcome::one(ns_per(t.elapsed(), n), "ns/op")
    })
}

fn seq_spawn(n: u64, mig: bool) -> Outcome {
    drive(mig, move || {
        let t = Instant::now();
        for i in 0..n {
            black_box(builder(mig).spawn(move || black_box(i)).unwrap().join().unwrap());
        }
        Outcome::one(ns_per(t.elapsed(), n), "ns/op")
    })
}

/// Unbuffered ping-pong between the driver and an echo goroutine. With
/// `cross`, the driver spins (without yielding) until another thread has
/// started the echo goroutine, so the two are homed on different threads.
#[cfg(gort_chan)]
fn ping_pong(n: u64, mig: bool, cross: bool) -> Outcome {
    drive(mig, move || {
        let (ping, pong) = (Chan::<u64>::new(0), Chan::<u64>::new(0));
        let (ping2, pong2) = (ping.clone(), pong.clone());
        let tid = Arc::new(AtomicI64::new(0));
        let tid2 = tid.clone();
        let echo = builder(mig)
            .spawn(move || {
                tid2.store(gettid(), SeqCst);
                while let Some(v) = ping2.recv() {
                    pong2.send(v);
                }
            })
            .unwrap();
        if cross {
            let me = gettid();
            let t0 = Instant::now();
            loop {
                match tid.load(SeqCst) {
                    0 if t0.elapsed() > Duration::from_secs(2) => {
                        return Outcome::Na("no other thread started the echo goroutine");
                    }
                    0 => std::hint::spin_loop(),
                    t if t == me => return Outcome::Na("echo goroutine started on the driver's thread"),
                    _ => break,
                }
            }
        }
        let t = Instant::now();
        for i in 0..n {
            ping.send(i);
            black_box(pong.recv());
        }
        let el = t.elapsed();
        ping.close();
        echo.join().unwrap();
        Outcome::one(ns_per(el, n), "ns/op")
    })
}

#[cfg(not(gort_chan))]
fn ping_pong(_: u64, _: bool, _: bool) -> Outcome {
    let _ = (AtomicI64::new(0), Duration::ZERO);
    Outcome::NotYet
}

/// A dispatcher receives jobs one at a time and starts one CPU-bound
/// handler goroutine per job. With channels the jobs come from a producer
/// goroutine over an unbuffered channel (as in Go); before channels, the
/// dispatcher blocks between spawns by joining a short goroutine that
/// "produces" the job.
fn dispatcher(n: u64, mig: bool) -> Outcome {
    drive(mig, move || {
        let cpu0 = process_cpu();
        let t = Instant::now();
        let mut hs = Vec::with_capacity(n as usize);
        #[cfg(gort_chan)]
        {
            let jobs = Chan::<u64>::new(0);
            let tx = jobs.clone();
            builder(mig)
                .go(move || {
                    for i in 0..n {
                        tx.send(i);
                    }
                    tx.close();
                })
                .unwrap();
            for j in &jobs {
                hs.push(builder(mig).spawn(move || work(j, DISPATCH_WORK)).unwrap());
            }
        }
        #[cfg(not(gort_chan))]
        for i in 0..n {
            let j = builder(mig).spawn(move || i).unwrap().join().unwrap();
            hs.push(builder(mig).spawn(move || work(j, DISPATCH_WORK)).unwrap());
        }
        for h in hs {
            black_box(h.join().unwrap());
        }
        dispatcher_rows(n, t.elapsed(), process_cpu() - cpu0, procs())
    })
}

fn syscall(n: u64, mig: bool) -> Outcome {
    drive(mig, move || {
        let t = Instant::now();
        for _ in 0..n {
            black_box(gort::syscall(getpid_syscall));
        }
        Outcome::one(ns_per(t.elapsed(), n), "ns/op")
    })
}

/// `k` producers and `k` consumers over one channel of capacity 128.
#[cfg(gort_chan)]
fn chan_buf(n: u64, k: u64) -> Outcome {
    drive(false, move || {
        let ch = Chan::<u64>::new(128);
        let per = n / k;
        let t = Instant::now();
        let cons: Vec<_> = (0..k)
            .map(|_| {
                let c = ch.clone();
                gort::spawn(move || c.iter().map(black_box).count() as u64)
            })
            .collect();
        let prods: Vec<_> = (0..k)
            .map(|_| {
                let c = ch.clone();
                gort::spawn(move || {
                    for i in 0..per {
                        c.send(i);
                    }
                })
            })
            .collect();
        for h in prods {
            h.join().unwrap();
        }
        ch.close();
        let got: u64 = cons.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(got, per * k);
        Outcome::one(ns_per(t.elapsed(), per * k), "ns/msg")
    })
}

#[cfg(not(gort_chan))]
fn chan_buf(_: u64, _: u64) -> Outcome {
    Outcome::NotYet
}

/// One consumer selecting over 4 channels (capacity 128), each fed by
/// its own producer.
#[cfg(all(gort_chan, gort_select))]
fn select4(n: u64) -> Outcome {
    drive(false, move || {
        let per = n / 4;
        let chans: Vec<Chan<u64>> = (0..4).map(|_| Chan::new(128)).collect();
        let t = Instant::now();
        for c in &chans {
            let c = c.clone();
            gort::go(move || {
                for i in 0..per {
                    c.send(i);
                }
            });
        }
        let (c0, c1, c2, c3) = (&chans[0], &chans[1], &chans[2], &chans[3]);
        for _ in 0..per * 4 {
            gort::select! {
                recv(c0) -> v => { black_box(v); },
                recv(c1) -> v => { black_box(v); },
                recv(c2) -> v => { black_box(v); },
                recv(c3) -> v => { black_box(v); },
            }
        }
        Outcome::one(ns_per(t.elapsed(), per * 4), "ns/op")
    })
}

#[cfg(not(all(gort_chan, gort_select)))]
fn select4(_: u64) -> Outcome {
    Outcome::NotYet
}

/// `k` goroutines calling `gosched` `n / k` times each.
fn gosched(n: u64, k: u64, mig: bool) -> Outcome {
    drive(mig, move || {
        let per = n / k;
        let t = Instant::now();
        let hs: Vec<_> = (0..k)
            .map(|_| {
                builder(mig)
                    .spawn(move || {
                        for _ in 0..per {
                            gort::gosched();
                        }
                    })
                    .unwrap()
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        Outcome::one(ns_per(t.elapsed(), per * k), "ns/op")
    })
}

/// 8 goroutines incrementing one `Mutex<u64>`, `n / 8` times each.
#[cfg(gort_mutex)]
fn mutex8(n: u64) -> Outcome {
    drive(false, move || {
        let per = n / 8;
        let mu = Arc::new(gort::sync::Mutex::new(0u64));
        let t = Instant::now();
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let mu = mu.clone();
                gort::spawn(move || {
                    for _ in 0..per {
                        *mu.lock() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let el = t.elapsed();
        assert_eq!(*mu.lock(), per * 8);
        Outcome::one(ns_per(el, per * 8), "ns/op")
    })
}

#[cfg(not(gort_mutex))]
fn mutex8(_: u64) -> Outcome {
    Outcome::NotYet
}

/// Fan-in: `n` goroutines each call `done` on one WaitGroup; the driver
/// waits.
#[cfg(gort_waitgroup)]
fn waitgroup(n: u64) -> Outcome {
    drive(false, move || {
        let wg = Arc::new(gort::sync::WaitGroup::new());
        let t = Instant::now();
        wg.add(n as _);
        for _ in 0..n {
            let wg = wg.clone();
            gort::go(move || wg.done());
        }
        wg.wait();
        Outcome::one(ns_per(t.elapsed(), n), "ns/op")
    })
}

#[cfg(not(gort_waitgroup))]
fn waitgroup(_: u64) -> Outcome {
    Outcome::NotYet
}

/// `n` goroutines each sleeping 1 ms: total time and wake-up lateness.
fn sleep100k(n: u64) -> Outcome {
    drive(false, move || {
        const D: Duration = Duration::from_millis(1);
        let late: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
        let t = Instant::now();
        let hs: Vec<_> = (0..n as usize)
            .map(|i| {
                let late = late.clone();
                gort::spawn(move || {
                    let s = Instant::now();
                    gort::time::sleep(D);
                    late[i].store(s.elapsed().saturating_sub(D).as_nanos() as u64, SeqCst);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let wall = t.elapsed();
        sleep_rows(wall, late.iter().map(|a| a.load(SeqCst)).collect())
    })
}

/// The concurrent prime sieve (Go's classic): the first `n` primes.
#[cfg(gort_chan)]
fn sieve(n: u64) -> Outcome {
    drive(false, move || {
        let stop = Arc::new(AtomicBool::new(false));
        let t = Instant::now();
        let mut ch = Chan::<u64>::new(0);
        {
            let (out, stop) = (ch.clone(), stop.clone());
            gort::go(move || {
                let mut i = 2;
                while !stop.load(SeqCst) {
                    out.send(i);
                    i += 1;
                }
                out.close();
            });
        }
        let mut last = 0;
        for _ in 0..n {
            let prime = ch.recv().unwrap();
            last = prime;
            let out = Chan::new(0);
            let (inp, o) = (ch, out.clone());
            gort::go(move || {
                for v in &inp {
                    if v % prime != 0 {
                        o.send(v);
                    }
                }
                o.close();
            });
            ch = out;
        }
        let el = t.elapsed();
        // Shut the pipeline down so no goroutine is left blocked.
        stop.store(true, SeqCst);
        while ch.recv().is_some() {}
        assert!(n != 5000 || last == 48611, "the 5000th prime is 48611, got {last}");
        Outcome::one(el.as_secs_f64() * 1000.0, "ms")
    })
}

#[cfg(not(gort_chan))]
fn sieve(_: u64) -> Outcome {
    let _ = AtomicBool::new(false);
    Outcome::NotYet
}

/// Resident memory per parked goroutine: `n` goroutines park (on one
/// channel once channels exist, else each in a join of the previous one,
/// a chain ending at a goroutine that sleeps until released).
fn parked1m(n: u64) -> Outcome {
    drive(false, move || {
        let started = Arc::new(AtomicU64::new(0));
        let wait_for = |v: u64| {
            while started.load(SeqCst) != v {
                gort::time::sleep(Duration::from_millis(1));
            }
        };
        let base = rss_kib();
        #[cfg(gort_chan)]
        let release = {
            let gate = Chan::<()>::new(0);
            for _ in 0..n {
                let (g, s) = (gate.clone(), started.clone());
                gort::go(move || {
                    s.fetch_add(1, SeqCst);
                    let _ = g.recv();
                    s.fetch_sub(1, SeqCst);
                });
            }
            move || gate.close()
        };
        #[cfg(not(gort_chan))]
        let release = {
            let stop = Arc::new(AtomicBool::new(false));
            let s2 = stop.clone();
            let mut prev = gort::spawn(move || {
                while !s2.load(SeqCst) {
                    gort::time::sleep(Duration::from_millis(1));
                }
            });
            for _ in 0..n {
                let s = started.clone();
                let h = prev;
                prev = gort::spawn(move || {
                    s.fetch_add(1, SeqCst);
                    h.join().unwrap();
                    s.fetch_sub(1, SeqCst);
                });
            }
            move || {
                stop.store(true, SeqCst);
                prev.join().unwrap();
            }
        };
        wait_for(n);
        gort::time::sleep(Duration::from_millis(50));
        let kib = rss_kib().saturating_sub(base) as f64 / n as f64;
        release();
        wait_for(0);
        Outcome::one(kib, "KiB/goroutine")
    })
}

/// The GC rows on gort's shared heap (`gort::gc::Gc`), the same programs
/// as `bench_arc.rs`, `bench_dumpster.rs`, `bench_gc.rs` and Go's, run in a
/// driver goroutine as Go runs them in its main goroutine.
#[cfg(gort_gc)]
mod gc_rows {
    use std::hint::black_box;
    use std::time::Instant;

    use gort::gc::{Gc, GcMutex, Trace, Tracer};
    use gort_bench::*;

    use super::drive;

    struct Node {
        left: Option<Gc<Node>>,
        right: Option<Gc<Node>>,
    }

    // SAFETY: reports each of the node's two handles (when present) once,
    // and nothing else; the node has no `Drop` (its drop glue only drops
    // the handles).
    unsafe impl Trace for Node {
        fn trace(&self, t: &mut Tracer<'_>) {
            if let Some(l) = &self.left {
                l.trace(t);
            }
            if let Some(r) = &self.right {
                r.trace(t);
            }
        }
    }

    fn bottom_up(depth: u32) -> Gc<Node> {
        if depth == 0 {
            Gc::new(Node { left: None, right: None })
        } else {
            Gc::new(Node { left: Some(bottom_up(depth - 1)), right: Some(bottom_up(depth - 1)) })
        }
    }

    fn check(n: &Node) -> u64 {
        1 + n.left.as_ref().map_or(0, |l| check(l)) + n.right.as_ref().map_or(0, |r| check(r))
    }

    /// Binary-trees, depths 4..=max step 2, with a long-lived tree of depth
    /// `max` kept alive throughout (6.25M nodes allocated for max = 14).
    pub fn binary_trees(max: u64) -> Outcome {
        drive(false, move || {
            let max = max as u32;
            let t = Instant::now();
            let long = bottom_up(max);
            let mut nodes = 0;
            for d in tree_depths(max) {
                for _ in 0..tree_iterations(d, max) {
                    nodes += check(&bottom_up(d));
                }
            }
            nodes += check(&long);
            black_box(nodes);
            Outcome::one(t.elapsed().as_secs_f64() * 1000.0, "ms")
        })
    }

    /// The longest time one small tree took to build and check while a
    /// large tree stays alive: the longest stall the collector caused.
    pub fn gc_stall(trees: u64) -> Outcome {
        drive(false, move || {
            max_stall_us(|| bottom_up(STALL_LONG_DEPTH), trees, || check(&bottom_up(STALL_TREE_DEPTH)))
        })
    }

    /// The time of one forced collection (`gort::gc()`) of an all-live
    /// heap: `cells` cells of [`GC_MARK_KIDS`] leaves each, a cell being a
    /// `GcMutex` of a `Vec` of handles; the median of [`GC_MARK_CYCLES`]
    /// cycles. Every cycle counts, marks and walks the whole heap and
    /// frees nothing: the collector's cost per live object against Go's
    /// marking of the same program.
    pub fn gc_mark(cells: u64) -> Outcome {
        drive(false, move || {
            let heap: Vec<Gc<GcMutex<Vec<Gc<u64>>>>> = (0..cells)
                .map(|i| Gc::new(GcMutex::new((0..GC_MARK_KIDS).map(|j| Gc::new(i * GC_MARK_KIDS + j)).collect())))
                .collect();
            gort::gc();
            let mut times: Vec<f64> = (0..GC_MARK_CYCLES)
                .map(|_| {
                    let t = Instant::now();
                    gort::gc();
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            black_box(&heap);
            times.sort_by(f64::total_cmp);
            Outcome::one(times[times.len() / 2], "ms")
        })
    }

    /// `Gc::clone` + drop of one handle on one thread, no collection
    /// running: the reference-count traffic of passing handles around.
    pub fn gc_clone_drop(n: u64) -> Outcome {
        drive(false, move || {
            let g = Gc::new(Node { left: None, right: None });
            let t = Instant::now();
            for _ in 0..n {
                drop(black_box(black_box(&g).clone()));
            }
            Outcome::one(ns_per(t.elapsed(), n), "ns/op")
        })
    }
}

#[cfg(gort_gc)]
use gc_rows::{binary_trees, gc_clone_drop, gc_mark, gc_stall};

#[cfg(not(gort_gc))]
fn binary_trees(_: u64) -> Outcome {
    Outcome::NotYet
}

#[cfg(not(gort_gc))]
fn gc_stall(_: u64) -> Outcome {
    Outcome::NotYet
}

#[cfg(not(gort_gc))]
fn gc_clone_drop(_: u64) -> Outcome {
    Outcome::NotYet
}

#[cfg(not(gort_gc))]
fn gc_mark(_: u64) -> Outcome {
    Outcome::NotYet
}
