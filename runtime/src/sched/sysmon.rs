//! sysmon: a thread without a P that watches the Ps (Go's `sysmon`).
//!
//! Each round it (1) retakes the P of a locked goroutine blocked in an
//! inline `gort::syscall` (first sighting is only recorded, so the syscall
//! has run for at least one sysmon delay, 20 µs at first; Go's `retake`),
//! (2) sets the preemption request of an M whose P has run one time slice
//! for more than 10 ms, and (3) reports, once per episode, an M that has not
//! reached a scheduling point for a second while goroutines homed on it are
//! runnable. Its delay starts at 20 µs, doubles after 50 idle rounds, caps at
//! 10 ms and resets after a retake; when every P is idle it sleeps until an
//! M is started, and repeats a deadlock check that stood down only because
//! of a thread it could not account for (`checkdead::recheck`). With
//! `GODEBUG=schedtrace=X` it prints the scheduler's state every X ms
//! (`report::schedtrace`) and, as Go's, never sleeps deeply.

use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::p::PStatus;
use super::proc::{self, nanotime, SCHED};
use super::spin::SYSCALL_HAS_P;

const STUCK_NS: u64 = 1_000_000_000;

#[derive(Clone, Copy, Default)]
struct PWatch {
    schedtick: u32,
    schedwhen: u64,
    syscalltick: u32,
    syscallwhen: u64,
    reported: bool,
}

pub(crate) fn start() {
    let b = std::thread::Builder::new().name("gort-sysmon".into()).stack_size(128 * 1024);
    super::checkdead::spawn_thread(b, sysmon).expect("gort: cannot start the sysmon thread");
}

fn sysmon() {
    let mut watch = vec![PWatch::default(); proc::MAX_PROCS];
    let mut idle = 0u32;
    let mut delay = 20u64;
    let mut recheck_ms = 5u64;
    // GODEBUG=schedtrace=X: the scheduler's state every X ms (Go's sysmon
    // then never sleeps deeply, so neither does ours).
    let schedtrace = crate::godebug::int("schedtrace").max(0) as u64 * 1_000_000;
    let scheddetail = crate::godebug::int("scheddetail") > 0;
    let mut lasttrace = 0u64;
    loop {
        if idle == 0 {
            delay = 20;
        } else if idle > 50 {
            delay = (delay * 2).min(10_000);
        }
        std::thread::sleep(Duration::from_micros(delay));
        if schedtrace > 0 && lasttrace + schedtrace <= nanotime() {
            lasttrace = nanotime();
            // Not `eprint!`, which panics if stderr is closed: sysmon must live.
            let _ = std::io::stderr().write_all(super::report::schedtrace(scheddetail).as_bytes());
        }
        let procs = proc::gomaxprocs();
        if schedtrace == 0 && !SCHED.gcwaiting.load(Ordering::Acquire) && SCHED.npidle.load(Ordering::SeqCst) == procs {
            SCHED.sysmonwait.store(true, Ordering::SeqCst);
            if SCHED.npidle.load(Ordering::SeqCst) == procs {
                // A deadlock check that stood down for an uncounted thread
                // is repeated soon, backing off while such a thread lives.
                if super::checkdead::recheck_wanted() {
                    SCHED.sysmonnote.sleep_timeout(Duration::from_millis(recheck_ms));
                    recheck_ms = (recheck_ms * 2).min(1000);
                } else {
                    SCHED.sysmonnote.sleep_timeout(Duration::from_secs(1));
                    recheck_ms = 5;
                }
            }
            SCHED.sysmonwait.store(false, Ordering::SeqCst);
            SCHED.sysmonnote.clear();
            super::checkdead::recheck();
            idle = 0;
            continue;
        }
        if retake(&mut watch[..procs as usize], nanotime()) {
            idle = 0;
        } else {
            idle += 1;
        }
    }
}

/// Go's `retake`. Returns whether a P was taken from a syscall.
fn retake(watch: &mut [PWatch], now: u64) -> bool {
    let mut took = false;
    for (i, w) in watch.iter_mut().enumerate() {
        let p = proc::allp(i as u32);
        if p.status() != PStatus::Running {
            w.reported = false;
            continue;
        }
        let pm = p.m.load(Ordering::Acquire);
        // SAFETY: Ms are never freed.
        let Some(m) = (unsafe { pm.as_ref() }) else { continue };

        if m.syscall.state() == SYSCALL_HAS_P {
            let t = m.syscall.tick();
            if w.syscalltick != t {
                w.syscalltick = t;
                w.syscallwhen = now;
                continue;
            }
            // Go leaves the P alone when it has no work, others are free to
            // take new work, and the syscall is short.
            let idle_help = SCHED.spinning.count() + SCHED.npidle.load(Ordering::SeqCst) > 0;
            if p.runq.is_empty()
                && SCHED.runqsize.load(Ordering::Relaxed) == 0
                && SCHED.nmwantp.load(Ordering::Relaxed) == 0
                && idle_help
                && now - w.syscallwhen < 10_000_000
            {
                continue;
            }
            if m.syscall.take() {
                p.m.store(std::ptr::null_mut(), Ordering::Release);
                proc::handoffp(p);
                took = true;
            }
            continue;
        }

        let t = p.schedtick.load(Ordering::Relaxed);
        if w.schedtick != t {
            w.schedtick = t;
            w.schedwhen = now;
            w.reported = false;
            continue;
        }
        let ran = now.saturating_sub(w.schedwhen);
        if ran >= proc::FORCE_PREEMPT.as_nanos() as u64 {
            super::preempt::request(m);
        }
        if ran >= STUCK_NS && !w.reported && m.runnable_homed() > 0 {
            w.reported = true;
            super::report::m_stuck(m, Duration::from_nanos(ran));
        }
    }
    took
}
