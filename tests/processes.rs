//! Real processes writing into one ring: many writers in parallel, and a
//! writer SIGKILLed at random points while the consumer drains.
//!
//! The binary re-executes itself as the writer (`PROFILIS_TEST_ROLE=writer`),
//! so it runs without the test harness (`harness = false` in Cargo.toml).

use profilis::{Consumer, ConsumerOptions, Fields, Kind, Ring, RingOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const ROLE: &str = "PROFILIS_TEST_ROLE";

fn main() {
    if std::env::var(ROLE).as_deref() == Ok("writer") {
        writer();
        return;
    }
    profilis::testing::run_tests(&[
        (
            "four_writer_processes_deliver_every_event_in_order",
            four_writers,
        ),
        (
            "writers_killed_at_random_points_never_stall_the_consumer",
            kill_storm,
        ),
    ]);
}

/// Writer process: emits `PROFILIS_TEST_EVENTS` events (0 = until killed)
/// whose `value` is a per-process sequence number. With
/// `PROFILIS_TEST_STALL_EVERY=n`, every n-th event is claimed, then the
/// writer spins for a while before committing, as a descheduled writer
/// would, so kills often land between claim and commit.
fn writer() {
    let path = PathBuf::from(std::env::var("PROFILIS_RING").unwrap());
    let events: u64 = std::env::var("PROFILIS_TEST_EVENTS")
        .unwrap()
        .parse()
        .unwrap();
    let stall_every: u64 = std::env::var("PROFILIS_TEST_STALL_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let ring = Ring::open(&path).unwrap();
    let name = ring.intern("writer");
    let mut seq = 0u64;
    while events == 0 || seq < events {
        let fields = Fields {
            value: seq,
            dur_ns: seq,
            ..Fields::default()
        };
        if stall_every != 0 && seq % stall_every == stall_every - 1 {
            if let Ok(claim) = ring.claim() {
                let until = Instant::now() + Duration::from_micros(200);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                claim.commit(&profilis::event_now(Kind::Fn, name, &fields));
            }
        } else {
            ring.record(Kind::Fn, name, &fields);
        }
        seq += 1;
    }
}

fn spawn_writer(ring: &Path, events: u64, stall_every: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env(ROLE, "writer")
        .env("PROFILIS_RING", ring)
        .env("PROFILIS_TEST_EVENTS", events.to_string())
        .env("PROFILIS_TEST_STALL_EVERY", stall_every.to_string())
        .spawn()
        .expect("spawn writer")
}

fn temp_ring(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "profilis-proc-{tag}-{}-{}",
        std::process::id(),
        profilis::clock::mono_ns()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("test.ring")
}

/// Tracks, per writer pid, the sequence numbers received: strictly
/// increasing means in order and without duplicates.
#[derive(Default)]
struct PerWriter {
    last: HashMap<u32, u64>,
    count: HashMap<u32, u64>,
}

impl PerWriter {
    fn take(&mut self, pid: u32, seq: u64) {
        if let Some(&last) = self.last.get(&pid) {
            assert!(seq > last, "pid {pid}: seq {seq} after {last}");
        }
        self.last.insert(pid, seq);
        *self.count.entry(pid).or_default() += 1;
    }
}

fn four_writers() {
    const WRITERS: u64 = 4;
    const EVENTS: u64 = 100_000;
    let path = temp_ring("four");
    Ring::create_or_open(&path, RingOptions::default().capacity(1 << 19)).unwrap();
    let mut consumer = Consumer::attach(&path).unwrap();
    let mut children: Vec<Child> = (0..WRITERS)
        .map(|_| spawn_writer(&path, EVENTS, 0))
        .collect();
    let mut seen = PerWriter::default();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut running = children.len();
    while running > 0 || consumer.lag() > 0 {
        assert!(
            Instant::now() < deadline,
            "did not finish: {:?}",
            consumer.counters()
        );
        if consumer.poll(4096, |e, _| seen.take(e.pid, e.value)) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        running = children
            .iter_mut()
            .map(|c| c.try_wait().unwrap())
            .filter(Option::is_none)
            .count();
    }
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(seen.count.len(), WRITERS as usize);
    for (pid, count) in &seen.count {
        assert_eq!(*count, EVENTS, "pid {pid}");
        assert_eq!(seen.last[pid], EVENTS - 1);
    }
    let c = consumer.counters();
    assert_eq!(
        (c.claimed, c.received, c.dropped),
        (WRITERS * EVENTS, WRITERS * EVENTS, 0)
    );
    assert!(c.identity_holds() && c.in_flight == 0);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Cheap deterministic randomness for kill delays.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn kill_storm() {
    const KILLS: usize = 60;
    let stall = Duration::from_millis(20);
    let path = temp_ring("kill");
    Ring::create_or_open(&path, RingOptions::default().capacity(16384)).unwrap();
    let mut consumer = Consumer::attach_with(
        &path,
        ConsumerOptions {
            stall_timeout: stall,
        },
    )
    .unwrap();
    let mut rng = profilis::clock::mono_ns() | 1;
    let mut seen = PerWriter::default();
    let mut worst_recovery = Duration::ZERO;
    let mut kills_mid_claim = 0;
    for round in 0..KILLS {
        let mut child = spawn_writer(&path, 0, 2048);
        let run_for = Duration::from_micros(2_000 + next(&mut rng) % 30_000);
        let until = Instant::now() + run_for;
        while Instant::now() < until {
            if consumer.poll(4096, |e, _| seen.take(e.pid, e.value)) == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        // SAFETY: kill has no memory-safety preconditions; the pid is our
        // own child, not yet reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        let killed = Instant::now();
        let abandoned_before = consumer.counters().abandoned;
        while consumer.lag() > 0 {
            assert!(
                killed.elapsed() < Duration::from_secs(10),
                "round {round}: consumer stalled: {:?}",
                consumer.counters()
            );
            if consumer.poll(4096, |e, _| seen.take(e.pid, e.value)) == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        worst_recovery = worst_recovery.max(killed.elapsed());
        let c = consumer.counters();
        if c.abandoned > abandoned_before {
            kills_mid_claim += 1;
        }
        assert!(c.identity_holds(), "round {round}: {c:?}");
        assert_eq!(
            c.received + c.dropped + c.abandoned + c.torn,
            c.claimed,
            "round {round}: {c:?}"
        );
        assert_eq!(seen.count.values().sum::<u64>(), c.received);
    }
    let c = consumer.counters();
    println!(
        "kill storm: {KILLS} kills, {kills_mid_claim} between claim and commit, \
         {} events received, {} dropped, {} abandoned, {} torn, claimed {}, \
         slowest recovery {:?} (stall timeout {:?})",
        c.received, c.dropped, c.abandoned, c.torn, c.claimed, worst_recovery, stall
    );
    assert!(
        kills_mid_claim > 0,
        "no kill landed between claim and commit"
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
