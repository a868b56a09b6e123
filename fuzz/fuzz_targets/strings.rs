//! String table and message slots filled with arbitrary bytes (as a hostile
//! or damaged ring file would hold them), then read by the consumer and
//! written by a writer.
//!
//! Properties:
//! - `resolve` of any id never panics or reads outside the table/arena, and
//!   any text it returns is at most `STR_MAX_BYTES` long;
//! - `read_message` of any reference never panics, and any text is at most
//!   `MSG_MAX_BYTES` long;
//! - `intern(t)` returns the overflow id or an id inside the table, and if
//!   that id resolves, it resolves to `t` (cut to `STR_MAX_BYTES`): a
//!   damaged entry never makes a writer's name read back as other text;
//! - a message that `record_message(t)` stored reads back as `t` (cut to
//!   `MSG_MAX_BYTES`) or not at all (a counted loss), never as other text;
//!   below message number 2^62 (any real ring) it always reads back.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::Bytes;
use libfuzzer_sys::fuzz_target;
use profilis::layout::{MSG_MAX_BYTES, STR_MAX_BYTES};
use profilis::strings::truncate_str;
use profilis::testing::OwnedRing;
use profilis::{MsgRef, StrId};
use std::sync::atomic::Ordering::Relaxed;

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let entries = 1usize << (b.u8() % 7);
    let arena_words = (b.u8() % 65) as usize;
    let message_slots = 1usize << (b.u8() % 3);
    let owned = OwnedRing::new(1, 2, false, entries, arena_words, message_slots);
    let ring = owned.view();
    let h = ring.header;
    h.arena_used.store(b.u64(), Relaxed);
    h.messages_next.store(b.u64(), Relaxed);
    for e in ring.strings {
        e.key.store(b.u64(), Relaxed);
        e.loc.store(b.u64(), Relaxed);
    }
    for w in ring.arena {
        w.store(b.u64(), Relaxed);
    }
    for m in ring.messages {
        m.seq.store(b.u64(), Relaxed);
        m.meta.store(b.u64(), Relaxed);
        let words = b.u8() as usize % (m.text.len() + 1);
        for w in m.text.iter().take(words) {
            w.store(b.u64(), Relaxed);
        }
    }

    // The consumer's side: every id of the table, just past it, the
    // sentinels and an arbitrary one.
    let ids = (0..entries as u32 + 2).chain([StrId::OVERFLOW.0, b.u32()]);
    for id in ids {
        if let Ok(text) = ring.resolve(StrId(id)) {
            assert!(text.len() <= STR_MAX_BYTES, "id {id}: {} bytes", text.len());
        }
    }
    let refs = (0..2 * message_slots as u32 + 1).chain([u32::MAX, b.u32()]);
    for r in refs {
        if let Some(text) = ring.read_message(MsgRef(r)) {
            assert!(text.len() <= MSG_MAX_BYTES);
        }
    }

    // A writer's side on the same tables.
    for chunk in b.rest().split(|&c| c == 0xff).take(8) {
        let text = String::from_utf8_lossy(chunk);
        let id = ring.intern(&text);
        assert!(
            id == StrId::OVERFLOW || (1..=entries as u32).contains(&id.0),
            "intern gave {id:?} for a table of {entries}"
        );
        if let Ok(back) = ring.resolve(id) {
            assert_eq!(back, truncate_str(&text, STR_MAX_BYTES));
        }
        let number = h.messages_next.load(Relaxed);
        let msg = ring.record_message(&text);
        let back = ring.read_message(msg);
        if let Some(back) = &back {
            assert_eq!(back, truncate_str(&text, MSG_MAX_BYTES));
        }
        if msg.0 != 0 && number < 1 << 62 {
            assert!(back.is_some(), "message {number} lost");
        }
    }
});
