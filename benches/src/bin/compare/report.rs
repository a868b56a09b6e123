//! The report: the table of rows, the p50 table by case and queue and the
//! targets' verdict lines, or one JSON object per row and per target; and
//! the load average, read before and after a run.

use crate::cases::{Case, ConsumerKind, Peer};
use crate::rounds::Summary;
use crate::targets::Target;
use profilis_benches::consume::ConsumerMode;
use profilis_benches::load::Timing;
use serde_json::{json, Value};

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn ratio_text(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.2}"))
}

pub(crate) fn print_table(rows: &[Summary], runs: usize) {
    println!(
        "{:<25} {:<8} {:>7} {:>8} {:>15} {:>8} {:>15} {:>8} {:>11} {:>9} {:>7} {:>6} {:>5}",
        "case",
        "consumer",
        "writers",
        "p50 ns",
        "(min-max)",
        "p99 ns",
        "(min-max)",
        "p99.9 ns",
        "events/s",
        "drops",
        "x floor",
        "x rtrb",
        "x 1w"
    );
    let mut group = String::new();
    for r in rows {
        if r.case.group() != group && !group.is_empty() {
            println!();
        }
        group = r.case.group();
        println!(
            "{:<25} {:<8} {:>7} {:>8.1} {:>15} {:>8.1} {:>15} {:>8.1} {:>11.0} {:>9} {:>7} {:>6} {:>5}",
            r.case.peer.name(),
            r.case.consumer.label(),
            r.case.writers_label(),
            r.p50.median,
            format!("({:.1}-{:.1})", r.p50.min, r.p50.max),
            r.p99.median,
            format!("({:.0}-{:.0})", r.p99.min, r.p99.max),
            r.p999.median,
            r.events_per_sec,
            r.drops,
            ratio_text(r.x_floor),
            ratio_text(r.x_rtrb),
            ratio_text(r.x_profilis_1w),
        );
    }

    // The table: p50 by case and queue.
    println!();
    println!("p50 ns per call, median of {runs} run(s):");
    let columns = [
        (Peer::Floor, "floor"),
        (Peer::Rtrb, "rtrb"),
        (Peer::NaiveShmSpsc, "naive shm"),
        (Peer::ArrayQueue, "ArrayQueue"),
        (Peer::MutexVecDeque, "Mutex<VecDeque>"),
        (Peer::Profilis, "Profilis"),
    ];
    print!("{:<30}", "case");
    for (_, title) in columns {
        print!(" {title:>15}");
    }
    println!();
    for (producers, processes, what) in [
        (1, false, "1 writer"),
        (2, false, "2 writer threads"),
        (2, true, "2 writer processes"),
    ] {
        for mode in [ConsumerMode::Backoff, ConsumerMode::Polling] {
            print!("{:<30}", format!("{what}, {}", mode.label()));
            for (peer, _) in columns {
                // The process case's floor is the floor of as many threads.
                let want = Case {
                    peer,
                    consumer: ConsumerKind::Loop(mode),
                    producers,
                    processes: processes && peer != Peer::Floor,
                };
                match rows.iter().find(|r| r.case == want) {
                    Some(r) => print!(" {:>15.1}", r.p50.median),
                    None => print!(" {:>15}", "-"),
                }
            }
            println!();
        }
    }
}

pub(crate) fn print_targets(targets: &[Target], runs: usize) {
    println!();
    println!("targets for the ring (medians over {runs} run(s); ratios of one run's figures):");
    for t in targets {
        let value = t.value.map_or_else(|| "-".into(), |v| t.unit.format(v));
        let bound = if t.at_least { ">=" } else { "<=" };
        println!(
            "  {:<62} {:>8} ({bound} {:>7}) {}",
            t.what,
            value,
            t.unit.format(t.limit),
            t.verdict()
        );
    }
}

pub(crate) fn row_json(r: &Summary, runs: usize, timing: Timing) -> Value {
    let opt = |x: Option<f64>| x.map(round2);
    json!({
        "kind": "row",
        "name": r.case.peer.name(),
        "group": r.case.group(),
        "id": r.case.id(),
        "mode": r.case.consumer.label(),
        "producers": r.case.producers,
        "processes": if r.case.processes { r.case.producers } else { 1 },
        "runs": runs,
        "timing": timing.label(),
        "p50_ns": round2(r.p50.median),
        "p50_min_ns": round2(r.p50.min),
        "p50_max_ns": round2(r.p50.max),
        "p99_ns": round2(r.p99.median),
        "p99_min_ns": round2(r.p99.min),
        "p99_max_ns": round2(r.p99.max),
        "p999_ns": round2(r.p999.median),
        "p999_min_ns": round2(r.p999.min),
        "p999_max_ns": round2(r.p999.max),
        "events_per_sec": r.events_per_sec.round(),
        "events": r.events,
        "drops": r.drops,
        "ratio_to_floor": opt(r.x_floor),
        "ratio_to_rtrb": opt(r.x_rtrb),
        "ratio_to_profilis_1w": opt(r.x_profilis_1w),
    })
}

pub(crate) fn target_json(t: &Target) -> Value {
    json!({
        "kind": "target",
        "target": t.what,
        "value": t.value.map(round2),
        "limit": t.limit,
        "bound": if t.at_least { "at_least" } else { "at_most" },
        "unit": t.unit.label(),
        "holds": t.holds(),
    })
}
