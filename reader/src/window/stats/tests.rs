//! Tests of the statistics store.

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
    let mut cache = StatsCache::default();
    store.advance(wall_ns);
    let batch = consumer.read(4096);
    store.begin_batch(&mut cache);
    for e in batch.events {
        store.record(&mut cache, &mut ctx, batch.names, wall_ns, e);
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
                    ring.message(&format!("failure {}", ["a", "b", "c", "d"][i as usize]))
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
    assert_eq!(s.errors[1].exception_message.as_deref(), Some("failure d"));
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
    assert_eq!(d.functions.len(), 1, "but one of their own");
    assert_eq!(
        (d.functions[0].name.as_str(), d.functions[0].errors),
        ("work", 1)
    );
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
        template: histogram(config.precision_ns),
        free: Vec::new(),
    };
    let mut entry = LatencyWindow::new(&mut pool);
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
        entry.record(&mut pool, now / BUCKET_NS + i % 5, v, false, [0; 2]);
    }
    values.sort_unstable();
    let s = entry.summary("r", 60.0, false);
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
