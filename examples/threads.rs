//! Plain threads with spans: each worker continues the trace of the request
//! that spawned it (explicit handoff), and nested spans record their parent.
//!
//! ```text
//! PROFILIS_RING=/dev/shm/demo.ring cargo run --example threads -- [REQUESTS] [WORKERS]
//! ```
//!
//! Every "request" is a root span; its work is split over worker threads,
//! each running `#[profile]`d functions and a few DB calls under the
//! request's trace.

use anyhow::Context as _;
use profilis::{context, db, profile};
use std::thread;

#[profile]
fn checksum(chunk: &[u64]) -> u64 {
    chunk.iter().fold(0u64, |acc, v| acc.rotate_left(5) ^ v)
}

#[profile(name = "threads.validate")]
fn validate(sum: u64) -> Result<u64, String> {
    if sum.is_multiple_of(97) {
        Err(format!("checksum {sum} is suspicious"))
    } else {
        Ok(sum)
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let requests: usize = args
        .next()
        .map_or(Ok(20), |a| a.parse())
        .context("REQUESTS must be a number")?;
    let workers: usize = args
        .next()
        .map_or(Ok(4), |a| a.parse())
        .context("WORKERS must be a number")?;
    let ring = profilis::init().context("opening the Profilis ring (set PROFILIS_RING)")?;
    println!("recording into {}", ring.path().display());

    let mut failures = 0;
    for request in 0..requests {
        let root = profilis::span(profilis::name!("threads.request"));
        let data: Vec<u64> = (0..10_000u64)
            .map(|i| i * 2_654_435_761 + request as u64)
            .collect();
        let handles: Vec<_> = data
            .chunks(data.len() / workers.max(1) + 1)
            .map(|chunk| {
                let chunk = chunk.to_vec();
                // `bind` hands the request's context to the worker.
                thread::spawn(context::bind(move || {
                    let _work = profilis::span(profilis::name!("threads.worker"));
                    let sum = checksum(&chunk);
                    db::timed("INSERT INTO sums (request, value) VALUES (1, 2)", || 1usize);
                    validate(sum)
                }))
            })
            .collect();
        for h in handles {
            if h.join().expect("worker thread panicked").is_err() {
                failures += 1;
            }
        }
        drop(root);
    }
    println!(
        "{requests} requests over {workers} workers done ({failures} validation errors recorded)"
    );
    Ok(())
}
