//! `--once` end to end: a writer fills a ring, the reader process drains it
//! into JSONL files, and every event is in the files exactly once.

mod common;

use common::*;
use std::collections::HashSet;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn once_exports_every_event_exactly_once_across_rotated_files() {
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("app.ring");
    let ring = ring(&ring_path, 65536);
    let (written, dropped) = write_events(&ring, 60_000);
    assert_eq!((written, dropped), (60_000, 0));
    let out_dir = tmp.path().join("out");
    let out = run_reader(
        &[
            ring_path.to_str().unwrap(),
            "--once",
            "--accounting",
            "--jsonl-dir",
            out_dir.to_str().unwrap(),
            "--rotate-bytes",
            "2M",
            "--batch-max",
            "1024",
        ],
        DEADLINE,
    );
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acct = accounting(&out.stdout);
    assert_eq!(acct.len(), 1);
    let a = &acct[0];
    assert_eq!(a["received"], 60_000);
    assert_eq!(a["claimed"], 60_000);
    assert_eq!(a["exported"], 60_000);
    assert_eq!(a["export_lost"], 0);
    assert_eq!(a["dropped"], 0);

    let files = data_files(&out_dir);
    assert!(files.len() >= 3, "rotation made several files: {files:?}");
    assert!(
        files
            .iter()
            .all(|f| f.extension().is_some_and(|e| e == "jsonl")),
        "only closed files remain after exit: {files:?}"
    );
    let lines = read_lines(&out_dir);
    assert_eq!(lines.len(), 60_000);
    let mut seqs = HashSet::new();
    let mut kinds = HashSet::new();
    let mut hostile_seen = HashSet::new();
    let mut messages = 0;
    let mut failed = 0u64;
    for v in &lines {
        check_fields(v);
        assert_eq!(v["ring_id"], a["ring_id"]);
        assert!(
            seqs.insert(v["seq"].as_u64().unwrap()),
            "duplicate seq in {v}"
        );
        kinds.insert(v["kind"].as_str().unwrap().to_string());
        assert_eq!(v["service"], "test-svc");
        let name = v["name"].as_str().unwrap();
        if HOSTILE.contains(&name) {
            hostile_seen.insert(name.to_string());
        }
        if v["kind"] == "REQ" && v["status"] == 503 {
            assert_eq!(v["error"], true);
            assert_eq!(v["exception_type"], "Timeout\"Error\"");
            failed += 1;
            // The ring keeps the latest 256 messages; older ones are gone
            // by the time this reader runs, and then the field is absent.
            if let Some(m) = v.get("exception_message") {
                // Redacted in the writer (digits, quoted values).
                assert_eq!(m, "line ?\nline ? \\ end");
                messages += 1;
            }
        }
        if v["kind"] == "FN" {
            assert!(
                v.get("trace_id").is_some() && v.get("parent_span_id").is_some(),
                "{v}"
            );
        }
    }
    assert_eq!(seqs, (0..60_000).collect::<HashSet<u64>>());
    assert!(
        messages > 100,
        "recent exception messages exported: {messages}"
    );
    // Every message text overwritten before the reader got to it is
    // counted, exactly: one per event that lost its text.
    assert!(failed > messages, "some texts were overwritten: {failed}");
    assert_eq!(a["messages_unread"], failed - messages);
    assert_eq!(a["names_unresolved"], 0);
    assert_eq!(kinds.len(), 4, "every kind exported: {kinds:?}");
    assert_eq!(
        hostile_seen.len(),
        HOSTILE.len(),
        "hostile names round-trip"
    );
}

#[test]
fn drops_of_a_full_ring_are_counted_and_the_rest_exported() {
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("small.ring");
    let ring = ring(&ring_path, 4096);
    let (written, dropped) = write_events(&ring, 10_000);
    assert_eq!(written, 4096);
    let out_dir = tmp.path().join("out");
    let out = run_reader(
        &[
            ring_path.to_str().unwrap(),
            "--once",
            "--accounting",
            "--jsonl-dir",
            out_dir.to_str().unwrap(),
        ],
        DEADLINE,
    );
    assert!(out.status.success());
    let a = &accounting(&out.stdout)[0];
    assert_eq!(a["claimed"], 10_000);
    assert_eq!(a["dropped"], dropped);
    assert_eq!(a["received"], written);
    let lines = read_lines(&out_dir);
    let (events, losses): (Vec<_>, Vec<_>) = lines.iter().partition(|v| v["kind"] != "LOSS");
    assert_eq!(events.len() as u64, 10_000 - dropped);
    // The drops, as one marker charged to this process, before the events
    // (they happened before the reader attached).
    assert_eq!(losses.len(), 1, "{losses:?}");
    let m = losses[0];
    assert_eq!(m["dropped"], dropped);
    assert_eq!(
        (m["abandoned"].as_u64(), m["torn"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(m["pid"], std::process::id());
    assert_eq!(m["service"], "test-svc");
    assert_eq!(m["cumulative"]["dropped"], dropped);
    assert!(m["from_ts_ns"].as_u64() <= m["to_ts_ns"].as_u64());
    assert_eq!(lines[0]["kind"], "LOSS");
}

fn compressed_run(kind: &str, ext: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("c.ring");
    let ring = ring(&ring_path, 65536);
    write_events(&ring, 30_000);
    let out_dir = tmp.path().join("out");
    let out = run_reader(
        &[
            ring_path.to_str().unwrap(),
            "--once",
            "--jsonl-dir",
            out_dir.to_str().unwrap(),
            "--rotate-bytes",
            "1M",
            "--batch-max",
            "512",
            "--compress",
            kind,
        ],
        DEADLINE,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = data_files(&out_dir);
    assert!(files.len() >= 3, "{files:?}");
    assert!(
        files.iter().all(|f| f.to_string_lossy().ends_with(ext)),
        "every closed file compressed: {files:?}"
    );
    let lines = read_lines(&out_dir);
    assert_eq!(lines.len(), 30_000);
    lines.iter().for_each(check_fields);
}

#[test]
fn gzip_rotated_files_decompress_to_valid_jsonl() {
    compressed_run("gzip", ".jsonl.gz");
}

#[test]
fn zstd_rotated_files_decompress_to_valid_jsonl() {
    compressed_run("zstd", ".jsonl.zst");
}

#[test]
fn retention_keeps_the_newest_files() {
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("r.ring");
    let ring = ring(&ring_path, 65536);
    write_events(&ring, 30_000);
    let out_dir = tmp.path().join("out");
    let out = run_reader(
        &[
            ring_path.to_str().unwrap(),
            "--once",
            "--jsonl-dir",
            out_dir.to_str().unwrap(),
            "--rotate-bytes",
            "512K",
            "--batch-max",
            "256",
            "--retain-files",
            "2",
        ],
        DEADLINE,
    );
    assert!(out.status.success());
    let files = data_files(&out_dir);
    assert_eq!(files.len(), 2, "{files:?}");
    let lines = read_lines(&out_dir);
    // The newest files hold the newest events.
    let max_seq = lines.iter().map(|v| v["seq"].as_u64().unwrap()).max();
    assert_eq!(max_seq, Some(29_999));
}

#[test]
fn missing_ring_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_reader(
        &[tmp.path().join("nope.ring").to_str().unwrap(), "--once"],
        DEADLINE,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not exist") && err.contains("--wait"),
        "{err}"
    );
}

#[test]
fn wait_attaches_a_ring_that_appears_later() {
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("later.ring");
    let child = reader()
        .args([
            ring_path.to_str().unwrap(),
            "--wait",
            "--once",
            "--accounting",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Fill the ring under another name, then move it into place at once.
    let staging = tmp.path().join("staging.ring");
    let ring = ring(&staging, 4096);
    write_events(&ring, 1000);
    std::fs::rename(&staging, &ring_path).unwrap();
    let out = wait_output(child, DEADLINE);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(accounting(&out.stdout)[0]["received"], 1000);
}

#[test]
fn once_counts_an_event_begun_and_never_finished_as_abandoned() {
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("stall.ring");
    let ring = ring(&ring_path, 4096);
    // A two-phase event begun and dropped without being committed.
    let claimed = ring.claim().map(|c| c.position());
    assert_eq!(claimed.ok(), Some(0));
    write_events(&ring, 10);
    let out = run_reader(
        &[
            ring_path.to_str().unwrap(),
            "--once",
            "--accounting",
            "--liveness-interval",
            "100ms",
        ],
        DEADLINE,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = &accounting(&out.stdout)[0];
    assert_eq!(
        (a["abandoned"].as_u64(), a["received"].as_u64()),
        (Some(1), Some(10))
    );
    assert_eq!(a["claimed"], 11);
    assert_eq!(a["lag"], 0);
}
