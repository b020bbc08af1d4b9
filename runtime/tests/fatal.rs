//! Fatal errors, in Go's words and with Go's exit code 2: stack overflow,
//! an unrecovered panic in a detached goroutine, goexit in the main
//! goroutine. Each runs in a child process whose exit code and stderr the
//! parent checks.

mod common;

use std::io::Write;
use std::time::Duration;

use common::in_child;

/// The number printed after `prefix` on a line of `text`.
fn number_after(text: &str, prefix: &str) -> Option<u64> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

#[inline(never)]
#[allow(unconditional_recursion)] // unbounded on purpose
fn recurse(n: u64) -> u64 {
    let buf = std::hint::black_box([n as u8; 512]);
    // Not a tail call: the addition keeps every frame alive.
    recurse(n + 1).wrapping_add(buf[(n % 512) as usize] as u64)
}

#[test]
fn stack_overflow_is_fatal_and_names_the_goroutine() {
    let Some(out) = in_child("stack_overflow_is_fatal_and_names_the_goroutine", &[], || {
        let h = gort::Builder::new()
            .name("deep".into())
            .spawn(|| {
                eprintln!("deep is goroutine {}", gort::current().unwrap().id());
                recurse(0)
            })
            .unwrap();
        let r = h.join();
        panic!("unbounded recursion returned instead of overflowing: {:?}", r.is_ok());
    }) else {
        return;
    };
    let id = number_after(&out.stderr, "deep is goroutine ").unwrap_or_else(|| panic!("no id line:\n{}", out.dump()));
    assert_eq!(out.code(), Some(2), "stack overflow did not exit with code 2:\n{}", out.dump());
    assert!(out.stderr.contains("fatal error: stack overflow"), "{}", out.dump());
    let header = format!("goroutine {id} [running]:");
    let at = out.stderr.find(&header).unwrap_or_else(|| panic!("no `{header}` in the report:\n{}", out.dump()));
    assert!(out.stderr[at..].contains("\"deep\""), "the report does not name the goroutine \"deep\":\n{}", out.dump());
}

#[test]
fn detached_goroutine_panic_is_fatal() {
    let Some(out) = in_child("detached_goroutine_panic_is_fatal", &[], || {
        gort::run(|| {
            println!("main is goroutine {}", gort::current().unwrap().id());
            gort::go(|| {
                println!("panicker is goroutine {}", gort::current().unwrap().id());
                std::io::stdout().flush().unwrap();
                panic!("boom");
            });
            gort::syscall(|| std::thread::sleep(Duration::from_secs(30)));
        });
        panic!("a detached goroutine's panic did not end the process within 30 s");
    }) else {
        return;
    };
    let main = number_after(&out.stdout, "main is goroutine ").unwrap_or_else(|| panic!("{}", out.dump()));
    let id = number_after(&out.stdout, "panicker is goroutine ").unwrap_or_else(|| panic!("{}", out.dump()));
    assert_eq!(main, 1, "the first run's goroutine is not 1");
    assert_eq!(out.code(), Some(2), "a detached goroutine's panic did not exit with code 2:\n{}", out.dump());
    assert!(out.stderr.starts_with("panic: boom\n"), "stderr does not start with Go's panic line:\n{}", out.dump());
    assert!(
        out.stderr.contains(&format!("panic: boom\n\ngoroutine {id} [running]:\n")),
        "no goroutine header after the panic line:\n{}",
        out.dump()
    );
    assert!(
        out.stderr.contains(&format!("created by goroutine {main}")),
        "the report does not name the creator:\n{}",
        out.dump()
    );
}

#[test]
fn detached_goroutine_panic_from_a_plain_thread_is_fatal() {
    let Some(out) = in_child("detached_goroutine_panic_from_a_plain_thread_is_fatal", &[], || {
        let n = std::hint::black_box(42);
        gort::go(move || panic!("boom {n}"));
        std::thread::sleep(Duration::from_secs(30));
        panic!("a detached goroutine's panic did not end the process within 30 s");
    }) else {
        return;
    };
    assert_eq!(out.code(), Some(2), "{}", out.dump());
    assert!(out.stderr.starts_with("panic: boom 42\n\ngoroutine "), "{}", out.dump());
    assert!(out.stderr.contains(" [running]:\n"), "{}", out.dump());
}

#[test]
fn joinable_goroutine_panic_is_not_fatal() {
    let Some(out) = in_child("joinable_goroutine_panic_is_not_fatal", &[], || {
        let r = gort::run(|| gort::spawn(|| panic!("caught")).join());
        assert!(r.is_err());
        println!("still alive");
    }) else {
        return;
    };
    out.assert_success();
    assert!(out.stdout.contains("still alive"));
    assert!(
        !out.stderr.contains("panic: caught"),
        "a joinable goroutine's panic got Go's fatal report:\n{}",
        out.dump()
    );
}

#[test]
fn goexit_in_the_main_goroutine_waits_for_the_others_then_dies() {
    let Some(out) = in_child("goexit_in_the_main_goroutine_waits_for_the_others_then_dies", &[], || {
        gort::run(|| {
            gort::go(|| {
                gort::syscall(|| std::thread::sleep(Duration::from_millis(50)));
                println!("worker done");
                std::io::stdout().flush().unwrap();
            });
            gort::goexit();
        });
        panic!("run returned after goexit in the main goroutine");
    }) else {
        return;
    };
    assert_eq!(out.code(), Some(2), "{}", out.dump());
    assert!(out.stdout.contains("worker done"), "the program did not wait for the other goroutine:\n{}", out.dump());
    assert!(
        out.stderr.contains("fatal error: no goroutines (main called runtime.Goexit) - deadlock!"),
        "{}",
        out.dump()
    );
}
