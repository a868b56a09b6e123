//! Ring files on disk: atomic creation, safe opening, header validation and
//! the mapping that [`RingRef`] views point into.

use crate::error::{HeaderError, OpenError};
use crate::layout::{
    state_words, Header, Lane, MsgSlot, Params, Slot, StrEntry, WriterEntry, HEADER_BYTES, MAGIC,
    POLICY_DROP_NEWEST, POLICY_OVERWRITE_OLDEST, SLOT_BYTES, VERSION,
};
use crate::ring::RingRef;
use crate::sync::{AtomicU64, Ordering::Relaxed};
use memmap2::MmapRaw;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What to do when the ring is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FullPolicy {
    /// Refuse the new event and count it (writers never wait). The default.
    #[default]
    DropNewest,
    /// Overwrite the oldest unread event and count it.
    OverwriteOldest,
}

impl FullPolicy {
    fn code(self) -> u64 {
        match self {
            FullPolicy::DropNewest => POLICY_DROP_NEWEST,
            FullPolicy::OverwriteOldest => POLICY_OVERWRITE_OLDEST,
        }
    }

    /// Name used in output and options (`drop-newest`, `overwrite-oldest`).
    pub fn as_str(self) -> &'static str {
        match self {
            FullPolicy::DropNewest => "drop-newest",
            FullPolicy::OverwriteOldest => "overwrite-oldest",
        }
    }
}

impl std::str::FromStr for FullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "drop-newest" => Ok(FullPolicy::DropNewest),
            "overwrite-oldest" | "drop-oldest" => Ok(FullPolicy::OverwriteOldest),
            _ => Err(format!(
                "unknown policy {s:?} (expected drop-newest or overwrite-oldest)"
            )),
        }
    }
}

/// The identity and shape of a ring, read from its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderInfo {
    /// Region sizes.
    pub params: Params,
    /// Full-ring policy.
    pub policy: FullPolicy,
    /// Random identity of the file.
    pub ring_id: u64,
    /// `CLOCK_REALTIME` at creation.
    pub created_wall_ns: u64,
    /// `CLOCK_MONOTONIC` at creation.
    pub created_mono_ns: u64,
    /// pid of the creator.
    pub creator_pid: u32,
}

fn word(bytes: &[u8], offset: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(b)
}

/// Validates a ring header given as bytes (at least the first 512 bytes of
/// the file) and the file's size. Total: any input gives `Ok` or a
/// [`HeaderError`], never a panic.
pub fn parse_header(bytes: &[u8], file_size: u64) -> Result<HeaderInfo, HeaderError> {
    let need = core::mem::size_of::<Header>();
    if bytes.len() < need || file_size < HEADER_BYTES {
        // The file's size, unless it is long enough and the read came back
        // short (the file shrank in between): then what could be read.
        let size = if file_size < HEADER_BYTES {
            file_size
        } else {
            bytes.len() as u64
        };
        return Err(HeaderError::Truncated {
            size,
            need: HEADER_BYTES,
        });
    }
    let magic = word(bytes, 0);
    if magic != MAGIC {
        return Err(HeaderError::BadMagic { found: magic });
    }
    let version = word(bytes, 8);
    if version != VERSION {
        return Err(HeaderError::UnsupportedVersion {
            found: version,
            supported: VERSION,
        });
    }
    let slot_bytes = word(bytes, 16);
    if slot_bytes != SLOT_BYTES {
        return Err(HeaderError::BadSlotSize { found: slot_bytes });
    }
    let policy = match word(bytes, 32) {
        POLICY_DROP_NEWEST => FullPolicy::DropNewest,
        POLICY_OVERWRITE_OLDEST => FullPolicy::OverwriteOldest,
        found => return Err(HeaderError::BadPolicy { found }),
    };
    let params = Params {
        capacity: word(bytes, 24),
        lanes: word(bytes, 112),
        string_entries: word(bytes, 40),
        arena_bytes: word(bytes, 48),
        message_slots: word(bytes, 56),
        writer_entries: word(bytes, 64),
    };
    params.check().map_err(HeaderError::BadParams)?;
    let stated = word(bytes, 72);
    let expected = params.file_bytes();
    if stated != expected {
        return Err(HeaderError::SizeMismatch { stated, expected });
    }
    if file_size < expected {
        return Err(HeaderError::Truncated {
            size: file_size,
            need: expected,
        });
    }
    Ok(HeaderInfo {
        params,
        policy,
        ring_id: word(bytes, 80),
        created_wall_ns: word(bytes, 88),
        created_mono_ns: word(bytes, 96),
        creator_pid: word(bytes, 104) as u32,
    })
}

/// A mapped, validated ring file.
pub(crate) struct Mapping {
    file: File,
    // Unregistered before `map` unmaps (fields drop in order).
    sigbus: crate::sigbus::Guard,
    map: MmapRaw,
    info: HeaderInfo,
    path: PathBuf,
}

impl Mapping {
    pub fn info(&self) -> &HeaderInfo {
        &self.info
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// A view of the shared structures.
    pub fn view(&self) -> RingRef<'_> {
        // SAFETY: the mapping lives as long as `&self`.
        unsafe { self.view_unbounded() }
    }

    /// A view whose lifetime the caller guarantees: the mapping must outlive
    /// every use of it.
    ///
    /// # Safety
    /// The returned view must not be used after `self` is dropped.
    pub unsafe fn view_unbounded<'a>(&self) -> RingRef<'a> {
        let p = self.info.params;
        let base = self.map.as_mut_ptr();
        // SAFETY: `parse_header` checked that the file is at least
        // `p.file_bytes()` long and `open`/`create` checked that the mapping
        // covers the file, so every region below lies inside the mapping.
        // The mapping is page aligned and every offset is a multiple of the
        // region type's alignment (64 for the tables, 256 for the lanes, 4096
        // for the slots), and all the types consist of atomics, valid for any
        // bit pattern.
        unsafe {
            let at = |offset: u64| base.add(offset as usize);
            RingRef {
                header: &*(base as *const Header),
                writers: std::slice::from_raw_parts(
                    at(p.writers_offset()) as *const WriterEntry,
                    p.writer_entries as usize,
                ),
                lanes: std::slice::from_raw_parts(
                    at(p.lanes_offset()) as *const Lane,
                    p.lanes as usize,
                ),
                state: std::slice::from_raw_parts(
                    at(p.state_offset()) as *const AtomicU64,
                    2 * state_words(p.lanes) as usize,
                ),
                strings: std::slice::from_raw_parts(
                    at(p.strings_offset()) as *const StrEntry,
                    p.string_entries as usize,
                ),
                arena: std::slice::from_raw_parts(
                    at(p.arena_offset()) as *const AtomicU64,
                    (p.arena_bytes / 8) as usize,
                ),
                messages: std::slice::from_raw_parts(
                    at(p.messages_offset()) as *const MsgSlot,
                    p.message_slots as usize,
                ),
                slots: std::slice::from_raw_parts(
                    at(p.slots_offset()) as *const Slot,
                    p.capacity as usize,
                ),
                lane_bits: RingRef::lane_bits_of(p.capacity as usize, p.lanes as usize),
                overwrite: self.info.policy == FullPolicy::OverwriteOldest,
            }
        }
    }

    /// Opens an existing ring file: no symlink, a regular file owned by us,
    /// not accessible to others, with a valid header and the size it states.
    pub fn open(path: &Path) -> Result<Mapping, OpenError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOENT) => OpenError::NotFound(path.to_owned()),
                Some(libc::ELOOP) => OpenError::Symlink(path.to_owned()),
                _ => OpenError::Io {
                    action: "opening ring file",
                    path: path.to_owned(),
                    source: e,
                },
            })?;
        let meta = file
            .metadata()
            .map_err(|e| io_err("inspecting ring file", path, e))?;
        if !meta.file_type().is_file() {
            return Err(OpenError::NotRegular(path.to_owned()));
        }
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        if meta.uid() != euid {
            return Err(OpenError::NotOwner {
                path: path.to_owned(),
                owner: meta.uid(),
                euid,
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(OpenError::InsecureMode {
                path: path.to_owned(),
                mode,
            });
        }
        let size = meta.len();
        let mut header = vec![0u8; core::mem::size_of::<Header>()];
        let got =
            read_prefix(&file, &mut header).map_err(|e| io_err("reading ring header", path, e))?;
        header.truncate(got);
        let info = parse_header(&header, size).map_err(|source| OpenError::Header {
            path: path.to_owned(),
            source,
        })?;
        let map = MmapRaw::map_raw(&file).map_err(|e| io_err("mapping ring file", path, e))?;
        if (map.len() as u64) < info.params.file_bytes() {
            return Err(OpenError::Header {
                path: path.to_owned(),
                source: HeaderError::Truncated {
                    size: map.len() as u64,
                    need: info.params.file_bytes(),
                },
            });
        }
        Ok(Mapping {
            file,
            sigbus: crate::sigbus::register(map.as_ptr(), map.len()),
            map,
            info,
            path: path.to_owned(),
        })
    }

    /// True when the file was found shorter than its header states: either
    /// an access faulted (SIGBUS, survived) or `fstat` says so now.
    pub fn truncated(&self) -> bool {
        self.sigbus.truncated()
            || self
                .file
                .metadata()
                .map_or(true, |m| m.len() < self.info.params.file_bytes())
    }

    /// True when an access to the mapping faulted because the file shrank.
    pub fn faulted(&self) -> bool {
        self.sigbus.truncated()
    }

    /// Opens the ring at `path`, creating it with `params` and `policy` if it
    /// does not exist. Creation is atomic: the file is initialised under a
    /// temporary name and linked into place, so no process ever maps a
    /// half-initialised header. An existing ring keeps the shape its creator
    /// chose.
    pub fn create_or_open(
        path: &Path,
        params: Params,
        policy: FullPolicy,
    ) -> Result<Mapping, OpenError> {
        params
            .check()
            .map_err(|e| OpenError::InvalidOptions(e.to_string()))?;
        for _ in 0..8 {
            match Mapping::open(path) {
                Err(OpenError::NotFound(_)) => {}
                other => return other,
            }
            match Mapping::create(path, params, policy)? {
                Some(mapping) => return Ok(mapping),
                None => continue, // another process created it first
            }
        }
        Mapping::open(path)
    }

    /// Creates a new ring file; `Ok(None)` if one appeared meanwhile.
    fn create(
        path: &Path,
        params: Params,
        policy: FullPolicy,
    ) -> Result<Option<Mapping>, OpenError> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = path.file_name().ok_or_else(|| {
            OpenError::InvalidOptions(format!("{} has no file name", path.display()))
        })?;
        let now = crate::clock::wall_ns();
        let tmp = dir.join(format!(
            ".{}.{}.{:x}.tmp",
            name.to_string_lossy(),
            crate::process::pid(),
            now
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(|e| io_err("creating ring file", &tmp, e))?;
        let cleanup = |e: OpenError| {
            let _ = std::fs::remove_file(&tmp);
            e
        };
        file.set_len(params.file_bytes())
            .map_err(|e| cleanup(io_err("sizing ring file", &tmp, e)))?;
        let map =
            MmapRaw::map_raw(&file).map_err(|e| cleanup(io_err("mapping ring file", &tmp, e)))?;
        let info = HeaderInfo {
            params,
            policy,
            ring_id: random_id(now),
            created_wall_ns: now,
            created_mono_ns: crate::clock::mono_ns(),
            creator_pid: crate::process::pid(),
        };
        let mapping = Mapping {
            file,
            sigbus: crate::sigbus::register(map.as_ptr(), map.len()),
            map,
            info,
            path: path.to_owned(),
        };
        mapping.initialise();
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {
                let _ = std::fs::remove_file(&tmp);
                Ok(Some(mapping))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let _ = std::fs::remove_file(&tmp);
                Ok(None)
            }
            Err(e) => Err(cleanup(io_err("publishing ring file", path, e))),
        }
    }

    /// Writes the header and the initial slot sequences of a fresh file.
    fn initialise(&self) {
        let v = self.view();
        let h = v.header;
        let p = self.info.params;
        h.version.store(VERSION, Relaxed);
        h.slot_bytes.store(SLOT_BYTES, Relaxed);
        h.capacity.store(p.capacity, Relaxed);
        h.policy.store(self.info.policy.code(), Relaxed);
        h.string_entries.store(p.string_entries, Relaxed);
        h.arena_bytes.store(p.arena_bytes, Relaxed);
        h.message_slots.store(p.message_slots, Relaxed);
        h.writer_entries.store(p.writer_entries, Relaxed);
        h.file_bytes.store(p.file_bytes(), Relaxed);
        h.ring_id.store(self.info.ring_id, Relaxed);
        h.created_wall_ns.store(self.info.created_wall_ns, Relaxed);
        h.created_mono_ns.store(self.info.created_mono_ns, Relaxed);
        h.creator_pid.store(self.info.creator_pid as u64, Relaxed);
        h.lanes.store(p.lanes, Relaxed);
        // Everything else starts as zeros, which is what a fresh file holds:
        // free lanes at position 0, slots never written, an empty state. So
        // creating a ring touches no page beyond the header and the tables.
        h.magic.store(MAGIC, Relaxed);
    }
}

fn read_prefix(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn io_err(action: &'static str, path: &Path, source: io::Error) -> OpenError {
    OpenError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

fn random_id(seed: u64) -> u64 {
    let mut x = seed ^ (crate::process::pid() as u64).rotate_left(32) ^ crate::clock::mono_ns();
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    x = x.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    x ^ (x >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good_header() -> (Vec<u8>, u64) {
        let dir = tempdir();
        let path = dir.join("t.ring");
        let params = Params {
            capacity: 64,
            lanes: 4,
            string_entries: 64,
            arena_bytes: 4096,
            message_slots: 4,
            writer_entries: 4,
        };
        let m = Mapping::create_or_open(&path, params, FullPolicy::DropNewest).unwrap();
        let mut bytes = vec![0u8; 512];
        read_prefix(m.file(), &mut bytes).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        (bytes, params.file_bytes())
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "profilis-file-test-{}-{}",
            std::process::id(),
            crate::clock::mono_ns()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn header_of_a_created_ring_parses() {
        let (bytes, size) = good_header();
        let info = parse_header(&bytes, size).unwrap();
        assert_eq!(info.params.capacity, 64);
        assert_eq!(info.policy, FullPolicy::DropNewest);
    }

    #[test]
    fn each_damaged_field_gives_its_error() {
        let (good, size) = good_header();
        let set = |off: usize, v: u64| {
            let mut b = good.clone();
            b[off..off + 8].copy_from_slice(&v.to_le_bytes());
            b
        };
        assert!(matches!(
            parse_header(&set(0, 1), size),
            Err(HeaderError::BadMagic { .. })
        ));
        assert!(matches!(
            parse_header(&set(8, 99), size),
            Err(HeaderError::UnsupportedVersion { found: 99, .. })
        ));
        assert!(matches!(
            parse_header(&set(16, 64), size),
            Err(HeaderError::BadSlotSize { .. })
        ));
        assert!(matches!(
            parse_header(&set(24, 100), size),
            Err(HeaderError::BadParams(_))
        ));
        assert!(matches!(
            parse_header(&set(32, 7), size),
            Err(HeaderError::BadPolicy { .. })
        ));
        assert!(matches!(
            parse_header(&set(112, 3), size),
            Err(HeaderError::BadParams(_))
        ));
        assert!(matches!(
            parse_header(&set(112, 64), size),
            Err(HeaderError::BadParams(_))
        ));
        assert!(matches!(
            parse_header(&set(72, 1), size),
            Err(HeaderError::SizeMismatch { .. })
        ));
        assert!(matches!(
            parse_header(&good, size - 1),
            Err(HeaderError::Truncated { .. })
        ));
        assert!(matches!(
            parse_header(&good[..100], size),
            Err(HeaderError::Truncated { size: 100, .. })
        ));
        // A 3000-byte file holds a whole header struct but not the header
        // page: its own size is reported, not the bytes read.
        assert_eq!(
            parse_header(&good, 3000),
            Err(HeaderError::Truncated {
                size: 3000,
                need: HEADER_BYTES
            })
        );
        // Capacity larger than the file: the stated size no longer matches.
        assert!(matches!(
            parse_header(&set(24, 1 << 20), size),
            Err(HeaderError::SizeMismatch { .. })
        ));
    }
}
