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
//! | `#[derive(Trace)]` | reports the `Gc` handles a struct or enum owns to gort's collector |
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
mod trace;

use proc_macro::TokenStream;

/// Go's `go` statement: runs a call in a new, detached goroutine.
///
/// ```
/// use gort::chan::Chan;
/// use gort::go;
///
/// fn worker(id: u32, out: Chan<u32>) {
///     out.send(id * 10);
/// }
/// let out = Chan::new(8);
/// let id = 4;
/// go!(worker(id, out.clone()));                // `worker`, `id` and the clone are evaluated now
/// go!(out.clone().send(5));                    // receiver and arguments evaluated now
/// go!(move || println!("hello"));
/// let o = out.clone();
/// go! {                                        // a move block
///     let total = 1 + 2;
///     o.send(total);
/// }
/// go!(name = "logger", stack_size = 1 << 20; worker(2, out.clone()));
/// let mut got: Vec<u32> = (0..4).map(|_| out.recv().unwrap()).collect();
/// got.sort();
/// assert_eq!(got, [3, 5, 20, 40]);
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
/// ```
/// use gort::chan::Chan;
/// use gort::goroutine;
///
/// #[goroutine(name = "worker", stack_size = 1 << 20)]
/// fn worker(id: u32, jobs: Chan<u32>) -> u32 {
///     jobs.iter().sum::<u32>() + id
/// }
///
/// let jobs = Chan::new(3);
/// let h: gort::JoinHandle<u32> = worker(1, jobs.clone());
/// (1..=3).for_each(|j| jobs.send(j));
/// jobs.close();
/// assert_eq!(h.join().unwrap(), 7);
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
/// ```
/// #[gort::preemptible]
/// fn checksum(data: &[u8]) -> u32 {
///     let mut h = 0u32;
///     for b in data {
///         h = h.rotate_left(5) ^ u32::from(*b); // checked every iteration
///     }
///     h
/// }
/// assert_ne!(gort::run(|| checksum(b"gort")), 0);
/// ```
///
/// A check costs one load and a predictable branch while no preemption is
/// requested, and does nothing outside a goroutine.
#[proc_macro_attribute]
pub fn preemptible(attr: TokenStream, item: TokenStream) -> TokenStream {
    goroutine::expand_preemptible(attr.into(), item.into()).into()
}

/// Runs `main` as the main goroutine (goroutine 1) through `gort::run`.
///
/// ```
/// fn background() {
///     println!("may or may not print: main does not wait for it");
/// }
///
/// #[gort::main(gomaxprocs = 2)]
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     gort::go!(background());
///     assert_eq!(gort::gomaxprocs(0), 2);
///     let n: u32 = "42".parse()?;
///     assert_eq!(n, 42);
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
/// ```
/// # #![allow(unnameable_test_items)]
/// #[gort::test]
/// fn ping_pong() {
///     let ch = gort::chan::Chan::new(0);
///     let c = ch.clone();
///     gort::go!(move || c.send("pong"));
///     assert_eq!(ch.recv(), Some("pong"));
/// }
///
/// #[gort::test]
/// #[should_panic(expected = "boom")]
/// fn panics() {
///     panic!("boom")
/// }
///
/// #[gort::test(gomaxprocs = 1)] // runs in a child process with GOMAXPROCS=1
/// fn one_processor() -> Result<(), String> {
///     assert_eq!(gort::gomaxprocs(0), 1);
///     Ok(())
/// }
/// # fn main() {}
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

/// Go's `select` statement over channels, in crossbeam-channel's grammar:
/// `recv(ch) -> v => …` (`v: Option<T>`, `None` once closed), `send(ch, v)
/// => …`, `default => …` or `default(duration) => …`. Among ready cases one
/// is chosen uniformly at random; with no ready case and no `default` it
/// blocks (`select! {}` blocks forever). See `gort::chan` for the details.
///
/// ```
/// use gort::chan::Chan;
/// use std::time::Duration;
///
/// let (a, b) = (Chan::new(1), Chan::<u32>::new(1));
/// a.send("ready");
/// let got = gort::select! {
///     recv(a) -> v => v.unwrap(),
///     recv(b) -> _ => "b",
///     default(Duration::from_millis(10)) => "timed out",
/// };
/// assert_eq!(got, "ready");
/// ```
#[proc_macro]
pub fn select(input: TokenStream) -> TokenStream {
    select::expand(input.into()).into()
}

/// Derives `gort::gc::Trace`: reports the `Gc` handles a struct or enum
/// owns to gort's collector, so that objects reachable only through them
/// stay alive and cycles through them are collected.
///
/// ```
/// use std::sync::Arc;
///
/// use gort::gc::{Gc, Trace};
///
/// #[derive(Trace)]
/// enum Tree<T: Trace + Send + Sync + 'static> {
///     Leaf(T),
///     Node {
///         children: Vec<Gc<Tree<T>>>,
///         #[trace(skip)] // not traced: the handles in it stay roots
///         pinned: Arc<Vec<Gc<Tree<T>>>>,
///     },
/// }
///
/// #[derive(Trace)]
/// #[trace(unsafe_drop)] // a promise: `drop` never dereferences a `Gc`
/// struct Logged {
///     id: u32,
///     next: Option<Gc<Logged>>,
/// }
///
/// impl Drop for Logged {
///     fn drop(&mut self) {
///         println!("freeing {}", self.id);
///     }
/// }
///
/// let leaf = Gc::new(Tree::Leaf("leaf".to_string()));
/// let tree = Gc::new(Tree::Node { children: vec![leaf.clone()], pinned: Arc::new(vec![]) });
/// drop(leaf);
/// gort::gc(); // the leaf is reachable through `children`: it survives
/// let Tree::Node { children, .. } = &*tree else { unreachable!() };
/// assert!(matches!(&*children[0], Tree::Leaf(s) if s == "leaf"));
///
/// drop(Gc::new(Logged { id: 2, next: Some(Gc::new(Logged { id: 1, next: None })) }));
/// gort::gc(); // prints "freeing 2" and "freeing 1", in either order
/// ```
///
/// The generated `trace` calls `Trace::trace` on every field not marked
/// `#[trace(skip)]`, in order.
/// A field whose type does not implement `Trace` is a compile error at
/// that field: std's owning types (`Vec`, `Box`, `Option`, `HashMap`,
/// tuples, arrays, ...) and gort's cells implement it, while `Arc`, `Rc`,
/// references, raw pointers and std's cells and locks deliberately do not
/// (the collector cannot count the handles behind shared ownership or a
/// lock it cannot take). Works on structs (named, tuple, unit) and enums,
/// with generics: each type parameter used in a traced field gets a
/// `T: Trace` bound, each associated type used in one (`I::Item`) too.
///
/// Options:
///
/// - `#[trace(skip)]` on a field: the field is not traced. Handles in it
///   are never seen by the collector, so they stay roots: what they point
///   to is never freed while the field holds them, and a cycle through
///   them is never collected (like an `Arc` cycle). Use it for fields
///   that hold no handles but whose type has no `Trace` impl, or to keep
///   an `Arc<Gc<T>>` and the like.
/// - `#[trace(unsafe_drop)]` on the type: allows a `Drop` impl on it.
///
/// # Why `Drop` is forbidden
///
/// Without `#[trace(unsafe_drop)]`, a `Drop` impl on the type is a
/// compile error ("conflicting implementations of trait
/// `MustNotImplementDrop_UseTraceUnsafeDropIfDropNeverDereferencesAGc`").
/// The collector runs the drop glue of all the garbage it found before it
/// frees any of it, in no particular order: a `Drop` that dereferences a
/// `Gc` could read an object of the same garbage whose own drop glue
/// already ran. `#[trace(unsafe_drop)]` is your promise that the type's
/// `Drop` never dereferences a `Gc` (dropping one, as the fields' drop
/// glue does, is fine); breaking it is undefined behaviour.
///
/// Unknown or repeated options, options in the wrong place and unions are
/// compile errors at the offending token.
#[proc_macro_derive(Trace, attributes(trace))]
pub fn derive_trace(input: TokenStream) -> TokenStream {
    trace::expand(input.into()).into()
}
