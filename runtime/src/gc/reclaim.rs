//! Freeing an object when its last handle goes, as `Arc` does, between
//! collection cycles (PROTOCOL.md §2 `drop(Gc)`, model flag
//! `--prompt-free`).
//!
//! When `handles` falls to zero no handle to the object is left anywhere:
//! no stack, no other object, no cell holds one, so no mutator can reach
//! it again. Three things may still read it:
//! - a `GcAtomic::load` that read the slot before the object was swapped
//!   out and has not counted its handle yet, and a weak pointer's upgrade:
//!   objects that were ever in a slot or have a weak pointer, finalizer or
//!   cleanup ([`IN_SLOT`], [`SPECIAL`]) are left to the collector;
//! - a cycle's walks, which read every published object: the thread
//!   *claims* the object (marks it GARBAGE, which every walk skips) with
//!   its barrier mark up, only if no cycle is under way (or the object
//!   was born in the one under way, below), and a cycle
//!   starts with a grace period after bumping the cycle number
//!   (`barrier::begin_cycle`), so a claim is seen by all its walks or not
//!   made;
//! - a cycle that ran *between* the decrement and the claim, found the
//!   count at zero and freed the object: the claim goes ahead only if the
//!   cycle number read before the decrement is the one read under the mark
//!   (`barrier::cycle_seq`; the protocol model's
//!   `counterexamples/pf-proposed.s18.txt` is that interleaving).
//!
//! The value's drop glue then runs on this thread, and its handles that
//! reach zero are claimed the same way. The slot is freed under a second
//! check (a walk must never see a slot freed and reused under it); if a
//! cycle has started meanwhile the collector frees it after its walks.
//! During a cycle only objects born in it are claimed (model flag
//! `--pf-newborn`, PROTOCOL.md §8): `Gc::drop` reads the NEWBORN bit
//! after the cycle number and before its decrement, and a claim under an
//! unchanged odd number goes ahead only if that read saw it. Such an
//! object is not old in the cycle: its walks never count, trace or sweep
//! it, it was born marked (so no shade greys it), and the walk that
//! ends the cycle keeps GARBAGE when it resets it. Its slot is freed
//! after the cycle's walks (`heap::free_deferred`). Other objects
//! reaching zero during a cycle are garbage the collector frees, in that
//! cycle or the next.
//!
//! Objects reaching zero while a drop glue runs here are queued and taken
//! in batches of up to [`BATCH`], most recent first, one barrier mark per
//! batch: dropping a tree goes depth first, its working set stays in the
//! cache, and nothing recurses (a long linked list does not overflow the
//! stack, as it would with `Arc`). The value's `Drop` still runs before
//! the `drop` of its last handle returns.
//!
//! Large objects are left to the collector: their span is not found from
//! their address.

use std::cell::{Cell, RefCell};
use std::ptr::NonNull;

use super::barrier::{self, Obj};
use super::header::{Header, GARBAGE, IN_SLOT, SPECIAL};
use crate::loom::sync::atomic::Ordering;

/// An object whose count reached zero: with its size class, the cycle
/// number read before the decrement, and whether it was NEWBORN (read
/// after that number, before the decrement).
#[derive(Clone, Copy)]
struct Zero {
    obj: Obj,
    seq: u32,
    /// The size class, plus [`Zero::NEWBORN`] (kept in one byte: the
    /// queue's entries stay 16 bytes).
    class: u8,
}

#[cfg(not(loom))]
const _: () = assert!(super::heap::NCLASS <= Zero::NEWBORN as usize);

impl Zero {
    const NEWBORN: u8 = 0x80;

    fn newborn(&self) -> bool {
        self.class & Zero::NEWBORN != 0
    }
}

/// This thread's objects at zero, waiting for a batch: the raw parts of
/// [`Owner::zero`]'s buffer, in a constant thread-local with no destructor
/// (so `Gc::drop`'s push reads it directly, with no check of a lazy
/// registration). Its capacity is 0 before the first push and from the
/// start of the thread's exit.
struct ZeroQueue {
    buf: Cell<*mut Zero>,
    /// Reached zero, not claimed yet: the first `len` entries of `buf`.
    len: Cell<usize>,
    cap: Cell<usize>,
    /// A batch is being dropped on this thread: new zeros wait for it.
    draining: Cell<bool>,
}

/// Owns this thread's buffers; its destructor empties [`ZQ`], and zeros
/// from then on are left to the collector.
#[derive(Default)]
struct Owner {
    /// [`ZQ`]'s buffer, kept at length 0 (its entries are `Copy`).
    zero: RefCell<Vec<Zero>>,
    /// A spare buffer for claimed objects, kept between drops.
    spare: RefCell<Vec<(Obj, u8)>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        let _ = ZQ.try_with(|q| {
            q.len.set(0);
            q.cap.set(0);
        });
    }
}

#[cfg(not(loom))]
thread_local! {
    static ZQ: ZeroQueue = const {
        ZeroQueue {
            buf: Cell::new(std::ptr::null_mut()),
            len: Cell::new(0),
            cap: Cell::new(0),
            draining: Cell::new(false),
        }
    };
    static OWNER: Owner = Owner::default();
}
#[cfg(loom)]
loom::thread_local! {
    static ZQ: ZeroQueue = ZeroQueue {
        buf: Cell::new(std::ptr::null_mut()),
        len: Cell::new(0),
        cap: Cell::new(0),
        draining: Cell::new(false),
    };
    static OWNER: Owner = Owner::default();
}

/// Appends `z` to a full (or not yet allocated) queue; false if the
/// thread's exit has dropped its buffer.
#[cold]
#[inline(never)]
fn push_grow(q: &ZeroQueue, z: Zero) -> bool {
    OWNER
        .try_with(|o| {
            let mut v = o.zero.borrow_mut();
            // SAFETY: `buf` is `v`'s buffer (or `v` is unallocated and
            // `len` is 0), and its first `len` entries were pushed.
            unsafe { v.set_len(q.len.get()) };
            v.push(z);
            q.buf.set(v.as_mut_ptr());
            q.len.set(v.len());
            q.cap.set(v.capacity());
            // SAFETY: shrinking; the entries are `Copy`.
            unsafe { v.set_len(0) };
        })
        .is_ok()
}

/// The last handle to `h` (of size class `class`, `None` for a large
/// object) was dropped by this thread, `seq` being the cycle number
/// (`barrier::cycle_seq`) read before the decrement and `newborn` the
/// object's NEWBORN bit read after `seq` and before the decrement: frees
/// the object now if it may be. Called right after the decrement that
/// reached zero.
///
/// The object is no longer ours to read once a cycle has seen its count
/// at zero: that cycle may free it. So nothing here reads it: the claim
/// (under a barrier mark) reads it, flags first, only if the cycle number
/// is still `seq`.
///
/// Objects queued here while a drop glue on this thread is parked (a
/// `Drop` that blocks) wait for it to resume. If that goroutine was
/// migratable and resumes on another thread, this thread's queue is not
/// drained again: its objects, unclaimed at zero, are garbage the
/// collector frees (never freed twice: a claim needs an unchanged cycle
/// number).
#[inline]
pub(crate) fn last_handle_dropped(h: NonNull<Header>, class: Option<usize>, seq: u32, newborn: bool) {
    let Some(class) = class else { return };
    let z = Zero { obj: Obj(h), seq, class: class as u8 | if newborn { Zero::NEWBORN } else { 0 } };
    let start = ZQ.try_with(|q| {
        let len = q.len.get();
        if len < q.cap.get() {
            // SAFETY: `len < cap`: inside `buf`, which `OWNER` keeps
            // allocated while `cap` is not 0.
            unsafe { q.buf.get().add(len).write(z) };
            q.len.set(len + 1);
        } else if !push_grow(q, z) {
            // A thread whose locals are gone leaves it to the collector.
            return false;
        }
        !q.draining.replace(true)
    });
    if matches!(start, Ok(true)) {
        drain();
    }
}

/// Objects claimed under one barrier mark, at most.
const BATCH: usize = 64;

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
            ZQ.with(|q| {
                q.draining.set(false);
                q.len.set(0);
            });
        }
    }
    let _done = Done;
    let mut claimed = OWNER.try_with(|o| std::mem::take(&mut *o.spare.borrow_mut())).unwrap_or_default();
    loop {
        if claimed.is_empty() && ZQ.with(|q| q.len.get() == 0) {
            break;
        }
        {
            let _freeing = (!claimed.is_empty()).then(free_lock);
            let e = barrier::enter();
            // Orders this batch's decrements (the fast path's is a plain
            // store) before the read below: a cycle that read a count at
            // zero bumped the number before, and we see the bump.
            crate::loom::sync::atomic::fence(Ordering::SeqCst);
            let now = barrier::cycle_seq();
            let active = now & 1 == 1;
            if !claimed.is_empty() {
                // SAFETY: claimed by this thread below in an earlier round,
                // their values dropped since; our mark is up.
                unsafe { free(&claimed, active) };
                claimed.clear();
            }
            ZQ.with(|q| {
                // The most recent zeros first, a few at a time: the
                // children of the objects just dropped, whose headers the
                // decrement has just read (a whole level of a large tree
                // would have left the cache by the time its claim reads
                // them). Claimed straight from the queue: nothing here
                // drops a value, so nothing queues meanwhile.
                let len = q.len.get();
                if len == 0 {
                    return;
                }
                let from = len.saturating_sub(BATCH);
                // SAFETY: entries `from..len` of `buf` were pushed, and
                // nothing pushes or frees the buffer while this reads them.
                let batch = unsafe { std::slice::from_raw_parts(q.buf.get().add(from), len - from) }.iter().copied();
                // Two copies of the loop: between cycles (the common
                // case) the claim is a plain store and NEWBORN does not
                // matter.
                if active {
                    claim_batch::<true>(batch, now, &mut claimed);
                } else {
                    claim_batch::<false>(batch, now, &mut claimed);
                }
                q.len.set(from);
            });
            drop(e);
        }
        for &(Obj(o), _) in &claimed {
            // SAFETY: claimed: unpublished, unreachable, its drop glue not
            // run yet; the walks of any later cycle skip it.
            unsafe { ((*o.as_ptr()).vt.get().drop)(o.as_ptr()) };
        }
    }
    let _ = OWNER.try_with(|o| *o.spare.borrow_mut() = claimed);
}

/// Claims the objects of `batch` that may be freed now (see [`drain`]),
/// moving them to `claimed`: `now` is the cycle number read under the
/// caller's barrier mark, odd (`ACTIVE`) while a cycle is under way.
#[inline(always)]
fn claim_batch<const ACTIVE: bool>(batch: impl Iterator<Item = Zero>, now: u32, claimed: &mut Vec<(Obj, u8)>) {
    for z in batch {
        // A cycle started or ended since the decrement: it may have
        // found the object unreachable and freed it. Not ours.
        // (`--pf-newborn` without this check: the dropper claims an
        // object the next cycle swept,
        // `counterexamples/nb-no-seq.cycles2.s22.txt`.)
        if z.seq != now {
            continue;
        }
        // One is under way: its walks may be reading the object,
        // which is ours only if it was born in this cycle (not old
        // in it). NEWBORN was read before the decrement, while the
        // handle kept the object allocated: read here, it could be
        // the header of an old object this cycle already swept
        // (`counterexamples/nb-late-read.s25.txt`).
        if ACTIVE && !z.newborn() {
            continue;
        }
        // SAFETY: no cycle has read the count at zero, or (a cycle
        // under way, the number unchanged since NEWBORN was seen)
        // the one under way does not free the object, being born in
        // it, and no later one has started: a cycle starting now
        // waits for our mark. The object is still allocated.
        let hd = unsafe { z.obj.0.as_ref() };
        // Read now, not before the decrement: another holder may
        // have put the object in a slot meanwhile.
        if hd.flags.load(Ordering::Relaxed) & (SPECIAL | IN_SLOT) != 0 {
            continue;
        }
        if ACTIVE {
            // The walk that ends the cycle may be resetting it now
            // (its NEWBORN and MARKED go): a read-modify-write on
            // both sides, so neither loses the other's bit
            // (`counterexamples/nb-reset-store.cycles2.s22.txt`).
            let _st = hd.state.fetch_or(GARBAGE, Ordering::SeqCst);
            #[cfg(loom)]
            assert!(_st & GARBAGE == 0, "gort: claimed an object twice or a cycle's garbage");
        } else {
            let st = hd.state.load(Ordering::Relaxed);
            #[cfg(loom)]
            assert!(st & GARBAGE == 0, "gort: claimed an object twice or a cycle's garbage");
            // No other thread writes the state of an object with no
            // handle outside a cycle (shades need a handle, and no
            // shade outlives its cycle: `shade_from_mutator`).
            hd.state.store(st | GARBAGE, Ordering::Relaxed);
        }
        claimed.push((z.obj, z.class & !Zero::NEWBORN));
    }
}

#[cfg(not(loom))]
fn free_lock() -> std::sync::RwLockReadGuard<'static, ()> {
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
