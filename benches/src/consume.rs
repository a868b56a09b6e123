//! The consumer loop every case shares: take up to [`DRAIN_BATCH`] events,
//! and when there were none, either sleep [`IDLE_BACKOFF`] (as the reader
//! does when idle) or try again at once (a reader that keeps right up with
//! its writers, which is what a reader under load does). Profilis and every
//! peer queue are drained by this same loop, so their figures differ only
//! by the queue.

use profilis::Consumer;
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{
    AtomicBool,
    Ordering::{Acquire, Release},
};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long an idle backing-off consumer sleeps.
pub const IDLE_BACKOFF: Duration = Duration::from_micros(100);
/// Events a consumer takes per batch (`Consumer::read(4096)`).
pub const DRAIN_BATCH: usize = 4096;

/// What a consumer does when it finds nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumerMode {
    /// Sleeps [`IDLE_BACKOFF`] before looking again.
    Backoff,
    /// Looks again at once, without a pause instruction: it reads the
    /// queue's shared words as often as it can.
    Polling,
}

impl ConsumerMode {
    /// `backoff` or `polling`.
    pub fn label(self) -> &'static str {
        match self {
            ConsumerMode::Backoff => "backoff",
            ConsumerMode::Polling => "polling",
        }
    }
}

/// Runs the consumer loop until `stop` is set and `take` then finds nothing
/// more. `take(limit)` consumes up to `limit` events and returns how many.
/// Returns the events taken.
pub fn consume_until_stopped(
    stop: &AtomicBool,
    mode: ConsumerMode,
    mut take: impl FnMut(usize) -> usize,
) -> u64 {
    let mut total = 0u64;
    loop {
        // ORDERING: Acquire pairs with the Release store in `run_with_consumer`
        // (or `Drainer::finish`): every producer had finished before it, so
        // one more empty take after seeing it means the queue is drained.
        let stopping = stop.load(Acquire);
        let n = take(DRAIN_BATCH);
        total += n as u64;
        if n == 0 {
            if stopping {
                return total;
            }
            if mode == ConsumerMode::Backoff {
                std::thread::sleep(IDLE_BACKOFF);
            }
        }
    }
}

/// Runs `produce` on this thread while a scoped consumer thread runs
/// [`consume_until_stopped`] with `take`; once `produce` returns, stops the
/// consumer, waits for it to drain, and returns `produce`'s result and the
/// events consumed.
pub fn run_with_consumer<R>(
    mode: ConsumerMode,
    take: impl FnMut(usize) -> usize + Send,
    produce: impl FnOnce() -> R,
) -> (R, u64) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let consumer = s.spawn(|| consume_until_stopped(&stop, mode, take));
        let result = produce();
        // ORDERING: Release pairs with the Acquire load in
        // `consume_until_stopped`: the producers' last events come before it.
        stop.store(true, Release);
        let consumed = consumer.join().expect("consumer thread panicked");
        (result, consumed)
    })
}

/// One consumer-loop step for a Profilis ring: `read(limit)`, look at each
/// event, `commit()`. Returns the events delivered.
#[inline]
pub fn take_profilis(consumer: &mut Consumer, limit: usize) -> usize {
    let batch = consumer.read(limit);
    let n = batch.events.len();
    for event in batch.events {
        black_box(event);
    }
    consumer.commit();
    n
}

/// A consumer thread draining a Profilis ring until stopped.
pub struct Drainer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Consumer>>,
}

impl Drainer {
    /// Attaches to `path` and drains with a backing-off consumer.
    pub fn start(path: &Path) -> anyhow::Result<Drainer> {
        Drainer::start_with(path, ConsumerMode::Backoff)
    }

    /// Attaches to `path` and drains in `mode`.
    pub fn start_with(path: &Path, mode: ConsumerMode) -> anyhow::Result<Drainer> {
        let mut consumer = Consumer::attach(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            consume_until_stopped(&s, mode, |limit| take_profilis(&mut consumer, limit));
            consumer
        });
        Ok(Drainer {
            stop,
            handle: Some(handle),
        })
    }

    /// Drains what is left, stops, and returns the consumer.
    pub fn finish(mut self) -> anyhow::Result<Consumer> {
        // ORDERING: Release pairs with the Acquire load in
        // `consume_until_stopped`, as in `run_with_consumer`.
        self.stop.store(true, Release);
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(consumer)) => Ok(consumer),
            _ => anyhow::bail!("consumer thread panicked"),
        }
    }
}

impl Drop for Drainer {
    fn drop(&mut self) {
        // ORDERING: as in `finish`.
        self.stop.store(true, Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
