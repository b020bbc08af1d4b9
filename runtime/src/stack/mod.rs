//! Goroutine stacks (Go's `stack.go`).
//!
//! Go grows a goroutine's stack by copying it; gort cannot move a stack that
//! Rust code holds references into, so each goroutine gets a fixed stack of
//! address space, committed lazily by the kernel page by page. A parked
//! goroutine that used little stack costs about one 4 KiB page.
//!
//! # Slabs and slots
//!
//! Stacks come in power-of-two size classes of usable bytes, 16 KiB
//! (`MIN_STACK_SIZE`) to 1 GiB (`MAX_STACK_SIZE`, Go's `maxstacksize`). A
//! request is rounded up to its class. Each class carves its stacks from
//! *slabs*: one `mmap(PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|
//! MAP_NORESERVE)` each, cut into equal slots laid out as
//!
//! ```text
//!   slab lo                                                   slab hi
//!   | guard | usable stack ... | guard | usable stack ... | ...
//!   ^ slot lo (Stack::limit)   ^ Stack::base of slot 0 (stack grows down)
//! ```
//!
//! A class's first slab holds 64 slots (or 32 MiB if less) and each next slab
//! doubles, up to 4 GiB of address space: a million 256 KiB stacks (~260 GiB)
//! take about 70 mappings, and adjacent slabs often merge into one VMA.
//! Classes above 64 MiB get one dedicated mapping per slot. Slabs are never
//! unmapped: idle slots stay in the pool and their pages go back to the OS
//! instead (below). That keeps the slab registry append-only, which is what
//! lets the signal handler read it without locks.
//!
//! # Guard pages
//!
//! The lowest page of every slot handed out is a guard page. It is installed
//! lazily, the first time the slot leaves the global pool (one system call
//! per fresh slot, none for reused slots, which keep theirs), with
//! `madvise(MADV_GUARD_INSTALL)` (Linux >= 6.13): guard markers live in the
//! page tables and do not split the mapping, so a million stacks cost a
//! handful of VMAs rather than two million (`vm.max_map_count` defaults to
//! 65530). The kernel is probed once; without the feature gort falls back to
//! `mprotect(PROT_NONE)`, which splits the VMA (`guard_mode()` says which is
//! in use, and running out of VMAs yields an error naming
//! `vm.max_map_count`).
//!
//! # Caching (Go's per-P `stackcache` over the global `stackpool`)
//!
//! - `StackCache` is owned by one P (`&mut self`, not `Sync`): per class up to
//!   32 stacks and 2 MiB. Empty: refill half its capacity from the global
//!   pool. Full: move the older half to the global pool. Classes of 4 MiB and
//!   above bypass it. Alloc and free through it take no lock and make no
//!   system call.
//! - The global pool (`pool.rs`) is one mutex per class around a free list
//!   (newest last: reused first, its pages are warm) and the class's current
//!   slab. When the pool holds more than 64 MiB of idle stacks whose pages are
//!   still committed, the oldest get `madvise(MADV_DONTNEED)`; the free list
//!   keeps released slots as a prefix, so no slot is released twice and a
//!   released slot needs no syscall to reuse (its pages fault back in as
//!   zeros).
//! - `alloc_global`/`free_global` serve threads without a P. Dropping a
//!   `Stack` also returns it to the global pool, so nothing leaks.
//!
//! # Overflow
//!
//! `install_overflow_handler` installs a SIGSEGV/SIGBUS handler on an
//! alternate signal stack (`ensure_altstack` gives every runtime thread one).
//! It looks the fault address up in a fixed array of slab ranges (atomics
//! only: no lock, no allocation) and, for a guard page of one of our slots,
//! prints Go's `runtime: goroutine stack exceeds N-byte limit` / `fatal
//! error: stack overflow` plus the scheduler's goroutine header and exits
//! with status 2. Any other fault goes to the previous handler (std's thread
//! overflow report), or the default action. One guard page suffices for Rust
//! code because rustc probes every page of a frame larger than a page
//! (`probestack`); C code built without `-fstack-clash-protection` could
//! jump over it, as with any thread stack.
//!
//! # Rejected
//!
//! - One `mmap` per stack (corosensei's `DefaultStack`, most coroutine
//!   crates): two VMAs per stack with its `mprotect` guard; such programs die
//!   near 32,700 live coroutines.
//! - No guard page: a deep recursion would silently corrupt a neighbour.
//! - Unmapping idle slabs: needs a registry that can shrink under a signal
//!   handler, and `MADV_DONTNEED` already returns the memory.
//! - Segmented or copied stacks (Go's way): Rust code holds raw pointers into
//!   its stack, so a stack cannot move.
//!
//! `Stack::limit` (corosensei's trait) is the slot's lowest address, guard page
//! included, as corosensei's contract requires ("this limit must include any
//! guard pages"); `Stack::bounds` gives the usable range.

// The scheduler is being written against this API; until it calls every
// entry point, unused items are expected outside tests.
// `stack_inuse_bytes`/`stack_sys_bytes` feed MemStats (GC issue); `Stack::size`/`bounds`,
// `alloc_global` and `guard_mode` serve the tests and diagnostics.
#![cfg_attr(not(test), allow(dead_code, unused_imports))]

mod os;
mod pool;
mod signal;
mod size;
#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::io;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::num::NonZeroUsize;

pub(crate) use os::guard_mode;
pub(crate) use signal::{ensure_altstack, install_overflow_handler};
pub(crate) use size::{check_stack_size, default_stack_size, MAX_STACK_SIZE, MIN_STACK_SIZE, NCLASS};

/// One goroutine stack: a slot of a slab, `[guard page][usable stack]`.
///
/// Moves freely between threads. Hand it back with `StackCache::free` (or
/// `free_global`); dropping it returns it to the global pool.
#[derive(Debug)]
pub(crate) struct Stack {
    /// Lowest address of the slot (its guard page).
    lo: NonZeroUsize,
    /// Size class.
    class: u8,
}

impl Stack {
    fn from_raw(lo: usize, class: usize) -> Stack {
        Stack { lo: NonZeroUsize::new(lo).expect("stack slot at address 0"), class: class as u8 }
    }

    /// Takes the slot out without running `Drop`.
    fn into_raw(self) -> (usize, usize) {
        let s = ManuallyDrop::new(self);
        (s.lo.get(), s.class as usize)
    }

    /// Usable bytes (the guard page excluded).
    pub(crate) fn size(&self) -> usize {
        pool::usable(self.class as usize)
    }

    /// The usable range `[lo, hi)`: `hi` is where the stack starts (it grows
    /// down), `lo` is just above the guard page.
    pub(crate) fn bounds(&self) -> (usize, usize) {
        let c = self.class as usize;
        let hi = self.lo.get() + pool::slot_size(c);
        (hi - pool::usable(c), hi)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        pool::put(self.class as usize, [self.lo.get()]);
    }
}

// SAFETY: every Stack is a slot whose lowest page has a guard installed
// (pool::take installs it before handing a fresh slot out, and slots keep it
// for life), `limit` is that page's address so the range includes the guard,
// `base` is the slot's top, page aligned (hence STACK_ALIGNMENT aligned), and
// the usable part is at least MIN_STACK_SIZE (16 KiB) >= corosensei's 4 KiB.
// The slot is owned exclusively by this Stack until it is freed.
unsafe impl corosensei::stack::Stack for Stack {
    #[inline]
    fn base(&self) -> corosensei::stack::StackPointer {
        self.lo.checked_add(pool::slot_size(self.class as usize)).expect("stack slot wraps the address space")
    }

    #[inline]
    fn limit(&self) -> corosensei::stack::StackPointer {
        self.lo
    }
}

/// Per-P stack cache in front of the global pool (Go's `p.mcache.stackcache`).
/// Owned by one P; moving it with the P is fine, sharing it is not.
pub(crate) struct StackCache {
    /// Per class, slot addresses of idle stacks, newest last.
    classes: [Vec<usize>; NCLASS],
    _not_sync: PhantomData<Cell<()>>,
}

impl StackCache {
    /// An empty cache (no allocation until first use).
    pub(crate) const fn new() -> Self {
        StackCache { classes: [const { Vec::new() }; NCLASS], _not_sync: PhantomData }
    }

    /// A stack of at least `size` usable bytes (rounded up to the size
    /// class; sizes below `MIN_STACK_SIZE` get `MIN_STACK_SIZE`). A cached
    /// stack costs no lock and no system call.
    pub(crate) fn alloc(&mut self, size: usize) -> io::Result<Stack> {
        let c = class(size)?;
        let cap = pool::cache_cap(c);
        if cap == 0 {
            return alloc_class(c);
        }
        let v = &mut self.classes[c];
        if v.is_empty() {
            pool::take(c, (cap / 2).max(1), v)?;
        }
        let lo = v.pop().expect("pool::take returned no stack");
        Ok(Stack::from_raw(lo, c))
    }

    /// Keeps `s` for reuse by this P, spilling the older half of the class to
    /// the global pool when full.
    pub(crate) fn free(&mut self, s: Stack) {
        let (lo, c) = s.into_raw();
        let cap = pool::cache_cap(c);
        if cap == 0 {
            pool::put(c, [lo]);
            return;
        }
        let v = &mut self.classes[c];
        if v.len() >= cap {
            pool::put(c, v.drain(..(cap / 2).max(1)));
        }
        v.push(lo);
    }

    /// Moves every cached stack to the global pool (the P is going away).
    pub(crate) fn flush(&mut self) {
        for (c, v) in self.classes.iter_mut().enumerate() {
            if !v.is_empty() {
                pool::put(c, v.drain(..));
            }
        }
    }
}

impl Default for StackCache {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for StackCache {
    fn drop(&mut self) {
        self.flush();
    }
}

fn class(size: usize) -> io::Result<usize> {
    // class_of fails only above MAX_STACK_SIZE, where check_stack_size errs.
    size::class_of(size).ok_or_else(|| check_stack_size(size).unwrap_err())
}

fn alloc_class(c: usize) -> io::Result<Stack> {
    let mut one = Vec::with_capacity(1);
    pool::take(c, 1, &mut one)?;
    Ok(Stack::from_raw(one[0], c))
}

/// A stack from the global pool, for threads without a P.
pub(crate) fn alloc_global(size: usize) -> io::Result<Stack> {
    alloc_class(class(size)?)
}

/// Returns a stack to the global pool.
pub(crate) fn free_global(s: Stack) {
    drop(s);
}

/// Usable bytes of stacks not in the global pool: in use by goroutines or
/// held in per-P caches (like Go's `StackInuse`).
pub(crate) fn stack_inuse_bytes() -> usize {
    pool::inuse_bytes()
}

/// Bytes of address space mapped for stacks (Go's `StackSys`); committed
/// memory is usually far less, since pages are committed on first touch.
pub(crate) fn stack_sys_bytes() -> usize {
    pool::sys_bytes()
}
