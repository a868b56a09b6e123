//! Shared pieces of the Profilis benchmarks: the payload the peers move,
//! the floor, scratch rings and a background consumer that drains the way
//! the reader does.

use profilis::{Consumer, Ring, RingOptions};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

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
        // The store must happen: black_box keeps the optimiser from
        // dropping writes nobody reads.
        self.slots[i] = black_box(Payload::now(seq));
        black_box(&self.slots[i]);
    }
}

/// A ring file in a scratch directory, removed on drop.
pub struct ScratchRing {
    /// The writer handle.
    pub ring: Ring,
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
        let ring = Ring::create_or_open(&path, RingOptions::default().capacity(capacity))?;
        Ok(ScratchRing { ring, dir })
    }

    /// Path of the ring file.
    pub fn path(&self) -> &Path {
        self.ring.path()
    }
}

impl Drop for ScratchRing {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How a background consumer waits when it finds nothing: as the reader
/// does, it sleeps briefly instead of spinning.
pub const IDLE_BACKOFF: Duration = Duration::from_micros(100);
/// Events a background consumer takes per batch.
pub const DRAIN_BATCH: usize = 4096;

/// A consumer thread draining a ring in batches until stopped.
pub struct Drainer {
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    handle: Option<JoinHandle<anyhow::Result<Consumer>>>,
}

impl Drainer {
    /// Attaches to `path` and starts draining.
    pub fn start(path: &Path) -> anyhow::Result<Drainer> {
        let mut consumer = Consumer::attach(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let (s, r) = (stop.clone(), received.clone());
        let handle = std::thread::spawn(move || loop {
            let stopping = s.load(Relaxed);
            let n = consumer.poll(DRAIN_BATCH, |event, _| {
                black_box(event);
            });
            r.fetch_add(n as u64, Relaxed);
            if n == 0 {
                if stopping {
                    return Ok(consumer);
                }
                std::thread::sleep(IDLE_BACKOFF);
            }
        });
        Ok(Drainer {
            stop,
            received,
            handle: Some(handle),
        })
    }

    /// Events delivered so far.
    pub fn received(&self) -> u64 {
        self.received.load(Relaxed)
    }

    /// Drains what is left, stops, and returns the consumer.
    pub fn finish(mut self) -> anyhow::Result<Consumer> {
        self.stop.store(true, Relaxed);
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(result)) => result,
            _ => anyhow::bail!("consumer thread panicked"),
        }
    }
}

impl Drop for Drainer {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// p50/p99/p999 of `samples` (sorted in place), in the samples' unit.
pub fn percentiles(samples: &mut [f64]) -> [f64; 3] {
    if samples.is_empty() {
        return [0.0; 3];
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    [at(0.50), at(0.99), at(0.999)]
}
