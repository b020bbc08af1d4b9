//! Drives the scheduler's run queue (`RunQ`, Go's per-P runq) with random
//! operation sequences on two queues and checks them against a model: every
//! item put is taken exactly once, `runnext` is taken first and inherits the
//! time slice, the ring is FIFO, overflow spills the oldest half plus the
//! new item, and a steal takes half of the victim's queue.
//!
//! `cargo +nightly fuzz run runq` (from `fuzz/`).
#![no_main]

use std::collections::VecDeque;
use std::ptr::NonNull;

use gort::__internals::RunQ;
use libfuzzer_sys::fuzz_target;

struct Model {
    runnext: Option<u32>,
    ring: VecDeque<u32>,
}

impl Model {
    fn len(&self) -> usize {
        self.ring.len() + self.runnext.is_some() as usize
    }
}

fuzz_target!(|ops: &[u8]| {
    let qs = [RunQ::<u32>::new(), RunQ::<u32>::new()];
    let mut models = [Model { runnext: None, ring: VecDeque::new() }, Model { runnext: None, ring: VecDeque::new() }];
    let mut items: Vec<Box<u32>> = Vec::new();
    let mut next_id = 0u32;
    let mut taken: Vec<u32> = Vec::new();
    let mut spilled: Vec<u32> = Vec::new();
    let cap = RunQ::<u32>::CAPACITY;
    let mut new_item = |items: &mut Vec<Box<u32>>| {
        next_id += 1;
        let mut b = Box::new(next_id);
        let p = NonNull::from(&mut *b);
        items.push(b);
        (p, next_id)
    };
    for &op in ops {
        let q = (op & 1) as usize;
        let (mq, qq) = (&mut models[q], &qs[q]);
        match op >> 1 & 3 {
            0 | 1 => {
                // put, with `next` for op bit 3; repeated puts fill the ring.
                let next = op & 8 != 0;
                let n = 1 + (op >> 4) as usize * 8;
                for _ in 0..n {
                    let (p, id) = new_item(&mut items);
                    // SAFETY: single-threaded: this thread owns both queues.
                    let spill = unsafe { qq.put(p, next) };
                    let pushed = if next { mq.runnext.replace(id) } else { Some(id) };
                    if let Some(x) = pushed {
                        if mq.ring.len() == cap {
                            let mut expect: Vec<u32> = mq.ring.drain(..cap / 2).collect();
                            expect.push(x);
                            // SAFETY: items point into `items`, which outlives the queues.
                            let got: Vec<u32> =
                                spill.expect("a full ring must spill").iter().map(|p| unsafe { *p.as_ref() }).collect();
                            assert_eq!(got, expect, "spill must be the oldest half plus the new item");
                            spilled.extend(got);
                        } else {
                            assert!(spill.is_none(), "spilled with room left");
                            mq.ring.push_back(x);
                        }
                    } else {
                        assert!(spill.is_none());
                    }
                }
            }
            2 => {
                // SAFETY: as above.
                let got = unsafe { qq.get() }.map(|(p, inherit)| (unsafe { *p.as_ref() }, inherit));
                let want = match mq.runnext.take() {
                    Some(x) => Some((x, true)),
                    None => mq.ring.pop_front().map(|x| (x, false)),
                };
                assert_eq!(got, want, "get order");
                taken.extend(got.map(|g| g.0));
            }
            _ => {
                // steal from the other queue into this one
                let v = 1 - q;
                let (thief, victim) = if q == 0 {
                    let (a, b) = models.split_at_mut(1);
                    (&mut a[0], &mut b[0])
                } else {
                    let (a, b) = models.split_at_mut(1);
                    (&mut b[0], &mut a[0])
                };
                if thief.ring.len() > cap / 2 {
                    continue; // the real runq refuses (it would overflow)
                }
                let steal_runnext = op & 8 != 0;
                // SAFETY: as above.
                let got = unsafe { qs[q].steal(&qs[v], steal_runnext, false) }.map(|p| unsafe { *p.as_ref() });
                let n = victim.ring.len();
                let want = if n > 0 {
                    let k = n - n / 2;
                    let mut grabbed: Vec<u32> = victim.ring.drain(..k).collect();
                    let last = grabbed.pop();
                    thief.ring.extend(grabbed);
                    last
                } else if steal_runnext {
                    victim.runnext.take()
                } else {
                    None
                };
                assert_eq!(got, want, "steal takes half, runs the last");
                taken.extend(got);
            }
        }
        assert_eq!(qs[q].len(), models[q].len(), "len");
        assert_eq!(qs[q].is_empty(), models[q].len() == 0, "is_empty");
    }
    for (q, m) in qs.iter().zip(&models) {
        // SAFETY: as above.
        let rest: Vec<u32> = unsafe { q.drain() }.iter().map(|p| unsafe { *p.as_ref() }).collect();
        let want: Vec<u32> = m.runnext.iter().copied().chain(m.ring.iter().copied()).collect();
        assert_eq!(rest, want, "drain order");
        taken.extend(rest);
    }
    taken.extend(spilled);
    taken.sort_unstable();
    let all: Vec<u32> = (1..=next_id).collect();
    assert_eq!(taken, all, "every item exactly once");
});
