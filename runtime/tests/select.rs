//! `select!` seen through the public API, from goroutines and threads.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::chan::Chan;
use gort::select;

fn panic_message(e: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = e.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("<non-string panic>")
    }
}

/// Go's pollorder: with 4 cases always ready, each is chosen 25% ± 3% of
/// 100,000 selects.
fn fairness() {
    let chans: Vec<Chan<usize>> = (0..4).map(|_| Chan::new(1)).collect();
    for (i, c) in chans.iter().enumerate() {
        c.send(i);
    }
    let mut counts = [0usize; 4];
    const N: usize = 100_000;
    for _ in 0..N {
        let i = select! {
            recv(chans[0]) -> v => v.unwrap(),
            recv(chans[1]) -> v => v.unwrap(),
            recv(chans[2]) -> v => v.unwrap(),
            recv(chans[3]) -> v => v.unwrap(),
        };
        counts[i] += 1;
        chans[i].send(i);
    }
    for (i, &c) in counts.iter().enumerate() {
        let share = c as f64 / N as f64;
        assert!((0.22..=0.28).contains(&share), "case {i} chosen {share:.4} of the time: {counts:?}");
    }
}

#[test]
fn fairness_four_ready_cases_goroutine() {
    gort::run(fairness);
}

#[test]
fn fairness_four_ready_cases_thread() {
    fairness();
}

/// Fairness also holds for ready send cases.
#[test]
fn fairness_send_cases() {
    let chans: Vec<Chan<u8>> = (0..4).map(|_| Chan::new(1)).collect();
    let mut counts = [0usize; 4];
    const N: usize = 40_000;
    for _ in 0..N {
        let i = select! {
            send(chans[0], 0) => 0,
            send(chans[1], 1) => 1,
            send(chans[2], 2) => 2,
            send(chans[3], 3) => 3,
        };
        counts[i] += 1;
        assert_eq!(chans[i].recv(), Some(i as u8));
    }
    for &c in &counts {
        let share = c as f64 / N as f64;
        assert!((0.22..=0.28).contains(&share), "{counts:?}");
    }
}

/// With only some cases ready, each ready one is equally likely (the
/// select completes the first ready case in a uniformly random poll order,
/// so the whole order must be uniform, not just its first element), and
/// the never-ready cases are never chosen.
#[test]
fn fairness_among_ready_subset() {
    let chans: Vec<Chan<usize>> = (0..4).map(|_| Chan::new(1)).collect();
    let ready = [1, 3];
    for &i in &ready {
        chans[i].send(i);
    }
    let mut counts = [0usize; 4];
    const N: usize = 100_000;
    for _ in 0..N {
        let i = select! {
            recv(chans[0]) -> v => v.unwrap(),
            recv(chans[1]) -> v => v.unwrap(),
            recv(chans[2]) -> v => v.unwrap(),
            recv(chans[3]) -> v => v.unwrap(),
        };
        counts[i] += 1;
        chans[i].send(i);
    }
    assert_eq!(counts[0] + counts[2], 0, "{counts:?}");
    for &i in &ready {
        let share = counts[i] as f64 / N as f64;
        assert!((0.47..=0.53).contains(&share), "case {i} chosen {share:.4} of the time: {counts:?}");
    }
}

/// A blocked select is completed by whichever peer comes first, receives
/// see `None` on close, and the bodies can use break/continue.
fn blocking_select(spawn: &dyn Fn(Box<dyn FnOnce() + Send>)) {
    let a = Chan::<i32>::new(0);
    let b = Chan::<String>::new(0);
    let out = Chan::<i32>::new(0);
    let quit = Chan::<()>::new(0);
    let (a2, b2, out2, quit2) = (a.clone(), b.clone(), out.clone(), quit.clone());
    spawn(Box::new(move || {
        a2.send(1);
        b2.send("two".into());
        assert_eq!(out2.recv(), Some(3));
        quit2.close();
    }));
    let mut log = Vec::new();
    loop {
        select! {
            recv(a) -> v => log.push(format!("a{}", v.unwrap())),
            recv(b) -> v => log.push(format!("b{}", v.unwrap())),
            send(out, 3) => log.push("sent".into()),
            recv(quit) -> v => {
                assert_eq!(v, None);
                break;
            }
        }
    }
    assert_eq!(log, ["a1", "btwo", "sent"]);
}

#[test]
fn blocking_select_goroutine() {
    gort::run(|| blocking_select(&|f| gort::go(f)));
}

#[test]
fn blocking_select_thread() {
    blocking_select(&|f| {
        std::thread::spawn(f);
    });
}

#[test]
fn select_send_on_closed_channel_panics() {
    let c = Chan::<i32>::new(0);
    let d = Chan::<i32>::new(0);
    c.close();
    let e = catch_unwind(AssertUnwindSafe(|| {
        select! {
            send(c, 1) => {}
            recv(d) => {}
        }
    }))
    .unwrap_err();
    assert_eq!(panic_message(e), "send on closed channel");
    // Closed while blocked in the select.
    let c = Chan::<i32>::new(0);
    let c2 = c.clone();
    let h = gort::spawn(move || {
        select! {
            send(c2, 1) => {}
        }
    });
    std::thread::sleep(Duration::from_millis(20));
    c.close();
    assert_eq!(panic_message(h.join().unwrap_err()), "send on closed channel");
}

#[test]
fn select_default_and_timeout() {
    let c = Chan::<i32>::new(0);
    let r = select! {
        recv(c) -> _v => 1,
        default => 2,
    };
    assert_eq!(r, 2);
    let t0 = Instant::now();
    let r = select! {
        recv(c) -> _v => 1,
        default(Duration::from_millis(20)) => 2,
    };
    assert_eq!(r, 2);
    assert!(t0.elapsed() >= Duration::from_millis(20));
    // Only a default: runs it.
    let r = select! { default => 7 };
    assert_eq!(r, 7);
    // A timeout alone is a sleep.
    let t0 = Instant::now();
    select! { default(Duration::from_millis(5)) => {} }
    assert!(t0.elapsed() >= Duration::from_millis(5));
    // A value arriving before the deadline wins.
    let c2 = c.clone();
    gort::go(move || c2.send(5));
    let r = select! {
        recv(c) -> v => v.unwrap(),
        default(Duration::from_secs(10)) => -1,
    };
    assert_eq!(r, 5);
}

/// The same channel in two cases, and a select that sends and receives on
/// one unbuffered channel: it cannot match itself, only a peer.
#[test]
fn same_channel_twice() {
    gort::run(|| {
        let c = Chan::<i32>::new(0);
        let c2 = c.clone();
        let h = gort::spawn(move || c2.recv());
        let r = select! {
            send(c, 1) => "send",
            recv(c) -> _v => "recv",
        };
        assert_eq!(r, "send");
        assert_eq!(h.join().unwrap(), Some(1));
        let b = Chan::<i32>::new(1);
        b.send(9);
        let got = select! {
            recv(b) -> v => v,
            recv(&b) -> v => v,
        };
        assert_eq!(got, Some(9));
    });
}

/// Many goroutines selecting over shared channels: every value sent is
/// received exactly once.
fn select_conservation(spawn: &dyn Fn(Box<dyn FnOnce() + Send>), workers: usize, per: u64) {
    let ins: Vec<Chan<u64>> = (0..3).map(Chan::new).collect();
    let out = Chan::<u64>::new(0);
    let done = Chan::<()>::new(0);
    let wg = Arc::new(gort::sync::WaitGroup::new());
    // Producers: each sends its values into any of the three channels.
    for w in 0..workers as u64 {
        let (ins, wg) = (ins.clone(), wg.clone());
        wg.add(1);
        spawn(Box::new(move || {
            for i in 0..per {
                let v = w * per + i;
                select! {
                    send(ins[0], v) => {}
                    send(ins[1], v) => {}
                    send(ins[2], v) => {}
                }
            }
            wg.done();
        }));
    }
    // Relays: move values from any input to `out`, until `done`.
    for _ in 0..workers {
        let (ins, out, done) = (ins.clone(), out.clone(), done.clone());
        spawn(Box::new(move || loop {
            let v = select! {
                recv(ins[0]) -> v => v.unwrap(),
                recv(ins[1]) -> v => v.unwrap(),
                recv(ins[2]) -> v => v.unwrap(),
                recv(done) => return,
            };
            out.send(v);
        }));
    }
    let total = workers as u64 * per;
    let mut got: Vec<u64> = (0..total).map(|_| out.recv().unwrap()).collect();
    wg.wait();
    done.close();
    got.sort_unstable();
    assert_eq!(got, (0..total).collect::<Vec<_>>());
}

#[test]
fn select_values_never_lost_goroutines() {
    gort::run(|| select_conservation(&|f| gort::go(f), 8, 2_000));
}

#[test]
fn select_values_never_lost_threads() {
    select_conservation(
        &|f| {
            std::thread::spawn(f);
        },
        3,
        1_000,
    );
}

/// A select racing `close`: every blocked select wakes with the close.
#[test]
fn select_racing_close() {
    gort::run(|| {
        for _ in 0..200 {
            let a = Chan::<u8>::new(0);
            let b = Chan::<u8>::new(0);
            let (a2, b2) = (a.clone(), b.clone());
            let h = gort::spawn(move || {
                select! {
                    recv(a2) -> v => v,
                    recv(b2) -> v => v,
                }
            });
            gort::gosched();
            a.close();
            assert_eq!(h.join().unwrap(), None);
            drop(b);
        }
    });
}
