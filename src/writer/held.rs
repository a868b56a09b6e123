//! The lanes a thread holds: one per ring it writes to, taken on its first
//! event there and given back when the thread exits.
//!
//! The thread-local table is the emit path's only state: it finds the lane
//! for a ring with one compare and writes the event with the lane protocol
//! ([`RingRef::begin`]/[`RingRef::finish`]). A thread that holds no lane of its own (every one is
//! taken) writes through the shared lanes, locking one per event. Three
//! things never use a held lane: a call that arrives while the same thread
//! is in the middle of writing into it (a signal handler, or an emit while a
//! [`Claim`](super::Claim) is open), a `fork` child (the lane belongs to its
//! parent's thread), and a thread whose table is already torn down.
//!
//! A thread's events are read in the order it wrote them as long as they
//! are in one lane. A thread that wrote through a shared lane takes a lane
//! of its own (when one frees up) only once the consumer has read its last
//! shared event, so that order holds across the move too.

use super::{Inner, Ring};
use crate::process;
use crate::record::Record;
use crate::ring::{Full, LaneCursor, Owner, RingRef, Written};
use crate::sync::spin_hint;
use std::cell::Cell;
use std::sync::Arc;

/// Rings a thread keeps a lane in at once; writing to one more gives back
/// the lane held longest.
const MAX_HELD: usize = 4;
/// Rounds of tries over the shared lanes before an event is dropped.
const SHARED_ROUNDS: usize = 64;
/// Events between two attempts of a lane-less thread to take a lane.
const RETAKE_EVERY: u32 = 1024;

/// What an emit did with the event.
pub(super) enum Placed {
    Written(Written),
    Full,
    NoLane,
}

impl From<Result<Written, Full>> for Placed {
    fn from(r: Result<Written, Full>) -> Placed {
        match r {
            Ok(w) => Placed::Written(w),
            Err(Full) => Placed::Full,
        }
    }
}

/// One ring's lane as held by this thread.
struct HeldLane {
    /// `Ring` instance (0: entry unused).
    instance: Cell<u32>,
    /// Process that took the lane: after a `fork`, the child's copy of the
    /// table names its parent's lanes, which it must not touch.
    pid: Cell<u32>,
    /// True while an event is being written into the lane.
    busy: Cell<bool>,
    /// False when the ring had no lane free for this thread: it writes
    /// through the shared lanes and tries again every `RETAKE_EVERY` events.
    own: Cell<bool>,
    retake_in: Cell<u32>,
    /// Lane and end position of this thread's last event in a shared lane
    /// (`u32::MAX`: none); see the module notes on order.
    shared_mark: Cell<(u32, u64)>,
    cursor: Cell<LaneCursor>,
    owner: Cell<Owner>,
    /// This thread's id (also in `owner`), for the events.
    tid: Cell<u32>,
    /// Keeps the mapping alive for as long as the lane is held.
    ring: Cell<Option<Arc<Inner>>>,
}

impl HeldLane {
    const fn empty() -> HeldLane {
        HeldLane {
            instance: Cell::new(0),
            pid: Cell::new(0),
            busy: Cell::new(false),
            own: Cell::new(false),
            retake_in: Cell::new(0),
            shared_mark: Cell::new((u32::MAX, 0)),
            cursor: Cell::new(LaneCursor::NONE),
            owner: Cell::new(Owner::NONE),
            tid: Cell::new(0),
            ring: Cell::new(None),
        }
    }

    /// Gives the lane back, if this process holds one, and empties the entry.
    fn release(&self) {
        if let Some(inner) = self.ring.take() {
            if self.own.get() && self.pid.get() == process::pid() {
                inner
                    .view
                    .release_lane(&self.cursor.get(), &self.owner.get());
            }
        }
        self.instance.set(0);
        self.own.set(false);
    }
}

/// The thread's table of held lanes.
pub(super) struct Held {
    entries: [HeldLane; MAX_HELD],
}

impl Drop for Held {
    fn drop(&mut self) {
        for e in &self.entries {
            e.release();
        }
    }
}

thread_local! {
    static HELD: Held = const {
        Held {
            entries: [const { HeldLane::empty() }; MAX_HELD],
        }
    };
}

/// The identity a thread of this process writes under.
fn owner(pid: u32, writer: u16) -> Owner {
    Owner {
        pid,
        tid: process::tid(),
        start_time: process::own_start_time(),
        writer,
    }
}

impl Held {
    /// The entry for `ring` in this process, made on first use. `None` only
    /// when every entry is in the middle of an event (nested claims on
    /// several rings).
    #[inline]
    fn entry(&self, ring: &Ring, pid: u32) -> Option<&HeldLane> {
        let instance = ring.inner.instance;
        for e in &self.entries {
            if e.instance.get() == instance && e.pid.get() == pid {
                return Some(e);
            }
        }
        self.make(ring, pid)
    }

    /// Makes the entry for `ring` (registering the process in the writer
    /// table if it is not yet).
    #[cold]
    fn make(&self, ring: &Ring, pid: u32) -> Option<&HeldLane> {
        // An unused entry, else one left from before a fork, else the last
        // entry that is not in the middle of an event.
        let e = self
            .entries
            .iter()
            .find(|e| e.instance.get() == 0 || e.pid.get() != pid)
            .or_else(|| self.entries.iter().rev().find(|e| !e.busy.get()))?;
        e.release();
        let who = owner(pid, ring.writer_index(pid));
        e.instance.set(ring.inner.instance);
        e.pid.set(pid);
        e.busy.set(false);
        e.owner.set(who);
        e.tid.set(who.tid);
        e.ring.set(Some(ring.inner.clone()));
        e.own.set(false);
        e.retake_in.set(0);
        e.shared_mark.set((u32::MAX, 0));
        Some(e)
    }

    /// Makes sure `e` holds a lane of its own if one can be had; false when
    /// the thread must use the shared lanes.
    #[inline]
    fn ensure_own(&self, view: &RingRef<'_>, e: &HeldLane) -> bool {
        if e.own.get() {
            return true;
        }
        let wait = e.retake_in.get();
        if wait > 0 {
            e.retake_in.set(wait - 1);
            return false;
        }
        let (lane, end) = e.shared_mark.get();
        if let Some(lane) = view.lanes.get(lane as usize) {
            // ORDERING: no pair: a stale head only delays the move.
            if lane.head.load(crate::sync::Ordering::Relaxed) < end {
                e.retake_in.set(RETAKE_EVERY);
                return false;
            }
        }
        let who = e.owner.get();
        match view.acquire_lane(&who, who.tid as usize) {
            Some(cursor) => {
                e.cursor.set(cursor);
                e.own.set(true);
                true
            }
            None => {
                e.retake_in.set(RETAKE_EVERY);
                false
            }
        }
    }
}

/// Writes `record` (encoded with thread id, writer index and stamp 0)
/// into this thread's lane of `ring` (or a shared lane), adding the thread
/// id and writer index from the thread's table and the stamp. Returns where
/// it went and the writer index.
#[inline]
pub(super) fn place(ring: &Ring, pid: u32, record: Record) -> (Placed, u16) {
    let view = ring.view();
    let placed = HELD.try_with(|held| match held.entry(ring, pid) {
        Some(e) if !e.busy.get() && held.ensure_own(view, e) => {
            let who = e.owner.get();
            let record = record.with_thread(who.tid, who.writer);
            e.busy.set(true);
            let mut cursor = e.cursor.get();
            let r = view.write(&mut cursor, move |pos| record.stamped(pos));
            e.cursor.set(cursor);
            e.busy.set(false);
            (r.into(), who.writer)
        }
        Some(e) if !e.busy.get() => {
            let who = e.owner.get();
            let (placed, mark) = place_shared(view, &who, record);
            if let Some(mark) = mark {
                e.shared_mark.set(mark);
            }
            (placed, who.writer)
        }
        _ => place_unheld(ring, pid, record),
    });
    placed.unwrap_or_else(|_| place_unheld(ring, pid, record))
}

/// Writes `record` for a call that cannot use the thread's table (nested,
/// or the table is gone): through a shared lane.
#[cold]
fn place_unheld(ring: &Ring, pid: u32, record: Record) -> (Placed, u16) {
    let who = owner(pid, ring.writer_index(pid));
    (place_shared(ring.view(), &who, record).0, who.writer)
}

/// Writes `record` through a shared lane, locked for this one event; also
/// returns the lane and the position after the event.
fn place_shared(view: &RingRef<'_>, who: &Owner, record: Record) -> (Placed, Option<(u32, u64)>) {
    let record = record.with_thread(who.tid, who.writer);
    match lock_shared(view, who) {
        Some(mut cursor) => {
            let r = view.write(&mut cursor, |pos| record.stamped(pos));
            view.release_lane(&cursor, who);
            (r.into(), Some((cursor.lane, cursor.pos)))
        }
        None => (Placed::NoLane, None),
    }
}

/// Locks a shared lane, trying them all for a bounded number of rounds.
/// `None` (the event is dropped, counted in `dropped_no_lane`) when every
/// shared lane stayed busy.
pub(super) fn lock_shared(view: &RingRef<'_>, who: &Owner) -> Option<LaneCursor> {
    for _ in 0..SHARED_ROUNDS {
        if let Some(cursor) = view.lock_shared_lane(who, who.tid as usize) {
            return Some(cursor);
        }
        spin_hint();
    }
    view.header
        .dropped_no_lane
        .fetch_add(1, crate::sync::Ordering::Relaxed);
    None
}

/// A lane leased for a two-phase event ([`Ring::claim`]): this thread's own
/// lane, marked busy until the claim ends, or a shared lane locked for it.
pub(super) enum Lease {
    Own { cursor: LaneCursor },
    Shared { cursor: LaneCursor, who: Owner },
}

impl Lease {
    /// Takes a lane for a claim.
    pub(super) fn take(ring: &Ring, pid: u32, writer: u16) -> Option<Lease> {
        let view = ring.view();
        let own = HELD
            .try_with(|held| {
                let e = held.entry(ring, pid)?;
                if !e.busy.get() && held.ensure_own(view, e) {
                    e.busy.set(true);
                    Some(e.cursor.get())
                } else {
                    None
                }
            })
            .ok()
            .flatten();
        match own {
            Some(cursor) => Some(Lease::Own { cursor }),
            None => {
                let who = owner(pid, writer);
                lock_shared(view, &who).map(|cursor| Lease::Shared { cursor, who })
            }
        }
    }

    pub(super) fn cursor(&mut self) -> &mut LaneCursor {
        match self {
            Lease::Own { cursor } | Lease::Shared { cursor, .. } => cursor,
        }
    }

    /// Ends the lease: the cursor goes back to the thread's table, or the
    /// shared lane is unlocked.
    pub(super) fn end(self, ring: &Ring, pid: u32) {
        match self {
            Lease::Own { cursor } => {
                let _ = HELD.try_with(|held| {
                    let instance = ring.inner.instance;
                    if let Some(e) = held
                        .entries
                        .iter()
                        .find(|e| e.instance.get() == instance && e.pid.get() == pid)
                    {
                        e.cursor.set(cursor);
                        e.busy.set(false);
                    }
                });
            }
            Lease::Shared { cursor, who } => ring.view().release_lane(&cursor, &who),
        }
    }
}
