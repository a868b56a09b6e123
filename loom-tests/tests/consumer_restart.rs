//! Scenario: the consumer dies between read and commit and a new consumer
//! attaches and carries on, while a writer keeps writing. Delivery across
//! the crash is at-least-once: what the dead consumer read but did not
//! commit is delivered again; nothing is lost and nothing committed is
//! delivered twice.
//!
//! Setup: capacity 2, drop-newest, stall timeout never reached. Before the
//! threads start, (0,0) is committed at position 0 and consumer A attaches.
//! Then, concurrently: the writer tries (1,0) and (1,1) once each; the
//! consumer thread has A read (no commit) and drops it, as a killed reader
//! would, then attaches consumer B to the same ring and makes one pass.
//! After joining, B drains the rest.
//!
//! Accepted outcomes (`A read k`: events A read and never committed;
//! `refused r`: the writer's emits refused for lack of room):
//! - `A read 1, refused 0`, `A read 1, refused 1`, `A read 2, refused 0`,
//!   `A read 2, refused 1`: A read (0,0), plus (1,0) if it was committed
//!   in time; (1,1) needs slot 0, which only B's commit releases, so it is
//!   refused if the writer tried before that.
//!
//! In all of them: B attaches without error; B delivers (0,0) and then
//! every written event exactly once, in position order; the events A read
//! are a prefix of what B delivers (nothing A saw is lost); counters count
//! only B's deliveries: received = 1 + written, dropped = refusals,
//! abandoned 0, torn 0, in_flight 0 (identity holds).
//!
//! The writer yields between its two emits. Without that free scheduling
//! point loom's exploration (bounded or not) never runs the whole restart
//! between them, so `A read 2, refused 0` would go unobserved, although a
//! plain sequential run reaches it.
//!
//! Forbidden: an event read by A and lost, an event delivered twice by B,
//! A's uncommitted read counted as received, B refusing to attach.
#![cfg(profilis_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::ring::ConsumerCore;
use profilis::testing::OwnedRing;

const ACCEPTED: [&str; 4] = [
    "A read 1, refused 0",
    "A read 1, refused 1",
    "A read 2, refused 0",
    "A read 2, refused 1",
];

#[test]
fn new_consumer_resumes_after_a_crash_between_read_and_commit() {
    model(&ACCEPTED, || {
        let owned = Arc::new(OwnedRing::events_only(2, false));
        let ring = owned.view();
        assert_eq!(emit(ring, &event(0, 0)), Emitted::Written(0));
        let first = ConsumerCore::attach(ring, NEVER).unwrap();

        let writer = {
            let owned = owned.clone();
            thread::spawn(move || {
                let first = emit(owned.view(), &event(1, 0));
                thread::yield_now();
                vec![first, emit(owned.view(), &event(1, 1))]
            })
        };
        let consumer = {
            let owned = owned.clone();
            thread::spawn(move || {
                let ring = owned.view();
                let mut first = first;
                let read_by_a = first.read(ring, 0, usize::MAX).to_vec();
                drop(first); // killed before commit
                let mut second = ConsumerCore::attach(ring, NEVER).expect("B attaches");
                let got = pass(&mut second, ring, 0, usize::MAX);
                (second, read_by_a, got)
            })
        };

        let outcomes = writer.join().unwrap();
        let (mut second, read_by_a, mut got) = consumer.join().unwrap();
        got.extend(final_drain(&mut second, ring, 0));

        let mut expected = vec![(0, (0, 0))];
        let mut refused = 0;
        for (n, o) in outcomes.iter().enumerate() {
            match o {
                Emitted::Written(pos) => expected.push((*pos, (1, n as u64))),
                Emitted::Dropped => refused += 1,
                Emitted::Late(pos) => panic!("late at {pos} without a timeout"),
            }
        }
        let delivered: Vec<(u64, (u32, u64))> =
            got.iter().map(|e| (e.position, (e.tid, e.value))).collect();
        assert_eq!(delivered, expected, "B: every written event once, in order");
        got.iter().for_each(assert_intact);
        assert!(
            got.starts_with(&read_by_a),
            "A read {read_by_a:?}, B delivered {got:?}"
        );

        let c = second.counters(ring);
        assert_settled(&c);
        assert_eq!(
            (c.claimed, c.received, c.dropped, c.abandoned, c.torn),
            (3, expected.len() as u64, refused, 0, 0)
        );
        format!("A read {}, refused {refused}", read_by_a.len())
    });
}
