//! Scenario: claim, commit and consume with two producers and a concurrent
//! consumer.
//!
//! Setup: capacity 4, drop-newest, stall timeout never reached. Producer 1
//! emits (1,0) then (1,1); producer 2 emits (2,0); meanwhile the consumer
//! makes two read/commit passes. After joining, a final drain.
//!
//! Accepted outcomes (every interleaving must give one of them):
//! - `(1,0) (1,1) (2,0)`, `(1,0) (2,0) (1,1)`, `(2,0) (1,0) (1,1)`: the
//!   delivery order over the consumer's passes and the final drain; each
//!   event exactly once, in ring-position order, (1,0) before (1,1);
//! - in all of them: every emit returns Written (3 events, 4 slots: the
//!   ring cannot fill);
//! - every delivered record is exactly what its producer wrote;
//! - counters after the drain: claimed 3, received 3, dropped 0,
//!   abandoned 0, torn 0, in_flight 0 (identity holds).
//!
//! Forbidden: a lost, duplicated or reordered event, a mixed record, a
//! counter that does not add up.
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
fn two_producers_and_a_consumer() {
    model(&ACCEPTED, || {
        let owned = Arc::new(OwnedRing::events_only(4, false));
        let core = ConsumerCore::attach(owned.view(), NEVER).unwrap();

        let producers: Vec<_> = [(1u32, 2u64), (2, 1)]
            .into_iter()
            .map(|(p, count)| {
                let owned = owned.clone();
                thread::spawn(move || {
                    (0..count)
                        .map(|n| emit(owned.view(), &event(p, n)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let consumer = {
            let owned = owned.clone();
            thread::spawn(move || {
                let mut core = core;
                let mut got = pass(&mut core, owned.view(), 0, usize::MAX);
                got.extend(pass(&mut core, owned.view(), 0, usize::MAX));
                (core, got)
            })
        };

        for p in producers {
            for outcome in p.join().unwrap() {
                assert!(matches!(outcome, Emitted::Written(_)), "{outcome:?}");
            }
        }
        let (mut core, mut got) = consumer.join().unwrap();
        let ring = owned.view();
        got.extend(final_drain(&mut core, ring, 0));

        let positions: Vec<u64> = got.iter().map(|e| e.position).collect();
        assert_eq!(positions, vec![0, 1, 2], "position order, exactly once");
        got.iter().for_each(assert_intact);
        let outcome = label(&got);
        let mut delivered = ids(&got);
        let one: Vec<_> = delivered.iter().filter(|(p, _)| *p == 1).collect();
        assert_eq!(one, vec![&(1, 0), &(1, 1)], "per-producer order");
        delivered.sort();
        assert_eq!(delivered, vec![(1, 0), (1, 1), (2, 0)]);

        let c = core.counters(ring);
        assert_settled(&c);
        assert_eq!(
            (c.claimed, c.received, c.dropped, c.abandoned, c.torn),
            (3, 3, 0, 0, 0)
        );
        outcome
    });
}
