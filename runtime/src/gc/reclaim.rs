//! Freeing an object when its last handle goes, as `Arc` does, between
//! collection cycles (PROTOCOL.md §2 `drop(Gc)`, model flag
//! `--prompt-free`).
//!
//! When `handles` falls to zero no handle to the object is left anywhere:
//! no stack, no other object, no cell holds one, so no mutator can reach
//! it again. Two things may still read it: a `GcAtomic::load` that read the
//! slot before the object was swapped out and has not counted its handle
//! yet, and a weak pointer's upgrade; objects that were ever in a slot or
//! have a weak pointer, finalizer or cleanup ([`IN_SLOT`], [`SPECIAL`]) are
//! left to the collector. The collector itself reads every published
//! object while a cycle walks the heap: the thread *claims* the object
//! (marks it GARBAGE, which every walk skips) with its barrier mark up and
//! only if no cycle is active (`barrier::cycle_active`), and a cycle starts
//! with a grace period after turning that flag on, so a claim is either
//! seen by all its walks or not made. During a cycle, an object that is
//! not old in it (born during it: NEWBORN) may be claimed too: the walks
//! skip it and the marker never traces it. The value's drop glue then runs
//! on this thread, and its handles that reach zero are claimed the same
//! way. The slot is freed under a second check of the flag (a walk must
//! never see a slot freed and reused under it); during a cycle the
//! collector frees it after its walks.
//!
//! Objects reaching zero while a drop glue runs here are queued and taken
//! in batches, one barrier mark per batch: dropping a tree of a million
//! nodes raises the mark about twenty times and never recurses (a long
//! linked list does not overflow the stack, as it would with `Arc`). The
//! value's `Drop` still runs before the `drop` of its last handle returns.
//!
//! Large objects are left to the collector: their span is not found from
//! their address.

use std::cell::RefCell;
use std::ptr::NonNull;

use super::barrier::{self, Obj};
use super::header::{Header, GARBAGE, IN_SLOT, NEWBORN, SPECIAL};
use crate::loom::sync::atomic::Ordering;

/// Objects with their size class.
type Batch = Vec<(Obj, u8)>;

/// This thread's objects at zero, waiting for a batch.
#[derive(Default)]
struct Pending {
    /// Reached zero, not claimed yet: (object, size class).
    zero: Batch,
    /// A batch is being dropped on this thread: new zeros wait for it.
    draining: bool,
    /// Spare buffers, kept between drops.
    spare: (Batch, Batch),
}

#[cfg(not(loom))]
thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}
#[cfg(loom)]
loom::thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}

/// The last handle to `h` (of size class `class`, `None` for a large
/// object) was dropped by this thread: frees the object now if it may be.
/// Called right after the decrement that reached zero.
#[inline]
pub(crate) fn last_handle_dropped(h: NonNull<Header>, class: Option<usize>) {
    // SAFETY: the object is still allocated: nothing frees an object with
    // no handle but this thread (below) or a cycle's sweep, which comes
    // after a walk, which skips claimed objects and frees only old ones
    // it found unreachable; an object reaching zero now is not one this
    // thread could be handed by a sweep.
    let hd = unsafe { h.as_ref() };
    // The flags were set by threads holding handles, before the handles
    // were dropped: the decrement (SeqCst) ordered them before this load.
    let Some(class) = class else { return };
    if hd.flags.load(Ordering::Relaxed) & (SPECIAL | IN_SLOT) != 0 {
        return;
    }
    let start = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.zero.push((Obj(h), class as u8));
        !std::mem::replace(&mut p.draining, true)
    });
    if start {
        drain();
    }
}

/// Takes this thread's objects at zero in batches until none is left:
/// claim a batch (and free the previous one) under one barrier mark, then
/// run the batch's drop glue, which may queue more.
#[cold]
fn drain() {
    /// Ends the drain, also when a drop glue panics: the objects of the
    /// unfinished batch then leak (never freed twice, never reused), and
    /// those at zero not yet claimed are left to the collector (garbage
    /// like any other: no handle reaches them).
    struct Done;
    impl Drop for Done {
        fn drop(&mut self) {
            PENDING.with(|p| {
                let mut p = p.borrow_mut();
                p.draining = false;
                p.zero.clear();
            });
        }
    }
    let _done = Done;
    let (mut batch, mut claimed) = PENDING.with(|p| std::mem::take(&mut p.borrow_mut().spare));
    loop {
        PENDING.with(|p| std::mem::swap(&mut p.borrow_mut().zero, &mut batch));
        if batch.is_empty() && claimed.is_empty() {
            break;
        }
        {
            let _freeing = (!claimed.is_empty()).then(free_lock);
            let e = barrier::enter();
            let active = barrier::cycle_active();
            if !claimed.is_empty() {
                // SAFETY: claimed by this thread below in an earlier round,
                // their values dropped since; our mark is up.
                unsafe { free(&claimed, active) };
                claimed.clear();
            }
            if !active {
                for &(Obj(o), _) in &batch {
                    // SAFETY: still allocated (see `last_handle_dropped`).
                    let hd = unsafe { o.as_ref() };
                    // No other thread writes the state of an object with no
                    // handle outside a cycle (shades need a handle, and no
                    // shade outlives its cycle: `shade_from_mutator`).
                    hd.state.store(hd.state.load(Ordering::Relaxed) | GARBAGE, Ordering::Relaxed);
                }
                std::mem::swap(&mut batch, &mut claimed);
            } else {
                // During a cycle only objects that are not old in it
                // (NEWBORN) are claimed: its walks read their headers but
                // skip them, and its marker never traces them (born
                // marked, nothing queues them); their slots are freed
                // after the walks. The others stay the collector's:
                // garbage it frees in this cycle if old and unmarked, else
                // in the next.
                for &(Obj(o), class) in &batch {
                    // SAFETY: still allocated (see `last_handle_dropped`).
                    let hd = unsafe { o.as_ref() };
                    if hd.state.load(Ordering::Relaxed) & NEWBORN != 0 {
                        // A read-modify-write: the cycle's last walk resets
                        // NEWBORN with one too, keeping GARBAGE.
                        hd.state.fetch_or(GARBAGE, Ordering::Relaxed);
                        claimed.push((Obj(o), class));
                    }
                }
            }
            batch.clear();
            drop(e);
        }
        for &(Obj(o), _) in &claimed {
            // SAFETY: claimed: unpublished, unreachable, its drop glue not
            // run yet; the walks of any later cycle skip it.
            unsafe { ((*o.as_ptr()).vt.drop)(o.as_ptr()) };
        }
    }
    PENDING.with(|p| p.borrow_mut().spare = (batch, claimed));
}

#[cfg(not(loom))]
fn free_lock() -> std::sync::MutexGuard<'static, ()> {
    super::heap::freeing()
}

/// # Safety
/// As [`super::heap::free_claimed`].
#[cfg(not(loom))]
unsafe fn free(objs: &[(Obj, u8)], active: bool) {
    // SAFETY: as the caller guarantees.
    unsafe { super::heap::free_claimed(objs, active) }
}

#[cfg(loom)]
fn free_lock() {}

/// Under loom the memory stays allocated (the model frees every object at
/// its end): the object is marked DROPPED, and FREED unless a cycle is
/// active (the real heap then defers the slot: its header stays readable
/// until the cycle's walks end). The collector asserts it never touches a
/// FREED object nor traces a claimed one.
///
/// # Safety
/// As [`super::heap::free_claimed`].
#[cfg(loom)]
unsafe fn free(objs: &[(Obj, u8)], active: bool) {
    use super::header::{DROPPED, FREED};
    let bits = if active { DROPPED } else { DROPPED | FREED };
    for &(Obj(o), _) in objs {
        // SAFETY: allocated until the model ends.
        let hd = unsafe { o.as_ref() };
        hd.state.fetch_or(bits, Ordering::SeqCst);
    }
}
