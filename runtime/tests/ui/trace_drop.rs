// A `Drop` impl on a derived type needs `#[trace(unsafe_drop)]`.
use gort::gc::{Gc, Trace};

#[derive(Trace)]
struct Node {
    next: Option<Gc<Node>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        // Could read a node the sweep already dropped.
        let _ = self.next.as_ref().map(|n| n.next.is_some());
    }
}

#[derive(Trace)]
struct Wrapper<T> {
    value: T,
}

impl<T> Drop for Wrapper<T> {
    fn drop(&mut self) {}
}

// Allowed: the promise is made.
#[derive(Trace)]
#[trace(unsafe_drop)]
struct Counted {
    value: Gc<u32>,
}

impl Drop for Counted {
    fn drop(&mut self) {}
}

fn main() {}
