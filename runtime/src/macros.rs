//! Re-exports of the procedural macros from `gort-macros`, and the small
//! runtime support their expansions call (`__private`, not public API).
//!
//! The macros name gort as `::gort`, so a crate that uses them depends on
//! `gort` under that name.

pub use gort_macros::{go, goroutine, main, preemptible, select, test};

/// Support code for the macros' expansions. Not public API: names and
/// signatures change without notice.
#[doc(hidden)]
pub mod __private {
    use std::fmt::Debug;
    use std::io::Write;
    use std::panic;
    use std::process::{ExitCode, Termination};

    use crate::{Builder, JoinHandle};

    /// What may move into a goroutine: a `Send` value. A trait of its own
    /// only for the error message at the value that is not `Send`.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be moved into a goroutine: it is not `Send`",
        label = "moved into a new goroutine, which may run on another OS thread",
        note = "use a `Send` type (`Arc` instead of `Rc`, `gort::sync::Mutex` instead of `RefCell`), \
                or create the value inside the goroutine"
    )]
    pub trait GoSend {}
    impl<T: Send + ?Sized> GoSend for T {}

    /// A value checked by [`go_arg`] on its way into a goroutine.
    pub struct GoArg<T>(T);

    // SAFETY: the only constructors (`go_arg`, `go`, `spawn` below) require
    // `T: GoSend`, which holds exactly when `T: Send`. The wrapper exists so
    // that a value that is not `Send` is reported once, at its own span,
    // and not a second time at the closure that captures it.
    unsafe impl<T> Send for GoArg<T> {}

    impl<T> GoArg<T> {
        /// The value, inside the goroutine.
        #[inline(always)]
        pub fn into_inner(self) -> T {
            self.0
        }
    }

    /// A value on its way to [`go_arg`]. Passing it wrapped keeps rustc
    /// from suggesting to dereference a value that is not `Send`.
    pub struct Value<T>(pub T);

    /// Checks one value moved into a goroutine (`go!`'s function value,
    /// receiver and arguments; `#[goroutine]`'s parameters).
    #[inline(always)]
    pub fn go_arg<T: GoSend + 'static>(v: Value<T>) -> GoArg<T> {
        GoArg(v.0)
    }

    /// `go!`: a detached goroutine; the closure's result is discarded.
    #[track_caller]
    pub fn go<F, R>(b: Builder, f: F)
    where
        F: FnOnce() -> R + GoSend + 'static,
    {
        let f = GoArg(f);
        if let Err(e) = b.go(move || drop(f.into_inner()())) {
            panic!("gort: cannot start goroutine: {e}");
        }
    }

    /// `#[goroutine]`: a goroutine with a `JoinHandle` for its result.
    #[track_caller]
    pub fn spawn<F, T>(b: Builder, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + GoSend + 'static,
        T: Send + 'static,
    {
        let f = GoArg(f);
        match b.spawn(move || f.into_inner()()) {
            Ok(h) => h,
            Err(e) => panic!("gort: cannot start goroutine: {e}"),
        }
    }

    /// `#[gort::main]`: runs `f` as the main goroutine, reports its result
    /// as std reports `main`'s, and exits without waiting for the other
    /// goroutines (Go's rule).
    pub fn main<F, T>(gomaxprocs: Option<usize>, f: F) -> ExitCode
    where
        F: FnOnce() -> T + Send,
        T: Termination,
    {
        if let Some(n) = gomaxprocs {
            crate::gomaxprocs(n);
        }
        // Reported inside the goroutine: an error need not be `Send`.
        let code = crate::run(move || f().report());
        let _ = std::io::stdout().flush();
        // `ExitCode` hides its number; on Unix it is a byte.
        match (0..=255u8).find(|&c| ExitCode::from(c) == code) {
            Some(c) => std::process::exit(i32::from(c)),
            None => code,
        }
    }

    /// What a `#[gort::test]` function may return.
    #[diagnostic::on_unimplemented(
        message = "`#[gort::test]` functions return `()` or `Result<T, E>` with `E: Debug`, not `{Self}`"
    )]
    pub trait TestOutcome {
        /// The type the generated `#[test]` function returns.
        type Output;
        /// Renders a failure (inside the goroutine: `E` need not be `Send`).
        fn into_outcome(self) -> Result<(), String>;
        /// Turns the outcome back into the test's result (on the test thread).
        fn output(r: Result<(), String>) -> Self::Output;
    }

    impl TestOutcome for () {
        type Output = ();
        fn into_outcome(self) -> Result<(), String> {
            Ok(())
        }
        fn output(r: Result<(), String>) {
            if let Err(e) = r {
                panic!("{e}");
            }
        }
    }

    impl<T: TestOutcome, E: Debug> TestOutcome for Result<T, E> {
        type Output = Result<(), TestFailure>;
        fn into_outcome(self) -> Result<(), String> {
            match self {
                Ok(v) => v.into_outcome(),
                Err(e) => Err(format!("{e:?}")),
            }
        }
        fn output(r: Result<(), String>) -> Result<(), TestFailure> {
            r.map_err(TestFailure)
        }
    }

    /// The error of a failed `#[gort::test]`: the test's own error, as its
    /// `Debug` rendering (the harness prints `Error: ` and then this).
    pub struct TestFailure(String);

    impl Debug for TestFailure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    /// Names the test a child process started by `#[gort::test(gomaxprocs = N)]` runs.
    const TEST_CHILD_ENV: &str = "GORT_TEST_CHILD";

    /// `#[gort::test]`: spawns `f` on the shared runtime and joins it; a
    /// panic resumes on the test thread with its payload. With
    /// `gomaxprocs`, re-runs the test alone in a child process with
    /// `GOMAXPROCS` set, unless this is that child.
    pub fn test<F, R>(path: &str, gomaxprocs: Option<usize>, f: F) -> R::Output
    where
        F: FnOnce() -> R + Send + 'static,
        R: TestOutcome,
    {
        if let Some(n) = gomaxprocs {
            if std::env::var_os(TEST_CHILD_ENV).is_none_or(|v| v != path) {
                run_test_child(path, n);
                return R::output(Ok(()));
            }
        }
        let h = crate::spawn(move || f().into_outcome());
        let id = h.id();
        match h.join() {
            Ok(r) => R::output(r),
            Err(p) => {
                // The panic hook printed the message on the goroutine's
                // thread, whose output the harness does not capture for
                // this test: say it again here, where it is captured.
                let msg = p
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| p.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("Box<dyn Any>");
                eprintln!("test goroutine {id} panicked: {msg}");
                panic::resume_unwind(p)
            }
        }
    }

    /// Runs test `path` (`crate::module::name`) in a child process with
    /// `GOMAXPROCS=n` and panics with its output if it fails.
    fn run_test_child(path: &str, n: usize) {
        // The harness names tests by their path inside the crate.
        let name = path.split_once("::").map_or(path, |(_, rest)| rest);
        let exe = std::env::current_exe().expect("gort::test: cannot find the test binary");
        let out = std::process::Command::new(exe)
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(TEST_CHILD_ENV, path)
            .env("GOMAXPROCS", n.to_string())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("gort::test: cannot start the child process");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            panic!(
                "test {name} failed in its child process (GOMAXPROCS={n}): {}\n--- child stdout ---\n{stdout}\n\
                 --- child stderr ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if !stdout.contains("1 passed") {
            panic!("test {name}: the child process ran no test (is the name right?)\n{stdout}");
        }
    }
}
