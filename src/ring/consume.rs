//! The consumer side: reading every lane from its head to its tail,
//! counting each position's outcome, committing, and taking back the lanes
//! of writers whose process is gone.
//!
//! A batch reads lanes round robin (a different first lane each batch) up to
//! the caller's limit; nothing is released until [`ConsumerCore::commit`],
//! which publishes the new counts and heads in the durable state and then
//! stores each lane's `head`, which is what lets writers reuse slots. A
//! consumer killed in between leaves the state ahead of the lanes' `head`
//! words; the next one to attach stores them again.
//!
//! Nothing a writer does can make the consumer wait: a lane whose writer
//! stopped mid-event simply has no more positions to read. When the
//! writer's process is gone, [`ConsumerCore::reclaim_dead`] publishes the
//! position it died in (as delivered if its record was complete, else as
//! abandoned) and frees the lane.

use super::state::{ConsumerState, Counters};
use super::{ring_position, Loss, LossCause, RingRef, MAX_KEPT_LOSSES};
use crate::layout::{
    seq_committed, seq_writing, LANE_RECLAIMING, MAX_LANE_POSITION, NO_WRITER, RECORD_WORDS,
    WRITER_SHIFT, W_MSG_WRITER, W_PID_TID, W_STAMP,
};
use crate::record::Event;
use crate::sync::{fence, Ordering::*};

/// Tells whether the process that took a lane still runs: `(pid,
/// start_time)`, where a start time of 0 means "not known yet" and only the
/// pid can be checked.
pub trait Liveness {
    /// True while the process runs.
    fn is_alive(&mut self, pid: u32, start_time: u64) -> bool;
}

impl<F: FnMut(u32, u64) -> bool> Liveness for F {
    fn is_alive(&mut self, pid: u32, start_time: u64) -> bool {
        self(pid, start_time)
    }
}

/// The consumer's stored state does not fit the ring (damaged or hostile
/// file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InconsistentState {
    /// What does not fit.
    pub what: String,
}

/// A lane found holding positions that no protocol step produces, and
/// reset: its tail was moved back to the consumer's head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anomaly {
    /// The lane.
    pub lane: u32,
    /// The consumer's read position in it.
    pub head: u64,
    /// The tail found.
    pub tail: u64,
}

/// Anomalies kept between [`ConsumerCore::take_anomalies`] calls.
const MAX_KEPT_ANOMALIES: usize = 64;

/// Outcome counts of one batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    received: u64,
    abandoned: u64,
    torn: u64,
    overwritten: u64,
    repairs: u64,
}

impl Tally {
    fn count(&mut self, cause: LossCause, n: u64) {
        let c = match cause {
            LossCause::Abandoned => &mut self.abandoned,
            LossCause::Torn => &mut self.torn,
            LossCause::Overwritten => &mut self.overwritten,
        };
        *c += n;
    }
}

/// A position published by [`ConsumerCore::reclaim_dead`] for a writer that
/// died mid-event: who it was, for the loss report.
#[derive(Clone, Copy, Debug)]
struct Reclaimed {
    lane: usize,
    pos: u64,
    pid: u32,
    writer: u16,
}

/// The consumer side of the protocol, without any I/O: the caller supplies
/// process liveness. At most one exists per ring at a time (the file layer
/// enforces it with a lock).
pub struct ConsumerCore {
    state: ConsumerState,
    pub(super) version: u64,
    /// End of the current batch in each lane (its head when nothing read).
    ends: Vec<u64>,
    events: Vec<Event>,
    tally: Tally,
    batch_losses: Vec<Loss>,
    batch_untold: u64,
    losses: Vec<Loss>,
    losses_untold: u64,
    next_lane: usize,
    reclaimed: Vec<Reclaimed>,
    anomalies: Vec<Anomaly>,
    unresolved: (u64, u64),
}

impl ConsumerCore {
    /// Takes over the ring's consumer state, finishing a commit a previous
    /// consumer published but did not finish handing back to the writers.
    pub fn attach(ring: RingRef<'_>) -> Result<Self, InconsistentState> {
        let (version, state) = ConsumerState::load(&ring).ok_or_else(|| InconsistentState {
            what: "the consumer state kept changing while read".into(),
        })?;
        if !state.is_consistent() {
            return Err(InconsistentState {
                what: format!(
                    "outcome counters (received {}, abandoned {}, torn {}, overwritten {}) \
                     do not add up to the lanes' read positions (sum {:?})",
                    state.received,
                    state.abandoned,
                    state.torn,
                    state.overwritten,
                    state.resolved()
                ),
            });
        }
        for (lane, &head) in ring.lanes.iter().zip(state.heads.iter()) {
            if lane.head.load(Relaxed) != head {
                // ORDERING: Release pairs with the writers' Acquire load of
                // `head` in `begin`, as in `commit`.
                lane.head.store(head, Release);
            }
        }
        Ok(ConsumerCore {
            ends: state.heads.clone(),
            state,
            version,
            events: Vec::new(),
            tally: Tally::default(),
            batch_losses: Vec::new(),
            batch_untold: 0,
            losses: Vec::new(),
            losses_untold: 0,
            next_lane: 0,
            reclaimed: Vec::new(),
            anomalies: Vec::new(),
            unresolved: (0, 0),
        })
    }

    /// The events of the last [`read`](ConsumerCore::read).
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Forgets the last read without releasing anything (it will be read
    /// again).
    pub fn discard(&mut self) {
        self.events.clear();
        self.batch_losses.clear();
        self.batch_untold = 0;
        self.tally = Tally::default();
        self.ends.clone_from(&self.state.heads);
    }

    /// The durable state as last published.
    pub fn state(&self) -> &ConsumerState {
        &self.state
    }

    /// Reads up to `limit` positions, lanes round robin, and returns the
    /// events that are ready. Nothing is released until
    /// [`commit`](ConsumerCore::commit); calling `read` again without
    /// committing reads the same positions again.
    pub fn read(&mut self, ring: RingRef<'_>, limit: usize) -> &[Event] {
        self.discard();
        let lanes = ring.lanes.len();
        let mut budget = limit as u64;
        for k in 0..lanes {
            if budget == 0 {
                break;
            }
            let l = (self.next_lane + k) & (lanes - 1);
            budget -= self.read_lane(ring, l, budget);
        }
        self.next_lane = (self.next_lane + 1) & (lanes - 1);
        &self.events
    }

    /// Reads lane `l` from its head, at most `budget` slots; returns the
    /// slots read.
    fn read_lane(&mut self, ring: RingRef<'_>, l: usize, budget: u64) -> u64 {
        let room = ring.lane_slots();
        let head = self.state.heads[l];
        // ORDERING: Acquire pairs with the writer's Release store of `tail`
        // in `publish` (or `abandon`): every record below it is visible. A
        // tail stored by our own `reclaim` is ordered by program order.
        let tail = ring.lanes[l].tail.load(Acquire);
        if tail == head {
            return 0;
        }
        if tail < head || tail > MAX_LANE_POSITION || (!ring.overwrite && tail - head > room) {
            self.repair(ring, l, head, tail);
            return 0;
        }
        let mut pos = head;
        if tail - pos > room {
            // Overwrite-oldest: the writer lapped the consumer; the
            // positions it overwrote are gone.
            let lost = tail - room - pos;
            self.lose(ring, l, pos, lost, LossCause::Overwritten, None);
            pos = tail - room;
        }
        let end = tail.min(pos.saturating_add(budget));
        let read = end - pos;
        while pos < end {
            self.read_slot(ring, l, pos);
            pos += 1;
        }
        self.ends[l] = pos;
        read
    }

    /// Reads position `pos` of lane `l`, below the lane's tail.
    #[inline]
    fn read_slot(&mut self, ring: RingRef<'_>, l: usize, pos: u64) {
        let slot = ring.slot(l, pos);
        let mut words = [0u64; RECORD_WORDS];
        for (w, src) in words.iter_mut().zip(slot.words.iter()) {
            *w = src.load(Relaxed);
        }
        // ORDERING: Acquire fence pairs with the Release fence a writer
        // issues after marking a slot WRITING (`begin`): if any word above
        // came from a writer of a later lap (overwrite-oldest), the load
        // below sees that writer's mark and the read is rejected.
        fence(Acquire);
        let seq = slot.seq.load(Relaxed);
        let cause = if seq == seq_committed(pos) {
            match Event::decode(pos, &words) {
                Ok(mut event) => {
                    event.position = ring_position(l, pos, ring.lanes.len());
                    event.lane = l as u16;
                    self.events.push(event);
                    self.tally.received += 1;
                    return;
                }
                Err(_) => LossCause::Torn,
            }
        } else if seq == seq_writing(pos) {
            // Published by `reclaim` (or a writer's `abandon`): the writer
            // began this event and never finished it. A two-phase writer
            // stamped who it was.
            let who = if words[W_STAMP] == pos && words[W_PID_TID] as u32 != 0 {
                Some((
                    words[W_PID_TID] as u32,
                    (words[W_MSG_WRITER] >> WRITER_SHIFT) as u16,
                ))
            } else {
                self.reclaimed
                    .iter()
                    .find(|r| r.lane == l && r.pos == pos)
                    .map(|r| (r.pid, r.writer))
            };
            self.lose(ring, l, pos, 1, LossCause::Abandoned, who);
            return;
        } else if ring.overwrite && seq > seq_committed(pos) {
            LossCause::Overwritten
        } else {
            LossCause::Torn
        };
        self.lose(ring, l, pos, 1, cause, None);
    }

    /// Counts `n` lost positions of lane `l` from `pos`, keeping the first
    /// [`MAX_KEPT_LOSSES`] of the batch for the caller. `who` names their
    /// writer when known; overwritten events are charged to the lane's
    /// holder.
    fn lose(
        &mut self,
        ring: RingRef<'_>,
        l: usize,
        pos: u64,
        n: u64,
        cause: LossCause,
        who: Option<(u32, u16)>,
    ) {
        self.tally.count(cause, n);
        let keep = (MAX_KEPT_LOSSES - self.batch_losses.len()).min(n as usize);
        self.batch_untold += n - keep as u64;
        let (mut pid, mut writer) = who.unwrap_or((0, NO_WRITER));
        if who.is_none() && cause == LossCause::Overwritten {
            // The lane's current writer is the one whose events it lapped
            // (a lane taken by one thread at a time).
            let lane = &ring.lanes[l];
            let owner = lane.owner.load(Relaxed);
            if owner != 0 && owner != LANE_RECLAIMING {
                pid = (owner >> 32) as u32;
                writer = lane.owner_writer.load(Relaxed) as u16;
            }
        }
        let lanes = ring.lanes.len();
        let before_event = self.events.len() as u32;
        for i in 0..keep as u64 {
            self.batch_losses.push(Loss {
                position: ring_position(l, pos + i, lanes),
                cause,
                pid,
                writer,
                before_event,
            });
        }
    }

    /// Resets lane `l`, whose tail no protocol step can produce, to the
    /// consumer's head, and reports it once.
    fn repair(&mut self, ring: RingRef<'_>, l: usize, head: u64, tail: u64) {
        self.tally.repairs += 1;
        if self.anomalies.len() < MAX_KEPT_ANOMALIES {
            self.anomalies.push(Anomaly {
                lane: l as u32,
                head,
                tail,
            });
        }
        // ORDERING: no pair: a damaged file has no writer to order against;
        // an honest writer never leaves such a tail.
        ring.lanes[l].tail.store(head, Relaxed);
    }

    /// Lanes found damaged and reset since the last call.
    pub fn take_anomalies(&mut self) -> Vec<Anomaly> {
        std::mem::take(&mut self.anomalies)
    }

    /// Adds name ids and message texts found unresolvable while processing
    /// the current batch; counted with it at [`commit`](Self::commit).
    pub fn note_unresolved(&mut self, names: u64, messages: u64) {
        self.unresolved.0 += names;
        self.unresolved.1 += messages;
    }

    /// Losses found by the last [`read`](ConsumerCore::read), in lane
    /// order, each with its writer when the lane still tells, and how many
    /// more were found beyond [`MAX_KEPT_LOSSES`]. Counted by its
    /// [`commit`](ConsumerCore::commit).
    pub fn batch_losses(&self) -> (&[Loss], u64) {
        (&self.batch_losses, self.batch_untold)
    }

    /// Losses found by the last [`read`](ConsumerCore::read) that its
    /// commit will count.
    pub fn pending_losses(&self) -> &[Loss] {
        &self.batch_losses
    }

    /// Takes the losses of the batches committed since the last call, and
    /// how many more were lost beyond what is kept.
    pub fn take_losses(&mut self) -> (Vec<Loss>, u64) {
        let untold = std::mem::take(&mut self.losses_untold);
        (std::mem::take(&mut self.losses), untold)
    }

    /// Releases the batch returned by the last [`read`](ConsumerCore::read):
    /// its outcomes are counted ([`publish_counts`](Self::publish_counts))
    /// and its slots handed back to the writers
    /// ([`hand_back`](Self::hand_back)).
    pub fn commit(&mut self, ring: RingRef<'_>) {
        if let Some(previous) = self.publish_counts(ring) {
            self.hand_back(ring, &previous);
        }
    }

    /// The first half of [`commit`](Self::commit): publishes the batch's
    /// outcomes and the new read positions in the durable state. Returns the
    /// previous read positions, for [`hand_back`](Self::hand_back), or
    /// `None` when the batch changed nothing. A consumer that dies after
    /// this and before `hand_back` leaves lanes whose `head` words the next
    /// consumer stores when it attaches.
    pub fn publish_counts(&mut self, ring: RingRef<'_>) -> Option<Vec<u64>> {
        let moved = self.ends != self.state.heads;
        if !moved && self.tally == Tally::default() && self.unresolved == (0, 0) {
            return None;
        }
        let mut next = self.state.clone();
        next.heads.clone_from(&self.ends);
        next.received += self.tally.received;
        next.abandoned += self.tally.abandoned;
        next.torn += self.tally.torn;
        next.overwritten += self.tally.overwritten;
        // Not tied to positions, so not covered by the consistency check on
        // attach: a damaged file may hold anything there.
        next.repairs = next.repairs.saturating_add(self.tally.repairs);
        next.names_unresolved = next.names_unresolved.saturating_add(self.unresolved.0);
        next.messages_unread = next.messages_unread.saturating_add(self.unresolved.1);
        // Count first, then hand the slots back: a consumer killed in
        // between leaves heads that the next one stores again on attach.
        next.publish(&ring, &mut self.version);
        let previous = std::mem::replace(&mut self.state, next);
        self.unresolved = (0, 0);
        self.reclaimed.retain(|r| r.pos >= self.state.heads[r.lane]);
        let room = MAX_KEPT_LOSSES.saturating_sub(self.losses.len());
        let kept = self.batch_losses.len().min(room);
        self.losses.extend(self.batch_losses.drain(..kept));
        self.losses_untold += self.batch_losses.len() as u64 + self.batch_untold;
        self.discard();
        Some(previous.heads)
    }

    /// The second half of [`commit`](Self::commit): stores each lane's new
    /// `head`, which lets its writer reuse the slots read.
    pub fn hand_back(&mut self, ring: RingRef<'_>, previous: &[u64]) {
        for (l, (&head, &old)) in self.state.heads.iter().zip(previous).enumerate() {
            if head != old {
                // ORDERING: Release pairs with the writer's Acquire load of
                // `head` in `begin`: our reads of these slots happen before
                // the writer reuses them.
                ring.lanes[l].head.store(head, Release);
            }
        }
    }

    /// Takes back the lanes of writers whose process is gone: the position
    /// a writer died in is published (delivered if its record is complete,
    /// abandoned otherwise) and the lane is freed. Also finishes a take-back
    /// that a previous consumer began. Returns how many lanes were freed.
    pub fn reclaim_dead(&mut self, ring: RingRef<'_>, alive: &mut dyn Liveness) -> usize {
        let mut freed = 0;
        for (l, lane) in ring.lanes.iter().enumerate() {
            // ORDERING: Acquire pairs with the Release store of 0 that the
            // holder's CAS in `try_take` replaced (`release_lane`'s, or our
            // own in `reclaim`): the CAS continues that store's release
            // sequence, so with the token we see the previous holder's
            // `owner_start` cleared, and then the holder's or 0, never the
            // previous holder's start time next to this holder's pid.
            let owner = lane.owner.load(Acquire);
            if owner == 0 {
                continue;
            }
            let (pid, writer) = if owner == LANE_RECLAIMING {
                (0, NO_WRITER)
            } else {
                ((owner >> 32) as u32, lane.owner_writer.load(Relaxed) as u16)
            };
            if owner != LANE_RECLAIMING {
                if alive.is_alive(pid, lane.owner_start.load(Relaxed)) {
                    continue;
                }
                // ORDERING: no pair: the process that held the lane is gone,
                // and what it stored is ordered by its death (see `reclaim`).
                if lane
                    .owner
                    .compare_exchange(owner, LANE_RECLAIMING, Relaxed, Relaxed)
                    .is_err()
                {
                    continue;
                }
            }
            self.reclaim(ring, l, pid, writer);
            freed += 1;
        }
        freed
    }

    /// Publishes the position a dead writer stopped in, then frees lane `l`.
    ///
    /// The loads here read what a writer stored before it died, and need
    /// no Acquire of their own: the liveness check said the process is gone,
    /// and the kernel reports a process gone only once its threads have
    /// stopped, which orders every store they made before the report. The
    /// protocol cannot do without that ordering anyway: a writer killed
    /// mid-record leaves stores after its last Release (its WRITING mark,
    /// part of the words) that nothing else it did could order, and that
    /// must not land on the slot once the lane is reused. (The same holds
    /// when we finish a take-back begun by a consumer that died: the file
    /// lock we hold was released by its death.)
    fn reclaim(&mut self, ring: RingRef<'_>, l: usize, pid: u32, writer: u16) {
        let lane = &ring.lanes[l];
        // ORDERING: Relaxed: ordered by the writer's death (see above).
        let tail = lane.tail.load(Relaxed);
        if tail < MAX_LANE_POSITION {
            // ORDERING: Relaxed, as above: a complete record is seen whole
            // because the writer is gone, not by this load.
            let seq = ring.slot(l, tail).seq.load(Relaxed);
            if seq == seq_committed(tail) || seq == seq_writing(tail) {
                if seq == seq_writing(tail) {
                    self.reclaimed.push(Reclaimed {
                        lane: l,
                        pos: tail,
                        pid,
                        writer,
                    });
                }
                // ORDERING: Relaxed: read by ourselves (program order), by
                // the lane's next holder behind the Release store of
                // `owner` below, and by a consumer that takes over behind
                // the file lock.
                lane.tail.store(tail + 1, Relaxed);
            }
        }
        lane.owner_start.store(0, Relaxed);
        // ORDERING: Release pairs with the next holder's Acquire CAS in
        // `try_take`: it starts at the tail stored above.
        lane.owner.store(0, Release);
    }

    /// Counters as of now: the consumer's own, with the lanes' writer-side
    /// words.
    pub fn counters(&self, ring: RingRef<'_>) -> Counters {
        Counters::from_state(&ring, &self.state)
    }

    /// Each lane's tail as of now: pass it to
    /// [`caught_up`](Self::caught_up) later to tell whether everything
    /// written by then is resolved.
    pub fn tails(&self, ring: RingRef<'_>) -> Vec<u64> {
        // ORDERING: no pair: a progress mark, compared with heads only.
        ring.lanes.iter().map(|l| l.tail.load(Relaxed)).collect()
    }

    /// True when every lane's committed head reached the mark from
    /// [`tails`](Self::tails) (or the lane's tail now, should a repair have
    /// moved it back).
    pub fn caught_up(&self, ring: RingRef<'_>, marks: &[u64]) -> bool {
        let tails = ring.lanes.iter().map(|l| l.tail.load(Relaxed));
        self.state
            .heads
            .iter()
            .zip(marks)
            .zip(tails)
            .all(|((&h, &m), t)| h >= m.min(t))
    }
}
