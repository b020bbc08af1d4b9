//! Finalizers and cleanups (Go's `runtime.SetFinalizer` and
//! `runtime.AddCleanup`, `mfinal.go` and `mcleanup.go`), and the finalizer
//! goroutine that runs both.

#[cfg(not(loom))]
use std::collections::VecDeque;
#[cfg(not(loom))]
use std::sync::{Mutex, OnceLock};

use super::handle::Gc;
use super::special;
#[cfg(not(loom))]
use super::special::Job;
use super::trace::Trace;
#[cfg(not(loom))]
use crate::chan::Chan;

/// Sets the finalizer of `gc`'s object (Go's `runtime.SetFinalizer`).
///
/// When the collector finds the object unreachable, it does not free it:
/// it clears the finalizer and queues `f` with a new handle to the object
/// on the finalizer goroutine, which runs finalizers one at a time in the
/// order they were queued. If `f` does not store the handle anywhere, the
/// object is freed by a later cycle; if it does, the object lives on
/// (resurrection) without a finalizer.
///
/// As in Go:
/// - Everything a finalizable object reaches is kept until its finalizer
///   has run. For A → B, both with finalizers and unreachable, A's
///   finalizer runs first, and B's only in a later cycle after A is gone.
/// - A cycle of objects that contains a finalizable object is never
///   collected, nor is an object whose finalizer (or anything it reaches)
///   holds a handle to the object itself.
/// - There is no guarantee that a finalizer runs before the program exits.
/// - Weak pointers to the object are cleared before its finalizer is
///   queued, and stay cleared if it is resurrected.
/// - A panic in a finalizer follows [`go`](fn@crate::go)'s rules.
///
/// Use [`keep_alive`](crate::keep_alive) to keep the object reachable up
/// to a point in the code, for example while only a raw pointer from
/// [`Gc::as_ptr`] is in use.
///
/// # Panics
///
/// With Go's message `runtime.SetFinalizer: finalizer already set` if the
/// object has a finalizer (clear it first with [`clear_finalizer`]).
///
/// ```
/// use gort::chan::Chan;
/// use gort::gc::Gc;
///
/// let done = Chan::new(1);
/// let tx = done.clone();
/// let file = Gc::new(String::from("/tmp/log"));
/// gort::set_finalizer(&file, move |f: Gc<String>| tx.send(format!("closing {f}")));
/// drop(file);
/// gort::gc();
/// assert_eq!(done.recv().unwrap(), "closing /tmp/log");
/// ```
pub fn set_finalizer<T, F>(gc: &Gc<T>, f: F)
where
    T: Trace + Send + Sync + 'static,
    F: FnOnce(Gc<T>) + Send + 'static,
{
    let set = special::with_entry(gc.header_ptr(), |e| {
        if e.finalizer.is_some() {
            return false;
        }
        // SAFETY: the collector calls this with the header of this
        // `Gc<T>`'s object and one count of its handles, made for it.
        e.finalizer = Some(Box::new(move |h| f(unsafe { Gc::from_header(h) })));
        true
    });
    if !set {
        panic!("runtime.SetFinalizer: finalizer already set");
    }
}

/// Removes the finalizer of `gc`'s object, if it has one (Go's
/// `runtime.SetFinalizer(obj, nil)`). The finalizer is dropped without
/// running.
///
/// ```
/// use gort::gc::Gc;
///
/// let g = Gc::new(1u8);
/// gort::set_finalizer(&g, |_| unreachable!());
/// gort::clear_finalizer(&g);
/// gort::set_finalizer(&g, |_| ()); // no panic: the first one is gone
/// ```
pub fn clear_finalizer<T: Trace + Send + Sync + 'static>(gc: &Gc<T>) {
    let f = special::with_existing(gc.header_ptr(), |e| e.finalizer.take()).flatten();
    drop(f); // user code: outside the table's lock
}

/// Runs `cleanup(arg)` after `gc`'s object has been freed (Go 1.24's
/// `runtime.AddCleanup`), on the finalizer goroutine. Unlike a finalizer,
/// a cleanup never sees the object, so it does not delay its collection
/// and works on objects in cycles; an object may have any number of
/// cleanups, and a finalizer too.
///
/// As in Go, if `arg` or `cleanup` holds a handle to the object (or to
/// anything that reaches it), the object is never collected and the
/// cleanup never runs. Cleanups may run in any order relative to each
/// other; a panic in one follows [`go`](fn@crate::go)'s rules. Returns a
/// [`Cleanup`] whose [`stop`](Cleanup::stop) cancels it.
///
/// ```
/// use gort::chan::Chan;
/// use gort::gc::Gc;
///
/// let freed = Chan::new(1);
/// let buf = Gc::new(vec![0u8; 4096]);
/// gort::add_cleanup(&buf, |(fd, ch): (i32, Chan<i32>)| ch.send(fd), (3, freed.clone()));
/// drop(buf);
/// gort::gc();
/// assert_eq!(freed.recv(), Some(3));
/// ```
pub fn add_cleanup<T, S, F>(gc: &Gc<T>, cleanup: F, arg: S) -> Cleanup
where
    T: Trace + Send + Sync + 'static,
    S: Send + 'static,
    F: FnOnce(S) + Send + 'static,
{
    let id = special::next_id();
    let h = gc.header_ptr();
    special::with_entry(h, |e| e.cleanups.push((id, Box::new(move || cleanup(arg)))));
    Cleanup { obj: h.as_ptr() as usize, id }
}

/// A cleanup added by [`add_cleanup`] (Go's `runtime.Cleanup`): keep it
/// to cancel the cleanup with [`stop`](Cleanup::stop).
///
/// ```
/// use gort::gc::Gc;
///
/// let g = Gc::new(vec![1u8; 64]);
/// let c: gort::Cleanup = gort::add_cleanup(&g, |n: usize| println!("freed {n} bytes"), 64);
/// c.stop();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "dropping a Cleanup does not cancel it; call stop() to cancel"]
pub struct Cleanup {
    obj: usize,
    id: u64,
}

impl Cleanup {
    /// Cancels the cleanup if it has not been queued to run yet (Go's
    /// `Cleanup.Stop`). Its closure and argument are dropped.
    ///
    /// ```
    /// use gort::gc::Gc;
    ///
    /// let g = Gc::new(5u32);
    /// let c = gort::add_cleanup(&g, |_: ()| unreachable!(), ());
    /// c.stop();
    /// drop(g);
    /// gort::gc(); // nothing runs
    /// ```
    pub fn stop(self) {
        let Some(h) = std::ptr::NonNull::new(self.obj as *mut super::header::Header) else { return };
        // Ids are never reused, so a stale address finds nothing to remove.
        let job = special::with_existing(h, |e| {
            let i = e.cleanups.iter().position(|(id, _)| *id == self.id)?;
            Some(e.cleanups.remove(i).1)
        })
        .flatten();
        drop(job); // user code: outside the table's lock
    }
}

/// The finalizer goroutine's queue.
#[cfg(not(loom))]
struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    wake: Chan<()>,
}

/// Queues `jobs` for the finalizer goroutine, starting it on first use.
/// Never blocks: a finalizer that blocks delays only the ones after it.
#[cfg(not(loom))]
pub(crate) fn queue(jobs: Vec<Job>) {
    if jobs.is_empty() {
        return;
    }
    static Q: OnceLock<&'static Queue> = OnceLock::new();
    let q = Q.get_or_init(|| {
        let q: &'static Queue = Box::leak(Box::new(Queue { jobs: Mutex::new(VecDeque::new()), wake: Chan::new(1) }));
        crate::Builder::new()
            .name("gort-finalizer".into())
            .go_system(move || loop {
                let job = q.jobs.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                match job {
                    Some(job) => job(),
                    None => {
                        q.wake.recv();
                    }
                }
            })
            .expect("gort: cannot start the finalizer goroutine");
        q
    });
    q.jobs.lock().unwrap_or_else(|e| e.into_inner()).extend(jobs);
    let _ = q.wake.try_send(());
}
