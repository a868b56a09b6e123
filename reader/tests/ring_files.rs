//! The life cycle of ring files: the reader removes the file of a ring
//! whose writers have all exited once every event is exported and the
//! post-mortems taken (never while a process still has it open, never with
//! `--once` or `--keep-rings`), attaches the next file created at a named
//! path, and `profilis-reader gc` lists stale rings and removes them only
//! when asked.
//!
//! The binary re-executes itself as the writer processes
//! (`PROFILIS_TEST_ROLE=writer|crasher|holder`), so it runs without the
//! test harness (`harness = false` in Cargo.toml).

mod common;

use common::*;
use profilis::{Emit, Ring, RingOptions};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

const ROLE: &str = "PROFILIS_TEST_ROLE";
const DEADLINE: Duration = Duration::from_secs(30);

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("writer") => return writer(),
        Ok("crasher") => return crasher(),
        Ok("holder") => return holder(),
        _ => {}
    }
    profilis::testing::run_tests(&[
        (
            "a_finished_ring_is_removed_after_export_and_its_path_attached_again",
            removed_and_attached_again,
        ),
        (
            "a_crashed_writers_ring_goes_only_after_its_postmortem",
            crashed_writer,
        ),
        (
            "a_ring_open_in_another_process_is_kept_until_it_closes",
            held_open,
        ),
        (
            "a_named_ring_removed_by_someone_else_is_waited_for_again",
            removed_elsewhere,
        ),
        (
            "an_application_restarted_again_and_again_leaves_bounded_figures",
            restarted_often,
        ),
        (
            "exit_when_unused_ends_the_reader_after_the_last_process_of_its_ring",
            exit_when_unused,
        ),
        ("once_and_keep_rings_never_remove_a_file", never_removed),
        ("gc_lists_stale_rings_and_removes_only_those", gc),
    ]);
}

fn env_u64(name: &str) -> u64 {
    std::env::var(name).map_or(0, |v| v.parse().unwrap())
}

fn open_ring() -> Ring {
    let path = PathBuf::from(std::env::var("PROFILIS_RING").unwrap());
    Ring::create_or_open(&path, RingOptions::default().capacity(4096).lanes(2)).unwrap()
}

/// Writes `PROFILIS_TEST_EVENTS` requests and exits.
fn writer() {
    let ring = open_ring();
    for i in 0..env_u64("PROFILIS_TEST_EVENTS") {
        assert_eq!(ring.emit_req("/api/orders", 200, 1000 + i), Emit::Written);
    }
}

/// Writes `PROFILIS_TEST_EVENTS` requests, begins one more and stays in the
/// middle of it, says so in `PROFILIS_TEST_READY`, and waits to be killed.
fn crasher() {
    let ring = open_ring();
    for i in 0..env_u64("PROFILIS_TEST_EVENTS") {
        assert_eq!(ring.emit_req("/api/pay", 500, 1000 + i), Emit::Written);
    }
    let _claim = ring.claim().unwrap();
    ready_and_wait();
}

/// Opens the ring and writes nothing (so it is in none of the ring's
/// tables), says so, and waits to be killed.
fn holder() {
    let _ring = Ring::open(std::env::var("PROFILIS_RING").unwrap()).unwrap();
    ready_and_wait();
}

fn ready_and_wait() {
    std::fs::write(std::env::var("PROFILIS_TEST_READY").unwrap(), b"ready").unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn spawn(role: &str, ring: &Path, events: u64, ready: Option<&Path>) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(ROLE, role)
        .env("PROFILIS_RING", ring)
        .env("PROFILIS_TEST_EVENTS", events.to_string())
        .stdin(Stdio::null());
    if let Some(ready) = ready {
        cmd.env("PROFILIS_TEST_READY", ready);
    }
    let child = cmd.spawn().unwrap();
    if let Some(ready) = ready {
        assert!(wait_until(DEADLINE, || ready.exists()), "{role} is ready");
    }
    child
}

/// Runs a writer of `events` requests to completion.
fn write(ring: &Path, events: u64) -> u32 {
    let mut child = spawn("writer", ring, events, None);
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    pid
}

/// A reader running in the background, its stderr read line by line.
struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = reader()
            .args(args)
            .args(["--flush-interval", "100ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `marker`; returns it.
    fn line(&mut self, marker: &str) -> String {
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(50)) {
                self.seen.push(line.clone());
                if line.contains(marker) {
                    return line;
                }
            }
        }
        panic!("no stderr line with {marker:?}; got: {:#?}", self.seen);
    }

    /// SIGTERM; waits for a clean exit and returns the accounting lines.
    fn stop(self) -> Vec<serde_json::Value> {
        // SAFETY: kill with our child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let out = wait_output(self.child, DEADLINE);
        assert!(out.status.success(), "{:?}", self.seen);
        accounting(&out.stdout)
    }
}

fn requests(dir: &Path) -> Vec<serde_json::Value> {
    if !dir.is_dir() {
        return Vec::new();
    }
    read_lines(dir)
        .into_iter()
        .filter(|v| v["kind"] == "REQ")
        .collect()
}

/// A named ring whose writer exited: its events reach the JSONL, then its
/// file goes. The next process that creates a ring at that path gets it
/// drained too, and its file goes the same way.
fn removed_and_attached_again() {
    let tmp = tempfile::tempdir().unwrap();
    let ring = tmp.path().join("app.ring");
    let out = tmp.path().join("out");
    write(&ring, 500);
    let mut reader = Running::start(&[
        ring.to_str().unwrap(),
        "--jsonl-dir",
        out.to_str().unwrap(),
        "--accounting",
        "--no-ui",
    ]);
    let line = reader.line("removed ring file");
    assert!(line.contains(ring.to_str().unwrap()), "{line}");
    assert!(!ring.exists(), "the file is gone");
    assert_eq!(
        requests(&out).len(),
        500,
        "every event was exported before the file went"
    );

    write(&ring, 300);
    reader.line("attached");
    reader.line("removed ring file");
    assert!(!ring.exists());
    let events = requests(&out);
    assert_eq!(events.len(), 800);
    let ring_ids: std::collections::HashSet<&str> = events
        .iter()
        .map(|v| v["ring_id"].as_str().unwrap())
        .collect();
    assert_eq!(ring_ids.len(), 2, "two rings, one after the other");
    let accounts = reader.stop();
    let exported: u64 = accounts
        .iter()
        .map(|a| a["exported"].as_u64().unwrap())
        .sum();
    assert_eq!((accounts.len(), exported), (2, 800), "{accounts:?}");
}

/// A writer killed in the middle of an event: the reader drains its events,
/// counts the claim it died in, and takes its post-mortem, all before the
/// file goes; the post-mortem is still served after.
fn crashed_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let ring = tmp.path().join("crash.ring");
    let ready = tmp.path().join("ready");
    let out = tmp.path().join("out");
    let mut crasher = spawn("crasher", &ring, 40, Some(&ready));
    let pid = crasher.id();
    let mut reader = Running::start(&[
        ring.to_str().unwrap(),
        "--jsonl-dir",
        out.to_str().unwrap(),
        "--accounting",
    ]);
    let url = reader.line("dashboard at");
    let addr = url
        .split("http://")
        .nth(1)
        .and_then(|u| u.split('/').next())
        .unwrap()
        .to_string();
    assert!(wait_until(DEADLINE, || requests(&out).len() == 40));
    assert!(ring.exists(), "kept while its writer runs");
    crasher.kill().unwrap();
    crasher.wait().unwrap();
    reader.line("removed ring file");
    assert!(!ring.exists());
    let (status, _, body) = http_get(&addr, "/_profilis/metrics.json", &[]);
    assert_eq!(status, 200);
    let metrics: serde_json::Value = serde_json::from_str(&body).unwrap();
    let summary = metrics["postmortems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("the post-mortem of {pid}: {metrics}"));
    assert_eq!(
        (
            summary["events_drained"].as_u64(),
            summary["events_kept"].as_u64(),
            summary["losses"]["abandoned"].as_u64()
        ),
        (Some(40), Some(40), Some(1)),
        "{summary}"
    );
    let ring_id = summary["ring_id"].as_str().unwrap();
    let (status, _, body) = http_get(
        &addr,
        &format!("/_profilis/postmortem/{ring_id}/{pid}.jsonl"),
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(body.lines().count(), 40, "its events, after the file went");
    let accounts = reader.stop();
    assert_eq!(accounts.len(), 1);
    let a = &accounts[0];
    assert_eq!(
        (
            a["received"].as_u64(),
            a["abandoned"].as_u64(),
            a["lag"].as_u64()
        ),
        (Some(40), Some(1), Some(0)),
        "the claim it died in is counted: {a}"
    );
}

/// A process that opened the ring and wrote nothing is in none of its
/// tables; `/proc` shows it has the file, which stays until it exits.
fn held_open() {
    let tmp = tempfile::tempdir().unwrap();
    let ring = tmp.path().join("held.ring");
    let ready = tmp.path().join("ready");
    let out = tmp.path().join("out");
    write(&ring, 100);
    let mut holder = spawn("holder", &ring, 0, Some(&ready));
    let mut reader = Running::start(&[
        ring.to_str().unwrap(),
        "--jsonl-dir",
        out.to_str().unwrap(),
        "--no-ui",
    ]);
    assert!(wait_until(DEADLINE, || requests(&out).len() == 100));
    // Several looks at the finished ring (every 500 ms) go by.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(ring.exists(), "kept while another process has it open");
    holder.kill().unwrap();
    holder.wait().unwrap();
    reader.line("removed ring file");
    assert!(!ring.exists());
    reader.stop();
}

/// `--exit-when-unused`: the reader keeps running while a process has the
/// ring open (one that wrote nothing is seen in `/proc`), and exits by
/// itself, every event exported, once none has for the grace period.
fn exit_when_unused() {
    let tmp = tempfile::tempdir().unwrap();
    let ring = tmp.path().join("sidecar.ring");
    let ready = tmp.path().join("ready");
    let out = tmp.path().join("out");
    write(&ring, 100);
    let mut holder = spawn("holder", &ring, 0, Some(&ready));
    let mut reader = Running::start(&[
        ring.to_str().unwrap(),
        "--jsonl-dir",
        out.to_str().unwrap(),
        "--accounting",
        "--no-ui",
        "--exit-when-unused",
        "300ms",
    ]);
    assert!(wait_until(DEADLINE, || requests(&out).len() == 100));
    // Several looks (twice a second) while the holder runs.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        reader.child.try_wait().unwrap().is_none(),
        "runs while the ring is open elsewhere"
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
    reader.line("exiting (--exit-when-unused)");
    let out_status = wait_output(reader.child, DEADLINE);
    assert!(out_status.status.success(), "{:?}", reader.seen);
    let accounts = accounting(&out_status.stdout);
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(accounts[0]["exported"].as_u64(), Some(100), "{accounts:?}");
}

/// A named ring whose file someone else removed while its writer ran: the
/// reader drains the writer to its end, then waits for the next file at
/// that path, as for one it removed itself.
fn removed_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let ring = tmp.path().join("app.ring");
    let ready = tmp.path().join("ready");
    let out = tmp.path().join("out");
    let mut crasher = spawn("crasher", &ring, 25, Some(&ready));
    let mut reader = Running::start(&[
        ring.to_str().unwrap(),
        "--jsonl-dir",
        out.to_str().unwrap(),
        "--no-ui",
    ]);
    assert!(wait_until(DEADLINE, || requests(&out).len() == 25));
    std::fs::remove_file(&ring).unwrap();
    crasher.kill().unwrap();
    crasher.wait().unwrap();
    write(&ring, 10);
    reader.line("attached");
    assert!(wait_until(DEADLINE, || requests(&out).len() == 35));
    reader.line("removed ring file");
    reader.stop();
}

/// Each run of an application that exits makes a new ring at the same
/// path; the reader keeps the figures of at most `--max-rings` rings it
/// detached, the latest.
fn restarted_often() {
    let tmp = tempfile::tempdir().unwrap();
    let ring = tmp.path().join("app.ring");
    let out = tmp.path().join("out");
    let mut reader = Running::start(&[
        ring.to_str().unwrap(),
        "--wait",
        "--max-rings",
        "2",
        "--accounting",
        "--jsonl-dir",
        out.to_str().unwrap(),
        "--no-ui",
    ]);
    for run in 1..=4u64 {
        write(&ring, 10 * run);
        reader.line("removed ring file");
    }
    assert_eq!(requests(&out).len(), 100, "every run's events exported");
    let accounts = reader.stop();
    let received: Vec<u64> = accounts
        .iter()
        .map(|a| a["received"].as_u64().unwrap())
        .collect();
    assert_eq!(received.len(), 2, "the last two rings: {accounts:?}");
    assert_eq!(received.iter().sum::<u64>(), 30 + 40, "{accounts:?}");
}

/// `--once` leaves every file as it found it, and `--keep-rings` keeps
/// the files of finished rings.
fn never_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let ring = tmp.path().join("kept.ring");
    let out = tmp.path().join("out");
    write(&ring, 100);
    let done = run_reader(
        &[
            ring.to_str().unwrap(),
            "--once",
            "--jsonl-dir",
            out.to_str().unwrap(),
        ],
        DEADLINE,
    );
    assert!(done.status.success());
    assert_eq!(requests(&out).len(), 100);
    assert!(ring.exists(), "--once removes nothing");

    write(&ring, 50);
    let reader = Running::start(&[
        ring.to_str().unwrap(),
        "--jsonl-dir",
        out.to_str().unwrap(),
        "--keep-rings",
        "--no-ui",
    ]);
    assert!(wait_until(DEADLINE, || requests(&out).len() == 150));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(ring.exists(), "--keep-rings keeps it");
    reader.stop();
    assert!(ring.exists());
}

/// `gc` on a directory: a drained ring of an exited writer and a ring
/// never written are stale; one with events nobody drained, one with a
/// running writer, one a reader is attached to, and a file that is no ring
/// are listed and kept. Nothing is removed without `--remove`, and with it
/// only the stale ones.
fn gc() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shm");
    std::fs::create_dir(&dir).unwrap();
    let path = |name: &str| dir.join(name);
    // Drained by a --once run: stale.
    let writer = write(&path("drained.ring"), 20);
    assert!(run_reader(
        &[path("drained.ring").to_str().unwrap(), "--once"],
        DEADLINE
    )
    .status
    .success());
    // Created and never written, its creator gone: stale.
    drop(Ring::create_or_open(path("empty.ring"), RingOptions::default()).unwrap());
    // Events nobody drained.
    write(&path("unread.ring"), 30);
    // A writer that runs.
    let ready = tmp.path().join("ready");
    let mut running = spawn("crasher", &path("live.ring"), 5, Some(&ready));
    // A reader attached (and told to keep the file).
    write(&path("attached.ring"), 10);
    let mut attached = Running::start(&[path("attached.ring").to_str().unwrap(), "--keep-rings"]);
    attached.line("dashboard at");
    // Not a ring.
    std::fs::write(path("garbage.ring"), [0u8; 5000]).unwrap();
    std::fs::set_permissions(
        path("garbage.ring"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();

    let gc = |remove: bool| {
        let mut args = vec!["gc", dir.to_str().unwrap()];
        if remove {
            args.push("--remove");
        }
        let out = run_reader(&args, DEADLINE);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let verdict = |listing: &str, name: &str| -> String {
        listing
            .lines()
            .find(|l| l.contains(&format!("/{name} ")))
            .unwrap_or_else(|| panic!("{name} in {listing}"))
            .to_string()
    };
    let listing = gc(false);
    let expect = [
        ("drained.ring", "stale", format!("writer {writer} exited")),
        ("empty.ring", "stale", "never written".to_string()),
        ("unread.ring", "unread", "30 events not drained".to_string()),
        (
            "live.ring",
            "in use",
            format!("writer pid {} is running", running.id()),
        ),
        (
            "attached.ring",
            "in use",
            "a reader is attached".to_string(),
        ),
        (
            "garbage.ring",
            "skipped",
            "not a Profilis ring file".to_string(),
        ),
    ];
    for (name, state, detail) in &expect {
        let line = verdict(&listing, name);
        assert!(
            line.starts_with(state) && line.contains(detail.as_str()),
            "{name}: {line}"
        );
        assert!(
            path(name).exists(),
            "{name}: nothing removed without --remove"
        );
    }
    assert!(listing.contains("2 stale ring files"), "{listing}");
    assert!(
        listing.contains("--remove"),
        "says how to remove them: {listing}"
    );

    let listing = gc(true);
    for (name, state, _) in &expect {
        let removed = *state == "stale";
        assert_eq!(path(name).exists(), !removed, "{name}: {listing}");
        if removed {
            assert!(verdict(&listing, name).starts_with("removed"), "{listing}");
        }
    }
    assert!(listing.contains("removed 2 stale ring files"), "{listing}");
    running.kill().unwrap();
    running.wait().unwrap();
    attached.stop();
}
