//! The writer side of a lane: taking one, writing events into it, giving it
//! back.
//!
//! A thread takes a lane with one CAS of its `owner` word and from then on
//! is its only writer, so an event costs plain stores: the slot's sequence
//! word (`WRITING(p)`), the 14 record words, the sequence word again
//! (`COMMITTED(p)`) and the lane's `tail` (Release). The writer keeps its
//! next position and a cached copy of the consumer's `head` in a
//! [`LaneCursor`] of its own, and loads the shared `head` only when the
//! cached one says the lane is full.

use super::{Full, RingRef};
use crate::layout::{
    seq_committed, seq_writing, MAX_LANE_POSITION, RECORD_WORDS, WRITER_SHIFT, W_MSG_WRITER,
    W_PID_TID, W_STAMP,
};
use crate::layout::{Lane, Slot};
use crate::sync::{fence, Ordering::*};

/// Identity of a writing thread, stored in the lane it holds so that the
/// consumer can tell when its process is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Process id (never 0).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Process start time (`/proc/PID/stat` field 22), 0 if unknown.
    pub start_time: u64,
    /// Writer-table index of the process.
    pub writer: u16,
}

impl Owner {
    /// No thread (an unused entry).
    pub const NONE: Owner = Owner {
        pid: 0,
        tid: 0,
        start_time: 0,
        writer: crate::layout::NO_WRITER,
    };

    /// The value of [`Lane::owner`](crate::layout::Lane::owner) while this
    /// thread holds a lane: `pid << 32 | tid`, never 0 (pids are not) and
    /// never [`LANE_RECLAIMING`](crate::layout::LANE_RECLAIMING) (pids stay far below 2^32 - 1).
    #[inline]
    pub fn token(&self) -> u64 {
        (self.pid as u64) << 32 | self.tid as u64
    }
}

/// A lane held by the calling thread, where it writes next, and the
/// consumer's read position as last seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaneCursor {
    /// Index of the lane.
    pub lane: u32,
    /// Next lane position to write.
    pub pos: u64,
    /// The lane's `head` as last loaded (never above `pos`).
    head: u64,
}

impl LaneCursor {
    /// No lane (an unused entry); never written through.
    pub const NONE: LaneCursor = LaneCursor {
        lane: 0,
        pos: 0,
        head: 0,
    };
}

/// An event begun in a lane (see [`RingRef::begin`]): where it goes.
#[derive(Clone, Copy)]
pub struct Begun<'a> {
    lane: &'a Lane,
    slot: &'a Slot,
    /// Lane position of the event.
    pub pos: u64,
    /// True when the slot held an event the consumer had not read yet
    /// (overwrite-oldest).
    pub overwrote: bool,
}

/// Where a write landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// Lane position of the event.
    pub pos: u64,
    /// True when the slot held an event the consumer had not read yet
    /// (overwrite-oldest): that event is lost, and the consumer counts it.
    pub overwrote: bool,
}

impl<'a> RingRef<'a> {
    /// Takes a free lane of those a thread may keep, scanning from `hint`.
    /// `None` when every one is held.
    pub fn acquire_lane(&self, who: &Owner, hint: usize) -> Option<LaneCursor> {
        let own = self.own_lanes();
        (0..own).find_map(|k| self.try_take((hint + k) % own, who))
    }

    /// Locks one of the shared lanes for one event (give it back with
    /// [`release_lane`](Self::release_lane) right after), scanning from
    /// `hint`. `None` when every shared lane is locked right now.
    pub fn lock_shared_lane(&self, who: &Owner, hint: usize) -> Option<LaneCursor> {
        let own = self.own_lanes();
        let shared = self.lanes.len() - own;
        (0..shared).find_map(|k| self.try_take(own + (hint + k) % shared, who))
    }

    fn try_take(&self, index: usize, who: &Owner) -> Option<LaneCursor> {
        let lane = &self.lanes[index];
        if lane.owner.load(Relaxed) != 0 {
            return None;
        }
        // ORDERING: Acquire pairs with the Release store of 0 by the lane's
        // previous holder (`release_lane`) or by the consumer (`reclaim`):
        // their stores of `tail` and `dropped` happen before our loads. No
        // Release: we store nothing before this that anyone reads, and a
        // consumer that loads our token (Acquire, `reclaim_dead`)
        // synchronizes with that same store of 0 all the same, since this
        // read-modify-write continues its release sequence; so it sees the
        // previous holder's `owner_start` cleared, not stale.
        lane.owner
            .compare_exchange(0, who.token(), Acquire, Relaxed)
            .ok()?;
        lane.owner_start.store(who.start_time, Relaxed);
        lane.owner_writer.store(who.writer as u64, Relaxed);
        lane.acquisitions
            .store(lane.acquisitions.load(Relaxed).wrapping_add(1), Relaxed);
        let pos = lane.tail.load(Relaxed);
        // ORDERING: Acquire pairs with the consumer's Release store of `head`
        // in `commit`: its reads of the slots below it happen before we
        // reuse them.
        let head = lane.head.load(Acquire).min(pos);
        Some(LaneCursor {
            lane: index as u32,
            pos,
            head,
        })
    }

    /// Gives back a lane taken by `who` (thread exit, or after one event in
    /// a shared lane).
    pub fn release_lane(&self, cursor: &LaneCursor, who: &Owner) {
        let lane = &self.lanes[cursor.lane as usize];
        if lane.owner.load(Relaxed) != who.token() {
            // Taken back by the consumer: only done for a writer whose
            // process is gone, so never ours while we run.
            return;
        }
        lane.owner_start.store(0, Relaxed);
        // ORDERING: Release pairs with the next holder's Acquire CAS in
        // `try_take` (and, through the release sequence that CAS continues,
        // with the consumer's Acquire load of the next holder's token):
        // our stores of `tail`, `dropped` and `owner_start` happen before
        // their loads.
        lane.owner.store(0, Release);
    }

    /// Starts an event at the cursor: checks for room and marks the slot
    /// `WRITING(pos)`. Returns [`Full`] (counted in the lane's `dropped`)
    /// when the lane is full and the ring drops the newest, or when the lane
    /// reached [`MAX_LANE_POSITION`]. Finish with [`finish`](Self::finish)
    /// (or [`abandon`](Self::abandon)).
    #[inline]
    pub fn begin(&self, cursor: &mut LaneCursor) -> Result<Begun<'a>, Full> {
        let lane = &self.lanes[cursor.lane as usize];
        let pos = cursor.pos;
        let room = self.lane_slots();
        let mut overwrote = false;
        if pos - cursor.head >= room || pos >= MAX_LANE_POSITION {
            // ORDERING: Acquire pairs with the consumer's Release store of
            // `head` in `hand_back`: its reads of the slots we are about to
            // reuse happen before our stores into them.
            cursor.head = lane.head.load(Acquire).min(pos);
            if pos >= MAX_LANE_POSITION || (pos - cursor.head >= room && !self.overwrite) {
                lane.dropped
                    .store(lane.dropped.load(Relaxed).saturating_add(1), Relaxed);
                return Err(Full);
            }
            overwrote = pos - cursor.head >= room;
        }
        let slot = self.slot(cursor.lane as usize, pos);
        slot.seq.store(seq_writing(pos), Relaxed);
        // ORDERING: Release fence pairs with the Acquire fence in the
        // consumer's `read_slot`: a consumer that reads any word we store
        // after this (into the slot of an unread event, overwrite-oldest)
        // also sees WRITING(pos) when it re-loads the sequence word, and
        // rejects its read.
        fence(Release);
        Ok(Begun {
            lane,
            slot,
            pos,
            overwrote,
        })
    }

    /// Writes the record of a begun event and publishes it:
    /// [`fill`](Self::fill), then [`publish`](Self::publish).
    #[inline]
    pub fn finish(&self, cursor: &mut LaneCursor, begun: &Begun<'a>, words: &[u64; RECORD_WORDS]) {
        self.fill(begun, words);
        self.publish(cursor, begun);
    }

    /// The first half of [`finish`](Self::finish): stores the record words
    /// and marks the slot `COMMITTED(pos)`. A writer that dies after this
    /// leaves a complete record that the consumer delivers when it takes
    /// the lane back.
    #[inline]
    pub fn fill(&self, begun: &Begun<'a>, words: &[u64; RECORD_WORDS]) {
        for (dst, &w) in begun.slot.words.iter().zip(words.iter()) {
            dst.store(w, Relaxed);
        }
        // ORDERING: Relaxed: a consumer reads it behind the Release store of
        // `tail` in `publish`, or, when the writer died before that store,
        // in `reclaim`, behind the writer's death, which orders all of its
        // stores (see `reclaim`).
        begun.slot.seq.store(seq_committed(begun.pos), Relaxed);
    }

    /// The second half of [`finish`](Self::finish): moves the lane's tail
    /// past the event.
    #[inline]
    pub fn publish(&self, cursor: &mut LaneCursor, begun: &Begun<'a>) {
        // ORDERING: Release pairs with the consumer's Acquire load of `tail`
        // in `read_lane`: the record is visible before its position is.
        begun.lane.tail.store(begun.pos + 1, Release);
        cursor.pos = begun.pos + 1;
    }

    /// Stores who began an event in its record words, so that it can be
    /// attributed if it is never finished. Two-phase events
    /// ([`Ring::claim`](crate::Ring::claim)) do this; the one-call emit path
    /// does not (the consumer knows the lane's holder when it takes a dead
    /// writer's lane back).
    pub fn stamp_identity(&self, begun: &Begun<'a>, who: &Owner) {
        let words = &begun.slot.words;
        // ORDERING: no pair of its own: read by the consumer only once the
        // position is published, behind the Acquire load of `tail`.
        words[W_STAMP].store(begun.pos, Relaxed);
        words[W_PID_TID].store(who.pid as u64 | (who.tid as u64) << 32, Relaxed);
        words[W_MSG_WRITER].store((who.writer as u64) << WRITER_SHIFT, Relaxed);
    }

    /// Gives up a begun event without a record: the slot stays
    /// `WRITING(pos)`, and the consumer counts the position as abandoned.
    pub fn abandon(&self, cursor: &mut LaneCursor, begun: &Begun<'a>) {
        // The same store as publishing (its Release makes what
        // `stamp_identity` stored visible with the position; the WRITING
        // mark already is, through `begin`'s Release fence): the WRITING
        // mark is what the consumer finds below the tail.
        self.publish(cursor, begun);
    }

    /// One whole event at the cursor: [`begin`](Self::begin), `encode(pos)`
    /// for the record words, [`finish`](Self::finish).
    #[inline]
    pub fn write(
        &self,
        cursor: &mut LaneCursor,
        encode: impl FnOnce(u64) -> [u64; RECORD_WORDS],
    ) -> Result<Written, Full> {
        let begun = self.begin(cursor)?;
        self.finish(cursor, &begun, &encode(begun.pos));
        Ok(Written {
            pos: begun.pos,
            overwrote: begun.overwrote,
        })
    }
}
