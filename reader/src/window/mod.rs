//! The rolling-window engine, and the statistics built on it.
//!
//! Time is cut into one-minute buckets by each event's wall-clock time
//! (aligned to the Unix epoch). A window of `window_minutes` holds the
//! current minute and the `window_minutes - 1` before it, so it always
//! covers between `window_minutes - 1` and `window_minutes` minutes of
//! events, and a bucket leaves the window as a whole when its minute is
//! that old. What every table of the engine shares:
//! - [`Minutes`]: which minute is now and which is the oldest kept;
//! - [`Periods`]: values per minute (or 10-second step), oldest first;
//! - [`Bounded`]: a table of names, workers or services with a maximum,
//!   past which new keys share one overflow entry ([`OTHER`]);
//! - [`Hist`] and [`histogram`]: the one histogram shape, from
//!   `precision_ns` to [`MAX_TRACKED_NS`] with [`SIGNIFICANT_DIGITS`];
//! - [`Counts`] and [`latency`]: count, errors and sum, and the table row
//!   they make with a histogram;
//! - [`Table`]: the latency table an event kind feeds;
//! - [`IdCache`]: string id to entry, per ring.
//!
//! Built on them: [`stats`] (per route, function and query, all requests,
//! custom metrics, the latest errors and a time series), [`exceptions`]
//! (error events by exception type), [`services`]
//! (merged views of the worker processes of a service), [`durations`]
//! (cumulative request histograms for Prometheus) and [`loss_series`]
//! (losses per step). [`Window`] holds them all, takes each batch and
//! gives their part of the snapshot.

pub mod durations;
pub mod exceptions;
pub mod loss_series;
pub mod services;
pub mod stats;

mod bounded;
mod custom;
mod periods;

pub use bounded::Bounded;
pub use periods::Periods;

use crate::ingest::loss::LossMarker;
use crate::ingest::{Batch, RingContext};
use crate::views::{Latency, LossPoint, ServiceView, StatsSnapshot};
use exceptions::ExceptionStore;
use hdrhistogram::Histogram;
use loss_series::LossSeries;
use profilis::{Event, Kind, Names, StrId};
use services::{ServiceCache, ServiceConfig, ServiceStats};
use stats::{StatsCache, StatsConfig, StatsLimitUse, StatsStore};
use std::collections::HashMap;
use std::sync::Arc;

/// Width of a window bucket.
pub const BUCKET_NS: u64 = 60_000_000_000;
/// Width of a step of the time series.
pub const STEP_NS: u64 = 10_000_000_000;
/// Longest duration the histograms tell apart (longer ones count as this).
pub const MAX_TRACKED_NS: u64 = 3_600_000_000_000;
/// Significant decimal digits kept by the histograms.
pub const SIGNIFICANT_DIGITS: u8 = 2;
/// Name of the entry that collects the names past a table's maximum.
pub const OTHER: &str = "(other)";

/// The histogram of every window table.
pub type Hist = Histogram<u32>;

/// `precision_ns` as the histograms take it: at least 1 ns, at most a
/// quarter of [`MAX_TRACKED_NS`].
pub fn clamp_precision(precision_ns: u64) -> u64 {
    precision_ns.clamp(1, MAX_TRACKED_NS / 4)
}

/// An empty histogram from `precision_ns` (the lowest discernible value:
/// durations closer than that are not told apart) to one hour (longer
/// durations count as one hour) with two significant digits, so every
/// percentile is within 1% (plus `precision_ns`) of the exact value of the
/// same data. Fixed size: it never grows.
pub fn histogram(precision_ns: u64) -> Hist {
    let mut h = Hist::new_with_bounds(
        clamp_precision(precision_ns),
        MAX_TRACKED_NS,
        SIGNIFICANT_DIGITS,
    )
    .expect("bounds are valid: 1 <= precision <= max/4, 2 digits");
    h.auto(false);
    h
}

/// The latency tables of the window. CUSTOM events are samples, not
/// latencies: they feed the custom metrics instead ([`Table::of`] is
/// `None` for them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// REQ events, by route.
    Routes = 0,
    /// FN events, by function.
    Functions = 1,
    /// DB events, by redacted query.
    Queries = 2,
}

impl Table {
    /// The table an event of `kind` counts in.
    #[inline]
    pub fn of(kind: Kind) -> Option<Table> {
        match kind {
            Kind::Req => Some(Table::Routes),
            Kind::Fn => Some(Table::Functions),
            Kind::Db => Some(Table::Queries),
            Kind::Custom => None,
        }
    }
}

/// Which minute is now, and which is the oldest in the window.
#[derive(Clone, Copy, Debug)]
pub struct Minutes {
    window: u64,
    now: u64,
}

impl Minutes {
    /// A window of `window_minutes` (at least 1) whose current minute holds
    /// `now_ns`.
    pub fn new(window_minutes: u32, now_ns: u64) -> Minutes {
        Minutes {
            window: u64::from(window_minutes.max(1)),
            now: now_ns / BUCKET_NS,
        }
    }

    /// The current minute.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The oldest minute in the window.
    pub fn oldest(&self) -> u64 {
        (self.now + 1).saturating_sub(self.window)
    }

    /// Moves the current minute to the one of `now_ns`; whether it moved
    /// (the window never goes back).
    pub fn advance(&mut self, now_ns: u64) -> bool {
        let minute = now_ns / BUCKET_NS;
        if minute <= self.now {
            return false;
        }
        self.now = minute;
        true
    }

    /// The minute an event at `wall_ns` counts in: its own, the current one
    /// for an event from the future, `None` before the window.
    #[inline]
    pub fn of(&self, wall_ns: u64) -> Option<u64> {
        let minute = (wall_ns / BUCKET_NS).min(self.now);
        (minute >= self.oldest()).then_some(minute)
    }
}

/// Events, errors among them, and the sum of their durations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Events.
    pub count: u64,
    /// Of which errors.
    pub errors: u64,
    /// Sum of their durations, ns.
    pub sum_ns: u128,
}

impl Counts {
    /// Counts one event.
    #[inline]
    pub fn record(&mut self, dur_ns: u64, error: bool) {
        self.count += 1;
        self.errors += u64::from(error);
        self.sum_ns += u128::from(dur_ns);
    }

    /// Adds `other`.
    pub fn add(&mut self, other: &Counts) {
        self.count += other.count;
        self.errors += other.errors;
        self.sum_ns += other.sum_ns;
    }
}

/// `part / whole`, 0 when `whole` is.
pub fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The table row of `name`: `counts`, the percentiles of `hist` (the same
/// events) and the rate over `covered_secs`.
pub fn latency(name: &str, hist: &Hist, counts: Counts, covered_secs: f64) -> Latency {
    let mut q = [0u64; 5];
    if counts.count > 0 {
        for (slot, v) in q
            .iter_mut()
            .zip(hist.value_at_quantiles([0.5, 0.95, 0.99, 0.999, 1.0]))
        {
            *slot = v;
        }
    }
    Latency {
        name: name.to_string(),
        count: counts.count,
        errors: counts.errors,
        error_rate: ratio(counts.errors, counts.count),
        rps: counts.count as f64 / covered_secs.max(1e-9),
        mean_ns: if counts.count > 0 {
            (counts.sum_ns / u128::from(counts.count)) as u64
        } else {
            0
        },
        p50_ns: q[0],
        p95_ns: q[1],
        p99_ns: q[2],
        p999_ns: q[3],
        max_ns: q[4],
        bytes_in: None,
        bytes_out: None,
    }
}

/// Entry in the table of a ring's string id, remembered: string ids are
/// small indexes into the ring's table and never change meaning once
/// complete, so the lookups of a busy name cost a vector index.
#[derive(Clone, Debug, Default)]
pub struct IdCache {
    ids: Vec<u32>,
}

/// Not cached (yet).
const UNKNOWN: u32 = u32::MAX;
/// Ids cached; larger ones (the overflow id) go the slow way.
const MAX_CACHED_ID: usize = 1 << 20;

impl IdCache {
    /// The entry of name `id` of `ctx`'s ring, from `lookup` (given the
    /// name's text) unless cached.
    #[inline]
    pub fn entry(
        &mut self,
        ctx: &mut RingContext,
        names: &Names,
        id: StrId,
        lookup: impl FnOnce(&Arc<str>) -> u32,
    ) -> u32 {
        if let Some(&entry) = self.ids.get(id.0 as usize).filter(|&&e| e != UNKNOWN) {
            return entry;
        }
        let name = ctx.name_text(names, id);
        let entry = lookup(&name);
        self.remember(id, &name, entry);
        entry
    }

    #[cold]
    fn remember(&mut self, id: StrId, name: &str, entry: u32) {
        let i = id.0 as usize;
        // A name still being interned is looked up again next time.
        if i < MAX_CACHED_ID && RingContext::is_final(name) {
            if i >= self.ids.len() {
                self.ids.resize(i + 1, UNKNOWN);
            }
            self.ids[i] = entry;
        }
    }

    /// Forgets every entry (after the table renumbered them).
    pub fn clear(&mut self) {
        self.ids.clear();
    }
}

/// The window's part of a snapshot.
pub struct WindowSnapshot {
    /// Statistics.
    pub stats: StatsSnapshot,
    /// Merged views per service.
    pub services: Vec<ServiceView>,
    /// Losses over the window, per step.
    pub loss_series: Vec<LossPoint>,
}

/// Per-ring lookup caches of the tables, held for the length of a batch.
#[derive(Default)]
struct RingCache {
    stats: StatsCache,
    services: ServiceCache,
}

/// Every table of the window: the statistics, the worker views and the
/// loss series, fed batch by batch.
pub struct Window {
    stats: StatsStore,
    exceptions: ExceptionStore,
    services: ServiceStats,
    losses: LossSeries,
    caches: HashMap<u32, RingCache>,
}

impl Window {
    /// Empty tables; `max_workers` workers per service get a breakdown of
    /// their own. `now_ns` is the wall clock now.
    pub fn new(config: StatsConfig, max_workers: usize, now_ns: u64) -> Window {
        let services = ServiceConfig {
            window_minutes: config.window_minutes,
            max_workers,
            max_names: config.max_routes,
            precision_ns: config.precision_ns,
        };
        Window {
            stats: StatsStore::new(config, now_ns),
            exceptions: ExceptionStore::new(config.max_routes, config.window_minutes, now_ns),
            services: ServiceStats::new(services, now_ns),
            losses: LossSeries::default(),
            caches: HashMap::new(),
        }
    }

    /// Moves the window to `now_ns` (cheap unless the minute changed).
    pub fn advance(&mut self, now_ns: u64) {
        self.stats.advance(now_ns);
        self.exceptions.advance(now_ns);
        self.services.advance(now_ns);
    }

    /// Records a batch of `ctx`'s ring and the LOSS markers found with it.
    pub fn record(&mut self, ctx: &mut RingContext, batch: &Batch<'_>, markers: &[LossMarker]) {
        self.record_events(
            ctx,
            batch.names(),
            batch.events(),
            |e| batch.wall_ns(e),
            markers,
        );
    }

    /// Records `events` of `ctx`'s ring, each at its wall-clock time
    /// `wall_ns`, and the LOSS markers found with them.
    pub fn record_events(
        &mut self,
        ctx: &mut RingContext,
        names: &Names,
        events: &[Event],
        wall_ns: impl Fn(&Event) -> u64,
        markers: &[LossMarker],
    ) {
        self.losses.record(markers);
        if events.is_empty() {
            return;
        }
        let mut cache = self.caches.remove(&ctx.slot).unwrap_or_default();
        self.stats.begin_batch(&mut cache.stats);
        self.services.begin_batch(&mut cache.services);
        for e in events {
            let wall = wall_ns(e);
            self.stats.record(&mut cache.stats, ctx, names, wall, e);
            if e.is_error() {
                self.exceptions.record(ctx, names, wall, e);
            }
            self.services
                .record(&mut cache.services, ctx, names, wall, e);
        }
        self.caches.insert(ctx.slot, cache);
    }

    /// Forgets the caches of a ring that was detached.
    pub fn forget_ring(&mut self, slot: u32) {
        self.caches.remove(&slot);
    }

    /// The settings of the statistics.
    pub fn config(&self) -> StatsConfig {
        self.stats.config()
    }

    /// How the name and error bounds are used (the exception types are a
    /// table of names like the others).
    pub fn limit_use(&self) -> StatsLimitUse {
        let mut used = self.stats.limit_use();
        used.names = used.names.max(self.exceptions.named() as u64);
        used.folded += self.exceptions.folded();
        used
    }

    /// The tables as of `now_ns`; `ring_path` names a ring id.
    pub fn snapshot(&mut self, now_ns: u64, ring_path: &dyn Fn(u64) -> String) -> WindowSnapshot {
        let mut stats = self.stats.snapshot(now_ns);
        stats.exceptions = self.exceptions.snapshot(now_ns);
        let services = self
            .services
            .snapshot(now_ns, stats.covered_secs, ring_path);
        let window_start = (now_ns / BUCKET_NS + 1)
            .saturating_sub(u64::from(self.stats.config().window_minutes))
            * BUCKET_NS;
        WindowSnapshot {
            loss_series: self.losses.points(window_start),
            stats,
            services,
        }
    }
}
