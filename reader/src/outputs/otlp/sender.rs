//! The OTLP sender: two threads behind the queue.
//!
//! - The encoder thread (`profilis-otlp-encode`) takes up to `batch_size`
//!   spans at a time, turns them into one `ExportTraceServiceRequest` and
//!   encodes it. A batch leaves when `batch_size` spans are queued (the
//!   exporter wakes the thread) or when the linger time has passed with
//!   fewer. Encoded requests go to the network thread through a small
//!   bounded channel; when it is full (the receiver is slow or down) the
//!   encoder waits, the queue fills up and the exporter drops new spans.
//! - The network thread (`profilis-otlp`) runs a single-threaded tokio
//!   runtime with up to [`IN_FLIGHT`] requests at a time (HTTP/2 streams
//!   for gRPC, pooled connections for HTTP), so encoding the next batch,
//!   sending this one and the receiver decoding the previous one overlap.
//!   It also pushes the metrics every `metrics_interval`, outside the
//!   span requests' slots: the push is started on schedule even while
//!   every slot is held by a span request being retried (the loop waits
//!   for a free slot without stopping its timer).
//!
//! Errors are reported per signal ("OTLP trace export", "OTLP metrics
//! export"), and so is recovering: a metrics push that succeeds says
//! nothing about spans that still fail.
//!
//! Both threads run at the dashboard's lowered priority (nice 10, see
//! [`crate::support::priority::BACKGROUND_NICE`]): when the machine is short of CPU
//! the drain loop goes first, the export falls behind and the queue drops
//! (counted), rather than the ring filling up and dropping events unseen
//! by every exporter.
//!
//! Retry: exponential backoff from 100 ms doubling up to 5 s, each wait
//! drawn uniformly from its upper half (jitter), or the receiver's
//! `Retry-After`; after `retry_max_elapsed` the spans count as `failed`.
//! Shutdown ([`finish`](crate::outputs::Exporter::finish) of
//! [`super::OtlpExporter`]): the queue is sent until the deadline
//! (`timeout` from the call), the spans still queued or in flight then
//! count as failed, and a last metrics push follows.

use super::convert::{Grouped, SpanConverter};
use super::metrics;
use super::spans::host_name;
use super::transport::{Accepted, Client, Config, Failure, Signal};
use super::{Chunk, OtlpOptions, Shared, SlotSpans};
use crate::support::report::ErrorReporter;
use anyhow::Context;
use bytes::Bytes;
use prost::Message;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// First retry wait (upper bound before jitter).
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Longest retry wait.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Span requests sent at the same time.
pub const IN_FLIGHT: usize = 4;
/// Encoded requests waiting for the network thread.
const ENCODED_WAITING: usize = 2;
/// Emptied span vectors kept for reuse.
const FREE_VECTORS: usize = 16;

/// An encoded trace request.
struct Encoded {
    body: Bytes,
    /// Its spans per ring.
    spans: SlotSpans,
}

/// Starts the sender threads; the handle returned ends when both have.
pub fn start(
    shared: Arc<Shared>,
    options: OtlpOptions,
    config: Config,
) -> anyhow::Result<JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the OTLP sender runtime")?;
    let (tx, rx) = mpsc::channel::<Encoded>(ENCODED_WAITING);
    let errors = Arc::new(Mutex::new(ErrorReporter::new("OTLP trace export")));
    let metric_errors = Arc::new(Mutex::new(ErrorReporter::new("OTLP metrics export")));
    let network = {
        let shared = shared.clone();
        let options = options.clone();
        let errors = errors.clone();
        std::thread::Builder::new()
            .name("profilis-otlp".into())
            .spawn(move || {
                crate::support::priority::lower_thread_priority();
                runtime.block_on(async move {
                    match Client::new(&config) {
                        Ok(client) => {
                            let network = Network {
                                shared,
                                options,
                                client,
                                errors,
                                metric_errors,
                                host: host_name(),
                            };
                            network.run(rx).await;
                        }
                        Err(e) => tracing::error!("OTLP exporter: {e:#}"),
                    }
                })
            })
            .context("starting the OTLP sender thread")?
    };
    std::thread::Builder::new()
        .name("profilis-otlp-encode".into())
        .spawn(move || {
            crate::support::priority::lower_thread_priority();
            Encoder {
                converter: SpanConverter::new(&host_name()),
                shared,
                options,
                errors,
                out: bytes::BytesMut::new(),
                carry: None,
            }
            .run(tx);
            if network.join().is_err() {
                tracing::error!("the OTLP network thread panicked");
            }
        })
        .context("starting the OTLP encoder thread")
}

fn report(errors: &Mutex<ErrorReporter>, message: &str) {
    if let Ok(mut e) = errors.lock() {
        e.report(message);
    }
}

struct Encoder {
    shared: Arc<Shared>,
    options: OtlpOptions,
    converter: SpanConverter,
    errors: Arc<Mutex<ErrorReporter>>,
    /// Encoding buffer; its memory is reused once the requests sent from it
    /// are gone.
    out: bytes::BytesMut,
    /// A chunk partly sent, and where its unsent spans start.
    carry: Option<(Chunk, usize)>,
}

impl Encoder {
    fn run(mut self, tx: mpsc::Sender<Encoded>) {
        loop {
            let (pieces, closing) = self.take();
            if pieces.is_empty() {
                if closing {
                    return; // drops `tx`: the network thread finishes
                }
                continue;
            }
            let Some(encoded) = self.encode(pieces) else {
                continue;
            };
            if let Err(mpsc::error::SendError(encoded)) = tx.blocking_send(encoded) {
                // The network thread is gone (it could not start).
                self.shared.counters.settle_lost(&encoded.spans);
            }
        }
    }

    /// Waits for a full batch (or the linger time, or closing) and takes up
    /// to `batch_size` spans: whole chunks leave the queue (no copying under
    /// the lock) and what a request has no room for stays with the encoder
    /// as the carry, first in line for the next request. Past the closing
    /// deadline, counts everything still queued or carried as failed and
    /// returns nothing. The flag says whether the exporter is closing.
    fn take(&mut self) -> (Vec<Piece>, bool) {
        let max = self.options.batch_size;
        let carried = self.carry.as_ref().map_or(0, |(c, at)| c.spans.len() - at);
        let mut q = self.shared.lock();
        let waited_since = Instant::now();
        loop {
            let closing = q.closing;
            if closing.is_some_and(|d| Instant::now() >= d) {
                let mut left = SlotSpans::default();
                for chunk in q.chunks.drain(..) {
                    left.add(chunk.slot, chunk.spans.len() as u64);
                }
                q.spans = 0;
                drop(q);
                if let Some((chunk, at)) = self.carry.take() {
                    left.add(chunk.slot, (chunk.spans.len() - at) as u64);
                }
                self.shared.counters.queue_spans.store(0, Relaxed);
                if left.total() > 0 {
                    self.shared.counters.settle_lost(&left);
                    report(
                        &self.errors,
                        &format!(
                            "{} spans not sent: the shutdown flush timed out",
                            left.total()
                        ),
                    );
                }
                return (Vec::new(), true);
            }
            let available = q.spans + carried;
            let anything = carried > 0 || !q.chunks.is_empty();
            let lingered = waited_since.elapsed() >= self.options.linger;
            if anything && (available >= max || lingered || closing.is_some()) {
                break;
            }
            if !anything && closing.is_some() {
                return (Vec::new(), true);
            }
            let wait = self
                .options
                .linger
                .saturating_sub(waited_since.elapsed())
                .max(Duration::from_millis(1));
            q = match self.shared.wake.wait_timeout(q, wait) {
                Ok((q, _)) => q,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        let mut pieces = Vec::new();
        let mut n = 0;
        if let Some((chunk, at)) = self.carry.take() {
            let end = chunk.spans.len().min(at + max);
            n += end - at;
            pieces.push(Piece {
                chunk,
                range: at..end,
            });
        }
        while n < max {
            let Some(chunk) = q.chunks.pop_front() else {
                break;
            };
            q.spans -= chunk.spans.len();
            let end = chunk.spans.len().min(max - n);
            n += end;
            pieces.push(Piece {
                chunk,
                range: 0..end,
            });
        }
        self.shared
            .counters
            .queue_spans
            .store(q.spans as u64, Relaxed);
        let closing = q.closing.is_some();
        drop(q);
        (pieces, closing)
    }

    fn encode(&mut self, pieces: Vec<Piece>) -> Option<Encoded> {
        let mut grouped = Grouped::default();
        let mut slots = SlotSpans::default();
        for piece in &pieces {
            slots.add(piece.chunk.slot, piece.range.len() as u64);
            self.converter
                .add_spans(&piece.chunk, piece.range.clone(), &mut grouped);
        }
        self.recycle(pieces);
        if grouped.spans == 0 {
            return None;
        }
        debug_assert_eq!(grouped.spans as u64, slots.total(), "one span per record");
        self.converter.encode(grouped, &mut self.out);
        let body = self.out.split().freeze();
        Some(Encoded { body, spans: slots })
    }

    /// Keeps the rest of a partly sent chunk as the carry, and hands the
    /// emptied span vectors back to the exporter for reuse.
    fn recycle(&mut self, pieces: Vec<Piece>) {
        let mut free = Vec::new();
        for piece in pieces {
            if piece.range.end < piece.chunk.spans.len() {
                self.carry = Some((piece.chunk, piece.range.end));
                continue;
            }
            let mut spans = piece.chunk.spans;
            if spans.capacity() <= (1 << 16) {
                spans.clear();
                free.push(spans);
            }
        }
        if !free.is_empty() {
            let mut q = self.shared.lock();
            for spans in free {
                if q.free.len() < FREE_VECTORS {
                    q.free.push(spans);
                }
            }
        }
    }
}

/// Part of a chunk that goes into one request.
struct Piece {
    chunk: Chunk,
    range: std::ops::Range<usize>,
}

#[derive(Clone)]
struct Network {
    shared: Arc<Shared>,
    options: OtlpOptions,
    client: Client,
    /// Errors of span requests.
    errors: Arc<Mutex<ErrorReporter>>,
    /// Errors of metrics pushes.
    metric_errors: Arc<Mutex<ErrorReporter>>,
    host: String,
}

impl Network {
    async fn run(self, mut rx: mpsc::Receiver<Encoded>) {
        let limit = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let mut tasks = tokio::task::JoinSet::new();
        let metrics_every = self.options.metrics_interval;
        let mut next_metrics = (!metrics_every.is_zero()).then(|| Instant::now() + metrics_every);
        let mut metrics_task: Option<tokio::task::JoinHandle<()>> = None;
        // A request waiting for a free slot. Waiting for it is a branch of
        // the loop, not an await inside one, so the metrics timer keeps
        // firing while every slot is busy.
        let mut waiting: Option<Encoded> = None;
        loop {
            let until_metrics = next_metrics.map_or(Duration::from_secs(3600), |at| {
                at.saturating_duration_since(Instant::now())
            });
            tokio::select! {
                encoded = rx.recv(), if waiting.is_none() => {
                    let Some(encoded) = encoded else { break };
                    waiting = Some(encoded);
                }
                permit = limit.clone().acquire_owned(), if waiting.is_some() => {
                    let Ok(permit) = permit else { break };
                    let Some(encoded) = waiting.take() else { continue };
                    let me = self.clone();
                    tasks.spawn(async move {
                        me.send_spans(encoded).await;
                        drop(permit);
                    });
                }
                _ = tokio::time::sleep(until_metrics) => {
                    next_metrics = Some(Instant::now() + metrics_every);
                    // One push at a time; a slow one is not overtaken.
                    if metrics_task.as_ref().is_none_or(|t| t.is_finished()) {
                        let me = self.clone();
                        metrics_task = Some(tokio::spawn(async move { me.send_metrics().await }));
                    }
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        // Closing: the encoder is done; wait for the requests in flight
        // (their retries stop at the deadline), then push the last metrics.
        while tasks.join_next().await.is_some() {}
        if let Some(t) = metrics_task {
            let _ = t.await;
        }
        if next_metrics.is_some() && self.closing().is_some_and(|d| Instant::now() < d) {
            self.send_metrics().await;
        }
    }

    fn closing(&self) -> Option<Instant> {
        self.shared.lock().closing
    }

    async fn send_spans(&self, encoded: Encoded) {
        let Encoded { body, spans: slots } = encoded;
        let spans = slots.total();
        let c = &self.shared.counters;
        let size = body.len() as u64;
        match self.send_with_retry(Signal::Traces, body, None).await {
            Ok(accepted) => {
                let rejected = accepted.rejected.min(spans);
                c.settle_accepted(&slots, rejected);
                c.requests.fetch_add(1, Relaxed);
                c.bytes.fetch_add(size, Relaxed);
                if rejected > 0 {
                    report(
                        &self.errors,
                        &format!(
                            "the receiver rejected {rejected} of {spans} spans: {}",
                            accepted.message
                        ),
                    );
                }
            }
            Err(failure) => {
                c.settle_lost(&slots);
                report(
                    &self.errors,
                    &format!(
                        "{spans} spans not sent to {}: {}",
                        self.client.target(Signal::Traces),
                        failure.message
                    ),
                );
            }
        }
    }

    async fn send_metrics(&self) {
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
        let c = &self.shared.counters;
        match self
            .send_with_retry(Signal::Metrics, body, Some(limit))
            .await
        {
            Ok(accepted) => {
                c.metric_exports.fetch_add(1, Relaxed);
                c.bytes.fetch_add(size, Relaxed);
                if accepted.rejected > 0 {
                    report(
                        &self.metric_errors,
                        &format!(
                            "the receiver rejected {} metric data points: {}",
                            accepted.rejected, accepted.message
                        ),
                    );
                }
            }
            Err(failure) => {
                c.metric_failures.fetch_add(1, Relaxed);
                report(
                    &self.metric_errors,
                    &format!(
                        "metrics not sent to {}: {}",
                        self.client.target(Signal::Metrics),
                        failure.message
                    ),
                );
            }
        }
    }

    /// Sends `body`, retrying retryable failures with backoff until
    /// `retry_max_elapsed` (or `limit`, or the shutdown deadline) would be
    /// passed.
    async fn send_with_retry(
        &self,
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
        let mut rng = crate::support::timefmt::now_ns() | 1;
        let mut client = self.client.clone();
        let errors = match signal {
            Signal::Traces => &self.errors,
            Signal::Metrics => &self.metric_errors,
        };
        if self.closing().is_some_and(|d| Instant::now() >= d) {
            return Err(Failure {
                retryable: false,
                retry_after: None,
                message: "the shutdown flush timed out".into(),
            });
        }
        loop {
            match client.send(signal, body.clone()).await {
                Ok(accepted) => {
                    if let Ok(mut e) = errors.lock() {
                        e.recovered();
                    }
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
                        .unwrap_or_else(|| jittered(backoff, &mut rng));
                    let deadline = match self.closing() {
                        Some(d) => d.min(give_up_at),
                        None => give_up_at,
                    };
                    if Instant::now() + wait > deadline {
                        return Err(failure);
                    }
                    report(
                        errors,
                        &format!("{} (retrying in {} ms)", failure.message, wait.as_millis()),
                    );
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
