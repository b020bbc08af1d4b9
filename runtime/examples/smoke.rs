fn main() {
    let t = std::time::Instant::now();
    let r = gort::run(|| {
        let hs: Vec<_> = (0..100_000u64).map(|i| gort::spawn(move || i)).collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    println!("sum {r} in {:?}", t.elapsed());
    let t = std::time::Instant::now();
    fn chain(n: u32) -> u32 { if n == 0 { 0 } else { gort::spawn(move || chain(n - 1)).join().unwrap() + 1 } }
    let r = gort::run(|| chain(100_000));
    println!("chain {r} in {:?} maps {}", t.elapsed(), std::fs::read_to_string("/proc/self/maps").unwrap().lines().count());
    println!("goroutines {}", gort::num_goroutine());
}
