//! Cost of the instrumentation layer, each figure next to its baseline in
//! the same run:
//!
//! - `tower_layer`: an axum router called with `oneshot`, without and with
//!   `ProfilisLayer` (the difference is the per-request overhead; target
//!   under 300 ns at the median);
//! - `fn_timing`: a bare `emit_fn` (alone, and with the two reads of the
//!   event clock a timed call needs) vs a span guard and a `#[profile]`
//!   function (target within 1.5x of the bare emit); one read of the event
//!   clock and of `CLOCK_MONOTONIC` through the vDSO for scale.
//!
//! The `*_paired` functions print distributions from interleaved batches,
//! which hold up better than separate runs on a loaded machine
//! (`PAIRED_ROUNDS` sets their length, default 400).
//!
//! `cargo bench -p profilis-benches --bench instrumentation`
//!
//! Events go to a ring in the temp directory with the overwrite-oldest
//! policy, so every emit writes a slot (a drop-newest ring that filled up
//! would measure the cheaper drop path instead).

use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use profilis::tower::ProfilisLayer;
use profilis::{FullPolicy, RingOptions};
use std::hint::black_box;
use tower::ServiceExt;

fn init_ring() {
    let path = std::env::temp_dir().join(format!("profilis-bench-{}.ring", std::process::id()));
    let options = RingOptions::default()
        .capacity(1 << 16)
        .policy(FullPolicy::OverwriteOldest);
    profilis::init_with(&path, options).expect("creating the bench ring");
    // The mapping stays valid after the name is removed.
    let _ = std::fs::remove_file(&path);
}

/// The router as `axum::serve` runs it: `with_state` turns handlers into
/// routes once, instead of per request.
fn router() -> Router {
    Router::new().route("/api/users/{id}", get(|| async { "user" }))
}

fn finish(router: Router) -> Router {
    router.with_state(())
}

fn tower_layer(c: &mut Criterion) {
    init_ring();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let bare = finish(router());
    // What axum itself costs for any layer added with `Router::layer`: it
    // boxes the layered route and the response body.
    let noop = finish(router().layer(tower::util::MapResponseLayer::new(|r| r)));
    let excluded = finish(router().layer(ProfilisLayer::new().exclude_routes(["/api/*"])));
    let layered = finish(router().layer(ProfilisLayer::new()));
    let mut group = c.benchmark_group("tower_layer");
    for (name, app) in [
        ("router_bare", bare),
        ("router_with_noop_layer", noop),
        ("router_with_layer_excluded", excluded),
        ("router_with_layer", layered),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let request = Request::get("/api/users/42").body(Body::empty()).unwrap();
                // Dropping the response drops its body, which records the
                // event.
                let response = runtime.block_on(app.clone().oneshot(request)).unwrap();
                black_box(response.status());
            })
        });
    }
    group.finish();
}

/// Per-request overhead as a distribution: batches of `BATCH` calls to each
/// router, interleaved so all see the same machine load; the overhead of a
/// round is the difference of two batch means. Prints p50 (and p90) of the
/// per-round overhead against the bare router and against a no-op layer
/// (what axum itself costs for any layer), and the layer's cost for excluded
/// and sampled-out requests.
fn tower_layer_paired(_: &mut Criterion) {
    init_ring();
    const BATCH: u32 = 256;
    let rounds: usize = std::env::var("PAIRED_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    const BARE: usize = 0;
    const NOOP: usize = 1;
    const LAYER: usize = 2;
    const EXCLUDED: usize = 3;
    const SAMPLED_OUT: usize = 4;
    let apps = [
        finish(router()),
        finish(router().layer(tower::util::MapResponseLayer::new(|r| r))),
        finish(router().layer(ProfilisLayer::new())),
        finish(router().layer(ProfilisLayer::new().exclude_routes(["/api/*"]))),
        finish(router().layer(ProfilisLayer::new().sample(0.0))),
    ];
    let mut means: [Vec<f64>; 5] = Default::default();
    for round in 0..rounds + 20 {
        for (k, app) in apps.iter().enumerate() {
            let start = std::time::Instant::now();
            for _ in 0..BATCH {
                let request = Request::get("/api/users/42").body(Body::empty()).unwrap();
                let response = runtime.block_on(app.clone().oneshot(request)).unwrap();
                black_box(response.status());
            }
            if round >= 20 {
                means[k].push(start.elapsed().as_nanos() as f64 / BATCH as f64);
            }
        }
    }
    let pct = |v: &[f64], p: f64| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v[((v.len() - 1) as f64 * p) as usize]
    };
    let diff = |a: usize, b: usize| -> Vec<f64> {
        means[a].iter().zip(&means[b]).map(|(x, y)| x - y).collect()
    };
    println!(
        "tower_layer paired ({rounds} rounds of {BATCH}): p50 per request: bare {:.0} ns, \
         no-op layer {:.0} ns, profilis layer {:.0} ns",
        pct(&means[BARE], 0.5),
        pct(&means[NOOP], 0.5),
        pct(&means[LAYER], 0.5),
    );
    println!(
        "tower_layer overhead: vs bare p50 {:.0} ns (p90 {:.0} ns); vs a no-op axum layer \
         p50 {:.0} ns (p90 {:.0} ns); excluded request p50 {:.0} ns, sampled-out request \
         p50 {:.0} ns (both vs the no-op layer)",
        pct(&diff(LAYER, BARE), 0.5),
        pct(&diff(LAYER, BARE), 0.9),
        pct(&diff(LAYER, NOOP), 0.5),
        pct(&diff(LAYER, NOOP), 0.9),
        pct(&diff(EXCLUDED, NOOP), 0.5),
        pct(&diff(SAMPLED_OUT, NOOP), 0.5),
    );
}

#[profilis::profile(name = "bench.profiled")]
fn profiled(x: u64) -> u64 {
    black_box(x)
}

/// The same four cases interleaved in batches of `BATCH` calls (see
/// `tower_layer_paired`): prints each one's p50 per-call cost and its ratio
/// to the bare emits.
fn fn_timing_paired(_: &mut Criterion) {
    init_ring();
    const BATCH: u32 = 1024;
    let rounds: usize = std::env::var("PAIRED_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let cases: [(&str, fn()); 6] = [
        ("emit_fn_only", || {
            profilis::emit_fn(profilis::name!("bench.emit"), black_box(100), false);
        }),
        ("emit_fn_manual_timing", || {
            let start = profilis::clock::now();
            black_box(42u64);
            let dur = profilis::clock::now().ns_since(start);
            profilis::emit_fn(profilis::name!("bench.manual"), dur, false);
        }),
        ("span_guard", || {
            let _span = profilis::span(profilis::name!("bench.span"));
            black_box(42u64);
        }),
        ("profile_attribute", || {
            black_box(profiled(black_box(42)));
        }),
        ("event_clock", || {
            black_box(profilis::clock::event_ns());
        }),
        ("vdso_clock", || {
            black_box(profilis::clock::mono_ns());
        }),
    ];
    let mut means: [Vec<f64>; 6] = Default::default();
    for round in 0..rounds + 20 {
        for (k, (_, case)) in cases.iter().enumerate() {
            let start = std::time::Instant::now();
            for _ in 0..BATCH {
                case();
            }
            if round >= 20 {
                means[k].push(start.elapsed().as_nanos() as f64 / BATCH as f64);
            }
        }
    }
    let p50 = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let p: Vec<f64> = means.iter().map(|m| p50(m)).collect();
    println!(
        "fn_timing paired ({rounds} rounds of {BATCH}, event clock {}): p50 emit_fn_only {:.1} ns, \
         emit_fn_manual_timing {:.1} ns, span_guard {:.1} ns ({:.2}x manual, {:.2}x emit only), \
         profile_attribute {:.1} ns ({:.2}x manual, {:.2}x emit only); one clock read: \
         event clock {:.1} ns, vDSO CLOCK_MONOTONIC {:.1} ns",
        profilis::clock::source(),
        p[0],
        p[1],
        p[2],
        p[2] / p[1],
        p[2] / p[0],
        p[3],
        p[3] / p[1],
        p[3] / p[0],
        p[4],
        p[5],
    );
}

fn fn_timing(c: &mut Criterion) {
    init_ring();
    let mut group = c.benchmark_group("fn_timing");
    group.bench_function("emit_fn_only", |b| {
        b.iter(|| profilis::emit_fn(profilis::name!("bench.emit"), black_box(100), false))
    });
    group.bench_function("emit_fn_manual_timing", |b| {
        b.iter(|| {
            let start = profilis::clock::now();
            black_box(42u64);
            let dur = profilis::clock::now().ns_since(start);
            profilis::emit_fn(profilis::name!("bench.manual"), dur, false)
        })
    });
    group.bench_function("span_guard", |b| {
        b.iter(|| {
            let _span = profilis::span(profilis::name!("bench.span"));
            black_box(42u64)
        })
    });
    group.bench_function("profile_attribute", |b| b.iter(|| profiled(black_box(42))));
    group.finish();
}

criterion_group!(
    benches,
    tower_layer_paired,
    tower_layer,
    fn_timing_paired,
    fn_timing
);
criterion_main!(benches);
