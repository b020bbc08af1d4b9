//! A short tour of gort as it stands: goroutines, joins, scopes, locked
//! threads, blocking calls, goroutine-local storage and GOMAXPROCS.
//!
//! Run it with `cargo run --release --example tour`.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

gort::local! {
    /// Each goroutine counts its own steps.
    static STEPS: Cell<u32> = Cell::new(0);
}

fn main() {
    gort::run(|| {
        let me = gort::current().expect("run starts a goroutine");
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

        while done.load(Ordering::Relaxed) < 10 {
            gort::gosched();
        }
        println!("all 10 detached goroutines ran; {} goroutine(s) left", gort::num_goroutine());
    });
}
