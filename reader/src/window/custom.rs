//! Custom metrics over the window: count, sum, min and max per minute, and
//! the latest value (CUSTOM events are samples, not latencies).

use super::Periods;
use crate::views::CustomMetric;

#[derive(Clone, Copy)]
struct CustomBucket {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

/// A custom metric over the window.
#[derive(Default)]
pub struct CustomWindow {
    minutes: Periods<CustomBucket>,
    last: f64,
}

impl CustomWindow {
    /// Records a sample `value` of minute `minute`.
    pub fn record(&mut self, minute: u64, value: f64) {
        self.last = value;
        if !value.is_finite() {
            return; // shown as `last`, kept out of sums
        }
        let b = self.minutes.get_or_insert_with(minute, || CustomBucket {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        });
        b.count += 1;
        b.sum += value;
        b.min = b.min.min(value);
        b.max = b.max.max(value);
    }

    /// Drops the minutes before `oldest`; whether any sample is left.
    pub fn expire(&mut self, oldest: u64) -> bool {
        self.minutes.expire(oldest, drop);
        !self.minutes.is_empty()
    }

    /// The metric `name` over the window.
    pub fn summary(&self, name: &str) -> CustomMetric {
        let (mut count, mut sum, mut min, mut max) = (0u64, 0.0, f64::INFINITY, f64::NEG_INFINITY);
        for (_, b) in self.minutes.iter() {
            count += b.count;
            sum += b.sum;
            min = min.min(b.min);
            max = max.max(b.max);
        }
        CustomMetric {
            name: name.to_string(),
            count,
            avg: if count > 0 { sum / count as f64 } else { 0.0 },
            min: if count > 0 { min } else { 0.0 },
            max: if count > 0 { max } else { 0.0 },
            last: if self.last.is_finite() {
                self.last
            } else {
                0.0
            },
        }
    }
}
