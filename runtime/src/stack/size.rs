//! Stack sizes: the limits, the default (`GORT_STACK_SIZE`), size classes.

use std::io;
use std::sync::OnceLock;

/// Smallest usable stack gort hands out (Go starts goroutines at 8 KiB but
/// grows them; gort cannot move stacks, so the floor is a little higher).
pub(crate) const MIN_STACK_SIZE: usize = 16 << 10;

/// Largest usable stack, Go's `maxstacksize` on 64-bit targets.
pub(crate) const MAX_STACK_SIZE: usize = 1 << 30;

/// Usable size when neither the user nor `GORT_STACK_SIZE` says otherwise.
pub(crate) const DEFAULT_STACK_SIZE: usize = 256 << 10;

/// Number of size classes: usable sizes `MIN_STACK_SIZE << c` for
/// `c in 0..NCLASS`, i.e. 16 KiB, 32 KiB, ... 1 GiB.
pub(crate) const NCLASS: usize = (MAX_STACK_SIZE / MIN_STACK_SIZE).trailing_zeros() as usize + 1;

/// Classes above this usable size get one dedicated mapping per slot rather
/// than a geometrically growing slab.
pub(crate) const DEDICATED_ABOVE: usize = 64 << 20;

/// The size class whose usable size is the smallest power of two
/// `>= max(size, MIN_STACK_SIZE)`, or `None` above `MAX_STACK_SIZE`.
pub(crate) fn class_of(size: usize) -> Option<usize> {
    if size > MAX_STACK_SIZE {
        return None;
    }
    let rounded = size.max(MIN_STACK_SIZE).next_power_of_two();
    Some((rounded / MIN_STACK_SIZE).trailing_zeros() as usize)
}

/// Usable bytes of a class-`c` stack (before the page-size floor that
/// `pool::usable` applies on targets with pages larger than 16 KiB).
pub(crate) const fn class_size(c: usize) -> usize {
    MIN_STACK_SIZE << c
}

/// Default usable size: 256 KiB, or `GORT_STACK_SIZE` (decimal bytes with an
/// optional `K`/`KiB`/`M`/`MiB`/`G`/`GiB` suffix), read once per process.
///
/// A bad value prints one line to stderr and falls back to 256 KiB.
pub(crate) fn default_stack_size() -> usize {
    static DEFAULT: OnceLock<usize> = OnceLock::new();
    *DEFAULT.get_or_init(|| match std::env::var_os("GORT_STACK_SIZE") {
        None => DEFAULT_STACK_SIZE,
        Some(v) if v.is_empty() => DEFAULT_STACK_SIZE,
        Some(v) => {
            let shown = v.to_string_lossy();
            let parsed = match v.to_str() {
                Some(s) => parse_stack_size(s),
                None => Err("not valid UTF-8".to_string()),
            };
            parsed.unwrap_or_else(|why| {
                eprintln!("gort: GORT_STACK_SIZE={shown}: {why}; using the default 256 KiB");
                DEFAULT_STACK_SIZE
            })
        }
    })
}

/// Parses a `GORT_STACK_SIZE` value: decimal digits, then optionally one of
/// `K`, `KiB`, `M`, `MiB`, `G`, `GiB` (binary multiples, case-insensitive,
/// spaces allowed around and between). The result must pass
/// [`check_stack_size`]. The error says why, without the variable's name.
pub(crate) fn parse_stack_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(digits_end);
    if digits.is_empty() {
        return Err("not a number of bytes (want e.g. 262144, 256K or 1MiB)".to_string());
    }
    let suffix = suffix.trim();
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => return Err(format!("unknown suffix {suffix:?} (use K, KiB, M, MiB, G or GiB)")),
    };
    let too_big = || format!("too large: must be between {MIN_STACK_SIZE} and {MAX_STACK_SIZE} bytes");
    let n: usize = digits.parse().map_err(|_| too_big())?;
    let bytes = n.checked_mul(1usize << shift).ok_or_else(too_big)?;
    check_stack_size(bytes).map_err(|e| e.to_string())
}

/// Validates a user-requested stack size (`Builder::stack_size`): it must lie
/// in `MIN_STACK_SIZE..=MAX_STACK_SIZE`. Returns the size unchanged; the
/// allocator rounds it up to its size class.
pub(crate) fn check_stack_size(size: usize) -> io::Result<usize> {
    if (MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(&size) {
        Ok(size)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "stack size {size} bytes is out of range: \
                 must be between {MIN_STACK_SIZE} and {MAX_STACK_SIZE} bytes"
            ),
        ))
    }
}
