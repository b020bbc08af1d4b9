//! Loom models of a span's free slots (`gc/free_slots.rs`): the cache that
//! holds a span gives it back while other threads free slots in it, or
//! takes it while they do.
//!
//! The checks: every freed slot ends up exactly once in a cache's bitmap
//! or in the span's bits (never lost, never handed out twice), and a span
//! left holding a free bit in no cache is on its partial list, listed by
//! exactly one caller (a span left FULL with a free slot would keep that
//! slot from every allocation for good; one listed twice would be taken by
//! two caches at once).
//!
//! 1. `give_back_vs_free`: the cache gives the span back (with one unused
//!    slot or none) while a freer frees another: the Dekker pair
//!    `state := FULL; read bits` / `bits |= slot; read state`.
//! 2. `two_freers_vs_give_back_*`: two freers and the give-back; with a
//!    minimum of two free slots to list a span, neither freer's slot is
//!    enough alone.
//! 3. `take_vs_free`: a cache takes a listed span while a slot is freed,
//!    then gives it back.
//!
//! Checked by hand when the module was written: without `give_back`'s
//! read of the bits, or without `free`'s fence, some of these fail.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p gort-loom-tests --release --test free_slots`.
#![cfg(loom)]

use gort::__loom::gc::FreeSlots;
use loom::sync::Arc;
use loom::thread;

/// A span of 128 slots, listed once `min` are free, taken by a cache
/// that allocated all but `unused`.
fn cached_span(min: u32, unused: u64) -> (Arc<FreeSlots>, Vec<u64>) {
    let f = Arc::new(FreeSlots::with_min(128, min));
    let mut bits = Vec::new();
    assert_eq!(f.take(&mut bits), 128);
    bits.fill(0);
    bits[0] = unused;
    (f, bits)
}

/// After the threads are done: takes what the span holds, and checks that
/// the span was listed by exactly one caller if and only if it holds at
/// least `min` free slots in no cache, and that each slot is accounted for
/// once.
fn check(f: &FreeSlots, min: usize, listings: usize, cached: bool, expected: u64, mut seen: u64) {
    let mut rest = Vec::new();
    let had = if cached {
        assert_eq!(listings, 0, "a cached span was listed");
        // The cache gives it back now: it must list it if it holds any.
        let listed = f.give_back(&[0, 0]);
        let n = f.take(&mut rest);
        assert_eq!(listed, n >= min, "given back with {n} free slots, listed: {listed}");
        n
    } else {
        let listed = f.listed();
        let n = f.take(&mut rest);
        assert_eq!(listings, usize::from(listed), "listed {listings} times, on its list: {listed}");
        assert_eq!(listed, n >= min, "FULL with {n} free slots in no cache (stranded), or listed with too few");
        n
    };
    assert_eq!(had, rest[0].count_ones() as usize);
    assert_eq!(seen & rest[0], 0, "a slot both in a cache and in the span");
    seen |= rest[0];
    assert_eq!(seen, expected, "slots lost or invented");
}

fn give_back_vs_free(min: u32, unused: u64) {
    loom::model(move || {
        let (f, bits) = cached_span(min, unused);
        let freer = {
            let f = f.clone();
            thread::spawn(move || usize::from(f.free(0, 1 << 7)))
        };
        let mine = usize::from(f.give_back(&bits));
        let theirs = freer.join().unwrap();
        check(&f, min as usize, mine + theirs, false, unused | 1 << 7, 0);
    });
}

#[test]
fn give_back_vs_free_none_unused() {
    give_back_vs_free(1, 0);
}

#[test]
fn give_back_vs_free_one_unused() {
    give_back_vs_free(1, 1 << 3);
}

/// Listed at two free slots: one unused, one freed meanwhile.
#[test]
fn give_back_vs_free_reaching_the_minimum() {
    give_back_vs_free(2, 1 << 3);
}

fn two_freers_vs_give_back(min: u32) {
    loom::model(move || {
        let (f, bits) = cached_span(min, 0);
        let freers: Vec<_> = [(0, 1u64 << 1), (1, 1u64 << 2)]
            .into_iter()
            .map(|(word, mask)| {
                let f = f.clone();
                thread::spawn(move || usize::from(f.free(word, mask)))
            })
            .collect();
        let mine = usize::from(f.give_back(&bits));
        let theirs: usize = freers.into_iter().map(|t| t.join().unwrap()).sum();
        let mut rest = Vec::new();
        assert_eq!(mine + theirs, 1, "listed {} times", mine + theirs);
        assert!(f.listed());
        assert_eq!(f.take(&mut rest), 2);
        assert_eq!(rest, [1 << 1, 1 << 2]);
    });
}

#[test]
fn two_freers_vs_give_back_min_1() {
    two_freers_vs_give_back(1);
}

/// Neither freer's slot is enough alone: the later of the two sees both.
#[test]
fn two_freers_vs_give_back_min_2() {
    two_freers_vs_give_back(2);
}

/// A freer giving back two words at once (`GiveBack::flush`: one read of
/// the state after both), against a freer of a third slot and the cache
/// giving the span back: listed once, at three free slots, whoever is last.
#[test]
fn two_word_freer_vs_freer_vs_give_back() {
    loom::model(|| {
        let (f, bits) = cached_span(3, 0);
        let both = {
            let f = f.clone();
            thread::spawn(move || usize::from(f.free_words([(0, 1u64 << 1), (1, 1u64 << 2)])))
        };
        let one = {
            let f = f.clone();
            thread::spawn(move || usize::from(f.free(1, 1 << 5)))
        };
        let mine = usize::from(f.give_back(&bits));
        let listed = mine + both.join().unwrap() + one.join().unwrap();
        assert_eq!(listed, 1, "listed {listed} times");
        let mut rest = Vec::new();
        assert_eq!(f.take(&mut rest), 3);
        assert_eq!(rest, [1 << 1, 1 << 2 | 1 << 5]);
    });
}

#[test]
fn take_vs_free() {
    loom::model(|| {
        let (f, bits) = cached_span(1, 1 << 3);
        assert!(f.give_back(&bits), "a span with an unused slot is listed");
        // Popped from its list by another cache while a slot is freed.
        let freer = {
            let f = f.clone();
            thread::spawn(move || usize::from(f.free(0, 1 << 7)))
        };
        let mut taken = Vec::new();
        f.take(&mut taken);
        let theirs = freer.join().unwrap();
        assert_eq!(theirs, 0, "a freer listed a span that was listed or cached");
        check(&f, 1, 0, true, 1 << 3 | 1 << 7, taken[0]);
    });
}
