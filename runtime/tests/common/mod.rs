//! Helpers shared by the integration tests.
//!
//! Tests in one file run in parallel threads of one process and share one
//! runtime. Anything process-global (GOMAXPROCS, a fresh goroutine id
//! counter, exit codes, stderr) is tested in a child process: the test
//! re-executes its own binary with `--exact <test name>` and `CHILD_ENV`
//! set to the test's name, and the child runs the real body.
#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Names the test whose body a child process must run.
pub const CHILD_ENV: &str = "GORT_IT_CHILD";

/// Generous limit for a child process: it detects hangs, not slowness.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(180);

/// Whether this process is the child started for test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// What a child process did.
pub struct ChildOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ChildOutput {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics (showing the child's output) unless the child's test passed.
    pub fn assert_success(&self) {
        assert!(
            self.status.success(),
            "child process failed: {:?}\n--- child stdout ---\n{}\n--- child stderr ---\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
    }

    /// Both streams, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "status {:?}\n--- child stdout ---\n{}\n--- child stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Re-runs this test binary for test `name` only, with `CHILD_ENV=name`
/// and `envs`, and returns its output. `GOMAXPROCS` is removed from the
/// environment unless `envs` sets it, so the child starts with the
/// default. Panics if the child runs longer than `CHILD_TIMEOUT`.
pub fn run_child(name: &str, envs: &[(&str, &str)]) -> ChildOutput {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"]).env(CHILD_ENV, name).env_remove("GOMAXPROCS");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    output_within(cmd, CHILD_TIMEOUT).unwrap_or_else(|e| panic!("child for {name}: {e}"))
}

/// Runs `cmd` with its output captured; a child still running after
/// `limit` is killed and reported as an error that shows its output.
pub fn output_within(mut cmd: Command, limit: Duration) -> Result<ChildOutput, String> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("cannot start child process");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let err_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let deadline = Instant::now() + limit;
    let (status, timed_out) = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break (st, false);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            break (child.wait().expect("wait"), true);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let o = ChildOutput { status, stdout: out_t.join().unwrap(), stderr: err_t.join().unwrap() };
    if timed_out {
        return Err(format!("did not finish within {limit:?} (hang?), killed: {}", o.dump()));
    }
    Ok(o)
}

/// The test-pattern in one call: in the child for `name`, runs `body` and
/// returns `None`; in the parent, runs the child and returns its output.
pub fn in_child(name: &str, envs: &[(&str, &str)], body: impl FnOnce()) -> Option<ChildOutput> {
    if is_child(name) {
        body();
        None
    } else {
        Some(run_child(name, envs))
    }
}

/// Runs `f` on a fresh std thread and waits for it at most `secs`
/// seconds: a hang becomes a test failure naming `what` instead of a
/// test run that never ends. A panic in `f` is propagated.
pub fn with_timeout<T: Send + 'static>(what: &str, secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let r = f();
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: did not finish within {secs} s (hang in the runtime?)")
        }
    }
}

/// Polls `cond` every millisecond until it holds or `secs` seconds pass;
/// returns whether it held. For conditions that become true "soon" after
/// an event the test cannot wait for directly.
pub fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Spins (yielding with `gosched` on a goroutine) until `cond` holds or
/// `secs` seconds pass; returns whether it held. Usable inside goroutines
/// without blocking their thread.
pub fn spin_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        gort::gosched();
    }
}

/// The kernel thread id of the calling thread, from `/proc/thread-self`
/// (a link to `PID/task/TID`).
pub fn kernel_tid() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").expect("read_link /proc/thread-self");
    let s = link.to_string_lossy().into_owned();
    s.rsplit('/')
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("unexpected /proc/thread-self link {s:?}"))
}

/// Whether thread `tid` of this process still exists.
pub fn task_exists(tid: u32) -> bool {
    std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
}

/// The text of a panic payload.
pub fn payload_str(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else if p.is::<gort::Goexit>() {
        "gort::Goexit".to_string()
    } else {
        "Box<dyn Any>".to_string()
    }
}

/// `join().or_panic()`: like `unwrap`, but a failed assertion inside the
/// goroutine (or thread) shows up with its message in the test failure.
pub trait OrPanic<T> {
    fn or_panic(self) -> T;
}

impl<T> OrPanic<T> for std::thread::Result<T> {
    #[track_caller]
    fn or_panic(self) -> T {
        match self {
            Ok(v) => v,
            Err(p) => panic!("joined goroutine panicked: {}", payload_str(&*p)),
        }
    }
}

/// A 1 KiB object holding a handle to itself.
#[derive(gort::gc::Trace)]
pub struct Looped {
    pub data: [u8; 1000],
    me: gort::gc::GcMutex<Option<gort::gc::Gc<Looped>>>,
}

/// Allocates 1 KiB of garbage that only the collector frees: an object
/// that holds a handle to itself (an acyclic object is freed at once when
/// its last handle goes, and then never makes the heap grow).
pub fn collector_garbage(b: u8) {
    let g = gort::gc::Gc::new(Looped { data: [b; 1000], me: gort::gc::GcMutex::new(None) });
    *g.me.lock() = Some(g.clone());
}
