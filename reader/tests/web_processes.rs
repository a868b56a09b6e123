//! The `processes` section of `metrics.json` and the `process` of a
//! post-mortem, key by key and type by type (docs/http-api.md), from a
//! drain loop that sampled this test's own process as a writer.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use http_body_util::BodyExt;
use profilis_reader::app::drain::{Drain, DrainOptions, ProducerOptions};
use profilis_reader::outputs::web::{self, UiConfig, WebState};
use profilis_reader::views::{LossTotals, PostMortem, ProcessResources, Snapshot, SnapshotHandle};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const DEADLINE: Duration = Duration::from_secs(20);

const PROCESS_KEYS: [&str; 11] = [
    "pid",
    "start_time",
    "service",
    "rings",
    "sampled_ns",
    "cpu_seconds",
    "cpu_percent",
    "rss_bytes",
    "pss_bytes",
    "virtual_bytes",
    "threads",
];

fn keys(v: &Value, want: &[&str], what: &str) {
    let got: BTreeSet<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(got, want.iter().copied().collect(), "keys of {what}");
}

/// One process sample: every key, and its type.
fn process_object(v: &Value, what: &str, extra: &[&str]) {
    let mut want = PROCESS_KEYS.to_vec();
    want.extend_from_slice(extra);
    keys(v, &want, what);
    for f in [
        "pid",
        "start_time",
        "sampled_ns",
        "rss_bytes",
        "virtual_bytes",
        "threads",
    ] {
        assert!(v[f].is_u64(), "{what}.{f} is an unsigned integer: {v}");
    }
    assert!(v["cpu_seconds"].is_number(), "{what}.cpu_seconds: {v}");
    assert!(v["cpu_percent"].is_number() || v["cpu_percent"].is_null());
    assert!(v["pss_bytes"].is_u64() || v["pss_bytes"].is_null());
    assert!(v["service"].is_string() || v["service"].is_null());
    assert!(v["rings"].as_array().unwrap().iter().all(Value::is_string));
}

async fn get_json(app: &axum::Router, uri: &str) -> Value {
    let request = Request::get(uri).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// A snapshot in which this process, a writer of the ring, has been
/// sampled twice (so its CPU % over an interval is known) and its PSS read
/// (within the reader's budget for those reads).
fn sampled() -> Snapshot {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("procs.ring");
    let ring = ring(&path, 4096);
    write_events(&ring, 100);
    let shutdown = Arc::new(AtomicBool::new(false));
    let drain = Drain::new(
        DrainOptions {
            rings: vec![path.clone()],
            flush_interval: Duration::from_millis(100),
            producers: ProducerOptions {
                process_interval: Duration::from_millis(250),
                ..ProducerOptions::default()
            },
            keep_rings: true,
            ..DrainOptions::default()
        },
        Vec::new(),
        shutdown.clone(),
    )
    .unwrap();
    let handle = drain.snapshots();
    let thread = std::thread::spawn(move || drain.run());
    let me = std::process::id();
    let ok = wait_until(DEADLINE, || {
        handle.load().processes.services.iter().any(|s| {
            s.workers
                .iter()
                .any(|w| w.pid == me && w.cpu_percent.is_some() && w.pss_bytes.is_some())
        })
    });
    shutdown.store(true, Relaxed);
    thread.join().unwrap();
    assert!(
        ok,
        "this process sampled twice: {:?}",
        handle.load().processes
    );
    (*handle.load()).clone()
}

#[tokio::test]
async fn the_processes_section_has_exactly_the_documented_schema() {
    let snapshot = sampled();
    let handle = SnapshotHandle::new();
    handle.store(snapshot);
    let app = web::router(WebState::new(handle, UiConfig::default()));
    let v = get_json(&app, "/_profilis/metrics.json").await;
    let p = &v["processes"];
    keys(
        p,
        &[
            "interval_secs",
            "max_per_tick",
            "writers",
            "not_sampled",
            "services",
            "reader",
        ],
        "processes",
    );
    assert_eq!(p["interval_secs"], 0.25);
    assert_eq!(p["max_per_tick"], 256);
    assert_eq!(
        (p["writers"].as_u64(), p["not_sampled"].as_u64()),
        (Some(1), Some(0))
    );
    let services = p["services"].as_array().unwrap();
    assert_eq!(services.len(), 1);
    let s = &services[0];
    keys(
        s,
        &[
            "service",
            "processes",
            "cpu_percent",
            "rss_bytes",
            "pss_bytes",
            "workers",
        ],
        "processes.services[]",
    );
    assert_eq!(s["service"], "test-svc");
    assert_eq!(s["processes"], 1);
    assert!(s["cpu_percent"].is_number());
    let w = &s["workers"][0];
    process_object(w, "processes.services[].workers[]", &[]);
    assert_eq!(w["pid"], std::process::id());
    assert_eq!(w["service"], "test-svc");
    assert!(w["rings"][0].as_str().unwrap().ends_with("procs.ring"));
    assert!(w["cpu_percent"].is_number(), "sampled twice");
    assert!(w["rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(s["rss_bytes"], w["rss_bytes"], "one worker: its figures");
    assert_eq!(s["pss_bytes"], w["pss_bytes"]);
    // This process reads its own smaps_rollup.
    assert!(w["pss_bytes"].as_u64().unwrap() > 0);

    let r = &p["reader"];
    process_object(
        r,
        "processes.reader",
        &["start_time_seconds", "open_fds", "max_fds"],
    );
    assert_eq!(r["pid"], std::process::id());
    assert!(r["start_time_seconds"].as_f64().unwrap() > 1.6e9);
    assert!(r["open_fds"].as_u64().unwrap() >= 3);
    assert!(r["max_fds"].is_u64() || r["max_fds"].is_null());
    assert_eq!(r["service"], Value::Null);
}

#[tokio::test]
async fn a_post_mortem_carries_the_last_sample() {
    let last = ProcessResources {
        pid: 77,
        start_time: 5,
        service: Some("svc".into()),
        rings: vec!["/dev/shm/app.ring".into()],
        sampled_ns: 1_800_000_000_000_000_000,
        cpu_seconds: 1.5,
        cpu_percent: Some(12.5),
        rss_bytes: 64 << 20,
        pss_bytes: None,
        virtual_bytes: 512 << 20,
        threads: 3,
    };
    let pm = |pid: u32, process: Option<ProcessResources>| {
        Arc::new(PostMortem {
            ring: "/dev/shm/app.ring".into(),
            ring_id: "00000000000000ab".into(),
            pid,
            start_time: 5,
            service: Some("svc".into()),
            registered_ns: 1,
            last_seen_ns: 2,
            detected_ns: 3,
            events_drained: 0,
            losses: LossTotals::default(),
            process,
            events: Vec::new(),
        })
    };
    let mut snapshot = Snapshot::default();
    snapshot.producers.postmortems = vec![pm(77, Some(last)), pm(78, None)];
    let handle = SnapshotHandle::new();
    handle.store(snapshot);
    let app = web::router(WebState::new(handle, UiConfig::default()));
    let v = get_json(&app, "/_profilis/metrics.json").await;
    let process = &v["postmortems"][0]["process"];
    process_object(process, "postmortems[].process", &[]);
    assert_eq!(process["rss_bytes"], 64u64 << 20);
    assert_eq!(process["cpu_percent"], 12.5);
    assert_eq!(process["pss_bytes"], Value::Null);
    assert_eq!(v["postmortems"][1]["process"], Value::Null, "never sampled");
    let doc = get_json(&app, "/_profilis/postmortem/00000000000000ab/77.json").await;
    assert_eq!(&doc["process"], process);
    // Without the reader's own sample, `reader` is null.
    assert_eq!(v["processes"]["reader"], Value::Null);
}

#[tokio::test]
async fn the_page_loads_the_processes_panel_and_its_script_is_served() {
    let config = UiConfig::default();
    let app = web::router(WebState::new(SnapshotHandle::new(), config));
    let request = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
    let page = app.clone().oneshot(request("/_profilis/")).await.unwrap();
    let page = page.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8(page.to_vec()).unwrap();
    assert!(
        page.contains("<script src=\"assets/processes.js?v="),
        "{page}"
    );
    assert!(page.contains("data-panel=\"processes\""));
    assert!(page.contains("id=\"processes-table\""));
    let script = app
        .oneshot(request("/_profilis/assets/processes.js"))
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let body = script.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("Profilis.panel(\"processes\""));
}
