//! Process resources end to end: real writer processes of one service
//! write into a ring the real `profilis-reader` drains with
//! `--process-interval 250ms`. One writer allocates and touches 64 MiB and
//! its RSS (and PSS) in `metrics.json` and `/metrics` grows by as much;
//! another spins a core and shows CPU; the first is then SIGKILLed and its
//! post-mortem keeps its last sample, with the memory it had. The reader
//! reports its own process throughout.
//!
//! The binary re-executes itself as the writers
//! (`PROFILIS_PROCS_ROLE=writer`), which take commands on stdin, so it
//! runs without the test harness (`harness = false` in Cargo.toml).

mod common;

use common::*;
use profilis::{Fields, Kind, Method, Ring, RingOptions};
use serde_json::Value;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ROLE: &str = "PROFILIS_PROCS_ROLE";
const DEADLINE: Duration = Duration::from_secs(30);
const MIB: u64 = 1 << 20;
const GROWTH: u64 = 64 * MIB;

fn main() {
    if std::env::var(ROLE).as_deref() == Ok("writer") {
        writer(Path::new(&std::env::var("PROFILIS_RING").unwrap()));
        return;
    }
    profilis::testing::run_tests(&[(
        "writer_processes_show_their_cpu_and_memory_and_the_dead_keep_their_last_sample",
        resources,
    )]);
}

/// A writer: a request every 5 ms; on stdin, `alloc` allocates and
/// touches 64 MiB (kept), `spin` starts a thread that keeps a core busy.
fn writer(path: &Path) {
    let ring = open(path);
    let route = ring.intern("/work");
    std::thread::spawn(move || {
        let mut kept: Vec<Vec<u8>> = Vec::new();
        for line in std::io::stdin().lock().lines() {
            match line.unwrap_or_default().trim() {
                "alloc" => {
                    let mut block = vec![0u8; GROWTH as usize];
                    // Touch every page so that it is resident.
                    for i in (0..block.len()).step_by(4096) {
                        block[i] = 1;
                    }
                    kept.push(std::hint::black_box(block));
                }
                "spin" => {
                    std::thread::spawn(|| {
                        let mut n = 0u64;
                        loop {
                            n = std::hint::black_box(n.wrapping_add(1));
                        }
                    });
                }
                _ => {}
            }
            println!("done");
        }
    });
    loop {
        let fields = Fields {
            method: Method::Get,
            status: 200,
            dur_ns: 1_000_000,
            ..Fields::default()
        };
        ring.record(Kind::Req, route, &fields);
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The ring: a lane per writer process, service `test-svc`.
fn open(path: &Path) -> Ring {
    Ring::create_or_open(
        path,
        RingOptions::default()
            .capacity(4096)
            .lanes(4)
            .service("test-svc"),
    )
    .expect("opening the ring")
}

struct Writer {
    child: Child,
    replies: std::sync::mpsc::Receiver<String>,
}

impl Writer {
    fn spawn(ring: &Path) -> Writer {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(ROLE, "writer")
            .env("PROFILIS_RING", ring)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting a writer");
        let stdout = child.stdout.take().unwrap();
        let (tx, replies) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Writer { child, replies }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a command and waits until the writer has carried it out.
    fn command(&mut self, what: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{what}").unwrap();
        stdin.flush().unwrap();
        assert_eq!(self.replies.recv_timeout(DEADLINE).unwrap(), "done");
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sample of process `pid` in `metrics.json`'s `processes` section.
fn sample(metrics: &Value, pid: u32) -> Option<Value> {
    metrics["processes"]["services"]
        .as_array()?
        .iter()
        .flat_map(|s| s["workers"].as_array().cloned().unwrap_or_default())
        .find(|w| w["pid"] == pid)
}

fn resources() {
    let dir = tempfile::tempdir().unwrap();
    let ring_path = dir.path().join("procs.ring");
    // The ring exists before the writers open it.
    drop(open(&ring_path));
    let mut grower = Writer::spawn(&ring_path);
    let mut spinner = Writer::spawn(&ring_path);
    let mut child = reader()
        .arg(&ring_path)
        .args([
            "--process-interval",
            "250ms",
            "--flush-interval",
            "250ms",
            "--keep-rings",
        ])
        .stdout(Stdio::null())
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
    let metrics = || -> Value { serde_json::from_str(&get("metrics.json")).unwrap() };

    // Both writers sampled twice (CPU over an interval).
    let mut seen = Value::Null;
    let sampled = wait_until(DEADLINE, || {
        seen = metrics();
        [grower.pid(), spinner.pid()]
            .iter()
            .all(|&pid| sample(&seen, pid).is_some_and(|s| s["cpu_percent"].is_number()))
    });
    assert!(sampled, "both writers sampled: {}", seen["processes"]);
    let service = &seen["processes"]["services"][0];
    assert_eq!(service["service"], "test-svc");
    assert_eq!(service["processes"], 2);
    let before = sample(&seen, grower.pid()).unwrap();
    let rss_before = before["rss_bytes"].as_u64().unwrap();
    assert!(rss_before > 0);
    assert_eq!(before["rings"][0], ring_path.display().to_string());
    let reader_own = &seen["processes"]["reader"];
    assert_eq!(reader_own["pid"], reader_pid);
    assert!(reader_own["rss_bytes"].as_u64().unwrap() > MIB);
    assert!(reader_own["open_fds"].as_u64().unwrap() >= 3);

    // The grower's memory grows by what it touched: RSS at the next
    // sample, PSS (where it was read before) at its next read.
    grower.command("alloc");
    let pss_before = before["pss_bytes"].as_u64();
    let grown = wait_until(DEADLINE, || {
        seen = metrics();
        sample(&seen, grower.pid()).is_some_and(|s| {
            s["rss_bytes"].as_u64().unwrap() >= rss_before + GROWTH - 4 * MIB
                && pss_before.is_none_or(|p| {
                    s["pss_bytes"]
                        .as_u64()
                        .is_some_and(|a| a >= p + GROWTH - 4 * MIB)
                })
        })
    });
    assert!(
        grown,
        "RSS (and PSS, where read) grew by 64 MiB: {}",
        seen["processes"]
    );

    // The spinner shows CPU; the service sums its workers.
    spinner.command("spin");
    let busy = wait_until(DEADLINE, || {
        seen = metrics();
        sample(&seen, spinner.pid()).is_some_and(|s| s["cpu_percent"].as_f64().unwrap() > 20.0)
    });
    assert!(busy, "the spinning writer shows CPU: {}", seen["processes"]);
    let service = &seen["processes"]["services"][0];
    let workers = service["workers"].as_array().unwrap();
    let rss_sum: u64 = workers
        .iter()
        .map(|w| w["rss_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(service["rss_bytes"].as_u64().unwrap(), rss_sum);

    // The same figures in /metrics.
    let prom = get("metrics");
    let line_of = |name: &str, pid: u32| {
        let prefix = format!("{name}{{service=\"test-svc\",pid=\"{pid}\"}} ");
        prom.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.parse::<f64>().unwrap())
    };
    let rss = line_of(
        "profilis_writer_process_resident_memory_bytes",
        grower.pid(),
    );
    assert!(
        rss.unwrap() >= (rss_before + GROWTH - 4 * MIB) as f64,
        "{prom}"
    );
    assert!(line_of("profilis_writer_process_cpu_seconds_total", spinner.pid()).unwrap() > 0.0);
    for name in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_start_time_seconds ",
        "process_open_fds ",
    ] {
        assert!(prom.lines().any(|l| l.starts_with(name)), "{name}in {prom}");
    }

    // The grower dies; its post-mortem keeps its last sample.
    let grower_pid = grower.pid();
    let last_rss = sample(&metrics(), grower_pid).unwrap()["rss_bytes"]
        .as_u64()
        .unwrap();
    drop(grower); // SIGKILL
    let mut postmortem = Value::Null;
    let found = wait_until(DEADLINE, || {
        seen = metrics();
        postmortem = seen["postmortems"]
            .as_array()
            .and_then(|list| list.iter().find(|p| p["pid"] == grower_pid).cloned())
            .unwrap_or(Value::Null);
        !postmortem.is_null()
    });
    assert!(found, "a post-mortem of the killed writer: {seen}");
    let process = &postmortem["process"];
    assert_eq!(process["pid"], grower_pid);
    assert!(
        process["rss_bytes"].as_u64().unwrap() >= last_rss.min(rss_before + GROWTH - 4 * MIB),
        "the last sample, with the memory it had: {process}"
    );
    assert!(wait_until(DEADLINE, || sample(&metrics(), grower_pid).is_none()));
    assert!(sample(&metrics(), spinner.pid()).is_some());
    drop(spinner);

    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(reader_pid as i32, libc::SIGTERM) };
    let out = wait_output(child, DEADLINE);
    assert!(out.status.success(), "{out:?}");
}
