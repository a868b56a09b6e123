//! Scenario: a consumer dies mid-commit (or before committing) and a new
//! consumer attaches on another thread while a writer keeps writing.
//!
//! Setup: one lane of 2 slots, drop-newest. The writer locks the lane and
//! writes (1,0), (1,1), (1,2); the third fits only once a slot is handed
//! back, and if it is refused the writer yields and tries once more (each
//! refusal counted). Then it takes a counters snapshot. Concurrently,
//! consumer 1 reads everything there is and dies: in `dies_after_publish`
//! after `publish_counts` (its counts and read positions are published,
//! but it never stored the lane's `head`), in `dies_before_commit` right
//! after the read. Consumer 2 attaches once consumer 1 is gone (the main
//! thread joins consumer 1, as the file lock orders a dead consumer's
//! stores before the next one takes the lock), makes one pass while the
//! writer may still be writing, and, after the writer is joined, drains.
//!
//! Accepted outcomes (`C1 committed N`: events consumer 1 read and
//! published; `C2 ...`: what consumer 2 delivered, in order; `(1,2)
//! dropped` when both tries were refused):
//! - `dies_after_publish`: `C1 committed 0; C2 (1,0) (1,1) (1,2)`,
//!   `C1 committed 0; C2 (1,0) (1,1), (1,2) dropped`,
//!   `C1 committed 1; C2 (1,1) (1,2)`, `C1 committed 1; C2 (1,1), (1,2)
//!   dropped`, `C1 committed 2; C2 (1,2)`, `C1 committed 2; C2, (1,2)
//!   dropped`;
//! - `dies_before_commit`: consumer 1 commits nothing, so consumer 2
//!   delivers everything accepted: `C1 committed 0; C2 (1,0) (1,1) (1,2)`
//!   and `C1 committed 0; C2 (1,0) (1,1), (1,2) dropped`.
//!
//! In all: every accepted event is delivered exactly once counting consumer
//! 1's published batch and consumer 2's deliveries (nothing lost, nothing
//! delivered again after a commit); the writer's snapshot holds the
//! identity and counts no more unread events than the lane has slots; the
//! consumers' reads of a slot happen before the writer reuses it
//! (`SlotClaims`); counters after the drain: claimed = write attempts,
//! dropped = refusals, in_flight 0.
//!
//! (The retry is what lets loom reach `C1 committed 2; C2 (1,2)`: loom's
//! partial-order reduction only looks at the last access to an atomic, and
//! `attach` loads `head` before it stores it, which hides the race between
//! that store and the writer's earlier load.)
//!
//! Orderings exercised: `attach`'s Release store of the `head` consumer 1
//! published but did not hand back, and the writer's Acquire load of it in
//! `begin`; the state publication (`state_seq`) read by `attach`.
#![cfg(profilis_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::ring::ConsumerCore;
use profilis::testing::OwnedRing;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dies {
    AfterPublish,
    BeforeCommit,
}

fn scenario(dies: Dies, accepted: &'static [&'static str]) {
    model(accepted, move || {
        let owned = Arc::new(OwnedRing::events_only(1, 2, false));
        let claims = Arc::new(SlotClaims::new(owned.view()));
        let mut first = ConsumerCore::attach(owned.view()).unwrap();

        let writer = {
            let (owned, claims) = (owned.clone(), claims.clone());
            thread::spawn(move || {
                let ring = owned.view();
                let mut cursor = lock_shared(ring, 1);
                let mut write = |n| emit_tracked(ring, &claims, &mut cursor, &event(1, n)).is_ok();
                let mut accepted: Vec<bool> = (0..3).map(&mut write).collect();
                if !accepted[2] {
                    // Once more, after letting the consumers run.
                    thread::yield_now();
                    accepted.push(write(2));
                }
                assert_writer_snapshot(ring, 0);
                accepted
            })
        };
        let consumer1 = {
            let (owned, claims) = (owned.clone(), claims.clone());
            thread::spawn(move || {
                let ring = owned.view();
                let got = first.read(ring, usize::MAX).to_vec();
                claims.read(&got);
                match dies {
                    Dies::AfterPublish => {
                        first.publish_counts(ring);
                        got
                    }
                    Dies::BeforeCommit => Vec::new(),
                }
            })
        };

        let committed = consumer1.join().unwrap();
        let ring = owned.view();
        let mut second = ConsumerCore::attach(ring).unwrap();
        let mut got = pass_tracked(&mut second, ring, &claims, usize::MAX);
        let accepted = writer.join().unwrap();
        got.extend(final_drain(&mut second, ring));

        let mut all = committed.clone();
        all.extend(got.iter().copied());
        assert_once_in_order(&all);
        let third = accepted[2..].contains(&true);
        let mut written = vec![(1, 0), (1, 1)];
        if third {
            written.push((1, 2));
        }
        assert_eq!(accepted[..2], [true, true], "the lane has room for two");
        assert_eq!(ids(&all), written, "exactly the accepted events, once");
        let c = second.counters(ring);
        assert_settled(&c);
        let refused = accepted.iter().filter(|a| !**a).count() as u64;
        assert_eq!(
            (c.claimed, c.received, c.dropped),
            (accepted.len() as u64, written.len() as u64, refused),
            "{c:?}"
        );
        let mut out = format!("C1 committed {}; C2", committed.len());
        if !got.is_empty() {
            out += &format!(" {}", label(&got));
        }
        if !third {
            out += ", (1,2) dropped";
        }
        out
    });
}

#[test]
fn dies_after_publish() {
    scenario(
        Dies::AfterPublish,
        &[
            "C1 committed 0; C2 (1,0) (1,1) (1,2)",
            "C1 committed 0; C2 (1,0) (1,1), (1,2) dropped",
            "C1 committed 1; C2 (1,1) (1,2)",
            "C1 committed 1; C2 (1,1), (1,2) dropped",
            "C1 committed 2; C2 (1,2)",
            "C1 committed 2; C2, (1,2) dropped",
        ],
    );
}

#[test]
fn dies_before_commit() {
    scenario(
        Dies::BeforeCommit,
        &[
            "C1 committed 0; C2 (1,0) (1,1) (1,2)",
            "C1 committed 0; C2 (1,0) (1,1), (1,2) dropped",
        ],
    );
}
