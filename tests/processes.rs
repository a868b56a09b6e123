//! Real processes writing into one ring: many writers in parallel, a writer
//! SIGKILLed at random points while the consumer drains, and a process
//! whose eight threads are all killed in the middle of an event.
//!
//! The binary re-executes itself as the writer (`PROFILIS_TEST_ROLE=writer`),
//! so it runs without the test harness (`harness = false` in Cargo.toml).

use profilis::{Consumer, ConsumerOptions, Fields, Kind, Ring, RingOptions};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROLE: &str = "PROFILIS_TEST_ROLE";

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("writer") => return writer(),
        Ok("claimers") => return claimers(),
        _ => {}
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
        (
            "eight_threads_killed_mid_event_hold_up_nobody",
            eight_threads_killed_mid_event,
        ),
        (
            "overwrite_ring_keeps_recording_past_a_dead_writer",
            overwrite_past_a_dead_writer,
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

/// Writer process of `PROFILIS_TEST_THREADS` threads: each emits 10 events
/// (values 0..10), then begins one more and never finishes it. Prints
/// `ready` once every thread is in the middle of its event, then waits to
/// be killed.
fn claimers() {
    let path = PathBuf::from(std::env::var("PROFILIS_RING").unwrap());
    let threads: usize = std::env::var("PROFILIS_TEST_THREADS")
        .unwrap()
        .parse()
        .unwrap();
    let ring = Ring::open(&path).unwrap();
    let name = ring.intern("claimer");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(threads + 1));
    for _ in 0..threads {
        let (ring, barrier) = (ring.clone(), barrier.clone());
        std::thread::spawn(move || {
            for seq in 0..10 {
                let fields = Fields {
                    value: seq,
                    ..Fields::default()
                };
                ring.record(Kind::Fn, name, &fields);
            }
            let claim = ring.claim().expect("a lane");
            barrier.wait();
            std::thread::park();
            drop(claim);
        });
    }
    barrier.wait();
    println!("ready");
    loop {
        std::thread::park();
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

/// Tracks, per writer thread, the sequence numbers received: strictly
/// increasing means in order and without duplicates.
#[derive(Default)]
struct PerWriter {
    last: HashMap<(u32, u32), u64>,
    count: HashMap<(u32, u32), u64>,
}

impl PerWriter {
    fn take(&mut self, e: &profilis::Event) {
        let key = (e.pid, e.tid);
        if let Some(&last) = self.last.get(&key) {
            assert!(e.value > last, "{key:?}: seq {} after {last}", e.value);
        }
        self.last.insert(key, e.value);
        *self.count.entry(key).or_default() += 1;
    }
}

fn four_writers() {
    const WRITERS: u64 = 4;
    const EVENTS: u64 = 100_000;
    let path = temp_ring("four");
    // Four lanes of 2^17 slots: each writer's 100,000 events fit in its lane
    // even while the consumer sleeps.
    Ring::create_or_open(&path, RingOptions::default().capacity(1 << 19).lanes(4)).unwrap();
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
        if consumer.poll(4096, |e, _| seen.take(e)) == 0 {
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
    assert_eq!(
        seen.count.len(),
        WRITERS as usize,
        "{:?} {:?}",
        consumer.counters(),
        consumer.lanes()
    );
    for (writer, count) in &seen.count {
        assert_eq!(
            *count,
            EVENTS,
            "{writer:?} {:?} {:?}",
            consumer.counters(),
            consumer.lanes()
        );
        assert_eq!(seen.last[writer], EVENTS - 1);
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

/// Drains until the writer `pid` holds no lane any more (the consumer saw
/// it gone and took its lanes back) and nothing is left to read.
fn drain_after_death(consumer: &mut Consumer, seen: &mut PerWriter, pid: u32, what: &str) {
    let killed = Instant::now();
    while consumer.lag() > 0 || consumer.lanes().iter().any(|l| l.pid == pid) {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "{what}: consumer did not recover: {:?}",
            consumer.counters()
        );
        if consumer.poll(4096, |e, _| seen.take(e)) == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn kill_storm() {
    const KILLS: usize = 60;
    let liveness = Duration::from_millis(20);
    let path = temp_ring("kill");
    Ring::create_or_open(&path, RingOptions::default().capacity(16384)).unwrap();
    let mut consumer = Consumer::attach_with(
        &path,
        ConsumerOptions {
            liveness_interval: liveness,
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
            if consumer.poll(4096, |e, _| seen.take(e)) == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        // SAFETY: kill has no memory-safety preconditions; the pid is our
        // own child, not yet reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        let killed = Instant::now();
        let abandoned_before = consumer.counters().abandoned;
        drain_after_death(
            &mut consumer,
            &mut seen,
            child.id(),
            &format!("round {round}"),
        );
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
         slowest lane take-back {:?} (liveness check every {:?})",
        c.received, c.dropped, c.abandoned, c.torn, c.claimed, worst_recovery, liveness
    );
    assert!(
        kills_mid_claim > 0,
        "no kill landed between claim and commit"
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Bug: each dead claim held the consumer up for a stall timeout of its
/// own, so a process killed with eight threads mid-event delayed the next
/// event by eight timeouts (404 ms at 50 ms each). With lanes, the next
/// event of another writer is delivered at once, the dead threads' complete
/// events are all delivered, and their begun events count as abandoned as
/// soon as the consumer sees the process gone.
fn eight_threads_killed_mid_event() {
    const THREADS: usize = 8;
    let stall_budget = Duration::from_millis(50);
    let path = temp_ring("eight");
    let ring =
        Ring::create_or_open(&path, RingOptions::default().capacity(1 << 16).lanes(16)).unwrap();
    let mut consumer = Consumer::attach(&path).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, "claimers")
        .env("PROFILIS_RING", &path)
        .env("PROFILIS_TEST_THREADS", THREADS.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn claimers");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    // SAFETY: kill has no memory-safety preconditions; the pid is our own
    // child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();

    // An event written after the kill, by a live writer.
    let marker = 987_654_321;
    let fields = Fields {
        value: marker,
        ..Fields::default()
    };
    ring.record(Kind::Fn, ring.intern("after"), &fields);
    let written = Instant::now();
    let mut seen = PerWriter::default();
    let mut delay = None;
    while delay.is_none() {
        assert!(
            written.elapsed() < Duration::from_secs(10),
            "never delivered"
        );
        consumer.poll(4096, |e, _| {
            if e.value == marker {
                delay = Some(written.elapsed());
            } else {
                seen.take(e);
            }
        });
    }
    let delay = delay.unwrap();
    println!("event after the kill delivered in {delay:?}");
    assert!(
        delay < stall_budget,
        "the dead threads held the next event up for {delay:?}"
    );
    drain_after_death(&mut consumer, &mut seen, child.id(), "eight threads");
    // Each begun event is charged to the process that began it (its
    // threads stamped their claims), never to another writer.
    let (losses, untold) = consumer.take_losses();
    assert_eq!((losses.len(), untold), (THREADS, 0));
    assert!(losses.iter().all(|l| l.pid == child.id()), "{losses:?}");
    let c = consumer.counters();
    assert_eq!(seen.count.values().sum::<u64>(), THREADS as u64 * 10);
    assert_eq!(
        (c.abandoned, c.received),
        (THREADS as u64, THREADS as u64 * 10 + 1)
    );
    assert!(c.identity_holds() && c.in_flight == 0, "{c:?}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Bug: in an overwrite-oldest ring, one claim left by a dead writer made
/// every later writer refuse its events forever (they could only steal
/// committed slots), with no reader attached to skip it. With lanes, a dead
/// writer's begun event stops only its own lane: the others keep recording,
/// and the counters add up once a reader attaches.
fn overwrite_past_a_dead_writer() {
    let path = temp_ring("overwrite");
    Ring::create_or_open(
        &path,
        RingOptions::default()
            .capacity(8)
            .lanes(2)
            .policy(profilis::FullPolicy::OverwriteOldest),
    )
    .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, "claimers")
        .env("PROFILIS_RING", &path)
        .env("PROFILIS_TEST_THREADS", "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn claimer");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    // SAFETY: kill has no memory-safety preconditions; the pid is our own
    // child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();

    // No reader: the dead writer's lane stays taken, and writers go on in
    // the other one, overwriting their own oldest events.
    let ring = Ring::open(&path).unwrap();
    for i in 0..20 {
        let fields = Fields {
            value: 1000 + i,
            ..Fields::default()
        };
        assert_eq!(
            ring.record(Kind::Fn, ring.intern("later"), &fields),
            profilis::Emit::Written,
            "event {i}"
        );
    }
    let mut consumer = Consumer::attach(&path).unwrap();
    let mut got = Vec::new();
    let start = Instant::now();
    while consumer.lag() > 0 || consumer.lanes().iter().any(|l| l.pid == child.id()) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            consumer.counters()
        );
        consumer.poll(64, |e, _| got.push(e.value));
        std::thread::sleep(Duration::from_millis(1));
    }
    // The dead writer's lane of 4 slots: its events 7, 8, 9 and the one it
    // began (which took the slot of event 6); the live writer's lane: its
    // last 4 events.
    got.sort();
    assert_eq!(got, vec![7, 8, 9, 1016, 1017, 1018, 1019]);
    let c = consumer.counters();
    assert_eq!(
        (c.claimed, c.received, c.overwritten, c.abandoned),
        (31, 7, 23, 1),
        "{c:?}"
    );
    assert!(c.identity_holds() && c.in_flight == 0, "{c:?}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
