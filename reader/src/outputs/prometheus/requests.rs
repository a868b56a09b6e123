//! Requests: totals, the rolling window, per route, the duration
//! histograms; and the custom metrics.

use super::text::{secs, Out};
use crate::views::{Latency, StatsSnapshot};

/// Requests and routes.
pub(super) fn render(out: &mut Out, s: &StatsSnapshot) {
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
        "profilis_error_ratio",
        "gauge",
        "Share of requests in the rolling window that were errors (0..1).",
    );
    out.sample("profilis_error_ratio", &[], r.error_rate);
    out.deprecated("profilis_error_rate", "gauge", "profilis_error_ratio");
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
    window_tables(out, "route", "requests", "Requests", &s.routes);

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
}

/// Custom metrics over the window.
pub(super) fn custom(out: &mut Out, s: &StatsSnapshot) {
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
pub(super) fn window_tables(out: &mut Out, label: &str, noun: &str, what: &str, rows: &[Latency]) {
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
