//! The dashboard and HTTP API through `router(state)`: every endpoint,
//! status codes, authentication (bearer, `?token=` cookie flow, login
//! form), CORS, the exact metrics.json and health schemas, Prometheus
//! text; then the same router over a real socket and over TLS.

mod common;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use common::*;
use http_body_util::BodyExt;
use profilis_reader::outputs::web::{self, Listen, UiConfig, WebState};
use profilis_reader::views::{Snapshot, SnapshotHandle};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tower::ServiceExt;

const TOKEN: &str = "correct-horse-battery-staple-42";

/// A snapshot of 1000 drained events (400 requests on 4 hostile route
/// names, errors with messages, functions, queries, custom metrics).
fn drained() -> Arc<Snapshot> {
    static SNAPSHOT: OnceLock<Arc<Snapshot>> = OnceLock::new();
    SNAPSHOT
        .get_or_init(|| {
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().join("web.ring");
            let ring = ring(&path, 4096);
            write_events(&ring, 1000);
            snapshot_after_draining(path)
        })
        .clone()
}

fn handle_with(snapshot: Snapshot) -> SnapshotHandle {
    let handle = SnapshotHandle::new();
    handle.store(snapshot);
    handle
}

fn app_with(config: UiConfig, snapshot: Snapshot) -> axum::Router {
    web::router(WebState::new(handle_with(snapshot), config))
}

fn app(config: UiConfig) -> axum::Router {
    app_with(config, (*drained()).clone())
}

fn with_token() -> UiConfig {
    UiConfig {
        token: Some(TOKEN.into()),
        ..UiConfig::default()
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn send(app: &axum::Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

async fn get(app: &axum::Router, uri: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::get(uri);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn every_endpoint_answers_under_the_prefix() {
    let css = "body { outline: 1px solid red; }";
    let app = app(UiConfig {
        title: "Shop <prod>".into(),
        custom_css: Some(css.into()),
        ..UiConfig::default()
    });
    let page = get(&app, "/_profilis/", &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header(header::CONTENT_TYPE).starts_with("text/html"));
    assert!(page
        .header(header::CONTENT_SECURITY_POLICY)
        .contains("script-src 'self'"));
    assert_eq!(page.header(header::REFERRER_POLICY), "no-referrer");
    assert!(page.body.contains("<title>Shop &lt;prod&gt;</title>"));
    assert!(page.body.contains("data-view=\"dashboard\""));
    assert!(page.body.contains("assets/custom.css?v="));

    let bare = get(&app, "/_profilis", &[]).await;
    assert_eq!(bare.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.header(header::LOCATION), "/_profilis/");

    let json = get(&app, "/_profilis/metrics.json", &[]).await;
    assert_eq!(json.status, StatusCode::OK);
    assert_eq!(json.header(header::CONTENT_TYPE), "application/json");
    assert_eq!(json.json()["requests"]["total"], 400);

    let health = get(&app, "/_profilis/health", &[]).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");

    let prom = get(&app, "/_profilis/metrics", &[]).await;
    assert_eq!(prom.status, StatusCode::OK);
    assert_eq!(
        prom.header(header::CONTENT_TYPE),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(prom.body.contains("\nprofilis_requests_total 400\n"));

    for (asset, kind) in [
        ("app.js", "text/javascript"),
        ("app.css", "text/css"),
        ("custom.css", "text/css"),
    ] {
        let r = get(&app, &format!("/_profilis/assets/{asset}"), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{asset}");
        assert!(r.header(header::CONTENT_TYPE).starts_with(kind), "{asset}");
        assert!(!r.body.is_empty());
    }
    assert_eq!(
        get(&app, "/_profilis/assets/custom.css", &[]).await.body,
        css
    );
    assert_eq!(
        get(&app, "/_profilis/assets/../Cargo.toml", &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, "/_profilis/assets/x.js", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, "/metrics.json", &[]).await.status,
        StatusCode::NOT_FOUND
    );

    // Without --ui-css there is no custom stylesheet.
    let plain = self::app(UiConfig::default());
    assert_eq!(
        get(&plain, "/_profilis/assets/custom.css", &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(!get(&plain, "/_profilis/", &[])
        .await
        .body
        .contains("custom.css"));

    // Another prefix, and none.
    let other = self::app(UiConfig {
        prefix: web::normalize_prefix("/ops/profiler/").unwrap(),
        ..UiConfig::default()
    });
    assert_eq!(
        get(&other, "/ops/profiler/health", &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&other, "/_profilis/health", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    let root = self::app(UiConfig {
        prefix: web::normalize_prefix("/").unwrap(),
        ..UiConfig::default()
    });
    assert_eq!(
        get(&root, "/metrics.json", &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(get(&root, "/", &[]).await.status, StatusCode::OK);
}

/// Asserts `v` is an object with exactly `keys`.
fn keys(v: &Value, keys: &[&str], what: &str) {
    let got: BTreeSet<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    let want: BTreeSet<&str> = keys.iter().copied().collect();
    assert_eq!(got, want, "keys of {what}");
}

fn u64s(v: &Value, fields: &[&str], what: &str) {
    for f in fields {
        assert!(v[f].is_u64(), "{what}.{f} is an unsigned integer: {v}");
    }
}

fn f64s(v: &Value, fields: &[&str], what: &str) {
    for f in fields {
        assert!(
            v[f].is_f64() || v[f].is_u64(),
            "{what}.{f} is a number: {v}"
        );
    }
}

const LATENCY_KEYS: [&str; 11] = [
    "name",
    "count",
    "errors",
    "error_rate",
    "rps",
    "mean_ns",
    "p50_ns",
    "p95_ns",
    "p99_ns",
    "p999_ns",
    "max_ns",
];

fn latency_object(v: &Value, what: &str) {
    // Request rows add their bytes (reader/tests/web_errors.rs).
    let mut want = LATENCY_KEYS.to_vec();
    if matches!(what, "request_stats" | "route_stats") {
        want.extend(["bytes_in", "bytes_out"]);
    }
    keys(v, &want, what);
    assert!(v["name"].is_string());
    u64s(
        v,
        &[
            "count", "errors", "mean_ns", "p50_ns", "p95_ns", "p99_ns", "p999_ns", "max_ns",
        ],
        what,
    );
    f64s(v, &["error_rate", "rps"], what);
}

/// The schema of docs/http-api.md, key by key and type by type.
#[tokio::test]
async fn metrics_json_has_exactly_the_documented_schema() {
    let app = app(UiConfig::default());
    let v = get(&app, "/_profilis/metrics.json", &[]).await.json();
    keys(
        &v,
        &[
            "requests",
            "routes",
            "errors",
            "generated_ns",
            "window",
            "request_stats",
            "route_stats",
            "functions",
            "queries",
            "custom",
            "error_details",
            "exceptions",
            "series",
            "histogram",
            "totals",
            "rings",
            "reader",
            "health",
            "services",
            "producer_losses",
            "loss_series",
            "postmortems",
            "processes",
        ],
        "metrics.json",
    );
    // The original schema.
    let r = &v["requests"];
    keys(r, &["total", "errors", "error_rate", "latency"], "requests");
    u64s(r, &["total", "errors"], "requests");
    assert!(r["error_rate"].is_f64());
    keys(&r["latency"], &["p50", "p95", "p99"], "requests.latency");
    u64s(&r["latency"], &["p50", "p95", "p99"], "requests.latency");
    assert_eq!(r["total"], 400);
    assert!(r["latency"]["p50"].as_u64().unwrap() > 0, "nanoseconds");
    let routes = v["routes"].as_object().unwrap();
    assert_eq!(routes.len(), 4);
    for name in HOSTILE {
        let route = &routes[name];
        keys(route, &["count", "errors", "avg_latency"], "routes.<route>");
        u64s(route, &["count", "errors", "avg_latency"], "routes.<route>");
        assert_eq!(route["count"], 100, "{name}");
    }
    let errors = v["errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    for e in errors {
        keys(
            e,
            &[
                "ts_ns",
                "route",
                "status",
                "exception_type",
                "exception_value",
            ],
            "errors[]",
        );
        u64s(e, &["ts_ns", "status"], "errors[]");
        for f in ["route", "exception_type", "exception_value"] {
            assert!(e[f].is_string(), "errors[].{f} is a string: {e}");
        }
    }
    let request_error = errors.iter().find(|e| e["status"] == 503).unwrap();
    assert_eq!(request_error["exception_type"], "Timeout\"Error\"");
    assert_eq!(
        request_error["exception_value"], "line ?\nline ? \\ end",
        "the message as redacted in the writer"
    );
    let ts: Vec<u64> = errors
        .iter()
        .map(|e| e["ts_ns"].as_u64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // The additional keys.
    assert!(v["generated_ns"].as_u64().unwrap() > 1_600_000_000_000_000_000);
    keys(
        &v["window"],
        &["window_secs", "covered_secs", "step_secs"],
        "window",
    );
    latency_object(&v["request_stats"], "request_stats");
    for table in ["route_stats", "functions", "queries"] {
        let rows = v[table].as_array().unwrap();
        assert!(!rows.is_empty(), "{table}");
        for row in rows {
            latency_object(row, table);
        }
    }
    for c in v["custom"].as_array().unwrap() {
        keys(
            c,
            &["name", "count", "avg", "min", "max", "last"],
            "custom[]",
        );
    }
    for e in v["error_details"].as_array().unwrap() {
        let o = e.as_object().unwrap();
        for k in o.keys() {
            assert!(
                [
                    "ts_ns",
                    "kind",
                    "route",
                    "method",
                    "status",
                    "exception_type",
                    "exception_message",
                    "trace_id",
                    "pid",
                    "service"
                ]
                .contains(&k.as_str()),
                "error_details[].{k}"
            );
        }
    }
    assert_eq!(v["error_details"].as_array().unwrap().len(), errors.len());
    for p in v["series"].as_array().unwrap() {
        keys(
            p,
            &[
                "ts_ns",
                "rps",
                "events_per_sec",
                "p50_ns",
                "p95_ns",
                "p99_ns",
                "error_rate",
            ],
            "series[]",
        );
    }
    let bins = v["histogram"].as_array().unwrap();
    assert!(!bins.is_empty());
    for b in bins {
        keys(b, &["le_ns", "count"], "histogram[]");
        u64s(b, &["le_ns", "count"], "histogram[]");
    }
    assert_eq!(
        bins.iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum::<u64>(),
        400
    );
    keys(
        &v["totals"],
        &[
            "events",
            "requests",
            "request_errors",
            "functions",
            "queries",
            "custom",
            "errors",
            "outside_window",
        ],
        "totals",
    );
    let ring = &v["rings"][0];
    keys(
        ring,
        &[
            "path",
            "ring_id",
            "capacity",
            "lanes",
            "lanes_held",
            "policy",
            "attached",
            "truncated",
            "lost_last_minute",
            "lag",
            "fullest_lane",
            "depth_ratio",
            "counters",
            "exported",
            "export_lost",
            "duplicates_skipped",
            "unresolved",
            "strings_overflow",
            "messages_lost",
            "messages_unread",
            "repairs",
            "writers",
        ],
        "rings[]",
    );
    keys(
        &ring["counters"],
        &[
            "claimed",
            "received",
            "dropped",
            "abandoned",
            "torn",
            "overwritten",
        ],
        "rings[].counters",
    );
    keys(
        &ring["writers"][0],
        &[
            "pid",
            "service",
            "alive",
            "dropped",
            "registered_ns",
            "last_seen_ns",
        ],
        "rings[].writers[]",
    );
    assert!(ring["writers"][0]["last_seen_ns"].as_u64().unwrap() >= 1_600_000_000_000_000_000);
    keys(
        &v["reader"],
        &[
            "pid",
            "started_ns",
            "uptime_secs",
            "events",
            "events_per_sec",
            "batches",
            "cpu_percent",
            "bytes_written",
            "exporter_errors",
            "export_lost",
            "export_lost_last_minute",
            "exporters",
        ],
        "reader",
    );
    keys(&v["health"], &["status", "reasons"], "health");

    // The merged worker views: this test process is the one worker of
    // service test-svc.
    let services = v["services"].as_array().unwrap();
    assert_eq!(services.len(), 1);
    let svc = &services[0];
    keys(
        svc,
        &["service", "workers", "routes", "functions", "queries"],
        "services[]",
    );
    assert_eq!(svc["service"], "test-svc");
    let worker = &svc["workers"][0];
    keys(
        worker,
        &["pid", "start_time", "rings", "events", "last_event_ns"],
        "services[].workers[]",
    );
    assert_eq!(worker["pid"], std::process::id());
    assert_eq!(worker["events"], 400 + 200 + 200, "REQ, FN and DB events");
    let routes = svc["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 4);
    for r in routes {
        let mut with_workers = LATENCY_KEYS.to_vec();
        with_workers.push("workers");
        keys(r, &with_workers, "services[].routes[]");
        let per_worker = r["workers"].as_array().unwrap();
        let mut worker_keys = LATENCY_KEYS[1..].to_vec();
        worker_keys.push("pid");
        keys(
            &per_worker[0],
            &worker_keys,
            "services[].routes[].workers[]",
        );
        assert_eq!(per_worker[0]["count"], r["count"]);
        let global = v["routes"][r["name"].as_str().unwrap()]["count"].clone();
        assert_eq!(r["count"], global, "one worker: the global figures");
    }
    assert!(v["producer_losses"].as_array().unwrap().is_empty());
    assert!(v["loss_series"].as_array().unwrap().is_empty());
    assert!(v["postmortems"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn health_reports_rings_and_degrades_on_losses_and_truncation() {
    let app = app(UiConfig::default());
    let h = get(&app, "/_profilis/health", &[]).await.json();
    keys(
        &h,
        &[
            "status",
            "reasons",
            "generated_ns",
            "stats",
            "rings",
            "reader",
            "limits",
        ],
        "health",
    );
    assert_eq!(h["status"], "ok");
    assert_eq!(h["reasons"], serde_json::json!([]));
    keys(
        &h["stats"],
        &[
            "window_minutes",
            "total_requests",
            "total_errors",
            "error_rate",
        ],
        "health.stats",
    );
    assert_eq!(h["stats"]["window_minutes"], 15);
    assert_eq!(h["stats"]["total_requests"], 400);
    let ring = &h["rings"][0];
    keys(
        ring,
        &[
            "path",
            "ring_id",
            "attached",
            "truncated",
            "queue_depth",
            "capacity",
            "lanes",
            "fullest_lane",
            "policy",
            "claimed",
            "received",
            "dropped",
            "abandoned",
            "torn",
            "lost_last_minute",
            "messages_lost",
            "messages_unread",
            "names_unresolved",
            "repairs",
            "writers",
        ],
        "health.rings[]",
    );
    assert_eq!(ring["capacity"], 4096);
    assert_eq!(
        (ring["claimed"].as_u64(), ring["received"].as_u64()),
        (Some(1000), Some(1000))
    );
    keys(
        &ring["writers"][0],
        &["pid", "service", "alive", "dropped", "last_seen_ns"],
        "health.rings[].writers[]",
    );
    assert_eq!(ring["writers"][0]["pid"], std::process::id());
    assert_eq!(ring["writers"][0]["alive"], true);
    keys(
        &h["reader"],
        &[
            "pid",
            "uptime_secs",
            "events",
            "exporter_errors",
            "export_lost",
        ],
        "health.reader",
    );

    let degraded = |change: fn(&mut Snapshot)| async move {
        let mut s = (*drained()).clone();
        change(&mut s);
        let app = app_with(UiConfig::default(), s);
        get(&app, "/_profilis/health", &[]).await.json()
    };
    let h = degraded(|s| s.rings[0].lost_last_minute = 7).await;
    assert_eq!(h["status"], "degraded");
    assert!(h["reasons"][0].as_str().unwrap().contains("lost 7 events"));
    let h = degraded(|s| s.rings[0].truncated = true).await;
    assert!(h["reasons"][0].as_str().unwrap().contains("truncated"));
    let h = degraded(|s| s.rings[0].depth_ratio = 0.98).await;
    assert!(h["reasons"][0]
        .as_str()
        .unwrap()
        .contains("a lane 98% full"));
    let h = degraded(|s| s.rings[0].repairs = 2).await;
    assert!(h["reasons"][0].as_str().unwrap().contains("2 lanes reset"));
    let h = degraded(|s| s.reader.export_lost_last_minute = 3).await;
    assert!(h["reasons"][0].as_str().unwrap().contains("exporters"));
    // Limits: each reported with its bound, use and hits.
    let limits = &get(&app, "/_profilis/health", &[]).await.json()["limits"];
    keys(
        limits,
        &[
            "rings",
            "routes",
            "errors",
            "jsonl_bytes",
            "jsonl_files",
            "strings",
        ],
        "health.limits",
    );
    keys(
        &limits["rings"],
        &["limit", "used", "hits", "hits_last_minute", "waiting"],
        "health.limits.rings",
    );
    assert_eq!(
        (
            limits["rings"]["limit"].as_u64(),
            limits["rings"]["used"].as_u64()
        ),
        (Some(64), Some(1))
    );
    for name in ["routes", "errors", "jsonl_bytes", "jsonl_files"] {
        keys(
            &limits[name],
            &["limit", "used", "hits", "hits_last_minute"],
            "health.limits.<limit>",
        );
    }
    assert_eq!(limits["routes"]["limit"], 1000);
    assert_eq!(limits["routes"]["used"], 4, "four routes");
    assert!(limits["jsonl_bytes"]["limit"].is_null(), "unbounded");
    keys(
        &limits["strings"][0],
        &[
            "ring",
            "ring_id",
            "entries",
            "entries_used",
            "arena_bytes",
            "arena_used",
            "overflow",
            "overflow_last_minute",
        ],
        "health.limits.strings[]",
    );
    assert!(limits["strings"][0]["entries_used"].as_u64() >= Some(4));
    // Limits that lose data or detail degrade; the ones that drop the
    // oldest on purpose do not.
    let h = degraded(|s| s.limits.rings.waiting = vec!["/dev/shm/late.ring".into()]).await;
    assert!(
        h["reasons"][0].as_str().unwrap().contains("--max-rings"),
        "{h}"
    );
    let h = degraded(|s| s.limits.routes.hits_last_minute = 5).await;
    assert!(h["reasons"][0].as_str().unwrap().contains("(other)"), "{h}");
    let h = degraded(|s| s.limits.strings[0].overflow_last_minute = 2).await;
    assert!(
        h["reasons"][0].as_str().unwrap().contains("<overflow>"),
        "{h}"
    );
    let h = degraded(|s| {
        s.limits.errors.hits_last_minute = 9;
        s.limits.jsonl_bytes.hits_last_minute = 2;
        s.limits.jsonl_files.hits_last_minute = 1;
    })
    .await;
    assert_eq!(h["status"], "ok", "{h}");
    // A ring detached after its writers exited is not a problem.
    let h = degraded(|s| {
        s.rings[0].attached = false;
        s.rings[0].writers[0].alive = false;
    })
    .await;
    assert_eq!(h["status"], "ok");
    // metrics.json and /metrics carry the same verdict.
    let mut s = (*drained()).clone();
    s.rings[0].lost_last_minute = 1;
    let app = app_with(UiConfig::default(), s);
    assert_eq!(
        get(&app, "/_profilis/metrics.json", &[]).await.json()["health"]["status"],
        "degraded"
    );
    assert!(get(&app, "/_profilis/metrics", &[])
        .await
        .body
        .contains("\nprofilis_reader_degraded 1\n"));
}

#[tokio::test]
async fn prometheus_text_carries_routes_histograms_and_self_metrics() {
    let app = app(UiConfig::default());
    let text = get(&app, "/_profilis/metrics", &[]).await.body;
    let has = |line: &str| text.lines().any(|l| l == line);
    assert!(has("profilis_requests_total 400"));
    assert!(has("profilis_request_duration_seconds_count 400"));
    assert!(has(
        "profilis_request_duration_seconds_bucket{le=\"+Inf\"} 400"
    ));
    // Route names with quotes, backslashes and line feeds are escaped.
    assert!(has(
        "profilis_route_requests_total{route=\"/api/\\\"quoted\\\"/{id}\"} 100"
    ));
    assert!(has(
        "profilis_route_requests_total{route=\"back\\\\slash\\nnew line\ttab\"} 100"
    ));
    assert!(has(
        "profilis_route_request_duration_seconds_count{route=\"/api/\\\"quoted\\\"/{id}\"} 100"
    ));
    assert!(has("profilis_reader_events_total 1000"));
    assert!(text.contains("profilis_ring_lag{ring=\""));
    assert!(text.contains("# TYPE profilis_request_duration_seconds histogram"));
}

#[tokio::test]
async fn a_token_guards_every_endpoint() {
    let app = app(with_token());
    let wrong = bearer("correct-horse-battery-staple-43");
    let right = bearer(TOKEN);
    for path in [
        "/_profilis/metrics.json",
        "/_profilis/metrics",
        "/_profilis/health",
    ] {
        let r = get(&app, path, &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path} without token");
        assert_eq!(
            r.header(header::WWW_AUTHENTICATE),
            "Bearer realm=\"profilis\""
        );
        assert_eq!(r.json()["error"], "unauthorized");
        let r = get(&app, path, &[("authorization", &wrong)]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path} wrong token");
        let r = get(&app, path, &[("authorization", "Bearer")]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path} empty token");
        let r = get(&app, path, &[("authorization", &right)]).await;
        assert_eq!(r.status, StatusCode::OK, "{path} with the token");
        assert!(!r.body.contains(TOKEN));
    }
    // The page shows the login form, without the token anywhere.
    let page = get(&app, "/_profilis/", &[]).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("data-view=\"login\""));
    assert!(page.body.contains("action=\"login\""));
    // Assets are public (the login form needs them).
    assert_eq!(
        get(&app, "/_profilis/assets/app.css", &[]).await.status,
        StatusCode::OK
    );

    // --ui-health-public opens /health only.
    let public = self::app(UiConfig {
        health_public: true,
        ..with_token()
    });
    assert_eq!(
        get(&public, "/_profilis/health", &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&public, "/_profilis/metrics.json", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
}

fn session_cookie(r: &Reply) -> String {
    let set = r.header(header::SET_COOKIE);
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(
        set.contains("Max-Age=43200"),
        "expires with the session: {set}"
    );
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(set.contains("Path=/_profilis/"), "{set}");
    assert!(!set.contains(TOKEN), "the cookie is not the token: {set}");
    set.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn a_browser_opens_the_dashboard_once_with_the_token_then_uses_a_cookie() {
    let app = app(with_token());
    // The bare prefix keeps the query through its redirect.
    let bare = get(&app, &format!("/_profilis?token={TOKEN}"), &[]).await;
    assert_eq!(bare.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        bare.header(header::LOCATION),
        format!("/_profilis/?token={TOKEN}")
    );

    let r = get(&app, &format!("/_profilis/?token={TOKEN}"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.header(header::LOCATION),
        "/_profilis/",
        "token stripped from the URL"
    );
    let cookie = session_cookie(&r);
    assert!(
        !r.header(header::SET_COOKIE).contains("Secure"),
        "plain HTTP"
    );

    let page = get(&app, "/_profilis/", &[("cookie", &cookie)]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-view=\"dashboard\""));
    assert!(
        !page.body.contains(TOKEN),
        "the token never reaches the page"
    );
    let json = get(&app, "/_profilis/metrics.json", &[("cookie", &cookie)]).await;
    assert_eq!(json.status, StatusCode::OK);
    assert_eq!(
        get(
            &app,
            "/_profilis/metrics.json",
            &[("cookie", "profilis_session=forged")]
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );

    // A wrong token in the link: login form, no cookie.
    let r = get(&app, "/_profilis/?token=guess", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    assert!(r.body.contains("not right"));

    // The login form.
    let form = |token: &str| {
        Request::post("/_profilis/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={token}")))
            .unwrap()
    };
    let r = send(&app, form(TOKEN)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let second = session_cookie(&r);
    assert_ne!(second, cookie, "every login gets a session of its own");
    assert_eq!(
        get(&app, "/_profilis/", &[("cookie", &second)])
            .await
            .status,
        StatusCode::OK
    );
    let r = send(&app, form("nope")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get(header::SET_COOKIE).is_none());

    // Logging out clears the cookie and closes the session on the server:
    // the old cookie no longer works, the other session still does.
    let r = send(
        &app,
        Request::post("/_profilis/logout")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.header(header::SET_COOKIE).contains("Max-Age=0"));
    for path in ["/_profilis/metrics.json", "/_profilis/"] {
        let status = get(&app, path, &[("cookie", &cookie)]).await.status;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} after logout");
    }
    assert_eq!(
        get(&app, "/_profilis/metrics.json", &[("cookie", &second)])
            .await
            .status,
        StatusCode::OK
    );

    // Over TLS the cookie is Secure, and --ui-https-only adds HSTS.
    let tls = self::app(UiConfig {
        tls: true,
        https_only: true,
        ..with_token()
    });
    let r = get(&tls, &format!("/_profilis/?token={TOKEN}"), &[]).await;
    assert!(r.header(header::SET_COOKIE).contains("; Secure"));
    assert!(r
        .header(header::STRICT_TRANSPORT_SECURITY)
        .contains("max-age="));
}

#[tokio::test]
async fn a_token_from_base64_works_in_a_link_as_it_is() {
    // What `head -c 24 /dev/urandom | base64` gives about 40% of the
    // time: `+` and `/` in the token, pasted into the link unencoded.
    for token in [
        "Zm9v+YmFy/YmF6+cXV4/cXV1eA",
        "Zm9v-YmFy_YmF6-cXV4_cXV1eA",
        "a+b+c+d=e",
    ] {
        let app = app(UiConfig {
            token: Some(token.into()),
            ..UiConfig::default()
        });
        let link = get(&app, &format!("/_profilis/?token={token}"), &[]).await;
        assert_eq!(link.status, StatusCode::SEE_OTHER, "{token} as it is");
        let cookie = session_cookie(&link);
        let json = get(&app, "/_profilis/metrics.json", &[("cookie", &cookie)]).await;
        assert_eq!(json.status, StatusCode::OK);
        let encoded = web::auth::login_link("/_profilis/", token);
        assert_eq!(
            get(&app, &encoded, &[]).await.status,
            StatusCode::SEE_OTHER,
            "{encoded}"
        );
        let guess = token.replace('+', "-");
        if guess != token {
            assert_eq!(
                get(&app, &format!("/_profilis/?token={guess}"), &[])
                    .await
                    .status,
                StatusCode::UNAUTHORIZED
            );
        }
    }
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let app = app(UiConfig {
        cors_origins: vec![HeaderValue::from_static("https://grafana.example.com")],
        ..with_token()
    });
    let auth = bearer(TOKEN);
    let r = get(
        &app,
        "/_profilis/metrics.json",
        &[
            ("origin", "https://grafana.example.com"),
            ("authorization", &auth),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        "https://grafana.example.com"
    );
    let r = get(
        &app,
        "/_profilis/metrics.json",
        &[
            ("origin", "https://evil.example.com"),
            ("authorization", &auth),
        ],
    )
    .await;
    assert!(r.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    // A preflight needs no token and allows the Authorization header.
    let preflight = |origin: &'static str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/_profilis/metrics.json")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .body(Body::empty())
            .unwrap()
    };
    let r = send(&app, preflight("https://grafana.example.com")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        "https://grafana.example.com"
    );
    assert!(r
        .header(header::ACCESS_CONTROL_ALLOW_HEADERS)
        .contains("authorization"));
    let r = send(&app, preflight("https://evil.example.com")).await;
    assert!(r.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    // Without --ui-cors-origin, no CORS headers at all.
    let plain = self::app(UiConfig::default());
    let r = get(
        &plain,
        "/_profilis/metrics.json",
        &[("origin", "https://grafana.example.com")],
    )
    .await;
    assert!(r.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}

#[test]
fn served_over_a_real_socket_and_stopped() {
    let server = web::server::start(
        with_token(),
        Listen {
            addr: "127.0.0.1:0".parse().unwrap(),
            tls: None,
        },
        handle_with((*drained()).clone()),
    )
    .unwrap();
    let addr = server.local_addr().to_string();
    assert_ne!(server.local_addr().port(), 0);
    assert_eq!(server.url(), format!("http://{addr}/_profilis/"));
    let (status, _, _) = http_get(&addr, "/_profilis/metrics.json", &[]);
    assert_eq!(status, 401);
    let auth = format!("Authorization: Bearer {TOKEN}");
    let (status, headers, body) = http_get(&addr, "/_profilis/metrics.json", &[&auth]);
    assert_eq!(status, 200);
    assert!(headers.contains("content-type: application/json"));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["requests"]["total"], 400);
    // Many clients at once get the same cached body.
    let bodies: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| s.spawn(|| http_get(&addr, "/_profilis/metrics.json", &[&auth]).2))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(bodies.iter().all(|b| *b == body));
    // The server's threads yield to the drain loop when CPU is short.
    let nice_of_ui_threads: Vec<i64> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        .filter(|stat| stat.contains("(profilis-ui)"))
        .map(|stat| {
            let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
            // Field 19 of the line is the nice value; fields from 3 on
            // follow the command name.
            after_comm.split(' ').nth(19 - 3).unwrap().parse().unwrap()
        })
        .collect();
    assert!(nice_of_ui_threads.len() >= 3, "{nice_of_ui_threads:?}");
    assert!(
        nice_of_ui_threads
            .iter()
            .all(|&n| n == i64::from(profilis_reader::support::priority::BACKGROUND_NICE)),
        "{nice_of_ui_threads:?}"
    );
    server.shutdown();
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "nothing listens after shutdown"
    );
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = web::server::start(
        UiConfig::default(),
        Listen {
            addr: taken.local_addr().unwrap(),
            tls: None,
        },
        SnapshotHandle::new(),
    )
    .err()
    .expect("the port is taken");
    let text = format!("{err:#}");
    assert!(
        text.contains("another profilis-reader") && text.contains("--no-ui"),
        "{text}"
    );
    assert_eq!(text.matches("in use").count(), 1, "the cause once: {text}");
}

#[test]
fn the_hint_fits_the_cause_of_a_bind_error() {
    let bind = |addr: &str| {
        let err = web::server::start(
            UiConfig::default(),
            Listen {
                addr: addr.parse().unwrap(),
                tls: None,
            },
            SnapshotHandle::new(),
        )
        .err()
        .expect("cannot bind");
        format!("{err:#}")
    };
    // 192.0.2.1 (TEST-NET-1) is no address of this host.
    let text = bind("192.0.2.1:9470");
    assert!(
        text.contains("not an address of this host") && !text.contains("profilis-reader running"),
        "{text}"
    );
    assert!(text.contains("os error 99"), "{text}");
}

fn tls_files(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    (cert_path, key_path, cert.cert.der().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_over_tls_with_the_given_certificate() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key, der) = tls_files(tmp.path());
    let server = tokio::task::spawn_blocking(move || {
        web::server::start(
            UiConfig {
                tls: true,
                https_only: true,
                ..with_token()
            },
            Listen {
                addr: "127.0.0.1:0".parse().unwrap(),
                tls: Some((cert, key)),
            },
            handle_with((*drained()).clone()),
        )
    })
    .await
    .unwrap()
    .unwrap();
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let addr = server.local_addr();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(der.into()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(
        format!(
            "GET /_profilis/health HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut raw)).await;
    let (status, headers, body) = parse_response(&String::from_utf8_lossy(&raw));
    assert_eq!(status, 200, "{headers}");
    assert!(headers.contains("strict-transport-security"));
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "ok"
    );

    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let plain = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"GET /_profilis/health HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        buf
    })
    .await
    .unwrap();
    assert!(!plain.starts_with(b"HTTP/1.1 200"));
    tokio::task::spawn_blocking(move || server.shutdown())
        .await
        .unwrap();
}

#[test]
fn https_only_needs_a_certificate_and_bad_files_are_clear_errors() {
    use clap::Parser;
    let parse = |args: &[&str]| {
        let mut all = vec!["profilis-reader", "a.ring"];
        all.extend_from_slice(args);
        profilis_reader::app::cli::Cli::try_parse_from(all)
            .unwrap()
            .reader
            .ui
    };
    let err = profilis_reader::app::ui::ui_config(&parse(&["--ui-https-only"]), None).unwrap_err();
    assert!(format!("{err:#}").contains("--tls-cert"), "{err:#}");

    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let tf = token_file.to_str().unwrap();
    let (config, _) =
        profilis_reader::app::ui::ui_config(&parse(&["--ui-token-file", tf]), None).unwrap();
    assert_eq!(
        config.token.as_deref(),
        Some(TOKEN),
        "trailing newline ignored"
    );
    let (config, _) =
        profilis_reader::app::ui::ui_config(&parse(&[]), Some(format!(" {TOKEN} "))).unwrap();
    assert_eq!(config.token.as_deref(), Some(TOKEN));
    assert!(profilis_reader::app::ui::ui_config(
        &parse(&["--ui-token-file", tf]),
        Some(TOKEN.into())
    )
    .is_err());
    std::fs::write(&token_file, "\n").unwrap();
    let err =
        profilis_reader::app::ui::ui_config(&parse(&["--ui-token-file", tf]), None).unwrap_err();
    assert!(format!("{err:#}").contains("empty"));
    let err =
        profilis_reader::app::ui::ui_config(&parse(&["--ui-css", "/nonexistent/x.css"]), None)
            .unwrap_err();
    assert!(format!("{err:#}").contains("--ui-css"));
    assert!(profilis_reader::app::ui::ui_config(&parse(&["--ui-cors-origin", "*"]), None).is_err());
    assert!(
        profilis_reader::app::ui::ui_config(&parse(&["--ui-prefix", "no-slash"]), None).is_err()
    );

    // A certificate that is not one.
    std::fs::write(tmp.path().join("bad.pem"), "not a certificate").unwrap();
    let bad = tmp.path().join("bad.pem");
    let err = web::server::start(
        UiConfig::default(),
        Listen {
            addr: "127.0.0.1:0".parse().unwrap(),
            tls: Some((bad.clone(), bad)),
        },
        SnapshotHandle::new(),
    )
    .err()
    .expect("a bad certificate is refused");
    assert!(
        format!("{err:#}").contains("loading the TLS certificate"),
        "{err:#}"
    );
}

/// A dead writer's post-mortem: its events as JSON and as a JSONL
/// download, behind the token like every data endpoint.
#[tokio::test]
async fn postmortem_endpoints_serve_a_dead_writers_events_behind_auth() {
    use profilis_reader::views::LossTotals;
    use profilis_reader::views::{PostMortem, PostMortemEvent};
    let ring_id = "00000000000000ab";
    let event = |seq: u64| PostMortemEvent {
        ts_ns: 1_800_000_000_000_000_000 + seq,
        kind: "REQ",
        name: "/api/\"x\"\n".into(),
        method: Some("GET"),
        status: Some(500),
        dur_ns: Some(1000 + seq),
        error: true,
        exception_type: Some("Boom".into()),
        exception_message: Some("line\nbreak".into()),
        stack: None,
        trace_id: Some("0123456789abcdef0123456789abcdef".into()),
        span_id: None,
        parent_span_id: None,
        pid: 77,
        tid: 78,
        bytes_in: Some(1),
        bytes_out: Some(2),
        rows: None,
        value: None,
        service: Some("svc".into()),
        ring_id: ring_id.into(),
        seq,
    };
    let mut s = (*drained()).clone();
    s.producers.postmortems = vec![Arc::new(PostMortem {
        ring: "/dev/shm/app.ring".into(),
        ring_id: ring_id.into(),
        pid: 77,
        start_time: 5,
        service: Some("svc".into()),
        registered_ns: 1,
        last_seen_ns: 1_800_000_000_000_000_002,
        detected_ns: 1_800_000_000_100_000_000,
        events_drained: 10,
        losses: LossTotals {
            abandoned: 1,
            ..LossTotals::default()
        },
        process: None,
        events: (0..3).map(event).collect(),
    })];
    let app = app_with(with_token(), s);
    let download = format!("/_profilis/postmortem/{ring_id}/77.jsonl");
    assert_eq!(
        get(&app, &download, &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let auth = bearer(TOKEN);
    let auth = [("authorization", auth.as_str())];
    let reply = get(&app, &download, &auth).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(header::CONTENT_TYPE), "application/x-ndjson");
    assert!(reply
        .header(header::CONTENT_DISPOSITION)
        .starts_with("attachment; filename=\"profilis-postmortem-00000000000000ab-77.jsonl\""));
    let lines: Vec<Value> = reply
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (seq, line) in lines.iter().enumerate() {
        check_fields(line);
        assert_eq!(line["seq"], seq as u64);
        assert_eq!(line["name"], "/api/\"x\"\n");
        assert_eq!(line["exception_message"], "line\nbreak");
    }
    let doc = get(
        &app,
        &format!("/_profilis/postmortem/{ring_id}/77.json"),
        &auth,
    )
    .await
    .json();
    keys(
        &doc,
        &[
            "ring",
            "ring_id",
            "pid",
            "start_time",
            "service",
            "registered_ns",
            "last_seen_ns",
            "detected_ns",
            "events_drained",
            "losses",
            "process",
            "events",
        ],
        "postmortem",
    );
    assert_eq!(doc["events"].as_array().unwrap().len(), 3);
    assert_eq!(doc["losses"]["abandoned"], 1);
    for missing in [
        format!("/_profilis/postmortem/{ring_id}/78.json"),
        "/_profilis/postmortem/00000000000000ac/77.json".to_string(),
        format!("/_profilis/postmortem/{ring_id}/77.txt"),
        format!("/_profilis/postmortem/{ring_id}/x.jsonl"),
    ] {
        assert_eq!(
            get(&app, &missing, &auth).await.status,
            StatusCode::NOT_FOUND,
            "{missing}"
        );
    }
    // metrics.json lists it without the events.
    let v = get(&app, "/_profilis/metrics.json", &auth).await.json();
    let pm = &v["postmortems"][0];
    keys(
        pm,
        &[
            "ring",
            "ring_id",
            "pid",
            "service",
            "registered_ns",
            "last_seen_ns",
            "detected_ns",
            "events_drained",
            "events_kept",
            "losses",
            "process",
        ],
        "postmortems[]",
    );
    assert_eq!(
        (pm["pid"].as_u64(), pm["events_kept"].as_u64()),
        (Some(77), Some(3))
    );
}
