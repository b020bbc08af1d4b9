//! The memory limit's part in pacing (Go's `debug.SetMemoryLimit`,
//! `GOMEMLIMIT`, `gcControllerState.memoryLimitHeapGoal`, and the
//! scavenger's memory-limit goal).
//!
//! # What the limit counts
//!
//! Go's limit bounds `Sys - HeapReleased`: everything the runtime mapped
//! and has not given back. gort's counterpart ("mapped") is the spans'
//! memory not released to the OS (`heap_sys - heap_released`) plus the
//! goroutine stacks in use or cached per P (`stack_inuse`, each stack at
//! its full usable size: an upper bound of what the kernel committed for
//! it, since stack pages are committed on first touch). The rest of
//! `stack_sys` is not counted: most of it is address space reserved for
//! stacks not carved yet (the first slab alone reserves 32 MiB, half of a
//! 64 MiB limit, for one goroutine), the rest free stacks in the global
//! pool, whose touched pages are returned to the OS only above a 64 MiB
//! watermark: up to that much committed memory the limit does not see.
//! The collector's work memory (`MemStats::gc_sys`: grey-buffer chunks,
//! the spare ones kept ready included) is counted with the stacks. The
//! allocator's own metadata (span structs, allocation maps) is not
//! counted, as `MemStats::sys` does not count it.
//!
//! # The goal
//!
//! As Go's `memoryLimitHeapGoal`: the heap may hold `limit - non-heap -
//! overage`, where non-heap is the stacks and work memory above and
//! overage is how far mapped memory already exceeds the limit (a push
//! back down after an overshoot, fragmentation included); Go's headroom
//! of 3% (at least 1 MiB) is taken off for pacing inaccuracy. The
//! collector's goal is the smaller of this and GOGC's goal
//! (`collector::set_goal`); with GOGC off only the limit's goal applies,
//! so cycles still run as the limit is approached. It is computed at the end of every cycle (after the sweep)
//! and when GOGC or the limit changes; between cycles, growth of the
//! non-heap part (new goroutines) is seen at the next cycle's end.
//!
//! # A floor instead of Go's CPU limiter
//!
//! When the live heap alone leaves no room under the limit, Go's goal
//! falls to the live heap, cycles would run back to back, and Go's
//! `gcCPULimiter` caps the collector at about 50% of the CPU, letting the
//! heap exceed the limit. gort has no CPU accounting per cycle to do that
//! with; instead the limit's goal never falls below the bytes that
//! survived the last cycle plus an eighth of them (at least 1 MiB). The
//! heap therefore grows by at least that much between two cycles however
//! low the limit is, so a cycle's work (proportional to the heap) is
//! spread over a proportional amount of allocation: at worst, the cycle
//! frequency of GOGC=12.5. The price is like Go's: with a limit set below
//! what the program keeps alive, the heap exceeds the limit by up to that
//! eighth, and the limit's back pressure (below) is off.
//!
//! # Back pressure
//!
//! Go's mark assists make a goroutine that allocates during a cycle do
//! marking work in proportion to what it allocates, paced so that the
//! cycle ends near the goal (and at most 10% past it once the heap is
//! over). gort's allocating threads assist with a fixed amount of marking
//! per span taken past the goal (`collector::assist`), and wait when that
//! is not enough: 100 µs per span taken while the heap is over twice its
//! goal and no marking is left to share; when the goal comes from the
//! limit, 1 ms per span taken while the heap is over what the limit allows
//! (the goal plus its headroom). Either wait ends early when the cycle
//! under way ends.
//!
//! # Scavenging
//!
//! As Go's scavenger under a memory limit, after each cycle's sweep (and
//! when the limit changes) the memory of empty spans no thread caches is
//! returned to the OS until mapped memory is at most 95% of the limit
//! (Go's `reduceExtraPercent`). Go's scavenger also runs in the
//! background between cycles; gort's only at those points.

use std::sync::atomic::{AtomicI64, Ordering};

use super::heap;

/// The limit in bytes; [`UNREAD`] until `GOMEMLIMIT` has been read.
static MEMORY_LIMIT: AtomicI64 = AtomicI64::new(UNREAD);
const UNREAD: i64 = i64::MIN;
/// No limit (Go's default, `math.MaxInt64`).
pub(crate) const NO_LIMIT: i64 = i64::MAX;

/// Go's `memoryLimitHeapGoalHeadroomPercent` and
/// `memoryLimitMinHeapGoalHeadroom`.
const HEADROOM_PERCENT: usize = 3;
const MIN_HEADROOM: usize = 1 << 20;
/// The scavenger keeps mapped memory at most this percentage of the limit
/// (Go: 100 - `reduceExtraPercent`).
const SCAVENGE_PERCENT: usize = 95;
/// The floor of the limit's goal: marked + max(marked / FLOOR_DIV, MIN_RUNWAY).
const FLOOR_DIV: usize = 8;
const MIN_RUNWAY: usize = 1 << 20;

/// The current limit (reading `GOMEMLIMIT` on first use).
pub(crate) fn memory_limit() -> i64 {
    let v = MEMORY_LIMIT.load(Ordering::Relaxed);
    if v != UNREAD {
        return v;
    }
    let v = parse_gomemlimit(std::env::var("GOMEMLIMIT").ok().as_deref());
    // A racing `set_memory_limit` wins over the environment.
    match MEMORY_LIMIT.compare_exchange(UNREAD, v, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => v,
        Err(now) => now,
    }
}

/// Stores a new limit (`limit >= 0`) and returns the previous one.
pub(crate) fn swap_memory_limit(limit: i64) -> i64 {
    memory_limit();
    MEMORY_LIMIT.swap(limit, Ordering::Relaxed)
}

/// GOMEMLIMIT as Go reads it (`readGOMEMLIMIT`, `parseByteCount`): unset,
/// empty or `off` is no limit; otherwise a non-negative number of bytes
/// with an optional suffix B, KiB, MiB, GiB or TiB (powers of 1024). Go
/// throws on a malformed value; gort warns, naming the variable, and
/// uses no limit.
pub(crate) fn parse_gomemlimit(v: Option<&str>) -> i64 {
    match v {
        None | Some("") | Some("off") => NO_LIMIT,
        Some(s) => parse_byte_count(s).unwrap_or_else(|| {
            eprintln!(
                "gort: GOMEMLIMIT={s:?} is not a byte count (like 512MiB: a number with an optional suffix B, \
                 KiB, MiB, GiB or TiB) or \"off\"; using no memory limit"
            );
            NO_LIMIT
        }),
    }
}

/// Go's `parseByteCount`.
fn parse_byte_count(s: &str) -> Option<i64> {
    let num = |t: &str| t.parse::<i64>().ok().filter(|n| *n >= 0);
    let b = s.as_bytes();
    match b.last()? {
        b'0'..=b'9' => return num(s),
        b'B' => {}
        _ => return None,
    }
    let body = &s[..s.len() - 1];
    match body.as_bytes().last()? {
        b'0'..=b'9' => return num(body),
        b'i' => {}
        _ => return None,
    }
    if s.len() < 4 {
        return None;
    }
    let power = match b[s.len() - 3] {
        b'K' => 1,
        b'M' => 2,
        b'G' => 3,
        b'T' => 4,
        _ => return None,
    };
    let n = num(&s[..s.len() - 3])? as u64;
    let n = n.checked_mul(1u64 << (10 * power))?;
    i64::try_from(n).ok()
}

/// What the limit allows the heap, from [`limit_goal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LimitGoal {
    /// The heap goal the limit sets (Go's `memoryLimitHeapGoal`, with
    /// gort's floor).
    pub(crate) goal: usize,
    /// Heap bytes at which mapped memory reaches the limit: allocation
    /// over it waits for the cycle under way (`usize::MAX`: no such wait,
    /// the limit is off or the floor overrode it).
    pub(crate) hard: usize,
}

/// The memory limit's goal, `marked` being the bytes that survived the
/// last cycle. With a limit set, this first returns idle spans to the OS
/// if mapped memory is over 95% of the limit (see the module doc).
pub(crate) fn limit_goal(marked: usize) -> LimitGoal {
    let limit = memory_limit();
    if limit == NO_LIMIT {
        // No walk: what any non-heap memory would take off is a rounding
        // error of i64::MAX (Go's NextGC with GOGC=off and no limit is
        // about 8.9e18 as well).
        return LimitGoal { goal: goal_for_room(NO_LIMIT as usize, marked).0, hard: usize::MAX };
    }
    let limit = limit as usize;
    let (sys, released) = heap::span_bytes();
    let non_heap = crate::stack::stack_inuse_bytes().saturating_add(super::work_mem::bytes());
    let mut mapped = (sys - released).saturating_add(non_heap);
    let keep = limit / 100 * SCAVENGE_PERCENT;
    if mapped > keep {
        mapped = mapped.saturating_sub(heap::release_free_spans_upto(mapped - keep));
    }
    let overage = mapped.saturating_sub(limit);
    let room = limit.saturating_sub(non_heap.saturating_add(overage));
    let (goal, floored) = goal_for_room(room, marked);
    LimitGoal { goal, hard: if floored { usize::MAX } else { room.max(goal) } }
}

/// The memory the limit leaves unused now: the limit less the heap's
/// mapped spans, the stacks and the collector's work memory (`usize::MAX`
/// with no limit). The count keeps large cells' children within half of
/// it (`snapshot::Snapshots::set_budget`).
pub(crate) fn limit_room() -> usize {
    let limit = memory_limit();
    if limit == NO_LIMIT {
        return usize::MAX;
    }
    let (sys, released) = heap::span_bytes();
    let used =
        (sys - released).saturating_add(crate::stack::stack_inuse_bytes()).saturating_add(super::work_mem::bytes());
    (limit as usize).saturating_sub(used)
}

/// Go's headroom taken off `room` (the heap bytes the limit allows), then
/// gort's floor; returns the goal and whether the floor set it.
fn goal_for_room(room: usize, marked: usize) -> (usize, bool) {
    let headroom = (room / 100 * HEADROOM_PERCENT).max(MIN_HEADROOM);
    let goal = if room < headroom || room - headroom < headroom { headroom } else { room - headroom };
    let floor = marked.saturating_add((marked / FLOOR_DIV).max(MIN_RUNWAY));
    if goal < floor {
        (floor, true)
    } else {
        (goal, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_byte_counts_as_go() {
        // Go's own cases for parseByteCount (runtime/string_test.go,
        // TestParseByteCount), plus a few of gort's.
        let cases: &[(&str, Option<i64>)] = &[
            // Good numeric inputs.
            ("1", Some(1)),
            ("12345", Some(12345)),
            ("012345", Some(12345)),
            ("98765432100", Some(98765432100)),
            ("9223372036854775807", Some(i64::MAX)),
            // Good trivial suffix inputs.
            ("1B", Some(1)),
            ("12345B", Some(12345)),
            ("012345B", Some(12345)),
            ("98765432100B", Some(98765432100)),
            ("9223372036854775807B", Some(i64::MAX)),
            // Good binary suffix inputs.
            ("1KiB", Some(1 << 10)),
            ("05KiB", Some(5 << 10)),
            ("1MiB", Some(1 << 20)),
            ("10MiB", Some(10 << 20)),
            ("1GiB", Some(1 << 30)),
            ("100GiB", Some(100 << 30)),
            ("1TiB", Some(1 << 40)),
            ("99TiB", Some(99 << 40)),
            // Good zero inputs.
            //
            // -0 is an edge case, but no harm in supporting it.
            ("-0", Some(0)),
            ("0", Some(0)),
            ("0B", Some(0)),
            ("0KiB", Some(0)),
            ("0MiB", Some(0)),
            ("0GiB", Some(0)),
            ("0TiB", Some(0)),
            // Bad inputs.
            ("", None),
            ("-1", None),
            ("a12345", None),
            ("a12345B", None),
            ("12345x", None),
            ("0x12345", None),
            // Bad numeric inputs.
            ("9223372036854775808", None),
            ("9223372036854775809", None),
            ("18446744073709551615", None),
            ("20496382327982653440", None),
            ("18446744073709551616", None),
            ("18446744073709551617", None),
            ("9999999999999999999999", None),
            // Bad trivial suffix inputs.
            ("9223372036854775808B", None),
            ("9223372036854775809B", None),
            ("18446744073709551615B", None),
            ("20496382327982653440B", None),
            ("18446744073709551616B", None),
            ("18446744073709551617B", None),
            ("9999999999999999999999B", None),
            // Bad binary suffix inputs.
            ("1Ki", None),
            ("05Ki", None),
            ("10Mi", None),
            ("100Gi", None),
            ("99Ti", None),
            ("22iB", None),
            ("B", None),
            ("iB", None),
            ("KiB", None),
            ("MiB", None),
            ("GiB", None),
            ("TiB", None),
            ("-120KiB", None),
            ("-891MiB", None),
            ("-704GiB", None),
            ("-42TiB", None),
            ("99999999999999999999KiB", None),
            ("99999999999999999MiB", None),
            ("99999999999999GiB", None),
            ("99999999999TiB", None),
            ("555EiB", None),
            // Mistaken SI suffix inputs.
            ("0KB", None),
            ("0MB", None),
            ("0GB", None),
            ("0TB", None),
            ("1KB", None),
            ("05KB", None),
            ("1MB", None),
            ("10MB", None),
            ("1GB", None),
            ("100GB", None),
            ("1TB", None),
            ("99TB", None),
            ("1K", None),
            ("05K", None),
            ("10M", None),
            ("100G", None),
            ("99T", None),
            ("99999999999999999999KB", None),
            ("99999999999999999MB", None),
            ("99999999999999GB", None),
            ("99999999999TB", None),
            ("99999999999TiB", None),
            // gort's: `+` is accepted by Go's ParseInt; no spaces, no fractions.
            ("+5", Some(5)),
            ("64MiB", Some(64 << 20)),
            ("8388607TiB", Some(8388607 << 40)),
            ("8388608TiB", None),
            ("1 MiB", None),
            ("1.5GiB", None),
            ("1kiB", None),
            ("1PiB", None),
            ("off", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_byte_count(s), *want, "{s:?}");
        }
    }

    #[test]
    fn gomemlimit_defaults_and_off() {
        assert_eq!(parse_gomemlimit(None), NO_LIMIT);
        assert_eq!(parse_gomemlimit(Some("")), NO_LIMIT);
        assert_eq!(parse_gomemlimit(Some("off")), NO_LIMIT);
        assert_eq!(parse_gomemlimit(Some("2GiB")), 2 << 30);
    }

    #[test]
    fn goal_takes_headroom_off_and_keeps_a_floor() {
        let mib = 1 << 20;
        // 3% headroom above 1 MiB.
        assert_eq!(goal_for_room(100 * mib, 10 * mib), (100 * mib - 3 * mib, false));
        // At least 1 MiB of headroom.
        assert_eq!(goal_for_room(20 * mib, 0), (19 * mib, false));
        // Room too small for its headroom: Go's goal is the headroom.
        assert_eq!(goal_for_room(mib, 0), (mib, false));
        // The live heap leaves no room: marked + marked/8.
        assert_eq!(goal_for_room(10 * mib, 64 * mib), (72 * mib, true));
        // ... and at least 1 MiB over it.
        assert_eq!(goal_for_room(0, 2 * mib), (3 * mib, true));
    }
}
