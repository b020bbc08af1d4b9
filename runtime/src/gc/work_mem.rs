//! The memory the collector's work holds outside the heap: the grey-buffer
//! chunks (threads' buffers, full ones handed over, the spare stock kept
//! ready for barriers), the collector's mark stacks and edge buffers, the
//! children the count kept from large cells (`snapshot.rs`), and the grey
//! entries shared with assists. `MemStats::gc_sys` reports it
//! (Go's `GCSys`, whose work buffers are this), `MemStats::sys` includes
//! it, and the memory limit counts it as non-heap memory (`pacer.rs`).
//!
//! Buffers are counted at their capacity when their owner notes it, not
//! as they are pushed to: a reading taken while the collector marks may
//! lag a mark stack's latest growth (the collector notes it every few
//! chunks taken and every 64 entries popped, `cycle.rs`). An assist's own
//! stack, short-lived and bounded by its budget, is not counted.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

static BYTES: AtomicUsize = AtomicUsize::new(0);

/// The bytes counted now (`MemStats`, the memory limit: not built under
/// loom).
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn bytes() -> usize {
    BYTES.load(Relaxed)
}

/// `n` more bytes held.
#[inline]
pub(crate) fn grew(n: usize) {
    BYTES.fetch_add(n, Relaxed);
}

/// `n` bytes fewer held.
#[inline]
pub(crate) fn shrank(n: usize) {
    BYTES.fetch_sub(n, Relaxed);
}

/// One buffer's bytes as last counted; dropping it uncounts them.
#[derive(Default, Debug)]
pub(crate) struct Counted(usize);

impl Counted {
    /// Nothing counted yet.
    pub(crate) const NONE: Counted = Counted(0);

    /// Counts `bytes` for the buffer instead of what it counted before.
    #[inline]
    pub(crate) fn set(&mut self, bytes: usize) {
        if bytes > self.0 {
            grew(bytes - self.0);
        } else if bytes < self.0 {
            shrank(self.0 - bytes);
        }
        self.0 = bytes;
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.set(0);
    }
}

/// The bytes a `Vec`'s capacity holds.
#[inline]
pub(crate) fn capacity_bytes<T>(v: &Vec<T>) -> usize {
    v.capacity() * std::mem::size_of::<T>()
}
