//! Which other processes hold a file: have it open or mapped. Found the
//! way `fuser` finds them, from `/proc/PID/fd` and `/proc/PID/maps`, so a
//! process that opened a ring file but has not written to it yet (and so
//! is in no table of the file) is found too. Processes of other users are
//! not visible to an unprivileged reader; ring files are private to their
//! owner, so those cannot hold one unless they run as root.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The identity of a file: device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

impl FileId {
    /// The identity of the file at `path` (following no symlink).
    pub fn of(path: &Path) -> std::io::Result<FileId> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(FileId::from(&meta))
    }
}

impl From<&std::fs::Metadata> for FileId {
    fn from(meta: &std::fs::Metadata) -> Self {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// For each of `files`, the processes other than this one that have it
/// open or mapped, as far as `/proc` shows them (ascending pids). One pass
/// over `/proc` for all of them: it reads every process's maps and looks
/// at every open file descriptor, which on a host of many processes takes
/// a while.
pub fn holders(files: &[FileId]) -> Vec<Vec<u32>> {
    let mut held = vec![Vec::new(); files.len()];
    if files.is_empty() {
        return held;
    }
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return held;
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| pid != own)
        .collect();
    pids.sort_unstable();
    for pid in pids {
        for (i, found) in holds(pid, files).into_iter().enumerate() {
            if found {
                held[i].push(pid);
            }
        }
    }
    held
}

/// Which of `files` process `pid` has mapped or open. A process that exits
/// or cannot be inspected meanwhile holds nothing.
fn holds(pid: u32, files: &[FileId]) -> Vec<bool> {
    let mut found = vec![false; files.len()];
    if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
        for line in maps.lines() {
            if let Some(i) = files.iter().position(|f| maps_line_is(line, *f)) {
                found[i] = true;
            }
        }
    }
    if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        // `metadata` follows the fd's link to the open file itself, even
        // when it was unlinked since.
        for meta in fds.filter_map(|e| std::fs::metadata(e.ok()?.path()).ok()) {
            if let Some(i) = files.iter().position(|f| *f == FileId::from(&meta)) {
                found[i] = true;
            }
        }
    }
    found
}

/// Whether a line of `/proc/PID/maps` (`start-end perms offset MAJ:MIN
/// inode path`) maps `file`.
fn maps_line_is(line: &str, file: FileId) -> bool {
    let mut fields = line.split_whitespace().skip(3);
    let (Some(dev), Some(ino)) = (fields.next(), fields.next()) else {
        return false;
    };
    let Some((major, minor)) = dev.split_once(':') else {
        return false;
    };
    let (Ok(major), Ok(minor), Ok(ino)) = (
        u32::from_str_radix(major, 16),
        u32::from_str_radix(minor, 16),
        ino.parse::<u64>(),
    ) else {
        return false;
    };
    ino == file.ino && libc::makedev(major, minor) == file.dev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_holding_a_file_is_found_and_this_process_never_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held");
        std::fs::write(&path, b"x").unwrap();
        let file = FileId::of(&path).unwrap();
        let other = dir.path().join("other");
        std::fs::write(&other, b"y").unwrap();
        let other = FileId::of(&other).unwrap();
        let held = |f| holders(&[other, f]).pop().unwrap();
        let _own = std::fs::File::open(&path).unwrap();
        assert!(held(file).is_empty(), "this process is left out");
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("exec sleep 30 < \"$0\"")
            .arg(&path)
            .spawn()
            .unwrap();
        let pid = child.id();
        let start = std::time::Instant::now();
        while !held(file).contains(&pid) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "the child holding the file is found"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!held(file).contains(&pid));
        assert!(
            holders(&[other, file])[0].is_empty(),
            "nobody holds the other file"
        );
    }

    #[test]
    fn maps_lines() {
        let file = FileId {
            dev: libc::makedev(0, 0x1a),
            ino: 4242,
        };
        assert!(maps_line_is(
            "7f00-7f10 rw-s 00000000 00:1a 4242    /dev/shm/a.ring",
            file
        ));
        assert!(maps_line_is(
            "7f00-7f10 rw-s 00000000 00:1a 4242    /dev/shm/a.ring (deleted)",
            file
        ));
        assert!(!maps_line_is("7f00-7f10 rw-s 00000000 00:1b 4242 /x", file));
        assert!(!maps_line_is("7f00-7f10 r-xp 00000000 00:00 0 ", file));
        assert!(!maps_line_is("garbage", file));
    }
}
