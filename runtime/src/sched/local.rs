//! Goroutine-local storage (`gort::local!`), the replacement for
//! `thread_local!` inside goroutines: several goroutines share one OS
//! thread, so a thread-local is shared among them, while a goroutine-local
//! belongs to one goroutine and is dropped when it exits.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::proc;

type Slots = Vec<Option<Box<dyn Any>>>;

thread_local! {
    /// Storage for `LocalKey` used from a thread that is not a goroutine.
    static THREAD_SLOTS: RefCell<Slots> = const { RefCell::new(Vec::new()) };
}

static NEXT_INDEX: AtomicUsize = AtomicUsize::new(1);

/// A key for goroutine-local storage, declared with [`local!`](crate::local).
///
/// Each goroutine sees its own value, created by the initialiser on first
/// use and dropped when the goroutine exits. On a thread that is not a
/// goroutine, the value is per thread, like `thread_local!`.
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
    index: AtomicUsize,
    _t: PhantomData<fn() -> T>,
}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> Self {
        LocalKey { init, index: AtomicUsize::new(0), _t: PhantomData }
    }

    fn index(&self) -> usize {
        let i = self.index.load(Ordering::Acquire);
        if i != 0 {
            return i - 1;
        }
        let fresh = NEXT_INDEX.fetch_add(1, Ordering::Relaxed);
        match self.index.compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => fresh - 1,
            Err(other) => other - 1,
        }
    }

    /// Calls `f` with this goroutine's value, initialising it first if needed.
    ///
    /// ```
    /// use std::cell::Cell;
    /// gort::local! { static COUNT: Cell<u32> = Cell::new(0); }
    ///
    /// let a = gort::spawn(|| { COUNT.with(|c| c.set(c.get() + 1)); COUNT.with(|c| c.get()) });
    /// let b = gort::spawn(|| COUNT.with(|c| c.get()));
    /// assert_eq!(a.join().unwrap(), 1);
    /// assert_eq!(b.join().unwrap(), 0); // each goroutine has its own
    /// ```
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let i = self.index();
        let ptr = match proc::current() {
            // SAFETY: only the running goroutine touches its locals.
            Some((_, g)) => unsafe { slot(&mut *g.locals.get(), i, self.init) },
            // SAFETY: the thread's slots are only touched by this thread, and
            // no `&mut` to them is held while user code runs.
            None => THREAD_SLOTS.with(|s| unsafe { slot(&mut *s.as_ptr(), i, self.init) }),
        };
        // SAFETY: the value is boxed (stable address) and lives until the
        // goroutine (or thread) ends, after `f` returns.
        f(unsafe { &*ptr })
    }
}

/// Returns a pointer to slot `i`, initialising it. The `&mut` to the vector
/// is not held while `init` runs, so an initialiser may use other locals.
///
/// # Safety
/// `slots` must be the running goroutine's (or thread's) own storage.
unsafe fn slot<T: 'static>(slots: *mut Slots, i: usize, init: fn() -> T) -> *const T {
    // SAFETY: per the contract, exclusive for the duration of each access.
    unsafe {
        if let Some(Some(b)) = (&*slots).get(i) {
            return b.downcast_ref::<T>().expect("gort::local type confusion") as *const T;
        }
        let v: Box<dyn Any> = Box::new(init());
        let s = &mut *slots;
        if s.len() <= i {
            s.resize_with(i + 1, || None);
        }
        if s[i].is_none() {
            s[i] = Some(v);
        }
        s[i].as_ref().unwrap().downcast_ref::<T>().unwrap() as *const T
    }
}

/// Drops the running goroutine's locals (before its joiner is told it
/// finished).
pub(crate) fn destroy_current() -> std::thread::Result<()> {
    match proc::current() {
        Some((_, g)) => destroy_locals(g),
        None => Ok(()),
    }
}

/// Drops a goroutine's locals as it exits (on its own stack, so their
/// destructors may still use the runtime). Values created by destructors
/// are dropped too.
/// Returns the panic of a destructor, if one panicked.
pub(crate) fn destroy_locals(g: &super::g::G) -> std::thread::Result<()> {
    // SAFETY: only the running goroutine touches its locals.
    if unsafe { (*g.locals.get()).is_empty() } {
        return Ok(());
    }
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loop {
        // SAFETY: as above.
        let v = std::mem::take(unsafe { &mut *g.locals.get() });
        if v.is_empty() {
            break;
        }
        drop(v);
    }))
}

/// Declares goroutine-local storage: like `thread_local!`, but each
/// goroutine has its own value, dropped when it exits.
///
/// ```
/// use std::cell::RefCell;
/// gort::local! {
///     static LOG: RefCell<Vec<String>> = RefCell::new(Vec::new());
/// }
/// gort::run(|| {
///     LOG.with(|l| l.borrow_mut().push("hello".into()));
///     assert_eq!(LOG.with(|l| l.borrow().len()), 1);
/// });
/// ```
#[macro_export]
macro_rules! local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])* $vis static $name: $crate::LocalKey<$t> = $crate::LocalKey::new({
            fn __gort_local_init() -> $t { $init }
            __gort_local_init
        });
        $crate::local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $crate::local!($(#[$attr])* $vis static $name: $t = $init;);
    };
}
