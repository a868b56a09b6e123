//! The byte layout of a ring file: every offset and size, in one place.
//!
//! FORMAT.md states the same numbers in prose; the `const` assertions at the
//! bottom keep the two from drifting, and `tests/format_fingerprint.rs` fails
//! when any of them (or a check function) changes without a new
//! [`VERSION`]. Nothing outside this module computes an offset. All
//! multi-byte values are little-endian `u64` words, accessed as atomics so
//! that concurrent access from several processes (or a hostile one) is never
//! undefined behaviour.
//!
//! ```text
//! 0                HEADER (4096 bytes; struct `Header` is the first 512)
//! 4096             writer table: writer_entries x 64 bytes
//! (256-aligned)    lane table: lanes x 256 bytes
//! (64-aligned)     consumer state: 2 copies x (8 + lanes) words
//! (64-aligned)     string index: string_entries x 16 bytes
//! (64-aligned)     string arena: arena_bytes
//! (64-aligned)     message slots: message_slots x 256 bytes
//! (4096-aligned)   event slots: lanes x lane_slots x 128 bytes, lane by lane
//! ```

use crate::sync::AtomicU64;

/// `b"PROFILIS"` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"PROFILIS");
/// Format version written by this library; attach refuses any other.
///
/// Version 1 was a single multi-producer ring; version 2 splits the event
/// slots into per-writer lanes; version 3 lets a message span a run of
/// message slots (its text, then a stack trace).
pub const VERSION: u64 = 3;

/// Bytes reserved for the header at the start of the file.
pub const HEADER_BYTES: u64 = 4096;
/// Bytes of one event slot.
pub const SLOT_BYTES: u64 = 128;
/// Number of 8-byte words in an event record (112 bytes).
pub const RECORD_WORDS: usize = 14;
/// Bytes of one writer-table entry.
pub const WRITER_ENTRY_BYTES: u64 = 64;
/// Bytes of one lane descriptor.
pub const LANE_BYTES: u64 = 256;
/// Bytes of one string-index entry.
pub const STR_ENTRY_BYTES: u64 = 16;
/// Bytes of one message slot (exception messages and other variable text).
pub const MSG_SLOT_BYTES: u64 = 256;
/// Text words in a message slot (240 bytes of UTF-8).
pub const MSG_TEXT_WORDS: usize = 30;
/// Longest message text stored; longer text is cut at a char boundary.
pub const MSG_MAX_BYTES: usize = MSG_TEXT_WORDS * 8;
/// Most message slots one message takes: its text in the first, a stack
/// trace in the others. A ring of `s` message slots allows runs of at most
/// `min(MSG_RUN_MAX, s / 4)`.
pub const MSG_RUN_MAX: usize = 16;
/// Bit offset of `run - 1` in the first slot's [`MsgSlot::meta`].
pub const MSG_RUN_SHIFT: u32 = 16;
/// Longest interned string; longer strings are cut at a char boundary.
pub const STR_MAX_BYTES: usize = 1024;

/// Limits checked at creation and on attach.
pub const MIN_CAPACITY: u64 = 2;
/// Largest ring: 2^24 slots (2 GiB of slots).
pub const MAX_CAPACITY: u64 = 1 << 24;
/// Fewest slots in one lane.
pub const MIN_LANE_SLOTS: u64 = 2;
/// Most lanes in one ring.
pub const MAX_LANES: u64 = 1024;
/// Smallest string index.
pub const MIN_STRING_ENTRIES: u64 = 16;
/// Largest string index.
pub const MAX_STRING_ENTRIES: u64 = 1 << 20;
/// Smallest string arena.
pub const MIN_ARENA_BYTES: u64 = 4096;
/// Largest string arena (offsets are 32-bit).
pub const MAX_ARENA_BYTES: u64 = 1 << 28;
/// Smallest message region.
pub const MIN_MESSAGE_SLOTS: u64 = 4;
/// Largest message region.
pub const MAX_MESSAGE_SLOTS: u64 = 1 << 16;
/// Smallest writer table.
pub const MIN_WRITER_ENTRIES: u64 = 1;
/// Largest writer table (writer indices are 16-bit, 0xFFFF means none).
pub const MAX_WRITER_ENTRIES: u64 = 4096;

/// Highest position a lane reaches. A writer refuses events past it (counted
/// as dropped), and a lane position or counter beyond it can only come from
/// a damaged or hostile file. At 100 million events a second into one lane
/// it lasts 1.4 years; it keeps `position * lanes` (the ring-wide event
/// position) and every sum of counters far from 2^64.
pub const MAX_LANE_POSITION: u64 = 1 << 52;

/// Full-ring policy stored in `Header::policy`.
pub const POLICY_DROP_NEWEST: u64 = 0;
/// Overwrite the oldest unread event when the ring is full.
pub const POLICY_OVERWRITE_OLDEST: u64 = 1;

/// Slot sequence value meaning "the writer of lane position `pos` is
/// writing the record".
#[inline]
pub const fn seq_writing(pos: u64) -> u64 {
    (pos << 1) | 1
}

/// Slot sequence value meaning "holds the complete record of lane position
/// `pos`". A slot never written holds 0, which no position's value equals.
#[inline]
pub const fn seq_committed(pos: u64) -> u64 {
    (pos << 1) + 2
}

/// Record word: the lane position the record was written at (its stamp).
pub const W_STAMP: usize = 0;
/// Record word: kind, flags, method, status.
pub const W_KIND: usize = 1;
/// Record word: name id (low half), exception-type id (high half).
pub const W_NAMES: usize = 2;
/// Record word: pid (low half), tid (high half).
pub const W_PID_TID: usize = 3;
/// Record word: timestamp.
pub const W_TIMESTAMP: usize = 4;
/// Record word: duration.
pub const W_DURATION: usize = 5;
/// Record word: trace id, low 64 bits (the high 64 bits follow).
pub const W_TRACE_LO: usize = 6;
/// Record word: trace id, high 64 bits.
pub const W_TRACE_HI: usize = 7;
/// Record word: span id.
pub const W_SPAN: usize = 8;
/// Record word: parent span id.
pub const W_PARENT_SPAN: usize = 9;
/// Record word: value (DB rows, REQ bytes in, CUSTOM value bits).
pub const W_VALUE: usize = 10;
/// Record word: value2 (REQ bytes out).
pub const W_VALUE2: usize = 11;
/// Record word: message reference (low half), writer index (bits
/// [`WRITER_SHIFT`]..+16).
pub const W_MSG_WRITER: usize = 12;
/// Record word: checksum of the words before it.
pub const W_CHECKSUM: usize = 13;
/// Bit offset of the writer-table index in [`W_MSG_WRITER`].
pub const WRITER_SHIFT: u32 = 32;

/// The ring header. Fields in the first block are written once by the creator
/// before the file is published and never change afterwards.
#[repr(C)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: AtomicU64,
    /// [`VERSION`].
    pub version: AtomicU64,
    /// [`SLOT_BYTES`].
    pub slot_bytes: AtomicU64,
    /// Number of event slots, all lanes together, a power of two.
    pub capacity: AtomicU64,
    /// [`POLICY_DROP_NEWEST`] or [`POLICY_OVERWRITE_OLDEST`].
    pub policy: AtomicU64,
    /// Entries in the string index, a power of two.
    pub string_entries: AtomicU64,
    /// Bytes in the string arena, a multiple of 64.
    pub arena_bytes: AtomicU64,
    /// Message slots, a power of two.
    pub message_slots: AtomicU64,
    /// Entries in the writer table.
    pub writer_entries: AtomicU64,
    /// Total file size; must equal [`Params::file_bytes`].
    pub file_bytes: AtomicU64,
    /// Random identity of this ring file, distinguishes a re-created file.
    pub ring_id: AtomicU64,
    /// `CLOCK_REALTIME` at creation, ns since the Unix epoch.
    pub created_wall_ns: AtomicU64,
    /// `CLOCK_MONOTONIC` read together with `created_wall_ns`.
    pub created_mono_ns: AtomicU64,
    /// pid of the creating process.
    pub creator_pid: AtomicU64,
    /// Number of lanes, a power of two dividing `capacity`.
    pub lanes: AtomicU64,
    _pad0: [u64; 1],

    /// Events refused because no lane could be had (every shared lane was
    /// busy) or the lane position limit was reached.
    pub dropped_no_lane: AtomicU64,
    /// Interning requests answered with the overflow id.
    pub strings_overflow: AtomicU64,
    /// Bytes of the string arena handed out (never more than `arena_bytes`).
    pub arena_used: AtomicU64,
    /// Next message sequence number.
    pub messages_next: AtomicU64,
    /// Messages a writer gave up on (slot taken by a newer message).
    pub messages_lost: AtomicU64,
    /// Processes that found the writer table full.
    pub writers_overflow: AtomicU64,
    _pad1: [u64; 10],

    /// Version of the consumer state; copy `state_seq & 1` of the state
    /// region is current.
    pub state_seq: AtomicU64,
    /// pid of the attached consumer (0 when none); informational.
    pub consumer_pid: AtomicU64,
    /// `CLOCK_MONOTONIC` of the consumer's last poll; informational.
    pub consumer_heartbeat_ns: AtomicU64,
    _pad2: [u64; 29],
}

/// Words of a consumer state copy before the lane heads.
pub const STATE_FIXED_WORDS: usize = 8;
/// State word: events delivered.
pub const STATE_RECEIVED: usize = 0;
/// State word: events whose writer died while writing them.
pub const STATE_ABANDONED: usize = 1;
/// State word: records that failed validation.
pub const STATE_TORN: usize = 2;
/// State word: events overwritten before they were read (overwrite-oldest).
pub const STATE_OVERWRITTEN: usize = 3;
/// State word: message texts the consumer found overwritten or damaged.
pub const STATE_MESSAGES_UNREAD: usize = 4;
/// State word: name ids the consumer could not resolve.
pub const STATE_NAMES_UNRESOLVED: usize = 5;
/// State word: lane repairs (positions no protocol step produces, found and
/// reset).
pub const STATE_REPAIRS: usize = 6;
/// State word: reserved, 0.
pub const STATE_RESERVED: usize = 7;

/// Words of one consumer state copy for a ring of `lanes` lanes: the fixed
/// words, then the read position of each lane.
pub const fn state_words(lanes: u64) -> u64 {
    STATE_FIXED_WORDS as u64 + lanes
}

/// One lane: a single-writer ring of `lane_slots` slots with its own
/// positions. The writer-side block and the consumer-side block are 128
/// bytes apart so neither side's stores share a line (or an adjacent-line
/// prefetch pair) with the other's.
#[repr(C, align(128))]
pub struct Lane {
    /// Who may write: 0 when free, [`LANE_RECLAIMING`] while the consumer
    /// takes back the lane of a dead writer, else `pid << 32 | tid` of the
    /// writing thread.
    pub owner: AtomicU64,
    /// Start time of the owner's process (`/proc/PID/stat` field 22), 0
    /// until the owner has stored it.
    pub owner_start: AtomicU64,
    /// Writer-table index of the owner's process ([`NO_WRITER`] if none).
    pub owner_writer: AtomicU64,
    /// Next lane position to write: every position below it is committed
    /// (or, for the one a writer died in, resolved by the consumer).
    pub tail: AtomicU64,
    /// Events refused because the lane was full (drop-newest).
    pub dropped: AtomicU64,
    /// Times the lane was taken by a writer; informational.
    pub acquisitions: AtomicU64,
    _pad0: [u64; 10],
    /// Lane position up to which the consumer has read and counted every
    /// event: the writer may reuse slots below `head + lane_slots`.
    pub head: AtomicU64,
    _pad1: [u64; 15],
}

/// [`Lane::owner`] while the consumer reclaims a dead writer's lane.
pub const LANE_RECLAIMING: u64 = u64::MAX;

/// Lanes that are locked for one event at a time, by threads that have no
/// lane of their own: the last `shared_lanes(lanes)` of the table.
pub const fn shared_lanes(lanes: u64) -> u64 {
    if lanes / 8 > 1 {
        lanes / 8
    } else {
        1
    }
}

/// One event slot: the sequence word, the record, padding.
#[repr(C, align(128))]
pub struct Slot {
    /// 0, [`seq_writing`] or [`seq_committed`] of the lane position the slot
    /// holds.
    pub seq: AtomicU64,
    /// The event record, see [`crate::record`].
    pub words: [AtomicU64; RECORD_WORDS],
    _pad: [u64; 1],
}

/// One entry of the string index (open addressing, linear probing).
#[repr(C)]
pub struct StrEntry {
    /// Hash of the string (never 0); 0 means the entry is empty.
    pub key: AtomicU64,
    /// `READY | len << 32 | arena offset`, 0 until the text is in the arena.
    pub loc: AtomicU64,
}

/// Bit set in [`StrEntry::loc`] once the entry's text is complete.
pub const STR_LOC_READY: u64 = 1 << 63;
/// Bit set in [`StrEntry::loc`] when the arena had no room: the entry maps to
/// the overflow id forever.
pub const STR_LOC_OVERFLOW: u64 = 1 << 62;

/// One message slot (seqlock-protected variable text).
#[repr(C)]
pub struct MsgSlot {
    /// `2*n + 1` while message `n` is written, `2*n + 2` once complete.
    pub seq: AtomicU64,
    /// `len | (run - 1) << 16 | checksum << 32`; `run - 1` is 0 in every
    /// slot but the first of a run.
    pub meta: AtomicU64,
    /// UTF-8 text, the last word zero padded; words past the text's
    /// length hold whatever an earlier message left there.
    pub text: [AtomicU64; MSG_TEXT_WORDS],
}

/// One writer-table entry: a process that writes into the ring.
#[repr(C)]
pub struct WriterEntry {
    /// pid of the writer process, 0 when the entry is free.
    pub pid: AtomicU64,
    /// Process start time (clock ticks after boot, `/proc/PID/stat` field
    /// 22), so a reused pid is not mistaken for the writer.
    pub start_time: AtomicU64,
    /// Interned service name of the writer (0 when unset).
    pub service: AtomicU64,
    /// `CLOCK_REALTIME` ns when the writer registered.
    pub registered_wall_ns: AtomicU64,
    /// `CLOCK_MONOTONIC` ns of the writer's latest heartbeat.
    pub heartbeat_ns: AtomicU64,
    /// Events this writer could not place because the ring was full.
    pub dropped: AtomicU64,
    /// Events this writer emitted, published every [`HEARTBEAT_EVERY`] events.
    pub emitted_hint: AtomicU64,
    /// Events of this writer overwritten before they were read (charged by
    /// the overwriting writer, overwrite-oldest rings only).
    pub overwritten: AtomicU64,
}

/// A writer thread refreshes its process's heartbeat once per this many events.
pub const HEARTBEAT_EVERY: u64 = 1024;
/// Writer index recorded in events from a process without a table entry.
pub const NO_WRITER: u16 = u16::MAX;

/// The shape of a ring: the parameters chosen at creation, from which every
/// region's offset follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Event slots, all lanes together (power of two).
    pub capacity: u64,
    /// Lanes (power of two; `capacity / lanes` slots each).
    pub lanes: u64,
    /// String index entries (power of two).
    pub string_entries: u64,
    /// String arena bytes (multiple of 64).
    pub arena_bytes: u64,
    /// Message slots (power of two).
    pub message_slots: u64,
    /// Writer table entries.
    pub writer_entries: u64,
}

const fn align_up(value: u64, to: u64) -> u64 {
    value.div_ceil(to) * to
}

impl Params {
    /// Slots of one lane.
    pub const fn lane_slots(&self) -> u64 {
        self.capacity / self.lanes
    }
    /// Offset of the writer table.
    pub const fn writers_offset(&self) -> u64 {
        HEADER_BYTES
    }
    /// Offset of the lane table.
    pub const fn lanes_offset(&self) -> u64 {
        align_up(
            self.writers_offset() + self.writer_entries * WRITER_ENTRY_BYTES,
            LANE_BYTES,
        )
    }
    /// Offset of the consumer state (two copies).
    pub const fn state_offset(&self) -> u64 {
        align_up(self.lanes_offset() + self.lanes * LANE_BYTES, 64)
    }
    /// Offset of the string index.
    pub const fn strings_offset(&self) -> u64 {
        align_up(self.state_offset() + 2 * state_words(self.lanes) * 8, 64)
    }
    /// Offset of the string arena.
    pub const fn arena_offset(&self) -> u64 {
        align_up(
            self.strings_offset() + self.string_entries * STR_ENTRY_BYTES,
            64,
        )
    }
    /// Offset of the message slots.
    pub const fn messages_offset(&self) -> u64 {
        align_up(self.arena_offset() + self.arena_bytes, 64)
    }
    /// Offset of the event slots (page aligned); lane `l` starts
    /// `l * lane_slots * SLOT_BYTES` further.
    pub const fn slots_offset(&self) -> u64 {
        align_up(
            self.messages_offset() + self.message_slots * MSG_SLOT_BYTES,
            4096,
        )
    }
    /// Size of the whole file.
    pub const fn file_bytes(&self) -> u64 {
        align_up(self.slots_offset() + self.capacity * SLOT_BYTES, 4096)
    }

    /// Lanes a thread can keep for itself; the others are shared.
    pub const fn own_lanes(&self) -> u64 {
        self.lanes - shared_lanes(self.lanes)
    }

    /// Checks every parameter against its limits; `Err` names the first one
    /// out of range.
    pub fn check(&self) -> Result<(), &'static str> {
        let pow2_in = |v: u64, lo: u64, hi: u64| v.is_power_of_two() && v >= lo && v <= hi;
        if !pow2_in(self.capacity, MIN_CAPACITY, MAX_CAPACITY) {
            return Err("capacity must be a power of two in 2..=2^24");
        }
        if !pow2_in(self.lanes, 1, MAX_LANES) {
            return Err("lanes must be a power of two in 1..=1024");
        }
        if self.capacity / self.lanes < MIN_LANE_SLOTS {
            return Err("capacity must give every lane at least 2 slots");
        }
        if !pow2_in(self.string_entries, MIN_STRING_ENTRIES, MAX_STRING_ENTRIES) {
            return Err("string_entries must be a power of two in 16..=2^20");
        }
        if !self.arena_bytes.is_multiple_of(64)
            || self.arena_bytes < MIN_ARENA_BYTES
            || self.arena_bytes > MAX_ARENA_BYTES
        {
            return Err("arena_bytes must be a multiple of 64 in 4096..=2^28");
        }
        if !pow2_in(self.message_slots, MIN_MESSAGE_SLOTS, MAX_MESSAGE_SLOTS) {
            return Err("message_slots must be a power of two in 4..=2^16");
        }
        if self.writer_entries < MIN_WRITER_ENTRIES || self.writer_entries > MAX_WRITER_ENTRIES {
            return Err("writer_entries must be in 1..=4096");
        }
        Ok(())
    }
}

#[cfg(not(profilis_loom))]
mod asserts {
    use super::*;
    use core::mem::{align_of, offset_of, size_of};

    const _: () = assert!(size_of::<Header>() == 512);
    const _: () = assert!(size_of::<Header>() as u64 <= HEADER_BYTES);
    const _: () = assert!(offset_of!(Header, magic) == 0);
    const _: () = assert!(offset_of!(Header, version) == 8);
    const _: () = assert!(offset_of!(Header, slot_bytes) == 16);
    const _: () = assert!(offset_of!(Header, capacity) == 24);
    const _: () = assert!(offset_of!(Header, policy) == 32);
    const _: () = assert!(offset_of!(Header, string_entries) == 40);
    const _: () = assert!(offset_of!(Header, arena_bytes) == 48);
    const _: () = assert!(offset_of!(Header, message_slots) == 56);
    const _: () = assert!(offset_of!(Header, writer_entries) == 64);
    const _: () = assert!(offset_of!(Header, file_bytes) == 72);
    const _: () = assert!(offset_of!(Header, ring_id) == 80);
    const _: () = assert!(offset_of!(Header, created_wall_ns) == 88);
    const _: () = assert!(offset_of!(Header, created_mono_ns) == 96);
    const _: () = assert!(offset_of!(Header, creator_pid) == 104);
    const _: () = assert!(offset_of!(Header, lanes) == 112);
    const _: () = assert!(offset_of!(Header, dropped_no_lane) == 128);
    const _: () = assert!(offset_of!(Header, strings_overflow) == 136);
    const _: () = assert!(offset_of!(Header, arena_used) == 144);
    const _: () = assert!(offset_of!(Header, messages_next) == 152);
    const _: () = assert!(offset_of!(Header, messages_lost) == 160);
    const _: () = assert!(offset_of!(Header, writers_overflow) == 168);
    const _: () = assert!(offset_of!(Header, state_seq) == 256);
    const _: () = assert!(offset_of!(Header, consumer_pid) == 264);
    const _: () = assert!(offset_of!(Header, consumer_heartbeat_ns) == 272);

    const _: () = assert!(size_of::<Lane>() as u64 == LANE_BYTES);
    const _: () = assert!(offset_of!(Lane, owner) == 0);
    const _: () = assert!(offset_of!(Lane, owner_start) == 8);
    const _: () = assert!(offset_of!(Lane, owner_writer) == 16);
    const _: () = assert!(offset_of!(Lane, tail) == 24);
    const _: () = assert!(offset_of!(Lane, dropped) == 32);
    const _: () = assert!(offset_of!(Lane, acquisitions) == 40);
    const _: () = assert!(offset_of!(Lane, head) == 128);

    const _: () = assert!(size_of::<Slot>() as u64 == SLOT_BYTES);
    const _: () = assert!(align_of::<Slot>() == 128);
    const _: () = assert!(offset_of!(Slot, seq) == 0);
    const _: () = assert!(offset_of!(Slot, words) == 8);
    const _: () = assert!(size_of::<StrEntry>() as u64 == STR_ENTRY_BYTES);
    const _: () = assert!(size_of::<MsgSlot>() as u64 == MSG_SLOT_BYTES);
    const _: () = assert!(size_of::<WriterEntry>() as u64 == WRITER_ENTRY_BYTES);
    const _: () = assert!(offset_of!(WriterEntry, pid) == 0);
    const _: () = assert!(offset_of!(WriterEntry, start_time) == 8);
    const _: () = assert!(offset_of!(WriterEntry, service) == 16);
    const _: () = assert!(offset_of!(WriterEntry, registered_wall_ns) == 24);
    const _: () = assert!(offset_of!(WriterEntry, heartbeat_ns) == 32);
    const _: () = assert!(offset_of!(WriterEntry, dropped) == 40);
    const _: () = assert!(offset_of!(WriterEntry, emitted_hint) == 48);
    const _: () = assert!(offset_of!(WriterEntry, overwritten) == 56);
    const _: () = assert!(offset_of!(StrEntry, key) == 0 && offset_of!(StrEntry, loc) == 8);
    const _: () = assert!(offset_of!(MsgSlot, seq) == 0);
    const _: () = assert!(offset_of!(MsgSlot, meta) == 8);
    const _: () = assert!(offset_of!(MsgSlot, text) == 16);
    const _: () = assert!(size_of::<AtomicU64>() == 8 && align_of::<AtomicU64>() == 8);
    const _: () = assert!(W_CHECKSUM == RECORD_WORDS - 1);
    // Ring-wide positions `lane_position * lanes + lane` stay below 2^62.
    const _: () = assert!(MAX_LANE_POSITION.checked_mul(MAX_LANES).is_some());
    const _: () = assert!(MAX_LANE_POSITION * MAX_LANES <= 1 << 62);
}

fn zero() -> AtomicU64 {
    AtomicU64::new(0)
}

impl Header {
    /// A zeroed header on the heap (for rings that live in process memory:
    /// tests and the loom models).
    pub fn zeroed() -> Header {
        Header {
            magic: zero(),
            version: zero(),
            slot_bytes: zero(),
            capacity: zero(),
            policy: zero(),
            string_entries: zero(),
            arena_bytes: zero(),
            message_slots: zero(),
            writer_entries: zero(),
            file_bytes: zero(),
            ring_id: zero(),
            created_wall_ns: zero(),
            created_mono_ns: zero(),
            creator_pid: zero(),
            lanes: zero(),
            _pad0: [0; 1],
            dropped_no_lane: zero(),
            strings_overflow: zero(),
            arena_used: zero(),
            messages_next: zero(),
            messages_lost: zero(),
            writers_overflow: zero(),
            _pad1: [0; 10],
            state_seq: zero(),
            consumer_pid: zero(),
            consumer_heartbeat_ns: zero(),
            _pad2: [0; 29],
        }
    }
}

impl Lane {
    /// A free, empty lane.
    pub fn empty() -> Lane {
        Lane {
            owner: zero(),
            owner_start: zero(),
            owner_writer: zero(),
            tail: zero(),
            dropped: zero(),
            acquisitions: zero(),
            _pad0: [0; 10],
            head: zero(),
            _pad1: [0; 15],
        }
    }
}

impl Slot {
    /// A slot never written.
    pub fn empty() -> Slot {
        Slot {
            seq: zero(),
            words: core::array::from_fn(|_| zero()),
            _pad: [0; 1],
        }
    }
}

impl StrEntry {
    /// An empty entry.
    pub fn empty() -> StrEntry {
        StrEntry {
            key: zero(),
            loc: zero(),
        }
    }
}

impl MsgSlot {
    /// An empty message slot.
    pub fn empty() -> MsgSlot {
        MsgSlot {
            seq: zero(),
            meta: zero(),
            text: core::array::from_fn(|_| zero()),
        }
    }
}

impl WriterEntry {
    /// A free writer entry.
    pub fn empty() -> WriterEntry {
        WriterEntry {
            pid: zero(),
            start_time: zero(),
            service: zero(),
            registered_wall_ns: zero(),
            heartbeat_ns: zero(),
            dropped: zero(),
            emitted_hint: zero(),
            overwritten: zero(),
        }
    }
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
