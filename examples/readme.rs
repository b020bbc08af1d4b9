//! The example from the README, kept compiling and running.
use gort::chan::Chan;
use gort::goroutine;

/// Calling it starts a goroutine and returns a `JoinHandle<u64>`.
#[goroutine]
fn square_all(jobs: Chan<u64>, results: Chan<u64>) {
    for n in &jobs {
        results.send(n * n);
    }
}

#[gort::main]
fn main() {
    let (jobs, results) = (Chan::new(16), Chan::new(16));
    let workers: Vec<_> = (0..4).map(|_| square_all(jobs.clone(), results.clone())).collect();
    (1..=10).for_each(|n| jobs.send(n));
    jobs.close();
    workers.into_iter().for_each(|w| w.join().unwrap());
    results.close();
    println!("sum of squares 1..=10: {}", results.iter().sum::<u64>());
}
