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
//!   them (a claim skipped after the stall timeout, a torn record, an event
//!   overwritten before it was read) gives one marker per producer, placed
//!   between the delivered events around the run. `from_ts_ns`/`to_ts_ns`
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
//! with `pid: null`); overwritten events from its `overwritten` counters;
//! abandoned claims from the slot (who claimed it); torn records have no
//! known producer. Whatever cannot be attributed goes into a marker with no
//! pid.
//!
//! The invariant: each marker carries the ring's cumulative loss counts that
//! the markers up to it account for, and they always add up, so the sums of
//! all markers of a ring equal its `dropped`, `abandoned` and `torn`
//! counters once everything is drained. A restarting reader continues from
//! the last cumulative counts the JSONL exporter recorded (see
//! [`crate::exporters::jsonl`]), so nothing is marked twice or left out.

use crate::ring_context::RingContext;
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
    /// Claims skipped by the read (from `take_losses`).
    pub skipped: &'a [Loss],
    /// Losses beyond what the consumer kept (counted, positions unknown).
    pub untold: u64,
    /// Losses the commit of this read will count (`pending_losses`).
    pub pending: &'a [Loss],
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
        let c = &obs.counters;
        let mut pending = LossTotals::default();
        for l in obs.pending {
            count(&mut pending, l.cause);
        }
        let expected = LossTotals {
            dropped: c.dropped + pending.overwritten,
            overwritten: c.overwritten + pending.overwritten,
            abandoned: c.abandoned + pending.abandoned,
            torn: c.torn + pending.torn,
        };
        let new_full = c.dropped_full.saturating_sub(self.marked.ring_full());
        if obs.skipped.is_empty()
            && obs.pending.is_empty()
            && obs.untold == 0
            && new_full == 0
            && expected == self.marked
        {
            self.last_observed_ns = self.last_observed_ns.max(obs.now_ns);
            if let Some(e) = obs.events.last() {
                self.last_event_ns = Some((obs.wall_ns)(e));
            }
            return Vec::new();
        }

        // Positions lost, oldest first. Those an earlier run already marked
        // (a batch delivered again after a restart) are the oldest ones.
        let mut lost: Vec<Loss> = obs.skipped.iter().chain(obs.pending).copied().collect();
        lost.sort_by_key(|l| l.position);
        let mut extra = LossTotals::default();
        for cause in [
            LossCause::Abandoned,
            LossCause::Torn,
            LossCause::Overwritten,
        ] {
            let new = get(&expected, cause).saturating_sub(get(&self.marked, cause));
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

        let overwrites = lost.iter().any(|l| l.cause == LossCause::Overwritten);
        let table_due = self
            .table_read_at
            .is_none_or(|t| obs.now.duration_since(t) >= TABLE_READ_EVERY);
        if (new_full > 0 || overwrites) && (table_due || obs.force) {
            self.table = table();
            self.table_read_at = Some(obs.now);
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

        let mut markers = Vec::new();
        let mut held = false;
        // Refused events, per writer, from the table's counters.
        if new_full > 0 && (table_due || obs.force) {
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
                // The writer may not have counted it in its entry yet.
                self.held_back = true;
                held = true;
            } else {
                self.held_back = false;
                extra.dropped += remaining;
            }
        } else if new_full > 0 {
            held = true;
        }
        if !extra.is_empty() {
            markers.push(self.interval_marker(None, None, None, extra, obs.now_ns));
        }

        // Gap markers, between the delivered events around each run.
        let mut pool: Vec<(u16, u64)> = self
            .table
            .iter()
            .filter_map(|w| {
                let mark = self.writers.get(w.index as usize)?;
                let left = w.overwritten.saturating_sub(mark.overwritten);
                (left > 0).then_some((w.index, left))
            })
            .collect();
        let mut next_event = 0;
        let mut i = 0;
        while i < lost.len() {
            while next_event < obs.events.len()
                && obs.events[next_event].position < lost[i].position
            {
                next_event += 1;
            }
            let end = obs.events.get(next_event).map_or(u64::MAX, |e| e.position);
            let mut run: Vec<(ProducerKey, Option<Arc<str>>, LossTotals)> = Vec::new();
            while i < lost.len() && lost[i].position < end {
                let l = lost[i];
                let (key, service) = if l.cause == LossCause::Overwritten {
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

        let mut running = self.marked;
        for m in &mut markers {
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
        if !held {
            self.last_observed_ns = self.last_observed_ns.max(obs.now_ns);
        }
        if let Some(e) = obs.events.last() {
            self.last_event_ns = Some((obs.wall_ns)(e));
        }
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
        markers
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
mod tests {
    use super::*;
    use profilis::{Consumer, Ring, RingOptions};

    fn observe(
        tracker: &mut LossTracker,
        consumer: &mut Consumer,
        ctx: &mut RingContext,
        now_ns: u64,
        force: bool,
    ) -> Vec<LossMarker> {
        consumer.read(4096);
        let (skipped, untold) = consumer.take_losses();
        ctx.refresh_writers(&consumer.writers(), None, Instant::now());
        let batch = consumer.batch();
        let obs = Observation {
            counters: consumer.counters(),
            skipped: &skipped,
            untold,
            pending: consumer.pending_losses(),
            events: batch.events,
            wall_ns: &|e| batch.wall_ns(e),
            now_ns,
            now: Instant::now(),
            force,
        };
        let markers = tracker.observe(&obs, ctx, &mut || consumer.writers());
        consumer.commit();
        consumer.take_losses();
        markers
    }

    fn sum(markers: &[LossMarker]) -> LossTotals {
        let mut t = LossTotals::default();
        for m in markers {
            t.add(&m.counts);
        }
        t
    }

    #[test]
    fn drops_and_abandoned_claims_are_attributed_and_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.ring");
        let ring =
            Ring::create_or_open(&path, RingOptions::default().capacity(8).service("svc")).unwrap();
        let mut consumer = Consumer::attach_with(
            &path,
            profilis::ConsumerOptions {
                stall_timeout: Duration::from_millis(1),
            },
        )
        .unwrap();
        let info = *consumer.info();
        let mut ctx = RingContext::new(0, &path, info.ring_id, 4096);
        let mut tracker = LossTracker::new(info.created_wall_ns, None);
        ring.emit_fn("a", 1, false);
        // Claimed and never committed, as a writer killed mid-event leaves it.
        let _claim = ring.claim().unwrap();
        for _ in 0..10 {
            ring.emit_fn("b", 2, false);
        }
        let mut all = observe(&mut tracker, &mut consumer, &mut ctx, 10, true);
        let end = Instant::now() + Duration::from_secs(5);
        while consumer.counters().in_flight > 0 && Instant::now() < end {
            all.extend(observe(&mut tracker, &mut consumer, &mut ctx, 20, true));
        }
        all.extend(observe(&mut tracker, &mut consumer, &mut ctx, 30, true));
        let c = consumer.counters();
        assert_eq!((c.dropped, c.abandoned), (4, 1), "{c:?}");
        assert_eq!(sum(&all), totals_of(&c));
        assert_eq!(tracker.marked(), totals_of(&c));
        assert_eq!(all.last().unwrap().cumulative, totals_of(&c));
        let me = std::process::id();
        let abandoned = all.iter().find(|m| m.counts.abandoned == 1).unwrap();
        assert_eq!(
            abandoned.pid,
            Some(me),
            "the claim's stamp names its writer"
        );
        assert_eq!(abandoned.service.as_deref(), Some("svc"));
        let dropped: u64 = all
            .iter()
            .filter(|m| m.pid == Some(me))
            .map(|m| m.counts.dropped)
            .sum();
        assert_eq!(dropped, 4, "refused events charged to this process");
        let producers = tracker.producers("l.ring", "x", &consumer.writers());
        assert_eq!(producers.len(), 1);
        assert_eq!(
            (
                producers[0].ring_full,
                producers[0].abandoned,
                producers[0].total
            ),
            (4, 1, 5)
        );
    }

    #[test]
    fn a_cursor_from_an_earlier_run_is_not_marked_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.ring");
        let ring = Ring::create_or_open(&path, RingOptions::default().capacity(4)).unwrap();
        for _ in 0..6 {
            ring.emit_fn("x", 1, false);
        }
        let mut consumer = Consumer::attach(&path).unwrap();
        let info = *consumer.info();
        let mut ctx = RingContext::new(0, &path, info.ring_id, 4096);
        // An earlier run marked one of the two drops.
        let cursor = LossCursor {
            cumulative: LossTotals {
                dropped: 1,
                ..LossTotals::default()
            },
            to_ts_ns: 5,
            writers: Vec::new(),
        };
        let mut tracker = LossTracker::new(1, Some(cursor));
        let markers = observe(&mut tracker, &mut consumer, &mut ctx, 50, true);
        assert_eq!(sum(&markers).dropped, 1, "{markers:?}");
        assert_eq!(markers[0].from_ts_ns, 5, "from where the last marker ended");
        assert_eq!(markers.last().unwrap().cumulative.dropped, 2);
        assert!(observe(&mut tracker, &mut consumer, &mut ctx, 60, true).is_empty());
    }

    #[test]
    fn gap_markers_sit_between_the_events_around_the_loss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.ring");
        let ring = Ring::create_or_open(&path, RingOptions::default().capacity(16)).unwrap();
        let consumer = Consumer::attach(&path).unwrap();
        let info = *consumer.info();
        let ctx = RingContext::new(0, &path, info.ring_id, 4096);
        let mut tracker = LossTracker::new(info.created_wall_ns, None);
        let events: Vec<Event> = [(0u64, 100u64), (1, 110), (3, 130), (4, 140)]
            .iter()
            .map(|&(position, ts_mono_ns)| Event {
                position,
                ts_mono_ns,
                ..event_template()
            })
            .collect();
        let torn = [Loss {
            position: 2,
            cause: LossCause::Torn,
            pid: 0,
            writer: NO_WRITER,
        }];
        drop(ring);
        let obs = Observation {
            counters: Counters {
                claimed: 5,
                received: 4,
                tail: 5,
                ..Counters::default()
            },
            skipped: &[],
            untold: 0,
            pending: &torn,
            events: &events,
            wall_ns: &|e| e.ts_mono_ns,
            now_ns: 200,
            now: Instant::now(),
            force: false,
        };
        let markers = tracker.observe(&obs, &ctx, &mut || consumer.writers());
        assert_eq!(markers.len(), 1);
        let m = &markers[0];
        assert_eq!((m.before_event, m.from_ts_ns, m.to_ts_ns), (2, 110, 130));
        assert_eq!((m.pid, m.counts.torn, m.cumulative.torn), (None, 1, 1));
        assert_eq!(tracker.cursor().cumulative.torn, 1);
    }

    #[test]
    fn a_batch_delivered_again_after_a_restart_marks_only_its_new_losses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.ring");
        let ring = Ring::create_or_open(&path, RingOptions::default().capacity(16)).unwrap();
        let consumer = Consumer::attach(&path).unwrap();
        let info = *consumer.info();
        let ctx = RingContext::new(0, &path, info.ring_id, 4096);
        drop(ring);
        // The killed run wrote the batch with a marker for the torn record
        // at position 1; the batch comes again, now with a second one at 3.
        let cursor = LossCursor {
            cumulative: LossTotals {
                torn: 1,
                ..LossTotals::default()
            },
            to_ts_ns: 120,
            writers: Vec::new(),
        };
        let mut tracker = LossTracker::new(info.created_wall_ns, Some(cursor));
        let events: Vec<Event> = [(0u64, 100u64), (2, 130), (4, 150)]
            .iter()
            .map(|&(position, ts_mono_ns)| Event {
                position,
                ts_mono_ns,
                ..event_template()
            })
            .collect();
        let torn = |position| Loss {
            position,
            cause: LossCause::Torn,
            pid: 0,
            writer: NO_WRITER,
        };
        let pending = [torn(1), torn(3)];
        let obs = Observation {
            counters: Counters {
                claimed: 5,
                tail: 5,
                ..Counters::default()
            },
            skipped: &[],
            untold: 0,
            pending: &pending,
            events: &events,
            wall_ns: &|e| e.ts_mono_ns,
            now_ns: 200,
            now: Instant::now(),
            force: false,
        };
        let markers = tracker.observe(&obs, &ctx, &mut || consumer.writers());
        assert_eq!(markers.len(), 1, "{markers:?}");
        assert_eq!(
            markers[0].before_event, 2,
            "the second one, between 2 and 4"
        );
        assert_eq!((markers[0].counts.torn, markers[0].cumulative.torn), (1, 2));
    }

    fn event_template() -> Event {
        Event {
            position: 0,
            kind: profilis::Kind::Fn,
            flags: 0,
            method: profilis::Method::None,
            status: 0,
            name: profilis::StrId(1),
            exception_type: profilis::StrId::NONE,
            message: profilis::MsgRef(0),
            pid: 1,
            tid: 1,
            ts_mono_ns: 0,
            dur_ns: 0,
            trace_id: 0,
            span_id: 0,
            parent_span_id: 0,
            value: 0,
            value2: 0,
            writer: NO_WRITER,
        }
    }
}
