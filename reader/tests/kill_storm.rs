//! Kill storm: writer processes SIGKILLed at random points while the real
//! `profilis-reader` drains two rings into rotating, gzip-compressed JSONL,
//! and the reader itself SIGKILLed and restarted over and over. A final
//! `--once --accounting` drain must then state, for every ring,
//! `received + dropped + abandoned + torn == claimed` exactly, and the JSONL
//! files must hold exactly the received events: every line whole and
//! valid, no `(ring_id, seq)` twice, one line per received event; and the
//! LOSS lines written across all the reader's runs must add up to the
//! ring's dropped, abandoned and torn counters.
//!
//! The storm lasts `PROFILIS_KILL_STORM_SECS` seconds (default 12);
//! `scripts/kill-storm.sh DURATION` runs the long version. The binary
//! re-executes itself as the writer (`PROFILIS_STORM_ROLE=writer`), so it
//! runs without the test harness (`harness = false` in Cargo.toml).

mod common;

use common::*;
use profilis::{Fields, Kind, Method, Ring, RingOptions};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROLE: &str = "PROFILIS_STORM_ROLE";
const WRITERS: usize = 3;

fn main() {
    if std::env::var(ROLE).as_deref() == Ok("writer") {
        writer(Path::new(&std::env::var("PROFILIS_RING").unwrap()));
        return;
    }
    profilis::testing::run_tests(&[(
        "writers_and_the_reader_killed_at_random_keep_the_identity_and_jsonl_exact",
        storm,
    )]);
}

/// A writer process of two threads, each about 4000 events a second until
/// killed. Every 16th event is begun as a claim, then the thread sleeps a
/// millisecond before it finishes it, so a good share of the kills land in
/// the middle of an event.
fn writer(path: &Path) {
    let ring = Ring::open(path).unwrap();
    let other = ring.clone();
    std::thread::spawn(move || write_forever(&other));
    write_forever(&ring);
}

fn write_forever(ring: &Ring) {
    let routes = [
        ring.intern("/api/orders/{id}"),
        ring.intern("/api/users"),
        ring.intern("ctrl \u{1} \"quoted\" é"),
    ];
    let query = ring.intern("SELECT * FROM orders WHERE id = ?");
    let mut seq = 0u64;
    loop {
        for _ in 0..16 {
            seq += 1;
            let fields = Fields {
                method: Method::Get,
                status: if seq.is_multiple_of(97) { 503 } else { 200 },
                dur_ns: 1_000 + seq % 5_000_000,
                value: seq,
                ..Fields::default()
            };
            let name = routes[(seq % 3) as usize];
            if seq.is_multiple_of(16) {
                if let Ok(claim) = ring.claim() {
                    std::thread::sleep(Duration::from_millis(1));
                    claim.commit(&profilis::event_now(Kind::Req, name, &fields));
                }
            } else if seq.is_multiple_of(5) {
                ring.emit_db(query, 20_000 + seq % 1000, seq % 10);
            } else {
                ring.record(Kind::Req, name, &fields);
            }
        }
        std::thread::sleep(Duration::from_millis(4));
    }
}

fn spawn_writer(ring: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env(ROLE, "writer")
        .env("PROFILIS_RING", ring)
        .stdin(Stdio::null())
        .spawn()
        .expect("starting a writer")
}

/// xorshift64*: the storm's schedule, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.next() % (to - from))
    }
}

fn kill(child: &mut Child) {
    child.kill().expect("SIGKILL"); // std's kill is SIGKILL
    child.wait().expect("reaping");
}

fn storm() {
    let secs: u64 = std::env::var("PROFILIS_KILL_STORM_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let seed: u64 = std::env::var("PROFILIS_KILL_STORM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| profilis::clock::wall_ns() | 1);
    println!("kill storm: {secs} s, seed {seed} (PROFILIS_KILL_STORM_SEED to repeat)");
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let rings: Vec<PathBuf> = ["a.ring", "b.ring"]
        .iter()
        .map(|name| {
            let path = tmp.path().join(name);
            // Eight lanes of 2048 slots: a lane of its own for each writer
            // thread, and for those of killed writers until the reader takes
            // them back.
            Ring::create_or_open(&path, RingOptions::default().capacity(16384).lanes(8)).unwrap();
            path
        })
        .collect();
    let out_dir = tmp.path().join("jsonl");
    let mut reader_args: Vec<String> = rings
        .iter()
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    reader_args.extend(
        [
            "--jsonl-dir",
            out_dir.to_str().unwrap(),
            "--rotate-bytes",
            "256K",
            "--compress",
            "gzip",
            "--batch-max",
            "512",
            "--flush-interval",
            "200ms",
            "--liveness-interval",
            "20ms",
            "--no-ui",
            // The two rings outlive every writer: a new writer opens the
            // same file, and the final drain accounts for each ring over
            // the whole storm. A ring left with only dead writers would
            // otherwise be removed once drained.
            "--keep-rings",
        ]
        .map(String::from),
    );
    let start_reader = || {
        reader()
            .args(&reader_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting profilis-reader")
    };

    let mut writers: Vec<Child> = (0..WRITERS)
        .map(|i| spawn_writer(&rings[i % rings.len()]))
        .collect();
    let mut spawned = WRITERS;
    let mut reader = start_reader();
    let (mut writer_kills, mut reader_kills) = (0u64, 0u64);
    let end = Instant::now() + Duration::from_secs(secs);
    let mut next_writer_kill = Instant::now() + rng.millis(100, 400);
    let mut next_reader_kill = Instant::now() + rng.millis(1500, 3000);
    while Instant::now() < end {
        let now = Instant::now();
        if now >= next_writer_kill {
            let i = (rng.next() % WRITERS as u64) as usize;
            kill(&mut writers[i]);
            writer_kills += 1;
            writers[i] = spawn_writer(&rings[spawned % rings.len()]);
            spawned += 1;
            next_writer_kill = now + rng.millis(100, 400);
        }
        if now >= next_reader_kill {
            kill(&mut reader);
            reader_kills += 1;
            // Down for a moment, as a crashed reader under a supervisor.
            std::thread::sleep(rng.millis(10, 200));
            reader = start_reader();
            next_reader_kill = Instant::now() + rng.millis(1500, 3000);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for w in &mut writers {
        kill(w);
        writer_kills += 1;
    }
    kill(&mut reader);
    reader_kills += 1;

    // The final drain: what is left in the rings, the lanes of dead
    // writers taken back (the events they died in counted), files closed.
    let args: Vec<&str> = reader_args
        .iter()
        .map(String::as_str)
        .chain(["--once", "--accounting"])
        .collect();
    let out = run_reader(&args, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "final drain failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let accounts = accounting(&out.stdout);
    assert_eq!(accounts.len(), rings.len(), "{accounts:?}");

    // Every line whole and valid JSON (read_lines panics otherwise).
    let lines = read_lines(&out_dir);
    let mut per_ring: HashMap<String, HashSet<u64>> = HashMap::new();
    // LOSS lines per ring: summed counts, and the last line's cumulative.
    let mut loss_sums: HashMap<String, [u64; 4]> = HashMap::new();
    let mut loss_last: HashMap<String, Value> = HashMap::new();
    let mut loss_lines = 0u64;
    for v in &lines {
        if v["kind"] == "LOSS" {
            let ring_id = v["ring_id"].as_str().unwrap().to_string();
            let sums = loss_sums.entry(ring_id.clone()).or_default();
            for (sum, field) in sums
                .iter_mut()
                .zip(["dropped", "overwritten", "abandoned", "torn"])
            {
                *sum += v[field]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{field} in {v}"));
            }
            loss_last.insert(ring_id, v["cumulative"].clone());
            loss_lines += 1;
            continue;
        }
        check_fields(v);
        let ring_id = v["ring_id"].as_str().unwrap().to_string();
        let seq = v["seq"].as_u64().unwrap();
        assert!(
            per_ring.entry(ring_id.clone()).or_default().insert(seq),
            "({ring_id}, {seq}) exported twice"
        );
    }
    let mut totals = [0u64; 6];
    for a in &accounts {
        let n = |k: &str| a[k].as_u64().unwrap_or_else(|| panic!("{k} in {a}"));
        let (claimed, received, dropped, abandoned, torn) = (
            n("claimed"),
            n("received"),
            n("dropped"),
            n("abandoned"),
            n("torn"),
        );
        assert_eq!(n("lag"), 0, "drained: {a}");
        assert_eq!(
            received + dropped + abandoned + torn,
            claimed,
            "identity of {}: {a}",
            a["ring"]
        );
        assert_eq!(n("export_lost"), 0, "{a}");
        let exported = per_ring
            .get(a["ring_id"].as_str().unwrap())
            .map_or(0, |s| s.len() as u64);
        assert_eq!(
            exported, received,
            "one JSONL line per received event of {}: {a}",
            a["ring"]
        );
        // The LOSS lines, written across every reader restart, account for
        // each lost event exactly once.
        let ring_id = a["ring_id"].as_str().unwrap();
        let [l_dropped, l_overwritten, l_abandoned, l_torn] =
            loss_sums.get(ring_id).copied().unwrap_or_default();
        assert_eq!(
            (l_dropped + l_overwritten, l_abandoned, l_torn),
            (dropped, abandoned, torn),
            "LOSS lines of {} add up to its counters: {a}",
            a["ring"]
        );
        if let Some(cumulative) = loss_last.get(ring_id) {
            let c = |k: &str| cumulative[k].as_u64().unwrap();
            assert_eq!(
                (c("dropped") + c("overwritten"), c("abandoned"), c("torn")),
                (dropped, abandoned, torn),
                "last LOSS line's cumulative counts of {}: {a}",
                a["ring"]
            );
        }
        for (t, v) in totals
            .iter_mut()
            .zip([claimed, received, dropped, abandoned, torn, exported])
        {
            *t += v;
        }
    }
    assert!(
        writer_kills >= 10 && reader_kills >= 2,
        "{writer_kills} writer kills, {reader_kills} reader kills"
    );
    assert!(totals[1] > 0, "events were delivered");
    let files = data_files(&out_dir);
    println!(
        "kill storm: {writer_kills} writer kills, {reader_kills} reader kills; \
         claimed {} = received {} + dropped {} + abandoned {} + torn {} (identity holds); \
         {} JSONL event lines in {} files, no duplicate, no partial line; \
         {loss_lines} LOSS lines adding up to the counters",
        totals[0],
        totals[1],
        totals[2],
        totals[3],
        totals[4],
        totals[5],
        files.len()
    );
}
