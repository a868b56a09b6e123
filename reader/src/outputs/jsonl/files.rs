//! The files of the JSONL directory: the lock that keeps one reader per
//! directory, recovery of what a previous run left (a partial last line,
//! `current.jsonl`, interrupted compressions, exported positions, the LOSS
//! state file), opening and rotating `current.jsonl`, and retention.

use super::template::Part;
use super::{line, loss_line, JsonlExporter, LossState, CURRENT_FILE, LOCK_FILE, LOSS_STATE_FILE};
use crate::ingest::loss::LossCursor;
use crate::support::timefmt;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The file being written.
pub(super) struct OpenFile {
    pub file: File,
    pub open_path: PathBuf,
    pub final_path: PathBuf,
    pub len: u64,
    pub opened: Instant,
}

impl JsonlExporter {
    /// Creates and locks the directory, then recovers leftovers.
    pub(super) fn prepare_dir(&mut self) -> io::Result<()> {
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
    pub(super) fn save_loss_state(&mut self) {
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
                    self.high_water.note(ring, seq);
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
    pub(super) fn ensure_open(&mut self, now: Instant) -> io::Result<bool> {
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
    pub(super) fn rotate(&mut self) {
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
    pub(super) fn apply_retention(&mut self) {
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
        // Room kept for the file being written, up to its rotation size
        // (none once the exporter is finished: a last file closed at its
        // rotation size would otherwise be deleted, leaving no file).
        let current = self.current.as_ref().map_or(0, |f| f.len);
        let reserve = if self.finished {
            0
        } else {
            current.max(self.options.rotate_bytes)
        };
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
