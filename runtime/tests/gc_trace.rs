//! `#[derive(Trace)]` and std's `Trace` impls report exactly the right
//! edges, seen through the collector: a cycle is freed by one collection
//! only if every handle in it is reported (an unreported handle is a root),
//! a handle reported twice makes the collection panic, and a reported
//! handle the value does not own would free a live object (whose values
//! the tests read back).

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, LinkedList, VecDeque};
use std::marker::PhantomData;
use std::num::{NonZeroU32, Wrapping};
use std::ops::Range;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::chan::Chan;
use gort::gc::{Gc, GcMutex, Trace};

/// Counts the drops of the values holding it (always in a skipped field:
/// it has no `Trace` impl, and a `Drop` impl).
struct Tally(Arc<AtomicUsize>);

impl Drop for Tally {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn tally() -> (Arc<AtomicUsize>, impl Fn() -> Tally) {
    let n = Arc::new(AtomicUsize::new(0));
    let m = n.clone();
    (n, move || Tally(m.clone()))
}

fn dropped(n: &Arc<AtomicUsize>) -> usize {
    n.load(Ordering::SeqCst)
}

#[derive(Trace)]
struct Node {
    id: u32,
    name: String,
    next: GcMutex<Option<Gc<Node>>>,
    #[trace(skip)]
    _tally: Tally,
}

#[test]
fn objects_reachable_through_derived_fields_survive_and_cycles_are_freed() {
    let (n, t) = tally();
    let node = |id| Gc::new(Node { id, name: format!("n{id}"), next: GcMutex::new(None), _tally: t() });
    let (a, b, c) = (node(1), node(2), node(3));
    *a.next.lock() = Some(b.clone());
    *b.next.lock() = Some(c.clone());
    *c.next.lock() = Some(a.clone());
    drop((b, c));
    gort::gc();
    assert_eq!(dropped(&n), 0, "b and c are reachable from a");
    let mut cur = a.clone();
    for id in [2, 3, 1] {
        let next = cur.next.lock().clone().unwrap();
        cur = next;
        assert_eq!((cur.id, cur.name.as_str()), (id, format!("n{id}").as_str()));
    }
    drop((a, cur));
    gort::gc();
    assert_eq!(dropped(&n), 3, "the unreachable cycle is freed by one collection");
}

/// A handle in a skipped field is never reported: a root.
#[derive(Trace)]
struct Holder {
    #[trace(skip)]
    held: GcMutex<Option<Gc<Holder>>>,
    #[trace(skip)]
    shared: Arc<Vec<Gc<Node>>>,
    #[trace(skip)]
    _tally: Tally,
}

#[test]
fn a_skipped_fields_target_survives() {
    let (n, t) = tally();
    let a = Gc::new(Holder { held: GcMutex::new(None), shared: Arc::new(vec![]), _tally: t() });
    let b = Gc::new(Holder { held: GcMutex::new(Some(a.clone())), shared: Arc::new(vec![]), _tally: t() });
    *a.held.lock() = Some(b.clone());
    drop((a, b));
    gort::gc();
    // Each holds the other through a skipped field: both are roots, so this
    // cycle is never collected (like an `Arc` cycle).
    assert_eq!(dropped(&n), 0);

    let (m, t2) = tally();
    let leaf = Gc::new(Node { id: 7, name: "leaf".into(), next: GcMutex::new(None), _tally: t2() });
    let holder = Gc::new(Holder { held: GcMutex::new(None), shared: Arc::new(vec![leaf.clone()]), _tally: t() });
    drop(leaf);
    gort::gc();
    assert_eq!(dropped(&m), 0);
    assert_eq!(holder.shared[0].name, "leaf");
}

#[derive(Trace)]
struct Cell<T>(
    T,
    GcMutex<Link<T>>,
    #[trace(skip)]
    #[allow(dead_code)]
    Tally,
)
where
    T: Trace + Send + Sync + 'static;

#[derive(Trace)]
enum Link<T: Trace + Send + Sync + 'static> {
    End,
    To(Gc<Cell<T>>),
    Both {
        left: Gc<Cell<T>>,
        right: Option<Gc<Cell<T>>>,
        #[trace(skip)]
        _note: Arc<str>,
    },
}

#[derive(Trace)]
struct Unit;

#[derive(Trace)]
enum Empty {}

#[test]
fn generic_tuple_structs_and_enums() {
    let (n, t) = tally();
    let cell = |v: String| Gc::new(Cell(v, GcMutex::new(Link::End), t()));
    let (a, b, c) = (cell("a".into()), cell("b".into()), cell("c".into()));
    *a.1.lock() = Link::To(b.clone());
    *b.1.lock() = Link::Both { left: c.clone(), right: Some(a.clone()), _note: "b".into() };
    *c.1.lock() = Link::Both { left: a.clone(), right: None, _note: "c".into() };
    drop((b, c));
    gort::gc();
    assert_eq!(dropped(&n), 0);
    let b = match &*a.1.lock() {
        Link::To(b) => b.clone(),
        _ => unreachable!(),
    };
    let c = match &*b.1.lock() {
        Link::Both { left, right: Some(back), .. } if Gc::ptr_eq(back, &a) => left.clone(),
        _ => unreachable!(),
    };
    assert_eq!((a.0.as_str(), b.0.as_str(), c.0.as_str()), ("a", "b", "c"));
    drop((a, b, c));
    gort::gc();
    assert_eq!(dropped(&n), 3);

    let u = Gc::new((Unit, Option::<Empty>::None));
    drop(u);
    gort::gc();
}

/// Ordered by key only, for the ordered and hashed collections.
#[derive(Trace)]
struct Keyed(u32, Gc<Hub>);

impl PartialEq for Keyed {
    fn eq(&self, other: &Keyed) -> bool {
        self.0 == other.0
    }
}
impl Eq for Keyed {}
impl PartialOrd for Keyed {
    fn partial_cmp(&self, other: &Keyed) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Keyed {
    fn cmp(&self, other: &Keyed) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}
impl std::hash::Hash for Keyed {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

#[derive(Trace)]
struct Hub {
    back: GcMutex<Option<Gc<Everything>>>,
    #[trace(skip)]
    _tally: Tally,
}

type Nested = Vec<Option<Box<(Gc<Hub>, u8)>>>;

/// Every std container holding handles back to one `Hub` (30 of them): the
/// cycle is freed only if each of them reports each handle once.
#[derive(Trace)]
struct Everything {
    boxed: Box<Gc<Hub>>,
    boxed_slice: Box<[Gc<Hub>]>,
    vec: Vec<Gc<Hub>>,
    deque: VecDeque<Gc<Hub>>,
    list: LinkedList<Gc<Hub>>,
    heap: BinaryHeap<Keyed>,
    set: BTreeSet<Keyed>,
    hash_set: HashSet<Keyed>,
    map: HashMap<u32, Gc<Hub>>,
    btree: BTreeMap<Keyed, Gc<Hub>>,
    array: [Gc<Hub>; 2],
    tuple: (u8, Gc<Hub>, String, (Gc<Hub>,)),
    ok: Result<Gc<Hub>, String>,
    err: Result<u8, Gc<Hub>>,
    some: Option<Gc<Hub>>,
    none: Option<Gc<Hub>>,
    reverse: Reverse<Gc<Hub>>,
    wrapping: Wrapping<Gc<Hub>>,
    range: Range<Gc<Hub>>,
    pinned: Pin<Box<Gc<Hub>>>,
    nested: Nested,
    leaves: (bool, char, f64, NonZeroU32, Duration, Instant, Cow<'static, str>, PathBuf, AtomicUsize, ()),
    marker: PhantomData<fn() -> Rc<u8>>,
    boxed_str: Box<str>,
    #[trace(skip)]
    _tally: Tally,
}

#[test]
fn std_containers_report_each_handle_once() {
    let (n, t) = tally();
    let hub = Gc::new(Hub { back: GcMutex::new(None), _tally: t() });
    let h = || hub.clone();
    let everything = Gc::new(Everything {
        boxed: Box::new(h()),
        boxed_slice: vec![h(), h()].into_boxed_slice(),
        vec: vec![h(), h()],
        deque: VecDeque::from([h()]),
        list: LinkedList::from([h(), h()]),
        heap: BinaryHeap::from([Keyed(1, h()), Keyed(2, h())]),
        set: BTreeSet::from([Keyed(1, h())]),
        hash_set: HashSet::from([Keyed(1, h()), Keyed(2, h())]),
        map: HashMap::from([(1, h()), (2, h())]),
        btree: BTreeMap::from([(Keyed(1, h()), h())]),
        array: [h(), h()],
        tuple: (1, h(), "t".into(), (h(),)),
        ok: Ok(h()),
        err: Err(h()),
        some: Some(h()),
        none: None,
        reverse: Reverse(h()),
        wrapping: Wrapping(h()),
        range: h()..h(),
        pinned: Box::pin(h()),
        nested: vec![Some(Box::new((h(), 1))), None],
        leaves: (
            true,
            'x',
            1.5,
            NonZeroU32::new(3).unwrap(),
            Duration::from_secs(1),
            Instant::now(),
            Cow::Borrowed("cow"),
            PathBuf::from("/"),
            AtomicUsize::new(4),
            (),
        ),
        marker: PhantomData,
        boxed_str: "str".into(),
        _tally: t(),
    });
    assert!(Gc::ptr_eq(&everything.boxed, &hub));
    *hub.back.lock() = Some(everything.clone());
    drop(everything);
    gort::gc();
    assert_eq!(dropped(&n), 0, "the hub is held");
    let e = hub.back.lock().clone().unwrap();
    assert_eq!((e.tuple.2.as_str(), &*e.boxed_str, e.leaves.6.as_ref()), ("t", "str", "cow"));
    drop((e, hub));
    gort::gc();
    assert_eq!(dropped(&n), 2, "the hub and `Everything` are freed together");
}

/// Handles buffered in a channel are in flight: roots.
#[derive(Trace)]
struct Mailbox {
    inbox: Chan<Gc<Mailbox>>,
    #[trace(skip)]
    _tally: Tally,
}

#[test]
fn handles_in_a_channel_are_roots() {
    let (n, t) = tally();
    let m = Gc::new(Mailbox { inbox: Chan::new(1), _tally: t() });
    m.inbox.send(m.clone());
    drop(m);
    gort::gc();
    assert_eq!(dropped(&n), 0, "a cycle through a channel is never collected");
}

/// A leaf type, two fields, no handle.
#[derive(Trace)]
struct Point {
    x: f64,
    label: String,
}

/// A handle only in a skipped field: it is a root, never reported.
#[derive(Trace)]
struct Skips {
    id: u32,
    #[trace(skip)]
    _shared: Arc<Gc<Point>>,
}

/// An enum with a handle in one variant only.
#[allow(dead_code)]
#[derive(Trace)]
enum MaybeLink {
    Nothing,
    Number(u64),
    Link(Gc<Point>),
}

/// A generic wrapper: holds a handle if `T` does.
#[derive(Trace)]
struct Wrap<T>(T, u8);

/// Unsized: the probe answers `false` for its `str` field, and the derive
/// compiles for it.
#[derive(Trace)]
struct Named {
    _len: usize,
    _name: str,
}

/// A `?Sized` parameter is asked as unsized: `false` even for a sized one.
#[derive(Trace)]
struct Tail<T: ?Sized>(u8, T);

fn no_handles<T: Trace>() -> bool {
    T::holds_no_handles()
}

/// The collector skips tracing objects of a type that says it holds no
/// handles (`Trace::holds_no_handles`, hidden, derived). A type that could
/// hold one must never say so: the skipped handles would then be roots,
/// and a cycle through the type would never be freed (the tests above).
#[test]
fn only_types_that_cannot_hold_a_handle_say_they_hold_none() {
    type G = Gc<Point>;
    // std's leaf types and containers of them.
    assert!(no_handles::<u64>() && no_handles::<String>() && no_handles::<()>());
    assert!(no_handles::<(bool, char, f64, NonZeroU32, Duration, Instant, Cow<'static, str>, PathBuf, AtomicUsize)>());
    assert!(no_handles::<Vec<Option<(u8, String)>>>() && no_handles::<[u32; 4]>());
    assert!(no_handles::<HashMap<u32, Vec<String>>>() && no_handles::<BTreeMap<String, u8>>());
    assert!(no_handles::<VecDeque<u8>>() && no_handles::<LinkedList<u8>>() && no_handles::<HashSet<u8>>());
    assert!(no_handles::<Result<u8, String>>() && no_handles::<Range<u8>>() && no_handles::<Reverse<u8>>());
    assert!(no_handles::<PhantomData<G>>() && no_handles::<Chan<G>>(), "neither reports its handles");
    // Handles, alone or inside any container.
    assert!(!no_handles::<G>() && !no_handles::<Option<G>>() && !no_handles::<Box<G>>());
    assert!(!no_handles::<Vec<G>>() && !no_handles::<[G; 1]>() && !no_handles::<VecDeque<G>>());
    assert!(!no_handles::<HashMap<u32, G>>() && !no_handles::<HashMap<Keyed, u8>>());
    assert!(!no_handles::<(u8, String, G)>() && !no_handles::<(G, u8)>());
    assert!(!no_handles::<Result<u8, G>>() && !no_handles::<Result<G, u8>>() && !no_handles::<Pin<Box<G>>>());
    assert!(!no_handles::<Box<[G]>>() && !no_handles::<Nested>());
    // Cells and weak handles say nothing (the default).
    assert!(!no_handles::<GcMutex<u64>>() && !no_handles::<gort::gc::GcAtomic<Point>>());
    // Derived types: every traced field must hold none.
    assert!(no_handles::<Point>() && no_handles::<Skips>() && no_handles::<Unit>() && no_handles::<Empty>());
    assert!(!no_handles::<MaybeLink>() && !no_handles::<Node>() && !no_handles::<Everything>());
    assert!(no_handles::<Wrap<u64>>() && no_handles::<Wrap<Wrap<String>>>() && !no_handles::<Wrap<G>>());
    assert!(!no_handles::<Cell<u64>>(), "holds a cell");
    assert!(!no_handles::<Box<str>>() && !no_handles::<Box<Named>>(), "unsized contents answer no");
    // `Box<T>` allows an unsized `T`, so it always answers no (only slower).
    assert!(!no_handles::<Box<u64>>());
    assert!(!no_handles::<Tail<u64>>());
}

/// Objects of a leaf type (not traced by the collector) stay alive while
/// an object reports them, and are freed with it.
#[test]
fn leaves_live_and_die_with_the_object_reporting_them() {
    let (n, t) = tally();
    let holder = Gc::new(Node { id: 0, name: "holder".into(), next: GcMutex::new(None), _tally: t() });
    let points: Vec<Gc<Point>> = (0..1000).map(|i| Gc::new(Point { x: i as f64, label: format!("p{i}") })).collect();
    let weak = gort::weak::Weak::new(&points[999]);
    let list = Gc::new(GcMutex::new(points));
    *holder.next.lock() = Some(Gc::new(Node { id: 1, name: "list".into(), next: GcMutex::new(None), _tally: t() }));
    let keep = Gc::new((holder.clone(), list.clone()));
    drop(list);
    gort::gc();
    assert!(keep.1.lock().iter().enumerate().all(|(i, p)| p.x == i as f64 && p.label == format!("p{i}")));
    drop(keep);
    drop(holder);
    gort::gc();
    gort::gc();
    assert_eq!(dropped(&n), 2);
    assert!(weak.upgrade().is_none(), "the leaves were freed with the list");
}
