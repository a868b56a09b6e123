//! The published view of the reader: statistics, rings, producers and
//! self-metrics as one serialisable value of plain data, made by the drain
//! loop every flush interval and handed to the outputs (dashboard,
//! `/metrics`, OTLP metrics, tests) without any lock held across their
//! I/O. The layers below produce these types and the outputs read them;
//! nothing here imports the rest of the reader.

mod exceptions;
pub mod health;
mod processes;
mod producers;

pub use exceptions::*;
pub use processes::*;
pub use producers::*;

use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Everything the reader knows, as of `generated_ns`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Snapshot {
    /// Wall-clock ns when the snapshot was made.
    pub generated_ns: u64,
    /// Statistics over the rolling window.
    pub stats: StatsSnapshot,
    /// Attached (and detached) rings.
    pub rings: Vec<RingStatus>,
    /// The reader's own metrics.
    pub reader: ReaderMetrics,
    /// Resource limits: each bound, its use, and how often it was hit.
    pub limits: Limits,
    /// Per-producer losses, dead writers' post-mortems and the merged
    /// worker views.
    pub producers: ProducersSnapshot,
    /// CPU and memory of the writer processes and of the reader.
    pub processes: ProcessesSnapshot,
}

/// The reader's resource limits (docs/limits.md).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Limits {
    /// `--max-rings`: rings attached at once. `used`: attached now;
    /// `hits`: ring files refused for lack of room (each counted once
    /// until attached); `waiting`: refused files not attached yet.
    pub rings: RingLimit,
    /// `--max-routes`: distinct names per table (routes, functions,
    /// queries, custom metrics). `used`: the fullest table; `hits`: events
    /// counted under `(other)`.
    pub routes: Limit,
    /// `--max-errors`: latest errors kept. `used`: errors kept; `hits`:
    /// older errors dropped to make room (the list working as intended).
    pub errors: Limit,
    /// `--retain-bytes`: disk used by the JSONL files (closed and current).
    /// `hits`: closed files deleted to stay under it. `limit` is null
    /// without the option (or without `--jsonl-dir`).
    pub jsonl_bytes: Limit,
    /// `--retain-files`: closed JSONL files kept. `hits`: files deleted
    /// for it.
    pub jsonl_files: Limit,
    /// Per ring: the string table, sized when the ring was created.
    pub strings: Vec<StringLimit>,
}

/// One limit.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Limit {
    /// The bound; null when unbounded.
    pub limit: Option<u64>,
    /// Current use.
    pub used: u64,
    /// How often it was hit since the reader started.
    pub hits: u64,
    /// Of which in about the last minute.
    pub hits_last_minute: u64,
}

/// The ring limit, with the files waiting for room.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct RingLimit {
    /// The bound.
    pub limit: Option<u64>,
    /// Rings attached now.
    pub used: u64,
    /// Ring files refused since the reader started.
    pub hits: u64,
    /// Of which in about the last minute.
    pub hits_last_minute: u64,
    /// Ring files refused and still not attached.
    pub waiting: Vec<String>,
}

/// The string table of one ring.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct StringLimit {
    /// Ring file.
    pub ring: String,
    /// The ring's id, as in [`RingStatus::ring_id`].
    pub ring_id: String,
    /// Index entries (distinct strings).
    pub entries: u64,
    /// Entries taken.
    pub entries_used: u64,
    /// Arena bytes.
    pub arena_bytes: u64,
    /// Arena bytes taken.
    pub arena_used: u64,
    /// Names that found the table full and were recorded as `<overflow>`,
    /// since the ring was created.
    pub overflow: u64,
    /// Of which in about the last minute.
    pub overflow_last_minute: u64,
}

/// Rolling-window statistics.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StatsSnapshot {
    /// Nominal window length in seconds (`--window-minutes` × 60).
    pub window_secs: u64,
    /// Seconds the window actually covers now (less while the reader is
    /// younger than the window).
    pub covered_secs: f64,
    /// All requests (REQ events) together.
    pub requests: Latency,
    /// Per route (REQ), busiest first.
    pub routes: Vec<Latency>,
    /// Per function (FN), busiest first.
    pub functions: Vec<Latency>,
    /// Per redacted query (DB), busiest first.
    pub queries: Vec<Latency>,
    /// Custom metrics, by name.
    pub custom: Vec<CustomMetric>,
    /// Latest errors, newest first (at most `--max-errors`).
    pub errors: Vec<ErrorRecord>,
    /// Error events by exception type.
    pub exceptions: Exceptions,
    /// Time series of requests, oldest first, one point per `step_secs`.
    pub series: Vec<SeriesPoint>,
    /// Seconds per series point.
    pub step_secs: u64,
    /// Request latency distribution over the window, in power-of-two bins.
    pub latency_histogram: Vec<HistogramBin>,
    /// Counts since the reader started, whether or not in the window.
    pub totals: Totals,
    /// Duration histograms with fixed buckets, cumulative since the reader
    /// started (the Prometheus histograms): requests, functions, queries.
    pub request_durations: RequestDurations,
}

/// Cumulative duration histograms of requests, functions and queries (see
/// [`crate::window::durations`]).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RequestDurations {
    /// Upper bounds of the buckets, ns (`+Inf` implied).
    pub bounds_ns: Vec<u64>,
    /// All requests.
    pub all: DurationHistogram,
    /// Per route, by name (at most `--max-routes`, then `(other)`).
    pub routes: Vec<DurationHistogram>,
    /// Per function (FN events), by name, bounded the same way.
    pub functions: Vec<DurationHistogram>,
    /// Per redacted query (DB events), by text, bounded the same way.
    pub queries: Vec<DurationHistogram>,
}

/// One cumulative duration histogram.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DurationHistogram {
    /// Route, function or query (or `all requests`).
    pub name: String,
    /// Events with a duration at most `bounds_ns[i]`, for each bound.
    pub cumulative: Vec<u64>,
    /// All events (the `+Inf` bucket).
    pub count: u64,
    /// Events that were errors.
    pub errors: u64,
    /// Sum of the durations, seconds.
    pub sum_secs: f64,
    /// Bytes received (request bodies), summed.
    pub bytes_in: u64,
    /// Bytes sent (response bodies), summed.
    pub bytes_out: u64,
}

/// Latency and error figures of a set of events over the window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// Route, function or query (`(other)` for names past `--max-routes`).
    pub name: String,
    /// Events.
    pub count: u64,
    /// Events that were errors.
    pub errors: u64,
    /// `errors / count` (0 when empty).
    pub error_rate: f64,
    /// Events per second over the covered window.
    pub rps: f64,
    /// Mean duration.
    pub mean_ns: u64,
    /// Median duration.
    pub p50_ns: u64,
    /// 95th percentile.
    pub p95_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Longest duration.
    pub max_ns: u64,
    /// Bytes received (request bodies), summed: requests only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    /// Bytes sent (response bodies), summed: requests only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
}

/// A custom metric over the window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CustomMetric {
    /// Metric name.
    pub name: String,
    /// Samples.
    pub count: u64,
    /// Mean value.
    pub avg: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Most recent value.
    pub last: f64,
}

/// One error event.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ErrorRecord {
    /// Wall-clock ns of the event.
    pub ts_ns: u64,
    /// REQ, FN, DB or CUSTOM.
    pub kind: &'static str,
    /// Route, function or query.
    pub route: String,
    /// HTTP method (requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
    /// HTTP status (requests; 0 otherwise).
    pub status: u16,
    /// Exception type, if recorded.
    pub exception_type: Option<String>,
    /// Exception message, if recorded.
    pub exception_message: Option<String>,
    /// Stack trace ("most recent call last"), if the writer attached one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// Trace id (32 hex digits), if any.
    pub trace_id: Option<String>,
    /// Writer process id.
    pub pid: u32,
    /// Service of the writer, if set.
    pub service: Option<String>,
}

/// One point of the request time series.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SeriesPoint {
    /// Start of the interval, wall-clock ns.
    pub ts_ns: u64,
    /// Requests per second in the interval.
    pub rps: f64,
    /// Events of all kinds per second in the interval.
    pub events_per_sec: f64,
    /// Median request latency.
    pub p50_ns: u64,
    /// 95th percentile.
    pub p95_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Share of requests that were errors.
    pub error_rate: f64,
}

/// Requests with a latency up to `le_ns` (and above the previous bin).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct HistogramBin {
    /// Upper bound of the bin, ns.
    pub le_ns: u64,
    /// Requests in the bin.
    pub count: u64,
}

/// Counts since the reader started.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    /// Events of every kind.
    pub events: u64,
    /// REQ events.
    pub requests: u64,
    /// REQ events that were errors.
    pub request_errors: u64,
    /// FN events.
    pub functions: u64,
    /// DB events.
    pub queries: u64,
    /// CUSTOM events.
    pub custom: u64,
    /// Error events of every kind.
    pub errors: u64,
    /// Events whose timestamp was already outside the window when drained
    /// (counted here, not in the window figures).
    pub outside_window: u64,
}

/// One ring as seen by the reader.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RingStatus {
    /// Ring file.
    pub path: String,
    /// Random identity (16 hex digits).
    pub ring_id: String,
    /// Slots, all lanes together.
    pub capacity: u64,
    /// Lanes (each `capacity / lanes` slots, written by one thread at a
    /// time).
    pub lanes: u64,
    /// Lanes held by a writer thread now.
    pub lanes_held: u64,
    /// Full-ring policy.
    pub policy: &'static str,
    /// Whether the reader is attached now (false once detached by `--watch`).
    pub attached: bool,
    /// Whether the file was truncated while attached (nothing more can be
    /// read from it).
    pub truncated: bool,
    /// Events lost (dropped + abandoned + torn) in about the last minute.
    pub lost_last_minute: u64,
    /// Events written but not yet consumed, all lanes together.
    pub lag: u64,
    /// Events waiting in the fullest lane.
    pub fullest_lane: u64,
    /// How full the fullest lane is (`fullest_lane / (capacity / lanes)`,
    /// at most 1): its writer's next events are lost at 1.
    pub depth_ratio: f64,
    /// Ring counters (`received + dropped + abandoned + torn + lag == claimed`).
    pub counters: RingCounters,
    /// Events written by the file exporter (JSONL, else console).
    pub exported: u64,
    /// Events an exporter failed to write (counted, not retried).
    pub export_lost: u64,
    /// Events found already exported after a restart and not written again.
    pub duplicates_skipped: u64,
    /// Name ids that could not be resolved to text.
    pub unresolved: u64,
    /// Interning requests that found the string table full.
    pub strings_overflow: u64,
    /// Exception messages a writer gave up on (a newer one took the slot).
    pub messages_lost: u64,
    /// Exception messages overwritten by newer ones before they were read.
    pub messages_unread: u64,
    /// Lanes found holding positions no writer produces (a damaged file),
    /// and reset.
    pub repairs: u64,
    /// Writer processes.
    pub writers: Vec<WriterStatus>,
}

/// Exporter counts of one ring.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ExporterCounts {
    /// Events written.
    pub exported: u64,
    /// Events lost to exporter errors.
    pub lost: u64,
    /// Events already exported by an earlier run (not written again).
    pub duplicates_skipped: u64,
}

/// The `--accounting` line of one ring.
#[derive(Clone, Debug, Serialize)]
pub struct RingAccount {
    /// Its attachment slots during the run, the current one last (an
    /// exporter that settles its counts later reports them per slot, see
    /// `Exporter::ring_counts`).
    #[serde(skip)]
    pub slots: Vec<u32>,
    /// Ring file.
    pub ring: String,
    /// Ring identity (16 hex digits).
    pub ring_id: String,
    /// Delivered to the reader.
    pub received: u64,
    /// Lost to a full ring.
    pub dropped: u64,
    /// Events whose writer died in the middle of them.
    pub abandoned: u64,
    /// Records that failed validation.
    pub torn: u64,
    /// Emit attempts (`received + dropped + abandoned + torn + lag`).
    pub claimed: u64,
    /// Still in the ring (written, not consumed) at exit.
    pub lag: u64,
    /// Exception messages a writer gave up on, and messages overwritten
    /// before they were read: the events went out without their text.
    pub messages_lost: u64,
    /// See [`RingStatus::messages_unread`].
    pub messages_unread: u64,
    /// Name ids that could not be resolved.
    pub names_unresolved: u64,
    /// See [`RingStatus::repairs`].
    pub repairs: u64,
    /// Written by the JSONL exporter (by the console exporter without one).
    pub exported: u64,
    /// Lost to errors of that exporter.
    pub export_lost: u64,
    /// Re-delivered after a restart and already in the JSONL files.
    pub duplicates_skipped: u64,
    /// Per exporter.
    pub exporters: HashMap<&'static str, ExporterCounts>,
}

/// Counters of a ring.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct RingCounters {
    /// Emit attempts.
    pub claimed: u64,
    /// Delivered to the reader.
    pub received: u64,
    /// Lost to a full ring (refused or overwritten).
    pub dropped: u64,
    /// Events whose writer died in the middle of them.
    pub abandoned: u64,
    /// Records that failed validation.
    pub torn: u64,
    /// Part of `dropped`: overwritten unread (overwrite-oldest).
    pub overwritten: u64,
}

impl From<profilis::Counters> for RingCounters {
    fn from(c: profilis::Counters) -> Self {
        RingCounters {
            claimed: c.claimed,
            received: c.received,
            dropped: c.dropped,
            abandoned: c.abandoned,
            torn: c.torn,
            overwritten: c.overwritten,
        }
    }
}

/// A writer process of a ring.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WriterStatus {
    /// Process id.
    pub pid: u32,
    /// Service name, if set.
    pub service: Option<String>,
    /// Whether the process still runs.
    pub alive: bool,
    /// Events it could not place (ring full).
    pub dropped: u64,
    /// Wall-clock ns of its registration.
    pub registered_ns: u64,
    /// Wall-clock ns it was last seen: its latest event drained or its
    /// latest heartbeat (refreshed every 1024 events per thread).
    pub last_seen_ns: u64,
}

/// The reader's own figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReaderMetrics {
    /// Reader process id.
    pub pid: u32,
    /// Wall-clock ns when the reader started.
    pub started_ns: u64,
    /// Seconds since start.
    pub uptime_secs: f64,
    /// Events drained since start.
    pub events: u64,
    /// Events drained per second since the previous snapshot.
    pub events_per_sec: f64,
    /// Non-empty batches drained.
    pub batches: u64,
    /// CPU used by the reader process since the previous snapshot, in % of
    /// one core.
    pub cpu_percent: f64,
    /// Bytes written by all exporters.
    pub bytes_written: u64,
    /// Exporter errors (each failed write or open).
    pub exporter_errors: u64,
    /// Events lost to exporter errors.
    pub export_lost: u64,
    /// Events lost to exporter errors in about the last minute.
    pub export_lost_last_minute: u64,
    /// Per exporter.
    pub exporters: Vec<ExporterStatus>,
}

/// Figures of one exporter.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ExporterStatus {
    /// `jsonl` or `console`.
    pub name: &'static str,
    /// Events written.
    pub exported: u64,
    /// Events lost to errors.
    pub lost: u64,
    /// Failed operations.
    pub errors: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Files closed by rotation (JSONL).
    pub files_rotated: u64,
    /// The latest error, if any.
    pub last_error: Option<String>,
    /// OTLP exporter figures (the OTLP exporter only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp: Option<OtlpStatus>,
}

/// Figures of the OTLP exporter. Every span handed to it ends up in
/// exactly one of `spans_exported`, `spans_dropped`, `spans_failed`,
/// `spans_rejected`, or is still queued (`queue_spans`) or in flight.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct OtlpStatus {
    /// Spans accepted into the queue.
    pub spans_queued: u64,
    /// Spans the receiver accepted.
    pub spans_exported: u64,
    /// Spans dropped because the queue was full.
    pub spans_dropped: u64,
    /// Spans given up on: a non-retryable error, retries exhausted, or the
    /// shutdown flush timed out.
    pub spans_failed: u64,
    /// Spans the receiver rejected in a partial success.
    pub spans_rejected: u64,
    /// Requests retried.
    pub retries: u64,
    /// Successful span requests.
    pub requests: u64,
    /// Failed request attempts (spans and metrics, retried or not).
    pub request_errors: u64,
    /// Successful metrics pushes.
    pub metric_exports: u64,
    /// Metrics pushes given up on.
    pub metric_failures: u64,
    /// Spans waiting in the queue.
    pub queue_spans: u64,
    /// Queue capacity (`--otlp-queue`).
    pub queue_capacity: u64,
}

/// Where the drain loop publishes snapshots: a slot swapped once per
/// publish. Readers clone the `Arc` under a lock held for a few
/// nanoseconds, then serialise at leisure.
#[derive(Clone, Default)]
pub struct SnapshotHandle {
    slot: Arc<Mutex<Arc<Snapshot>>>,
}

impl SnapshotHandle {
    /// A handle holding an empty snapshot.
    pub fn new() -> SnapshotHandle {
        SnapshotHandle::default()
    }

    /// The latest snapshot.
    pub fn load(&self) -> Arc<Snapshot> {
        match self.slot.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the snapshot.
    pub fn store(&self, snapshot: Snapshot) {
        let fresh = Arc::new(snapshot);
        let old = match self.slot.lock() {
            Ok(mut guard) => std::mem::replace(&mut *guard, fresh),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), fresh),
        };
        // The previous snapshot is freed here, outside the lock.
        drop(old);
    }
}
