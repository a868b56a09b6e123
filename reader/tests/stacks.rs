//! Stack traces attached to error events: the reader writes them as the
//! JSONL `stack` field and serves them with the recent errors of
//! metrics.json; a stack lost to newer messages loses its message, and is
//! counted.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::*;
use http_body_util::BodyExt;
use profilis::record::FLAG_ERROR;
use profilis::{Fields, Kind, Method, Ring, StrId};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tower::ServiceExt;

const SHORT: &str = "Traceback (most recent call last):\n  File \"app.py\", line 3, in view\n    pay()\nKeyError: 'card'\n";
/// `SHORT` as the writer stores it: frame locations kept, the message's
/// quoted value redacted.
const SHORT_REDACTED: &str = "Traceback (most recent call last):\n  File \"app.py\", line 3, in view\n    pay()\nKeyError: ?\n";

/// A stack longer than a message run holds (3600 bytes with 256 slots).
fn long_stack() -> String {
    let frames: String = (0..200)
        .map(|i| format!("  File \"deep.py\", line {i}, in level_{i}\n"))
        .collect();
    format!("Traceback (most recent call last):\n{frames}RecursionError: too deep\n")
}

fn failed(ring: &Ring, route: &str, message: &str, stack: Option<&str>) {
    let fields = Fields {
        flags: FLAG_ERROR,
        method: Method::Get,
        status: 500,
        dur_ns: 1_000,
        exception_type: ring.intern("KeyError"),
        message: ring.message_with_stack(message, stack),
        ..Fields::default()
    };
    ring.record(Kind::Req, ring.intern(route), &fields);
}

/// Writes: `/lost` (its stack overwritten by 256 newer messages before any
/// reader runs), then `/long` (cut to its bound), `/short` and `/plain`
/// (a message without a stack).
fn write(path: &Path) {
    let ring = ring(path, 4096);
    failed(&ring, "/lost", "gone", Some(SHORT));
    for i in 0..256 {
        ring.message(&format!("newer {i}"));
    }
    failed(&ring, "/long", "too deep", Some(&long_stack()));
    failed(&ring, "/short", "'card'", Some(SHORT));
    failed(&ring, "/plain", "no stack", None);
    let ok = Fields {
        status: 200,
        dur_ns: 500,
        exception_type: StrId::NONE,
        ..Fields::default()
    };
    ring.record(Kind::Req, ring.intern("/ok"), &ok);
}

fn check_long(stack: &str) {
    let long = long_stack();
    assert!(stack.len() <= 3600 && stack.len() > 3000, "{}", stack.len());
    assert!(
        stack.starts_with("Traceback (most recent call last):\n[outer frames cut]\n  File"),
        "{stack}"
    );
    assert!(stack.ends_with("in level_199\nRecursionError: too deep\n"));
    assert!(long.ends_with(stack.split_once("[outer frames cut]\n").unwrap().1));
}

#[test]
fn jsonl_carries_the_stack_and_a_lost_stack_is_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("stacks.ring");
    write(&path);
    let out_dir = tmp.path().join("out");
    let out = run_reader(
        &[
            path.to_str().unwrap(),
            "--once",
            "--accounting",
            "--jsonl-dir",
            out_dir.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = read_lines(&out_dir);
    let by = |name: &str| lines.iter().find(|v| v["name"] == name).unwrap().clone();
    assert_eq!(by("/short")["stack"], SHORT_REDACTED);
    assert_eq!(by("/short")["exception_message"], "?");
    check_long(by("/long")["stack"].as_str().unwrap());
    let plain = by("/plain");
    assert_eq!(plain["exception_message"], "no stack");
    assert!(plain.get("stack").is_none(), "{plain}");
    assert!(by("/ok").get("stack").is_none());
    // The run of `/lost` was reused: message and stack are gone, counted.
    let lost = by("/lost");
    assert!(lost.get("exception_message").is_none() && lost.get("stack").is_none());
    assert_eq!(lost["exception_type"], "KeyError");
    let acct = accounting(&out.stdout);
    assert_eq!(acct[0]["messages_unread"], 1);
}

#[tokio::test]
async fn recent_errors_in_metrics_json_carry_the_stack() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("stacks.ring");
    write(&path);
    let app = router_after_draining(path);
    let response = app
        .oneshot(
            Request::get("/_profilis/metrics.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    let errors = v["errors"].as_array().unwrap();
    let by = |name: &str| errors.iter().find(|e| e["route"] == name).unwrap();
    assert_eq!(by("/short")["stack"], SHORT_REDACTED);
    check_long(by("/long")["stack"].as_str().unwrap());
    // Absent, not empty, when there is none.
    assert!(by("/plain").get("stack").is_none());
    assert!(by("/lost").get("stack").is_none());
    for e in errors {
        assert!(e.get("stack").is_none_or(Value::is_string), "{e}");
    }
    let details = v["error_details"].as_array().unwrap();
    let short = details.iter().find(|e| e["route"] == "/short").unwrap();
    assert_eq!(short["stack"], SHORT_REDACTED);
    assert!(details
        .iter()
        .all(|e| e["route"] != "/plain" || e.get("stack").is_none()));
}
