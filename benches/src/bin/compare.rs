//! Profilis emit cost against the floor and peer queues, in one run.
//!
//! ```text
//! cargo run --release -p profilis-benches --bin compare -- [--json] [--quick | --seconds S]
//! ```
//!
//! Every case moves a ~100-byte event stamped with the event clock
//! (`profilis::clock::event_ns`, the clock Profilis events carry) while a live consumer drains it in batches and sleeps briefly when idle.
//! Producers are paced to an aggregate rate (default 4M events/s, `--rate`)
//! that the consumer sustains, so the figures are the cost of an emit that
//! lands, not of one refused by a full queue; `--rate 0` saturates.
//! A clock read costs 7-30 ns and ticks in ~10 ns steps, so single emits are
//! not timed: each producer times batches of 256 emits, and p50/p99/p999 are
//! percentiles of those per-event batch means over the whole run. Runs on a
//! shared machine vary; compare only rows of one run.

use anyhow::{bail, Context, Result};
use crossbeam_queue::ArrayQueue;
use profilis::{Emit, StrId};
use profilis_benches::{
    percentiles, Drainer, Floor, Payload, ScratchRing, DRAIN_BATCH, IDLE_BACKOFF,
};
use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Barrier, Mutex};
use std::time::Duration;

/// Emits per timed batch.
const BATCH: u64 = 256;
/// Slots of every queue and ring.
const CAPACITY: usize = 1 << 16;

const HELP: &str = "\
compare: Profilis emit cost against the floor and peer queues

USAGE: compare [--json] [--quick | --seconds S] [--rate R]

  --json       one JSON object per line instead of a table
  --quick      0.2 s per case (a smoke run of a few seconds)
  --seconds S  seconds per case (default 3; about 40 s in all)
  --rate R     events/s of all producers of a case together (default
               4000000); 0 emits back to back and saturates the consumer
  -h, --help   this text";

struct Options {
    json: bool,
    seconds: f64,
    rate: f64,
}

fn parse_args() -> Result<Options> {
    let mut o = Options {
        json: false,
        seconds: 3.0,
        rate: 4e6,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => o.json = true,
            "--quick" => o.seconds = 0.2,
            "--seconds" => {
                let v = args.next().context("--seconds needs a value")?;
                o.seconds = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| *s > 0.0 && s.is_finite())
                    .with_context(|| format!("--seconds {v:?} is not a positive number"))?;
            }
            "--rate" => {
                let v = args.next().context("--rate needs a value")?;
                o.rate = v
                    .parse()
                    .ok()
                    .filter(|r: &f64| *r >= 0.0 && r.is_finite())
                    .with_context(|| format!("--rate {v:?} is not a number >= 0"))?;
            }
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n\n{HELP}"),
        }
    }
    Ok(o)
}

/// One result line.
struct Row {
    name: &'static str,
    threads: usize,
    p50_ns: f64,
    p99_ns: f64,
    p999_ns: f64,
    events_per_sec: f64,
    drops: u64,
}

/// What the producers of one case measured.
struct Measured {
    batch_means: Vec<f64>,
    events: u64,
    seconds: f64,
    drops: u64,
}

/// Aggregate events/s of a case's producers (0: back to back).
static RATE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

/// Waits, untimed, until `due_ns`: sleeps for long gaps, yields for short.
fn wait_until(due_ns: u64) {
    loop {
        let now = profilis::clock::mono_ns();
        if now >= due_ns {
            return;
        }
        let left = due_ns - now;
        if left > 80_000 {
            std::thread::sleep(Duration::from_nanos(left - 60_000));
        } else {
            std::thread::yield_now();
        }
    }
}

/// Runs `threads` producers for `seconds`, started together by a barrier,
/// each paced to its share of the rate. `make(t)` runs on producer thread
/// `t` and returns its emit operation, which reports whether the event was
/// accepted.
fn produce<F, M>(threads: usize, seconds: f64, make: M) -> Measured
where
    M: Fn(usize) -> F + Sync,
    F: FnMut(u64) -> bool,
{
    let barrier = Barrier::new(threads);
    let budget = (seconds * 1e9) as u64;
    let rate = RATE.get().copied().unwrap_or(0.0);
    // ns between the starts of two batches of one producer.
    let period = if rate > 0.0 {
        (BATCH as f64 * threads as f64 * 1e9 / rate) as u64
    } else {
        0
    };
    let results: Vec<(Vec<f64>, u64, u64, u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, make) = (&barrier, &make);
                s.spawn(move || {
                    let mut op = make(t);
                    let mut seq = 0u64;
                    let mut drops = 0u64;
                    // Warm-up: caches, page faults, lazily registered state.
                    for _ in 0..BATCH {
                        op(seq);
                        seq += 1;
                    }
                    let mut means = Vec::with_capacity(1 << 16);
                    barrier.wait();
                    let start = profilis::clock::mono_ns();
                    let deadline = start + budget;
                    let mut events = 0u64;
                    let mut batches = 0u64;
                    loop {
                        if period > 0 {
                            wait_until(start + batches * period);
                        }
                        batches += 1;
                        let t0 = profilis::clock::mono_ns();
                        for _ in 0..BATCH {
                            if !op(seq) {
                                drops += 1;
                            }
                            seq += 1;
                        }
                        let t1 = profilis::clock::mono_ns();
                        means.push((t1 - t0) as f64 / BATCH as f64);
                        events += BATCH;
                        if t1 >= deadline {
                            return (means, events, drops, start, t1);
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
        batch_means: Vec::new(),
        events: 0,
        seconds: (end - start) as f64 / 1e9,
        drops: 0,
    };
    for (means, events, drops, _, _) in results {
        m.batch_means.extend(means);
        m.events += events;
        m.drops += drops;
    }
    m
}

fn row(name: &'static str, threads: usize, mut m: Measured) -> Row {
    let [p50, p99, p999] = percentiles(&mut m.batch_means);
    Row {
        name,
        threads,
        p50_ns: p50,
        p99_ns: p99,
        p999_ns: p999,
        events_per_sec: m.events as f64 / m.seconds.max(1e-9),
        drops: m.drops,
    }
}

/// A consumer thread for a peer queue: `pop_batch` takes what is there and
/// returns how much; it sleeps briefly when idle, like the reader.
fn peer_consumer<'s>(
    s: &'s std::thread::Scope<'s, '_>,
    stop: &'s AtomicBool,
    mut pop_batch: impl FnMut() -> usize + Send + 's,
) -> std::thread::ScopedJoinHandle<'s, u64> {
    s.spawn(move || {
        let mut total = 0u64;
        loop {
            let stopping = stop.load(Relaxed);
            let n = pop_batch();
            total += n as u64;
            if n == 0 {
                if stopping {
                    return total;
                }
                std::thread::sleep(IDLE_BACKOFF);
            }
        }
    })
}

fn floor(seconds: f64) -> Row {
    let m = produce(1, seconds, |_| {
        let mut floor = Floor::new(CAPACITY);
        move |seq| {
            floor.store(seq);
            true
        }
    });
    row("floor", 1, m)
}

fn profilis_emit(threads: usize, seconds: f64) -> Result<Row> {
    let scratch = ScratchRing::new(&format!("emit{threads}"), CAPACITY as u64)?;
    let name: StrId = scratch.ring.intern("bench.emit");
    let drainer = Drainer::start(scratch.path())?;
    let ring = &scratch.ring;
    let m = produce(threads, seconds, |_| {
        move |seq| ring.emit_fn(name, black_box(seq), false) == Emit::Written
    });
    let consumer = drainer.finish()?;
    let c = consumer.counters();
    if !c.identity_holds() || c.in_flight != 0 {
        bail!("profilis counters do not add up after the run: {c:?}");
    }
    Ok(row("profilis_emit", threads, m))
}

fn profilis_drain(seconds: f64) -> Result<Row> {
    let scratch = ScratchRing::new("drain", CAPACITY as u64)?;
    let name = scratch.ring.intern("bench.drain");
    let mut consumer = profilis::Consumer::attach(scratch.path())?;
    let budget = Duration::from_secs_f64(seconds);
    let mut means = Vec::new();
    let (mut events, mut busy_ns) = (0u64, 0u64);
    let start = std::time::Instant::now();
    while start.elapsed() < budget {
        // Fill the ring, then time draining it in reader-sized batches.
        for n in 0..CAPACITY as u64 {
            scratch.ring.emit_fn(name, n, false);
        }
        loop {
            let t0 = profilis::clock::mono_ns();
            let n = consumer.poll(DRAIN_BATCH, |event, _| {
                black_box(event);
            });
            let dt = profilis::clock::mono_ns() - t0;
            if n == 0 {
                break;
            }
            means.push(dt as f64 / n as f64);
            events += n as u64;
            busy_ns += dt;
        }
    }
    let c = consumer.counters();
    if c.dropped != 0 || !c.identity_holds() || c.in_flight != 0 {
        bail!("drain run lost events: {c:?}");
    }
    Ok(row(
        "profilis_drain",
        1,
        Measured {
            batch_means: means,
            events,
            seconds: busy_ns as f64 / 1e9,
            drops: 0,
        },
    ))
}

fn rtrb_spsc(seconds: f64) -> Row {
    let (producer, mut consumer) = rtrb::RingBuffer::<Payload>::new(CAPACITY);
    let producer = Mutex::new(Some(producer));
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let drain = peer_consumer(s, &stop, move || {
            let n = consumer.slots();
            match consumer.read_chunk(n) {
                Ok(chunk) => {
                    for p in chunk.into_iter() {
                        black_box(p);
                    }
                    n
                }
                Err(_) => 0,
            }
        });
        let m = produce(1, seconds, |_| {
            let mut p = producer.lock().unwrap().take().expect("one producer");
            move |seq| p.push(Payload::now(seq)).is_ok()
        });
        stop.store(true, Relaxed);
        drain.join().expect("consumer panicked");
        row("rtrb", 1, m)
    })
}

fn crossbeam_array_queue(threads: usize, seconds: f64) -> Row {
    let q = ArrayQueue::<Payload>::new(CAPACITY);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let q = &q;
        let drain = peer_consumer(s, &stop, move || {
            let mut n = 0;
            while n < DRAIN_BATCH {
                match q.pop() {
                    Some(p) => {
                        black_box(p);
                        n += 1;
                    }
                    None => break,
                }
            }
            n
        });
        let m = produce(threads, seconds, |_| {
            move |seq| q.push(Payload::now(seq)).is_ok()
        });
        stop.store(true, Relaxed);
        drain.join().expect("consumer panicked");
        row("crossbeam_array_queue", threads, m)
    })
}

fn mutex_vecdeque(threads: usize, seconds: f64) -> Row {
    let q = Mutex::new(VecDeque::<Payload>::with_capacity(CAPACITY));
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let q = &q;
        let drain = peer_consumer(s, &stop, move || {
            let batch: Vec<Payload> = {
                let mut g = q.lock().unwrap();
                let n = g.len().min(DRAIN_BATCH);
                g.drain(..n).collect()
            };
            for p in &batch {
                black_box(p);
            }
            batch.len()
        });
        let m = produce(threads, seconds, |_| {
            move |seq| {
                let p = Payload::now(seq);
                let mut g = q.lock().unwrap();
                if g.len() < CAPACITY {
                    g.push_back(p);
                    true
                } else {
                    false
                }
            }
        });
        stop.store(true, Relaxed);
        drain.join().expect("consumer panicked");
        row("mutex_vecdeque", threads, m)
    })
}

fn tracing_json(threads: usize, seconds: f64) -> Row {
    // The appender's worker thread is the consumer: it formats nothing (the
    // subscriber formats on the emitting thread) and writes to a sink.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(CAPACITY)
        .lossy(true)
        .finish(std::io::sink());
    let dropped = writer.error_counter();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(writer)
        .finish();
    let dispatch = tracing::Dispatch::new(subscriber);
    let before = dropped.dropped_lines() as u64;
    let mut m = produce(threads, seconds, |_| {
        let _scope = tracing::dispatcher::set_default(&dispatch);
        move |seq| {
            let _scope = &_scope;
            let p = Payload::now(seq);
            tracing::info!(
                ts_mono_ns = p.ts_mono_ns,
                kind = "FN",
                name = "bench.emit",
                dur_ns = p.words[4],
                trace_id = p.words[6],
                span_id = p.words[8],
                value = p.words[0],
            );
            true
        }
    });
    m.drops = dropped.dropped_lines() as u64 - before;
    drop(dispatch);
    drop(guard);
    row("tracing_json_nonblocking", threads, m)
}

fn print_row(r: &Row, floor_p50: f64, json: bool) {
    let ratio = r.p50_ns / floor_p50.max(1e-9);
    if json {
        let v = serde_json::json!({
            "name": r.name,
            "threads": r.threads,
            "p50_ns": round(r.p50_ns),
            "p99_ns": round(r.p99_ns),
            "p999_ns": round(r.p999_ns),
            "events_per_sec": r.events_per_sec.round(),
            "drops": r.drops,
            "ratio_to_floor": round(ratio),
        });
        println!("{v}");
    } else {
        println!(
            "{:<26} {:>3} {:>9.1} {:>9.1} {:>9.1} {:>14.0} {:>10} {:>7.2}",
            r.name, r.threads, r.p50_ns, r.p99_ns, r.p999_ns, r.events_per_sec, r.drops, ratio
        );
    }
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn main() -> Result<()> {
    let o = parse_args()?;
    let secs = o.seconds;
    RATE.set(o.rate).expect("set once");
    if !o.json {
        println!(
            "{:<26} {:>3} {:>9} {:>9} {:>9} {:>14} {:>10} {:>7}",
            "case", "thr", "p50 ns", "p99 ns", "p999 ns", "events/s", "drops", "x floor"
        );
    }
    let floor = floor(secs);
    let fp50 = floor.p50_ns;
    print_row(&floor, fp50, o.json);
    let mut emit_rows = Vec::new();
    for threads in [1, 2, 4, 8] {
        let r = profilis_emit(threads, secs)?;
        print_row(&r, fp50, o.json);
        emit_rows.push(r);
    }
    let drain = profilis_drain(secs)?;
    print_row(&drain, fp50, o.json);
    print_row(&rtrb_spsc(secs), fp50, o.json);
    for threads in [1, 2] {
        print_row(&crossbeam_array_queue(threads, secs), fp50, o.json);
    }
    for threads in [1, 2] {
        print_row(&mutex_vecdeque(threads, secs), fp50, o.json);
    }
    print_row(&tracing_json(1, secs), fp50, o.json);

    if !o.json {
        let spsc = &emit_rows[0];
        println!();
        println!(
            "targets: emit p50 <= 2x floor: {} ({:.2}x); emit p99 < 1 us: {} (worst {:.0} ns); drain >= 20M/s: {} ({:.1}M/s)",
            verdict(spsc.p50_ns <= 2.0 * fp50),
            spsc.p50_ns / fp50,
            verdict(emit_rows.iter().all(|r| r.p99_ns < 1000.0)),
            emit_rows.iter().map(|r| r.p99_ns).fold(0.0, f64::max),
            verdict(drain.events_per_sec >= 20e6),
            drain.events_per_sec / 1e6,
        );
    }
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "holds"
    } else {
        "MISSED"
    }
}
