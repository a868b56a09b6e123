//! Values per time period, oldest first: the minute buckets of every window
//! table and the 10-second steps of the time series.

use std::collections::VecDeque;

/// Values keyed by period number (minute or step since the Unix epoch),
/// sorted, oldest first. Events arrive almost in time order, so the newest
/// period is looked at first; an older one (from another ring or thread)
/// is found or inserted in place.
#[derive(Debug)]
pub struct Periods<T> {
    items: VecDeque<(u64, T)>,
}

impl<T> Default for Periods<T> {
    fn default() -> Self {
        Periods {
            items: VecDeque::new(),
        }
    }
}

impl<T> Periods<T> {
    /// The value of `period`, made with `make` if there is none yet.
    #[inline]
    pub fn get_or_insert_with(&mut self, period: u64, make: impl FnOnce() -> T) -> &mut T {
        let at = match self.items.back() {
            Some((last, _)) if *last == period => self.items.len() - 1,
            _ => self.insert(period, make),
        };
        &mut self.items[at].1
    }

    #[cold]
    fn insert(&mut self, period: u64, make: impl FnOnce() -> T) -> usize {
        let at = self.items.partition_point(|(p, _)| *p < period);
        if at == self.items.len() || self.items[at].0 != period {
            self.items.insert(at, (period, make()));
        }
        at
    }

    /// Removes the periods before `oldest`, oldest first, handing each value
    /// to `gone`.
    pub fn expire(&mut self, oldest: u64, mut gone: impl FnMut(T)) {
        while self.items.front().is_some_and(|(p, _)| *p < oldest) {
            let (_, value) = self.items.pop_front().expect("checked");
            gone(value);
        }
    }

    /// The periods and their values, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> + '_ {
        self.items.iter().map(|(p, v)| (*p, v))
    }

    /// Whether no period has a value.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_stay_sorted_and_expire_oldest_first() {
        let mut p = Periods::default();
        for (period, v) in [(5, 1), (5, 2), (7, 3), (6, 4), (5, 5)] {
            *p.get_or_insert_with(period, || 0) += v;
        }
        assert_eq!(p.iter().collect::<Vec<_>>(), [(5, &8), (6, &4), (7, &3)]);
        let mut gone = Vec::new();
        p.expire(7, |v| gone.push(v));
        assert_eq!(gone, [8, 4]);
        assert_eq!(p.iter().collect::<Vec<_>>(), [(7, &3)]);
        p.expire(8, drop);
        assert!(p.is_empty());
    }
}
