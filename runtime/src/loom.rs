//! The one place that picks `std` or `loom` primitives.
//!
//! Every lock-free protocol in gort takes its atomics, cells, locks and
//! threads from here, so the same code runs under the loom models in
//! `loom-tests/` (built with `RUSTFLAGS="--cfg loom"`) and in production.
//! This mirrors tokio's `loom` module.

#[cfg(not(loom))]
pub(crate) mod sync {
    pub(crate) use std::sync::atomic;
    #[allow(unused_imports)]
    pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

    /// `UnsafeCell` with loom's closure-based access API.
    #[derive(Debug, Default)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    #[allow(dead_code)]
    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(v: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(v))
        }
        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(loom)]
pub(crate) mod sync {
    #[allow(unused_imports)]
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic;
    pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
}

#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) use std::thread;

#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::thread;

/// A function that is `const` in the std build only (loom's atomics have
/// no `const` constructors).
macro_rules! const_fn {
    ($(#[$m:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$m])* $vis const fn $($rest)*
        #[cfg(loom)]
        $(#[$m])* $vis fn $($rest)*
    };
}
pub(crate) use const_fn;

/// A lock that never poisons (the runtime's own locks are never held across
/// user code, so a panic while holding one is a runtime bug, not a user error).
pub(crate) fn lock<T>(m: &sync::Mutex<T>) -> sync::MutexGuard<'_, T> {
    #[cfg(not(loom))]
    {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
    #[cfg(loom)]
    {
        m.lock().unwrap()
    }
}

/// [`lock`] for the collector's side of a lock that mutators take on their
/// own paths (a grey buffer, the spare grey chunks, the span lists): never
/// sleeps on it, but tries, spinning and then yielding between tries
/// ([`spin_turn`]).
///
/// A thread asleep on a futex mutex turns its holder's unlock into a futex
/// wake, a system call that sends the sleeper's CPU an interrupt: 3.7 µs
/// on average on this VM, and up to 340 µs of the caller's CPU time (a
/// C loop of waking one sleeping thread: 0.4% of wakes over 20 µs). When
/// the collector slept on a mutator's grey buffer or on the spare chunks,
/// the mutator paid that wake inside its barrier: a probe of gc_wait's
/// slow barriers saw unlocks of 30-40 µs in `refill_grey`. (Most of those
/// barriers' time was elsewhere, in a push that grew a list:
/// `barrier::take_all_flushed`; this change alone had no effect that runs
/// of gc_wait could tell from the noise.) A thread that only tries never
/// marks the mutex as having sleepers, so an unlock stays a plain store.
pub(crate) fn lock_spinning<T>(m: &sync::Mutex<T>) -> sync::MutexGuard<'_, T> {
    #[cfg(not(loom))]
    {
        let mut turns = 0;
        loop {
            match m.try_lock() {
                Ok(g) => return g,
                Err(std::sync::TryLockError::Poisoned(e)) => return e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => spin_turn(&mut turns),
            }
        }
    }
    #[cfg(loom)]
    {
        m.lock().unwrap()
    }
}

/// A `load(SeqCst)` that loom models as one.
///
/// Loom treats plain `SeqCst` loads as `Acquire` loads (its README,
/// "Unsupported features"): they may read a value older than the newest
/// `SeqCst` store, which the `SeqCst` total order forbids. The collector's
/// Dekker pairs (PROTOCOL.md §1: a store, then a load of the other side's
/// variable) rely on that order, so under loom the load is preceded by a
/// `fence(SeqCst)`, which loom does implement: of two threads that each
/// store, fence and load, one sees the other's store. In the std build it
/// is the plain load.
///
/// (An RMW that stores back the value read would also read the newest
/// value, but loom lets a spin loop of such RMWs read its own stores
/// forever instead of another thread's later store.)
pub(crate) trait LoadSeqCst {
    type Value;
    fn load_seqcst(&self) -> Self::Value;
}

macro_rules! load_seqcst {
    ($(<$($g:ident)?> $t:ty => $v:ty),* $(,)?) => {$(
        impl<$($g)?> LoadSeqCst for $t {
            type Value = $v;
            #[inline(always)]
            fn load_seqcst(&self) -> $v {
                #[cfg(loom)]
                sync::atomic::fence(sync::atomic::Ordering::SeqCst);
                self.load(sync::atomic::Ordering::SeqCst)
            }
        }
    )*};
}

load_seqcst!(
    <> sync::atomic::AtomicBool => bool,
    <> sync::atomic::AtomicU8 => u8,
    <> sync::atomic::AtomicU32 => u32,
    <> sync::atomic::AtomicU64 => u64,
    <T> sync::atomic::AtomicPtr<T> => *mut T,
);

/// Under loom, a `fence(SeqCst)` before the read side of a Dekker pair
/// that is not one load (what [`LoadSeqCst`] does for one): a run of
/// `SeqCst` loads, or a `SeqCst` read-modify-write whose failure is a
/// plain read the protocol relies on (a failed compare-exchange). Nothing
/// in the std build.
#[inline(always)]
pub(crate) fn fence_before_seqcst_reads() {
    #[cfg(loom)]
    sync::atomic::fence(sync::atomic::Ordering::SeqCst);
}

/// One turn of a wait for another thread: a CPU spin hint for the first 64
/// turns, then a yield of the CPU. Under loom every turn yields (loom needs
/// a yield in every spin loop to explore the thread being waited for).
#[inline]
pub(crate) fn spin_turn(turns: &mut u32) {
    #[cfg(not(loom))]
    {
        *turns += 1;
        if *turns < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    #[cfg(loom)]
    {
        *turns += 1;
        loom::thread::yield_now();
    }
}
