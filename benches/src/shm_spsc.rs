//! The "naive shared-memory SPSC" yardstick: the simplest ring a careful
//! engineer would put in a shared file, to show what a shared-memory queue
//! costs before any of Profilis's promises (many writers, dead-writer
//! recovery, counters, validation) are paid for.
//!
//! One file in `/dev/shm`, mapped shared: the consumer's `head` on its own
//! 128-byte line, the producer's `tail` on the next, then [`SLOTS`] slots of
//! [`SLOT_BYTES`]. The producer owns `tail` and keeps a copy of `head`,
//! re-reading the shared one only when its copy says the ring is full; the
//! consumer owns `head` and keeps a copy of `tail` the same way. A slot is
//! written before `tail` moves past it (Release) and read after `tail` is
//! seen past it (Acquire); it is reused only after `head` moved past it.

use crate::Payload;
use memmap2::MmapRaw;
use std::path::PathBuf;
use std::sync::atomic::{
    AtomicU64,
    Ordering::{Acquire, Release},
};
use std::sync::Arc;

/// Slots in the ring.
pub const SLOTS: u64 = 1 << 16;
/// Bytes per slot: a payload, padded to two cache lines.
pub const SLOT_BYTES: usize = 128;
/// Bytes of one index line (two cache lines, so the adjacent-line
/// prefetcher does not pair `head` with `tail`).
pub const LINE_BYTES: usize = 128;
/// Offset of the consumer's read index.
pub const HEAD_OFFSET: usize = 0;
/// Offset of the producer's write index.
pub const TAIL_OFFSET: usize = LINE_BYTES;
/// Offset of slot 0.
pub const SLOTS_OFFSET: usize = 2 * LINE_BYTES;
/// Size of the file.
pub const FILE_BYTES: usize = SLOTS_OFFSET + SLOTS as usize * SLOT_BYTES;

const _: () = assert!(std::mem::size_of::<Payload>() <= SLOT_BYTES);
const _: () = assert!(SLOT_BYTES.is_multiple_of(std::mem::align_of::<Payload>()));
const _: () = assert!(SLOTS.is_power_of_two());

struct Shared {
    map: MmapRaw,
    path: PathBuf,
}

impl Shared {
    fn index(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset == HEAD_OFFSET || offset == TAIL_OFFSET);
        // SAFETY: the mapping is FILE_BYTES long, page-aligned, and lives as
        // long as `self`; HEAD_OFFSET and TAIL_OFFSET are multiples of 8
        // inside it, and these words are only ever accessed as atomics.
        unsafe { &*self.map.as_mut_ptr().add(offset).cast::<AtomicU64>() }
    }

    fn slot(&self, pos: u64) -> *mut Payload {
        let i = (pos & (SLOTS - 1)) as usize;
        // SAFETY: i < SLOTS, so the slot lies inside the mapping; slots are
        // SLOT_BYTES apart from a page-aligned base, which keeps Payload's
        // alignment (checked above).
        unsafe {
            self.map
                .as_mut_ptr()
                .add(SLOTS_OFFSET + i * SLOT_BYTES)
                .cast::<Payload>()
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Creates a ring in a new file named after `tag` and the process, and
/// returns its two ends. The file is removed when both ends are dropped.
pub fn create(tag: &str) -> std::io::Result<(ShmProducer, ShmConsumer)> {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let path = base.join(format!("profilis-bench-{}-{tag}.spsc", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    file.set_len(FILE_BYTES as u64)?;
    let map = MmapRaw::map_raw(&file)?;
    // A fresh file reads as zeros: head == tail == 0, an empty ring.
    let shared = Arc::new(Shared { map, path });
    Ok((
        ShmProducer {
            shared: shared.clone(),
            tail: 0,
            head_seen: 0,
        },
        ShmConsumer {
            shared,
            head: 0,
            tail_seen: 0,
        },
    ))
}

/// The writing end.
pub struct ShmProducer {
    shared: Arc<Shared>,
    tail: u64,
    head_seen: u64,
}

impl ShmProducer {
    /// Appends `payload`; false when the ring is full.
    #[inline]
    pub fn push(&mut self, payload: Payload) -> bool {
        if self.tail - self.head_seen == SLOTS {
            // ORDERING: Acquire pairs with the consumer's Release store of
            // `head` in `read`: it read the slots below `head` before we
            // overwrite them.
            self.head_seen = self.shared.index(HEAD_OFFSET).load(Acquire);
            if self.tail - self.head_seen == SLOTS {
                return false;
            }
        }
        // SAFETY: the slot at `tail` is outside [head, tail), so the consumer
        // does not read it until the store below publishes it, and this is
        // the only producer.
        unsafe { self.shared.slot(self.tail).write(payload) };
        self.tail += 1;
        // ORDERING: Release pairs with the consumer's Acquire load of `tail`
        // in `read`: the slot written above is visible once `tail` is.
        self.shared.index(TAIL_OFFSET).store(self.tail, Release);
        true
    }
}

/// The reading end.
pub struct ShmConsumer {
    shared: Arc<Shared>,
    head: u64,
    tail_seen: u64,
}

impl ShmConsumer {
    /// Hands up to `limit` payloads to `f` in order, then releases their
    /// slots; returns how many.
    #[inline]
    pub fn read(&mut self, limit: usize, mut f: impl FnMut(&Payload)) -> usize {
        if self.tail_seen == self.head {
            // ORDERING: Acquire pairs with the producer's Release store of
            // `tail` in `push`: slots below it are written.
            self.tail_seen = self.shared.index(TAIL_OFFSET).load(Acquire);
        }
        let n = (self.tail_seen - self.head).min(limit as u64);
        for pos in self.head..self.head + n {
            // SAFETY: pos is in [head, tail): written and published by the
            // producer, which does not write it again until `head` passes it.
            let payload = unsafe { self.shared.slot(pos).read() };
            f(&payload);
        }
        if n > 0 {
            self.head += n;
            // ORDERING: Release pairs with the producer's Acquire load of
            // `head` in `push`: these slots were read before it reuses them.
            self.shared.index(HEAD_OFFSET).store(self.head, Release);
        }
        n as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivers_in_order_and_refuses_when_full() {
        let (mut p, mut c) = create(&format!("test-{:?}", std::thread::current().id())).unwrap();
        for seq in 0..SLOTS {
            assert!(p.push(Payload::now(seq)));
        }
        assert!(!p.push(Payload::now(SLOTS)));
        let mut next = 0;
        while c.read(4096, |payload| {
            assert_eq!(payload.words[0], next);
            next += 1;
        }) > 0
        {}
        assert_eq!(next, SLOTS);
        assert!(p.push(Payload::now(SLOTS)));
    }

    #[test]
    fn a_consumer_thread_sees_every_payload() {
        let (mut p, mut c) = create(&format!("test-{:?}", std::thread::current().id())).unwrap();
        const N: u64 = 3 * SLOTS;
        let reader = std::thread::spawn(move || {
            let mut next = 0;
            while next < N {
                c.read(4096, |payload| {
                    assert_eq!(payload.words[0], next);
                    next += 1;
                });
            }
        });
        let mut seq = 0;
        while seq < N {
            if p.push(Payload::now(seq)) {
                seq += 1;
            }
        }
        reader.join().unwrap();
    }
}
