//! gort: Go's runtime for Rust applications.
//!
//! Plain blocking code in stackful goroutines, scheduled on Go's G/M/P
//! work-stealing scheduler — no `async`/`await`.
//!
//! ```
//! let total = gort::run(|| {
//!     let handles: Vec<_> = (1..=4u64).map(|i| gort::spawn(move || i * i)).collect();
//!     handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
//! });
//! assert_eq!(total, 30);
//! ```
//!
//! # Where goroutines run
//!
//! A goroutine that has started stays on its OS thread for life, so
//! thread-locals and `!Send` guards held across blocking calls stay valid;
//! only goroutines that have not started yet are balanced between threads.
//! See [`go()`] for what that means in practice and [`Builder::migratable`]
//! for Go's full migration.
//!
//! # Unwinding
//!
//! gort needs `panic = "unwind"` (the default): `goexit`, `join` returning
//! a panic and Go's exit code 2 on a detached goroutine's panic all rely on
//! it. With `panic = "abort"` every panic aborts the process at once.
#![warn(missing_docs)]
// `stack::os::leak_check_root`'s weak symbol, in `cargo fuzz` builds only.
#![cfg_attr(fuzzing, feature(linkage))]

mod loom;

#[cfg(not(loom))]
mod stack;

pub mod chan;
#[cfg(not(loom))]
pub mod debug;
pub mod gc;
#[cfg(not(loom))]
mod godebug;
#[cfg(not(loom))]
mod macros;
#[cfg(not(loom))]
pub use macros::*;
pub mod sync;
#[cfg(not(loom))]
pub mod time;

pub(crate) mod sched;

#[cfg(not(loom))]
pub use sched::api::{
    current, go, goexit, gomaxprocs, gosched, lock_os_thread, num_cgo_call, num_cpu, num_goroutine, run, scope, spawn,
    unlock_os_thread, version, Builder, Goexit, Goroutine, JoinHandle, Scope, ScopedJoinHandle, GOARCH, GOOS,
};
#[cfg(not(loom))]
pub use sched::local::LocalKey;

#[cfg(not(loom))]
pub use gc::finalize::{add_cleanup, clear_finalizer, set_finalizer, Cleanup};
#[cfg(not(loom))]
pub use gc::stats::{read_mem_stats, MemStats, SizeClassStats};

/// Weak pointers to [`Gc`](gc::Gc) objects (Go 1.24's `weak` package).
pub mod weak {
    pub use crate::gc::weak::Weak;
}

/// Runs a garbage collection and returns once a cycle that started no
/// earlier than the call has finished marking and sweeping (Go's
/// `runtime.GC`). A goroutine calling it parks; a plain thread blocks.
///
/// ```
/// let g = gort::gc::Gc::new(vec![1, 2, 3]);
/// drop(g);
/// gort::gc(); // the vector's memory is reclaimed
/// ```
///
/// # Panics
///
/// If the cycle found a `Trace` impl reporting the same handle twice (a
/// bug in an `unsafe impl Trace`), naming the type.
#[cfg(not(loom))]
pub fn gc() {
    gc::gc()
}

/// Marks `x` as used at this point (Go's `runtime.KeepAlive`): the object
/// a handle points to — and everything it reaches — is not freed before
/// this call, even if the code in between uses only a raw pointer from
/// [`Gc::as_ptr`](gc::Gc::as_ptr).
///
/// ```
/// use gort::gc::Gc;
/// let g = Gc::new(5u32);
/// let p = Gc::as_ptr(&g);
/// // SAFETY: `g` is kept alive below.
/// assert_eq!(unsafe { *p }, 5);
/// gort::keep_alive(&g);
/// ```
#[cfg(not(loom))]
#[inline(never)]
pub fn keep_alive<T: ?Sized>(x: &T) {
    std::hint::black_box(x);
}
#[cfg(not(loom))]
pub use sched::preempt::preempt_point;
#[cfg(not(loom))]
pub use sched::syscall::syscall;

/// Internals re-exported for the fuzz targets in `fuzz/` only.
#[cfg(all(feature = "internals", not(loom)))]
#[doc(hidden)]
pub mod __internals {
    pub use crate::sched::runq::RunQ;
}

/// Internals re-exported for the loom models in `loom-tests/` only.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    /// The channel protocol core (`RawChan`, sudogs, the claim, select).
    pub use crate::chan;
    pub use crate::sched::join::JoinCore;
    pub use crate::sched::note::Note;
    pub use crate::sched::runq::RunQ;
    pub use crate::sched::spin::{Spinning, SyscallSlot, SYSCALL_HAS_P, SYSCALL_LOST_P, SYSCALL_NONE};
    /// The runtime lock, parking, the semaphore table and `WaitGroup`.
    pub use crate::sync;

    /// The collector: the real handles, cells and barriers, and one cycle's
    /// real steps over a model's own objects.
    pub mod gc {
        pub use crate::gc::barrier::{assist_mark, set_assists};
        pub use crate::gc::finalize::set_finalizer;
        pub use crate::gc::free_slots::FreeSlots;
        pub use crate::gc::heap::{
            collect, collect_published, collect_split, free, phase_on, skip_hot, snap_min, young_skip_min, Collected,
            Object, Published,
        };
        pub use crate::gc::weak::Weak;
        pub use crate::gc::*;
    }
}
