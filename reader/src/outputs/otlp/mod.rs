//! OTLP exporter: REQ/FN/DB events as OpenTelemetry spans and the
//! statistics as OpenTelemetry metrics, sent to an OTLP receiver (an
//! OpenTelemetry Collector) over gRPC or HTTP/protobuf.
//!
//! The drain loop never waits for the network. [`OtlpExporter::export`]
//! copies each event into a compact [`SpanRecord`] (ids, times, numbers and
//! string ids; no text) and appends the batch to a bounded in-memory queue;
//! when the queue is full the newest spans are dropped and counted. Two
//! background threads ([`sender`]) take up to `batch_size` spans at a time,
//! turn them into `opentelemetry-proto` messages, encode them once and send
//! them (several requests in flight), retrying retryable failures with
//! exponential backoff and jitter. Names travel once per ring: the first span that uses a string id
//! carries its text to the sender ([`Def`]), which keeps its own table.
//!
//! Every `metrics_interval` the same thread sends the latest published
//! [`Snapshot`](crate::views::Snapshot) as OTLP metrics ([`metrics`]).

pub mod convert;
pub mod metrics;
pub mod sender;
pub mod spans;
pub mod transport;

use super::{Exported, Exporter};
use crate::ingest::Batch;
use crate::ingest::RingContext;
use crate::views::{ExporterCounts, ExporterStatus, OtlpStatus, SnapshotHandle};
use profilis::record::FLAG_SAMPLED;
use profilis::{Kind, Method, StrId};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Wire protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (`opentelemetry.proto.collector.*.v1` services), usually
    /// port 4317.
    Grpc,
    /// OTLP/HTTP with binary protobuf bodies: POST to `/v1/traces` and
    /// `/v1/metrics` under the endpoint, usually port 4318.
    Http,
}

/// One extra request header (gRPC metadata), e.g. an authorization token.
/// Its value is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct OtlpHeader {
    /// Header name (lower-cased for gRPC metadata).
    pub name: String,
    /// Header value.
    pub value: String,
}

impl fmt::Debug for OtlpHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=<redacted>", self.name)
    }
}

impl OtlpHeader {
    /// Parses `KEY=VALUE` (the value may contain `=`; surrounding spaces of
    /// the key are trimmed).
    pub fn parse(text: &str) -> Result<OtlpHeader, String> {
        let (name, value) = text
            .split_once('=')
            .ok_or_else(|| "expected KEY=VALUE (e.g. authorization=Bearer ...)".to_string())?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(format!(
                "header name {name:?} must be letters, digits, '-', '_' or '.'"
            ));
        }
        if value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return Err(format!(
                "the value of header {name:?} contains control characters"
            ));
        }
        Ok(OtlpHeader {
            name: name.to_ascii_lowercase(),
            value: value.trim().to_string(),
        })
    }

    /// Reads headers from a file: one `KEY=VALUE` per line; blank lines and
    /// lines starting with `#` are skipped. Keeps secrets out of the
    /// process list.
    pub fn parse_file(text: &str) -> Result<Vec<OtlpHeader>, String> {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|(i, l)| OtlpHeader::parse(l).map_err(|e| format!("line {}: {e}", i + 1)))
            .collect()
    }
}

/// Settings of the OTLP exporter.
#[derive(Clone, Debug)]
pub struct OtlpOptions {
    /// Receiver URL: `http://host:4317` for gRPC; for HTTP the base URL
    /// (`/v1/traces` and `/v1/metrics` are appended).
    pub endpoint: String,
    /// gRPC or HTTP/protobuf.
    pub protocol: OtlpProtocol,
    /// Extra headers on every request.
    pub headers: Vec<OtlpHeader>,
    /// Most spans per export request.
    pub batch_size: usize,
    /// Timeout of one request (and of the final flush at shutdown).
    pub timeout: Duration,
    /// Most spans waiting to be sent; further spans are dropped (counted).
    pub queue: usize,
    /// How long a failing request is retried before its spans count as
    /// failed (0: no retries).
    pub retry_max_elapsed: Duration,
    /// Interval of the metrics export (zero: no metrics).
    pub metrics_interval: Duration,
    /// A batch smaller than `batch_size` leaves after waiting this long.
    pub linger: Duration,
}

impl OtlpOptions {
    /// Defaults for `endpoint` over `protocol`.
    pub fn new(endpoint: &str, protocol: OtlpProtocol) -> OtlpOptions {
        OtlpOptions {
            endpoint: endpoint.to_string(),
            protocol,
            headers: Vec::new(),
            batch_size: 2048,
            timeout: Duration::from_secs(10),
            queue: 100_000,
            retry_max_elapsed: Duration::from_secs(30),
            metrics_interval: Duration::from_secs(10),
            linger: Duration::from_millis(200),
        }
    }
}

/// One event on its way to becoming a span: everything the span needs,
/// with names as string ids of the event's ring.
#[derive(Clone, Debug)]
pub struct SpanRecord {
    /// W3C trace id (0: none, a fresh one is made up).
    pub trace_id: u128,
    /// Span id (0: none, a fresh one is made up).
    pub span_id: u64,
    /// Parent span id (0: a root span).
    pub parent_span_id: u64,
    /// Wall-clock ns at the end of the work.
    pub end_ns: u64,
    /// Duration, ns.
    pub dur_ns: u64,
    /// REQ bytes in / DB rows.
    pub value: u64,
    /// REQ bytes out.
    pub value2: u64,
    /// Exception message, if any.
    pub message: Option<Arc<str>>,
    /// The exception's stack trace, if the writer attached one.
    pub stack: Option<Arc<str>>,
    /// Route, function or query.
    pub name: StrId,
    /// Exception type.
    pub exception_type: StrId,
    /// Writer process id.
    pub pid: u32,
    /// Writer thread id.
    pub tid: u32,
    /// HTTP status (REQ).
    pub status: u16,
    /// Writer-table index (selects the service).
    pub writer: u16,
    /// REQ, FN or DB.
    pub kind: Kind,
    /// HTTP method (REQ).
    pub method: Method,
    /// Whether the event counts as an error ([`profilis::Event::is_error`]).
    pub error: bool,
    /// Whether its trace is sampled.
    pub sampled: bool,
}

/// Text the sender needs to turn the spans of a chunk into messages; sent
/// once per ring and id (again when a writer's service changes).
#[derive(Clone, Debug)]
pub enum Def {
    /// The text of a string id.
    Name(StrId, Arc<str>),
    /// The service name of a writer-table index.
    Service(u16, Option<Arc<str>>),
}

/// The spans of one batch of one ring, with the texts first used by them.
#[derive(Debug, Default)]
pub struct Chunk {
    /// The ring's attachment slot ([`RingContext::slot`]).
    pub slot: u32,
    /// Texts to learn before converting `spans`.
    pub defs: Vec<Def>,
    /// The spans.
    pub spans: Vec<SpanRecord>,
}

/// Counters shared by the exporter, the sender thread and the status.
///
/// ORDERING: every atomic here is a statistic read on its own (Relaxed, no
/// pair): nothing is published through it. The per-ring figures that must
/// add up with each other sit under the `rings` mutex.
#[derive(Debug, Default)]
pub struct OtlpCounters {
    /// Spans accepted into the queue.
    pub queued: AtomicU64,
    /// Spans dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Spans the receiver accepted.
    pub exported: AtomicU64,
    /// Spans given up on (non-retryable error, retries exhausted, shutdown).
    pub failed: AtomicU64,
    /// Spans the receiver rejected in a partial success.
    pub rejected: AtomicU64,
    /// Retried requests.
    pub retries: AtomicU64,
    /// Successful span requests.
    pub requests: AtomicU64,
    /// Failed request attempts (spans and metrics).
    pub request_errors: AtomicU64,
    /// Encoded bytes sent successfully.
    pub bytes: AtomicU64,
    /// Successful metrics exports.
    pub metric_exports: AtomicU64,
    /// Metrics exports given up on.
    pub metric_failures: AtomicU64,
    /// Spans in the queue now.
    pub queue_spans: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Per ring (attachment slot): spans the receiver accepted
    /// (`exported`) and spans given up on (`lost`: dropped at the queue,
    /// failed, rejected), for the `--accounting` line.
    rings: Mutex<HashMap<u32, ExporterCounts>>,
}

/// Spans of one request per ring (attachment slot), in request order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotSpans(pub Vec<(u32, u64)>);

impl SlotSpans {
    /// Counts `n` more spans of ring `slot`.
    pub fn add(&mut self, slot: u32, n: u64) {
        if n == 0 {
            return;
        }
        match self.0.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, count)) => *count += n,
            None => self.0.push((slot, n)),
        }
    }

    /// All spans.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }
}

impl OtlpCounters {
    /// Remembers the latest error for the status.
    pub fn set_error(&self, message: String) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(message);
        }
    }

    /// Adds to the final figures of the ring attached as `slot`.
    pub fn settle(&self, slot: u32, exported: u64, lost: u64) {
        let mut rings = match self.rings.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        let c = rings.entry(slot).or_default();
        c.exported += exported;
        c.lost += lost;
    }

    /// Counts every span of `spans` as given up on.
    pub fn settle_lost(&self, spans: &SlotSpans) {
        for &(slot, n) in &spans.0 {
            self.settle(slot, 0, n);
        }
        self.failed.fetch_add(spans.total(), Relaxed);
    }

    /// Counts the spans of an accepted request: `rejected` of them (the
    /// receiver's partial success, which does not say which) are charged
    /// to the request's rings in request order, the rest as exported.
    pub fn settle_accepted(&self, spans: &SlotSpans, rejected: u64) {
        let mut rejected_left = rejected;
        for &(slot, n) in &spans.0 {
            let lost = rejected_left.min(n);
            rejected_left -= lost;
            self.settle(slot, n - lost, lost);
        }
        let rejected = rejected.min(spans.total());
        self.exported.fetch_add(spans.total() - rejected, Relaxed);
        self.rejected.fetch_add(rejected, Relaxed);
    }

    /// What became of the spans of the ring attached as `slot` so far.
    pub fn ring(&self, slot: u32) -> ExporterCounts {
        let rings = match self.rings.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        rings.get(&slot).copied().unwrap_or_default()
    }

    /// The latest error.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// The figures as published in the snapshot.
    pub fn status(&self, capacity: usize) -> OtlpStatus {
        OtlpStatus {
            spans_queued: self.queued.load(Relaxed),
            spans_exported: self.exported.load(Relaxed),
            spans_dropped: self.dropped.load(Relaxed),
            spans_failed: self.failed.load(Relaxed),
            spans_rejected: self.rejected.load(Relaxed),
            retries: self.retries.load(Relaxed),
            requests: self.requests.load(Relaxed),
            request_errors: self.request_errors.load(Relaxed),
            metric_exports: self.metric_exports.load(Relaxed),
            metric_failures: self.metric_failures.load(Relaxed),
            queue_spans: self.queue_spans.load(Relaxed),
            queue_capacity: capacity as u64,
        }
    }
}

/// The queue between the drain loop and the sender thread.
#[derive(Default)]
pub struct Queue {
    /// Chunks in drain order.
    pub chunks: VecDeque<Chunk>,
    /// Spans in `chunks`.
    pub spans: usize,
    /// Set by [`Exporter::finish`]: send what is queued until this
    /// deadline, then stop.
    pub closing: Option<Instant>,
    /// Emptied span vectors handed back for reuse.
    pub free: Vec<Vec<SpanRecord>>,
}

/// State shared with the sender thread.
pub struct Shared {
    /// The queue.
    pub queue: Mutex<Queue>,
    /// Wakes the encoder thread: a full batch is queued, or closing.
    pub wake: std::sync::Condvar,
    /// Counters.
    pub counters: OtlpCounters,
    /// Where the drain loop publishes snapshots (for the metrics).
    pub snapshots: Mutex<Option<SnapshotHandle>>,
}

impl Shared {
    /// Locks the queue (whatever a panicking thread left in it is still a
    /// valid queue).
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        match self.queue.lock() {
            Ok(q) => q,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Which texts of one ring the sender already has.
#[derive(Default)]
struct Shipped {
    names: Vec<bool>,
    large: HashSet<u32>,
    services: Vec<Option<Option<Arc<str>>>>,
}

/// Ids below this are tracked in a vector; the overflow id and nonsense
/// ids in a set.
const MAX_DENSE_ID: usize = 1 << 20;

/// Placeholder text of a string still being interned (see
/// [`RingContext`]): shipped, but shipped again until it resolves.
const NOT_READY: &str = "<incomplete>";

impl Shipped {
    fn name(&mut self, ctx: &mut RingContext, batch: &Batch<'_>, id: StrId, defs: &mut Vec<Def>) {
        let index = id.0 as usize;
        let known = if index < MAX_DENSE_ID {
            self.names.get(index).copied().unwrap_or(false)
        } else {
            self.large.contains(&id.0)
        };
        if known {
            return;
        }
        let text = ctx.name_text(batch.names(), id);
        if &*text != NOT_READY {
            if index < MAX_DENSE_ID {
                if index >= self.names.len() {
                    self.names.resize(index + 1, false);
                }
                self.names[index] = true;
            } else {
                self.large.insert(id.0);
            }
        }
        defs.push(Def::Name(id, text));
    }

    fn service(&mut self, ctx: &RingContext, writer: u16, defs: &mut Vec<Def>) {
        let current = ctx.service(writer);
        let index = writer as usize;
        if let Some(Some(shipped)) = self.services.get(index) {
            let same = match (shipped, current) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if same {
                return;
            }
        }
        if index >= self.services.len() {
            self.services.resize(index + 1, None);
        }
        self.services[index] = Some(current.cloned());
        defs.push(Def::Service(writer, current.cloned()));
    }
}

/// The OTLP exporter (the drain loop's side).
pub struct OtlpExporter {
    shared: Arc<Shared>,
    options: OtlpOptions,
    shipped: HashMap<u32, Shipped>,
    thread: Option<JoinHandle<()>>,
}

impl OtlpExporter {
    /// Checks the options and starts the sender thread. Does not connect:
    /// a receiver that is down is retried like any other failure.
    pub fn new(options: OtlpOptions) -> anyhow::Result<OtlpExporter> {
        let transport = transport::Config::new(&options)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: std::sync::Condvar::new(),
            counters: OtlpCounters::default(),
            snapshots: Mutex::new(None),
        });
        let thread = sender::start(shared.clone(), options.clone(), transport)?;
        Ok(OtlpExporter {
            shared,
            options,
            shipped: HashMap::new(),
            thread: Some(thread),
        })
    }

    /// The exporter's counters (tests and benchmarks watch them).
    pub fn counters(&self) -> Arc<Shared> {
        self.shared.clone()
    }
}

impl Exporter for OtlpExporter {
    fn name(&self) -> &'static str {
        "otlp"
    }

    fn attach_snapshots(&mut self, snapshots: &SnapshotHandle) {
        if let Ok(mut s) = self.shared.snapshots.lock() {
            *s = Some(snapshots.clone());
        }
    }

    fn export(&mut self, ctx: &mut RingContext, batch: &Batch<'_>) -> Exported {
        let mut spans = self.shared.lock().free.pop().unwrap_or_default();
        spans.reserve(batch.events().len());
        let mut defs = Vec::new();
        let shipped = self.shipped.entry(ctx.slot).or_default();
        for e in batch.events() {
            if e.kind == Kind::Custom {
                continue;
            }
            shipped.name(ctx, batch, e.name, &mut defs);
            if e.exception_type != StrId::NONE {
                shipped.name(ctx, batch, e.exception_type, &mut defs);
            }
            shipped.service(ctx, e.writer, &mut defs);
            spans.push(SpanRecord {
                trace_id: e.trace_id,
                span_id: e.span_id,
                parent_span_id: e.parent_span_id,
                end_ns: batch.wall_ns(e),
                dur_ns: e.dur_ns,
                value: e.value,
                value2: e.value2,
                message: ctx.message(batch.names(), e.message),
                stack: ctx.stack(batch.names(), e.message),
                name: e.name,
                exception_type: e.exception_type,
                pid: e.pid,
                tid: e.tid,
                status: e.status,
                writer: e.writer,
                kind: e.kind,
                method: e.method,
                error: e.is_error(),
                sampled: e.flags & FLAG_SAMPLED != 0,
            });
        }
        let offered = spans.len();
        let mut queue = self.shared.lock();
        let room = self.options.queue.saturating_sub(queue.spans);
        let dropped = offered.saturating_sub(room);
        spans.truncate(room);
        let accepted = spans.len();
        if accepted > 0 || !defs.is_empty() {
            queue.spans += accepted;
            queue.chunks.push_back(Chunk {
                slot: ctx.slot,
                defs,
                spans,
            });
        } else {
            queue.free.push(spans);
        }
        let full_batch = queue.spans >= self.options.batch_size;
        let queued = queue.spans;
        drop(queue);
        let c = &self.shared.counters;
        c.queued.fetch_add(accepted as u64, Relaxed);
        c.dropped.fetch_add(dropped as u64, Relaxed);
        c.queue_spans.store(queued as u64, Relaxed);
        if dropped > 0 {
            c.settle(ctx.slot, 0, dropped as u64);
        }
        if full_batch {
            self.shared.wake.notify_one();
        }
        // Queued is not exported: what the receiver accepts is counted
        // when it answers, and reported by `ring_counts`.
        Exported {
            written: 0,
            lost: dropped as u64,
            skipped: 0,
        }
    }

    fn ring_counts(&self, slot: u32) -> Option<ExporterCounts> {
        Some(self.shared.counters.ring(slot))
    }

    fn finish(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.shared.lock().closing = Some(Instant::now() + self.options.timeout);
        self.shared.wake.notify_one();
        if thread.join().is_err() {
            tracing::error!("the OTLP sender thread panicked");
        }
    }

    fn status(&self) -> ExporterStatus {
        let c = &self.shared.counters;
        let otlp = c.status(self.options.queue);
        ExporterStatus {
            name: "otlp",
            exported: otlp.spans_exported,
            lost: otlp.spans_dropped + otlp.spans_failed + otlp.spans_rejected,
            errors: otlp.request_errors,
            bytes: c.bytes.load(Relaxed),
            files_rotated: 0,
            last_error: c.last_error(),
            otlp: Some(otlp),
        }
    }
}

impl Drop for OtlpExporter {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_and_never_print_values() {
        let h = OtlpHeader::parse("Authorization=Bearer abc=def").unwrap();
        assert_eq!(h.name, "authorization");
        assert_eq!(h.value, "Bearer abc=def");
        assert_eq!(format!("{h:?}"), "authorization=<redacted>");
        assert!(OtlpHeader::parse("novalue").is_err());
        assert!(OtlpHeader::parse("=x").is_err());
        assert!(OtlpHeader::parse("bad key=x").is_err());
        assert!(OtlpHeader::parse("k=a\nb").is_err());
        let file = "# comment\n\nx-api-key = s3cret\nauthorization=Basic Zm9v\n";
        let parsed = OtlpHeader::parse_file(file).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            (parsed[0].name.as_str(), parsed[0].value.as_str()),
            ("x-api-key", "s3cret")
        );
        let err = OtlpHeader::parse_file("a=b\nbroken\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
    }
}
