//! Reading the environment at start-up: GOMAXPROCS and the CPU count.

use std::sync::OnceLock;

use super::proc::MAX_PROCS;

/// Go's `ncpu`: CPUs this process may run on (affinity-aware).
pub(crate) fn ncpu() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The initial number of Ps: `GOMAXPROCS` if set to a positive integer,
/// else Go's default, min(CPUs, ceil(cgroup CPU quota)) where a quota never
/// pushes it below 2. Capped at 1024 as Go's `_MaxGomaxprocs`. A bad value
/// prints a warning naming the variable and falls back to the default.
pub(crate) fn initial_gomaxprocs() -> u32 {
    let (n, warning) = gomaxprocs_from_env();
    if let Some(w) = warning {
        eprintln!("{w}");
    }
    n
}

/// What [`initial_gomaxprocs`] reads, and the warning it prints for a bad
/// value (for readers that must not print it again).
pub(crate) fn gomaxprocs_from_env() -> (u32, Option<String>) {
    let default = default_procs();
    match std::env::var("GOMAXPROCS") {
        Ok(v) => match parse_procs(&v) {
            Ok(n) => (n, None),
            Err(why) => (default, Some(format!("gort: GOMAXPROCS={v:?}: {why}; using the default {default}"))),
        },
        Err(_) => (default, None),
    }
}

pub(crate) fn parse_procs(v: &str) -> Result<u32, String> {
    match v.trim().parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n.min(MAX_PROCS as i64) as u32),
        Ok(_) => Err("must be a positive integer".into()),
        Err(_) => Err("not an integer".into()),
    }
}

fn default_procs() -> u32 {
    let cpus = ncpu() as u32;
    let n = match cgroup_quota() {
        Some(q) => cpus.min(q.max(2)),
        None => cpus,
    };
    n.clamp(1, MAX_PROCS as u32)
}

/// ceil(quota / period) from cgroup v2's `cpu.max`, if a limit is set.
fn cgroup_quota() -> Option<u32> {
    let s = std::fs::read_to_string("/sys/fs/cgroup/cpu.max").ok()?;
    let mut it = s.split_whitespace();
    let quota: f64 = it.next()?.parse().ok()?;
    let period: f64 = it.next()?.parse().ok()?;
    (period > 0.0).then(|| (quota / period).ceil() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gomaxprocs() {
        assert_eq!(parse_procs("4"), Ok(4));
        assert_eq!(parse_procs("5000"), Ok(1024));
        assert!(parse_procs("0").is_err());
        assert!(parse_procs("-3").is_err());
        assert!(parse_procs("four").is_err());
    }
}
