//! Scenario: wrap-around. More events than slots pass through a ring of
//! capacity 2 while the consumer drains concurrently, so every slot is
//! reused and sequence words go through FREE(p) -> COMMITTED(p) ->
//! FREE(p + 2) more than once.
//!
//! Setup: capacity 2, drop-newest, stall timeout never reached. Before
//! the threads start, events (0,0) and (0,1) go through the ring, so the
//! slots already hold FREE(2) and FREE(3). Then, concurrently: producer 1
//! emits (1,0), (1,1), (1,2) at positions 2, 3, 4 (position 4 reuses the
//! slot of position 2 once more), giving each event up to two attempts;
//! meanwhile the consumer makes two passes. After joining, a final drain.
//!
//! Accepted outcomes (named by how (1,2), the one that needs slot 0 a
//! third time, fared; (1,0) and (1,1) find their slots free):
//! - `first try`: written on the first attempt, no refusal;
//! - `second try`: refused once (the consumer had not released position 2
//!   yet), written on the second attempt;
//! - `refused`: refused twice, never delivered.
//!
//! In all of them:
//! - every emit that returned Written is delivered exactly once and every
//!   refused one never, in the order written;
//!   delivery follows ring positions 0, 1, 2, ... without gaps; every
//!   record is exactly as written;
//! - the refusals the producer saw (F >= 0, each retry counts) equal
//!   dropped_full and dropped exactly;
//! - counters after the drain: claimed = delivered + F, abandoned 0,
//!   torn 0, in_flight 0 (identity holds).
//!
//! Forbidden: a writer overwriting a slot the consumer has not released, a
//! lost or repeated event, a refusal not counted or counted twice.
#![cfg(profilis_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::ring::ConsumerCore;
use profilis::testing::OwnedRing;

const ATTEMPTS: usize = 2;
const ACCEPTED: [&str; 3] = ["first try", "second try", "refused"];

#[test]
fn wrap_around_with_a_concurrent_consumer() {
    model(&ACCEPTED, || {
        let owned = Arc::new(OwnedRing::events_only(2, false));
        let ring = owned.view();
        let mut core = ConsumerCore::attach(ring, NEVER).unwrap();
        // First lap, before any concurrency.
        for n in 0..2 {
            assert_eq!(emit(ring, &event(0, n)), Emitted::Written(n));
        }
        let mut got = final_drain(&mut core, ring, 0);
        assert_eq!(ids(&got), vec![(0, 0), (0, 1)]);

        let retrying = {
            let owned = owned.clone();
            thread::spawn(move || {
                let mut refused = 0u64;
                let mut written = Vec::new();
                for n in 0..3 {
                    for _ in 0..ATTEMPTS {
                        match emit(owned.view(), &event(1, n)) {
                            Emitted::Written(_) => {
                                written.push((1, n));
                                break;
                            }
                            Emitted::Dropped => {
                                refused += 1;
                                thread::yield_now();
                            }
                            Emitted::Late(pos) => panic!("late at {pos} without a timeout"),
                        }
                    }
                }
                (written, refused)
            })
        };
        let consumer = {
            let owned = owned.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                for _ in 0..2 {
                    let batch = pass(&mut core, owned.view(), 0, usize::MAX);
                    if batch.is_empty() {
                        thread::yield_now();
                    }
                    got.extend(batch);
                }
                (core, got)
            })
        };

        let (written, refused) = retrying.join().unwrap();
        let (mut core, concurrent) = consumer.join().unwrap();
        got.extend(concurrent);
        got.extend(final_drain(&mut core, ring, 0));

        let positions: Vec<u64> = got.iter().map(|e| e.position).collect();
        assert_eq!(positions, (0..2 + written.len() as u64).collect::<Vec<_>>());
        got.iter().for_each(assert_intact);
        assert_eq!(
            ids(&got[2..]),
            written,
            "exactly the written events, in order"
        );

        let c = core.counters(ring);
        assert_settled(&c);
        let received = 2 + written.len() as u64;
        assert_eq!(
            (
                c.claimed,
                c.received,
                c.dropped,
                c.dropped_full,
                c.abandoned,
                c.torn
            ),
            (received + refused, received, refused, refused, 0, 0)
        );
        match (written.len(), refused) {
            (3, 0) => "first try",
            (3, 1) => "second try",
            (2, 2) => "refused",
            other => panic!("unexpected (written, refused) = {other:?}"),
        }
        .to_string()
    });
}
