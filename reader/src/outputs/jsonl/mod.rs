//! JSONL exporter: one event per line into rotating files.
//!
//! Files in `--jsonl-dir`:
//! - `current.jsonl`: the file being written. Its name never changes, so
//!   `tail -F current.jsonl` follows the stream across rotations (the same
//!   rename-and-recreate pattern as logrotate).
//! - `<name>` (from the filename template): closed files, renamed from
//!   `current.jsonl` once complete, so a closed file never has a partial
//!   line. With `--compress` they become `<name>.gz` / `<name>.zst`
//!   (compressed in a background thread to a hidden temporary, renamed into
//!   place, then the plain file removed).
//!
//! Each batch is rendered into one buffer and written with one `write`
//! before the drain loop commits the batch to the ring, and rotation happens
//! only between batches, after the commit. So a reader killed at any instant
//! has either not committed a batch (the ring delivers it again) or already
//! written it to `current.jsonl`. On start the exporter cuts a partial last
//! line off a leftover `current.jsonl`, reads the highest `seq` per `ring_id`
//! from it and from the newest closed file, closes it, and then skips the
//! re-delivered events it already has: every event lands in the files
//! exactly once across a SIGKILL.
//!
//! LOSS lines (see [`crate::ingest::loss`]) go into the same write as the batch they
//! were found in, each before the event it precedes. Each one carries the
//! ring's cumulative loss counts that the LOSS lines up to it account for.
//! On start the exporter takes the latest cumulative counts per ring from
//! the LOSS lines of the files it scans and from `.profilis-loss.json`
//! (rewritten through a temporary file at most every 100 ms after LOSS lines
//! were written, and whenever a file is closed, so it covers every file the
//! scan does not read), and the reader's loss accounting continues from
//! there: a batch delivered again after a kill yields no second marker, and
//! losses the killed run never wrote are reported by the next. If a write
//! fails, the next write starts with one LOSS line (no pid) for the markers
//! lost with it, so the lines always add up to the ring counters.

use super::{DiskUse, Exported, Exporter, LossBatch};
use crate::ingest::loss::{LossCursor, LossMarker};
use crate::ingest::{Batch, RingContext};
use crate::support::report::ErrorReporter;
use crate::views::{ExporterStatus, LossTotals};
use anyhow::bail;
use compress::Compressor;
use files::OpenFile;
use high_water::HighWater;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Name of the file being written (closed files are renamed away from it).
pub const CURRENT_FILE: &str = "current.jsonl";
/// Lock file: one reader per directory.
pub const LOCK_FILE: &str = ".profilis-reader.lock";
/// Where the LOSS lines of each ring stand (see the module docs).
pub const LOSS_STATE_FILE: &str = ".profilis-loss.json";
/// Default filename template.
pub const DEFAULT_TEMPLATE: &str = "profilis-{timestamp}.jsonl";

mod compress;
mod files;
mod high_water;
pub mod line;
pub mod loss_line;
mod template;

pub use compress::{compress_file, Compression};
pub use template::Template;

/// Settings of the JSONL exporter.
#[derive(Clone, Debug)]
pub struct JsonlOptions {
    /// Output directory (created if missing).
    pub dir: PathBuf,
    /// File name template.
    pub template: String,
    /// Rotate when the file reaches this many bytes (0: never).
    pub rotate_bytes: u64,
    /// Rotate when the file is this old (zero: never).
    pub rotate_after: Duration,
    /// Compress closed files.
    pub compress: Option<Compression>,
    /// Keep at most this many closed files.
    pub retain_files: Option<usize>,
    /// Delete closed files older than this.
    pub retain_age: Option<Duration>,
    /// Keep the JSONL files (closed and current) under this many bytes:
    /// closed files are deleted oldest first so that they and a full
    /// current file (`rotate_bytes`) fit.
    pub retain_bytes: Option<u64>,
}

impl JsonlOptions {
    /// Defaults for `dir`: 100 MiB / 1 h rotation, no compression or
    /// retention.
    pub fn new(dir: impl Into<PathBuf>) -> JsonlOptions {
        JsonlOptions {
            dir: dir.into(),
            template: DEFAULT_TEMPLATE.to_string(),
            rotate_bytes: 100 << 20,
            rotate_after: Duration::from_secs(3600),
            compress: None,
            retain_files: None,
            retain_age: None,
            retain_bytes: None,
        }
    }
}

/// The JSONL exporter.
pub struct JsonlExporter {
    options: JsonlOptions,
    template: Template,
    lock: Option<File>,
    current: Option<OpenFile>,
    high_water: HighWater,
    loss_written: HashMap<u64, LossCursor>,
    loss_state_dirty: bool,
    loss_state_saved: Option<Instant>,
    buf: Vec<u8>,
    reporter: ErrorReporter,
    retry_at: Option<Instant>,
    compressor: Option<Compressor>,
    status: ExporterStatus,
    counter: u64,
    last_retention: Option<Instant>,
    /// Set by `finish`: no file follows the last one closed, so retention
    /// keeps no room for one.
    finished: bool,
    /// Closed files and their bytes as of the last retention pass, and
    /// what retention deleted.
    disk: DiskUse,
}

impl JsonlExporter {
    /// Sets up the exporter and recovers what a previous run left in the
    /// directory. Fails only for a bad template or a directory another
    /// reader holds; an unusable directory is reported and retried (events
    /// meanwhile count as lost).
    pub fn new(options: JsonlOptions) -> anyhow::Result<JsonlExporter> {
        let template = Template::parse(&options.template)?;
        if let Some(max) = options.retain_bytes {
            if options.rotate_bytes == 0 || options.rotate_bytes > max {
                bail!(
                    "--retain-bytes {max} needs --rotate-bytes between 1 and {max} (now {}): the file being written counts too and is only closed at rotation",
                    options.rotate_bytes
                );
            }
        }
        let compressor = options.compress.map(Compressor::start);
        let mut exporter = JsonlExporter {
            template,
            lock: None,
            current: None,
            high_water: HighWater::default(),
            loss_written: HashMap::new(),
            loss_state_dirty: false,
            loss_state_saved: None,
            buf: Vec::with_capacity(1 << 20),
            reporter: ErrorReporter::new("JSONL exporter"),
            retry_at: None,
            compressor,
            status: ExporterStatus {
                name: "jsonl",
                ..ExporterStatus::default()
            },
            counter: 0,
            last_retention: None,
            finished: false,
            disk: DiskUse {
                retain_bytes: options.retain_bytes,
                retain_files: options.retain_files.map(|n| n as u64),
                ..DiskUse::default()
            },
            options,
        };
        match exporter.prepare_dir() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                bail!(
                    "JSONL directory {} is in use by another profilis-reader (lock {LOCK_FILE})",
                    exporter.options.dir.display()
                )
            }
            Err(e) => exporter.fail(&format!(
                "cannot use directory {}: {e}; retrying, events count as lost meanwhile",
                exporter.options.dir.display()
            )),
        }
        Ok(exporter)
    }

    /// What the directory held at start: the highest exported position
    /// per ring and lane.
    pub fn high_water(&self) -> &HighWater {
        &self.high_water
    }

    fn fail(&mut self, message: &str) {
        self.status.errors += 1;
        self.status.last_error = Some(message.to_string());
        self.reporter.report(message);
    }
}

impl JsonlExporter {
    /// Opens the current file if none is; when it cannot be, counts the
    /// `events` of the batch at hand as lost and reports why. Returns
    /// whether a file is open.
    fn open_for(&mut self, events: usize) -> bool {
        let opened = self.ensure_open(Instant::now());
        if matches!(opened, Ok(true)) {
            return true;
        }
        self.status.lost += events as u64;
        if let Err(e) = opened {
            self.fail(&format!("{e}; events count as lost until it works again"));
        }
        false
    }

    /// Renders the batch's events, with its LOSS markers before the events
    /// they precede, and writes it all with one `write`.
    fn write_batch(
        &mut self,
        ctx: &mut RingContext,
        batch: &Batch<'_>,
        losses: Option<&LossBatch<'_>>,
    ) -> Exported {
        let mut out = Exported::default();
        let markers = losses.map_or(&[][..], |l| l.markers);
        let written_before = self
            .loss_written
            .get(&ctx.ring_id)
            .map(|c| (c.cumulative, c.to_ts_ns))
            .unwrap_or_default();
        let catch_up = losses.and_then(|l| catch_up(written_before, l));
        if batch.events().is_empty() && markers.is_empty() && catch_up.is_none() {
            return out;
        }
        // Opened before rendering: the first open of the directory reads
        // what earlier runs wrote, which the rendering skips.
        if !self.open_for(batch.events().len()) {
            out.lost = batch.events().len() as u64;
            return out;
        }
        self.buf.clear();
        if let Some(m) = &catch_up {
            loss_line::render(&mut self.buf, &ctx.ring_id_json, m);
        }
        let high_water = self.high_water.lanes(ctx.ring_id, ctx.lanes);
        let mut next_marker = 0;
        for (i, e) in batch.events().iter().enumerate() {
            while let Some(m) = markers.get(next_marker).filter(|m| m.before_event <= i) {
                loss_line::render(&mut self.buf, &ctx.ring_id_json, m);
                next_marker += 1;
            }
            if high_water.as_ref().is_some_and(|h| h.covers(e)) {
                out.skipped += 1;
                continue;
            }
            line::render(&mut self.buf, ctx, batch.names(), batch.wall_ns(e), e);
            out.written += 1;
        }
        for m in &markers[next_marker..] {
            loss_line::render(&mut self.buf, &ctx.ring_id_json, m);
        }
        if self.buf.is_empty() {
            return out;
        }
        // A file being written can be closed before this batch, not while
        // it is written: a batch that would take a file with lines in it
        // past --rotate-bytes goes into the next file (so a file exceeds
        // the limit only when one batch alone does, and retention, which
        // keeps room for one full file, never has to delete the newest
        // closed one). The batch's rendered size decides.
        let (limit, adding) = (self.options.rotate_bytes, self.buf.len() as u64);
        if limit > 0
            && self
                .current
                .as_ref()
                .is_some_and(|f| f.len > 0 && f.len + adding > limit)
        {
            self.rotate();
            if !self.open_for(batch.events().len()) {
                return Exported {
                    lost: batch.events().len() as u64,
                    ..Exported::default()
                };
            }
        }
        let f = self.current.as_mut().expect("opened above");
        match f.file.write_all(&self.buf) {
            Ok(()) => {
                f.len += self.buf.len() as u64;
                self.status.bytes += self.buf.len() as u64;
                self.status.exported += out.written;
                if self.status.last_error.is_some() && self.status.exported == out.written {
                    self.reporter.recovered();
                }
                if let Some(l) = losses {
                    if !markers.is_empty() || catch_up.is_some() {
                        self.loss_written.insert(ctx.ring_id, l.cursor.clone());
                        self.loss_state_dirty = true;
                    }
                }
            }
            Err(e) => {
                // Take back whatever part of the batch reached the file, so
                // no line is ever half there.
                let truncated = f.file.set_len(f.len);
                let path = f.open_path.display().to_string();
                out.lost = out.written;
                out.written = 0;
                self.status.lost += out.lost;
                if truncated.is_err() {
                    // Cannot take it back: close this file (its last line may
                    // be partial; a restart cuts it off) and start a new one.
                    self.current = None;
                }
                self.fail(&format!("writing {path}: {e}; {} events lost", out.lost));
            }
        }
        out
    }
}

/// A LOSS line (no pid) for losses the written lines do not account for
/// yet: markers lost with a failed write, or a cursor the files lack.
fn catch_up(written: (LossTotals, u64), losses: &LossBatch<'_>) -> Option<LossMarker> {
    let (written, written_to) = written;
    let mut before = losses.cursor.cumulative;
    for m in losses.markers {
        before.dropped = before.dropped.saturating_sub(m.counts.dropped);
        before.overwritten = before.overwritten.saturating_sub(m.counts.overwritten);
        before.abandoned = before.abandoned.saturating_sub(m.counts.abandoned);
        before.torn = before.torn.saturating_sub(m.counts.torn);
    }
    let counts = LossTotals {
        dropped: before.dropped.saturating_sub(written.dropped),
        overwritten: before.overwritten.saturating_sub(written.overwritten),
        abandoned: before.abandoned.saturating_sub(written.abandoned),
        torn: before.torn.saturating_sub(written.torn),
    };
    if counts.is_empty() {
        return None;
    }
    let to = losses
        .markers
        .first()
        .map_or(losses.cursor.to_ts_ns, |m| m.from_ts_ns)
        .max(written_to);
    Some(LossMarker {
        pid: None,
        writer: None,
        service: None,
        counts,
        from_ts_ns: written_to.min(to),
        to_ts_ns: to,
        before_event: 0,
        cumulative: before,
    })
}

/// Contents of `.profilis-loss.json`.
#[derive(serde::Serialize, serde::Deserialize)]
struct LossState {
    rings: HashMap<String, LossCursor>,
}

impl Exporter for JsonlExporter {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    fn is_primary(&self) -> bool {
        true
    }

    fn export(&mut self, ctx: &mut RingContext, batch: &Batch<'_>) -> Exported {
        self.write_batch(ctx, batch, None)
    }

    fn export_with_losses(
        &mut self,
        ctx: &mut RingContext,
        batch: &Batch<'_>,
        losses: &LossBatch<'_>,
    ) -> Exported {
        self.write_batch(ctx, batch, Some(losses))
    }

    fn loss_cursor(&self, ring_id: u64) -> Option<LossCursor> {
        self.loss_written.get(&ring_id).cloned()
    }

    fn maintain(&mut self, now: Instant) {
        if self.loss_state_dirty
            && self
                .loss_state_saved
                .is_none_or(|t| now.duration_since(t) >= Duration::from_millis(100))
        {
            self.save_loss_state();
        }
        if let Some(f) = &self.current {
            let by_size = self.options.rotate_bytes > 0 && f.len >= self.options.rotate_bytes;
            let by_age = !self.options.rotate_after.is_zero()
                && f.len > 0
                && now.duration_since(f.opened) >= self.options.rotate_after;
            if by_size || by_age {
                self.rotate();
            }
        }
        if self
            .last_retention
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
        {
            self.apply_retention();
        }
        if let Some(c) = &self.compressor {
            self.status.errors += c.take_errors();
        }
    }

    fn finish(&mut self) {
        // No file follows: the retention of the last rotation keeps no
        // room for one (the last file, closed here, would otherwise be
        // deleted when it is as large as a full file).
        self.finished = true;
        self.rotate();
        self.save_loss_state();
        if let Some(c) = self.compressor.take() {
            self.status.errors += c.finish();
        }
        self.apply_retention();
    }

    fn status(&self) -> ExporterStatus {
        self.status.clone()
    }

    fn disk_use(&self) -> Option<DiskUse> {
        let current = self.current.as_ref().map_or(0, |f| f.len);
        Some(DiskUse {
            bytes: self.disk.bytes + current,
            ..self.disk
        })
    }
}

#[cfg(test)]
mod tests;
