//! The event clock under each `PROFILIS_CLOCK` choice: readings and event
//! timestamps track `CLOCK_MONOTONIC`, durations match it, and a bad value
//! is refused by `init`.
//!
//! The clock's source is fixed once per process, so the binary re-executes
//! itself once per choice (`PROFILIS_TEST_ROLE=clock`) and runs without the
//! test harness (`harness = false` in Cargo.toml).

use profilis::clock::{self, ClockSource};
use profilis::{Consumer, Kind, RingOptions};
use std::process::Command;
use std::time::{Duration, Instant};

const ROLE: &str = "PROFILIS_TEST_ROLE";
const EXPECT: &str = "PROFILIS_TEST_EXPECT";

fn main() {
    if std::env::var(ROLE).as_deref() == Ok("clock") {
        child();
        return;
    }
    profilis::testing::run_tests(&[
        ("monotonic_clock_is_clock_monotonic", monotonic),
        ("tsc_clock_tracks_clock_monotonic", tsc),
        ("auto_clock_picks_a_source_and_tracks_it", auto),
        ("unknown_clock_is_refused_by_init", unknown),
    ]);
}

/// Runs the checks in a child process with `PROFILIS_CLOCK=choice`,
/// expecting `expect` ("monotonic", "tsc" or "any"); returns its report.
fn run_child(choice: &str, expect: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, "clock")
        .env("PROFILIS_CLOCK", choice)
        .env(EXPECT, expect)
        .output()
        .expect("running the clock child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "PROFILIS_CLOCK={choice}: child failed\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn monotonic() {
    let report = run_child("monotonic", "monotonic");
    assert!(report.contains("source monotonic"), "{report}");
    println!("  monotonic: {}", report.trim());
}

fn tsc() {
    // The TSC is the x86-64 counter; elsewhere the choice falls back.
    let expect = if cfg!(target_arch = "x86_64") {
        "tsc"
    } else {
        "monotonic"
    };
    let report = run_child("tsc", expect);
    assert!(report.contains(&format!("source {expect}")), "{report}");
    println!("  tsc: {}", report.trim());
}

fn auto() {
    let report = run_child("auto", "any");
    println!("  auto: {}", report.trim());
}

fn unknown() {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, "clock")
        .env("PROFILIS_CLOCK", "rdtsc")
        .env(EXPECT, "refused")
        .output()
        .expect("running the clock child");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How far `event` lies outside `[before, after]`, in ns.
fn outside(before: u64, event: u64, after: u64) -> u64 {
    before
        .saturating_sub(event)
        .max(event.saturating_sub(after))
}

fn child() {
    let expect = std::env::var(EXPECT).unwrap();
    if expect == "refused" {
        let err = RingOptions::from_env().expect_err("PROFILIS_CLOCK=rdtsc accepted");
        let text = err.to_string();
        assert!(
            text.contains("PROFILIS_CLOCK") && text.contains("rdtsc"),
            "unclear error: {text}"
        );
        return;
    }
    // The first reading of the process, before anything calibrated the
    // clock.
    let before = clock::mono_ns();
    let first = clock::event_ns();
    let after = clock::mono_ns();
    let source = clock::source();
    match expect.as_str() {
        "monotonic" => assert_eq!(source, ClockSource::Monotonic),
        "tsc" => assert_eq!(source, ClockSource::Tsc),
        _ => {}
    }
    // The slack a TSC reading may have: its anchor is at most 10 ms old and
    // the rate is measured to a few parts per million after the first
    // anchor; the monotonic source is the reference itself.
    let slack = match source {
        ClockSource::Tsc => 20_000,
        ClockSource::Monotonic => 0,
    };

    assert!(
        outside(before, first, after) <= slack,
        "first reading {first} not in [{before}, {after}] ({source})"
    );

    // Readings, over 40 ms (several re-anchorings), against vDSO readings
    // around them.
    let (mut worst, mut back, mut last, mut readings) = (0u64, 0u64, 0u64, 0u64);
    let until = Instant::now() + Duration::from_millis(40);
    while Instant::now() < until {
        let before = clock::mono_ns();
        let event = clock::event_ns();
        let after = clock::mono_ns();
        worst = worst.max(outside(before, event, after));
        back = back.max(last.saturating_sub(event));
        last = last.max(event);
        readings += 1;
    }
    assert!(worst <= slack, "a reading off by {worst} ns ({source})");
    assert!(
        back <= slack / 4,
        "readings went back by {back} ns ({source})"
    );

    // Durations: 25 ms measured both ways.
    let start = clock::now();
    let mono_start = clock::mono_ns();
    std::thread::sleep(Duration::from_millis(25));
    let end = clock::now();
    let mono = clock::mono_ns() - mono_start;
    let measured = end.ns_since(start);
    let error = measured.abs_diff(mono);
    assert!(
        error <= mono / 1000 + 2_000,
        "25 ms measured as {measured} ns against {mono} ns ({source})"
    );

    // Event timestamps through the ring: spans and plain emits.
    let dir = std::env::temp_dir().join(format!("profilis-clock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("clock.ring");
    let ring = profilis::init_with(&path, RingOptions::default()).unwrap();
    let mut bounds = Vec::new();
    for i in 0..1000u64 {
        let before = clock::mono_ns();
        if i % 2 == 0 {
            let _span = ring.span(profilis::name!("clock.span"));
            std::hint::black_box(i);
        } else {
            profilis::emit_fn(profilis::name!("clock.emit"), 5, false);
        }
        bounds.push((before, clock::mono_ns()));
    }
    let mut consumer = Consumer::attach(&path).unwrap();
    let mut events = Vec::new();
    while events.len() < bounds.len() {
        let got = consumer.poll(4096, |e, _| events.push(*e));
        assert!(
            got > 0,
            "events missing: {} of {}",
            events.len(),
            bounds.len()
        );
    }
    let mut ring_worst = 0;
    for (event, (before, after)) in events.iter().zip(&bounds) {
        assert_eq!(event.kind, Kind::Fn);
        ring_worst = ring_worst.max(outside(*before, event.ts_mono_ns, *after));
        if event.dur_ns != 5 {
            assert!(event.ts_mono_ns - event.dur_ns + slack >= *before);
        }
    }
    assert!(
        ring_worst <= slack,
        "an event timestamp off by {ring_worst} ns ({source})"
    );
    drop(consumer);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "source {source}: {readings} readings, worst {worst} ns outside, back {back} ns; \
         25 ms off by {error} ns; ring timestamps worst {ring_worst} ns outside"
    );
}
