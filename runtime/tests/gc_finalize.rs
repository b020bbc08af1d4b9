//! Finalizers, cleanups and weak pointers through the public API, rule by
//! rule of Go's `runtime.SetFinalizer`, `runtime.AddCleanup` and `weak`.
//!
//! Tests run in parallel and share one collector, so cycles other tests
//! start can come at any time: each test checks only its own objects, and
//! only what holds however many cycles run. "Not run (yet)" is checked
//! after [`flush`], which waits until every finalizer queued by an earlier
//! cycle has run (the queue is first in, first out).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::with_timeout;
use gort::chan::Chan;
use gort::gc::{Gc, GcMutex, Trace};
use gort::weak::Weak;

const WAIT: Duration = Duration::from_secs(20);

/// Runs a cycle, then waits until everything queued before it has run: a
/// probe finalized by a later cycle runs after all of it.
fn flush() {
    gort::gc();
    let ch = Chan::new(1);
    let tx = ch.clone();
    let probe = Gc::new(0u8);
    gort::set_finalizer(&probe, move |_| tx.send(()));
    drop(probe);
    loop {
        gort::gc();
        if ch.recv_timeout(Duration::from_millis(50)).is_ok() {
            return;
        }
    }
}

/// Collects until `ch` yields a value (other tests' cycles may be needed
/// too), or fails after `WAIT`.
fn gc_until<T: Send + 'static>(ch: &Chan<T>, what: &str) -> T {
    let start = std::time::Instant::now();
    loop {
        gort::gc();
        if let Ok(v) = ch.recv_timeout(Duration::from_millis(20)) {
            return v;
        }
        assert!(start.elapsed() < WAIT, "{what}: nothing after {WAIT:?}");
    }
}

#[derive(Trace)]
struct Res {
    name: String,
    next: GcMutex<Option<Gc<Res>>>,
}

fn res(name: &str) -> Gc<Res> {
    Gc::new(Res { name: name.into(), next: GcMutex::new(None) })
}

/// A cleanup that reports when the object's memory has been freed.
fn on_free<T: Trace + Send + Sync + 'static>(g: &Gc<T>) -> Chan<()> {
    let ch = Chan::new(1);
    let _ = gort::add_cleanup(g, |c: Chan<()>| c.send(()), ch.clone());
    ch
}

#[test]
fn finalizer_gets_the_object_then_it_is_freed_later() {
    with_timeout("finalizer_gets_the_object_then_it_is_freed_later", 40, || {
        let ran = Chan::new(1);
        let tx = ran.clone();
        let r = res("db");
        let freed = on_free(&r);
        gort::set_finalizer(&r, move |r: Gc<Res>| tx.send(r.name.clone()));
        drop(r);
        assert_eq!(gc_until(&ran, "finalizer"), "db");
        // The finalizer dropped its handle: a later cycle frees the object.
        gc_until(&freed, "free after finalizer");
        // It runs once: nothing more arrives.
        flush();
        assert!(ran.try_recv().is_err());
    });
}

#[test]
fn object_is_not_freed_in_the_cycle_that_queues_its_finalizer() {
    with_timeout("object_is_not_freed_in_the_cycle_that_queues_its_finalizer", 40, || {
        let hold = Arc::new(Mutex::new(None));
        let (h2, ran) = (hold.clone(), Chan::new(1));
        let tx = ran.clone();
        let r = res("kept");
        let freed = on_free(&r);
        // The finalizer stores the handle only after the test looked.
        gort::set_finalizer(&r, move |r: Gc<Res>| {
            *h2.lock().unwrap() = Some(r);
            tx.send(());
        });
        drop(r);
        gc_until(&ran, "finalizer");
        flush();
        assert!(freed.try_recv().is_err(), "freed while its finalizer held it");
    });
}

#[test]
fn resurrection_keeps_the_object_without_its_finalizer() {
    with_timeout("resurrection_keeps_the_object_without_its_finalizer", 40, || {
        static SAVED: Mutex<Option<Gc<Res>>> = Mutex::new(None);
        let ran = Chan::new(2);
        let tx = ran.clone();
        let r = res("phoenix");
        let child = res("child");
        *r.next.lock() = Some(child);
        let freed = on_free(&r);
        gort::set_finalizer(&r, move |r: Gc<Res>| {
            *SAVED.lock().unwrap() = Some(r);
            tx.send(());
        });
        drop(r);
        gc_until(&ran, "finalizer");
        for _ in 0..3 {
            flush();
        }
        {
            let saved = SAVED.lock().unwrap();
            let r = saved.as_ref().expect("the finalizer saved the object");
            assert_eq!(r.name, "phoenix");
            assert_eq!(r.next.lock().as_ref().unwrap().name, "child");
        }
        assert!(freed.try_recv().is_err(), "a resurrected object was freed");
        // Unreachable again: freed this time, and the finalizer (cleared
        // when it was queued) does not run again.
        *SAVED.lock().unwrap() = None;
        gc_until(&freed, "free after resurrection");
        flush();
        assert!(ran.try_recv().is_err(), "the finalizer ran twice");
    });
}

#[test]
fn chain_of_finalizable_objects_runs_parent_first() {
    with_timeout("chain_of_finalizable_objects_runs_parent_first", 40, || {
        let order = Arc::new(Mutex::new(Vec::new()));
        let done = Chan::new(2);
        let (a, b) = (res("A"), res("B"));
        *a.next.lock() = Some(b.clone());
        for g in [&a, &b] {
            let (order, done) = (order.clone(), done.clone());
            gort::set_finalizer(g, move |r: Gc<Res>| {
                // A's finalizer still reaches B, which is intact.
                if let Some(n) = r.next.lock().as_ref() {
                    assert_eq!(n.name, "B");
                }
                order.lock().unwrap().push(r.name.clone());
                done.send(());
            });
        }
        drop((a, b));
        gc_until(&done, "first finalizer");
        gc_until(&done, "second finalizer");
        assert_eq!(*order.lock().unwrap(), ["A", "B"]);
    });
}

#[test]
fn cycle_with_a_finalizer_is_never_collected() {
    with_timeout("cycle_with_a_finalizer_is_never_collected", 40, || {
        let ran = Arc::new(AtomicBool::new(false));
        let (a, b) = (res("a"), res("b"));
        *a.next.lock() = Some(b.clone());
        *b.next.lock() = Some(a.clone());
        let r2 = ran.clone();
        gort::set_finalizer(&a, move |_| r2.store(true, SeqCst));
        let freed_b = on_free(&b);
        drop((a, b));
        for _ in 0..4 {
            flush();
        }
        assert!(!ran.load(SeqCst), "a finalizer in a cycle ran");
        assert!(freed_b.try_recv().is_err(), "a cycle with a finalizer was freed");
        // The same cycle without a finalizer is freed.
        let (c, d) = (res("c"), res("d"));
        *c.next.lock() = Some(d.clone());
        *d.next.lock() = Some(c.clone());
        let freed_d = on_free(&d);
        drop((c, d));
        gc_until(&freed_d, "plain cycle");
    });
}

#[test]
fn second_finalizer_panics_with_gos_message() {
    let g = Gc::new(1u32);
    gort::set_finalizer(&g, |_| ());
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| gort::set_finalizer(&g, |_| ()))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>().copied(), Some("runtime.SetFinalizer: finalizer already set"));
    gort::clear_finalizer(&g);
}

#[test]
fn cleared_finalizer_does_not_run_and_the_object_is_freed() {
    with_timeout("cleared_finalizer_does_not_run_and_the_object_is_freed", 40, || {
        let ran = Arc::new(AtomicBool::new(false));
        let g = res("cleared");
        let r2 = ran.clone();
        gort::set_finalizer(&g, move |_| r2.store(true, SeqCst));
        gort::clear_finalizer(&g);
        let freed = on_free(&g);
        drop(g);
        gc_until(&freed, "free");
        flush();
        assert!(!ran.load(SeqCst));
    });
}

#[test]
fn finalizers_run_one_at_a_time_on_one_goroutine() {
    with_timeout("finalizers_run_one_at_a_time_on_one_goroutine", 40, || {
        const N: usize = 50;
        let active = Arc::new(AtomicUsize::new(0));
        let ids = Arc::new(Mutex::new(Vec::new()));
        let done = Chan::new(N);
        for i in 0..N {
            let g = Gc::new(i);
            let (active, ids, done) = (active.clone(), ids.clone(), done.clone());
            gort::set_finalizer(&g, move |_| {
                assert_eq!(active.fetch_add(1, SeqCst), 0, "two finalizers at once");
                ids.lock().unwrap().push(gort::current().map(|g| g.id()));
                gort::time::sleep(Duration::from_micros(200));
                active.fetch_sub(1, SeqCst);
                done.send(());
            });
        }
        for _ in 0..N {
            gc_until(&done, "finalizers");
        }
        let ids = ids.lock().unwrap();
        assert!(ids[0].is_some(), "finalizers run on a goroutine");
        assert!(ids.iter().all(|id| *id == ids[0]), "finalizers ran on several goroutines: {ids:?}");
    });
}

#[test]
fn keep_alive_holds_off_the_finalizer() {
    with_timeout("keep_alive_holds_off_the_finalizer", 40, || {
        let closed = Arc::new(AtomicBool::new(false));
        let g = Gc::new([7u64; 16]);
        let c2 = closed.clone();
        gort::set_finalizer(&g, move |_| c2.store(true, SeqCst));
        let p = Gc::as_ptr(&g);
        for _ in 0..3 {
            flush();
            assert!(!closed.load(SeqCst), "finalized while still used through a raw pointer");
            // SAFETY: `g` is kept alive until the keep_alive below.
            assert_eq!(unsafe { (*p)[15] }, 7);
        }
        gort::keep_alive(&g);
        drop(g);
        let start = std::time::Instant::now();
        while !closed.load(SeqCst) {
            flush();
            assert!(start.elapsed() < WAIT, "the finalizer never ran");
        }
    });
}

#[test]
fn cleanup_runs_after_free_even_for_cycles() {
    with_timeout("cleanup_runs_after_free_even_for_cycles", 40, || {
        let (a, b) = (res("x"), res("y"));
        *a.next.lock() = Some(b.clone());
        *b.next.lock() = Some(a.clone());
        let ch = Chan::new(2);
        let _ = gort::add_cleanup(&a, |(v, ch): (u32, Chan<u32>)| ch.send(v), (1, ch.clone()));
        let _ = gort::add_cleanup(&a, |(v, ch): (u32, Chan<u32>)| ch.send(v), (2, ch.clone()));
        drop((a, b));
        let mut got = vec![gc_until(&ch, "cleanup"), gc_until(&ch, "cleanup")];
        got.sort();
        assert_eq!(got, [1, 2]);
    });
}

#[test]
fn stopped_cleanup_never_runs() {
    with_timeout("stopped_cleanup_never_runs", 40, || {
        let ran = Arc::new(AtomicBool::new(false));
        let g = res("stopped");
        let r2 = ran.clone();
        let c = gort::add_cleanup(&g, move |_: ()| r2.store(true, SeqCst), ());
        let freed = on_free(&g);
        c.stop();
        drop(g);
        gc_until(&freed, "free");
        flush();
        assert!(!ran.load(SeqCst));
    });
}

#[test]
fn cleanup_waits_for_the_finalizer_and_resurrection() {
    with_timeout("cleanup_waits_for_the_finalizer_and_resurrection", 40, || {
        let order = Arc::new(Mutex::new(Vec::new()));
        let g = res("both");
        let (o1, o2) = (order.clone(), order.clone());
        let done = Chan::new(1);
        let _ = gort::add_cleanup(
            &g,
            move |d: Chan<()>| {
                o2.lock().unwrap().push("cleanup");
                d.send(());
            },
            done.clone(),
        );
        gort::set_finalizer(&g, move |_| o1.lock().unwrap().push("finalizer"));
        drop(g);
        gc_until(&done, "cleanup");
        assert_eq!(*order.lock().unwrap(), ["finalizer", "cleanup"]);
    });
}

#[test]
fn weak_upgrades_until_collected() {
    with_timeout("weak_upgrades_until_collected", 40, || {
        let g = res("w");
        let w = Weak::new(&g);
        assert_eq!(w, Weak::new(&g));
        assert_eq!(w.clone(), w);
        assert_ne!(w, Weak::new(&res("other")));
        for _ in 0..3 {
            gort::gc();
            assert_eq!(w.upgrade().unwrap().name, "w", "cleared while reachable");
        }
        let freed = on_free(&g);
        drop(g);
        gc_until(&freed, "free");
        assert!(w.upgrade().is_none());
        assert!(w.clone().upgrade().is_none());
    });
}

#[test]
fn weak_is_cleared_before_the_finalizer_runs_and_stays_cleared() {
    with_timeout("weak_is_cleared_before_the_finalizer_runs_and_stays_cleared", 40, || {
        static SAVED: Mutex<Option<Gc<Res>>> = Mutex::new(None);
        let g = res("f");
        let w = Weak::new(&g);
        let seen = Chan::new(1);
        let (w2, tx) = (w.clone(), seen.clone());
        gort::set_finalizer(&g, move |r: Gc<Res>| {
            tx.send(w2.upgrade().is_none());
            *SAVED.lock().unwrap() = Some(r);
        });
        drop(g);
        assert!(gc_until(&seen, "finalizer"), "a weak pointer upgraded inside its object's finalizer");
        flush();
        assert!(SAVED.lock().unwrap().is_some());
        assert!(w.upgrade().is_none(), "resurrection reopened a weak pointer");
        // A new weak pointer to the resurrected object works.
        let w3 = Weak::new(SAVED.lock().unwrap().as_ref().unwrap());
        assert_eq!(w3.upgrade().unwrap().name, "f");
        *SAVED.lock().unwrap() = None;
    });
}

#[test]
fn weak_to_what_a_finalizable_object_reaches_is_kept() {
    with_timeout("weak_to_what_a_finalizable_object_reaches_is_kept", 40, || {
        let f = res("owner");
        let x = res("part");
        let wx = Weak::new(&x);
        *f.next.lock() = Some(x);
        let ran = Chan::new(1);
        let (wx2, tx) = (wx.clone(), ran.clone());
        gort::set_finalizer(&f, move |f: Gc<Res>| {
            let part = wx2.upgrade().map(|p| p.name.clone());
            assert!(Gc::ptr_eq(&wx2.upgrade().unwrap(), f.next.lock().as_ref().unwrap()));
            tx.send(part);
        });
        drop(f);
        assert_eq!(gc_until(&ran, "finalizer").as_deref(), Some("part"));
    });
}

#[test]
fn upgrades_race_with_collection() {
    with_timeout("upgrades_race_with_collection", 80, || {
        #[derive(Trace)]
        struct Node {
            id: u64,
            check: u64,
            next: GcMutex<Option<Gc<Node>>>,
        }
        let node =
            |id: u64| Gc::new(Node { id, check: id.wrapping_mul(0x9E37_79B9_7F4A_7C15), next: GcMutex::new(None) });
        let stop = Arc::new(AtomicBool::new(false));
        let collector = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(SeqCst) {
                    gort::gc();
                }
            })
        };
        let workers: Vec<_> = (0..2u64)
            .map(|t| {
                gort::spawn(move || {
                    let mut cleared = 0;
                    for round in 0..300u64 {
                        let keep: Vec<Gc<Node>> = (0..20).map(|i| node(t << 32 | round << 8 | i)).collect();
                        for pair in keep.windows(2) {
                            *pair[0].next.lock() = Some(pair[1].clone());
                        }
                        let weaks: Vec<Weak<Node>> = keep.iter().map(Weak::new).collect();
                        let kept = keep[..10].to_vec(); // the others become garbage except via keep[9]'s chain
                        drop(keep);
                        for _ in 0..3 {
                            for w in &weaks {
                                match w.upgrade() {
                                    Some(n) => {
                                        assert_eq!(n.check, n.id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                                        if let Some(m) = n.next.lock().as_ref() {
                                            assert_eq!(m.check, m.id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                                        }
                                    }
                                    None => cleared += 1,
                                }
                            }
                            gort::gosched();
                        }
                        // The first ten stay reachable: never cleared.
                        for (w, k) in weaks.iter().zip(&kept) {
                            assert!(Gc::ptr_eq(&w.upgrade().expect("cleared while reachable"), k));
                        }
                        kept[9].next.lock().take();
                    }
                    cleared
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        stop.store(true, SeqCst);
        collector.join().unwrap();
    });
}

#[test]
fn panic_in_a_finalizer_is_fatal_as_in_a_goroutine() {
    let Some(out) = common::in_child("panic_in_a_finalizer_is_fatal_as_in_a_goroutine", &[], || {
        let g = Gc::new(7u32);
        gort::set_finalizer(&g, |g: Gc<u32>| panic!("finalizer of {} failed", *g));
        drop(g);
        for _ in 0..3000 {
            gort::gc();
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the finalizer's panic did not end the process");
    }) else {
        return;
    };
    assert_eq!(out.code(), Some(2), "a finalizer's panic did not exit with code 2:\n{}", out.dump());
    assert!(out.stderr.starts_with("panic: finalizer of 7 failed\n"), "not Go's panic line:\n{}", out.dump());
    assert!(out.stderr.contains("goroutine "), "no goroutine header:\n{}", out.dump());
}
