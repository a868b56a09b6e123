//! Prometheus text exposition (format 0.0.4) of a [`Snapshot`]: a pure
//! function, used by the `/metrics` endpoint and usable by a push exporter.
//!
//! Units follow Prometheus conventions: durations in seconds (`_seconds`),
//! ratios in 0..1, counters end in `_total`. Counters are counts since the
//! reader started (ring counters since the ring was created), so `rate()`
//! and `sum()` across readers are meaningful; gauges ending in a percentile
//! (`_p99_seconds`) and `error_rate` describe the rolling window and cannot
//! be aggregated. For aggregatable latency use the
//! `profilis_request_duration_seconds` histograms. The metric list is in
//! docs/http-api.md.

mod errors;
mod process;
mod text;

pub use text::escape_label_value;

use crate::views::{Latency, Snapshot};
use text::{secs, Out};

/// `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every metric of `snapshot`.
pub fn render(snapshot: &Snapshot) -> String {
    let mut out = Out {
        text: String::with_capacity(16 * 1024),
    };
    let s = &snapshot.stats;
    let t = &s.totals;
    let r = &s.requests;

    out.family(
        "profilis_requests_total",
        "counter",
        "Requests (REQ events) drained since the reader started.",
    );
    out.sample("profilis_requests_total", &[], t.requests as f64);
    out.family(
        "profilis_errors_total",
        "counter",
        "Requests that were errors (status >= 500 or an error flag) since the reader started.",
    );
    out.sample("profilis_errors_total", &[], t.request_errors as f64);
    out.family(
        "profilis_events_total",
        "counter",
        "Events drained since the reader started, by kind.",
    );
    for (kind, n) in [
        ("REQ", t.requests),
        ("FN", t.functions),
        ("DB", t.queries),
        ("CUSTOM", t.custom),
    ] {
        out.sample("profilis_events_total", &[("kind", kind)], n as f64);
    }
    out.family(
        "profilis_error_rate",
        "gauge",
        "Share of requests in the rolling window that were errors (0..1).",
    );
    out.sample("profilis_error_rate", &[], r.error_rate);
    out.family(
        "profilis_window_requests",
        "gauge",
        "Requests in the rolling window.",
    );
    out.sample("profilis_window_requests", &[], r.count as f64);
    out.family(
        "profilis_requests_per_second",
        "gauge",
        "Requests per second over the rolling window.",
    );
    out.sample("profilis_requests_per_second", &[], r.rps);
    out.family(
        "profilis_window_seconds",
        "gauge",
        "Seconds of events the rolling window covers now.",
    );
    out.sample("profilis_window_seconds", &[], s.covered_secs);
    for (suffix, what, value) in latency_gauges(r) {
        let name = format!("profilis_latency_{suffix}_seconds");
        out.family(
            &name,
            "gauge",
            &format!("{what} request latency over the rolling window, seconds."),
        );
        out.sample(&name, &[], value);
    }

    // Per route.
    let d = &s.request_durations;
    out.family(
        "profilis_route_requests_total",
        "counter",
        "Requests per route since the reader started.",
    );
    for h in &d.routes {
        out.sample(
            "profilis_route_requests_total",
            &[("route", &h.name)],
            h.count as f64,
        );
    }
    out.family(
        "profilis_route_errors_total",
        "counter",
        "Requests per route that were errors, since the reader started.",
    );
    for h in &d.routes {
        out.sample(
            "profilis_route_errors_total",
            &[("route", &h.name)],
            h.errors as f64,
        );
    }
    window_tables(&mut out, "route", "requests", "Requests", &s.routes);
    window_tables(&mut out, "function", "calls", "Calls", &s.functions);
    window_tables(&mut out, "query", "calls", "Queries", &s.queries);

    // Histograms.
    out.family(
        "profilis_request_duration_seconds",
        "histogram",
        "Request durations since the reader started, all routes.",
    );
    out.histogram(
        "profilis_request_duration_seconds",
        &[],
        &d.bounds_ns,
        &d.all,
    );
    out.family(
        "profilis_route_request_duration_seconds",
        "histogram",
        "Request durations per route since the reader started.",
    );
    for h in &d.routes {
        out.histogram(
            "profilis_route_request_duration_seconds",
            &[("route", &h.name)],
            &d.bounds_ns,
            h,
        );
    }

    // Custom metrics.
    out.family(
        "profilis_custom_value",
        "gauge",
        "Custom metrics over the rolling window: last, avg, min and max value.",
    );
    for c in &s.custom {
        for (stat, v) in [
            ("last", c.last),
            ("avg", c.avg),
            ("min", c.min),
            ("max", c.max),
        ] {
            out.sample(
                "profilis_custom_value",
                &[("name", &c.name), ("stat", stat)],
                v,
            );
        }
    }
    out.family(
        "profilis_custom_samples",
        "gauge",
        "Custom metric samples in the rolling window.",
    );
    for c in &s.custom {
        out.sample(
            "profilis_custom_samples",
            &[("name", &c.name)],
            c.count as f64,
        );
    }

    errors::render(&mut out, snapshot);
    rings(&mut out, snapshot);
    producers(&mut out, snapshot);
    reader(&mut out, snapshot);
    process::render(&mut out, &snapshot.processes);
    out.text
}

/// Per-producer losses (summed over rings per pid and service) and the
/// writers' liveness.
fn producers(out: &mut Out, snapshot: &Snapshot) {
    let mut dropped: std::collections::BTreeMap<(String, String), [u64; 4]> =
        std::collections::BTreeMap::new();
    for p in &snapshot.producers.losses {
        let pid = p
            .pid
            .map_or_else(|| "unknown".to_string(), |p| p.to_string());
        let service = p.service.clone().unwrap_or_default();
        let c = dropped.entry((pid, service)).or_default();
        c[0] += p.ring_full;
        c[1] += p.overwritten;
        c[2] += p.abandoned;
        c[3] += p.torn;
    }
    out.family(
        "profilis_events_dropped_total",
        "counter",
        "Events lost per producer process since the reader started, by cause: ring_full (refused, \
         ring full), overwritten (overwritten unread), abandoned (claimed, never committed), torn \
         (failed validation). pid=\"unknown\" when no process can be named. Equal to the sums of \
         the LOSS markers.",
    );
    for ((pid, service), c) in &dropped {
        for (cause, n) in ["ring_full", "overwritten", "abandoned", "torn"]
            .iter()
            .zip(c)
        {
            out.sample(
                "profilis_events_dropped_total",
                &[("pid", pid), ("service", service), ("cause", cause)],
                *n as f64,
            );
        }
    }
    out.family(
        "profilis_writer_alive",
        "gauge",
        "1 while a writer process of the ring runs, 0 once it is gone (or its pid was reused).",
    );
    for r in &snapshot.rings {
        for w in &r.writers {
            let pid = w.pid.to_string();
            out.sample(
                "profilis_writer_alive",
                &[
                    ("ring", &r.path),
                    ("ring_id", &r.ring_id),
                    ("pid", &pid),
                    ("service", w.service.as_deref().unwrap_or("")),
                ],
                f64::from(u8::from(w.alive)),
            );
        }
    }
    out.family(
        "profilis_writer_last_seen_seconds",
        "gauge",
        "Unix time a writer process was last seen (its latest event or heartbeat), seconds.",
    );
    for r in &snapshot.rings {
        for w in &r.writers {
            let pid = w.pid.to_string();
            out.sample(
                "profilis_writer_last_seen_seconds",
                &[
                    ("ring", &r.path),
                    ("ring_id", &r.ring_id),
                    ("pid", &pid),
                    ("service", w.service.as_deref().unwrap_or("")),
                ],
                w.last_seen_ns as f64 / 1e9,
            );
        }
    }
}

fn latency_gauges(r: &Latency) -> [(&'static str, &'static str, f64); 6] {
    [
        ("p50", "Median", secs(r.p50_ns)),
        ("p95", "95th percentile", secs(r.p95_ns)),
        ("p99", "99th percentile", secs(r.p99_ns)),
        ("p999", "99.9th percentile", secs(r.p999_ns)),
        ("mean", "Mean", secs(r.mean_ns)),
        ("max", "Longest", secs(r.max_ns)),
    ]
}

/// Window gauges of a table: count, errors and percentiles per name; the
/// label is the table's own (`route`, `function`, `query`).
fn window_tables(out: &mut Out, label: &str, noun: &str, what: &str, rows: &[Latency]) {
    let prefix = label;
    let count = format!("profilis_{prefix}_window_{noun}");
    out.family(
        &count,
        "gauge",
        &format!("{what} per {label} in the rolling window."),
    );
    for l in rows {
        out.sample(&count, &[(label, &l.name)], l.count as f64);
    }
    let errors = format!("profilis_{prefix}_window_errors");
    out.family(
        &errors,
        "gauge",
        &format!("{what} per {label} in the rolling window that were errors."),
    );
    for l in rows {
        out.sample(&errors, &[(label, &l.name)], l.errors as f64);
    }
    for (suffix, quantile) in [
        ("p50", "Median"),
        ("p95", "95th percentile"),
        ("p99", "99th percentile"),
    ] {
        let name = format!("profilis_{prefix}_latency_{suffix}_seconds");
        out.family(
            &name,
            "gauge",
            &format!("{quantile} latency per {label} over the rolling window, seconds."),
        );
        for l in rows {
            let v = match suffix {
                "p50" => l.p50_ns,
                "p95" => l.p95_ns,
                _ => l.p99_ns,
            };
            out.sample(&name, &[(label, &l.name)], secs(v));
        }
    }
}

fn rings(out: &mut Out, snapshot: &Snapshot) {
    type Field = fn(&crate::views::RingStatus) -> f64;
    let gauges: [(&str, &str, Field); 8] = [
        ("profilis_ring_capacity", "Slots of the ring.", |r| {
            r.capacity as f64
        }),
        (
            "profilis_ring_lag",
            "Events written but not yet drained (queue depth), all lanes together.",
            |r| r.lag as f64,
        ),
        (
            "profilis_ring_lanes",
            "Lanes of the ring (one writer thread each at a time).",
            |r| r.lanes as f64,
        ),
        (
            "profilis_ring_lanes_held",
            "Lanes held by a writer thread.",
            |r| r.lanes_held as f64,
        ),
        (
            "profilis_ring_fullest_lane_ratio",
            "How full the fullest lane is (0 to 1); its writer loses events at 1.",
            |r| r.depth_ratio,
        ),
        (
            "profilis_ring_attached",
            "1 while the reader is attached to the ring.",
            |r| f64::from(u8::from(r.attached)),
        ),
        (
            "profilis_ring_truncated",
            "1 if the ring file was truncated while attached.",
            |r| f64::from(u8::from(r.truncated)),
        ),
        (
            "profilis_ring_lost_last_minute",
            "Events lost (dropped, abandoned, torn) in about the last minute.",
            |r| r.lost_last_minute as f64,
        ),
    ];
    for (name, help, field) in gauges {
        out.family(name, "gauge", help);
        for r in &snapshot.rings {
            out.sample(
                name,
                &[("ring", &r.path), ("ring_id", &r.ring_id)],
                field(r),
            );
        }
    }
    let counters: [(&str, &str, Field); 10] = [
        (
            "profilis_ring_claimed_total",
            "Emit attempts since the ring was created.",
            |r| r.counters.claimed as f64,
        ),
        (
            "profilis_ring_received_total",
            "Events delivered to a reader since the ring was created.",
            |r| r.counters.received as f64,
        ),
        (
            "profilis_ring_dropped_total",
            "Events lost to a full ring since it was created.",
            |r| r.counters.dropped as f64,
        ),
        (
            "profilis_ring_abandoned_total",
            "Events whose writer died in the middle of them.",
            |r| r.counters.abandoned as f64,
        ),
        (
            "profilis_ring_messages_lost_total",
            "Exception messages a writer gave up on (a newer message took the slot).",
            |r| r.messages_lost as f64,
        ),
        (
            "profilis_ring_messages_unread_total",
            "Exception messages overwritten by newer ones before the reader read them.",
            |r| r.messages_unread as f64,
        ),
        (
            "profilis_ring_names_unresolved_total",
            "Name ids of events that did not resolve to text.",
            |r| r.unresolved as f64,
        ),
        (
            "profilis_ring_repairs_total",
            "Lanes found holding positions no writer produces (a damaged file), and reset.",
            |r| r.repairs as f64,
        ),
        (
            "profilis_ring_torn_total",
            "Records that failed validation.",
            |r| r.counters.torn as f64,
        ),
        (
            "profilis_ring_exported_total",
            "Events of the ring written by the file exporter since the reader started.",
            |r| r.exported as f64,
        ),
    ];
    for (name, help, field) in counters {
        out.family(name, "counter", help);
        for r in &snapshot.rings {
            out.sample(
                name,
                &[("ring", &r.path), ("ring_id", &r.ring_id)],
                field(r),
            );
        }
    }
    out.family(
        "profilis_ring_writers",
        "gauge",
        "Writer processes registered in the ring, by state.",
    );
    for r in &snapshot.rings {
        let alive = r.writers.iter().filter(|w| w.alive).count();
        for (state, n) in [("alive", alive), ("exited", r.writers.len() - alive)] {
            out.sample(
                "profilis_ring_writers",
                &[("ring", &r.path), ("ring_id", &r.ring_id), ("state", state)],
                n as f64,
            );
        }
    }
}

fn reader(out: &mut Out, snapshot: &Snapshot) {
    let m = &snapshot.reader;
    let simple: [(&str, &str, &str, f64); 8] = [
        (
            "profilis_reader_events_total",
            "counter",
            "Events drained since the reader started.",
            m.events as f64,
        ),
        (
            "profilis_reader_batches_total",
            "counter",
            "Non-empty batches drained since the reader started.",
            m.batches as f64,
        ),
        (
            "profilis_reader_events_per_second",
            "gauge",
            "Events drained per second over the last flush interval.",
            m.events_per_sec,
        ),
        (
            "profilis_reader_cpu_ratio",
            "gauge",
            "CPU used by the reader over the last flush interval, in cores (1 = one core busy).",
            m.cpu_percent / 100.0,
        ),
        (
            "profilis_reader_uptime_seconds",
            "gauge",
            "Seconds since the reader started.",
            m.uptime_secs,
        ),
        (
            "profilis_reader_start_time_seconds",
            "gauge",
            "Unix time when the reader started, seconds.",
            m.started_ns as f64 / 1e9,
        ),
        (
            "profilis_reader_written_bytes_total",
            "counter",
            "Bytes written by all exporters.",
            m.bytes_written as f64,
        ),
        (
            "profilis_reader_snapshot_time_seconds",
            "gauge",
            "Unix time of the statistics snapshot served, seconds.",
            snapshot.generated_ns as f64 / 1e9,
        ),
    ];
    for (name, kind, help, value) in simple {
        out.family(name, kind, help);
        out.sample(name, &[], value);
    }
    type Field = fn(&crate::views::ExporterStatus) -> f64;
    let per_exporter: [(&str, &str, Field); 3] = [
        (
            "profilis_reader_exporter_errors_total",
            "Failed exporter operations (writes, opens), by exporter.",
            |e| e.errors as f64,
        ),
        (
            "profilis_reader_export_lost_total",
            "Events an exporter failed to write, by exporter.",
            |e| e.lost as f64,
        ),
        (
            "profilis_reader_exported_total",
            "Events written, by exporter.",
            |e| e.exported as f64,
        ),
    ];
    for (name, help, field) in per_exporter {
        out.family(name, "counter", help);
        for e in &m.exporters {
            out.sample(name, &[("exporter", e.name)], field(e));
        }
    }
    limits(out, &snapshot.limits);
    otlp(out, snapshot);
    out.family(
        "profilis_reader_degraded",
        "gauge",
        "1 when /health reports degraded (see docs/http-api.md), else 0.",
    );
    let degraded = !crate::views::health::assess(snapshot).is_empty();
    out.sample(
        "profilis_reader_degraded",
        &[],
        f64::from(u8::from(degraded)),
    );
}

/// The reader's resource limits (docs/limits.md): bound, use, hits.
fn limits(out: &mut Out, l: &crate::views::Limits) {
    let rings = crate::views::Limit {
        limit: l.rings.limit,
        used: l.rings.used,
        hits: l.rings.hits,
        hits_last_minute: l.rings.hits_last_minute,
    };
    let rows = [
        ("rings", rings),
        ("routes", l.routes),
        ("errors", l.errors),
        ("jsonl_bytes", l.jsonl_bytes),
        ("jsonl_files", l.jsonl_files),
    ];
    out.family(
        "profilis_reader_limit",
        "gauge",
        "Configured resource limit of the reader, by limit (absent when unbounded).",
    );
    for (name, limit) in &rows {
        if let Some(bound) = limit.limit {
            out.sample("profilis_reader_limit", &[("limit", name)], bound as f64);
        }
    }
    out.family(
        "profilis_reader_limit_used",
        "gauge",
        "Current use of each resource limit of the reader.",
    );
    for (name, limit) in &rows {
        out.sample(
            "profilis_reader_limit_used",
            &[("limit", name)],
            limit.used as f64,
        );
    }
    out.family(
        "profilis_reader_limit_hits_total",
        "counter",
        "Times each resource limit of the reader was hit since it started.",
    );
    for (name, limit) in &rows {
        out.sample(
            "profilis_reader_limit_hits_total",
            &[("limit", name)],
            limit.hits as f64,
        );
    }
    type Field = fn(&crate::views::StringLimit) -> f64;
    let strings: [(&str, &str, &str, Field); 3] = [
        (
            "profilis_ring_string_entries",
            "gauge",
            "String-table entries of the ring (distinct names it can hold).",
            |t| t.entries as f64,
        ),
        (
            "profilis_ring_string_entries_used",
            "gauge",
            "String-table entries of the ring in use.",
            |t| t.entries_used as f64,
        ),
        (
            "profilis_ring_string_overflow_total",
            "counter",
            "Names recorded as <overflow> because the ring's string table was full.",
            |t| t.overflow as f64,
        ),
    ];
    for (name, kind, help, field) in strings {
        out.family(name, kind, help);
        for t in &l.strings {
            out.sample(name, &[("ring", &t.ring)], field(t));
        }
    }
}

/// The OTLP exporter's figures, when it is configured.
fn otlp(out: &mut Out, snapshot: &Snapshot) {
    let Some(o) = snapshot
        .reader
        .exporters
        .iter()
        .find_map(|e| e.otlp.as_ref())
    else {
        return;
    };
    out.family(
        "profilis_reader_otlp_spans_total",
        "counter",
        "Spans handed to the OTLP exporter, by outcome: exported (accepted by the receiver), dropped (queue full), failed (given up after retries), rejected (refused by the receiver).",
    );
    for (outcome, n) in [
        ("exported", o.spans_exported),
        ("dropped", o.spans_dropped),
        ("failed", o.spans_failed),
        ("rejected", o.spans_rejected),
    ] {
        out.sample(
            "profilis_reader_otlp_spans_total",
            &[("outcome", outcome)],
            n as f64,
        );
    }
    let simple: [(&str, &str, &str, u64); 5] = [
        (
            "profilis_reader_otlp_retries_total",
            "counter",
            "OTLP requests retried after a retryable failure.",
            o.retries,
        ),
        (
            "profilis_reader_otlp_request_errors_total",
            "counter",
            "Failed OTLP request attempts (retried or not).",
            o.request_errors,
        ),
        (
            "profilis_reader_otlp_metric_exports_total",
            "counter",
            "Successful pushes of the statistics as OTLP metrics.",
            o.metric_exports,
        ),
        (
            "profilis_reader_otlp_queue_spans",
            "gauge",
            "Spans waiting in the OTLP exporter's queue.",
            o.queue_spans,
        ),
        (
            "profilis_reader_otlp_queue_capacity_spans",
            "gauge",
            "Capacity of the OTLP exporter's queue (--otlp-queue).",
            o.queue_capacity,
        ),
    ];
    for (name, kind, help, value) in simple {
        out.family(name, kind, help);
        out.sample(name, &[], value as f64);
    }
}

#[cfg(test)]
mod tests;
