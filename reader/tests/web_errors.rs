//! Errors by exception type and the bytes of each route, through the
//! drain loop and `router(state)`: the `exceptions` section and the
//! per-route bytes of metrics.json (schema and values), and the
//! Prometheus counters `profilis_exceptions_total` and
//! `profilis_route_{received,sent}_bytes_total` (docs/http-api.md).

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use http_body_util::BodyExt;
use profilis::{Fields, Kind, Method};
use profilis_reader::outputs::prometheus::escape_label_value;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use tower::ServiceExt;

const EVENTS: u64 = 1000;
const TIMEOUT: &str = "Timeout\"Error\"";

/// Bytes in and out per route of what [`write_events`] writes, and of the
/// extra 502 below.
fn expected_bytes() -> BTreeMap<&'static str, (u64, u64)> {
    let mut sums: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for i in (0..EVENTS).filter(|i| i % 5 < 2) {
        let s = sums.entry(HOSTILE[(i % 4) as usize]).or_default();
        s.0 += i % 1000;
        s.1 += i % 5000;
    }
    let s = sums.entry(HOSTILE[1]).or_default();
    s.0 += 7;
    s.1 += 9;
    sums
}

/// The router over a snapshot of [`write_events`] (20 requests failing
/// with `Timeout"Error"`) and three more errors: a 502 without an
/// exception type, a function flagged failed without one, and a function
/// failing with `KeyError`.
async fn app() -> axum::Router {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("errors.ring");
    let ring = ring(&path, 4096);
    write_events(&ring, EVENTS);
    let bad_gateway = Fields {
        method: Method::Get,
        status: 502,
        dur_ns: 1_000,
        value: 7,
        value2: 9,
        ..Fields::default()
    };
    ring.record(Kind::Req, ring.intern(HOSTILE[1]), &bad_gateway);
    ring.emit_fn("load_user", 10_000, true);
    let key_error = Fields {
        dur_ns: 20_000,
        flags: profilis::record::FLAG_ERROR,
        exception_type: ring.intern("KeyError"),
        ..Fields::default()
    };
    ring.record(Kind::Fn, ring.intern("load_user"), &key_error);
    router_after_draining(path)
}

async fn get(app: &axum::Router, uri: &str) -> String {
    let request = Request::get(uri).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn keys(v: &Value, want: &[&str], what: &str) {
    let got: BTreeSet<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(got, want.iter().copied().collect(), "keys of {what}");
}

#[tokio::test]
async fn exceptions_section_has_the_documented_schema_and_counts() {
    let app = app().await;
    let v: Value = serde_json::from_str(&get(&app, "/_profilis/metrics.json").await).unwrap();
    let x = &v["exceptions"];
    keys(x, &["errors", "types", "totals"], "exceptions");
    assert_eq!(x["errors"], 23, "20 timeouts, a 502, two failed functions");
    assert_eq!(
        x["errors"], v["totals"]["errors"],
        "every error is in the window"
    );
    let types = x["types"].as_array().unwrap();
    for t in types {
        keys(
            t,
            &[
                "exception",
                "count",
                "share",
                "first_seen_ns",
                "last_seen_ns",
                "names",
            ],
            "exceptions.types[]",
        );
        assert!(t["exception"].is_string() && t["share"].is_f64(), "{t}");
        let (first, last) = (&t["first_seen_ns"], &t["last_seen_ns"]);
        assert!(first.as_u64().unwrap() > 1_600_000_000_000_000_000, "{t}");
        assert!(first.as_u64() <= last.as_u64(), "{t}");
        let mut named = 0;
        for n in t["names"].as_array().unwrap() {
            keys(n, &["name", "count"], "exceptions.types[].names[]");
            named += n["count"].as_u64().unwrap();
        }
        assert_eq!(named, t["count"].as_u64().unwrap(), "names add up: {t}");
    }
    let by: Vec<(&str, u64)> = types
        .iter()
        .map(|t| {
            (
                t["exception"].as_str().unwrap(),
                t["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(by, [(TIMEOUT, 20), ("(none)", 2), ("KeyError", 1)]);
    let share: f64 = types.iter().map(|t| t["share"].as_f64().unwrap()).sum();
    assert!((share - 1.0).abs() < 1e-9, "shares add up to 1: {share}");
    assert!((types[0]["share"].as_f64().unwrap() - 20.0 / 23.0).abs() < 1e-12);
    // write_events fails every 50th event: routes 0 and 2, 10 times each.
    let names: Vec<(&str, u64)> = types[0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap(), n["count"].as_u64().unwrap()))
        .collect();
    let mut want = [(HOSTILE[0], 10), (HOSTILE[2], 10)];
    want.sort();
    assert_eq!(names, want);
    let none: BTreeSet<&str> = types[1]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(none, [HOSTILE[1], "load_user"].into_iter().collect());
    let totals: Vec<(&str, u64)> = x["totals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            keys(t, &["exception", "count"], "exceptions.totals[]");
            (
                t["exception"].as_str().unwrap(),
                t["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(totals, [("(none)", 2), ("KeyError", 1), (TIMEOUT, 20)]);
}

#[tokio::test]
async fn routes_carry_their_bytes_in_and_out() {
    let app = app().await;
    let v: Value = serde_json::from_str(&get(&app, "/_profilis/metrics.json").await).unwrap();
    let want = expected_bytes();
    let rows = v["route_stats"].as_array().unwrap();
    assert_eq!(rows.len(), want.len());
    for row in rows {
        let name = row["name"].as_str().unwrap();
        let got = (
            row["bytes_in"].as_u64().unwrap(),
            row["bytes_out"].as_u64().unwrap(),
        );
        assert_eq!(got, want[name], "{name}");
    }
    let all = &v["request_stats"];
    assert_eq!(
        all["bytes_in"].as_u64().unwrap(),
        want.values().map(|b| b.0).sum::<u64>()
    );
    assert_eq!(
        all["bytes_out"].as_u64().unwrap(),
        want.values().map(|b| b.1).sum::<u64>()
    );
    // Functions and queries have no bytes.
    for table in ["functions", "queries"] {
        for row in v[table].as_array().unwrap() {
            assert!(row.get("bytes_in").is_none(), "{table}: {row}");
            assert!(row.get("bytes_out").is_none(), "{table}: {row}");
        }
    }
}

#[tokio::test]
async fn prometheus_counts_exceptions_and_route_bytes() {
    let app = app().await;
    let text = get(&app, "/_profilis/metrics").await;
    let has = |line: &str| text.lines().any(|l| l == line);
    let label = |value: &str| {
        let mut out = String::new();
        escape_label_value(&mut out, value);
        out
    };
    assert!(has("# TYPE profilis_exceptions_total counter"));
    for (exception, n) in [(TIMEOUT, 20), ("(none)", 2), ("KeyError", 1)] {
        let line = format!(
            "profilis_exceptions_total{{exception=\"{}\"}} {n}",
            label(exception)
        );
        assert!(has(&line), "{line}");
    }
    for (route, (bytes_in, bytes_out)) in expected_bytes() {
        let route = label(route);
        for line in [
            format!("profilis_route_received_bytes_total{{route=\"{route}\"}} {bytes_in}"),
            format!("profilis_route_sent_bytes_total{{route=\"{route}\"}} {bytes_out}"),
        ] {
            assert!(has(&line), "{line}\n{text}");
        }
    }
}
