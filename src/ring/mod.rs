//! The ring protocol: how writers take lanes and write events into them,
//! and how the one consumer reads, counts and releases them.
//!
//! A ring is a set of lanes. A lane is a single-writer ring of slots with
//! its own positions: a thread takes a free lane on its first event (one
//! CAS) and from then on alone writes into it, with plain stores and one
//! Release store of the lane's `tail` per event. Threads beyond the lanes a
//! thread may keep share the last few lanes, locking one for each event.
//! The consumer reads every lane from its own `head` up to the lane's
//! `tail`. So writers share no cache line with each other, and a writer
//! that dies between the first and the last store of an event holds up
//! nobody: its lane simply stops growing until the consumer, seeing the
//! process gone, takes the lane back (see `ConsumerCore::reclaim_dead`).
//!
//! Everything here works on a [`RingRef`], a view of the ring's shared
//! structures. In production the view points into the mapped file; under
//! `--cfg profilis_loom` it points into heap structures built from loom's
//! atomics, so the model checker runs exactly this code.
//!
//! Slot sequence values (see FORMAT.md, "Lanes"): 0 for a slot never
//! written, `WRITING(p) = 2p + 1` while the writer of lane position `p`
//! stores the record, `COMMITTED(p) = 2p + 2` once it is complete.

mod consume;
mod lane;
mod state;
#[cfg(all(test, not(profilis_loom)))]
mod tests;
mod writers;

pub use consume::{Anomaly, ConsumerCore, InconsistentState, Liveness};
pub use lane::{Begun, LaneCursor, Owner, Written};
pub use state::{ConsumerState, Counters};
pub use writers::{Registration, WriterEntryView};

use crate::layout::{Header, Lane, MsgSlot, Slot, StrEntry, WriterEntry};
use crate::sync::AtomicU64;

/// A view of a ring's shared structures.
#[derive(Clone, Copy)]
pub struct RingRef<'a> {
    /// The header.
    pub header: &'a Header,
    /// The lane table; its length is the number of lanes, a power of two.
    pub lanes: &'a [Lane],
    /// The consumer state region: two copies of
    /// [`state_words`](crate::layout::state_words) words.
    pub state: &'a [AtomicU64],
    /// Event slots of every lane, lane by lane; the length is a power of two
    /// and a multiple of the number of lanes.
    pub slots: &'a [Slot],
    /// String index.
    pub strings: &'a [StrEntry],
    /// String arena, as words.
    pub arena: &'a [AtomicU64],
    /// Message slots.
    pub messages: &'a [MsgSlot],
    /// Writer table.
    pub writers: &'a [WriterEntry],
    /// log2 of the slots of one lane (`slots.len() / lanes.len()`, kept
    /// so that the hot path never divides).
    pub lane_bits: u32,
    /// True when a full lane overwrites its oldest unread event.
    pub overwrite: bool,
}

/// The writer could not place an event: its lane is full (drop-newest), or
/// no lane could be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

impl<'a> RingRef<'a> {
    /// Number of slots, all lanes together.
    #[inline]
    pub fn capacity(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Slots of one lane (a power of two).
    #[inline]
    pub fn lane_slots(&self) -> u64 {
        1 << self.lane_bits
    }

    /// log2 of the slots of one lane, for a view of `slots` slots in `lanes`
    /// lanes (both powers of two).
    pub fn lane_bits_of(slots: usize, lanes: usize) -> u32 {
        (slots / lanes).trailing_zeros()
    }

    /// The slot of lane position `pos` in lane `lane`.
    #[inline]
    pub(crate) fn slot(&self, lane: usize, pos: u64) -> &'a Slot {
        // Slots per lane and lanes are powers of two (checked on attach), so
        // the index stays inside the lane and inside the slots.
        let mask = (1u64 << self.lane_bits) - 1;
        &self.slots[(lane << self.lane_bits) | (pos & mask) as usize]
    }

    /// Lanes a thread may keep: `0..own_lanes()`; the rest are shared.
    #[inline]
    pub fn own_lanes(&self) -> usize {
        self.lanes.len() - crate::layout::shared_lanes(self.lanes.len() as u64) as usize
    }
}

/// Ring-wide position of lane position `pos` of `lane` in a ring of `lanes`
/// lanes: unique per event, and, for a ring of one lane, the lane position
/// itself.
#[inline]
pub fn ring_position(lane: usize, pos: u64, lanes: usize) -> u64 {
    pos.wrapping_mul(lanes as u64).wrapping_add(lane as u64)
}

/// Why a position produced no event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LossCause {
    /// Its writer died between the first and the last store of the event.
    Abandoned,
    /// The record failed validation (a damaged file).
    Torn,
    /// Overwritten before it was read (overwrite-oldest).
    Overwritten,
}

/// One position that produced no event, with the writer it came from when
/// the lane still tells (0 / [`NO_WRITER`](crate::layout::NO_WRITER) when it
/// does not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loss {
    /// Ring-wide position (see [`ring_position`]).
    pub position: u64,
    /// What happened.
    pub cause: LossCause,
    /// pid of the writer, 0 if unknown.
    pub pid: u32,
    /// Writer-table index, `NO_WRITER` if unknown.
    pub writer: u16,
    /// Events of its batch read before it: the loss happened between event
    /// `before_event - 1` and event `before_event` of the batch (events and
    /// losses of one lane are in position order).
    pub before_event: u32,
}

/// Losses kept for the caller per batch; beyond this they are only counted
/// (the counters stay exact).
pub const MAX_KEPT_LOSSES: usize = 65536;
