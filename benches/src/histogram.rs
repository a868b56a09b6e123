//! A fixed-size histogram of timer readings, cheap enough to fill between
//! two timed calls: one counter increment per sample, no allocation, no
//! sort. Values below [`EXACT`] units have a counter each (with the TSC at
//! 2-3 GHz that is every tick up to about 1.5 µs); above, every power of
//! two is split into [`SUB_BUCKETS`] buckets, so a percentile read from
//! there is within 0.4% of the sample it stands for.

/// Values counted exactly.
pub const EXACT: u64 = 1 << EXACT_BITS;
const EXACT_BITS: u32 = 12;
/// Buckets per power of two above [`EXACT`].
pub const SUB_BUCKETS: u64 = 1 << SUB_BITS;
const SUB_BITS: u32 = 7;
const BUCKETS: usize = EXACT as usize + (64 - EXACT_BITS as usize) * SUB_BUCKETS as usize;

/// Counts of samples by value.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
        }
    }
}

impl Histogram {
    /// Counts one sample.
    #[inline]
    pub fn record(&mut self, value: u64) {
        self.counts[bucket(value)] += 1;
        self.total += 1;
    }

    /// Samples counted.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Adds `other`'s samples.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
    }

    /// The nearest-rank `q` quantile (0 < q <= 1): the exact value below
    /// [`EXACT`], a bucket's midpoint above. 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return midpoint(i);
            }
        }
        midpoint(BUCKETS - 1)
    }

    /// The non-empty buckets as `(index, count)`, to send to another
    /// process.
    pub fn to_sparse(&self) -> Vec<(usize, u64)> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| (i, n))
            .collect()
    }

    /// The histogram that [`to_sparse`](Histogram::to_sparse) described;
    /// `None` for an index out of range.
    pub fn from_sparse(buckets: &[(usize, u64)]) -> Option<Histogram> {
        let mut h = Histogram::default();
        for &(i, n) in buckets {
            *h.counts.get_mut(i)? += n;
            h.total += n;
        }
        Some(h)
    }
}

#[inline]
fn bucket(value: u64) -> usize {
    if value < EXACT {
        return value as usize;
    }
    let top = 63 - value.leading_zeros();
    let sub = (value >> (top - SUB_BITS)) & (SUB_BUCKETS - 1);
    EXACT as usize + (top - EXACT_BITS) as usize * SUB_BUCKETS as usize + sub as usize
}

fn midpoint(bucket: usize) -> f64 {
    let i = bucket as u64;
    if i < EXACT {
        return i as f64;
    }
    let top = (i - EXACT) / SUB_BUCKETS + EXACT_BITS as u64;
    let sub = (i - EXACT) % SUB_BUCKETS;
    let shift = top - SUB_BITS as u64;
    let low = (SUB_BUCKETS + sub) << shift;
    low as f64 + (1u64 << shift) as f64 / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for v in (0..EXACT * 4).chain([u64::MAX / 2, u64::MAX]) {
            let b = bucket(v);
            assert!(b >= last && b < BUCKETS, "value {v} bucket {b}");
            last = b;
        }
    }

    #[test]
    fn quantiles_are_exact_below_the_split_and_close_above() {
        let mut h = Histogram::default();
        for v in 1..=1000 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 500.0);
        assert_eq!(h.quantile(0.99), 990.0);
        let mut h = Histogram::default();
        for v in [10_000u64, 20_000, 1_000_000] {
            h.record(v);
        }
        for (q, want) in [(0.3, 10_000.0), (0.6, 20_000.0), (1.0, 1e6)] {
            let got = h.quantile(q);
            assert!((got - want).abs() / want < 0.004, "q {q}: {got} vs {want}");
        }
    }

    #[test]
    fn sparse_form_round_trips_and_merges() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for v in 0..100 {
            a.record(v);
            b.record(v * 1000);
        }
        let mut back = Histogram::from_sparse(&a.to_sparse()).unwrap();
        assert_eq!(back.len(), 100);
        assert_eq!(back.quantile(0.5), a.quantile(0.5));
        back.merge(&b);
        assert_eq!(back.len(), 200);
        assert!(Histogram::from_sparse(&[(BUCKETS, 1)]).is_none());
    }
}
