//! Snapshot tests of the expansions, `cargo expand`-style: each case is
//! expanded, pretty-printed with `prettyplease` and compared with
//! `tests/snapshots/NAME.expected`, so a change in what a macro generates
//! shows up in review. `UPDATE_SNAPSHOTS=1 cargo test -p gort-macros`
//! rewrites the files.

use std::path::PathBuf;

use proc_macro2::TokenStream;
use quote::quote;

fn pretty(tokens: TokenStream, expression: bool) -> String {
    let tokens = if expression { quote!(fn __expansion() { #tokens; }) } else { tokens };
    match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(e) => panic!("the expansion does not parse as Rust ({e}):\n{tokens}"),
    }
}

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(format!("{name}.expected"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_SNAPSHOTS=1 to create it)", path.display()));
    assert!(
        expected == actual,
        "expansion of {name} changed (review, then rerun with UPDATE_SNAPSHOTS=1):\n--- expected {}\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

fn go(name: &str, input: TokenStream) {
    check(name, &pretty(crate::go::expand(input), true));
}

fn attr(name: &str, f: fn(TokenStream, TokenStream) -> TokenStream, attr: TokenStream, item: TokenStream) {
    check(name, &pretty(f(attr, item), false));
}

#[test]
fn go_call() {
    go("go_call", quote!(worker(next(), jobs.clone())));
}

#[test]
fn go_method_call() {
    go("go_method_call", quote!(server.clone().serve::<Tcp>(listener, 8)));
}

#[test]
fn go_closure() {
    go("go_closure", quote!(move || println!("hello")));
}

#[test]
fn go_block() {
    go("go_block", quote!(let x = compute(); tx.send(x).unwrap();));
}

#[test]
fn go_settings() {
    go("go_settings", quote!(name = "logger", stack_size = 1 << 20, locked; log_loop(rx)));
}

#[test]
fn go_errors() {
    go("go_unknown_option", quote!(nmae = "x"; f()));
    go("go_duplicate_option", quote!(name = "a", name = "b"; f()));
    go("go_empty", quote!());
}

#[test]
fn goroutine_plain() {
    attr(
        "goroutine_plain",
        crate::goroutine::expand,
        quote!(),
        quote! {
            /// Adds up the jobs.
            pub fn worker(id: u32, mut jobs: Vec<u64>) -> u64 {
                let mut total = 0;
                while let Some(j) = jobs.pop() {
                    if j == 0 { continue; }
                    for k in 0..j { total += k; }
                }
                let f = |v: &[u64]| { for x in v { let _ = x; } };
                f(&jobs);
                fn helper() { loop {} }
                total + u64::from(id)
            }
        },
    );
}

#[test]
fn goroutine_options_generics_patterns() {
    attr(
        "goroutine_options_generics_patterns",
        crate::goroutine::expand,
        quote!(name = format!("pair-{}", a), stack_size = 1 << 20, locked),
        quote! {
            fn pair<T>(a: u8, (x, y): (T, T), it: impl Iterator<Item = T> + Send + 'static) -> impl std::fmt::Debug
            where
                T: std::fmt::Debug + Send + 'static,
            {
                (a, x, y, it.count())
            }
        },
    );
}

#[test]
fn goroutine_method() {
    attr(
        "goroutine_method",
        crate::goroutine::expand,
        quote!(),
        quote! {
            fn run(mut self, n: usize) -> usize {
                loop { self.step(); if self.done() { break n; } }
            }
        },
    );
}

#[test]
fn goroutine_errors() {
    attr(
        "goroutine_async",
        crate::goroutine::expand,
        quote!(),
        quote!(
            async fn f() {}
        ),
    );
    attr(
        "goroutine_ref_self",
        crate::goroutine::expand,
        quote!(),
        quote!(
            fn f(&mut self) {}
        ),
    );
    attr(
        "goroutine_unknown_option",
        crate::goroutine::expand,
        quote!(stack = 4096),
        quote!(
            fn f() {}
        ),
    );
    attr(
        "goroutine_duplicate_option",
        crate::goroutine::expand,
        quote!(locked, locked),
        quote!(
            fn f() {}
        ),
    );
}

#[test]
fn preemptible() {
    attr(
        "preemptible",
        crate::goroutine::expand_preemptible,
        quote!(),
        quote! {
            fn spin(flag: &AtomicBool) -> u64 {
                let mut n = 0;
                'outer: loop {
                    for _ in 0..10 { n += 1; if n % 3 == 0 { continue 'outer; } }
                    if flag.load(Ordering::Relaxed) { break n; }
                }
            }
        },
    );
}

#[test]
fn main_plain() {
    attr(
        "main_plain",
        crate::entry::expand_main,
        quote!(),
        quote!(
            fn main() {
                println!("hi");
            }
        ),
    );
}

#[test]
fn main_result_gomaxprocs() {
    attr(
        "main_result_gomaxprocs",
        crate::entry::expand_main,
        quote!(gomaxprocs = 4),
        quote! {
            fn main() -> Result<(), Box<dyn std::error::Error>> {
                for i in 0..3 { go!(work(i)); }
                Ok(())
            }
        },
    );
}

#[test]
fn main_errors() {
    attr(
        "main_with_args",
        crate::entry::expand_main,
        quote!(),
        quote!(
            fn main(args: Vec<String>) {}
        ),
    );
    attr(
        "main_unknown_option",
        crate::entry::expand_main,
        quote!(procs = 4),
        quote!(
            fn main() {}
        ),
    );
}

#[test]
fn test_plain() {
    attr(
        "test_plain",
        crate::entry::expand_test,
        quote!(),
        quote! {
            #[should_panic(expected = "boom")]
            fn panics() { panic!("boom") }
        },
    );
}

#[test]
fn test_result_gomaxprocs() {
    attr(
        "test_result_gomaxprocs",
        crate::entry::expand_test,
        quote!(gomaxprocs = 1),
        quote! {
            fn one_p() -> Result<(), String> {
                while !done() {}
                Ok(())
            }
        },
    );
}
