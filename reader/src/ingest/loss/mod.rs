//! Per-producer loss accounting: every event a ring lost becomes data, as
//! LOSS markers placed in the output where the loss happened, and as
//! per-producer totals for the dashboard and Prometheus.
//!
//! One [`LossTracker`] per attached ring. After each read the drain loop
//! hands it an [`Observation`] (the ring counters, the positions the read
//! found lost, the delivered events) and gets back the markers to write with
//! that batch:
//!
//! - Gap markers: a run of lost positions with no delivered event between
//!   them in the batch (an event its writer died in the middle of, a torn
//!   record, events overwritten before they were read) gives one marker per
//!   producer, placed between the delivered events around the run. `from_ts_ns`/`to_ts_ns`
//!   are the timestamps of those two events (the previous batch's last event,
//!   or the read time at the end of a batch), in increasing order.
//! - Interval markers: losses without a position (events refused because the
//!   ring was full, and losses that happened before this reader or an earlier
//!   run recorded them) give one marker per producer before the batch's
//!   events, covering the time from the previous complete observation to
//!   now.
//!
//! Attribution: refused events from the writer table's per-process
//! `dropped` counters (read at most every 100 ms while drops go on; drops no
//! table entry explains are held back one such observation, then reported
//! with `pid: null`); overwritten events and abandoned ones from the lane
//! they were in (its holder; for overwritten events the table's
//! `overwritten` counters when the lane no longer tells); torn records have
//! no known producer. Whatever cannot be attributed goes into a marker with no
//! pid.
//!
//! The invariant: each marker carries the ring's cumulative loss counts that
//! the markers up to it account for, and they always add up, so the sums of
//! all markers of a ring equal its `dropped`, `abandoned` and `torn`
//! counters once everything is drained. A restarting reader continues from
//! the last cumulative counts the JSONL exporter recorded (see
//! [`crate::outputs::jsonl`]), so nothing is marked twice or left out.

use crate::ingest::RingContext;
use crate::views::{LossTotals, ProducerLoss};
use profilis::layout::NO_WRITER;
use profilis::{Counters, Event, Loss, LossCause, WriterInfo};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Least time between two reads of the writer table for attributing drops
/// (a read checks every writer's liveness in `/proc`).
pub const TABLE_READ_EVERY: Duration = Duration::from_millis(100);

/// How far a writer's own counters have been turned into markers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterMark {
    /// Writer-table index.
    pub index: u16,
    /// Its process id.
    pub pid: u32,
    /// Its process start time.
    pub start_time: u64,
    /// Its `dropped` counter as far as marked.
    pub dropped: u64,
    /// Its `overwritten` counter as far as marked.
    pub overwritten: u64,
}

/// Where the markers of a ring stand: what an exporter recorded last.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossCursor {
    /// The ring's loss counters that the markers so far account for.
    pub cumulative: LossTotals,
    /// `to_ts_ns` of the last marker.
    pub to_ts_ns: u64,
    /// Per writer, how far its counters were attributed.
    #[serde(default)]
    pub writers: Vec<WriterMark>,
}

/// One LOSS marker: the events one producer lost in one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LossMarker {
    /// Process that lost them, if known.
    pub pid: Option<u32>,
    /// Its writer-table index, if known.
    pub writer: Option<u16>,
    /// Its service, if known.
    pub service: Option<Arc<str>>,
    /// What was lost.
    pub counts: LossTotals,
    /// Start of the time range in which the loss happened, wall ns.
    pub from_ts_ns: u64,
    /// End of that range, wall ns.
    pub to_ts_ns: u64,
    /// Goes before this event of the batch (the batch length: after all).
    pub before_event: usize,
    /// The ring's loss counts that this marker and all before it account for.
    pub cumulative: LossTotals,
}

/// What one read found, for [`LossTracker::observe`].
pub struct Observation<'a> {
    /// Ring counters after the read.
    pub counters: Counters,
    /// Positions the read found lost, in read order (the batch's losses,
    /// which its commit counts).
    pub lost: &'a [Loss],
    /// Losses beyond what the consumer kept (counted, positions unknown).
    pub untold: u64,
    /// The delivered events.
    pub events: &'a [Event],
    /// Wall-clock ns of a delivered event.
    pub wall_ns: &'a dyn Fn(&Event) -> u64,
    /// Wall-clock ns now.
    pub now_ns: u64,
    /// Now.
    pub now: Instant,
    /// Attribute and report everything now (final observation).
    pub force: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ProducerKey {
    writer: Option<u16>,
    pid: Option<u32>,
}

#[derive(Clone, Debug, Default)]
struct Tally {
    service: Option<Arc<str>>,
    counts: LossTotals,
    last_loss_ns: u64,
}

/// Loss accounting of one ring.
pub struct LossTracker {
    marked: LossTotals,
    writers: Vec<WriterMark>,
    table: Vec<WriterInfo>,
    table_read_at: Option<Instant>,
    last_observed_ns: u64,
    last_event_ns: Option<u64>,
    held_back: bool,
    tallies: HashMap<ProducerKey, Tally>,
    cursor: LossCursor,
}

impl LossTracker {
    /// A tracker for a ring created at `created_wall_ns`, continuing from
    /// `cursor` when an earlier run recorded one.
    pub fn new(created_wall_ns: u64, cursor: Option<LossCursor>) -> LossTracker {
        let cursor = cursor.unwrap_or_default();
        let mut writers = Vec::new();
        for w in &cursor.writers {
            let i = w.index as usize;
            if i < profilis::layout::MAX_WRITER_ENTRIES as usize {
                if writers.len() <= i {
                    writers.resize(i + 1, WriterMark::default());
                }
                writers[i] = *w;
            }
        }
        LossTracker {
            marked: cursor.cumulative,
            writers,
            table: Vec::new(),
            table_read_at: None,
            last_observed_ns: cursor.to_ts_ns.max(created_wall_ns),
            last_event_ns: None,
            held_back: false,
            tallies: HashMap::new(),
            cursor,
        }
    }

    /// The ring's loss counts the markers so far account for.
    pub fn marked(&self) -> LossTotals {
        self.marked
    }

    /// Where the markers stand after the last observation, for an
    /// exporter to record.
    pub fn cursor(&self) -> &LossCursor {
        &self.cursor
    }

    /// Turns what a read found into markers (see the module docs), in
    /// output order. `table` reads the writer table; it is called only when
    /// drops or overwrites need attributing, at most every
    /// [`TABLE_READ_EVERY`] unless `force`.
    pub fn observe(
        &mut self,
        obs: &Observation<'_>,
        ctx: &RingContext,
        table: &mut dyn FnMut() -> Vec<WriterInfo>,
    ) -> Vec<LossMarker> {
        let expected = expected_totals(obs);
        let new_full = obs
            .counters
            .dropped_full
            .saturating_sub(self.marked.ring_full());
        if obs.lost.is_empty() && obs.untold == 0 && new_full == 0 && expected == self.marked {
            self.last_observed_ns = self.last_observed_ns.max(obs.now_ns);
            if let Some(e) = obs.events.last() {
                self.last_event_ns = Some((obs.wall_ns)(e));
            }
            return Vec::new();
        }
        let (lost, mut extra) = self.new_positions(obs, &expected);
        let overwrites = lost.iter().any(|l| l.cause == LossCause::Overwritten);
        let table_due = obs.force
            || self
                .table_read_at
                .is_none_or(|t| obs.now.duration_since(t) >= TABLE_READ_EVERY);
        if (new_full > 0 || overwrites) && table_due {
            self.read_table(obs.now, table);
        }
        let mut markers = Vec::new();
        let held =
            new_full > 0 && !self.refused(new_full, table_due, obs, &mut extra, &mut markers);
        if !extra.is_empty() {
            markers.push(self.interval_marker(None, None, None, extra, obs.now_ns));
        }
        self.gap_markers(&lost, obs, ctx, &mut markers);
        self.account(&mut markers);
        if !held {
            self.last_observed_ns = self.last_observed_ns.max(obs.now_ns);
        }
        if let Some(e) = obs.events.last() {
            self.last_event_ns = Some((obs.wall_ns)(e));
        }
        markers
    }

    /// The lost positions not marked yet, in read order, and the losses the
    /// counters show beyond them (positions unknown). Those an earlier run
    /// already marked (a batch delivered again after a restart) are the
    /// first ones read.
    fn new_positions(
        &self,
        obs: &Observation<'_>,
        expected: &LossTotals,
    ) -> (Vec<Loss>, LossTotals) {
        let mut lost: Vec<Loss> = obs.lost.to_vec();
        let mut extra = LossTotals::default();
        for cause in [
            LossCause::Abandoned,
            LossCause::Torn,
            LossCause::Overwritten,
        ] {
            let new = get(expected, cause).saturating_sub(get(&self.marked, cause));
            let have = lost.iter().filter(|l| l.cause == cause).count() as u64;
            if have > new {
                let mut skip = have - new;
                lost.retain(|l| {
                    if l.cause == cause && skip > 0 {
                        skip -= 1;
                        false
                    } else {
                        true
                    }
                });
            } else {
                for _ in 0..new - have {
                    count(&mut extra, cause);
                }
            }
        }
        (lost, extra)
    }

    /// Reads the writer table; a table entry taken by another process
    /// starts its marks from zero.
    fn read_table(&mut self, now: Instant, table: &mut dyn FnMut() -> Vec<WriterInfo>) {
        self.table = table();
        self.table_read_at = Some(now);
        for w in &self.table {
            let i = w.index as usize;
            if self.writers.len() <= i {
                self.writers.resize(i + 1, WriterMark::default());
            }
            let mark = &mut self.writers[i];
            if mark.pid != w.pid || mark.start_time != w.start_time {
                *mark = WriterMark {
                    index: w.index,
                    pid: w.pid,
                    start_time: w.start_time,
                    dropped: 0,
                    overwritten: 0,
                };
            }
        }
    }

    /// Interval markers for `new_full` events refused by the full ring,
    /// per writer from the table's counters (when it was read: `table_due`).
    /// Returns whether they are all reported; drops no entry explains yet
    /// are held back one observation (the writer may not have counted them
    /// in its entry yet), then go into `extra`.
    fn refused(
        &mut self,
        new_full: u64,
        table_due: bool,
        obs: &Observation<'_>,
        extra: &mut LossTotals,
        markers: &mut Vec<LossMarker>,
    ) -> bool {
        if !table_due {
            return false;
        }
        let mut remaining = new_full;
        for w in &self.table {
            let mark = &mut self.writers[w.index as usize];
            let take = w.dropped.saturating_sub(mark.dropped).min(remaining);
            if take == 0 {
                continue;
            }
            mark.dropped += take;
            remaining -= take;
            markers.push(self.interval_marker(
                Some(w.index),
                Some(w.pid),
                w.service.clone(),
                LossTotals {
                    dropped: take,
                    ..LossTotals::default()
                },
                obs.now_ns,
            ));
        }
        if remaining > 0 && !self.held_back && !obs.force {
            self.held_back = true;
            return false;
        }
        self.held_back = false;
        extra.dropped += remaining;
        true
    }

    /// Gap markers: one per producer of each run of `lost` positions (those
    /// read between the same two delivered events), between the delivered
    /// events around the run.
    fn gap_markers(
        &mut self,
        lost: &[Loss],
        obs: &Observation<'_>,
        ctx: &RingContext,
        markers: &mut Vec<LossMarker>,
    ) {
        // Overwritten events charged to the writers whose `overwritten`
        // counters are ahead of their marks, in table order.
        let mut pool: Vec<(u16, u64)> = self
            .table
            .iter()
            .filter_map(|w| {
                let mark = self.writers.get(w.index as usize)?;
                let left = w.overwritten.saturating_sub(mark.overwritten);
                (left > 0).then_some((w.index, left))
            })
            .collect();
        let mut i = 0;
        while i < lost.len() {
            let next_event = (lost[i].before_event as usize).min(obs.events.len());
            let mut run: Vec<(ProducerKey, Option<Arc<str>>, LossTotals)> = Vec::new();
            while i < lost.len() && lost[i].before_event as usize == next_event {
                let l = lost[i];
                let (key, service) = if l.cause == LossCause::Overwritten && l.pid == 0 {
                    self.overwriter(&mut pool, ctx)
                } else {
                    producer_of(&l, ctx)
                };
                match run.iter_mut().find(|(k, _, _)| *k == key) {
                    Some((_, _, counts)) => count(counts, l.cause),
                    None => {
                        let mut counts = LossTotals::default();
                        count(&mut counts, l.cause);
                        run.push((key, service, counts));
                    }
                }
                i += 1;
            }
            let before = match next_event {
                0 => self.last_event_ns.unwrap_or(self.last_observed_ns),
                n => (obs.wall_ns)(&obs.events[n - 1]),
            };
            let after = obs
                .events
                .get(next_event)
                .map_or(obs.now_ns, |e| (obs.wall_ns)(e));
            for (key, service, counts) in run {
                markers.push(LossMarker {
                    pid: key.pid,
                    writer: key.writer,
                    service,
                    counts,
                    from_ts_ns: before.min(after),
                    to_ts_ns: before.max(after),
                    before_event: next_event,
                    cumulative: LossTotals::default(),
                });
            }
        }
    }

    /// The producer of the next overwritten event: the first writer of
    /// `pool` with overwrites left, or nobody known.
    fn overwriter(
        &mut self,
        pool: &mut [(u16, u64)],
        ctx: &RingContext,
    ) -> (ProducerKey, Option<Arc<str>>) {
        match pool.iter_mut().find(|(_, left)| *left > 0) {
            Some((index, left)) => {
                *left -= 1;
                let mark = &mut self.writers[*index as usize];
                mark.overwritten += 1;
                (
                    ProducerKey {
                        writer: Some(*index),
                        pid: Some(mark.pid),
                    },
                    ctx.service(*index).cloned(),
                )
            }
            None => (
                ProducerKey {
                    writer: None,
                    pid: None,
                },
                None,
            ),
        }
    }

    /// Gives each marker the cumulative counts up to it, adds them to the
    /// per-producer tallies, and moves the cursor past them.
    fn account(&mut self, markers: &mut [LossMarker]) {
        let mut running = self.marked;
        for m in markers.iter_mut() {
            running.add(&m.counts);
            m.cumulative = running;
            let tally = self
                .tallies
                .entry(ProducerKey {
                    writer: m.writer,
                    pid: m.pid,
                })
                .or_default();
            tally.counts.add(&m.counts);
            tally.last_loss_ns = tally.last_loss_ns.max(m.to_ts_ns);
            if tally.service.is_none() {
                tally.service = m.service.clone();
            }
        }
        self.marked = running;
        if !markers.is_empty() {
            self.cursor = LossCursor {
                cumulative: self.marked,
                to_ts_ns: markers.iter().map(|m| m.to_ts_ns).max().unwrap_or(0),
                writers: self
                    .writers
                    .iter()
                    .filter(|w| w.pid != 0)
                    .copied()
                    .collect(),
            };
        }
    }

    fn interval_marker(
        &self,
        writer: Option<u16>,
        pid: Option<u32>,
        service: Option<Arc<str>>,
        counts: LossTotals,
        now_ns: u64,
    ) -> LossMarker {
        LossMarker {
            pid,
            writer,
            service,
            counts,
            from_ts_ns: self.last_observed_ns.min(now_ns),
            to_ts_ns: now_ns,
            before_event: 0,
            cumulative: LossTotals::default(),
        }
    }

    /// Losses per producer since the reader started (each marker counted
    /// once), with liveness from `writers`.
    pub fn producers(
        &self,
        ring: &str,
        ring_id: &str,
        writers: &[WriterInfo],
    ) -> Vec<ProducerLoss> {
        let mut out: Vec<ProducerLoss> = self
            .tallies
            .iter()
            .map(|(key, t)| {
                let info = key
                    .writer
                    .and_then(|i| writers.iter().find(|w| w.index == i));
                ProducerLoss {
                    ring: ring.to_string(),
                    ring_id: ring_id.to_string(),
                    pid: key.pid,
                    service: t
                        .service
                        .as_deref()
                        .or_else(|| info.and_then(|w| w.service.as_deref()))
                        .map(str::to_string),
                    alive: info.map(|w| w.alive),
                    ring_full: t.counts.ring_full(),
                    overwritten: t.counts.overwritten,
                    abandoned: t.counts.abandoned,
                    torn: t.counts.torn,
                    total: t.counts.total(),
                    last_loss_ns: t.last_loss_ns,
                }
            })
            .collect();
        out.sort_by(|a, b| b.last_loss_ns.cmp(&a.last_loss_ns).then(a.pid.cmp(&b.pid)));
        out
    }

    /// Losses of the producer with writer index `writer`, if any.
    pub fn losses_of(&self, writer: u16) -> LossTotals {
        self.tallies
            .iter()
            .filter(|(k, _)| k.writer == Some(writer))
            .fold(LossTotals::default(), |mut acc, (_, t)| {
                acc.add(&t.counts);
                acc
            })
    }
}

/// What the ring's counters will say once the read is committed.
fn expected_totals(obs: &Observation<'_>) -> LossTotals {
    let c = &obs.counters;
    let mut pending = LossTotals::default();
    for l in obs.lost {
        count(&mut pending, l.cause);
    }
    LossTotals {
        dropped: c.dropped + pending.overwritten,
        overwritten: c.overwritten + pending.overwritten,
        abandoned: c.abandoned + pending.abandoned,
        torn: c.torn + pending.torn,
    }
}

/// The ring's loss counters.
pub fn totals_of(c: &Counters) -> LossTotals {
    LossTotals {
        dropped: c.dropped,
        overwritten: c.overwritten,
        abandoned: c.abandoned,
        torn: c.torn,
    }
}

/// Counts one lost position.
fn count(totals: &mut LossTotals, cause: LossCause) {
    match cause {
        LossCause::Abandoned => totals.abandoned += 1,
        LossCause::Torn => totals.torn += 1,
        LossCause::Overwritten => {
            totals.overwritten += 1;
            totals.dropped += 1;
        }
    }
}

/// The count of one cause.
fn get(totals: &LossTotals, cause: LossCause) -> u64 {
    match cause {
        LossCause::Abandoned => totals.abandoned,
        LossCause::Torn => totals.torn,
        LossCause::Overwritten => totals.overwritten,
    }
}

fn producer_of(l: &Loss, ctx: &RingContext) -> (ProducerKey, Option<Arc<str>>) {
    let writer = (l.writer != NO_WRITER && ctx.writer_known(l.writer)).then_some(l.writer);
    let pid = (l.pid != 0).then_some(l.pid);
    let service = writer.and_then(|w| ctx.service(w).cloned());
    (ProducerKey { writer, pid }, service)
}

#[cfg(test)]
mod tests;
