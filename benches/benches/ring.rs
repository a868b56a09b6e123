//! Criterion benches of the ring's hot paths: the floor (clock read plus a
//! 100-byte store), emit with one and several producers while a consumer
//! drains, and the consumer's drain. `cargo bench -p profilis-benches
//! --bench ring`; `-- --test` runs each once as a smoke test.
//!
//! Emits run back to back, so a producer can outpace the consumer and find
//! the ring full; `compare` paces its producers and reports drops.

use criterion::{criterion_group, criterion_main, Criterion};
use profilis_benches::{Drainer, Floor, ScratchRing, DRAIN_BATCH};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

const CAPACITY: u64 = 1 << 16;

fn floor(c: &mut Criterion) {
    let mut floor = Floor::new(CAPACITY as usize);
    c.bench_function("floor", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for n in 0..iters {
                floor.store(n);
            }
            start.elapsed()
        })
    });
}

fn emit(c: &mut Criterion) {
    let mut group = c.benchmark_group("emit");
    for threads in [1usize, 2, 4] {
        let scratch = ScratchRing::new(&format!("criterion-emit{threads}"), CAPACITY).unwrap();
        let name = scratch.ring.intern("bench.emit");
        let drainer = Drainer::start(scratch.path()).unwrap();
        let ring = &scratch.ring;
        group.bench_function(format!("{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                let per_thread = iters.div_ceil(threads as u64);
                let barrier = Barrier::new(threads);
                // Each producer times its own share after the common start;
                // the slowest one is the batch's time.
                let times: Vec<Duration> = std::thread::scope(|s| {
                    let handles: Vec<_> = (0..threads)
                        .map(|_| {
                            let barrier = &barrier;
                            s.spawn(move || {
                                barrier.wait();
                                let start = Instant::now();
                                for n in 0..per_thread {
                                    black_box(ring.emit_fn(name, n, false));
                                }
                                start.elapsed()
                            })
                        })
                        .collect();
                    handles.into_iter().map(|h| h.join().unwrap()).collect()
                });
                times.into_iter().max().unwrap_or_default()
            })
        });
        drainer.finish().unwrap();
    }
    group.finish();
}

fn drain(c: &mut Criterion) {
    let scratch = ScratchRing::new("criterion-drain", CAPACITY).unwrap();
    let name = scratch.ring.intern("bench.drain");
    let mut consumer = profilis::Consumer::attach(scratch.path()).unwrap();
    c.bench_function("drain", |b| {
        b.iter_custom(|iters| {
            let mut left = iters;
            let mut busy = Duration::ZERO;
            while left > 0 {
                // Fill (untimed) up to a ring's worth, then time the drain.
                let n = left.min(CAPACITY);
                for v in 0..n {
                    scratch.ring.emit_fn(name, v, false);
                }
                let start = Instant::now();
                let mut got = 0;
                while got < n {
                    got += consumer.poll(DRAIN_BATCH, |event, _| {
                        black_box(event);
                    }) as u64;
                }
                busy += start.elapsed();
                left -= n;
            }
            busy
        })
    });
}

criterion_group!(benches, floor, emit, drain);
criterion_main!(benches);
