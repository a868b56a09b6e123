//! The ring protocol: how writers claim and commit slots and how the one
//! consumer reads, skips and releases them.
//!
//! Everything here works on a [`RingRef`], a view of the ring's shared
//! structures. In production the view points into the mapped file; under
//! `--cfg profilis_loom` it points into heap structures built from loom's
//! atomics, so the model checker runs exactly this code.
//!
//! Slot sequence values (see FORMAT.md, "Slot state machine"):
//! `FREE(p) = 2p` means the slot waits for the writer of position `p`;
//! `COMMITTED(p) = 2p + 1` means it holds that writer's event. The consumer
//! moves a slot from `COMMITTED(p)` (or, after the stall timeout, from a
//! claimed-but-uncommitted `FREE(p)`) to `FREE(p + capacity)`.

use crate::layout::{
    seq_committed, seq_free, Header, MsgSlot, Slot, StrEntry, WriterEntry, RECORD_WORDS,
    STATE_ABANDONED, STATE_HEAD, STATE_OVERWRITTEN, STATE_PENDING_TO, STATE_RECEIVED, STATE_TORN,
    STATE_WORDS,
};
use crate::record::Event;
use crate::sync::{fence, AtomicU64, Ordering::*};

/// A view of a ring's shared structures.
#[derive(Clone, Copy)]
pub struct RingRef<'a> {
    /// The header.
    pub header: &'a Header,
    /// Event slots; the length is the capacity, a power of two.
    pub slots: &'a [Slot],
    /// String index.
    pub strings: &'a [StrEntry],
    /// String arena, as words.
    pub arena: &'a [AtomicU64],
    /// Message slots.
    pub messages: &'a [MsgSlot],
    /// Writer table.
    pub writers: &'a [WriterEntry],
    /// True when the ring overwrites the oldest event when full.
    pub overwrite: bool,
}

/// The writer could not place an event because the ring is full (or, for
/// overwrite-oldest, because the oldest slot is still being written).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// The consumer skipped this claim after the stall timeout; the event is
/// counted as abandoned and was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Late;

impl<'a> RingRef<'a> {
    /// Number of slots.
    #[inline]
    pub fn capacity(&self) -> u64 {
        self.slots.len() as u64
    }

    #[inline]
    fn slot(&self, pos: u64) -> &'a Slot {
        // Capacity is a power of two (checked on attach), so the mask is exact.
        &self.slots[(pos & (self.capacity() - 1)) as usize]
    }

    /// Claims the next position. Never blocks: returns [`Full`] (and counts
    /// the drop) when the slot for the next position still holds an event of
    /// the previous lap.
    #[inline]
    pub fn try_claim(&self) -> Result<u64, Full> {
        let cap = self.capacity();
        let mut pos = self.header.tail.load(Relaxed);
        loop {
            let slot = self.slot(pos);
            // ORDERING: Acquire pairs with the consumer's AcqRel release or
            // skip CAS (and an overwriting writer's steal CAS) that made this
            // slot FREE(pos): every read of the previous lap happens before
            // our writes into the slot.
            let seq = slot.seq.load(Acquire);
            let want = seq_free(pos);
            if seq == want {
                // The tail CAS only decides who owns `pos`; the data is
                // ordered by the slot's sequence word, so Relaxed suffices.
                match self
                    .header
                    .tail
                    .compare_exchange_weak(pos, pos + 1, Relaxed, Relaxed)
                {
                    Ok(_) => {
                        // ORDERING: Release fence pairs with the Acquire fence
                        // in `read_record`: if the consumer sees any word we
                        // write below, it also sees the sequence change that
                        // gave us the slot (a steal) and rejects its read.
                        fence(Release);
                        return Ok(pos);
                    }
                    Err(actual) => pos = actual,
                }
            } else if seq < want {
                // The slot still holds lap pos - cap.
                if self.overwrite && pos >= cap && seq == seq_committed(pos - cap) {
                    // Overwrite-oldest: take the unread event's slot. The
                    // consumer counts the position as overwritten when it
                    // walks past it; the victim's writer entry is charged
                    // here, the only place that still knows whose it was.
                    // The record cannot change before the steal CAS, so the
                    // index read here belongs to the event stolen.
                    let victim = (slot.words[12].load(Relaxed) >> 32) as u16;
                    // ORDERING: Acquire pairs with the committing writer's
                    // Release; AcqRel so our later writes follow the steal.
                    if slot
                        .seq
                        .compare_exchange(seq, seq_free(pos), AcqRel, Relaxed)
                        .is_ok()
                    {
                        if let Some(entry) = self.writers.get(victim as usize) {
                            entry.overwritten.fetch_add(1, Relaxed);
                        }
                    }
                    continue;
                }
                self.header.dropped_full.fetch_add(1, Relaxed);
                return Err(Full);
            } else {
                // Another writer claimed `pos` already; catch up with the tail.
                let now = self.header.tail.load(Relaxed);
                if now == pos {
                    // The slot claims a later lap than the tail allows: the
                    // file was tampered with. Refuse rather than spin.
                    self.header.dropped_full.fetch_add(1, Relaxed);
                    return Err(Full);
                }
                pos = now;
            }
        }
    }

    /// Writes the record of a claimed position and commits it. Returns
    /// [`Late`] when the consumer already skipped the claim: the event is then
    /// counted as abandoned, and if our words landed in a slot reused by a
    /// later position, the consumer detects that record as torn.
    #[inline]
    pub fn commit(&self, pos: u64, words: &[u64; RECORD_WORDS]) -> Result<(), Late> {
        let slot = self.slot(pos);
        for (dst, &w) in slot.words.iter().zip(words.iter()) {
            dst.store(w, Relaxed);
        }
        // ORDERING: Release pairs with the consumer's Acquire load of `seq`
        // in `read`: the record words are visible before COMMITTED(pos) is.
        // A CAS, not a store, so a claim the consumer skipped cannot be
        // resurrected.
        slot.seq
            .compare_exchange(seq_free(pos), seq_committed(pos), Release, Relaxed)
            .map(|_| ())
            .map_err(|_| Late)
    }

    /// Writes the identity words of a claimed position (stamp, pid and tid,
    /// writer index) ahead of the record, so that a claim its writer never
    /// commits can still be attributed when the consumer skips it. Only the
    /// writer that claimed `pos` calls this, before [`commit`](Self::commit),
    /// which overwrites every word anyway.
    pub fn stamp_claim(&self, pos: u64, pid: u32, tid: u32, writer: u16) {
        let words = &self.slot(pos).words;
        // ORDERING: no pair. The consumer reads these words only after the
        // stall timeout, best effort: word 0 holding `pos` tells a stamped
        // slot from an older record, and an unstamped one is reported
        // without a writer.
        words[0].store(pos, Relaxed);
        words[3].store(pid as u64 | (tid as u64) << 32, Relaxed);
        words[12].store((writer as u64) << 32, Relaxed);
    }

    /// Reads the record words of a slot that was seen as `COMMITTED(pos)` with
    /// sequence value `seq`. Returns `None` when the slot changed during the
    /// read (an overwriting writer stole it).
    #[inline]
    fn read_record(&self, pos: u64, seq: u64) -> Option<[u64; RECORD_WORDS]> {
        let slot = self.slot(pos);
        let mut words = [0u64; RECORD_WORDS];
        for (w, src) in words.iter_mut().zip(slot.words.iter()) {
            *w = src.load(Relaxed);
        }
        // ORDERING: Acquire fence pairs with the Release fence a writer
        // issues after claiming (see `try_claim`): if any word above came
        // from a writer that took the slot after `seq`, the reload below sees
        // that writer's sequence change.
        fence(Acquire);
        (slot.seq.load(Relaxed) == seq).then_some(words)
    }
}

/// Counters describing everything that happened to a ring's events.
///
/// `received + dropped + abandoned + torn + in_flight == claimed` holds for
/// every snapshot; once the ring is drained `in_flight` is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Emit attempts: positions claimed plus events refused for lack of room.
    pub claimed: u64,
    /// Events delivered to the consumer.
    pub received: u64,
    /// Events lost to a full ring: refused (`dropped_full`) or overwritten.
    pub dropped: u64,
    /// Claims the consumer skipped after the stall timeout (writer died or
    /// stalled between claim and commit).
    pub abandoned: u64,
    /// Committed records that failed validation (a late writer's scribble,
    /// or a damaged file).
    pub torn: u64,
    /// Part of `dropped`: unread events overwritten (overwrite-oldest).
    pub overwritten: u64,
    /// Part of `dropped`: events refused because the ring was full.
    pub dropped_full: u64,
    /// Positions claimed that the consumer has not resolved yet.
    pub in_flight: u64,
    /// The consumer's read position.
    pub head: u64,
    /// The writers' claim position.
    pub tail: u64,
}

impl Counters {
    /// True when `received + dropped + abandoned + torn + in_flight == claimed`.
    pub fn identity_holds(&self) -> bool {
        self.received + self.dropped + self.abandoned + self.torn + self.in_flight == self.claimed
    }
}

/// The consumer's durable state, stored in the header in two copies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsumerState {
    /// Read position: every position below it is resolved and released.
    pub head: u64,
    /// End of a batch whose outcomes are counted but whose slots may not all
    /// be released yet.
    pub pending_to: u64,
    /// Events delivered.
    pub received: u64,
    /// Claims skipped after the stall timeout.
    pub abandoned: u64,
    /// Records rejected by validation.
    pub torn: u64,
    /// Positions lost to overwrite-oldest.
    pub overwritten: u64,
}

impl ConsumerState {
    fn to_words(self) -> [u64; STATE_WORDS] {
        let mut w = [0; STATE_WORDS];
        w[STATE_HEAD] = self.head;
        w[STATE_PENDING_TO] = self.pending_to;
        w[STATE_RECEIVED] = self.received;
        w[STATE_ABANDONED] = self.abandoned;
        w[STATE_TORN] = self.torn;
        w[STATE_OVERWRITTEN] = self.overwritten;
        w
    }

    fn from_words(w: [u64; STATE_WORDS]) -> Self {
        ConsumerState {
            head: w[STATE_HEAD],
            pending_to: w[STATE_PENDING_TO],
            received: w[STATE_RECEIVED],
            abandoned: w[STATE_ABANDONED],
            torn: w[STATE_TORN],
            overwritten: w[STATE_OVERWRITTEN],
        }
    }

    /// Loads the current copy from the header.
    pub fn load(header: &Header) -> (u64, ConsumerState) {
        // ORDERING: Acquire pairs with the Release store of `state_seq` in
        // `publish`: the copy it selects is complete.
        let version = header.state_seq.load(Acquire);
        let copy = &header.state[(version & 1) as usize];
        let mut w = [0; STATE_WORDS];
        for (dst, src) in w.iter_mut().zip(copy.iter()) {
            *dst = src.load(Relaxed);
        }
        (version, ConsumerState::from_words(w))
    }

    /// Writes this state into the spare copy and makes it current. A consumer
    /// killed part-way leaves the previous copy current.
    fn publish(self, header: &Header, version: &mut u64) {
        let next = *version + 1;
        let copy = &header.state[(next & 1) as usize];
        for (dst, w) in copy.iter().zip(self.to_words()) {
            dst.store(w, Relaxed);
        }
        // ORDERING: Release pairs with the Acquire load in `load`: whoever
        // sees version `next` sees the words written above.
        header.state_seq.store(next, Release);
        *version = next;
    }
}

/// The consumer's stored state does not fit the ring (damaged or hostile
/// file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InconsistentState {
    /// Read position found.
    pub head: u64,
    /// Pending end found.
    pub pending_to: u64,
    /// Claim position found.
    pub tail: u64,
}

/// Why a position produced no event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LossCause {
    /// Skipped after the stall timeout: the writer died or stalled between
    /// claim and commit.
    Abandoned,
    /// The record failed validation.
    Torn,
    /// Overwritten before it was read (overwrite-oldest).
    Overwritten,
}

/// One position that produced no event, with the writer it came from when
/// the slot still tells (0 / [`NO_WRITER`](crate::layout::NO_WRITER) when it
/// does not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loss {
    /// Ring position.
    pub position: u64,
    /// What happened.
    pub cause: LossCause,
    /// pid of the writer, 0 if unknown.
    pub pid: u32,
    /// Writer-table index, `NO_WRITER` if unknown.
    pub writer: u16,
}

/// Losses kept for the caller between [`ConsumerCore::take_losses`] calls;
/// beyond this they are only counted (the counters stay exact).
pub const MAX_KEPT_LOSSES: usize = 65536;

/// Outcome counts of one batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    received: u64,
    abandoned: u64,
    torn: u64,
    overwritten: u64,
}

/// The consumer side of the protocol, without any I/O: the caller supplies
/// the clock. At most one exists per ring at a time (the file layer enforces
/// it with a lock).
pub struct ConsumerCore {
    state: ConsumerState,
    version: u64,
    stall_timeout_ns: u64,
    /// Position found claimed but uncommitted, and when it was first seen.
    stalled: Option<(u64, u64)>,
    events: Vec<Event>,
    releases: Vec<(u64, u64)>,
    batch_end: u64,
    tally: Tally,
    batch_losses: Vec<Loss>,
    losses: Vec<Loss>,
    losses_untold: u64,
}

impl ConsumerCore {
    /// Takes over the ring's consumer state, finishing a batch a previous
    /// consumer counted but did not finish releasing.
    pub fn attach(ring: RingRef<'_>, stall_timeout_ns: u64) -> Result<Self, InconsistentState> {
        let (version, state) = ConsumerState::load(ring.header);
        let tail = ring.header.tail.load(Relaxed);
        if state.head > state.pending_to
            || state.pending_to > tail
            || state.pending_to - state.head > ring.capacity()
        {
            return Err(InconsistentState {
                head: state.head,
                pending_to: state.pending_to,
                tail,
            });
        }
        let mut core = ConsumerCore {
            state,
            version,
            stall_timeout_ns,
            stalled: None,
            events: Vec::new(),
            releases: Vec::new(),
            batch_end: state.head,
            tally: Tally::default(),
            batch_losses: Vec::new(),
            losses: Vec::new(),
            losses_untold: 0,
        };
        if state.pending_to > state.head {
            // The previous consumer delivered and counted [head, pending_to)
            // and died while releasing it: release what is left.
            let cap = ring.capacity();
            for pos in state.head..state.pending_to {
                let seq = ring.slot(pos).seq.load(Relaxed);
                if seq < seq_free(pos + cap) && seq != seq_free(pos) {
                    release(ring, pos, seq);
                }
            }
            core.state.head = state.pending_to;
            core.state.publish(ring.header, &mut core.version);
            core.batch_end = core.state.head;
        }
        Ok(core)
    }

    /// The events of the last [`read`](ConsumerCore::read).
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Forgets the last read without releasing anything (it will be read
    /// again).
    pub fn discard(&mut self) {
        self.events.clear();
        self.releases.clear();
        self.batch_losses.clear();
        self.tally = Tally::default();
        self.batch_end = self.state.head;
    }

    /// The durable state as last published.
    pub fn state(&self) -> ConsumerState {
        self.state
    }

    /// Scans up to `limit` positions (and at most one lap, `capacity`) from
    /// the read position and returns the events that are ready. Nothing is released until [`commit`]; calling
    /// `read` again without committing re-reads the same positions.
    ///
    /// A claim still uncommitted `stall_timeout_ns` after it was first seen
    /// at the read position is skipped and counted as abandoned right away.
    ///
    /// [`commit`]: ConsumerCore::commit
    pub fn read(&mut self, ring: RingRef<'_>, now_ns: u64, limit: usize) -> &[Event] {
        self.events.clear();
        self.releases.clear();
        self.batch_losses.clear();
        self.tally = Tally::default();
        let cap = ring.capacity();
        let mut pos = self.state.head;
        // One lap at most: further on, a slot would hold a position of this
        // very batch, which only `commit` releases (freeing or skipping it
        // here would lose that event if the consumer died before commit).
        // It also means a slot is never looked at twice in one batch, so no
        // load below can be older than what this batch already saw.
        let limit = (limit as u64).min(cap);
        // The claim position as last seen; reloaded only when the read
        // catches up with it.
        let mut tail = ring.header.tail.load(Relaxed);
        while pos - self.state.head < limit {
            let slot = ring.slot(pos);
            // ORDERING: Acquire pairs with the writer's Release CAS in
            // `commit`: the record words are visible once COMMITTED is.
            let seq = slot.seq.load(Acquire);
            if seq == seq_committed(pos) && pos >= tail {
                // ORDERING: no pair of its own. The writer of `pos` moved the
                // tail past it before its Release commit, which the Acquire
                // load of `seq` above saw, so this reload sees that tail.
                tail = ring.header.tail.load(Relaxed);
                if pos >= tail {
                    // Committed but never claimed: a damaged file. Delivering
                    // it would move the read position past the claim position
                    // (and the identity off); repair it like any unclaimed
                    // slot holding a value no protocol step writes.
                    repair_unclaimed(ring, pos, seq);
                    break;
                }
            }
            if seq == seq_committed(pos) {
                match ring.read_record(pos, seq) {
                    Some(words) => {
                        match Event::decode(pos, &words) {
                            Ok(event) => {
                                self.events.push(event);
                                self.tally.received += 1;
                            }
                            Err(_) => {
                                self.tally.torn += 1;
                                self.batch_losses.push(unknown_loss(pos, LossCause::Torn));
                            }
                        }
                        self.releases.push((pos, seq));
                    }
                    // Stolen by an overwriting writer while we read.
                    None => {
                        self.tally.overwritten += 1;
                        self.batch_losses
                            .push(unknown_loss(pos, LossCause::Overwritten));
                    }
                }
            } else if seq == seq_free(pos) {
                if ring.header.tail.load(Relaxed) <= pos {
                    break; // nothing claimed yet: the ring is drained
                }
                // Claimed, not committed. Skips happen only at the read
                // position, so finish the batch before it first.
                if pos != self.state.head {
                    break;
                }
                match self.stalled {
                    Some((at, since)) if at == pos => {
                        if now_ns.saturating_sub(since) < self.stall_timeout_ns {
                            break;
                        }
                        if self.skip(ring, pos) {
                            pos += 1;
                        }
                        // On a lost race the writer committed: look again.
                        continue;
                    }
                    _ => {
                        self.stalled = Some((pos, now_ns));
                        break;
                    }
                }
            } else if seq >= seq_free(pos + cap) && ring.header.tail.load(Relaxed) > pos {
                // Resolved without us: an overwriting writer took the slot, or
                // (drop-newest) a previous consumer skipped the claim and died
                // before recording it.
                let cause = if ring.overwrite {
                    self.tally.overwritten += 1;
                    LossCause::Overwritten
                } else {
                    self.tally.abandoned += 1;
                    LossCause::Abandoned
                };
                self.batch_losses.push(unknown_loss(pos, cause));
            } else if ring.header.tail.load(Relaxed) <= pos {
                // Unclaimed slot with a value no protocol step writes: repair
                // it so writers can use it again, and stop.
                repair_unclaimed(ring, pos, seq);
                break;
            } else {
                // A claimed position whose slot holds nonsense: damaged file.
                self.tally.torn += 1;
                self.batch_losses.push(unknown_loss(pos, LossCause::Torn));
                self.releases.push((pos, seq));
            }
            pos += 1;
        }
        self.batch_end = pos;
        &self.events
    }

    /// Skips the claimed-but-uncommitted position at the read position.
    /// Returns false when the writer committed first.
    fn skip(&mut self, ring: RingRef<'_>, pos: u64) -> bool {
        debug_assert_eq!(pos, self.state.head);
        let slot = ring.slot(pos);
        // ORDERING: AcqRel; Release pairs with the Acquire load in
        // `try_claim` of the writer of pos + capacity. The CAS fails if the
        // late writer's commit CAS came first, so exactly one of the two wins.
        if slot
            .seq
            .compare_exchange(
                seq_free(pos),
                seq_free(pos + ring.capacity()),
                AcqRel,
                Relaxed,
            )
            .is_err()
        {
            return false;
        }
        self.stalled = None;
        self.state.head = pos + 1;
        self.state.pending_to = pos + 1;
        self.state.abandoned += 1;
        self.state.publish(ring.header, &mut self.version);
        // Whatever the writer got to write before it stopped: if the stamp is
        // ours, the identity words after it are likely its own.
        let words = &slot.words;
        let mut loss = unknown_loss(pos, LossCause::Abandoned);
        let pid = words[3].load(Relaxed) as u32;
        if words[0].load(Relaxed) == pos && pid != 0 {
            loss.pid = pid;
            loss.writer = (words[12].load(Relaxed) >> 32) as u16;
        }
        self.keep_loss(loss);
        true
    }

    fn keep_loss(&mut self, loss: Loss) {
        if self.losses.len() < MAX_KEPT_LOSSES {
            self.losses.push(loss);
        } else {
            self.losses_untold += 1;
        }
    }

    /// Losses found by the last [`read`](ConsumerCore::read) that its
    /// [`commit`](ConsumerCore::commit) will count (torn, overwritten, and
    /// claims resolved without this consumer), in position order. Skips are
    /// not among them: they count at once (see
    /// [`take_losses`](ConsumerCore::take_losses)).
    pub fn pending_losses(&self) -> &[Loss] {
        &self.batch_losses
    }

    /// Takes the positions lost since the last call (committed batches and
    /// skips only), and how many more were lost beyond [`MAX_KEPT_LOSSES`].
    pub fn take_losses(&mut self) -> (Vec<Loss>, u64) {
        let untold = std::mem::take(&mut self.losses_untold);
        (std::mem::take(&mut self.losses), untold)
    }

    /// Releases the batch returned by the last [`read`](ConsumerCore::read):
    /// its outcomes are counted and its slots handed back to the writers.
    pub fn commit(&mut self, ring: RingRef<'_>) {
        if self.batch_end <= self.state.head {
            return;
        }
        let mut next = self.state;
        next.pending_to = self.batch_end;
        next.received += self.tally.received;
        next.abandoned += self.tally.abandoned;
        next.torn += self.tally.torn;
        next.overwritten += self.tally.overwritten;
        // Count first, then release, then move the head: a consumer killed
        // in between leaves `pending_to` for the next one to finish.
        next.publish(ring.header, &mut self.version);
        for &(pos, seq) in &self.releases {
            release(ring, pos, seq);
        }
        next.head = self.batch_end;
        next.publish(ring.header, &mut self.version);
        self.state = next;
        for i in 0..self.batch_losses.len() {
            let loss = self.batch_losses[i];
            self.keep_loss(loss);
        }
        self.batch_losses.clear();
        self.events.clear();
        self.releases.clear();
        self.tally = Tally::default();
        if matches!(self.stalled, Some((at, _)) if at < next.head) {
            self.stalled = None;
        }
    }

    /// Counters as of now: the consumer's own, with the writers' claim
    /// position and refusals read from the header.
    pub fn counters(&self, ring: RingRef<'_>) -> Counters {
        let s = self.state;
        let tail = ring.header.tail.load(Relaxed);
        let dropped_full = ring.header.dropped_full.load(Relaxed);
        Counters {
            claimed: tail + dropped_full,
            received: s.received,
            dropped: dropped_full + s.overwritten,
            abandoned: s.abandoned,
            torn: s.torn,
            overwritten: s.overwritten,
            dropped_full,
            in_flight: tail.saturating_sub(s.head),
            head: s.head,
            tail,
        }
    }
}

fn unknown_loss(position: u64, cause: LossCause) -> Loss {
    Loss {
        position,
        cause,
        pid: 0,
        writer: crate::layout::NO_WRITER,
    }
}

/// Resets the slot of an unclaimed position `pos` (`tail <= pos`) holding
/// `seq`, a value no protocol step leaves there (a damaged file), to
/// `FREE(pos)` so that the writer of `pos` can claim it. A writer that
/// changed the slot meanwhile keeps it.
fn repair_unclaimed(ring: RingRef<'_>, pos: u64, seq: u64) {
    // ORDERING: Release pairs with the Acquire load in `try_claim` of the
    // writer of `pos`, as in `release`.
    let _ = ring
        .slot(pos)
        .seq
        .compare_exchange(seq, seq_free(pos), AcqRel, Relaxed);
}

/// Hands a resolved slot back to the writers. A failed CAS means an
/// overwriting writer already took it, which is fine: the outcome of `pos`
/// is already counted.
fn release(ring: RingRef<'_>, pos: u64, seq: u64) {
    // ORDERING: Release pairs with the Acquire load in `try_claim` of the
    // writer of pos + capacity: our reads of the record happen before its
    // writes.
    let _ =
        ring.slot(pos)
            .seq
            .compare_exchange(seq, seq_free(pos + ring.capacity()), AcqRel, Relaxed);
}

#[cfg(all(test, not(profilis_loom)))]
mod tests {
    use super::*;
    use crate::record::{Kind, Method, MsgRef, StrId};
    use crate::testing::OwnedRing;

    fn event(n: u64) -> Event {
        Event {
            position: 0,
            kind: Kind::Fn,
            flags: 0,
            method: Method::None,
            status: 0,
            name: StrId(1),
            exception_type: StrId::NONE,
            message: MsgRef(0),
            pid: 1,
            tid: 2,
            ts_mono_ns: n,
            dur_ns: n,
            trace_id: 0,
            span_id: 0,
            parent_span_id: 0,
            value: n,
            value2: 0,
            writer: 0,
        }
    }

    fn emit(ring: RingRef<'_>, n: u64) -> Result<(), Full> {
        let pos = ring.try_claim()?;
        ring.commit(pos, &event(n).encode(pos)).expect("not late");
        Ok(())
    }

    /// Reads and commits until a read makes no progress.
    fn drain(core: &mut ConsumerCore, ring: RingRef<'_>, now: u64) -> Vec<u64> {
        let mut values = Vec::new();
        loop {
            let before = core.state().head;
            values.extend(core.read(ring, now, usize::MAX).iter().map(|e| e.value));
            core.commit(ring);
            if core.state().head == before {
                return values;
            }
        }
    }

    #[test]
    fn events_arrive_in_order_and_counters_add_up() {
        let owned = OwnedRing::events_only(8, false);
        let ring = owned.view();
        let mut core = ConsumerCore::attach(ring, 1_000).unwrap();
        for n in 0..5 {
            emit(ring, n).unwrap();
        }
        assert_eq!(drain(&mut core, ring, 0), vec![0, 1, 2, 3, 4]);
        for n in 5..13 {
            emit(ring, n).unwrap();
        }
        assert_eq!(drain(&mut core, ring, 0), (5..13).collect::<Vec<_>>());
        let c = core.counters(ring);
        assert_eq!((c.claimed, c.received, c.in_flight), (13, 13, 0));
        assert!(c.identity_holds());
    }

    #[test]
    fn full_ring_drops_newest_and_counts_it() {
        let owned = OwnedRing::events_only(4, false);
        let ring = owned.view();
        let mut core = ConsumerCore::attach(ring, 1_000).unwrap();
        for n in 0..4 {
            emit(ring, n).unwrap();
        }
        assert_eq!(emit(ring, 4), Err(Full));
        assert_eq!(emit(ring, 5), Err(Full));
        assert_eq!(drain(&mut core, ring, 0), vec![0, 1, 2, 3]);
        emit(ring, 6).unwrap();
        assert_eq!(drain(&mut core, ring, 0), vec![6]);
        let c = core.counters(ring);
        assert_eq!(
            (c.claimed, c.received, c.dropped, c.dropped_full),
            (7, 5, 2, 2)
        );
        assert!(c.identity_holds() && c.in_flight == 0);
    }

    #[test]
    fn overwrite_oldest_keeps_the_newest_and_counts_the_rest() {
        let owned = OwnedRing::events_only(4, true);
        let ring = owned.view();
        let mut core = ConsumerCore::attach(ring, 1_000).unwrap();
        for n in 0..10 {
            emit(ring, n).unwrap();
        }
        assert_eq!(drain(&mut core, ring, 0), vec![6, 7, 8, 9]);
        let c = core.counters(ring);
        assert_eq!(
            (c.claimed, c.received, c.overwritten, c.dropped),
            (10, 4, 6, 6)
        );
        assert!(c.identity_holds() && c.in_flight == 0);
    }

    #[test]
    fn overwrite_of_a_read_but_unreleased_event_still_counts_it_once() {
        let owned = OwnedRing::events_only(2, true);
        let ring = owned.view();
        let mut core = ConsumerCore::attach(ring, 1_000).unwrap();
        emit(ring, 0).unwrap();
        emit(ring, 1).unwrap();
        assert_eq!(core.read(ring, 0, 8).len(), 2);
        // Writers lap the batch before it is committed.
        emit(ring, 2).unwrap();
        emit(ring, 3).unwrap();
        core.commit(ring);
        assert_eq!(drain(&mut core, ring, 0), vec![2, 3]);
        let c = core.counters(ring);
        assert_eq!((c.received, c.overwritten), (4, 0));
        assert!(c.identity_holds() && c.in_flight == 0);
    }

    #[test]
    fn stalled_claim_is_skipped_after_the_timeout_and_a_late_write_is_torn() {
        let owned = OwnedRing::events_only(2, false);
        let ring = owned.view();
        let mut core = ConsumerCore::attach(ring, 50).unwrap();
        let stalled = ring.try_claim().unwrap();
        emit(ring, 1).unwrap();
        // Within the timeout the consumer waits at the stalled position.
        assert!(drain(&mut core, ring, 100).is_empty());
        assert!(drain(&mut core, ring, 149).is_empty());
        // Past it, the claim is skipped and what follows is delivered.
        assert_eq!(drain(&mut core, ring, 150), vec![1]);
        // The next lap reuses the stalled slot...
        emit(ring, 2).unwrap();
        // ...and the late writer's words land on top of it.
        let late = event(99).encode(stalled);
        assert_eq!(ring.commit(stalled, &late), Err(Late));
        assert!(drain(&mut core, ring, 200).is_empty());
        let c = core.counters(ring);
        assert_eq!((c.claimed, c.received, c.abandoned, c.torn), (3, 1, 1, 1));
        assert!(c.identity_holds() && c.in_flight == 0);
    }

    #[test]
    fn stamped_claim_is_attributed_when_skipped_and_pending_losses_precede_the_commit() {
        let owned = OwnedRing::events_only(4, false);
        let ring = owned.view();
        let mut core = ConsumerCore::attach(ring, 50).unwrap();
        let stalled = ring.try_claim().unwrap();
        ring.stamp_claim(stalled, 4242, 7, 3);
        emit(ring, 1).unwrap();
        assert!(drain(&mut core, ring, 0).is_empty());
        assert_eq!(drain(&mut core, ring, 100), vec![1]);
        let (losses, untold) = core.take_losses();
        assert_eq!(untold, 0);
        assert_eq!(
            losses,
            vec![Loss {
                position: stalled,
                cause: LossCause::Abandoned,
                pid: 4242,
                writer: 3,
            }]
        );
        // A damaged record: known as pending after the read, kept at commit.
        emit(ring, 2).unwrap();
        ring.slots[2].seq.store(0, Relaxed);
        assert!(core.read(ring, 200, 8).is_empty());
        assert_eq!(core.pending_losses().len(), 1);
        assert_eq!(core.pending_losses()[0].cause, LossCause::Torn);
        assert!(
            core.take_losses().0.is_empty(),
            "not kept before the commit"
        );
        core.commit(ring);
        assert!(core.pending_losses().is_empty());
        assert_eq!(core.take_losses().0.len(), 1);
    }

    #[test]
    fn uncommitted_read_is_delivered_again_to_the_next_consumer() {
        let owned = OwnedRing::events_only(8, false);
        let ring = owned.view();
        let mut first = ConsumerCore::attach(ring, 1_000).unwrap();
        for n in 0..3 {
            emit(ring, n).unwrap();
        }
        assert_eq!(drain(&mut first, ring, 0), vec![0, 1, 2]);
        emit(ring, 3).unwrap();
        emit(ring, 4).unwrap();
        assert_eq!(first.read(ring, 0, 8).len(), 2);
        drop(first); // dies before commit
        let mut second = ConsumerCore::attach(ring, 1_000).unwrap();
        assert_eq!(drain(&mut second, ring, 0), vec![3, 4]);
        let c = second.counters(ring);
        assert_eq!((c.received, c.in_flight), (5, 0));
    }

    #[test]
    fn a_batch_stops_after_one_lap_and_a_crash_loses_nothing() {
        let owned = OwnedRing::events_only(2, false);
        let ring = owned.view();
        let mut first = ConsumerCore::attach(ring, 1_000).unwrap();
        emit(ring, 0).unwrap();
        emit(ring, 1).unwrap();
        // A limit larger than the ring: the batch ends after one lap and
        // leaves both slots held until commit.
        assert_eq!(first.read(ring, 0, 100).len(), 2);
        assert_eq!(emit(ring, 2), Err(Full));
        drop(first); // dies before commit
        let mut second = ConsumerCore::attach(ring, 1_000).unwrap();
        assert_eq!(drain(&mut second, ring, 0), vec![0, 1]);
        let c = second.counters(ring);
        assert_eq!(
            (c.received, c.abandoned, c.dropped, c.in_flight),
            (2, 0, 1, 0)
        );
        assert!(c.identity_holds());
    }

    #[test]
    fn consumer_killed_while_releasing_is_finished_by_the_next() {
        let owned = OwnedRing::events_only(4, false);
        let ring = owned.view();
        let mut first = ConsumerCore::attach(ring, 1_000).unwrap();
        for n in 0..3 {
            emit(ring, n).unwrap();
        }
        assert_eq!(first.read(ring, 0, 8).len(), 3);
        // Reproduce a death after the outcome was published and one slot
        // released, before the head moved.
        let mut pending = first.state;
        pending.pending_to = 3;
        pending.received = 3;
        pending.publish(ring.header, &mut first.version);
        release(ring, 0, seq_committed(0));
        drop(first);
        let mut second = ConsumerCore::attach(ring, 1_000).unwrap();
        assert_eq!(second.state().head, 3);
        assert!(drain(&mut second, ring, 0).is_empty());
        // All three slots are free again: four more events fit.
        for n in 3..7 {
            emit(ring, n).unwrap();
        }
        assert_eq!(drain(&mut second, ring, 0), vec![3, 4, 5, 6]);
        let c = second.counters(ring);
        assert_eq!((c.received, c.dropped, c.in_flight), (7, 0, 0));
    }

    #[test]
    fn inconsistent_stored_state_is_refused() {
        let owned = OwnedRing::events_only(4, false);
        let ring = owned.view();
        let mut version = 0;
        ConsumerState {
            head: 10,
            pending_to: 10,
            ..ConsumerState::default()
        }
        .publish(ring.header, &mut version);
        assert!(ConsumerCore::attach(ring, 1).is_err());
    }

    #[test]
    fn damaged_sequence_words_are_counted_and_repaired() {
        let owned = OwnedRing::events_only(4, false);
        let ring = owned.view();
        let mut core = ConsumerCore::attach(ring, 1_000).unwrap();
        emit(ring, 0).unwrap();
        emit(ring, 1).unwrap();
        // A claimed position whose slot holds nonsense.
        ring.slots[1].seq.store(0, Relaxed);
        // An unclaimed slot holding nonsense blocks writers until repaired.
        ring.slots[2].seq.store(12345, Relaxed);
        assert_eq!(drain(&mut core, ring, 0), vec![0]);
        let c = core.counters(ring);
        assert_eq!((c.received, c.torn, c.in_flight), (1, 1, 0));
        for n in 2..6 {
            emit(ring, n).unwrap();
        }
        assert_eq!(drain(&mut core, ring, 0), vec![2, 3, 4, 5]);
    }
}
