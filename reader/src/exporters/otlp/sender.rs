//! The OTLP sender thread: takes batches of spans from the queue, converts,
//! encodes and sends them, retries, and pushes the metrics.
//!
//! It runs a single-threaded tokio runtime with one request in flight. A
//! batch leaves when `batch_size` spans are queued (the exporter wakes the
//! thread) or when the linger time has passed with fewer. While a request
//! is being retried, new spans wait in the queue, and once it is full the
//! exporter drops them (counted as `dropped`).
//!
//! Retry: exponential backoff from 100 ms doubling up to 5 s, each wait
//! drawn uniformly from its upper half (jitter), or the receiver's
//! `Retry-After`; after `retry_max_elapsed` the spans count as `failed`.
//! Shutdown ([`super::OtlpExporter::finish`]): the queue is sent until the
//! deadline (`timeout` from the call), the spans still queued then count as
//! failed, and a last metrics push follows.

use super::metrics;
use super::spans::{host_name, Grouped, SpanConverter};
use super::transport::{Accepted, Client, Config, Failure, Signal};
use super::{Chunk, OtlpOptions, Shared};
use crate::exporters::ErrorReporter;
use anyhow::Context;
use bytes::Bytes;
use prost::Message;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// First retry wait (upper bound before jitter).
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Longest retry wait.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Emptied span vectors kept for reuse.
const FREE_VECTORS: usize = 16;

/// Starts the sender thread.
pub fn start(
    shared: Arc<Shared>,
    options: OtlpOptions,
    config: Config,
) -> anyhow::Result<JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the OTLP sender runtime")?;
    std::thread::Builder::new()
        .name("profilis-otlp".into())
        .spawn(move || {
            runtime.block_on(async move {
                match Client::new(&config) {
                    Ok(client) => Sender::new(shared, options, client).run().await,
                    Err(e) => eprintln!("profilis-reader: OTLP exporter: {e:#}"),
                }
            })
        })
        .context("starting the OTLP sender thread")
}

struct Sender {
    shared: Arc<Shared>,
    options: OtlpOptions,
    client: Client,
    converter: SpanConverter,
    host: String,
    errors: ErrorReporter,
    rng: u64,
}

impl Sender {
    fn new(shared: Arc<Shared>, options: OtlpOptions, client: Client) -> Sender {
        let host = host_name();
        Sender {
            converter: SpanConverter::new(&host),
            host,
            shared,
            options,
            client,
            errors: ErrorReporter::new("OTLP exporter"),
            rng: crate::timefmt::now_ns() | 1,
        }
    }

    async fn run(mut self) {
        let metrics_every = self.options.metrics_interval;
        let mut next_metrics = (!metrics_every.is_zero()).then(|| Instant::now() + metrics_every);
        let mut force = false;
        loop {
            let (chunks, closing) = self.take(force);
            force = false;
            if !chunks.is_empty() {
                self.send_spans(chunks).await;
                continue;
            }
            if closing.is_some() {
                break;
            }
            if let Some(at) = next_metrics {
                if Instant::now() >= at {
                    self.send_metrics().await;
                    next_metrics = Some(Instant::now() + metrics_every);
                    continue;
                }
            }
            let mut wait = self.options.linger;
            if let Some(at) = next_metrics {
                wait = wait.min(at.saturating_duration_since(Instant::now()));
            }
            tokio::select! {
                _ = self.shared.wake.notified() => {}
                _ = tokio::time::sleep(wait) => force = true,
            }
        }
        if next_metrics.is_some() && self.closing().is_some_and(|d| Instant::now() < d) {
            self.send_metrics().await;
        }
    }

    fn closing(&self) -> Option<Instant> {
        self.shared.lock().closing
    }

    /// Takes up to `batch_size` spans (with the chunks that only carry
    /// texts) when a full batch is queued, when `force`, or when closing.
    /// Past the closing deadline, counts everything still queued as failed.
    fn take(&mut self, force: bool) -> (Vec<Chunk>, Option<Instant>) {
        let max = self.options.batch_size;
        let mut q = self.shared.lock();
        let closing = q.closing;
        if closing.is_some_and(|d| Instant::now() >= d) {
            let left = q.spans as u64;
            q.chunks.clear();
            q.spans = 0;
            drop(q);
            if left > 0 {
                self.shared.counters.failed.fetch_add(left, Relaxed);
                self.errors.report(&format!(
                    "{left} spans not sent: the shutdown flush timed out"
                ));
            }
            self.shared.counters.queue_spans.store(0, Relaxed);
            return (Vec::new(), closing);
        }
        if q.chunks.is_empty() || !(force || closing.is_some() || q.spans >= max) {
            return (Vec::new(), closing);
        }
        let mut taken = Vec::new();
        let mut n = 0;
        while n < max {
            let Some(mut chunk) = q.chunks.pop_front() else {
                break;
            };
            let room = max - n;
            if chunk.spans.len() > room {
                let rest = chunk.spans.split_off(room);
                q.chunks.push_front(Chunk {
                    slot: chunk.slot,
                    defs: Vec::new(),
                    spans: rest,
                });
            }
            n += chunk.spans.len();
            taken.push(chunk);
        }
        q.spans -= n;
        self.shared
            .counters
            .queue_spans
            .store(q.spans as u64, Relaxed);
        (taken, closing)
    }

    async fn send_spans(&mut self, chunks: Vec<Chunk>) {
        let mut grouped = Grouped::default();
        for chunk in &chunks {
            self.converter.add_chunk(chunk, &mut grouped);
        }
        self.recycle(chunks);
        let spans = grouped.spans as u64;
        if spans == 0 {
            return;
        }
        let request = self.converter.request(grouped);
        let body = Bytes::from(request.encode_to_vec());
        drop(request);
        let shared = self.shared.clone();
        let c = &shared.counters;
        let size = body.len() as u64;
        match self.send_with_retry(Signal::Traces, body, None).await {
            Ok(accepted) => {
                let rejected = accepted.rejected.min(spans);
                c.exported.fetch_add(spans - rejected, Relaxed);
                c.rejected.fetch_add(rejected, Relaxed);
                c.requests.fetch_add(1, Relaxed);
                c.bytes.fetch_add(size, Relaxed);
                if rejected > 0 {
                    self.errors.report(&format!(
                        "the receiver rejected {rejected} of {spans} spans: {}",
                        accepted.message
                    ));
                }
            }
            Err(failure) => {
                c.failed.fetch_add(spans, Relaxed);
                self.errors.report(&format!(
                    "{spans} spans not sent to {}: {}",
                    self.client_target(Signal::Traces),
                    failure.message
                ));
            }
        }
    }

    fn recycle(&mut self, chunks: Vec<Chunk>) {
        let mut q = self.shared.lock();
        for chunk in chunks {
            let mut spans = chunk.spans;
            if q.free.len() < FREE_VECTORS && spans.capacity() <= (1 << 16) {
                spans.clear();
                q.free.push(spans);
            }
        }
    }

    async fn send_metrics(&mut self) {
        let snapshot = match self.shared.snapshots.lock() {
            Ok(handle) => handle.as_ref().map(|h| h.load()),
            Err(_) => None,
        };
        let Some(request) = snapshot.and_then(|s| metrics::request(&s, &self.host)) else {
            return;
        };
        let body = Bytes::from(request.encode_to_vec());
        let size = body.len() as u64;
        let limit = self.options.metrics_interval;
        let shared = self.shared.clone();
        let c = &shared.counters;
        match self
            .send_with_retry(Signal::Metrics, body, Some(limit))
            .await
        {
            Ok(accepted) => {
                c.metric_exports.fetch_add(1, Relaxed);
                c.bytes.fetch_add(size, Relaxed);
                if accepted.rejected > 0 {
                    self.errors.report(&format!(
                        "the receiver rejected {} metric data points: {}",
                        accepted.rejected, accepted.message
                    ));
                }
            }
            Err(failure) => {
                c.metric_failures.fetch_add(1, Relaxed);
                self.errors.report(&format!(
                    "metrics not sent to {}: {}",
                    self.client_target(Signal::Metrics),
                    failure.message
                ));
            }
        }
    }

    fn client_target(&self, signal: Signal) -> String {
        self.client.target(signal)
    }

    /// Sends `body`, retrying retryable failures with backoff until
    /// `retry_max_elapsed` (or `limit`, or the shutdown deadline) would be
    /// passed.
    async fn send_with_retry(
        &mut self,
        signal: Signal,
        body: Bytes,
        limit: Option<Duration>,
    ) -> Result<Accepted, Failure> {
        let mut budget = self.options.retry_max_elapsed;
        if let Some(limit) = limit {
            budget = budget.min(limit);
        }
        let give_up_at = Instant::now() + budget;
        let mut backoff = INITIAL_BACKOFF;
        loop {
            match self.client.send(signal, body.clone()).await {
                Ok(accepted) => {
                    self.errors.recovered();
                    return Ok(accepted);
                }
                Err(failure) => {
                    let c = &self.shared.counters;
                    c.request_errors.fetch_add(1, Relaxed);
                    c.set_error(failure.message.clone());
                    if !failure.retryable {
                        return Err(failure);
                    }
                    let wait = failure
                        .retry_after
                        .unwrap_or_else(|| jittered(backoff, &mut self.rng));
                    let deadline = match self.closing() {
                        Some(d) => d.min(give_up_at),
                        None => give_up_at,
                    };
                    if Instant::now() + wait > deadline {
                        return Err(failure);
                    }
                    self.errors.report(&format!(
                        "{} (retrying in {} ms)",
                        failure.message,
                        wait.as_millis()
                    ));
                    c.retries.fetch_add(1, Relaxed);
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// A wait drawn uniformly from `[backoff / 2, backoff]`.
fn jittered(backoff: Duration, rng: &mut u64) -> Duration {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let half = backoff / 2;
    let span = half.as_nanos().max(1) as u64;
    half + Duration::from_nanos(*rng % span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let mut rng = 12345;
        let mut backoff = INITIAL_BACKOFF;
        for _ in 0..20 {
            let w = jittered(backoff, &mut rng);
            assert!(w >= backoff / 2 && w <= backoff, "{w:?} for {backoff:?}");
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        assert_eq!(backoff, MAX_BACKOFF);
    }
}
