//! Scenario: the consumer reads messages while a newer message overwrites
//! their slot.
//!
//! Setup: one message slot holding the complete message 0, "connection
//! reset" (recorded before the threads start). A writer records message 1,
//! "etbetugaon reset", into the same slot; meanwhile the consumer reads
//! message 0 and then message 1. The two texts share their second word and
//! have the same 32-bit check hash, so the text check cannot tell a slot
//! with one's `meta` and the other's words from a complete message: only
//! the sequence word can. (Texts picked by a search over the check hash;
//! `assert_same_check` checks that they still collide.)
//!
//! Accepted outcomes (what the two reads returned):
//! - `0 intact, 1 not yet`: message 0 read before the writer claimed the
//!   slot, message 1 not complete when read;
//! - `0 intact, 1 intact`;
//! - `0 overwritten, 1 not yet`: message 0's slot claimed (or its read torn
//!   by the writer's stores, and rejected) before message 1 completed;
//! - `0 overwritten, 1 intact`.
//!
//! In all: a read returns exactly its message's text or nothing, never the
//! other message's text.
//!
//! Forbidden: message 0 read with message 1's words (the seqlock missed the
//! overwrite), message 1 read as complete with message 0's words still in
//! the slot (its completion seen before its text).
//!
//! Orderings exercised: `record_message`'s Release fence after marking the
//! slot odd and `read_message`'s Acquire fence before re-loading `seq`; the
//! Release of the completion CAS and the Acquire load of `seq` in
//! `read_message`.
#![cfg(profilis_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::testing::OwnedRing;
use profilis::MsgRef;

const ACCEPTED: [&str; 4] = [
    "0 intact, 1 not yet",
    "0 intact, 1 intact",
    "0 overwritten, 1 not yet",
    "0 overwritten, 1 intact",
];

#[test]
fn reads_race_an_overwrite_of_their_slot() {
    assert_same_check(FIRST_TEXT, SECOND_TEXT);
    model(&ACCEPTED, || {
        let owned = Arc::new(OwnedRing::new(1, 2, false, 1, 0, 1));
        assert_eq!(owned.view().record_message(FIRST_TEXT), MsgRef(1));
        let writer = {
            let owned = owned.clone();
            thread::spawn(move || owned.view().record_message(SECOND_TEXT))
        };
        let ring = owned.view();
        let first = ring.read_message(MsgRef(1));
        let second = ring.read_message(MsgRef(2));
        assert_eq!(writer.join().unwrap(), MsgRef(2));
        let zero = match first.as_deref() {
            Some(FIRST_TEXT) => "0 intact",
            None => "0 overwritten",
            Some(other) => panic!("message 0 read as {other:?}"),
        };
        let one = match second.as_deref() {
            Some(SECOND_TEXT) => "1 intact",
            None => "1 not yet",
            Some(other) => panic!("message 1 read as {other:?}"),
        };
        format!("{zero}, {one}")
    });
}
