//! Channels seen through the public API: Go's classic channel programs
//! ported to Rust, run from goroutines and from plain OS threads.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::chan::{Chan, RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};

fn panic_message(e: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = e.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("<non-string panic>")
    }
}

/// The first `n` primes by trial division (the reference).
fn primes(n: usize) -> Vec<u64> {
    let mut out = Vec::new();
    let mut k = 2u64;
    while out.len() < n {
        if out.iter().take_while(|&&p| p * p <= k).all(|&p| k % p != 0) {
            out.push(k);
        }
        k += 1;
    }
    out
}

/// Go's concurrent prime sieve (go.dev/doc/play/sieve.go): a generator
/// feeds a chain of filters, one goroutine per prime found. Closing `quit`
/// tears the chain down (each stage selects on it while sending).
fn sieve(n: usize, spawn: &dyn Fn(Box<dyn FnOnce() + Send>)) -> Vec<u64> {
    let quit = Chan::<()>::new(0);
    let mut ch = Chan::new(0);
    let (gen, q) = (ch.clone(), quit.clone());
    spawn(Box::new(move || {
        let mut i = 2u64;
        loop {
            gort::select! {
                send(gen, i) => i += 1,
                recv(q) => return,
            }
        }
    }));
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let prime = ch.recv().unwrap();
        out.push(prime);
        let next = Chan::new(0);
        let (inp, outp, q) = (ch.clone(), next.clone(), quit.clone());
        spawn(Box::new(move || loop {
            let v = gort::select! {
                recv(inp) -> v => v.unwrap(),
                recv(q) => return,
            };
            if v % prime != 0 {
                gort::select! {
                    send(outp, v) => {}
                    recv(q) => return,
                }
            }
        }));
        ch = next;
    }
    quit.close();
    out
}

#[test]
fn prime_sieve_first_1000_goroutines() {
    let got = gort::run(|| sieve(1000, &|f| gort::go(f)));
    assert_eq!(got, primes(1000));
}

#[test]
fn prime_sieve_first_100_threads() {
    let got = sieve(100, &|f| {
        std::thread::spawn(f);
    });
    assert_eq!(got, primes(100));
}

/// Go blog "Pipelines and cancellation": gen → fan-out to workers squaring
/// → fan-in through a merge → sum.
fn pipeline(workers: usize, n: u64, cap: usize, spawn: &dyn Fn(Box<dyn FnOnce() + Send>)) -> u64 {
    let src = Chan::new(cap);
    let s = src.sender();
    spawn(Box::new(move || {
        for i in 1..=n {
            s.send(i);
        }
        s.close();
    }));
    let merged = Chan::new(cap);
    let wg = Arc::new(gort::sync::WaitGroup::new());
    for _ in 0..workers {
        wg.add(1);
        let (rx, tx, wg) = (src.receiver(), merged.sender(), wg.clone());
        spawn(Box::new(move || {
            for v in &rx {
                tx.send(v * v);
            }
            wg.done();
        }));
    }
    let m = merged.clone();
    spawn(Box::new(move || {
        wg.wait();
        m.close();
    }));
    merged.iter().sum()
}

#[test]
fn pipeline_fan_out_fan_in_goroutines() {
    let n = 10_000u64;
    let want = n * (n + 1) * (2 * n + 1) / 6;
    for cap in [0, 1, 64] {
        assert_eq!(gort::run(|| pipeline(8, n, cap, &|f| gort::go(f))), want);
    }
}

#[test]
fn pipeline_fan_out_fan_in_threads() {
    let n = 2_000u64;
    let want = n * (n + 1) * (2 * n + 1) / 6;
    for cap in [0, 16] {
        assert_eq!(
            pipeline(4, n, cap, &|f| {
                std::thread::spawn(f);
            }),
            want
        );
    }
}

/// Several senders, one receiver: each sender's values arrive in the order
/// sent, and nothing is lost or duplicated.
fn fifo_per_sender(cap: usize, senders: usize, per: usize, spawn: &dyn Fn(Box<dyn FnOnce() + Send>)) {
    let ch = Chan::new(cap);
    for id in 0..senders {
        let tx = ch.sender();
        spawn(Box::new(move || {
            for i in 0..per {
                tx.send((id, i));
            }
        }));
    }
    let mut next = vec![0; senders];
    for _ in 0..senders * per {
        let (id, i) = ch.recv().unwrap();
        assert_eq!(i, next[id], "sender {id} out of order");
        next[id] += 1;
    }
    assert!(next.iter().all(|&n| n == per));
    assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn fifo_order_per_sender_goroutines() {
    gort::run(|| {
        for cap in [0, 1, 7, 100] {
            fifo_per_sender(cap, 8, 2_000, &|f| gort::go(f));
        }
    });
}

#[test]
fn fifo_order_per_sender_threads() {
    for cap in [0, 3] {
        fifo_per_sender(cap, 4, 1_000, &|f| {
            std::thread::spawn(f);
        });
    }
}

/// A goroutine-friendly sleep that needs no timer API: a receive that
/// times out.
fn nap(d: Duration) {
    let _ = Chan::<()>::new(0).recv_timeout(d);
}

/// Ten senders, each started once the previous one is about to send and
/// has had a moment to block; returns the order they are served in.
fn blocked_senders_order(spawn: &dyn Fn(Box<dyn FnOnce() + Send>)) -> Vec<i32> {
    let ch = Chan::new(0);
    let about_to_send = Arc::new(AtomicUsize::new(0));
    for i in 0..10 {
        let (tx, ready) = (ch.clone(), about_to_send.clone());
        spawn(Box::new(move || {
            ready.store(i as usize + 1, Ordering::SeqCst);
            tx.send(i)
        }));
        // Let it block before starting the next one. Starting a thread or
        // goroutine can take longer than any fixed nap on a loaded
        // machine, so wait until it runs; from there to its place in the
        // queue is a few instructions that do not block.
        let deadline = Instant::now() + Duration::from_secs(60);
        while about_to_send.load(Ordering::SeqCst) != i as usize + 1 {
            assert!(Instant::now() < deadline, "sender {i} did not start within 60 s");
            nap(Duration::from_millis(1));
        }
        nap(Duration::from_millis(5));
    }
    (0..10).map(|_| ch.recv().unwrap()).collect()
}

/// Blocked senders are served first come, first served (Go's `sendq`).
///
/// A sender the OS stops for more than the nap between flagging itself
/// and queueing may still be overtaken by the next one, so a run out of
/// order is tried again, up to three times: a queue that is not FIFO
/// (LIFO, or no order) is out of order on every try.
fn blocked_senders_fifo(spawn: &dyn Fn(Box<dyn FnOnce() + Send>)) {
    let want: Vec<i32> = (0..10).collect();
    for attempt in 1..=3 {
        let got = blocked_senders_order(spawn);
        if got == want {
            return;
        }
        assert!(attempt < 3, "blocked senders were not served in arrival order in 3 tries, last: {got:?}");
        eprintln!("blocked senders served out of order on try {attempt}: {got:?}; trying again");
    }
}

#[test]
fn blocked_senders_are_fifo_goroutines() {
    gort::run(|| blocked_senders_fifo(&|f| gort::go(f)));
}

#[test]
fn blocked_senders_are_fifo_threads() {
    blocked_senders_fifo(&|f| {
        std::thread::spawn(f);
    });
}

/// Non-blocking operations in every state (there is no nil channel).
fn nonblocking_states() {
    // Unbuffered, nobody waiting: both directions would block.
    let u = Chan::<i32>::new(0);
    assert_eq!(u.try_send(1), Err(TrySendError::Full(1)));
    assert_eq!(u.try_recv(), Err(TryRecvError::Empty));
    // Buffered: empty, partly full, full.
    let b = Chan::new(2);
    assert_eq!(b.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(b.try_send(1), Ok(()));
    assert_eq!((b.len(), b.cap()), (1, 2));
    assert_eq!(b.try_send(2), Ok(()));
    assert_eq!(b.try_send(3), Err(TrySendError::Full(3)));
    gort::select! {
        send(b, 4) => panic!("sent to a full channel"),
        default => {}
    }
    // Closed with values: receives drain, then report closed.
    b.close();
    assert!(b.is_closed());
    assert_eq!(b.try_send(5), Err(TrySendError::Closed(5)));
    assert_eq!(b.try_recv(), Ok(1));
    gort::select! {
        recv(b) -> v => assert_eq!(v, Some(2)),
        default => panic!("buffered value not received"),
    }
    assert_eq!(b.try_recv(), Err(TryRecvError::Closed));
    gort::select! {
        recv(b) -> v => assert_eq!(v, None),
        default => panic!("closed channel not ready"),
    }
    assert_eq!(b.recv(), None);
    // Non-blocking select send on a closed channel panics, as in Go.
    let e = catch_unwind(AssertUnwindSafe(|| {
        gort::select! {
            send(b, 6) => {}
            default => {}
        }
    }))
    .unwrap_err();
    assert_eq!(panic_message(e), "send on closed channel");
    // Unbuffered closed.
    u.close();
    assert_eq!(u.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(u.try_send(7), Err(TrySendError::Closed(7)));
}

#[test]
fn nonblocking_operations_every_state_goroutine() {
    gort::run(nonblocking_states);
}

#[test]
fn nonblocking_operations_every_state_thread() {
    nonblocking_states();
}

#[test]
fn send_and_close_panics_with_go_wording() {
    let ch = Chan::new(1);
    ch.close();
    let e = catch_unwind(AssertUnwindSafe(|| ch.send(1))).unwrap_err();
    assert_eq!(panic_message(e), "send on closed channel");
    let e = catch_unwind(AssertUnwindSafe(|| ch.close())).unwrap_err();
    assert_eq!(panic_message(e), "close of closed channel");
}

/// `close` wakes every blocked receiver (with `None`) and makes every
/// blocked sender panic.
fn close_wakes_all(n: usize, goroutines: bool) {
    let recv_ch = Chan::<u32>::new(0);
    let send_ch = Chan::<u32>::new(0);
    let woken = Arc::new(AtomicUsize::new(0));
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for i in 0..n {
        let (r, w) = (recv_ch.clone(), woken.clone());
        let rf = move || {
            assert_eq!(r.recv(), None);
            w.fetch_add(1, Ordering::SeqCst);
        };
        let s = send_ch.clone();
        let sf = move || s.send(i as u32);
        if goroutines {
            receivers.push(Err(gort::spawn(rf)));
            senders.push(Err(gort::spawn(sf)));
        } else {
            receivers.push(Ok(std::thread::spawn(rf)));
            senders.push(Ok(std::thread::spawn(sf)));
        }
    }
    // Give them time to block (not needed for correctness: closing first
    // gives the same results).
    std::thread::sleep(Duration::from_millis(50));
    recv_ch.close();
    send_ch.close();
    for h in receivers {
        match h {
            Ok(t) => t.join().unwrap(),
            Err(g) => g.join().unwrap(),
        }
    }
    assert_eq!(woken.load(Ordering::SeqCst), n);
    for h in senders {
        let e = match h {
            Ok(t) => t.join().unwrap_err(),
            Err(g) => g.join().unwrap_err(),
        };
        assert_eq!(panic_message(e), "send on closed channel");
    }
}

#[test]
fn close_wakes_all_receivers_and_panics_senders_goroutines() {
    close_wakes_all(200, true);
}

#[test]
fn close_wakes_all_receivers_and_panics_senders_threads() {
    close_wakes_all(16, false);
}

/// Many senders and receivers on one channel: the multiset of received
/// values equals the multiset sent.
fn conservation(cap: usize, producers: usize, consumers: usize, per: u64, spawn: &dyn Fn(Box<dyn FnOnce() + Send>)) {
    let ch = Chan::new(cap);
    let results = Chan::new(consumers);
    let wg = Arc::new(gort::sync::WaitGroup::new());
    for p in 0..producers as u64 {
        wg.add(1);
        let (tx, wg) = (ch.clone(), wg.clone());
        spawn(Box::new(move || {
            for i in 0..per {
                tx.send(p * per + i);
            }
            wg.done();
        }));
    }
    for _ in 0..consumers {
        let (rx, res) = (ch.clone(), results.clone());
        spawn(Box::new(move || {
            let mut seen = Vec::new();
            for v in &rx {
                seen.push(v);
            }
            res.send(seen);
        }));
    }
    wg.wait();
    ch.close();
    let mut all: Vec<u64> = (0..consumers).flat_map(|_| results.recv().unwrap()).collect();
    all.sort_unstable();
    assert_eq!(all, (0..producers as u64 * per).collect::<Vec<_>>());
}

#[test]
fn values_never_lost_or_duplicated_goroutines() {
    gort::run(|| {
        for cap in [0, 1, 16] {
            conservation(cap, 6, 6, 3_000, &|f| gort::go(f));
        }
    });
}

#[test]
fn values_never_lost_or_duplicated_threads() {
    for cap in [0, 4] {
        conservation(cap, 3, 3, 2_000, &|f| {
            std::thread::spawn(f);
        });
    }
}

#[test]
fn values_never_lost_goroutines_and_threads_mixed() {
    let ch = Chan::new(0);
    let tx = ch.clone();
    let t = std::thread::spawn(move || {
        for i in 0..5_000u64 {
            tx.send(i);
        }
    });
    let sum = gort::run(|| (0..5_000).map(|_| ch.recv().unwrap()).sum::<u64>());
    t.join().unwrap();
    assert_eq!(sum, 5_000 * 4_999 / 2);
}

fn timeouts() {
    let ch = Chan::<u8>::new(0);
    let t0 = Instant::now();
    assert_eq!(ch.recv_timeout(Duration::from_millis(30)), Err(RecvTimeoutError::Timeout));
    assert!(t0.elapsed() >= Duration::from_millis(30));
    assert_eq!(ch.send_timeout(9, Duration::from_millis(10)), Err(SendTimeoutError::Timeout(9)));
    // Completed before the deadline: the timer is disarmed.
    let tx = ch.clone();
    let h = gort::spawn(move || tx.send(3));
    assert_eq!(ch.recv_timeout(Duration::from_secs(10)), Ok(3));
    h.join().unwrap();
    let rx = ch.clone();
    let h = gort::spawn(move || rx.recv());
    assert_eq!(ch.send_timeout(4, Duration::from_secs(10)), Ok(()));
    assert_eq!(h.join().unwrap(), Some(4));
    // Timeouts racing real sends: every value arrives exactly once.
    let tx = ch.clone();
    let h = gort::spawn(move || {
        for i in 0..200u8 {
            let mut v = i;
            loop {
                match tx.send_timeout(v, Duration::from_micros(50)) {
                    Ok(()) => break,
                    Err(e) => v = e.into_inner(),
                }
            }
        }
    });
    let mut got = Vec::new();
    while got.len() < 200 {
        if let Ok(v) = ch.recv_timeout(Duration::from_micros(70)) {
            got.push(v);
        }
    }
    h.join().unwrap();
    assert_eq!(got, (0..200).collect::<Vec<u8>>());
    ch.close();
    assert_eq!(ch.recv_timeout(Duration::from_secs(1)), Err(RecvTimeoutError::Closed));
    assert_eq!(ch.send_timeout(1, Duration::from_secs(1)), Err(SendTimeoutError::Closed(1)));
}

#[test]
fn timeouts_goroutine() {
    gort::run(timeouts);
}

#[test]
fn timeouts_thread() {
    timeouts();
}

#[test]
fn directional_views_and_iteration() {
    let ch = Chan::new(3);
    let (tx, rx) = (ch.sender(), ch.receiver());
    assert_eq!(tx, ch.clone().into());
    tx.send(1);
    tx.send(2);
    tx.close();
    let mut v = Vec::new();
    for x in &rx {
        v.push(x);
    }
    assert_eq!(v, [1, 2]);
    assert_eq!(rx.into_iter().count(), 0);
    assert!(format!("{ch:?}").contains("closed"));
}

/// Go's `for range` over a channel with a struct value: drop glue runs for
/// buffered values that are never received.
#[test]
fn buffered_values_dropped_with_channel() {
    let counter = Arc::new(());
    let ch = Chan::new(4);
    for _ in 0..4 {
        ch.send(counter.clone());
    }
    assert_eq!(Arc::strong_count(&counter), 5);
    drop(ch);
    assert_eq!(Arc::strong_count(&counter), 1);
}

/// A million goroutines parked on one channel, released by `close`, all
/// complete. Runs in a child process so its memory goes away with it.
#[test]
fn million_goroutines_released_by_close() {
    if cfg!(debug_assertions) {
        eprintln!("million_goroutines_released_by_close: skipped in debug builds (run with --release)");
        return;
    }
    if std::env::var_os("GORT_MILLION_CHILD").is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args(["--exact", "million_goroutines_released_by_close", "--nocapture", "--test-threads=1"])
            .env("GORT_MILLION_CHILD", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
        assert!(stdout.contains("1000000 goroutines released") || stderr.contains("1000000 goroutines released"));
        return;
    }
    const N: usize = 1_000_000;
    let done = gort::run(|| {
        let gate = Chan::<()>::new(0);
        let wg = Arc::new(gort::sync::WaitGroup::new());
        let count = Arc::new(AtomicUsize::new(0));
        wg.add(N as isize);
        let t0 = Instant::now();
        for _ in 0..N {
            let (g, wg, c) = (gate.clone(), wg.clone(), count.clone());
            gort::Builder::new()
                .stack_size(16 << 10)
                .go(move || {
                    assert_eq!(g.recv(), None);
                    c.fetch_add(1, Ordering::Relaxed);
                    wg.done();
                })
                .unwrap();
        }
        let spawned = t0.elapsed();
        // Let them all block.
        while count.load(Ordering::Relaxed) == 0 && gate.is_empty() {
            gort::gosched();
            if t0.elapsed() > spawned + Duration::from_millis(200) {
                break;
            }
        }
        gate.close();
        wg.wait();
        eprintln!("spawned in {spawned:?}, all done in {:?}", t0.elapsed());
        count.load(Ordering::Relaxed)
    });
    assert_eq!(done, N);
    println!("{N} goroutines released");
}
