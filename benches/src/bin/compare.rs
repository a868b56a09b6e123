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

use anyhow::{bail, ensure, Context, Result};
use crossbeam_queue::ArrayQueue;
use profilis::{Consumer, Emit, Ring, StrId};
use profilis_benches::consume::{run_with_consumer, take_profilis, ConsumerMode};
use profilis_benches::histogram::Histogram;
use profilis_benches::load::{
    run_producers, unit_ns, Load, Measured, Timing, BATCH_MEAN_SCALE, BURST,
};
use profilis_benches::timer::{self, Timer};
use profilis_benches::{ring_options, shm_spsc, Floor, Payload, ScratchRing, DRAIN_BATCH};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Slots of every queue and ring.
const CAPACITY: usize = 1 << 16;
/// How long the timer's rate is measured.
const CALIBRATION: Duration = Duration::from_millis(80);
/// The name every Profilis event carries.
const EVENT_NAME: &str = "bench.emit";

const HELP: &str = "\
compare: the ring's cost against the floor and peer queues, in one run

USAGE: compare [--runs N] [--seconds S] [--rate R] [--batch] [--cases LIST]
               [--json] [--quick] [--list]

  --runs N      rounds of every case, interleaved (default 5; 1 with --quick)
  --seconds S   timed seconds per case and round (default 1; 0.1 with --quick)
  --rate R      events/s of all producers of a case together (default
                4000000); 0 emits back to back and saturates the consumer
  --batch       time bursts of 256 calls (mean per call) instead of single
                calls (the default on machines without an invariant TSC)
  --cases LIST  comma-separated: run only the cases whose name (rtrb),
                group (1w-polling), consumer mode (polling) or id
                (rtrb/1w-polling) is listed; --list shows them
  --json        one JSON object per row, then one per target, then one
                describing the run
  --quick       a smoke run of a few seconds (--runs 1 --seconds 0.1)
  --list        print every case id and exit
  -h, --help    this text";

struct Options {
    json: bool,
    runs: usize,
    seconds: f64,
    rate: f64,
    batch: bool,
    cases: Option<Vec<String>>,
    list: bool,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let (mut json, mut quick, mut batch, mut list) = (false, false, false, false);
    let (mut runs, mut seconds, mut rate, mut cases) = (None, None, 4e6, None);
    let mut args = args.iter();
    while let Some(a) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .with_context(|| format!("{flag} needs a value\n\n{HELP}"))
        };
        match a.as_str() {
            "--json" => json = true,
            "--quick" => quick = true,
            "--batch" => batch = true,
            "--list" => list = true,
            "--runs" => {
                let v = value("--runs")?;
                runs = Some(
                    v.parse()
                        .ok()
                        .filter(|n: &usize| *n > 0)
                        .with_context(|| format!("--runs {v:?} is not a positive integer"))?,
                );
            }
            "--seconds" => {
                let v = value("--seconds")?;
                seconds = Some(
                    v.parse()
                        .ok()
                        .filter(|s: &f64| *s > 0.0 && s.is_finite())
                        .with_context(|| format!("--seconds {v:?} is not a positive number"))?,
                );
            }
            "--rate" => {
                let v = value("--rate")?;
                rate = v
                    .parse()
                    .ok()
                    .filter(|r: &f64| *r >= 0.0 && r.is_finite())
                    .with_context(|| format!("--rate {v:?} is not a number >= 0"))?;
            }
            "--cases" => {
                let v = value("--cases")?;
                let list: Vec<String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                ensure!(!list.is_empty(), "--cases needs at least one name");
                cases = Some(list);
            }
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n\n{HELP}"),
        }
    }
    Ok(Options {
        json,
        runs: runs.unwrap_or(if quick { 1 } else { 5 }),
        seconds: seconds.unwrap_or(if quick { 0.1 } else { 1.0 }),
        rate,
        batch,
        cases,
        list,
    })
}

// ---------------------------------------------------------------------------
// Cases

/// What a case measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    TimerOverhead,
    Floor,
    Rtrb,
    NaiveShmSpsc,
    ArrayQueue,
    MutexVecDeque,
    Profilis,
    TracingJson,
    ProfilisDrain,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::TimerOverhead => "timer_overhead",
            Peer::Floor => "floor",
            Peer::Rtrb => "rtrb",
            Peer::NaiveShmSpsc => "naive_shm_spsc",
            Peer::ArrayQueue => "crossbeam_array_queue",
            Peer::MutexVecDeque => "mutex_vecdeque",
            Peer::Profilis => "profilis_emit",
            Peer::TracingJson => "tracing_json_nonblocking",
            Peer::ProfilisDrain => "profilis_drain",
        }
    }
}

/// Who drains a case's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConsumerKind {
    /// Nothing runs beside the producers.
    None,
    /// The shared consumer loop, in this mode.
    Loop(ConsumerMode),
    /// tracing-appender's own worker thread.
    Appender,
}

impl ConsumerKind {
    fn label(self) -> &'static str {
        match self {
            ConsumerKind::None => "-",
            ConsumerKind::Loop(mode) => mode.label(),
            ConsumerKind::Appender => "appender",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Case {
    peer: Peer,
    consumer: ConsumerKind,
    /// Producers in all: threads of this process, or child processes of
    /// one producer thread each.
    producers: usize,
    /// Whether the producers are child processes rather than threads.
    processes: bool,
}

impl Case {
    fn group(&self) -> String {
        match (self.peer, self.consumer) {
            (Peer::TimerOverhead, _) => "timer".into(),
            (Peer::TracingJson, _) => "tracing".into(),
            (Peer::ProfilisDrain, _) => "drain".into(),
            (_, consumer) => format!(
                "{}{}-{}",
                self.producers,
                if self.processes { "proc" } else { "w" },
                consumer.label()
            ),
        }
    }

    fn id(&self) -> String {
        format!("{}/{}", self.peer.name(), self.group())
    }

    fn writers_label(&self) -> String {
        if self.processes {
            format!("{} proc", self.producers)
        } else {
            self.producers.to_string()
        }
    }

    fn selected_by(&self, filter: &str) -> bool {
        filter == self.peer.name()
            || filter == self.group()
            || filter == self.consumer.label()
            || filter == self.id()
    }
}

/// Every case, in report order.
fn all_cases() -> Vec<Case> {
    let case = |peer, consumer, producers, processes| Case {
        peer,
        consumer,
        producers,
        processes,
    };
    let mut cases = vec![case(Peer::TimerOverhead, ConsumerKind::None, 1, false)];
    for mode in [ConsumerMode::Backoff, ConsumerMode::Polling] {
        let consumer = ConsumerKind::Loop(mode);
        for peer in [
            Peer::Floor,
            Peer::Rtrb,
            Peer::NaiveShmSpsc,
            Peer::ArrayQueue,
            Peer::MutexVecDeque,
            Peer::Profilis,
        ] {
            cases.push(case(peer, consumer, 1, false));
        }
        for peer in [
            Peer::Floor,
            Peer::ArrayQueue,
            Peer::MutexVecDeque,
            Peer::Profilis,
        ] {
            cases.push(case(peer, consumer, 2, false));
        }
        cases.push(case(Peer::Profilis, consumer, 2, true));
    }
    for threads in [4, 8] {
        for peer in [Peer::Floor, Peer::Profilis] {
            cases.push(case(
                peer,
                ConsumerKind::Loop(ConsumerMode::Backoff),
                threads,
                false,
            ));
        }
    }
    cases.push(case(Peer::TracingJson, ConsumerKind::Appender, 1, false));
    cases.push(case(Peer::ProfilisDrain, ConsumerKind::None, 1, false));
    cases
}

/// What every case of a run shares.
struct Bench {
    timer: Timer,
    timing: Timing,
    seconds: f64,
    rate: f64,
}

impl Bench {
    /// The load of `producers` threads, each warming up with `warmup` calls.
    fn load(&self, producers: usize, warmup: u64) -> Load {
        Load {
            producers,
            seconds: self.seconds,
            rate: self.rate,
            warmup,
            timing: self.timing,
        }
    }

    /// One lap of the queue, shared by the producers.
    fn lap_load(&self, producers: usize) -> Load {
        self.load(producers, (CAPACITY / producers.max(1)) as u64)
    }

    fn run(&self, case: &Case, round: usize) -> Result<Measured> {
        let mode = match case.consumer {
            ConsumerKind::Loop(mode) => mode,
            _ => ConsumerMode::Backoff,
        };
        let tag = format!("{}-{}-r{round}", case.peer.name(), case.group());
        match case.peer {
            Peer::TimerOverhead => Ok(self.timer_overhead()),
            Peer::Floor => Ok(self.floor(mode, case.producers)),
            Peer::Rtrb => Ok(self.rtrb(mode)),
            Peer::NaiveShmSpsc => self.naive_shm_spsc(mode, &tag),
            Peer::ArrayQueue => Ok(self.array_queue(mode, case.producers)),
            Peer::MutexVecDeque => Ok(self.mutex_vecdeque(mode, case.producers)),
            Peer::Profilis if case.processes => self.profilis_processes(mode, case.producers, &tag),
            Peer::Profilis => self.profilis_threads(mode, case.producers, &tag),
            Peer::TracingJson => Ok(self.tracing_json()),
            Peer::ProfilisDrain => self.profilis_drain(&tag),
        }
    }

    fn timer_overhead(&self) -> Measured {
        run_producers(
            &self.timer,
            &self.load(1, BURST),
            || {},
            |_| {
                |seq| {
                    black_box(seq);
                    true
                }
            },
        )
    }

    /// The floor runs beside the same consumer loop as the queues, finding
    /// nothing: a polling consumer still takes a core.
    fn floor(&self, mode: ConsumerMode, producers: usize) -> Measured {
        let load = self.lap_load(producers);
        run_with_consumer(
            mode,
            |_| 0,
            || {
                run_producers(
                    &self.timer,
                    &load,
                    || {},
                    |_| {
                        let mut floor = Floor::new(CAPACITY);
                        move |seq| {
                            floor.store(seq);
                            true
                        }
                    },
                )
            },
        )
        .0
    }

    fn rtrb(&self, mode: ConsumerMode) -> Measured {
        let (producer, mut consumer) = rtrb::RingBuffer::<Payload>::new(CAPACITY);
        let producer = Mutex::new(Some(producer));
        let take = move |limit: usize| {
            let n = consumer.slots().min(limit);
            match consumer.read_chunk(n) {
                Ok(chunk) => {
                    for p in chunk {
                        black_box(p);
                    }
                    n
                }
                Err(_) => 0,
            }
        };
        let load = self.lap_load(1);
        run_with_consumer(mode, take, || {
            run_producers(
                &self.timer,
                &load,
                || {},
                |_| {
                    let mut p = producer.lock().unwrap().take().expect("one producer");
                    move |seq| p.push(Payload::now(seq)).is_ok()
                },
            )
        })
        .0
    }

    fn naive_shm_spsc(&self, mode: ConsumerMode, tag: &str) -> Result<Measured> {
        let (producer, mut consumer) =
            shm_spsc::create(tag).context("creating the naive SPSC ring file")?;
        let producer = Mutex::new(Some(producer));
        let take = move |limit: usize| {
            consumer.read(limit, |p| {
                black_box(p);
            })
        };
        let load = self.lap_load(1);
        Ok(run_with_consumer(mode, take, || {
            run_producers(
                &self.timer,
                &load,
                || {},
                |_| {
                    let mut p = producer.lock().unwrap().take().expect("one producer");
                    move |seq| p.push(Payload::now(seq))
                },
            )
        })
        .0)
    }

    fn array_queue(&self, mode: ConsumerMode, producers: usize) -> Measured {
        let q = ArrayQueue::<Payload>::new(CAPACITY);
        let q = &q;
        let take = move |limit: usize| {
            let mut n = 0;
            while n < limit {
                match q.pop() {
                    Some(p) => {
                        black_box(p);
                        n += 1;
                    }
                    None => break,
                }
            }
            n
        };
        let load = self.lap_load(producers);
        run_with_consumer(mode, take, || {
            run_producers(
                &self.timer,
                &load,
                || {},
                |_| move |seq| q.push(Payload::now(seq)).is_ok(),
            )
        })
        .0
    }

    fn mutex_vecdeque(&self, mode: ConsumerMode, producers: usize) -> Measured {
        let q = Mutex::new(VecDeque::<Payload>::with_capacity(CAPACITY));
        let q = &q;
        // The batch is moved out under the lock into a buffer kept across
        // calls, so the consumer neither allocates nor holds the lock while
        // it looks at the events.
        let mut batch = Vec::with_capacity(DRAIN_BATCH);
        let take = move |limit: usize| {
            batch.clear();
            {
                let mut g = q.lock().unwrap();
                let n = g.len().min(limit);
                batch.extend(g.drain(..n));
            }
            for p in &batch {
                black_box(p);
            }
            batch.len()
        };
        let load = self.lap_load(producers);
        run_with_consumer(mode, take, || {
            run_producers(
                &self.timer,
                &load,
                || {},
                |_| {
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
                },
            )
        })
        .0
    }

    fn profilis_threads(
        &self,
        mode: ConsumerMode,
        producers: usize,
        tag: &str,
    ) -> Result<Measured> {
        let scratch = ScratchRing::new(tag, CAPACITY as u64)?;
        let name: StrId = scratch.ring.intern(EVENT_NAME);
        let mut consumer = Consumer::attach(scratch.path())?;
        let ring = &scratch.ring;
        let load = self.lap_load(producers);
        let (m, _) = run_with_consumer(
            mode,
            |limit| take_profilis(&mut consumer, limit),
            || {
                run_producers(
                    &self.timer,
                    &load,
                    || {},
                    |_| move |seq| ring.emit_fn(name, black_box(seq), false) == Emit::Written,
                )
            },
        );
        check_counters(&consumer, tag)?;
        Ok(m)
    }

    /// Two (or more) child processes of this binary write one ring; this
    /// process drains it. Each child warms up, says `ready`, waits for a
    /// line on stdin, runs, and prints its figures as one JSON line.
    fn profilis_processes(
        &self,
        mode: ConsumerMode,
        processes: usize,
        tag: &str,
    ) -> Result<Measured> {
        let scratch = ScratchRing::new(tag, CAPACITY as u64)?;
        let mut consumer = Consumer::attach(scratch.path())?;
        let child_load = Load {
            rate: self.rate / processes as f64,
            ..self.lap_load(processes)
        };
        let (m, _) = run_with_consumer(
            mode,
            |limit| take_profilis(&mut consumer, limit),
            || self.drive_children(scratch.path(), processes, &child_load),
        );
        let m = m?;
        check_counters(&consumer, tag)?;
        Ok(m)
    }

    fn drive_children(
        &self,
        ring: &std::path::Path,
        processes: usize,
        load: &Load,
    ) -> Result<Measured> {
        let exe = std::env::current_exe().context("finding this binary to start its children")?;
        let mut children = Vec::new();
        for _ in 0..processes {
            let child = Command::new(&exe)
                .arg("--child")
                .arg(ring)
                .args([
                    load.seconds.to_string(),
                    load.rate.to_string(),
                    load.timing.label().to_string(),
                    self.timer.ns_per_tick().to_string(),
                    load.warmup.to_string(),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .with_context(|| format!("starting a child process {}", exe.display()))?;
            children.push(child);
        }
        let mut lines = Vec::new();
        for child in &mut children {
            let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
            let mut line = String::new();
            out.read_line(&mut line)
                .context("reading a child's ready line")?;
            ensure!(
                line.trim() == "ready",
                "a child process did not start: {line:?}"
            );
            lines.push(out);
        }
        for child in &mut children {
            let stdin = child.stdin.as_mut().expect("piped stdin");
            stdin
                .write_all(b"go\n")
                .and_then(|()| stdin.flush())
                .context("starting a child process's timed run")?;
        }
        let mut total: Option<Measured> = None;
        for (child, out) in children.iter_mut().zip(&mut lines) {
            let mut line = String::new();
            out.read_line(&mut line)
                .context("reading a child's figures")?;
            let status = child.wait().context("waiting for a child process")?;
            ensure!(status.success(), "a child process failed: {status}");
            let m = measured_from_json(&line)?;
            match &mut total {
                Some(t) => t.merge(&m),
                None => total = Some(m),
            }
        }
        total.context("no child processes")
    }

    fn tracing_json(&self) -> Measured {
        // The appender's worker thread is the consumer: the subscriber
        // formats on the emitting thread, the worker writes to a sink.
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
        let mut m = run_producers(
            &self.timer,
            &self.load(1, BURST),
            || {},
            |_| {
                let scope = tracing::dispatcher::set_default(&dispatch);
                move |seq| {
                    let _scope = &scope;
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
            },
        );
        m.drops = dropped.dropped_lines() as u64 - before;
        drop(dispatch);
        drop(guard);
        m
    }

    /// Fills the ring (untimed), then times each `read(4096)` + `commit()`
    /// and counts its mean per event.
    fn profilis_drain(&self, tag: &str) -> Result<Measured> {
        let scratch = ScratchRing::new(tag, CAPACITY as u64)?;
        let name = scratch.ring.intern("bench.drain");
        let mut consumer = Consumer::attach(scratch.path())?;
        let budget = Duration::from_secs_f64(self.seconds);
        let mut hist = Histogram::default();
        let (mut events, mut busy_ticks) = (0u64, 0u64);
        let start = Instant::now();
        while start.elapsed() < budget {
            for n in 0..CAPACITY as u64 {
                scratch.ring.emit_fn(name, n, false);
            }
            loop {
                let t0 = timer::now();
                let n = take_profilis(&mut consumer, DRAIN_BATCH);
                let dt = timer::now().saturating_sub(t0);
                if n == 0 {
                    break;
                }
                hist.record(dt * BATCH_MEAN_SCALE / n as u64);
                events += n as u64;
                busy_ticks += dt;
            }
        }
        let c = consumer.counters();
        ensure!(c.dropped == 0, "{tag}: the drain run lost events: {c:?}");
        check_counters(&consumer, tag)?;
        Ok(Measured {
            hist,
            unit_ns: unit_ns(&self.timer, Timing::Batch),
            events,
            drops: 0,
            seconds: busy_ticks as f64 * self.timer.ns_per_tick() / 1e9,
        })
    }
}

/// After a case: every event the ring saw is accounted for, none in flight.
fn check_counters(consumer: &Consumer, tag: &str) -> Result<()> {
    let c = consumer.counters();
    ensure!(
        c.identity_holds() && c.in_flight == 0,
        "{tag}: profilis counters do not add up after the run: {c:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Child processes of the 2-process case

/// `--child RING SECONDS RATE TIMING NS_PER_TICK WARMUP`: one producer
/// thread writing to RING, started by a line on stdin, reporting one JSON
/// line on stdout.
fn child_main(args: &[String]) -> Result<()> {
    let [ring_path, seconds, rate, timing, ns_per_tick, warmup] = args else {
        bail!("--child needs RING SECONDS RATE TIMING NS_PER_TICK WARMUP, got {args:?}");
    };
    let number = |s: &String| -> Result<f64> {
        s.parse()
            .with_context(|| format!("--child: {s:?} is not a number"))
    };
    let load = Load {
        producers: 1,
        seconds: number(seconds)?,
        rate: number(rate)?,
        warmup: number(warmup)? as u64,
        timing: match timing.as_str() {
            "per_call" => Timing::PerCall,
            "batch" => Timing::Batch,
            other => bail!("--child: unknown timing {other:?}"),
        },
    };
    let timer = Timer::with_rate(number(ns_per_tick)?);
    let ring = Ring::create_or_open(ring_path, ring_options(CAPACITY as u64))
        .with_context(|| format!("opening ring file {ring_path}"))?;
    let name = ring.intern(EVENT_NAME);
    let gate = || {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "ready").and_then(|()| out.flush());
        let mut line = String::new();
        // EOF: the parent is gone; there is nobody to report to.
        if !matches!(std::io::stdin().read_line(&mut line), Ok(n) if n > 0) {
            std::process::exit(1);
        }
    };
    let ring = &ring;
    let m = run_producers(&timer, &load, gate, |_| {
        move |seq| ring.emit_fn(name, black_box(seq), false) == Emit::Written
    });
    let report = json!({
        "events": m.events,
        "drops": m.drops,
        "seconds": m.seconds,
        "unit_ns": m.unit_ns,
        "buckets": m.hist.to_sparse(),
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{report}").and_then(|()| out.flush())?;
    Ok(())
}

fn measured_from_json(line: &str) -> Result<Measured> {
    let v: Value = serde_json::from_str(line)
        .with_context(|| format!("a child process's figures are not JSON: {line:?}"))?;
    let field = |k: &str| {
        v.get(k)
            .with_context(|| format!("a child process's figures lack {k:?}"))
    };
    let buckets: Vec<(usize, u64)> = serde_json::from_value(field("buckets")?.clone())
        .context("a child process's histogram is malformed")?;
    Ok(Measured {
        hist: Histogram::from_sparse(&buckets)
            .context("a child process's histogram has a bucket out of range")?,
        unit_ns: field("unit_ns")?.as_f64().context("unit_ns")?,
        events: field("events")?.as_u64().context("events")?,
        drops: field("drops")?.as_u64().context("drops")?,
        seconds: field("seconds")?.as_f64().context("seconds")?,
    })
}

// ---------------------------------------------------------------------------
// Rounds and summaries

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
struct Spread {
    median: f64,
    min: f64,
    max: f64,
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
struct Results {
    cases: Vec<Case>,
    rounds: Vec<Vec<RoundFigures>>,
}

/// One row of the report.
struct Summary {
    case: Case,
    p50: Spread,
    p99: Spread,
    p999: Spread,
    events_per_sec: f64,
    events: u64,
    drops: u64,
    x_floor: Option<f64>,
    x_rtrb: Option<f64>,
    x_profilis_1w: Option<f64>,
}

impl Results {
    fn find(&self, want: Case) -> Option<usize> {
        self.cases.iter().position(|c| *c == want)
    }

    /// Median over the rounds of `case`'s p50 over `reference`'s p50 in
    /// the same round.
    fn ratio(&self, case: usize, reference: Option<usize>) -> Option<f64> {
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

    fn summaries(&self) -> Vec<Summary> {
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
fn run_rounds(bench: &Bench, cases: Vec<Case>, runs: usize, progress: bool) -> Result<Results> {
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

// ---------------------------------------------------------------------------
// Targets

/// One goal for the ring, checked against the summaries.
struct Target {
    what: String,
    value: Option<f64>,
    limit: f64,
    unit: Unit,
    /// The value must reach the limit rather than stay under it.
    at_least: bool,
}

#[derive(Clone, Copy)]
enum Unit {
    Ratio,
    Ns,
    EventsPerSec,
}

impl Unit {
    fn label(self) -> &'static str {
        match self {
            Unit::Ratio => "x",
            Unit::Ns => "ns",
            Unit::EventsPerSec => "events/s",
        }
    }

    fn format(self, v: f64) -> String {
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

    fn holds(&self) -> Option<bool> {
        self.value.map(|v| {
            if self.at_least {
                v >= self.limit
            } else {
                v <= self.limit
            }
        })
    }

    fn verdict(&self) -> &'static str {
        match self.holds() {
            Some(true) => "holds",
            Some(false) => "MISSED",
            None => "not measured",
        }
    }
}

fn targets(results: &Results, rows: &[Summary]) -> Vec<Target> {
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

// ---------------------------------------------------------------------------
// Output

fn load_average() -> String {
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

fn print_table(rows: &[Summary], runs: usize) {
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

    // The issue's table: p50 by case and queue.
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

fn print_targets(targets: &[Target], runs: usize) {
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

fn row_json(r: &Summary, runs: usize, timing: Timing) -> Value {
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
            println!(
                "{}",
                json!({
                    "kind": "target",
                    "target": t.what,
                    "value": t.value.map(round2),
                    "limit": t.limit,
                    "bound": if t.at_least { "at_least" } else { "at_most" },
                    "unit": t.unit.label(),
                    "holds": t.holds(),
                })
            );
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
