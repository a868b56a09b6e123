//! Functions (FN events) and redacted queries (DB events): counters and
//! duration histograms since the reader started, bounded like routes
//! (`--max-routes` names per table, then `(other)`), and the rolling-window
//! gauges.

use super::requests::window_tables;
use super::text::Out;
use crate::views::{DurationHistogram, StatsSnapshot};

/// Every function and query family.
pub(super) fn render(out: &mut Out, s: &StatsSnapshot) {
    let d = &s.request_durations;
    for (label, what, rows) in [
        ("function", "Calls of each function", &d.functions),
        ("query", "Runs of each redacted query", &d.queries),
    ] {
        totals(out, label, what, &d.bounds_ns, rows);
    }
    window_tables(out, "function", "calls", "Calls", &s.functions);
    window_tables(out, "query", "calls", "Queries", &s.queries);
}

/// `profilis_{label}_calls_total`, `_errors_total` and
/// `_duration_seconds`, per name.
fn totals(out: &mut Out, label: &str, what: &str, bounds_ns: &[u64], rows: &[DurationHistogram]) {
    let calls = format!("profilis_{label}_calls_total");
    out.family(
        &calls,
        "counter",
        &format!("{what} since the reader started (names past --max-routes share (other))."),
    );
    for h in rows {
        out.sample(&calls, &[(label, &h.name)], h.count as f64);
    }
    let errors = format!("profilis_{label}_errors_total");
    out.family(
        &errors,
        "counter",
        &format!("{what} that were errors, since the reader started."),
    );
    for h in rows {
        out.sample(&errors, &[(label, &h.name)], h.errors as f64);
    }
    let durations = format!("profilis_{label}_duration_seconds");
    out.family(
        &durations,
        "histogram",
        &format!("Durations per {label} since the reader started."),
    );
    for h in rows {
        out.histogram(&durations, &[(label, &h.name)], bounds_ns, h);
    }
}
