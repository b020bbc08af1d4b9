fn main() {
    let arg = std::env::args().nth(1).unwrap_or_default();
    match arg.as_str() {
        "panic" => gort::run(|| {
            gort::go(|| panic!("boom"));
            std::thread::sleep(std::time::Duration::from_secs(2));
        }),
        "overflow" => gort::run(|| {
            fn rec(n: u64) -> u64 {
                let a = [n; 64];
                std::hint::black_box(&a);
                rec(n + 1) + a[3]
            }
            gort::Builder::new().name("deep".into()).spawn(|| rec(0)).unwrap().join().unwrap();
        }),
        "goexit" => gort::run(|| gort::goexit()),
        _ => {
            let t = std::time::Instant::now();
            let r = gort::run(|| {
                let hs: Vec<_> = (0..100_000u64).map(|i| gort::spawn(move || i)).collect();
                hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
            });
            println!("sum {r} in {:?}", t.elapsed());
            let t = std::time::Instant::now();
            fn chain(n: u32) -> u32 {
                if n == 0 {
                    0
                } else {
                    gort::spawn(move || chain(n - 1)).join().unwrap() + 1
                }
            }
            let r = gort::run(|| chain(100_000));
            println!(
                "chain {r} in {:?} maps {}",
                t.elapsed(),
                std::fs::read_to_string("/proc/self/maps").unwrap().lines().count()
            );
            println!("goroutines {}", gort::num_goroutine());
        }
    }
}
