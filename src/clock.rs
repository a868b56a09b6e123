//! Clocks. Events carry `CLOCK_MONOTONIC` nanoseconds; the consumer converts
//! them to wall-clock time with an offset it measures itself.
//!
//! Two ways to read the time:
//!
//! - [`mono_ns`] reads `CLOCK_MONOTONIC` through the vDSO (no syscall). It is
//!   exact and costs 15-30 ns, depending on the machine.
//! - [`now`] reads the *event clock*, what spans and event timestamps use.
//!   Where the time stamp counter is usable (x86-64 with an invariant TSC
//!   that the kernel itself uses as its clocksource), a reading is one
//!   `rdtsc` (7-10 ns), converted to `CLOCK_MONOTONIC` nanoseconds with a
//!   calibration: each thread keeps an anchor, a (TSC, `CLOCK_MONOTONIC`)
//!   pair it takes again every 10 ms (sooner in the first 10 ms of the
//!   process), and the process keeps the tick rate, measured over a baseline
//!   that grows from 200 µs at start-up to the process's lifetime. Timestamps so derived stay within a few
//!   microseconds of `CLOCK_MONOTONIC`; durations are tick differences
//!   scaled by the rate, so no re-anchoring ever shifts them. Elsewhere the
//!   event clock is [`mono_ns`] itself.
//!
//! `PROFILIS_CLOCK` chooses: `auto` (the default: the TSC where usable),
//! `tsc` (the TSC on any x86-64 machine), or `monotonic` (always the vDSO).
//! [`source`] tells which one a process uses.

use crate::sync::local::{AtomicU64, AtomicU8, Ordering::*};
use std::cell::Cell;
use std::sync::Once;

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clock ids used here
    // exist on every Linux kernel.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `CLOCK_MONOTONIC` in ns, read through the vDSO.
#[inline]
pub fn mono_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// `CLOCK_REALTIME` in ns since the Unix epoch.
#[inline]
pub fn wall_ns() -> u64 {
    read(libc::CLOCK_REALTIME)
}

/// Offset that turns a monotonic reading into wall-clock time now:
/// `wall = mono + offset` (wrapping arithmetic).
pub fn wall_offset_ns() -> u64 {
    // Read the wall clock between two monotonic readings and use their
    // midpoint, so the offset is off by at most half the gap.
    let before = mono_ns();
    let wall = wall_ns();
    let after = mono_ns();
    wall.wrapping_sub(before + (after - before) / 2)
}

/// What the event clock ([`now`]) reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockSource {
    /// `CLOCK_MONOTONIC` through the vDSO.
    Monotonic,
    /// The CPU's time stamp counter, calibrated against `CLOCK_MONOTONIC`.
    Tsc,
}

impl std::fmt::Display for ClockSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClockSource::Monotonic => "monotonic",
            ClockSource::Tsc => "tsc",
        })
    }
}

/// What `PROFILIS_CLOCK` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockChoice {
    /// The TSC where the kernel uses it as its clocksource, else monotonic.
    Auto,
    /// The TSC wherever the CPU has one (x86-64).
    Tsc,
    /// Always `CLOCK_MONOTONIC`.
    Monotonic,
}

impl std::str::FromStr for ClockChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "" | "auto" => Ok(ClockChoice::Auto),
            "tsc" => Ok(ClockChoice::Tsc),
            "monotonic" | "vdso" => Ok(ClockChoice::Monotonic),
            other => Err(format!(
                "unknown clock {other:?} (expected auto, tsc or monotonic)"
            )),
        }
    }
}

/// `PROFILIS_CLOCK`, or an error naming the bad value.
pub fn choice_from_env() -> Result<ClockChoice, String> {
    match std::env::var("PROFILIS_CLOCK") {
        Ok(v) => v.parse().map_err(|e| format!("PROFILIS_CLOCK: {e}")),
        Err(_) => Ok(ClockChoice::Auto),
    }
}

const MODE_UNSET: u8 = 0;
const MODE_MONO: u8 = 1;
const MODE_TSC: u8 = 2;

/// The event clock's source, decided once per process by [`calibrate`].
static MODE: AtomicU8 = AtomicU8::new(MODE_UNSET);
static CALIBRATION: Once = Once::new();
/// Nanoseconds per tick, 32.32 fixed point.
static MULT: AtomicU64 = AtomicU64::new(0);
/// The process's first calibration pair: the origin of the rate's baseline.
static BASE_TICKS: AtomicU64 = AtomicU64::new(0);
static BASE_NS: AtomicU64 = AtomicU64::new(0);
/// Ticks between a thread's re-anchorings (10 ms).
static ANCHOR_TICKS: AtomicU64 = AtomicU64::new(0);

/// How long start-up calibration measures the tick rate.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const CALIBRATION_NS: u64 = 200_000;
/// How often a thread takes a new anchor pair.
const ANCHOR_PERIOD_NS: u64 = 10_000_000;
/// The shortest anchor period, in ticks (about 25 µs at 2.6 GHz).
const MIN_ANCHOR_TICKS: u64 = 1 << 16;

/// A thread's calibration: the ticks and nanoseconds of one moment, and the
/// rate in use. `period == 0` means "none yet".
#[derive(Clone, Copy)]
struct Anchor {
    ticks: u64,
    ns: u64,
    mult: u64,
    period: u64,
}

thread_local! {
    static ANCHOR: Cell<Anchor> = const {
        Cell::new(Anchor { ticks: 0, ns: 0, mult: 0, period: 0 })
    };
}

/// A reading of the event clock: TSC ticks or `CLOCK_MONOTONIC` ns,
/// depending on the process's [`source`]. Compare stamps of one process
/// only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(u64);

/// Reads the event clock.
#[inline]
pub fn now() -> Stamp {
    // ORDERING: Acquire pairs with the Release store in `calibrate`: seeing
    // MODE_TSC means seeing the rate and base it wrote.
    match MODE.load(Acquire) {
        MODE_TSC => Stamp(ticks()),
        MODE_MONO => Stamp(mono_ns()),
        _ => now_uncalibrated(),
    }
}

#[cold]
fn now_uncalibrated() -> Stamp {
    calibrate();
    now()
}

#[cold]
fn since_uncalibrated(start: Stamp) -> (u64, u64) {
    calibrate();
    since(start)
}

/// The event clock's reading as `CLOCK_MONOTONIC` ns: the timestamp an event
/// recorded now carries.
#[inline]
pub fn event_ns() -> u64 {
    since(Stamp(0)).1
}

/// Ends a measurement started at `start`: reads the event clock and returns
/// `(ns since start, now as CLOCK_MONOTONIC ns)`, the duration and timestamp
/// of the event that records it.
#[inline]
pub fn since(start: Stamp) -> (u64, u64) {
    // ORDERING: Acquire pairs with the Release store in `calibrate`, as in
    // `now`.
    match MODE.load(Acquire) {
        MODE_TSC => {}
        MODE_MONO => {
            let end = mono_ns();
            return (end.saturating_sub(start.0), end);
        }
        _ => return since_uncalibrated(start),
    }
    let end = ticks();
    let (end_ns, mult) = tsc_ns(end);
    (scale(end.saturating_sub(start.0), mult), end_ns)
}

impl Stamp {
    /// This reading in `CLOCK_MONOTONIC` ns.
    #[inline]
    pub fn mono_ns(self) -> u64 {
        if MODE.load(Relaxed) != MODE_TSC {
            return self.0;
        }
        tsc_ns(self.0).0
    }

    /// Nanoseconds from `earlier` to `self` (0 if `earlier` is later).
    #[inline]
    pub fn ns_since(self, earlier: Stamp) -> u64 {
        let delta = self.0.saturating_sub(earlier.0);
        if MODE.load(Relaxed) == MODE_TSC {
            scale(delta, MULT.load(Relaxed))
        } else {
            delta
        }
    }
}

/// `ticks` as `CLOCK_MONOTONIC` ns through the thread's anchor, and the rate
/// of that anchor.
#[inline]
fn tsc_ns(ticks: u64) -> (u64, u64) {
    let a = ANCHOR.with(Cell::get);
    let since_anchor = ticks.wrapping_sub(a.ticks);
    if since_anchor < a.period {
        (a.ns + scale(since_anchor, a.mult), a.mult)
    } else {
        tsc_ns_outside(ticks)
    }
}

#[inline]
fn scale(ticks: u64, mult: u64) -> u64 {
    ((ticks as u128 * mult as u128) >> 32) as u64
}

/// The event clock's source (calibrating it if nothing has read it yet).
pub fn source() -> ClockSource {
    calibrate();
    // ORDERING: Acquire pairs with the Release store in `calibrate` (which
    // `call_once` has ordered before this anyway).
    match MODE.load(Acquire) {
        MODE_TSC => ClockSource::Tsc,
        _ => ClockSource::Monotonic,
    }
}

/// Decides the event clock's source from `PROFILIS_CLOCK` (a value it does
/// not know counts as `auto`) and, for the TSC, measures its rate. Runs
/// once per process; a ring calls it when it is opened, so the first event
/// does not pay for it. Takes about 200 µs when it measures the TSC.
pub fn calibrate() {
    CALIBRATION.call_once(|| {
        let choice = choice_from_env().unwrap_or(ClockChoice::Auto);
        let mode = match tsc::calibrate(choice) {
            Some((ticks, ns, mult)) => {
                BASE_TICKS.store(ticks, Relaxed);
                BASE_NS.store(ns, Relaxed);
                MULT.store(mult, Relaxed);
                let period = ((ANCHOR_PERIOD_NS as u128) << 32) / mult as u128;
                ANCHOR_TICKS.store(period as u64, Relaxed);
                MODE_TSC
            }
            None => MODE_MONO,
        };
        // ORDERING: Release pairs with the Acquire loads of MODE in `now` and
        // `source`: a thread that sees MODE_TSC sees the calibration above.
        MODE.store(mode, Release);
    });
}

/// [`tsc_ns`] outside the thread's anchor period: takes a new anchor
/// (refining the process's rate) when the thread has none or its anchor is
/// older than the period.
#[cold]
fn tsc_ns_outside(ticks: u64) -> (u64, u64) {
    let a = ANCHOR.with(Cell::get);
    // A reading from shortly before the anchor (taken on this thread before
    // it re-anchored, or on a CPU whose counter trails by a few ticks) keeps
    // the anchor.
    let recent = a.period != 0 && ticks < a.ticks && a.ticks - ticks < a.period;
    let a = if recent { a } else { reanchor() };
    let ns = if ticks >= a.ticks {
        a.ns + scale(ticks - a.ticks, a.mult)
    } else {
        a.ns.saturating_sub(scale(a.ticks - ticks, a.mult))
    };
    (ns, a.mult)
}

/// Takes a new anchor pair for this thread and refines the process's rate
/// over the baseline from its first calibration pair to this one.
fn reanchor() -> Anchor {
    let (ticks, ns) = tsc::pair();
    let base_ticks = BASE_TICKS.load(Relaxed);
    let base_ns = BASE_NS.load(Relaxed);
    let mut mult = MULT.load(Relaxed);
    if ticks > base_ticks && ns > base_ns {
        let refined = (((ns - base_ns) as u128) << 32) / (ticks - base_ticks) as u128;
        // The longer baseline measures the rate better; an implausible one
        // (a counter that jumped) is ignored, the anchors still follow
        // CLOCK_MONOTONIC.
        if tsc::plausible(refined) {
            mult = refined as u64;
            MULT.store(mult, Relaxed);
        }
    }
    // An anchor serves no longer than the baseline its rate was measured
    // over: right after start-up the rate is the least precise, so anchors
    // are renewed sooner (200 us, then doubling up to 10 ms), which keeps
    // the extrapolation error near the uncertainty of one pair (tens of ns)
    // instead of the start-up rate's error times 10 ms.
    let baseline = ticks.saturating_sub(base_ticks).max(MIN_ANCHOR_TICKS);
    let anchor = Anchor {
        ticks,
        ns,
        mult,
        period: ANCHOR_TICKS.load(Relaxed).min(baseline),
    };
    ANCHOR.with(|c| c.set(anchor));
    anchor
}

/// The raw counter of the event clock in TSC mode.
#[inline]
fn ticks() -> u64 {
    tsc::read()
}

#[cfg(target_arch = "x86_64")]
mod tsc {
    use super::{mono_ns, ClockChoice, CALIBRATION_NS};
    use std::arch::x86_64::{__cpuid, _mm_lfence, _rdtsc};

    /// The time stamp counter, unordered: about 7 ns. Out-of-order execution
    /// may move it by a few instructions, which is below the resolution a
    /// span needs.
    #[inline]
    pub(super) fn read() -> u64 {
        // SAFETY: rdtsc exists on every x86-64 CPU and has no preconditions.
        unsafe { _rdtsc() }
    }

    fn read_ordered() -> u64 {
        // SAFETY: lfence (SSE2) and rdtsc exist on every x86-64 CPU.
        unsafe {
            _mm_lfence();
            _rdtsc()
        }
    }

    /// A (ticks, CLOCK_MONOTONIC ns) pair read at nearly the same moment:
    /// the tightest of a few tries, the ticks taken as the midpoint of two
    /// readings around the clock's.
    pub(super) fn pair() -> (u64, u64) {
        let (ticks, ns, _) = pair_with_width();
        (ticks, ns)
    }

    /// [`pair`] and its uncertainty: the ticks between the two readings.
    fn pair_with_width() -> (u64, u64, u64) {
        let mut best = (0, 0, u64::MAX);
        for _ in 0..4 {
            let before = read_ordered();
            let ns = mono_ns();
            let after = read_ordered();
            let width = after.wrapping_sub(before);
            if width < best.2 {
                best = (before + width / 2, ns, width);
            }
        }
        best
    }

    /// Whether a rate (ns per tick, 32.32) is one a counter can have:
    /// between 50 MHz and 20 GHz.
    pub(super) fn plausible(mult: u128) -> bool {
        (0.05..=20.0).contains(&(mult as f64 / 4_294_967_296.0))
    }

    /// Whether the CPU says its counter runs at a constant rate through
    /// frequency changes and sleep states (CPUID 0x8000_0007, EDX bit 8).
    // `__cpuid` is a safe function from Rust 1.87 on, unsafe before.
    #[allow(unused_unsafe)]
    fn invariant() -> bool {
        // SAFETY: cpuid exists on every x86-64 CPU; leaf 0x8000_0000 is
        // always valid and tells whether 0x8000_0007 is.
        let max = unsafe { __cpuid(0x8000_0000) }.eax;
        // SAFETY: as above; the leaf is checked to exist.
        max >= 0x8000_0007 && unsafe { __cpuid(0x8000_0007) }.edx & (1 << 8) != 0
    }

    /// Whether the kernel keeps time with the TSC: it does so only after
    /// checking that the counters of all CPUs are in step.
    fn kernel_uses_tsc() -> bool {
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|s| s.trim() == "tsc")
    }

    /// Measures the tick rate when `choice` allows the TSC and the machine
    /// has a usable one: returns the last calibration pair and the rate in
    /// ns per tick (32.32 fixed point).
    pub(super) fn calibrate(choice: ClockChoice) -> Option<(u64, u64, u64)> {
        let usable = match choice {
            ClockChoice::Monotonic => false,
            ClockChoice::Tsc => true,
            ClockChoice::Auto => invariant() && kernel_uses_tsc(),
        };
        if !usable {
            return None;
        }
        // Measure for at least CALIBRATION_NS, and until the baseline is a
        // thousand times the pairs' uncertainty (a pair read while the
        // thread was preempted is wide), so the rate starts within 0.1%;
        // the anchors refine it from there. A machine that cannot give
        // that within 20 ms keeps CLOCK_MONOTONIC.
        let (mut t0, mut n0, mut w0) = pair_with_width();
        let give_up = n0 + 20_000_000;
        loop {
            let (t1, n1, w1) = pair_with_width();
            let elapsed = n1.saturating_sub(n0);
            let baseline = t1.saturating_sub(t0);
            if elapsed >= CALIBRATION_NS && baseline / 1000 >= w0.saturating_add(w1) {
                let mult = ((elapsed as u128) << 32) / baseline as u128;
                return plausible(mult).then_some((t1, n1, mult as u64));
            }
            if n1 > give_up {
                return None;
            }
            if elapsed < CALIBRATION_NS && w1.saturating_mul(4) < w0 {
                // The first pair was a wide one: start over from this one.
                (t0, n0, w0) = (t1, n1, w1);
            }
            std::hint::spin_loop();
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod tsc {
    use super::ClockChoice;

    pub(super) fn read() -> u64 {
        unreachable!("the event clock uses the TSC only on x86-64")
    }

    pub(super) fn pair() -> (u64, u64) {
        unreachable!("the event clock uses the TSC only on x86-64")
    }

    pub(super) fn calibrate(_: ClockChoice) -> Option<(u64, u64, u64)> {
        None
    }

    pub(super) fn plausible(_: u128) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_clock_tracks_clock_monotonic() {
        // Whatever the source, readings converted to CLOCK_MONOTONIC fall
        // between two vDSO readings around them (with slack for the TSC's
        // calibration), and never go backwards on one thread.
        let mut last = 0;
        for i in 0..20_000 {
            let before = mono_ns();
            let event = event_ns();
            let after = mono_ns();
            assert!(
                event + 50_000 >= before && event <= after + 50_000,
                "reading {i}: {before} <= {event} <= {after} ({})",
                source()
            );
            assert!(event + 20_000 >= last, "went back: {last} -> {event}");
            last = last.max(event);
        }
    }

    #[test]
    fn durations_match_clock_monotonic() {
        let start = now();
        let mono_start = mono_ns();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let (since_start, end_ns) = since(start);
        let end = now();
        let mono = mono_ns() - mono_start;
        let measured = end.ns_since(start);
        assert!(since_start <= measured && measured - since_start < 1_000_000);
        assert!(end_ns.abs_diff(mono_ns()) < 1_000_000);
        // 30 ms across at least two re-anchorings: within 0.5% of the vDSO's
        // figure (both readings are a few hundred ns apart at each end).
        assert!(
            measured.abs_diff(mono) < mono / 200 + 2_000,
            "{measured} vs {mono} ({})",
            source()
        );
        assert_eq!(start.ns_since(end), 0);
    }

    #[test]
    fn clock_choice_parses() {
        assert_eq!("".parse(), Ok(ClockChoice::Auto));
        assert_eq!("auto".parse(), Ok(ClockChoice::Auto));
        assert_eq!("tsc".parse(), Ok(ClockChoice::Tsc));
        assert_eq!("monotonic".parse(), Ok(ClockChoice::Monotonic));
        assert!("rdtsc".parse::<ClockChoice>().is_err());
    }

    #[test]
    fn stamps_from_other_threads_convert() {
        // A span may start on one thread and end on another (async): the
        // start stamp converts on the second thread too.
        let start = now();
        let (ns, dur) = std::thread::spawn(move || {
            let end = now();
            (start.mono_ns(), end.ns_since(start))
        })
        .join()
        .unwrap();
        let here = start.mono_ns();
        assert!(ns.abs_diff(here) < 50_000, "{ns} vs {here}");
        assert!(dur < 1_000_000_000);
    }
}
