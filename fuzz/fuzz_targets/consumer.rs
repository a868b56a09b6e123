//! The consumer path over a hostile ring: header positions, consumer state,
//! slot sequence words and records, string table and message slots all
//! come from the fuzzer (records either arbitrary words or well-formed
//! encodings of arbitrary events, so decoding and name resolution are
//! reached). The consumer attaches, then reads and commits batches with
//! the clock moving past the stall timeout, resolving every name and
//! message as the reader does.
//!
//! Properties:
//! - attach either refuses the state (`InconsistentState`) or succeeds;
//!   nothing panics, hangs or reads out of bounds;
//! - events of a batch have strictly increasing positions inside the range
//!   the read position moved over (a stalled claim skipped at the start of a
//!   batch moves it at once, so a batch may cover `limit` positions after
//!   the skipped one);
//! - every position the head passes is counted exactly once: the growth of
//!   `received + abandoned + torn + overwritten` equals the growth of the
//!   head, and `received` grows by the events delivered;
//! - the durable state survives a consumer crash: attaching again after a
//!   commit gives the same state.
//!
//! Positions and the stored counters stay below 2^62 (at a billion events
//! a second a ring reaches that after 146 years); the sequence words,
//! records and tables are arbitrary.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::Bytes;
use libfuzzer_sys::fuzz_target;
use profilis::layout::{seq_committed, seq_free, RECORD_WORDS, STATE_HEAD, STATE_PENDING_TO};
use profilis::ring::{ConsumerCore, ConsumerState};
use profilis::testing::OwnedRing;
use profilis::{Event, Kind, Method, MsgRef, StrId};
use std::sync::atomic::Ordering::Relaxed;

const STALL_NS: u64 = 1_000;
const POSITION_LIMIT: u64 = 1 << 62;

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let capacity = 2usize << (b.u8() % 4);
    let entries = 1usize << (b.u8() % 5);
    let arena_words = (b.u8() % 33) as usize;
    let message_slots = 1usize << (b.u8() % 2);
    let overwrite = b.u8() & 1 == 1;
    let owned = OwnedRing::new(capacity, overwrite, entries, arena_words, message_slots);
    let ring = owned.view();
    let h = ring.header;
    let cap = capacity as u64;

    let tail = b.u64() % POSITION_LIMIT;
    h.tail.store(tail, Relaxed);
    h.dropped_full.store(b.u64() >> 2, Relaxed);
    let state_mode = b.u8();
    h.state_seq.store(u64::from(b.u32()), Relaxed);
    for copy in &h.state {
        for word in copy {
            word.store(b.u64() >> 2, Relaxed);
        }
    }
    if state_mode & 1 == 0 {
        // A consistent state: head <= pending_to <= tail, within a lap.
        let head = tail.saturating_sub(u64::from(b.u8()) % (cap + 1));
        let pending = head + u64::from(b.u8()) % (tail - head + 1);
        for copy in &h.state {
            copy[STATE_HEAD].store(head, Relaxed);
            copy[STATE_PENDING_TO].store(pending, Relaxed);
        }
    }
    let (_, start) = ConsumerState::load(h);

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
    }
    for (i, slot) in ring.slots.iter().enumerate() {
        // The position this slot holds in the lap of the head.
        let lap = start.head.min(POSITION_LIMIT) & !(cap - 1);
        let mut pos = lap + i as u64;
        if pos < start.head {
            pos += cap;
        }
        let mode = b.u8();
        let seq = match mode % 6 {
            0 => seq_committed(pos),
            1 => seq_free(pos),
            2 => seq_free(pos + cap),
            3 => seq_committed(pos.saturating_sub(cap)),
            4 => b.u64(),
            _ => seq_committed(pos),
        };
        slot.seq.store(seq, Relaxed);
        let words = if mode & 0x80 == 0 {
            let event = Event {
                position: pos,
                kind: Kind::from_u8(b.u8() % 4 + 1).unwrap(),
                flags: b.u8(),
                method: Method::from_u8(b.u8()),
                status: b.u16(),
                name: StrId(u32::from(b.u8()) % (entries as u32 + 3)),
                exception_type: StrId(if b.u8() & 1 == 0 { 0 } else { b.u32() }),
                message: MsgRef(u32::from(b.u8() % 4)),
                pid: b.u32(),
                tid: b.u32(),
                ts_mono_ns: b.u64(),
                dur_ns: b.u64(),
                trace_id: b.u128(),
                span_id: b.u64(),
                parent_span_id: b.u64(),
                value: b.u64(),
                value2: b.u64(),
                writer: b.u16(),
            };
            let mut words = event.encode(pos);
            if mode & 0x40 != 0 {
                // One damaged word: must be caught by the checksum.
                words[b.u8() as usize % RECORD_WORDS] ^= 1 << (b.u8() % 64);
            }
            words
        } else {
            std::array::from_fn(|_| b.u64())
        };
        for (dst, w) in slot.words.iter().zip(words) {
            dst.store(w, Relaxed);
        }
    }

    let Ok(mut core) = ConsumerCore::attach(ring, STALL_NS) else {
        return;
    };
    let mut now = 1u64;
    for _ in 0..6 {
        let before = core.state();
        let limit = b.u8() as usize % (2 * capacity) + 1;
        let events = core.read(ring, now, limit).to_vec();
        let mut last = None;
        for e in &events {
            assert!(
                last.is_none_or(|p| e.position > p),
                "positions out of order"
            );
            last = Some(e.position);
            for id in [e.name, e.exception_type] {
                let _ = ring.resolve(id);
            }
            let _ = ring.read_message(e.message);
        }
        core.commit(ring);
        let after = core.state();
        for e in &events {
            assert!(
                e.position >= before.head && e.position < after.head,
                "event at {} outside the batch [{}, {})",
                e.position,
                before.head,
                after.head
            );
        }
        assert!(after.head >= before.head);
        let counted = |s: ConsumerState| {
            s.received
                .wrapping_add(s.abandoned)
                .wrapping_add(s.torn)
                .wrapping_add(s.overwritten)
        };
        assert_eq!(
            counted(after).wrapping_sub(counted(before)),
            after.head - before.head,
            "positions counted once: {before:?} -> {after:?}"
        );
        assert_eq!(after.received - before.received, events.len() as u64);
        let again = ConsumerCore::attach(ring, STALL_NS).expect("a committed state attaches");
        assert_eq!(again.state(), after, "durable state");
        now += STALL_NS * (u64::from(b.u8() % 3));
    }
});
