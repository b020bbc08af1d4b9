//! Compile-fail tests of the macros: each misuse is an error at the right
//! span with a message that says what to do. The expected compiler output
//! is in `tests/ui/*.stderr` (rustc 1.95); regenerate it with
//! `TRYBUILD=overwrite cargo test -p gort --test macros_ui` and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
