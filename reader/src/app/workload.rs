//! The demo's built-in workload (`profilis-reader workload`, hidden): an
//! imitation web shop that uses the `profilis` library from several threads
//! and emits, at a steady rate until stopped:
//! - REQ events for route templates with methods, statuses (some 404s and
//!   5xx with an exception type and message), bytes in and out;
//! - FN events from nested [`profilis::Span`]s inside each request;
//! - DB events with redacted queries and row counts;
//! - CUSTOM samples (queue depth, cache hit ratio).
//!
//! Request and query latencies are drawn from per-route distributions with
//! a long tail, so the dashboard has something to show.

use super::cli::WorkloadArgs;
use anyhow::Context;
use profilis::context::{self, SpanContext};
use profilis::record::FLAG_ERROR;
use profilis::{Fields, Kind, Method, Ring, RingOptions, StrId};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Route {
    method: Method,
    template: &'static str,
    base_ns: u64,
    query: Option<&'static str>,
    function: &'static str,
}

const ROUTES: [Route; 6] = [
    Route {
        method: Method::Get,
        template: "/api/users/{id}",
        base_ns: 2_000_000,
        query: Some("SELECT id, name, email FROM users WHERE id = ?"),
        function: "load_user",
    },
    Route {
        method: Method::Get,
        template: "/api/products",
        base_ns: 6_000_000,
        query: Some("SELECT id, name, price FROM products WHERE category = ? LIMIT ?"),
        function: "list_products",
    },
    Route {
        method: Method::Post,
        template: "/api/orders",
        base_ns: 15_000_000,
        query: Some("INSERT INTO orders (user_id, total) VALUES (?, ?)"),
        function: "place_order",
    },
    Route {
        method: Method::Get,
        template: "/api/orders/{id}",
        base_ns: 3_000_000,
        query: Some("SELECT * FROM orders WHERE id = ?"),
        function: "load_order",
    },
    Route {
        method: Method::Get,
        template: "/api/search",
        base_ns: 25_000_000,
        query: Some("SELECT id FROM products WHERE name LIKE ? ORDER BY rank LIMIT ?"),
        function: "score_results",
    },
    Route {
        method: Method::Get,
        template: "/health",
        base_ns: 150_000,
        query: None,
        function: "check_health",
    },
];

const EXCEPTIONS: [(&str, &str); 3] = [
    (
        "TimeoutError",
        "upstream inventory service timed out after 2000 ms",
    ),
    (
        "DatabaseError",
        "deadlock detected while updating orders (retry 3 of 3)",
    ),
    ("ValueError", "invalid quantity \"-1\" for item 42"),
];

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A latency around `base` with a long tail: mostly 0.5x–1.5x, 1% up to 20x.
fn latency(rng: &mut u64, base: u64) -> u64 {
    let r = next(rng);
    let factor = 0.5 + (r % 1000) as f64 / 1000.0;
    let tail = if r >> 40 & 127 == 0 {
        1.0 + ((r >> 20) % 19) as f64
    } else {
        1.0
    };
    (base as f64 * factor * tail) as u64
}

/// A little real work, so spans measure something.
fn work(rng: &mut u64, rounds: u64) -> u64 {
    let mut acc = 0u64;
    for _ in 0..rounds {
        acc = acc.wrapping_add(next(rng));
    }
    std::hint::black_box(acc)
}

fn request(ring: &Ring, rng: &mut u64, ids: &Ids) {
    let r = next(rng);
    let pick = (r % 100) as usize;
    let index = match pick {
        0..=29 => 0,
        30..=49 => 1,
        50..=59 => 2,
        60..=79 => 3,
        80..=89 => 4,
        _ => 5,
    };
    let route = &ROUTES[index];
    let root = SpanContext::NONE.child();
    let _enter = context::enter(root);
    let start = profilis::clock::mono_ns();
    let mut simulated = latency(rng, route.base_ns);
    {
        let _auth = ring.span(profilis::name!("authenticate"));
        work(rng, 200);
    }
    let status_roll = next(rng) % 1000;
    let (status, exception) = match status_roll {
        0..=14 => (500, Some((next(rng) % EXCEPTIONS.len() as u64) as usize)),
        15..=19 => (503, Some(0)),
        20..=69 => (404, None),
        _ if route.method == Method::Post => (201, None),
        _ => (200, None),
    };
    {
        let mut handler = ring.span(ids.functions[index]);
        work(rng, 500);
        if let Some(query) = route.query {
            let _db_span = ring.span(profilis::name!("db.query"));
            let db_ns = latency(rng, route.base_ns / 3);
            simulated += db_ns;
            ring.emit_db(query, db_ns, next(rng) % 50);
        }
        if index == 4 {
            let _rank = ring.span(profilis::name!("rank_results"));
            work(rng, 2000);
        }
        if exception.is_some() {
            handler.set_error();
        }
    }
    let (exception_type, message) = match exception {
        Some(i) => (ids.exceptions[i], ring.message(EXCEPTIONS[i].1)),
        None => (StrId::NONE, profilis::MsgRef(0)),
    };
    let elapsed = profilis::clock::mono_ns().saturating_sub(start);
    let fields = Fields {
        method: route.method,
        status,
        dur_ns: elapsed + simulated,
        flags: if status >= 500 { FLAG_ERROR } else { 0 },
        exception_type,
        message,
        value: if route.method == Method::Post {
            200 + next(rng) % 2000
        } else {
            0
        },
        value2: 300 + next(rng) % 20_000,
        span: Some(root),
        ..Fields::default()
    };
    ring.record(Kind::Req, ids.routes[index], &fields);
}

struct Ids {
    routes: Vec<StrId>,
    functions: Vec<StrId>,
    exceptions: Vec<StrId>,
}

/// Runs the workload until SIGINT/SIGTERM or `--requests` are done.
pub fn run(args: WorkloadArgs) -> anyhow::Result<ExitCode> {
    let options = RingOptions::from_env()?.service(args.service.clone());
    let ring = Ring::create_or_open(&args.ring, options)
        .with_context(|| format!("opening ring {}", args.ring.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handler")?;
    }
    let ids = Arc::new(Ids {
        routes: ROUTES.iter().map(|r| ring.intern(r.template)).collect(),
        functions: ROUTES.iter().map(|r| ring.intern(r.function)).collect(),
        exceptions: EXCEPTIONS.iter().map(|e| ring.intern(e.0)).collect(),
    });
    let done = Arc::new(AtomicU64::new(0));
    let threads = args.threads.max(1) as u64;
    // 0: as fast as possible.
    let per_thread_rate = if args.rate == 0 {
        0
    } else {
        (args.rate / threads).max(1)
    };
    let mut handles = Vec::new();
    for t in 0..threads {
        let (ring, ids, stop, done) = (ring.clone(), ids.clone(), stop.clone(), done.clone());
        let limit = args.requests;
        handles.push(std::thread::spawn(move || {
            let mut rng = 0x9E37_79B9_7F4A_7C15
                ^ (t + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93)
                ^ u64::from(std::process::id());
            let interval = Duration::from_nanos(1_000_000_000 / per_thread_rate.max(1));
            let mut due = Instant::now();
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                let k = done.fetch_add(1, Relaxed);
                if limit > 0 && k >= limit {
                    break;
                }
                request(&ring, &mut rng, &ids);
                n += 1;
                if n.is_multiple_of(100) {
                    ring.emit_custom(profilis::name!("queue_depth"), (next(&mut rng) % 64) as f64);
                    ring.emit_custom(
                        profilis::name!("cache_hit_ratio"),
                        0.8 + (next(&mut rng) % 200) as f64 / 1000.0,
                    );
                }
                if per_thread_rate == 0 {
                    continue;
                }
                due += interval;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                } else if now - due > Duration::from_secs(1) {
                    due = now; // fell far behind (suspended): do not burst
                }
            }
        }));
    }
    for h in handles {
        let _ = h.join();
    }
    let requests = done.load(Relaxed);
    let requests = if args.requests > 0 {
        requests.min(args.requests)
    } else {
        requests
    };
    println!("{{\"requests\":{requests}}}");
    Ok(ExitCode::SUCCESS)
}
