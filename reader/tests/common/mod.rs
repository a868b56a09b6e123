//! Helpers of the integration tests: the reader binary, ring writers, and
//! reading back a JSONL directory.
#![allow(dead_code)]

use profilis::{Emit, Fields, Kind, Method, Ring, RingOptions};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The reader binary built for these tests.
pub fn reader() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_profilis-reader"));
    // Dashboards of the readers under test listen on free ports only.
    cmd.env_remove("PROFILIS_RING")
        .env_remove("PROFILIS_UI_TOKEN")
        .env("PROFILIS_UI_ADDR", "127.0.0.1:0")
        .stdin(Stdio::null());
    cmd
}

/// Runs the reader to completion with a deadline; kills it past the deadline.
pub fn run_reader(args: &[&str], deadline: Duration) -> Output {
    let child = reader()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting profilis-reader");
    wait_output(child, deadline)
}

/// Waits for `child` with a deadline (killing it past the deadline).
pub fn wait_output(mut child: Child, deadline: Duration) -> Output {
    let end = Instant::now() + deadline;
    loop {
        if child.try_wait().expect("waiting").is_some() {
            return child.wait_with_output().expect("collecting output");
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collecting output");
            panic!(
                "profilis-reader did not finish in {deadline:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `cond` until it holds or `deadline` passes.
pub fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Accounting lines printed by `--accounting`.
pub fn accounting(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| l.starts_with("{\"ring\""))
        .map(|l| serde_json::from_str(l).expect("accounting line is JSON"))
        .collect()
}

/// Names that test JSON escaping.
pub const HOSTILE: [&str; 4] = [
    "/api/\"quoted\"/{id}",
    "back\\slash\nnew line\ttab",
    "ctrl \u{1} \u{1f} \u{7f} é ✓ 🦀",
    "SELECT * FROM t WHERE a = ? -- \u{2028}",
];

/// Writes `n` events of every kind (some with hostile names, errors and
/// exception messages) and returns how many were written and dropped.
pub fn write_events(ring: &Ring, n: u64) -> (u64, u64) {
    let names: Vec<_> = HOSTILE.iter().map(|h| ring.intern(h)).collect();
    let exception = ring.intern("Timeout\"Error\"");
    let (mut written, mut dropped) = (0, 0);
    for i in 0..n {
        let outcome = match i % 5 {
            0 | 1 => {
                let error = i % 50 == 0;
                let fields = Fields {
                    method: Method::Get,
                    status: if error { 503 } else { 200 },
                    dur_ns: 1_000 + i % 7_000_000,
                    exception_type: if error {
                        exception
                    } else {
                        profilis::StrId::NONE
                    },
                    message: if error {
                        ring.message("line 1\nline \"2\" \\ end")
                    } else {
                        profilis::MsgRef(0)
                    },
                    flags: if error {
                        profilis::record::FLAG_ERROR
                    } else {
                        0
                    },
                    value: i % 1000,
                    value2: i % 5000,
                    ..Fields::default()
                };
                ring.record(Kind::Req, names[(i % 4) as usize], &fields)
            }
            2 => {
                // A nested span: same trace as its parent, parent id set.
                let parent = profilis::SpanContext::NONE.child();
                let fields = Fields {
                    dur_ns: 5_000 + i,
                    span: Some(parent.child()),
                    ..Fields::default()
                };
                ring.record(Kind::Fn, names[1], &fields)
            }
            3 => ring.emit_db(names[3], 20_000 + i, i % 10),
            _ => ring.emit_custom("gauge", i as f64 / 4.0),
        };
        match outcome {
            Emit::Written => written += 1,
            Emit::Dropped => dropped += 1,
            other => panic!("unexpected emit outcome {other:?}"),
        }
    }
    (written, dropped)
}

/// Creates a ring with `capacity` slots.
/// A ring of one lane: the tests write from one thread, which then has the
/// whole capacity (a thread's lane holds `capacity / lanes` events).
pub fn ring(path: &Path, capacity: u64) -> Ring {
    Ring::create_or_open(
        path,
        RingOptions::default()
            .capacity(capacity)
            .lanes(1)
            .service("test-svc"),
    )
    .expect("creating ring")
}

/// The files of a JSONL directory that hold events (closed, compressed and
/// the `current.jsonl` being written; not hidden files).
pub fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("listing JSONL dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// Contents of a JSONL file, decompressed if `.gz` / `.zst`.
pub fn file_text(path: &Path) -> String {
    let raw = std::fs::read(path).expect("reading JSONL file");
    let name = path.to_string_lossy();
    let mut out = String::new();
    if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_string(&mut out)
            .expect("gzip decodes");
    } else if name.ends_with(".zst") {
        zstd::stream::read::Decoder::new(&raw[..])
            .expect("zstd header")
            .read_to_string(&mut out)
            .expect("zstd decodes");
    } else {
        out = String::from_utf8(raw).expect("JSONL is UTF-8");
    }
    out
}

/// Every line of every data file, parsed; panics on a line that is not
/// JSON or a file whose last line is partial. For a reader that has
/// stopped; while one runs, poll with [`read_lines_so_far`].
pub fn read_lines(dir: &Path) -> Vec<Value> {
    parse_lines(dir, false)
}

/// The complete lines of every data file while a reader may be writing:
/// a batch's `write` can be seen half done, so the last line of the file
/// being written may be partial and is left for the next poll. Every other
/// line must be JSON and every closed file end with a newline.
pub fn read_lines_so_far(dir: &Path) -> Vec<Value> {
    parse_lines(dir, true)
}

fn parse_lines(dir: &Path, live: bool) -> Vec<Value> {
    let mut all = Vec::new();
    for f in data_files(dir) {
        let mut text = file_text(&f);
        let open = f.file_name().is_some_and(|n| n == "current.jsonl");
        if live && open && !text.ends_with('\n') {
            let whole = text.rfind('\n').map_or(0, |i| i + 1);
            text.truncate(whole);
        }
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends with a partial line",
            f.display()
        );
        for line in text.lines() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: invalid JSON line {line:?}: {e}", f.display()));
            all.push(v);
        }
    }
    all
}

/// Checks the documented fields of one line.
pub fn check_fields(v: &Value) {
    let o = v.as_object().expect("line is an object");
    for key in [
        "ts_ns", "kind", "name", "error", "pid", "tid", "ring_id", "seq",
    ] {
        assert!(o.contains_key(key), "missing {key} in {v}");
    }
    assert!(v["ts_ns"].as_u64().unwrap() > 1_600_000_000_000_000_000);
    assert_eq!(v["ring_id"].as_str().unwrap().len(), 16);
    let kind = v["kind"].as_str().unwrap();
    match kind {
        "REQ" => {
            assert!(
                v["status"].is_u64()
                    && v["dur_ns"].is_u64()
                    && v["bytes_in"].is_u64()
                    && v["bytes_out"].is_u64(),
                "{v}"
            );
        }
        "FN" => assert!(v["dur_ns"].is_u64(), "{v}"),
        "DB" => assert!(v["rows"].is_u64() && v["dur_ns"].is_u64(), "{v}"),
        "CUSTOM" => assert!(v["value"].is_number(), "{v}"),
        other => panic!("unknown kind {other}"),
    }
    if let Some(t) = v.get("trace_id") {
        let t = t.as_str().unwrap();
        assert!(
            t.len() == 32 && t.chars().all(|c| c.is_ascii_hexdigit()),
            "{v}"
        );
    }
    for key in ["span_id", "parent_span_id"] {
        if let Some(s) = v.get(key) {
            assert_eq!(s.as_str().unwrap().len(), 16, "{v}");
        }
    }
}

/// The address (`127.0.0.1:PORT`) and path prefix (`/_profilis/`) of the
/// dashboard URL in a line the reader logged ("dashboard at http://...").
pub fn dashboard_url(line: &str) -> (String, String) {
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    let rest = url.trim_start_matches("http://");
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    (addr.to_string(), path.to_string())
}

/// A minimal HTTP/1.1 client over a plain socket: GET `path` with extra
/// header lines; returns status, header block (lower-cased names) and body.
pub fn http_get(addr: &str, path: &str, headers: &[&str]) -> (u16, String, String) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).expect("connecting to the dashboard");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    stream
        .read_to_string(&mut raw)
        .expect("reading the response");
    parse_response(&raw)
}

/// Splits a raw HTTP/1.1 response (not chunked) into status, headers and
/// body.
pub fn parse_response(raw: &str) -> (u16, String, String) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {raw:?}"));
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// Reads the child's stderr line by line on a thread until a line
/// contains `marker`; returns that line and a receiver of the lines after.
pub fn stderr_line(
    child: &mut Child,
    marker: &str,
    deadline: Duration,
) -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let end = Instant::now() + deadline;
    let mut seen = Vec::new();
    while Instant::now() < end {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) if line.contains(marker) => return (line, rx),
            Ok(line) => seen.push(line),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    panic!("no stderr line with {marker:?} in {deadline:?}; got: {seen:#?}");
}

/// The statistics snapshot after one `--once` drain of the ring at `path`
/// (no exporter).
pub fn snapshot_after_draining(path: PathBuf) -> std::sync::Arc<profilis_reader::views::Snapshot> {
    use profilis_reader::app::drain::{Drain, DrainOptions};
    let drain = Drain::new(
        DrainOptions {
            rings: vec![path],
            once: true,
            ..DrainOptions::default()
        },
        Vec::new(),
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    )
    .unwrap();
    let snapshots = drain.snapshots();
    drain.run();
    snapshots.load()
}

/// The dashboard's router serving the snapshot of one `--once` drain of
/// the ring at `path` (no exporter), for requests made in-process.
pub fn router_after_draining(path: PathBuf) -> axum::Router {
    use profilis_reader::outputs::web::{self, UiConfig, WebState};
    use profilis_reader::views::SnapshotHandle;
    let handle = SnapshotHandle::new();
    handle.store((*snapshot_after_draining(path)).clone());
    web::router(WebState::new(handle, UiConfig::default()))
}
