//! The reader's CPU per event, stage by stage: a ring is filled with a mix
//! like the built-in workload's (REQ with trace context, service, some 5xx
//! with exception type and message; FN; DB), not timed, then drained in
//! batches of `--batch` events (default 200: about what the drain loop
//! takes per round at 100k events/s) by passes that add one stage at a time:
//!
//! - `drain`: read a batch from the ring (with its LOSS markers and the
//!   post-mortem watch) and commit it;
//! - `statistics`: the same plus the rolling-window tables;
//! - `jsonl`: the same plus the JSONL exporter (format, one `write` per
//!   batch into a file, housekeeping);
//! - `compression`: zstd of the file `jsonl` wrote, as the background
//!   thread does after a rotation;
//! - `pipeline`: the drain loop itself (`Drain::run`, `--once`) with
//!   statistics, JSONL and zstd, counting every thread of the process.
//!
//! A stage's cost is the difference between its pass and the one before;
//! each pass is timed by CPU time (`CLOCK_THREAD_CPUTIME_ID`, the process
//! clock for `pipeline`), not wall time, and the median over the rounds is
//! printed. For instruction counts run the bench binary under callgrind
//! with `--toggle-collect='*reader_cpu::measure*'` and `--stage NAME`
//! (docs/benchmarks-service.md, "Reader CPU per event").
//!
//! ```text
//! cargo bench -p profilis-reader --bench reader_cpu
//! cargo bench -p profilis-reader --bench reader_cpu -- --events 1048576 --batch 4096 --rounds 3
//! cargo bench -p profilis-reader --bench reader_cpu -- --test     # smoke: small ring, one round
//! ```

use profilis::context::{self, SpanContext};
use profilis::record::FLAG_ERROR;
use profilis::{Fields, Kind, Method, MsgRef, Ring, RingOptions, StrId};
use profilis_reader::app::drain::{Drain, DrainOptions};
use profilis_reader::ingest::{IngestOptions, Rings};
use profilis_reader::outputs::jsonl::{compress_file, Compression, JsonlExporter, JsonlOptions};
use profilis_reader::outputs::{Exporter, LossBatch};
use profilis_reader::support::timefmt;
use profilis_reader::window::stats::StatsConfig;
use profilis_reader::window::Window;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The passes, in the order they add stages.
const STAGES: [&str; 5] = ["drain", "statistics", "jsonl", "compression", "pipeline"];

struct Args {
    events: u64,
    batch: usize,
    rounds: usize,
    stage: Option<String>,
    json: bool,
}

fn args() -> Args {
    let mut a = Args {
        events: 1 << 18,
        batch: 200,
        rounds: 5,
        stage: None,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--events" => a.events = value().parse().expect("--events N"),
            "--batch" => a.batch = value().parse().expect("--batch N"),
            "--rounds" => a.rounds = value().parse().expect("--rounds N"),
            "--stage" => {
                let stage = value();
                assert!(
                    STAGES.contains(&stage.as_str()),
                    "--stage: one of {STAGES:?}"
                );
                a.stage = Some(stage);
            }
            "--json" => a.json = true,
            "--test" => {
                a.events = 16384;
                a.rounds = 1;
            }
            // `cargo bench` passes --bench; `cargo test --benches` --list.
            "--bench" => {}
            "--list" => std::process::exit(0),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        a.events.is_power_of_two() && a.events >= 1024,
        "--events: a power of two >= 1024"
    );
    assert!(a.batch > 0 && a.rounds > 0);
    a
}

/// The names a filled ring uses.
struct Names {
    routes: Vec<StrId>,
    functions: Vec<StrId>,
    queries: Vec<StrId>,
    exceptions: Vec<(StrId, MsgRef)>,
}

fn names(ring: &Ring) -> Names {
    let routes = [
        "/api/users/{id}",
        "/api/products",
        "/api/orders",
        "/api/search",
        "/health",
    ];
    let functions = [
        "authenticate",
        "load_user",
        "list_products",
        "place_order",
        "db.query",
    ];
    let queries = [
        "SELECT id, name, email FROM users WHERE id = ?",
        "SELECT id, name, price FROM products WHERE category = ? LIMIT ?",
        "INSERT INTO orders (user_id, total) VALUES (?, ?)",
    ];
    let exceptions = [
        (
            "TimeoutError",
            "upstream inventory service timed out after 2000 ms",
        ),
        (
            "DatabaseError",
            "deadlock detected while updating orders (retry 3 of 3)",
        ),
    ];
    Names {
        routes: routes.iter().map(|r| ring.intern(r)).collect(),
        functions: functions.iter().map(|f| ring.intern(f)).collect(),
        queries: queries.iter().map(|q| ring.intern(q)).collect(),
        exceptions: exceptions
            .iter()
            .map(|(t, m)| (ring.intern(t), ring.message(m)))
            .collect(),
    }
}

/// Fills the ring with `events` events: requests of five events each (two
/// FN, one DB, one more FN, the REQ) under a fresh trace, as the workload
/// emits them.
fn fill(ring: &Ring, names: &Names, events: u64) {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut emitted = 0;
    while emitted < events {
        let root = SpanContext::NONE.child();
        let _enter = context::enter(root);
        let r = next();
        let route = (r % names.routes.len() as u64) as usize;
        let n = (events - emitted).min(5);
        for i in 0..n {
            let dur = 10_000 + (next() >> 32) % 5_000_000;
            match i {
                0 | 1 | 3 => {
                    let f = names.functions[(route + i as usize) % names.functions.len()];
                    ring.emit_fn(f, dur, false);
                }
                2 => {
                    let q = names.queries[route % names.queries.len()];
                    ring.emit_db(q, dur, next() % 50);
                }
                _ => {
                    let error = r % 1000 < 20;
                    let (exception_type, message) = if error {
                        names.exceptions[(r >> 20) as usize % names.exceptions.len()]
                    } else {
                        (StrId::NONE, MsgRef(0))
                    };
                    let fields = Fields {
                        method: if route == 2 {
                            Method::Post
                        } else {
                            Method::Get
                        },
                        status: if error { 500 } else { 200 },
                        dur_ns: dur * 3,
                        flags: if error { FLAG_ERROR } else { 0 },
                        exception_type,
                        message,
                        value: next() % 2000,
                        value2: 300 + next() % 20_000,
                        span: Some(root),
                        ..Fields::default()
                    };
                    ring.record(Kind::Req, names.routes[route], &fields);
                }
            }
        }
        emitted += n;
    }
}

fn cpu_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU ns of `f` on `clock`. Kept out of line so that callgrind can
/// collect it alone (`--toggle-collect='*reader_cpu::measure*'`).
#[inline(never)]
fn measure(clock: libc::clockid_t, f: impl FnOnce()) -> u64 {
    let start = cpu_ns(clock);
    f();
    cpu_ns(clock).saturating_sub(start)
}

/// One pass over a full ring by the stages up to `stage` (drain,
/// statistics, jsonl), batch by batch as the drain loop takes them;
/// returns the CPU ns and the events drained.
fn staged_pass(ring_path: &Path, out: &Path, stage: &str, batch: usize) -> (u64, u64) {
    let with_window = stage != "drain";
    let with_jsonl = stage == "jsonl";
    let mut rings = Rings::open(
        IngestOptions {
            rings: vec![ring_path.to_path_buf()],
            watch: None,
            wait: false,
            once: true,
            liveness_interval: Duration::from_millis(50),
            max_rings: 1,
            postmortem_events: 100,
            keep_files: true,
            process_interval: Duration::ZERO,
        },
        vec!["jsonl"],
        Some(0),
        &|_| None,
    )
    .expect("attaching the bench ring");
    let mut window = Window::new(StatsConfig::default(), 32, timefmt::now_ns());
    let mut exporter = with_jsonl.then(|| {
        let mut options = JsonlOptions::new(out);
        options.rotate_bytes = 0;
        JsonlExporter::new(options).expect("JSONL exporter")
    });
    let mut drained = 0u64;
    let cpu = measure(libc::CLOCK_THREAD_CPUTIME_ID, || loop {
        let now = Instant::now();
        let now_ns = timefmt::now_ns();
        if with_window {
            window.advance(now_ns);
        }
        let read = rings.read(0, batch, false, now, now_ns);
        let events = read.batch.events().len();
        let progress = read.progress;
        if with_window {
            window.record(read.ctx, &read.batch, &read.markers);
        }
        if let Some(e) = exporter.as_mut() {
            let losses = LossBatch {
                markers: &read.markers,
                cursor: read.cursor,
            };
            e.export_with_losses(read.ctx, &read.batch, &losses);
        }
        rings.commit(0);
        if let Some(e) = exporter.as_mut() {
            e.maintain(now);
        }
        drained += events as u64;
        if progress == 0 {
            break;
        }
    });
    if let Some(mut e) = exporter {
        e.finish();
    }
    (cpu, drained)
}

/// The closed JSONL file `jsonl` left in `out`.
fn written_file(out: &Path) -> PathBuf {
    std::fs::read_dir(out)
        .expect("reading the JSONL directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("the JSONL pass wrote a file")
}

/// The drain loop with statistics, JSONL and zstd; process CPU ns.
fn pipeline_pass(ring_path: &Path, out: &Path, batch: usize) -> (u64, u64) {
    let mut options = JsonlOptions::new(out);
    options.rotate_bytes = 0;
    options.compress = Some(Compression::Zstd);
    let exporters: Vec<Box<dyn Exporter>> = vec![Box::new(
        JsonlExporter::new(options).expect("JSONL exporter"),
    )];
    let drain = Drain::new(
        DrainOptions {
            rings: vec![ring_path.to_path_buf()],
            once: true,
            keep_rings: true,
            batch_max: batch,
            ..DrainOptions::default()
        },
        exporters,
        Arc::new(AtomicBool::new(false)),
    )
    .expect("attaching the bench ring");
    let mut received = 0;
    let cpu = measure(libc::CLOCK_PROCESS_CPUTIME_ID, || {
        received = drain.run().rings[0].received;
    });
    (cpu, received)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args = args();
    let base = std::env::var_os("PROFILIS_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/shm"));
    let dir = base.join(format!("profilis-reader-cpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the bench directory");
    let ring_path = dir.join("bench.ring");
    let stages: Vec<&str> = match &args.stage {
        Some(s) => vec![s.as_str()],
        None => STAGES.to_vec(),
    };
    let mut ns_per_event: Vec<Vec<f64>> = vec![Vec::new(); STAGES.len()];
    let mut bytes_per_event = 0.0;
    for _ in 0..args.rounds {
        for &stage in &stages {
            let out = dir.join("jsonl");
            let _ = std::fs::remove_dir_all(&out);
            let _ = std::fs::remove_file(&ring_path);
            // One lane: this one thread fills the whole ring.
            let ring = Ring::create_or_open(
                &ring_path,
                RingOptions::default()
                    .capacity(args.events)
                    .lanes(1)
                    .service("bench-shop"),
            )
            .expect("creating the bench ring");
            let names = names(&ring);
            fill(&ring, &names, args.events);
            let (cpu, events) = match stage {
                "compression" => {
                    // The file the JSONL pass writes, then zstd alone.
                    let (_, events) = staged_pass(&ring_path, &out, "jsonl", args.batch);
                    let file = written_file(&out);
                    bytes_per_event = std::fs::metadata(&file).expect("JSONL file").len() as f64
                        / events.max(1) as f64;
                    let cpu = measure(libc::CLOCK_THREAD_CPUTIME_ID, || {
                        compress_file(&file, Compression::Zstd).expect("compressing");
                    });
                    (cpu, events)
                }
                "pipeline" => pipeline_pass(&ring_path, &out, args.batch),
                _ => staged_pass(&ring_path, &out, stage, args.batch),
            };
            assert_eq!(events, args.events, "{stage}: every event drained");
            let i = STAGES.iter().position(|s| *s == stage).expect("a stage");
            ns_per_event[i].push(cpu as f64 / events as f64);
            drop(ring);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let pass: Vec<Option<f64>> = ns_per_event
        .into_iter()
        .map(|v| (!v.is_empty()).then(|| median(v)))
        .collect();
    // A stage's own cost: its pass less the pass before it.
    let own = |i: usize| -> Option<f64> {
        match i {
            0 | 3 | 4 => pass[i],
            _ => Some(pass[i]? - pass[i - 1]?),
        }
    };
    let sum = (|| Some(pass[2]? + pass[3]?))();
    if args.json {
        for (i, stage) in STAGES.iter().enumerate() {
            if let Some(p) = pass[i] {
                println!(
                    "{{\"stage\":\"{stage}\",\"pass_ns_per_event\":{p:.1},\"stage_ns_per_event\":{},\"events\":{},\"batch\":{}}}",
                    own(i).map_or("null".to_string(), |v| format!("{v:.1}")),
                    args.events,
                    args.batch
                );
            }
        }
        return;
    }
    println!(
        "reader CPU per event: {} events per pass, batches of {}, median of {} round(s); JSONL {:.0} bytes per event",
        args.events, args.batch, args.rounds, bytes_per_event
    );
    println!(
        "{:<28} {:>12} {:>16}",
        "stage", "ns/event", "ms/1000 events"
    );
    let labels = [
        "drain (read + commit)",
        "statistics",
        "JSONL formatting + write",
        "compression (zstd)",
        "pipeline (Drain::run, all)",
    ];
    for (i, label) in labels.iter().enumerate() {
        if let Some(v) = own(i) {
            println!("{label:<28} {v:>12.1} {:>16.4}", v / 1000.0);
        }
    }
    if let Some(s) = sum {
        println!("{:<28} {s:>12.1} {:>16.4}", "sum of the stages", s / 1000.0);
    }
}
