//! Duration histograms with fixed buckets, cumulative since the reader
//! started: what `/metrics` exposes as the Prometheus histograms
//! `profilis_request_duration_seconds` (all requests and per route),
//! `profilis_function_duration_seconds` and `profilis_query_duration_seconds`,
//! with their call and error counters.
//!
//! The rolling-window statistics ([`super::stats`]) answer "what are the
//! percentiles now"; they go down as minutes leave the window, so they are
//! gauges and cannot be aggregated across readers or over arbitrary ranges.
//! These counters only ever grow (until the reader restarts, which
//! Prometheus detects as a counter reset), so `rate()` over any range and
//! `sum()` across readers and routes are exact, and
//! `histogram_quantile()` gives percentiles of the aggregate.
//!
//! Per route, function and redacted query there is one histogram, capped at
//! `max_routes` names per table (later names share the `(other)`
//! histogram); entries are never evicted, so a series never disappears and
//! restarts at zero while the reader runs. Every table uses the same
//! buckets, so one dashboard reads them all alike.

use super::{Bounded, Counts, Table, OTHER};
use crate::views::{DurationHistogram, RequestDurations};
use std::sync::Arc;

/// Upper bounds of the buckets, ns (the `+Inf` bucket is implied): 100 µs to
/// 10 s, 1-2.5-5 steps, the usual spread of web request latencies.
pub const BUCKET_BOUNDS_NS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

const BUCKETS: usize = BUCKET_BOUNDS_NS.len() + 1;

/// The histogram of one route.
#[derive(Clone)]
struct Cumulative {
    /// Per bucket (not cumulative); the last one is `+Inf`.
    buckets: [u64; BUCKETS],
    counts: Counts,
    /// Bytes in and out.
    bytes: [u64; 2],
}

impl Default for Cumulative {
    fn default() -> Self {
        Cumulative {
            buckets: [0; BUCKETS],
            counts: Counts::default(),
            bytes: [0; 2],
        }
    }
}

impl Cumulative {
    #[inline]
    fn record(&mut self, dur_ns: u64, error: bool, bytes: [u64; 2]) {
        let at = BUCKET_BOUNDS_NS.partition_point(|&le| le < dur_ns);
        self.buckets[at] += 1;
        self.counts.record(dur_ns, error);
        self.bytes[0] = self.bytes[0].saturating_add(bytes[0]);
        self.bytes[1] = self.bytes[1].saturating_add(bytes[1]);
    }

    fn snapshot(&self, name: &str) -> DurationHistogram {
        let mut running = 0;
        let cumulative = self.buckets[..BUCKET_BOUNDS_NS.len()]
            .iter()
            .map(|&n| {
                running += n;
                running
            })
            .collect();
        DurationHistogram {
            name: name.to_string(),
            cumulative,
            count: self.counts.count,
            errors: self.counts.errors,
            sum_secs: self.counts.sum_ns as f64 / 1e9,
            bytes_in: self.bytes[0],
            bytes_out: self.bytes[1],
        }
    }
}

/// Cumulative duration histograms: all requests, and per name of each
/// [`Table`] (routes, functions, queries).
pub struct DurationStore {
    all: Cumulative,
    tables: [Bounded<Arc<str>, Cumulative>; 3],
}

impl DurationStore {
    /// An empty store tracking at most `max_names` names per table (plus
    /// `(other)`).
    pub fn new(max_names: usize) -> DurationStore {
        let table = || Bounded::new(max_names, Arc::from(OTHER));
        DurationStore {
            all: Cumulative::default(),
            tables: [table(), table(), table()],
        }
    }

    /// The index of `name`'s histogram in `table` (the `(other)` one past
    /// the cap).
    pub fn lookup(&mut self, table: Table, name: &Arc<str>) -> u32 {
        self.tables[table as usize].lookup(name, |_| Cumulative::default())
    }

    /// Records one event of name `index` (from [`lookup`](Self::lookup)) in
    /// `table`, with its bytes in and out (requests; zero otherwise);
    /// requests also count in the histogram of all requests.
    #[inline]
    pub fn record(&mut self, table: Table, index: u32, dur_ns: u64, error: bool, bytes: [u64; 2]) {
        if table == Table::Routes {
            self.all.record(dur_ns, error, bytes);
        }
        let names = &mut self.tables[table as usize];
        if (index as usize) < names.len() {
            names.get_mut(index).record(dur_ns, error, bytes);
        }
    }

    /// The histograms as published in the snapshot, each table by name.
    pub fn snapshot(&self) -> RequestDurations {
        let by_name = |table: Table| {
            let mut rows: Vec<DurationHistogram> = self.tables[table as usize]
                .iter()
                .map(|(name, counts)| counts.snapshot(name))
                .collect();
            rows.sort_by(|a, b| a.name.cmp(&b.name));
            rows
        };
        RequestDurations {
            bounds_ns: BUCKET_BOUNDS_NS.to_vec(),
            all: self.all.snapshot("all requests"),
            routes: by_name(Table::Routes),
            functions: by_name(Table::Functions),
            queries: by_name(Table::Queries),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_upper_bounds_inclusive() {
        let mut store = DurationStore::new(10);
        let r = store.lookup(Table::Routes, &Arc::from("/a"));
        for dur in [100_000, 100_001, 1_000_000, 20_000_000_000] {
            store.record(Table::Routes, r, dur, dur > 1_000_000, [10, 1000]);
        }
        let s = store.snapshot();
        let a = &s.routes[0];
        assert_eq!(a.cumulative[0], 1, "le=100µs holds exactly 100µs");
        assert_eq!(a.cumulative[1], 2);
        assert_eq!(a.cumulative[3], 3, "le=1ms");
        assert_eq!(*a.cumulative.last().unwrap(), 3, "20 s is only in +Inf");
        assert_eq!((a.count, a.errors), (4, 1));
        assert_eq!((a.bytes_in, a.bytes_out), (40, 4000), "bytes summed");
        assert_eq!((s.all.bytes_in, s.all.bytes_out), (40, 4000));
        assert!((a.sum_secs - 20.001_200_001).abs() < 1e-12);
        assert_eq!(s.all.count, 4);
        assert!(a.cumulative.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn names_past_the_cap_share_other() {
        let mut store = DurationStore::new(2);
        let ids: Vec<u32> = ["/a", "/b", "/c", "/d"]
            .iter()
            .map(|n| store.lookup(Table::Routes, &Arc::from(*n)))
            .collect();
        assert_eq!(ids[2], ids[3]);
        for id in ids {
            store.record(Table::Routes, id, 1_000, false, [0; 2]);
        }
        let s = store.snapshot();
        let names: Vec<_> = s.routes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["(other)", "/a", "/b"]);
        assert_eq!(s.routes[0].count, 2);
    }

    #[test]
    fn functions_and_queries_have_tables_of_their_own() {
        let mut store = DurationStore::new(1);
        let f = store.lookup(Table::Functions, &Arc::from("load"));
        let g = store.lookup(Table::Functions, &Arc::from("save"));
        let q = store.lookup(Table::Queries, &Arc::from("SELECT ?"));
        store.record(Table::Functions, f, 3_000_000, false, [0; 2]);
        store.record(Table::Functions, g, 30_000, true, [0; 2]);
        store.record(Table::Queries, q, 600_000, false, [0; 2]);
        let s = store.snapshot();
        assert_eq!(s.all.count, 0, "calls are not requests");
        assert!(s.routes.is_empty());
        let names: Vec<_> = s.functions.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["(other)", "load"], "one name each, then (other)");
        assert_eq!((s.functions[0].count, s.functions[0].errors), (1, 1));
        assert_eq!(s.functions[1].cumulative[5], 1, "3 ms <= 5 ms");
        assert_eq!(s.functions[1].cumulative[4], 0);
        assert_eq!(s.queries[0].name, "SELECT ?");
        assert_eq!(s.queries[0].cumulative[3], 1, "600 µs <= 1 ms");
    }
}
