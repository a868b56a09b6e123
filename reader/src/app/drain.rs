//! The drain loop: the pipeline on its own thread. Each round takes the
//! next batch of every ring from [`crate::ingest`] (events and the LOSS
//! markers found with them), records it in the [`crate::window`] tables,
//! hands it to every exporter (the JSONL exporter writes the whole batch
//! with one write), commits the ring, and lets the exporters do their
//! housekeeping (rotation: here, or before the write of a batch that would
//! overflow the file; never between a write and its commit). A reader
//! killed at any point has either written a batch or not committed it; see
//! [`crate::outputs::jsonl`] for how duplicates are avoided. Every flush
//! interval the writer tables are checked for dead processes and a
//! [`Snapshot`] is published.
//!
//! Pacing between rounds: the `pace` module (app/pace.rs).

use super::pace::{Backoff, Pace};
use crate::ingest::loss::LossCursor;
use crate::ingest::{IngestOptions, RingBatch, Rings, DEFAULT_MAX_RINGS};
use crate::outputs::{Exported, Exporter, LossBatch};
use crate::support::cpu::{clock_ticks_per_sec, cpu_ticks};
use crate::support::recent::Recent;
use crate::support::{json, timefmt};
use crate::views::{
    ExporterCounts, ExporterStatus, Limit, Limits, ProducersSnapshot, ReaderMetrics, RingAccount,
    Snapshot, SnapshotHandle,
};
use crate::window::stats::StatsConfig;
use crate::window::Window;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Settings of the drain loop.
#[derive(Clone, Debug)]
pub struct DrainOptions {
    /// Ring files named explicitly (never detached).
    pub rings: Vec<PathBuf>,
    /// Directory whose `*.ring` files are attached as they appear.
    pub watch: Option<PathBuf>,
    /// Wait for missing ring files / watch directory instead of failing.
    pub wait: bool,
    /// Drain what is committed now, then stop.
    pub once: bool,
    /// Most positions per batch.
    pub batch_max: usize,
    /// Snapshot and housekeeping interval.
    pub flush_interval: Duration,
    /// How often lane holders are checked for a process that is gone.
    pub liveness_interval: Duration,
    /// Most rings attached at once; further ring files are refused (logged
    /// and counted) until one is detached.
    pub max_rings: usize,
    /// Statistics settings.
    pub stats: StatsConfig,
    /// Post-mortem and worker-view settings.
    pub producers: ProducerOptions,
    /// Keep the files of finished rings (`--keep-rings`).
    pub keep_rings: bool,
    /// Stop once no other process has had any ring open or mapped for
    /// this long (`--exit-when-unused`; never with `once`).
    pub exit_when_unused: Option<Duration>,
}

/// Settings of the per-producer features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerOptions {
    /// Events kept per writer for its post-mortem (0: none).
    pub postmortem_events: usize,
    /// Workers per service with their own breakdown.
    pub max_workers: usize,
    /// How often the writer processes' CPU and memory are sampled (zero:
    /// never).
    pub process_interval: Duration,
}

impl Default for ProducerOptions {
    fn default() -> Self {
        ProducerOptions {
            postmortem_events: 100,
            max_workers: 32,
            process_interval: Duration::from_secs(1),
        }
    }
}

impl Default for DrainOptions {
    fn default() -> Self {
        DrainOptions {
            rings: Vec::new(),
            watch: None,
            wait: false,
            once: false,
            batch_max: 4096,
            flush_interval: Duration::from_secs(1),
            liveness_interval: Duration::from_millis(50),
            max_rings: DEFAULT_MAX_RINGS,
            stats: StatsConfig::default(),
            producers: ProducerOptions::default(),
            keep_rings: false,
            exit_when_unused: None,
        }
    }
}

impl DrainOptions {
    fn ingest(&self) -> IngestOptions {
        IngestOptions {
            rings: self.rings.clone(),
            watch: self.watch.clone(),
            wait: self.wait,
            once: self.once,
            liveness_interval: self.liveness_interval,
            max_rings: self.max_rings,
            postmortem_events: self.producers.postmortem_events,
            keep_files: self.keep_rings,
            process_interval: self.producers.process_interval,
        }
    }
}

/// What the drain loop returns when it stops.
#[derive(Clone, Debug, Default)]
pub struct DrainReport {
    /// One entry per ring attached during the run.
    pub rings: Vec<RingAccount>,
    /// Events lost to exporter errors, all exporters and rings.
    pub export_lost: u64,
    /// Final figures of each exporter.
    pub exporters: Vec<ExporterStatus>,
}

/// The exporters, and the one whose counts are the rings' own
/// (`--accounting`'s `exported`).
struct Outputs {
    exporters: Vec<Box<dyn Exporter>>,
    primary: Option<usize>,
}

impl Outputs {
    /// Where the LOSS markers of ring `ring_id` stand in the primary
    /// exporter's output from an earlier run.
    fn loss_cursor(&self, ring_id: u64) -> Option<LossCursor> {
        self.primary
            .and_then(|p| self.exporters[p].loss_cursor(ring_id))
    }

    /// Hands a batch to every exporter; counts what became of it per ring.
    fn export(&mut self, batch: RingBatch<'_>) {
        let RingBatch {
            ctx,
            batch,
            markers,
            cursor,
            exported,
            ..
        } = batch;
        let losses = LossBatch {
            markers: &markers,
            cursor,
        };
        for (exporter, counts) in self.exporters.iter_mut().zip(exported.iter_mut()) {
            let Exported {
                written,
                lost,
                skipped,
            } = exporter.export_with_losses(ctx, &batch, &losses);
            counts.exported += written;
            counts.lost += lost;
            counts.duplicates_skipped += skipped;
        }
    }

    /// Puts the final counts of exporters that learn what became of the
    /// events after the batch (see [`Exporter::ring_counts`]) into a
    /// ring's account.
    fn settle(&self, account: &mut RingAccount) {
        for (i, exporter) in self.exporters.iter().enumerate() {
            let mut settled: Option<ExporterCounts> = None;
            for &slot in &account.slots {
                if let Some(c) = exporter.ring_counts(slot) {
                    let sum = settled.get_or_insert_with(ExporterCounts::default);
                    sum.exported += c.exported;
                    sum.lost += c.lost;
                }
            }
            let Some(settled) = settled else {
                continue;
            };
            let entry = account.exporters.entry(exporter.name()).or_default();
            entry.exported = settled.exported;
            entry.lost = settled.lost;
            if self.primary == Some(i) {
                account.exported = settled.exported;
                account.export_lost = settled.lost;
            }
        }
    }

    fn maintain(&mut self, now: Instant) {
        for e in &mut self.exporters {
            e.maintain(now);
        }
    }

    fn status(&self) -> Vec<ExporterStatus> {
        self.exporters.iter().map(|e| e.status()).collect()
    }
}

/// The reader's own figures between two snapshots.
struct SelfMetrics {
    events: u64,
    batches: u64,
    started: Instant,
    started_ns: u64,
    /// At the last snapshot: when, CPU ticks used, events drained.
    sampled: (Instant, u64, u64),
    export_losses: Recent,
}

/// Growth over the last minute of the hit counters of the window and
/// exporter limits (all zero when the reader starts).
struct LimitHits {
    routes: Recent,
    errors: Recent,
    jsonl_bytes: Recent,
    jsonl_files: Recent,
}

/// The drain loop.
pub struct Drain {
    options: DrainOptions,
    rings: Rings,
    window: Window,
    outputs: Outputs,
    handle: SnapshotHandle,
    shutdown: Arc<AtomicBool>,
    metrics: SelfMetrics,
    limit_hits: LimitHits,
    next_housekeeping: Instant,
    next_publish: Instant,
    /// When the rings were last seen in use by another process, and when
    /// to look again (`exit_when_unused`).
    unused_since: Option<Instant>,
    next_use_check: Instant,
}

impl Drain {
    /// Attaches the rings. A missing ring is an error unless `wait`.
    pub fn new(
        options: DrainOptions,
        mut exporters: Vec<Box<dyn Exporter>>,
        shutdown: Arc<AtomicBool>,
    ) -> anyhow::Result<Drain> {
        let now = Instant::now();
        let started_ns = timefmt::now_ns();
        let primary = exporters
            .iter()
            .position(|e| e.is_primary())
            .or(if exporters.is_empty() { None } else { Some(0) });
        let handle = SnapshotHandle::new();
        for e in &mut exporters {
            e.attach_snapshots(&handle);
        }
        let outputs = Outputs { exporters, primary };
        let names = outputs.exporters.iter().map(|e| e.name()).collect();
        let rings = Rings::open(options.ingest(), names, primary, &|id| {
            outputs.loss_cursor(id)
        })?;
        let recent = || Recent::starting(now, 0);
        Ok(Drain {
            window: Window::new(options.stats, options.producers.max_workers, started_ns),
            rings,
            outputs,
            handle,
            shutdown,
            metrics: SelfMetrics {
                events: 0,
                batches: 0,
                started: now,
                started_ns,
                sampled: (now, cpu_ticks(), 0),
                export_losses: Recent::default(),
            },
            limit_hits: LimitHits {
                routes: recent(),
                errors: recent(),
                jsonl_bytes: recent(),
                jsonl_files: recent(),
            },
            next_housekeeping: now,
            next_publish: now + options.flush_interval,
            unused_since: None,
            next_use_check: now,
            options,
        })
    }

    /// Where snapshots are published.
    pub fn snapshots(&self) -> SnapshotHandle {
        self.handle.clone()
    }

    /// Runs until a shutdown request (or, with `once`, until the rings are
    /// drained), then flushes the exporters.
    pub fn run(mut self) -> DrainReport {
        let mut idle = Backoff::default();
        loop {
            if self.shutdown.load(Relaxed) {
                self.drain_to_tail(Some(Instant::now() + self.final_drain_budget()));
                break;
            }
            let (progress, fill) = self.drain_round();
            let now = Instant::now();
            if now >= self.next_housekeeping {
                self.housekeeping(now);
            }
            if self.options.once && !self.rings.waiting() && self.rings.reached_targets() {
                break;
            }
            match Pace::after(progress, fill) {
                Pace::Idle => idle.idle(self.rings.smallest_lane()),
                Pace::Gather => idle.gather(fill),
                Pace::Busy => idle.busy(),
            }
        }
        self.finish()
    }

    fn final_drain_budget(&self) -> Duration {
        (self.options.liveness_interval * 3).max(Duration::from_secs(2))
    }

    /// Drains every ring up to what its writers had written as of now, or
    /// until `deadline`.
    fn drain_to_tail(&mut self, deadline: Option<Instant>) {
        self.rings.target_tails();
        while !self.rings.reached_targets() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            if self.drain_round().0 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn finish(mut self) -> DrainReport {
        // Every loss up to now into a marker, before the files close.
        for i in 0..self.rings.len() {
            self.drain_ring(i, 0, true);
        }
        // Published before the exporters finish, so that one sending the
        // statistics sends the final figures; again after, with the
        // exporters' final counts.
        self.publish(Instant::now());
        for e in &mut self.outputs.exporters {
            e.finish();
        }
        self.publish(Instant::now());
        let exporters = self.outputs.status();
        let mut rings = self.rings.accounts();
        for account in &mut rings {
            self.outputs.settle(account);
        }
        DrainReport {
            rings,
            export_lost: exporters.iter().map(|e| e.lost).sum(),
            exporters,
        }
    }

    /// One batch from every ring; returns the positions passed in all, and
    /// the fill of the fullest batch (parts of [`crate::ingest::FILL_FULL`]).
    fn drain_round(&mut self) -> (usize, u32) {
        let (mut total, mut fullest) = (0, 0);
        for i in 0..self.rings.len() {
            let (passed, fill) = self.drain_ring(i, self.options.batch_max, false);
            total += passed;
            fullest = fullest.max(fill);
        }
        (total, fullest)
    }

    /// Takes up to `limit` positions of ring `i` through the pipeline:
    /// window, every exporter, commit. `force`: attribute and report every
    /// loss now (final round). Returns the positions passed and the batch's
    /// fill.
    fn drain_ring(&mut self, i: usize, limit: usize, force: bool) -> (usize, u32) {
        let now = Instant::now();
        let now_ns = timefmt::now_ns();
        self.window.advance(now_ns);
        let batch = self.rings.read(i, limit, force, now, now_ns);
        let events = batch.batch.events().len();
        let (progress, fill) = (batch.progress, batch.fill);
        self.window.record(batch.ctx, &batch.batch, &batch.markers);
        if events > 0 || !batch.markers.is_empty() || force {
            self.outputs.export(batch);
        }
        self.rings.commit(i);
        if events > 0 {
            self.metrics.events += events as u64;
            self.metrics.batches += 1;
            self.outputs.maintain(now);
        }
        (progress, fill)
    }

    fn housekeeping(&mut self, now: Instant) {
        self.next_housekeeping = now + Duration::from_millis(100);
        self.rings.sample_processes(now, timefmt::now_ns());
        let outputs = &self.outputs;
        self.rings.attach_waiting(&|id| outputs.loss_cursor(id));
        if self.rings.lifecycle_due(now) {
            self.retire_finished(now);
            let outputs = &self.outputs;
            self.rings
                .scan_watch_dir(now, &|id| outputs.loss_cursor(id));
        }
        self.check_use(now);
        if now >= self.next_publish {
            self.next_publish = now + self.options.flush_interval;
            self.outputs.maintain(now);
            self.publish(now);
        }
    }

    /// With `exit_when_unused`: twice a second, whether another process has
    /// a ring open or mapped; once none has for the grace period, asks the
    /// loop to stop (it drains to the tail and flushes the exporters, as on
    /// a signal).
    fn check_use(&mut self, now: Instant) {
        let Some(grace) = self.options.exit_when_unused else {
            return;
        };
        if self.options.once || now < self.next_use_check {
            return;
        }
        self.next_use_check = now + Duration::from_millis(500);
        if self.rings.in_use() {
            self.unused_since = None;
            return;
        }
        let since = *self.unused_since.get_or_insert(now);
        if now.duration_since(since) >= grace {
            tracing::info!(
                "no process has had the rings open for {grace:?}: draining and exiting (--exit-when-unused)"
            );
            self.shutdown.store(true, Relaxed);
        }
    }

    /// Retires the rings that are finished (their writers gone), after a
    /// final batch that reports every loss: every event is exported and
    /// committed, and the post-mortems taken, before a file is removed.
    fn retire_finished(&mut self, now: Instant) {
        let finished = self.rings.finished(now);
        for (slot, _, _) in &finished {
            if let Some(i) = self.rings.index_of(*slot) {
                self.drain_ring(i, 0, true);
            }
        }
        for slot in self.rings.retire(finished, now) {
            self.window.forget_ring(slot);
        }
    }

    fn publish(&mut self, now: Instant) {
        let now_ns = timefmt::now_ns();
        self.rings.check_writers(now_ns);
        let rings = self.rings.statuses(now);
        let paths = self.rings.paths();
        let window = self.window.snapshot(now_ns, &|id| {
            paths.get(&id).cloned().unwrap_or_else(|| json::hex64(id))
        });
        let producers = ProducersSnapshot {
            losses: self.rings.producer_losses(),
            loss_series: window.loss_series,
            postmortems: self.rings.postmortems(),
            services: window.services,
        };
        let reader = self.reader_metrics(now);
        let limits = self.limits(now);
        let processes = self.rings.processes(now, now_ns);
        self.handle.store(Snapshot {
            processes,
            generated_ns: now_ns,
            limits,
            stats: window.stats,
            producers,
            rings,
            reader,
        });
    }

    /// The reader's own figures; rates since the last snapshot.
    fn reader_metrics(&mut self, now: Instant) -> ReaderMetrics {
        let m = &mut self.metrics;
        let exporters = self.outputs.status();
        let ticks = cpu_ticks();
        let (at, last_ticks, last_events) = m.sampled;
        let elapsed = now.duration_since(at).as_secs_f64().max(1e-6);
        let cpu_percent =
            ticks.saturating_sub(last_ticks) as f64 / clock_ticks_per_sec() / elapsed * 100.0;
        let events_per_sec = (m.events - last_events) as f64 / elapsed;
        m.sampled = (now, ticks, m.events);
        let export_lost = exporters.iter().map(|e| e.lost).sum();
        ReaderMetrics {
            pid: std::process::id(),
            started_ns: m.started_ns,
            uptime_secs: now.duration_since(m.started).as_secs_f64(),
            events: m.events,
            events_per_sec,
            batches: m.batches,
            cpu_percent,
            bytes_written: exporters.iter().map(|e| e.bytes).sum(),
            exporter_errors: exporters.iter().map(|e| e.errors).sum(),
            export_lost,
            export_lost_last_minute: m.export_losses.update(now, export_lost),
            exporters,
        }
    }

    /// The limits section of a snapshot.
    fn limits(&mut self, now: Instant) -> Limits {
        let stats = self.window.limit_use();
        let disk = self
            .outputs
            .exporters
            .iter()
            .find_map(|e| e.disk_use())
            .unwrap_or_default();
        let hits = &mut self.limit_hits;
        let limit = |limit: Option<u64>, used: u64, hits: u64, recent: &mut Recent| Limit {
            limit,
            used,
            hits,
            hits_last_minute: recent.update(now, hits),
        };
        let config = self.window.config();
        Limits {
            rings: self.rings.ring_limit(now),
            routes: limit(
                Some(config.max_routes as u64),
                stats.names,
                stats.folded,
                &mut hits.routes,
            ),
            errors: limit(
                Some(config.max_errors as u64),
                stats.errors_kept,
                stats.errors_evicted,
                &mut hits.errors,
            ),
            jsonl_bytes: limit(
                disk.retain_bytes,
                disk.bytes,
                disk.deleted_for_bytes,
                &mut hits.jsonl_bytes,
            ),
            jsonl_files: limit(
                disk.retain_files,
                disk.files,
                disk.deleted_for_files,
                &mut hits.jsonl_files,
            ),
            strings: self.rings.string_limits(now),
        }
    }
}
