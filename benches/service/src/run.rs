//! One configuration, one round: start the collection side and the service
//! as processes of their own, warm up, measure saturation and the fixed
//! rate (CPU from `/proc` around each phase), stop everything and count
//! what the instrumentation recorded.

use crate::app::Config;
use crate::loadgen::{self, Outcome};
use crate::procstat::cpu_time;
use crate::receiver::Counts;
use anyhow::{bail, Context as _};
use serde::Serialize;
use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// How to run a configuration.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Directory of the `service` and `otlp-receiver` binaries.
    pub bin_dir: PathBuf,
    /// The release `profilis-reader`.
    pub reader: PathBuf,
    /// Where each run writes its outputs (a directory per run).
    pub work_dir: PathBuf,
    /// Service tokio worker threads (None: one per CPU).
    pub workers: Option<usize>,
    /// Closed-loop connections at saturation.
    pub connections: usize,
    /// Connections at the fixed rate.
    pub rate_connections: usize,
    /// Warm-up at saturation before measuring.
    pub warmup: Duration,
    /// The saturation phase.
    pub saturation: Duration,
    /// The fixed-rate phase.
    pub fixed: Duration,
    /// Keep each run's outputs (JSONL, logs) instead of deleting them.
    pub keep: bool,
}

/// CPU used during a phase, in seconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Cpu {
    /// The service process (all threads: for `otel` the exporter's thread,
    /// for `json-log` the appender's writer thread).
    pub service_s: f64,
    /// The collection process (profilis-reader, the OTLP receiver), or 0.
    pub collection_s: f64,
}

/// A measured phase.
#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    /// Responses.
    pub requests: u64,
    /// Responses per second.
    pub rate: f64,
    /// Responses with an unexpected status.
    pub unexpected: u64,
    /// Requests failed on the connection.
    pub transport_errors: u64,
    /// Latency percentiles in µs (fixed rate only).
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// 99.9th percentile, µs.
    pub p999_us: f64,
    /// Largest latency, µs.
    pub max_us: f64,
    /// CPU over the phase.
    pub cpu: Cpu,
}

impl Phase {
    fn new(outcome: &Outcome, cpu: Cpu) -> Phase {
        let us = |q: f64| outcome.latency.value_at_quantile(q) as f64 / 1000.0;
        let has_latency = !outcome.latency.is_empty();
        Phase {
            requests: outcome.requests,
            rate: outcome.rate(),
            unexpected: outcome.unexpected,
            transport_errors: outcome.transport_errors,
            p50_us: if has_latency { us(0.5) } else { 0.0 },
            p99_us: if has_latency { us(0.99) } else { 0.0 },
            p999_us: if has_latency { us(0.999) } else { 0.0 },
            max_us: outcome.latency.max() as f64 / 1000.0,
            cpu,
        }
    }

    /// CPU seconds per million requests: (service, collection).
    pub fn cpu_per_million(&self) -> (f64, f64) {
        let per = 1e6 / (self.requests.max(1) as f64);
        (self.cpu.service_s * per, self.cpu.collection_s * per)
    }
}

/// What the instrumentation recorded, against what was sent.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Records {
    /// Requests answered in the run (warm-up and both phases).
    pub sent_requests: u64,
    /// Of them, queries run (`GET /users/{id}`).
    pub sent_queries: u64,
    /// Of them, failures (`GET /fail`).
    pub sent_errors: u64,
    /// Per-request records (REQ lines, server spans, request log lines,
    /// the Prometheus counter's sum).
    pub requests: u64,
    /// Per-query records (DB lines, client spans, query log lines).
    pub queries: u64,
    /// Error records.
    pub errors: u64,
    /// Error records carrying the error's message.
    pub error_messages: u64,
    /// Records carrying a trace id.
    pub traced: u64,
    /// Histogram series lines (Prometheus only).
    pub histogram_lines: u64,
}

/// One configuration's run in one round.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    /// The configuration.
    pub config: Config,
    /// The round (0-based).
    pub round: usize,
    /// Closed loop.
    pub saturation: Phase,
    /// Fixed rate.
    pub fixed: Phase,
    /// What was recorded.
    pub records: Records,
}

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
struct Proc {
    name: &'static str,
    child: Child,
    stdout: BufReader<ChildStdout>,
    stderr_path: PathBuf,
}

impl Proc {
    /// Starts `command` (stderr to `stderr_path`) and waits for its
    /// `listening on ADDR` line when `listens`.
    fn start(
        name: &'static str,
        mut command: Command,
        stderr_path: PathBuf,
        listens: bool,
    ) -> anyhow::Result<(Proc, Option<SocketAddr>)> {
        let stderr = std::fs::File::create(&stderr_path)
            .with_context(|| format!("creating {}", stderr_path.display()))?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        let stdout = BufReader::new(child.stdout.take().context("piped stdout")?);
        let mut proc = Proc {
            name,
            child,
            stdout,
            stderr_path,
        };
        if !listens {
            return Ok((proc, None));
        }
        let mut line = String::new();
        proc.stdout.read_line(&mut line)?;
        match line.trim().strip_prefix("listening on ") {
            Some(addr) => {
                let addr = addr
                    .parse()
                    .with_context(|| format!("{name}: bad address {addr}"))?;
                Ok((proc, Some(addr)))
            }
            None => bail!(
                "{name} did not start (printed {line:?}); its stderr: {}",
                proc.stderr()
            ),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGTERM, then wait up to `grace` (SIGKILL after); the rest of its
    /// stdout. Fails if it exited with an error.
    fn stop(mut self, grace: Duration) -> anyhow::Result<String> {
        terminate(&mut self.child, grace)?;
        let status = self.child.wait()?;
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest)?;
        if !status.success() {
            bail!(
                "{} exited with {status}; its stderr: {}",
                self.name,
                self.stderr()
            );
        }
        Ok(rest)
    }
}

fn terminate(child: &mut Child, grace: Duration) -> anyhow::Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    // SAFETY: kill sends a signal to our own child, which has not been
    // reaped (try_wait above), so the pid is still ours.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill()?;
    Ok(())
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = terminate(&mut self.child, Duration::from_secs(2));
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1 (for the reader's dashboard).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn cpu(service: &Proc, collection: Option<&Proc>) -> anyhow::Result<Cpu> {
    Ok(Cpu {
        service_s: cpu_time(service.pid())?.as_secs_f64(),
        collection_s: match collection {
            Some(p) => cpu_time(p.pid())?.as_secs_f64(),
            None => 0.0,
        },
    })
}

fn delta(before: Cpu, after: Cpu) -> Cpu {
    Cpu {
        service_s: after.service_s - before.service_s,
        collection_s: after.collection_s - before.collection_s,
    }
}

/// Runs `config` once: round `round`, the fixed phase at `rate`.
pub async fn run(
    plan: &Plan,
    config: Config,
    round: usize,
    rate: f64,
) -> anyhow::Result<RunResult> {
    let dir = plan.work_dir.join(format!("{}-r{round}", config.name()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut service_cmd = Command::new(plan.bin_dir.join("service"));
    service_cmd.arg("--config").arg(config.name());
    if let Some(workers) = plan.workers {
        service_cmd.arg("--workers").arg(workers.to_string());
    }
    let ring = PathBuf::from(format!(
        "/dev/shm/profilis-bench-service-{}-r{round}.ring",
        std::process::id()
    ));
    let jsonl_dir = dir.join("jsonl");
    let log_file = dir.join("service.jsonl");
    let mut ui = None;
    let collection = match config {
        Config::Profilis => {
            let port = free_port()?;
            ui = Some(SocketAddr::from(([127, 0, 0, 1], port)));
            let _ = std::fs::remove_file(&ring);
            let mut reader = Command::new(&plan.reader);
            reader
                .arg(&ring)
                .arg("--wait")
                .arg("--jsonl-dir")
                .arg(&jsonl_dir)
                .arg("--ui-addr")
                .arg(format!("127.0.0.1:{port}"));
            service_cmd.env("PROFILIS_RING", &ring);
            Some(Proc::start("profilis-reader", reader, dir.join("reader.stderr"), false)?.0)
        }
        Config::Otel => {
            let (receiver, addr) = Proc::start(
                "otlp-receiver",
                Command::new(plan.bin_dir.join("otlp-receiver")),
                dir.join("receiver.stderr"),
                true,
            )?;
            let addr = addr.context("receiver address")?;
            service_cmd
                .arg("--otlp-endpoint")
                .arg(format!("http://{addr}/v1/traces"));
            Some(receiver)
        }
        Config::JsonLog => {
            service_cmd.arg("--log-file").arg(&log_file);
            None
        }
        Config::Bare | Config::Prometheus => None,
    };
    let (service, addr) = Proc::start("service", service_cmd, dir.join("service.stderr"), true)?;
    let addr = addr.context("service address")?;

    // An open dashboard fetches metrics.json every 2 s (--ui-refresh-ms).
    let dashboard = ui.map(|ui| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            let mut fetched = 0u64;
            loop {
                tick.tick().await;
                if let Ok((status, _)) = loadgen::get(ui, "/_profilis/metrics.json").await {
                    fetched += u64::from(status.is_success());
                }
                if fetched == u64::MAX {
                    break;
                }
            }
        })
    });

    let warmup = loadgen::saturate(addr, plan.connections, plan.warmup).await?;
    let before = cpu(&service, collection.as_ref())?;
    let saturated = loadgen::saturate(addr, plan.connections, plan.saturation).await?;
    let after = cpu(&service, collection.as_ref())?;
    let saturation = Phase::new(&saturated, delta(before, after));
    let before = cpu(&service, collection.as_ref())?;
    let fixed_outcome = loadgen::fixed_rate(addr, plan.rate_connections, rate, plan.fixed).await?;
    let after = cpu(&service, collection.as_ref())?;
    let fixed = Phase::new(&fixed_outcome, delta(before, after));
    if let Some(task) = dashboard {
        task.abort();
    }

    let mut records = Records {
        sent_requests: warmup.requests + saturation.requests + fixed.requests,
        sent_queries: warmup.reads + saturated.reads + fixed_outcome.reads,
        sent_errors: warmup.failures + saturated.failures + fixed_outcome.failures,
        ..Records::default()
    };
    let scrape = if config == Config::Prometheus {
        Some(loadgen::get(addr, "/metrics").await?.1)
    } else {
        None
    };
    service
        .stop(Duration::from_secs(10))
        .context("stopping the service")?;
    match config {
        Config::Profilis => {
            // Let the reader drain what the service wrote last.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            collection
                .context("reader")?
                .stop(Duration::from_secs(10))
                .context("stopping profilis-reader")?;
            count_jsonl(&jsonl_dir, &mut records)?;
            let _ = std::fs::remove_file(&ring);
        }
        Config::Otel => {
            let out = collection
                .context("receiver")?
                .stop(Duration::from_secs(10))
                .context("stopping the receiver")?;
            let counts: Counts = serde_json::from_str(out.trim())
                .with_context(|| format!("receiver counts: {out:?}"))?;
            records.requests = counts.server_spans;
            records.queries = counts.client_spans;
            records.errors = counts.error_spans;
            records.error_messages = counts.span_events;
            records.traced = counts.spans;
        }
        Config::JsonLog => count_log(&log_file, &mut records)?,
        Config::Prometheus => count_scrape(&scrape.unwrap_or_default(), &mut records),
        Config::Bare => {}
    }
    if !plan.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(RunResult {
        config,
        round,
        saturation,
        fixed,
        records,
    })
}

/// REQ, DB and error lines of the reader's JSONL files.
fn count_jsonl(dir: &Path, records: &mut Records) -> anyhow::Result<()> {
    let mut files = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        files += 1;
        let file = std::fs::File::open(&path)?;
        for line in BufReader::new(file).lines() {
            let line = line?;
            let event: serde_json::Value = serde_json::from_str(&line)
                .with_context(|| format!("{}: not JSON: {line}", path.display()))?;
            let kind = event["kind"].as_str().unwrap_or("");
            match kind {
                "REQ" => {
                    records.requests += 1;
                    if event["error"] == true {
                        records.errors += 1;
                        records.error_messages += u64::from(event["exception_message"].is_string());
                    }
                }
                "DB" => records.queries += 1,
                _ => continue,
            }
            records.traced += u64::from(event["trace_id"].is_string());
        }
    }
    anyhow::ensure!(files > 0, "no JSONL file in {}", dir.display());
    Ok(())
}

/// Request, query and error lines of the JSON log.
fn count_log(path: &Path, records: &mut Records) -> anyhow::Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    for line in BufReader::new(file).lines() {
        let line = line?;
        let event: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{}: not JSON: {line}", path.display()))?;
        let message = event["fields"]["message"].as_str().unwrap_or("");
        match message {
            "finished processing request" => records.requests += 1,
            "query" => records.queries += 1,
            "payment failed" => {
                records.errors += 1;
                records.error_messages +=
                    u64::from(event["fields"]["exception.message"].is_string());
            }
            _ => {}
        }
    }
    Ok(())
}

/// The scrape's request counter sum and histogram lines.
fn count_scrape(body: &[u8], records: &mut Records) {
    let text = String::from_utf8_lossy(body);
    for line in text.lines() {
        if line.starts_with("http_requests_total{") {
            let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
            let value = value.unwrap_or(0.0) as u64;
            records.requests += value;
            if line.contains("status=\"500\"") {
                records.errors += value;
            }
        } else if line.starts_with("http_request_duration_seconds_bucket{") {
            records.histogram_lines += 1;
        }
    }
}
