//! The ring file format is pinned by a fingerprint: every offset, size,
//! limit, sequence encoding, record word, check function and hash that
//! decides the bytes on file is folded into one number, and each format
//! version has exactly one such number below. Changing any of them without
//! a new `layout::VERSION` fails here, so a ring shared by two builds can
//! never be read with two meanings under one version number (the attach of
//! a ring of another version is refused with both versions named).
//!
//! When the format changes on purpose: bump `layout::VERSION`, add its line
//! to `KNOWN` with the fingerprint this test prints, and say what changed in
//! FORMAT.md.

use profilis::hash::hash_bytes;
use profilis::layout::*;
use profilis::record::checksum;
use profilis::testing::OwnedRing;
use profilis::{Event, Kind, Method, MsgRef, StrId};
use std::sync::atomic::Ordering::Relaxed;

/// (format version, fingerprint) of every version this library has written.
/// Version 1 predates the fingerprint.
const KNOWN: &[(u64, u64)] = &[(2, 0xc477_27ea_f098_8ad3), (3, 0x7770_73dd_9dd3_5810)];

/// FNV-1a over 64-bit values.
struct Fold(u64);

impl Fold {
    fn add(&mut self, v: u64) {
        for b in v.to_le_bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn offset<T, F>(&mut self, base: &T, field: &F) {
        self.add((field as *const F as usize - base as *const T as usize) as u64);
    }
}

fn fingerprint() -> u64 {
    let mut f = Fold(0xcbf2_9ce4_8422_2325);
    for v in [
        MAGIC,
        HEADER_BYTES,
        SLOT_BYTES,
        RECORD_WORDS as u64,
        WRITER_ENTRY_BYTES,
        LANE_BYTES,
        STR_ENTRY_BYTES,
        MSG_SLOT_BYTES,
        MSG_TEXT_WORDS as u64,
        STR_MAX_BYTES as u64,
        MIN_CAPACITY,
        MAX_CAPACITY,
        MIN_LANE_SLOTS,
        MAX_LANES,
        MIN_STRING_ENTRIES,
        MAX_STRING_ENTRIES,
        MIN_ARENA_BYTES,
        MAX_ARENA_BYTES,
        MIN_MESSAGE_SLOTS,
        MAX_MESSAGE_SLOTS,
        MIN_WRITER_ENTRIES,
        MAX_WRITER_ENTRIES,
        MAX_LANE_POSITION,
        POLICY_DROP_NEWEST,
        POLICY_OVERWRITE_OLDEST,
        LANE_RECLAIMING,
        STR_LOC_READY,
        STR_LOC_OVERFLOW,
        u64::from(NO_WRITER),
        HEARTBEAT_EVERY,
        u64::from(WRITER_SHIFT),
        STATE_FIXED_WORDS as u64,
    ] {
        f.add(v);
    }
    for w in [
        W_STAMP,
        W_KIND,
        W_NAMES,
        W_PID_TID,
        W_TIMESTAMP,
        W_DURATION,
        W_TRACE_LO,
        W_TRACE_HI,
        W_SPAN,
        W_PARENT_SPAN,
        W_VALUE,
        W_VALUE2,
        W_MSG_WRITER,
        W_CHECKSUM,
        STATE_RECEIVED,
        STATE_ABANDONED,
        STATE_TORN,
        STATE_OVERWRITTEN,
        STATE_MESSAGES_UNREAD,
        STATE_NAMES_UNRESOLVED,
        STATE_REPAIRS,
        STATE_RESERVED,
    ] {
        f.add(w as u64);
    }
    for p in [0u64, 1, 5, 1 << 40] {
        f.add(seq_writing(p));
        f.add(seq_committed(p));
    }
    for lanes in [1u64, 2, 8, 16, 64, 1024] {
        f.add(shared_lanes(lanes));
        f.add(state_words(lanes));
    }
    for p in [
        Params {
            capacity: 2,
            lanes: 1,
            string_entries: 16,
            arena_bytes: 4096,
            message_slots: 4,
            writer_entries: 1,
        },
        Params {
            capacity: 1 << 18,
            lanes: 16,
            string_entries: 4096,
            arena_bytes: 256 * 1024,
            message_slots: 256,
            writer_entries: 64,
        },
    ] {
        for v in [
            p.writers_offset(),
            p.lanes_offset(),
            p.state_offset(),
            p.strings_offset(),
            p.arena_offset(),
            p.messages_offset(),
            p.slots_offset(),
            p.file_bytes(),
            p.lane_slots(),
            p.own_lanes(),
        ] {
            f.add(v);
        }
    }

    let h = Header::zeroed();
    for field in [
        &h.magic,
        &h.version,
        &h.slot_bytes,
        &h.capacity,
        &h.policy,
        &h.string_entries,
        &h.arena_bytes,
        &h.message_slots,
        &h.writer_entries,
        &h.file_bytes,
        &h.ring_id,
        &h.created_wall_ns,
        &h.created_mono_ns,
        &h.creator_pid,
        &h.lanes,
        &h.dropped_no_lane,
        &h.strings_overflow,
        &h.arena_used,
        &h.messages_next,
        &h.messages_lost,
        &h.writers_overflow,
        &h.state_seq,
        &h.consumer_pid,
        &h.consumer_heartbeat_ns,
    ] {
        f.offset(&h, field);
    }
    f.add(std::mem::size_of::<Header>() as u64);
    let l = Lane::empty();
    for field in [
        &l.owner,
        &l.owner_start,
        &l.owner_writer,
        &l.tail,
        &l.dropped,
        &l.acquisitions,
        &l.head,
    ] {
        f.offset(&l, field);
    }
    let s = Slot::empty();
    f.offset(&s, &s.seq);
    f.offset(&s, &s.words);
    let w = WriterEntry::empty();
    for field in [
        &w.pid,
        &w.start_time,
        &w.service,
        &w.registered_wall_ns,
        &w.heartbeat_ns,
        &w.dropped,
        &w.emitted_hint,
        &w.overwritten,
    ] {
        f.offset(&w, field);
    }
    let m = MsgSlot::empty();
    f.offset(&m, &m.seq);
    f.offset(&m, &m.meta);
    f.offset(&m, &m.text);
    let e = StrEntry::empty();
    f.offset(&e, &e.key);
    f.offset(&e, &e.loc);

    // The record encoding and its checksum.
    let event = Event {
        position: 0,
        lane: 0,
        kind: Kind::Req,
        flags: 3,
        method: Method::Patch,
        status: 503,
        name: StrId(7),
        exception_type: StrId(9),
        message: MsgRef(11),
        pid: 1234,
        tid: 5678,
        ts_mono_ns: 1_000_000_007,
        dur_ns: 250_013,
        trace_id: 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
        span_id: 42,
        parent_span_id: 41,
        value: 100,
        value2: 200,
        writer: 5,
    };
    for word in event.encode(77) {
        f.add(word);
    }
    f.add(checksum(&[0; RECORD_WORDS]));
    for kind in [Kind::Req, Kind::Fn, Kind::Db, Kind::Custom] {
        f.add(kind as u64);
    }
    for text in ["", "a", "/users/{id}", "SELECT * FROM t WHERE id = ?"] {
        f.add(hash_bytes(text.as_bytes()));
    }

    // The string table and message slot words as writers leave them.
    let owned = OwnedRing::new(1, 2, false, 16, 64, 4);
    let ring = owned.view();
    let id = ring.intern("/orders/{id}");
    f.add(u64::from(id.0));
    for entry in ring.strings {
        f.add(entry.key.load(Relaxed));
        f.add(entry.loc.load(Relaxed));
    }
    for word in ring.arena {
        f.add(word.load(Relaxed));
    }
    let msg = ring.record_message("connection reset by peer");
    f.add(u64::from(msg.0));
    for slot in ring.messages {
        f.add(slot.seq.load(Relaxed));
        f.add(slot.meta.load(Relaxed));
        for word in &slot.text {
            f.add(word.load(Relaxed));
        }
    }

    // Version 3: a message with a stack trace spans a run of slots.
    f.add(MSG_RUN_MAX as u64);
    f.add(u64::from(MSG_RUN_SHIFT));
    let owned = OwnedRing::new(1, 2, false, 16, 64, 16);
    let ring = owned.view();
    let stack = "  File \"app.py\", line 7, in handler\n".repeat(40);
    let msg = ring.record_message_with_stack("division by zero", Some(&stack));
    f.add(u64::from(msg.0));
    f.add(ring.header.messages_next.load(Relaxed));
    for slot in ring.messages {
        f.add(slot.seq.load(Relaxed));
        f.add(slot.meta.load(Relaxed));
        for word in &slot.text {
            f.add(word.load(Relaxed));
        }
    }
    f.0
}

#[test]
fn the_format_of_this_version_is_the_one_recorded_for_it() {
    let now = fingerprint();
    let recorded = KNOWN.iter().find(|(v, _)| *v == VERSION).map(|(_, f)| *f);
    assert_eq!(
        recorded,
        Some(now),
        "the ring format (fingerprint {now:#018x}) is not the one recorded for \
         format version {VERSION}: a change to the bytes or checks on file needs \
         a new layout::VERSION and its line in KNOWN"
    );
}

#[test]
fn every_recorded_version_has_its_own_fingerprint() {
    let mut seen = std::collections::HashSet::new();
    for (version, fp) in KNOWN {
        assert!(seen.insert(*fp), "version {version} reuses a fingerprint");
    }
    assert!(
        KNOWN.iter().all(|(v, _)| *v <= VERSION),
        "a recorded version newer than this library"
    );
}
