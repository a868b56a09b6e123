//! Prometheus text exposition (format 0.0.4) of a [`Snapshot`]: a pure
//! function, used by the `/metrics` endpoint and usable by a push exporter.
//!
//! Units follow Prometheus conventions: durations in seconds (`_seconds`),
//! Unix times in `_timestamp_seconds`, sizes in `_bytes`, ratios in 0..1
//! (`_ratio`), counters end in `_total`. Counters are counts since the
//! reader started (ring counters since the ring was created), so `rate()`
//! and `sum()` across readers are meaningful; gauges ending in a percentile
//! (`_p99_seconds`) and `error_ratio` describe the rolling window and
//! cannot be aggregated. For aggregatable latency use the `_duration_seconds`
//! histograms of requests, routes, functions and queries. The metric list,
//! with the names deprecated for one release, is in docs/http-api.md.
//!
//! One module per part of the exposition: `requests` (requests, routes,
//! custom metrics), `errors` (errors by exception type, bytes per route),
//! `calls` (functions and queries), `rings` (rings, their string tables,
//! writers and per-producer losses), `process` (writer processes' and the
//! reader's CPU and memory), `reader` (the reader's own figures, limits
//! and exporters); `text` writes the format.

mod calls;
mod errors;
mod process;
mod reader;
mod requests;
mod rings;
mod text;

pub use text::escape_label_value;

use crate::views::Snapshot;
use text::Out;

/// `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every metric of `snapshot`.
pub fn render(snapshot: &Snapshot) -> String {
    let mut out = Out {
        text: String::with_capacity(16 * 1024),
    };
    requests::render(&mut out, &snapshot.stats);
    errors::render(&mut out, snapshot);
    calls::render(&mut out, &snapshot.stats);
    requests::custom(&mut out, &snapshot.stats);
    rings::render(&mut out, snapshot);
    rings::producers(&mut out, snapshot);
    process::render(&mut out, &snapshot.processes);
    reader::render(&mut out, snapshot);
    out.text
}

#[cfg(test)]
mod tests;
