//! A table whose number of keys is bounded: past the maximum, new keys
//! share the entry of one overflow key. Routes, functions, queries and
//! custom metrics (`(other)`), the cumulative request histograms, services
//! (`(other)`) and the workers of a service (`(other workers)`) are all
//! such tables, so memory stays bounded however many names the
//! applications invent.

use std::collections::HashMap;
use std::hash::Hash;

/// Entries by key, in the order they were made; at most `max` keys of
/// their own, then the overflow key's entry for every new key.
pub struct Bounded<K, E> {
    entries: Vec<(K, E)>,
    index: HashMap<K, u32>,
    max: usize,
    overflow: K,
    /// Index of the overflow key's entry, while there is one.
    other: Option<u32>,
}

impl<K: Clone + Eq + Hash, E> Bounded<K, E> {
    /// An empty table of at most `max` keys (at least one) before
    /// `overflow` takes the rest.
    pub fn new(max: usize, overflow: K) -> Self {
        Bounded {
            entries: Vec::new(),
            index: HashMap::new(),
            max: max.max(1),
            overflow,
            other: None,
        }
    }

    /// The index of `key`'s entry, made with `make` when the key is new;
    /// a new key past the maximum gets the overflow key's entry.
    pub fn lookup(&mut self, key: &K, make: impl FnOnce(&K) -> E) -> u32 {
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        let key = if self.index.len() < self.max {
            key.clone()
        } else {
            self.overflow.clone()
        };
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.entries.len() as u32;
        if key == self.overflow {
            self.other = Some(i);
        }
        let entry = make(&key);
        self.entries.push((key.clone(), entry));
        self.index.insert(key, i);
        i
    }

    /// The entry at `index` (from [`lookup`](Self::lookup)).
    pub fn get_mut(&mut self, index: u32) -> &mut E {
        &mut self.entries[index as usize].1
    }

    /// The key of the entry at `index`.
    pub fn key_of(&self, index: u32) -> &K {
        &self.entries[index as usize].0
    }

    /// Whether `index` is the overflow key's entry.
    pub fn is_other(&self, index: u32) -> bool {
        self.other == Some(index)
    }

    /// Keys with an entry of their own (the overflow entry not counted).
    pub fn named(&self) -> usize {
        self.entries.len() - usize::from(self.other.is_some())
    }

    /// Entries, overflow included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys and entries, in the order they were made.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &E)> + '_ {
        self.entries.iter().map(|(k, e)| (k, e))
    }

    /// Entries, in the order they were made.
    pub fn entries_mut(&mut self) -> impl Iterator<Item = &mut E> + '_ {
        self.entries.iter_mut().map(|(_, e)| e)
    }

    /// Keeps the entries `keep` accepts (asked in order) and hands the
    /// others to `gone`. When any went, returns the new index of each old
    /// one (`None`: gone); the indexes handed out before are void then.
    pub fn retain(
        &mut self,
        mut keep: impl FnMut(&K, &mut E) -> bool,
        mut gone: impl FnMut(E),
    ) -> Option<Vec<Option<u32>>> {
        let mut kept = Vec::with_capacity(self.entries.len());
        let mut map = Vec::with_capacity(self.entries.len());
        let before = self.entries.len();
        for (key, mut entry) in self.entries.drain(..) {
            if keep(&key, &mut entry) {
                map.push(Some(kept.len() as u32));
                kept.push((key, entry));
            } else {
                map.push(None);
                gone(entry);
            }
        }
        self.entries = kept;
        if self.entries.len() == before {
            return None;
        }
        self.index = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i as u32))
            .collect();
        self.other = self.index.get(&self.overflow).copied();
        Some(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_past_the_maximum_share_the_overflow_entry() {
        let mut t: Bounded<&str, u32> = Bounded::new(2, "(other)");
        let a = t.lookup(&"a", |_| 0);
        let b = t.lookup(&"b", |_| 0);
        let c = t.lookup(&"c", |_| 0);
        assert_eq!(t.lookup(&"d", |_| 0), c, "c and d share");
        assert_eq!(t.lookup(&"a", |_| 0), a, "known keys keep their own");
        assert_eq!((a, b, *t.key_of(c)), (0, 1, "(other)"));
        assert!(t.is_other(c) && !t.is_other(a));
        assert_eq!((t.named(), t.len()), (2, 3));
        // The overflow entry takes a place too: removing one key leaves
        // the table full, removing the overflow entry as well makes room.
        let map = t.retain(|k, _| *k != "a", drop).unwrap();
        assert_eq!(map, [None, Some(0), Some(1)]);
        assert!(t.is_other(1));
        let shared = t.lookup(&"e", |_| 0);
        assert!(t.is_other(shared));
        t.retain(|k, _| *k != "(other)", drop).unwrap();
        let e = t.lookup(&"e", |_| 0);
        assert!(!t.is_other(e));
        assert_eq!((t.named(), t.len()), (2, 2));
        assert!(t.retain(|_, _| true, drop).is_none(), "nothing went");
    }
}
