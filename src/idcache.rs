//! A bounded, lock-free, process-local map from a 64-bit key hash to an
//! interned [`StrId`]: remembers the id of text that is costly to produce
//! (redacted SQL, composed span names) so the work runs once per text.
//!
//! Direct-mapped: each key has one entry, chosen by its low bits, which holds
//! the key's high 32 bits as a tag next to the id. A colliding key simply
//! replaces the entry (the cache stays bounded and a miss only costs the slow
//! path again); a stale or foreign entry is never returned because the tag
//! must match.

use crate::record::StrId;
use crate::sync::local::{AtomicU64, Ordering::Relaxed};

/// Entries of an [`IdCache`]; a power of two.
pub(crate) const ENTRIES: usize = 4096;

pub(crate) struct IdCache {
    entries: [AtomicU64; ENTRIES],
}

impl IdCache {
    pub(crate) const fn new() -> IdCache {
        IdCache {
            entries: [const { AtomicU64::new(0) }; ENTRIES],
        }
    }

    #[inline]
    fn slot(&self, hash: u64) -> &AtomicU64 {
        &self.entries[hash as usize & (ENTRIES - 1)]
    }

    /// The id cached for `hash`, if any.
    #[inline]
    pub(crate) fn get(&self, hash: u64) -> Option<StrId> {
        // Relaxed: the entry is a single word carrying both tag and id;
        // nothing else is published through it.
        let entry = self.slot(hash).load(Relaxed);
        (entry != 0 && entry >> 32 == hash >> 32).then_some(StrId(entry as u32))
    }

    /// Remembers `id` for `hash`. The overflow id is not cached, so a later
    /// call retries interning once the string table has room.
    #[inline]
    pub(crate) fn insert(&self, hash: u64, id: StrId) {
        if id == StrId::NONE || id == StrId::OVERFLOW {
            return;
        }
        self.slot(hash)
            .store((hash >> 32) << 32 | id.0 as u64, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_only_what_was_stored_for_the_same_key() {
        let cache = Box::new(IdCache::new());
        let a = 0x1234_5678_0000_0001u64;
        let b = 0x8765_4321_0000_0001u64; // same entry, other tag
        assert_eq!(cache.get(a), None);
        cache.insert(a, StrId(7));
        assert_eq!(cache.get(a), Some(StrId(7)));
        assert_eq!(cache.get(b), None);
        cache.insert(b, StrId(9));
        assert_eq!(cache.get(b), Some(StrId(9)));
        assert_eq!(cache.get(a), None);
        cache.insert(a, StrId::OVERFLOW);
        assert_eq!(cache.get(a), None);
    }
}
