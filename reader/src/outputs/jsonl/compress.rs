//! Compression of closed JSONL files, on a thread of its own so that the
//! drain loop never waits for it.

use crate::support::report::ErrorReporter;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

/// Compression of closed files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// gzip (`.gz`, level 6).
    Gzip,
    /// Zstandard (`.zst`, level 1).
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

/// The zstd level. On Profilis JSONL (about 310 bytes a line, names and
/// keys repeating) level 1 compresses about 1.6x faster than level 3 and
/// its files are smaller (9.4x against 8.4x on a 50 MB file of the built-in
/// workload): compression is the largest part of the reader's CPU per
/// event with `--compress zstd` (docs/benchmarks.md).
const ZSTD_LEVEL: i32 = 1;

/// Background compression of closed files.
pub(super) struct Compressor {
    queue: Option<mpsc::Sender<PathBuf>>,
    thread: Option<JoinHandle<()>>,
    errors: Arc<AtomicU64>,
}

impl Compressor {
    pub fn start(kind: Compression) -> Compressor {
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

    pub fn queue(&self, path: PathBuf) {
        let sent = self.queue.as_ref().is_some_and(|q| q.send(path).is_ok());
        if !sent {
            self.errors.fetch_add(1, Relaxed);
        }
    }

    pub fn take_errors(&self) -> u64 {
        self.errors.swap(0, Relaxed)
    }

    /// Waits for the queued files; returns errors not yet taken.
    pub fn finish(mut self) -> u64 {
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
                let mut enc = zstd::stream::write::Encoder::new(output, ZSTD_LEVEL)?;
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
