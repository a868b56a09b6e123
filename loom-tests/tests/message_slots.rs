//! Scenario: a message slot taken over by a newer message whose writer has
//! no synchronisation with the previous one (another thread or process
//! that merely happens to run later).
//!
//! Setup: one message slot. Writer 1 records "connection reset" (message
//! 0) and then raises a Relaxed flag; writer 2 waits (yielding) until it
//! sees the flag, so it always comes second, and records
//! "etbetugaon reset" (message 1) into the same slot. Nothing but the
//! slot's sequence word orders writer 2's text stores after writer 1's.
//! The two texts share their second word and have the same 32-bit check
//! hash, so the text check cannot tell them apart: a slot whose words are
//! writer 1's under writer 2's `meta` would pass it. After joining, both
//! references are read back.
//!
//! Accepted outcome:
//! - `2 intact, 1 overwritten`: writer 2's reference reads back exactly
//!   "etbetugaon reset"; writer 1's reference (MsgRef(1)) no longer
//!   resolves; messages_lost 0.
//!
//! Forbidden: writer 1's earlier text stores landing on top of writer 2's,
//! which would read back as writer 1's text under writer 2's reference.
//!
//! Orderings exercised: the Acquire of the claim CAS in `record_message`,
//! paired with the Release of the previous message's completion CAS (the
//! previous text's stores happen before the new ones).
#![cfg(profilis_loom)]

use loom::sync::atomic::AtomicBool;
use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::sync::Ordering::Relaxed;
use profilis::testing::OwnedRing;
use profilis::MsgRef;

const ACCEPTED: [&str; 1] = ["2 intact, 1 overwritten"];

#[test]
fn a_later_unsynchronised_message_takes_over_the_slot_cleanly() {
    assert_same_check(FIRST_TEXT, SECOND_TEXT);
    model(&ACCEPTED, || {
        let owned = Arc::new(OwnedRing::new(1, 2, false, 1, 0, 1));
        let done = Arc::new(AtomicBool::new(false));
        let first = {
            let (owned, done) = (owned.clone(), done.clone());
            thread::spawn(move || {
                let r = owned.view().record_message(FIRST_TEXT);
                done.store(true, Relaxed);
                r
            })
        };
        let second = {
            let (owned, done) = (owned.clone(), done.clone());
            thread::spawn(move || {
                while !done.load(Relaxed) {
                    thread::yield_now();
                }
                owned.view().record_message(SECOND_TEXT)
            })
        };
        let refs = [first.join().unwrap(), second.join().unwrap()];
        let ring = owned.view();
        assert_eq!(refs, [MsgRef(1), MsgRef(2)]);
        assert_eq!(ring.read_message(refs[0]), None);
        assert_eq!(ring.read_message(refs[1]).as_deref(), Some(SECOND_TEXT));
        assert_eq!(ring.header.messages_lost.load(Relaxed), 0);
        "2 intact, 1 overwritten".to_string()
    });
}
