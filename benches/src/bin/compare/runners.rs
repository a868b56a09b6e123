//! How each case runs: [`Bench`], what every case of a run shares, with
//! one runner per peer, and the check of the ring's counters after a
//! Profilis case.

use crate::cases::{Case, ConsumerKind, Peer};
use crate::child;
use crate::{CAPACITY, EVENT_NAME};
use anyhow::{ensure, Context, Result};
use crossbeam_queue::ArrayQueue;
use profilis::{Consumer, Emit, StrId};
use profilis_benches::consume::{run_with_consumer, take_profilis, ConsumerMode};
use profilis_benches::histogram::Histogram;
use profilis_benches::load::{
    run_producers, unit_ns, Load, Measured, Timing, BATCH_MEAN_SCALE, BURST,
};
use profilis_benches::timer::{self, Timer};
use profilis_benches::{shm_spsc, Floor, Payload, ScratchRing, DRAIN_BATCH};
use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What every case of a run shares.
pub(crate) struct Bench {
    pub(crate) timer: Timer,
    pub(crate) timing: Timing,
    pub(crate) seconds: f64,
    pub(crate) rate: f64,
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

    pub(crate) fn run(&self, case: &Case, round: usize) -> Result<Measured> {
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
            || child::drive_children(&self.timer, scratch.path(), processes, &child_load),
        );
        let m = m?;
        check_counters(&consumer, tag)?;
        Ok(m)
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
