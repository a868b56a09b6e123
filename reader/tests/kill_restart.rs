//! A reader killed with SIGKILL mid-stream and started again: every event
//! lands in the JSONL files exactly once (no duplicate seq, nothing missing
//! beyond what the ring counters report as lost), and the LOSS markers add
//! up to those counters (none repeated, none missing).

mod common;

use common::*;
use std::collections::HashSet;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn sigkilled_reader_restarts_without_duplicates_or_gaps() {
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("k.ring");
    let out_dir = tmp.path().join("out");
    let ring = ring(&ring_path, 65536);
    let finished = Arc::new(AtomicBool::new(false));
    let writer = {
        let (ring, finished) = (ring.clone(), finished.clone());
        std::thread::spawn(move || {
            let (mut written, mut dropped) = (0, 0);
            for _ in 0..200 {
                let (w, d) = write_events(&ring, 1500);
                written += w;
                dropped += d;
                std::thread::sleep(Duration::from_millis(8));
            }
            finished.store(true, Relaxed);
            (written, dropped)
        })
    };
    let args = [
        ring_path.to_str().unwrap(),
        "--jsonl-dir",
        out_dir.to_str().unwrap(),
        "--rotate-bytes",
        "1M",
        "--batch-max",
        "2048",
    ];
    let mut kills = 0;
    let mut pause = 40u64;
    while !finished.load(Relaxed) && kills < 6 {
        let mut child = reader()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it drain (and write) for a while, then kill it mid-stream.
        std::thread::sleep(Duration::from_millis(pause));
        pause = pause * 7 % 150 + 30;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    let (written, dropped) = writer.join().unwrap();
    assert!(kills >= 3, "the reader was killed mid-stream {kills} times");
    let out = run_reader(
        &[&args[..], &["--once", "--accounting"]].concat(),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = &accounting(&out.stdout)[0];
    assert_eq!(a["received"], written, "every written event was delivered");
    assert_eq!(a["dropped"], dropped);
    assert_eq!(a["abandoned"], 0);
    assert_eq!(a["torn"], 0);
    assert_eq!(a["export_lost"], 0);
    let (lines, losses): (Vec<_>, Vec<_>) = read_lines(&out_dir)
        .into_iter()
        .partition(|v| v["kind"] != "LOSS");
    // LOSS markers survive the kills too: every drop marked exactly once.
    let marked: u64 = losses.iter().map(|v| v["dropped"].as_u64().unwrap()).sum();
    assert_eq!(marked, dropped, "the LOSS markers add up to the drops");
    let mut seqs = HashSet::new();
    for v in &lines {
        assert!(
            seqs.insert(v["seq"].as_u64().unwrap()),
            "duplicate seq {}",
            v["seq"]
        );
    }
    assert_eq!(
        lines.len() as u64,
        written,
        "no event missing from the JSONL"
    );
    assert!(
        !data_files(&out_dir)
            .iter()
            .any(|f| f.ends_with("current.jsonl")),
        "the leftover current.jsonl was closed"
    );
}
