//! StatsStore: rolling-window statistics of the drained events.
//!
//! Time is cut into one-minute buckets by each event's wall-clock timestamp
//! (aligned to the Unix epoch). The window holds the current minute and the
//! `window_minutes - 1` before it, so it always covers between
//! `window_minutes - 1` and `window_minutes` minutes of events, and a bucket
//! leaves the window as a whole when its minute is that old.
//!
//! Every route (REQ), function (FN) and query (DB), and all requests
//! together, keeps one hdrhistogram per minute bucket plus a running window
//! histogram (the sum of its buckets: recorded into with each event,
//! subtracted from when a bucket expires), so percentiles need no merging.
//! Names past `max_routes` per table share one `(other)` entry, and entries
//! with nothing left in the window are evicted when the minute rolls, so
//! memory is bounded by `max_routes × (window_minutes + 1)` histograms per
//! table (about 14 KB each at the default precision) however many names the
//! applications invent.
//!
//! Histogram precision: values are tracked from `precision_ns` (the lowest
//! discernible value: durations closer than that are not told apart) to one
//! hour (longer durations count as one hour) with two significant digits, so
//! every reported percentile is within 1% (plus `precision_ns`) of the exact
//! value of the same data.
//!
//! Requests are also counted into fixed-bucket histograms that only grow
//! ([`crate::durations`]), for Prometheus.
//!
//! A separate series of 10-second points (requests/s, events/s,
//! p50/p95/p99, error rate) over the same window feeds the dashboard charts.

use crate::durations::DurationStore;
use crate::ring_context::RingContext;
use crate::support::json;
use crate::views::{
    CustomMetric, ErrorRecord, HistogramBin, Latency, SeriesPoint, StatsSnapshot, Totals,
};
use hdrhistogram::Histogram;
use profilis::{Event, Kind, Method, Names, StrId};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Width of a window bucket.
pub const BUCKET_NS: u64 = 60_000_000_000;
/// Width of a series point.
pub const STEP_NS: u64 = 10_000_000_000;
/// Longest duration the histograms tell apart (longer ones count as this).
pub const MAX_TRACKED_NS: u64 = 3_600_000_000_000;
/// Significant decimal digits kept by the histograms.
pub const SIGNIFICANT_DIGITS: u8 = 2;
/// Name of the entry that collects names past `max_routes`.
pub const OTHER: &str = "(other)";

type Hist = Histogram<u32>;

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

/// Per-ring lookup caches: string id to table entry, per kind. Kept in the
/// ring's [`RingContext`]; invalidated when the store evicts entries.
#[derive(Default)]
pub struct RingCache {
    generation: u64,
    /// Per kind (index `kind - 1`), then the request-duration histogram of
    /// each route (index 4; never evicted, cleared along with the rest).
    ids: [Vec<u32>; 5],
}

const DURATION_IDS: usize = 4;

const UNKNOWN: u32 = u32::MAX;
/// Ids cached per kind; larger ones (the overflow id) go the slow way.
const MAX_CACHED_ID: usize = 1 << 20;

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
    minute: u64,
    hist: Hist,
    count: u64,
    errors: u64,
    sum_ns: u128,
}

/// Latency statistics of one name over the window.
struct LatencyEntry {
    name: Arc<str>,
    window: Hist,
    buckets: VecDeque<MinuteBucket>,
}

impl LatencyEntry {
    fn new(name: Arc<str>, pool: &mut Pool) -> LatencyEntry {
        LatencyEntry {
            name,
            window: pool.take(),
            buckets: VecDeque::new(),
        }
    }

    #[inline]
    fn record(&mut self, pool: &mut Pool, minute: u64, dur_ns: u64, error: bool) {
        let at = match self.buckets.back() {
            Some(b) if b.minute == minute => self.buckets.len() - 1,
            _ => self.insert_bucket(pool, minute),
        };
        let b = &mut self.buckets[at];
        b.hist.saturating_record(dur_ns);
        b.count += 1;
        b.errors += u64::from(error);
        b.sum_ns += u128::from(dur_ns);
        self.window.saturating_record(dur_ns);
    }

    #[cold]
    fn insert_bucket(&mut self, pool: &mut Pool, minute: u64) -> usize {
        // Buckets stay sorted; out-of-order minutes come from several rings
        // or threads and are rare.
        let at = self.buckets.partition_point(|b| b.minute < minute);
        if at < self.buckets.len() && self.buckets[at].minute == minute {
            return at;
        }
        self.buckets.insert(
            at,
            MinuteBucket {
                minute,
                hist: pool.take(),
                count: 0,
                errors: 0,
                sum_ns: 0,
            },
        );
        at
    }

    fn expire(&mut self, pool: &mut Pool, oldest_minute: u64) {
        let mut rebuild = false;
        while self
            .buckets
            .front()
            .is_some_and(|b| b.minute < oldest_minute)
        {
            let b = self.buckets.pop_front().expect("checked");
            rebuild |= self.window.subtract(&b.hist).is_err();
            pool.give(b.hist);
        }
        if rebuild {
            self.window.reset();
            for b in &self.buckets {
                let _ = self.window.add(&b.hist);
            }
        }
    }

    fn summary(&self, covered_secs: f64) -> Latency {
        let (mut count, mut errors, mut sum) = (0u64, 0u64, 0u128);
        for b in &self.buckets {
            count += b.count;
            errors += b.errors;
            sum += b.sum_ns;
        }
        let mut q = [0u64; 5];
        if count > 0 {
            for (slot, v) in q.iter_mut().zip(
                self.window
                    .value_at_quantiles([0.5, 0.95, 0.99, 0.999, 1.0]),
            ) {
                *slot = v;
            }
        }
        Latency {
            name: self.name.to_string(),
            count,
            errors,
            error_rate: ratio(errors, count),
            rps: count as f64 / covered_secs.max(1e-9),
            mean_ns: if count > 0 {
                (sum / u128::from(count)) as u64
            } else {
                0
            },
            p50_ns: q[0],
            p95_ns: q[1],
            p99_ns: q[2],
            p999_ns: q[3],
            max_ns: q[4],
        }
    }
}

#[derive(Clone, Copy)]
struct CustomBucket {
    minute: u64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

struct CustomEntry {
    name: Arc<str>,
    buckets: VecDeque<CustomBucket>,
    last: f64,
}

impl CustomEntry {
    fn record(&mut self, minute: u64, value: f64) {
        self.last = value;
        if !value.is_finite() {
            return; // shown as `last`, kept out of sums
        }
        let at = match self.buckets.back() {
            Some(b) if b.minute == minute => self.buckets.len() - 1,
            _ => {
                let at = self.buckets.partition_point(|b| b.minute < minute);
                if at == self.buckets.len() || self.buckets[at].minute != minute {
                    self.buckets.insert(
                        at,
                        CustomBucket {
                            minute,
                            count: 0,
                            sum: 0.0,
                            min: f64::INFINITY,
                            max: f64::NEG_INFINITY,
                        },
                    );
                }
                at
            }
        };
        let b = &mut self.buckets[at];
        b.count += 1;
        b.sum += value;
        b.min = b.min.min(value);
        b.max = b.max.max(value);
    }

    fn summary(&self) -> CustomMetric {
        let (mut count, mut sum, mut min, mut max) = (0u64, 0.0, f64::INFINITY, f64::NEG_INFINITY);
        for b in &self.buckets {
            count += b.count;
            sum += b.sum;
            min = min.min(b.min);
            max = max.max(b.max);
        }
        CustomMetric {
            name: self.name.to_string(),
            count,
            avg: if count > 0 { sum / count as f64 } else { 0.0 },
            min: if count > 0 { min } else { 0.0 },
            max: if count > 0 { max } else { 0.0 },
            last: if self.last.is_finite() {
                self.last
            } else {
                0.0
            },
        }
    }
}

/// A capped map of names to entries with an `(other)` overflow entry.
struct Table<E> {
    entries: Vec<E>,
    index: HashMap<Arc<str>, u32>,
    max: usize,
    /// Index of the `(other)` entry, while there is one.
    other: Option<u32>,
}

impl<E> Table<E> {
    fn new(max: usize) -> Self {
        Table {
            entries: Vec::new(),
            index: HashMap::new(),
            max: max.max(1),
            other: None,
        }
    }

    /// Distinct names with an entry of their own.
    fn named(&self) -> usize {
        self.entries.len() - usize::from(self.other.is_some())
    }

    fn lookup(&mut self, name: &Arc<str>, make: impl FnOnce(Arc<str>) -> E) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let key: Arc<str> = if self.index.len() < self.max {
            name.clone()
        } else {
            Arc::from(OTHER)
        };
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.entries.len() as u32;
        if &*key == OTHER {
            self.other = Some(i);
        }
        self.entries.push(make(key.clone()));
        self.index.insert(key, i);
        i
    }

    /// Drops entries `keep` rejects; returns whether any went.
    fn retain(
        &mut self,
        mut keep: impl FnMut(&mut E) -> bool,
        name: impl Fn(&E) -> Arc<str>,
    ) -> bool {
        let before = self.entries.len();
        self.entries.retain_mut(|e| keep(e));
        if self.entries.len() == before {
            return false;
        }
        self.index = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (name(e), i as u32))
            .collect();
        self.other = self.index.get(OTHER).copied();
        true
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
    step: u64,
    hist: Hist,
    requests: u64,
    errors: u64,
    events: u64,
}

/// Rolling statistics over the drained events.
pub struct StatsStore {
    config: StatsConfig,
    pool: Pool,
    requests: LatencyEntry,
    tables: [Table<LatencyEntry>; 3],
    custom: Table<CustomEntry>,
    errors: VecDeque<ErrorRecord>,
    series: VecDeque<StepPoint>,
    totals: Totals,
    durations: DurationStore,
    folded: u64,
    errors_evicted: u64,
    generation: u64,
    now_minute: u64,
    started_ns: u64,
    earliest_ns: u64,
}

fn table_of(kind: Kind) -> usize {
    match kind {
        Kind::Req => 0,
        Kind::Fn => 1,
        Kind::Db | Kind::Custom => 2,
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl StatsStore {
    /// An empty store; `now_ns` is the wall clock now.
    pub fn new(config: StatsConfig, now_ns: u64) -> StatsStore {
        let config = StatsConfig {
            window_minutes: config.window_minutes.max(1),
            precision_ns: config.precision_ns.clamp(1, MAX_TRACKED_NS / 4),
            ..config
        };
        let mut template =
            Hist::new_with_bounds(config.precision_ns, MAX_TRACKED_NS, SIGNIFICANT_DIGITS)
                .expect("bounds are valid: 1 <= precision <= max/4, 2 digits");
        template.auto(false);
        let mut pool = Pool {
            template,
            free: Vec::new(),
        };
        let requests = LatencyEntry::new(Arc::from("all requests"), &mut pool);
        StatsStore {
            requests,
            tables: [
                Table::new(config.max_routes),
                Table::new(config.max_routes),
                Table::new(config.max_routes),
            ],
            custom: Table::new(config.max_routes),
            pool,
            errors: VecDeque::new(),
            series: VecDeque::new(),
            totals: Totals::default(),
            durations: DurationStore::new(config.max_routes),
            folded: 0,
            errors_evicted: 0,
            generation: 0,
            now_minute: now_ns / BUCKET_NS,
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
            .map(Table::named)
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

    fn oldest_minute(&self) -> u64 {
        self.now_minute
            .saturating_sub(u64::from(self.config.window_minutes) - 1)
    }

    /// Moves the window to `now_ns`: buckets older than the window leave it,
    /// entries with nothing left are evicted. Cheap unless the minute
    /// changed; call it before each batch.
    pub fn advance(&mut self, now_ns: u64) {
        let minute = now_ns / BUCKET_NS;
        if minute <= self.now_minute {
            return;
        }
        self.now_minute = minute;
        let oldest = self.oldest_minute();
        let pool = &mut self.pool;
        self.requests.expire(pool, oldest);
        let mut evicted = false;
        for table in &mut self.tables {
            evicted |= table.retain(
                |e| {
                    e.expire(pool, oldest);
                    if e.buckets.is_empty() {
                        let window = std::mem::replace(&mut e.window, pool.template.clone());
                        pool.give(window);
                        false
                    } else {
                        true
                    }
                },
                |e| e.name.clone(),
            );
        }
        evicted |= self.custom.retain(
            |e| {
                while e.buckets.front().is_some_and(|b| b.minute < oldest) {
                    e.buckets.pop_front();
                }
                !e.buckets.is_empty()
            },
            |e| e.name.clone(),
        );
        if evicted {
            self.generation += 1;
        }
        let oldest_step = oldest * (BUCKET_NS / STEP_NS);
        while self.series.front().is_some_and(|p| p.step < oldest_step) {
            let p = self.series.pop_front().expect("checked");
            self.pool.give(p.hist);
        }
        self.earliest_ns = self.earliest_ns.max(oldest * BUCKET_NS);
    }

    /// Prepares `ctx`'s caches for a batch (after [`advance`](Self::advance)).
    pub fn begin_batch(&self, cache: &mut RingCache) {
        if cache.generation != self.generation {
            for ids in &mut cache.ids {
                ids.clear();
            }
            cache.generation = self.generation;
        }
    }

    fn entry_index(&mut self, ctx: &mut RingContext, names: &Names, kind: Kind, id: StrId) -> u32 {
        let k = kind as usize - 1;
        let i = id.0 as usize;
        if let Some(&e) = ctx.stats_cache.ids[k].get(i) {
            if e != UNKNOWN {
                return e;
            }
        }
        let name = ctx.name_text(names, id);
        let pool = &mut self.pool;
        let e = if kind == Kind::Custom {
            self.custom.lookup(&name, |name| CustomEntry {
                name,
                buckets: VecDeque::new(),
                last: 0.0,
            })
        } else {
            self.tables[table_of(kind)].lookup(&name, |name| LatencyEntry::new(name, pool))
        };
        if i < MAX_CACHED_ID && &*name != "<incomplete>" {
            let ids = &mut ctx.stats_cache.ids[k];
            if i >= ids.len() {
                ids.resize(i + 1, UNKNOWN);
            }
            ids[i] = e;
        }
        e
    }

    /// Records one event with wall-clock time `wall_ns`.
    pub fn record(&mut self, ctx: &mut RingContext, names: &Names, wall_ns: u64, e: &Event) {
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
            let d = self.duration_index(ctx, names, e.name);
            self.durations.record(d, e.dur_ns, error);
        }
        if error {
            self.record_error(ctx, names, wall_ns, e);
        }
        let minute = (wall_ns / BUCKET_NS).min(self.now_minute);
        if minute < self.oldest_minute() {
            self.totals.outside_window += 1;
            return;
        }
        let wall_ns = wall_ns.min((self.now_minute + 1) * BUCKET_NS - 1);
        self.earliest_ns = self.earliest_ns.min(wall_ns);
        let index = self.entry_index(ctx, names, e.kind, e.name) as usize;
        let table = match e.kind {
            Kind::Custom => &self.custom.other,
            kind => &self.tables[table_of(kind)].other,
        };
        self.folded += u64::from(*table == Some(index as u32));
        let step = wall_ns / STEP_NS;
        let point = self.step_point(step);
        point.events += 1;
        if e.kind == Kind::Req {
            point.requests += 1;
            point.errors += u64::from(error);
            point.hist.saturating_record(e.dur_ns);
        }
        let pool = &mut self.pool;
        match e.kind {
            Kind::Custom => self.custom.entries[index].record(minute, f64::from_bits(e.value)),
            Kind::Req => {
                self.requests.record(pool, minute, e.dur_ns, error);
                self.tables[0].entries[index].record(pool, minute, e.dur_ns, error);
            }
            kind => {
                self.tables[table_of(kind)].entries[index].record(pool, minute, e.dur_ns, error)
            }
        }
    }

    fn duration_index(&mut self, ctx: &mut RingContext, names: &Names, id: StrId) -> u32 {
        let i = id.0 as usize;
        if let Some(&d) = ctx.stats_cache.ids[DURATION_IDS].get(i) {
            if d != UNKNOWN {
                return d;
            }
        }
        let name = ctx.name_text(names, id);
        let d = self.durations.lookup(&name);
        if i < MAX_CACHED_ID && &*name != "<incomplete>" {
            let ids = &mut ctx.stats_cache.ids[DURATION_IDS];
            if i >= ids.len() {
                ids.resize(i + 1, UNKNOWN);
            }
            ids[i] = d;
        }
        d
    }

    #[inline]
    fn step_point(&mut self, step: u64) -> &mut StepPoint {
        let at = match self.series.back() {
            Some(p) if p.step == step => self.series.len() - 1,
            _ => {
                let at = self.series.partition_point(|p| p.step < step);
                if at == self.series.len() || self.series[at].step != step {
                    let hist = self.pool.take();
                    self.series.insert(
                        at,
                        StepPoint {
                            step,
                            hist,
                            requests: 0,
                            errors: 0,
                            events: 0,
                        },
                    );
                }
                at
            }
        };
        &mut self.series[at]
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
            trace_id: (e.trace_id != 0).then(|| json::hex128(e.trace_id)),
            pid: e.pid,
            service: ctx.service(e.writer).map(|s| s.to_string()),
        });
    }

    /// The statistics as of `now_ns`.
    pub fn snapshot(&mut self, now_ns: u64) -> StatsSnapshot {
        self.advance(now_ns);
        let window_start = self.oldest_minute() * BUCKET_NS;
        let since = window_start.max(self.earliest_ns.min(self.started_ns));
        let covered_secs = (now_ns.saturating_sub(since) as f64 / 1e9).max(1.0);
        let by_count = |mut v: Vec<Latency>| {
            v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
            v
        };
        let table = |t: &Table<LatencyEntry>| {
            by_count(t.entries.iter().map(|e| e.summary(covered_secs)).collect())
        };
        let mut custom: Vec<CustomMetric> =
            self.custom.entries.iter().map(|e| e.summary()).collect();
        custom.sort_by(|a, b| a.name.cmp(&b.name));
        let now_step = now_ns / STEP_NS;
        let series = self
            .series
            .iter()
            .map(|p| {
                let span = if p.step == now_step {
                    (now_ns - p.step * STEP_NS) as f64 / 1e9
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
                    ts_ns: p.step * STEP_NS,
                    rps: p.requests as f64 / span,
                    events_per_sec: p.events as f64 / span,
                    p50_ns: q[0],
                    p95_ns: q[1],
                    p99_ns: q[2],
                    error_rate: ratio(p.errors, p.requests),
                }
            })
            .collect();
        StatsSnapshot {
            window_secs: u64::from(self.config.window_minutes) * 60,
            covered_secs,
            requests: self.requests.summary(covered_secs),
            routes: table(&self.tables[0]),
            functions: table(&self.tables[1]),
            queries: table(&self.tables[2]),
            custom,
            errors: self.errors.iter().rev().cloned().collect(),
            series,
            step_secs: STEP_NS / 1_000_000_000,
            latency_histogram: self.latency_histogram(),
            totals: self.totals.clone(),
            request_durations: self.durations.snapshot(),
        }
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
mod tests {
    use super::*;

    fn exact_quantile(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    use profilis::{Consumer, Fields, Ring, RingOptions};

    const T0: u64 = 1_800_000_000_000_000_000; // a minute boundary

    /// Writes events with `emit`, then feeds them to `store` as if they
    /// happened at `wall_ns`.
    fn feed(store: &mut StatsStore, wall_ns: u64, emit: impl FnOnce(&Ring)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.ring");
        let ring = Ring::create_or_open(&path, RingOptions::default().capacity(4096)).unwrap();
        emit(&ring);
        let mut consumer = Consumer::attach(&path).unwrap();
        let mut ctx = RingContext::new(0, &path, consumer.info().ring_id, 4096);
        store.advance(wall_ns);
        let batch = consumer.read(4096);
        store.begin_batch(&mut ctx.stats_cache);
        for e in batch.events {
            store.record(&mut ctx, batch.names, wall_ns, e);
        }
    }

    #[test]
    fn route_cap_sends_extra_names_to_other() {
        let config = StatsConfig {
            max_routes: 3,
            ..StatsConfig::default()
        };
        let mut store = StatsStore::new(config, T0);
        feed(&mut store, T0 + 1, |ring| {
            for i in 0..10u64 {
                for _ in 0..=i {
                    ring.emit_req(format!("/r{i}"), 200, 1_000_000);
                }
            }
        });
        let s = store.snapshot(T0 + 2_000_000_000);
        let names: Vec<_> = s.routes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(s.routes.len(), 4, "{names:?}");
        let other = s.routes.iter().find(|r| r.name == OTHER).unwrap();
        assert_eq!(other.count, (4..=10).sum::<u64>());
        assert_eq!(s.routes.iter().map(|r| r.count).sum::<u64>(), 55);
        assert_eq!(s.requests.count, 55);
        let used = store.limit_use();
        assert_eq!(used.names, 3, "three routes have entries of their own");
        assert_eq!(used.folded, (4..=10).sum::<u64>(), "events under (other)");
    }

    #[test]
    fn errors_rates_and_custom_metrics() {
        let config = StatsConfig {
            max_errors: 3,
            ..StatsConfig::default()
        };
        let mut store = StatsStore::new(config, T0);
        feed(&mut store, T0 + 1, |ring| {
            let boom = ring.intern("Boom");
            for i in 0..10u64 {
                let fields = Fields {
                    status: if i < 4 { 500 } else { 200 },
                    dur_ns: 2_000_000,
                    exception_type: if i < 4 { boom } else { StrId::NONE },
                    message: if i < 4 {
                        ring.message(&format!("failure {i}"))
                    } else {
                        profilis::MsgRef(0)
                    },
                    ..Fields::default()
                };
                ring.record(Kind::Req, ring.intern("/x"), &fields);
            }
            for v in [1.0, 2.0, 6.0] {
                ring.emit_custom("depth", v);
            }
            ring.emit_fn("work", 5_000, true);
        });
        let s = store.snapshot(T0 + 10_000_000_000);
        let x = &s.routes[0];
        assert_eq!((x.count, x.errors), (10, 4));
        assert!((x.error_rate - 0.4).abs() < 1e-9);
        assert!(
            (x.rps - 1.0).abs() < 0.01,
            "10 requests over 10 s: {}",
            x.rps
        );
        assert_eq!(s.errors.len(), 3, "only the latest max_errors kept");
        let used = store.limit_use();
        assert_eq!((used.errors_kept, used.errors_evicted), (3, 2));
        assert_eq!(used.folded, 0);
        assert_eq!(s.errors[0].route, "work", "newest first");
        assert_eq!(s.errors[1].exception_type.as_deref(), Some("Boom"));
        assert_eq!(s.errors[1].exception_message.as_deref(), Some("failure 3"));
        assert_eq!(s.errors[1].status, 500);
        let depth = &s.custom[0];
        assert_eq!(
            (depth.count, depth.min, depth.max, depth.avg),
            (3, 1.0, 6.0, 3.0)
        );
        assert_eq!(s.functions[0].errors, 1);
        assert_eq!(s.totals.errors, 5);
        assert_eq!(s.totals.request_errors, 4);
        let d = &s.request_durations;
        assert_eq!((d.all.count, d.all.errors), (10, 4));
        assert_eq!(d.routes.len(), 1, "FN events have no request histogram");
        assert_eq!(d.routes[0].name, "/x");
        assert_eq!(d.routes[0].cumulative[4], 10, "2 ms <= 2.5 ms");
        assert_eq!(d.routes[0].cumulative[3], 0);
        assert!(!s.series.is_empty() && s.series.iter().map(|p| p.rps).sum::<f64>() > 0.0);
        assert!(!s.latency_histogram.is_empty());
    }

    #[test]
    fn window_rolls_whole_minutes_and_evicts_idle_names() {
        let config = StatsConfig {
            window_minutes: 2,
            ..StatsConfig::default()
        };
        let mut store = StatsStore::new(config, T0);
        feed(&mut store, T0 + 5_000_000_000, |ring| {
            ring.emit_req("/old", 200, 1_000);
        });
        feed(&mut store, T0 + BUCKET_NS + 5_000_000_000, |ring| {
            ring.emit_req("/new", 200, 1_000);
        });
        let s = store.snapshot(T0 + BUCKET_NS + 6_000_000_000);
        assert_eq!(s.requests.count, 2, "both minutes in a 2-minute window");
        // The first minute leaves the window as a whole.
        let s = store.snapshot(T0 + 2 * BUCKET_NS);
        assert_eq!(s.requests.count, 1);
        assert_eq!(s.routes.len(), 1);
        assert_eq!(s.routes[0].name, "/new");
        let s = store.snapshot(T0 + 3 * BUCKET_NS);
        assert_eq!(s.requests.count, 0);
        assert!(s.routes.is_empty(), "idle names evicted");
        assert_eq!(s.totals.requests, 2, "totals since start stay");
        // Events older than the window count only in the totals.
        feed(&mut store, T0, |ring| {
            ring.emit_req("/late", 200, 1_000);
        });
        let s = store.snapshot(T0 + 3 * BUCKET_NS);
        assert_eq!((s.requests.count, s.totals.outside_window), (0, 1));
    }

    #[test]
    fn window_percentiles_match_an_exact_sort_within_precision() {
        let config = StatsConfig::default();
        let now = 1_800_000_000_000_000_000;
        let mut pool = Pool {
            template: {
                let mut h =
                    Hist::new_with_bounds(config.precision_ns, MAX_TRACKED_NS, SIGNIFICANT_DIGITS)
                        .unwrap();
                h.auto(false);
                h
            },
            free: Vec::new(),
        };
        let mut entry = LatencyEntry::new(Arc::from("r"), &mut pool);
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut values = Vec::new();
        for i in 0..200_000u64 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            // Log-uniform from 1 µs to ~8 s: many histogram magnitudes.
            let u = (rng % 1_000_000) as f64 / 1e6;
            let v = (1000.0 * (u * 23.0).exp2()) as u64;
            values.push(v);
            entry.record(&mut pool, now / BUCKET_NS + i % 5, v, false);
        }
        values.sort_unstable();
        let s = entry.summary(60.0);
        assert_eq!(s.count, values.len() as u64);
        for (q, got) in [
            (0.5, s.p50_ns),
            (0.95, s.p95_ns),
            (0.99, s.p99_ns),
            (0.999, s.p999_ns),
            (1.0, s.max_ns),
        ] {
            let want = exact_quantile(&values, q);
            let tolerance = want / 100 + config.precision_ns;
            assert!(
                got.abs_diff(want) <= tolerance,
                "q{q}: histogram {got}, exact {want}"
            );
        }
        let mean = values.iter().map(|&v| v as u128).sum::<u128>() / values.len() as u128;
        assert_eq!(s.mean_ns as u128, mean);
    }
}
