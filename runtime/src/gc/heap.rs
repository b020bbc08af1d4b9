//! The GC allocator: size classes, spans with allocation maps, per-thread
//! caches and large objects (Go's mcache/mcentral/mheap, much reduced).
//!
//! Objects up to 32 KiB go in a span of one size class (Go's classes from
//! 16 bytes up). A thread takes a span of each class it allocates into
//! (its cache, Go's `mcache`), takes the span's free slots a word of 64
//! at a time into a private bitmap ([`FreeSlots`]), and allocates from
//! that without atomics but for the release store that publishes the
//! object. Slots that others free in a cached span are reused only after
//! the span goes back to its class's partial list and is taken again (Go's
//! `allocCache` works the same way); the caching thread's own frees at
//! zero go straight back to its cache. Larger objects get a span of their
//! own. The collector finds objects by walking every span's allocation
//! map; whoever frees a slot (the sweeper, after the drop glue ran, or a
//! mutator freeing at zero) clears its entry and sets its free bit, and
//! puts a full span back on its partial list once 1/32 of its slots are
//! free. A small span keeps, between its head and its slots, the
//! collector's count of each slot's object ([`internal`], 4 bytes a
//! slot), so that the object's header is 8 bytes.
//!
//! Differences from Go: the allocation map has a byte per slot (Go's
//! `allocBits` a bit): publishing an object then needs no read-modify-write
//! racing the sweeper. One span size per range of classes (64 KiB up to
//! 8 KiB objects, 256 KiB above); empty spans are kept for their class
//! rather than returned to a page heap; `debug::free_os_memory` gives the
//! memory of the empty ones that no thread caches back to the OS
//! ([`release_free_spans`]). Small spans are mapped from the OS in
//! regions (`pages`), large ones come from the global allocator.

use std::alloc::Layout;
use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use super::barrier::{self, Obj};
use super::free_slots::FreeSlots;
use super::handle::GcBox;
use super::header::{Header, VTable, VtRef, MARKED, NEWBORN};

/// Go's size classes from 16 bytes (a header is 8 bytes, and Go's 8-byte
/// class would hold only a box of a zero-sized value).
pub(crate) const CLASS_SIZES: [u32; 67] = [
    16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320, 352, 384, 416, 448, 480,
    512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864,
    5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480,
    21760, 24576, 27264, 28672, 32768, 32768,
];
/// Number of small size classes.
pub(crate) const NCLASS: usize = 66;
/// Largest object in a size class.
pub(crate) const MAX_SMALL: usize = 32768;
/// The span-class index of large objects in statistics.
pub(crate) const LARGE: u8 = u8::MAX;

pub(crate) const SMALL_SPAN: usize = 64 << 10;
pub(crate) const BIG_SPAN: usize = 256 << 10;
const SPAN_ALIGN: usize = 4096;
/// Bytes at the start of a small span holding its own [`SpanRef`], before
/// slot 0: small spans are aligned to their size, so an object's span is
/// found from its address alone ([`span_of`]).
const SPAN_HEAD: usize = 64;

/// The bytes of a small span of objects of `size` bytes.
const fn span_size(size: usize) -> usize {
    if size <= 8192 {
        SMALL_SPAN
    } else {
        BIG_SPAN
    }
}

/// Per class, `ceil(2^40 / size)`: `(off * M) >> 40` is `off / size` for
/// every offset inside a span (`off * size < 2^40`), without a division.
const SLOT_MAGIC: [u64; NCLASS] = {
    let mut m = [0u64; NCLASS];
    let mut c = 0;
    while c < NCLASS {
        m[c] = (1u64 << 40).div_ceil(CLASS_SIZES[c] as u64);
        c += 1;
    }
    m
};

/// Per class, the offset of slot 0 in a span (after the span's head and
/// its objects' `internal` counts, 4 bytes per slot, [`internal`];
/// 64-aligned, as a class's objects may be aligned up to their size's
/// largest power of two, at most 64), and the span's slots.
const SPAN_LAYOUT: ([usize; NCLASS], [usize; NCLASS]) = {
    let (mut base, mut n) = ([0usize; NCLASS], [0usize; NCLASS]);
    let mut c = 0;
    while c < NCLASS {
        (base[c], n[c]) = span_layout(CLASS_SIZES[c] as usize);
        c += 1;
    }
    (base, n)
};
const SLOT_BASE: [usize; NCLASS] = SPAN_LAYOUT.0;
const NSLOTS: [usize; NCLASS] = SPAN_LAYOUT.1;

// Each class's counts end before its slot 0, and its slots within the span.
const _: () = {
    let mut c = 0;
    while c < NCLASS {
        let size = CLASS_SIZES[c] as usize;
        assert!(SPAN_HEAD + 4 * NSLOTS[c] <= SLOT_BASE[c]);
        assert!(SLOT_BASE[c] % 64 == 0);
        assert!(SLOT_BASE[c] + NSLOTS[c] * size <= span_size(size));
        c += 1;
    }
};

/// [`SLOT_BASE`] and [`NSLOTS`] of a class of objects of `size` bytes:
/// the most slots that fit after their counts.
const fn span_layout(size: usize) -> (usize, usize) {
    let span = span_size(size);
    let mut n = (span - SPAN_HEAD) / (size + 4);
    loop {
        let base = (SPAN_HEAD + 4 * n).next_multiple_of(64);
        if base + n * size <= span {
            return (base, n);
        }
        n -= 1;
    }
}

/// Bytes before a large object: its `internal` count (the last 4), in a
/// run aligned for the object.
const fn large_head(align: usize) -> usize {
    if align > 8 {
        align
    } else {
        8
    }
}

/// Per class, the mask that takes an object's address to its span's.
const SPAN_MASK: [usize; NCLASS] = {
    let mut m = [0usize; NCLASS];
    let mut c = 0;
    while c < NCLASS {
        m[c] = !(span_size(CLASS_SIZES[c] as usize) - 1);
        c += 1;
    }
    m
};

/// Smallest class index whose size is at least `size` (8-byte steps).
const CLASS_OF: [u8; MAX_SMALL / 8 + 1] = {
    let mut t = [0u8; MAX_SMALL / 8 + 1];
    let mut i = 0;
    let mut c = 0;
    while i < t.len() {
        while (CLASS_SIZES[c] as usize) < i * 8 {
            c += 1;
        }
        t[i] = c as u8;
        i += 1;
    }
    t
};

/// A run of memory holding objects of one size (a single one for large
/// objects).
pub(crate) struct Span {
    base: NonNull<u8>,
    layout: Layout,
    pub(crate) size: usize,
    /// Offset of slot 0 ([`SLOT_BASE`], or [`large_head`]).
    head: usize,
    /// Size class, or [`LARGE`].
    pub(crate) class: u8,
    /// One byte per slot, non-zero while the object there is published.
    /// Bytes rather than bits so that publishing is a plain release store:
    /// a read-modify-write on a word the sweeper also clears would be a
    /// full fence on every allocation, stalling on the new object's cache
    /// miss.
    alloc: Box<[AtomicU8]>,
    /// Free slots in no cache, and whether a cache holds the span or its
    /// partial list does.
    free: FreeSlots,
    /// The span's memory went back to the OS ([`release_free_spans`]); set
    /// and cleared only under its class's partial-list lock, while the span
    /// is listed, empty and in no cache.
    released: AtomicBool,
}

// SAFETY: `base` is memory the span owns; slots are handed out to one
// thread at a time (through the cache protocol) and shared as objects
// afterwards, whose fields are accessed under the collector protocol.
unsafe impl Send for Span {}
// SAFETY: as above; the allocation map and state are atomics.
unsafe impl Sync for Span {}

/// A span pointer that may cross threads (spans are never freed while
/// listed; large spans are freed only by the sweep, between cycles).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct SpanRef(pub(crate) NonNull<Span>);
// SAFETY: `Span` is `Sync`.
unsafe impl Send for SpanRef {}
// SAFETY: as above; a shared `SpanRef` gives only copies of the pointer.
unsafe impl Sync for SpanRef {}

impl SpanRef {
    pub(crate) fn get(&self) -> &Span {
        // SAFETY: a listed span is live (see the type's doc).
        unsafe { self.0.as_ref() }
    }
}

/// Every span, small and large.
static SPANS: Mutex<Vec<SpanRef>> = Mutex::new(Vec::new());
/// Per class: spans with free slots that no thread caches.
static PARTIALS: [Mutex<Vec<SpanRef>>; NCLASS] = [const { Mutex::new(Vec::new()) }; NCLASS];

/// Per size class (and one more for large objects): objects freed so far,
/// added when the sweep frees them. Allocations need no counter: they are
/// the frees plus the objects published now (`counts`).
pub(crate) struct ClassStats {
    pub(crate) frees: AtomicU64,
}

/// Statistics per class; index [`NCLASS`] is large objects.
pub(crate) static STATS: [ClassStats; NCLASS + 1] = [const { ClassStats { frees: AtomicU64::new(0) } }; NCLASS + 1];

/// Bytes in objects plus the free bytes of cached spans (Go's `heapLive`).
pub(crate) static HEAP_LIVE: AtomicUsize = AtomicUsize::new(0);
/// Bytes of large objects freed so far (`TotalAlloc` needs them: large
/// objects have no class size). Written under [`FREEING`].
static LARGE_FREED_BYTES: AtomicU64 = AtomicU64::new(0);
/// Held for reading by whoever frees while it clears allocation bytes and
/// counts those frees ([`free`], a chunk at a time, and [`free_claimed`]),
/// for writing by [`counts`]: the statistics see a free counted exactly
/// when its byte is clear, and never a large span being deallocated.
/// Freers share it: a mutator freeing at zero waited for the sweeper's
/// chunks of 512 frees (gc_wait: 1.3 ms on the CPU, the lock passing back
/// to the sweeper while the mutator woke, again and again).
static FREEING: RwLock<()> = RwLock::new(());

/// [`FREEING`] for a freer: the sweep, for a chunk of frees, or a batch of
/// [`free_claimed`] (taken before the barrier mark goes up, so that no
/// thread waits for a lock with its mark up).
pub(crate) fn freeing() -> std::sync::RwLockReadGuard<'static, ()> {
    FREEING.read().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// [`lock`], timing the wait as [`stall::Kind::HeapLock`] when the lock
/// is held by another thread (the timer's clock reads would otherwise
/// cost more than an uncontended lock).
///
/// [`stall::Kind::HeapLock`]: super::stall::Kind::HeapLock
fn lock_timed<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.try_lock() {
        Ok(g) => g,
        Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            let t = super::stall::start();
            let g = lock(m);
            t.stop(super::stall::Kind::HeapLock);
            g
        }
    }
}

impl Span {
    /// Allocates and lists a span whose slot 0 is `head` bytes in; `align`
    /// is at least its objects' alignment.
    fn create(size: usize, nslots: usize, class: u8, head: usize, bytes: usize, align: usize) -> SpanRef {
        let layout = Layout::from_size_align(bytes, SPAN_ALIGN.max(align)).expect("gort: object too large");
        let base = if class == LARGE {
            // SAFETY: `layout` has a non-zero size.
            NonNull::new(unsafe { std::alloc::alloc(layout) }).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
        } else {
            super::pages::small_span(layout)
        };
        let span = Box::new(Span {
            base,
            layout,
            size,
            head,
            class,
            alloc: (0..nslots).map(|_| AtomicU8::new(0)).collect(),
            free: FreeSlots::new(if class == LARGE { 0 } else { nslots }),
            released: AtomicBool::new(false),
        });
        let r = SpanRef(NonNull::from(Box::leak(span)));
        lock_timed(&SPANS).push(r);
        r
    }

    fn slot(&self, i: usize) -> NonNull<Header> {
        // SAFETY: `i < nslots`, so the slot lies inside the span.
        unsafe { NonNull::new_unchecked(self.base.as_ptr().add(self.head + i * self.size).cast()) }
    }

    /// The collector's count of the object in slot `i` (see [`internal`]).
    pub(crate) fn internal(&self, i: usize) -> &AtomicU32 {
        let at = if self.class == LARGE { self.head - 4 } else { SPAN_HEAD + 4 * i };
        assert!(i < self.alloc.len());
        // SAFETY: inside the span's memory, 4-aligned, below slot 0, and
        // only ever accessed as this atomic.
        unsafe { &*self.base.as_ptr().add(at).cast::<AtomicU32>() }
    }

    /// Published slots.
    fn allocated(&self) -> usize {
        self.alloc.iter().filter(|a| a.load(Ordering::SeqCst) != 0).count()
    }
}

/// A thread's span of one class and its private copy of the free slots
/// (Go's `mspan.allocCache`: the current word of free bits apart, and the
/// addresses of its first slot and byte, so that an allocation is a few
/// instructions reading nothing but this cache).
struct ClassCache {
    /// The free slots of word [`word`](Self::word), taken out of `free`.
    cur: u64,
    /// Slot `64 * word` and its byte of the allocation map.
    cur_slots: *mut u8,
    cur_alloc: *const AtomicU8,
    size: usize,
    word: usize,
    /// The free slots of the other words (`free[word]` is 0 but just
    /// after a refill).
    free: Vec<u64>,
    /// No word below this one has a free slot.
    low: usize,
    span: Option<SpanRef>,
    /// The cached span's slot 0 and allocation map.
    slots: *mut u8,
    alloc: *const AtomicU8,
}

impl ClassCache {
    const EMPTY: ClassCache = ClassCache {
        cur: 0,
        cur_slots: std::ptr::null_mut(),
        cur_alloc: std::ptr::null(),
        size: 0,
        word: 0,
        free: Vec::new(),
        low: 0,
        span: None,
        slots: std::ptr::null_mut(),
        alloc: std::ptr::null(),
    };

    /// Takes a free slot of the current word: its address and its byte of
    /// the allocation map.
    #[inline(always)]
    fn next(&mut self) -> Option<(NonNull<Header>, &'static AtomicU8)> {
        let f = self.cur;
        if f == 0 {
            return None;
        }
        self.cur = f & (f - 1);
        let b = f.trailing_zeros() as usize;
        // SAFETY: a bit is set only for a slot of the cached span
        // (`refill`, `free_claimed`), so `64 * word + b < nslots`: the slot
        // and its byte lie inside the span, which is never freed (small
        // spans are kept for their class).
        Some(unsafe { (NonNull::new_unchecked(self.cur_slots.add(b * self.size).cast()), &*self.cur_alloc.add(b)) })
    }

    /// Makes the lowest word with a free slot current; false if none has.
    fn next_word(&mut self) -> bool {
        self.free[self.word] |= std::mem::take(&mut self.cur);
        let Some(w) = (self.low..self.free.len()).find(|&w| self.free[w] != 0) else {
            self.low = self.free.len();
            return false;
        };
        self.set_word(w);
        true
    }

    /// Makes word `w` current (`cur` is 0).
    fn set_word(&mut self, w: usize) {
        self.cur = std::mem::take(&mut self.free[w]);
        self.word = w;
        self.low = w;
        // SAFETY: `w` is a word of the span's map, so slot `64 * w` and its
        // byte lie inside the span (or one past the map's end, unused).
        (self.cur_slots, self.cur_alloc) = unsafe { (self.slots.add(64 * w * self.size), self.alloc.add(64 * w)) };
    }

    /// Makes slot `i` of the cached span free again (its byte cleared).
    #[inline]
    fn give(&mut self, i: usize) {
        let (w, bit) = (i / 64, 1u64 << (i % 64));
        if w == self.word {
            self.cur |= bit;
        } else {
            self.free[w] |= bit;
            self.low = self.low.min(w);
        }
    }

    /// Takes a free slot, from a new span if this one has none left.
    #[inline]
    fn take(&mut self, class: usize) -> (NonNull<Header>, &'static AtomicU8) {
        if let Some(slot) = self.next() {
            return slot;
        }
        if self.span.is_some() && self.next_word() {
            if let Some(slot) = self.next() {
                return slot;
            }
        }
        self.take_refilled(class)
    }

    /// [`take`](Self::take) from new spans: out of line, so that the fast
    /// path makes no call (and saves no registers for one).
    #[cold]
    #[inline(never)]
    fn take_refilled(&mut self, class: usize) -> (NonNull<Header>, &'static AtomicU8) {
        loop {
            self.refill(class);
            if self.next_word() {
                if let Some(slot) = self.next() {
                    return slot;
                }
            }
        }
    }

    /// Gives the span back with its unused slots, onto the partial list if
    /// it has enough free ones ([`FreeSlots`]; else whoever frees the slot
    /// that makes it enough lists it).
    fn release(&mut self, class: usize) {
        let Some(s) = self.span.take() else { return };
        let span = s.get();
        self.free[self.word] |= std::mem::take(&mut self.cur);
        // Words before `low` are empty (`next_word`, `give`).
        let unused: usize = self.free[self.low..].iter().map(|w| w.count_ones() as usize).sum();
        HEAP_LIVE.fetch_sub(unused * span.size, Ordering::Relaxed);
        if span.free.give_back(&self.free) {
            lock(&PARTIALS[class]).push(s);
        }
    }

    #[cold]
    #[inline(never)]
    fn refill(&mut self, class: usize) {
        self.release(class);
        let popped = {
            let mut list = lock_timed(&PARTIALS[class]);
            let s = list.pop();
            // Cleared under the list's lock, before any slot is handed out
            // (see `release_free_spans`).
            if let Some(s) = s {
                s.get().released.store(false, Ordering::SeqCst);
            }
            s
        };
        let s = match popped {
            Some(s) => s,
            None => {
                let size = CLASS_SIZES[class] as usize;
                let bytes = span_size(size);
                let s = Span::create(size, NSLOTS[class], class as u8, SLOT_BASE[class], bytes, bytes);
                // SAFETY: the span's first `SPAN_HEAD` bytes are no slot's,
                // and `base` is aligned for a pointer.
                unsafe { s.get().base.as_ptr().cast::<SpanRef>().write(s) };
                s
            }
        };
        let span = s.get();
        let nfree = span.free.take(&mut self.free);
        (self.word, self.low, self.cur) = (0, 0, 0);
        self.span = Some(s);
        self.slots = span.slot(0).as_ptr().cast();
        self.alloc = span.alloc.as_ptr();
        self.size = span.size;
        HEAP_LIVE.fetch_add(nfree * span.size, Ordering::Relaxed);
        super::collector::maybe_trigger();
    }
}

struct Cache {
    classes: UnsafeCell<[ClassCache; NCLASS]>,
}

impl Drop for Cache {
    fn drop(&mut self) {
        // From here the thread allocates from one-off caches.
        CACHES.set(std::ptr::null_mut());
        for (c, cc) in self.classes.get_mut().iter_mut().enumerate() {
            cc.release(c);
        }
    }
}

thread_local! {
    static CACHE: Cache = const { Cache { classes: UnsafeCell::new([ClassCache::EMPTY; NCLASS]) } };
    /// [`CACHE`]'s classes once this thread has allocated, null before
    /// and from the start of its destruction. A constant thread-local with
    /// no destructor: reading it checks no lazy registration, so
    /// allocation's fast path is a load from the thread's block.
    static CACHES: std::cell::Cell<*mut [ClassCache; NCLASS]> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// This thread's class caches, once set up by [`with_caches`] and until
/// the thread's exit begins. No reference into them may outlive a call
/// that does not re-enter the cache (`refill` does not).
#[inline(always)]
fn caches() -> Option<NonNull<[ClassCache; NCLASS]>> {
    NonNull::new(CACHES.get())
}

/// Runs `f` with this thread's class caches, setting them up on first
/// use; `None` once the thread's exit has dropped them.
fn with_caches<R>(f: impl FnOnce(Option<&mut [ClassCache; NCLASS]>) -> R) -> R {
    // SAFETY: the caches are this thread's; `f` makes the only reference.
    if let Some(mut c) = caches() {
        return f(Some(unsafe { c.as_mut() }));
    }
    match CACHE.try_with(|c| c.classes.get()) {
        Ok(p) => {
            CACHES.set(p);
            // SAFETY: as above; `CACHE` is alive (`try_with` succeeded).
            f(Some(unsafe { &mut *p }))
        }
        Err(_) => f(None),
    }
}

/// A free small slot of `class` from this thread's cached span, if the
/// cache is set up and the span has one: allocation's fast path, with no
/// call (so it saves no registers for one).
#[inline(always)]
fn alloc_cached(class: usize) -> Option<(NonNull<Header>, &'static AtomicU8)> {
    // SAFETY: `caches` is this thread's, and the reference ends here.
    unsafe { caches()?.as_mut()[class].next() }
}

/// Takes a free small slot of `class`: its address and its byte of the
/// allocation map.
fn alloc_small(class: usize) -> (NonNull<Header>, &'static AtomicU8) {
    with_caches(|c| match c {
        Some(c) => c[class].take(class),
        None => alloc_uncached(class),
    })
}

/// [`alloc_small`] on a thread whose cache is gone (a destructor
/// allocating at thread exit): from a one-off cache.
#[cold]
#[inline(never)]
fn alloc_uncached(class: usize) -> (NonNull<Header>, &'static AtomicU8) {
    let c = Cache { classes: UnsafeCell::new([ClassCache::EMPTY; NCLASS]) };
    // SAFETY: `c` is local.
    unsafe { &mut (*c.classes.get())[class] }.take(class)
}

/// A span of its own for an object of `layout`: slot 0 and its byte.
#[cold]
#[inline(never)]
fn alloc_large(layout: Layout) -> (NonNull<Header>, &'static AtomicU8) {
    let head = large_head(layout.align());
    let bytes = (head + layout.size()).next_multiple_of(SPAN_ALIGN);
    let s = Span::create(bytes, 1, LARGE, head, bytes, layout.align());
    // SAFETY: the span is ours alone until the object is published; its
    // head is 4-aligned and within it.
    unsafe { s.get().base.as_ptr().add(head - 4).cast::<AtomicU32>().write(AtomicU32::new(0)) };
    HEAP_LIVE.fetch_add(bytes, Ordering::Relaxed);
    super::collector::maybe_trigger();
    // SAFETY: spans are leaked boxes, and a large one is freed only by
    // the sweep of its object, which comes after this publication.
    let span: &'static Span = unsafe { s.0.as_ref() };
    (span.slot(0), &span.alloc[0])
}

/// Allocates and publishes a `GcBox<T>` holding `value`, with one handle;
/// `class` is `class_for` its layout (a constant of the caller's type,
/// not looked up per allocation).
#[inline(always)]
pub(crate) fn alloc_object<T>(value: T, vt: &'static VTable, class: Option<usize>) -> NonNull<GcBox<T>> {
    debug_assert_eq!(class, class_for(Layout::new::<GcBox<T>>()));
    let fast = match class {
        Some(c) if !super::collector::PRESSURE.load(Ordering::Relaxed) => alloc_cached(c),
        _ => None,
    };
    let (slot, published) = match fast {
        Some(s) => s,
        None => alloc_slow(Layout::new::<GcBox<T>>(), class),
    };
    // Every free slot's count is 0 (see `internal`): checked where debug
    // assertions are on (unit tests, fuzzing), as a stale count would make
    // the next cycle take held handles for internal ones.
    #[cfg(debug_assertions)]
    {
        // SAFETY: a slot of a span of this class (or a large span).
        let n = unsafe { internal_of_slot(slot, class.map_or(LARGE, |c| c as u8)) }.load(Ordering::Relaxed);
        debug_assert_eq!(n, 0, "gort: a free slot with a stale collector count");
    }
    // Read the phase before publishing (PROTOCOL.md `Gc::new`, S8/S14).
    let on = barrier::phase_on();
    let p: NonNull<GcBox<T>> = slot.cast();
    let state = if on { NEWBORN | MARKED } else { 0 };
    // SAFETY: the slot is free, ours alone, large enough and aligned for
    // `GcBox<T>` (`class_for`), and unpublished: nobody else reads it yet.
    unsafe {
        p.as_ptr().write(GcBox {
            header: Header {
                handles: std::sync::atomic::AtomicU32::new(1),
                state: std::sync::atomic::AtomicU8::new(state),
                flags: std::sync::atomic::AtomicU8::new(0),
                vt: VtRef::new(vt),
            },
            value,
        })
    };
    // Publishes the object, after its header and value are written. The
    // phase was read before (PROTOCOL.md `Gc::new`); a release store keeps
    // that load and the object's writes before the publication.
    published.store(1, Ordering::Release);
    p
}

/// A slot for an object of `layout` (`class` its size class) when the
/// cached span has none or the heap is past its goal: a mark assist first
/// if it is, then a slot from a new span, or a large object's span.
#[cold]
#[inline(never)]
fn alloc_slow(layout: Layout, class: Option<usize>) -> (NonNull<Header>, &'static AtomicU8) {
    if super::collector::PRESSURE.load(Ordering::Relaxed) {
        super::collector::assist();
    }
    match class {
        Some(c) => alloc_small(c),
        None => alloc_large(layout),
    }
}

/// The size class for a layout, or `None` for a large object.
pub(crate) const fn class_for(l: Layout) -> Option<usize> {
    if l.size() > MAX_SMALL || l.align() > 64 {
        return None;
    }
    let mut c = CLASS_OF[l.size().div_ceil(8)] as usize;
    // Slots of a class sit at multiples of its size from a 64-byte-aligned
    // offset: the size must be a multiple of the alignment.
    while c < NCLASS && CLASS_SIZES[c] as usize % l.align() != 0 {
        c += 1;
    }
    if c < NCLASS {
        Some(c)
    } else {
        None
    }
}

/// An object found by [`for_each_object`]: where it lives.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Found {
    pub(crate) obj: Obj,
    pub(crate) span: SpanRef,
    pub(crate) slot: u32,
}

/// Calls `f` for every published object, reading each slot's allocation
/// byte once with SeqCst.
pub(crate) fn for_each_object(mut f: impl FnMut(Found)) {
    let spans: Vec<SpanRef> = crate::loom::lock_spinning(&SPANS).clone();
    for s in spans {
        for_each_in_span(s, &mut f);
    }
}

/// Calls `f` for every published object of span `s`.
#[inline]
fn for_each_in_span(s: SpanRef, mut f: impl FnMut(Found)) {
    let span = s.get();
    for (i, a) in span.alloc.iter().enumerate() {
        if a.load(Ordering::SeqCst) != 0 {
            f(Found { obj: Obj(span.slot(i)), span: s, slot: i as u32 });
        }
    }
}

/// [`for_each_object`] on `walkers` threads at once: this one and up to
/// `walkers - 1` scoped threads (fewer if the OS will not start them),
/// each with its own state from `make`, taking the spans listed now one
/// at a time (the work per span varies a lot: gc_mark's 1,000 cells of
/// 10,000 handles each fill a few spans, and taken 8 spans at a time they
/// were all counted by one thread). Returns the states, this thread's
/// first.
///
/// A walk reads every object's header once: on a large heap it runs at
/// the speed of memory, which one thread does not reach (reading 1 GiB
/// took 0.149 s on one thread here, 0.085 s on two).
pub(crate) fn for_each_object_split<S: Send>(
    walkers: usize,
    make: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, Found) + Sync,
) -> Vec<S> {
    let spans: Vec<SpanRef> = crate::loom::lock_spinning(&SPANS).clone();
    let next = AtomicUsize::new(0);
    let walk = || {
        let mut st = make();
        while let Some(&s) = spans.get(next.fetch_add(1, Ordering::Relaxed)) {
            for_each_in_span(s, |o| f(&mut st, o));
        }
        st
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..walkers)
            .filter_map(|_| std::thread::Builder::new().name("gort-gc-walk".into()).spawn_scoped(scope, walk).ok())
            .collect();
        if !helpers.is_empty() {
            SPLIT_WALKS.fetch_add(1, Ordering::Relaxed);
        }
        let mut states = vec![walk()];
        for h in helpers {
            // A walk runs no user code: a panic there is gort's bug.
            states.push(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        states
    })
}

/// Walks split over more than one thread since the process started
/// (`__hooks`).
pub(crate) static SPLIT_WALKS: AtomicU64 = AtomicU64::new(0);

/// Freed slots going back to their span's [`FreeSlots`] a span at a time
/// (objects freed together mostly share one): one read-modify-write per
/// word, and one read of the span's state (and, if it is full, of its free
/// bits) per run of frees in one span. Holding one word at a time,
/// binary_trees (depth 12) gave slots back 4 at a time (120,000 times);
/// holding a span, 55 at a time (9,500 times).
struct GiveBack {
    span: Option<SpanRef>,
    /// Bit `w` set: `masks[w]` is not 0.
    touched: u64,
    masks: [u64; SPAN_WORDS],
}

/// Words of free bits of the small span with the most slots.
const SPAN_WORDS: usize = 64;
const _: () = assert!(NSLOTS[0] <= SPAN_WORDS * 64);

impl Default for GiveBack {
    fn default() -> GiveBack {
        GiveBack { span: None, touched: 0, masks: [0; SPAN_WORDS] }
    }
}

impl GiveBack {
    /// Slot `slot` of `s`: its byte is clear, its value dropped.
    #[inline]
    fn add(&mut self, s: SpanRef, slot: usize) {
        if self.span != Some(s) {
            self.flush();
            self.span = Some(s);
        }
        let w = slot / 64;
        self.masks[w] |= 1 << (slot % 64);
        self.touched |= 1 << w;
    }

    /// Gives the slots added so far back, listing their span if it was full.
    fn flush(&mut self) {
        if let Some(s) = self.span.take() {
            let span = s.get();
            let mut touched = std::mem::take(&mut self.touched);
            let masks = &mut self.masks;
            let words = std::iter::from_fn(|| {
                let w = touched.trailing_zeros() as usize;
                touched &= touched.wrapping_sub(1);
                (w < SPAN_WORDS).then(|| (w, std::mem::take(&mut masks[w])))
            });
            if span.free.free_words(words) {
                lock(&PARTIALS[span.class as usize]).push(s);
            }
        }
    }
}

/// Small objects [`free`] frees under one hold of [`FREEING`]: [`counts`],
/// which takes it for writing, must not wait for a whole sweep (nor the
/// mutators freeing at zero while it waits).
const FREE_CHUNK: usize = 512;

/// Frees swept objects whose drop glue has run: clears their bits, puts
/// spans that gained room back on their partial list, frees large spans.
/// [`FREEING`] is held for a chunk of small objects at a time, whose frees
/// it counts before releasing it: [`counts`] sees each chunk freed and
/// counted, or neither.
pub(crate) fn free(dead: &[Found]) {
    let mut large = std::collections::HashSet::new();
    let mut large_bytes = 0usize;
    // `dead` comes in walk order, grouped by span: look at each span once.
    // The release stores order the drop glue before the slot's reuse.
    let mut i = 0;
    while i < dead.len() {
        let _freeing = freeing();
        let mut back = GiveBack::default();
        let mut freed = [0u64; NCLASS];
        let mut bytes = 0usize;
        let end = (i + FREE_CHUNK).min(dead.len());
        while i < end {
            let s = dead[i].span;
            let span = s.get();
            if span.class == LARGE {
                large_bytes += span.size;
                large.insert(s);
                i += 1;
                continue;
            }
            let class = span.class as usize;
            while i < dead.len() && dead[i].span == s {
                span.alloc[dead[i].slot as usize].store(0, Ordering::Release);
                back.add(s, dead[i].slot as usize);
                freed[class] += 1;
                bytes += span.size;
                i += 1;
            }
        }
        back.flush();
        for (c, n) in freed.iter().enumerate().filter(|(_, n)| **n > 0) {
            STATS[c].frees.fetch_add(*n, Ordering::Relaxed);
        }
        HEAP_LIVE.fetch_sub(bytes, Ordering::Relaxed);
    }
    if !large.is_empty() {
        // Unlisted, counted and deallocated under one hold: `counts` reads
        // listed spans only.
        let _freeing = freeing();
        STATS[NCLASS].frees.fetch_add(large.len() as u64, Ordering::Relaxed);
        HEAP_LIVE.fetch_sub(large_bytes, Ordering::Relaxed);
        crate::loom::lock_spinning(&SPANS).retain(|s| !large.contains(s));
        for s in large {
            // SAFETY: a large span holds one object, which is dead and
            // dropped; it is unlisted, and no cycle is walking the spans
            // (sweeps finish before the next cycle starts).
            let span = unsafe { Box::from_raw(s.0.as_ptr()) };
            LARGE_FREED_BYTES.fetch_add(span.size as u64, Ordering::Relaxed);
            // SAFETY: allocated in `Span::create` with this layout.
            unsafe { std::alloc::dealloc(span.base.as_ptr(), span.layout) };
        }
    }
}

/// The heap's statistics at one point, from the allocation maps (see
/// [`counts`]). Index [`NCLASS`] of the per-class arrays is large objects.
pub(crate) struct Counts {
    /// Published objects (reachable or not yet freed) per class.
    pub(crate) objects: [u64; NCLASS + 1],
    /// Objects freed so far per class.
    pub(crate) frees: [u64; NCLASS + 1],
    /// Bytes in published objects (slot sizes).
    pub(crate) alloc_bytes: u64,
    /// Bytes of large objects ever allocated.
    pub(crate) large_total_bytes: u64,
    /// Bytes of spans holding an object or cached by a thread.
    pub(crate) inuse_bytes: u64,
    /// Bytes of the other spans (empty and in no cache).
    pub(crate) idle_bytes: u64,
    /// Bytes of idle spans whose memory went back to the OS.
    pub(crate) released_bytes: u64,
}

/// Counts the heap without stopping anyone: every span's allocation map is
/// read once while [`FREEING`] keeps the sweep from freeing. Under that
/// lock a slot only goes from free to published, so the walk sees each
/// object allocated before it reads the slot and none freed, and
/// `frees + objects` is, per class, every allocation up to a point
/// between the walk's start and end (monotonic from one call to the next).
/// Objects allocated into spans created after the walk took the span list
/// are not seen yet, as if allocated after it.
pub(crate) fn counts() -> Counts {
    let _freeing = FREEING.write().unwrap_or_else(|e| e.into_inner());
    let mut c = Counts {
        objects: [0; NCLASS + 1],
        frees: [0; NCLASS + 1],
        alloc_bytes: 0,
        large_total_bytes: LARGE_FREED_BYTES.load(Ordering::Relaxed),
        inuse_bytes: 0,
        idle_bytes: 0,
        released_bytes: 0,
    };
    for (i, st) in STATS.iter().enumerate() {
        c.frees[i] = st.frees.load(Ordering::Relaxed);
    }
    let spans: Vec<SpanRef> = lock(&SPANS).clone();
    for s in spans {
        // Listed spans stay live while `FREEING` is held (only `free`
        // deallocates, large spans only).
        let span = s.get();
        let bytes = span.layout.size() as u64;
        // A released span is empty until a cache takes it, which clears
        // the flag first: its objects (if any yet) count as later.
        if span.released.load(Ordering::SeqCst) {
            c.idle_bytes += bytes;
            c.released_bytes += bytes;
            continue;
        }
        let n = span.allocated() as u64;
        let class = if span.class == LARGE { NCLASS } else { span.class as usize };
        c.objects[class] += n;
        c.alloc_bytes += n * span.size as u64;
        if span.class == LARGE {
            c.large_total_bytes += n * span.size as u64;
        }
        if n > 0 || span.free.cached() {
            c.inuse_bytes += bytes;
        } else {
            c.idle_bytes += bytes;
        }
    }
    c
}

/// Bytes of all spans (`MemStats::heap_sys`) and of those released to the
/// OS (`heap_released`), from the span list alone: no allocation map is
/// read. For the pacer, once per cycle.
pub(crate) fn span_bytes() -> (usize, usize) {
    let spans = lock(&SPANS);
    let (mut sys, mut released) = (0, 0);
    for s in spans.iter() {
        // Listed spans are live while `SPANS` is held: `free` unlists a
        // large span under it before deallocating it.
        let span = s.get();
        sys += span.layout.size();
        if span.released.load(Ordering::Relaxed) {
            released += span.layout.size();
        }
    }
    (sys, released)
}

/// Returns the memory of every empty span that no thread caches to the OS
/// (`madvise(MADV_DONTNEED)`); the span stays listed and is reused as
/// usual, its pages faulting back in as zeros. Returns the bytes released
/// by this call.
///
/// Sound because a span on a partial list is in no cache, and only a cache
/// publishes objects in it: while its list's lock is held, a span found
/// empty stays empty, and no freed slot's value is still being dropped
/// (the sweeper clears a slot's byte after its drop glue ran).
pub(crate) fn release_free_spans() -> usize {
    release_free_spans_upto(usize::MAX)
}

/// [`release_free_spans`], stopping once at least `want` bytes have been
/// released (the pacer's scavenging under a memory limit).
pub(crate) fn release_free_spans_upto(want: usize) -> usize {
    let mut released = 0;
    for list in &PARTIALS {
        let list = lock(list);
        for s in list.iter() {
            if released >= want {
                return released;
            }
            let span = s.get();
            if span.released.load(Ordering::SeqCst) || span.allocated() != 0 {
                continue;
            }
            // The first page keeps the span's own reference (`SPAN_HEAD`).
            let keep = SPAN_ALIGN;
            // SAFETY: `[base + keep, base + size)` is the span's own
            // allocation, which holds no object (see above) and no other
            // data but the counts of its free slots, which are 0 (see
            // `internal`; the allocation map is a separate box, the span's
            // reference is in the first page); the range is page aligned
            // (`SPAN_ALIGN`, sizes are multiples of 64 KiB; a bigger page
            // makes madvise fail without effect). Zeroed pages are fine:
            // every slot is written in full before it is published.
            let r = unsafe {
                libc::madvise(span.base.as_ptr().add(keep).cast(), span.layout.size() - keep, libc::MADV_DONTNEED)
            };
            if r == 0 {
                span.released.store(true, Ordering::SeqCst);
                released += span.layout.size() - keep;
            }
        }
    }
    released
}

/// The collector's count of edges to `o` from objects it counted this
/// cycle, with the [`OLD`](super::header::OLD) bit: 4 bytes beside the
/// span's slots (at `SPAN_HEAD + 4 * slot`), or before a large object.
/// Only the collector reads or writes it; it is 0 between cycles (the
/// walk that ends a cycle clears it in every object it walks, garbage
/// included, and fresh spans are zeroed), so a new object starts at 0
/// without a write of its own.
///
/// # Safety
/// `o` is a live object (or GARBAGE not yet freed); the reference is not
/// used after it is freed.
#[inline]
pub(crate) unsafe fn internal<'a>(o: Obj) -> &'a AtomicU32 {
    // SAFETY: the caller guarantees the object is live.
    let class = unsafe { o.0.as_ref() }.vt.get().class;
    // SAFETY: as the caller guarantees.
    unsafe { internal_of_slot(o.0, class) }
}

/// [`internal`] of the slot at `h`, of class `class` ([`LARGE`] for a
/// large object), whether or not it holds an object.
///
/// # Safety
/// `h` is a slot of a span of that class, and stays allocated while the
/// reference is used.
#[inline]
pub(crate) unsafe fn internal_of_slot<'a>(h: NonNull<Header>, class: u8) -> &'a AtomicU32 {
    let addr = h.as_ptr() as usize;
    let at = if class == LARGE {
        addr - 4
    } else {
        let c = class as usize;
        let base = addr & SPAN_MASK[c];
        let slot = ((addr - base - SLOT_BASE[c]) as u64 * SLOT_MAGIC[c]) >> 40;
        base + SPAN_HEAD + 4 * slot as usize
    };
    // SAFETY: the count lies in the object's span (or large span), below
    // the object, 4-aligned; the pointer keeps the span's provenance.
    unsafe { &*h.as_ptr().cast::<u8>().sub(addr - at).cast::<AtomicU32>() }
}

/// The span of a small object of class `class`, and its slot: a small
/// span is aligned to its size and starts with its own reference.
///
/// # Safety
/// `h` points to a published object of class `class` (with the span's
/// provenance, as every object pointer has).
#[inline]
unsafe fn span_of(h: NonNull<Header>, class: usize) -> Found {
    let off = h.as_ptr() as usize & !SPAN_MASK[class];
    // SAFETY: the span's base is `off` bytes below the object, in the same
    // allocation, and holds the span's reference (`refill`).
    let s = unsafe { h.as_ptr().cast::<u8>().sub(off).cast::<SpanRef>().read() };
    let slot = ((off - SLOT_BASE[class]) as u64 * SLOT_MAGIC[class]) >> 40;
    Found { obj: Obj(h), span: s, slot: slot as u32 }
}

/// Freed objects whose slot could not be freed at once (a cycle had
/// started): the collector frees them after its walks ([`free_deferred`]).
/// In chunks of [`DEFERRED_CHUNK`], each allocated once at its full size:
/// objects born and dropped during a cycle can be millions, and a vector
/// growing with them (or one vector per batch, in a list growing as
/// fast) would be copied under the lock, on a mutator's time, into fresh
/// pages that fault in (gc_wait: 1,500 faults in one 31-node tree).
/// Freed chunks are kept for reuse, up to [`DEFERRED_SPARE`]: a new one is
/// 96 KiB of fresh memory that the mutator filling it faults in.
static DEFERRED: Mutex<Deferred> = Mutex::new(Deferred { full: Vec::new(), spare: Vec::new() });
const DEFERRED_CHUNK: usize = 4096;
const DEFERRED_SPARE: usize = 16;

struct Deferred {
    full: Vec<Vec<Found>>,
    spare: Vec<Vec<Found>>,
}

/// Frees small objects of the given classes that a mutator claimed when
/// their last handle went (`reclaim`), their drop glue having run. With no
/// cycle walking the heap (an even cycle number read under the caller's
/// barrier mark, held for the whole call) the slots are free at once: into
/// the calling thread's cache when its span is the one cached there (the
/// slot is reused by the next allocation of that class), else back to
/// their span. During a cycle they wait for [`free_deferred`].
///
/// # Safety
/// Each object is small, of its class, unpublished (GARBAGE) by the
/// caller, and its value dropped; nothing else refers to it. The caller
/// holds [`freeing`] and a barrier mark.
pub(crate) unsafe fn free_claimed(objs: &[(Obj, u8)], active: bool) {
    if active {
        let mut d = lock(&DEFERRED);
        let Deferred { full, spare } = &mut *d;
        for &(o, c) in objs {
            if full.last().is_none_or(|v| v.len() == DEFERRED_CHUNK) {
                full.push(spare.pop().unwrap_or_else(|| Vec::with_capacity(DEFERRED_CHUNK)));
            }
            // SAFETY: as the caller guarantees.
            let f = unsafe { span_of(o.0, c as usize) };
            full.last_mut().expect("a chunk with room was just ensured").push(f);
        }
        return;
    }
    let body = |mut classes: Option<&mut [ClassCache; NCLASS]>| {
        let mut back = GiveBack::default();
        let mut bytes = 0usize;
        // Frees counted per run of one class (a batch is mostly one).
        let (mut class_run, mut n) = (usize::MAX, 0u64);
        for &(o, class) in objs {
            let class = class as usize;
            if class != class_run {
                if n > 0 {
                    STATS[class_run].frees.fetch_add(n, Ordering::Relaxed);
                }
                (class_run, n) = (class, 0);
            }
            n += 1;
            if let Some(cc) = classes.as_deref_mut().map(|c| &mut c[class]) {
                // In this thread's span of the class (found from the
                // address alone: small spans are aligned to their size)?
                let addr = o.0.as_ptr() as usize;
                let span_base = addr & SPAN_MASK[class];
                if span_base + SLOT_BASE[class] == cc.slots as usize {
                    // A free slot the next allocation of the class may take
                    // (it stays in `HEAP_LIVE`).
                    let i = (((addr - span_base - SLOT_BASE[class]) as u64 * SLOT_MAGIC[class]) >> 40) as usize;
                    // SAFETY: slot `i` of the cached span, whose map has
                    // `nslots` bytes. Release: the drop glue comes before
                    // the slot's reuse.
                    unsafe { &*cc.alloc.add(i) }.store(0, Ordering::Release);
                    cc.give(i);
                    continue;
                }
            }
            // SAFETY: as the caller guarantees.
            let f = unsafe { span_of(o.0, class) };
            let span = f.span.get();
            // Release: the drop glue comes before the slot's reuse.
            span.alloc[f.slot as usize].store(0, Ordering::Release);
            back.add(f.span, f.slot as usize);
            bytes += span.size;
        }
        back.flush();
        if n > 0 {
            STATS[class_run].frees.fetch_add(n, Ordering::Relaxed);
        }
        if bytes > 0 {
            HEAP_LIVE.fetch_sub(bytes, Ordering::Relaxed);
        }
    };
    // Nothing here allocates from the cache while `body` holds it.
    with_caches(body);
}

/// Frees the objects [`free_claimed`] deferred (the collector, after its
/// walks).
pub(crate) fn free_deferred() {
    // Not sorted by span: a batch's objects mostly share one already
    // (they were allocated together), and `free` handles a span seen in
    // several runs (only its first run finds it full). Sorting millions
    // of objects born and dropped during a long cycle held up the
    // collector's next cycle.
    // Drained, not taken: the list keeps its room, so that a mutator
    // adding a chunk does not grow it (see `barrier::take_all_flushed`).
    let full: Vec<Vec<Found>> = crate::loom::lock_spinning(&DEFERRED).full.drain(..).collect();
    for mut chunk in full {
        free(&chunk);
        chunk.clear();
        let mut d = crate::loom::lock_spinning(&DEFERRED);
        if d.spare.len() < DEFERRED_SPARE {
            d.spare.push(chunk);
        }
    }
}
