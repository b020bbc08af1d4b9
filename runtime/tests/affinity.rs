//! A started goroutine stays on its OS thread for life (ARCHITECTURE.md,
//! "Where a goroutine runs"): thread-local addresses and `!Send` guards
//! held across blocking calls stay valid while other goroutines compete
//! for the processors.

mod common;

use common::OrPanic;

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::ThreadId;
use std::time::Duration;

use common::with_timeout;

thread_local! {
    static TLS: Cell<u64> = const { Cell::new(0) };
}

fn tls_addr() -> usize {
    TLS.with(|c| c as *const Cell<u64> as usize)
}

/// One of four blocking calls, chosen by `i`.
fn block(i: u32) {
    match i % 4 {
        0 => assert_eq!(gort::spawn(move || i).join().or_panic(), i),
        1 => gort::gosched(),
        2 => gort::syscall(|| ()),
        _ => gort::syscall(|| std::thread::sleep(Duration::from_micros(50))),
    }
}

/// Blocks `iters` times and checks after each call that the thread and
/// the thread-local's address are unchanged.
fn stay_put(who: &str, iters: u32) -> Result<(), String> {
    let t = std::thread::current().id();
    let a = tls_addr();
    for i in 0..iters {
        TLS.with(|c| c.set(c.get() + 1));
        block(i);
        let (t2, a2) = (std::thread::current().id(), tls_addr());
        if t2 != t || a2 != a {
            return Err(format!(
                "{who}: after blocking call {i} (kind {}): thread {t:?} -> {t2:?}, thread-local at {a:#x} -> {a2:#x}",
                i % 4
            ));
        }
    }
    Ok(())
}

#[test]
fn goroutine_keeps_its_thread_and_thread_locals_across_blocking_calls() {
    const COMPETITORS: usize = 8;
    const ITERS: u32 = 1000;
    let results = with_timeout("thread affinity", 120, || {
        gort::run(|| {
            let competitors: Vec<_> =
                (0..COMPETITORS).map(|k| gort::spawn(move || stay_put(&format!("competitor {k}"), ITERS))).collect();
            let mut results = vec![stay_put("observed goroutine", ITERS)];
            results.extend(competitors.into_iter().map(|h| h.join().or_panic()));
            results
        })
    });
    let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(errors.is_empty(), "goroutines moved between threads:\n{}", errors.join("\n"));
}

static GUARDS_DROPPED: AtomicUsize = AtomicUsize::new(0);
static GUARDS_DROPPED_ELSEWHERE: AtomicUsize = AtomicUsize::new(0);

/// Like `tracing`'s `Entered` span guard: `!Send`, and only valid if
/// dropped on the thread that created it. Records rather than panics, as
/// a panic in `drop` during the test would obscure the report.
struct Entered {
    thread: ThreadId,
    _not_send: PhantomData<*const ()>,
}

impl Entered {
    fn new() -> Entered {
        Entered { thread: std::thread::current().id(), _not_send: PhantomData }
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        if std::thread::current().id() != self.thread {
            GUARDS_DROPPED_ELSEWHERE.fetch_add(1, Ordering::SeqCst);
        }
        GUARDS_DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn not_send_guard_held_across_join_is_dropped_on_its_thread() {
    const GOROUTINES: usize = 32;
    const ITERS: u32 = 100;
    with_timeout("!Send guard", 120, || {
        gort::run(|| {
            let hs: Vec<_> = (0..GOROUTINES)
                .map(|_| {
                    gort::spawn(|| {
                        for i in 0..ITERS {
                            let guard = Entered::new();
                            // A blocking join while the guard is held, and
                            // (every other time) more blocking calls.
                            assert_eq!(gort::spawn(move || i + 1).join().or_panic(), i + 1);
                            if i % 2 == 0 {
                                block(i / 2);
                            }
                            drop(guard);
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().or_panic();
            }
        })
    });
    let total = GOROUTINES * ITERS as usize;
    assert_eq!(GUARDS_DROPPED.load(Ordering::SeqCst), total, "not every guard was dropped");
    assert_eq!(
        GUARDS_DROPPED_ELSEWHERE.load(Ordering::SeqCst),
        0,
        "!Send guards dropped on another thread than the one that created them (of {total})"
    );
}
