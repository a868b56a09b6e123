//! The end of a ring file: when the reader removes it, and how
//! `profilis-reader gc` looks at the ring files of a directory.
//!
//! A ring file outlives its writers on purpose: a process that crashed
//! leaves its last events and the claim it died in, and the reader drains
//! them and takes the post-mortem from them. Once that is done the file
//! holds nothing of value, so it is removed ([`remove`]) when all of these
//! hold, checked while the caller holds the ring's consumer lock (so no
//! other reader is attached):
//! - no writer process in its writer table is running;
//! - no lane is held;
//! - everything written is drained (`lag` 0);
//! - no other process has the file open or mapped (a process that opened
//!   it and has not written yet is in none of its tables, but in `/proc`;
//!   see [`crate::support::holders`]).
//!
//! The removal renames the file to a hidden name first, looks for holders
//! again, and only then unlinks it: a process that opened the ring between
//! the check and the rename is found there, and the file goes back in
//! place. A process that opens the path after the rename finds no file and
//! creates a new ring.

use crate::support::holders::{holders, FileId};
use profilis::{Consumer, OpenError};
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why a ring file stays.
#[derive(Debug)]
pub enum Kept {
    /// A writer in its table is running.
    LiveWriter(u32),
    /// A process holds a lane.
    LaneHeld(u32),
    /// Positions not drained yet: events, or claims a writer died in.
    Unread(u64),
    /// Other processes have the file open or mapped.
    InUse(Vec<u32>),
    /// Another reader is attached.
    ReaderAttached,
    /// The file at the path is not this ring any more.
    Replaced,
    /// Renaming or unlinking failed.
    Io(std::io::Error),
}

impl fmt::Display for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kept::LiveWriter(pid) => write!(f, "writer pid {pid} is running"),
            Kept::LaneHeld(pid) => write!(f, "pid {pid} holds a lane"),
            Kept::Unread(n) => write!(f, "{n} events not drained yet"),
            Kept::InUse(pids) => {
                let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
                write!(f, "open in pid {}", pids.join(", "))
            }
            Kept::ReaderAttached => write!(f, "a reader is attached"),
            Kept::Replaced => write!(f, "another file took its place"),
            Kept::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Whether the ring `consumer` is attached to is of no use to anyone now:
/// its writers gone, no lane held, everything drained. Not whether another
/// process has it open: [`remove`] asks `/proc` about that.
pub fn unused(consumer: &Consumer) -> Result<(), Kept> {
    if let Some(w) = consumer.writers().iter().find(|w| w.alive) {
        return Err(Kept::LiveWriter(w.pid));
    }
    if let Some(lane) = consumer.lanes().iter().find(|l| l.pid != 0) {
        return Err(Kept::LaneHeld(lane.pid));
    }
    match consumer.lag() {
        0 => Ok(()),
        n => Err(Kept::Unread(n)),
    }
}

/// A ring file to remove: the consumer attached to it (so its lock is
/// held: no other reader is attached), its path, and the file.
pub struct Candidate<'a> {
    /// The consumer attached to the ring.
    pub consumer: &'a Consumer,
    /// The path of its file.
    pub path: &'a Path,
    /// The file the consumer attached (the path may name another by now).
    pub file: FileId,
}

/// Removes the file of each candidate that is [`unused`] and held by no
/// other process; tells for each whether it went, or why not. `/proc` is
/// read once for all of them before they are renamed aside and once after,
/// so retiring many rings at once costs two passes over it.
pub fn remove(candidates: &[Candidate<'_>]) -> Vec<Result<(), Kept>> {
    let mut outcome: Vec<Result<(), Kept>> = candidates
        .iter()
        .map(|c| {
            unused(c.consumer)?;
            match FileId::of(c.path) {
                Ok(file) if file == c.file => Ok(()),
                _ => Err(Kept::Replaced),
            }
        })
        .collect();
    let ready: Vec<usize> = (0..candidates.len())
        .filter(|&i| outcome[i].is_ok())
        .collect();
    let held = holders(
        &ready
            .iter()
            .map(|&i| candidates[i].file)
            .collect::<Vec<_>>(),
    );
    let mut aside = Vec::new();
    for (&i, held) in ready.iter().zip(held) {
        let c = &candidates[i];
        if !held.is_empty() {
            outcome[i] = Err(Kept::InUse(held));
            continue;
        }
        let name = aside_name(c.path);
        match std::fs::rename(c.path, &name) {
            Ok(()) => aside.push((i, name)),
            Err(e) => outcome[i] = Err(Kept::Io(e)),
        }
    }
    let held = holders(
        &aside
            .iter()
            .map(|(i, _)| candidates[*i].file)
            .collect::<Vec<_>>(),
    );
    for ((i, name), held) in aside.into_iter().zip(held) {
        let c = &candidates[i];
        let still = unused(c.consumer);
        outcome[i] = if FileId::of(&name).ok() != Some(c.file) {
            put_back(&name, c.path);
            Err(Kept::Replaced)
        } else if !held.is_empty() || still.is_err() {
            // Someone came in between: a process opened it, or a writer
            // registered.
            put_back(&name, c.path);
            Err(still.err().unwrap_or(Kept::InUse(held)))
        } else {
            std::fs::remove_file(&name).map_err(Kept::Io)
        };
    }
    outcome
}

/// Puts a file renamed aside back at `path`. `hard_link` fails rather than
/// replace a new ring created at the path meanwhile; the file then stays
/// under its hidden name for whoever holds it.
fn put_back(aside: &Path, path: &Path) {
    if std::fs::hard_link(aside, path).is_ok() {
        let _ = std::fs::remove_file(aside);
    } else {
        tracing::warn!(
            "ring file {} was opened while being removed and a new file took its place; it stays as {}",
            path.display(),
            aside.display()
        );
    }
}

/// The hidden name a ring file goes by while it is removed: skipped by
/// `--watch` and by [`list`], never the name of a ring.
fn aside_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.removing.{}", std::process::id()))
}

/// A ring file as `gc` finds it.
#[derive(Debug)]
pub struct RingFile {
    /// Its path.
    pub path: PathBuf,
    /// Its size as stated (the ring's full size).
    pub bytes: u64,
    /// The memory or disk it takes: only the pages written into (ring
    /// files are sparse).
    pub allocated: u64,
    /// What it is.
    pub state: FileState,
}

/// What `gc` makes of a ring file.
#[derive(Debug)]
pub enum FileState {
    /// Nobody needs it: its writers (these pids, none if it was never
    /// written) are gone and it is drained.
    Stale {
        /// The pids in its writer table.
        writers: Vec<u32>,
    },
    /// In use, or holding events nobody drained.
    Kept(Kept),
    /// Not a ring file this reader can attach (another user's, damaged, a
    /// future format): left alone.
    Unusable(String),
}

impl RingFile {
    /// Attaches the ring at `path` (taking its consumer lock) and tells
    /// what it is; with `remove`, removes it if it is stale. Dead writers'
    /// lanes are taken back first, as a reader would.
    pub fn gc(path: &Path, remove: bool) -> RingFile {
        let (bytes, allocated) = std::fs::symlink_metadata(path)
            .map(|m| (m.len(), m.blocks() * 512))
            .unwrap_or((0, 0));
        let mut file = RingFile {
            path: path.to_owned(),
            bytes,
            allocated,
            state: FileState::Unusable(String::new()),
        };
        let mut consumer = match Consumer::attach(path) {
            Ok(consumer) => consumer,
            Err(OpenError::Busy(_)) => {
                file.state = FileState::Kept(Kept::ReaderAttached);
                return file;
            }
            Err(e) => {
                file.state = FileState::Unusable(e.report());
                return file;
            }
        };
        consumer.reclaim_dead();
        let writers = consumer.writers().iter().map(|w| w.pid).collect();
        file.state = match (unused(&consumer), FileId::of(path)) {
            (Err(kept), _) => FileState::Kept(kept),
            (Ok(()), Err(e)) => FileState::Kept(Kept::Io(e)),
            (Ok(()), Ok(id)) => {
                let held = holders(&[id]).pop().unwrap_or_default();
                if !held.is_empty() {
                    FileState::Kept(Kept::InUse(held))
                } else if !remove {
                    FileState::Stale { writers }
                } else {
                    let candidate = Candidate {
                        consumer: &consumer,
                        path,
                        file: id,
                    };
                    match self::remove(&[candidate]).pop() {
                        Some(Ok(())) => FileState::Stale { writers },
                        Some(Err(kept)) => FileState::Kept(kept),
                        None => FileState::Kept(Kept::Replaced),
                    }
                }
            }
        };
        file
    }
}

/// The ring files (`*.ring`, not hidden) directly in `dir`, sorted.
pub fn list(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && name.ends_with(".ring")
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    Ok(found)
}
