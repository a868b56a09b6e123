//! Test support. [`OwnedRing`]: a ring that lives in process memory instead
//! of a file, so the loom models and the protocol unit tests run the same
//! [`RingRef`] code without a mapping. [`run_tests`]: the test runner of the
//! integration tests that re-execute themselves as child processes.

use crate::layout::{state_words, Header, Lane, MsgSlot, Slot, StrEntry, WriterEntry};
use crate::ring::RingRef;
use crate::sync::AtomicU64;

/// Heap-allocated ring structures.
pub struct OwnedRing {
    header: Box<Header>,
    lanes: Box<[Lane]>,
    state: Box<[AtomicU64]>,
    slots: Box<[Slot]>,
    strings: Box<[StrEntry]>,
    arena: Box<[AtomicU64]>,
    messages: Box<[MsgSlot]>,
    writers: Box<[WriterEntry]>,
    overwrite: bool,
}

impl OwnedRing {
    /// A ring of `lanes` lanes (a power of two) of `lane_slots` slots each
    /// (a power of two, at least 2), a string index of `string_entries` (a
    /// power of two) over `arena_words` words, and `message_slots` (a power
    /// of two) message slots.
    pub fn new(
        lanes: usize,
        lane_slots: usize,
        overwrite: bool,
        string_entries: usize,
        arena_words: usize,
        message_slots: usize,
    ) -> OwnedRing {
        assert!(lanes.is_power_of_two());
        assert!(lane_slots.is_power_of_two() && lane_slots >= 2);
        assert!(string_entries.is_power_of_two());
        assert!(message_slots.is_power_of_two());
        OwnedRing {
            header: Box::new(Header::zeroed()),
            lanes: (0..lanes).map(|_| Lane::empty()).collect(),
            state: (0..2 * state_words(lanes as u64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            slots: (0..lanes * lane_slots).map(|_| Slot::empty()).collect(),
            strings: (0..string_entries).map(|_| StrEntry::empty()).collect(),
            arena: (0..arena_words).map(|_| AtomicU64::new(0)).collect(),
            messages: (0..message_slots).map(|_| MsgSlot::empty()).collect(),
            writers: (0..2).map(|_| WriterEntry::empty()).collect(),
            overwrite,
        }
    }

    /// A ring with only lanes and event slots (minimal tables).
    pub fn events_only(lanes: usize, lane_slots: usize, overwrite: bool) -> OwnedRing {
        OwnedRing::new(lanes, lane_slots, overwrite, 1, 0, 1)
    }

    /// A view of the structures.
    pub fn view(&self) -> RingRef<'_> {
        RingRef {
            header: &self.header,
            lanes: &self.lanes,
            state: &self.state,
            slots: &self.slots,
            strings: &self.strings,
            arena: &self.arena,
            messages: &self.messages,
            writers: &self.writers,
            lane_bits: RingRef::lane_bits_of(self.slots.len(), self.lanes.len()),
            overwrite: self.overwrite,
        }
    }
}

/// Runs the tests of an integration-test binary built without the libtest
/// harness (`harness = false`, for binaries that re-execute themselves as
/// child processes): each `(name, test)` whose name contains one of the
/// non-flag command-line arguments, or all of them when there is none, as
/// `cargo test NAME` filters, printing each name and time as it passes. A
/// failing test panics, which fails the binary.
pub fn run_tests(tests: &[(&str, fn())]) {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    for &(name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let start = std::time::Instant::now();
        test();
        println!("test {name} ... ok ({:.1}s)", start.elapsed().as_secs_f64());
    }
}
