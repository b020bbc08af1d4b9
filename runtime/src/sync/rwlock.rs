//! `RwLock<T>` (Go's sync.RWMutex, rwmutex.go).

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use super::mutex::RawMutex;
use super::sema::{semacquire, semrelease};
use super::wake::Reason;

const RWMUTEX_MAX_READERS: i32 = 1 << 30;

/// A reader/writer lock for goroutines (Go's `sync.RWMutex`) that owns the
/// data it protects.
///
/// Any number of readers or one writer. Go's writer preference: once a
/// writer is waiting, new readers wait until it has had its turn, so a
/// steady stream of readers cannot starve writers (and, as in Go, a
/// reader must not take a second read lock while holding one if a writer
/// may be waiting: that deadlocks). Waiting parks the goroutine.
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::RwLock;
///
/// let config = Arc::new(RwLock::new(String::from("v1")));
/// let c = config.clone();
/// gort::spawn(move || *c.write() = String::from("v2")).join().unwrap();
/// assert_eq!(*config.read(), "v2");
/// ```
pub struct RwLock<T: ?Sized> {
    /// Held by the writer (and by writers waiting for readers to leave).
    w: RawMutex,
    /// Semaphore for the writer to wait for departing readers.
    writer_sem: AtomicU32,
    /// Semaphore for readers to wait for the writer.
    reader_sem: AtomicU32,
    /// Readers holding or waiting; minus `RWMUTEX_MAX_READERS` while a
    /// writer holds or waits.
    reader_count: AtomicI32,
    /// Readers the waiting writer still waits for.
    reader_wait: AtomicI32,
    data: UnsafeCell<T>,
}

// SAFETY: readers share `&T` across threads (T: Sync) and the writer gets
// `&mut T` from any thread (T: Send), as `std::sync::RwLock`.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

impl<T> RwLock<T> {
    /// An unlocked lock holding `v`.
    ///
    /// ```
    /// let l = gort::sync::RwLock::new(1);
    /// assert_eq!(*l.read(), 1);
    /// ```
    pub const fn new(v: T) -> RwLock<T> {
        RwLock {
            w: RawMutex::new(),
            writer_sem: AtomicU32::new(0),
            reader_sem: AtomicU32::new(0),
            reader_count: AtomicI32::new(0),
            reader_wait: AtomicI32::new(0),
            data: UnsafeCell::new(v),
        }
    }

    /// Consumes the lock, returning the data.
    ///
    /// ```
    /// assert_eq!(gort::sync::RwLock::new(2).into_inner(), 2);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Go's `RLock`: shared access, waiting while a writer holds or waits
    /// for the lock.
    ///
    /// ```
    /// let l = gort::sync::RwLock::new(5);
    /// let (a, b) = (l.read(), l.read());
    /// assert_eq!(*a + *b, 10);
    /// ```
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        if self.reader_count.fetch_add(1, Ordering::SeqCst) + 1 < 0 {
            // A writer is pending: wait for it.
            semacquire(&self.reader_sem, false, Reason::SyncRWMutexRLock);
        }
        RwLockReadGuard { l: self }
    }

    /// Go's `TryRLock`.
    ///
    /// ```
    /// let l = gort::sync::RwLock::new(());
    /// let w = l.write();
    /// assert!(l.try_read().is_none());
    /// drop(w);
    /// assert!(l.try_read().is_some());
    /// ```
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        let mut c = self.reader_count.load(Ordering::Relaxed);
        loop {
            if c < 0 {
                return None;
            }
            match self.reader_count.compare_exchange_weak(c, c + 1, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => return Some(RwLockReadGuard { l: self }),
                Err(x) => c = x,
            }
        }
    }

    fn read_unlock(&self) {
        let r = self.reader_count.fetch_sub(1, Ordering::SeqCst) - 1;
        if r < 0 {
            // Outlined slow path (Go's rUnlockSlow).
            if r + 1 == 0 || r + 1 == -RWMUTEX_MAX_READERS {
                crate::sched::proc::fatal("sync: RUnlock of unlocked RWMutex");
            }
            // A writer is pending; the last departing reader wakes it.
            if self.reader_wait.fetch_sub(1, Ordering::SeqCst) - 1 == 0 {
                semrelease(&self.writer_sem, false);
            }
        }
    }

    /// Go's `Lock`: exclusive access, waiting for the current readers to
    /// leave (new readers wait behind this writer).
    ///
    /// ```
    /// let l = gort::sync::RwLock::new(vec![]);
    /// l.write().push(1);
    /// assert_eq!(l.read().len(), 1);
    /// ```
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        // First, resolve competition with other writers.
        self.w.lock();
        // Announce to readers there is a pending writer.
        let r = self.reader_count.fetch_sub(RWMUTEX_MAX_READERS, Ordering::SeqCst);
        // Wait for active readers.
        if r != 0 && self.reader_wait.fetch_add(r, Ordering::SeqCst) + r != 0 {
            semacquire(&self.writer_sem, false, Reason::SyncRWMutexLock);
        }
        RwLockWriteGuard { l: self }
    }

    /// Go's `TryLock`.
    ///
    /// ```
    /// let l = gort::sync::RwLock::new(());
    /// let r = l.read();
    /// assert!(l.try_write().is_none());
    /// drop(r);
    /// assert!(l.try_write().is_some());
    /// ```
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        if !self.w.try_lock() {
            return None;
        }
        if self.reader_count.compare_exchange(0, -RWMUTEX_MAX_READERS, Ordering::SeqCst, Ordering::Relaxed).is_err() {
            self.w.unlock();
            return None;
        }
        Some(RwLockWriteGuard { l: self })
    }

    fn write_unlock(&self) {
        // Announce to readers there is no active writer.
        let r = self.reader_count.fetch_add(RWMUTEX_MAX_READERS, Ordering::SeqCst) + RWMUTEX_MAX_READERS;
        if r >= RWMUTEX_MAX_READERS {
            crate::sched::proc::fatal("sync: Unlock of unlocked RWMutex");
        }
        // Unblock the readers that queued behind us.
        for _ in 0..r {
            semrelease(&self.reader_sem, false);
        }
        // Allow other writers to proceed.
        self.w.unlock();
    }

    /// Mutable access without locking.
    ///
    /// ```
    /// let mut l = gort::sync::RwLock::new(1);
    /// *l.get_mut() += 1;
    /// assert_eq!(*l.read(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Shared access to a [`RwLock`]'s data; releases the read lock on drop.
///
/// ```
/// let l = gort::sync::RwLock::new(1);
/// let g: gort::sync::RwLockReadGuard<'_, i32> = l.read();
/// assert_eq!(*g, 1);
/// ```
pub struct RwLockReadGuard<'a, T: ?Sized> {
    l: &'a RwLock<T>,
}

// SAFETY: a read guard only gives `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: while a read guard lives no writer holds the lock.
        unsafe { &*self.l.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.l.read_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Exclusive access to a [`RwLock`]'s data; releases the lock on drop.
///
/// ```
/// let l = gort::sync::RwLock::new(1);
/// let mut g: gort::sync::RwLockWriteGuard<'_, i32> = l.write();
/// *g = 2;
/// ```
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    l: &'a RwLock<T>,
}

// SAFETY: a shared write guard only gives `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write guard holds the lock exclusively.
        unsafe { &*self.l.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as `deref`, and `&mut self` makes this access unique.
        unsafe { &mut *self.l.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.l.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
