//! Per-object specials: finalizers, cleanups and weak cells (Go's
//! `mspecial` records, `mheap.go`), kept in one table keyed by the
//! object's address, and the weak pointers' close/reopen state
//! (PROTOCOL.md C7–C9 and `Weak<T>::upgrade`).
//!
//! An object with an entry has its `special` flag set, so the sweep looks
//! the table up only for those. Entries are added by mutators holding a
//! handle, and removed only by the collector (when the object is found
//! garbage) or by the API that added them (`clear_finalizer`,
//! `Cleanup::stop`), so an address in the table is always a live object.

use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::Arc;

use super::barrier::{self, Obj};
use super::header::{Header, MARKED};
use crate::loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::loom::sync::Mutex;
use crate::loom::LoadSeqCst;

/// Work for the finalizer goroutine: a finalizer (given its object's
/// handle) or a cleanup.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// A finalizer, given the counted handle the collector made for it.
pub(crate) type Finalizer = Box<dyn FnOnce(NonNull<Header>) + Send>;

/// The weak cell of one object: what every `Weak` to it shares (Go's weak
/// handle). `cleared` goes true, for good, when the object is found
/// unreachable.
pub(crate) struct WeakCell {
    pub(crate) obj: Obj,
    pub(crate) cleared: AtomicBool,
}

// SAFETY: `obj` is dereferenced only under the upgrade protocol, which
// keeps it live (PROTOCOL.md `Weak<T>`); `cleared` is atomic.
unsafe impl Sync for WeakCell {}

#[derive(Default)]
pub(crate) struct Entry {
    pub(crate) finalizer: Option<Finalizer>,
    /// Cleanups by id (`Cleanup::stop` removes one), in the order added.
    pub(crate) cleanups: Vec<(u64, Job)>,
    pub(crate) weak: Option<Arc<WeakCell>>,
}

pub(crate) struct Table(Mutex<BTreeMap<usize, Entry>>);

#[cfg(not(loom))]
static TABLE: Table = Table(Mutex::new(BTreeMap::new()));
#[cfg(loom)]
loom::lazy_static! {
    static ref TABLE: Table = Table(Mutex::new(BTreeMap::new()));
    static ref WEAK_CLOSED: AtomicBool = AtomicBool::new(false);
    static ref NEXT_ID: AtomicU64 = AtomicU64::new(1);
}
/// PROTOCOL.md's `weak_closed`: set from mark termination (C7) until the
/// unmarked objects' weak cells are cleared (C8).
#[cfg(not(loom))]
static WEAK_CLOSED: AtomicBool = AtomicBool::new(false);
#[cfg(not(loom))]
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Runs `f` on the entry of `h` (made if missing), under the table's lock.
pub(crate) fn with_entry<R>(h: NonNull<Header>, f: impl FnOnce(&mut Entry) -> R) -> R {
    // SAFETY: the caller holds a handle to `h`.
    let hdr = unsafe { h.as_ref() };
    // Set before the entry exists: the sweep looks for an entry only in
    // objects with the flag, and a flag without an entry is harmless.
    hdr.set_flag(super::header::SPECIAL);
    f(crate::loom::lock(&TABLE.0).entry(h.as_ptr() as usize).or_default())
}

/// Runs `f` on the entry of `h` if there is one.
pub(crate) fn with_existing<R>(h: NonNull<Header>, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
    crate::loom::lock(&TABLE.0).get_mut(&(h.as_ptr() as usize)).map(f)
}

/// A fresh id for a cleanup.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// The objects that have a finalizer now.
pub(crate) fn finalizable() -> Vec<Obj> {
    let t = crate::loom::lock(&TABLE.0);
    t.iter()
        .filter(|(_, e)| e.finalizer.is_some())
        .map(|(&a, _)| Obj(NonNull::new(a as *mut Header).unwrap()))
        .collect()
}

/// C7's start: from now on an upgrade succeeds only for a marked object.
pub(crate) fn close_weak() {
    WEAK_CLOSED.store(true, Ordering::SeqCst);
}

/// C8: clears the weak cell of every old object left unmarked (`dead`
/// tells which), then reopens weak pointers and wakes the upgrades that
/// waited. A cleared cell leaves the table; a later `Weak::new` on a
/// resurrected object makes a new one.
pub(crate) fn clear_weak_and_reopen(dead: impl Fn(Obj) -> bool) {
    {
        let mut t = crate::loom::lock(&TABLE.0);
        for (&a, e) in t.iter_mut() {
            // An address in the table is a live object's.
            let o = Obj(NonNull::new(a as *mut Header).expect("gort: a null object in the specials table"));
            if e.weak.is_some() && dead(o) {
                e.weak.take().unwrap().cleared.store(true, Ordering::SeqCst);
            }
        }
    }
    WEAK_CLOSED.store(false, Ordering::SeqCst);
    wake_upgraders();
}

/// Takes the finalizer of `o`, if it still has one.
pub(crate) fn take_finalizer(o: Obj) -> Option<Finalizer> {
    with_existing(o.0, |e| e.finalizer.take()).flatten()
}

/// Removes the entry of `o`, found garbage, and returns its cleanups (to
/// run once the object is freed). Its weak cell was cleared in C8; a
/// finalizer cannot be left (C9 resurrects every unmarked finalizable
/// object), but one set concurrently would go to the finalizer goroutine
/// to be dropped there, since it is user code.
pub(crate) fn remove_dead(o: Obj, jobs: &mut Vec<Job>) {
    let e = crate::loom::lock(&TABLE.0).remove(&(o.0.as_ptr() as usize));
    if let Some(e) = e {
        if let Some(w) = &e.weak {
            w.cleared.store(true, Ordering::SeqCst);
        }
        if let Some(f) = e.finalizer {
            jobs.push(Box::new(move || drop(f)));
        }
        jobs.extend(e.cleanups.into_iter().map(|(_, j)| j));
    }
}

/// `Weak::upgrade` (PROTOCOL.md): a counted handle to the cell's object,
/// or `None` once the cell is cleared.
pub(crate) fn upgrade(cell: &WeakCell) -> Option<NonNull<Header>> {
    loop {
        let e = barrier::enter(); // before reading any state
        let closed = WEAK_CLOSED.load_seqcst(); // first
        if cell.cleared.load_seqcst() {
            // second
            return None;
        }
        let h = cell.obj.0;
        // SAFETY: not cleared, read with the mark up: the sweep cannot
        // free the object before the next grace period ends.
        let hdr = unsafe { h.as_ref() };
        if closed && hdr.state() & MARKED == 0 {
            drop(e);
            let t = super::stall::start();
            wait_reopen();
            t.stop(super::stall::Kind::WeakWait);
            continue;
        }
        hdr.handles.fetch_add(1, Ordering::SeqCst);
        if barrier::phase_on() {
            e.shade(h);
        }
        return Some(h);
    }
}

#[cfg(not(loom))]
static UPGRADERS: Mutex<Vec<crate::chan::Chan<()>>> = Mutex::new(Vec::new());

/// Parks until weak pointers reopen (at most one grace period, a drain
/// and the clearing pass away).
#[cfg(not(loom))]
fn wait_reopen() {
    let ch = crate::chan::Chan::new(1);
    {
        let mut w = crate::loom::lock(&UPGRADERS);
        if !WEAK_CLOSED.load_seqcst() {
            return;
        }
        w.push(ch.clone());
    }
    ch.recv();
}

#[cfg(not(loom))]
fn wake_upgraders() {
    for ch in std::mem::take(&mut *crate::loom::lock(&UPGRADERS)) {
        let _ = ch.try_send(());
    }
}

#[cfg(loom)]
fn wait_reopen() {
    let mut turns = 0;
    while WEAK_CLOSED.load_seqcst() {
        crate::loom::spin_turn(&mut turns);
    }
}

#[cfg(loom)]
fn wake_upgraders() {}
