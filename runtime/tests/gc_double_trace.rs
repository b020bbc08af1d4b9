//! A `Trace` impl that reports a handle twice is a bug in unsafe code; the
//! collector detects it, names the type, and frees nothing early. Alone in
//! its binary: once such an object exists, every cycle reports it.

use gort::gc::{Gc, Trace, Tracer};

/// A broken `Trace` impl: reports its one handle twice.
struct Twice(Gc<u64>);

// SAFETY: deliberately wrong, to test the detection.
unsafe impl Trace for Twice {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.0.trace(t);
        self.0.trace(t);
    }
}

#[test]
fn a_handle_reported_twice_is_detected_and_not_freed() {
    let child = Gc::new(41u64);
    let parent = Gc::new(Twice(child.clone()));
    let err = std::panic::catch_unwind(gort::gc).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("gc_double_trace::Twice") && msg.contains("twice"), "{msg}");
    // Held from the stack, the child survives however it was counted; the
    // parent's only handle of it stays valid too.
    drop(child);
    let _ = std::panic::catch_unwind(gort::gc);
    for _ in 0..1000 {
        let _ = Gc::new(7u64);
    }
    assert_eq!(*parent.0, 41);
}
