//! The reader's own figures: drain, exporters, resource limits, the OTLP
//! exporter, health.

use super::text::Out;
use crate::views::{ExporterStatus, Limit, Limits, Snapshot};

/// Every reader family.
pub(super) fn render(out: &mut Out, snapshot: &Snapshot) {
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
    type Field = fn(&ExporterStatus) -> f64;
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

/// The reader's resource limits (docs/limits.md): bound, use, hits. Counts
/// and bytes are families of their own; the mixed ones are deprecated.
fn limits(out: &mut Out, l: &Limits) {
    let rings = Limit {
        limit: l.rings.limit,
        used: l.rings.used,
        hits: l.rings.hits,
        hits_last_minute: l.rings.hits_last_minute,
    };
    let counts = [
        ("rings", rings),
        ("routes", l.routes),
        ("errors", l.errors),
        ("jsonl_files", l.jsonl_files),
    ];
    let bytes = [("jsonl", l.jsonl_bytes)];
    let bound = |out: &mut Out, name: &str, rows: &[(&str, Limit)]| {
        for (limit, row) in rows {
            if let Some(max) = row.limit {
                out.sample(name, &[("limit", limit)], max as f64);
            }
        }
    };
    let current = |out: &mut Out, name: &str, rows: &[(&str, Limit)]| {
        for (limit, row) in rows {
            out.sample(name, &[("limit", limit)], row.used as f64);
        }
    };
    out.family(
        "profilis_reader_limit_max",
        "gauge",
        "Configured count limit of the reader (rings, routes, errors, jsonl_files), absent when unbounded.",
    );
    bound(out, "profilis_reader_limit_max", &counts);
    out.family(
        "profilis_reader_limit_current",
        "gauge",
        "Current use of each count limit of the reader.",
    );
    current(out, "profilis_reader_limit_current", &counts);
    out.family(
        "profilis_reader_limit_max_bytes",
        "gauge",
        "Configured size limit of the reader (jsonl: the JSONL directory), bytes; absent when unbounded.",
    );
    bound(out, "profilis_reader_limit_max_bytes", &bytes);
    out.family(
        "profilis_reader_limit_current_bytes",
        "gauge",
        "Current use of each size limit of the reader, bytes.",
    );
    current(out, "profilis_reader_limit_current_bytes", &bytes);

    // The names before counts and bytes were split: jsonl_bytes among counts.
    let mixed = [
        ("rings", rings),
        ("routes", l.routes),
        ("errors", l.errors),
        ("jsonl_bytes", l.jsonl_bytes),
        ("jsonl_files", l.jsonl_files),
    ];
    out.deprecated(
        "profilis_reader_limit",
        "gauge",
        "profilis_reader_limit_max and profilis_reader_limit_max_bytes{limit=\"jsonl\"}",
    );
    bound(out, "profilis_reader_limit", &mixed);
    out.deprecated(
        "profilis_reader_limit_used",
        "gauge",
        "profilis_reader_limit_current and profilis_reader_limit_current_bytes{limit=\"jsonl\"}",
    );
    current(out, "profilis_reader_limit_used", &mixed);
    out.family(
        "profilis_reader_limit_hits_total",
        "counter",
        "Times each resource limit of the reader was hit since it started.",
    );
    for (name, limit) in &mixed {
        out.sample(
            "profilis_reader_limit_hits_total",
            &[("limit", name)],
            limit.hits as f64,
        );
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
