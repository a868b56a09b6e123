//! The consumer and writer paths over a hostile ring: lane words (holder,
//! tail, head, drop counter), the consumer's stored state, slot sequence
//! words and records, string table and message slots all come from the
//! fuzzer, with positions and counters anywhere up to 2^64 (records are
//! either arbitrary words or well-formed encodings of arbitrary events, so
//! decoding and name resolution are reached). Then the fuzzer drives a
//! sequence of operations: consumer batches (read, resolve every name and
//! message, commit), writers taking lanes and writing, the consumer taking
//! back lanes whose holder it is told is dead, and counter snapshots.
//!
//! Properties:
//! - attach either refuses the state (`InconsistentState`) or succeeds, and
//!   nothing ever panics (no arithmetic overflow on any value from the
//!   file), hangs or reads out of bounds;
//! - events of a batch come lane by lane, each lane's in increasing
//!   position, inside the range its read position moved over;
//! - every position a head passes is counted exactly once: the growth of
//!   `received + abandoned + torn + overwritten` equals the growth of the
//!   sum of the heads, and `received` grows by the events delivered;
//! - the counters' identity holds for the consumer's counters and for a
//!   snapshot taken as another process would;
//! - the durable state survives a consumer crash: attaching again after a
//!   commit gives the same state.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::Bytes;
use libfuzzer_sys::fuzz_target;
use profilis::layout::{
    seq_committed, seq_writing, state_words, LANE_RECLAIMING, MAX_LANE_POSITION, RECORD_WORDS,
    STATE_FIXED_WORDS,
};
use profilis::ring::{ConsumerCore, ConsumerState, Counters, Owner, RingRef};
use profilis::testing::OwnedRing;
use profilis::{Event, Kind, Method, MsgRef, StrId};
use std::sync::atomic::Ordering::Relaxed;

/// A position: small, near the lane limit, near 2^64, or anything.
fn position(b: &mut Bytes) -> u64 {
    match b.u8() % 4 {
        0 => u64::from(b.u8()),
        1 => MAX_LANE_POSITION.wrapping_add(u64::from(b.u8())).wrapping_sub(128),
        2 => u64::MAX - u64::from(b.u8()),
        _ => b.u64(),
    }
}

fn event(b: &mut Bytes, entries: usize) -> Event {
    Event {
        position: 0,
        lane: 0,
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
    }
}

fn fill_lanes(b: &mut Bytes, ring: RingRef<'_>, entries: usize) {
    let per_lane = ring.lane_slots();
    for lane in ring.lanes {
        let tail = position(b);
        lane.tail.store(tail, Relaxed);
        let head = if b.u8() & 1 == 0 {
            tail.saturating_sub(u64::from(b.u8()) % (per_lane + 2))
        } else {
            position(b)
        };
        lane.head.store(head, Relaxed);
        lane.dropped.store(b.u64() >> (b.u8() % 64), Relaxed);
        lane.owner.store(
            match b.u8() % 4 {
                0 => 0,
                1 => LANE_RECLAIMING,
                _ => b.u64(),
            },
            Relaxed,
        );
        lane.owner_start.store(b.u64(), Relaxed);
        lane.owner_writer.store(b.u64(), Relaxed);
    }
    for (l, lane) in ring.lanes.iter().enumerate() {
        let tail = lane.tail.load(Relaxed);
        for i in 0..per_lane {
            // A position this slot may hold, near the lane's tail.
            let pos = tail.wrapping_sub(per_lane).wrapping_add(i);
            let slot = &ring.slots[l * per_lane as usize + (pos % per_lane) as usize];
            let mode = b.u8();
            // Positions near 2^64 have no sequence value of their own (the
            // protocol stops lanes at 2^52); the shifted value stands in.
            let seq = match mode % 5 {
                0 | 1 if pos < MAX_LANE_POSITION => seq_committed(pos),
                2 if pos < MAX_LANE_POSITION => seq_writing(pos),
                2 => (pos << 1) | 1,
                0..=1 => (pos << 1).wrapping_add(2),
                3 => 0,
                _ => b.u64(),
            };
            slot.seq.store(seq, Relaxed);
            let words = if mode & 0x80 == 0 {
                let mut words = event(b, entries).encode(pos);
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
    }
}

fn fill_state(b: &mut Bytes, ring: RingRef<'_>) {
    ring.header.state_seq.store(u64::from(b.u32()), Relaxed);
    let words = state_words(ring.lanes.len() as u64) as usize;
    for w in ring.state {
        w.store(b.u64() >> (b.u8() % 64), Relaxed);
    }
    if b.u8() & 1 == 0 {
        // A consistent state: heads at or below the lanes' tails, outcomes
        // adding up to them.
        let mut sum = 0u64;
        for copy in 0..2 {
            sum = 0;
            for (l, lane) in ring.lanes.iter().enumerate() {
                let tail = lane.tail.load(Relaxed).min(MAX_LANE_POSITION);
                let head = tail.saturating_sub(u64::from(b.u8()));
                ring.state[copy * words + STATE_FIXED_WORDS + l].store(head, Relaxed);
                sum += head;
            }
            let received = sum / 2;
            let torn = sum - received;
            ring.state[copy * words].store(received, Relaxed);
            ring.state[copy * words + 1].store(0, Relaxed);
            ring.state[copy * words + 2].store(torn, Relaxed);
            ring.state[copy * words + 3].store(0, Relaxed);
        }
        let _ = sum;
    }
}

fn batch(b: &mut Bytes, core: &mut ConsumerCore, ring: RingRef<'_>) {
    let before = core.state().clone();
    let limit = b.u8() as usize % (2 * ring.capacity() as usize) + 1;
    let events = core.read(ring, limit).to_vec();
    let lanes = ring.lanes.len();
    let mut last: Vec<Option<u64>> = vec![None; lanes];
    for e in &events {
        let lane = e.lane as usize;
        assert_eq!(e.position % lanes as u64, lane as u64);
        assert!(
            last[lane].is_none_or(|p| e.position > p),
            "positions of a lane out of order"
        );
        last[lane] = Some(e.position);
        for id in [e.name, e.exception_type] {
            let _ = ring.resolve(id);
        }
        let _ = ring.read_message(e.message);
    }
    core.commit(ring);
    let after = core.state().clone();
    for e in &events {
        let lane = e.lane as usize;
        let pos = e.position / lanes as u64;
        assert!(
            pos >= before.heads[lane] && pos < after.heads[lane],
            "event at {pos} of lane {lane} outside the batch [{}, {})",
            before.heads[lane],
            after.heads[lane]
        );
    }
    let resolved = |s: &ConsumerState| s.resolved().expect("heads below the limit");
    let counted = |s: &ConsumerState| s.outcomes().expect("counts below 2^64");
    assert!(resolved(&after) >= resolved(&before));
    assert_eq!(
        counted(&after) - counted(&before),
        resolved(&after) - resolved(&before),
        "positions counted once: {before:?} -> {after:?}"
    );
    assert_eq!(after.received - before.received, events.len() as u64);
    let again = ConsumerCore::attach(ring).expect("a committed state attaches");
    assert_eq!(again.state(), &after, "durable state");
}

fn write(b: &mut Bytes, ring: RingRef<'_>, entries: usize) {
    let who = Owner {
        pid: b.u32() | 1,
        tid: b.u32(),
        start_time: b.u64(),
        writer: b.u16(),
    };
    let hint = b.u8() as usize;
    let cursor = if b.u8() & 1 == 0 {
        ring.acquire_lane(&who, hint)
    } else {
        ring.lock_shared_lane(&who, hint)
    };
    let Some(mut cursor) = cursor else { return };
    for _ in 0..b.u8() % 8 {
        let e = event(b, entries);
        match b.u8() % 4 {
            0 => {
                if let Ok(begun) = ring.begin(&mut cursor) {
                    ring.abandon(&mut cursor, &begun);
                }
            }
            _ => {
                let _ = ring.write(&mut cursor, |pos| e.encode(pos));
            }
        }
    }
    ring.release_lane(&cursor, &who);
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let lanes = 1usize << (b.u8() % 3);
    let lane_slots = 2usize << (b.u8() % 3);
    let entries = 1usize << (b.u8() % 5);
    let arena_words = (b.u8() % 33) as usize;
    let message_slots = 1usize << (b.u8() % 2);
    let overwrite = b.u8() & 1 == 1;
    let owned = OwnedRing::new(lanes, lane_slots, overwrite, entries, arena_words, message_slots);
    let ring = owned.view();
    ring.header.dropped_no_lane.store(b.u64() >> (b.u8() % 64), Relaxed);
    fill_lanes(&mut b, ring, entries);
    fill_state(&mut b, ring);
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

    let Ok(mut core) = ConsumerCore::attach(ring) else {
        // Writers still cope with a ring whose consumer state is damaged.
        write(&mut b, ring, entries);
        let _ = Counters::snapshot(&ring);
        return;
    };
    for _ in 0..8 {
        match b.u8() % 4 {
            0 | 1 => batch(&mut b, &mut core, ring),
            2 => write(&mut b, ring, entries),
            _ => {
                let dead = b.u8();
                let mut alive = |pid: u32, _start: u64| (pid ^ u32::from(dead)) & 1 == 0;
                core.reclaim_dead(ring, &mut alive);
            }
        }
        let mine = core.counters(ring);
        assert!(mine.identity_holds() || mine.claimed == u64::MAX, "{mine:?}");
        if let Some(theirs) = Counters::snapshot(&ring) {
            assert!(
                theirs.identity_holds() || theirs.claimed == u64::MAX,
                "{theirs:?}"
            );
        }
    }
});
