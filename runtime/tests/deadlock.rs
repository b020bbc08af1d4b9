//! Go's deadlock detection (`checkdead`), seen from a child process: when no
//! goroutine can ever run again, `fatal error: all goroutines are asleep -
//! deadlock!`, every goroutine's header, exit code 2 — and no report while a
//! thread outside the runtime could still wake a goroutine.
//!
//! A `harness = false` test: libtest keeps threads of its own, which would
//! disarm the check in the child, so each scenario runs this binary again
//! as a plain program.

mod common;

use std::process::Command;
use std::time::Duration;

use std::sync::Arc;

use gort::chan::Chan;
use gort::gc::{GcMutex, GcRwLock};

const SCENARIO: &str = "GORT_DEADLOCK_SCENARIO";

/// Judges a child's exit code, stdout and stderr.
type Check = fn(i32, &str, &str) -> Result<(), String>;

fn main() {
    if let Ok(name) = std::env::var(SCENARIO) {
        child(&name);
        return;
    }
    let mut failed = 0;
    let checks: [(&str, Check); 6] = [
        ("chan", |code, _, err| {
            expect(code == 2, format!("exit code {code}, want 2"))?;
            expect(
                err.starts_with("fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 [chan receive]:\n"),
                "not Go's deadlock report".into(),
            )?;
            expect(err.contains("[chan send]:\ngoroutine name: \"sender\""), "the sender is not listed".into())
        }),
        ("select_no_cases", |code, _, err| {
            expect(code == 2, format!("exit code {code}, want 2"))?;
            expect(err.contains("goroutine 1 [select (no cases)]:"), "no `select (no cases)` header".into())
        }),
        ("join_chain", |code, _, err| {
            expect(code == 2, format!("exit code {code}, want 2"))?;
            expect(err.contains("goroutine 1 [sync.WaitGroup.Wait]:"), "main's join is not listed".into())?;
            expect(err.contains("[select (no cases)]:\ngoroutine name: \"y\""), "y is not listed".into())
        }),
        ("gc_cells", |code, _, err| {
            expect(code == 2, format!("exit code {code}, want 2"))?;
            expect(err.contains("[sync.Mutex.Lock]:\ngoroutine name: \"locker\""), "GcMutex waiter not listed".into())?;
            expect(
                err.contains("[sync.RWMutex.Lock]:\ngoroutine name: \"writer\""),
                "GcRwLock writer not listed".into(),
            )?;
            expect(
                err.contains("[sync.RWMutex.RLock]:\ngoroutine name: \"reader\""),
                "GcRwLock reader not listed".into(),
            )
        }),
        ("timeout", |code, out, _| {
            expect(code == 0, format!("exit code {code}, want 0: a pending timeout is not a deadlock"))?;
            expect(out.contains("timed out: true"), "recv_timeout did not time out".into())
        }),
        ("outside_thread", |code, out, _| {
            expect(code == 0, format!("exit code {code}, want 0: reported a deadlock a thread would end"))?;
            expect(out.contains("received Some(7)"), "the value from the thread did not arrive".into())
        }),
    ];
    for (name, check) in checks {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env(SCENARIO, name);
        // A missed report is a hang: give up on the child rather than on CI.
        let out = match common::output_within(cmd, Duration::from_secs(60)) {
            Ok(out) => out,
            Err(e) => {
                failed += 1;
                println!("test deadlock::{name} ... FAILED: {e}");
                continue;
            }
        };
        let (stdout, stderr) = (&out.stdout, &out.stderr);
        match check(out.code().unwrap_or(-1), stdout, stderr) {
            Ok(()) => println!("test deadlock::{name} ... ok"),
            Err(why) => {
                failed += 1;
                println!("test deadlock::{name} ... FAILED: {why}\n--- stdout\n{stdout}--- stderr\n{stderr}");
            }
        }
    }
    println!("{} passed, {failed} failed", checks.len() - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}

fn expect(ok: bool, why: String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(why)
    }
}

fn child(name: &str) {
    match name {
        "chan" => gort::run(|| {
            let never: Chan<u8> = Chan::new(0);
            let keep = never.clone();
            gort::Builder::new()
                .name("sender".into())
                .go(move || {
                    let nobody: Chan<u8> = Chan::new(0);
                    nobody.send(1);
                    drop(keep);
                })
                .unwrap();
            never.recv();
        }),
        "select_no_cases" => gort::run(|| gort::select! {}),
        "join_chain" => gort::run(|| {
            // main joins x, x joins y, y waits in a select with no cases.
            let y = gort::Builder::new().name("y".into()).spawn(|| gort::select! {}).unwrap();
            let x = gort::spawn(move || y.join().unwrap());
            x.join().unwrap();
        }),
        "gc_cells" => gort::run(|| {
            // Goroutines blocked on the GC's cells record Go's wait reasons.
            let m = Arc::new(GcMutex::new(0));
            let (read_held, write_held) = (Arc::new(GcRwLock::new(0)), Arc::new(GcRwLock::new(0)));
            let _guards = (m.lock(), read_held.read(), write_held.write());
            let (m, a, b) = (m.clone(), read_held.clone(), write_held.clone());
            gort::Builder::new().name("locker".into()).go(move || drop(m.lock())).unwrap();
            gort::Builder::new().name("writer".into()).go(move || drop(a.write())).unwrap();
            gort::Builder::new().name("reader".into()).go(move || drop(b.read())).unwrap();
            gort::select! {}
        }),
        "timeout" => gort::run(|| {
            let ch: Chan<u8> = Chan::new(0);
            let r = ch.recv_timeout(Duration::from_millis(200));
            gort::time::sleep(Duration::from_millis(50));
            println!("timed out: {}", r.is_err());
        }),
        "outside_thread" => {
            let ch: Chan<u8> = Chan::new(0);
            let tx = ch.clone();
            let t = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                tx.send(7);
            });
            let v = gort::run(|| ch.recv());
            t.join().unwrap();
            println!("received {v:?}");
        }
        other => panic!("unknown scenario {other}"),
    }
    eprintln!("scenario {name} returned");
}
