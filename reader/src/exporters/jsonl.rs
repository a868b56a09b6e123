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

use super::{line, loss_line, DiskUse, Exported, Exporter, LossBatch};
use crate::ingest::loss::{LossCursor, LossMarker};
use crate::ingest::Batch;
use crate::ingest::RingContext;
use crate::support::report::ErrorReporter;
use crate::support::timefmt;
use crate::views::ExporterStatus;
use crate::views::LossTotals;
use anyhow::{bail, Context};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Name of the file being written (closed files are renamed away from it).
pub const CURRENT_FILE: &str = "current.jsonl";
/// Lock file: one reader per directory.
pub const LOCK_FILE: &str = ".profilis-reader.lock";
/// Where the LOSS lines of each ring stand (see the module docs).
pub const LOSS_STATE_FILE: &str = ".profilis-loss.json";
/// Default filename template.
pub const DEFAULT_TEMPLATE: &str = "profilis-{timestamp}.jsonl";

/// Compression of closed files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// gzip (`.gz`, level 6).
    Gzip,
    /// Zstandard (`.zst`, level 3).
    Zstd,
}

impl Compression {
    /// File name extension added by this compression.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }
}

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

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Timestamp,
    Pid,
    Counter,
}

/// A parsed filename template: `{timestamp}` (UTC, `20261125T100312.123Z`),
/// `{pid}` (the reader's pid) and `{n}` (files opened by this run, from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses and validates a template.
    pub fn parse(text: &str) -> anyhow::Result<Template> {
        if text.contains('/') || text.starts_with('.') || text.is_empty() {
            bail!("filename template {text:?} must be a plain file name (no '/', not hidden)");
        }
        if text == CURRENT_FILE {
            bail!("filename template {text:?} clashes with the names the exporter uses itself");
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .with_context(|| format!("filename template {text:?}: unclosed '{{'"))?;
            parts.push(match &rest[open + 1..open + close] {
                "timestamp" => Part::Timestamp,
                "pid" => Part::Pid,
                "n" => Part::Counter,
                other => bail!(
                    "filename template {text:?}: unknown placeholder {{{other}}} (use {{timestamp}}, {{pid}} or {{n}})"
                ),
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        if !parts
            .iter()
            .any(|p| matches!(p, Part::Timestamp | Part::Counter))
        {
            bail!("filename template {text:?} needs {{timestamp}} or {{n}} so rotated files get distinct names");
        }
        Ok(Template { parts })
    }

    /// A file name; `unique` > 0 is appended to the first placeholder
    /// (`...T100312.123Z-2...`) to avoid an existing name.
    pub fn render(&self, now_ns: u64, counter: u64, pid: u32, unique: u32) -> String {
        let mut out = String::new();
        let mut first = true;
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Timestamp => out.push_str(&timefmt::file_stamp(now_ns)),
                Part::Pid => out.push_str(&pid.to_string()),
                Part::Counter => out.push_str(&counter.to_string()),
            }
            if !matches!(p, Part::Literal(_)) && first {
                first = false;
                if unique > 0 {
                    out.push_str(&format!("-{unique}"));
                }
            }
        }
        out
    }

    /// Whether `name` could have come from [`render`](Self::render).
    pub fn matches(&self, name: &str) -> bool {
        fn go(parts: &[Part], s: &str) -> bool {
            match parts.split_first() {
                None => s.is_empty(),
                Some((Part::Literal(lit), rest)) => {
                    s.strip_prefix(lit.as_str()).is_some_and(|s| go(rest, s))
                }
                Some((_, rest)) => (1..=s.len())
                    .filter(|&i| s.is_char_boundary(i))
                    .any(|i| !s[..i].contains('/') && go(rest, &s[i..])),
            }
        }
        go(&self.parts, name)
    }
}

struct OpenFile {
    file: File,
    open_path: PathBuf,
    final_path: PathBuf,
    len: u64,
    opened: Instant,
}

/// The JSONL exporter.
pub struct JsonlExporter {
    options: JsonlOptions,
    template: Template,
    lock: Option<File>,
    current: Option<OpenFile>,
    high_water: HashMap<u64, u64>,
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
            high_water: HashMap::new(),
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

    /// Highest exported `seq` per ring id found in the directory at start.
    pub fn high_water(&self) -> &HashMap<u64, u64> {
        &self.high_water
    }

    fn fail(&mut self, message: &str) {
        self.status.errors += 1;
        self.status.last_error = Some(message.to_string());
        self.reporter.report(message);
    }

    /// Creates and locks the directory, then recovers leftovers.
    fn prepare_dir(&mut self) -> io::Result<()> {
        if self.lock.is_some() {
            return Ok(());
        }
        let dir = self.options.dir.clone();
        fs::create_dir_all(&dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(dir.join(LOCK_FILE))?;
        // SAFETY: the descriptor is valid for the life of `lock`.
        if unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&lock),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        } != 0
        {
            let err = io::Error::last_os_error();
            return Err(if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                io::Error::new(io::ErrorKind::WouldBlock, "locked")
            } else {
                err
            });
        }
        self.lock = Some(lock);
        self.recover()
    }

    /// Finishes what a previous run left: a partial line, `current.jsonl`,
    /// interrupted compressions; learns the exported positions.
    fn recover(&mut self) -> io::Result<()> {
        let dir = self.options.dir.clone();
        let mut leftover = None;
        let mut closed = Vec::new();
        let mut names = std::collections::HashSet::new();
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            names.insert(name.clone());
            if name == CURRENT_FILE {
                if entry.file_type()?.is_file() {
                    leftover = Some(entry.path());
                }
            } else if name.starts_with('.') && name.ends_with(".tmp") {
                let inner = name[1..name.len() - 4]
                    .trim_end_matches(".gz")
                    .trim_end_matches(".zst");
                if self.template.matches(inner) {
                    let _ = fs::remove_file(entry.path()); // interrupted compression
                }
            } else if self.template.matches(&name) && entry.file_type()?.is_file() {
                closed.push(name);
            }
        }
        // A compressed copy that exists was renamed into place complete: the
        // plain file it replaces is the leftover.
        closed.retain(|name| {
            let compressed = [".gz", ".zst"]
                .iter()
                .any(|ext| names.contains(&format!("{name}{ext}")));
            if compressed {
                let _ = fs::remove_file(dir.join(name));
            }
            !compressed
        });
        let newest_closed = closed
            .iter()
            .filter_map(|n| Some((fs::metadata(dir.join(n)).ok()?.modified().ok()?, n.clone())))
            .max();
        if let Some((_, name)) = newest_closed {
            self.scan(&dir.join(name), false)?;
        }
        if let Some(open_path) = leftover {
            self.scan(&open_path, true)?;
            // Named after the time the file was started, as it would have
            // been had the previous reader closed it.
            let meta = fs::metadata(&open_path)?;
            let started = meta.created().or_else(|_| meta.modified())?;
            let started_ns = started
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            self.counter += 1;
            let base = self
                .template
                .render(started_ns, self.counter, std::process::id(), 0);
            let final_path = self.unused_name(&base);
            fs::rename(&open_path, &final_path)?;
            closed.push(
                final_path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
        if let Some(c) = &self.compressor {
            for name in closed {
                c.queue(dir.join(name));
            }
        }
        self.recover_loss_state();
        self.apply_retention();
        Ok(())
    }

    /// Merges `.profilis-loss.json` with what the scan found in LOSS lines:
    /// per ring the later of the two (cumulative counts only grow), with the
    /// per-writer marks of the file.
    fn recover_loss_state(&mut self) {
        let path = self.options.dir.join(LOSS_STATE_FILE);
        let saved: HashMap<String, LossCursor> = match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<LossState>(&bytes) {
                Ok(state) => state.rings,
                Err(e) => {
                    self.fail(&format!(
                        "{} is damaged ({e}); losses already in older files may be reported again",
                        path.display()
                    ));
                    HashMap::new()
                }
            },
            Err(_) => HashMap::new(),
        };
        for (id, cursor) in saved {
            let Ok(ring) = u64::from_str_radix(&id, 16) else {
                continue;
            };
            let entry = self.loss_written.entry(ring).or_default();
            if cursor.cumulative.total() >= entry.cumulative.total() {
                *entry = cursor;
            } else {
                entry.writers = cursor.writers;
            }
        }
        self.loss_state_dirty = !self.loss_written.is_empty();
        self.save_loss_state();
    }

    /// Writes `.profilis-loss.json` (through a temporary file) if LOSS lines
    /// were written since the last time.
    fn save_loss_state(&mut self) {
        if !self.loss_state_dirty {
            return;
        }
        let state = LossState {
            rings: self
                .loss_written
                .iter()
                .map(|(id, c)| (crate::support::json::hex64(*id), c.clone()))
                .collect(),
        };
        let dir = &self.options.dir;
        let tmp = dir.join(format!("{LOSS_STATE_FILE}.tmp"));
        let result = serde_json::to_vec(&state)
            .map_err(io::Error::other)
            .and_then(|bytes| {
                let mut f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                f.write_all(&bytes)?;
                drop(f);
                fs::rename(&tmp, dir.join(LOSS_STATE_FILE))
            });
        self.loss_state_saved = Some(Instant::now());
        match result {
            Ok(()) => self.loss_state_dirty = false,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                self.fail(&format!(
                    "writing {}: {e}",
                    dir.join(LOSS_STATE_FILE).display()
                ));
            }
        }
    }

    /// A path in the directory for closing a leftover file as `base` that no closed
    /// file (plain or compressed) uses yet.
    fn unused_name(&self, base: &str) -> PathBuf {
        let taken = |name: &str| {
            ["", ".gz", ".zst"]
                .iter()
                .any(|ext| self.options.dir.join(format!("{name}{ext}")).exists())
        };
        if !taken(base) {
            return self.options.dir.join(base);
        }
        let (stem, tail) = match self.template.parts.last() {
            Some(Part::Literal(lit)) if base.ends_with(lit.as_str()) => {
                base.split_at(base.len() - lit.len())
            }
            _ => (base, ""),
        };
        (1u32..)
            .map(|i| format!("{stem}-{i}{tail}"))
            .find(|n| !taken(n))
            .map(|n| self.options.dir.join(n))
            .expect("some suffix is free")
    }

    /// Reads the `(ring_id, seq)` of every line of `path` into the high-water
    /// marks; with `truncate_partial`, cuts off a last line that has no
    /// newline (a write cut short by a kill).
    fn scan(&mut self, path: &Path, truncate_partial: bool) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(truncate_partial)
            .open(path)?;
        let len = file.metadata()?.len();
        let mut chunk = vec![0u8; 1 << 20];
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let n = file.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            let mut data = &chunk[..n];
            while let Some(end) = data.iter().position(|&b| b == b'\n') {
                let line_bytes: &[u8] = if carry.is_empty() {
                    &data[..end]
                } else {
                    carry.extend_from_slice(&data[..end]);
                    &carry
                };
                if let Some((ring, seq)) = line::parse_tail(line_bytes) {
                    let hw = self.high_water.entry(ring).or_insert(seq);
                    *hw = (*hw).max(seq);
                } else if let Some((ring, cumulative, to_ts_ns)) = loss_line::parse(line_bytes) {
                    let c = self.loss_written.entry(ring).or_default();
                    if cumulative.total() >= c.cumulative.total() {
                        c.cumulative = cumulative;
                        c.to_ts_ns = to_ts_ns;
                    }
                }
                carry.clear();
                data = &data[end + 1..];
            }
            carry.extend_from_slice(data);
        }
        if !carry.is_empty() && truncate_partial {
            file.set_len(len - carry.len() as u64)?;
        }
        Ok(())
    }

    /// Opens a file unless one is open. `Ok(false)`: not now (an error was
    /// reported recently; retried once a second).
    fn ensure_open(&mut self, now: Instant) -> io::Result<bool> {
        if self.current.is_some() {
            return Ok(true);
        }
        if self.retry_at.is_some_and(|t| now < t) {
            return Ok(false);
        }
        self.retry_at = Some(now + Duration::from_secs(1));
        if let Err(e) = self.prepare_dir() {
            return Err(if e.kind() == io::ErrorKind::WouldBlock {
                io::Error::other(format!(
                    "directory {} is locked by another profilis-reader",
                    self.options.dir.display()
                ))
            } else {
                io::Error::new(
                    e.kind(),
                    format!("directory {}: {e}", self.options.dir.display()),
                )
            });
        }
        self.counter += 1;
        let now_ns = timefmt::now_ns();
        let pid = std::process::id();
        let base = (0u32..)
            .map(|u| self.template.render(now_ns, self.counter, pid, u))
            .find(|n| {
                ["", ".gz", ".zst"]
                    .iter()
                    .all(|ext| !self.options.dir.join(format!("{n}{ext}")).exists())
            })
            .expect("some suffix is free");
        let final_path = self.options.dir.join(&base);
        let open_path = self.options.dir.join(CURRENT_FILE);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&open_path)
            .map_err(|e| {
                io::Error::new(e.kind(), format!("creating {}: {e}", open_path.display()))
            })?;
        self.current = Some(OpenFile {
            file,
            open_path,
            final_path,
            len: 0,
            opened: now,
        });
        self.retry_at = None;
        Ok(true)
    }

    /// Closes the current file: rename to its final name, queue compression,
    /// apply retention.
    fn rotate(&mut self) {
        self.save_loss_state();
        let Some(f) = self.current.take() else { return };
        drop(f.file);
        if f.len == 0 {
            let _ = fs::remove_file(&f.open_path);
            return;
        }
        if let Err(e) = fs::rename(&f.open_path, &f.final_path) {
            // Left as current.jsonl: the next start finishes the job.
            self.fail(&format!("closing {}: {e}", f.open_path.display()));
            return;
        }
        self.status.files_rotated += 1;
        if let Some(c) = &self.compressor {
            c.queue(f.final_path);
        }
        self.apply_retention();
    }

    /// Deletes closed files past `--retain-files`, older than
    /// `--retain-age`, or beyond `--retain-bytes` (oldest first), and
    /// measures what is left.
    fn apply_retention(&mut self) {
        self.last_retention = Some(Instant::now());
        let Ok(entries) = fs::read_dir(&self.options.dir) else {
            return;
        };
        let mut files: Vec<(SystemTime, PathBuf, u64)> = entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                let base = name
                    .strip_suffix(".gz")
                    .or_else(|| name.strip_suffix(".zst"))
                    .unwrap_or(&name);
                !name.starts_with('.')
                    && self.template.matches(base)
                    && e.file_type().is_ok_and(|t| t.is_file())
            })
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, e.path(), meta.len()))
            })
            .collect();
        files.sort();
        let now = SystemTime::now();
        let excess = self
            .options
            .retain_files
            .map_or(0, |keep| files.len().saturating_sub(keep));
        // Room kept for the file being written, up to its rotation size.
        let current = self.current.as_ref().map_or(0, |f| f.len);
        let reserve = current.max(self.options.rotate_bytes);
        let mut closed_bytes: u64 = files.iter().map(|f| f.2).sum();
        let mut kept = files.len() as u64;
        for (i, (modified, path, len)) in files.iter().enumerate() {
            let by_count = i < excess;
            let by_age = self
                .options
                .retain_age
                .is_some_and(|age| now.duration_since(*modified).is_ok_and(|d| d > age));
            let by_bytes = self
                .options
                .retain_bytes
                .is_some_and(|max| closed_bytes + reserve > max);
            if !(by_count || by_age || by_bytes) {
                continue;
            }
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    let message = format!("retention: removing {}: {e}", path.display());
                    self.fail(&message);
                    continue;
                }
            }
            closed_bytes -= len;
            kept -= 1;
            if by_count {
                self.disk.deleted_for_files += 1;
            } else if by_bytes && !by_age {
                self.disk.deleted_for_bytes += 1;
            }
        }
        self.disk.files = kept;
        self.disk.bytes = closed_bytes;
    }
}

impl JsonlExporter {
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
        let opened = self.ensure_open(Instant::now());
        if !matches!(opened, Ok(true)) {
            out.lost = batch.events().len() as u64;
            self.status.lost += out.lost;
            if let Err(e) = opened {
                self.fail(&format!("{e}; events count as lost until it works again"));
            }
            return out;
        }
        self.buf.clear();
        if let Some(m) = &catch_up {
            loss_line::render(&mut self.buf, &ctx.ring_id_json, m);
        }
        let high_water = self.high_water.get(&ctx.ring_id).copied();
        let mut next_marker = 0;
        for (i, e) in batch.events().iter().enumerate() {
            while let Some(m) = markers.get(next_marker).filter(|m| m.before_event <= i) {
                loss_line::render(&mut self.buf, &ctx.ring_id_json, m);
                next_marker += 1;
            }
            if high_water.is_some_and(|h| e.position <= h) {
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

/// Background compression of closed files.
struct Compressor {
    queue: Option<mpsc::Sender<PathBuf>>,
    thread: Option<JoinHandle<()>>,
    errors: Arc<AtomicU64>,
}

impl Compressor {
    fn start(kind: Compression) -> Compressor {
        let (tx, rx) = mpsc::channel::<PathBuf>();
        let errors = Arc::new(AtomicU64::new(0));
        let thread_errors = errors.clone();
        let thread = std::thread::Builder::new()
            .name("jsonl-compress".into())
            .spawn(move || {
                let mut reporter = ErrorReporter::new("JSONL compression");
                for path in rx {
                    match compress_file(&path, kind) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {} // removed by retention
                        Err(e) => {
                            thread_errors.fetch_add(1, Relaxed);
                            reporter.report(&format!(
                                "compressing {}: {e} (kept uncompressed)",
                                path.display()
                            ));
                        }
                    }
                }
            })
            .ok();
        Compressor {
            queue: Some(tx),
            thread,
            errors,
        }
    }

    fn queue(&self, path: PathBuf) {
        let sent = self.queue.as_ref().is_some_and(|q| q.send(path).is_ok());
        if !sent {
            self.errors.fetch_add(1, Relaxed);
        }
    }

    fn take_errors(&self) -> u64 {
        self.errors.swap(0, Relaxed)
    }

    /// Waits for the queued files; returns errors not yet taken.
    fn finish(mut self) -> u64 {
        self.queue = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.take_errors()
    }
}

/// Compresses `path` to `path.gz`/`.zst` through a hidden temporary, then
/// removes `path`.
pub fn compress_file(path: &Path, kind: Compression) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| io::Error::other("no file name"))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{name}{}.tmp", kind.extension()));
    let target = dir.join(format!("{name}{}", kind.extension()));
    let mut input = File::open(path)?;
    let output = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    let result = (|| -> io::Result<()> {
        match kind {
            Compression::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(output, flate2::Compression::default());
                io::copy(&mut input, &mut enc)?;
                enc.finish()?.sync_all()?;
            }
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(output, 3)?;
                io::copy(&mut input, &mut enc)?;
                enc.finish()?.sync_all()?;
            }
        }
        fs::rename(&tmp, &target)?;
        fs::remove_file(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_renders_and_matches() {
        let t = Template::parse(DEFAULT_TEMPLATE).unwrap();
        let name = t.render(1_764_065_000_000_000_000, 1, 42, 0);
        assert_eq!(name, "profilis-20251125T100320.000Z.jsonl");
        assert!(t.matches(&name));
        let unique = t.render(1_764_065_000_000_000_000, 1, 42, 2);
        assert_eq!(unique, "profilis-20251125T100320.000Z-2.jsonl");
        assert!(t.matches(&unique));
        assert!(!t.matches("profilis-.jsonl"));
        assert!(!t.matches("other.jsonl"));
        assert!(!t.matches(CURRENT_FILE));
        let t = Template::parse("app-{pid}-{n}.log").unwrap();
        assert_eq!(t.render(0, 7, 42, 0), "app-42-7.log");
        assert!(t.matches("app-42-7.log"));
    }

    const LINE: &str = "{\"ts_ns\":1,\"kind\":\"FN\",\"name\":\"f\",\"dur_ns\":1,\"error\":false,\"pid\":1,\"tid\":1";

    #[test]
    fn restart_cuts_partial_lines_closes_open_files_and_learns_positions() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join(CURRENT_FILE);
        let mut text = String::new();
        for seq in 0..5 {
            text.push_str(&format!(
                "{LINE},\"ring_id\":\"00000000000000aa\",\"seq\":{seq}}}\n"
            ));
        }
        text.push_str(&format!(
            "{LINE},\"ring_id\":\"00000000000000bb\",\"seq\":7}}\n"
        ));
        text.push_str("{\"ts_ns\":2,\"kind\":\"RE"); // killed mid-write
        std::fs::write(&open, &text).unwrap();
        let closed = dir.path().join("profilis-20240101T000000.000Z.jsonl");
        std::fs::write(
            &closed,
            format!("{LINE},\"ring_id\":\"00000000000000cc\",\"seq\":9}}\n"),
        )
        .unwrap();
        let exporter = JsonlExporter::new(JsonlOptions::new(dir.path())).unwrap();
        let hw = exporter.high_water();
        assert_eq!(hw.get(&0xaa), Some(&4));
        assert_eq!(hw.get(&0xbb), Some(&7));
        assert_eq!(
            hw.get(&0xcc),
            Some(&9),
            "the newest closed file is read too"
        );
        assert!(!open.exists());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("profilis-") && !n.starts_with("profilis-2024"))
            .collect();
        assert_eq!(names.len(), 1, "the leftover file was closed: {names:?}");
        let recovered = std::fs::read_to_string(dir.path().join(&names[0])).unwrap();
        assert!(
            recovered.ends_with("\"seq\":7}\n"),
            "partial line cut: {recovered:?}"
        );
        assert_eq!(recovered.lines().count(), 6);
    }

    /// A ring with 20 FN events and a JSONL exporter whose current file is
    /// `/dev/full`: every write fails with ENOSPC, and the file cannot be
    /// truncated.
    struct FullDisk {
        dir: tempfile::TempDir,
        out: PathBuf,
        _ring: profilis::Ring,
        consumer: profilis::Consumer,
        ctx: RingContext,
        exporter: JsonlExporter,
    }

    fn full_disk() -> FullDisk {
        use profilis::{Consumer, Ring, RingOptions};
        let dir = tempfile::tempdir().unwrap();
        let ring_path = dir.path().join("w.ring");
        let ring = Ring::create_or_open(&ring_path, RingOptions::default().capacity(1024)).unwrap();
        for i in 0..20 {
            ring.emit_fn("f", i, false);
        }
        let consumer = Consumer::attach(&ring_path).unwrap();
        let ctx = RingContext::new(0, &ring_path, consumer.info().ring_id, 4096);
        let out = dir.path().join("out");
        let mut exporter = JsonlExporter::new(JsonlOptions::new(&out)).unwrap();
        exporter.current = Some(OpenFile {
            file: OpenOptions::new().append(true).open("/dev/full").unwrap(),
            open_path: PathBuf::from("/dev/full"),
            final_path: out.join("never"),
            len: 0,
            opened: Instant::now(),
        });
        FullDisk {
            dir,
            out,
            _ring: ring,
            consumer,
            ctx,
            exporter,
        }
    }

    #[test]
    fn write_error_loses_the_batch_whole_and_the_next_batch_gets_a_new_file() {
        let FullDisk {
            dir: _dir,
            out,
            mut consumer,
            mut ctx,
            mut exporter,
            ..
        } = full_disk();
        let batch = consumer.read(10);
        let first = exporter.export(&mut ctx, &batch.into());
        assert_eq!((first.written, first.lost), (0, 10));
        consumer.commit();
        let batch = consumer.read(10);
        let second = exporter.export(&mut ctx, &batch.into());
        assert_eq!((second.written, second.lost), (10, 0), "a fresh file works");
        consumer.commit();
        exporter.finish();
        let status = exporter.status();
        assert_eq!((status.exported, status.lost, status.errors), (10, 10, 1));
        assert!(status.last_error.unwrap().contains("No space left"));
        let files: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().into_string().unwrap())
            .filter(|n| !n.starts_with('.'))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let text = std::fs::read_to_string(out.join(&files[0])).unwrap();
        assert_eq!(text.lines().count(), 10);
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(v["seq"].as_u64().unwrap() >= 10);
        }
    }

    fn loss_line(ring: &str, dropped: u64, abandoned: u64) -> String {
        format!(
            "{{\"ts_ns\":9,\"kind\":\"LOSS\",\"ring_id\":\"{ring}\",\"pid\":null,\"service\":null,\
             \"dropped\":1,\"overwritten\":0,\"abandoned\":0,\"torn\":0,\"from_ts_ns\":1,\"to_ts_ns\":9,\
             \"cumulative\":{{\"dropped\":{dropped},\"overwritten\":0,\"abandoned\":{abandoned},\"torn\":0}}}}\n"
        )
    }

    #[test]
    fn restart_continues_from_the_latest_loss_counts_of_lines_and_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = "00000000000000aa";
        let b = "00000000000000bb";
        // Ring a: its latest LOSS line is in current.jsonl (written after
        // the state file was saved). Ring b: its LOSS lines are in an older
        // file the scan does not read, the state file has them.
        std::fs::write(
            dir.path().join(CURRENT_FILE),
            format!("{}{}", loss_line(a, 5, 0), loss_line(a, 7, 1)),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("profilis-20240101T000000.000Z.jsonl"),
            loss_line(b, 3, 0),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("profilis-20240102T000000.000Z.jsonl"),
            format!("{LINE},\"ring_id\":\"{b}\",\"seq\":4}}\n"),
        )
        .unwrap();
        let mark = crate::ingest::loss::WriterMark {
            index: 0,
            pid: 42,
            start_time: 7,
            dropped: 4,
            overwritten: 0,
        };
        let state = LossState {
            rings: [
                (
                    a.to_string(),
                    LossCursor {
                        cumulative: LossTotals {
                            dropped: 5,
                            ..LossTotals::default()
                        },
                        to_ts_ns: 8,
                        writers: vec![mark],
                    },
                ),
                (
                    b.to_string(),
                    LossCursor {
                        cumulative: LossTotals {
                            dropped: 9,
                            ..LossTotals::default()
                        },
                        to_ts_ns: 20,
                        writers: Vec::new(),
                    },
                ),
            ]
            .into_iter()
            .collect(),
        };
        std::fs::write(
            dir.path().join(LOSS_STATE_FILE),
            serde_json::to_vec(&state).unwrap(),
        )
        .unwrap();
        let exporter = JsonlExporter::new(JsonlOptions::new(dir.path())).unwrap();
        let ca = exporter.loss_cursor(0xaa).unwrap();
        assert_eq!((ca.cumulative.dropped, ca.cumulative.abandoned), (7, 1));
        assert_eq!(ca.to_ts_ns, 9);
        assert_eq!(
            ca.writers,
            vec![mark],
            "per-writer marks from the state file"
        );
        let cb = exporter.loss_cursor(0xbb).unwrap();
        assert_eq!((cb.cumulative.dropped, cb.to_ts_ns), (9, 20));
        assert_eq!(exporter.loss_cursor(0xcc), None);
        // The merged state was saved for the next start.
        let saved: LossState =
            serde_json::from_slice(&std::fs::read(dir.path().join(LOSS_STATE_FILE)).unwrap())
                .unwrap();
        assert_eq!(saved.rings[a].cumulative.dropped, 7);
    }

    #[test]
    fn markers_lost_to_a_failed_write_come_back_as_one_catch_up_line() {
        let FullDisk {
            dir: _dir,
            out,
            mut consumer,
            mut ctx,
            mut exporter,
            ..
        } = full_disk();
        let marker = |dropped: u64, cumulative: u64| LossMarker {
            pid: Some(42),
            writer: Some(0),
            service: None,
            counts: LossTotals {
                dropped,
                ..LossTotals::default()
            },
            from_ts_ns: 100,
            to_ts_ns: 200,
            before_event: 0,
            cumulative: LossTotals {
                dropped: cumulative,
                ..LossTotals::default()
            },
        };
        let lost = [marker(3, 3)];
        let cursor = LossCursor {
            cumulative: lost[0].cumulative,
            to_ts_ns: 200,
            writers: Vec::new(),
        };
        let batch = consumer.read(10);
        let first = exporter.export_with_losses(
            &mut ctx,
            &batch.into(),
            &LossBatch {
                markers: &lost,
                cursor: &cursor,
            },
        );
        assert_eq!(first.lost, 10);
        consumer.commit();
        let next = [marker(2, 5)];
        let cursor = LossCursor {
            cumulative: next[0].cumulative,
            to_ts_ns: 200,
            writers: Vec::new(),
        };
        let batch = consumer.read(10);
        let second = exporter.export_with_losses(
            &mut ctx,
            &batch.into(),
            &LossBatch {
                markers: &next,
                cursor: &cursor,
            },
        );
        assert_eq!(second.written, 10);
        consumer.commit();
        exporter.finish();
        let files: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        let text = std::fs::read_to_string(files[0].path()).unwrap();
        let losses: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["kind"] == "LOSS")
            .collect();
        assert_eq!(losses.len(), 2, "{text}");
        assert!(losses[0]["pid"].is_null(), "the lost marker, unattributed");
        assert_eq!(losses[0]["dropped"], 3);
        assert_eq!(losses[0]["cumulative"]["dropped"], 3);
        assert_eq!(losses[1]["dropped"], 2);
        assert_eq!(losses[1]["cumulative"]["dropped"], 5);
        assert_eq!(
            exporter
                .loss_cursor(ctx.ring_id)
                .unwrap()
                .cumulative
                .dropped,
            5
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in [
            "",
            "a/b-{n}",
            ".hidden-{n}",
            "current.jsonl",
            "fixed.jsonl",
            "x-{nope}",
            "x-{n",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
