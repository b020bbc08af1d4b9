//! The system calls behind the stack allocator: slab mappings, guard pages,
//! returning idle pages, and the lock-free slab registry that the overflow
//! handler reads.

use std::cell::Cell;
use std::io;
use std::ptr;

use crate::loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// `madvise(MADV_GUARD_INSTALL)`: turn the range into guard markers that
/// fault on access, without changing the VMA (Linux >= 6.13).
const MADV_GUARD_INSTALL: libc::c_int = 102;

thread_local! {
    /// System calls this thread made on behalf of the stack allocator. Tests
    /// read it to prove reuse is syscall-free; per thread so parallel tests do
    /// not disturb each other.
    static SYSCALLS: Cell<u64> = const { Cell::new(0) };
}

fn count_syscall() {
    SYSCALLS.with(|c| c.set(c.get() + 1));
}

/// Stack-allocator system calls made so far by the calling thread.
#[cfg(test)]
pub(crate) fn syscalls_on_this_thread() -> u64 {
    SYSCALLS.with(Cell::get)
}

/// The system page size (the guard size), read once.
pub(crate) fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let p = if p > 0 { p as usize } else { 4096 };
    assert!(p.is_power_of_two(), "page size {p} is not a power of two");
    PAGE.store(p, Ordering::Relaxed);
    p
}

/// Reserves `len` bytes of read-write, lazily committed, never-swapped-in
/// address space. The kernel commits a page on first touch.
pub(crate) fn map_slab(len: usize) -> io::Result<usize> {
    count_syscall();
    // SAFETY: an anonymous mapping at a kernel-chosen address aliases nothing.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // With transparent huge pages set to "always", the first touch of a
    // 2 MiB-aligned stretch of a big stack would commit 2 MiB, not 4 KiB.
    // Failure only costs memory, so it is ignored.
    count_syscall();
    // SAFETY: [p, p+len) is the mapping just created; the advice changes no
    // contents.
    unsafe { libc::madvise(p, len, libc::MADV_NOHUGEPAGE) };
    Ok(p as usize)
}

/// Tells LeakSanitizer that `[lo, lo + len)`, a slot's usable stack, may
/// hold the only pointer to a heap block, as a thread's stack does. Its
/// leak check scans threads' stacks and the registered regions only, so a
/// box that lives only on a goroutine's (mmap'd) stack was reported as a
/// leak when `cargo fuzz` checked in the middle of a run. Only in fuzzing
/// builds (`--cfg fuzzing`, nightly): the weak symbol is null when no
/// sanitizer runtime is linked. The guard page is left out: the kernel's
/// guard markers keep it in a readable mapping, and LSan would fault
/// reading it. Registered once per fresh slot; slabs are never unmapped.
#[cfg(fuzzing)]
pub(crate) fn leak_check_root(lo: usize, len: usize) {
    extern "C" {
        #[linkage = "extern_weak"]
        static __lsan_register_root_region: Option<unsafe extern "C" fn(*const libc::c_void, usize)>;
    }
    // SAFETY: reads the weak symbol's address, null (`None`) when no
    // sanitizer runtime defines it.
    if let Some(register) = unsafe { __lsan_register_root_region } {
        // SAFETY: [lo, lo + len) stays mapped read-write for the life of
        // the process; LSan only reads it, during a leak check.
        unsafe { register(lo as *const libc::c_void, len) }
    }
}

/// Without `--cfg fuzzing`: nothing (see the fuzzing build's doc).
#[cfg(not(fuzzing))]
#[inline]
pub(crate) fn leak_check_root(_lo: usize, _len: usize) {}

/// Unmaps a slab that never got registered (registry full).
pub(crate) fn unmap_slab(lo: usize, len: usize) {
    count_syscall();
    // SAFETY: [lo, lo+len) is a mapping we created and nothing points into it.
    unsafe { libc::munmap(lo as *mut libc::c_void, len) };
}

const MODE_UNKNOWN: u8 = 0;
const MODE_MADVISE: u8 = 1;
const MODE_MPROTECT: u8 = 2;
static GUARD_MODE: AtomicU8 = AtomicU8::new(MODE_UNKNOWN);

/// How guard pages are installed: `"madvise"` (`MADV_GUARD_INSTALL`, no VMA
/// split) or `"mprotect"` (`PROT_NONE`, two VMAs per live slot: the VMA
/// limit caps live goroutines at about `vm.max_map_count / 2`).
pub(crate) fn guard_mode() -> &'static str {
    match probe_guard_mode() {
        MODE_MADVISE => "madvise",
        _ => "mprotect",
    }
}

/// Finds out once whether the kernel has `MADV_GUARD_INSTALL`, on a scratch
/// mapping so no slab slot is involved.
fn probe_guard_mode() -> u8 {
    let mode = GUARD_MODE.load(Ordering::Relaxed);
    if mode != MODE_UNKNOWN {
        return mode;
    }
    let page = page_size();
    let mut mode = MODE_MPROTECT;
    if !force_mprotect() {
        if let Ok(p) = map_slab(2 * page) {
            count_syscall();
            // SAFETY: [p, p+page) lies in the scratch mapping just created.
            let r = unsafe { libc::madvise(p as *mut libc::c_void, page, MADV_GUARD_INSTALL) };
            if r == 0 {
                mode = MODE_MADVISE;
            }
            unmap_slab(p, 2 * page);
        }
    }
    GUARD_MODE.store(mode, Ordering::Relaxed);
    mode
}

/// Tests can make a child process take the `mprotect` fallback path.
fn force_mprotect() -> bool {
    cfg!(test) && std::env::var_os("GORT_STACK_TEST_FORCE_MPROTECT").is_some()
}

/// Makes the page at `lo` fault on access. `lo` is the lowest page of a slot
/// that is not in use, so no live data is lost.
pub(crate) fn install_guard(lo: usize) -> io::Result<()> {
    let page = page_size();
    let addr = lo as *mut libc::c_void;
    let mode = probe_guard_mode();
    loop {
        count_syscall();
        let r = if mode == MODE_MADVISE {
            // SAFETY: the page belongs to a slab slot that is being handed out
            // for the first time; nobody has a reference into it.
            unsafe { libc::madvise(addr, page, MADV_GUARD_INSTALL) }
        } else {
            // SAFETY: as above; PROT_NONE on an unused page loses nothing.
            unsafe { libc::mprotect(addr, page, libc::PROT_NONE) }
        };
        if r == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) | Some(libc::EAGAIN) => continue,
            Some(libc::ENOMEM) if mode == MODE_MPROTECT => {
                let max = std::fs::read_to_string("/proc/sys/vm/max_map_count")
                    .ok()
                    .and_then(|s| s.trim().parse::<usize>().ok());
                let max = max.map_or("vm.max_map_count".to_string(), |m| {
                    format!("vm.max_map_count ({m}, about {} goroutines)", m / 2)
                });
                return Err(io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!(
                        "cannot install a goroutine stack guard page: the process \
                         reached {max}; this kernel lacks MADV_GUARD_INSTALL \
                         (Linux >= 6.13), so each live goroutine costs two memory \
                         mappings: raise vm.max_map_count or use fewer goroutines"
                    ),
                ));
            }
            _ => return Err(err),
        }
    }
}

/// Gives the pages of `[lo, lo+len)` back to the OS; they read as zero
/// afterwards. Failure is harmless (the pages stay committed) and ignored.
pub(crate) fn release(lo: usize, len: usize) {
    count_syscall();
    // SAFETY: the range is the usable part of an idle slot owned by the global
    // pool, whose lock the caller holds: no one can be using those pages.
    unsafe { libc::madvise(lo as *mut libc::c_void, len, libc::MADV_DONTNEED) };
}

/// Capacity of the slab registry. Slabs of the small classes grow to 4 GiB,
/// so 2^15 of them cover the whole 47-bit user address space.
const MAX_SLABS: usize = 1 << 15;

/// One registered slab: `[lo, hi)` is carved into slots of `slot` bytes, each
/// `[guard page][usable stack]`. `lo == 0` means "not yet published".
struct SlabEntry {
    /// Written once (Release) after `hi` and `slot`; read (Acquire) by the
    /// signal handler.
    lo: AtomicUsize,
    /// Written once before `lo` is published.
    hi: AtomicUsize,
    /// Written once before `lo` is published.
    slot: AtomicUsize,
}

static SLABS: [SlabEntry; MAX_SLABS] =
    [const { SlabEntry { lo: AtomicUsize::new(0), hi: AtomicUsize::new(0), slot: AtomicUsize::new(0) } }; MAX_SLABS];

/// Entries claimed so far (may exceed `MAX_SLABS` after a failed claim).
static NSLABS: AtomicUsize = AtomicUsize::new(0);

/// Appends a slab to the registry. Slabs are never unmapped, so entries are
/// never removed.
pub(crate) fn register_slab(lo: usize, len: usize, slot: usize) -> io::Result<()> {
    let i = NSLABS.fetch_add(1, Ordering::Relaxed);
    if i >= MAX_SLABS {
        return Err(io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("gort: more than {MAX_SLABS} goroutine stack slabs"),
        ));
    }
    let e = &SLABS[i];
    e.hi.store(lo + len, Ordering::Relaxed);
    e.slot.store(slot, Ordering::Relaxed);
    e.lo.store(lo, Ordering::Release);
    Ok(())
}

/// If `addr` lies in the guard page of a slot of one of our slabs, the usable
/// size of that slot. Async-signal-safe: atomics only, no locks, no
/// allocation.
pub(crate) fn guard_hit(addr: usize) -> Option<usize> {
    let n = NSLABS.load(Ordering::Acquire).min(MAX_SLABS);
    for e in &SLABS[..n] {
        let lo = e.lo.load(Ordering::Acquire);
        if lo == 0 || addr < lo {
            continue;
        }
        let hi = e.hi.load(Ordering::Relaxed);
        let slot = e.slot.load(Ordering::Relaxed);
        if addr < hi && slot != 0 {
            // A slab exists, so page_size() is cached: no sysconf here.
            let page = page_size();
            return ((addr - lo) % slot < page).then_some(slot - page);
        }
    }
    None
}
