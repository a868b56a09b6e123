//! Golden test: a fixed ring through the reader binary, every output
//! compared with the files in `tests/golden/`.
//!
//! The ring holds events of every kind written through the library with
//! fixed timestamps, contents and trace ids: REQ with and without the
//! error flag and 5xx statuses, FN, DB and CUSTOM events, names that need
//! escaping, more names than `--max-routes`, a writer process that dies
//! in the middle of an event (an abandoned position, a post-mortem) and
//! events refused by a full lane. `profilis-reader` drains it with
//! JSONL output and the dashboard; the test compares
//! - `events.jsonl`: the JSONL files, events and LOSS lines, byte for byte;
//! - `metrics.json`: `GET /metrics.json` (key order kept, pretty-printed);
//! - `metrics.prom`: `GET /metrics`;
//! - `postmortem.jsonl`: `GET /postmortem/{ring_id}/{pid}.jsonl`;
//! - `accounting.jsonl`: the `--accounting` line at exit.
//!
//! What differs from run to run is replaced by a placeholder before the
//! comparison: the temporary directory (`<dir>`), the ring id
//! (`<ring_id>`), process ids (`<pid:writer>`, `<pid:victim>`,
//! `<pid:reader>`), process start times, and the figures that depend on
//! when the reader looks (rates over the covered window, uptime, CPU, bytes
//! written, the reader's own memory and file descriptors). Wall-clock times are written relative to the first event
//! (`T+12ms`); the reader's own clock readings (ring creation, snapshot and
//! registration times, LOSS markers stamped with the time of the read)
//! become `<clock>`.
//!
//! After a change of output that is intended, write the files again with
//!
//! ```text
//! PROFILIS_BLESS=1 cargo test -p profilis-reader --test golden
//! ```
//!
//! and review their diff. The binary re-executes itself as the writer that
//! dies (`PROFILIS_GOLDEN_ROLE=victim`), so it runs without the test
//! harness (`harness = false` in Cargo.toml).

mod common;

use common::*;
use profilis::context::SpanContext;
use profilis::record::FLAG_ERROR;
use profilis::{Emit, Fields, Kind, Method, Ring, RingOptions, StrId};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const ROLE: &str = "PROFILIS_GOLDEN_ROLE";
const SERVICE: &str = "golden";
/// Two lanes of 128 slots: this process writes into the first (its own),
/// the victim into the second (the shared one).
const CAPACITY: u64 = 256;
const LANES: u64 = 2;
const LANE_SLOTS: u64 = CAPACITY / LANES;
/// Events 0.. written by this process first.
const FIRST: u64 = 100;
/// Then the victim: its events, then one it dies in the middle of.
const VICTIM: u64 = 60;
/// Then this process fills its lane, and this many more are refused.
const DROPPED: u64 = 7;
const MS: u64 = 1_000_000;
const DEADLINE: Duration = Duration::from_secs(30);

const ROUTES: [&str; 5] = [
    "/api/users/{id}",
    "/api/\"quoted\"\\path\nnew é 🦀",
    "/api/orders",
    "/api/search",
    "/health",
];
const FUNCTIONS: [&str; 4] = ["load_user", "place_order", "score_results", "render"];
const QUERIES: [&str; 2] = [
    "SELECT id, name FROM users WHERE id = ?",
    "INSERT INTO orders (user_id, total) VALUES (?, ?)",
];
const METRICS: [&str; 4] = ["queue_depth", "cache_hit_ratio", "pool_size", "lag"];
const METHODS: [Method; 3] = [Method::Get, Method::Post, Method::Delete];

fn main() {
    if std::env::var(ROLE).as_deref() == Ok("victim") {
        return victim();
    }
    profilis::testing::run_tests(&[("reader_output_matches_the_golden_files", golden)]);
}

/// The event at ring position `seq`: its kind, name and fields, all fixed.
fn event(ring: &Ring, seq: u64, base_mono_ns: u64) -> (Kind, StrId, Fields) {
    let mut fields = Fields {
        ts_mono_ns: base_mono_ns + seq * MS,
        dur_ns: 40_000 + seq.wrapping_mul(2_654_435_761) % (60 * MS),
        span: Some(SpanContext::NONE),
        ..Fields::default()
    };
    if !seq.is_multiple_of(3) {
        fields.span = Some(SpanContext {
            trace_id: 0x0af7_651b_16c9_4e3a_0000_0000_0000_0000 | u128::from(seq / 4),
            span_id: 0x1000 + seq,
            parent_span_id: if seq.is_multiple_of(4) {
                0
            } else {
                0x1000 + seq - 1
            },
            sampled: seq.is_multiple_of(2),
        });
    }
    match seq % 10 {
        0..=3 | 9 => {
            let route = ROUTES[(seq / 3 % 5) as usize];
            fields.method = METHODS[(seq % 3) as usize];
            fields.status = 200;
            fields.value = seq * 17 % 900;
            fields.value2 = seq * 131 % 20_000;
            if seq.is_multiple_of(23) {
                // A failure with an exception: flagged, 503.
                fields.status = 503;
                fields.flags = FLAG_ERROR;
                fields.exception_type = ring.intern("TimeoutError");
                fields.message = ring.message(&format!("upstream timed out (\"{seq}\")"));
            } else if seq.is_multiple_of(29) {
                // 5xx without the flag: an error all the same.
                fields.status = 500;
            } else if seq.is_multiple_of(31) {
                // Flagged with a 2xx status: an error all the same.
                fields.flags = FLAG_ERROR;
            } else if seq.is_multiple_of(11) {
                fields.status = 404;
            }
            (Kind::Req, ring.intern(route), fields)
        }
        4 | 5 => {
            let name = FUNCTIONS[(seq / 10 % 4) as usize];
            if seq.is_multiple_of(13) {
                fields.flags = FLAG_ERROR;
                fields.exception_type = ring.intern("ValueError");
            } else if seq % 17 == 5 {
                // A status on a function is no HTTP status: not an error.
                fields.status = 500;
            }
            (Kind::Fn, ring.intern(name), fields)
        }
        6 | 7 => {
            fields.value = seq % 9;
            (Kind::Db, ring.intern(QUERIES[(seq % 2) as usize]), fields)
        }
        _ => {
            let value = if seq == 58 {
                f64::INFINITY
            } else {
                seq as f64 * 0.25
            };
            fields.value = value.to_bits();
            fields.dur_ns = 0;
            (
                Kind::Custom,
                ring.intern(METRICS[(seq / 10 % 4) as usize]),
                fields,
            )
        }
    }
}

fn write(ring: &Ring, seq: u64, base_mono_ns: u64) -> Emit {
    let (kind, name, fields) = event(ring, seq, base_mono_ns);
    ring.record(kind, name, &fields)
}

fn open(path: &Path) -> Ring {
    Ring::create_or_open(
        path,
        RingOptions::default()
            .capacity(CAPACITY)
            .lanes(LANES)
            .service(SERVICE),
    )
    .expect("opening the golden ring")
}

/// The writer that dies: its events, then it begins one more and exits in
/// the middle of it (the lane it was writing through stays locked by it).
fn victim() {
    let path = PathBuf::from(std::env::var("PROFILIS_RING").unwrap());
    let base: u64 = std::env::var("PROFILIS_GOLDEN_BASE")
        .unwrap()
        .parse()
        .unwrap();
    let ring = open(&path);
    for seq in FIRST..FIRST + VICTIM {
        assert_eq!(write(&ring, seq, base), Emit::Written);
    }
    let claim = ring.claim().unwrap();
    // Position VICTIM of lane 1.
    assert_eq!(claim.position(), VICTIM * LANES + 1);
    std::process::exit(0);
}

/// What differs between runs, and how to write it.
struct Normalizer {
    dir: String,
    ring_id: String,
    pids: Vec<(u32, &'static str)>,
    /// Wall-clock ns of the first event.
    anchor_ns: i128,
}

impl Normalizer {
    fn text(&self, text: &str) -> String {
        let mut out = text
            .replace(&self.dir, "<dir>")
            .replace(&self.ring_id, "<ring_id>");
        for (pid, label) in &self.pids {
            out = out.replace(&format!("pid=\"{pid}\""), &format!("pid=\"<pid:{label}>\""));
            out = out.replace(
                &format!("/postmortem/<ring_id>/{pid}."),
                &format!("/postmortem/<ring_id>/<pid:{label}>."),
            );
        }
        out
    }

    fn pid(&self, raw: &str) -> String {
        let pid: u32 = raw.parse().expect("a pid is a number");
        if pid == 0 {
            return raw.to_string();
        }
        match self.pids.iter().find(|(p, _)| *p == pid) {
            Some((_, label)) => format!("\"<pid:{label}>\""),
            None => panic!("unknown pid {pid}"),
        }
    }

    /// A wall-clock time: relative to the first event when it is one of
    /// the events' times (all within a few seconds of it), else a reading
    /// of the clock (the ring was created at least 9 s after the events).
    fn time(&self, ns: i128) -> String {
        let rel = ns - self.anchor_ns;
        if rel.abs() < 5_000_000_000 {
            let ms = (rel as f64 / 1e6).round() as i128;
            assert!(
                (rel - ms * 1_000_000).abs() < 100_000,
                "time {ns} is {rel} ns from the first event, not near a whole ms"
            );
            format!("\"T{ms:+}ms\"")
        } else {
            assert!(rel > 0, "time {ns} is {rel} ns before the first event");
            "\"<clock>\"".to_string()
        }
    }

    /// The replacement of one JSON scalar at `path`, if any.
    fn scalar(&self, path: &[String], raw: &str) -> Option<String> {
        let key = path.iter().rev().find(|k| *k != "[]")?.as_str();
        let number = raw.starts_with(|c: char| c == '-' || c.is_ascii_digit());
        if !number {
            return None;
        }
        let in_series = path.iter().any(|k| k == "series");
        match key {
            "pid" | "tid" => return Some(self.pid(raw)),
            "start_time" => return Some("\"<start_time>\"".into()),
            "covered_secs" | "uptime_secs" | "cpu_percent" | "bytes" | "bytes_written" => {
                return Some("\"<volatile>\"".into())
            }
            "rps" | "events_per_sec" if !in_series => return Some("\"<volatile>\"".into()),
            "cpu_seconds" | "rss_bytes" | "pss_bytes" | "virtual_bytes" | "threads"
            | "start_time_seconds" | "open_fds" | "max_fds"
                if path.iter().any(|k| k == "processes") =>
            {
                return Some("\"<volatile>\"".into())
            }
            "used" if path.iter().any(|k| k == "jsonl_bytes") => {
                return Some("\"<volatile>\"".into())
            }
            _ => {}
        }
        match raw.parse::<i128>() {
            Ok(v) if v >= 1_000_000_000_000_000_000 => Some(self.time(v)),
            _ => None,
        }
    }

    fn json(&self, text: &str, pretty: bool) -> String {
        let text = self.text(text);
        let mut rewriter = Rewriter {
            text: text.as_bytes(),
            at: 0,
            out: String::new(),
            pretty,
            path: Vec::new(),
            scalar: &|path: &[String], raw: &str| self.scalar(path, raw),
        };
        rewriter.value(0);
        rewriter.skip_space();
        assert_eq!(rewriter.at, text.len(), "one JSON value: {text}");
        rewriter.out
    }

    fn json_lines(&self, text: &str) -> String {
        let mut out = String::new();
        for line in text.lines() {
            out.push_str(&self.json(line, false));
            out.push('\n');
        }
        out
    }

    /// The Prometheus text: placeholders in labels, and the values of the
    /// samples that depend on when the reader looks.
    fn prometheus(&self, text: &str) -> String {
        const VOLATILE: [&str; 16] = [
            "profilis_requests_per_second ",
            "profilis_window_seconds ",
            "profilis_reader_events_per_second ",
            "profilis_reader_cpu_ratio ",
            "profilis_reader_uptime_seconds ",
            "profilis_reader_start_time_seconds ",
            "profilis_reader_written_bytes_total ",
            "profilis_reader_snapshot_time_seconds ",
            "profilis_reader_limit_used{limit=\"jsonl_bytes\"} ",
            "profilis_reader_limit_current_bytes{limit=\"jsonl\"} ",
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_virtual_memory_bytes ",
            "process_start_time_seconds ",
            "process_open_fds ",
            "process_max_fds ",
        ];
        let mut out = String::new();
        for line in self.text(text).lines() {
            let (sample, value) = line.rsplit_once(' ').unwrap_or((line, ""));
            if line.starts_with('#') {
                out.push_str(line);
            } else if VOLATILE.iter().any(|v| line.starts_with(v)) {
                out.push_str(&format!("{sample} <volatile>"));
            } else if sample.starts_with("profilis_writer_last_seen_seconds{")
                || sample.starts_with("profilis_writer_last_seen_timestamp_seconds{")
            {
                let secs: f64 = value.parse().unwrap();
                let time = self.time((secs * 1e9) as i128);
                out.push_str(&format!("{sample} {}", time.trim_matches('"')));
            } else {
                out.push_str(line);
            }
            out.push('\n');
        }
        out
    }
}

/// Re-emits JSON text with its keys in their order, compact (as the reader
/// writes JSONL) or one item per line, passing each scalar through
/// `scalar(path, raw)`.
struct Rewriter<'a> {
    text: &'a [u8],
    at: usize,
    out: String,
    pretty: bool,
    path: Vec<String>,
    scalar: &'a dyn Fn(&[String], &str) -> Option<String>,
}

impl Rewriter<'_> {
    fn skip_space(&mut self) {
        while self.at < self.text.len() && self.text[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn newline(&mut self, depth: usize) {
        if self.pretty {
            self.out.push('\n');
            self.out.push_str(&"  ".repeat(depth));
        }
    }

    fn string(&mut self) -> String {
        let start = self.at;
        assert_eq!(self.text[start], b'"');
        self.at += 1;
        while self.text[self.at] != b'"' {
            self.at += if self.text[self.at] == b'\\' { 2 } else { 1 };
        }
        self.at += 1;
        String::from_utf8(self.text[start..self.at].to_vec()).unwrap()
    }

    fn value(&mut self, depth: usize) {
        self.skip_space();
        match self.text[self.at] {
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.at += 1;
                self.out.push(open as char);
                self.skip_space();
                if self.text[self.at] == close {
                    self.at += 1;
                    self.out.push(close as char);
                    return;
                }
                loop {
                    self.newline(depth + 1);
                    if open == b'{' {
                        self.skip_space();
                        let key = self.string();
                        self.out.push_str(&key);
                        self.skip_space();
                        assert_eq!(self.text[self.at], b':');
                        self.at += 1;
                        self.out.push(':');
                        if self.pretty {
                            self.out.push(' ');
                        }
                        self.path.push(key.trim_matches('"').to_string());
                    } else {
                        self.path.push("[]".into());
                    }
                    self.value(depth + 1);
                    self.path.pop();
                    self.skip_space();
                    let c = self.text[self.at];
                    self.at += 1;
                    if c == close {
                        self.newline(depth);
                        self.out.push(close as char);
                        return;
                    }
                    assert_eq!(c, b',');
                    self.out.push(',');
                }
            }
            b'"' => {
                let raw = self.string();
                let new = (self.scalar)(&self.path, &raw).unwrap_or(raw);
                self.out.push_str(&new);
            }
            _ => {
                let start = self.at;
                while self.at < self.text.len()
                    && !matches!(self.text[self.at], b',' | b'}' | b']')
                    && !self.text[self.at].is_ascii_whitespace()
                {
                    self.at += 1;
                }
                let raw = std::str::from_utf8(&self.text[start..self.at]).unwrap();
                let new = (self.scalar)(&self.path, raw).unwrap_or_else(|| raw.to_string());
                self.out.push_str(&new);
            }
        }
    }
}

/// Compares `actual` with `tests/golden/{name}`, or writes it there with
/// `PROFILIS_BLESS=1`.
fn check(name: &str, actual: &str) -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("PROFILIS_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return None;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (PROFILIS_BLESS=1 writes it)",
            path.display()
        )
    });
    if expected == actual {
        return None;
    }
    let line = expected
        .lines()
        .zip(actual.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
    Some(format!(
        "{name} differs from {} at line {}:\n  expected: {}\n  actual:   {}",
        path.display(),
        line + 1,
        expected.lines().nth(line).unwrap_or("<end>"),
        actual.lines().nth(line).unwrap_or("<end>"),
    ))
}

fn golden() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap().to_string();
    let ring_path = tmp.path().join("golden.ring");
    let out_dir = tmp.path().join("jsonl");

    // The events' wall-clock times fall 1 s into the 10-second step before
    // the current one, so they share one step of the time series and every
    // step the reader reports is complete.
    let wall_offset = profilis::clock::wall_offset_ns();
    let now_wall = profilis::clock::wall_ns();
    let step = 10_000_000_000;
    let anchor_wall = now_wall / step * step - step + 1_000_000_000;
    let base = anchor_wall.wrapping_sub(wall_offset);

    let ring = open(&ring_path);
    for seq in 0..FIRST {
        assert_eq!(write(&ring, seq, base), Emit::Written);
    }
    let mut victim = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, "victim")
        .env("PROFILIS_RING", &ring_path)
        .env("PROFILIS_GOLDEN_BASE", base.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let victim_pid = victim.id();
    assert!(victim.wait().unwrap().success());
    let last = FIRST + VICTIM + (LANE_SLOTS - FIRST);
    for seq in FIRST + VICTIM..last {
        assert_eq!(write(&ring, seq, base), Emit::Written);
    }
    for seq in last..last + DROPPED {
        assert_eq!(write(&ring, seq, base), Emit::Dropped);
    }
    let received = LANE_SLOTS + VICTIM;

    let mut child = reader()
        .arg(&ring_path)
        .arg("--jsonl-dir")
        .arg(&out_dir)
        .args([
            "--liveness-interval",
            "10ms",
            "--max-routes",
            "3",
            // The writers' resources vary from run to run (this test's
            // process is one); reader/tests/processes.rs tests them.
            "--process-interval",
            "0",
            "--accounting",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader_pid = child.id();
    let (line, _lines) = stderr_line(&mut child, "dashboard at", DEADLINE);
    let (addr, prefix) = dashboard_url(&line);
    let get = |path: &str| {
        let (status, _, body) = http_get(&addr, &format!("{prefix}{path}"), &[]);
        assert_eq!(status, 200, "{path}: {body}");
        body
    };
    let settled = wait_until(DEADLINE, || {
        let v: serde_json::Value = serde_json::from_str(&get("metrics.json")).unwrap();
        v["reader"]["events"] == received
            && v["reader"]["exporters"][0]["exported"] == received
            && v["postmortems"].as_array().is_some_and(|p| p.len() == 1)
    });
    assert!(
        settled,
        "the reader drained the ring: {}",
        get("metrics.json")
    );
    let metrics_json = get("metrics.json");
    let prometheus = get("metrics");
    let v: serde_json::Value = serde_json::from_str(&metrics_json).unwrap();
    let ring_id = v["rings"][0]["ring_id"].as_str().unwrap().to_string();
    let postmortem = get(&format!("postmortem/{ring_id}/{victim_pid}.jsonl"));

    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(reader_pid as i32, libc::SIGTERM) };
    let out = wait_output(child, DEADLINE);
    assert!(out.status.success(), "{out:?}");
    drop(ring);

    let mut events = String::new();
    for file in data_files(&out_dir) {
        events.push_str(&file_text(&file));
    }
    let first = events.lines().next().expect("JSONL lines");
    let first_event = events
        .lines()
        .find(|l| l.ends_with(",\"seq\":0}"))
        .unwrap_or(first);
    let anchor_ns: i128 = first_event
        .strip_prefix("{\"ts_ns\":")
        .and_then(|rest| rest.split(',').next())
        .and_then(|ts| ts.parse().ok())
        .expect("the event at position 0 starts with its ts_ns");
    let normalizer = Normalizer {
        dir,
        ring_id,
        pids: vec![
            (std::process::id(), "writer"),
            (victim_pid, "victim"),
            (reader_pid, "reader"),
        ],
        anchor_ns,
    };
    // The rewriter keeps the bytes it does not replace.
    for line in events.lines() {
        let mut identity = Rewriter {
            text: line.as_bytes(),
            at: 0,
            out: String::new(),
            pretty: false,
            path: Vec::new(),
            scalar: &|_: &[String], _: &str| None,
        };
        identity.value(0);
        assert_eq!(identity.out, line);
    }
    let accounting: String = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("{\"ring\""))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!accounting.is_empty(), "--accounting printed a line");

    let failures: Vec<String> = [
        ("events.jsonl", normalizer.json_lines(&events)),
        ("metrics.json", normalizer.json(&metrics_json, true) + "\n"),
        ("metrics.prom", normalizer.prometheus(&prometheus)),
        ("postmortem.jsonl", normalizer.json_lines(&postmortem)),
        ("accounting.jsonl", normalizer.json_lines(&accounting)),
    ]
    .iter()
    .filter_map(|(name, actual)| check(name, actual))
    .collect();
    assert!(
        failures.is_empty(),
        "{}\n(after an intended change of output: PROFILIS_BLESS=1 cargo test -p profilis-reader --test golden, then review the diff)",
        failures.join("\n")
    );
}
