// Misused `#[trace(...)]` options.
use std::sync::Arc;

use gort::gc::{Gc, Trace};

#[derive(Trace)]
struct Unknown {
    #[trace(skipp)]
    a: Arc<Gc<u32>>,
}

#[derive(Trace)]
struct Duplicate {
    #[trace(skip, skip)]
    a: Arc<Gc<u32>>,
    #[trace(skip)]
    #[trace(skip)]
    b: Arc<Gc<u32>>,
}

#[derive(Trace)]
#[trace(skip)]
struct SkipOnType {
    a: u32,
}

#[derive(Trace)]
#[trace(unsafe_drop, drop)]
struct OnType {
    #[trace(unsafe_drop)]
    a: u32,
}

#[derive(Trace)]
enum OnVariant {
    #[trace(skip)]
    A(Arc<Gc<u32>>),
}

#[derive(Trace)]
struct Malformed {
    #[trace]
    a: u32,
    #[trace = "skip"]
    b: u32,
    #[trace(skip = true)]
    c: u32,
}

// The impls exist despite the errors: no error of their own here.
fn uses(_: Gc<Unknown>, _: Gc<OnType>) {}

fn main() {}
