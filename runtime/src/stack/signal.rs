//! Stack overflow reporting: a SIGSEGV/SIGBUS handler, run on an alternate
//! signal stack, that recognises a fault in a goroutine guard page and exits
//! with Go's wording; every other fault goes to the handler installed before
//! ours (std's, which reports overflows of thread stacks).

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;
use std::ptr;

use super::os;
use crate::loom::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

/// `getauxval(AT_MINSIGSTKSZ)`: the kernel's minimum signal frame size.
const AT_MINSIGSTKSZ: libc::c_ulong = 51;

/// Bytes of the buffer handed to the `describe` callback.
const DESCRIBE_BUF: usize = 1024;

/// The scheduler's `describe` callback, as a `fn(&mut [u8]) -> usize` cast to
/// usize (0: none). Written by `install_overflow_handler`, read by the handler.
static DESCRIBE: AtomicUsize = AtomicUsize::new(0);

const NOT_INSTALLED: u8 = 0;
const INSTALLING: u8 = 1;
const INSTALLED: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(NOT_INSTALLED);

/// The action that was installed for a signal before ours.
struct Previous {
    /// Set (Release) once `action` holds the previous action.
    saved: AtomicBool,
    action: UnsafeCell<MaybeUninit<libc::sigaction>>,
}

// SAFETY: `action` is written once, by the thread that wins STATE's
// NOT_INSTALLED -> INSTALLING transition, before `saved` is set with Release
// and before our handler is installed; afterwards it is only read.
unsafe impl Sync for Previous {}

static PREV_SEGV: Previous = Previous { saved: AtomicBool::new(false), action: UnsafeCell::new(MaybeUninit::uninit()) };
static PREV_BUS: Previous = Previous { saved: AtomicBool::new(false), action: UnsafeCell::new(MaybeUninit::uninit()) };

fn previous(sig: libc::c_int) -> &'static Previous {
    if sig == libc::SIGBUS {
        &PREV_BUS
    } else {
        &PREV_SEGV
    }
}

/// Installs the overflow handler for SIGSEGV and SIGBUS (once; later calls
/// only replace `describe`) and gives the calling thread an alternate signal
/// stack. `describe` must be async-signal-safe: it writes the goroutine's
/// header (`goroutine 7 [running]:\n` and its name) into the buffer and
/// returns the number of bytes written.
pub(crate) fn install_overflow_handler(describe: fn(buf: &mut [u8]) -> usize) {
    DESCRIBE.store(describe as usize, Ordering::Release);
    ensure_altstack();
    if STATE.compare_exchange(NOT_INSTALLED, INSTALLING, Ordering::Acquire, Ordering::Acquire).is_err() {
        while STATE.load(Ordering::Acquire) != INSTALLED {
            std::hint::spin_loop();
        }
        return;
    }
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        let prev = previous(sig);
        // SAFETY: an all-zero sigaction is a valid value (SIG_DFL, empty
        // mask, no flags); every field we rely on is then set explicitly.
        let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
        act.sa_sigaction = handler as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) as usize;
        act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: `act.sa_mask` is a valid sigset_t owned by us.
        unsafe { libc::sigemptyset(&mut act.sa_mask) };
        // SAFETY: we won the INSTALLING transition, so we are the only writer
        // of `prev.action`, and no handler reads it before `saved` is set.
        // Reading the old action and installing ours in one sigaction call
        // leaves no window in which a fault would find neither.
        let r = unsafe { libc::sigaction(sig, &act, (*prev.action.get()).as_mut_ptr()) };
        if r == 0 {
            prev.saved.store(true, Ordering::Release);
        }
    }
    STATE.store(INSTALLED, Ordering::Release);
}

/// The SIGSEGV/SIGBUS handler. Async-signal-safe: atomics, `write` and
/// `_exit` only.
extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers,
    // and si_addr is defined for SIGSEGV and SIGBUS.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some(usable) = os::guard_hit(addr) {
        report_overflow(usable);
    }
    chain(sig, info, ctx);
}

/// Writes Go's overflow report and exits with status 2.
fn report_overflow(usable: usize) -> ! {
    let mut line = [0u8; 96];
    let mut n = 0;
    for part in [b"runtime: goroutine stack exceeds ".as_slice(), fmt_usize(usable, &mut [0u8; 20]), b"-byte limit\n"] {
        line[n..n + part.len()].copy_from_slice(part);
        n += part.len();
    }
    write_all(&line[..n]);
    write_all(b"fatal error: stack overflow\n\n");
    let d = DESCRIBE.load(Ordering::Acquire);
    if d != 0 {
        // SAFETY: DESCRIBE only ever holds 0 or a `fn(&mut [u8]) -> usize`
        // stored by install_overflow_handler; fn pointers and usize have the
        // same size and representation on our targets.
        let describe: fn(&mut [u8]) -> usize = unsafe { std::mem::transmute(d) };
        let mut buf = [0u8; DESCRIBE_BUF];
        let len = describe(&mut buf).min(buf.len());
        write_all(&buf[..len]);
    }
    // SAFETY: _exit is async-signal-safe and ends the process at once.
    unsafe { libc::_exit(2) }
}

/// Passes a fault that is not ours to the previous handler. A previous
/// SIG_DFL or SIG_IGN is restored as SIG_DFL and we return: the faulting
/// instruction runs again and the default action kills the process with the
/// signal (std's own handler does the same).
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let prev = previous(sig);
    if prev.saved.load(Ordering::Acquire) {
        // SAFETY: `saved` is set (Acquire pairs with the Release store) only
        // after `action` was fully written, and it is never written again.
        let act = unsafe { (*prev.action.get()).assume_init_ref() };
        let h = act.sa_sigaction;
        if h != libc::SIG_DFL && h != libc::SIG_IGN {
            if act.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: with SA_SIGINFO the previous owner registered a
                // three-argument handler; we pass the kernel's own arguments.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(h) };
                f(sig, info, ctx);
            } else {
                // SAFETY: without SA_SIGINFO the previous owner registered a
                // one-argument handler.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
                f(sig);
            }
            return;
        }
    }
    // SAFETY: an all-zero sigaction is SIG_DFL with an empty mask.
    let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
    dfl.sa_sigaction = libc::SIG_DFL;
    // SAFETY: sigaction is async-signal-safe; `dfl` is a valid action.
    unsafe { libc::sigaction(sig, &dfl, ptr::null_mut()) };
}

fn write_all(mut b: &[u8]) {
    while !b.is_empty() {
        // SAFETY: `b` is a valid readable buffer of b.len() bytes.
        let r = unsafe { libc::write(2, b.as_ptr().cast(), b.len()) };
        if r > 0 {
            b = &b[r as usize..];
        } else if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        } else {
            return;
        }
    }
}

/// Decimal digits of `v` in the tail of `buf`, without allocating.
fn fmt_usize(mut v: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

/// An alternate signal stack gort created for this thread, freed when the
/// thread exits.
struct AltStack {
    /// Start of the mapping (guard page included) and its length; 0 if the
    /// thread already had an alternate stack that is not ours.
    map: usize,
    len: usize,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        if self.map == 0 {
            return;
        }
        let page = os::page_size();
        // SAFETY: a zeroed stack_t is a valid out-parameter.
        let mut cur: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: querying the current alternate stack writes only `cur`.
        unsafe { libc::sigaltstack(ptr::null(), &mut cur) };
        if cur.ss_sp as usize != self.map + page {
            // Someone replaced it since: theirs is in use, ours may still be
            // referenced by nobody, but leaking is the safe choice.
            return;
        }
        let disable = libc::stack_t { ss_sp: ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
        // SAFETY: we are not on the alternate stack (this is a TLS destructor
        // in normal thread context), so disabling it is allowed; after that
        // the kernel no longer refers to the mapping and it can be unmapped.
        unsafe {
            libc::sigaltstack(&disable, ptr::null_mut());
            libc::munmap(self.map as *mut libc::c_void, self.len);
        }
    }
}

thread_local! {
    static ALTSTACK: Cell<AltStack> = const { Cell::new(AltStack { map: 0, len: 0 }) };
}

/// Makes sure the calling thread has an alternate signal stack, so the
/// overflow handler can run when the goroutine stack is exhausted. Threads
/// spawned by std already have one (when std installed its own handler);
/// otherwise gort maps one (with a guard page) and frees it in a thread-local
/// destructor. If the thread is already tearing down its thread-locals the
/// stack is leaked instead (one per such thread).
pub(crate) fn ensure_altstack() {
    // SAFETY: a zeroed stack_t is a valid out-parameter.
    let mut cur: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: querying writes only `cur`.
    unsafe { libc::sigaltstack(ptr::null(), &mut cur) };
    if cur.ss_flags & libc::SS_DISABLE == 0 {
        return;
    }
    let page = os::page_size();
    // SAFETY: getauxval has no preconditions; it returns 0 when unknown.
    let min = unsafe { libc::getauxval(AT_MINSIGSTKSZ) } as usize;
    let size = (libc::SIGSTKSZ.max(4 * min).max(64 << 10) + page - 1) & !(page - 1);
    let Ok(map) = os::map_slab(page + size) else {
        return; // no altstack: an overflow then dies by SIGSEGV, unreported
    };
    // SAFETY: the first page of our fresh mapping becomes its guard page.
    unsafe { libc::mprotect(map as *mut libc::c_void, page, libc::PROT_NONE) };
    let ss = libc::stack_t { ss_sp: (map + page) as *mut libc::c_void, ss_flags: 0, ss_size: size };
    // SAFETY: `ss` describes a mapping we own that lives until the
    // thread-local destructor (or forever if leaked).
    if unsafe { libc::sigaltstack(&ss, ptr::null_mut()) } != 0 {
        os::unmap_slab(map, page + size);
        return;
    }
    let _ = ALTSTACK.try_with(|a| a.set(AltStack { map, len: page + size }));
}
