//! Scenario: the consumer reads a run (a message and its stack trace in
//! two slots) while a newer message overwrites the run's second slot.
//!
//! Setup: eight message slots (runs of up to two). Message 0, "boom" with
//! the stack "frame", complete in slots 0 and 1 before the threads start.
//! `messages_next` is then moved to 9, so a writer's next message (9, "new")
//! takes slot 1, the run's stack slot; meanwhile the consumer reads message
//! 0 with its stack, then again after the writer is done.
//!
//! Accepted outcomes (what the first read returned):
//! - `run intact`: read before the writer claimed slot 1;
//! - `run lost`: slot 1 claimed (or its read torn by the writer's stores,
//!   and rejected) first.
//!
//! The second read, after the writer, always finds the run lost.
//!
//! Forbidden: the message returned with a stack other than its own (the
//! newer message's words, or a mix), or without its stack.
//!
//! Orderings exercised: the per-slot seqlock of `store_slot` and
//! `read_msg_slot` (Release fence after the odd mark / Acquire fence before
//! re-loading `seq`), applied to each slot of the run.
#![cfg(profilis_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::testing::OwnedRing;
use profilis::MsgRef;
use std::sync::atomic::Ordering::Relaxed;

const ACCEPTED: [&str; 2] = ["run intact", "run lost"];

#[test]
fn a_run_read_races_an_overwrite_of_its_stack_slot() {
    model(&ACCEPTED, || {
        let owned = Arc::new(OwnedRing::new(1, 2, false, 1, 0, 8));
        let ring = owned.view();
        assert_eq!(
            ring.record_message_with_stack("boom", Some("frame")),
            MsgRef(1)
        );
        ring.header.messages_next.store(9, Relaxed);
        let writer = {
            let owned = owned.clone();
            thread::spawn(move || owned.view().record_message("new"))
        };
        let first = ring.read_message_with_stack(MsgRef(1));
        assert_eq!(writer.join().unwrap(), MsgRef(10));
        assert_eq!(ring.read_message_with_stack(MsgRef(1)), None);
        match first {
            None => "run lost".to_string(),
            Some(m) if m.text == "boom" && m.stack.as_deref() == Some("frame") => {
                "run intact".to_string()
            }
            Some(m) => panic!("message 0 read as {m:?}"),
        }
    });
}
