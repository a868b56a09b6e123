//! What Profilis costs a service, against what users run instead: runs
//! every configuration as its own server process, in interleaved rounds,
//! and prints the markdown report (docs/benchmarks.md, "What Profilis costs
//! a service"). Run through scripts/bench-service.sh, which builds the
//! binaries and the reader.

use anyhow::{bail, Context as _};
use clap::Parser;
use profilis_bench_service::app::Config;
use profilis_bench_service::report;
use profilis_bench_service::run::{self, Plan, RunResult};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "What Profilis costs a service, against tracing/OpenTelemetry/Prometheus")]
struct Args {
    /// A few seconds per configuration; checks the output's shape (every
    /// configuration measured, every instrumentation's output complete),
    /// not speed.
    #[arg(long)]
    smoke: bool,
    /// Rounds (every configuration once per round, the order rotated).
    #[arg(long)]
    rounds: Option<usize>,
    /// Seconds of the saturation phase.
    #[arg(long)]
    saturation_secs: Option<f64>,
    /// Seconds of the fixed-rate phase.
    #[arg(long)]
    fixed_secs: Option<f64>,
    /// Seconds of warm-up at saturation before measuring.
    #[arg(long)]
    warmup_secs: Option<f64>,
    /// The fixed rate, requests per second (default: a quarter of bare's
    /// saturation throughput, measured first: well below saturation on a
    /// shared machine too).
    #[arg(long)]
    rate: Option<f64>,
    /// Closed-loop connections at saturation.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Connections at the fixed rate.
    #[arg(long, default_value_t = 16)]
    rate_connections: usize,
    /// Service tokio worker threads (default: one per CPU).
    #[arg(long)]
    workers: Option<usize>,
    /// Configurations to run (comma-separated; default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    configs: Option<Vec<Config>>,
    /// The release profilis-reader (scripts/build-reader.sh).
    #[arg(long)]
    reader: PathBuf,
    /// Directory of the runs' outputs (default: a temporary one).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep each run's outputs.
    #[arg(long)]
    keep: bool,
    /// Write every run and the summaries as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let secs = |v: Option<f64>, full: f64, smoke: f64| {
        Duration::from_secs_f64(v.unwrap_or(if args.smoke { smoke } else { full }))
    };
    let configs = args.configs.clone().unwrap_or_else(|| Config::ALL.to_vec());
    let rounds = args.rounds.unwrap_or(if args.smoke { 1 } else { 5 });
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("the binary's directory")?
        .to_path_buf();
    let temp;
    let work_dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = std::env::temp_dir().join(format!("bench-service-{}", std::process::id()));
            temp.clone()
        }
    };
    anyhow::ensure!(
        args.reader.is_file(),
        "--reader {}: no such file (scripts/build-reader.sh builds it)",
        args.reader.display()
    );
    let plan = Plan {
        bin_dir,
        reader: args.reader.clone(),
        work_dir: work_dir.clone(),
        workers: args.workers,
        connections: args.connections,
        rate_connections: args.rate_connections,
        warmup: secs(args.warmup_secs, 2.0, 0.5),
        saturation: secs(args.saturation_secs, 8.0, 2.0),
        fixed: secs(args.fixed_secs, 8.0, 2.0),
        keep: args.keep,
    };
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load_before = load_average();
    let rate = match args.rate {
        Some(rate) => rate,
        None if args.smoke => 200.0,
        None => {
            let calibration = Plan {
                fixed: Duration::from_secs(1),
                ..plan.clone()
            };
            let bare = run::run(&calibration, Config::Bare, 0, 100.0).await?;
            ((bare.saturation.rate / 4.0) / 100.0).floor().max(1.0) * 100.0
        }
    };
    eprintln!(
        "bench-service: {} configurations x {rounds} rounds, {:?} saturation ({} connections), {:?} at {rate:.0} req/s ({} connections)",
        configs.len(),
        plan.saturation,
        plan.connections,
        plan.fixed,
        plan.rate_connections
    );
    let mut results: Vec<RunResult> = Vec::new();
    for round in 0..rounds {
        for i in 0..configs.len() {
            let config = configs[(i + round) % configs.len()];
            let result = run::run(&plan, config, round, rate)
                .await
                .with_context(|| format!("{} round {round}", config.name()))?;
            eprintln!(
                "  round {round} {:<10} {:>8.0} req/s  p50 {:>6.0} µs  p99 {:>6.0} µs  p99.9 {:>6.0} µs  cpu {:.2}+{:.2} s",
                config.name(),
                result.saturation.rate,
                result.fixed.p50_us,
                result.fixed.p99_us,
                result.fixed.p999_us,
                result.saturation.cpu.service_s,
                result.saturation.cpu.collection_s
            );
            results.push(result);
        }
    }
    if !args.keep && args.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    let load_after = load_average();
    let summaries = report::summarize(&results);
    println!(
        "Machine: {nproc} CPUs ({}), load average {load_before} before, {load_after} after; {rounds} rounds, medians; saturation {:?} with {} connections, fixed rate {rate:.0} req/s for {:?} with {} connections.\n",
        cpu_model(),
        plan.saturation,
        plan.connections,
        plan.fixed,
        plan.rate_connections
    );
    print!("{}", report::markdown(&summaries, rate));
    let targets = report::targets(&summaries);
    if !targets.is_empty() {
        println!("\nTargets for Profilis:");
        for (what, met) in &targets {
            println!("- {}: {what}", if *met { "met" } else { "NOT met" });
        }
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "nproc": nproc,
            "cpu": cpu_model(),
            "load_average_before": load_before,
            "load_average_after": load_after,
            "rate": rate,
            "rounds": rounds,
            "runs": results,
            "summaries": summaries,
            "targets": targets,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.smoke {
        let problems = report::smoke_problems(&results, &configs);
        if !problems.is_empty() {
            bail!("smoke run: {}", problems.join("; "));
        }
        println!(
            "\nsmoke: {} configurations measured, every output present",
            configs.len()
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The load generator: one thread, so it takes as little as possible of
    // the machine from the service.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(bench(args))
}
