//! A small span's free slots that no thread's cache holds, a bit each, and
//! whether the span is listed on its class's partial list.
//!
//! Go's counterpart is an `mspan`'s `allocBits`/`freeindex`, read 64 slots
//! at a time through `allocCache` (`nextFreeIndex`, mbitmap.go). Here the
//! bits are of free slots rather than allocated ones, and are set by
//! whoever frees a slot (the sweeper, or a mutator freeing at zero): a
//! cache taking the span swaps each word to zero and owns what it got, so
//! taking a span costs a word per 64 slots, not a read of every slot's
//! allocation byte. A span the sweep left with a few free slots was read
//! whole each time it was taken (gc_wait: three quarters of allocation time
//! during cycles, in refills).
//!
//! The span's state is CACHED (a thread allocates from it), FULL (in no
//! cache and no list) or PARTIAL (on its list). Every free slot whose
//! allocation byte is clear is in exactly one place: a cache's private
//! bitmap, or these bits (once its freer has set it).
//!
//! A FULL span is listed once it has a few free slots (1/32 of them, at
//! least one), not at its first: slots freed one at a time across a large
//! heap (a mutator replacing objects at random, each freed at zero) would
//! otherwise list thousands of spans with one free slot each, and every
//! allocation would take a new span (gc_wait with no collection running:
//! a 31-node tree took 31 refills, one build in 20 over 50 µs). At most
//! that share of a span's slots waits for more frees before reuse.
//!
//! A span with enough bits set is never left FULL: the cache giving it
//! back and a freer race like Dekker's, each writing (state FULL; a bit)
//! before reading the other's side, all SeqCst (with a fence before the
//! reads under loom, which models SeqCst accesses as acquire/release), and
//! one that sees both lists the span with a compare-exchange that only one
//! wins. Of several freers, the last in that order sees every bit. The
//! loom models are in `loom-tests/tests/free_slots.rs`.

use crate::loom::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use crate::loom::LoadSeqCst;

const CACHED: u8 = 0;
const FULL: u8 = 1;
const PARTIAL: u8 = 2;

/// See the module documentation.
pub struct FreeSlots {
    bits: Box<[AtomicU64]>,
    state: AtomicU8,
    /// Free slots a FULL span needs to be listed.
    min: u32,
}

impl FreeSlots {
    /// A new span of `nslots` slots, all free, cached by the thread that
    /// creates it (which takes them with [`FreeSlots::take`]).
    pub fn new(nslots: usize) -> FreeSlots {
        FreeSlots::with_min(nslots, (nslots / 32).max(1) as u32)
    }

    /// [`FreeSlots::new`], listed once `min` slots are free (loom models).
    #[doc(hidden)]
    pub fn with_min(nslots: usize, min: u32) -> FreeSlots {
        let bits = (0..nslots.div_ceil(64))
            .map(|w| {
                let n = (nslots - w * 64).min(64);
                AtomicU64::new(if n == 64 { u64::MAX } else { (1 << n) - 1 })
            })
            .collect();
        FreeSlots { bits, state: AtomicU8::new(CACHED), min }
    }

    /// A thread's cache takes the span (new, or just popped from its list):
    /// the free slots go into `into` (a word per 64 slots), which is
    /// returned with their number. Slots freed after their word is read
    /// stay here for the next taker.
    pub fn take(&self, into: &mut Vec<u64>) -> usize {
        self.state.store(CACHED, Ordering::SeqCst);
        into.clear();
        let mut n = 0;
        for w in self.bits.iter() {
            // Acquire: a slot's drop glue and cleared byte come before its
            // reuse (the freer's read-modify-write releases them).
            let f = if w.load(Ordering::Relaxed) == 0 { 0 } else { w.swap(0, Ordering::Acquire) };
            n += f.count_ones() as usize;
            into.push(f);
        }
        n
    }

    /// The cache gives the span back with the slots of `unused` (from
    /// [`FreeSlots::take`], those it did not allocate). Returns whether the
    /// caller must put the span on its partial list.
    pub fn give_back(&self, unused: &[u64]) -> bool {
        for (w, &u) in self.bits.iter().zip(unused) {
            if u != 0 {
                w.fetch_or(u, Ordering::Relaxed);
            }
        }
        // A freer that reads FULL sees the bits above (release); and the
        // write of the Dekker pair (SeqCst: before the reads in `enough`).
        self.state.store(FULL, Ordering::SeqCst);
        crate::loom::fence_before_seqcst_reads();
        self.enough() && self.list()
    }

    /// Slots `mask` of word `word` were freed: their allocation bytes are
    /// clear, their values dropped. Returns whether the caller must put the
    /// span on its partial list.
    #[cfg(any(test, loom))]
    pub fn free(&self, word: usize, mask: u64) -> bool {
        self.free_words([(word, mask)])
    }

    /// [`FreeSlots::free`] for several words (`(word, mask)` pairs) at
    /// once: the span's state and bits are read once, after all of them.
    pub fn free_words(&self, freed: impl IntoIterator<Item = (usize, u64)>) -> bool {
        // The other side of `give_back`'s Dekker pair, and of other
        // freers': SeqCst writes and reads on both sides (on x86 the
        // read-modify-write is a full barrier already; a fence after it
        // was a second one, on every free at zero).
        for (word, mask) in freed {
            self.bits[word].fetch_or(mask, Ordering::SeqCst);
        }
        self.state.load_seqcst() == FULL && self.enough() && self.list()
    }

    /// Whether at least `min` slots are free in no cache (the reads of the
    /// Dekker pairs: SeqCst, plain loads on x86).
    fn enough(&self) -> bool {
        let mut n = 0;
        for w in self.bits.iter() {
            n += w.load(Ordering::SeqCst).count_ones();
            if n >= self.min {
                return true;
            }
        }
        false
    }

    /// FULL to PARTIAL: true for the one caller that moves it.
    fn list(&self) -> bool {
        self.state.compare_exchange(FULL, PARTIAL, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// Whether a thread's cache holds the span.
    pub fn cached(&self) -> bool {
        self.state.load(Ordering::SeqCst) == CACHED
    }

    /// Whether the span is on its partial list.
    #[cfg(any(test, loom))]
    pub fn listed(&self) -> bool {
        self.state.load(Ordering::SeqCst) == PARTIAL
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::FreeSlots;

    #[test]
    fn a_new_span_gives_its_cache_every_slot() {
        let mut into = Vec::new();
        let f = FreeSlots::new(130);
        assert_eq!(f.take(&mut into), 130);
        assert_eq!(into, [u64::MAX, u64::MAX, 0b11]);
        // Taken once: nothing left, and a full span given back is not listed.
        assert!(!f.give_back(&[0, 0, 0]));
        assert_eq!(f.take(&mut into), 0);
    }

    #[test]
    fn a_full_span_is_listed_once_it_has_a_32nd_of_its_slots_free() {
        let mut into = Vec::new();
        let f = FreeSlots::new(128);
        f.take(&mut into);
        assert!(!f.give_back(&[0, 0]));
        assert!(!f.free(0, 1 << 5), "one slot of 128 free: not listed");
        assert!(!f.free(0, 1 << 6 | 1 << 7), "three");
        assert!(f.free(1, 1 << 9), "the fourth: listed");
        assert_eq!(f.take(&mut into), 4);
        assert_eq!(into, [0b111 << 5, 1 << 9]);
        // Given back with four unused slots: listed again.
        assert!(f.give_back(&into));
    }

    #[test]
    fn freed_slots_list_a_full_span_once_and_go_to_the_next_taker() {
        let mut into = Vec::new();
        let f = FreeSlots::with_min(64, 1);
        f.take(&mut into);
        assert!(!f.give_back(&[0]));
        assert!(f.free(0, 1 << 5), "the first free lists a full span");
        assert!(!f.free(0, 1 << 9), "a listed span is not listed again");
        assert!(f.listed());
        assert_eq!(f.take(&mut into), 2);
        assert_eq!(into, [1 << 5 | 1 << 9]);
        assert!(f.cached());
        // A free while cached stays for the next taker; giving back lists it.
        assert!(!f.free(0, 1 << 1));
        assert!(f.give_back(&[1 << 9]));
        assert_eq!(f.take(&mut into), 2);
        assert_eq!(into, [1 << 1 | 1 << 9]);
    }
}
