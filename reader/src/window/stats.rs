//! StatsStore: rolling-window statistics of the drained events, on the
//! window engine ([`super`]).
//!
//! Every route (REQ), function (FN) and query (DB), and all requests
//! together, keeps one histogram per minute bucket plus a running window
//! histogram (the sum of its buckets: recorded into with each event,
//! subtracted from when a bucket expires), so percentiles need no merging.
//! Names past `max_routes` per table share one `(other)` entry, and entries
//! with nothing left in the window are evicted when the minute rolls, so
//! memory is bounded by `max_routes × (window_minutes + 1)` histograms per
//! table (about 14 KB each at the default precision) however many names the
//! applications invent. Custom metrics keep count, sum, min and max per
//! minute.
//!
//! Requests, function calls and queries are also counted into fixed-bucket
//! histograms that only grow ([`super::durations`]), for Prometheus.
//!
//! A separate series of 10-second points (requests/s, events/s,
//! p50/p95/p99, error rate) over the same window feeds the dashboard charts.

use super::custom::CustomWindow;
use super::durations::DurationStore;
use super::{
    histogram, latency, ratio, Bounded, Counts, Hist, IdCache, Minutes, Periods, Table, BUCKET_NS,
    OTHER, STEP_NS,
};
use crate::ingest::RingContext;
use crate::support::json;
use crate::views::{
    CustomMetric, ErrorRecord, HistogramBin, Latency, SeriesPoint, StatsSnapshot, Totals,
};
use profilis::{Event, Kind, Method, Names, StrId};
use std::collections::VecDeque;
use std::sync::Arc;

/// Settings of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatsConfig {
    /// Window length in minutes (at least 1).
    pub window_minutes: u32,
    /// Errors kept.
    pub max_errors: usize,
    /// Names per table (routes, functions, queries, custom metrics) before
    /// the `(other)` entry takes the rest.
    pub max_routes: usize,
    /// Lowest discernible duration, ns (at least 1).
    pub precision_ns: u64,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            window_minutes: 15,
            max_errors: 100,
            max_routes: 1000,
            precision_ns: 1000,
        }
    }
}

/// Per-ring lookup caches of the store: string id to entry, per table;
/// void when the store evicts entries.
#[derive(Default)]
pub struct StatsCache {
    generation: u64,
    tables: [IdCache; 3],
    custom: IdCache,
    /// Duration histogram of each route, function and query (never
    /// evicted, cleared along with the rest).
    durations: [IdCache; 3],
}

/// Histograms handed back by expired buckets, for new ones.
struct Pool {
    template: Hist,
    free: Vec<Hist>,
}

impl Pool {
    fn take(&mut self) -> Hist {
        self.free.pop().unwrap_or_else(|| self.template.clone())
    }

    fn give(&mut self, mut hist: Hist) {
        hist.reset();
        if self.free.len() < 256 {
            self.free.push(hist);
        }
    }
}

struct MinuteBucket {
    hist: Hist,
    counts: Counts,
    /// Bytes in and out (requests; zero in the other tables).
    bytes: [u64; 2],
}

/// Latency statistics of one name over the window.
struct LatencyWindow {
    window: Hist,
    minutes: Periods<MinuteBucket>,
}

impl LatencyWindow {
    fn new(pool: &mut Pool) -> LatencyWindow {
        LatencyWindow {
            window: pool.take(),
            minutes: Periods::default(),
        }
    }

    #[inline]
    fn record(&mut self, pool: &mut Pool, minute: u64, dur_ns: u64, error: bool, bytes: [u64; 2]) {
        let b = self.minutes.get_or_insert_with(minute, || MinuteBucket {
            hist: pool.take(),
            counts: Counts::default(),
            bytes: [0; 2],
        });
        b.hist.saturating_record(dur_ns);
        b.counts.record(dur_ns, error);
        b.bytes[0] = b.bytes[0].saturating_add(bytes[0]);
        b.bytes[1] = b.bytes[1].saturating_add(bytes[1]);
        self.window.saturating_record(dur_ns);
    }

    fn expire(&mut self, pool: &mut Pool, oldest_minute: u64) {
        let mut rebuild = false;
        let window = &mut self.window;
        self.minutes.expire(oldest_minute, |b| {
            rebuild |= window.subtract(&b.hist).is_err();
            pool.give(b.hist);
        });
        if rebuild {
            self.window.reset();
            for (_, b) in self.minutes.iter() {
                let _ = self.window.add(&b.hist);
            }
        }
    }

    /// The row of `name`, with the bytes summed when `requests`.
    fn summary(&self, name: &str, covered_secs: f64, requests: bool) -> Latency {
        let mut counts = Counts::default();
        let mut bytes = [0u64; 2];
        for (_, b) in self.minutes.iter() {
            counts.add(&b.counts);
            bytes[0] = bytes[0].saturating_add(b.bytes[0]);
            bytes[1] = bytes[1].saturating_add(b.bytes[1]);
        }
        let mut row = latency(name, &self.window, counts, covered_secs);
        if requests {
            (row.bytes_in, row.bytes_out) = (Some(bytes[0]), Some(bytes[1]));
        }
        row
    }
}

/// How the store's bounds are used (for the reader's `limits`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsLimitUse {
    /// Most distinct names with an entry of their own in any one table
    /// (routes, functions, queries, custom metrics), against `max_routes`.
    pub names: u64,
    /// Events counted under `(other)` because their table was full.
    pub folded: u64,
    /// Errors kept, against `max_errors`.
    pub errors_kept: u64,
    /// Errors dropped from the list to make room for newer ones.
    pub errors_evicted: u64,
}

struct StepPoint {
    hist: Hist,
    requests: u64,
    errors: u64,
    events: u64,
}

/// A table of names with its `(other)` entry.
type NameTable<E> = Bounded<Arc<str>, E>;

/// Rolling statistics over the drained events.
pub struct StatsStore {
    config: StatsConfig,
    pool: Pool,
    minutes: Minutes,
    requests: LatencyWindow,
    tables: [NameTable<LatencyWindow>; 3],
    custom: NameTable<CustomWindow>,
    errors: VecDeque<ErrorRecord>,
    series: Periods<StepPoint>,
    totals: Totals,
    durations: DurationStore,
    folded: u64,
    errors_evicted: u64,
    generation: u64,
    started_ns: u64,
    earliest_ns: u64,
}

impl StatsStore {
    /// An empty store; `now_ns` is the wall clock now.
    pub fn new(config: StatsConfig, now_ns: u64) -> StatsStore {
        let config = StatsConfig {
            window_minutes: config.window_minutes.max(1),
            precision_ns: super::clamp_precision(config.precision_ns),
            ..config
        };
        let mut pool = Pool {
            template: histogram(config.precision_ns),
            free: Vec::new(),
        };
        let table = || Bounded::new(config.max_routes, Arc::from(OTHER));
        StatsStore {
            requests: LatencyWindow::new(&mut pool),
            tables: [table(), table(), table()],
            custom: Bounded::new(config.max_routes, Arc::from(OTHER)),
            pool,
            minutes: Minutes::new(config.window_minutes, now_ns),
            errors: VecDeque::new(),
            series: Periods::default(),
            totals: Totals::default(),
            durations: DurationStore::new(config.max_routes),
            folded: 0,
            errors_evicted: 0,
            generation: 0,
            started_ns: now_ns,
            earliest_ns: now_ns,
            config,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> StatsConfig {
        self.config
    }

    /// How the name and error bounds are used.
    pub fn limit_use(&self) -> StatsLimitUse {
        let names = self
            .tables
            .iter()
            .map(Bounded::named)
            .chain([self.custom.named()])
            .max()
            .unwrap_or(0);
        StatsLimitUse {
            names: names as u64,
            folded: self.folded,
            errors_kept: self.errors.len() as u64,
            errors_evicted: self.errors_evicted,
        }
    }

    /// Moves the window to `now_ns`: buckets older than the window leave it,
    /// entries with nothing left are evicted. Cheap unless the minute
    /// changed; call it before each batch.
    pub fn advance(&mut self, now_ns: u64) {
        if !self.minutes.advance(now_ns) {
            return;
        }
        let oldest = self.minutes.oldest();
        let pool = &mut self.pool;
        self.requests.expire(pool, oldest);
        let mut evicted = false;
        let mut idle = Vec::new();
        for table in &mut self.tables {
            let kept = table.retain(
                |_, e| {
                    e.expire(pool, oldest);
                    !e.minutes.is_empty()
                },
                |e| idle.push(e.window),
            );
            evicted |= kept.is_some();
        }
        for hist in idle {
            pool.give(hist);
        }
        let kept = self.custom.retain(|_, e| e.expire(oldest), drop);
        evicted |= kept.is_some();
        if evicted {
            self.generation += 1;
        }
        self.series
            .expire(oldest * (BUCKET_NS / STEP_NS), |p| pool.give(p.hist));
        self.earliest_ns = self.earliest_ns.max(oldest * BUCKET_NS);
    }

    /// Prepares a ring's caches for a batch (after
    /// [`advance`](Self::advance)).
    pub fn begin_batch(&self, cache: &mut StatsCache) {
        if cache.generation != self.generation {
            for ids in cache
                .tables
                .iter_mut()
                .chain([&mut cache.custom])
                .chain(cache.durations.iter_mut())
            {
                ids.clear();
            }
            cache.generation = self.generation;
        }
    }

    /// Records one event of `ctx`'s ring with wall-clock time `wall_ns`.
    pub fn record(
        &mut self,
        cache: &mut StatsCache,
        ctx: &mut RingContext,
        names: &Names,
        wall_ns: u64,
        e: &Event,
    ) {
        let error = e.is_error();
        let t = &mut self.totals;
        t.events += 1;
        t.errors += u64::from(error);
        match e.kind {
            Kind::Req => t.requests += 1,
            Kind::Fn => t.functions += 1,
            Kind::Db => t.queries += 1,
            Kind::Custom => t.custom += 1,
        }
        if e.kind == Kind::Req {
            self.totals.request_errors += u64::from(error);
        }
        if let Some(table) = Table::of(e.kind) {
            let durations = &mut self.durations;
            let d = cache.durations[table as usize]
                .entry(ctx, names, e.name, |name| durations.lookup(table, name));
            let bytes = if e.kind == Kind::Req {
                [e.value, e.value2]
            } else {
                [0; 2]
            };
            self.durations.record(table, d, e.dur_ns, error, bytes);
        }
        if error {
            self.record_error(ctx, names, wall_ns, e);
        }
        let Some(minute) = self.minutes.of(wall_ns) else {
            self.totals.outside_window += 1;
            return;
        };
        let wall_ns = wall_ns.min((self.minutes.now() + 1) * BUCKET_NS - 1);
        self.earliest_ns = self.earliest_ns.min(wall_ns);
        let point = self
            .series
            .get_or_insert_with(wall_ns / STEP_NS, || StepPoint {
                hist: self.pool.take(),
                requests: 0,
                errors: 0,
                events: 0,
            });
        point.events += 1;
        if e.kind == Kind::Req {
            point.requests += 1;
            point.errors += u64::from(error);
            point.hist.saturating_record(e.dur_ns);
        }
        let pool = &mut self.pool;
        match Table::of(e.kind) {
            None => {
                let custom = &mut self.custom;
                let index = cache.custom.entry(ctx, names, e.name, |name| {
                    custom.lookup(name, |_| CustomWindow::default())
                });
                self.folded += u64::from(custom.is_other(index));
                custom
                    .get_mut(index)
                    .record(minute, f64::from_bits(e.value));
            }
            Some(t) => {
                let table = &mut self.tables[t as usize];
                let index = cache.tables[t as usize].entry(ctx, names, e.name, |name| {
                    table.lookup(name, |_| LatencyWindow::new(pool))
                });
                self.folded += u64::from(table.is_other(index));
                // REQ events carry bytes in and out; DB rows are no bytes.
                let bytes = if t == Table::Routes {
                    let bytes = [e.value, e.value2];
                    self.requests.record(pool, minute, e.dur_ns, error, bytes);
                    bytes
                } else {
                    [0; 2]
                };
                table
                    .get_mut(index)
                    .record(pool, minute, e.dur_ns, error, bytes);
            }
        }
    }

    #[cold]
    fn record_error(&mut self, ctx: &mut RingContext, names: &Names, wall_ns: u64, e: &Event) {
        if self.config.max_errors == 0 {
            return;
        }
        if self.errors.len() >= self.config.max_errors {
            self.errors.pop_front();
            self.errors_evicted += 1;
        }
        let exception_type = (e.exception_type != StrId::NONE)
            .then(|| ctx.name_text(names, e.exception_type).to_string());
        self.errors.push_back(ErrorRecord {
            ts_ns: wall_ns,
            kind: e.kind.as_str(),
            route: ctx.name_text(names, e.name).to_string(),
            method: (e.kind == Kind::Req && e.method != Method::None).then(|| e.method.as_str()),
            status: e.status,
            exception_type,
            exception_message: ctx.message(names, e.message).map(|m| m.to_string()),
            stack: ctx.stack(names, e.message).map(|m| m.to_string()),
            trace_id: (e.trace_id != 0).then(|| json::hex128(e.trace_id)),
            pid: e.pid,
            service: ctx.service(e.writer).map(|s| s.to_string()),
        });
    }

    /// The statistics as of `now_ns`.
    pub fn snapshot(&mut self, now_ns: u64) -> StatsSnapshot {
        self.advance(now_ns);
        let window_start = self.minutes.oldest() * BUCKET_NS;
        let since = window_start.max(self.earliest_ns.min(self.started_ns));
        let covered_secs = (now_ns.saturating_sub(since) as f64 / 1e9).max(1.0);
        let table = |t: &NameTable<LatencyWindow>, requests: bool| {
            let mut rows: Vec<Latency> = t
                .iter()
                .map(|(name, e)| e.summary(name, covered_secs, requests))
                .collect();
            rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
            rows
        };
        let mut custom: Vec<CustomMetric> = self
            .custom
            .iter()
            .map(|(name, e)| e.summary(name))
            .collect();
        custom.sort_by(|a, b| a.name.cmp(&b.name));
        let [routes, functions, queries] = &self.tables;
        StatsSnapshot {
            window_secs: u64::from(self.config.window_minutes) * 60,
            covered_secs,
            requests: self.requests.summary("all requests", covered_secs, true),
            routes: table(routes, true),
            functions: table(functions, false),
            queries: table(queries, false),
            custom,
            errors: self.errors.iter().rev().cloned().collect(),
            // The exception table is the window's (super::exceptions).
            exceptions: Default::default(),
            series: self.series(now_ns),
            step_secs: STEP_NS / 1_000_000_000,
            latency_histogram: self.latency_histogram(),
            totals: self.totals.clone(),
            request_durations: self.durations.snapshot(),
        }
    }

    /// The time series, oldest first; the current step's rates are over the
    /// part of it that has passed.
    fn series(&self, now_ns: u64) -> Vec<SeriesPoint> {
        let now_step = now_ns / STEP_NS;
        self.series
            .iter()
            .map(|(step, p)| {
                let span = if step == now_step {
                    (now_ns - step * STEP_NS) as f64 / 1e9
                } else {
                    STEP_NS as f64 / 1e9
                }
                .max(1e-3);
                let mut q = [0u64; 3];
                if p.requests > 0 {
                    for (slot, v) in q
                        .iter_mut()
                        .zip(p.hist.value_at_quantiles([0.5, 0.95, 0.99]))
                    {
                        *slot = v;
                    }
                }
                SeriesPoint {
                    ts_ns: step * STEP_NS,
                    rps: p.requests as f64 / span,
                    events_per_sec: p.events as f64 / span,
                    p50_ns: q[0],
                    p95_ns: q[1],
                    p99_ns: q[2],
                    error_rate: ratio(p.errors, p.requests),
                }
            })
            .collect()
    }

    fn latency_histogram(&self) -> Vec<HistogramBin> {
        let hist = &self.requests.window;
        if hist.is_empty() {
            return Vec::new();
        }
        let first = self.config.precision_ns.next_power_of_two();
        hist.iter_log(first, 2.0)
            .map(|v| HistogramBin {
                le_ns: v.value_iterated_to(),
                count: v.count_since_last_iteration(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
