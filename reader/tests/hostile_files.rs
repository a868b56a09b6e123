//! Hostile and damaged ring files as the reader meets them: named on the
//! command line (`--once`: one clear line on stderr and exit status 1,
//! never a panic or a hang), found by `--watch` (skipped with one logged
//! error each while the good rings are drained), and a ring file truncated
//! while the reader drains it (reported, the other rings go on, clean exit).

mod common;

use common::*;
use profilis::layout::Params;
use profilis::Ring;
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

fn poke(path: &Path, offset: u64, value: u64) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(&value.to_le_bytes(), offset).unwrap();
}

fn params(path: &Path) -> Params {
    Ring::open(path).unwrap().info().params
}

/// Makes every hostile case in `dir` as `<name>.ring`; returns the name and
/// the words its error message must contain.
fn hostile_files(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let mut cases = Vec::new();
    let mut add = |name: &str, expect: &'static str, make: &dyn Fn(&Path)| {
        let path = dir.join(format!("{name}.ring"));
        make(&path);
        cases.push((path, expect));
    };
    let valid = |p: &Path| drop(ring(p, 64));
    add("wrong-magic", "not a Profilis ring file", &|p| {
        valid(p);
        poke(p, 0, u64::from_le_bytes(*b"NOTARING"));
    });
    add("future-version", "version 4 is not supported", &|p| {
        valid(p);
        poke(p, 8, 4);
    });
    add(
        "format-1",
        "ring format version 1 is not supported (this library reads version 3)",
        &|p| {
            valid(p);
            poke(p, 8, 1);
        },
    );
    add("capacity-not-pow2", "invalid ring parameters", &|p| {
        valid(p);
        poke(p, 24, 100);
    });
    add("capacity-past-end", "truncated", &|p| {
        valid(p);
        let mut params = params(p);
        params.capacity = 1 << 16;
        poke(p, 24, params.capacity);
        poke(p, 72, params.file_bytes());
    });
    add("truncated", "truncated", &|p| {
        valid(p);
        let len = params(p).file_bytes() - 1;
        OpenOptions::new()
            .write(true)
            .open(p)
            .unwrap()
            .set_len(len)
            .unwrap();
    });
    add(
        "short",
        "file is truncated: 3000 bytes, at least 4096 needed",
        &|p| {
            std::fs::write(p, [0u8; 3000]).unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
        },
    );
    add("empty", "truncated", &|p| {
        std::fs::File::create(p).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
    });
    add("symlink", "symbolic link", &|p| {
        let target = p.with_extension("target");
        valid(&target);
        std::os::unix::fs::symlink(&target, p).unwrap();
    });
    add("world-writable", "must not be accessible", &|p| {
        valid(p);
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o666)).unwrap();
    });
    add("group-readable", "must not be accessible", &|p| {
        valid(p);
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o640)).unwrap();
    });
    add("directory", "Is a directory", &|p| {
        std::fs::create_dir(p).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).unwrap();
    });
    add(
        "inconsistent-state",
        "consumer state is inconsistent",
        &|p| {
            valid(p);
            // Consumer state copy 0: a lane's read position with no outcome
            // counted for it.
            let params = profilis::Ring::open(p).unwrap().info().params;
            let head = params.state_offset() + 8 * profilis::layout::STATE_FIXED_WORDS as u64;
            poke(p, head, 1_000);
        },
    );
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        add("other-owner", "owned by uid 65534", &|p| {
            valid(p);
            std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
        });
    }
    cases
}

/// An error line tells each part of its chain once (`opening ring file
/// X: Is a directory (os error 21)`, not the cause again after it).
fn assert_each_part_once(line: &str) {
    let parts: Vec<&str> = line.trim().split(": ").collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(part),
            "{part:?} is told twice in {line:?}"
        );
    }
}

#[test]
fn once_on_each_hostile_file_is_one_clear_line_and_exit_status_1() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cases = hostile_files(tmp.path());
    // Without root a file cannot be given away; a root-owned one will do.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        cases.push((PathBuf::from("/etc/passwd"), "owned by uid 0"));
    }
    for (path, expect) in &cases {
        let out = run_reader(
            &[path.to_str().unwrap(), "--once", "--accounting"],
            Duration::from_secs(30),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", path.display());
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with("profilis-reader: error: ") && stderr.contains(expect),
            "{}: expected {expect:?} in {stderr:?}",
            path.display()
        );
        assert!(
            stderr.contains(path.to_str().unwrap()),
            "names the file: {stderr}"
        );
        assert!(!stderr.contains("panicked"));
        assert_each_part_once(&stderr);
        assert!(
            out.stdout.is_empty(),
            "no accounting for a ring never attached"
        );
    }
}

#[test]
fn watch_skips_hostile_files_with_one_logged_error_each_and_drains_the_good_ring() {
    let tmp = tempfile::tempdir().unwrap();
    let watch = tmp.path().join("rings");
    std::fs::create_dir(&watch).unwrap();
    let cases = hostile_files(&watch);
    let good = watch.join("good.ring");
    let (written, _) = write_events(&ring(&good, 4096), 500);
    let out_dir = tmp.path().join("out");
    let log = tmp.path().join("stderr");
    let child = reader()
        .args([
            "--watch",
            watch.to_str().unwrap(),
            "--accounting",
            "--no-ui",
        ])
        .args(["--jsonl-dir", out_dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let exported = wait_until(Duration::from_secs(30), || {
        out_dir.is_dir() && read_lines_so_far(&out_dir).len() as u64 == written
    });
    assert!(exported, "the good ring is drained");
    // Several rescans of the directory (every 500 ms) go by.
    std::thread::sleep(Duration::from_millis(1200));
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait_output(child, Duration::from_secs(30));
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (path, expect) in &cases {
        let name = path.file_name().unwrap().to_str().unwrap();
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("not attaching") && l.contains(&format!("/{name}:")))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "{name}: one message, not one per rescan: {stderr}"
        );
        assert!(lines[0].contains(expect), "{name}: {}", lines[0]);
        assert_each_part_once(lines[0]);
        *seen.entry(name).or_default() += 1;
    }
    assert_eq!(seen.len(), cases.len());
    let acct = accounting(&out.stdout);
    assert_eq!(acct.len(), 1, "only the good ring was attached: {acct:?}");
    assert_eq!(acct[0]["received"], written);
}

#[test]
fn a_ring_truncated_while_drained_is_reported_and_the_other_ring_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.ring");
    let b = tmp.path().join("b.ring");
    let ring_a = ring(&a, 4096);
    let ring_b = ring(&b, 4096);
    write_events(&ring_a, 200);
    let (mut b_written, _) = write_events(&ring_b, 200);
    let out_dir = tmp.path().join("out");
    let log = tmp.path().join("stderr");
    let child = reader()
        .args([a.to_str().unwrap(), b.to_str().unwrap(), "--accounting"])
        .args(["--jsonl-dir", out_dir.to_str().unwrap()])
        .args(["--flush-interval", "100ms"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stderr = || std::fs::read_to_string(&log).unwrap_or_default();
    let lines_of = |ring_id: u64| {
        let id = format!("{ring_id:016x}");
        read_lines_so_far(&out_dir)
            .iter()
            .filter(|v| v["ring_id"] == id.as_str())
            .count() as u64
    };
    let (id_a, id_b) = (ring_a.info().ring_id, ring_b.info().ring_id);
    assert!(
        wait_until(Duration::from_secs(30), || out_dir.is_dir()
            && lines_of(id_a) == 200
            && lines_of(id_b) == 200),
        "{}",
        stderr()
    );
    // Another process cuts ring A down to its header page. Events written
    // into A now would be lost with the file; B's go on.
    drop(ring_a);
    OpenOptions::new()
        .write(true)
        .open(&a)
        .unwrap()
        .set_len(4096)
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || stderr()
            .contains("was truncated")),
        "the truncation is reported: {}",
        stderr()
    );
    b_written += write_events(&ring_b, 300).0;
    assert!(
        wait_until(Duration::from_secs(30), || lines_of(id_b) == b_written),
        "ring B is still drained: {} of {b_written}",
        lines_of(id_b)
    );
    // Health, once a snapshot after the truncation is published (every
    // --flush-interval).
    let addr = stderr()
        .split("http://")
        .nth(1)
        .and_then(|u| u.split('/').next())
        .unwrap()
        .to_string();
    let health = || -> serde_json::Value {
        serde_json::from_str(&http_get(&addr, "/_profilis/health", &[]).2).unwrap()
    };
    assert!(
        wait_until(Duration::from_secs(20), || health()["status"] == "degraded"),
        "{}",
        health()
    );
    let health = health();
    let truncated: Vec<&serde_json::Value> = health["rings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["truncated"] == true)
        .collect();
    assert_eq!(truncated.len(), 1, "{health}");
    assert!(truncated[0]["path"].as_str().unwrap().ends_with("a.ring"));
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait_output(child, Duration::from_secs(30));
    let log_text = stderr();
    assert!(out.status.success(), "a clean exit: {log_text}");
    assert!(!log_text.contains("panicked"), "{log_text}");
    assert_eq!(
        log_text.matches("was truncated").count(),
        1,
        "reported once: {log_text}"
    );
    let acct = accounting(&out.stdout);
    let by_ring = |name: &str| {
        acct.iter()
            .find(|a| a["ring"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} in {acct:?}"))
    };
    assert_eq!(by_ring("a.ring")["received"], 200);
    assert_eq!(by_ring("b.ring")["received"], b_written);
    assert_eq!(by_ring("b.ring")["claimed"], b_written);
}

#[test]
fn once_stops_for_a_ring_truncated_under_it() {
    // A ring cut short between attach and drain: `--once` must not wait
    // for positions it can never read.
    use profilis_reader::app::drain::{Drain, DrainOptions};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.ring");
    let (written, _) = write_events(&ring(&a, 4096), 1000);
    let drain = Drain::new(
        DrainOptions {
            rings: vec![a.clone()],
            once: true,
            ..DrainOptions::default()
        },
        Vec::new(),
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    OpenOptions::new()
        .write(true)
        .open(&a)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let handle = drain.snapshots();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(drain.run()).unwrap());
    let report = finished
        .recv_timeout(Duration::from_secs(20))
        .expect("--once finishes despite the truncated ring");
    assert_eq!(
        report.rings[0].received, 0,
        "nothing read from the cut file"
    );
    assert_eq!(report.rings[0].lag, written, "what it held is reported");
    assert!(handle.load().rings[0].truncated);
}
