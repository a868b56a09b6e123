//! Scenario: overwrite-oldest while the consumer reads the very records
//! being overwritten.
//!
//! Setup: capacity 2, overwrite-oldest, stall timeout never reached.
//! Before the threads start, (0,0) and (0,1) are committed at positions 0
//! and 1 and left unread: the ring is full. Then, concurrently: the
//! producer emits (1,0) at position 2, taking slot 0 from the unread (0,0)
//! and rewriting its 14 words; the consumer makes one pass, reading
//! position 0's words while they may be rewritten. After joining, a final
//! drain.
//!
//! Accepted outcomes:
//! - `delivered`: (0,0) was read before the steal and is delivered;
//! - `overwritten`: the steal came first, or rewrote the slot while the
//!   consumer read it; position 0 is counted as overwritten.
//!
//! In both:
//! - the emit is Written at position 2 (overwrite-oldest never refuses
//!   here);
//! - position 0 is either delivered as (0,0) (read before the steal) or
//!   counted as overwritten, never both, never neither; positions 1 and 2
//!   are always delivered, as (0,1) and (1,0);
//! - every delivered record is exactly the one written at its position;
//!   delivery is in position order; no record mixes words of two events;
//! - counters after the drain: claimed 3, received R (2 or 3),
//!   overwritten = dropped = 3 - R, dropped_full 0, abandoned 0, torn 0,
//!   in_flight 0 (identity holds).
//!
//! Forbidden: a torn or mixed record delivered, a position counted twice
//! (delivered and overwritten) or not at all, a stale view of the stolen
//! slot counted as damage (torn).
//!
//! Cost: each of the consumer's 14 word loads may read the old or the new
//! store, so one schedule has up to 2^14 outcomes; the model is explored
//! with at most one preemption (see `model_bounded`).
#![cfg(profilis_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::ring::ConsumerCore;
use profilis::testing::OwnedRing;

const ACCEPTED: [&str; 2] = ["delivered", "overwritten"];

#[test]
fn overwrite_oldest_with_a_concurrent_read() {
    model_bounded(1, &ACCEPTED, || {
        let owned = Arc::new(OwnedRing::events_only(2, true));
        let ring = owned.view();
        let core = ConsumerCore::attach(ring, NEVER).unwrap();
        for n in 0..2 {
            assert_eq!(emit(ring, &event(0, n)), Emitted::Written(n));
        }

        let producer = {
            let owned = owned.clone();
            thread::spawn(move || emit(owned.view(), &event(1, 0)))
        };
        let consumer = {
            let owned = owned.clone();
            thread::spawn(move || {
                let mut core = core;
                let got = pass(&mut core, owned.view(), 0, usize::MAX);
                (core, got)
            })
        };

        assert_eq!(producer.join().unwrap(), Emitted::Written(2));
        let (mut core, mut got) = consumer.join().unwrap();
        got.extend(final_drain(&mut core, ring, 0));

        let expected = [(0, 0), (0, 1), (1, 0)];
        let positions: Vec<u64> = got.iter().map(|e| e.position).collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "position order, once each: {positions:?}"
        );
        assert!(positions.ends_with(&[1, 2]), "{positions:?}");
        for ev in &got {
            assert_intact(ev);
            assert_eq!((ev.tid, ev.value), expected[ev.position as usize]);
        }

        let c = core.counters(ring);
        assert_settled(&c);
        let received = got.len() as u64;
        assert_eq!(
            (
                c.claimed,
                c.received,
                c.overwritten,
                c.dropped,
                c.dropped_full
            ),
            (3, received, 3 - received, 3 - received, 0)
        );
        assert_eq!((c.abandoned, c.torn), (0, 0));
        if received == 3 {
            "delivered"
        } else {
            "overwritten"
        }
        .to_string()
    });
}
