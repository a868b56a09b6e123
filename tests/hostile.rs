//! Hostile and damaged ring files: each gives a clear, typed error or a
//! counted skip; never a panic, a hang or an out-of-bounds read.

use profilis::layout::{seq_committed, Params, LANE_BYTES, MAX_LANE_POSITION, STATE_FIXED_WORDS};
use profilis::{Consumer, HeaderError, OpenError, Ring, RingOptions, StrId};
use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "profilis-hostile-{tag}-{}-{}",
            std::process::id(),
            profilis::clock::mono_ns()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn ring(&self, name: &str) -> PathBuf {
        let path = self.0.join(name);
        Ring::create_or_open(&path, RingOptions::default().capacity(64)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn poke(path: &Path, offset: u64, value: u64) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(&value.to_le_bytes(), offset).unwrap();
}

fn header_error(path: &Path) -> HeaderError {
    match Consumer::attach(path) {
        Err(OpenError::Header { source, .. }) => source,
        Err(other) => panic!("expected a header error, got {other}"),
        Ok(_) => panic!("expected a header error, attach succeeded"),
    }
}

fn params(path: &Path) -> Params {
    Ring::open(path).unwrap().info().params
}

#[test]
fn wrong_magic() {
    let dir = TempDir::new("magic");
    let path = dir.ring("r.ring");
    poke(&path, 0, u64::from_le_bytes(*b"NOTARING"));
    assert!(matches!(header_error(&path), HeaderError::BadMagic { .. }));
}

#[test]
fn future_version() {
    let dir = TempDir::new("version");
    let path = dir.ring("r.ring");
    poke(&path, 8, 4);
    let err = header_error(&path);
    assert_eq!(
        err,
        HeaderError::UnsupportedVersion {
            found: 4,
            supported: 3
        }
    );
    assert!(err.to_string().contains("version 4 is not supported"));
}

#[test]
fn capacity_not_a_power_of_two() {
    let dir = TempDir::new("pow2");
    let path = dir.ring("r.ring");
    poke(&path, 24, 100);
    assert!(matches!(header_error(&path), HeaderError::BadParams(_)));
}

#[test]
fn capacity_larger_than_the_file() {
    let dir = TempDir::new("bigcap");
    let path = dir.ring("r.ring");
    // A consistent header (stated size matches the parameters) for a
    // capacity the file does not have.
    let mut p = params(&path);
    p.capacity = 1 << 16;
    poke(&path, 24, p.capacity);
    poke(&path, 72, p.file_bytes());
    assert!(matches!(header_error(&path), HeaderError::Truncated { .. }));
}

#[test]
fn truncated_file() {
    let dir = TempDir::new("trunc");
    let path = dir.ring("r.ring");
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(params(&path).file_bytes() - 1).unwrap();
    assert!(matches!(header_error(&path), HeaderError::Truncated { .. }));
    file.set_len(100).unwrap();
    assert!(matches!(header_error(&path), HeaderError::Truncated { .. }));
    file.set_len(0).unwrap();
    assert!(matches!(header_error(&path), HeaderError::Truncated { .. }));
}

#[test]
fn symlink_in_place_of_the_ring() {
    let dir = TempDir::new("symlink");
    let target = dir.ring("real.ring");
    let link = dir.0.join("link.ring");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(matches!(
        Consumer::attach(&link),
        Err(OpenError::Symlink(_))
    ));
    assert!(matches!(Ring::open(&link), Err(OpenError::Symlink(_))));
    // Creating through a dangling symlink is refused too: nothing is
    // created at the link's target.
    let dangling = dir.0.join("dangling.ring");
    let victim = dir.0.join("victim");
    std::os::unix::fs::symlink(&victim, &dangling).unwrap();
    assert!(Ring::create_or_open(&dangling, RingOptions::default()).is_err());
    assert!(!victim.exists());
}

#[test]
fn world_writable_or_group_readable_ring() {
    let dir = TempDir::new("mode");
    let path = dir.ring("r.ring");
    for mode in [0o666, 0o640, 0o602] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        match Consumer::attach(&path) {
            Err(OpenError::InsecureMode { mode: found, .. }) => assert_eq!(found, mode),
            other => panic!("mode {mode:o}: {:?}", other.err()),
        }
    }
}

#[test]
fn ring_owned_by_another_user() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        let dir = TempDir::new("owner");
        let path = dir.ring("r.ring");
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        let err = Consumer::attach(&path).err().expect("refused");
        assert!(
            matches!(
                err,
                OpenError::NotOwner {
                    owner: 65534,
                    euid: 0,
                    ..
                }
            ),
            "{err}"
        );
    } else {
        // Without root we cannot give a file away; a root-owned file will do.
        let err = Consumer::attach("/etc/passwd").err().expect("refused");
        assert!(matches!(err, OpenError::NotOwner { owner: 0, .. }), "{err}");
    }
}

#[test]
fn not_a_regular_file() {
    let dir = TempDir::new("dir");
    let sub = dir.0.join("sub.ring");
    std::fs::create_dir(&sub).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(Consumer::attach(&sub).is_err());
}

#[test]
fn garbage_slots_are_counted_not_delivered() {
    let dir = TempDir::new("slots");
    let path = dir.ring("r.ring");
    let ring = Ring::open(&path).unwrap();
    for i in 0..8 {
        ring.emit_fn("f", i, false);
    }
    let p = params(&path);
    assert_eq!(p.lanes, 1, "a 64-slot ring has one lane");
    let slot = |i: u64| p.slots_offset() + i * 128;
    // Slot 2: committed sequence, record words overwritten with garbage.
    poke(&path, slot(2) + 8 + 40, 0xDEAD_BEEF);
    // Slot 5: a whole record from another position (stamp mismatch).
    poke(&path, slot(5) + 8, 1234);
    // Slot 6: a sequence word no protocol step writes.
    poke(&path, slot(6), seq_committed(999) + 77);
    let mut consumer = Consumer::attach(&path).unwrap();
    let mut got = Vec::new();
    while consumer.lag() > 0 {
        consumer.poll(100, |e, _| got.push(e.dur_ns));
    }
    assert_eq!(got, vec![0, 1, 3, 4, 7]);
    let c = consumer.counters();
    assert_eq!(c.torn, 3, "{c:?}");
    assert!(c.identity_holds() && c.in_flight == 0);
}

/// Offset of word `word` of lane `lane`'s descriptor.
fn lane_word(p: &Params, lane: u64, word: u64) -> u64 {
    p.lanes_offset() + lane * LANE_BYTES + word * 8
}
/// `tail` and `head` of a lane descriptor, as word indexes.
const TAIL: u64 = 3;
const HEAD: u64 = 16;

#[test]
fn a_record_beyond_the_lane_tail_is_never_delivered() {
    let dir = TempDir::new("beyond");
    let path = dir.ring("r.ring");
    let ring = Ring::open(&path).unwrap();
    for i in 0..3 {
        ring.emit_fn("f", i, false);
    }
    // A well-formed record for position 3, which nobody wrote (the tail is
    // 3): copied from slot 0 with its stamp and checksum redone.
    let p = params(&path);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut words = [0u64; profilis::layout::RECORD_WORDS];
    let mut buf = [0u8; 8];
    for (i, w) in words.iter_mut().enumerate() {
        file.read_exact_at(&mut buf, p.slots_offset() + 8 + i as u64 * 8)
            .unwrap();
        *w = u64::from_le_bytes(buf);
    }
    let event = profilis::Event::decode(0, &words).unwrap();
    let forged = event.encode(3);
    for (i, w) in forged.iter().enumerate() {
        poke(&path, p.slots_offset() + 3 * 128 + 8 + i as u64 * 8, *w);
    }
    poke(&path, p.slots_offset() + 3 * 128, seq_committed(3));
    let mut consumer = Consumer::attach(&path).unwrap();
    let mut got = Vec::new();
    while consumer.poll(100, |e, _| got.push(e.position)) > 0 {}
    assert_eq!(got, vec![0, 1, 2], "the forged record is not delivered");
    let c = consumer.counters();
    assert!(c.identity_holds() && c.head == 3 && c.tail == 3, "{c:?}");
    // The writer of position 3 writes over it, and that is what is read.
    assert_eq!(ring.emit_fn("f", 33, false), profilis::Emit::Written);
    let mut got = Vec::new();
    consumer.poll(100, |e, _| got.push((e.position, e.dur_ns)));
    assert_eq!(got, vec![(3, 33)]);
    assert!(consumer.counters().identity_holds());
}

#[test]
fn impossible_lane_positions_are_repaired_at_once_never_waited_out() {
    let dir = TempDir::new("positions");
    let path = dir.ring("r.ring");
    let ring = Ring::open(&path).unwrap();
    let p = params(&path);
    let lane_slots = p.lane_slots();
    let mut consumer = Consumer::attach(&path).unwrap();
    for tail in [
        100,                   // beyond one lap ahead of the head (drop-newest)
        10 * lane_slots,       // ten laps ahead
        u64::MAX - 1,          // near 2^64
        MAX_LANE_POSITION + 1, // past the position limit
    ] {
        poke(&path, lane_word(&p, 0, TAIL), tail);
        let start = std::time::Instant::now();
        assert_eq!(consumer.poll(4096, |_, _| {}), 0);
        assert!(start.elapsed().as_millis() < 100, "{:?}", start.elapsed());
        let found = consumer.take_anomalies();
        assert_eq!(found.len(), 1, "tail {tail}: reported once");
        assert_eq!((found[0].lane, found[0].tail), (0, tail));
        let c = consumer.counters();
        assert!(c.identity_holds() && c.in_flight == 0, "{c:?}");
    }
    assert_eq!(consumer.counters().repairs, 4);
    // The lane works again: a new holder goes on from the repaired tail.
    drop(ring);
    let ring = Ring::open(&path).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| assert_eq!(ring.emit_fn("f", 5, false), profilis::Emit::Written));
    });
    let mut got = Vec::new();
    consumer.poll(100, |e, _| got.push(e.dur_ns));
    assert_eq!(got, vec![5]);
}

#[test]
fn counters_near_2_64_in_the_file_never_panic() {
    let dir = TempDir::new("huge");
    let path = dir.ring("r.ring");
    let ring = Ring::open(&path).unwrap();
    ring.emit_fn("f", 1, false);
    let p = params(&path);
    poke(&path, lane_word(&p, 0, 4), u64::MAX); // lane `dropped`
    poke(&path, 128, u64::MAX - 1); // header `dropped_no_lane`
    let mut consumer = Consumer::attach(&path).unwrap();
    consumer.poll(100, |_, _| {});
    let c = consumer.counters();
    assert_eq!((c.received, c.dropped_full), (1, u64::MAX));
    let theirs = ring.counters().expect("a snapshot");
    assert_eq!(theirs.dropped_full, u64::MAX);
    // Writers go on counting without wrapping into small numbers or
    // panicking.
    let full =
        Ring::create_or_open(dir.0.join("full.ring"), RingOptions::default().capacity(2)).unwrap();
    let fp = full.info().params;
    poke(&dir.0.join("full.ring"), lane_word(&fp, 0, 4), u64::MAX);
    for i in 0..4 {
        full.emit_fn("f", i, false);
    }
}

#[test]
fn inconsistent_consumer_state_is_refused() {
    let dir = TempDir::new("state");
    let path = dir.ring("r.ring");
    let p = params(&path);
    // Copy 0 (current at version 0): a lane head with no outcome counted.
    poke(
        &path,
        p.state_offset() + STATE_FIXED_WORDS as u64 * 8,
        1_000,
    );
    match Consumer::attach(&path) {
        Err(e @ OpenError::InconsistentState { .. }) => {
            assert!(e.to_string().contains("do not add up"), "{e}")
        }
        other => panic!("{:?}", other.err()),
    }
    // Counters that overflow when added up.
    poke(&path, p.state_offset(), u64::MAX);
    poke(&path, p.state_offset() + 8, 2);
    assert!(matches!(
        Consumer::attach(&path),
        Err(OpenError::InconsistentState { .. })
    ));
}

#[test]
fn a_ring_of_another_format_version_is_refused_naming_both() {
    let dir = TempDir::new("v1");
    let path = dir.ring("r.ring");
    poke(&path, 8, 1);
    let err = Consumer::attach(&path).err().expect("refused");
    assert_eq!(
        err.report(),
        format!(
            "ring file {}: ring format version 1 is not supported (this library reads version 3)",
            path.display()
        )
    );
    // The cause is the error's source, not repeated in its own message.
    assert_eq!(err.to_string(), format!("ring file {}", path.display()));
    assert!(Ring::open(&path).is_err());
}

#[test]
fn writers_on_a_damaged_ring_refuse_instead_of_spinning() {
    let dir = TempDir::new("writer");
    let path = dir.ring("r.ring");
    let p = params(&path);
    // The lane's positions at the limit: nothing more fits.
    poke(&path, lane_word(&p, 0, TAIL), MAX_LANE_POSITION);
    poke(&path, lane_word(&p, 0, HEAD), MAX_LANE_POSITION);
    let ring = Ring::open(&path).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..10 {
                assert_eq!(ring.emit_fn("f", i, false), profilis::Emit::Dropped);
            }
        });
    });
}

#[test]
fn string_ids_out_of_range_resolve_to_placeholders() {
    let dir = TempDir::new("strings");
    let path = dir.ring("r.ring");
    let ring = Ring::open(&path).unwrap();
    ring.emit_fn(StrId(999_999), 1, false);
    ring.emit_fn(StrId(3_000), 1, false); // in range, never interned
    ring.emit_fn(StrId::OVERFLOW, 1, false);
    let p = params(&path);
    // A string entry pointing outside the arena.
    let id = ring.intern("victim");
    let entry = p.strings_offset() + (id.0 as u64 - 1) * 16;
    poke(
        &path,
        entry + 8,
        (1 << 63) | (16u64 << 32) | (p.arena_bytes + 4096),
    );
    ring.emit_fn(id, 1, false);
    let mut consumer = Consumer::attach(&path).unwrap();
    let mut names = Vec::new();
    consumer.poll(100, |e, n| names.push(n.name(e.name).to_string()));
    assert_eq!(
        names,
        ["<invalid-id>", "<incomplete>", "<overflow>", "<damaged>"]
    );
    assert_eq!(consumer.names().unresolved(), 4);
}
