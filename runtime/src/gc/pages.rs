//! Memory for small spans, straight from the OS (Go's `sysAlloc`, much
//! reduced): `mmap`, not `malloc`.
//!
//! Through `malloc`, a mutator creating a span took the lock of a malloc
//! arena that a collector thread could be holding (gc_stall, on a loaded
//! machine: 10–20 ms asleep in `posix_memalign`), and a 64 KiB block
//! aligned to 64 KiB cost `malloc` up to twice its size. Here small spans
//! are carved from regions of [`REGION`] bytes, one bump pointer per span
//! size, under a lock held only for the bump (and a region's mapping);
//! they are never returned (the heap keeps empty small spans for their
//! class). Large spans, one object each and freed with it, stay with the
//! global allocator.
//!
//! Under Miri, which maps no memory, small spans come from the global
//! allocator too (and leak, as mapped ones are kept).

use std::alloc::Layout;
use std::ptr::NonNull;

#[cfg(not(miri))]
use super::heap::{BIG_SPAN, SMALL_SPAN};
#[cfg(not(miri))]
use std::sync::Mutex;

/// Bytes mapped at a time for small spans.
#[cfg(not(miri))]
const REGION: usize = 4 << 20;

/// The OS's page size as mappings see it (every span size is a multiple).
#[cfg(not(miri))]
const PAGE: usize = 4096;

/// Per small-span size: the next free address of the current region and
/// its end (0, 0 before the first).
#[cfg(not(miri))]
static BUMP: Mutex<[(usize, usize); 2]> = Mutex::new([(0, 0); 2]);

/// Zeroed memory for a small span of `layout` (one of the two small
/// span sizes, aligned to its size), from a region.
pub(crate) fn small_span(layout: Layout) -> NonNull<u8> {
    #[cfg(miri)]
    {
        // SAFETY: span layouts have a non-zero size.
        NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })
            .unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
    }
    #[cfg(not(miri))]
    {
        debug_assert!(layout.align() == layout.size() && REGION % layout.size() == 0);
        let mut bump = BUMP.lock().unwrap_or_else(|e| e.into_inner());
        let (next, end) = &mut bump[usize::from(layout.size() > SMALL_SPAN)];
        if *next == *end {
            // Aligned to the larger span size, so that both sizes tile it.
            let r = map_aligned(REGION, BIG_SPAN).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
            (*next, *end) = (r.as_ptr() as usize, r.as_ptr() as usize + REGION);
        }
        let p = *next;
        *next += layout.size();
        // SAFETY: inside a region just mapped, so not null.
        unsafe { NonNull::new_unchecked(p as *mut u8) }
    }
}

/// `bytes` of fresh zeroed memory aligned to `align` (a power of two):
/// mapped with room to spare, the misaligned ends unmapped.
#[cfg(not(miri))]
fn map_aligned(bytes: usize, align: usize) -> Option<NonNull<u8>> {
    let bytes = bytes.next_multiple_of(PAGE);
    let extra = align.saturating_sub(PAGE);
    let len = bytes.checked_add(extra)?;
    // SAFETY: a new private anonymous mapping; nothing else is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    let start = p as usize;
    let aligned = start.next_multiple_of(align.max(PAGE));
    let (head, tail) = (aligned - start, start + len - (aligned + bytes));
    // SAFETY: both ranges are page-aligned parts of the mapping just made,
    // outside the part returned.
    unsafe {
        if head > 0 {
            libc::munmap(p, head);
        }
        if tail > 0 {
            libc::munmap((aligned + bytes) as *mut libc::c_void, tail);
        }
    }
    NonNull::new(aligned as *mut u8)
}
