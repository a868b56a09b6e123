//! Medians over rounds, ratios to bare (per round, then the median), the
//! markdown tables, the targets, and the smoke run's shape checks.

use crate::app::Config;
use crate::run::{Phase, RunResult};
use serde::Serialize;
use std::fmt::Write as _;

/// The median of `values` (0 when empty).
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// One configuration over all rounds.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The configuration.
    pub config: Config,
    /// Rounds measured.
    pub rounds: usize,
    /// Median requests per second at saturation.
    pub saturation_rps: f64,
    /// Median over rounds of this configuration's saturation throughput
    /// over bare's in the same round.
    pub saturation_vs_bare: f64,
    /// Median latency percentiles at the fixed rate, µs.
    pub p50_us: f64,
    /// p99, µs.
    pub p99_us: f64,
    /// p99.9, µs.
    pub p999_us: f64,
    /// Median over rounds of p99 minus bare's p99 in the same round, µs.
    pub p99_minus_bare_us: f64,
    /// Median CPU seconds per million requests at saturation:
    /// [service, collection, total].
    pub cpu_saturation: [f64; 3],
    /// Median over rounds of total CPU per request over bare's.
    pub cpu_saturation_vs_bare: f64,
    /// The same at the fixed rate.
    pub cpu_fixed: [f64; 3],
    /// Median over rounds of total CPU per request over bare's, fixed rate.
    pub cpu_fixed_vs_bare: f64,
    /// Achieved fixed rate (median), requests per second.
    pub fixed_rps: f64,
    /// Summed over rounds: [sent requests, recorded requests, sent queries,
    /// recorded queries, sent errors, recorded errors, error messages,
    /// records with a trace id, histogram lines].
    pub records: [u64; 9],
}

fn cpu_triple(phase: &Phase) -> [f64; 3] {
    let (service, collection) = phase.cpu_per_million();
    [service, collection, service + collection]
}

/// Summaries of every configuration present in `results`, in
/// [`Config::ALL`] order.
pub fn summarize(results: &[RunResult]) -> Vec<Summary> {
    let bare = |round: usize| {
        results
            .iter()
            .find(|r| r.config == Config::Bare && r.round == round)
    };
    let mut out = Vec::new();
    for config in Config::ALL {
        let runs: Vec<&RunResult> = results.iter().filter(|r| r.config == config).collect();
        if runs.is_empty() {
            continue;
        }
        let collect = |f: &dyn Fn(&RunResult) -> f64| -> f64 {
            median(&mut runs.iter().map(|r| f(r)).collect::<Vec<_>>())
        };
        let versus = |f: &dyn Fn(&RunResult, &RunResult) -> f64| -> f64 {
            median(
                &mut runs
                    .iter()
                    .filter_map(|r| bare(r.round).map(|b| f(r, b)))
                    .collect::<Vec<_>>(),
            )
        };
        let mut records = [0u64; 9];
        for r in &runs {
            let c = &r.records;
            let add = [
                c.sent_requests,
                c.requests,
                c.sent_queries,
                c.queries,
                c.sent_errors,
                c.errors,
                c.error_messages,
                c.traced,
                c.histogram_lines,
            ];
            for (sum, v) in records.iter_mut().zip(add) {
                *sum += v;
            }
        }
        out.push(Summary {
            config,
            rounds: runs.len(),
            saturation_rps: collect(&|r| r.saturation.rate),
            saturation_vs_bare: versus(&|r, b| r.saturation.rate / b.saturation.rate),
            p50_us: collect(&|r| r.fixed.p50_us),
            p99_us: collect(&|r| r.fixed.p99_us),
            p999_us: collect(&|r| r.fixed.p999_us),
            p99_minus_bare_us: versus(&|r, b| r.fixed.p99_us - b.fixed.p99_us),
            cpu_saturation: [0, 1, 2].map(|i| collect(&|r| cpu_triple(&r.saturation)[i])),
            cpu_saturation_vs_bare: versus(&|r, b| {
                cpu_triple(&r.saturation)[2] / cpu_triple(&b.saturation)[2]
            }),
            cpu_fixed: [0, 1, 2].map(|i| collect(&|r| cpu_triple(&r.fixed)[i])),
            cpu_fixed_vs_bare: versus(&|r, b| cpu_triple(&r.fixed)[2] / cpu_triple(&b.fixed)[2]),
            fixed_rps: collect(&|r| r.fixed.rate),
            records,
        });
    }
    out
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", 100.0 * part as f64 / whole as f64)
    }
}

/// What each configuration records, in words and shares of what was sent.
fn recorded(s: &Summary) -> String {
    let [sent, req, sent_q, q, sent_e, e, msg, traced, hist] = s.records;
    match s.config {
        Config::Bare => "nothing".to_string(),
        Config::Profilis => format!(
            "REQ lines {}, DB lines {}, errors {} ({} with message), trace ids on {}",
            pct(req, sent),
            pct(q, sent_q),
            pct(e, sent_e),
            pct(msg, sent_e),
            pct(traced, req + q)
        ),
        Config::Otel => format!(
            "server spans {}, query spans {}, error spans {} (events with message {}), all with trace ids",
            pct(req, sent),
            pct(q, sent_q),
            pct(e, sent_e),
            pct(msg, sent_e)
        ),
        Config::JsonLog => format!(
            "request lines {}, query lines {}, error lines {} ({} with message), no trace ids",
            pct(req, sent),
            pct(q, sent_q),
            pct(e, sent_e),
            pct(msg, sent_e)
        ),
        Config::Prometheus => format!(
            "aggregates only: counter sum {}, 5xx count {}, {hist} bucket lines; no per-request record, no queries, no messages",
            pct(req, sent),
            pct(e, sent_e)
        ),
    }
}

/// The markdown report.
pub fn markdown(summaries: &[Summary], rate: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| configuration | req/s at saturation | vs bare | p50 µs | p99 µs | p99.9 µs | p99 - bare µs | CPU s/M req: service | collection | total | total vs bare |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for s in summaries {
        let [service, collection, total] = s.cpu_saturation;
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.3} | {:.0} | {:.0} | {:.0} | {:+.0} | {:.1} | {:.1} | {:.1} | {:.2} |",
            s.config.name(),
            s.saturation_rps,
            s.saturation_vs_bare,
            s.p50_us,
            s.p99_us,
            s.p999_us,
            s.p99_minus_bare_us,
            service,
            collection,
            total,
            s.cpu_saturation_vs_bare
        );
    }
    let _ = writeln!(
        out,
        "\nLatency at a fixed {rate:.0} req/s (coordinated-omission aware); CPU per million requests at saturation.\n"
    );
    let _ = writeln!(
        out,
        "| configuration | achieved req/s | CPU s/M req at the fixed rate: service | collection | total | total vs bare |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for s in summaries {
        let [service, collection, total] = s.cpu_fixed;
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.2} |",
            s.config.name(),
            s.fixed_rps,
            service,
            collection,
            total,
            s.cpu_fixed_vs_bare
        );
    }
    let _ = writeln!(
        out,
        "\n| configuration | what it recorded (share of what was sent) |"
    );
    let _ = writeln!(out, "|---|---|");
    for s in summaries {
        let _ = writeln!(out, "| {} | {} |", s.config.name(), recorded(s));
    }
    out
}

/// The targets for Profilis, each with its verdict.
pub fn targets(summaries: &[Summary]) -> Vec<(String, bool)> {
    let Some(p) = summaries.iter().find(|s| s.config == Config::Profilis) else {
        return Vec::new();
    };
    if !summaries.iter().any(|s| s.config == Config::Bare) {
        return Vec::new();
    }
    let mut out = vec![
        (
            format!(
                "saturation throughput >= 98% of bare: {:.1}%",
                100.0 * p.saturation_vs_bare
            ),
            p.saturation_vs_bare >= 0.98,
        ),
        (
            format!(
                "p99 <= bare + 5 µs at the fixed rate: {:+.0} µs",
                p.p99_minus_bare_us
            ),
            p.p99_minus_bare_us <= 5.0,
        ),
    ];
    let peers: Vec<&Summary> = summaries
        .iter()
        .filter(|s| !matches!(s.config, Config::Bare | Config::Profilis))
        .collect();
    let shares = |s: &Summary| -> [f64; 5] {
        let [sent, req, sent_q, q, sent_e, e, msg, traced, _] = s.records;
        // Capped at 1: a server may count a request whose response the
        // load generator did not wait for at the end of a phase.
        let share = |part: u64, whole: u64| (part as f64 / whole.max(1) as f64).min(1.0);
        let per_request = if s.config == Config::Prometheus {
            0
        } else {
            req
        };
        [
            share(per_request, sent),
            share(q, sent_q),
            share(e, sent_e),
            share(msg, sent_e),
            share(traced, req + q),
        ]
    };
    let mine = shares(p);
    for s in &peers {
        let theirs = shares(s);
        let covers = mine.iter().zip(&theirs).all(|(m, t)| m >= t);
        let beyond = mine.iter().zip(&theirs).any(|(m, t)| m > t);
        out.push((
            format!(
                "records strictly more than {} (per-request, per-query, errors, messages, trace ids: {:?} vs {:?})",
                s.config.name(),
                mine.map(|v| (v * 1000.0).round() / 1000.0),
                theirs.map(|v| (v * 1000.0).round() / 1000.0)
            ),
            covers && beyond,
        ));
    }
    for s in &peers {
        out.push((
            format!(
                "total CPU per request below {} (saturation): {:.1} vs {:.1} s/M",
                s.config.name(),
                p.cpu_saturation[2],
                s.cpu_saturation[2]
            ),
            p.cpu_saturation[2] < s.cpu_saturation[2],
        ));
    }
    out
}

/// The smoke run's checks: every configuration measured something, and
/// every instrumentation's output holds what it should. Returns the
/// problems found.
pub fn smoke_problems(results: &[RunResult], configs: &[Config]) -> Vec<String> {
    let mut problems = Vec::new();
    for config in configs {
        if !results.iter().any(|r| r.config == *config) {
            problems.push(format!("{}: no run", config.name()));
        }
    }
    for r in results {
        let name = r.config.name();
        let mut check = |ok: bool, what: &str| {
            if !ok {
                problems.push(format!("{name} round {}: {what}", r.round));
            }
        };
        check(
            r.saturation.requests > 0 && r.saturation.rate > 0.0,
            "no requests at saturation",
        );
        check(
            r.fixed.requests > 0 && r.fixed.p50_us > 0.0,
            "no latencies at the fixed rate",
        );
        check(
            r.fixed.p99_us >= r.fixed.p50_us && r.fixed.p999_us >= r.fixed.p99_us,
            "percentiles out of order",
        );
        check(r.saturation.cpu.service_s > 0.0, "no service CPU measured");
        check(
            r.saturation.unexpected == 0 && r.fixed.unexpected == 0,
            "responses with unexpected statuses",
        );
        check(
            r.saturation.transport_errors == 0 && r.fixed.transport_errors == 0,
            "connection errors",
        );
        let c = &r.records;
        check(
            c.sent_requests > 0 && c.sent_queries > 0 && c.sent_errors > 0,
            "the mix lacks a route",
        );
        match r.config {
            Config::Bare => {}
            Config::Profilis => {
                check(c.requests > 0, "no REQ lines in the reader's JSONL");
                check(c.queries > 0, "no DB lines in the reader's JSONL");
                check(c.errors > 0, "no error REQ lines in the reader's JSONL");
                check(
                    c.error_messages > 0,
                    "no exception messages in the reader's JSONL",
                );
                check(c.traced > 0, "no trace ids in the reader's JSONL");
            }
            Config::Otel => {
                check(c.requests > 0, "the receiver got no server spans");
                check(c.queries > 0, "the receiver got no query spans");
                check(c.errors > 0, "the receiver got no error spans");
            }
            Config::JsonLog => {
                check(c.requests > 0, "no request lines in the JSON log");
                check(c.queries > 0, "no query lines in the JSON log");
                check(c.errors > 0, "no error lines in the JSON log");
            }
            Config::Prometheus => {
                check(c.requests > 0, "the scrape has no http_requests_total");
                check(c.errors > 0, "the scrape has no 500 series");
                check(c.histogram_lines > 0, "the scrape has no histogram buckets");
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
