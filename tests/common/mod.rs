//! Shared by the integration tests: one process-wide ring in a temp dir per
//! test binary, and a collector that drains it so tests running in parallel
//! can each wait for their own events.

#![allow(dead_code)]

use profilis::{Consumer, Event, RingOptions};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// An event with its strings resolved.
#[derive(Clone, Debug)]
pub struct Rec {
    pub event: Event,
    pub name: String,
    pub exception_type: Option<String>,
    pub message: Option<String>,
    pub stack: Option<String>,
}

pub struct Collector {
    inner: Mutex<(Consumer, Vec<Rec>)>,
    _dir: tempfile::TempDir,
}

/// The test binary's process-wide ring (initialised on first use) and its
/// collector.
pub fn collector() -> &'static Collector {
    static COLLECTOR: OnceLock<Collector> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("test.ring");
        let options = RingOptions {
            capacity: 1 << 16,
            string_entries: 1 << 14,
            arena_bytes: 1 << 20,
            ..RingOptions::default()
        };
        profilis::init_with(&path, options).expect("init ring");
        let consumer = Consumer::attach(&path).expect("attach");
        Collector {
            inner: Mutex::new((consumer, Vec::new())),
            _dir: dir,
        }
    })
}

impl Collector {
    fn drain(&self) -> std::sync::MutexGuard<'_, (Consumer, Vec<Rec>)> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (consumer, recs) = &mut *guard;
        loop {
            let batch = consumer.read(4096);
            if batch.events.is_empty() {
                break;
            }
            for e in batch.events {
                let message = batch.names.message_with_stack(e.message);
                let (message, stack) = match message {
                    Some(m) => (Some(m.text), m.stack),
                    None => (None, None),
                };
                recs.push(Rec {
                    event: *e,
                    name: batch.names.name(e.name).to_string(),
                    exception_type: (e.exception_type.0 != 0)
                        .then(|| batch.names.name(e.exception_type).to_string()),
                    message,
                    stack,
                });
            }
            consumer.commit();
        }
        guard
    }

    /// Every event collected so far that matches `pred`.
    pub fn matching(&self, pred: impl Fn(&Rec) -> bool) -> Vec<Rec> {
        self.drain().1.iter().filter(|r| pred(r)).cloned().collect()
    }

    /// Waits (up to 10 s) until at least `count` events match `pred`, and
    /// returns them all.
    pub fn wait_for(&self, count: usize, pred: impl Fn(&Rec) -> bool) -> Vec<Rec> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.matching(&pred);
            if found.len() >= count || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
