//! Scenario: lane hand-over between processes. Thread A writes into an own
//! lane and gives it back; thread B, of another process, takes the same
//! lane and writes; the consumer reads, commits and looks for dead writers
//! meanwhile.
//!
//! Setup: 2 lanes of 2 slots (one own lane, one shared), drop-newest.
//! A (pid 1, start time 10) takes the own lane, writes (1,0) and (1,1),
//! each tried once, and releases it. B (pid 2, start time 20) takes the own
//! lane (yielding while it is held), writes (2,0) once, and releases it.
//! The consumer makes a read/commit pass, calls `reclaim_dead` (both
//! processes are alive: the liveness check accepts pid 1 with start time
//! 10 and pid 2 with start time 20, or either with 0, "not stored yet"),
//! and makes a second pass. After joining, a final drain.
//!
//! Accepted outcomes (delivery order; a write that found the lane full is
//! refused and counted):
//! - `(1,0) (1,1) (2,0)`: A held the lane first; B found a slot handed back
//!   by the consumer;
//! - `(1,0) (1,1), (2,0) dropped`: A first; the lane was still full for B;
//! - `(2,0) (1,0) (1,1)`: B first, then A (A's second write found the slot
//!   of (2,0) handed back);
//! - `(2,0) (1,0), (1,1) dropped`: B first; the lane was full for A's
//!   second write.
//!
//! In all: `reclaim_dead` frees no lane; the accepted events are delivered
//! exactly once, whole, in lane order; the consumer's reads of a slot
//! happen before its reuse (`SlotClaims`); counters after the drain add up
//! with in_flight 0.
//!
//! Forbidden: the second holder starting at a stale tail (two events at one
//! position), reusing a slot the consumer has not finished reading, the
//! consumer pairing B's token with A's start time and taking the lane of a
//! live writer.
//!
//! Orderings exercised: `release_lane`'s Release store of `owner` and the
//! Acquire CAS in `try_take` (the previous holder's `tail` and cleared
//! `owner_start`; `reclaim_dead`'s Acquire load of the new token
//! synchronizes with the same Release store of 0, whose release sequence
//! the CAS continues); the Acquire load of `head` in `try_take`
//! and the consumer's Release store of it in `hand_back`.
#![cfg(profilis_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::ring::{ConsumerCore, Owner};
use profilis::testing::OwnedRing;

const ACCEPTED: [&str; 4] = [
    "(1,0) (1,1) (2,0)",
    "(1,0) (1,1), (2,0) dropped",
    "(2,0) (1,0) (1,1)",
    "(2,0) (1,0), (1,1) dropped",
];

fn process(pid: u32) -> Owner {
    Owner {
        pid,
        tid: pid,
        start_time: 10 * pid as u64,
        writer: 0,
    }
}

fn alive(pid: u32, start_time: u64) -> bool {
    (pid == 1 || pid == 2) && (start_time == 0 || start_time == 10 * pid as u64)
}

#[test]
fn a_lane_passes_from_one_process_to_another() {
    model(&ACCEPTED, || {
        let owned = Arc::new(OwnedRing::events_only(2, 2, false));
        let claims = Arc::new(SlotClaims::new(owned.view()));
        let core = ConsumerCore::attach(owned.view()).unwrap();

        let writers: Vec<_> = [(1u32, 2u64), (2, 1)]
            .into_iter()
            .map(|(p, count)| {
                let (owned, claims) = (owned.clone(), claims.clone());
                thread::spawn(move || {
                    let ring = owned.view();
                    let me = process(p);
                    let mut cursor = loop {
                        match ring.acquire_lane(&me, 0) {
                            Some(cursor) => break cursor,
                            None => thread::yield_now(),
                        }
                    };
                    assert_eq!(cursor.lane, 0, "the one own lane");
                    let accepted: Vec<bool> = (0..count)
                        .map(|n| emit_tracked(ring, &claims, &mut cursor, &event(p, n)).is_ok())
                        .collect();
                    ring.release_lane(&cursor, &me);
                    accepted
                })
            })
            .collect();
        let consumer = {
            let (owned, claims) = (owned.clone(), claims.clone());
            thread::spawn(move || {
                let mut core = core;
                let ring = owned.view();
                let mut got = pass_tracked(&mut core, ring, &claims, usize::MAX);
                assert_eq!(
                    core.reclaim_dead(ring, &mut alive),
                    0,
                    "a live writer's lane taken"
                );
                got.extend(pass_tracked(&mut core, ring, &claims, usize::MAX));
                (core, got)
            })
        };

        let accepted: Vec<Vec<bool>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        let (mut core, mut got) = consumer.join().unwrap();
        let ring = owned.view();
        got.extend(final_drain(&mut core, ring));

        assert_once_in_order(&got);
        let mut written: Vec<(u32, u64)> = Vec::new();
        for (p, a) in [1u32, 2].into_iter().zip(&accepted) {
            written.extend(
                (0..a.len() as u64)
                    .filter(|&n| a[n as usize])
                    .map(|n| (p, n)),
            );
        }
        let mut delivered = ids(&got);
        delivered.sort();
        assert_eq!(delivered, written, "exactly the accepted events");
        let c = core.counters(ring);
        assert_settled(&c);
        assert_eq!((c.claimed, c.received + c.dropped), (3, 3));
        let dropped: Vec<String> = [1u32, 2]
            .into_iter()
            .zip(&accepted)
            .flat_map(|(p, a)| {
                (0..a.len())
                    .filter(|&n| !a[n])
                    .map(move |n| format!("({p},{n}) dropped"))
            })
            .collect();
        match dropped.len() {
            0 => label(&got),
            _ => format!("{}, {}", label(&got), dropped.join(", ")),
        }
    });
}
