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

use super::{
    histogram, latency, Bounded, Counts, Hist, IdCache, Minutes, Periods, Table, MAX_TRACKED_NS,
    OTHER,
};
use crate::ingest::RingContext;
use crate::views::{MergedLatency, ServiceView, WorkerLatency, WorkerView};
use profilis::layout::NO_WRITER;
use profilis::{Event, Names};
use std::collections::HashMap;
use std::sync::Arc;

/// Services tracked; further service names share one `(other)` service.
pub const MAX_SERVICES: usize = 16;
/// pid of the worker that collects the workers past `max_workers`.
pub const OTHER_WORKERS_PID: u32 = 0;

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
#[derive(Default)]
struct Minute {
    buckets: Vec<Option<Box<[u32]>>>,
    counts: Counts,
}

/// One worker's durations of one name, per minute.
#[derive(Default)]
struct Cell {
    minutes: Periods<Minute>,
}

impl Cell {
    #[inline]
    fn record(&mut self, layout: Layout, minute: u64, dur_ns: u64, error: bool) {
        let m = self.minutes.get_or_insert_with(minute, Minute::default);
        let (group, slot) = layout.locate(dur_ns.min(MAX_TRACKED_NS));
        if m.buckets.len() <= group {
            m.buckets.resize(group + 1, None);
        }
        let counts = m.buckets[group]
            .get_or_insert_with(|| vec![0u32; layout.slots(group)].into_boxed_slice());
        counts[slot] = counts[slot].saturating_add(1);
        m.counts.record(dur_ns, error);
    }

    /// The worker's histogram of the name into `hist` (reset first), and
    /// its counts.
    fn histogram(&self, layout: Layout, hist: &mut Hist) -> Counts {
        hist.reset();
        let mut counts = Counts::default();
        for (_, m) in self.minutes.iter() {
            for (group, slots) in m.buckets.iter().enumerate() {
                let Some(slots) = slots else { continue };
                for (slot, &n) in slots.iter().enumerate() {
                    if n > 0 {
                        hist.saturating_record_n(layout.value(group, slot), n);
                    }
                }
            }
            counts.add(&m.counts);
        }
        counts
    }
}

/// One name of a service: a cell per worker (by worker index).
#[derive(Default)]
struct NameEntry {
    cells: Vec<Option<Cell>>,
}

/// A worker process (keyed by pid and start time).
struct Worker {
    rings: Vec<u64>,
    last_event_ns: u64,
}

struct Service {
    workers: Bounded<(u32, u64), Worker>,
    tables: [Bounded<Arc<str>, NameEntry>; 3],
}

impl Service {
    fn new(config: &ServiceConfig) -> Service {
        let table = || Bounded::new(config.max_names, Arc::from(OTHER));
        Service {
            workers: Bounded::new(config.max_workers, (OTHER_WORKERS_PID, 0)),
            tables: [table(), table(), table()],
        }
    }

    /// The worker `(pid, start_time)` writing into ring `ring_id`.
    fn worker(&mut self, pid: u32, start_time: u64, ring_id: u64) -> u16 {
        let i = self.workers.lookup(&(pid, start_time), |_| Worker {
            rings: Vec::new(),
            last_event_ns: 0,
        });
        let w = self.workers.get_mut(i);
        if !w.rings.contains(&ring_id) && w.rings.len() < 64 {
            w.rings.push(ring_id);
        }
        i as u16
    }

    /// Expires what left the window; whether anything is left.
    fn expire(&mut self, oldest: u64) -> bool {
        let mut live = vec![false; self.workers.len()];
        for t in &mut self.tables {
            t.retain(
                |_, e| {
                    for (w, cell) in e.cells.iter_mut().enumerate() {
                        if let Some(c) = cell {
                            c.minutes.expire(oldest, drop);
                            if c.minutes.is_empty() {
                                *cell = None;
                            } else {
                                live[w] = true;
                            }
                        }
                    }
                    e.cells.iter().any(Option::is_some)
                },
                drop,
            );
        }
        // Renumber the workers still in the window.
        let mut w = 0;
        let renumbered = self.workers.retain(
            |_, _| {
                w += 1;
                live[w - 1]
            },
            drop,
        );
        if let Some(map) = renumbered {
            for t in &mut self.tables {
                for e in t.entries_mut() {
                    let mut cells: Vec<Option<Cell>> = Vec::new();
                    for (old, cell) in std::mem::take(&mut e.cells).into_iter().enumerate() {
                        let (Some(c), Some(new)) = (cell, map[old]) else {
                            continue;
                        };
                        let new = new as usize;
                        if cells.len() <= new {
                            cells.resize_with(new + 1, || None);
                        }
                        cells[new] = Some(c);
                    }
                    e.cells = cells;
                }
            }
        }
        !self.workers.is_empty()
    }
}

/// Where the events of one writer go.
#[derive(Clone)]
struct WriterCache {
    service: u32,
    worker: u16,
    ids: [IdCache; 3],
}

/// Per-ring lookup caches of the views: void when the views renumber.
#[derive(Default)]
pub struct ServiceCache {
    generation: u64,
    writers: Vec<Option<WriterCache>>,
    unregistered: HashMap<u32, WriterCache>,
}

/// The per-service views.
pub struct ServiceStats {
    config: ServiceConfig,
    template: Hist,
    layout: Layout,
    services: Bounded<Option<Arc<str>>, Service>,
    minutes: Minutes,
    generation: u64,
}

impl ServiceStats {
    /// Empty views; `now_ns` is the wall clock now.
    pub fn new(config: ServiceConfig, now_ns: u64) -> ServiceStats {
        let template = histogram(config.precision_ns);
        ServiceStats {
            config: ServiceConfig {
                window_minutes: config.window_minutes.max(1),
                precision_ns: super::clamp_precision(config.precision_ns),
                ..config
            },
            layout: Layout::of(&template),
            template,
            services: Bounded::new(MAX_SERVICES, Some(Arc::from(OTHER))),
            minutes: Minutes::new(config.window_minutes, now_ns),
            generation: 0,
        }
    }

    /// Moves the window to `now_ns`, evicting what left it.
    pub fn advance(&mut self, now_ns: u64) {
        if !self.minutes.advance(now_ns) {
            return;
        }
        let oldest = self.minutes.oldest();
        self.services.retain(|_, s| s.expire(oldest), drop);
        self.generation += 1;
    }

    fn writer_cache(&mut self, ctx: &RingContext, e: &Event) -> WriterCache {
        let config = &self.config;
        let service = self
            .services
            .lookup(&ctx.service(e.writer).cloned(), |_| Service::new(config));
        let worker =
            self.services
                .get_mut(service)
                .worker(e.pid, ctx.start_time(e.writer), ctx.ring_id);
        WriterCache {
            service,
            worker,
            ids: Default::default(),
        }
    }

    /// Prepares a ring's caches for a batch (after
    /// [`advance`](Self::advance)).
    pub fn begin_batch(&self, cache: &mut ServiceCache) {
        if cache.generation != self.generation {
            *cache = ServiceCache {
                generation: self.generation,
                ..ServiceCache::default()
            };
        }
    }

    /// Records one REQ, FN or DB event of `ctx`'s ring (others are ignored)
    /// with its wall-clock time.
    #[inline]
    pub fn record(
        &mut self,
        cache: &mut ServiceCache,
        ctx: &mut RingContext,
        names: &Names,
        wall_ns: u64,
        e: &Event,
    ) {
        let Some(t) = Table::of(e.kind) else { return };
        let Some(minute) = self.minutes.of(wall_ns) else {
            return;
        };
        let wc = if e.writer == NO_WRITER || !ctx.writer_known(e.writer) {
            cache
                .unregistered
                .entry(e.pid)
                .or_insert_with(|| self.writer_cache(ctx, e))
        } else {
            let i = e.writer as usize;
            if cache.writers.len() <= i {
                cache.writers.resize(i + 1, None);
            }
            if cache.writers[i].is_none() {
                cache.writers[i] = Some(self.writer_cache(ctx, e));
            }
            cache.writers[i].as_mut().expect("filled above")
        };
        let service = self.services.get_mut(wc.service);
        let table = &mut service.tables[t as usize];
        let entry = wc.ids[t as usize].entry(ctx, names, e.name, |name| {
            table.lookup(name, |_| NameEntry::default())
        });
        let worker = wc.worker as usize;
        let w = service.workers.get_mut(wc.worker as u32);
        w.last_event_ns = w.last_event_ns.max(wall_ns);
        let entry = service.tables[t as usize].get_mut(entry);
        if entry.cells.len() <= worker {
            entry.cells.resize_with(worker + 1, || None);
        }
        entry.cells[worker]
            .get_or_insert_with(Cell::default)
            .record(self.layout, minute, e.dur_ns, e.is_error());
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
        for (name, s) in self.services.iter() {
            let mut views: [Vec<MergedLatency>; 3] = Default::default();
            let mut worker_events = vec![0u64; s.workers.len()];
            for (t, table) in s.tables.iter().enumerate() {
                for (name, e) in table.iter() {
                    merged.reset();
                    let mut all = Counts::default();
                    let mut workers = Vec::new();
                    for (w, cell) in e.cells.iter().enumerate() {
                        let Some(cell) = cell else { continue };
                        let counts = cell.histogram(self.layout, &mut scratch);
                        if counts.count == 0 {
                            continue;
                        }
                        // Same bounds and precision: the sum is exact.
                        let _ = merged.add(&scratch);
                        all.add(&counts);
                        worker_events[w] += counts.count;
                        let (pid, _) = *s.workers.key_of(w as u32);
                        workers.push(WorkerLatency::new(
                            pid,
                            latency(name, &scratch, counts, covered_secs),
                        ));
                    }
                    if all.count == 0 {
                        continue;
                    }
                    workers.sort_by(|a, b| b.count.cmp(&a.count).then(a.pid.cmp(&b.pid)));
                    views[t].push(MergedLatency {
                        latency: latency(name, &merged, all, covered_secs),
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
                .map(|(((pid, start_time), w), &events)| WorkerView {
                    pid: *pid,
                    start_time: *start_time,
                    rings: w.rings.iter().map(|&r| ring_path(r)).collect(),
                    events,
                    last_event_ns: w.last_event_ns,
                })
                .collect();
            workers.sort_by_key(|w| (w.pid == OTHER_WORKERS_PID, w.pid));
            let [routes, functions, queries] = views;
            out.push(ServiceView {
                service: name.as_deref().map(str::to_string),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::stats::StatsConfig;
    use crate::window::{Window, BUCKET_NS};
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
            RingOptions::default()
                .capacity(1 << 16)
                .lanes(1)
                .service("svc"),
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
        let mut window = Window::new(StatsConfig::default(), 32, T0);
        window.advance(T0);
        let batch = consumer.read(1 << 16);
        window.record_events(&mut ctx, batch.names, batch.events, |_| T0 + 1, &[]);
        let snapshot = window.snapshot(T0 + 2, &|_| "w.ring".into());
        let (views, global) = (snapshot.services, snapshot.stats);
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
        let snapshot = window.snapshot(T0 + 16 * BUCKET_NS, &|_| String::new());
        assert!(snapshot.services.is_empty());
    }

    #[test]
    fn bucket_locations_are_hdrhistograms() {
        for precision in [1, 1000, 4096, 60_000_000_000] {
            let h = histogram(precision);
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
        let config = ServiceConfig {
            max_workers: 2,
            ..ServiceConfig::default()
        };
        let mut s = Service::new(&config);
        let a = s.worker(10, 1, 7);
        let b = s.worker(11, 1, 7);
        let c = s.worker(12, 1, 8);
        let d = s.worker(13, 1, 8);
        assert_eq!((a, b), (0, 1));
        assert_eq!(c, d, "the third and fourth worker share");
        assert_eq!(s.workers.key_of(c as u32).0, OTHER_WORKERS_PID);
        assert_eq!(s.workers.get_mut(c as u32).rings, vec![8]);
        assert_eq!(s.worker(10, 1, 8), 0, "known workers keep their own");
        assert_eq!(s.workers.get_mut(0).rings, vec![7, 8]);
    }
}
