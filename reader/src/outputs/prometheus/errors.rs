//! Errors by exception type and the bytes of each route: counters since
//! the reader started, so `rate()` and `sum()` across readers work like
//! the request counters.
//!
//! `profilis_exceptions_total` has one series per exception type, at most
//! `--max-routes` of them (later types count under `(other)`), and
//! `(none)` for errors without an exception type. The byte counters carry
//! the `route` label of `profilis_route_requests_total`, with the same
//! bound.

use super::text::Out;
use crate::views::Snapshot;

/// Writes the families of this module.
pub(super) fn render(out: &mut Out, snapshot: &Snapshot) {
    let s = &snapshot.stats;
    out.family(
        "profilis_exceptions_total",
        "counter",
        "Error events (of every kind) by exception type since the reader started; (none) for \
         errors without one, (other) for types past --max-routes.",
    );
    for t in &s.exceptions.totals {
        out.sample(
            "profilis_exceptions_total",
            &[("exception", &t.exception)],
            t.count as f64,
        );
    }
    let routes = &s.request_durations.routes;
    out.family(
        "profilis_route_received_bytes_total",
        "counter",
        "Bytes received (request bodies) per route since the reader started.",
    );
    for h in routes {
        out.sample(
            "profilis_route_received_bytes_total",
            &[("route", &h.name)],
            h.bytes_in as f64,
        );
    }
    out.family(
        "profilis_route_sent_bytes_total",
        "counter",
        "Bytes sent (response bodies) per route since the reader started.",
    );
    for h in routes {
        out.sample(
            "profilis_route_sent_bytes_total",
            &[("route", &h.name)],
            h.bytes_out as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::views::*;

    const HOSTILE: &str = "Err\"or\\x\nné";

    fn snapshot() -> Snapshot {
        let route = |name: &str, bytes_in, bytes_out| DurationHistogram {
            name: name.into(),
            cumulative: vec![0; 16],
            bytes_in,
            bytes_out,
            ..DurationHistogram::default()
        };
        let total = |exception: &str, count| ExceptionCount {
            exception: exception.into(),
            count,
        };
        Snapshot {
            stats: StatsSnapshot {
                exceptions: Exceptions {
                    totals: vec![total("(none)", 3), total(HOSTILE, 2), total("(other)", 1)],
                    ..Exceptions::default()
                },
                request_durations: RequestDurations {
                    routes: vec![route("/a", 10, 2_000), route("/\"b\"", 0, 7)],
                    ..RequestDurations::default()
                },
                ..StatsSnapshot::default()
            },
            ..Snapshot::default()
        }
    }

    #[test]
    fn exceptions_and_route_bytes_are_counters_with_escaped_labels() {
        let text = super::super::render(&snapshot());
        // The same checks `promtool check metrics` makes, for these families.
        if let Some(path) = std::env::var_os("PROFILIS_PROM_ERRORS_SAMPLE_OUT") {
            std::fs::write(path, &text).unwrap();
        }
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(has("# TYPE profilis_exceptions_total counter"));
        assert!(has("profilis_exceptions_total{exception=\"(none)\"} 3"));
        assert!(has(
            "profilis_exceptions_total{exception=\"Err\\\"or\\\\x\\nné\"} 2"
        ));
        assert!(has("profilis_exceptions_total{exception=\"(other)\"} 1"));
        assert!(has("# TYPE profilis_route_received_bytes_total counter"));
        assert!(has("profilis_route_received_bytes_total{route=\"/a\"} 10"));
        assert!(has("profilis_route_sent_bytes_total{route=\"/a\"} 2000"));
        assert!(has(
            "profilis_route_sent_bytes_total{route=\"/\\\"b\\\"\"} 7"
        ));
        assert!(has(
            "profilis_route_received_bytes_total{route=\"/\\\"b\\\"\"} 0"
        ));
    }
}
