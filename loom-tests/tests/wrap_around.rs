//! Scenario: drop-newest wrap-around. A writer writes more events than its
//! lane holds while the consumer reads and commits on another thread.
//!
//! Setup: one lane of 2 slots, drop-newest. The writer locks the lane and
//! writes (1,0), (1,1), (1,2), each tried once; the third only fits once
//! the consumer has handed back a slot (stored the lane's `head`). It then
//! takes a counters snapshot. Meanwhile the consumer makes two read/commit
//! passes. After joining, a final drain.
//!
//! Accepted outcomes:
//! - `3 delivered`: the consumer handed back a slot before the third write,
//!   which reused slot 0;
//! - `third dropped`: the lane was still full; the refusal is counted in
//!   `dropped`.
//!
//! In both: the accepted events are delivered exactly once, whole, in
//! order; the writer's snapshot after its last write holds the identity and
//! shows no more unread events than the lane has slots; counters after the
//! drain: claimed 3, received + dropped 3, in_flight 0.
//!
//! Forbidden: the writer reusing a slot before the consumer's reads of it
//! (a mixed or lost record; `SlotClaims` makes loom check that the reads
//! happen before the reuse), a snapshot that counts a reused slot twice.
//!
//! Orderings exercised: the consumer's Release store of `head` in
//! `hand_back` and the writer's Acquire load of it in `begin`: the state the
//! consumer published before handing the slots back is visible to the
//! writer that reuses them, and the consumer's reads of the slots happen
//! before the writer's new stores into them.
#![cfg(profilis_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::ring::ConsumerCore;
use profilis::testing::OwnedRing;

const ACCEPTED: [&str; 2] = ["3 delivered", "third dropped"];

#[test]
fn writer_laps_a_lane_of_two_slots_behind_the_consumer() {
    model(&ACCEPTED, || {
        let owned = Arc::new(OwnedRing::events_only(1, 2, false));
        let claims = Arc::new(SlotClaims::new(owned.view()));
        let core = ConsumerCore::attach(owned.view()).unwrap();

        let writer = {
            let (owned, claims) = (owned.clone(), claims.clone());
            thread::spawn(move || {
                let ring = owned.view();
                let mut cursor = lock_shared(ring, 1);
                let accepted: Vec<bool> = (0..3)
                    .map(|n| emit_tracked(ring, &claims, &mut cursor, &event(1, n)).is_ok())
                    .collect();
                assert_writer_snapshot(ring, 0);
                accepted
            })
        };
        let consumer = {
            let (owned, claims) = (owned.clone(), claims.clone());
            thread::spawn(move || {
                let mut core = core;
                let ring = owned.view();
                let mut got = pass_tracked(&mut core, ring, &claims, usize::MAX);
                got.extend(pass_tracked(&mut core, ring, &claims, usize::MAX));
                (core, got)
            })
        };

        let accepted = writer.join().unwrap();
        let (mut core, mut got) = consumer.join().unwrap();
        let ring = owned.view();
        got.extend(final_drain(&mut core, ring));

        assert_once_in_order(&got);
        let written: Vec<(u32, u64)> = (0..3)
            .filter(|&n| accepted[n as usize])
            .map(|n| (1, n))
            .collect();
        assert_eq!(ids(&got), written, "exactly the accepted events");
        let c = core.counters(ring);
        assert_settled(&c);
        assert_eq!(c.claimed, 3);
        assert_eq!(c.received + c.dropped, 3);
        match accepted[..] {
            [true, true, true] => "3 delivered".into(),
            [true, true, false] => "third dropped".into(),
            _ => panic!("only the third write can find the lane full: {accepted:?}"),
        }
    });
}
