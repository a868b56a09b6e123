//! The consumer's durable state, and the counters any process can read from
//! it.
//!
//! The state (outcome counters and the read position of every lane) is
//! stored twice in the state region; `state_seq` says which copy is current.
//! The consumer writes a new version into the spare copy and then moves
//! `state_seq`; anyone else reads a copy the way a seqlock is read, retrying
//! when `state_seq` moved meanwhile, so a reader racing a commit never sees a
//! torn copy.

use super::RingRef;
use crate::layout::{
    state_words, MAX_LANE_POSITION, STATE_ABANDONED, STATE_FIXED_WORDS, STATE_MESSAGES_UNREAD,
    STATE_NAMES_UNRESOLVED, STATE_OVERWRITTEN, STATE_RECEIVED, STATE_REPAIRS, STATE_TORN,
};
use crate::sync::{fence, spin_hint, AtomicU64, Ordering::*};

/// How often a reader of the state retries when commits keep moving it.
const LOAD_TRIES: usize = 1000;

/// The consumer's durable state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumerState {
    /// Events delivered.
    pub received: u64,
    /// Events whose writer died while writing them.
    pub abandoned: u64,
    /// Records rejected by validation.
    pub torn: u64,
    /// Events overwritten before they were read.
    pub overwritten: u64,
    /// Message texts found overwritten or damaged when read.
    pub messages_unread: u64,
    /// Name ids that did not resolve to text.
    pub names_unresolved: u64,
    /// Lanes found holding positions no protocol step produces, and reset.
    pub repairs: u64,
    /// Read position of each lane: every position below it is resolved.
    pub heads: Vec<u64>,
}

impl ConsumerState {
    /// A fresh state for `lanes` lanes.
    pub fn new(lanes: usize) -> ConsumerState {
        ConsumerState {
            heads: vec![0; lanes],
            ..ConsumerState::default()
        }
    }

    /// Positions resolved, all lanes together (`None` if the sum overflows,
    /// which only a damaged file can make happen).
    pub fn resolved(&self) -> Option<u64> {
        self.heads.iter().try_fold(0u64, |a, &h| a.checked_add(h))
    }

    /// Sum of the outcome counters; equals [`resolved`](Self::resolved) in
    /// every state the protocol writes.
    pub fn outcomes(&self) -> Option<u64> {
        self.received
            .checked_add(self.abandoned)?
            .checked_add(self.torn)?
            .checked_add(self.overwritten)
    }

    /// Whether the state is one the protocol can have written: heads in
    /// range and outcomes adding up to the positions resolved.
    pub fn is_consistent(&self) -> bool {
        self.heads.iter().all(|&h| h <= MAX_LANE_POSITION)
            && self.outcomes().is_some()
            && self.outcomes() == self.resolved()
    }

    fn copy<'a>(ring: &RingRef<'a>, version: u64) -> &'a [AtomicU64] {
        let words = state_words(ring.lanes.len() as u64) as usize;
        let first = (version & 1) as usize * words;
        &ring.state[first..first + words]
    }

    /// Loads the current copy: `(version, state)`. Retries while a commit
    /// moves the state under it; `None` if it kept moving for
    /// 1000 tries (a consumer gone wild or a hostile file).
    pub fn load(ring: &RingRef<'_>) -> Option<(u64, ConsumerState)> {
        let lanes = ring.lanes.len();
        for _ in 0..LOAD_TRIES {
            // ORDERING: Acquire pairs with the Release store of `state_seq`
            // in `publish`: the copy it selects is complete.
            let version = ring.header.state_seq.load(Acquire);
            let copy = Self::copy(ring, version);
            let mut state = ConsumerState::new(lanes);
            let word = |i: usize| copy[i].load(Relaxed);
            state.received = word(STATE_RECEIVED);
            state.abandoned = word(STATE_ABANDONED);
            state.torn = word(STATE_TORN);
            state.overwritten = word(STATE_OVERWRITTEN);
            state.messages_unread = word(STATE_MESSAGES_UNREAD);
            state.names_unresolved = word(STATE_NAMES_UNRESOLVED);
            state.repairs = word(STATE_REPAIRS);
            for (l, head) in state.heads.iter_mut().enumerate() {
                *head = word(STATE_FIXED_WORDS + l);
            }
            // ORDERING: Acquire fence pairs with the Release fence in
            // `publish` that precedes its stores into a copy: if any word
            // above came from a later commit, the reload below sees that
            // commit's version (or a later one) and we retry.
            fence(Acquire);
            if ring.header.state_seq.load(Relaxed) == version {
                return Some((version, state));
            }
            spin_hint();
        }
        None
    }

    /// Writes this state into the spare copy and makes it current. A consumer
    /// killed part-way leaves the previous copy current.
    pub(crate) fn publish(&self, ring: &RingRef<'_>, version: &mut u64) {
        let next = version.wrapping_add(1);
        let copy = Self::copy(ring, next);
        // ORDERING: Release fence pairs with the Acquire fence in `load`: a
        // reader that sees any word stored below also sees the store of
        // `state_seq` that made this copy the spare one, and retries.
        fence(Release);
        let fixed = [
            (STATE_RECEIVED, self.received),
            (STATE_ABANDONED, self.abandoned),
            (STATE_TORN, self.torn),
            (STATE_OVERWRITTEN, self.overwritten),
            (STATE_MESSAGES_UNREAD, self.messages_unread),
            (STATE_NAMES_UNRESOLVED, self.names_unresolved),
            (STATE_REPAIRS, self.repairs),
        ];
        for (i, value) in fixed {
            copy[i].store(value, Relaxed);
        }
        for (l, &head) in self.heads.iter().enumerate() {
            copy[STATE_FIXED_WORDS + l].store(head, Relaxed);
        }
        // ORDERING: Release pairs with the Acquire load in `load`: whoever
        // sees version `next` sees the words written above.
        ring.header.state_seq.store(next, Release);
        *version = next;
    }
}

/// Counters describing everything that happened to a ring's events.
///
/// `received + dropped + abandoned + torn + in_flight == claimed` holds for
/// every snapshot, taken by the consumer or by any other process; once the
/// ring is drained `in_flight` is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Emit attempts: positions written or begun, plus events refused.
    pub claimed: u64,
    /// Events delivered to the consumer.
    pub received: u64,
    /// Events lost to a full ring: refused (`dropped_full`) or overwritten.
    pub dropped: u64,
    /// Events whose writer died between the first and the last store.
    pub abandoned: u64,
    /// Records that failed validation (a damaged file).
    pub torn: u64,
    /// Part of `dropped`: unread events overwritten (overwrite-oldest).
    pub overwritten: u64,
    /// Part of `dropped`: events refused because their lane was full or no
    /// lane could be had.
    pub dropped_full: u64,
    /// Positions written or begun that the consumer has not resolved yet.
    pub in_flight: u64,
    /// Positions resolved by the consumer, all lanes together.
    pub head: u64,
    /// Positions written or begun, all lanes together.
    pub tail: u64,
    /// Messages a writer gave up on (a newer message took its slot first).
    pub messages_lost: u64,
    /// Message texts the consumer found overwritten or damaged.
    pub messages_unread: u64,
    /// Name ids the consumer could not resolve to text.
    pub names_unresolved: u64,
    /// Lanes found holding impossible positions and reset.
    pub repairs: u64,
}

impl Counters {
    /// True when `received + dropped + abandoned + torn + in_flight == claimed`.
    pub fn identity_holds(&self) -> bool {
        let sum = [self.dropped, self.abandoned, self.torn, self.in_flight]
            .iter()
            .try_fold(self.received, |a, &b| a.checked_add(b));
        sum == Some(self.claimed)
    }

    /// Counters from a consumer state and the lanes' writer-side words.
    ///
    /// Loads each lane's `tail` after the state was loaded: a tail is never
    /// below the head the consumer read it at, so `in_flight` never goes
    /// negative (a damaged lane whose tail is below its head counts 0).
    pub fn from_state(ring: &RingRef<'_>, state: &ConsumerState) -> Counters {
        let mut tail = 0u64;
        let mut in_flight = 0u64;
        let mut dropped_full = ring.header.dropped_no_lane.load(Relaxed);
        for (lane, &head) in ring.lanes.iter().zip(state.heads.iter()) {
            // ORDERING: no pair of its own. The state was loaded with an
            // Acquire that follows the consumer's load of this tail, so
            // this load returns that value or a later one.
            let t = lane.tail.load(Relaxed).max(head);
            tail = tail.saturating_add(t);
            in_flight = in_flight.saturating_add(t - head);
            dropped_full = dropped_full.saturating_add(lane.dropped.load(Relaxed));
        }
        let head = state.resolved().unwrap_or(u64::MAX);
        Counters {
            claimed: tail.saturating_add(dropped_full),
            received: state.received,
            dropped: dropped_full.saturating_add(state.overwritten),
            abandoned: state.abandoned,
            torn: state.torn,
            overwritten: state.overwritten,
            dropped_full,
            in_flight,
            head,
            tail,
            messages_lost: ring.header.messages_lost.load(Relaxed),
            messages_unread: state.messages_unread,
            names_unresolved: state.names_unresolved,
            repairs: state.repairs,
        }
    }

    /// A snapshot taken by any process (a writer, a monitoring tool): the
    /// consumer state as of its last commit, read consistently, and the
    /// lanes as of now. `None` when commits kept moving the state for the
    /// whole of the bounded retry loop.
    pub fn snapshot(ring: &RingRef<'_>) -> Option<Counters> {
        ConsumerState::load(ring).map(|(_, state)| Counters::from_state(ring, &state))
    }
}
