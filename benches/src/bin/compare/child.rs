//! The 2-process case's child processes, both sides: the parent starts
//! them (`--child` with the ring and the load as arguments), waits for
//! each one's `ready`, starts them all with a line on stdin and merges the
//! figures each one reports as one JSON line on stdout.

use crate::{CAPACITY, EVENT_NAME};
use anyhow::{bail, ensure, Context, Result};
use profilis::{Emit, Ring};
use profilis_benches::histogram::Histogram;
use profilis_benches::load::{run_producers, Load, Measured, Timing};
use profilis_benches::ring_options;
use profilis_benches::timer::Timer;
use serde_json::{json, Value};
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// Starts `processes` children writing to `ring` with `load`, each timing
/// with `timer`'s rate, and merges their figures.
pub(crate) fn drive_children(
    timer: &Timer,
    ring: &Path,
    processes: usize,
    load: &Load,
) -> Result<Measured> {
    let exe = std::env::current_exe().context("finding this binary to start its children")?;
    let mut children = Vec::new();
    for _ in 0..processes {
        let child = Command::new(&exe)
            .arg("--child")
            .arg(ring)
            .args([
                load.seconds.to_string(),
                load.rate.to_string(),
                load.timing.label().to_string(),
                timer.ns_per_tick().to_string(),
                load.warmup.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting a child process {}", exe.display()))?;
        children.push(child);
    }
    let mut lines = Vec::new();
    for child in &mut children {
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        out.read_line(&mut line)
            .context("reading a child's ready line")?;
        ensure!(
            line.trim() == "ready",
            "a child process did not start: {line:?}"
        );
        lines.push(out);
    }
    for child in &mut children {
        let stdin = child.stdin.as_mut().expect("piped stdin");
        stdin
            .write_all(b"go\n")
            .and_then(|()| stdin.flush())
            .context("starting a child process's timed run")?;
    }
    let mut total: Option<Measured> = None;
    for (child, out) in children.iter_mut().zip(&mut lines) {
        let mut line = String::new();
        out.read_line(&mut line)
            .context("reading a child's figures")?;
        let status = child.wait().context("waiting for a child process")?;
        ensure!(status.success(), "a child process failed: {status}");
        let m = measured_from_json(&line)?;
        match &mut total {
            Some(t) => t.merge(&m),
            None => total = Some(m),
        }
    }
    total.context("no child processes")
}

/// `--child RING SECONDS RATE TIMING NS_PER_TICK WARMUP`: one producer
/// thread writing to RING, started by a line on stdin, reporting one JSON
/// line on stdout.
pub(crate) fn child_main(args: &[String]) -> Result<()> {
    let [ring_path, seconds, rate, timing, ns_per_tick, warmup] = args else {
        bail!("--child needs RING SECONDS RATE TIMING NS_PER_TICK WARMUP, got {args:?}");
    };
    let number = |s: &String| -> Result<f64> {
        s.parse()
            .with_context(|| format!("--child: {s:?} is not a number"))
    };
    let load = Load {
        producers: 1,
        seconds: number(seconds)?,
        rate: number(rate)?,
        warmup: number(warmup)? as u64,
        timing: match timing.as_str() {
            "per_call" => Timing::PerCall,
            "batch" => Timing::Batch,
            other => bail!("--child: unknown timing {other:?}"),
        },
    };
    let timer = Timer::with_rate(number(ns_per_tick)?);
    let ring = Ring::create_or_open(ring_path, ring_options(CAPACITY as u64))
        .with_context(|| format!("opening ring file {ring_path}"))?;
    let name = ring.intern(EVENT_NAME);
    let gate = || {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "ready").and_then(|()| out.flush());
        let mut line = String::new();
        // EOF: the parent is gone; there is nobody to report to.
        if !matches!(std::io::stdin().read_line(&mut line), Ok(n) if n > 0) {
            std::process::exit(1);
        }
    };
    let ring = &ring;
    let m = run_producers(&timer, &load, gate, |_| {
        move |seq| ring.emit_fn(name, black_box(seq), false) == Emit::Written
    });
    let report = json!({
        "events": m.events,
        "drops": m.drops,
        "seconds": m.seconds,
        "unit_ns": m.unit_ns,
        "buckets": m.hist.to_sparse(),
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{report}").and_then(|()| out.flush())?;
    Ok(())
}

fn measured_from_json(line: &str) -> Result<Measured> {
    let v: Value = serde_json::from_str(line)
        .with_context(|| format!("a child process's figures are not JSON: {line:?}"))?;
    let field = |k: &str| {
        v.get(k)
            .with_context(|| format!("a child process's figures lack {k:?}"))
    };
    let buckets: Vec<(usize, u64)> = serde_json::from_value(field("buckets")?.clone())
        .context("a child process's histogram is malformed")?;
    Ok(Measured {
        hist: Histogram::from_sparse(&buckets)
            .context("a child process's histogram has a bucket out of range")?,
        unit_ns: field("unit_ns")?.as_f64().context("unit_ns")?,
        events: field("events")?.as_u64().context("events")?,
        drops: field("drops")?.as_u64().context("drops")?,
        seconds: field("seconds")?.as_f64().context("seconds")?,
    })
}
