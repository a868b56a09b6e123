//! Scenario: two writers, each in a lane of its own, and a concurrent
//! consumer.
//!
//! Setup: 4 lanes of 2 slots (3 own lanes, 1 shared), drop-newest. Writer 1
//! takes a lane and writes (1,0) then (1,1); writer 2 takes another lane
//! and writes (2,0); meanwhile the consumer makes two read/commit passes.
//! After joining, a final drain.
//!
//! Accepted outcomes (the delivery order over the passes and the drain):
//! - `(1,0) (1,1) (2,0)`, `(1,0) (2,0) (1,1)`, `(2,0) (1,0) (1,1)`;
//! - in all of them: every write is accepted (2 events per 2-slot lane at
//!   most), each event is delivered exactly once, whole, and (1,0) before
//!   (1,1); the writers hold different lanes; counters after the drain:
//!   claimed 3, received 3, dropped 0, abandoned 0, torn 0, in_flight 0.
//!
//! Forbidden: a lost, duplicated or reordered event, a mixed record, two
//! writers in one lane, a counter that does not add up.
//!
//! Orderings exercised: the writer's Release store of `tail` in `publish`
//! and the consumer's Acquire load of it (the record is complete before its
//! position is readable), and the state publication of `commit`.
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
fn two_writers_in_own_lanes_and_a_consumer() {
    model(&ACCEPTED, || {
        let owned = Arc::new(OwnedRing::events_only(4, 2, false));
        let core = ConsumerCore::attach(owned.view()).unwrap();

        let writers: Vec<_> = [(1u32, 2u64), (2, 1)]
            .into_iter()
            .map(|(p, count)| {
                let owned = owned.clone();
                thread::spawn(move || {
                    let ring = owned.view();
                    let mut cursor = take_lane(ring, p);
                    for n in 0..count {
                        emit(ring, &mut cursor, &event(p, n)).expect("room");
                    }
                    cursor.lane
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

        let lanes: Vec<u32> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        assert_ne!(lanes[0], lanes[1], "two writers in one lane");
        let (mut core, mut got) = consumer.join().unwrap();
        let ring = owned.view();
        got.extend(final_drain(&mut core, ring));

        assert_once_in_order(&got);
        let mut delivered = ids(&got);
        delivered.sort();
        assert_eq!(delivered, vec![(1, 0), (1, 1), (2, 0)]);
        let c = core.counters(ring);
        assert_settled(&c);
        assert_eq!(
            (c.claimed, c.received, c.dropped, c.abandoned, c.torn),
            (3, 3, 0, 0, 0)
        );
        label(&got)
    });
}
