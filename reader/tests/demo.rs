//! `profilis-reader demo`: the workload runs, JSONL appears, Ctrl-C stops
//! everything cleanly and the workload process is reaped.

mod common;

use common::*;
use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn demo_runs_the_workload_and_stops_cleanly_on_ctrl_c() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let child = reader()
        .args(["demo", "--dir", dir.to_str().unwrap(), "--rate", "500"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let current = dir.join("jsonl").join("current.jsonl");
    let kinds_seen = |want: usize| {
        std::fs::read_to_string(&current).is_ok_and(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .map(|v| v["kind"].as_str().unwrap_or("").to_string())
                .collect::<HashSet<_>>()
                .len()
                >= want
        })
    };
    assert!(
        wait_until(Duration::from_secs(30), || kinds_seen(4)),
        "REQ, FN, DB and CUSTOM events reach current.jsonl"
    );
    // Ctrl-C.
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = wait_output(child, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&dir.join("jsonl").display().to_string()),
        "prints where the JSONL goes: {stderr}"
    );
    let pid: i32 = stderr
        .split("(pid ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .expect("demo prints the workload pid");
    assert!(
        wait_until(Duration::from_secs(5), || !std::path::Path::new(&format!(
            "/proc/{pid}"
        ))
        .exists()),
        "workload {pid} stopped and reaped"
    );
    let lines = read_lines(&dir.join("jsonl"));
    assert!(lines.len() > 100);
    let mut server_errors = 0;
    let mut nested = 0;
    for v in &lines {
        check_fields(v);
        assert_eq!(v["service"], "demo-shop");
        if v["kind"] == "REQ" && v["status"].as_u64().unwrap() >= 500 {
            assert_eq!(v["error"], true);
            assert!(
                v["exception_type"].is_string() && v["exception_message"].is_string(),
                "{v}"
            );
            server_errors += 1;
        }
        if v["kind"] == "FN" && v.get("parent_span_id").is_some() {
            nested += 1;
        }
    }
    assert!(nested > 0, "nested spans");
    // About 2% of requests fail; with hundreds of requests some did.
    assert!(
        server_errors > 0 || lines.len() < 2000,
        "5xx requests with exceptions"
    );
}

/// Without `--dir` the demo works in a new temporary directory and removes
/// it at exit, unless `--keep`; its JSONL stays under `--retain-bytes`
/// (64 MiB by default), and the banner says both.
#[test]
fn demo_bounds_its_jsonl_and_cleans_up_unless_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let demos = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("profilis-demo-"))
            .collect()
    };
    let run = |extra: &[&str]| {
        let out = reader()
            .env("TMPDIR", tmp.path())
            .args(["demo", "--no-ui", "--duration", "3s", "--rate", "20000"])
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    let banner = run(&[]);
    assert!(
        banner.contains("kept under 64 MiB") && banner.contains("--keep keeps it"),
        "{banner}"
    );
    assert!(demos().is_empty(), "removed at exit: {banner}");

    let banner = run(&["--keep", "--retain-bytes", "2M"]);
    assert!(banner.contains("kept under 2 MiB"), "{banner}");
    let kept = demos();
    assert_eq!(kept.len(), 1, "--keep keeps it: {banner}");
    let jsonl = kept[0].join("jsonl");
    let files = data_files(&jsonl);
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    let exported: u64 = banner
        .split("exported ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.parse().ok())
        .expect("the demo prints what it exported");
    // An event line is over 100 bytes: far more was written than is kept.
    assert!(exported * 100 > 4 << 20, "{banner}");
    assert!(
        total > 0 && total <= 2 << 20,
        "{} files, {total} bytes: {banner}",
        files.len()
    );
}
