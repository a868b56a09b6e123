//! Several rings from several processes in one reader: explicit ring paths,
//! and `--watch DIR` picking up rings as processes create them. Also the
//! SIGTERM path: final drain, files closed, exit 0.

mod common;

use common::*;
use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

fn workload(ring: &std::path::Path, requests: u32, service: &str) -> std::process::Child {
    reader()
        .args([
            "workload",
            "--ring",
            ring.to_str().unwrap(),
            "--rate",
            "0",
            "--threads",
            "2",
        ])
        .args(["--requests", &requests.to_string(), "--service", service])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting workload")
}

fn lines_per_ring(lines: Vec<serde_json::Value>) -> HashMap<String, (u64, String)> {
    let mut per_ring: HashMap<String, (u64, String)> = HashMap::new();
    for v in lines {
        check_fields(&v);
        let e = per_ring
            .entry(v["ring_id"].as_str().unwrap().to_string())
            .or_default();
        e.0 += 1;
        e.1 = v["service"].as_str().unwrap_or("").to_string();
    }
    per_ring
}

#[test]
fn two_rings_from_two_processes_are_both_drained() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.ring");
    let b = tmp.path().join("b.ring");
    let mut wa = workload(&a, 400, "svc-a");
    let mut wb = workload(&b, 300, "svc-b");
    assert!(wa.wait().unwrap().success());
    assert!(wb.wait().unwrap().success());
    let out_dir = tmp.path().join("out");
    let out = run_reader(
        &[
            a.to_str().unwrap(),
            b.to_str().unwrap(),
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
    let acct = accounting(&out.stdout);
    assert_eq!(acct.len(), 2);
    let per_ring = lines_per_ring(read_lines(&out_dir));
    for (a, service) in acct.iter().zip(["svc-a", "svc-b"]) {
        let received = a["received"].as_u64().unwrap();
        // Each request emits REQ plus its FN and DB events.
        assert!(received > 1000, "{a}");
        assert_eq!(a["claimed"], received, "nothing dropped: {a}");
        let (lines, svc) = &per_ring[a["ring_id"].as_str().unwrap()];
        assert_eq!(*lines, received);
        assert_eq!(svc, service);
    }
}

#[test]
fn watch_attaches_new_rings_and_sigterm_flushes() {
    let tmp = tempfile::tempdir().unwrap();
    let watch = tmp.path().join("rings");
    std::fs::create_dir(&watch).unwrap();
    // Neither of these may stop the reader: a hidden temporary and a file
    // that is not a ring.
    std::fs::write(watch.join(".staging.ring"), b"half-made").unwrap();
    std::fs::write(watch.join("garbage.ring"), b"not a ring at all").unwrap();
    let out_dir = tmp.path().join("out");
    let child = reader()
        .args(["--watch", watch.to_str().unwrap(), "--accounting"])
        .args(["--jsonl-dir", out_dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r1 = watch.join("one.ring");
    let r2 = watch.join("two.ring");
    let mut w1 = workload(&r1, 200, "one");
    assert!(w1.wait().unwrap().success());
    let mut w2 = workload(&r2, 100, "two");
    assert!(w2.wait().unwrap().success());
    let exported = wait_until(Duration::from_secs(30), || {
        out_dir.is_dir() && {
            let per_ring = lines_per_ring(read_lines_so_far(&out_dir));
            per_ring.len() == 2 && per_ring.values().all(|(n, _)| *n > 0)
        }
    });
    assert!(exported, "events of both rings exported while running");
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait_output(child, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("garbage.ring"),
        "the bad file is reported: {stderr}"
    );
    assert!(
        !stderr.contains(".staging.ring"),
        "hidden files are skipped: {stderr}"
    );
    let acct = accounting(&out.stdout);
    assert_eq!(acct.len(), 2, "{acct:?}");
    let per_ring = lines_per_ring(read_lines(&out_dir));
    for a in &acct {
        let received = a["received"].as_u64().unwrap();
        assert_eq!(a["claimed"], received, "drained completely: {a}");
        assert_eq!(per_ring[a["ring_id"].as_str().unwrap()].0, received);
    }
    assert!(
        data_files(&out_dir)
            .iter()
            .all(|f| !f.ends_with("current.jsonl")),
        "SIGTERM closed the file"
    );
}

/// Two spellings of one ring file (`a.ring ./a.ring`, or a ring named and
/// also found by `--watch`) are one ring: attached once, drained once.
#[test]
fn two_spellings_of_one_ring_file_are_one_ring() {
    let tmp = tempfile::tempdir().unwrap();
    let sub = tmp.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let (written, _) = write_events(&ring(&tmp.path().join("a.ring"), 4096), 300);
    let out = reader()
        .current_dir(tmp.path())
        .args([
            "a.ring",
            "./a.ring",
            "sub/../a.ring",
            "--once",
            "--accounting",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let accounts = accounting(&out.stdout);
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(accounts[0]["received"].as_u64(), Some(written));

    // Named, and in the watched directory under another spelling.
    let out_dir = tmp.path().join("out");
    let mut child = reader()
        .current_dir(&sub)
        .args(["../a.ring", "--watch", ".."])
        .args(["--jsonl-dir", out_dir.to_str().unwrap(), "--no-ui"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let more = write_events(&ring(&tmp.path().join("a.ring"), 4096), 100).0;
    assert!(
        wait_until(Duration::from_secs(30), || out_dir.is_dir()
            && read_lines_so_far(&out_dir).len() as u64 == more),
        "the new events are exported"
    );
    // Several scans of the watched directory (every 500 ms) go by.
    std::thread::sleep(Duration::from_millis(1200));
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stderr = child.stderr.take().unwrap();
    let out = wait_output(child, Duration::from_secs(30));
    assert!(out.status.success());
    let stderr = std::io::read_to_string(stderr).unwrap();
    assert!(
        !stderr.contains("already has a consumer"),
        "attached once: {stderr}"
    );
}
