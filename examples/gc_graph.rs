//! Goroutines sharing and mutating one `Gc` graph; finalizers closing the
//! resources of the nodes that fall out of it; a weak cache; MemStats
//! before and after.
//!
//!     cargo run --release --example gc_graph

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use gort::chan::Chan;
use gort::gc::{Gc, GcMutex, Trace};
use gort::sync::WaitGroup;
use gort::weak::Weak;

/// A resource that must be closed: here, a fake connection.
#[derive(Trace)]
struct Conn {
    id: usize,
}

#[derive(Trace)]
struct Node {
    name: String,
    conn: Gc<Conn>,
    edges: GcMutex<Vec<Gc<Node>>>,
}

static OPEN: AtomicUsize = AtomicUsize::new(0);

fn connect(id: usize, closed: &Chan<usize>) -> Gc<Conn> {
    let c = Gc::new(Conn { id });
    OPEN.fetch_add(1, Ordering::Relaxed);
    let closed = closed.clone();
    // The finalizer runs once the connection is unreachable: every node
    // using it is gone.
    gort::set_finalizer(&c, move |c: Gc<Conn>| {
        OPEN.fetch_sub(1, Ordering::Relaxed);
        let _ = closed.try_send(c.id);
    });
    c
}

fn node(id: usize, closed: &Chan<usize>) -> Gc<Node> {
    Gc::new(Node { name: format!("n{id}"), conn: connect(id, closed), edges: GcMutex::new(Vec::new()) })
}

fn report(when: &str) {
    let m = gort::read_mem_stats();
    println!(
        "{when:>7}: heap_alloc {:>7} KiB  heap_objects {:>6}  mallocs {:>7}  frees {:>7}  num_gc {:>3}  open conns {}",
        m.heap_alloc / 1024,
        m.heap_objects,
        m.mallocs,
        m.frees,
        m.num_gc,
        OPEN.load(Ordering::Relaxed)
    );
}

#[gort::main]
fn main() {
    const WORKERS: usize = 4;
    const STEPS: usize = 20_000;
    let closed: Chan<usize> = Chan::new(1 << 16);
    report("start");

    // A ring of 64 nodes: the roots live in one shared vector.
    let roots: Gc<GcMutex<Vec<Gc<Node>>>> = Gc::new(GcMutex::new((0..64).map(|i| node(i, &closed)).collect()));
    {
        let r = roots.lock();
        for (i, n) in r.iter().enumerate() {
            n.edges.lock().push(r[(i + 1) % r.len()].clone());
        }
    }
    let cache: Weak<Node> = Weak::new(&roots.lock()[0]);

    // Workers rewire the graph: replace roots with new nodes (whose old
    // neighbours keep pointing at the old ones), add and cut edges.
    let next = Arc::new(AtomicUsize::new(64));
    let wg = Arc::new(WaitGroup::new());
    for w in 0..WORKERS {
        wg.add(1);
        let (roots, closed, next, wg) = (roots.clone(), closed.clone(), next.clone(), wg.clone());
        gort::go(move || {
            let mut x = w as u64 + 1;
            let mut rand = move |n: usize| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % n as u64) as usize
            };
            for _ in 0..STEPS {
                let (i, j) = (rand(64), rand(64));
                match rand(3) {
                    0 => {
                        let fresh = node(next.fetch_add(1, Ordering::Relaxed), &closed);
                        let old = std::mem::replace(&mut roots.lock()[i], fresh.clone());
                        fresh.edges.lock().push(old); // the old node lives on while reachable
                    }
                    1 => {
                        let (a, b) = {
                            let r = roots.lock();
                            (r[i].clone(), r[j].clone())
                        };
                        a.edges.lock().push(b);
                    }
                    _ => {
                        let a = roots.lock()[i].clone();
                        let mut e = a.edges.lock();
                        if !e.is_empty() {
                            let k = rand(e.len());
                            e.swap_remove(k);
                        }
                    }
                }
            }
            wg.done();
        });
    }
    wg.wait();
    gort::gc();
    report("mutated");
    let reachable = {
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<Gc<Node>> = roots.lock().clone();
        while let Some(n) = stack.pop() {
            if seen.insert(Gc::as_ptr(&n)) {
                stack.extend(n.edges.lock().iter().cloned());
            }
        }
        seen.len()
    };
    println!("reachable nodes: {reachable}; the weak cache of n0 upgrades: {}", cache.upgrade().is_some());

    // Drop the graph: every node becomes garbage, cycles included, and
    // every connection's finalizer closes it.
    let created = next.load(Ordering::Relaxed);
    drop(roots);
    let mut n = 0;
    while OPEN.load(Ordering::Relaxed) > 0 {
        gort::gc();
        while closed.try_recv().is_ok() {
            n += 1;
        }
        gort::time::sleep(std::time::Duration::from_millis(1));
    }
    while closed.try_recv().is_ok() {
        n += 1;
    }
    gort::gc(); // frees the finalized connections
    report("freed");
    println!(
        "{created} connections opened, {n} closed by finalizers; weak cache: {:?}",
        cache.upgrade().map(|n| n.name.clone())
    );
}
