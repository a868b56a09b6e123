//! The benchmarks' stopwatch: the TSC on x86-64 (a plain `rdtsc`),
//! `CLOCK_MONOTONIC` (through `Instant`) elsewhere.
//!
//! `rdtsc` is not serialising: a reading may overlap the last instructions
//! of the call before it, as the next instruction of an application would,
//! so a timed call costs what it adds to a stream of code. Fencing each
//! reading with `lfence` would instead time a drained pipeline's latency and
//! add about 10 ns to every call here; per-call figures taken this way agree
//! with means over batches of calls, fenced ones do not.
//!
//! Readings are ticks. [`Timer::calibrate`] measures ns per tick against
//! `CLOCK_MONOTONIC` over a stretch of tens of milliseconds, which bounds
//! the rate's error to about the width of one `Instant` read over that
//! stretch (well under 0.01%). The TSC is only good enough to time single
//! calls where it is invariant (`constant_tsc` and `nonstop_tsc`); other
//! machines fall back to timing batches (see [`Timer::per_call`]).

use std::time::{Duration, Instant};

/// Where [`now`] reads its ticks from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerSource {
    /// The x86-64 time-stamp counter.
    Tsc,
    /// `CLOCK_MONOTONIC` ns since the first reading in the process.
    Monotonic,
}

/// The running timer's source.
pub const SOURCE: TimerSource = if cfg!(target_arch = "x86_64") {
    TimerSource::Tsc
} else {
    TimerSource::Monotonic
};

/// Reads the timer, in ticks.
#[inline(always)]
pub fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` exists on every x86-64 CPU and touches no memory.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// The timer's rate and whether single calls can be timed with it.
#[derive(Clone, Copy, Debug)]
pub struct Timer {
    ns_per_tick: f64,
    invariant: bool,
}

impl Timer {
    /// Measures ns per tick against `CLOCK_MONOTONIC` over `over`
    /// (50-100 ms is plenty).
    pub fn calibrate(over: Duration) -> Timer {
        if SOURCE == TimerSource::Monotonic {
            return Timer {
                ns_per_tick: 1.0,
                invariant: false,
            };
        }
        let (ticks0, at0) = paired_reading();
        std::thread::sleep(over);
        let (ticks1, at1) = paired_reading();
        let ns = at1.duration_since(at0).as_nanos() as f64;
        Timer {
            ns_per_tick: ns / ticks1.saturating_sub(ticks0).max(1) as f64,
            invariant: tsc_is_invariant(),
        }
    }

    /// A timer with a rate measured elsewhere (by a parent process: the TSC
    /// of one machine runs at one rate in every process).
    pub fn with_rate(ns_per_tick: f64) -> Timer {
        Timer {
            ns_per_tick,
            invariant: SOURCE == TimerSource::Tsc && tsc_is_invariant(),
        }
    }

    /// Nanoseconds per tick.
    pub fn ns_per_tick(&self) -> f64 {
        self.ns_per_tick
    }

    /// Ticks in `ns` nanoseconds.
    pub fn ticks(&self, ns: f64) -> u64 {
        (ns / self.ns_per_tick) as u64
    }

    /// Whether single calls can be timed: the TSC, counting at one rate
    /// on every core whatever the power state.
    pub fn per_call(&self) -> bool {
        SOURCE == TimerSource::Tsc && self.invariant
    }
}

/// A tick reading and the `Instant` at its moment: the narrowest of a few
/// `Instant`/tick/`Instant` brackets, its midpoint.
fn paired_reading() -> (u64, Instant) {
    let mut best: Option<(Duration, u64, Instant)> = None;
    for _ in 0..16 {
        let before = Instant::now();
        let ticks = now();
        let after = Instant::now();
        let width = after.duration_since(before);
        if best.is_none_or(|(w, _, _)| width < w) {
            best = Some((width, ticks, before + width / 2));
        }
    }
    let (_, ticks, at) = best.expect("at least one reading");
    (ticks, at)
}

/// True where the CPU says its TSC counts at a constant rate through
/// frequency and sleep states (Linux's `/proc/cpuinfo` flags); true on
/// systems without that file, where there is nothing to check.
fn tsc_is_invariant() -> bool {
    match std::fs::read_to_string("/proc/cpuinfo") {
        Ok(info) => info
            .lines()
            .find(|l| l.starts_with("flags"))
            .is_some_and(|l| {
                let flags: Vec<&str> = l.split_whitespace().collect();
                flags.contains(&"constant_tsc") && flags.contains(&"nonstop_tsc")
            }),
        Err(_) => true,
    }
}
