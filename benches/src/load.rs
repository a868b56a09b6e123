//! Producers under a paced load, timed per call or per batch.
//!
//! Each producer emits in bursts of [`BURST`] calls; with a rate set, the
//! bursts of one producer start at fixed intervals (its share of the
//! aggregate rate), so the consumer keeps up and the figures are the cost of
//! an event that lands. A producer that was held up skips the intervals it
//! missed rather than catching up. With the rate 0 the bursts run back to
//! back.
//!
//! [`Timing::PerCall`] reads the timer before and after every call and
//! counts the difference, so a percentile is a percentile of single calls;
//! the figure includes one timer read (the timer-overhead row shows how
//! much). [`Timing::Batch`] reads it around each burst and counts the
//! burst's mean per call: the timer's cost disappears, but a percentile is
//! then one of burst means, which hides single slow calls.

use crate::histogram::Histogram;
use crate::timer::{self, Timer};
use std::sync::Barrier;
use std::time::Duration;

/// Calls per burst (and per timed batch in [`Timing::Batch`]).
pub const BURST: u64 = 256;
/// A batch mean is counted in 1/16 ticks, so that means of a few ticks keep
/// their fraction.
pub const BATCH_MEAN_SCALE: u64 = 16;

/// How calls are timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// Every call on its own, with the TSC.
    PerCall,
    /// Bursts of [`BURST`] calls, as a mean per call.
    Batch,
}

impl Timing {
    /// `per_call` or `batch`.
    pub fn label(self) -> &'static str {
        match self {
            Timing::PerCall => "per_call",
            Timing::Batch => "batch",
        }
    }
}

/// The load of one case (or one process of a case).
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Producer threads.
    pub producers: usize,
    /// Seconds of timed calls.
    pub seconds: f64,
    /// Events/s of these producers together; 0 runs the bursts back to back.
    pub rate: f64,
    /// Untimed calls each producer makes first.
    pub warmup: u64,
    /// How calls are timed.
    pub timing: Timing,
}

/// What a case's producers measured.
#[derive(Clone, Debug)]
pub struct Measured {
    /// Samples, in units of `unit_ns`.
    pub hist: Histogram,
    /// Nanoseconds per histogram unit.
    pub unit_ns: f64,
    /// Timed calls.
    pub events: u64,
    /// Timed calls whose event the queue refused.
    pub drops: u64,
    /// Seconds from the first producer's start to the last one's end.
    pub seconds: f64,
}

impl Measured {
    /// The `q` quantile in ns.
    pub fn quantile_ns(&self, q: f64) -> f64 {
        self.hist.quantile(q) * self.unit_ns
    }

    /// Timed calls per second.
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.seconds.max(1e-9)
    }

    /// Adds the figures of producers that ran at the same time elsewhere
    /// (another process): samples and counts add up, the span is the
    /// longer one.
    pub fn merge(&mut self, other: &Measured) {
        self.hist.merge(&other.hist);
        self.events += other.events;
        self.drops += other.drops;
        self.seconds = self.seconds.max(other.seconds);
    }
}

/// The histogram unit of `timing` in ns.
pub fn unit_ns(timer: &Timer, timing: Timing) -> f64 {
    match timing {
        Timing::PerCall => timer.ns_per_tick(),
        Timing::Batch => timer.ns_per_tick() / BATCH_MEAN_SCALE as f64,
    }
}

/// Runs `load.producers` threads; `make(t)` runs on thread `t` and returns
/// its call, which reports whether the event was accepted. Every thread
/// makes its warm-up calls; then `gate` runs once (on thread 0, the others
/// waiting) and all start the timed part together.
pub fn run_producers<M, F>(timer: &Timer, load: &Load, gate: impl Fn() + Sync, make: M) -> Measured
where
    M: Fn(usize) -> F + Sync,
    F: FnMut(u64) -> bool,
{
    let threads = load.producers.max(1);
    let barrier = Barrier::new(threads);
    let budget = timer.ticks(load.seconds * 1e9);
    // Ticks between the starts of two bursts of one producer.
    let period = if load.rate > 0.0 {
        timer.ticks(BURST as f64 * threads as f64 * 1e9 / load.rate)
    } else {
        0
    };
    let timing = load.timing;
    let results: Vec<(Histogram, u64, u64, u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, make, gate) = (&barrier, &make, &gate);
                s.spawn(move || {
                    let mut call = make(t);
                    let mut seq = 0u64;
                    for _ in 0..load.warmup {
                        call(seq);
                        seq += 1;
                    }
                    let mut hist = Histogram::default();
                    barrier.wait();
                    if t == 0 {
                        gate();
                    }
                    barrier.wait();
                    let (mut events, mut drops, mut bursts) = (0u64, 0u64, 0u64);
                    let start = timer::now();
                    let deadline = start + budget;
                    loop {
                        // Paced (period > 0): a producer held up (preempted)
                        // skips the bursts it missed instead of running them
                        // back to back, which would saturate the queue and
                        // time refusals instead of events that land.
                        if let Some(missed) = timer::now().saturating_sub(start).checked_div(period)
                        {
                            bursts = bursts.max(missed);
                            wait_until(timer, start + bursts * period);
                        }
                        bursts += 1;
                        match timing {
                            Timing::PerCall => {
                                for _ in 0..BURST {
                                    let t0 = timer::now();
                                    let accepted = call(seq);
                                    let t1 = timer::now();
                                    hist.record(t1.saturating_sub(t0));
                                    drops += u64::from(!accepted);
                                    seq += 1;
                                }
                            }
                            Timing::Batch => {
                                let t0 = timer::now();
                                for _ in 0..BURST {
                                    drops += u64::from(!call(seq));
                                    seq += 1;
                                }
                                let t1 = timer::now();
                                hist.record(t1.saturating_sub(t0) * BATCH_MEAN_SCALE / BURST);
                            }
                        }
                        events += BURST;
                        let end = timer::now();
                        if end >= deadline {
                            return (hist, events, drops, start, end);
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("producer thread panicked"))
            .collect()
    });
    let start = results.iter().map(|r| r.3).min().unwrap_or(0);
    let end = results.iter().map(|r| r.4).max().unwrap_or(0);
    let mut m = Measured {
        hist: Histogram::default(),
        unit_ns: unit_ns(timer, timing),
        events: 0,
        drops: 0,
        seconds: end.saturating_sub(start) as f64 * timer.ns_per_tick() / 1e9,
    };
    for (hist, events, drops, _, _) in results {
        m.hist.merge(&hist);
        m.events += events;
        m.drops += drops;
    }
    m
}

/// Waits, untimed, until the timer reads `due`: sleeps through long gaps,
/// yields in short ones (so a waiting producer leaves its core to the
/// others on a small machine).
fn wait_until(timer: &Timer, due: u64) {
    loop {
        let now = timer::now();
        if now >= due {
            return;
        }
        let left_ns = (due - now) as f64 * timer.ns_per_tick();
        if left_ns > 80_000.0 {
            std::thread::sleep(Duration::from_nanos(left_ns as u64 - 60_000));
        } else {
            std::thread::yield_now();
        }
    }
}
