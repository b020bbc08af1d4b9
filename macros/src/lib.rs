//! Procedural macros for [gort](https://docs.rs/gort).
//!
//! This crate is re-exported by `gort`; depend on `gort`, not on it
//! directly (the generated code names `::gort::…`). The macros:
//!
//! | macro | what it does |
//! |---|---|
//! | `go!(f(a, b))`, `go!(recv.m(a))`, `go!(move \|\| …)`, `go! { … }` | Go's `go` statement: a detached goroutine |
//! | `#[goroutine]` | a function whose call starts its body as a goroutine and returns a `JoinHandle` |
//! | `#[gort::preemptible]` | a preemption check at every loop of a plain function |
//! | `#[gort::main]` | `main` runs as goroutine 1; the process exits when it returns |
//! | `#[gort::test]` | a test body run as a goroutine (a spawn and a join) |
//! | `select!` | Go's `select` over channels |
//!
//! Each macro module opens with the grammar it accepts and what it
//! expands to; `tests/snapshots/` holds the expansion of every form.

mod entry;
mod go;
mod goroutine;
mod options;
mod preempt;
mod select;
#[cfg(test)]
mod snapshots;

use proc_macro::TokenStream;

/// Go's `go` statement: runs a call in a new, detached goroutine.
///
/// ```ignore
/// go!(worker(id, jobs.clone()));          // `worker`, `id` and the clone are evaluated now
/// go!(server.clone().serve(listener));    // receiver and arguments evaluated now
/// go!(move || println!("hello"));
/// go! {                                    // a move block
///     let total = expensive();
///     results.send(total);
/// }
/// go!(name = "logger", stack_size = 1 << 20; log_loop(rx));
/// ```
///
/// As in Go, the function value, the receiver and the arguments of a call
/// are evaluated in the caller, before the goroutine starts; only the call
/// itself runs in the goroutine. Everything that moves into the goroutine
/// must be `Send + 'static`. A return value is discarded. The settings
/// before an optional `;` are those of `gort::Builder`: `name = EXPR`,
/// `stack_size = BYTES`, `locked`.
///
/// Panics behave as with `gort::go`: an unrecovered panic prints
/// `panic: MSG` and the goroutine dump and exits the process with code 2.
/// `go!` panics if the goroutine cannot be started (a `stack_size` out of
/// range).
#[proc_macro]
pub fn go(input: TokenStream) -> TokenStream {
    go::expand(input.into()).into()
}

/// Makes a function start its body as a new goroutine.
///
/// ```ignore
/// #[goroutine(name = "worker", stack_size = 1 << 20)]
/// fn worker(id: u32, jobs: Chan<Job>) -> Stats { /* ... */ }
///
/// let h: gort::JoinHandle<Stats> = worker(1, jobs);
/// let stats = h.join().unwrap();
/// ```
///
/// Calling the function evaluates its arguments, starts the body as a
/// goroutine and returns a `gort::JoinHandle` of its result at once; a
/// panic in the body comes back through `join` as `Err`. Options:
/// `name = EXPR` (may use the arguments), `stack_size = BYTES`, `locked`
/// (born locked: a fresh OS thread of its own, as `Builder::locked`).
///
/// Works on free functions and on methods taking `self` by value, with
/// generics, `where` clauses, patterns and `impl Trait` parameters; every
/// argument and the result must be `Send + 'static`. Not allowed: `async
/// fn`, `const fn`, `&self`/`&mut self` methods.
///
/// The body gets a preemption check at the top of every `loop`, `while`
/// and `for` (not inside closures, `async` blocks, nested items or macro
/// invocations), so a CPU-bound goroutine yields its processor when sysmon
/// asks, as Go's compiler-inserted checks do.
#[proc_macro_attribute]
pub fn goroutine(attr: TokenStream, item: TokenStream) -> TokenStream {
    goroutine::expand(attr.into(), item.into()).into()
}

/// Inserts a preemption check (`gort::preempt_point()`) at the top of every
/// `loop`, `while` and `for` of a plain function or method, as
/// `#[goroutine]` does for its body.
///
/// ```ignore
/// #[gort::preemptible]
/// fn checksum(data: &[u8]) -> u32 {
///     let mut h = 0u32;
///     for b in data { h = h.rotate_left(5) ^ u32::from(*b); } // checked every iteration
///     h
/// }
/// ```
///
/// A check costs a thread-local load, a load of the flag and a predictable
/// branch while no preemption is requested, and does nothing outside a
/// goroutine.
#[proc_macro_attribute]
pub fn preemptible(attr: TokenStream, item: TokenStream) -> TokenStream {
    goroutine::expand_preemptible(attr.into(), item.into()).into()
}

/// Runs `main` as the main goroutine (goroutine 1) through `gort::run`.
///
/// ```ignore
/// #[gort::main(gomaxprocs = 4)]
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     go!(background());
///     Ok(())
/// }
/// ```
///
/// When `main` returns, the process exits at once (after flushing stdout)
/// without waiting for other goroutines, as in Go. The return type may be
/// anything std accepts for `main` (`()`, `Result<(), E: Debug>`,
/// `ExitCode`): an `Err` is printed as `Error: {e:?}` and the exit code is
/// 1. `gomaxprocs = N` calls `gort::gomaxprocs(N)` before `main` starts.
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand_main(attr.into(), item.into()).into()
}

/// A test whose body runs as a goroutine on the shared runtime.
///
/// ```ignore
/// #[gort::test]
/// fn ping_pong() { /* ... */ }
///
/// #[gort::test]
/// #[should_panic(expected = "boom")]
/// fn panics() { panic!("boom") }
///
/// #[gort::test(gomaxprocs = 1)] // runs in a child process with GOMAXPROCS=1
/// fn one_processor() -> Result<(), String> { Ok(()) }
/// ```
///
/// The body is spawned and joined, so tests still run in parallel under
/// `cargo test`. A panic fails the test with the original payload
/// (`#[should_panic(expected = ...)]` works); a test may return
/// `Result<T, E: Debug>`. GOMAXPROCS is process-wide, so
/// `gomaxprocs = N` re-runs the test alone in a child process (the test
/// binary with `--exact NAME`) whose environment sets `GOMAXPROCS=N`.
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand_test(attr.into(), item.into()).into()
}

/// Go's `select` statement over channels.
#[proc_macro]
pub fn select(input: TokenStream) -> TokenStream {
    select::expand(input.into()).into()
}
