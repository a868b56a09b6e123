//! Merged worker views: the processes of one service (the same service name
//! in the writer table, from `PROFILIS_SERVICE` or `RingOptions::service`),
//! in one ring or several, give one live view per route, function and query,
//! with the per-worker breakdown behind it.
//!
//! Every (service, name, worker) keeps, for each minute of the statistics
//! window, the hdrhistogram buckets its durations fell into (sparse: only
//! buckets that were hit, keyed by the bucket's lowest value), with count,
//! errors and sum. At snapshot time each worker's buckets become one
//! hdrhistogram with the statistics' bounds and precision, and the merged
//! view is the exact sum of the workers' histograms (`Histogram::add`), so a
//! merged percentile is the percentile of the union of every worker's events
//! (within the histogram precision), never an average of percentiles, and the
//! per-worker counts add up to the merged count.
//!
//! Bounds: at most [`MAX_SERVICES`] services (later ones share `(other)`),
//! `max_workers` workers per service (later ones share the worker with pid 0,
//! `(other workers)`), `max_names` names per kind and service (later ones
//! share `(other)`). Memory is proportional to the buckets actually hit: 16
//! bytes or so per (service, name, worker, minute, bucket), at most a few
//! thousand buckets per minute at the default precision and typically tens to
//! a few hundred. Workers, names and services with nothing left in the window
//! are evicted when the minute rolls.

use crate::ring_context::RingContext;
use crate::stats::{BUCKET_NS, MAX_TRACKED_NS, OTHER, SIGNIFICANT_DIGITS};
use crate::views::{Latency, MergedLatency, ServiceView, WorkerLatency, WorkerView};
use hdrhistogram::Histogram;
use profilis::layout::NO_WRITER;
use profilis::{Event, Kind, Names, StrId};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Services tracked; further service names share one `(other)` service.
pub const MAX_SERVICES: usize = 16;
/// pid of the worker that collects the workers past `max_workers`.
pub const OTHER_WORKERS_PID: u32 = 0;

type Hist = Histogram<u32>;

/// Settings of the worker views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Window length in minutes (as the statistics).
    pub window_minutes: u32,
    /// Workers per service with their own breakdown.
    pub max_workers: usize,
    /// Names per kind and service.
    pub max_names: usize,
    /// Lowest discernible duration, ns (as the statistics).
    pub precision_ns: u64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            window_minutes: 15,
            max_workers: 32,
            max_names: 1000,
            precision_ns: 1000,
        }
    }
}

/// Where a duration falls in the histograms' buckets, computed as
/// hdrhistogram does: bucket `group` (a power of two: 0 holds the values up
/// to `2^(sub + unit)`, each next one twice as many) and a slot in it.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// log2 of the lowest discernible value, rounded down.
    unit: u32,
    /// log2 of the sub-buckets per bucket.
    sub: u32,
}

impl Layout {
    fn of(h: &Hist) -> Layout {
        let unit = 63 - h.low().max(1).leading_zeros();
        let largest = 2 * 10u64.pow(u32::from(h.sigfig()));
        Layout {
            unit,
            sub: 64 - (largest - 1).leading_zeros(),
        }
    }

    #[inline]
    fn locate(self, value: u64) -> (usize, usize) {
        let mask = ((1u64 << self.sub) - 1) << self.unit;
        let group = (64 - self.sub - self.unit) - (value | mask).leading_zeros();
        let sub_bucket = (value >> (group + self.unit)) as usize;
        if group == 0 {
            (0, sub_bucket)
        } else {
            (group as usize, sub_bucket - (1 << (self.sub - 1)))
        }
    }

    fn value(self, group: usize, slot: usize) -> u64 {
        let sub_bucket = if group == 0 {
            slot
        } else {
            slot + (1 << (self.sub - 1))
        };
        (sub_bucket as u64) << (group as u32 + self.unit)
    }

    fn slots(self, group: usize) -> usize {
        if group == 0 {
            1 << self.sub
        } else {
            1 << (self.sub - 1)
        }
    }
}

/// The counts of one minute: an array per bucket that was hit (most
/// durations of a name span a few powers of two).
type Buckets = Vec<Option<Box<[u32]>>>;

struct Minute {
    minute: u64,
    buckets: Buckets,
    count: u64,
    errors: u64,
    sum_ns: u64,
}

#[derive(Default)]
struct Cell {
    minutes: VecDeque<Minute>,
}

impl Cell {
    #[inline]
    fn record(&mut self, layout: Layout, minute: u64, dur_ns: u64, error: bool) {
        let at = match self.minutes.back() {
            Some(m) if m.minute == minute => self.minutes.len() - 1,
            _ => self.insert(minute),
        };
        let m = &mut self.minutes[at];
        let (group, slot) = layout.locate(dur_ns.min(MAX_TRACKED_NS));
        if m.buckets.len() <= group {
            m.buckets.resize(group + 1, None);
        }
        let counts = m.buckets[group]
            .get_or_insert_with(|| vec![0u32; layout.slots(group)].into_boxed_slice());
        counts[slot] = counts[slot].saturating_add(1);
        m.count += 1;
        m.errors += u64::from(error);
        m.sum_ns = m.sum_ns.saturating_add(dur_ns);
    }

    #[cold]
    fn insert(&mut self, minute: u64) -> usize {
        let at = self.minutes.partition_point(|m| m.minute < minute);
        if at == self.minutes.len() || self.minutes[at].minute != minute {
            self.minutes.insert(
                at,
                Minute {
                    minute,
                    buckets: Vec::new(),
                    count: 0,
                    errors: 0,
                    sum_ns: 0,
                },
            );
        }
        at
    }

    fn expire(&mut self, oldest_minute: u64) {
        while self
            .minutes
            .front()
            .is_some_and(|m| m.minute < oldest_minute)
        {
            self.minutes.pop_front();
        }
    }
}

struct NameEntry {
    name: Arc<str>,
    /// By worker index.
    cells: Vec<Option<Cell>>,
}

#[derive(Default)]
struct NameTable {
    entries: Vec<NameEntry>,
    index: HashMap<Arc<str>, u32>,
}

impl NameTable {
    fn lookup(&mut self, name: &Arc<str>, max: usize) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let key: Arc<str> = if self.index.len() < max.max(1) {
            name.clone()
        } else {
            Arc::from(OTHER)
        };
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.entries.len() as u32;
        self.entries.push(NameEntry {
            name: key.clone(),
            cells: Vec::new(),
        });
        self.index.insert(key, i);
        i
    }
}

struct Worker {
    pid: u32,
    start_time: u64,
    rings: Vec<u64>,
    last_event_ns: u64,
}

struct Service {
    name: Option<Arc<str>>,
    workers: Vec<Worker>,
    worker_index: HashMap<(u32, u64), u16>,
    tables: [NameTable; 3],
}

impl Service {
    fn worker(&mut self, pid: u32, start_time: u64, ring_id: u64, max_workers: usize) -> u16 {
        let key = if self.worker_index.len() < max_workers.max(1)
            || self.worker_index.contains_key(&(pid, start_time))
        {
            (pid, start_time)
        } else {
            (OTHER_WORKERS_PID, 0)
        };
        let i = *self.worker_index.entry(key).or_insert_with(|| {
            self.workers.push(Worker {
                pid: key.0,
                start_time: key.1,
                rings: Vec::new(),
                last_event_ns: 0,
            });
            (self.workers.len() - 1) as u16
        });
        let w = &mut self.workers[i as usize];
        if !w.rings.contains(&ring_id) && w.rings.len() < 64 {
            w.rings.push(ring_id);
        }
        i
    }
}

const UNKNOWN: u32 = u32::MAX;
const MAX_CACHED_ID: usize = 1 << 20;

#[derive(Clone)]
struct WriterCache {
    service: u32,
    worker: u16,
    ids: [Vec<u32>; 3],
}

#[derive(Default)]
struct RingCache {
    generation: u64,
    writers: Vec<Option<WriterCache>>,
    unregistered: HashMap<u32, WriterCache>,
}

/// Lookup caches of one ring, held for the length of a batch.
pub struct ServiceBatch {
    cache: RingCache,
}

/// The per-service views.
pub struct ServiceStats {
    config: ServiceConfig,
    template: Hist,
    layout: Layout,
    services: Vec<Service>,
    index: HashMap<Option<Arc<str>>, u32>,
    caches: HashMap<u32, RingCache>,
    generation: u64,
    now_minute: u64,
}

fn table_of(kind: Kind) -> Option<usize> {
    match kind {
        Kind::Req => Some(0),
        Kind::Fn => Some(1),
        Kind::Db => Some(2),
        Kind::Custom => None,
    }
}

impl ServiceStats {
    /// Empty views; `now_ns` is the wall clock now.
    pub fn new(config: ServiceConfig, now_ns: u64) -> ServiceStats {
        let precision = config.precision_ns.clamp(1, MAX_TRACKED_NS / 4);
        let mut template = Hist::new_with_bounds(precision, MAX_TRACKED_NS, SIGNIFICANT_DIGITS)
            .expect("bounds are valid: 1 <= precision <= max/4, 2 digits");
        template.auto(false);
        ServiceStats {
            config: ServiceConfig {
                window_minutes: config.window_minutes.max(1),
                precision_ns: precision,
                ..config
            },
            layout: Layout::of(&template),
            template,
            services: Vec::new(),
            index: HashMap::new(),
            caches: HashMap::new(),
            generation: 0,
            now_minute: now_ns / BUCKET_NS,
        }
    }

    fn oldest_minute(&self) -> u64 {
        (self.now_minute + 1).saturating_sub(u64::from(self.config.window_minutes))
    }

    /// Moves the window to `now_ns`, evicting what left it.
    pub fn advance(&mut self, now_ns: u64) {
        let minute = now_ns / BUCKET_NS;
        if minute <= self.now_minute {
            return;
        }
        self.now_minute = minute;
        let oldest = self.oldest_minute();
        for s in &mut self.services {
            let mut live = vec![false; s.workers.len()];
            for t in &mut s.tables {
                for e in &mut t.entries {
                    for (w, cell) in e.cells.iter_mut().enumerate() {
                        if let Some(c) = cell {
                            c.expire(oldest);
                            if c.minutes.is_empty() {
                                *cell = None;
                            } else {
                                live[w] = true;
                            }
                        }
                    }
                }
                t.entries.retain(|e| e.cells.iter().any(Option::is_some));
            }
            // Renumber the workers still in the window.
            let mut map = vec![u16::MAX; s.workers.len()];
            let mut kept = Vec::new();
            for (i, w) in std::mem::take(&mut s.workers).into_iter().enumerate() {
                if live[i] {
                    map[i] = kept.len() as u16;
                    kept.push(w);
                }
            }
            s.workers = kept;
            s.worker_index = s
                .workers
                .iter()
                .enumerate()
                .map(|(i, w)| ((w.pid, w.start_time), i as u16))
                .collect();
            for t in &mut s.tables {
                for e in &mut t.entries {
                    let mut cells: Vec<Option<Cell>> = Vec::new();
                    for (old, cell) in std::mem::take(&mut e.cells).into_iter().enumerate() {
                        if let Some(c) = cell {
                            let new = map[old] as usize;
                            if cells.len() <= new {
                                cells.resize_with(new + 1, || None);
                            }
                            cells[new] = Some(c);
                        }
                    }
                    e.cells = cells;
                }
                t.index = t
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (e.name.clone(), i as u32))
                    .collect();
            }
        }
        self.services.retain(|s| !s.workers.is_empty());
        self.index = self
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i as u32))
            .collect();
        self.generation += 1;
    }

    fn service_index(&mut self, name: Option<&Arc<str>>) -> u32 {
        if let Some(&i) = self.index.get(&name.cloned()) {
            return i;
        }
        let key = if self.index.len() < MAX_SERVICES {
            name.cloned()
        } else {
            Some(Arc::from(OTHER))
        };
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.services.len() as u32;
        self.services.push(Service {
            name: key.clone(),
            workers: Vec::new(),
            worker_index: HashMap::new(),
            tables: Default::default(),
        });
        self.index.insert(key, i);
        i
    }

    fn writer_cache(&mut self, ctx: &RingContext, e: &Event) -> WriterCache {
        let service = self.service_index(ctx.service(e.writer));
        let worker = self.services[service as usize].worker(
            e.pid,
            ctx.start_time(e.writer),
            ctx.ring_id,
            self.config.max_workers,
        );
        WriterCache {
            service,
            worker,
            ids: Default::default(),
        }
    }

    /// Takes out the lookup caches of `ctx`'s ring for a batch: pass them to
    /// [`record`](Self::record) for each event, then give them back with
    /// [`end_batch`](Self::end_batch).
    pub fn begin_batch(&mut self, ctx: &RingContext) -> ServiceBatch {
        let mut cache = self.caches.remove(&ctx.slot).unwrap_or_default();
        if cache.generation != self.generation {
            cache = RingCache {
                generation: self.generation,
                ..RingCache::default()
            };
        }
        ServiceBatch { cache }
    }

    /// Gives back the caches taken by [`begin_batch`](Self::begin_batch).
    pub fn end_batch(&mut self, ctx: &RingContext, batch: ServiceBatch) {
        self.caches.insert(ctx.slot, batch.cache);
    }

    /// Records one REQ, FN or DB event of `ctx`'s ring (others are ignored)
    /// with its wall-clock time.
    #[inline]
    pub fn record(
        &mut self,
        batch: &mut ServiceBatch,
        ctx: &mut RingContext,
        names: &Names,
        wall_ns: u64,
        e: &Event,
    ) {
        let batch = &mut batch.cache;
        let Some(t) = table_of(e.kind) else { return };
        let minute = (wall_ns / BUCKET_NS).min(self.now_minute);
        if minute < self.oldest_minute() {
            return;
        }
        let wc = if e.writer == NO_WRITER || !ctx.writer_known(e.writer) {
            batch
                .unregistered
                .entry(e.pid)
                .or_insert_with(|| self.writer_cache(ctx, e))
        } else {
            let i = e.writer as usize;
            if batch.writers.len() <= i {
                batch.writers.resize(i + 1, None);
            }
            if batch.writers[i].is_none() {
                batch.writers[i] = Some(self.writer_cache(ctx, e));
            }
            batch.writers[i].as_mut().expect("filled above")
        };
        let service = &mut self.services[wc.service as usize];
        let id = e.name.0 as usize;
        let entry = match wc.ids[t].get(id) {
            Some(&x) if x != UNKNOWN => x,
            _ => {
                let name = ctx.name_text(names, e.name);
                let x = service.tables[t].lookup(&name, self.config.max_names);
                if id < MAX_CACHED_ID && e.name != StrId::NONE && &*name != "<incomplete>" {
                    if wc.ids[t].len() <= id {
                        wc.ids[t].resize(id + 1, UNKNOWN);
                    }
                    wc.ids[t][id] = x;
                }
                x
            }
        };
        let worker = wc.worker as usize;
        service.workers[worker].last_event_ns = service.workers[worker].last_event_ns.max(wall_ns);
        let entry = &mut service.tables[t].entries[entry as usize];
        if entry.cells.len() <= worker {
            entry.cells.resize_with(worker + 1, || None);
        }
        entry.cells[worker]
            .get_or_insert_with(Cell::default)
            .record(self.layout, minute, e.dur_ns, e.is_error());
    }

    /// Records the events of one batch of `ctx`'s ring, each with its
    /// wall-clock time.
    pub fn record_batch<'a>(
        &mut self,
        ctx: &mut RingContext,
        names: &Names,
        events: impl Iterator<Item = (u64, &'a Event)>,
    ) {
        let mut batch = self.begin_batch(ctx);
        for (wall_ns, e) in events {
            self.record(&mut batch, ctx, names, wall_ns, e);
        }
        self.end_batch(ctx, batch);
    }

    /// Forgets the caches of a ring that was detached.
    pub fn forget_ring(&mut self, slot: u32) {
        self.caches.remove(&slot);
    }

    /// The views as of `now_ns`; rates over `covered_secs`. `ring_path`
    /// names a ring id.
    pub fn snapshot(
        &mut self,
        now_ns: u64,
        covered_secs: f64,
        ring_path: &dyn Fn(u64) -> String,
    ) -> Vec<ServiceView> {
        self.advance(now_ns);
        let mut scratch = self.template.clone();
        let mut merged = self.template.clone();
        let mut out = Vec::new();
        for s in &self.services {
            let mut views: [Vec<MergedLatency>; 3] = Default::default();
            let mut worker_events = vec![0u64; s.workers.len()];
            for (t, table) in s.tables.iter().enumerate() {
                for e in &table.entries {
                    merged.reset();
                    let mut all = Totals::default();
                    let mut workers = Vec::new();
                    for (w, cell) in e.cells.iter().enumerate() {
                        let Some(cell) = cell else { continue };
                        scratch.reset();
                        let mut totals = Totals::default();
                        for m in &cell.minutes {
                            for (group, counts) in m.buckets.iter().enumerate() {
                                let Some(counts) = counts else { continue };
                                for (slot, &n) in counts.iter().enumerate() {
                                    if n > 0 {
                                        let value = self.layout.value(group, slot);
                                        scratch.saturating_record_n(value, n);
                                    }
                                }
                            }
                            totals.count += m.count;
                            totals.errors += m.errors;
                            totals.sum_ns += u128::from(m.sum_ns);
                        }
                        if totals.count == 0 {
                            continue;
                        }
                        // Same bounds and precision: the sum is exact.
                        let _ = merged.add(&scratch);
                        all.count += totals.count;
                        all.errors += totals.errors;
                        all.sum_ns += totals.sum_ns;
                        worker_events[w] += totals.count;
                        let worker = &s.workers[w];
                        workers.push(WorkerLatency::new(
                            worker.pid,
                            summary(&e.name, &scratch, totals, covered_secs),
                        ));
                    }
                    if all.count == 0 {
                        continue;
                    }
                    workers.sort_by(|a, b| b.count.cmp(&a.count).then(a.pid.cmp(&b.pid)));
                    views[t].push(MergedLatency {
                        latency: summary(&e.name, &merged, all, covered_secs),
                        workers,
                    });
                }
                views[t].sort_by(|a, b| {
                    b.latency
                        .count
                        .cmp(&a.latency.count)
                        .then_with(|| a.latency.name.cmp(&b.latency.name))
                });
            }
            let mut workers: Vec<WorkerView> = s
                .workers
                .iter()
                .zip(&worker_events)
                .map(|(w, &events)| WorkerView {
                    pid: w.pid,
                    start_time: w.start_time,
                    rings: w.rings.iter().map(|&r| ring_path(r)).collect(),
                    events,
                    last_event_ns: w.last_event_ns,
                })
                .collect();
            workers.sort_by_key(|w| (w.pid == OTHER_WORKERS_PID, w.pid));
            let [routes, functions, queries] = views;
            out.push(ServiceView {
                service: s.name.as_deref().map(str::to_string),
                workers,
                routes,
                functions,
                queries,
            });
        }
        out.sort_by(|a, b| a.service.cmp(&b.service));
        out
    }
}

#[derive(Default, Clone, Copy)]
struct Totals {
    count: u64,
    errors: u64,
    sum_ns: u128,
}

fn summary(name: &str, hist: &Hist, t: Totals, covered_secs: f64) -> Latency {
    let mut q = [0u64; 5];
    if t.count > 0 {
        for (slot, v) in q
            .iter_mut()
            .zip(hist.value_at_quantiles([0.5, 0.95, 0.99, 0.999, 1.0]))
        {
            *slot = v;
        }
    }
    Latency {
        name: name.to_string(),
        count: t.count,
        errors: t.errors,
        error_rate: if t.count == 0 {
            0.0
        } else {
            t.errors as f64 / t.count as f64
        },
        rps: t.count as f64 / covered_secs.max(1e-9),
        mean_ns: if t.count > 0 {
            (t.sum_ns / u128::from(t.count)) as u64
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{StatsConfig, StatsStore};
    use profilis::{Consumer, Ring, RingOptions};

    const T0: u64 = 1_800_000_000_000_000_000;

    fn exact(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    #[test]
    fn merged_view_is_the_union_and_workers_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.ring");
        let ring = Ring::create_or_open(
            &path,
            RingOptions::default().capacity(1 << 16).service("svc"),
        )
        .unwrap();
        let mut rng = 0x1234_5678_9abc_def1u64;
        let mut all = Vec::new();
        for _ in 0..20_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let v = 1_000 + rng % 50_000_000;
            all.push(v);
            ring.emit_req("/r", 200, v);
        }
        let mut consumer = Consumer::attach(&path).unwrap();
        let info = *consumer.info();
        let mut ctx = RingContext::new(0, &path, info.ring_id, 4096);
        ctx.refresh_writers(&consumer.writers(), None, std::time::Instant::now());
        let mut services = ServiceStats::new(ServiceConfig::default(), T0);
        let mut stats = StatsStore::new(StatsConfig::default(), T0);
        stats.advance(T0);
        let batch = consumer.read(1 << 16);
        stats.begin_batch(&mut ctx.stats_cache);
        for e in batch.events {
            stats.record(&mut ctx, batch.names, T0 + 1, e);
        }
        services.record_batch(
            &mut ctx,
            batch.names,
            batch.events.iter().map(|e| (T0 + 1, e)),
        );
        let views = services.snapshot(T0 + 2, 60.0, &|_| "w.ring".into());
        let global = stats.snapshot(T0 + 2);
        assert_eq!(views.len(), 1);
        let v = &views[0];
        assert_eq!(v.service.as_deref(), Some("svc"));
        assert_eq!(v.workers.len(), 1);
        let r = &v.routes[0];
        all.sort_unstable();
        let want = exact(&all, 0.99);
        assert!(r.latency.p99_ns.abs_diff(want) <= want / 100 + 1000);
        assert_eq!(r.latency.p99_ns, global.routes[0].p99_ns, "same buckets");
        assert_eq!(r.latency.count, 20_000);
        assert_eq!(r.workers.iter().map(|w| w.count).sum::<u64>(), 20_000);
        // The minute leaves the window: everything is evicted.
        let views = services.snapshot(T0 + 16 * BUCKET_NS, 60.0, &|_| String::new());
        assert!(views.is_empty());
    }

    #[test]
    fn bucket_locations_are_hdrhistograms() {
        for precision in [1, 1000, 4096, 60_000_000_000] {
            let mut h =
                Hist::new_with_bounds(precision, MAX_TRACKED_NS, SIGNIFICANT_DIGITS).unwrap();
            h.auto(false);
            let layout = Layout::of(&h);
            let mut rng = 0x2545_F491_4F6C_DD1Du64;
            for i in 0..200_000u64 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let v = match i % 3 {
                    0 => rng % 5_000,
                    1 => rng % 100_000_000,
                    _ => rng % MAX_TRACKED_NS,
                };
                let (group, slot) = layout.locate(v);
                assert!(slot < layout.slots(group), "{v}");
                assert_eq!(
                    layout.value(group, slot),
                    h.lowest_equivalent(v),
                    "{v} at {precision}"
                );
            }
        }
    }

    #[test]
    fn workers_past_the_cap_share_one_entry() {
        let mut s = Service {
            name: None,
            workers: Vec::new(),
            worker_index: HashMap::new(),
            tables: Default::default(),
        };
        let a = s.worker(10, 1, 7, 2);
        let b = s.worker(11, 1, 7, 2);
        let c = s.worker(12, 1, 8, 2);
        let d = s.worker(13, 1, 8, 2);
        assert_eq!((a, b), (0, 1));
        assert_eq!(c, d, "the third and fourth worker share");
        assert_eq!(s.workers[c as usize].pid, OTHER_WORKERS_PID);
        assert_eq!(s.workers[c as usize].rings, vec![8]);
        assert_eq!(s.worker(10, 1, 8, 2), 0, "known workers keep their own");
        assert_eq!(s.workers[0].rings, vec![7, 8]);
    }
}
