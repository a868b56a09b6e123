//! `GET {prefix}/health`: `ok` or `degraded`, the statistics store and
//! every ring with its depth, capacity, loss counters and writers.
//!
//! Degraded when, for any ring: its file was truncated while attached, it
//! lost events (dropped, abandoned or torn) in about the last minute, or it
//! is at least 90% full (about to drop); or when an exporter lost events in
//! about the last minute; or when a limit that loses data or detail is being
//! hit: ring files refused by `--max-rings` and still waiting, events folded
//! into `(other)` by `--max-routes` in about the last minute, names that
//! found a ring's string table full in about the last minute. Limits that
//! only discard the oldest on purpose (`--max-errors`, JSONL retention) are
//! reported under `limits` but do not degrade. A ring detached by `--watch`
//! because all its writers exited is not a problem. The answer is 200
//! either way (the reader is up); `status` and `reasons` tell which.

use super::WebState;
use crate::snapshot::{Limits, Snapshot};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;

/// Fill level (lag / capacity) from which a ring counts as degraded.
pub const FULL_RATIO: f64 = 0.9;

/// Why the reader is degraded; empty when it is not.
pub fn assess(s: &Snapshot) -> Vec<String> {
    let mut reasons = Vec::new();
    for r in &s.rings {
        if r.truncated {
            reasons.push(format!(
                "ring {} was truncated while attached: nothing more can be read from it",
                r.path
            ));
        }
        if r.lost_last_minute > 0 {
            reasons.push(format!(
                "ring {} lost {} events in the last minute (dropped, abandoned or torn)",
                r.path, r.lost_last_minute
            ));
        }
        if r.attached && r.capacity > 0 && r.lag as f64 >= FULL_RATIO * r.capacity as f64 {
            reasons.push(format!(
                "ring {} is {:.0}% full: the reader is falling behind",
                r.path,
                r.lag as f64 * 100.0 / r.capacity as f64
            ));
        }
    }
    if s.reader.export_lost_last_minute > 0 {
        reasons.push(format!(
            "exporters failed to write {} events in the last minute",
            s.reader.export_lost_last_minute
        ));
    }
    limit_reasons(&s.limits, &mut reasons);
    reasons
}

/// The reasons of limits being hit in a way that loses data or detail.
fn limit_reasons(l: &Limits, reasons: &mut Vec<String>) {
    if !l.rings.waiting.is_empty() {
        reasons.push(format!(
            "{} ring files are not attached because {} rings are (--max-rings): {}",
            l.rings.waiting.len(),
            l.rings.used,
            l.rings.waiting.join(", ")
        ));
    }
    if l.routes.hits_last_minute > 0 {
        reasons.push(format!(
            "{} events in the last minute were counted under (other): more than --max-routes {} distinct names",
            l.routes.hits_last_minute,
            l.routes.limit.unwrap_or(0)
        ));
    }
    for t in &l.strings {
        if t.overflow_last_minute > 0 {
            reasons.push(format!(
                "ring {}: the string table is full ({} of {} entries, {} of {} bytes); {} names in the last minute were recorded as <overflow>",
                t.ring,
                t.entries_used,
                t.entries,
                t.arena_used,
                t.arena_bytes,
                t.overflow_last_minute
            ));
        }
    }
}

/// `ok` without reasons, else `degraded`.
pub fn status(reasons: &[String]) -> &'static str {
    if reasons.is_empty() {
        "ok"
    } else {
        "degraded"
    }
}

/// The health document (keys in this order).
#[derive(Serialize)]
pub struct HealthJson<'a> {
    /// `ok` or `degraded`.
    pub status: &'static str,
    /// Why degraded (empty when ok).
    pub reasons: Vec<String>,
    /// Wall-clock ns of the snapshot.
    pub generated_ns: u64,
    /// The statistics store.
    pub stats: StoreJson,
    /// Every ring.
    pub rings: Vec<RingJson<'a>>,
    /// The reader.
    pub reader: ReaderJson,
    /// Resource limits: bound, use and hits of each.
    pub limits: &'a Limits,
}

/// `stats`: requests in the rolling window.
#[derive(Serialize)]
pub struct StoreJson {
    /// Window length, minutes.
    pub window_minutes: u64,
    /// Requests in the window.
    pub total_requests: u64,
    /// Of which errors.
    pub total_errors: u64,
    /// `total_errors / total_requests`.
    pub error_rate: f64,
}

/// `rings[]`.
#[derive(Serialize)]
pub struct RingJson<'a> {
    /// Ring file.
    pub path: &'a str,
    /// Ring identity.
    pub ring_id: &'a str,
    /// Attached now.
    pub attached: bool,
    /// Truncated while attached.
    pub truncated: bool,
    /// Events waiting in the ring.
    pub queue_depth: u64,
    /// Slots.
    pub capacity: u64,
    /// Full-ring policy.
    pub policy: &'a str,
    /// Emit attempts.
    pub claimed: u64,
    /// Delivered to the reader.
    pub received: u64,
    /// Lost to a full ring.
    pub dropped: u64,
    /// Stalled claims skipped.
    pub abandoned: u64,
    /// Records that failed validation.
    pub torn: u64,
    /// Losses in about the last minute.
    pub lost_last_minute: u64,
    /// Writer processes.
    pub writers: Vec<WriterJson<'a>>,
}

/// `rings[].writers[]`.
#[derive(Serialize)]
pub struct WriterJson<'a> {
    /// Process id.
    pub pid: u32,
    /// Service name, if set.
    pub service: Option<&'a str>,
    /// Whether it still runs (false: the pid is gone or belongs to another
    /// process now).
    pub alive: bool,
    /// Events it could not place.
    pub dropped: u64,
    /// Wall-clock ns it was last seen: its latest event drained or its
    /// latest heartbeat.
    pub last_seen_ns: u64,
}

/// `reader`.
#[derive(Serialize)]
pub struct ReaderJson {
    /// Reader process id.
    pub pid: u32,
    /// Seconds since start.
    pub uptime_secs: f64,
    /// Events drained.
    pub events: u64,
    /// Failed exporter operations.
    pub exporter_errors: u64,
    /// Events lost to exporter errors.
    pub export_lost: u64,
}

/// The health document of `s`.
pub fn render(s: &Snapshot) -> HealthJson<'_> {
    let reasons = assess(s);
    let r = &s.stats.requests;
    HealthJson {
        status: status(&reasons),
        reasons,
        generated_ns: s.generated_ns,
        stats: StoreJson {
            window_minutes: s.stats.window_secs / 60,
            total_requests: r.count,
            total_errors: r.errors,
            error_rate: r.error_rate,
        },
        rings: s
            .rings
            .iter()
            .map(|ring| RingJson {
                path: &ring.path,
                ring_id: &ring.ring_id,
                attached: ring.attached,
                truncated: ring.truncated,
                queue_depth: ring.lag,
                capacity: ring.capacity,
                policy: ring.policy,
                claimed: ring.counters.claimed,
                received: ring.counters.received,
                dropped: ring.counters.dropped,
                abandoned: ring.counters.abandoned,
                torn: ring.counters.torn,
                lost_last_minute: ring.lost_last_minute,
                writers: ring
                    .writers
                    .iter()
                    .map(|w| WriterJson {
                        pid: w.pid,
                        service: w.service.as_deref(),
                        alive: w.alive,
                        dropped: w.dropped,
                        last_seen_ns: w.last_seen_ns,
                    })
                    .collect(),
            })
            .collect(),
        reader: ReaderJson {
            pid: s.reader.pid,
            uptime_secs: s.reader.uptime_secs,
            events: s.reader.events,
            exporter_errors: s.reader.exporter_errors,
            export_lost: s.reader.export_lost,
        },
        limits: &s.limits,
    }
}

/// `GET {prefix}/health`.
pub async fn handler(State(state): State<Arc<WebState>>) -> Response {
    let snapshot = state.snapshots.load();
    let mut body = serde_json::to_vec(&render(&snapshot)).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
