//! End-to-end JSONL throughput of the reader on one core: a ring is filled
//! with a REQ/FN/DB mix (not timed), then the drain loop reads it, updates
//! the statistics and writes every event as a JSON line into a file, and
//! the time until the file is closed is measured.
//!
//! ```text
//! cargo bench -p profilis-reader --bench jsonl_throughput
//! PROFILIS_BENCH_DIR=/dev/shm cargo bench -p profilis-reader --bench jsonl_throughput
//! ```
//!
//! Prints one line per configuration with events/s (best of the rounds).

use profilis::{Fields, Kind, Method, Ring, RingOptions};
use profilis_reader::app::drain::{Drain, DrainOptions};
use profilis_reader::outputs::jsonl::{JsonlExporter, JsonlOptions};
use profilis_reader::outputs::Exporter;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CAPACITY: u64 = 1 << 20;
const ROUNDS: usize = 3;

fn fill(ring: &Ring, events: u64) {
    let routes: Vec<_> = ["/api/users/{id}", "/api/orders", "/api/search", "/health"]
        .iter()
        .map(|r| ring.intern(r))
        .collect();
    let function = ring.intern("load_user");
    let query = ring.intern("SELECT * FROM users WHERE id = ?");
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let root = profilis::SpanContext::NONE.child();
    let _enter = profilis::context::enter(root);
    for _ in 0..events {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        match rng % 100 {
            0..=59 => {
                let fields = Fields {
                    method: Method::Get,
                    status: if rng.is_multiple_of(50) { 500 } else { 200 },
                    dur_ns: 200_000 + (rng >> 32) % 20_000_000,
                    value: (rng >> 40) % 4096,
                    value2: (rng >> 28) % 65536,
                    ..Fields::default()
                };
                ring.record(
                    Kind::Req,
                    routes[(rng >> 8) as usize % routes.len()],
                    &fields,
                );
            }
            60..=84 => {
                ring.emit_fn(function, 10_000 + (rng >> 32) % 2_000_000, false);
            }
            _ => {
                ring.emit_db(query, 50_000 + (rng >> 32) % 5_000_000, (rng >> 16) % 50);
            }
        }
    }
}

fn round(dir: &std::path::Path, jsonl: bool) -> (u64, Duration) {
    let ring_path = dir.join("bench.ring");
    let _ = std::fs::remove_file(&ring_path);
    // One lane: this one thread fills the whole ring.
    let ring = Ring::create_or_open(
        &ring_path,
        RingOptions::default().capacity(CAPACITY).lanes(1),
    )
    .expect("creating the bench ring");
    fill(&ring, CAPACITY);
    let out = dir.join("jsonl");
    let _ = std::fs::remove_dir_all(&out);
    let exporters: Vec<Box<dyn Exporter>> = if jsonl {
        let mut options = JsonlOptions::new(&out);
        options.rotate_bytes = 0;
        vec![Box::new(JsonlExporter::new(options).expect("exporter"))]
    } else {
        Vec::new()
    };
    let drain = Drain::new(
        DrainOptions {
            rings: vec![ring_path.clone()],
            once: true,
            ..DrainOptions::default()
        },
        exporters,
        Arc::new(AtomicBool::new(false)),
    )
    .expect("attaching");
    let start = Instant::now();
    let report = drain.run();
    let elapsed = start.elapsed();
    let exported = report.rings[0].received;
    drop(ring);
    let _ = std::fs::remove_file(&ring_path);
    let _ = std::fs::remove_dir_all(&out);
    (exported, elapsed)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / `cargo test --benches` smoke
    }
    let base = std::env::var_os("PROFILIS_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("profilis-jsonl-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the bench directory");
    println!(
        "JSONL end to end (ring -> stats -> JSONL file), {CAPACITY} events per round, files in {}",
        dir.display()
    );
    for (label, jsonl) in [("stats + JSONL file", true), ("stats only", false)] {
        let mut best = 0.0f64;
        for _ in 0..ROUNDS {
            let (events, elapsed) = round(&dir, jsonl);
            assert_eq!(events, CAPACITY, "every event drained");
            best = best.max(events as f64 / elapsed.as_secs_f64());
        }
        println!("{label:<20} {:>12.0} events/s (best of {ROUNDS})", best);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
