//! Exporter failures are reported clearly and counted as losses; the drain
//! goes on and the ring is still emptied.

mod common;
mod otlp_receiver;

use common::*;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn unusable_jsonl_dir_is_a_counted_loss_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("e.ring");
    let ring = ring(&ring_path, 8192);
    write_events(&ring, 5000);
    // A directory below a regular file cannot be created, even by root.
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let out_dir = blocker.join("jsonl");
    let out = run_reader(
        &[
            ring_path.to_str().unwrap(),
            "--once",
            "--accounting",
            "--batch-max",
            "500",
            "--jsonl-dir",
            out_dir.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "export loss is a non-zero exit of --once: {stderr}"
    );
    assert!(stderr.contains(out_dir.to_str().unwrap()), "{stderr}");
    assert!(
        stderr.contains("5000 events could not be exported"),
        "{stderr}"
    );
    // One clear message, not one per batch.
    assert!(
        stderr.matches("JSONL exporter error").count() <= 2,
        "{stderr}"
    );
    let a = &accounting(&out.stdout)[0];
    assert_eq!(a["received"], 5000, "the ring was drained anyway");
    assert_eq!(a["export_lost"], 5000);
    assert_eq!(a["exported"], 0);
}

#[test]
fn full_disk_on_stdout_is_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("f.ring");
    let ring = ring(&ring_path, 8192);
    write_events(&ring, 3000);
    // /dev/full fails every write with ENOSPC.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let child = reader()
        .args([
            ring_path.to_str().unwrap(),
            "--once",
            "--console",
            "compact",
        ])
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        stderr.contains("3000 events could not be exported"),
        "{stderr}"
    );
}

#[test]
fn second_reader_on_the_same_jsonl_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let r1 = tmp.path().join("1.ring");
    let r2 = tmp.path().join("2.ring");
    let _a = ring(&r1, 1024);
    let _b = ring(&r2, 1024);
    let out_dir = tmp.path().join("out");
    let first = reader()
        .args([
            r1.to_str().unwrap(),
            "--jsonl-dir",
            out_dir.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || out_dir
        .join(".profilis-reader.lock")
        .exists()));
    let out = run_reader(
        &[
            r2.to_str().unwrap(),
            "--once",
            "--jsonl-dir",
            out_dir.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    let first = wait_output(first, Duration::from_secs(30));
    assert!(first.status.success());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use by another profilis-reader"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn otlp_receiver_down_counts_every_span_lost_not_exported() {
    // A port with nothing listening: every connection is refused.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("o.ring");
    let ring = ring(&ring_path, 8192);
    write_events(&ring, 3000);
    let endpoint = format!("http://{addr}");
    let out = run_reader(
        &[
            ring_path.to_str().unwrap(),
            "--once",
            "--accounting",
            "--otlp-endpoint",
            &endpoint,
            "--otlp-retry-max-elapsed",
            "300ms",
            "--otlp-timeout",
            "2s",
            "--otlp-metrics-interval",
            "0",
        ],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let a = &accounting(&out.stdout)[0];
    assert_eq!(a["received"], 3000, "the ring was drained anyway");
    let spans = a["exporters"]["otlp"]["exported"].as_u64().unwrap()
        + a["exporters"]["otlp"]["lost"].as_u64().unwrap();
    assert_eq!(
        spans, 2400,
        "every REQ/FN/DB event (not CUSTOM) is a span: {a}"
    );
    assert_eq!(
        a["exporters"]["otlp"]["exported"], 0,
        "nothing reached a receiver: {a}"
    );
    let otlp: serde_json::Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("{\"exporter\":\"otlp\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .expect("an OTLP accounting line");
    assert_eq!(otlp["spans_exported"], 0);
    let given_up = ["spans_dropped", "spans_failed", "spans_rejected"]
        .iter()
        .map(|k| otlp[*k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(
        a["exporters"]["otlp"]["lost"].as_u64().unwrap(),
        given_up,
        "the ring's lost spans are the exporter's: {a} / {otlp}"
    );
    assert_eq!(given_up, spans);
}

#[test]
fn otlp_metrics_go_on_while_span_requests_retry_and_recovery_is_per_signal() {
    use otlp_receiver::{Protocol, Receiver};
    // Every trace request is answered UNAVAILABLE (retried with backoff),
    // metrics pushes are accepted.
    let receiver = Receiver::start(Protocol::Grpc);
    receiver.fail_unavailable(usize::MAX);
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("m.ring");
    let ring = ring(&ring_path, 8192);
    let route = ring.intern("/r");
    // 20 batches: more than the span requests that may be in flight.
    for i in 0..200 {
        ring.emit_req(route, 200, 10_000 + i);
    }
    let mut child = reader()
        .arg(&ring_path)
        .args(["--no-ui", "--otlp-endpoint", &receiver.endpoint()])
        .args([
            "--otlp-batch-size",
            "10",
            "--otlp-metrics-interval",
            "200ms",
        ])
        .args(["--otlp-retry-max-elapsed", "60s", "--otlp-timeout", "2s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (_, lines) = stderr_line(&mut child, "Unavailable", Duration::from_secs(30));
    let mut seen = Vec::new();
    let pushes = || receiver.with(|r| r.metrics.len());
    let on_schedule = wait_until(Duration::from_secs(30), || {
        seen.extend(lines.try_iter());
        pushes() >= 5
    });
    let spans_arrived = receiver.span_count();
    receiver.fail_unavailable(0);
    let recovered = wait_until(Duration::from_secs(30), || {
        seen.extend(lines.try_iter());
        seen.iter().any(|l| l.contains("recovered"))
    });
    let all_arrived = wait_until(Duration::from_secs(60), || receiver.span_count() == 200);
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait_output(child, Duration::from_secs(30));
    seen.extend(lines.try_iter());
    assert!(
        on_schedule,
        "metrics pushes go on while span requests hold every slot: {} pushes; {seen:#?}",
        pushes()
    );
    assert_eq!(spans_arrived, 0, "the traces were still failing meanwhile");
    assert!(recovered, "the trace export recovers: {seen:#?}");
    let first = seen.iter().find(|l| l.contains("recovered")).unwrap();
    assert!(
        first.contains("OTLP trace export recovered"),
        "a metrics push is no recovery of the traces: {seen:#?}"
    );
    assert!(
        !seen.iter().any(|l| l.contains("OTLP metrics export")),
        "metrics never failed: {seen:#?}"
    );
    assert!(
        all_arrived,
        "{} of 200 spans arrived",
        receiver.span_count()
    );
    assert!(out.status.success());
}
