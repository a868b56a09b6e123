//! Shared pieces of the Profilis benchmarks: the payload the peers move,
//! the floor, scratch rings, the consumer loop every queue is drained with,
//! paced producers, the per-call timer and its histogram, and the naive
//! shared-memory SPSC ring used as a yardstick.
//!
//! Everything here uses only the public API that every version of the ring
//! keeps (`Ring::create_or_open`, `intern`, `emit_fn`, `Consumer::attach`,
//! `read`, `commit`, `poll`, `counters`, `Counters::identity_holds`,
//! `clock::event_ns`), so one benchmark measures them all alike.

pub mod consume;
pub mod histogram;
pub mod load;
pub mod shm_spsc;
pub mod timer;

pub use consume::{ConsumerMode, Drainer, DRAIN_BATCH, IDLE_BACKOFF};

use profilis::{Ring, RingOptions};
use std::hint::black_box;
use std::path::{Path, PathBuf};

/// A ~100-byte event as the peers carry it: a timestamp and 12 more words,
/// the size of a Profilis record.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct Payload {
    /// `CLOCK_MONOTONIC` ns, read with the clock Profilis events use
    /// (`profilis::clock::event_ns`).
    pub ts_mono_ns: u64,
    /// The rest of the event (kind, ids, duration, trace ids, values).
    pub words: [u64; 12],
}

impl Payload {
    /// A payload stamped now.
    #[inline]
    pub fn now(seq: u64) -> Payload {
        Payload {
            ts_mono_ns: profilis::clock::event_ns(),
            words: [seq, 2, 3, 4, 1_250, 6, 7, 8, 9, 10, 11, 12],
        }
    }
}

/// The floor: a clock read plus a 100-byte store into a ring of buffers,
/// with nothing shared and nothing to claim.
pub struct Floor {
    slots: Box<[Payload]>,
    next: usize,
}

impl Floor {
    /// A ring of `capacity` buffers (a power of two).
    pub fn new(capacity: usize) -> Floor {
        assert!(capacity.is_power_of_two());
        Floor {
            slots: vec![Payload::default(); capacity].into_boxed_slice(),
            next: 0,
        }
    }

    /// Stamps and stores one payload.
    #[inline]
    pub fn store(&mut self, seq: u64) {
        let i = self.next & (self.slots.len() - 1);
        self.next = self.next.wrapping_add(1);
        self.slots[i] = Payload::now(seq);
        // The store must happen: black_box keeps the optimiser from
        // dropping a write nobody reads.
        black_box(&self.slots[i]);
    }
}

/// A ring file in a scratch directory, removed on drop.
pub struct ScratchRing {
    /// The writer handle.
    pub ring: Ring,
    path: PathBuf,
    dir: PathBuf,
}

impl ScratchRing {
    /// Creates a drop-newest ring of `capacity` slots under `/dev/shm` (or
    /// the temp dir where there is none).
    pub fn new(tag: &str, capacity: u64) -> anyhow::Result<ScratchRing> {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("profilis-bench-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("bench.ring");
        let _ = std::fs::remove_file(&path);
        let ring = Ring::create_or_open(&path, ring_options(capacity))?;
        Ok(ScratchRing { ring, path, dir })
    }

    /// Path of the ring file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchRing {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The options of every benchmark ring: drop-newest, 16 lanes of
/// `capacity` slots each, so that every writer thread of every case (8 at
/// most) has a lane of its own as large as a peer's whole queue (only the
/// lanes written into take memory). A second process opening the same ring
/// passes the same.
pub fn ring_options(capacity: u64) -> RingOptions {
    RingOptions::default().capacity(capacity * 16).lanes(16)
}
