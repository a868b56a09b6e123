//! Resource limits (docs/limits.md): each one bounds what it guards, and
//! each is reported with its bound, its use and how often it was hit: in
//! the snapshot's `limits`, in `/health` (degraded while one that loses
//! data or detail is being hit) and on stderr where a ring is refused.

mod common;

use common::*;
use profilis::{Fields, Kind, Ring, RingOptions, StrId};
use profilis_reader::app::drain::{Drain, DrainOptions};
use profilis_reader::outputs::jsonl::{JsonlExporter, JsonlOptions};
use profilis_reader::outputs::Exporter;
use profilis_reader::views::Snapshot;
use profilis_reader::window::stats::StatsConfig;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Drains `rings` once with `options` and `exporters`; the final snapshot.
fn drain_once(
    rings: Vec<PathBuf>,
    options: DrainOptions,
    exporters: Vec<Box<dyn Exporter>>,
) -> Arc<Snapshot> {
    let drain = Drain::new(
        DrainOptions {
            rings,
            once: true,
            ..options
        },
        exporters,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    let handle = drain.snapshots();
    drain.run();
    handle.load()
}

#[test]
fn routes_errors_and_string_table_limits_report_use_and_hits() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("small.ring");
    // A string table of 16 names: the 40 routes below overflow it.
    let mut options = RingOptions::default().capacity(1024).service("svc");
    options.string_entries = 16;
    let ring = Ring::create_or_open(&path, options).unwrap();
    let shutdown = Arc::new(AtomicBool::new(false));
    let drain = Drain::new(
        DrainOptions {
            rings: vec![path.clone()],
            stats: StatsConfig {
                max_routes: 5,
                max_errors: 10,
                ..StatsConfig::default()
            },
            ..DrainOptions::default()
        },
        Vec::new(),
        shutdown.clone(),
    )
    .unwrap();
    let handle = drain.snapshots();
    let running = std::thread::spawn(move || drain.run());
    // Written while the reader is attached, so the overflows are recent.
    let boom = ring.intern("Boom");
    for i in 0..40 {
        let fields = Fields {
            status: 500,
            dur_ns: 1_000_000,
            exception_type: boom,
            ..Fields::default()
        };
        ring.record(Kind::Req, ring.intern(&format!("/route/{i}")), &fields);
    }
    // A shutdown drains to the tail and publishes a last snapshot.
    shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
    let report = running.join().unwrap();
    assert_eq!(report.rings[0].received, 40);
    let s = handle.load();
    let l = &s.limits;
    // Routes: 14 names fit the string table (Boom and the service take
    // two entries), the other 26 events are named <overflow>; of these 15
    // names, 5 get entries of their own and the rest count under (other).
    assert_eq!((l.routes.limit, l.routes.used), (Some(5), 5), "{l:?}");
    let other = s
        .stats
        .routes
        .iter()
        .find(|r| r.name == "(other)")
        .expect("an (other) entry");
    assert_eq!(l.routes.hits, other.count);
    assert_eq!(l.routes.hits, 35, "40 requests, 5 named entries");
    assert_eq!(l.routes.hits_last_minute, 35);
    // Errors: the latest 10 kept, 30 older ones dropped to make room.
    assert_eq!(
        (l.errors.limit, l.errors.used, l.errors.hits),
        (Some(10), 10, 30)
    );
    // The string table, sized by the ring's creator.
    let t = &l.strings[0];
    assert_eq!(t.ring, path.display().to_string());
    assert_eq!((t.entries, t.entries_used), (16, 16));
    assert_eq!(t.overflow, s.rings[0].strings_overflow);
    assert_eq!(t.overflow, 26, "{t:?}");
    assert!(t.arena_used > 0 && t.arena_used <= t.arena_bytes);
    assert_eq!(t.overflow_last_minute, 26);
    // Health: the route and string limits degrade, the error list does not.
    let reasons = profilis_reader::views::health::assess(&s);
    assert_eq!(reasons.len(), 2, "{reasons:#?}");
    assert!(reasons[0].contains("(other)") && reasons[0].contains("--max-routes 5"));
    assert!(reasons[1].contains("string table is full") && reasons[1].contains("16 of 16"));
    assert_eq!(ring.intern("one more"), StrId::OVERFLOW);
}

fn dir_bytes(dir: &Path) -> u64 {
    data_files(dir)
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum()
}

#[test]
fn retain_bytes_keeps_the_jsonl_files_under_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("r.ring");
    let out = tmp.path().join("out");
    let ring = ring(&path, 65536);
    let (written, _) = write_events(&ring, 20_000);
    let mut options = JsonlOptions::new(&out);
    options.rotate_bytes = 64 << 10;
    options.retain_bytes = Some(256 << 10);
    let exporter = JsonlExporter::new(options).unwrap();
    let s = drain_once(
        vec![path],
        DrainOptions {
            batch_max: 512,
            ..DrainOptions::default()
        },
        vec![Box::new(exporter)],
    );
    let on_disk = dir_bytes(&out);
    assert!(on_disk <= 256 << 10, "{on_disk} bytes on disk");
    let l = &s.limits.jsonl_bytes;
    assert_eq!(l.limit, Some(256 << 10));
    assert_eq!(l.used, on_disk, "the reported use is what is on disk");
    assert!(l.hits > 0, "files were deleted: {l:?}");
    // Every event was written; the oldest files went to make room.
    assert_eq!(s.reader.exporters[0].exported, written);
    assert!(s.reader.exporters[0].bytes > 4 * (256 << 10));
    let lines = read_lines(&out);
    assert!(!lines.is_empty() && (lines.len() as u64) < written);
    let newest = lines.iter().map(|v| v["seq"].as_u64().unwrap()).max();
    assert_eq!(newest, Some(written - 1), "the newest events are kept");
    assert!(
        profilis_reader::views::health::assess(&s).is_empty(),
        "retention doing its job is not a problem"
    );
}

#[test]
fn retain_bytes_needs_a_rotation_size_that_fits() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("r.ring");
    drop(ring(&path, 1024));
    let out = tmp.path().join("out");
    let args = [
        path.to_str().unwrap(),
        "--once",
        "--jsonl-dir",
        out.to_str().unwrap(),
        "--retain-bytes",
        "1M",
    ];
    // The default rotation size (100M) does not fit in 1M.
    let o = run_reader(&args, Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("--rotate-bytes"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let o = run_reader(
        &[&args[..], &["--rotate-bytes", "256K"]].concat(),
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn more_rings_than_max_rings_on_the_command_line_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let paths: Vec<String> = (0..3)
        .map(|i| {
            let p = tmp.path().join(format!("{i}.ring"));
            drop(ring(&p, 1024));
            p.to_str().unwrap().to_string()
        })
        .collect();
    let mut args: Vec<&str> = paths.iter().map(String::as_str).collect();
    args.extend(["--once", "--max-rings", "2"]);
    let o = run_reader(&args, Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("3 ring files given, more than --max-rings 2"),
        "{stderr}"
    );
}

fn health(addr: &str) -> Value {
    let (status, _, body) = http_get(addr, "/_profilis/health", &[]);
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

#[test]
fn watched_rings_past_max_rings_are_refused_counted_and_attached_when_room_frees() {
    let tmp = tempfile::tempdir().unwrap();
    let watch = tmp.path().join("rings");
    std::fs::create_dir(&watch).unwrap();
    let mut rings = Vec::new();
    for name in ["a", "b", "c"] {
        let p = watch.join(format!("{name}.ring"));
        let r = ring(&p, 1024);
        write_events(&r, 100);
        rings.push((p, r));
    }
    let log = tmp.path().join("stderr");
    let child = reader()
        .args(["--watch", watch.to_str().unwrap(), "--max-rings", "2"])
        .args(["--flush-interval", "100ms", "--accounting"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stderr = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(30), || stderr()
            .contains("dashboard at")),
        "{}",
        stderr()
    );
    let addr = stderr()
        .split("http://")
        .nth(1)
        .and_then(|u| u.split('/').next())
        .unwrap()
        .to_string();
    // Rings are attached in name order: c.ring waits.
    let waiting = |h: &Value| h["limits"]["rings"]["waiting"].clone();
    assert!(
        wait_until(Duration::from_secs(20), || waiting(&health(&addr))
            .as_array()
            .is_some_and(|w| w.len() == 1)),
        "{}",
        health(&addr)
    );
    let h = health(&addr);
    let r = &h["limits"]["rings"];
    assert_eq!(
        (r["limit"].as_u64(), r["used"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(r["hits"], 1);
    assert!(r["waiting"][0].as_str().unwrap().ends_with("c.ring"), "{h}");
    assert_eq!(h["status"], "degraded");
    assert!(
        h["reasons"][0].as_str().unwrap().contains("--max-rings"),
        "{h}"
    );
    // Removing an attached ring's file detaches it once drained: c.ring
    // takes its place.
    std::fs::remove_file(&rings[0].0).unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let h = health(&addr);
            h["limits"]["rings"]["waiting"] == serde_json::json!([])
                && h["rings"].as_array().unwrap().iter().any(|r| {
                    r["path"].as_str().unwrap().ends_with("c.ring")
                        && r["attached"] == true
                        && r["received"] == 100
                })
        }),
        "{}",
        health(&addr)
    );
    let h = health(&addr);
    assert_eq!(h["limits"]["rings"]["hits"], 1, "counted once");
    assert_eq!(h["status"], "ok", "{h}");
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait_output(child, Duration::from_secs(30));
    assert!(out.status.success());
    let refused: Vec<String> = stderr()
        .lines()
        .filter(|l| l.contains("not attaching"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "one message per refused file: {refused:?}"
    );
    assert!(refused[0].contains("c.ring") && refused[0].contains("--max-rings"));
    let acct = accounting(&out.stdout);
    assert_eq!(acct.len(), 3, "every ring was drained: {acct:?}");
    assert!(acct.iter().all(|a| a["received"] == 100));
}
