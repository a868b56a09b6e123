//! Scenario: a third thread takes counter snapshots while the consumer
//! commits and a writer writes.
//!
//! Setup: one lane of 4 slots, drop-newest. The writer locks the lane,
//! writes (1,0), begins position 1, stamps its identity into the record
//! and abandons it (a dropped two-phase claim: the slot stays WRITING and
//! the tail moves past it), and writes (1,2). The consumer makes two read/commit passes. A monitor thread takes
//! two `Counters::snapshot`s, as another process would. After joining, a
//! final drain.
//!
//! Accepted outcomes (`seen a-b`: the consumer state versions, 0 to 2 as
//! the passes commit, that the two snapshots read): `seen 0-0`, `seen 0-1`,
//! `seen 0-2`, `seen 1-1`, `seen 1-2`, `seen 2-2`.
//!
//! In all: every snapshot holds `received + dropped + abandoned + torn +
//! in_flight == claimed` and matches one state the consumer published
//! (counts adding up to its read position); the second snapshot is never
//! older than the first; position 1 is counted abandoned, never torn, and
//! its loss names the writer that stamped it (pid 7, writer 0); after the
//! drain: claimed 3, received 2, abandoned 1, in_flight 0.
//!
//! Forbidden: a snapshot mixing two published states (the seqlock read of
//! the two state copies), a version read with words older than it, the
//! abandoned position read before its WRITING mark or its stamp.
//!
//! Orderings exercised: `ConsumerState::publish`'s Release fence before its
//! stores into the spare copy and `load`'s Acquire fence before it
//! re-checks `state_seq`; `publish`'s Release store of `state_seq` and
//! `load`'s Acquire load of it; `abandon`'s Release store of `tail` (the
//! stamp stored after `begin`'s fence is visible with the position).
#![cfg(profilis_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::ring::{ConsumerCore, ConsumerState, Counters, LossCause};
use profilis::testing::OwnedRing;

const ACCEPTED: [&str; 6] = [
    "seen 0-0", "seen 0-1", "seen 0-2", "seen 1-1", "seen 1-2", "seen 2-2",
];

/// A snapshot as another process takes it, with the version it read.
fn snapshot(ring: profilis::ring::RingRef<'_>) -> (u64, Counters) {
    let (version, state) = ConsumerState::load(&ring).expect("the state settles");
    assert!(state.is_consistent(), "torn state: {state:?}");
    let c = Counters::from_state(&ring, &state);
    assert_identity(&c);
    (version, c)
}

#[test]
fn snapshots_while_the_consumer_commits() {
    model_bounded(1, &ACCEPTED, || {
        let owned = Arc::new(OwnedRing::events_only(1, 4, false));
        let core = ConsumerCore::attach(owned.view()).unwrap();

        let writer = {
            let owned = owned.clone();
            thread::spawn(move || {
                let ring = owned.view();
                let mut cursor = lock_shared(ring, 1);
                emit(ring, &mut cursor, &event(1, 0)).unwrap();
                let w = ring.begin(&mut cursor).unwrap();
                ring.stamp_identity(&w, &who(1));
                ring.abandon(&mut cursor, &w);
                emit(ring, &mut cursor, &event(1, 2)).unwrap();
            })
        };
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
        let monitor = {
            let owned = owned.clone();
            thread::spawn(move || {
                let ring = owned.view();
                let (v1, c1) = snapshot(ring);
                let (v2, c2) = snapshot(ring);
                assert!(v2 >= v1, "second snapshot older than the first");
                assert!(c2.received >= c1.received && c2.head >= c1.head);
                format!("seen {v1}-{v2}")
            })
        };

        writer.join().unwrap();
        let seen = monitor.join().unwrap();
        let (mut core, mut got) = consumer.join().unwrap();
        let ring = owned.view();
        got.extend(final_drain(&mut core, ring));

        assert_once_in_order(&got);
        assert_eq!(ids(&got), vec![(1, 0), (1, 2)]);
        let (losses, untold) = core.take_losses();
        assert_eq!(untold, 0);
        assert_eq!(losses.len(), 1, "{losses:?}");
        let loss = losses[0];
        assert_eq!((loss.position, loss.cause), (1, LossCause::Abandoned));
        assert_eq!(
            (loss.pid, loss.writer),
            (7, 0),
            "the claim's stamp names its writer"
        );
        let c = core.counters(ring);
        assert_settled(&c);
        assert_eq!(
            (c.claimed, c.received, c.abandoned, c.torn),
            (3, 2, 1, 0),
            "{c:?}"
        );
        seen
    });
}
