//! A short tour of gort as it stands: goroutines and the macros, joins,
//! scopes, locked threads, blocking calls, channels and `select!`,
//! goroutine-aware sync, timers, goroutine-local storage, GOMAXPROCS, and
//! the garbage-collected `Gc<T>` heap.
//!
//! Run it with `cargo run --release --example tour`.

use std::cell::Cell;

use gort::chan::Chan;
use gort::gc::{Gc, GcMutex, Trace};
use gort::select;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

gort::local! {
    /// Each goroutine counts its own steps.
    static STEPS: Cell<u32> = Cell::new(0);
}

/// A graph node on the shared heap: its neighbours may form cycles.
#[derive(Trace)]
struct City {
    name: String,
    roads: GcMutex<Vec<Gc<City>>>,
    /// Holds no handles; `skip` because `Census` does not implement Trace.
    #[trace(skip)]
    _census: Census,
}

/// Counts the cities whose memory the collector reclaimed.
static FREED: AtomicU64 = AtomicU64::new(0);
struct Census;
impl Drop for Census {
    fn drop(&mut self) {
        FREED.fetch_add(1, Ordering::Relaxed);
    }
}

/// A CPU-bound goroutine: `#[goroutine]` puts a preemption check in its
/// loop, so it yields its processor when sysmon asks (after 10 ms).
#[gort::goroutine(name = format!("collatz-{start}"))]
fn collatz_steps(start: u64) -> u64 {
    let (mut n, mut steps) = (start, 0);
    while n != 1 {
        n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
        steps += 1;
    }
    steps
}

fn send_pair(tx: Chan<(u32, u32)>, a: u32, b: u32) {
    tx.send((a, b));
}

/// One pipeline stage: squares what arrives until its input closes.
#[gort::goroutine]
fn square(input: Chan<u64>, output: Chan<u64>) {
    for n in &input {
        output.send(n * n);
    }
}

#[gort::main]
fn main() {
    let me = gort::current().expect("#[gort::main] runs main as a goroutine");
    println!(
        "gort {} on {}/{}: goroutine {} running, GOMAXPROCS={}, {} CPUs",
        gort::version(),
        gort::GOOS,
        gort::GOARCH,
        me.id(),
        gort::gomaxprocs(0),
        gort::num_cpu()
    );

    // 1. A hundred thousand goroutines, spawned and joined.
    let t = Instant::now();
    let handles: Vec<_> = (0..100_000u64).map(|i| gort::spawn(move || i * 2)).collect();
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    println!("100k goroutines spawned and joined in {:?} (sum {sum})", t.elapsed());

    // 2. Detached goroutines (Go's `go f()`), and a scope that borrows.
    let done = Arc::new(AtomicU64::new(0));
    for _ in 0..10 {
        let done = done.clone();
        gort::go(move || {
            done.fetch_add(1, Ordering::Relaxed);
        });
    }
    let words = ["stackful", "goroutines", "without", "async"];
    let lens = gort::scope(|s| {
        let hs: Vec<_> = words.iter().map(|w| s.spawn(move || w.len())).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    println!("scoped goroutines measured {words:?}: {lens:?}");

    // 3. A named goroutine with a bigger stack, and one born locked to its own thread.
    let h = gort::Builder::new()
        .name("deep-thinker".into())
        .stack_size(4 << 20)
        .spawn(|| {
            fn depth(n: u32) -> u32 {
                if n == 0 {
                    0
                } else {
                    1 + depth(n - 1)
                }
            }
            (gort::current().unwrap().name().unwrap().to_string(), depth(10_000))
        })
        .unwrap();
    let (name, d) = h.join().unwrap();
    println!("goroutine {name:?} recursed {d} deep on its 4 MiB stack");
    let locked = gort::Builder::new().locked().spawn(|| std::thread::current().name().map(String::from)).unwrap();
    println!("a locked goroutine ran on its own thread {:?}", locked.join().unwrap());

    // 4. Blocking calls through gort::syscall do not stall other goroutines.
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = ticks.clone();
        gort::spawn(move || {
            for _ in 0..1000 {
                ticks.fetch_add(1, Ordering::Relaxed);
                gort::gosched();
            }
        })
    };
    gort::syscall(|| std::thread::sleep(Duration::from_millis(20)));
    ticker.join().unwrap();
    println!("while we slept 20 ms in a syscall, another goroutine ticked {} times", ticks.load(Ordering::Relaxed));

    // 5. Goroutine-local storage.
    let hs: Vec<_> = (1..=3u32)
        .map(|n| {
            gort::spawn(move || {
                for _ in 0..n {
                    STEPS.with(|s| s.set(s.get() + 1));
                    gort::gosched();
                }
                STEPS.with(|s| s.get())
            })
        })
        .collect();
    let steps: Vec<u32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    println!("goroutine-local counters: {steps:?}");

    // 6. GOMAXPROCS can change at run time (the world stops briefly).
    let prev = gort::gomaxprocs(1);
    let one = gort::spawn(|| gort::gomaxprocs(0)).join().unwrap();
    gort::gomaxprocs(prev);
    println!("GOMAXPROCS {prev} -> {one} -> {}", gort::gomaxprocs(0));

    // 7. The macros: a `#[goroutine]` call returns a JoinHandle, and
    //    `go!` evaluates the function's arguments now, in order (Go's rule).
    let handles: Vec<_> = [27u64, 97, 871].into_iter().map(collatz_steps).collect();
    let steps: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    println!("#[goroutine] Collatz steps for 27, 97, 871: {steps:?}");
    let pairs = Chan::new(1);
    let mut counter = 0;
    let mut next = || {
        counter += 1;
        counter
    };
    gort::go!(send_pair(pairs.clone(), next(), next()));
    println!("go! evaluated next(), next() in the caller: the goroutine sent {:?}", pairs.recv().unwrap());

    // 8. A pipeline: a generator, three squaring stages fanned out, and a
    //    sum fanned in, with `select!` giving up on a slow channel.
    let (numbers, squares) = (Chan::new(8), Chan::new(8));
    let stages: Vec<_> = (0..3).map(|_| square(numbers.clone(), squares.clone())).collect();
    let gen = numbers.clone();
    gort::go!(move || {
        (1..=1000u64).for_each(|n| gen.send(n));
        gen.close();
    });
    let closer = squares.clone();
    gort::go!(move || {
        stages.into_iter().for_each(|s| s.join().unwrap());
        closer.close();
    });
    let total: u64 = squares.iter().sum();
    println!("pipeline: sum of squares 1..=1000 = {total}");
    let never: Chan<u64> = Chan::new(0);
    let t = Instant::now();
    select! {
        recv(never) -> v => println!("impossible: {v:?}"),
        default(Duration::from_millis(10)) => println!("select! timed out after {:?}", t.elapsed()),
    }

    // 9. gort::sync: a WaitGroup and a Mutex that park goroutines, not threads.
    let wg = Arc::new(gort::sync::WaitGroup::new());
    let hits = Arc::new(gort::sync::Mutex::new(0u32));
    for _ in 0..100 {
        wg.add(1);
        let (wg, hits) = (wg.clone(), hits.clone());
        gort::go(move || {
            *hits.lock() += 1;
            wg.done();
        });
    }
    wg.wait();
    println!("100 goroutines counted {} under a gort::sync::Mutex", *hits.lock());

    // 10. The Gc<T> heap: goroutines share a graph with cycles; once it is
    // unreachable, the concurrent collector frees it.
    let city = |name: &str| Gc::new(City { name: name.into(), roads: GcMutex::new(Vec::new()), _census: Census });
    let (a, b, c) = (city("Ardmore"), city("Bexley"), city("Cray"));
    for (x, y) in [(&a, &b), (&b, &c), (&c, &a)] {
        x.roads.lock().push(y.clone());
        y.roads.lock().push(x.clone());
    }
    let walkers: Vec<_> = (0..4)
        .map(|i| {
            let start = if i % 2 == 0 { a.clone() } else { c.clone() };
            gort::spawn(move || {
                let mut here = start;
                for step in 0..1000 {
                    let next = here.roads.lock()[step % 2].clone();
                    here = next;
                }
                here.name.clone()
            })
        })
        .collect();
    let ends: Vec<String> = walkers.into_iter().map(|w| w.join().unwrap()).collect();
    println!("four goroutines walked a Gc graph with cycles and stopped at {ends:?}");
    drop((a, b, c));
    gort::gc();
    println!("after gort::gc(), {} of the 3 unreachable cities are freed", FREED.load(Ordering::Relaxed));

    while done.load(Ordering::Relaxed) < 10 {
        gort::gosched();
    }
    println!("all 10 detached goroutines ran; {} goroutine(s) left", gort::num_goroutine());
}
