//! Procedural macros for [gort](https://docs.rs/gort).
//!
//! This crate is re-exported by `gort`; depend on `gort`, not on it directly.
//! It is empty until the macros issue lands (`go!`, `#[goroutine]`,
//! `select!`, `#[derive(Trace)]`, `#[gort::main]`, `#[gort::test]`).
