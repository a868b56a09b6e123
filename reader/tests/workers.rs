//! Worker processes of one service: merged percentiles across processes and
//! rings, and a worker SIGKILLed in the middle of an event (dead in health,
//! its last events in the post-mortem, its losses in LOSS markers that add up
//! to the ring counters).
//!
//! The binary re-executes itself as the worker processes
//! (`PROFILIS_TEST_ROLE=worker|victim|filler`), so it runs without the test
//! harness (`harness = false` in Cargo.toml).

mod common;

use common::*;
use profilis::{Emit, Fields, Kind, Method, Ring, RingOptions};
use profilis_reader::app::drain::{Drain, DrainOptions, ProducerOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROLE: &str = "PROFILIS_TEST_ROLE";
const SERVICE: &str = "svc";
const ROUTES: [&str; 3] = ["/api/a", "/api/b", "/api/c"];
const EVENTS_PER_WORKER: u64 = 6000;
/// Events the victim writes before the one it dies in the middle of.
const VICTIM_EVENTS: u64 = 120;
/// The ring of the victim and the filler: two lanes of 256 slots, the
/// victim's own and the shared one the filler writes through.
const SMALL_RING: u64 = 512;
const POSTMORTEM_EVENTS: u64 = 50;
const DEADLINE: Duration = Duration::from_secs(30);

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("worker") => return worker(),
        Ok("victim") => return victim(),
        Ok("filler") => return filler(),
        _ => {}
    }
    profilis::testing::run_tests(&[
        (
            "four_workers_in_two_rings_merge_into_exact_percentiles",
            four_workers,
        ),
        (
            "worker_killed_mid_event_is_dead_with_its_last_events_and_exact_losses",
            killed_worker,
        ),
    ]);
}

fn env_u64(name: &str) -> u64 {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is set"))
        .parse()
        .unwrap()
}

fn open_ring(capacity: u64) -> Ring {
    let path = PathBuf::from(std::env::var("PROFILIS_RING").unwrap());
    Ring::create_or_open(
        &path,
        RingOptions::default()
            .capacity(capacity)
            .lanes(2)
            .service(SERVICE),
    )
    .unwrap()
}

/// The duration of request `i` of worker `worker`: log-uniform from 10 µs to
/// about 80 ms, with a different spread per worker and route.
fn duration(worker: u64, i: u64) -> (usize, u64) {
    let mut x =
        (worker + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    let route = (x % ROUTES.len() as u64) as usize;
    let u = ((x >> 8) % 1_000_000) as f64 / 1e6;
    let scale = 1.0 + worker as f64 * 0.5 + route as f64;
    (route, (10_000.0 * (u * 12.0 * scale.sqrt()).exp2()) as u64)
}

/// Worker process: `EVENTS_PER_WORKER` requests with known durations.
fn worker() {
    let id = env_u64("PROFILIS_TEST_WORKER");
    let ring = open_ring(1 << 15);
    for i in 0..EVENTS_PER_WORKER {
        let (route, dur) = duration(id, i);
        assert_eq!(ring.emit_req(ROUTES[route], 200, dur), Emit::Written);
    }
}

fn checkout(ring: &Ring, seq: u64) -> Emit {
    let fields = Fields {
        method: Method::Post,
        status: 200,
        dur_ns: 1_000_000 + seq,
        value: seq, // bytes_in: tells the events apart
        ..Fields::default()
    };
    ring.record(Kind::Req, ring.intern("/checkout"), &fields)
}

/// The stack trace of the victim's last event, an error.
const VICTIM_STACK: &str = "Traceback (most recent call last):\n  File \"shop.py\", line 12, in checkout\n    charge(card)\nPaymentError: declined\n";

/// Victim: writes its events (the last one an error with a stack trace),
/// begins one more and stays in the middle of it, says so in
/// `PROFILIS_TEST_READY`, then waits to be killed.
fn victim() {
    let ring = open_ring(SMALL_RING);
    for seq in 0..VICTIM_EVENTS - 1 {
        assert_eq!(checkout(&ring, seq), Emit::Written);
    }
    let seq = VICTIM_EVENTS - 1;
    let failed = Fields {
        method: Method::Post,
        status: 500,
        dur_ns: 1_000_000 + seq,
        value: seq,
        exception_type: ring.intern("PaymentError"),
        message: ring.message_with_stack("declined", Some(VICTIM_STACK)),
        ..Fields::default()
    };
    assert_eq!(
        ring.record(Kind::Req, ring.intern("/checkout"), &failed),
        Emit::Written
    );
    let _claim = ring.claim().unwrap();
    std::fs::write(std::env::var("PROFILIS_TEST_READY").unwrap(), b"ready").unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Filler: emits as fast as it can into its lane (the shared one: the
/// victim holds the other) until the reader falls behind and events are
/// refused, then 100 more; prints how many were written and dropped.
fn filler() {
    let ring = open_ring(SMALL_RING);
    let (mut written, mut dropped) = (0u64, 0u64);
    let mut i = 0;
    while dropped < 100 {
        assert!(i < 50_000_000, "the reader never fell behind");
        match ring.emit_fn("fill", 1000 + i, false) {
            Emit::Written => written += 1,
            Emit::Dropped => dropped += 1,
            other => panic!("{other:?}"),
        }
        i += 1;
    }
    println!("{written} {dropped}");
}

fn spawn(role: &str, ring: &Path, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(ROLE, role)
        .env("PROFILIS_RING", ring)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn exact(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn close(got: u64, want: u64, what: &str) {
    // Two significant digits (1%), and the 1 µs lowest discernible value.
    assert!(
        got.abs_diff(want) <= want / 100 + 1000,
        "{what}: histogram {got}, exact {want}"
    );
}

/// Four worker processes of service "svc", two per ring: one merged view per
/// route whose percentiles are those of the union of every worker's events,
/// and a per-worker breakdown that adds up to it.
fn four_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let rings = [tmp.path().join("a.ring"), tmp.path().join("b.ring")];
    let children: Vec<Child> = (0..4u64)
        .map(|id| {
            spawn(
                "worker",
                &rings[(id / 2) as usize],
                &[("PROFILIS_TEST_WORKER", id.to_string())],
            )
        })
        .collect();
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    for c in children {
        assert!(c.wait_with_output().unwrap().status.success());
    }
    let drain = Drain::new(
        DrainOptions {
            rings: rings.to_vec(),
            once: true,
            producers: ProducerOptions {
                postmortem_events: 10,
                ..ProducerOptions::default()
            },
            ..DrainOptions::default()
        },
        Vec::new(),
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    let handle = drain.snapshots();
    drain.run();
    let s = handle.load();

    let services = &s.producers.services;
    assert_eq!(services.len(), 1, "one service");
    let svc = &services[0];
    assert_eq!(svc.service.as_deref(), Some(SERVICE));
    let mut worker_pids: Vec<u32> = svc.workers.iter().map(|w| w.pid).collect();
    worker_pids.sort_unstable();
    let mut want_pids = pids.clone();
    want_pids.sort_unstable();
    assert_eq!(worker_pids, want_pids, "every worker process, both rings");
    for w in &svc.workers {
        let id = pids.iter().position(|&p| p == w.pid).unwrap();
        assert_eq!(w.rings.len(), 1);
        assert!(w.rings[0].ends_with(if id < 2 { "a.ring" } else { "b.ring" }));
        assert_eq!(w.events, EVENTS_PER_WORKER);
    }
    assert_eq!(svc.routes.len(), ROUTES.len());
    for (r, route) in ROUTES.iter().enumerate() {
        let merged = svc
            .routes
            .iter()
            .find(|m| m.latency.name == *route)
            .unwrap();
        let mut union = Vec::new();
        for (id, &pid) in pids.iter().enumerate() {
            let mut mine: Vec<u64> = (0..EVENTS_PER_WORKER)
                .map(|i| duration(id as u64, i))
                .filter(|&(route, _)| route == r)
                .map(|(_, d)| d)
                .collect();
            mine.sort_unstable();
            let w = merged.workers.iter().find(|w| w.pid == pid).unwrap();
            assert_eq!(w.count, mine.len() as u64);
            close(
                w.p99_ns,
                exact(&mine, 0.99),
                &format!("{route} pid {pid} p99"),
            );
            union.extend(mine);
        }
        union.sort_unstable();
        let m = &merged.latency;
        assert_eq!(m.count, union.len() as u64);
        assert_eq!(
            merged.workers.iter().map(|w| w.count).sum::<u64>(),
            m.count,
            "the per-worker view sums to the merged count"
        );
        for (q, got) in [
            (0.5, m.p50_ns),
            (0.95, m.p95_ns),
            (0.99, m.p99_ns),
            (0.999, m.p999_ns),
            (1.0, m.max_ns),
        ] {
            close(got, exact(&union, q), &format!("{route} merged q{q}"));
        }
        let mean = union.iter().map(|&v| u128::from(v)).sum::<u128>() / union.len() as u128;
        assert_eq!(u128::from(m.mean_ns), mean);
        // One service here: the merged view is the reader's route table.
        let global = s.stats.routes.iter().find(|l| l.name == *route).unwrap();
        assert_eq!((global.count, global.p99_ns), (m.count, m.p99_ns));
    }
    // The same in metrics.json, with the breakdown one key away.
    let v = serde_json::to_value(profilis_reader::outputs::web::metrics_json::render(&s)).unwrap();
    let route = &v["services"][0]["routes"][0];
    assert_eq!(route["workers"].as_array().unwrap().len(), 4);
    let sum: u64 = route["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["count"].as_u64().unwrap())
        .sum();
    assert_eq!(route["count"].as_u64(), Some(sum));
    // The workers exited: each has a post-mortem with its last events.
    assert_eq!(s.producers.postmortems.len(), 4);
    for pm in &s.producers.postmortems {
        let id = pids.iter().position(|&p| p == pm.pid).unwrap() as u64;
        assert_eq!(pm.events.len(), 10);
        assert_eq!(pm.events_drained, EVENTS_PER_WORKER);
        for (k, e) in pm.events.iter().enumerate() {
            let (route, dur) = duration(id, EVENTS_PER_WORKER - 10 + k as u64);
            assert_eq!((e.name.as_str(), e.dur_ns), (ROUTES[route], Some(dur)));
        }
    }
}

struct Ui {
    addr: String,
    prefix: String,
}

impl Ui {
    fn get(&self, path: &str) -> (u16, String, String) {
        http_get(&self.addr, &format!("{}{path}", self.prefix), &[])
    }

    fn json(&self, path: &str) -> Value {
        let (status, _, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Polls `path` until `check` gives a value.
    fn poll<T>(&self, path: &str, what: &str, mut check: impl FnMut(&Value) -> Option<T>) -> T {
        let end = Instant::now() + DEADLINE;
        loop {
            let v = self.json(path);
            if let Some(t) = check(&v) {
                return t;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}: {v}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A worker SIGKILLed in the middle of an event, and another process
/// writing faster than the reader drains: the reader marks the worker dead
/// with its last-seen time, has drained its events, keeps its last events
/// for the post-mortem (endpoint and JSONL download), counts the event it
/// died in as abandoned, and the LOSS markers add up to the ring counters,
/// each charged to the process that lost the events.
fn killed_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("c.ring");
    let ready = tmp.path().join("ready");
    let out_dir = tmp.path().join("out");
    let started_ns = profilis_reader::support::timefmt::now_ns();
    let mut victim = spawn(
        "victim",
        &ring_path,
        &[("PROFILIS_TEST_READY", ready.display().to_string())],
    );
    let victim_pid = victim.id();
    assert!(
        wait_until(DEADLINE, || ready.exists()),
        "the victim is ready"
    );

    let mut reader = reader()
        .args([
            ring_path.to_str().unwrap(),
            "--jsonl-dir",
            out_dir.to_str().unwrap(),
            "--accounting",
            "--flush-interval",
            "100ms",
            "--liveness-interval",
            "50ms",
            "--postmortem-events",
            &POSTMORTEM_EVENTS.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (line, _rest) = stderr_line(&mut reader, "dashboard at", DEADLINE);
    let url = line.split("http://").nth(1).unwrap().trim().to_string();
    let (addr, prefix) = url.split_once('/').unwrap();
    let ui = Ui {
        addr: addr.to_string(),
        prefix: format!("/{}", prefix.trim_end_matches('/')),
    };

    // The reader drains every event the victim finished; the one it is in
    // the middle of holds up nobody.
    ui.poll("/metrics.json", "the victim's events", |v| {
        (v["rings"][0]["counters"]["received"].as_u64() == Some(VICTIM_EVENTS)).then_some(())
    });
    let filler = spawn("filler", &ring_path, &[]);
    let filler_pid = filler.id();
    let out = filler.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let (filler_written, filler_dropped): (u64, u64) = {
        let mut it = text.split_whitespace().map(|n| n.parse().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    };
    assert!(filler_dropped > 0, "the filler's lane filled");
    victim.kill().unwrap(); // SIGKILL, mid-event
    victim.wait().unwrap();
    let killed_ns = profilis_reader::support::timefmt::now_ns();

    // Dead in health, with the time it was last seen; its events behind the
    // claim are not drained yet.
    let writer = ui.poll("/health", "the victim marked dead", |h| {
        h["rings"][0]["writers"]
            .as_array()?
            .iter()
            .find(|w| w["pid"] == victim_pid && w["alive"] == false)
            .cloned()
    });
    assert_eq!(writer["service"], SERVICE);
    let last_seen = writer["last_seen_ns"].as_u64().unwrap();
    assert!(
        started_ns <= last_seen && last_seen <= killed_ns,
        "last seen {last_seen} between {started_ns} and {killed_ns}"
    );
    let m = ui.json("/metrics.json");
    let w = m["rings"][0]["writers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["pid"] == victim_pid)
        .unwrap()
        .clone();
    assert_eq!(
        (w["alive"].as_bool(), w["last_seen_ns"].as_u64()),
        (Some(false), Some(last_seen))
    );

    // Once its lane is taken back and everything drained: the post-mortem.
    let ring_id = m["rings"][0]["ring_id"].as_str().unwrap().to_string();
    let summary = ui.poll("/metrics.json", "the victim's post-mortem", |v| {
        v["postmortems"]
            .as_array()?
            .iter()
            .find(|p| p["pid"] == victim_pid)
            .cloned()
    });
    assert_eq!(summary["events_kept"], POSTMORTEM_EVENTS);
    assert_eq!(summary["events_drained"], VICTIM_EVENTS);
    assert_eq!(summary["losses"]["abandoned"], 1, "its claim, by its stamp");
    // Last seen now: its latest event, committed before the kill.
    let final_seen = summary["last_seen_ns"].as_u64().unwrap();
    assert!(last_seen <= final_seen && final_seen <= killed_ns);
    let pm = ui.json(&format!("/postmortem/{ring_id}/{victim_pid}.json"));
    let events = pm["events"].as_array().unwrap();
    let total = VICTIM_EVENTS;
    let want: Vec<u64> = (total - POSTMORTEM_EVENTS..total).collect();
    let got: Vec<u64> = events
        .iter()
        .map(|e| e["bytes_in"].as_u64().unwrap())
        .collect();
    assert_eq!(got, want, "its last committed events, in order");
    let (last, ok) = events.split_last().unwrap();
    // Its last error with its stack trace.
    assert_eq!(
        (last["status"].as_u64(), last["exception_message"].as_str()),
        (Some(500), Some("declined"))
    );
    assert_eq!(last["stack"].as_str(), Some(VICTIM_STACK));
    for e in ok {
        assert_eq!(
            (e["kind"].as_str(), e["name"].as_str(), e["status"].as_u64()),
            (Some("REQ"), Some("/checkout"), Some(200))
        );
    }
    for e in events {
        assert_eq!(
            e["dur_ns"].as_u64(),
            Some(1_000_000 + e["bytes_in"].as_u64().unwrap())
        );
        assert_eq!(e["pid"], victim_pid);
    }
    let (status, head, body) = ui.get(&format!("/postmortem/{ring_id}/{victim_pid}.jsonl"));
    assert_eq!(status, 200);
    assert!(head.contains("content-disposition: attachment"));
    let download: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(&download[..], &events[..]);

    // Per-producer losses in metrics.json and Prometheus.
    let losses = ui.poll("/metrics.json", "the filler's drops", |v| {
        let l = v["producer_losses"].as_array()?.clone();
        let dropped: u64 = l.iter().map(|p| p["ring_full"].as_u64().unwrap()).sum();
        (dropped == filler_dropped).then_some(l)
    });
    let of = |pid: u32| losses.iter().find(|p| p["pid"] == pid).unwrap();
    assert_eq!(
        (
            of(victim_pid)["abandoned"].as_u64(),
            of(victim_pid)["alive"].as_bool()
        ),
        (Some(1), Some(false))
    );
    assert_eq!(of(filler_pid)["ring_full"], filler_dropped);
    let (_, _, prom) = ui.get("/metrics");
    for line in [
        format!(
            "profilis_events_dropped_total{{pid=\"{victim_pid}\",service=\"{SERVICE}\",cause=\"abandoned\"}} 1"
        ),
        format!(
            "profilis_events_dropped_total{{pid=\"{filler_pid}\",service=\"{SERVICE}\",cause=\"ring_full\"}} {filler_dropped}"
        ),
    ] {
        assert!(prom.lines().any(|l| l == line), "{line} in\n{prom}");
    }

    // Stop the reader; the JSONL alone tells what was lost, where and by whom.
    // SAFETY: kill(2) with a pid of our own child.
    assert_eq!(unsafe { libc::kill(reader.id() as i32, libc::SIGTERM) }, 0);
    let out = wait_output(reader, DEADLINE);
    assert!(out.status.success());
    let a = &accounting(&out.stdout)[0];
    assert_eq!(a["received"], total + filler_written);
    assert_eq!(a["dropped"], filler_dropped);
    assert_eq!(a["abandoned"], 1);
    let lines = read_lines(&out_dir);
    let loss_lines: Vec<&Value> = lines.iter().filter(|v| v["kind"] == "LOSS").collect();
    let sum = |field: &str| -> u64 { loss_lines.iter().map(|v| v[field].as_u64().unwrap()).sum() };
    for field in ["dropped", "abandoned", "torn"] {
        assert_eq!(
            sum(field),
            a[field].as_u64().unwrap(),
            "LOSS {field} vs ring counters"
        );
    }
    let last = loss_lines.last().unwrap();
    for field in ["dropped", "abandoned", "torn"] {
        assert_eq!(last["cumulative"][field], a[field]);
    }
    for l in &loss_lines {
        assert!(l["from_ts_ns"].as_u64() <= l["to_ts_ns"].as_u64(), "{l}");
        assert_eq!(l["ring_id"], ring_id.as_str());
        if l["dropped"].as_u64() > Some(0) {
            assert_eq!(l["pid"], filler_pid, "drops charged to the filler: {l}");
        }
    }
    // The event the victim died in the middle of comes after its last
    // finished one (the last of its lane).
    let at = lines
        .iter()
        .position(|v| v["kind"] == "LOSS" && v["abandoned"] == 1)
        .unwrap();
    assert_eq!(lines[at]["pid"], victim_pid);
    assert_eq!(lines[at]["service"], SERVICE);
    let before = lines[..at]
        .iter()
        .rev()
        .find(|v| v["kind"] != "LOSS")
        .unwrap();
    assert!(
        lines[..at].iter().any(|v| v["kind"] != "LOSS"
            && v["bytes_in"] == VICTIM_EVENTS - 1
            && v["pid"] == victim_pid),
        "after the victim's last event"
    );
    assert!(before["ts_ns"].as_u64() <= lines[at]["to_ts_ns"].as_u64());
    // The post-mortem download matches what the JSONL exporter wrote.
    for e in &download {
        let same = lines
            .iter()
            .find(|v| v["kind"] != "LOSS" && v["seq"] == e["seq"])
            .unwrap();
        assert_eq!(same, e);
    }
}
