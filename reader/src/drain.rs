//! The drain loop: owns the ring consumers, the statistics and the
//! exporters, runs on its own thread, and publishes snapshots.
//!
//! Per batch: `consumer.read(batch_max)` → statistics → every exporter (the
//! JSONL exporter writes the whole batch with one write) → `commit()` →
//! exporter housekeeping (rotation happens only here, after the commit). A
//! reader killed at any point has either written a batch or not committed
//! it; see [`crate::exporters::jsonl`] for how duplicates are avoided.
//!
//! Losses: after each read the ring's [`LossTracker`] turns what the read
//! found lost (and the ring's drop counters) into LOSS markers that go to the
//! exporters with the batch; the events also feed each writer's post-mortem
//! buffer ([`crate::postmortem`]) and the merged worker views
//! ([`crate::window::services`]). Every flush interval the writer table is checked
//! for dead processes.
//!
//! Idle strategy: after a round in which no position moved (no event and no
//! loss) the loop spins briefly, then sleeps with doubling intervals from
//! 50 µs up to 10 ms, and goes back to draining batch after batch as soon as
//! positions move. An idle reader wakes at most ~100 times a second.

use crate::exporters::{ErrorReporter, Exported, Exporter, LossBatch};
use crate::loss::{LossTracker, Observation};
use crate::postmortem::{PostMortems, WriterWatch};
use crate::ring_context::RingContext;
use crate::support::cpu::{clock_ticks_per_sec, cpu_ticks};
use crate::support::{json, timefmt};
use crate::views::{
    ExporterStatus, Limit, Limits, ProducersSnapshot, ReaderMetrics, RingCounters, RingLimit,
    RingStatus, Snapshot, SnapshotHandle, StringLimit, WriterStatus,
};
use crate::window::stats::StatsConfig;
use crate::window::Window;
use anyhow::{bail, Context};
use profilis::{Consumer, ConsumerOptions, OpenError, WriterInfo};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
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
    /// Consumer stall timeout.
    pub stall_timeout: Duration,
    /// Most rings attached at once; further ring files are refused (logged
    /// and counted) until one is detached.
    pub max_rings: usize,
    /// Statistics settings.
    pub stats: StatsConfig,
    /// Post-mortem and worker-view settings.
    pub producers: ProducerOptions,
}

/// Settings of the per-producer features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerOptions {
    /// Events kept per writer for its post-mortem (0: none).
    pub postmortem_events: usize,
    /// Workers per service with their own breakdown.
    pub max_workers: usize,
}

impl Default for ProducerOptions {
    fn default() -> Self {
        ProducerOptions {
            postmortem_events: 100,
            max_workers: 32,
        }
    }
}

/// Default of [`DrainOptions::max_rings`].
pub const DEFAULT_MAX_RINGS: usize = 64;

impl Default for DrainOptions {
    fn default() -> Self {
        DrainOptions {
            rings: Vec::new(),
            watch: None,
            wait: false,
            once: false,
            batch_max: 4096,
            flush_interval: Duration::from_secs(1),
            stall_timeout: Duration::from_millis(50),
            max_rings: DEFAULT_MAX_RINGS,
            stats: StatsConfig::default(),
            producers: ProducerOptions::default(),
        }
    }
}

/// Exporter counts of one ring.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ExporterCounts {
    /// Events written.
    pub exported: u64,
    /// Events lost to exporter errors.
    pub lost: u64,
    /// Events already exported by an earlier run (not written again).
    pub duplicates_skipped: u64,
}

/// The `--accounting` line of one ring.
#[derive(Clone, Debug, Serialize)]
pub struct RingAccount {
    /// Ring file.
    pub ring: String,
    /// Ring identity (16 hex digits).
    pub ring_id: String,
    /// Delivered to the reader.
    pub received: u64,
    /// Lost to a full ring.
    pub dropped: u64,
    /// Claims skipped after the stall timeout.
    pub abandoned: u64,
    /// Records that failed validation.
    pub torn: u64,
    /// Emit attempts (`received + dropped + abandoned + torn + lag`).
    pub claimed: u64,
    /// Still in the ring (claimed, not consumed) at exit.
    pub lag: u64,
    /// Written by the JSONL exporter (by the console exporter without one).
    pub exported: u64,
    /// Lost to errors of that exporter.
    pub export_lost: u64,
    /// Re-delivered after a restart and already in the JSONL files.
    pub duplicates_skipped: u64,
    /// Per exporter.
    pub exporters: HashMap<&'static str, ExporterCounts>,
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

struct Source {
    consumer: Consumer,
    ctx: RingContext,
    /// From `--watch`: detached when its writers are gone and it is drained.
    watched: bool,
    /// `--once` / shutdown: drain up to this position.
    target: Option<u64>,
    exported: Vec<ExporterCounts>,
    /// Losses (dropped + abandoned + torn) over the last minute.
    losses: Recent,
    /// String-table overflows over the last minute.
    overflows: Recent,
    /// Whether the truncation of its file was reported.
    truncation_reported: bool,
    /// LOSS markers and per-producer loss totals.
    loss: LossTracker,
    /// Recent events per writer, for post-mortems.
    watch: WriterWatch,
    /// The writer table (with liveness) as of the last publish.
    table: Vec<WriterInfo>,
}

/// How much a growing counter grew over about the last minute, from the
/// values seen at each publish.
#[derive(Default)]
struct Recent {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

/// The span of [`Recent`].
const RECENT: Duration = Duration::from_secs(60);

impl Recent {
    /// A counter that was `value` at `at`: growth from then on counts.
    fn starting(at: Instant, value: u64) -> Recent {
        Recent {
            samples: [(at, value)].into(),
        }
    }

    /// Records `value` at `now`; returns its growth since the oldest sample
    /// of the last minute.
    fn update(&mut self, now: Instant, value: u64) -> u64 {
        while self.samples.len() > 1
            && self
                .samples
                .get(1)
                .is_some_and(|(at, _)| now.duration_since(*at) >= RECENT)
        {
            self.samples.pop_front();
        }
        self.samples.push_back((now, value));
        value.saturating_sub(self.samples.front().map_or(value, |s| s.1))
    }
}

struct Detached {
    status: RingStatus,
    account: RingAccount,
    exported: Vec<ExporterCounts>,
    loss: LossTracker,
    table: Vec<WriterInfo>,
}

#[derive(Default)]
struct SelfCounters {
    events: u64,
    batches: u64,
}

struct CpuSample {
    at: Instant,
    cpu_ticks: u64,
    events: u64,
}

/// The drain loop.
pub struct Drain {
    options: DrainOptions,
    sources: Vec<Source>,
    detached: HashMap<u64, Detached>,
    pending: Vec<PathBuf>,
    retry_at: HashMap<PathBuf, Instant>,
    reported: HashSet<PathBuf>,
    window: Window,
    exporters: Vec<Box<dyn Exporter>>,
    primary: Option<usize>,
    handle: SnapshotHandle,
    shutdown: Arc<AtomicBool>,
    counters: SelfCounters,
    next_slot: u32,
    started: Instant,
    started_ns: u64,
    next_housekeeping: Instant,
    next_watch_scan: Instant,
    next_publish: Instant,
    cpu: CpuSample,
    attach_errors: ErrorReporter,
    export_losses: Recent,
    /// Ring files refused by `--max-rings` and not attached since.
    refused: std::collections::BTreeSet<PathBuf>,
    rings_refused: u64,
    limit_hits: LimitHits,
    postmortems: PostMortems,
}

/// Growth over the last minute of each limit's hit counter (all zero when
/// the reader starts).
struct LimitHits {
    rings: Recent,
    routes: Recent,
    errors: Recent,
    jsonl_bytes: Recent,
    jsonl_files: Recent,
}

impl LimitHits {
    fn new(at: Instant) -> LimitHits {
        LimitHits {
            rings: Recent::starting(at, 0),
            routes: Recent::starting(at, 0),
            errors: Recent::starting(at, 0),
            jsonl_bytes: Recent::starting(at, 0),
            jsonl_files: Recent::starting(at, 0),
        }
    }
}

impl Drain {
    /// Attaches the rings. A missing ring is an error unless `wait`.
    pub fn new(
        options: DrainOptions,
        exporters: Vec<Box<dyn Exporter>>,
        shutdown: Arc<AtomicBool>,
    ) -> anyhow::Result<Drain> {
        if options.rings.is_empty() && options.watch.is_none() {
            bail!("no ring to drain: give ring files or --watch DIR");
        }
        let now = Instant::now();
        let started_ns = timefmt::now_ns();
        let primary = exporters
            .iter()
            .position(|e| e.is_primary())
            .or(if exporters.is_empty() { None } else { Some(0) });
        let mut drain = Drain {
            window: Window::new(options.stats, options.producers.max_workers, started_ns),
            postmortems: PostMortems::default(),
            sources: Vec::new(),
            detached: HashMap::new(),
            pending: Vec::new(),
            retry_at: HashMap::new(),
            reported: HashSet::new(),
            exporters,
            primary,
            handle: SnapshotHandle::new(),
            shutdown,
            counters: SelfCounters::default(),
            next_slot: 0,
            started: now,
            started_ns,
            next_housekeeping: now,
            next_watch_scan: now,
            next_publish: now + options.flush_interval,
            cpu: CpuSample {
                at: now,
                cpu_ticks: cpu_ticks(),
                events: 0,
            },
            attach_errors: ErrorReporter::new("attach"),
            export_losses: Recent::default(),
            refused: Default::default(),
            rings_refused: 0,
            limit_hits: LimitHits::new(now),
            options,
        };
        let distinct: HashSet<&PathBuf> = drain.options.rings.iter().collect();
        if distinct.len() > drain.options.max_rings {
            bail!(
                "{} ring files given, more than --max-rings {}: raise --max-rings",
                distinct.len(),
                drain.options.max_rings
            );
        }
        for e in &mut drain.exporters {
            e.attach_snapshots(&drain.handle);
        }
        let mut seen = HashSet::new();
        for path in drain.options.rings.clone() {
            if !seen.insert(path.clone()) {
                continue;
            }
            if path.exists() {
                drain
                    .attach(&path, false)
                    .with_context(|| format!("attaching {}", path.display()))?;
            } else if drain.options.wait {
                eprintln!("profilis-reader: waiting for ring file {}", path.display());
                drain.pending.push(path);
            } else {
                bail!(
                    "ring file {} does not exist (start the instrumented application first, or pass --wait)",
                    path.display()
                );
            }
        }
        if let Some(dir) = &drain.options.watch {
            if !dir.is_dir() {
                if drain.options.wait {
                    eprintln!("profilis-reader: waiting for directory {}", dir.display());
                } else {
                    bail!(
                        "--watch {}: not a directory (pass --wait to wait for it)",
                        dir.display()
                    );
                }
            }
            drain.scan_watch_dir(now);
        }
        Ok(drain)
    }

    /// Where snapshots are published.
    pub fn snapshots(&self) -> SnapshotHandle {
        self.handle.clone()
    }

    fn attach(&mut self, path: &Path, watched: bool) -> Result<(), OpenError> {
        let consumer = Consumer::attach_with(
            path,
            ConsumerOptions {
                stall_timeout: self.options.stall_timeout,
            },
        )?;
        let info = *consumer.info();
        let mut ctx = RingContext::new(
            self.next_slot,
            path,
            info.ring_id,
            info.params.string_entries,
        );
        self.next_slot += 1;
        ctx.refresh_writers(&consumer.writers(), None, Instant::now());
        let mut exported = vec![ExporterCounts::default(); self.exporters.len()];
        let mut loss = None;
        let mut table = Vec::new();
        if let Some(old) = self.detached.remove(&info.ring_id) {
            exported = old.exported;
            loss = Some(old.loss);
            table = old.table;
        }
        let loss = loss.unwrap_or_else(|| {
            // Continue where the file exporter's LOSS lines stand.
            let cursor = self
                .primary
                .and_then(|p| self.exporters[p].loss_cursor(info.ring_id));
            LossTracker::new(info.created_wall_ns, cursor)
        });
        let target = self.options.once.then(|| consumer.counters().tail);
        let overflow = consumer.strings_overflow();
        self.sources.push(Source {
            consumer,
            ctx,
            watched,
            target,
            exported,
            losses: Recent::default(),
            // Overflows from before the reader attached are old news.
            overflows: Recent::starting(Instant::now(), overflow),
            truncation_reported: false,
            loss,
            watch: WriterWatch::new(self.options.producers.postmortem_events),
            table,
        });
        self.refused.remove(path);
        Ok(())
    }

    /// Whether `--max-rings` rings are attached.
    fn at_ring_limit(&self) -> bool {
        self.sources.len() >= self.options.max_rings
    }

    /// Counts and reports (once per file) a ring file refused for lack of
    /// room.
    fn refuse(&mut self, path: &Path) {
        if self.refused.insert(path.to_owned()) {
            self.rings_refused += 1;
            eprintln!(
                "profilis-reader: error: not attaching {}: {} rings are attached, the --max-rings limit (it is attached when another ring is detached)",
                path.display(),
                self.options.max_rings
            );
        }
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
            let progress = self.drain_round();
            let now = Instant::now();
            if now >= self.next_housekeeping {
                self.housekeeping(now);
            }
            if self.options.once && self.pending.is_empty() && self.reached_targets() {
                break;
            }
            if progress == 0 {
                idle.idle();
            } else {
                idle.busy();
            }
        }
        self.finish()
    }

    fn final_drain_budget(&self) -> Duration {
        (self.options.stall_timeout * 3).max(Duration::from_secs(2))
    }

    /// Drains every ring up to its claim position as of now (skipping
    /// stalled claims after the stall timeout), or until `deadline`.
    fn drain_to_tail(&mut self, deadline: Option<Instant>) {
        for s in &mut self.sources {
            s.target = Some(s.consumer.counters().tail);
        }
        while !self.reached_targets() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            if self.drain_round() == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Whether every ring is drained to its target (a truncated ring
    /// yields nothing more, so it counts as done).
    fn reached_targets(&self) -> bool {
        self.sources.iter().all(|s| {
            s.consumer.truncated() || s.target.is_none_or(|t| s.consumer.counters().head >= t)
        })
    }

    fn finish(mut self) -> DrainReport {
        // Every loss up to now into a marker, before the files close.
        for i in 0..self.sources.len() {
            self.drain_batch_with(i, 0, true);
        }
        // Published before the exporters finish, so that one sending the
        // statistics sends the final figures; again after, with the
        // exporters' final counts.
        self.publish(Instant::now());
        for e in &mut self.exporters {
            e.finish();
        }
        self.publish(Instant::now());
        let mut report = DrainReport::default();
        for i in 0..self.sources.len() {
            let account = self.account(i);
            report.rings.push(account);
        }
        let mut detached: Vec<_> = self.detached.into_values().map(|d| d.account).collect();
        detached.sort_by(|a, b| a.ring.cmp(&b.ring));
        report.rings.extend(detached);
        report.exporters = self.exporters.iter().map(|e| e.status()).collect();
        report.export_lost = report.exporters.iter().map(|e| e.lost).sum();
        report
    }

    fn account(&self, i: usize) -> RingAccount {
        let s = &self.sources[i];
        let c = s.consumer.counters();
        let primary = self.primary.map(|p| s.exported[p]).unwrap_or_default();
        RingAccount {
            ring: s.ctx.path.display().to_string(),
            ring_id: json::hex64(s.ctx.ring_id),
            received: c.received,
            dropped: c.dropped,
            abandoned: c.abandoned,
            torn: c.torn,
            claimed: c.claimed,
            lag: c.in_flight,
            exported: primary.exported,
            export_lost: primary.lost,
            duplicates_skipped: primary.duplicates_skipped,
            exporters: self
                .exporters
                .iter()
                .zip(&s.exported)
                .map(|(e, c)| (e.name(), *c))
                .collect(),
        }
    }

    /// One batch from every ring; returns the events drained.
    fn drain_round(&mut self) -> usize {
        let mut total = 0;
        for i in 0..self.sources.len() {
            total += self.drain_batch(i);
        }
        total
    }

    fn drain_batch(&mut self, i: usize) -> usize {
        self.drain_batch_with(i, self.options.batch_max, false)
    }

    /// Reads up to `limit` positions of ring `i` and hands them, with the
    /// LOSS markers found, to the statistics, worker views, post-mortem
    /// buffers and exporters, then commits. `force`: attribute and report
    /// every loss now (final round). Returns the positions passed (events
    /// and losses).
    fn drain_batch_with(&mut self, i: usize, limit: usize, force: bool) -> usize {
        let now = Instant::now();
        let now_ns = timefmt::now_ns();
        self.window.advance(now_ns);
        let src = &mut self.sources[i];
        let refresh = {
            let batch = src.consumer.read(limit);
            batch
                .events
                .iter()
                .find(|e| src.ctx.needs_writer_refresh(e, now))
                .map(|e| e.writer)
        };
        if refresh.is_some() {
            // A writer registered since the table was last read: learn its
            // service before rendering, then read the same batch again.
            let table = src.consumer.writers();
            src.ctx.refresh_writers(&table, refresh, now);
            src.consumer.read(limit);
        }
        // Claims skipped by the read(s) count at once; take them before
        // holding the batch.
        let (skipped, untold) = src.consumer.take_losses();
        let n = {
            let consumer = &src.consumer;
            let batch = consumer.batch();
            let n = batch.events.len();
            let wall_ns = |e: &profilis::Event| batch.wall_ns(e);
            let observation = Observation {
                counters: consumer.counters(),
                skipped: &skipped,
                untold,
                pending: consumer.pending_losses(),
                events: batch.events,
                wall_ns: &wall_ns,
                now_ns,
                now,
                force,
            };
            let markers = src
                .loss
                .observe(&observation, &src.ctx, &mut || consumer.writers());
            if n > 0 {
                src.ctx.begin_batch();
            }
            self.window
                .record(&mut src.ctx, batch.names, batch.events, wall_ns, &markers);
            for e in batch.events {
                src.watch
                    .record(&mut src.ctx, batch.names, batch.wall_ns(e), e);
            }
            if n > 0 || !markers.is_empty() || force {
                let losses = LossBatch {
                    markers: &markers,
                    cursor: src.loss.cursor(),
                };
                for (exporter, counts) in self.exporters.iter_mut().zip(src.exported.iter_mut()) {
                    let Exported {
                        written,
                        lost,
                        skipped,
                    } = exporter.export_with_losses(&mut src.ctx, &batch, &losses);
                    counts.exported += written;
                    counts.lost += lost;
                    counts.duplicates_skipped += skipped;
                }
            }
            n
        };
        // Also after an empty read: it may have passed torn or abandoned
        // positions, which the commit counts and releases.
        src.consumer.commit();
        if src.consumer.truncated() && !src.truncation_reported {
            src.truncation_reported = true;
            eprintln!(
                "profilis-reader: error: ring file {} was truncated while attached; nothing more can be read from it ({} events still in it are lost); the other rings go on",
                src.ctx.path.display(),
                src.consumer.lag()
            );
        }
        // The batch's losses, already in this round's markers.
        let (lost_now, lost_now_untold) = src.consumer.take_losses();
        if n > 0 {
            self.counters.events += n as u64;
            self.counters.batches += 1;
            for e in &mut self.exporters {
                e.maintain(now);
            }
        }
        // Progress is positions passed, lost ones included: a reader
        // catching up over overwritten or torn records is not idle.
        n + skipped.len() + untold as usize + lost_now.len() + lost_now_untold as usize
    }

    fn housekeeping(&mut self, now: Instant) {
        self.next_housekeeping = now + Duration::from_millis(100);
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            for path in pending {
                if path.exists() && self.at_ring_limit() {
                    self.refuse(&path);
                    self.pending.push(path);
                } else if path.exists() {
                    match self.attach(&path, false) {
                        Ok(()) => eprintln!("profilis-reader: attached {}", path.display()),
                        Err(e) => {
                            self.attach_errors.report(&format!("{e} (retrying)"));
                            self.pending.push(path);
                        }
                    }
                } else {
                    self.pending.push(path);
                }
            }
        }
        if self.options.watch.is_some() && now >= self.next_watch_scan && !self.options.once {
            self.next_watch_scan = now + Duration::from_millis(500);
            self.detach_finished(now);
            self.scan_watch_dir(now);
        }
        if now >= self.next_publish {
            self.next_publish = now + self.options.flush_interval;
            for e in &mut self.exporters {
                e.maintain(now);
            }
            self.publish(now);
        }
    }

    fn scan_watch_dir(&mut self, now: Instant) {
        let Some(dir) = self.options.watch.clone() else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let attached: HashSet<PathBuf> = self.sources.iter().map(|s| s.ctx.path.clone()).collect();
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                !name.starts_with('.') && name.ends_with(".ring")
            })
            .map(|e| e.path())
            .filter(|p| !attached.contains(p))
            .collect();
        found.sort();
        // A refused file that went away no longer waits for room.
        self.refused
            .retain(|p| found.contains(p) || self.options.rings.contains(p));
        for path in found {
            if self.retry_at.get(&path).is_some_and(|t| now < *t) {
                continue;
            }
            if self.at_ring_limit() {
                self.refuse(&path);
                continue;
            }
            match self.attach(&path, true) {
                Ok(()) => {
                    self.retry_at.remove(&path);
                    let fresh = self.reported.insert(path.clone());
                    if fresh {
                        eprintln!("profilis-reader: attached {}", path.display());
                    }
                }
                Err(e) => {
                    self.retry_at
                        .insert(path.clone(), now + Duration::from_secs(5));
                    if self.reported.insert(path.clone()) {
                        eprintln!(
                            "profilis-reader: not attaching {}: {e} (retrying every 5 s)",
                            path.display()
                        );
                    }
                }
            }
        }
    }

    /// Detaches watched rings whose writers have all exited and that are
    /// drained (or whose file is gone). A detached ring is looked at again
    /// every few seconds in case a new writer opens it.
    fn detach_finished(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.sources.len() {
            let s = &self.sources[i];
            // A truncated ring yields nothing more: as drained as it gets.
            let drained = s.consumer.lag() == 0 || s.consumer.truncated();
            let gone = !s.ctx.path.exists();
            let writers = s.consumer.writers();
            let finished =
                drained && (gone || (!writers.is_empty() && writers.iter().all(|w| !w.alive)));
            if !(s.watched && finished) {
                i += 1;
                continue;
            }
            self.drain_batch_with(i, 0, true);
            self.sources[i].table = writers;
            self.check_writers(i, timefmt::now_ns());
            let status = self.ring_status(i);
            let account = self.account(i);
            let s = self.sources.swap_remove(i);
            self.window.forget_ring(s.ctx.slot);
            if !gone {
                self.retry_at
                    .insert(s.ctx.path.clone(), now + Duration::from_secs(5));
            } else if self.reported.remove(&s.ctx.path) {
                eprintln!(
                    "profilis-reader: detached {} (file removed)",
                    s.ctx.path.display()
                );
            }
            self.detached.insert(
                s.ctx.ring_id,
                Detached {
                    status: RingStatus {
                        attached: false,
                        lost_last_minute: 0,
                        ..status
                    },
                    account,
                    exported: s.exported,
                    loss: s.loss,
                    table: s.table,
                },
            );
        }
    }

    fn ring_status(&self, i: usize) -> RingStatus {
        self.ring_status_at(i, 0)
    }

    fn ring_status_at(&self, i: usize, lost_last_minute: u64) -> RingStatus {
        let s = &self.sources[i];
        let c = s.consumer.counters();
        let info = s.consumer.info();
        let primary = self.primary.map(|p| s.exported[p]).unwrap_or_default();
        RingStatus {
            path: s.ctx.path.display().to_string(),
            ring_id: json::hex64(info.ring_id),
            capacity: info.params.capacity,
            policy: info.policy.as_str(),
            attached: true,
            truncated: s.consumer.truncated(),
            lost_last_minute,
            lag: c.in_flight,
            depth_ratio: c.in_flight as f64 / info.params.capacity.max(1) as f64,
            counters: RingCounters::from(c),
            exported: primary.exported,
            export_lost: primary.lost,
            duplicates_skipped: primary.duplicates_skipped,
            unresolved: s.consumer.names().unresolved(),
            strings_overflow: s.consumer.strings_overflow(),
            messages_lost: s.consumer.messages_lost(),
            writers: s
                .table
                .iter()
                .map(|w| WriterStatus {
                    pid: w.pid,
                    service: w.service.as_deref().map(str::to_string),
                    alive: w.alive,
                    dropped: w.dropped,
                    registered_ns: w.registered_wall_ns,
                    last_seen_ns: last_seen_ns(&s.consumer, w).max(s.watch.last_event_ns(w.index)),
                })
                .collect(),
        }
    }

    /// The limits section of a snapshot.
    fn limits(&mut self, now: Instant) -> Limits {
        let stats = self.window.limit_use();
        let disk = self
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
        let strings = self
            .sources
            .iter_mut()
            .map(|s| {
                let use_ = s.consumer.string_table();
                StringLimit {
                    ring: s.ctx.path.display().to_string(),
                    entries: use_.entries,
                    entries_used: use_.entries_used,
                    arena_bytes: use_.arena_bytes,
                    arena_used: use_.arena_used,
                    overflow: use_.overflow,
                    overflow_last_minute: s.overflows.update(now, use_.overflow),
                }
            })
            .collect();
        Limits {
            rings: RingLimit {
                limit: Some(self.options.max_rings as u64),
                used: self.sources.len() as u64,
                hits: self.rings_refused,
                hits_last_minute: hits.rings.update(now, self.rings_refused),
                waiting: self
                    .refused
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
            },
            routes: limit(
                Some(self.options.stats.max_routes as u64),
                stats.names,
                stats.folded,
                &mut hits.routes,
            ),
            errors: limit(
                Some(self.options.stats.max_errors as u64),
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
            strings,
        }
    }

    /// Notes writers of ring `i` found dead (in its last table read) and
    /// freezes the post-mortems of those whose events are all drained.
    fn check_writers(&mut self, i: usize, now_ns: u64) {
        let s = &mut self.sources[i];
        let c = s.consumer.counters();
        let path = s.ctx.path.display().to_string();
        let consumer = &s.consumer;
        let loss = &s.loss;
        let found = s.watch.check(
            &s.table,
            c.head,
            c.tail,
            now_ns,
            &|w| last_seen_ns(consumer, w),
            &|index| loss.losses_of(index),
            &mut s.ctx,
            consumer.names(),
            &path,
        );
        for pm in found {
            self.postmortems.add(pm);
        }
    }

    fn publish(&mut self, now: Instant) {
        let now_ns = timefmt::now_ns();
        let mut rings = Vec::with_capacity(self.sources.len() + self.detached.len());
        let mut losses = Vec::new();
        for i in 0..self.sources.len() {
            self.sources[i].table = self.sources[i].consumer.writers();
            self.check_writers(i, now_ns);
            let s = &self.sources[i];
            losses.extend(s.loss.producers(
                &s.ctx.path.display().to_string(),
                &json::hex64(s.ctx.ring_id),
                &s.table,
            ));
            let c = self.sources[i].consumer.counters();
            let lost = c.dropped + c.abandoned + c.torn;
            let recent = self.sources[i].losses.update(now, lost);
            rings.push(self.ring_status_at(i, recent));
        }
        rings.extend(self.detached.values().map(|d| d.status.clone()));
        rings.sort_by(|a, b| a.path.cmp(&b.path));
        for d in self.detached.values() {
            losses.extend(
                d.loss
                    .producers(&d.status.path, &d.status.ring_id, &d.table),
            );
        }
        losses.sort_by(|a, b| {
            b.last_loss_ns
                .cmp(&a.last_loss_ns)
                .then_with(|| a.ring.cmp(&b.ring))
                .then(a.pid.cmp(&b.pid))
        });
        let paths: HashMap<u64, String> = self
            .sources
            .iter()
            .map(|s| (s.ctx.ring_id, s.ctx.path.display().to_string()))
            .chain(
                self.detached
                    .iter()
                    .map(|(id, d)| (*id, d.status.path.clone())),
            )
            .collect();
        let window = self.window.snapshot(now_ns, &|id| {
            paths.get(&id).cloned().unwrap_or_else(|| json::hex64(id))
        });
        let producers = ProducersSnapshot {
            losses,
            loss_series: window.loss_series,
            postmortems: self.postmortems.list(),
            services: window.services,
        };
        let exporters: Vec<_> = self.exporters.iter().map(|e| e.status()).collect();
        let ticks = cpu_ticks();
        let elapsed = now.duration_since(self.cpu.at).as_secs_f64().max(1e-6);
        let cpu_percent =
            ticks.saturating_sub(self.cpu.cpu_ticks) as f64 / clock_ticks_per_sec() / elapsed
                * 100.0;
        let events_per_sec = (self.counters.events - self.cpu.events) as f64 / elapsed;
        self.cpu = CpuSample {
            at: now,
            cpu_ticks: ticks,
            events: self.counters.events,
        };
        let limits = self.limits(now);
        let snapshot = Snapshot {
            generated_ns: now_ns,
            limits,
            stats: window.stats,
            producers,
            rings,
            reader: ReaderMetrics {
                pid: std::process::id(),
                started_ns: self.started_ns,
                uptime_secs: now.duration_since(self.started).as_secs_f64(),
                events: self.counters.events,
                events_per_sec,
                batches: self.counters.batches,
                cpu_percent,
                bytes_written: exporters.iter().map(|e| e.bytes).sum(),
                exporter_errors: exporters.iter().map(|e| e.errors).sum(),
                export_lost: exporters.iter().map(|e| e.lost).sum(),
                export_lost_last_minute: self
                    .export_losses
                    .update(now, exporters.iter().map(|e| e.lost).sum()),
                exporters,
            },
        };
        self.handle.store(snapshot);
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

/// Spin, then sleep with doubling intervals up to a cap.
struct Backoff {
    spins: u32,
    sleep: Duration,
}

const SPIN_ROUNDS: u32 = 8;
const MIN_SLEEP: Duration = Duration::from_micros(50);
const MAX_SLEEP: Duration = Duration::from_millis(10);

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            spins: 0,
            sleep: MIN_SLEEP,
        }
    }
}

impl Backoff {
    fn idle(&mut self) {
        if self.spins < SPIN_ROUNDS {
            self.spins += 1;
            for _ in 0..64 {
                std::hint::spin_loop();
            }
            return;
        }
        std::thread::sleep(self.sleep);
        self.sleep = (self.sleep * 2).min(MAX_SLEEP);
    }

    fn busy(&mut self) {
        self.spins = 0;
        self.sleep = MIN_SLEEP;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_growth_covers_about_the_last_minute() {
        let t0 = Instant::now();
        let mut recent = Recent::default();
        assert_eq!(recent.update(t0, 100), 0, "losses before the start are old");
        assert_eq!(recent.update(t0 + Duration::from_secs(1), 105), 5);
        assert_eq!(recent.update(t0 + Duration::from_secs(30), 110), 10);
        // 61 s after the 1 s sample: only growth since then counts.
        assert_eq!(recent.update(t0 + Duration::from_secs(62), 110), 5);
        assert_eq!(recent.update(t0 + Duration::from_secs(120), 110), 0);
    }
}
