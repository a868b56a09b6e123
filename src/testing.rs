//! A ring that lives in process memory instead of a file. The loom models
//! and the protocol unit tests use it to run the same [`RingRef`] code
//! without a mapping.

use crate::layout::{Header, MsgSlot, Slot, StrEntry, WriterEntry};
use crate::ring::RingRef;
use crate::sync::AtomicU64;

/// Heap-allocated ring structures.
pub struct OwnedRing {
    header: Box<Header>,
    slots: Box<[Slot]>,
    strings: Box<[StrEntry]>,
    arena: Box<[AtomicU64]>,
    messages: Box<[MsgSlot]>,
    writers: Box<[WriterEntry]>,
    overwrite: bool,
}

impl OwnedRing {
    /// A ring of `capacity` slots (a power of two), a string index of
    /// `string_entries` (a power of two) over `arena_words` words, and
    /// `message_slots` (a power of two) message slots.
    pub fn new(
        capacity: usize,
        overwrite: bool,
        string_entries: usize,
        arena_words: usize,
        message_slots: usize,
    ) -> OwnedRing {
        assert!(capacity.is_power_of_two() && capacity >= 2);
        assert!(string_entries.is_power_of_two());
        assert!(message_slots.is_power_of_two());
        OwnedRing {
            header: Box::new(Header::zeroed()),
            slots: (0..capacity).map(|i| Slot::free_for(i as u64)).collect(),
            strings: (0..string_entries).map(|_| StrEntry::empty()).collect(),
            arena: (0..arena_words).map(|_| AtomicU64::new(0)).collect(),
            messages: (0..message_slots).map(|_| MsgSlot::empty()).collect(),
            writers: (0..2).map(|_| WriterEntry::empty()).collect(),
            overwrite,
        }
    }

    /// A ring with only event slots (minimal tables).
    pub fn events_only(capacity: usize, overwrite: bool) -> OwnedRing {
        OwnedRing::new(capacity, overwrite, 1, 0, 1)
    }

    /// A view of the structures.
    pub fn view(&self) -> RingRef<'_> {
        RingRef {
            header: &self.header,
            slots: &self.slots,
            strings: &self.strings,
            arena: &self.arena,
            messages: &self.messages,
            writers: &self.writers,
            overwrite: self.overwrite,
        }
    }
}
