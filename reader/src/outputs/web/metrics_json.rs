//! `GET {prefix}/metrics.json`: the statistics as JSON.
//!
//! The first three keys are the documented schema of the original
//! Profilis (`requests`, `routes`, `errors`; durations in nanoseconds);
//! everything else is under additional top-level keys, so clients of that
//! schema keep working. docs/http-api.md lists every key.

use super::WebState;
use crate::views::health;
use crate::views::{
    CustomMetric, ErrorRecord, Exceptions, HistogramBin, Latency, LossPoint, PostMortemSummary,
    ProcessesSnapshot, ProducerLoss, ReaderMetrics, RingStatus, SeriesPoint, ServiceView, Snapshot,
    Totals,
};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The metrics.json document (keys in this order).
#[derive(Serialize)]
pub struct MetricsJson<'a> {
    /// All requests in the window.
    pub requests: Requests,
    /// Per route, by name.
    pub routes: BTreeMap<&'a str, Route>,
    /// Latest errors, newest first.
    pub errors: Vec<Error<'a>>,
    /// Wall-clock ns of the snapshot.
    pub generated_ns: u64,
    /// The window.
    pub window: Window,
    /// All requests, every figure.
    pub request_stats: &'a Latency,
    /// Per route, every figure, busiest first.
    pub route_stats: &'a [Latency],
    /// Per function.
    pub functions: &'a [Latency],
    /// Per query.
    pub queries: &'a [Latency],
    /// Custom metrics.
    pub custom: &'a [CustomMetric],
    /// The errors of `errors` with every field.
    pub error_details: &'a [ErrorRecord],
    /// Error events by exception type.
    pub exceptions: &'a Exceptions,
    /// Time series.
    pub series: &'a [SeriesPoint],
    /// Latency histogram of the window.
    pub histogram: &'a [HistogramBin],
    /// Counts since the reader started.
    pub totals: &'a Totals,
    /// Rings.
    pub rings: &'a [RingStatus],
    /// Reader self-metrics.
    pub reader: &'a ReaderMetrics,
    /// Health verdict.
    pub health: Health,
    /// Merged views per service with the per-worker breakdown.
    pub services: &'a [ServiceView],
    /// Losses per producer process.
    pub producer_losses: &'a [ProducerLoss],
    /// Losses over the window, per 10 s step.
    pub loss_series: &'a [LossPoint],
    /// Dead writers with a post-mortem, newest first (events at
    /// `postmortem/{ring_id}/{pid}.json`).
    pub postmortems: Vec<PostMortemSummary<'a>>,
    /// CPU and memory of the writer processes, per service with the
    /// per-process breakdown, and of the reader.
    pub processes: &'a ProcessesSnapshot,
}

/// `requests`.
#[derive(Serialize)]
pub struct Requests {
    /// Requests in the window.
    pub total: u64,
    /// Of which errors.
    pub errors: u64,
    /// `errors / total`.
    pub error_rate: f64,
    /// Percentiles, ns.
    pub latency: Percentiles,
}

/// `requests.latency`, ns.
#[derive(Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
}

/// `routes.<route>`.
#[derive(Serialize)]
pub struct Route {
    /// Requests in the window.
    pub count: u64,
    /// Of which errors.
    pub errors: u64,
    /// Mean latency, ns.
    pub avg_latency: u64,
}

/// `errors[]`.
#[derive(Serialize)]
pub struct Error<'a> {
    /// Wall-clock ns.
    pub ts_ns: u64,
    /// Route (function or query for FN/DB errors).
    pub route: &'a str,
    /// HTTP status (0 when not a request).
    pub status: u16,
    /// Exception type, `""` if none.
    pub exception_type: &'a str,
    /// Exception message, `""` if none.
    pub exception_value: &'a str,
    /// Stack trace ("most recent call last"), when the writer attached one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<&'a str>,
}

/// `window`.
#[derive(Serialize)]
pub struct Window {
    /// Nominal length, s.
    pub window_secs: u64,
    /// Covered now, s.
    pub covered_secs: f64,
    /// Seconds per series point.
    pub step_secs: u64,
}

/// `health`.
#[derive(Serialize)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: &'static str,
    /// Why degraded.
    pub reasons: Vec<String>,
}

/// The metrics.json document of `s`.
pub fn render(s: &Snapshot) -> MetricsJson<'_> {
    let st = &s.stats;
    let r = &st.requests;
    let reasons = health::assess(s);
    MetricsJson {
        requests: Requests {
            total: r.count,
            errors: r.errors,
            error_rate: r.error_rate,
            latency: Percentiles {
                p50: r.p50_ns,
                p95: r.p95_ns,
                p99: r.p99_ns,
            },
        },
        routes: st
            .routes
            .iter()
            .map(|l| {
                (
                    l.name.as_str(),
                    Route {
                        count: l.count,
                        errors: l.errors,
                        avg_latency: l.mean_ns,
                    },
                )
            })
            .collect(),
        errors: st
            .errors
            .iter()
            .map(|e| Error {
                ts_ns: e.ts_ns,
                route: &e.route,
                status: e.status,
                exception_type: e.exception_type.as_deref().unwrap_or(""),
                exception_value: e.exception_message.as_deref().unwrap_or(""),
                stack: e.stack.as_deref(),
            })
            .collect(),
        generated_ns: s.generated_ns,
        window: Window {
            window_secs: st.window_secs,
            covered_secs: st.covered_secs,
            step_secs: st.step_secs,
        },
        request_stats: &st.requests,
        route_stats: &st.routes,
        functions: &st.functions,
        queries: &st.queries,
        custom: &st.custom,
        error_details: &st.errors,
        exceptions: &st.exceptions,
        series: &st.series,
        histogram: &st.latency_histogram,
        totals: &st.totals,
        rings: &s.rings,
        reader: &s.reader,
        health: Health {
            status: health::status(&reasons),
            reasons,
        },
        services: &s.producers.services,
        producer_losses: &s.producers.losses,
        loss_series: &s.producers.loss_series,
        postmortems: s
            .producers
            .postmortems
            .iter()
            .map(|p| p.summary())
            .collect(),
        processes: &s.processes,
    }
}

/// `GET {prefix}/metrics.json`.
pub async fn handler(State(state): State<Arc<WebState>>) -> Response {
    let snapshot = state.snapshots.load();
    let body = state.json_cache.get(&snapshot, |s| {
        let mut bytes = serde_json::to_vec(&render(s)).unwrap_or_else(|_| b"{}".to_vec());
        bytes.push(b'\n');
        bytes
    });
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
