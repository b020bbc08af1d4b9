use std::time::{Duration, Instant};
fn main() {
    let t = Instant::now();
    let late = gort::run(|| {
        let hs: Vec<_> = (0..100_000u64).map(|i| gort::spawn(move || {
            let d = Duration::from_micros(1000 + (i % 7) * 100);
            let s = Instant::now();
            gort::time::sleep(d);
            s.elapsed() - d
        })).collect();
        let mut v: Vec<Duration> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        v.sort();
        (v[v.len()/2], v[v.len()*99/100])
    });
    println!("100k sleepers in {:?}, lateness p50 {:?} p99 {:?}", t.elapsed(), late.0, late.1);
    let t = Instant::now();
    gort::run(|| for _ in 0..100 { gort::time::sleep(Duration::from_micros(100)); });
    println!("100 sequential 100us sleeps: {:?}", t.elapsed());
    let (tx, rx) = std::sync::mpsc::channel();
    let _t = gort::time::after_func(Duration::from_millis(5), move || tx.send(1).unwrap());
    println!("after_func: {}", rx.recv().unwrap());
}
