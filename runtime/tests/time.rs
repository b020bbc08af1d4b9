//! gort::time: sleeping goroutines cost no thread and wake in deadline
//! order; `after`, `Timer`, `Ticker` and `after_func` follow Go's rules.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gort::chan::Chan;
use gort::time::{after, after_func, sleep, Ticker, Timer};

mod common;
use common::in_child;

#[test]
fn hundred_thousand_sleepers_wake_in_deadline_order() {
    // With one P every timer lives in one heap and fires in deadline order,
    // and the woken goroutines run in the order they were readied: the
    // deadlines, in wake order, must be sorted. (With several Ps, timers
    // of different Ps may fire in either order within a scheduling round.)
    //
    // A goroutine cannot see the deadline `sleep` computes, only bound it:
    // it is at least the start time the goroutine logs just before
    // `sleep`, plus the duration, and, with one P and no scheduling point
    // in between, at most the start time the next goroutine to start logs,
    // plus the duration. The gap between the two is nanoseconds, unless the
    // OS stops the thread there: on a loaded machine, for 50 ms and more.
    // A pair woken out of order counts only if the bounds say so, with a
    // millisecond to spare.
    let Some(out) = in_child("hundred_thousand_sleepers_wake_in_deadline_order", &[("GOMAXPROCS", "1")], || {
        const N: usize = 100_000;
        // Start times, in start order.
        let starts = Arc::new(Mutex::new(Vec::with_capacity(N)));
        // (start rank, duration, wake time), in wake order.
        let log = Arc::new(Mutex::new(Vec::with_capacity(N)));
        let threads_before = std::fs::read_dir("/proc/self/task").unwrap().count();
        gort::run(|| {
            let wg = Arc::new(gort::sync::WaitGroup::new());
            for i in 0..N {
                wg.add(1);
                let (wg, starts, log) = (wg.clone(), starts.clone(), log.clone());
                gort::go(move || {
                    let d = Duration::from_micros((i % 100) as u64 * 1000 + 1000);
                    let t = Instant::now();
                    let rank = {
                        let mut s = starts.lock().unwrap();
                        s.push(t);
                        s.len() - 1
                    };
                    sleep(d);
                    let woke = Instant::now();
                    assert!(woke >= t + d, "woke early");
                    log.lock().unwrap().push((rank, d, woke));
                    wg.done();
                });
            }
            let threads_mid = std::fs::read_dir("/proc/self/task").unwrap().count();
            assert!(
                threads_mid < threads_before + 16,
                "sleeping goroutines cost threads: {threads_before} -> {threads_mid}"
            );
            wg.wait();
        });
        let (starts, log) = (starts.lock().unwrap(), log.lock().unwrap());
        assert_eq!(log.len(), N);
        // The bounds of a goroutine's deadline; the last to start has no
        // successor, and its deadline is at most when it woke.
        let bounds = |&(rank, d, woke): &(usize, Duration, Instant)| {
            (starts[rank] + d, starts.get(rank + 1).map_or(woke, |&next| next + d))
        };
        // Wake-ups follow deadlines: a few short inversions are tolerated as
        // noise; a timer heap out of order (or LIFO) inverts most wake-ups,
        // by up to the whole 100 ms spread.
        let inversions: Vec<Duration> = log
            .windows(2)
            .filter_map(|w| {
                let (first_earliest, _) = bounds(&w[0]);
                let (_, second_latest) = bounds(&w[1]);
                (first_earliest > second_latest + Duration::from_millis(1)).then(|| first_earliest - second_latest)
            })
            .collect();
        let worst = inversions.iter().max().copied().unwrap_or_default();
        assert!(
            inversions.len() < N / 20 && worst < Duration::from_millis(50),
            "{} of {N} wake-ups came before an earlier deadline's (worst by {worst:?})",
            inversions.len()
        );
    }) else {
        return;
    };
    out.assert_success();
}

#[test]
fn sleep_on_a_plain_thread_sleeps_the_thread() {
    let t = Instant::now();
    sleep(Duration::from_millis(10));
    assert!(t.elapsed() >= Duration::from_millis(10));
}

#[test]
fn after_fires_once_in_select() {
    gort::run(|| {
        let never: Chan<u8> = Chan::new(0);
        let t = Instant::now();
        let timed_out = gort::select! {
            recv(never) -> v => panic!("got {v:?}"),
            recv(after(Duration::from_millis(20))) -> at => at.unwrap() >= t + Duration::from_millis(20),
        };
        assert!(timed_out, "after fired early");
    });
}

#[test]
fn timer_stop_and_reset_leave_no_stale_value() {
    gort::run(|| {
        let t = Timer::new(Duration::from_millis(1));
        sleep(Duration::from_millis(20)); // it has fired into its channel
        assert!(!t.stop(), "stop after firing must report false");
        assert!(t.channel().try_recv().is_err(), "a stale value survived stop");
        let t = Timer::new(Duration::from_secs(3600));
        assert!(t.stop(), "stop of an active timer must report true");
        assert!(!t.reset(Duration::from_millis(5)), "reset of a stopped timer reports false");
        let got = t.channel().recv_timeout(Duration::from_secs(10));
        assert!(got.is_ok(), "reset timer never fired");
        assert!(!t.reset(Duration::from_secs(3600)), "a fired timer is not active");
        assert!(t.channel().recv_timeout(Duration::from_millis(30)).is_err(), "fired twice");
    });
}

#[test]
fn ticker_ticks_until_stopped_and_reset_changes_the_period() {
    gort::run(|| {
        let tk = Ticker::new(Duration::from_millis(2));
        let t0 = Instant::now();
        for _ in 0..5 {
            tk.channel().recv().unwrap();
        }
        assert!(t0.elapsed() >= Duration::from_millis(10));
        tk.stop();
        assert!(tk.channel().recv_timeout(Duration::from_millis(30)).is_err(), "ticked after stop");
        tk.reset(Duration::from_millis(3));
        assert!(tk.channel().recv_timeout(Duration::from_secs(10)).is_ok(), "reset ticker did not tick");
    });
    let r = std::panic::catch_unwind(|| Ticker::new(Duration::ZERO));
    let msg = r.err().and_then(|p| p.downcast_ref::<&str>().map(|s| s.to_string()));
    assert_eq!(msg.as_deref(), Some("non-positive interval for NewTicker"));
}

#[test]
fn after_func_runs_in_a_goroutine_and_stop_prevents_it() {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let _t = after_func(Duration::from_millis(1), move || {
        r.fetch_add(1, Ordering::SeqCst);
        tx.send(gort::current().map(|g| g.id())).unwrap();
    });
    assert!(rx.recv().unwrap().is_some(), "after_func's function did not run on a goroutine");
    // `stop` 20 ms before the deadline prevents the call. A thread the
    // OS holds up for those 20 ms reaches `stop` too late: then `stop`
    // must say so (false) and the function runs; try again.
    for attempt in 1..=10 {
        let base = ran.load(Ordering::SeqCst);
        let r2 = ran.clone();
        let stopped = after_func(Duration::from_millis(20), move || {
            r2.fetch_add(100, Ordering::SeqCst);
        });
        if stopped.stop() {
            std::thread::sleep(Duration::from_millis(60));
            assert_eq!(ran.load(Ordering::SeqCst), base, "a stopped after_func ran");
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while ran.load(Ordering::SeqCst) != base + 100 {
            assert!(Instant::now() < deadline, "stop reported false but the after_func never ran");
            std::thread::sleep(Duration::from_millis(1));
        }
        eprintln!("stop came after the deadline on try {attempt}; trying again");
    }
    panic!("stop never came within 20 ms of after_func in 10 tries");
}
