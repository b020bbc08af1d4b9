//! A thread blocked outside the runtime stalls only the goroutines homed on
//! it, and the runtime says so: sysmon names the goroutine holding the
//! thread and what the kernel says it waits in; a stop-the-world names the
//! goroutine it waits for; other Ps still run unstarted goroutines.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::in_child;

#[test]
fn sysmon_reports_a_thread_blocked_outside_the_runtime() {
    let Some(out) = in_child("sysmon_reports_a_thread_blocked_outside_the_runtime", &[("GOMAXPROCS", "1")], || {
        gort::run(|| {
            // `waiter` is homed on this thread and runnable while `blocker`
            // sleeps in std (not gort::syscall), holding the thread.
            let started = Arc::new(AtomicBool::new(false));
            let s = started.clone();
            let waiter = gort::spawn(move || {
                s.store(true, Ordering::SeqCst);
                gort::gosched();
            });
            while !started.load(Ordering::SeqCst) {
                gort::gosched();
            }
            let blocker = gort::Builder::new()
                .name("sleepy".into())
                .spawn(|| std::thread::sleep(Duration::from_millis(1600)))
                .unwrap();
            blocker.join().unwrap();
            waiter.join().unwrap();
        });
    }) else {
        return;
    };
    out.assert_success();
    let err = &out.stderr;
    assert!(err.contains("(\"sleepy\") has held thread"), "no report naming the blocking goroutine:\n{}", out.dump());
    assert!(
        err.contains("the kernel says thread"),
        "the report does not say what the thread waits in:\n{}",
        out.dump()
    );
    assert!(err.contains("gort::syscall"), "the report gives no advice:\n{}", out.dump());
}

#[test]
fn stop_the_world_names_the_goroutine_it_waits_for() {
    let Some(out) = in_child("stop_the_world_names_the_goroutine_it_waits_for", &[("GOMAXPROCS", "2")], || {
        let blocking = Arc::new(AtomicBool::new(false));
        let b = blocking.clone();
        let h = gort::Builder::new()
            .name("hog".into())
            .spawn(move || {
                b.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1600));
            })
            .unwrap();
        while !blocking.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        assert_eq!(gort::gomaxprocs(1), 2, "GOMAXPROCS must still resize once the hog lets go");
        h.join().unwrap();
    }) else {
        return;
    };
    out.assert_success();
    assert!(
        out.stderr.contains("stop-the-world (GOMAXPROCS) has waited") && out.stderr.contains("(\"hog\")"),
        "the stop-the-world did not name the goroutine it waited for:\n{}",
        out.dump()
    );
    // Then the scheduler's state, as Go's schedtrace with scheddetail: the
    // world stopping, a P still running (status 1), and the threads.
    assert!(
        out.stderr.contains("SCHED ")
            && out.stderr.contains("ms: gomaxprocs=2 ")
            && out.stderr.contains(" gcwaiting=1 ")
            && out.stderr.contains(": status=1 ")
            && out.stderr.contains("  M0: p="),
        "the stop-the-world report has no scheduler state:\n{}",
        out.dump()
    );
}

#[test]
fn other_ps_run_unstarted_goroutines_while_a_thread_is_blocked() {
    let Some(out) =
        in_child("other_ps_run_unstarted_goroutines_while_a_thread_is_blocked", &[("GOMAXPROCS", "2")], || {
            gort::run(|| {
                // The main goroutine blocks its thread outside the runtime right
                // after spawning: the spawned goroutines sit in its P's run queue
                // and must be stolen by the other P.
                let done = Arc::new(AtomicU64::new(0));
                let hs: Vec<_> = (0..50)
                    .map(|_| {
                        let d = done.clone();
                        gort::spawn(move || {
                            d.fetch_add(1, Ordering::SeqCst);
                        })
                    })
                    .collect();
                let mut waited = 0;
                while done.load(Ordering::SeqCst) < 50 && waited < 10_000 {
                    std::thread::sleep(Duration::from_millis(1)); // blocks this thread, not a gort park
                    waited += 1;
                }
                assert_eq!(done.load(Ordering::SeqCst), 50, "goroutines stayed stuck behind a blocked thread");
                hs.into_iter().for_each(|h| h.join().unwrap());
            });
        })
    else {
        return;
    };
    out.assert_success();
}

#[test]
fn other_ps_run_expired_timers_of_a_blocked_p() {
    let Some(out) = in_child("other_ps_run_expired_timers_of_a_blocked_p", &[("GOMAXPROCS", "2")], || {
        gort::run(|| {
            // The timer is armed on this goroutine's P, then the thread
            // blocks outside the runtime: another M must fire it, and its
            // function must run on another thread meanwhile.
            let (tx, rx) = std::sync::mpsc::channel();
            let me = std::thread::current().id();
            let _t = gort::time::after_func(Duration::from_millis(10), move || {
                tx.send(std::thread::current().id()).unwrap();
            });
            let fired_on = rx.recv_timeout(Duration::from_secs(10)); // blocks this thread, not a gort park
            let fired_on = fired_on.expect("a timer of a blocked P never fired");
            assert_ne!(fired_on, me, "the timer's function ran on the blocked thread");
        });
    }) else {
        return;
    };
    out.assert_success();
}
