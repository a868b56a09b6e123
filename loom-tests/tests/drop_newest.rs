//! Scenario: a full ring under drop-newest, with two producers racing for
//! the last free slot while the consumer frees another.
//!
//! Setup: capacity 2, drop-newest, stall timeout never reached. Before the
//! threads start, (0,0) is committed at position 0, so one slot is free.
//! Then, concurrently: producers 1 and 2 each try one event once; the
//! consumer makes one pass. After joining, a final drain.
//!
//! Accepted outcomes (`p@pos` is a Written emit, `p full` a refusal):
//! - `1@1 2@2`, `2@1 1@2`: both written; the consumer released position 0
//!   before the second claim;
//! - `1@1 2 full`, `2@1 1 full`: the second claim found position 0 still
//!   unreleased and was refused.
//!
//! Never both refused (position 1 is free for whoever claims first).
//!
//! In all of them:
//! - the number of Full results F equals dropped_full and dropped exactly;
//! - delivered: (0,0) first, then exactly the Written events, once each,
//!   in position order, records intact; a refused event is never delivered;
//! - counters after the drain: claimed 3, received 3 - F, abandoned 0,
//!   torn 0, in_flight 0 (identity holds).
//!
//! Forbidden: a refusal not counted (or counted twice), a claim that
//! overwrites the unread event, both producers refused.
#![cfg(profilis_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::ring::ConsumerCore;
use profilis::testing::OwnedRing;

const ACCEPTED: [&str; 4] = ["1@1 2@2", "2@1 1@2", "1@1 2 full", "2@1 1 full"];

#[test]
fn full_ring_drops_the_newest_and_counts_it() {
    model(&ACCEPTED, || {
        let owned = Arc::new(OwnedRing::events_only(2, false));
        let ring = owned.view();
        let core = ConsumerCore::attach(ring, NEVER).unwrap();
        assert_eq!(emit(ring, &event(0, 0)), Emitted::Written(0));

        let producers: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|p| {
                let owned = owned.clone();
                thread::spawn(move || (p, emit(owned.view(), &event(p, 0))))
            })
            .collect();
        let consumer = {
            let owned = owned.clone();
            thread::spawn(move || {
                let mut core = core;
                let got = pass(&mut core, owned.view(), 0, usize::MAX);
                (core, got)
            })
        };

        let outcomes: Vec<(u32, Emitted)> =
            producers.into_iter().map(|p| p.join().unwrap()).collect();
        let (mut core, mut got) = consumer.join().unwrap();
        got.extend(final_drain(&mut core, ring, 0));

        let refused = outcomes
            .iter()
            .filter(|(_, o)| *o == Emitted::Dropped)
            .count() as u64;
        assert!(refused < 2, "both producers refused: {outcomes:?}");
        let mut written: Vec<(u64, (u32, u64))> = outcomes
            .iter()
            .filter_map(|&(p, o)| match o {
                Emitted::Written(pos) => Some((pos, (p, 0))),
                Emitted::Dropped => None,
                Emitted::Late(pos) => panic!("late at {pos} without a timeout"),
            })
            .collect();
        written.sort();
        let mut outcome: Vec<String> = written
            .iter()
            .map(|(pos, (p, _))| format!("{p}@{pos}"))
            .collect();
        outcome.extend(
            outcomes
                .iter()
                .filter(|(_, o)| *o == Emitted::Dropped)
                .map(|(p, _)| format!("{p} full")),
        );
        let mut expected = vec![(0, (0, 0))];
        expected.extend(written);
        let delivered: Vec<(u64, (u32, u64))> =
            got.iter().map(|e| (e.position, (e.tid, e.value))).collect();
        assert_eq!(delivered, expected);
        assert_eq!(
            delivered.iter().map(|d| d.0).collect::<Vec<_>>(),
            (0..delivered.len() as u64).collect::<Vec<_>>()
        );
        got.iter().for_each(assert_intact);

        let c = core.counters(ring);
        assert_settled(&c);
        assert_eq!(
            (
                c.claimed,
                c.received,
                c.dropped,
                c.dropped_full,
                c.abandoned,
                c.torn
            ),
            (3, 3 - refused, refused, refused, 0, 0)
        );
        outcome.join(" ")
    });
}
