//! Scenario: the counters identity
//! `received + dropped + abandoned + torn + in_flight == claimed` holds in
//! every snapshot the consumer takes while writers claim, commit, get
//! refused and abandon claims, not only once the ring is drained.
//!
//! Setup: capacity 2, drop-newest, stall timeout 10 ns. Before the threads
//! start, a writer claims position 0 and never commits (it died). Then,
//! concurrently: writers 1 and 2 each try one event once; the consumer passes at now = 0 (notes the stalled claim)
//! and 100 (skips it), taking a counters snapshot after every read and
//! every commit (`checked_pass`) and checking that no counter goes backwards.
//! After joining, a final drain.
//!
//! Accepted outcomes (how many of the two emits were refused):
//! - `refused 0`: the second claim came after the skip freed slot 0;
//! - `refused 1`: it came before, and found the ring full.
//!
//! Never both: slot 1 is free from the start for whoever claims first.
//!
//! In all of them: every snapshot satisfies the identity with head <= tail;
//! claimed, received, dropped and abandoned never decrease; after the
//! drain abandoned 1, torn 0, dropped = dropped_full = refusals,
//! received = written emits, all delivered once, in_flight 0.
//!
//! Forbidden: any snapshot where the counters do not add up.
#![cfg(profilis_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::ring::ConsumerCore;
use profilis::testing::OwnedRing;
use profilis::Counters;

const ACCEPTED: [&str; 2] = ["refused 0", "refused 1"];

fn never_decrease(before: &Counters, after: &Counters) {
    assert!(after.claimed >= before.claimed, "{before:?} -> {after:?}");
    assert!(after.received >= before.received, "{before:?} -> {after:?}");
    assert!(after.dropped >= before.dropped, "{before:?} -> {after:?}");
    assert!(
        after.abandoned >= before.abandoned,
        "{before:?} -> {after:?}"
    );
    assert!(after.head >= before.head, "{before:?} -> {after:?}");
}

#[test]
fn identity_holds_in_every_snapshot() {
    model(&ACCEPTED, || {
        let owned = Arc::new(OwnedRing::events_only(2, false));
        let ring = owned.view();
        let core = ConsumerCore::attach(ring, 10).unwrap();
        assert_eq!(ring.try_claim(), Ok(0));

        let writers: Vec<_> = [(1u32, 1u64), (2, 1)]
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
                let ring = owned.view();
                let mut last = core.counters(ring);
                assert_identity(&last);
                let mut got = Vec::new();
                for now in [0, 100] {
                    got.extend(checked_pass(&mut core, ring, now, usize::MAX));
                    let c = core.counters(ring);
                    never_decrease(&last, &c);
                    last = c;
                }
                (core, got)
            })
        };

        let outcomes: Vec<Emitted> = writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        let (mut core, mut got) = consumer.join().unwrap();
        got.extend(final_drain(&mut core, ring, 200));

        let refused = outcomes.iter().filter(|o| **o == Emitted::Dropped).count() as u64;
        let written = outcomes
            .iter()
            .filter(|o| matches!(o, Emitted::Written(_)))
            .count() as u64;
        assert_eq!(refused + written, 2, "no emit is late: {outcomes:?}");
        assert_eq!(got.len() as u64, written);
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
            (3, written, refused, refused, 1, 0)
        );
        format!("refused {refused}")
    });
}
