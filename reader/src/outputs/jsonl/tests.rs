//! The JSONL exporter over real directories: templates, recovery after a
//! kill, a full disk, LOSS lines across restarts.

use super::*;
use std::fs::OpenOptions;

#[test]
fn template_renders_and_matches() {
    let t = Template::parse(DEFAULT_TEMPLATE).unwrap();
    let name = t.render(1_764_065_000_000_000_000, 1, 42, 0);
    assert_eq!(name, "profilis-20251125T100320.000Z.jsonl");
    assert!(t.matches(&name));
    let unique = t.render(1_764_065_000_000_000_000, 1, 42, 2);
    assert_eq!(unique, "profilis-20251125T100320.000Z-2.jsonl");
    assert!(t.matches(&unique));
    assert!(!t.matches("profilis-.jsonl"));
    assert!(!t.matches("other.jsonl"));
    assert!(!t.matches(CURRENT_FILE));
    let t = Template::parse("app-{pid}-{n}.log").unwrap();
    assert_eq!(t.render(0, 7, 42, 0), "app-42-7.log");
    assert!(t.matches("app-42-7.log"));
}

const LINE: &str =
    "{\"ts_ns\":1,\"kind\":\"FN\",\"name\":\"f\",\"dur_ns\":1,\"error\":false,\"pid\":1,\"tid\":1";

#[test]
fn restart_cuts_partial_lines_closes_open_files_and_learns_positions() {
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join(CURRENT_FILE);
    let mut text = String::new();
    for seq in 0..5 {
        text.push_str(&format!(
            "{LINE},\"ring_id\":\"00000000000000aa\",\"seq\":{seq}}}\n"
        ));
    }
    text.push_str(&format!(
        "{LINE},\"ring_id\":\"00000000000000bb\",\"seq\":7}}\n"
    ));
    text.push_str("{\"ts_ns\":2,\"kind\":\"RE"); // killed mid-write
    std::fs::write(&open, &text).unwrap();
    let closed = dir.path().join("profilis-20240101T000000.000Z.jsonl");
    std::fs::write(
        &closed,
        format!("{LINE},\"ring_id\":\"00000000000000cc\",\"seq\":9}}\n"),
    )
    .unwrap();
    let exporter = JsonlExporter::new(JsonlOptions::new(dir.path())).unwrap();
    let hw = exporter.high_water();
    assert_eq!(hw.highest(0xaa), Some(4));
    assert_eq!(hw.highest(0xbb), Some(7));
    assert_eq!(
        hw.highest(0xcc),
        Some(9),
        "the newest closed file is read too"
    );
    assert!(!open.exists());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("profilis-") && !n.starts_with("profilis-2024"))
        .collect();
    assert_eq!(names.len(), 1, "the leftover file was closed: {names:?}");
    let recovered = std::fs::read_to_string(dir.path().join(&names[0])).unwrap();
    assert!(
        recovered.ends_with("\"seq\":7}\n"),
        "partial line cut: {recovered:?}"
    );
    assert_eq!(recovered.lines().count(), 6);
}

/// A ring with 20 FN events and a JSONL exporter whose current file is
/// `/dev/full`: every write fails with ENOSPC, and the file cannot be
/// truncated.
struct FullDisk {
    dir: tempfile::TempDir,
    out: PathBuf,
    _ring: profilis::Ring,
    consumer: profilis::Consumer,
    ctx: RingContext,
    exporter: JsonlExporter,
}

fn full_disk() -> FullDisk {
    use profilis::{Consumer, Ring, RingOptions};
    let dir = tempfile::tempdir().unwrap();
    let ring_path = dir.path().join("w.ring");
    let ring = Ring::create_or_open(&ring_path, RingOptions::default().capacity(1024)).unwrap();
    for i in 0..20 {
        ring.emit_fn("f", i, false);
    }
    let consumer = Consumer::attach(&ring_path).unwrap();
    let ctx = RingContext::new(0, &ring_path, consumer.info().ring_id, 4096);
    let out = dir.path().join("out");
    let mut exporter = JsonlExporter::new(JsonlOptions::new(&out)).unwrap();
    exporter.current = Some(OpenFile {
        file: OpenOptions::new().append(true).open("/dev/full").unwrap(),
        open_path: PathBuf::from("/dev/full"),
        final_path: out.join("never"),
        len: 0,
        opened: Instant::now(),
    });
    FullDisk {
        dir,
        out,
        _ring: ring,
        consumer,
        ctx,
        exporter,
    }
}

#[test]
fn write_error_loses_the_batch_whole_and_the_next_batch_gets_a_new_file() {
    let FullDisk {
        dir: _dir,
        out,
        mut consumer,
        mut ctx,
        mut exporter,
        ..
    } = full_disk();
    let batch = consumer.read(10);
    let first = exporter.export(&mut ctx, &batch.into());
    assert_eq!((first.written, first.lost), (0, 10));
    consumer.commit();
    let batch = consumer.read(10);
    let second = exporter.export(&mut ctx, &batch.into());
    assert_eq!((second.written, second.lost), (10, 0), "a fresh file works");
    consumer.commit();
    exporter.finish();
    let status = exporter.status();
    assert_eq!((status.exported, status.lost, status.errors), (10, 10, 1));
    assert!(status.last_error.unwrap().contains("No space left"));
    let files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(out.join(&files[0])).unwrap();
    assert_eq!(text.lines().count(), 10);
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["seq"].as_u64().unwrap() >= 10);
    }
}

fn loss_line(ring: &str, dropped: u64, abandoned: u64) -> String {
    format!(
        "{{\"ts_ns\":9,\"kind\":\"LOSS\",\"ring_id\":\"{ring}\",\"pid\":null,\"service\":null,\
         \"dropped\":1,\"overwritten\":0,\"abandoned\":0,\"torn\":0,\"from_ts_ns\":1,\"to_ts_ns\":9,\
         \"cumulative\":{{\"dropped\":{dropped},\"overwritten\":0,\"abandoned\":{abandoned},\"torn\":0}}}}\n"
    )
}

#[test]
fn restart_continues_from_the_latest_loss_counts_of_lines_and_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = "00000000000000aa";
    let b = "00000000000000bb";
    // Ring a: its latest LOSS line is in current.jsonl (written after
    // the state file was saved). Ring b: its LOSS lines are in an older
    // file the scan does not read, the state file has them.
    std::fs::write(
        dir.path().join(CURRENT_FILE),
        format!("{}{}", loss_line(a, 5, 0), loss_line(a, 7, 1)),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("profilis-20240101T000000.000Z.jsonl"),
        loss_line(b, 3, 0),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("profilis-20240102T000000.000Z.jsonl"),
        format!("{LINE},\"ring_id\":\"{b}\",\"seq\":4}}\n"),
    )
    .unwrap();
    let mark = crate::ingest::loss::WriterMark {
        index: 0,
        pid: 42,
        start_time: 7,
        dropped: 4,
        overwritten: 0,
    };
    let state = LossState {
        rings: [
            (
                a.to_string(),
                LossCursor {
                    cumulative: LossTotals {
                        dropped: 5,
                        ..LossTotals::default()
                    },
                    to_ts_ns: 8,
                    writers: vec![mark],
                },
            ),
            (
                b.to_string(),
                LossCursor {
                    cumulative: LossTotals {
                        dropped: 9,
                        ..LossTotals::default()
                    },
                    to_ts_ns: 20,
                    writers: Vec::new(),
                },
            ),
        ]
        .into_iter()
        .collect(),
    };
    std::fs::write(
        dir.path().join(LOSS_STATE_FILE),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();
    let exporter = JsonlExporter::new(JsonlOptions::new(dir.path())).unwrap();
    let ca = exporter.loss_cursor(0xaa).unwrap();
    assert_eq!((ca.cumulative.dropped, ca.cumulative.abandoned), (7, 1));
    assert_eq!(ca.to_ts_ns, 9);
    assert_eq!(
        ca.writers,
        vec![mark],
        "per-writer marks from the state file"
    );
    let cb = exporter.loss_cursor(0xbb).unwrap();
    assert_eq!((cb.cumulative.dropped, cb.to_ts_ns), (9, 20));
    assert_eq!(exporter.loss_cursor(0xcc), None);
    // The merged state was saved for the next start.
    let saved: LossState =
        serde_json::from_slice(&std::fs::read(dir.path().join(LOSS_STATE_FILE)).unwrap()).unwrap();
    assert_eq!(saved.rings[a].cumulative.dropped, 7);
}

#[test]
fn markers_lost_to_a_failed_write_come_back_as_one_catch_up_line() {
    let FullDisk {
        dir: _dir,
        out,
        mut consumer,
        mut ctx,
        mut exporter,
        ..
    } = full_disk();
    let marker = |dropped: u64, cumulative: u64| LossMarker {
        pid: Some(42),
        writer: Some(0),
        service: None,
        counts: LossTotals {
            dropped,
            ..LossTotals::default()
        },
        from_ts_ns: 100,
        to_ts_ns: 200,
        before_event: 0,
        cumulative: LossTotals {
            dropped: cumulative,
            ..LossTotals::default()
        },
    };
    let lost = [marker(3, 3)];
    let cursor = LossCursor {
        cumulative: lost[0].cumulative,
        to_ts_ns: 200,
        writers: Vec::new(),
    };
    let batch = consumer.read(10);
    let first = exporter.export_with_losses(
        &mut ctx,
        &batch.into(),
        &LossBatch {
            markers: &lost,
            cursor: &cursor,
        },
    );
    assert_eq!(first.lost, 10);
    consumer.commit();
    let next = [marker(2, 5)];
    let cursor = LossCursor {
        cumulative: next[0].cumulative,
        to_ts_ns: 200,
        writers: Vec::new(),
    };
    let batch = consumer.read(10);
    let second = exporter.export_with_losses(
        &mut ctx,
        &batch.into(),
        &LossBatch {
            markers: &next,
            cursor: &cursor,
        },
    );
    assert_eq!(second.written, 10);
    consumer.commit();
    exporter.finish();
    let files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    let text = std::fs::read_to_string(files[0].path()).unwrap();
    let losses: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "LOSS")
        .collect();
    assert_eq!(losses.len(), 2, "{text}");
    assert!(losses[0]["pid"].is_null(), "the lost marker, unattributed");
    assert_eq!(losses[0]["dropped"], 3);
    assert_eq!(losses[0]["cumulative"]["dropped"], 3);
    assert_eq!(losses[1]["dropped"], 2);
    assert_eq!(losses[1]["cumulative"]["dropped"], 5);
    assert_eq!(
        exporter
            .loss_cursor(ctx.ring_id)
            .unwrap()
            .cumulative
            .dropped,
        5
    );
}

#[test]
fn bad_templates_are_refused() {
    for bad in [
        "",
        "a/b-{n}",
        ".hidden-{n}",
        "current.jsonl",
        "fixed.jsonl",
        "x-{nope}",
        "x-{n",
    ] {
        assert!(Template::parse(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn a_batch_that_would_overflow_a_file_starts_the_next_and_retention_keeps_the_newest() {
    use profilis::{Consumer, Ring, RingOptions};
    let dir = tempfile::tempdir().unwrap();
    let ring_path = dir.path().join("w.ring");
    let ring = Ring::create_or_open(&ring_path, RingOptions::default().capacity(4096)).unwrap();
    for i in 0..600 {
        ring.emit_fn("f", i, false);
    }
    let mut consumer = Consumer::attach(&ring_path).unwrap();
    let mut ctx = RingContext::new(0, &ring_path, consumer.info().ring_id, 4096);
    let out = dir.path().join("out");
    let mut options = JsonlOptions::new(&out);
    // About 60 lines a file; batches of 50 (the second would overflow)
    // and one of 200 (alone larger than a file).
    options.rotate_bytes = 60 * 200;
    options.retain_bytes = Some(2 * 60 * 200);
    let mut exporter = JsonlExporter::new(options).unwrap();
    let mut line_bytes = 0;
    for limit in [50, 50, 50, 200, 50, 50, 50, 50, 50] {
        let batch = consumer.read(limit);
        let written = exporter.export(&mut ctx, &batch.into()).written;
        assert_eq!(written, limit as u64);
        consumer.commit();
        exporter.maintain(Instant::now());
        let text = std::fs::read_to_string(out.join(CURRENT_FILE)).unwrap_or_default();
        line_bytes = line_bytes.max(text.lines().map(|l| l.len() + 1).max().unwrap_or(0));
    }
    exporter.finish();
    let mut sizes: Vec<(String, u64)> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    sizes.sort();
    assert!(line_bytes > 100 && line_bytes <= 240, "{line_bytes}");
    // Every file within the limit except the one that holds the 200-event
    // batch alone; what is kept fits the retention and is not empty.
    let over: Vec<_> = sizes.iter().filter(|(_, n)| *n > 60 * 200).collect();
    assert!(over.len() <= 1, "{sizes:?}");
    assert!(
        over.iter().all(|(_, n)| *n <= 200 * line_bytes as u64),
        "{sizes:?}"
    );
    let kept: u64 = sizes.iter().map(|(_, n)| n).sum();
    assert!(kept > 0 && kept <= 2 * 60 * 200, "{sizes:?}");
    let newest = sizes
        .iter()
        .flat_map(|(name, _)| {
            let text = std::fs::read_to_string(out.join(name)).unwrap();
            text.lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                        .as_u64()
                        .unwrap()
                })
                .collect::<Vec<_>>()
        })
        .max();
    assert_eq!(newest, Some(599), "the newest events are kept: {sizes:?}");
}
