//! A worker process that dies in the middle of an event: it emits requests
//! into a ring, begins one more, and kills itself with SIGKILL before
//! finishing it, as a process does when it crashes between starting to
//! write an event and finishing. With `--fill N` it first emits back to
//! back, faster than a reader drains, until N events were refused because
//! its lane was full.
//!
//! ```text
//! cargo run --release --example crash -- --ring /dev/shm/crash.ring --events 300 --fill 400
//! profilis-reader /dev/shm/crash.ring --jsonl-dir ./events
//! ```
//!
//! The reader then shows the process as dead with the time it was last
//! seen, keeps its last events as a post-mortem (dashboard panel and
//! `postmortem/{ring_id}/{pid}.jsonl`), and writes LOSS markers for the
//! event it died in (abandoned) and the drops, charged to this process.
//! Before dying the example prints one JSON line: `pid`, `emitted`,
//! `dropped`, and the `claimed` position it never finished.

use clap::Parser;
use profilis::{Emit, Fields, Kind, Method, Ring, RingOptions};
use std::io::Write;

#[derive(Parser, Debug)]
#[command(about = "Emit events into a Profilis ring, then die by SIGKILL in the middle of one")]
struct Args {
    /// Ring file (created if missing).
    #[arg(long, env = "PROFILIS_RING")]
    ring: std::path::PathBuf,
    /// Requests emitted first.
    #[arg(long, default_value_t = 200)]
    events: u64,
    /// Then emit back to back until this many events were refused (the
    /// lane full): losses to show next to the abandoned event.
    #[arg(long, default_value_t = 0)]
    fill: u64,
    /// Slots of the ring if it has to be created.
    #[arg(long, default_value_t = 1024)]
    capacity: u64,
    /// Service name recorded for this process.
    #[arg(long, default_value = "crashy")]
    service: String,
}

const ROUTES: [&str; 3] = ["/api/cart", "/api/checkout", "/api/payment"];

fn request(ring: &Ring, routes: &[profilis::StrId], exception: profilis::StrId, i: u64) -> Emit {
    let failed = i % 17 == 16;
    // Each request is a trace of its own, as a server would record it.
    let span = profilis::SpanContext::NONE.child();
    let fields = Fields {
        method: Method::Post,
        status: if failed { 503 } else { 200 },
        dur_ns: 300_000 + (i * 7919) % 9_000_000,
        flags: if failed {
            profilis::record::FLAG_ERROR
        } else {
            0
        },
        exception_type: if failed {
            exception
        } else {
            profilis::StrId::NONE
        },
        message: if failed {
            ring.message("payment gateway timed out")
        } else {
            profilis::MsgRef(0)
        },
        value: 512 + i % 100,
        value2: 2048,
        span: Some(span),
        ..Fields::default()
    };
    ring.record(
        Kind::Req,
        routes[(i % ROUTES.len() as u64) as usize],
        &fields,
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let ring = Ring::create_or_open(
        &args.ring,
        RingOptions::default()
            .capacity(args.capacity)
            .service(args.service.clone()),
    )?;
    let routes: Vec<_> = ROUTES.iter().map(|r| ring.intern(r)).collect();
    let exception = ring.intern("GatewayTimeout");
    let (mut emitted, mut dropped) = (0u64, 0u64);
    let mut count = |outcome: Emit| match outcome {
        Emit::Written => emitted += 1,
        Emit::Dropped => dropped += 1,
        Emit::Disabled => {}
    };
    for i in 0..args.events {
        count(request(&ring, &routes, exception, i));
    }
    let mut fill_dropped = 0;
    let mut i = args.events;
    while fill_dropped < args.fill {
        if i - args.events > 100_000_000 {
            return Err("the reader drained faster than 100 million emits".into());
        }
        let outcome = request(&ring, &routes, exception, i);
        fill_dropped += u64::from(outcome == Emit::Dropped);
        count(outcome);
        i += 1;
    }
    // The claim waits (up to 30 s) for a reader to make room in the lane.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let claim = loop {
        match ring.claim() {
            Ok(claim) => break claim,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(1))
            }
            Err(e) => {
                return Err(
                    format!("the lane stayed full: is a reader draining the ring? ({e:?})").into(),
                )
            }
        }
    };
    let claimed = claim.position();
    println!(
        "{{\"pid\":{},\"emitted\":{emitted},\"dropped\":{dropped},\"claimed\":{claimed}}}",
        std::process::id()
    );
    std::io::stdout().flush()?;
    // SAFETY: kill(2) on our own pid; SIGKILL ends the process here, in the
    // middle of the claimed event.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // Not reached; should kill(2) fail, die abnormally all the same.
    std::process::abort()
}
