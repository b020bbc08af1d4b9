//! The macros seen through the public API: `go!`'s evaluation order,
//! `#[goroutine]` results, options and locking, the inserted preemption
//! checks, `#[gort::main]` exits and `#[gort::test]` results and panics.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use common::{in_child, is_child, run_child, with_timeout};
use gort::{go, goroutine};

// ---------------------------------------------------------------------------
// go!

/// An event log that each `go!` test owns, so tests can run in parallel.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    fn get(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

fn record(log: Log, a: u32, b: u32, done: mpsc::Sender<()>) {
    log.push(format!("ran {a} {b}"));
    done.send(()).unwrap();
}

#[test]
fn go_call_evaluates_function_and_arguments_before_the_goroutine_runs() {
    with_timeout("go! evaluation order", 60, || {
        gort::run(|| {
            let log = Log::default();
            let counter = AtomicU32::new(0);
            let next = || {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                log.push(format!("next {n}"));
                n
            };
            let pick = || {
                log.push("function value");
                record
            };
            let (tx, rx) = mpsc::channel();
            go!(pick()(log.clone(), next(), next(), tx));
            // Everything was evaluated by the caller, in Go's order, before
            // `go!` returned: the goroutine can only have run after that.
            assert_eq!(log.get()[..3], ["function value", "next 1", "next 2"]);
            // A std receive blocks the thread: in `gort::syscall`, so that
            // this P stays free for the goroutine (with every P held by a
            // test blocked like this, nothing could run it).
            gort::syscall(move || rx.recv()).unwrap();
            assert_eq!(log.get(), ["function value", "next 1", "next 2", "ran 1 2"]);
        })
    });
}

struct Greeter {
    log: Log,
    greeting: &'static str,
}

impl Greeter {
    fn greet(&self, who: u32, done: mpsc::Sender<()>) {
        self.log.push(format!("{} {who}", self.greeting));
        done.send(()).unwrap();
    }
}

#[test]
fn go_method_call_evaluates_receiver_and_arguments_now() {
    with_timeout("go! method call", 60, || {
        gort::run(|| {
            let log = Log::default();
            let make = |g| {
                log.push("receiver");
                Greeter { log: log.clone(), greeting: g }
            };
            let arg = |n| {
                log.push("argument");
                n
            };
            let (tx, rx) = mpsc::channel();
            go!(make("hello").greet(arg(7), tx));
            assert_eq!(log.get(), ["receiver", "argument"]);
            gort::syscall(move || rx.recv()).unwrap(); // not holding the P: see above
            assert_eq!(log.get(), ["receiver", "argument", "hello 7"]);
        })
    });
}

#[test]
fn go_closure_block_and_settings() {
    with_timeout("go! forms", 60, || {
        let (tx, rx) = mpsc::channel::<String>();
        let t = tx.clone();
        go!(move || t.send("closure".into()).unwrap());
        let t = tx.clone();
        go! {
            let s = String::from("block");
            t.send(s).unwrap();
        }
        let t = tx.clone();
        go!(name = "named", stack_size = 1 << 20; report_name(t));
        let t = tx.clone();
        go!(locked; report_thread(t, std::thread::current().id()));
        drop(tx);
        let mut got: Vec<String> = rx.iter().collect();
        got.sort();
        assert_eq!(got, ["block", "closure", "name Some(\"named\")", "other thread"]);
    });
}

fn report_name(tx: mpsc::Sender<String>) {
    tx.send(format!("name {:?}", gort::current().unwrap().name())).unwrap();
}

fn report_thread(tx: mpsc::Sender<String>, caller: ThreadId) {
    assert_ne!(std::thread::current().id(), caller);
    tx.send("other thread".into()).unwrap();
}

/// A return value is discarded, as in Go.
fn answer(tx: mpsc::Sender<u32>) -> Result<u32, String> {
    tx.send(42).unwrap();
    Ok(42)
}

#[test]
fn go_discards_the_return_value() {
    let (tx, rx) = mpsc::channel();
    go!(answer(tx));
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), 42);
}

// ---------------------------------------------------------------------------
// #[goroutine]

#[goroutine]
fn sum_to(n: u64) -> u64 {
    let mut total = 0;
    for i in 1..=n {
        total += i;
    }
    total
}

#[goroutine(name = format!("pair-{tag}"))]
fn describe<T>(tag: u8, (left, right): (T, T), rest: impl Iterator<Item = T> + Send + 'static) -> String
where
    T: std::fmt::Debug + Send + 'static,
{
    let me = gort::current().unwrap();
    format!("{} {left:?} {right:?} {:?}", me.name().unwrap(), rest.collect::<Vec<_>>())
}

#[goroutine]
fn count_down(mut n: u32, _unused: ()) -> Vec<u32> {
    let mut out = Vec::new();
    while n > 0 {
        out.push(n);
        n -= 1;
    }
    out
}

struct Counter {
    step: u64,
}

impl Counter {
    #[goroutine(stack_size = 1 << 20)]
    fn run(self, times: u64) -> u64 {
        (0..times).map(|_| self.step).sum()
    }

    #[goroutine]
    fn shared(self: Arc<Self>) -> u64 {
        self.step
    }
}

#[goroutine]
fn explode(msg: &'static str) -> u32 {
    panic!("{msg}")
}

#[test]
fn goroutine_results_come_back_through_join() {
    with_timeout("#[goroutine] results", 60, || {
        let h: gort::JoinHandle<u64> = sum_to(100);
        assert_eq!(h.join().unwrap(), 5050);
        assert_eq!(describe(3, ('a', 'b'), "cd".chars()).join().unwrap(), "pair-3 'a' 'b' ['c', 'd']");
        assert_eq!(count_down(3, ()).join().unwrap(), [3, 2, 1]);
        assert_eq!(Counter { step: 7 }.run(6).join().unwrap(), 42);
        assert_eq!(Arc::new(Counter { step: 5 }).shared().join().unwrap(), 5);
        // Called from a goroutine too.
        assert_eq!(gort::run(|| sum_to(10).join().unwrap()), 55);
    });
}

#[test]
fn goroutine_panic_comes_back_as_err() {
    with_timeout("#[goroutine] panic", 60, || {
        let p = explode("kaboom").join().unwrap_err();
        assert_eq!(p.downcast_ref::<String>().map(String::as_str), Some("kaboom"));
    });
}

#[goroutine(locked, name = "pinned")]
fn pinned(caller: ThreadId) -> (ThreadId, Vec<ThreadId>, Vec<ThreadId>) {
    let me = std::thread::current().id();
    assert_ne!(me, caller, "a locked goroutine starts on a thread of its own");
    let mut seen = Vec::new();
    let mut others = Vec::new();
    for i in 0..20u64 {
        gort::gosched();
        // Goroutines started from here run elsewhere: the thread is ours.
        others.push(gort::spawn(move || (std::thread::current().id(), i)).join().unwrap().0);
        gort::syscall(|| std::thread::sleep(Duration::from_millis(1)));
        seen.push(std::thread::current().id());
    }
    seen.push(me);
    (me, seen, others)
}

#[test]
fn locked_goroutine_keeps_one_os_thread_to_itself() {
    let (me, seen, others) =
        with_timeout("#[goroutine(locked)]", 60, || gort::run(|| pinned(std::thread::current().id()).join().unwrap()));
    assert!(seen.iter().all(|&t| t == me), "a locked goroutine changed threads: {seen:?}");
    assert!(others.iter().all(|&t| t != me), "another goroutine ran on the locked thread");
}

// ---------------------------------------------------------------------------
// Preemption checks.

/// Spins until `stop` is set, with the checks `#[goroutine]` inserts.
#[goroutine]
fn spin_until_stopped(started: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> u64 {
    started.store(true, Ordering::SeqCst);
    let mut n = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            break n;
        }
        n = n.wrapping_add(1);
    }
}

/// The same loop in a plain function that a goroutine calls.
#[gort::preemptible]
fn spin_preemptible(started: &AtomicBool, stop: &AtomicBool) -> u64 {
    started.store(true, Ordering::SeqCst);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n = n.wrapping_add(1);
    }
    n
}

/// The control: no check. It gives up at `deadline` (reading the clock
/// is not a scheduling point), and says whether it saw `stop`.
fn spin_unchecked(started: &AtomicBool, stop: &AtomicBool, deadline: Instant) -> bool {
    started.store(true, Ordering::SeqCst);
    loop {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::hint::spin_loop();
    }
}

/// Starts `spinner`, waits until it is running, then lets a second
/// goroutine set `stop`. With GOMAXPROCS=1 the setter can run only when
/// the spinner yields its P.
fn spin_and_stop<T: Send + 'static>(
    started: &Arc<AtomicBool>,
    stop: &Arc<AtomicBool>,
    spinner: gort::JoinHandle<T>,
) -> T {
    while !started.load(Ordering::SeqCst) {
        gort::gosched();
    }
    let stop = stop.clone();
    go!(move || stop.store(true, Ordering::SeqCst));
    spinner.join().unwrap()
}

/// A `#[goroutine]` spinning in a tight `loop` on the only P does not keep
/// another goroutine from running and ending it: sysmon asks it to yield
/// after 10 ms and the inserted check honours the request. The control
/// shows the same loop without the check starves everyone else.
#[test]
fn inserted_checks_let_other_goroutines_run_with_gomaxprocs_1() {
    let name = "inserted_checks_let_other_goroutines_run_with_gomaxprocs_1";
    let Some(out) = in_child(name, &[("GOMAXPROCS", "1")], || {
        gort::run(|| {
            assert_eq!(gort::gomaxprocs(0), 1);

            let (started, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
            let n = spin_and_stop(&started, &stop, spin_until_stopped(started.clone(), stop.clone()));
            println!("#[goroutine] loop: stopped after {n} iterations");

            let (started, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
            let (s, t) = (started.clone(), stop.clone());
            let n = spin_and_stop(&started, &stop, gort::spawn(move || spin_preemptible(&s, &t)));
            println!("#[gort::preemptible] loop: stopped after {n} iterations");

            // Control: without checks, the setter cannot run while the loop spins.
            let (started, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
            let (s, t) = (started.clone(), stop.clone());
            let deadline = Instant::now() + Duration::from_millis(300);
            let saw_stop = spin_and_stop(&started, &stop, gort::spawn(move || spin_unchecked(&s, &t, deadline)));
            assert!(!saw_stop, "the unchecked loop was interrupted: the control does not show starvation");
            println!("unchecked loop: starved the other goroutine until its deadline");
        });
    }) else {
        return;
    };
    out.assert_success();
    assert!(out.stdout.contains("starved the other goroutine"), "{}", out.dump());
}

// ---------------------------------------------------------------------------
// #[gort::test]

#[gort::test]
fn test_body_runs_as_a_goroutine() {
    let me = gort::current().expect("a #[gort::test] body is a goroutine");
    assert!(me.id() > 0);
    assert_eq!(sum_to(4).join().unwrap(), 10);
}

#[gort::test]
#[should_panic(expected = "original message 42")]
fn test_panic_keeps_its_message() {
    let n = 42;
    panic!("original message {n}");
}

#[gort::test]
fn test_may_return_ok() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "12".parse()?;
    assert_eq!(n, 12);
    Ok(())
}

/// The error need not be `Send`: it is rendered inside the goroutine.
#[gort::test]
fn test_returning_err_fails() -> Result<(), Box<dyn std::error::Error>> {
    if !is_child("test_returning_err_fails") {
        return Ok(());
    }
    let _not_send = std::rc::Rc::new(());
    Err("the error the test returned".into())
}

#[test]
fn a_test_returning_err_fails_with_the_error() {
    let out = run_child("test_returning_err_fails", &[]);
    assert!(!out.status.success(), "{}", out.dump());
    // The harness prints the error on the test's stderr (stdout when captured).
    let expected = "Error: \"the error the test returned\"";
    assert!(out.stderr.contains(expected) || out.stdout.contains(expected), "{}", out.dump());
}

#[gort::test(gomaxprocs = 1)]
fn test_with_gomaxprocs_runs_in_a_child() {
    assert_eq!(gort::gomaxprocs(0), 1);
    assert_eq!(std::env::var("GOMAXPROCS").as_deref(), Ok("1"));
}

// ---------------------------------------------------------------------------
// #[gort::main]

static LEFT_RUNNING: AtomicU64 = AtomicU64::new(0);

/// `#[gort::main]` on a function of another name, so a test can call it.
#[gort::main(gomaxprocs = 2)]
fn main_ok() {
    let me = gort::current().unwrap();
    go!(move || loop {
        LEFT_RUNNING.fetch_add(1, Ordering::Relaxed);
        gort::gosched();
    });
    print!("main goroutine {} gomaxprocs {} (unflushed)", me.id(), gort::gomaxprocs(0));
}

#[gort::main]
fn main_err() -> Result<(), String> {
    Err("main failed".into())
}

#[test]
fn main_exits_0_without_waiting_for_other_goroutines() {
    let Some(out) = in_child("main_exits_0_without_waiting_for_other_goroutines", &[], || {
        main_ok();
        unreachable!("#[gort::main] returned");
    }) else {
        return;
    };
    assert_eq!(out.code(), Some(0), "{}", out.dump());
    assert!(out.stdout.contains("main goroutine 1 gomaxprocs 2 (unflushed)"), "{}", out.dump());
}

#[test]
fn main_returning_err_prints_it_and_exits_1() {
    let Some(out) = in_child("main_returning_err_prints_it_and_exits_1", &[], || {
        main_err();
        unreachable!("#[gort::main] returned");
    }) else {
        return;
    };
    assert_eq!(out.code(), Some(1), "{}", out.dump());
    assert!(out.stderr.contains("Error: \"main failed\""), "{}", out.dump());
}
