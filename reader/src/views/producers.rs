//! What the reader knows per producer process: losses, post-mortems of
//! dead writers and merged worker views, as plain data.

use super::{Latency, ProcessResources};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What the reader knows per producer process: its losses (LOSS
/// markers), the post-mortems of dead writers and the merged worker views.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProducersSnapshot {
    /// Losses per producer since the reader started, latest first.
    pub losses: Vec<ProducerLoss>,
    /// Losses over the statistics window, one point per 10 s step with a
    /// loss.
    pub loss_series: Vec<LossPoint>,
    /// Post-mortems of dead writers, newest first (serialised without their
    /// events, which have their own endpoint).
    #[serde(serialize_with = "postmortem_summaries")]
    pub postmortems: Vec<Arc<PostMortem>>,
    /// Merged views per service, with the per-worker breakdown.
    pub services: Vec<ServiceView>,
}

fn postmortem_summaries<S: serde::Serializer>(
    list: &[Arc<PostMortem>],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(list.iter().map(|p| p.summary()))
}

/// Loss counts. `dropped` includes `overwritten`, as the ring counters do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossTotals {
    /// Lost to a full ring: refused, or overwritten unread.
    pub dropped: u64,
    /// Part of `dropped`: overwritten before they were read.
    pub overwritten: u64,
    /// Events whose writer died in the middle of them.
    pub abandoned: u64,
    /// Records that failed validation.
    pub torn: u64,
}

impl LossTotals {
    /// Events refused for lack of room (`dropped - overwritten`).
    pub fn ring_full(&self) -> u64 {
        self.dropped.saturating_sub(self.overwritten)
    }

    /// Every lost event (`dropped + abandoned + torn`).
    pub fn total(&self) -> u64 {
        self.dropped + self.abandoned + self.torn
    }

    /// Whether nothing was lost.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &LossTotals) {
        self.dropped += other.dropped;
        self.overwritten += other.overwritten;
        self.abandoned += other.abandoned;
        self.torn += other.torn;
    }
}

/// Losses of one producer since the reader started, for the dashboard.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ProducerLoss {
    /// Ring file.
    pub ring: String,
    /// Ring identity.
    pub ring_id: String,
    /// Process id (`None`: not attributable).
    pub pid: Option<u32>,
    /// Service of the process.
    pub service: Option<String>,
    /// Whether the process still runs (`None` when unknown).
    pub alive: Option<bool>,
    /// Refused because the ring was full.
    pub ring_full: u64,
    /// Overwritten before they were read.
    pub overwritten: u64,
    /// Claims never committed.
    pub abandoned: u64,
    /// Records that failed validation.
    pub torn: u64,
    /// All of them.
    pub total: u64,
    /// Wall ns of the latest loss (end of its range).
    pub last_loss_ns: u64,
}

/// Events lost in one step of the loss time series.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct LossPoint {
    /// Start of the step, wall ns.
    pub ts_ns: u64,
    /// Refused for lack of room.
    pub ring_full: u64,
    /// Overwritten unread.
    pub overwritten: u64,
    /// Claims never committed.
    pub abandoned: u64,
    /// Torn records.
    pub torn: u64,
}

/// One service: its workers and the merged views.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServiceView {
    /// Service name (`None`: writers that set none).
    pub service: Option<String>,
    /// Worker processes with events in the window.
    pub workers: Vec<WorkerView>,
    /// Per route, merged over the workers, busiest first.
    pub routes: Vec<MergedLatency>,
    /// Per function.
    pub functions: Vec<MergedLatency>,
    /// Per query.
    pub queries: Vec<MergedLatency>,
}

/// A worker process of a service.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WorkerView {
    /// Process id (0: the workers past `--max-workers` together).
    pub pid: u32,
    /// Process start time (ticks after boot).
    pub start_time: u64,
    /// Rings it writes into.
    pub rings: Vec<String>,
    /// Its REQ, FN and DB events in the window.
    pub events: u64,
    /// Wall ns of its latest event.
    pub last_event_ns: u64,
}

/// A name merged over the workers of a service, with the breakdown.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MergedLatency {
    /// The merged figures (histograms added, never percentiles averaged).
    #[serde(flatten)]
    pub latency: Latency,
    /// Per worker, busiest first; their counts add up to `count`.
    pub workers: Vec<WorkerLatency>,
}

/// One worker's figures for a name.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WorkerLatency {
    /// Process id (0: other workers).
    pub pid: u32,
    /// Events.
    pub count: u64,
    /// Of which errors.
    pub errors: u64,
    /// `errors / count`.
    pub error_rate: f64,
    /// Events per second over the window.
    pub rps: f64,
    /// Mean duration.
    pub mean_ns: u64,
    /// Median.
    pub p50_ns: u64,
    /// 95th percentile.
    pub p95_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Longest.
    pub max_ns: u64,
}

impl WorkerLatency {
    /// The figures `l` of worker `pid`.
    pub fn new(pid: u32, l: Latency) -> WorkerLatency {
        WorkerLatency {
            pid,
            count: l.count,
            errors: l.errors,
            error_rate: l.error_rate,
            rps: l.rps,
            mean_ns: l.mean_ns,
            p50_ns: l.p50_ns,
            p95_ns: l.p95_ns,
            p99_ns: l.p99_ns,
            p999_ns: l.p999_ns,
            max_ns: l.max_ns,
        }
    }
}

/// A dead writer and the last events it committed.
#[derive(Clone, Debug, Serialize)]
pub struct PostMortem {
    /// Ring file.
    pub ring: String,
    /// Ring identity.
    pub ring_id: String,
    /// Process id.
    pub pid: u32,
    /// Process start time (ticks after boot).
    pub start_time: u64,
    /// Service, if it set one.
    pub service: Option<String>,
    /// Wall ns when it registered in the ring.
    pub registered_ns: u64,
    /// Wall ns it was last seen: its latest event or heartbeat.
    pub last_seen_ns: u64,
    /// Wall ns when the reader found it gone.
    pub detected_ns: u64,
    /// Its events this reader drained.
    pub events_drained: u64,
    /// Its losses that this reader recorded (LOSS markers).
    pub losses: LossTotals,
    /// Its last CPU and memory sample before it died (`None`: never
    /// sampled, e.g. it lived less than a sampling interval).
    pub process: Option<ProcessResources>,
    /// Its last events, oldest first (at most `--postmortem-events`).
    pub events: Vec<PostMortemEvent>,
}

impl PostMortem {
    /// Its events as JSON lines, in the JSONL exporter's schema.
    pub fn jsonl(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.events.len() * 256);
        for e in &self.events {
            if serde_json::to_writer(&mut out, e).is_ok() {
                out.push(b'\n');
            }
        }
        out
    }

    /// The document without the events (for metrics.json).
    pub fn summary(&self) -> PostMortemSummary<'_> {
        PostMortemSummary {
            ring: &self.ring,
            ring_id: &self.ring_id,
            pid: self.pid,
            service: self.service.as_deref(),
            registered_ns: self.registered_ns,
            last_seen_ns: self.last_seen_ns,
            detected_ns: self.detected_ns,
            events_drained: self.events_drained,
            events_kept: self.events.len(),
            losses: self.losses,
            process: self.process.as_ref(),
        }
    }
}

/// A post-mortem without its events.
#[derive(Serialize)]
pub struct PostMortemSummary<'a> {
    /// Ring file.
    pub ring: &'a str,
    /// Ring identity.
    pub ring_id: &'a str,
    /// Process id.
    pub pid: u32,
    /// Service.
    pub service: Option<&'a str>,
    /// Wall ns of its registration.
    pub registered_ns: u64,
    /// Wall ns it was last seen.
    pub last_seen_ns: u64,
    /// Wall ns when the reader found it gone.
    pub detected_ns: u64,
    /// Its events drained.
    pub events_drained: u64,
    /// Events kept for the post-mortem.
    pub events_kept: usize,
    /// Its recorded losses.
    pub losses: LossTotals,
    /// Its last CPU and memory sample (`null`: never sampled).
    pub process: Option<&'a ProcessResources>,
}

/// One event of a post-mortem; serialised with the field names and order of
/// a JSONL event line (docs/jsonl.md).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PostMortemEvent {
    /// Wall-clock ns.
    pub ts_ns: u64,
    /// REQ, FN, DB or CUSTOM.
    pub kind: &'static str,
    /// Route, function, query or metric name.
    pub name: String,
    /// HTTP method (requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
    /// HTTP status (requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Duration (not for CUSTOM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dur_ns: Option<u64>,
    /// Whether it was an error.
    pub error: bool,
    /// Exception type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception_type: Option<String>,
    /// Exception message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception_message: Option<String>,
    /// Stack trace attached to the exception message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// Trace id (32 hex digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Span id (16 hex digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// Parent span id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Request bytes in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    /// Request bytes out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    /// Rows (DB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Custom metric value (`null` when not finite).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Option<f64>>,
    /// Service of the writer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Ring identity.
    pub ring_id: String,
    /// Ring position.
    pub seq: u64,
}
