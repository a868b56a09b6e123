//! Ingest: the rings the reader drains. Attaching the ring files given
//! (or waiting for them), watching a directory for new ones, detaching
//! those whose writers are gone, and per ring its consumer, its context
//! ([`context`]), its losses ([`loss`]) and its writers' last events
//! ([`postmortem`]).
//!
//! Every use of `profilis::Consumer` is here: the layers above get a
//! [`RingBatch`] (the events as a [`Batch`], the LOSS markers found with
//! them, the ring's [`RingContext`]) and the ring figures as
//! [`crate::views`] types. A batch is read once and its losses are taken
//! once; the ring is committed after the pipeline has handed the batch to
//! every output.

pub mod context;
pub mod lifecycle;
pub mod loss;
pub mod postmortem;
pub mod processes;
mod source;

pub use context::RingContext;
pub use source::{RingBatch, FILL_FULL};

use crate::support::holders::{holders, FileId};
use crate::support::recent::Recent;
use crate::support::report::ErrorReporter;
use crate::support::timefmt;
use crate::views::{
    PostMortem, ProcessesSnapshot, ProducerLoss, RingAccount, RingLimit, RingStatus, StringLimit,
};
use anyhow::bail;
use loss::LossCursor;
use postmortem::PostMortems;
use processes::{LiveWriter, ProcessSampler, MAX_SAMPLED_PER_TICK};
use profilis::{Event, Names, WriterInfo};
use source::{Detached, Source};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The events of one read of one ring, with what resolves their names and
/// times.
pub struct Batch<'a> {
    inner: profilis::Batch<'a>,
}

impl<'a> Batch<'a> {
    /// The events, in ring order.
    pub fn events(&self) -> &'a [Event] {
        self.inner.events
    }

    /// Resolves their names and messages.
    pub fn names(&self) -> &'a Names {
        self.inner.names
    }

    /// Wall-clock ns since the Unix epoch of an event's timestamp.
    #[inline]
    pub fn wall_ns(&self, event: &Event) -> u64 {
        self.inner.wall_ns(event)
    }
}

impl<'a> From<profilis::Batch<'a>> for Batch<'a> {
    fn from(inner: profilis::Batch<'a>) -> Self {
        Batch { inner }
    }
}

/// Which rings to drain, and how.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// Ring files named explicitly (never detached).
    pub rings: Vec<PathBuf>,
    /// Directory whose `*.ring` files are attached as they appear.
    pub watch: Option<PathBuf>,
    /// Wait for missing ring files / watch directory instead of failing.
    pub wait: bool,
    /// Drain what is committed now, then stop.
    pub once: bool,
    /// How often lane holders are checked for a process that is gone.
    pub liveness_interval: Duration,
    /// Most rings attached at once; further ring files are refused (logged
    /// and counted) until one is detached.
    pub max_rings: usize,
    /// Events kept per writer for its post-mortem (0: none).
    pub postmortem_events: usize,
    /// Keep the files of finished rings (`--keep-rings`) rather than
    /// remove them (see [`lifecycle`]).
    pub keep_files: bool,
    /// How often the CPU and memory of the writer processes are sampled
    /// (zero: never; see [`processes`]).
    pub process_interval: Duration,
}

/// Default of [`IngestOptions::max_rings`].
pub const DEFAULT_MAX_RINGS: usize = 64;

/// How often the watched directory is scanned and finished rings retired.
const WATCH_EVERY: Duration = Duration::from_millis(500);
/// How long a ring file that could not be attached, or was detached, waits
/// before it is looked at again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Where the LOSS markers of a ring stand in the file exporter's output
/// from an earlier run, by ring id.
pub type CursorOf<'a> = &'a dyn Fn(u64) -> Option<LossCursor>;

/// The attached rings, and what the reader keeps of those it detached.
pub struct Rings {
    options: IngestOptions,
    sources: Vec<Source>,
    detached: HashMap<u64, Detached>,
    /// Ring files given that do not exist yet (`--wait`).
    pending: Vec<PathBuf>,
    retry_at: HashMap<PathBuf, Instant>,
    reported: HashSet<PathBuf>,
    /// Ring files refused by `--max-rings` and not attached since.
    refused: BTreeSet<PathBuf>,
    rings_refused: u64,
    ring_limit_hits: Recent,
    attach_errors: ErrorReporter,
    next_slot: u32,
    next_lifecycle: Instant,
    postmortems: PostMortems,
    processes: ProcessSampler,
    /// The exporters whose counts each ring keeps, and the one whose
    /// counts it reports as its own.
    exporters: Vec<&'static str>,
    primary: Option<usize>,
}

impl Rings {
    /// Attaches the rings given (a missing one is an error unless `wait`)
    /// and those in the watched directory. Each ring keeps counts for the
    /// exporters named `exporters` and reports those of `primary`; `cursor`
    /// tells where the LOSS markers of a ring stand from an earlier run.
    pub fn open(
        mut options: IngestOptions,
        exporters: Vec<&'static str>,
        primary: Option<usize>,
        cursor: CursorOf<'_>,
    ) -> anyhow::Result<Rings> {
        if options.rings.is_empty() && options.watch.is_none() {
            bail!("no ring to drain: give ring files or --watch DIR");
        }
        // `a.ring` and `./a.ring` are one ring.
        let mut distinct = HashSet::new();
        options.rings = options
            .rings
            .iter()
            .map(|p| ring_path(p))
            .filter(|p| distinct.insert(p.clone()))
            .collect();
        if options.rings.len() > options.max_rings {
            bail!(
                "{} ring files given, more than --max-rings {}: raise --max-rings",
                options.rings.len(),
                options.max_rings
            );
        }
        let now = Instant::now();
        let mut rings = Rings {
            sources: Vec::new(),
            detached: HashMap::new(),
            pending: Vec::new(),
            retry_at: HashMap::new(),
            reported: HashSet::new(),
            refused: BTreeSet::new(),
            rings_refused: 0,
            ring_limit_hits: Recent::starting(now, 0),
            attach_errors: ErrorReporter::new("attach"),
            next_slot: 0,
            next_lifecycle: now,
            postmortems: PostMortems::default(),
            processes: ProcessSampler::new(options.process_interval, MAX_SAMPLED_PER_TICK, now),
            exporters,
            primary,
            options,
        };
        for path in rings.options.rings.clone() {
            if path.exists() {
                // The error names the file.
                rings.attach(&path, false, cursor)?;
            } else if rings.options.wait {
                tracing::info!("waiting for ring file {}", path.display());
                rings.pending.push(path);
            } else {
                bail!(
                    "ring file {} does not exist (start the instrumented application first, or pass --wait)",
                    path.display()
                );
            }
        }
        if let Some(dir) = &rings.options.watch {
            if !dir.is_dir() {
                if rings.options.wait {
                    tracing::info!("waiting for directory {}", dir.display());
                } else {
                    bail!(
                        "--watch {}: not a directory (pass --wait to wait for it)",
                        dir.display()
                    );
                }
            }
            rings.scan_watch_dir(now, cursor);
        }
        Ok(rings)
    }

    fn attach(
        &mut self,
        path: &Path,
        watched: bool,
        cursor: CursorOf<'_>,
    ) -> Result<(), profilis::OpenError> {
        let mut source = Source::attach(
            path,
            self.next_slot,
            watched,
            &self.options,
            self.exporters.len(),
        )?;
        self.next_slot += 1;
        let ring_id = source.ctx.ring_id;
        let old = self.detached.remove(&ring_id);
        // Continue where the file exporter's LOSS lines stand.
        let cursor = if old.is_none() { cursor(ring_id) } else { None };
        source.resume(old, cursor);
        self.sources.push(source);
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
            tracing::error!(
                "error: not attaching {}: {} rings are attached, the --max-rings limit (it is attached when another ring is detached)",
                path.display(),
                self.options.max_rings
            );
        }
    }

    /// Rings attached now.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether no ring is attached.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Whether another process has any of the rings open or mapped: an
    /// attached ring's file, or a file that appeared at a named path not
    /// attached yet. One pass over `/proc` (see [`holders`]).
    pub fn in_use(&self) -> bool {
        let mut files: Vec<FileId> = self.sources.iter().filter_map(|s| s.file_id()).collect();
        files.extend(self.pending.iter().filter_map(|p| FileId::of(p).ok()));
        holders(&files).iter().any(|pids| !pids.is_empty())
    }

    /// Whether ring files given are still waited for.
    pub fn waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Reads a batch of up to `limit` positions of ring `i` (see
    /// [`RingBatch`]); `force` attributes and reports every loss now.
    /// Hand it to the pipeline, then [`commit`](Self::commit) the ring.
    pub fn read(
        &mut self,
        i: usize,
        limit: usize,
        force: bool,
        now: Instant,
        now_ns: u64,
    ) -> RingBatch<'_> {
        self.sources[i].read(limit, force, now, now_ns)
    }

    /// Releases the batch of ring `i` read last.
    pub fn commit(&mut self, i: usize) {
        self.sources[i].commit();
    }

    /// Sets every ring's drain target to its claim position as of now.
    pub fn target_tails(&mut self) {
        for s in &mut self.sources {
            s.target_tail();
        }
    }

    /// The fewest slots of a lane among the attached rings (none attached:
    /// `None`): how much a single writing thread can put ahead of the reader
    /// before its lane is full.
    pub fn smallest_lane(&self) -> Option<u64> {
        self.sources.iter().map(Source::lane_slots).min()
    }

    /// Whether every ring is drained to its target.
    pub fn reached_targets(&self) -> bool {
        self.sources.iter().all(Source::reached_target)
    }

    /// Attaches the ring files waited for that appeared, as room allows.
    pub fn attach_waiting(&mut self, cursor: CursorOf<'_>) {
        if self.pending.is_empty() {
            return;
        }
        for path in std::mem::take(&mut self.pending) {
            if path.exists() && self.at_ring_limit() {
                self.refuse(&path);
                self.pending.push(path);
            } else if path.exists() {
                match self.attach(&path, false, cursor) {
                    Ok(()) => tracing::info!("attached {}", path.display()),
                    Err(e) => {
                        self.attach_errors
                            .report(&format!("{} (retrying)", e.report()));
                        self.pending.push(path);
                    }
                }
            } else {
                self.pending.push(path);
            }
        }
    }

    /// Whether the watched directory is due for a scan and the rings for a
    /// look at whether they are finished; counts it as done. Never with
    /// `--once`, which leaves every ring and its file as it found them.
    pub fn lifecycle_due(&mut self, now: Instant) -> bool {
        let anything = self.options.watch.is_some() || !self.options.keep_files;
        if !anything || self.options.once || now < self.next_lifecycle {
            return false;
        }
        self.next_lifecycle = now + WATCH_EVERY;
        true
    }

    /// The attachment slots of the rings whose writers have all exited and
    /// that are drained (or, watched ones, whose file is gone), with their
    /// writer tables and whether the file is gone; take each out with
    /// [`retire`](Self::retire) after its final batch. Named rings are
    /// finished only when their files are removed (not `--keep-rings`).
    pub fn finished(&self, now: Instant) -> Vec<(u32, Vec<WriterInfo>, bool)> {
        let named = !self.options.keep_files;
        self.sources
            .iter()
            .filter(|s| s.recheck_at.is_none_or(|t| now >= t))
            .filter_map(|s| {
                let (writers, gone) = s.finished(named)?;
                Some((s.ctx.slot, writers, gone))
            })
            .collect()
    }

    /// Takes the finished rings out (see [`finished`](Self::finished)), after
    /// their final batch: removes their files unless `--keep-rings` (those
    /// nobody needs: see [`lifecycle`]; all in one go, as `/proc` is read
    /// for all of them at once), and detaches them. A named ring whose file
    /// stays is left attached and looked at again in a few seconds; a named
    /// ring whose file went is waited for, for the next process that creates
    /// it. Returns the slots of the rings detached.
    pub fn retire(
        &mut self,
        finished: Vec<(u32, Vec<WriterInfo>, bool)>,
        now: Instant,
    ) -> Vec<u32> {
        let removing: Vec<u32> = finished
            .iter()
            .filter(|(_, _, gone)| !gone && !self.options.keep_files)
            .map(|(slot, _, _)| *slot)
            .collect();
        let mut removed = HashSet::new();
        {
            let candidates: Vec<_> = removing
                .iter()
                .filter_map(|slot| self.index_of(*slot))
                .filter_map(|i| self.sources[i].removal())
                .collect();
            let outcomes = lifecycle::remove(&candidates);
            for (candidate, outcome) in candidates.iter().zip(outcomes) {
                let path = candidate.path.display();
                match outcome {
                    Ok(()) => {
                        tracing::info!(
                            "removed ring file {path}: its writers exited and it is drained (--keep-rings keeps ring files)"
                        );
                        removed.insert(candidate.path.to_owned());
                    }
                    Err(kept) => tracing::debug!("keeping ring file {path}: {kept}"),
                }
            }
        }
        let mut detached = Vec::new();
        for (slot, writers, gone) in finished {
            let Some(i) = self.index_of(slot) else {
                continue;
            };
            let source = &mut self.sources[i];
            let removed = removed.contains(source.path());
            if !source.watched && !removed && !gone {
                source.recheck_at = Some(now + RETRY_AFTER);
                continue;
            }
            let named = (!source.watched).then(|| source.path().clone());
            self.detach(i, writers, gone || removed, now);
            if let Some(path) = named {
                self.pending.push(path);
            }
            detached.push(slot);
        }
        detached
    }

    /// The index of the ring attached as `slot`.
    pub fn index_of(&self, slot: u32) -> Option<usize> {
        self.sources.iter().position(|s| s.ctx.slot == slot)
    }

    /// Detaches ring `i`, finished with writer table `writers`; keeps its
    /// figures. A ring whose file is still there is looked at again in a
    /// few seconds in case a new writer opens it.
    fn detach(&mut self, i: usize, writers: Vec<WriterInfo>, gone: bool, now: Instant) {
        let s = &mut self.sources[i];
        s.table = writers;
        s.check_writers(timefmt::now_ns(), &mut self.postmortems, &self.processes);
        let status = s.status(self.primary, 0);
        let account = s.account(&self.exporters, self.primary);
        let s = self.sources.swap_remove(i);
        let path = s.path().clone();
        if !gone {
            self.retry_at.insert(path, now + RETRY_AFTER);
        } else if self.reported.remove(&path) {
            tracing::info!("detached {} (file removed)", path.display());
        }
        self.detached.insert(
            s.ctx.ring_id,
            Detached {
                at: now,
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
        // A ring whose file was removed is not coming back, and an
        // application restarted over and over makes a new ring each time:
        // keep the figures of as many detached rings as may be attached,
        // forgetting the ones detached longest ago (one attached again
        // later continues from the exporter's LOSS lines, as after a
        // restart of the reader).
        if self.detached.len() > self.options.max_rings {
            let oldest = self
                .detached
                .iter()
                .min_by_key(|(_, d)| d.at)
                .map(|(id, _)| *id);
            if let Some(id) = oldest {
                self.detached.remove(&id);
            }
        }
    }

    /// Attaches the `*.ring` files of the watched directory not attached
    /// yet, as room allows.
    pub fn scan_watch_dir(&mut self, now: Instant, cursor: CursorOf<'_>) {
        let Some(dir) = self.options.watch.clone() else {
            return;
        };
        // Paths as `ring_path` makes them, so that a ring also named on the
        // command line is recognised.
        let dir = dir.canonicalize().unwrap_or(dir);
        let Ok(mut found) = lifecycle::list(&dir) else {
            return;
        };
        let attached: HashSet<&PathBuf> = self.sources.iter().map(Source::path).collect();
        found.retain(|p| !attached.contains(p));
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
            match self.attach(&path, true, cursor) {
                Ok(()) => {
                    self.retry_at.remove(&path);
                    if self.reported.insert(path.clone()) {
                        tracing::info!("attached {}", path.display());
                    }
                }
                Err(e) => {
                    self.retry_at.insert(path.clone(), now + RETRY_AFTER);
                    if self.reported.insert(path.clone()) {
                        tracing::warn!(
                            "not attaching {}: {} (retrying every 5 s)",
                            path.display(),
                            e.report()
                        );
                    }
                }
            }
        }
    }

    /// Reads every ring's writer table again and freezes the post-mortems
    /// of writers found dead whose events are all drained.
    pub fn check_writers(&mut self, now_ns: u64) {
        for s in &mut self.sources {
            s.refresh_table();
            s.check_writers(now_ns, &mut self.postmortems, &self.processes);
        }
    }

    /// Samples the CPU and memory of the live writer processes (those of
    /// the writer tables as last read) when a sample is due.
    pub fn sample_processes(&mut self, now: Instant, now_ns: u64) {
        if !self.processes.due(now) {
            return;
        }
        let live = self.sources.iter().flat_map(|s| {
            let ring = s.ctx.path.as_path();
            s.table.iter().filter(|w| w.alive).map(move |w| LiveWriter {
                pid: w.pid,
                start_time: w.start_time,
                service: w.service.as_deref(),
                ring,
            })
        });
        self.processes.tick(live, now, now_ns);
    }

    /// The latest samples of the writer processes, per service, and the
    /// reader's own, read now.
    pub fn processes(&mut self, now: Instant, now_ns: u64) -> ProcessesSnapshot {
        self.processes.snapshot(now, now_ns)
    }

    /// Every ring, attached or detached, by path.
    pub fn statuses(&mut self, now: Instant) -> Vec<RingStatus> {
        let mut rings = Vec::with_capacity(self.sources.len() + self.detached.len());
        for s in &mut self.sources {
            let recent = s.lost_last_minute(now);
            rings.push(s.status(self.primary, recent));
        }
        rings.extend(self.detached.values().map(|d| d.status.clone()));
        rings.sort_by(|a, b| a.path.cmp(&b.path));
        rings
    }

    /// Losses per producer since the reader started, latest first.
    pub fn producer_losses(&self) -> Vec<ProducerLoss> {
        let mut losses: Vec<ProducerLoss> = self
            .sources
            .iter()
            .flat_map(Source::producer_losses)
            .collect();
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
        losses
    }

    /// The file of each ring id, attached or detached.
    pub fn paths(&self) -> HashMap<u64, String> {
        self.sources
            .iter()
            .map(|s| (s.ctx.ring_id, s.path().display().to_string()))
            .chain(
                self.detached
                    .iter()
                    .map(|(id, d)| (*id, d.status.path.clone())),
            )
            .collect()
    }

    /// The kept post-mortems, newest first.
    pub fn postmortems(&self) -> Vec<Arc<PostMortem>> {
        self.postmortems.list()
    }

    /// The `--max-rings` limit: use, hits, and the files waiting for room.
    pub fn ring_limit(&mut self, now: Instant) -> RingLimit {
        RingLimit {
            limit: Some(self.options.max_rings as u64),
            used: self.sources.len() as u64,
            hits: self.rings_refused,
            hits_last_minute: self.ring_limit_hits.update(now, self.rings_refused),
            waiting: self
                .refused
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        }
    }

    /// The string table of every attached ring.
    pub fn string_limits(&mut self, now: Instant) -> Vec<StringLimit> {
        self.sources
            .iter_mut()
            .map(|s| s.string_limit(now))
            .collect()
    }

    /// The `--accounting` line of every ring attached during the run, the
    /// attached ones first.
    pub fn accounts(&self) -> Vec<RingAccount> {
        let mut accounts: Vec<RingAccount> = self
            .sources
            .iter()
            .map(|s| s.account(&self.exporters, self.primary))
            .collect();
        let mut detached: Vec<RingAccount> =
            self.detached.values().map(|d| d.account.clone()).collect();
        detached.sort_by(|a, b| a.ring.cmp(&b.ring));
        accounts.extend(detached);
        accounts
    }
}

/// `path` made absolute with its directory resolved (symbolic links, `.`,
/// `..`) and its file name kept as given: two spellings of one ring file
/// become one path, and a symbolic link given as a ring is still refused
/// when attached (ring files are never opened through one). A path whose
/// directory does not exist yet is only made absolute.
pub fn ring_path(path: &Path) -> PathBuf {
    let Some(name) = path.file_name() else {
        return std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match dir.canonicalize() {
        Ok(dir) => dir.join(name),
        Err(_) => std::path::absolute(path).unwrap_or_else(|_| path.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::ring_path;
    use std::path::Path;

    #[test]
    fn spellings_of_one_ring_file_are_one_path() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::create_dir(base.join("sub")).unwrap();
        let want = base.join("a.ring");
        for given in [
            base.join("a.ring"),
            base.join("./a.ring"),
            base.join("sub/../a.ring"),
            base.join("sub/.././a.ring"),
        ] {
            assert_eq!(ring_path(&given), want, "{}", given.display());
        }
        let link = base.join("link");
        std::os::unix::fs::symlink(base.join("sub"), &link).unwrap();
        assert_eq!(ring_path(&link.join("b.ring")), base.join("sub/b.ring"));
        // The file name itself is never resolved: a symlink stays one.
        std::os::unix::fs::symlink(&want, base.join("alias.ring")).unwrap();
        assert_eq!(ring_path(&base.join("alias.ring")), base.join("alias.ring"));
        // A directory that does not exist yet: made absolute only.
        assert!(ring_path(Path::new("no-such-dir/x.ring")).is_absolute());
    }
}
