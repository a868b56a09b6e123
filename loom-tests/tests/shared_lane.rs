//! Scenario: two threads write through one shared lane, locking it for each
//! event, while the consumer reads.
//!
//! Setup: one lane of 4 slots (a ring of one lane has only the shared one),
//! drop-newest. Thread 1 writes (1,0) and (1,1), thread 2 writes (2,0);
//! each event is one `lock_shared_lane` / write / `release_lane` round,
//! yielding while the other thread holds the lane. Meanwhile the consumer
//! makes two read/commit passes. After joining, a final drain.
//!
//! Accepted outcomes (lane order is the order the lock was taken):
//! - `(1,0) (1,1) (2,0)`, `(1,0) (2,0) (1,1)`, `(2,0) (1,0) (1,1)`;
//! - in all of them: every write is accepted, each event is delivered once,
//!   whole, at lane positions 0, 1, 2; counters after the drain: claimed 3,
//!   received 3, dropped 0, in_flight 0.
//!
//! Forbidden: two events at one position (the second holder starting from
//! a stale `tail`), a lost or mixed event.
//!
//! Orderings exercised: `release_lane`'s Release store of `owner` and the
//! next holder's Acquire CAS in `try_take` (the previous holder's `tail` is
//! visible to the next one).
#![cfg(profilis_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::ring::ConsumerCore;
use profilis::testing::OwnedRing;

const ACCEPTED: [&str; 3] = [
    "(1,0) (1,1) (2,0)",
    "(1,0) (2,0) (1,1)",
    "(2,0) (1,0) (1,1)",
];

#[test]
fn two_threads_share_one_lane() {
    model(&ACCEPTED, || {
        let owned = Arc::new(OwnedRing::events_only(1, 4, false));
        let core = ConsumerCore::attach(owned.view()).unwrap();

        let writers: Vec<_> = [(1u32, 2u64), (2, 1)]
            .into_iter()
            .map(|(p, count)| {
                let owned = owned.clone();
                thread::spawn(move || {
                    let ring = owned.view();
                    for n in 0..count {
                        let mut cursor = lock_shared(ring, p);
                        emit(ring, &mut cursor, &event(p, n)).expect("room");
                        ring.release_lane(&cursor, &who(p));
                    }
                })
            })
            .collect();
        let consumer = {
            let owned = owned.clone();
            thread::spawn(move || {
                let mut core = core;
                let ring = owned.view();
                let mut got = pass(&mut core, ring, usize::MAX);
                got.extend(pass(&mut core, ring, usize::MAX));
                (core, got)
            })
        };

        writers.into_iter().for_each(|w| w.join().unwrap());
        let (mut core, mut got) = consumer.join().unwrap();
        let ring = owned.view();
        got.extend(final_drain(&mut core, ring));

        assert_once_in_order(&got);
        let positions: Vec<u64> = got.iter().map(|e| e.position).collect();
        assert_eq!(positions, vec![0, 1, 2], "lane order, exactly once");
        let c = core.counters(ring);
        assert_settled(&c);
        assert_eq!((c.claimed, c.received, c.dropped), (3, 3, 0));
        label(&got)
    });
}
