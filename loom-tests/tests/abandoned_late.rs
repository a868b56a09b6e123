//! Scenario: the consumer's stall-timeout skip of an uncommitted claim
//! races the late commit of the writer that made the claim, while another
//! writer reuses the slot.
//!
//! Setup: capacity 2, drop-newest, stall timeout 10 ns (the model passes
//! the clock). Before the threads start, the late writer claims position 0
//! (and stalls), and (0,1) is committed at position 1. Then, concurrently:
//! the late writer commits (9,0) at position 0; the consumer thread
//! passes at now = 0 (notes the stalled claim) and at now = 100 (past the
//! timeout: skips the claim if it is still uncommitted, else delivers it),
//! which in either case frees slot 0; it then emits (2,0) as writer 2,
//! which gets position 2 in slot 0, possibly while the late writer's words
//! are still landing there, and passes once more. After joining, a final
//! drain.
//!
//! Accepted outcomes:
//! - `committed, 2 delivered`: the commit won: (9,0) delivered at
//!   position 0, abandoned 0, torn 0, commit returned Ok; (2,0) delivered
//!   intact at position 2;
//! - `late, 2 delivered`: the skip won: commit returned Late, abandoned 1,
//!   (9,0) never delivered; (2,0) delivered intact (the late words all
//!   landed before writer 2's);
//! - `late, 2 torn`: as above, but late words landed on (2,0)'s record:
//!   counted torn once, not delivered.
//!
//! In every outcome: commit returns Late iff the consumer skipped
//! (abandoned == 1); torn only after a Late; (0,1) is delivered; nothing is
//! delivered twice; writer 2 is never refused; after the drain claimed 3,
//! dropped 0, in_flight 0 and the identity holds.
//!
//! Forbidden: a skipped claim resurrected by its late commit, a late
//! writer's words delivered as (part of) another event, an outcome counted
//! twice or not at all.
//!
//! Cost: once the late words and writer 2's words race for slot 0, each of
//! the 14 words independently ends up holding either store, up to 2^14
//! outcomes per schedule; the model is explored with at most one
//! preemption (see `model_bounded`).
#![cfg(profilis_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::ring::ConsumerCore;
use profilis::testing::OwnedRing;

const TIMEOUT_NS: u64 = 10;
const ACCEPTED: [&str; 3] = [
    "committed, 2 delivered",
    "late, 2 delivered",
    "late, 2 torn",
];

#[test]
fn stall_skip_races_the_late_commit() {
    model_bounded(1, &ACCEPTED, || {
        let owned = Arc::new(OwnedRing::events_only(2, false));
        let ring = owned.view();
        let core = ConsumerCore::attach(ring, TIMEOUT_NS).unwrap();
        let stalled = ring.try_claim().unwrap();
        assert_eq!(stalled, 0);
        assert_eq!(emit(ring, &event(0, 1)), Emitted::Written(1));

        let late = {
            let owned = owned.clone();
            thread::spawn(move || owned.view().commit(stalled, &event(9, 0).encode(stalled)))
        };
        let consumer = {
            let owned = owned.clone();
            thread::spawn(move || {
                let mut core = core;
                let ring = owned.view();
                let mut got = pass(&mut core, ring, 0, usize::MAX);
                got.extend(pass(&mut core, ring, 100, usize::MAX));
                let second = emit(ring, &event(2, 0));
                got.extend(pass(&mut core, ring, 100, usize::MAX));
                (core, got, second)
            })
        };

        let committed = late.join().unwrap();
        let (mut core, mut got, second) = consumer.join().unwrap();
        got.extend(final_drain(&mut core, ring, 200));
        got.iter().for_each(assert_intact);
        let delivered: Vec<(u64, (u32, u64))> =
            got.iter().map(|e| (e.position, (e.tid, e.value))).collect();
        let c = core.counters(ring);
        assert_settled(&c);
        assert_eq!((c.claimed, c.overwritten), (3, 0));

        assert_eq!(c.dropped, 0);
        let mut expected = Vec::new();
        match committed {
            Ok(()) => {
                assert_eq!((c.abandoned, c.torn), (0, 0), "committed, yet {c:?}");
                expected.push((0, (9, 0)));
                expected.push((1, (0, 1)));
            }
            Err(_) => {
                assert_eq!(c.abandoned, 1, "Late without a skip: {c:?}");
                expected.push((1, (0, 1)));
            }
        }
        match second {
            Emitted::Dropped => panic!("writer 2 refused after slot 0 was freed"),
            Emitted::Written(pos) => {
                assert_eq!(pos, 2);
                // Torn only when the late words hit the reused slot.
                if c.torn == 1 {
                    assert!(committed.is_err());
                } else {
                    assert_eq!(c.torn, 0);
                    expected.push((2, (2, 0)));
                }
            }
            Emitted::Late(pos) => panic!("writer 2 late at {pos}"),
        }
        assert_eq!(delivered, expected, "{c:?}");
        assert_eq!(c.received, expected.len() as u64);
        let first = if committed.is_ok() {
            "committed"
        } else {
            "late"
        };
        let second = if c.torn == 1 { "torn" } else { "delivered" };
        format!("{first}, 2 {second}")
    });
}
