//! What the runtime prints when things go wrong, in Go's words: fatal
//! panics of detached goroutines, stack overflow headers, and the reports
//! of threads that block outside the runtime.

use std::any::Any;
use std::fmt::Write as _;
use std::io::Write as _;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::g::G;
use super::m::M;
use super::proc::{self, getg};

/// The text of a panic payload, as Go prints a panic value.
pub(crate) fn payload_str(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

/// Installs a panic hook that, on a detached goroutine (`gort::go`), keeps
/// the message and backtrace for Go's fatal report instead of printing
/// std's; every other panic goes to the previous hook.
pub(crate) fn install_panic_hook() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let g = getg();
        // SAFETY: the running goroutine is live while it runs.
        if let Some(g) = unsafe { g.as_ref() } {
            if g.detached {
                let mut s = format!("panic: {}\n\ngoroutine {} [running]:\n", payload_str(info.payload()), g.id);
                if let Some(loc) = info.location() {
                    let _ = writeln!(s, "panicked at {}:{}:{}", loc.file(), loc.line(), loc.column());
                }
                // Capturing is cheap; symbolising (in `fatal_panic`) needs
                // more stack than a goroutine may have, so it runs on the M's.
                let bt = std::backtrace::Backtrace::force_capture();
                // SAFETY: only the running goroutine touches its report.
                unsafe { *g.panic_report.get() = Some(Box::new((s, bt))) };
                return;
            }
        }
        prev(info)
    }));
}

/// Rewrites std's backtrace text in Go's traceback layout (`func()` then
/// a tab-indented `file:line`), keeping only the frames between the panic
/// machinery and the runtime's goroutine entry.
pub(crate) fn go_traceback(bt: &str) -> String {
    let mut frames: Vec<(String, Option<String>)> = Vec::new();
    for line in bt.lines() {
        let t = line.trim_start();
        if let Some(loc) = t.strip_prefix("at ") {
            if let Some(f) = frames.last_mut() {
                f.1.get_or_insert_with(|| loc.to_string());
            }
        } else if let Some((num, sym)) = t.split_once(": ") {
            if num.chars().all(|c| c.is_ascii_digit()) {
                frames.push((sym.to_string(), None));
            }
        }
    }
    let is_panic_frame = |s: &str| {
        s.contains("core::panicking::")
            || s.contains("std::panicking::")
            || s.contains("std::panic::")
            || s.contains("rust_begin_unwind")
            || s.contains("install_panic_hook")
            || s.starts_with("__rustc")
    };
    // The user's frames start after the panic entry points at the top.
    let mut start = frames
        .iter()
        .position(|(s, _)| s.contains("core::panicking::panic") || s.contains("begin_panic") || s.contains("panic_any"))
        .map_or(0, |i| i + 1);
    while frames.get(start).is_some_and(|(s, _)| is_panic_frame(s)) {
        start += 1;
    }
    let end = frames.iter().position(|(s, _)| s.contains("gort::sched::proc::goroutine_main")).unwrap_or(frames.len());
    let mut out = String::new();
    for (sym, loc) in frames.get(start..end.max(start)).unwrap_or_default() {
        let glue = ["std::panicking::catch_unwind", "std::panic::catch_unwind", "__rust_try", "core::ops::function::"];
        let glue_impl = ["<alloc::boxed::Box<F,A> as core::ops", "<core::panic::unwind_safe::AssertUnwindSafe"];
        if glue.iter().any(|x| sym.contains(x)) || glue_impl.iter().any(|x| sym.starts_with(x)) {
            continue;
        }
        let _ = writeln!(out, "{sym}()");
        if let Some(loc) = loc {
            let _ = writeln!(out, "\t{loc}");
        }
    }
    out
}

/// An unrecovered panic in a detached goroutine: Go's report, exit code 2.
pub(crate) fn fatal_panic(g: &G, payload: &(dyn Any + Send)) -> ! {
    // SAFETY: only the running goroutine touches its report.
    let report = match unsafe { (*g.panic_report.get()).take() }.map(|b| *b) {
        Some((head, bt)) => {
            let y = g.yielder.get();
            // SAFETY: we run on this goroutine's coroutine, whose yielder is live.
            unsafe { &*y }.on_parent_stack(move || format!("{head}{}", go_traceback(&bt.to_string())))
        }
        None => format!("panic: {}\n\ngoroutine {} [running]:\n", payload_str(payload), g.id),
    };
    let _ = std::io::stdout().flush();
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(report.as_bytes());
    if !report.ends_with('\n') {
        let _ = e.write_all(b"\n");
    }
    if g.parent_id != 0 {
        let _ = writeln!(e, "created by goroutine {}", g.parent_id);
    }
    let _ = e.flush();
    std::process::exit(2)
}

/// Called from the SIGSEGV handler on a guard-page hit: names the
/// goroutine that overflowed. Must not allocate or lock.
pub(crate) fn describe_overflow(buf: &mut [u8]) -> usize {
    let g = getg();
    // SAFETY: the faulting goroutine is the running one; it is live.
    let Some(g) = (unsafe { g.as_ref() }) else {
        return 0;
    };
    let mut w = SliceWriter { buf, n: 0 };
    let _ = writeln!(w, "goroutine {} [running]:", g.id);
    if let Some(n) = &g.name {
        let _ = writeln!(w, "goroutine name: \"{n}\"");
    }
    w.n
}

struct SliceWriter<'a> {
    buf: &'a mut [u8],
    n: usize,
}

impl std::fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let b = s.as_bytes();
        let k = b.len().min(self.buf.len() - self.n);
        self.buf[self.n..self.n + k].copy_from_slice(&b[..k]);
        self.n += k;
        Ok(())
    }
}

/// What the kernel says a thread waits in: `/proc/self/task/TID/wchan`
/// and the state letter of `.../stat`.
pub(crate) fn kernel_wait(tid: i32) -> String {
    let wchan = std::fs::read_to_string(format!("/proc/self/task/{tid}/wchan")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next()).unwrap_or("?");
    let state_name = match state {
        "R" => "running",
        "S" => "sleeping",
        "D" => "uninterruptible sleep",
        "T" | "t" => "stopped",
        "Z" => "zombie",
        _ => "unknown",
    };
    let wchan = if wchan.is_empty() || wchan == "0" { "-".to_string() } else { wchan };
    format!("state {state} ({state_name}), wchan {wchan}")
}

fn describe_m(m: &M) -> String {
    m.inspect_curg(|g| match g {
        Some(g) => {
            let name = g.name.as_deref().map(|n| format!(" ({n:?})")).unwrap_or_default();
            format!("goroutine {}{name}", g.id)
        }
        None => "no goroutine".to_string(),
    })
}

/// sysmon: an M has not reached a scheduling point for `held` while
/// goroutines homed on it wait.
pub(crate) fn m_stuck(m: &M, held: Duration) {
    let waiting = m.runnable_homed();
    let mut e = std::io::stderr().lock();
    let _ = writeln!(
        e,
        "gort: {} has held thread {} (M{}) for {:.1}s without reaching a scheduling point; \
         {waiting} goroutine(s) homed on that thread are runnable and cannot run elsewhere.\n\
         gort: the kernel says thread {} is in: {}.\n\
         gort: wrap blocking calls in gort::syscall(|| ...), use gort::sync instead of std::sync \
         locks, and call gort::preempt_point() in long loops.",
        describe_m(m),
        m.tid.load(Ordering::Relaxed),
        m.id,
        held.as_secs_f64(),
        m.tid.load(Ordering::Relaxed),
        kernel_wait(m.tid.load(Ordering::Relaxed)),
    );
}

/// A stop-the-world has waited too long: name the goroutines it waits for.
pub(crate) fn stw_stuck(reason: &str, waited: Duration) {
    let mut e = std::io::stderr().lock();
    for i in 0..proc::gomaxprocs() {
        let p = proc::allp(i);
        if p.status() != super::p::PStatus::Running {
            continue;
        }
        let pm = p.m.load(Ordering::Acquire);
        // SAFETY: Ms are never freed.
        let Some(m) = (unsafe { pm.as_ref() }) else { continue };
        let tid = m.tid.load(Ordering::Relaxed);
        let _ = writeln!(
            e,
            "gort: stop-the-world ({reason}) has waited {:.1}s for P{} held by {} on thread {tid}, \
             which has not reached a scheduling point; the kernel says it is in: {}.",
            waited.as_secs_f64(),
            p.id,
            describe_m(m),
            kernel_wait(tid)
        );
    }
    let _ = e.write_all(schedtrace(true).as_bytes());
}

/// Go's `schedtrace`: the scheduler's state in Go's layout, as sysmon
/// prints it every `GODEBUG=schedtrace=X` ms, and the stuck stop-the-world
/// report prints it detailed.
///
/// The summary line is Go's, field for field. The detailed lines keep Go's
/// names where gort has the field (`status`, `schedtick`, `m`, `runqsize`;
/// `p`, `curg`, `spinning`), leave out Go's that have no counterpart here
/// (`mallocing`, `lockedg`, ...) and add gort's: an M's `nextp`, its home
/// queue, `nop`/`wanting` and what the kernel says its thread waits in.
/// Go's per-goroutine lines are left out: a thread's goroutine list is read
/// only by that thread. Read racily, as Go's is; the scheduler lock is only
/// tried, so a report about a hang cannot hang on it.
pub(crate) fn schedtrace(detailed: bool) -> String {
    // Go's `starttime`: the times count from the first trace.
    static STARTTIME: AtomicU64 = AtomicU64::new(0);
    let now = proc::nanotime();
    let start = match STARTTIME.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => now,
        Err(t) => t,
    };
    let mut s = String::new();
    let sched = &proc::SCHED;
    let procs = proc::gomaxprocs();
    let ms: Vec<&'static M> = try_lock(&sched.allm).map(|v| v.clone()).unwrap_or_default();
    let threads = ms.iter().filter(|m| !m.dead.load(Ordering::Relaxed)).count();
    let l = try_lock(&sched.lock);
    let (idle, runq) = match &l {
        Some(l) => (l.midle.len().to_string(), l.runq.len().to_string()),
        None => ("?".to_string(), sched.runqsize.load(Ordering::Relaxed).to_string()),
    };
    let _ = write!(
        s,
        "SCHED {}ms: gomaxprocs={procs} idleprocs={} threads={threads} spinningthreads={} needspinning={} \
         idlethreads={idle} runqueue={runq}",
        now.saturating_sub(start) / 1_000_000,
        sched.npidle.load(Ordering::SeqCst),
        sched.spinning.count(),
        sched.spinning.needed() as u8,
    );
    let ps = (0..procs).map(proc::allp);
    if !detailed {
        let lens: Vec<String> = ps.clone().map(|p| p.runq.len().to_string()).collect();
        let ticks: Vec<String> = ps.map(|p| p.schedtick.load(Ordering::Relaxed).to_string()).collect();
        let _ = writeln!(s, " [ {} ] schedticks=[ {} ]", lens.join(" "), ticks.join(" "));
        return s;
    }
    fn ids<'a>(ms: impl Iterator<Item = &'a &'static M>) -> String {
        ms.map(|m| m.id.to_string()).collect::<Vec<_>>().join(",")
    }
    let (stopwait, lists) = match &l {
        Some(l) => {
            (l.stopwait.to_string(), format!("midle=[{}] mwantp=[{}]", ids(l.midle.iter()), ids(l.mwantp.iter())))
        }
        None => ("?".to_string(), "(sched.lock is held)".to_string()),
    };
    drop(l);
    let _ = writeln!(
        s,
        " gcwaiting={} stopwait={stopwait} sysmonwait={} {lists}",
        sched.gcwaiting.load(Ordering::SeqCst) as u8,
        sched.sysmonwait.load(Ordering::SeqCst) as u8,
    );
    let id = |m: *mut M| {
        // SAFETY: Ms are never freed.
        unsafe { m.as_ref() }.map_or("nil".to_string(), |m| m.id.to_string())
    };
    for p in ps.clone() {
        let _ = writeln!(
            s,
            "  P{}: status={} schedtick={} m={} runqsize={}",
            p.id,
            p.status() as u32,
            p.schedtick.load(Ordering::Relaxed),
            id(p.m.load(Ordering::Acquire)),
            p.runq.len()
        );
    }
    for m in ms {
        // An M's own `p` is its thread's alone: name the P that names it.
        let p = ps
            .clone()
            .find(|p| ptr::eq(p.m.load(Ordering::Acquire), m))
            .map_or("nil".to_string(), |p| p.id.to_string());
        // SAFETY: Ps are never freed.
        let nextp = unsafe { m.nextp.load(Ordering::Acquire).as_ref() }.map_or("nil".to_string(), |p| p.id.to_string());
        let curg = m.inspect_curg(|g| g.map_or("nil".to_string(), |g| g.id.to_string()));
        let home = match try_lock(&m.home) {
            Some(h) => format!("nop={} wanting={}", h.nop as u8, h.wanting as u8),
            None => "(home lock held)".to_string(),
        };
        let tid = m.tid.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "  M{}: p={p} curg={curg} spinning={} nextp={nextp} homeq={} {home} dead={} thread {tid}: {}",
            m.id,
            m.spinning.load(Ordering::Relaxed),
            m.runnable_homed(),
            m.dead.load(Ordering::Relaxed),
            kernel_wait(tid),
        );
    }
    s
}

/// The lock if it is free (a poisoned one too), without waiting.
fn try_lock<T>(m: &std::sync::Mutex<T>) -> Option<std::sync::MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}
