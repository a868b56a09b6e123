//! Scenario: overwrite-oldest. The writer laps the consumer while it reads,
//! rewriting the slot the consumer is reading.
//!
//! Setup: one lane of 2 slots, overwrite-oldest. The writer locks the lane
//! and writes (1,0), (1,1), (1,2): the third goes into slot 0 whether or
//! not (1,0) was read. Meanwhile the consumer makes one read/commit pass.
//! After joining, a final drain. At most one preemption (`model_bounded`):
//! the consumer's 14 word loads race the writer's 14 word stores, each load
//! free to return the old or the new store.
//!
//! Accepted outcomes:
//! - `(1,0) (1,1) (1,2)`: the consumer read (1,0) before it was rewritten;
//! - `(1,1) (1,2), 1 overwritten`: (1,0) was rewritten before it was read,
//!   or while it was read (the read rejected: the slot's sequence word no
//!   longer says COMMITTED(0));
//!
//! In both: no record is counted torn, every delivered record is whole and
//! delivered once, in order; received + overwritten = 3; counters after
//! the drain add up with in_flight 0.
//!
//! Forbidden: a mixed record (words of (1,0) and (1,2)) delivered or
//! counted torn, an event both delivered and counted overwritten.
//!
//! Orderings exercised: the Release fence a writer issues after marking a
//! slot WRITING (`begin`) and the consumer's Acquire fence before it
//! re-loads the sequence word (`read_slot`): a read that saw any word of the
//! rewriting writer also sees its WRITING mark.
#![cfg(profilis_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::ring::ConsumerCore;
use profilis::testing::OwnedRing;

const ACCEPTED: [&str; 2] = ["(1,0) (1,1) (1,2)", "(1,1) (1,2), 1 overwritten"];

#[test]
fn writer_laps_the_consumer_mid_read() {
    model_bounded(1, &ACCEPTED, || {
        let owned = Arc::new(OwnedRing::events_only(1, 2, true));
        let core = ConsumerCore::attach(owned.view()).unwrap();

        let writer = {
            let owned = owned.clone();
            thread::spawn(move || {
                let ring = owned.view();
                let mut cursor = lock_shared(ring, 1);
                for n in 0..3 {
                    emit(ring, &mut cursor, &event(1, n)).expect("overwrite-oldest never refuses");
                }
            })
        };
        let consumer = {
            let owned = owned.clone();
            thread::spawn(move || {
                let mut core = core;
                let got = pass(&mut core, owned.view(), usize::MAX);
                (core, got)
            })
        };

        writer.join().unwrap();
        let (mut core, mut got) = consumer.join().unwrap();
        let ring = owned.view();
        got.extend(final_drain(&mut core, ring));

        assert_once_in_order(&got);
        let c = core.counters(ring);
        assert_settled(&c);
        assert_eq!(c.torn, 0, "a record counted torn: {c:?}");
        assert_eq!(c.received, got.len() as u64);
        assert_eq!((c.claimed, c.received + c.overwritten), (3, 3), "{c:?}");
        match c.overwritten {
            0 => label(&got),
            n => format!("{}, {n} overwritten", label(&got)),
        }
    });
}
