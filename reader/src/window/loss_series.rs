//! The loss time series over the statistics window: the events lost per
//! 10-second step ([`STEP_NS`]), from the LOSS markers.

use super::{Periods, STEP_NS};
use crate::ingest::loss::LossMarker;
use crate::views::LossPoint;

/// Losses per step, by the end time of their markers.
#[derive(Default)]
pub struct LossSeries {
    steps: Periods<LossPoint>,
}

impl LossSeries {
    /// Counts `markers` in the steps of their end times.
    pub fn record(&mut self, markers: &[LossMarker]) {
        for m in markers {
            let step = m.to_ts_ns / STEP_NS;
            let p = self.steps.get_or_insert_with(step, || LossPoint {
                ts_ns: step * STEP_NS,
                ..LossPoint::default()
            });
            p.ring_full += m.counts.ring_full();
            p.overwritten += m.counts.overwritten;
            p.abandoned += m.counts.abandoned;
            p.torn += m.counts.torn;
        }
    }

    /// The points from `since_ns` on (older ones are dropped).
    pub fn points(&mut self, since_ns: u64) -> Vec<LossPoint> {
        self.steps.expire(since_ns.div_ceil(STEP_NS), drop);
        self.steps.iter().map(|(_, p)| *p).collect()
    }
}
