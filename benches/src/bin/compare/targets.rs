//! The targets for the ring: each goal, its limit and unit, and whether a
//! run's summaries meet it.

use crate::cases::{Case, ConsumerKind, Peer};
use crate::rounds::{Results, Summary};
use profilis_benches::consume::ConsumerMode;

/// One goal for the ring, checked against the summaries.
pub(crate) struct Target {
    pub(crate) what: String,
    pub(crate) value: Option<f64>,
    pub(crate) limit: f64,
    pub(crate) unit: Unit,
    /// The value must reach the limit rather than stay under it.
    pub(crate) at_least: bool,
}

#[derive(Clone, Copy)]
pub(crate) enum Unit {
    Ratio,
    Ns,
    EventsPerSec,
}

impl Unit {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Unit::Ratio => "x",
            Unit::Ns => "ns",
            Unit::EventsPerSec => "events/s",
        }
    }

    pub(crate) fn format(self, v: f64) -> String {
        match self {
            Unit::Ratio => format!("{v:.2}x"),
            Unit::Ns => format!("{v:.0} ns"),
            Unit::EventsPerSec => format!("{:.1}M/s", v / 1e6),
        }
    }
}

impl Target {
    fn at_most(what: String, value: Option<f64>, limit: f64, unit: Unit) -> Target {
        Target {
            what,
            value,
            limit,
            unit,
            at_least: false,
        }
    }

    pub(crate) fn holds(&self) -> Option<bool> {
        self.value.map(|v| {
            if self.at_least {
                v >= self.limit
            } else {
                v <= self.limit
            }
        })
    }

    pub(crate) fn verdict(&self) -> &'static str {
        match self.holds() {
            Some(true) => "holds",
            Some(false) => "MISSED",
            None => "not measured",
        }
    }
}

pub(crate) fn targets(results: &Results, rows: &[Summary]) -> Vec<Target> {
    let profilis = |consumer, producers, processes| Case {
        peer: Peer::Profilis,
        consumer,
        producers,
        processes,
    };
    let row = |case: Case| rows.iter().find(|r| r.case == case);
    let mut out = Vec::new();
    for mode in [ConsumerMode::Backoff, ConsumerMode::Polling] {
        let one = row(profilis(ConsumerKind::Loop(mode), 1, false));
        out.push(Target::at_most(
            format!("1 writer, {}: p50 / rtrb p50", mode.label()),
            one.and_then(|r| r.x_rtrb),
            1.3,
            Unit::Ratio,
        ));
        out.push(Target::at_most(
            format!("1 writer, {}: p99", mode.label()),
            one.map(|r| r.p99.median),
            150.0,
            Unit::Ns,
        ));
    }
    for processes in [false, true] {
        for mode in [ConsumerMode::Backoff, ConsumerMode::Polling] {
            let consumer = ConsumerKind::Loop(mode);
            let case = profilis(consumer, 2, processes);
            let writers = if processes {
                "2 writer processes"
            } else {
                "2 writer threads"
            };
            out.push(Target::at_most(
                format!("{writers}, {}: p50 / 1-writer p50", mode.label()),
                row(case).and_then(|r| r.x_profilis_1w),
                1.2,
                Unit::Ratio,
            ));
            let array_queue = Case {
                peer: Peer::ArrayQueue,
                consumer,
                producers: 2,
                processes: false,
            };
            out.push(Target::at_most(
                format!(
                    "{writers}, {}: p50 / ArrayQueue 2-producer p50",
                    mode.label()
                ),
                results
                    .find(case)
                    .and_then(|i| results.ratio(i, results.find(array_queue))),
                1.0,
                Unit::Ratio,
            ));
        }
    }
    let drain = Case {
        peer: Peer::ProfilisDrain,
        consumer: ConsumerKind::None,
        producers: 1,
        processes: false,
    };
    out.push(Target {
        at_least: true,
        ..Target::at_most(
            "drain: events/s".into(),
            row(drain).map(|r| r.events_per_sec),
            20e6,
            Unit::EventsPerSec,
        )
    });
    out
}
