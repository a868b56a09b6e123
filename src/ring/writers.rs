//! The writer table: the processes that write into the ring, each in one
//! entry it takes the first time it writes.
//!
//! A process claims a free entry with a CAS of its `pid` from 0, stores the
//! entry's fields and then its start time, with a Release store: an entry
//! whose start time a reader sees is complete. Entries are never freed (a
//! ring outlives few processes next to its 4096 entries; a full table
//! only loses the per-process attribution), so no entry is ever reused and
//! the `pid` word orders nothing.

use super::RingRef;
use crate::sync::Ordering::*;

/// What a process stores in its writer-table entry when it registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registration {
    /// Process id (never 0).
    pub pid: u32,
    /// Process start time (`/proc/PID/stat` field 22); 0 if unknown, which
    /// leaves the entry looking incomplete to readers.
    pub start_time: u64,
    /// Interned service name, 0 for none.
    pub service: u64,
    /// `CLOCK_REALTIME` ns of the registration.
    pub wall_ns: u64,
    /// `CLOCK_MONOTONIC` ns of the registration (the first heartbeat).
    pub mono_ns: u64,
}

/// One taken writer-table entry, as a reader sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterEntryView {
    /// Index in the table (events carry it).
    pub index: u16,
    /// Process id.
    pub pid: u32,
    /// Process start time; 0 while the entry is being filled in, and then
    /// the other registration fields may not be there yet.
    pub start_time: u64,
    /// Interned service name, 0 for none.
    pub service: u64,
    /// `CLOCK_REALTIME` ns of the registration.
    pub registered_wall_ns: u64,
    /// `CLOCK_MONOTONIC` ns of the latest heartbeat.
    pub heartbeat_ns: u64,
    /// Events the process could not place.
    pub dropped: u64,
    /// Events the process emitted, in steps of
    /// [`HEARTBEAT_EVERY`](crate::layout::HEARTBEAT_EVERY).
    pub emitted_hint: u64,
    /// Events of the process overwritten before they were read.
    pub overwritten: u64,
}

impl<'a> RingRef<'a> {
    /// The writer-table index of the process `who` describes: the entry it
    /// registered before (same pid and start time), or a free entry it
    /// takes and fills in now. `None` when the table is full (counted in
    /// `writers_overflow`).
    pub fn register_writer(&self, who: &Registration) -> Option<u16> {
        let pid = who.pid as u64;
        let found = self.writers.iter().position(|entry| {
            // ORDERING: Relaxed: only the entry's index is used, not what it
            // holds, and no entry is ever reused.
            entry.pid.load(Relaxed) == pid && entry.start_time.load(Relaxed) == who.start_time
        });
        if let Some(i) = found {
            return Some(i as u16);
        }
        for (i, entry) in self.writers.iter().enumerate() {
            // ORDERING: Relaxed: an entry is never freed, so there is no
            // previous holder whose stores to order before ours, and what
            // we store is published by the Release store of `start_time`.
            if entry.pid.compare_exchange(0, pid, Relaxed, Relaxed).is_ok() {
                entry.service.store(who.service, Relaxed);
                entry.registered_wall_ns.store(who.wall_ns, Relaxed);
                entry.heartbeat_ns.store(who.mono_ns, Relaxed);
                // ORDERING: Release pairs with the Acquire load of
                // `start_time` in `writer_table`: an entry whose start time
                // is set is complete.
                entry.start_time.store(who.start_time, Release);
                return Some(i as u16);
            }
        }
        self.header.writers_overflow.fetch_add(1, Relaxed);
        None
    }

    /// The entries taken so far, in table order.
    pub fn writer_table(&self) -> Vec<WriterEntryView> {
        let mut out = Vec::new();
        for (i, entry) in self.writers.iter().enumerate() {
            // ORDERING: Relaxed: the pid carries nothing else (entries are
            // never reused); whether the entry is complete is told by
            // `start_time`.
            let pid = entry.pid.load(Relaxed) as u32;
            if pid == 0 {
                continue;
            }
            // ORDERING: Acquire pairs with the Release store of `start_time`
            // in `register_writer`: a non-zero start time means the fields
            // below hold what the process stored at registration (or later).
            let start_time = entry.start_time.load(Acquire);
            out.push(WriterEntryView {
                index: i as u16,
                pid,
                start_time,
                service: entry.service.load(Relaxed),
                registered_wall_ns: entry.registered_wall_ns.load(Relaxed),
                heartbeat_ns: entry.heartbeat_ns.load(Relaxed),
                dropped: entry.dropped.load(Relaxed),
                emitted_hint: entry.emitted_hint.load(Relaxed),
                overwritten: entry.overwritten.load(Relaxed),
            });
        }
        out
    }
}
