//! `GODEBUG`: comma-separated `name=value` settings of the runtime, read
//! from the environment at first use (Go reads it at start-up).
//!
//! gort honours `gctrace` (a line per collection, `gc/stats.rs`) and
//! `schedtrace=X` with `scheddetail=1` (the scheduler's state every X ms,
//! `sched/report.rs`).

use std::sync::OnceLock;

/// The integer value of setting `name`, 0 if it is absent. As in Go's
/// `parsegodebug`, the last valid setting wins and a value that is not a
/// number is ignored.
pub(crate) fn int(name: &str) -> i64 {
    static GODEBUG: OnceLock<String> = OnceLock::new();
    parse(GODEBUG.get_or_init(|| std::env::var("GODEBUG").unwrap_or_default()), name)
}

fn parse(godebug: &str, name: &str) -> i64 {
    let mut v = 0;
    for kv in godebug.split(',') {
        if let Some((k, val)) = kv.trim().split_once('=') {
            if k == name {
                v = val.parse().unwrap_or(v);
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_as_go() {
        assert_eq!(parse("", "gctrace"), 0);
        assert_eq!(parse("gctrace=1", "gctrace"), 1);
        assert_eq!(parse("schedtrace=10,gctrace=2", "gctrace"), 2);
        assert_eq!(parse("schedtrace=10,gctrace=2", "schedtrace"), 10);
        assert_eq!(parse("gctrace=1,gctrace=0", "gctrace"), 0);
        assert_eq!(parse("gctrace=1,gctrace=x", "gctrace"), 1);
        assert_eq!(parse("xgctrace=1", "gctrace"), 0);
    }
}
