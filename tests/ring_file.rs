//! A user's path through ring files: create, write, attach, drain, restart,
//! and the typed errors for files that are not usable rings.

use profilis::{
    Consumer, Counters, Emit, FullPolicy, HeaderError, Kind, OpenError, Ring, RingOptions,
};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "profilis-{tag}-{}-{}",
            std::process::id(),
            profilis::clock::mono_ns()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn small() -> RingOptions {
    RingOptions::default().capacity(64)
}

#[test]
fn events_written_by_the_library_are_read_back_with_their_names() {
    let dir = TempDir::new("names");
    let path = dir.path("app.ring");
    let ring = Ring::create_or_open(&path, small().service("checkout")).unwrap();
    assert_eq!(ring.emit_req("/users/{id}", 200, 1_500), Emit::Written);
    assert_eq!(
        ring.emit_fn(profilis::name!("load_user"), 700, true),
        Emit::Written
    );
    assert_eq!(
        ring.emit_db("SELECT * FROM t WHERE id = ?", 300, 4),
        Emit::Written
    );
    assert_eq!(ring.emit_custom("queue_depth", 12.5), Emit::Written);
    {
        let _span = ring.span("outer");
        ring.emit_fn("inner", 10, false);
    }
    let mut consumer = Consumer::attach(&path).unwrap();
    let mut seen = Vec::new();
    consumer.poll(100, |e, names| {
        seen.push((*e, names.name(e.name).to_string()))
    });
    let kinds: Vec<_> = seen.iter().map(|(e, n)| (e.kind, n.as_str())).collect();
    assert_eq!(
        kinds,
        vec![
            (Kind::Req, "/users/{id}"),
            (Kind::Fn, "load_user"),
            (Kind::Db, "SELECT * FROM t WHERE id = ?"),
            (Kind::Custom, "queue_depth"),
            (Kind::Fn, "inner"),
            (Kind::Fn, "outer"),
        ]
    );
    let (req, fn_err, db, custom) = (&seen[0].0, &seen[1].0, &seen[2].0, &seen[3].0);
    assert_eq!(
        (req.status, req.dur_ns, req.pid),
        (200, 1_500, std::process::id())
    );
    assert!(fn_err.is_error());
    assert_eq!(db.value, 4);
    assert_eq!(custom.custom_value(), 12.5);
    // The inner event carries the outer span as its span.
    let (inner, outer) = (&seen[4].0, &seen[5].0);
    assert_eq!(inner.span_id, outer.span_id);
    assert_eq!(inner.trace_id, outer.trace_id);
    assert_ne!(outer.trace_id, 0);
    // The writer table knows this process and its service.
    let writers = consumer.writers();
    assert_eq!(writers.len(), 1);
    assert_eq!(writers[0].pid, std::process::id());
    assert_eq!(writers[0].service.as_deref(), Some("checkout"));
    assert!(writers[0].alive);
    assert_eq!(seen[0].0.writer, writers[0].index);
    let c = consumer.counters();
    assert_eq!((c.claimed, c.received, c.in_flight), (6, 6, 0));
}

#[test]
fn wall_clock_timestamps_are_close_to_now() {
    let dir = TempDir::new("wall");
    let path = dir.path("w.ring");
    let ring = Ring::create_or_open(&path, small()).unwrap();
    ring.emit_fn("f", 1, false);
    let mut consumer = Consumer::attach(&path).unwrap();
    let now = profilis::clock::wall_ns();
    let batch = consumer.read(10);
    let ts = batch.wall_ns(&batch.events[0]);
    assert!(ts.abs_diff(now) < 5_000_000_000, "ts {ts} now {now}");
}

#[test]
fn a_restarted_consumer_continues_where_the_last_one_stopped() {
    let dir = TempDir::new("restart");
    let path = dir.path("r.ring");
    let ring = Ring::create_or_open(&path, RingOptions::default().capacity(256)).unwrap();
    let name = ring.intern("f");
    let mut got = Vec::new();
    for round in 0..5u64 {
        for i in 0..40 {
            ring.emit_fn(name, round * 100 + i, false);
        }
        let mut consumer = Consumer::attach(&path).unwrap();
        consumer.poll(25, |e, _| got.push(e.dur_ns));
        // Dropped here: the next consumer resumes after what was committed.
    }
    let mut consumer = Consumer::attach(&path).unwrap();
    while consumer.lag() > 0 {
        consumer.poll(1000, |e, _| got.push(e.dur_ns));
    }
    let expected: Vec<u64> = (0..5)
        .flat_map(|r| (0..40).map(move |i| r * 100 + i))
        .collect();
    assert_eq!(got, expected);
    assert!(consumer.counters().identity_holds());
}

#[test]
fn only_one_consumer_at_a_time() {
    let dir = TempDir::new("busy");
    let path = dir.path("b.ring");
    Ring::create_or_open(&path, small()).unwrap();
    let first = Consumer::attach(&path).unwrap();
    assert!(matches!(Consumer::attach(&path), Err(OpenError::Busy(_))));
    drop(first);
    Consumer::attach(&path).unwrap();
}

#[test]
fn an_existing_ring_keeps_its_creators_shape() {
    let dir = TempDir::new("shape");
    let path = dir.path("s.ring");
    let a = Ring::create_or_open(&path, RingOptions::default().capacity(128)).unwrap();
    let b = Ring::create_or_open(
        &path,
        RingOptions::default()
            .capacity(1024)
            .policy(FullPolicy::OverwriteOldest),
    )
    .unwrap();
    assert_eq!(b.info().params.capacity, 128);
    assert_eq!(b.info().policy, FullPolicy::DropNewest);
    assert_eq!(a.info().ring_id, b.info().ring_id);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn overwrite_oldest_keeps_the_newest_events() {
    let dir = TempDir::new("overwrite");
    let path = dir.path("o.ring");
    let ring = Ring::create_or_open(&path, small().policy(FullPolicy::OverwriteOldest)).unwrap();
    for i in 0..200 {
        assert_eq!(ring.emit_fn("f", i, false), Emit::Written);
    }
    let mut consumer = Consumer::attach(&path).unwrap();
    let mut got = Vec::new();
    while consumer.lag() > 0 {
        consumer.poll(1000, |e, _| got.push(e.dur_ns));
    }
    assert_eq!(got, (136..200).collect::<Vec<_>>());
    let c = consumer.counters();
    assert_eq!(
        (c.claimed, c.received, c.dropped, c.overwritten),
        (200, 64, 136, 136)
    );
}

#[test]
fn an_open_claim_holds_up_nobody_and_a_dropped_one_counts_as_abandoned() {
    let dir = TempDir::new("claim");
    let path = dir.path("st.ring");
    let ring = Ring::create_or_open(&path, small().lanes(4)).unwrap();
    let mut consumer = Consumer::attach(&path).unwrap();
    let claim = ring.claim().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| ring.emit_fn("after", 5, false));
    });
    // Delivered by the first read: the open claim is in another lane.
    let mut got = Vec::new();
    consumer.poll(10, |e, _| got.push(e.dur_ns));
    assert_eq!(got, vec![5]);
    let position = claim.position();
    drop(claim);
    assert_eq!(consumer.poll(10, |_, _| {}), 0);
    let c = consumer.counters();
    assert_eq!((c.abandoned, c.received, c.in_flight), (1, 1, 0));
    let (losses, _) = consumer.take_losses();
    assert_eq!(losses.len(), 1);
    assert_eq!(
        (losses[0].position, losses[0].cause),
        (position, profilis::LossCause::Abandoned)
    );
    // `claim` stamped who began the event: the loss names the writer.
    assert_eq!((losses[0].pid, losses[0].writer), (std::process::id(), 0));
    // A committed claim is delivered like any event.
    let claim = ring.claim().unwrap();
    let event = profilis::event_now(Kind::Fn, profilis::StrId::NONE, &Default::default());
    assert_eq!(claim.commit(&event), Emit::Written);
    assert_eq!(consumer.poll(10, |_, _| {}), 1);
}

#[test]
fn files_that_are_not_usable_rings_give_typed_errors() {
    let dir = TempDir::new("errors");
    let missing = dir.path("missing.ring");
    assert!(matches!(
        Consumer::attach(&missing),
        Err(OpenError::NotFound(_))
    ));

    let garbage = dir.path("garbage.ring");
    std::fs::write(&garbage, vec![7u8; 8192]).unwrap();
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        Consumer::attach(&garbage),
        Err(OpenError::Header {
            source: HeaderError::BadMagic { .. },
            ..
        })
    ));

    let short = dir.path("short.ring");
    std::fs::write(&short, b"PROFILIS").unwrap();
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        Consumer::attach(&short),
        Err(OpenError::Header {
            source: HeaderError::Truncated { .. },
            ..
        })
    ));

    let good = dir.path("good.ring");
    Ring::create_or_open(&good, small()).unwrap();
    let link = dir.path("link.ring");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    assert!(matches!(
        Consumer::attach(&link),
        Err(OpenError::Symlink(_))
    ));
    assert!(matches!(
        Ring::create_or_open(&link, small()),
        Err(OpenError::Symlink(_))
    ));

    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(matches!(
        Consumer::attach(&good),
        Err(OpenError::InsecureMode { mode: 0o666, .. })
    ));

    let bad = dir.path("bad.ring");
    assert!(matches!(
        Ring::create_or_open(&bad, RingOptions::default().capacity(1000)),
        Err(OpenError::InvalidOptions(_))
    ));
    let message = Consumer::attach(&garbage).err().unwrap().report();
    assert!(message.contains("not a Profilis ring file"), "{message}");
}

#[test]
fn a_ring_file_truncated_while_mapped_does_not_kill_reader_or_writer() {
    let dir = TempDir::new("truncate");
    let path = dir.path("t.ring");
    let ring = Ring::create_or_open(&path, small()).unwrap();
    for i in 0..10 {
        ring.emit_fn("f", i, false);
    }
    let mut consumer = Consumer::attach(&path).unwrap();
    assert_eq!(consumer.read(4).events.len(), 4);
    consumer.commit();
    // Someone truncates the file to its header while both have it mapped.
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(4096).unwrap();
    // The consumer touches the vanished slot pages before its next size
    // check: the fault is survived and the ring reported truncated.
    let batch = consumer.read(100);
    assert!(batch.events.is_empty());
    assert!(consumer.truncated());
    consumer.commit();
    // The writer's next emits touch vanished pages too, and it lives on.
    for i in 0..100 {
        ring.emit_fn("g", i, false);
    }
    // A fresh attach refuses the short file with a clear error.
    assert!(matches!(
        Consumer::attach(&path),
        Err(OpenError::Busy(_))
            | Err(OpenError::Header {
                source: HeaderError::Truncated { .. },
                ..
            })
    ));
    drop(consumer);
    assert!(matches!(
        Consumer::attach(&path),
        Err(OpenError::Header {
            source: HeaderError::Truncated { .. },
            ..
        })
    ));
}

/// Bug: a counters reader in another thread or process (the C ABI's
/// `profilis_read_counters`, Python's `counters()`) could see a consumer
/// state copy half written, or a batch counted twice while it was being
/// committed. Every snapshot taken while a consumer commits must add up.
#[test]
fn counters_read_while_the_consumer_commits_always_add_up() {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    let dir = TempDir::new("counters");
    let path = dir.path("c.ring");
    let ring =
        Ring::create_or_open(&path, RingOptions::default().capacity(1 << 12).lanes(2)).unwrap();
    let mut consumer = Consumer::attach(&path).unwrap();
    let done = AtomicBool::new(false);
    let snapshots = std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..200_000u64 {
                ring.emit_fn("w", i, false);
            }
            done.store(true, Relaxed);
        });
        let reader = s.spawn(|| {
            let mut n = 0u64;
            let mut last = Counters::default();
            while !done.load(Relaxed) || n < 1000 {
                let c = ring.counters().expect("a snapshot");
                assert!(c.identity_holds(), "{c:?}");
                assert!(
                    c.received >= last.received && c.claimed >= last.claimed,
                    "{last:?} -> {c:?}"
                );
                last = c;
                n += 1;
            }
            n
        });
        while !done.load(Relaxed) || consumer.lag() > 0 {
            // Small batches: many commits for the snapshots to race.
            consumer.poll(7, |_, _| {});
        }
        reader.join().unwrap()
    });
    assert!(snapshots >= 1000);
    let c = consumer.counters();
    assert_eq!(c.received + c.dropped, 200_000, "{c:?}");
    assert_eq!(ring.counters(), Some(c));
}
