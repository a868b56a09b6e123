//! The string table: routes, function names, redacted queries and exception
//! types are interned once into the ring file and events carry 32-bit ids.
//!
//! The index is open-addressed with linear probing. A writer claims an empty
//! entry by CAS-ing its key from 0 to the string's hash, copies the text into
//! the arena (space taken with `fetch_add`), then publishes the location with
//! a Release store. Another writer that finds the same hash waits (boundedly)
//! for the location and compares the text. Everything is bounded: a full
//! index, a full arena or an entry whose writer died mid-way all end in
//! [`StrId::OVERFLOW`] and a counter, never an error or a spin without end.

use crate::hash::{hash_bytes, word_le};
use crate::layout::{StrEntry, STR_LOC_OVERFLOW, STR_LOC_READY, STR_MAX_BYTES};
use crate::record::StrId;
use crate::ring::RingRef;
use crate::sync::{spin_hint, Ordering::*};

/// Longest probe sequence before giving up with the overflow id.
const MAX_PROBES: usize = 64;
/// How long to wait for another writer to finish publishing an entry.
const READY_SPINS: usize = 10_000;

/// Cuts `text` to at most `max` bytes at a char boundary.
pub fn truncate_str(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn loc_parts(loc: u64) -> (u64, usize) {
    (loc & 0xFFFF_FFFF, ((loc >> 32) & 0x3FFF_FFFF) as usize)
}

impl<'a> RingRef<'a> {
    /// Interns `text` (cut to [`STR_MAX_BYTES`]) and returns its id.
    pub fn intern(&self, text: &str) -> StrId {
        let text = truncate_str(text, STR_MAX_BYTES);
        let bytes = text.as_bytes();
        let hash = hash_bytes(bytes);
        let mask = self.strings.len() - 1;
        let mut idx = hash as usize & mask;
        for _ in 0..MAX_PROBES.min(self.strings.len()) {
            let entry = &self.strings[idx];
            // ORDERING: Relaxed, load and claim alike: the key is the only
            // datum it carries (entries are never freed, and the claiming
            // writer stores nothing before its CAS that another reads). The
            // text is published by the Release store of `loc` and read
            // behind the Acquire load of it in `wait_ready`.
            let mut key = entry.key.load(Relaxed);
            if key == 0 {
                match entry.key.compare_exchange(0, hash, Relaxed, Relaxed) {
                    Ok(_) => return self.publish_text(idx, bytes),
                    Err(actual) => key = actual,
                }
            }
            if key == hash {
                if let Some(loc) = self.wait_ready(entry) {
                    if loc & STR_LOC_OVERFLOW != 0 {
                        break;
                    }
                    if self.text_equals(loc, bytes) {
                        return StrId(idx as u32 + 1);
                    }
                }
            }
            idx = (idx + 1) & mask;
        }
        self.header.strings_overflow.fetch_add(1, Relaxed);
        StrId::OVERFLOW
    }

    fn publish_text(&self, idx: usize, bytes: &[u8]) -> StrId {
        let entry = &self.strings[idx];
        let padded = bytes.len().div_ceil(8) as u64 * 8;
        let arena_bytes = self.arena.len() as u64 * 8;
        let mut offset = self.header.arena_used.load(Relaxed);
        let fits = loop {
            // `arena_used` lives in the file: a damaged one may hold any value.
            if offset.saturating_add(padded) > arena_bytes {
                break false;
            }
            // A CAS loop rather than fetch_add, so a request that does not
            // fit leaves the space for shorter strings.
            match self.header.arena_used.compare_exchange_weak(
                offset,
                offset + padded,
                Relaxed,
                Relaxed,
            ) {
                Ok(_) => break true,
                Err(actual) => offset = actual,
            }
        };
        if !fits {
            // ORDERING: Relaxed: the verdict is all there is to see; no
            // text goes with it.
            entry.loc.store(STR_LOC_READY | STR_LOC_OVERFLOW, Relaxed);
            self.header.strings_overflow.fetch_add(1, Relaxed);
            return StrId::OVERFLOW;
        }
        let first = (offset / 8) as usize;
        for (i, chunk) in bytes.chunks(8).enumerate() {
            self.arena[first + i].store(word_le(chunk), Relaxed);
        }
        let loc = STR_LOC_READY | (bytes.len() as u64) << 32 | offset;
        // ORDERING: Release pairs with the Acquire loads of `loc` in
        // `wait_ready` (other writers) and `resolve` (the consumer): the
        // arena words above are visible before the location is.
        entry.loc.store(loc, Release);
        StrId(idx as u32 + 1)
    }

    fn wait_ready(&self, entry: &StrEntry) -> Option<u64> {
        for _ in 0..READY_SPINS {
            // ORDERING: Acquire pairs with the Release store in `publish_text`.
            let loc = entry.loc.load(Acquire);
            if loc & STR_LOC_READY != 0 {
                return Some(loc);
            }
            spin_hint();
        }
        None
    }

    fn text_equals(&self, loc: u64, bytes: &[u8]) -> bool {
        let (offset, len) = loc_parts(loc);
        if len != bytes.len() {
            return false;
        }
        let first = (offset / 8) as usize;
        bytes.chunks(8).enumerate().all(|(i, chunk)| {
            self.arena
                .get(first + i)
                .is_some_and(|w| w.load(Relaxed) == word_le(chunk))
        })
    }

    /// Reads the text of an id. Every bound is checked against the mapped
    /// regions, so a damaged table yields an error, never an out-of-bounds
    /// read.
    pub fn resolve(&self, id: StrId) -> Result<String, ResolveError> {
        if id == StrId::NONE {
            return Err(ResolveError::None);
        }
        if id == StrId::OVERFLOW {
            return Err(ResolveError::Overflow);
        }
        let entry = self
            .strings
            .get(id.0 as usize - 1)
            .ok_or(ResolveError::OutOfRange)?;
        // ORDERING: Acquire pairs with the Release store in `publish_text`.
        let loc = entry.loc.load(Acquire);
        if loc & STR_LOC_READY == 0 {
            return Err(ResolveError::NotReady);
        }
        if loc & STR_LOC_OVERFLOW != 0 {
            return Err(ResolveError::Overflow);
        }
        let (offset, len) = loc_parts(loc);
        if offset % 8 != 0 || len > STR_MAX_BYTES {
            return Err(ResolveError::Damaged);
        }
        let first = (offset / 8) as usize;
        let words = len.div_ceil(8);
        let arena = self
            .arena
            .get(first..first + words)
            .ok_or(ResolveError::Damaged)?;
        let mut bytes = Vec::with_capacity(words * 8);
        for w in arena {
            bytes.extend_from_slice(&w.load(Relaxed).to_le_bytes());
        }
        bytes.truncate(len);
        Ok(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }
}

/// Why a string id could not be resolved to text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// Id 0: the event has no such string.
    None,
    /// The table was full when the writer interned the text.
    Overflow,
    /// The id is beyond the table.
    OutOfRange,
    /// The entry was never completed (its writer died while interning).
    NotReady,
    /// The entry points outside the arena.
    Damaged,
}

impl ResolveError {
    /// Text shown in place of the string.
    pub fn placeholder(self) -> &'static str {
        match self {
            ResolveError::None => "",
            ResolveError::Overflow => "<overflow>",
            ResolveError::OutOfRange => "<invalid-id>",
            ResolveError::NotReady => "<incomplete>",
            ResolveError::Damaged => "<damaged>",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_char_boundaries() {
        assert_eq!(truncate_str("héllo", 2), "h");
        assert_eq!(truncate_str("héllo", 3), "hé");
        assert_eq!(truncate_str("abc", 10), "abc");
    }
}

#[cfg(all(test, not(profilis_loom)))]
mod table_tests {
    use super::*;
    use crate::testing::OwnedRing;

    #[test]
    fn same_text_same_id_and_text_resolves() {
        let owned = OwnedRing::new(1, 2, false, 64, 512, 4);
        let ring = owned.view();
        let a = ring.intern("/users/{id}");
        let b = ring.intern("/orders/{id}");
        assert_ne!(a, b);
        assert_eq!(ring.intern("/users/{id}"), a);
        assert_eq!(ring.resolve(a).unwrap(), "/users/{id}");
        assert_eq!(ring.resolve(b).unwrap(), "/orders/{id}");
        assert_eq!(ring.resolve(ring.intern("")).unwrap(), "");
        assert_eq!(ring.resolve(StrId(10_000)), Err(ResolveError::OutOfRange));
        assert_eq!(ring.resolve(StrId(60)), Err(ResolveError::NotReady));
    }

    #[test]
    fn full_table_degrades_to_the_overflow_id() {
        let owned = OwnedRing::new(1, 2, false, 16, 512, 4);
        let ring = owned.view();
        let ids: Vec<StrId> = (0..40).map(|i| ring.intern(&format!("name-{i}"))).collect();
        assert!(ids.contains(&StrId::OVERFLOW));
        let good: Vec<_> = ids.iter().filter(|id| **id != StrId::OVERFLOW).collect();
        assert_eq!(good.len(), 16);
        assert!(ring.header.strings_overflow.load(Relaxed) >= 24);
        assert_eq!(ring.resolve(StrId::OVERFLOW), Err(ResolveError::Overflow));
    }

    #[test]
    fn full_arena_degrades_to_the_overflow_id() {
        let owned = OwnedRing::new(1, 2, false, 64, 4, 4);
        let ring = owned.view();
        let long = "x".repeat(40);
        assert_eq!(ring.intern(&long), StrId::OVERFLOW);
        let short = ring.intern("ok");
        assert_eq!(ring.resolve(short).unwrap(), "ok");
    }

    #[test]
    fn long_text_is_cut_at_a_char_boundary() {
        let owned = OwnedRing::new(1, 2, false, 64, 1024, 4);
        let ring = owned.view();
        let long = "é".repeat(STR_MAX_BYTES);
        let id = ring.intern(&long);
        let text = ring.resolve(id).unwrap();
        assert!(text.len() <= STR_MAX_BYTES && text.chars().all(|c| c == 'é'));
    }

    #[test]
    fn messages_round_trip_and_overwritten_ones_are_reported_lost() {
        let owned = OwnedRing::new(1, 2, false, 16, 64, 4);
        let ring = owned.view();
        let first = ring.record_message("connection reset by peer");
        assert_eq!(
            ring.read_message(first).as_deref(),
            Some("connection reset by peer")
        );
        for i in 0..4 {
            ring.record_message(&format!("later {i}"));
        }
        assert_eq!(ring.read_message(first), None);
        let long = ring.record_message(&"ü".repeat(300));
        let text = ring.read_message(long).unwrap();
        assert!(text.len() <= crate::layout::MSG_MAX_BYTES);
    }
}
