//! The dashboard as a user runs it: `profilis-reader RING` with a token in
//! the environment and debug logging, and `profilis-reader demo`.

mod common;

use common::*;
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;

const TOKEN: &str = "env-token-7f3a9c1e5b2d4086";

#[test]
fn reader_serves_the_dashboard_and_never_shows_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("app.ring");
    let ring = ring(&ring_path, 4096);
    write_events(&ring, 500);
    let mut child = reader()
        .arg(&ring_path)
        .args(["--flush-interval", "100ms"])
        .env("PROFILIS_UI_TOKEN", TOKEN)
        .env("PROFILIS_DEBUG", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (line, lines) = stderr_line(&mut child, "dashboard at", Duration::from_secs(20));
    let (addr, prefix) = dashboard_url(&line);
    assert_eq!(prefix, "/_profilis/");
    let auth = format!("Authorization: Bearer {TOKEN}");
    assert!(
        wait_until(Duration::from_secs(20), || {
            let (status, _, body) = http_get(&addr, "/_profilis/metrics.json", &[&auth]);
            status == 200
                && serde_json::from_str::<Value>(&body).is_ok_and(|v| v["requests"]["total"] == 200)
        }),
        "metrics.json shows the 200 requests written"
    );
    assert_eq!(http_get(&addr, "/_profilis/health", &[]).0, 401);
    let (status, headers, _) = http_get(&addr, &format!("/_profilis/?token={TOKEN}"), &[]);
    assert_eq!(status, 303);
    assert!(headers.contains("set-cookie: profilis_session="));
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(TOKEN));

    // SIGTERM: the drain finishes and the server stops.
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait_output(child, Duration::from_secs(20));
    assert!(out.status.success());
    let log: Vec<String> = lines.try_iter().collect();
    assert!(
        log.iter()
            .any(|l| l.contains("http request") && l.contains("/_profilis/metrics.json")),
        "PROFILIS_DEBUG=1 logs requests: {log:#?}"
    );
    for l in log.iter().chain([&line]) {
        assert!(!l.contains(TOKEN), "the token leaked into the log: {l}");
    }
    assert!(std::net::TcpStream::connect(&addr).is_err());
}

#[test]
fn bad_ui_options_fail_before_draining() {
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("app.ring");
    drop(ring(&ring_path, 1024));
    let path = ring_path.to_str().unwrap();
    let out = run_reader(&[path, "--ui-https-only"], Duration::from_secs(20));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tls-cert"), "{stderr}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run_reader(&[path, "--ui-addr", &addr], Duration::from_secs(20));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&addr) && stderr.contains("--no-ui"),
        "{stderr}"
    );
    // --no-ui and --once need no port.
    let out = run_reader(
        &[path, "--ui-addr", &addr, "--once"],
        Duration::from_secs(20),
    );
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("dashboard at"));
}

#[test]
fn demo_prints_a_working_dashboard_url() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = reader()
        .args(["demo", "--rate", "500", "--dir"])
        .arg(tmp.path().join("demo"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (line, _lines) = stderr_line(&mut child, "dashboard:", Duration::from_secs(20));
    let (addr, prefix) = dashboard_url(&line);
    assert_eq!(prefix, "/_profilis/");
    let (status, _, page) = http_get(&addr, "/_profilis/", &[]);
    assert_eq!(status, 200);
    assert!(page.contains("data-view=\"dashboard\""));
    assert!(
        wait_until(Duration::from_secs(30), || {
            let (_, _, body) = http_get(&addr, "/_profilis/metrics.json", &[]);
            serde_json::from_str::<Value>(&body).is_ok_and(|v| {
                v["requests"]["total"].as_u64() > Some(0)
                    && v["routes"].as_object().is_some_and(|r| !r.is_empty())
            })
        }),
        "the demo's requests reach the dashboard"
    );
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = wait_output(child, Duration::from_secs(30));
    assert!(out.status.success());
}
