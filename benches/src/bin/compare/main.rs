//! The ring's cost against the floor and peer queues, every case in one
//! process and one run: the benchmark that judges the ring's cost targets.
//!
//! ```text
//! cargo run --release -p profilis-benches --bin compare -- [--runs N] [--json] [--quick]
//! ```
//!
//! Every case moves a ~100-byte payload stamped with the event clock
//! (`profilis::clock::event_ns`, what an emit reads) into a 65536-slot
//! queue, while one consumer thread drains it with the same loop for every
//! queue: take up to 4096 (`Consumer::read(4096)` + `commit()` for
//! Profilis), and when there was nothing, sleep 100 µs (`backoff`, as the
//! reader does when idle) or look again at once (`polling`, a reader that
//! keeps right up with its writers). Producers emit in bursts of 256 paced
//! to an aggregate rate (`--rate`, default 4M events/s, which every queue
//! here sustains); `--rate 0` runs the bursts back to back and saturates.
//! Each producer first makes one lap of the queue untimed (so first-touch
//! page faults are not timed); threads of a case start together on a
//! barrier, processes on a line from the parent.
//!
//! Timing: on x86-64 each call is timed on its own with the TSC (a plain
//! `rdtsc` before and after; see `profilis_benches::timer` for why it is not
//! fenced), converted to ns with a rate calibrated at start against
//! `CLOCK_MONOTONIC` over 80 ms, and counted in a histogram that is exact
//! to the tick below ~1.5 µs; p50/p99/p99.9 are percentiles of single
//! calls. Nothing is subtracted: each figure includes one timer read, whose
//! cost the `timer_overhead` row (an empty timed region) shows. Where the
//! TSC advances in coarse steps (about 10 ns on some virtual machines; 2
//! ticks, under 1 ns, on others), per-call percentiles are multiples of
//! that step. `--batch` (and any machine without an invariant TSC) times
//! bursts of 256 calls and reports percentiles of the per-call means
//! instead, as earlier versions of this benchmark did.
//!
//! Runs: `--runs N` runs every case once per round, N rounds in the same
//! process, the case order rotated by N-th of the list each round so that
//! no case always follows the same one. A row reports the median over the
//! rounds of its per-round p50, p99 and p99.9, with min-max; a ratio column
//! is the median over the rounds of the per-round ratio, so both sides of a
//! ratio come from the same round. Runs on a shared machine vary by up to
//! 2x: compare figures of one run only.
//!
//! Rows: `timer_overhead`; for each consumer mode, 1 writer (floor, rtrb,
//! naive shm SPSC, crossbeam ArrayQueue, `Mutex<VecDeque>`, Profilis), 2
//! writer threads (floor, ArrayQueue, `Mutex<VecDeque>`, Profilis) and 2
//! writer processes (Profilis: two child processes of this binary, started
//! with the hidden `--child` mode, write to one ring, the parent drains it
//! and the children report their timings as one JSON line on stdout); 4 and
//! 8 writer threads with the backing-off consumer (floor, Profilis);
//! `tracing_json_nonblocking`; `profilis_drain`. The targets for the ring
//! are printed at the end as verdict lines.

mod cases;
mod child;
mod cli;
mod report;
mod rounds;
mod runners;
mod targets;

use anyhow::{ensure, Result};
use cases::all_cases;
use child::child_main;
use cli::parse_args;
use profilis_benches::load::{Timing, BURST};
use profilis_benches::timer::Timer;
use report::{load_average, print_table, print_targets, row_json, target_json};
use rounds::run_rounds;
use runners::Bench;
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;
use targets::targets;

/// Slots of every queue and ring.
pub(crate) const CAPACITY: usize = 1 << 16;
/// How long the timer's rate is measured.
const CALIBRATION: Duration = Duration::from_millis(80);
/// The name every Profilis event carries.
pub(crate) const EVENT_NAME: &str = "bench.emit";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return child_main(&args[1..]);
    }
    let o = parse_args(&args)?;
    let mut cases = all_cases();
    if o.list {
        for c in &cases {
            println!("{}", c.id());
        }
        return Ok(());
    }
    if let Some(filters) = &o.cases {
        for f in filters {
            ensure!(
                cases.iter().any(|c| c.selected_by(f)),
                "--cases: {f:?} names no case (see --list)"
            );
        }
        cases.retain(|c| filters.iter().any(|f| c.selected_by(f)));
    }

    let load_before = load_average();
    let timer = Timer::calibrate(CALIBRATION);
    let timing = if o.batch || !timer.per_call() {
        Timing::Batch
    } else {
        Timing::PerCall
    };
    let bench = Bench {
        timer,
        timing,
        seconds: o.seconds,
        rate: o.rate,
    };
    let timing_text = match timing {
        Timing::PerCall => format!(
            "per call, TSC at {:.3} GHz",
            1.0 / bench.timer.ns_per_tick()
        ),
        Timing::Batch => format!("batch means of {BURST} calls"),
    };
    if !o.json {
        println!(
            "compare: {} case(s) x {} run(s), {} s per case, rate {}, timing {timing_text}, load average {load_before}",
            cases.len(),
            o.runs,
            o.seconds,
            if o.rate > 0.0 {
                format!("{:.0} events/s", o.rate)
            } else {
                "saturating".into()
            },
        );
    }
    let results = run_rounds(&bench, cases, o.runs, !o.json)?;
    let rows = results.summaries();
    let targets = targets(&results, &rows);
    let load_after = load_average();
    if o.json {
        for r in &rows {
            println!("{}", row_json(r, o.runs, timing));
        }
        for t in &targets {
            println!("{}", target_json(t));
        }
        println!(
            "{}",
            json!({
                "kind": "run",
                "runs": o.runs,
                "seconds_per_case": o.seconds,
                "rate": o.rate,
                "timing": timing.label(),
                "ns_per_tick": bench.timer.ns_per_tick(),
                "load_average_before": load_before,
                "load_average_after": load_after,
            })
        );
    } else {
        print_table(&rows, o.runs);
        print_targets(&targets, o.runs);
        println!();
        println!("load average: {load_before} before, {load_after} after");
    }
    Ok(())
}
