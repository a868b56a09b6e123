//! One attached ring: its consumer, the state the pipeline keeps for it,
//! and the read of one batch with the losses found in it.

use super::context::RingContext;
use super::lifecycle::Candidate;
use super::loss::{LossCursor, LossMarker, LossTracker, Observation};
use super::postmortem::{PostMortems, RingProgress, WriterWatch};
use super::processes::ProcessSampler;
use super::Batch;
use crate::support::holders::FileId;
use crate::support::json;
use crate::support::recent::Recent;
use crate::views::{
    ExporterCounts, ProducerLoss, RingAccount, RingCounters, RingStatus, StringLimit, WriterStatus,
};
use profilis::{Consumer, ConsumerOptions, OpenError, WriterInfo};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the reader keeps of a ring it detached: its last figures, and what
/// a new attachment of the same ring continues from.
pub(super) struct Detached {
    /// When it was detached: the oldest go first past the bound.
    pub at: Instant,
    pub status: RingStatus,
    pub account: RingAccount,
    pub exported: Vec<ExporterCounts>,
    pub loss: LossTracker,
    pub table: Vec<WriterInfo>,
}

/// An attached ring.
pub(super) struct Source {
    consumer: Consumer,
    pub ctx: RingContext,
    /// The file attached (its path may later name another file).
    file: Option<FileId>,
    /// From `--watch`: detached when its writers are gone and it is drained.
    pub watched: bool,
    /// Not looked at for retiring before this (its file was kept).
    pub recheck_at: Option<Instant>,
    /// `--once` / shutdown: drain up to these lane positions.
    target: Option<Vec<u64>>,
    /// Per exporter, what became of this ring's events.
    pub exported: Vec<ExporterCounts>,
    /// The slots of earlier attachments of this ring during the run.
    earlier_slots: Vec<u32>,
    /// Losses (dropped + abandoned + torn) over the last minute.
    losses: Recent,
    /// String-table overflows over the last minute.
    overflows: Recent,
    /// Whether the truncation of its file was reported.
    truncation_reported: bool,
    /// LOSS markers and per-producer loss totals.
    pub loss: LossTracker,
    /// Recent events per writer, for post-mortems.
    watch: WriterWatch,
    /// The writer table (with liveness) as of the last publish.
    pub table: Vec<WriterInfo>,
}

/// One batch of one ring as the pipeline takes it: the events, the LOSS
/// markers found with them, and where the ring's markers stand after them.
/// Read once; its losses taken once.
pub struct RingBatch<'a> {
    /// The ring's context (names, services, messages of the batch).
    pub ctx: &'a mut RingContext,
    /// The events.
    pub batch: Batch<'a>,
    /// LOSS markers, in output order (see [`super::loss`]).
    pub markers: Vec<LossMarker>,
    /// The ring's cumulative loss counts and per-writer marks after them.
    pub cursor: &'a LossCursor,
    /// Per exporter, what became of this ring's events so far.
    pub exported: &'a mut [ExporterCounts],
    /// Positions passed: events and losses (a reader catching up over
    /// overwritten or torn records is not idle).
    pub progress: usize,
    /// How close the batch came to a bound a pause must not overrun, in
    /// parts of [`FILL_FULL`]: the larger of its positions over one lane's
    /// slots and of the message numbers its events span over the message
    /// slots; full when it took all the positions it was allowed.
    pub fill: u32,
}

/// [`RingBatch::fill`] of a batch that reached a bound.
pub const FILL_FULL: u32 = 1024;

/// How close a batch came to what the reader must not let overrun while
/// it pauses, in parts of [`FILL_FULL`]: the larger of the positions
/// passed over one lane's slots (a lane that fills overwrites or drops)
/// and the message numbers the batch's events span over the message slots
/// (a message overwritten before it is read is lost). A batch that took
/// all of `limit` (the batch size: more is waiting) and a final round
/// (`limit` 0) count as full. The batch size itself is no bound a pause
/// can overrun (what a round leaves, the next takes), so it does not cap
/// how full batches are gathered.
fn batch_fill(
    progress: usize,
    limit: usize,
    lane_slots: u64,
    message_slots: u64,
    events: &[profilis::Event],
) -> u32 {
    if limit == 0 || progress >= limit {
        return FILL_FULL;
    }
    let share = |used: u64, bound: u64| -> u32 {
        (used.saturating_mul(FILL_FULL as u64) / bound.max(1)).min(FILL_FULL as u64) as u32
    };
    share(progress as u64, lane_slots).max(share(message_span(events), message_slots))
}

/// How many message numbers the events' messages span (a message with a
/// stack trace takes a run of numbers; the last run's tail is not seen).
fn message_span(events: &[profilis::Event]) -> u64 {
    // Message numbers are 31 bits and wrap; a batch spans far fewer.
    const MASK: u32 = 0x7FFF_FFFF;
    let mut refs = events
        .iter()
        .filter(|e| e.message.0 != 0)
        .map(|e| e.message.0 - 1);
    let Some(first) = refs.next() else {
        return 0;
    };
    let (mut low, mut high, mut count) = (0u32, 0u32, 1u64);
    for n in refs {
        let d = n.wrapping_sub(first) & MASK;
        if d <= MASK / 2 {
            high = high.max(d);
        } else {
            low = low.max(MASK - d + 1);
        }
        count += 1;
    }
    (u64::from(low) + u64::from(high) + 1).max(count)
}

impl Source {
    /// Attaches the ring at `path` as attachment `slot`.
    pub fn attach(
        path: &Path,
        slot: u32,
        watched: bool,
        options: &super::IngestOptions,
        exporters: usize,
    ) -> Result<Source, OpenError> {
        let mut consumer = Consumer::attach_with(
            path,
            ConsumerOptions {
                liveness_interval: options.liveness_interval,
            },
        )?;
        let file = FileId::of(path).ok();
        let info = *consumer.info();
        let mut ctx = RingContext::new(slot, path, info.ring_id, info.params.string_entries);
        ctx.lanes = info.params.lanes;
        let now = Instant::now();
        ctx.refresh_writers(&consumer.writers(), None, now);
        let target = options.once.then(|| {
            // The events of writers already gone count too: publish what
            // they were in the middle of before taking the marks.
            consumer.reclaim_dead();
            consumer.tails()
        });
        // Overflows from before the reader attached are old news.
        let overflows = Recent::starting(now, consumer.strings_overflow());
        Ok(Source {
            consumer,
            ctx,
            file,
            watched,
            recheck_at: None,
            target,
            exported: vec![ExporterCounts::default(); exporters],
            earlier_slots: Vec::new(),
            losses: Recent::default(),
            overflows,
            truncation_reported: false,
            loss: LossTracker::new(info.created_wall_ns, None),
            watch: WriterWatch::new(options.postmortem_events),
            table: Vec::new(),
        })
    }

    /// Continues where a detached attachment of the same ring stopped, or
    /// where the file exporter's LOSS lines stand (`cursor`).
    pub fn resume(&mut self, old: Option<Detached>, cursor: Option<LossCursor>) {
        match old {
            Some(old) => {
                self.exported = old.exported;
                self.earlier_slots = old.account.slots;
                self.loss = old.loss;
                self.table = old.table;
            }
            None => {
                let created = self.consumer.info().created_wall_ns;
                self.loss = LossTracker::new(created, cursor);
            }
        }
    }

    /// Reads up to `limit` positions and takes the losses the read found:
    /// the batch is read once and its losses taken once. `force`: attribute
    /// and report every loss now (final round).
    pub fn read(&mut self, limit: usize, force: bool, now: Instant, now_ns: u64) -> RingBatch<'_> {
        let Source {
            consumer,
            ctx,
            loss,
            watch,
            exported,
            ..
        } = self;
        consumer.read(limit);
        // The losses of earlier batches came with them; only this batch's
        // are news.
        let _ = consumer.take_losses();
        for a in consumer.take_anomalies() {
            tracing::error!(
                "error: ring file {}: lane {} held position {} with the reader at {}, which no writer produces (a damaged or tampered file); the lane was reset, counted in repairs",
                ctx.path.display(),
                a.lane,
                a.tail,
                a.head
            );
        }
        let batch = consumer.batch();
        let unknown_writer = batch
            .events
            .iter()
            .find(|e| ctx.needs_writer_refresh(e, now))
            .map(|e| e.writer);
        if unknown_writer.is_some() {
            // A writer registered since the table was last read: learn its
            // service before the batch is rendered.
            ctx.refresh_writers(&consumer.writers(), unknown_writer, now);
        }
        let wall_ns = |e: &profilis::Event| batch.wall_ns(e);
        let observation = Observation {
            counters: consumer.counters(),
            lost: batch.losses,
            untold: batch.losses_untold,
            events: batch.events,
            wall_ns: &wall_ns,
            now_ns,
            now,
            force,
        };
        let markers = loss.observe(&observation, ctx, &mut || consumer.writers());
        let progress = batch.events.len() + batch.losses.len() + batch.losses_untold as usize;
        let params = &consumer.info().params;
        let fill = batch_fill(
            progress,
            limit,
            params.lane_slots(),
            params.message_slots,
            batch.events,
        );
        if !batch.events.is_empty() {
            ctx.begin_batch();
            watch.record_batch(ctx, batch.names, batch.events, |e| batch.wall_ns(e));
        }
        RingBatch {
            ctx,
            batch: Batch::from(batch),
            markers,
            cursor: loss.cursor(),
            exported,
            progress,
            fill,
        }
    }

    /// Releases the batch just read; reports (once) a file truncated while
    /// attached.
    pub fn commit(&mut self) {
        // Also after an empty read: it may have passed torn or abandoned
        // positions, which the commit counts and releases.
        self.consumer.commit();
        if self.consumer.truncated() && !self.truncation_reported {
            self.truncation_reported = true;
            tracing::error!(
                "error: ring file {} was truncated while attached; nothing more can be read from it ({} events still in it are lost); the other rings go on",
                self.ctx.path.display(),
                self.consumer.lag()
            );
        }
    }

    /// Sets the drain target to what the writers have written as of now.
    pub fn target_tail(&mut self) {
        self.consumer.reclaim_dead();
        self.target = Some(self.consumer.tails());
    }

    /// Whether the ring is drained to its target (a truncated ring yields
    /// nothing more, so it counts as done).
    pub fn reached_target(&self) -> bool {
        self.consumer.truncated()
            || self
                .target
                .as_ref()
                .is_none_or(|t| self.consumer.caught_up(t))
    }

    /// The writer table now, when this ring is finished: drained (or
    /// truncated) and its writers all gone, or (a watched ring) its file
    /// removed or replaced. The rings named on the command line are only
    /// looked at when `named` is true (their files are removed when
    /// finished).
    pub fn finished(&self, named: bool) -> Option<(Vec<WriterInfo>, bool)> {
        if !self.watched && !named {
            return None;
        }
        // A truncated ring yields nothing more: as drained as it gets.
        let drained = self.consumer.lag() == 0 || self.consumer.truncated();
        if !drained {
            return None;
        }
        let gone = self.file.is_none() || FileId::of(&self.ctx.path).ok() != self.file;
        let writers = self.consumer.writers();
        let exited = !writers.is_empty() && writers.iter().all(|w| !w.alive);
        let finished = exited || (gone && self.watched);
        finished.then_some((writers, gone))
    }

    /// The identity of the ring's file as attached, when it could be read.
    pub fn file_id(&self) -> Option<FileId> {
        self.file
    }

    /// Slots of each of the ring's lanes.
    pub fn lane_slots(&self) -> u64 {
        self.consumer.info().params.lane_slots()
    }

    /// The ring's file as a candidate for removal (see [`lifecycle`]),
    /// unless its identity could not be read when it was attached.
    pub fn removal(&self) -> Option<Candidate<'_>> {
        Some(Candidate {
            consumer: &self.consumer,
            path: &self.ctx.path,
            file: self.file?,
        })
    }

    /// Reads the writer table (with liveness) again.
    pub fn refresh_table(&mut self) {
        self.table = self.consumer.writers();
    }

    /// Notes writers found dead in the last table read and freezes the
    /// post-mortems of those whose events are all drained.
    /// Each post-mortem takes the process's last CPU and memory sample.
    pub fn check_writers(
        &mut self,
        now_ns: u64,
        postmortems: &mut PostMortems,
        processes: &ProcessSampler,
    ) {
        let path = self.ctx.path.display().to_string();
        let consumer = &self.consumer;
        let loss = &self.loss;
        let progress = RingProgress {
            marks_after: &|pid| {
                (!consumer.lanes().iter().any(|l| l.pid == pid)).then(|| consumer.tails())
            },
            drained: &|marks| consumer.caught_up(marks),
        };
        let found = self.watch.check(
            &self.table,
            &progress,
            now_ns,
            &|w| last_seen_ns(consumer, w),
            &|index| loss.losses_of(index),
            &mut self.ctx,
            consumer.names(),
            &path,
        );
        for mut pm in found {
            pm.process = processes.last_sample(pm.pid, pm.start_time);
            postmortems.add(pm);
        }
    }

    /// Losses per producer since the reader started.
    pub fn producer_losses(&self) -> Vec<ProducerLoss> {
        self.loss.producers(
            &self.ctx.path.display().to_string(),
            &json::hex64(self.ctx.ring_id),
            &self.table,
        )
    }

    /// Events lost in about the last minute, as of `now`.
    pub fn lost_last_minute(&mut self, now: Instant) -> u64 {
        let c = self.consumer.counters();
        self.losses.update(now, c.dropped + c.abandoned + c.torn)
    }

    /// The ring as the snapshot shows it; `primary` is the exporter whose
    /// counts it reports.
    pub fn status(&self, primary: Option<usize>, lost_last_minute: u64) -> RingStatus {
        let c = self.consumer.counters();
        let info = self.consumer.info();
        let counts = primary.map(|p| self.exported[p]).unwrap_or_default();
        let lanes = self.consumer.lanes();
        let fullest_lane = lanes
            .iter()
            .map(|l| l.tail.saturating_sub(l.head))
            .max()
            .unwrap_or(0);
        let lane_slots = info.params.lane_slots().max(1);
        RingStatus {
            path: self.ctx.path.display().to_string(),
            ring_id: json::hex64(info.ring_id),
            capacity: info.params.capacity,
            lanes: info.params.lanes,
            lanes_held: lanes.iter().filter(|l| l.pid != 0).count() as u64,
            policy: info.policy.as_str(),
            attached: true,
            truncated: self.consumer.truncated(),
            lost_last_minute,
            lag: c.in_flight,
            fullest_lane,
            depth_ratio: (fullest_lane as f64 / lane_slots as f64).min(1.0),
            counters: RingCounters::from(c),
            exported: counts.exported,
            export_lost: counts.lost,
            duplicates_skipped: counts.duplicates_skipped,
            unresolved: c.names_unresolved,
            strings_overflow: self.consumer.strings_overflow(),
            messages_lost: c.messages_lost,
            messages_unread: c.messages_unread,
            repairs: c.repairs,
            writers: self
                .table
                .iter()
                .map(|w| WriterStatus {
                    pid: w.pid,
                    service: w.service.as_deref().map(str::to_string),
                    alive: w.alive,
                    dropped: w.dropped,
                    registered_ns: w.registered_wall_ns,
                    last_seen_ns: last_seen_ns(&self.consumer, w)
                        .max(self.watch.last_event_ns(w.index)),
                })
                .collect(),
        }
    }

    /// The string table's use, and its overflows in about the last minute.
    pub fn string_limit(&mut self, now: Instant) -> StringLimit {
        let table = self.consumer.string_table();
        StringLimit {
            ring: self.ctx.path.display().to_string(),
            ring_id: json::hex64(self.ctx.ring_id),
            entries: table.entries,
            entries_used: table.entries_used,
            arena_bytes: table.arena_bytes,
            arena_used: table.arena_used,
            overflow: table.overflow,
            overflow_last_minute: self.overflows.update(now, table.overflow),
        }
    }

    /// The `--accounting` line; `exporters` names them, `primary` is the
    /// one whose counts are `exported` and `export_lost`.
    pub fn account(&self, exporters: &[&'static str], primary: Option<usize>) -> RingAccount {
        let c = self.consumer.counters();
        let counts = primary.map(|p| self.exported[p]).unwrap_or_default();
        let mut slots = self.earlier_slots.clone();
        slots.push(self.ctx.slot);
        RingAccount {
            slots,
            ring: self.ctx.path.display().to_string(),
            ring_id: json::hex64(self.ctx.ring_id),
            received: c.received,
            dropped: c.dropped,
            abandoned: c.abandoned,
            torn: c.torn,
            claimed: c.claimed,
            lag: c.in_flight,
            messages_lost: c.messages_lost,
            messages_unread: c.messages_unread,
            names_unresolved: c.names_unresolved,
            repairs: c.repairs,
            exported: counts.exported,
            export_lost: counts.lost,
            duplicates_skipped: counts.duplicates_skipped,
            exporters: exporters
                .iter()
                .zip(&self.exported)
                .map(|(name, c)| (*name, *c))
                .collect(),
        }
    }

    /// The ring's file.
    pub fn path(&self) -> &PathBuf {
        &self.ctx.path
    }
}

/// When a writer was last seen alive: its heartbeat, as wall-clock ns (0
/// when it has none).
fn last_seen_ns(consumer: &Consumer, w: &WriterInfo) -> u64 {
    if w.heartbeat_mono_ns == 0 {
        0
    } else {
        consumer.wall_ns(w.heartbeat_mono_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::{batch_fill, message_span, FILL_FULL};
    use profilis::{Event, Kind, MsgRef};

    fn event(message: u32) -> Event {
        Event {
            kind: Kind::Req,
            status: 500,
            message: MsgRef(message),
            ..crate::support::test_event::blank()
        }
    }

    #[test]
    fn message_span_covers_the_numbers_between_the_first_and_last_message() {
        assert_eq!(message_span(&[event(0), event(0)]), 0);
        assert_eq!(message_span(&[event(7)]), 1);
        // Numbers 10..=19 (refs are number + 1), out of order across lanes,
        // with events that carry no message.
        let batch = [event(15), event(0), event(11), event(20), event(13)];
        assert_eq!(message_span(&batch), 10);
        // Across the 31-bit wrap: numbers 0x7FFF_FFFE, 0x7FFF_FFFF, 0, 1, 2.
        let wrap = [event(0x7FFF_FFFF), event(0x8000_0000), event(3)];
        assert_eq!(message_span(&wrap), 5);
    }

    #[test]
    fn fill_is_the_larger_share_of_lane_and_message_slots_and_a_full_batch_is_full() {
        let none: [Event; 0] = [];
        assert_eq!(batch_fill(1024, 4096, 16384, 256, &none), FILL_FULL / 16);
        // A small lane bounds the pause.
        assert_eq!(batch_fill(100, 4096, 256, 256, &none), 400);
        // 64 message numbers of 256 slots: a quarter.
        let messages: Vec<Event> = (1..=64).map(event).collect();
        assert_eq!(batch_fill(64, 4096, 16384, 256, &messages), FILL_FULL / 4);
        // A batch that took all it was allowed: more is waiting.
        assert_eq!(batch_fill(4096, 4096, 16384, 256, &none), FILL_FULL);
        assert_eq!(
            batch_fill(4095, 4096, 16384, 256, &none),
            4095 * 1024 / 16384
        );
        // Never above full; a final round (no limit) is full.
        assert_eq!(batch_fill(90000, 100000, 16384, 256, &none), FILL_FULL);
        assert_eq!(batch_fill(1, 0, 16384, 256, &none), FILL_FULL);
    }
}
