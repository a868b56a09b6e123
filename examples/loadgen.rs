//! Load generator: writes a mix of REQ, FN and DB events into a ring.
//!
//! ```text
//! cargo run --release --example loadgen -- --ring /dev/shm/demo.ring --threads 2 --events 1000000 --rate 500000
//! ```
//!
//! The last line printed is a JSON object with the counts: `claimed` (emit
//! attempts), `emitted` (committed), `dropped` (ring full).

use clap::Parser;
use profilis::{Emit, Fields, FullPolicy, Kind, Method, Ring, RingOptions};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Write a mix of REQ/FN/DB events into a Profilis ring")]
struct Args {
    /// Ring file (created if missing).
    #[arg(long, env = "PROFILIS_RING")]
    ring: std::path::PathBuf,
    /// Writer threads.
    #[arg(long, default_value_t = 1)]
    threads: u64,
    /// Events in total, split across threads.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Target rate in events per second for all threads together (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Slots of the ring if it has to be created.
    #[arg(long, default_value_t = 65536)]
    capacity: u64,
    /// Full-ring policy if the ring has to be created.
    #[arg(long, default_value = "drop-newest")]
    policy: FullPolicy,
    /// Service name recorded for this process.
    #[arg(long)]
    service: Option<String>,
    /// Gives each failed request (status 500) an exception message and a
    /// stack trace.
    #[arg(long)]
    stacks: bool,
}

/// The stack trace `--stacks` attaches, innermost frame last.
const STACK: &str = "Traceback (most recent call last):
  File \"/srv/shop/app.py\", line 88, in dispatch
    return view(**args)
  File \"/srv/shop/orders.py\", line 41, in place_order
    reserve(items)
  File \"/srv/shop/inventory.py\", line 17, in reserve
    raise TimeoutError(\"inventory service timed out after 2000 ms\")
TimeoutError: inventory service timed out after 2000 ms
";

const ROUTES: [&str; 6] = [
    "/api/users/{id}",
    "/api/users",
    "/api/orders/{id}",
    "/api/orders",
    "/health",
    "/api/search",
];
const FUNCTIONS: [&str; 4] = [
    "load_user",
    "render_page",
    "validate_order",
    "score_results",
];
const QUERIES: [&str; 3] = [
    "SELECT * FROM users WHERE id = ?",
    "INSERT INTO orders (user_id, total) VALUES (?, ?)",
    "SELECT id, name FROM products WHERE name LIKE ? LIMIT ?",
];

struct Totals {
    claimed: AtomicU64,
    emitted: AtomicU64,
    dropped: AtomicU64,
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn run_thread(
    ring: &Ring,
    thread: u64,
    events: u64,
    rate_per_thread: u64,
    stacks: bool,
    totals: &Totals,
) {
    let routes: Vec<_> = ROUTES.iter().map(|r| ring.intern(r)).collect();
    let functions: Vec<_> = FUNCTIONS.iter().map(|f| ring.intern(f)).collect();
    let queries: Vec<_> = QUERIES.iter().map(|q| ring.intern(q)).collect();
    let exception = ring.intern("TimeoutError");
    let mut rng = 0x9E37_79B9_7F4A_7C15 ^ (thread + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    let start = Instant::now();
    let (mut emitted, mut dropped) = (0u64, 0u64);
    for i in 0..events {
        if rate_per_thread > 0 && i % 64 == 0 {
            let due = Duration::from_nanos(i * 1_000_000_000 / rate_per_thread);
            let elapsed = start.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
        let r = xorshift(&mut rng);
        let pick = r % 100;
        let outcome = if pick < 60 {
            let route = routes[(r >> 8) as usize % routes.len()];
            let status = match (r >> 16) % 100 {
                0..=3 => 500,
                4..=9 => 404,
                _ => 200,
            };
            let fields = Fields {
                method: if (r >> 24).is_multiple_of(4) {
                    Method::Post
                } else {
                    Method::Get
                },
                status,
                dur_ns: 200_000 + (r >> 32) % 20_000_000,
                flags: if status >= 500 {
                    profilis::record::FLAG_ERROR
                } else {
                    0
                },
                exception_type: if status >= 500 {
                    exception
                } else {
                    profilis::StrId::NONE
                },
                message: if status >= 500 && stacks {
                    ring.message_with_stack(
                        "inventory service timed out after 2000 ms",
                        Some(STACK),
                    )
                } else {
                    profilis::MsgRef(0)
                },
                value: (r >> 40) % 4096,
                value2: (r >> 28) % 65536,
                ..Fields::default()
            };
            ring.record(Kind::Req, route, &fields)
        } else if pick < 85 {
            let name = functions[(r >> 8) as usize % functions.len()];
            ring.emit_fn(
                name,
                10_000 + (r >> 32) % 2_000_000,
                (r >> 20).is_multiple_of(100),
            )
        } else {
            let query = queries[(r >> 8) as usize % queries.len()];
            ring.emit_db(query, 50_000 + (r >> 32) % 5_000_000, (r >> 16) % 50)
        };
        match outcome {
            Emit::Written => emitted += 1,
            Emit::Dropped => dropped += 1,
            Emit::Disabled => {}
        }
    }
    totals.claimed.fetch_add(events, Relaxed);
    totals.emitted.fetch_add(emitted, Relaxed);
    totals.dropped.fetch_add(dropped, Relaxed);
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    let mut options = RingOptions::default()
        .capacity(args.capacity)
        .policy(args.policy);
    options.service = args.service.clone();
    let ring = Ring::create_or_open(&args.ring, options)?;
    let totals = Totals {
        claimed: AtomicU64::new(0),
        emitted: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
    };
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..args.threads {
            let share = args.events / args.threads + u64::from(t < args.events % args.threads);
            let (ring, totals) = (&ring, &totals);
            let (rate, stacks) = (args.rate / args.threads, args.stacks);
            s.spawn(move || run_thread(ring, t, share, rate, stacks, totals));
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let emitted = totals.emitted.load(Relaxed);
    println!(
        "{{\"claimed\":{},\"emitted\":{},\"dropped\":{},\"threads\":{},\"elapsed_s\":{:.6},\"events_per_sec\":{:.0}}}",
        totals.claimed.load(Relaxed),
        emitted,
        totals.dropped.load(Relaxed),
        args.threads,
        elapsed,
        totals.claimed.load(Relaxed) as f64 / elapsed.max(1e-9),
    );
    Ok(())
}
