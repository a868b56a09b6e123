//! `GET {prefix}/health`: `ok` or `degraded` (see [`crate::views::health`]),
//! the statistics store and every ring with its depth, capacity, loss
//! counters and writers. The answer is 200 either way (the reader is up);
//! `status` and `reasons` tell which.

use super::WebState;
use crate::views::health::{assess, status};
use crate::views::{Limits, Snapshot};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;

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
    /// Events waiting in the ring, all lanes together.
    pub queue_depth: u64,
    /// Slots, all lanes together.
    pub capacity: u64,
    /// Lanes.
    pub lanes: u64,
    /// Events waiting in the fullest lane (of `capacity / lanes` slots).
    pub fullest_lane: u64,
    /// Full-ring policy.
    pub policy: &'a str,
    /// Emit attempts.
    pub claimed: u64,
    /// Delivered to the reader.
    pub received: u64,
    /// Lost to a full ring.
    pub dropped: u64,
    /// Events whose writer died in the middle of them.
    pub abandoned: u64,
    /// Records that failed validation.
    pub torn: u64,
    /// Losses in about the last minute.
    pub lost_last_minute: u64,
    /// Exception messages a writer gave up on.
    pub messages_lost: u64,
    /// Exception messages overwritten before they were read.
    pub messages_unread: u64,
    /// Name ids that could not be resolved.
    pub names_unresolved: u64,
    /// Lanes found damaged and reset.
    pub repairs: u64,
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
                lanes: ring.lanes,
                fullest_lane: ring.fullest_lane,
                policy: ring.policy,
                claimed: ring.counters.claimed,
                received: ring.counters.received,
                dropped: ring.counters.dropped,
                abandoned: ring.counters.abandoned,
                torn: ring.counters.torn,
                lost_last_minute: ring.lost_last_minute,
                messages_lost: ring.messages_lost,
                messages_unread: ring.messages_unread,
                names_unresolved: ring.unresolved,
                repairs: ring.repairs,
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
