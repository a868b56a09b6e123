//! An idle reader sleeps between rounds as long as its rings' lanes allow
//! (docs/reader.md, "Drain loop"): with the default lanes (16384 slots) up
//! to 32 ms, about 30 wake-ups a second, counted here as the drain thread's
//! voluntary context switches.

mod common;

use profilis::{Ring, RingOptions};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// The `/proc/PID/task/TID` directory of the reader's drain thread.
fn drain_thread(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
        .map(|t| t.path())
        .find(|t| {
            std::fs::read_to_string(t.join("comm")).is_ok_and(|c| c.trim() == "profilis-drain")
        })
}

fn voluntary_switches(task: &Path) -> u64 {
    let status = std::fs::read_to_string(task.join("status")).expect("reading the thread's status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("voluntary_ctxt_switches in the thread's status")
}

#[test]
fn an_idle_reader_with_the_default_lanes_wakes_about_thirty_times_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idle.ring");
    let ring = Ring::create_or_open(&path, RingOptions::default().service("idle")).unwrap();
    assert_eq!(ring.info().params.lane_slots(), 16384, "the default lanes");
    // One event, so that a writer of the ring is alive and known.
    ring.emit_fn("startup", 1_000, false);
    let mut reader = common::reader()
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting profilis-reader");
    let mut task = None;
    assert!(
        common::wait_until(Duration::from_secs(20), || {
            task = drain_thread(reader.id());
            task.is_some()
        }),
        "the reader's drain thread did not start"
    );
    let task = task.unwrap();
    // Past the first event and the backoff's first doublings.
    std::thread::sleep(Duration::from_secs(1));
    let before = voluntary_switches(&task);
    std::thread::sleep(Duration::from_secs(2));
    let woke = voluntary_switches(&task) - before;
    let _ = reader.kill();
    let _ = reader.wait();
    drop(ring);
    // 32 ms sleeps: ~62 wake-ups in 2 s (10 ms sleeps, the cap for small
    // lanes: ~200). A busy machine stretches sleeps, so only the upper
    // bound is tight; the lower one shows the right thread was counted.
    assert!(
        (10..120).contains(&woke),
        "the idle drain thread woke {woke} times in 2 s"
    );
}
