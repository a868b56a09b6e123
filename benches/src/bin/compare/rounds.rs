//! Rounds and summaries: each case's figures in each round, and the rows
//! of the report made from them (medians and ranges over the rounds, and
//! ratios to the floor, rtrb and Profilis with one writer, taken within a
//! round).

use crate::cases::{Case, ConsumerKind, Peer};
use crate::runners::Bench;
use anyhow::{Context, Result};
use profilis_benches::consume::ConsumerMode;
use profilis_benches::load::Measured;
use std::time::Instant;

/// One case's figures in one round.
#[derive(Clone, Copy, Debug)]
struct RoundFigures {
    p50: f64,
    p99: f64,
    p999: f64,
    events_per_sec: f64,
    events: u64,
    drops: u64,
}

impl From<&Measured> for RoundFigures {
    fn from(m: &Measured) -> Self {
        RoundFigures {
            p50: m.quantile_ns(0.50),
            p99: m.quantile_ns(0.99),
            p999: m.quantile_ns(0.999),
            events_per_sec: m.events_per_sec(),
            events: m.events,
            drops: m.drops,
        }
    }
}

/// Median and range of one figure over the rounds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Spread {
            median,
            min: values[0],
            max: values[n - 1],
        }
    }
}

/// Every selected case's figures, `[case][round]`.
pub(crate) struct Results {
    cases: Vec<Case>,
    rounds: Vec<Vec<RoundFigures>>,
}

/// One row of the report.
pub(crate) struct Summary {
    pub(crate) case: Case,
    pub(crate) p50: Spread,
    pub(crate) p99: Spread,
    pub(crate) p999: Spread,
    pub(crate) events_per_sec: f64,
    pub(crate) events: u64,
    pub(crate) drops: u64,
    pub(crate) x_floor: Option<f64>,
    pub(crate) x_rtrb: Option<f64>,
    pub(crate) x_profilis_1w: Option<f64>,
}

impl Results {
    pub(crate) fn find(&self, want: Case) -> Option<usize> {
        self.cases.iter().position(|c| *c == want)
    }

    /// Median over the rounds of `case`'s p50 over `reference`'s p50 in
    /// the same round.
    pub(crate) fn ratio(&self, case: usize, reference: Option<usize>) -> Option<f64> {
        let reference = reference?;
        let ratios = self.rounds[case]
            .iter()
            .zip(&self.rounds[reference])
            .map(|(a, b)| a.p50 / b.p50.max(1e-9))
            .collect();
        Some(Spread::of(ratios).median)
    }

    fn floor_of(&self, case: &Case) -> Option<usize> {
        let backoff = ConsumerKind::Loop(ConsumerMode::Backoff);
        let floor = |consumer, producers| Case {
            peer: Peer::Floor,
            consumer,
            producers,
            processes: false,
        };
        match case.consumer {
            ConsumerKind::Loop(_) => self.find(floor(case.consumer, case.producers)),
            _ => self.find(floor(backoff, 1)),
        }
    }

    fn rtrb_of(&self, case: &Case) -> Option<usize> {
        match case.consumer {
            ConsumerKind::Loop(_) if case.producers == 1 => self.find(Case {
                peer: Peer::Rtrb,
                ..*case
            }),
            _ => None,
        }
    }

    fn profilis_1w_of(&self, case: &Case) -> Option<usize> {
        match case.consumer {
            ConsumerKind::Loop(_) if case.producers >= 2 => self.find(Case {
                peer: Peer::Profilis,
                consumer: case.consumer,
                producers: 1,
                processes: false,
            }),
            _ => None,
        }
    }

    pub(crate) fn summaries(&self) -> Vec<Summary> {
        self.cases
            .iter()
            .enumerate()
            .map(|(i, case)| {
                let r = &self.rounds[i];
                let spread = |f: fn(&RoundFigures) -> f64| Spread::of(r.iter().map(f).collect());
                Summary {
                    case: *case,
                    p50: spread(|f| f.p50),
                    p99: spread(|f| f.p99),
                    p999: spread(|f| f.p999),
                    events_per_sec: spread(|f| f.events_per_sec).median,
                    events: r.iter().map(|f| f.events).sum(),
                    drops: r.iter().map(|f| f.drops).sum(),
                    x_floor: self.ratio(i, self.floor_of(case)),
                    x_rtrb: self.ratio(i, self.rtrb_of(case)),
                    x_profilis_1w: self.ratio(i, self.profilis_1w_of(case)),
                }
            })
            .collect()
    }
}

/// Runs every case once per round, rotating the order each round.
pub(crate) fn run_rounds(
    bench: &Bench,
    cases: Vec<Case>,
    runs: usize,
    progress: bool,
) -> Result<Results> {
    let mut rounds = vec![Vec::with_capacity(runs); cases.len()];
    for round in 0..runs {
        let started = Instant::now();
        let offset = round * cases.len() / runs;
        for k in 0..cases.len() {
            let i = (offset + k) % cases.len();
            let m = bench
                .run(&cases[i], round)
                .with_context(|| format!("case {}", cases[i].id()))?;
            rounds[i].push(RoundFigures::from(&m));
        }
        if progress {
            eprintln!(
                "round {}/{runs} done in {:.1} s",
                round + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(Results { cases, rounds })
}
