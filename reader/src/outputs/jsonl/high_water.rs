//! What the JSONL files already hold of each ring, so that events delivered
//! again after a restart are not written twice.
//!
//! Event positions grow per lane (`lane position * lanes + lane`), so the
//! mark to compare an event with is the highest position already written
//! in its lane. The files do not say how many lanes a ring has; the highest
//! position is kept per residue modulo [`MAX_LANES`], which every lane
//! count divides, and folded into per-lane marks once the ring attaches.

use profilis::layout::MAX_LANES;
use profilis::Event;
use std::collections::HashMap;

/// Highest written position per ring and residue.
#[derive(Default)]
pub struct HighWater {
    rings: HashMap<u64, Vec<Option<u64>>>,
}

impl HighWater {
    /// Notes an event line of `ring` at `position`.
    pub fn note(&mut self, ring: u64, position: u64) {
        let marks = self
            .rings
            .entry(ring)
            .or_insert_with(|| vec![None; MAX_LANES as usize]);
        let mark = &mut marks[(position % MAX_LANES) as usize];
        *mark = Some(mark.map_or(position, |m| m.max(position)));
    }

    /// The highest position written of `ring`, any lane.
    pub fn highest(&self, ring: u64) -> Option<u64> {
        self.rings.get(&ring)?.iter().flatten().copied().max()
    }

    /// Per lane of `ring`, which has `lanes` lanes: the highest position
    /// written. `None` when nothing of the ring is in the files.
    pub fn lanes(&self, ring: u64, lanes: u64) -> Option<LaneMarks> {
        let marks = self.rings.get(&ring)?;
        let lanes = lanes.clamp(1, MAX_LANES) as usize;
        let mut out = vec![None; lanes];
        for (residue, mark) in marks.iter().enumerate() {
            if let Some(m) = *mark {
                let lane = &mut out[residue % lanes];
                *lane = Some(lane.map_or(m, |l: u64| l.max(m)));
            }
        }
        Some(LaneMarks(out))
    }
}

/// Highest written position of each lane of one ring.
pub struct LaneMarks(Vec<Option<u64>>);

impl LaneMarks {
    /// Whether `event` is already in the files.
    pub fn covers(&self, event: &Event) -> bool {
        self.0
            .get(event.lane as usize)
            .copied()
            .flatten()
            .is_some_and(|m| event.position <= m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_fold_into_the_lanes_of_the_ring() {
        let mut hw = HighWater::default();
        // A ring of 4 lanes: lane 1 written up to lane position 9 (ring
        // position 37), lane 2 up to lane position 0 (ring position 2).
        for p in [1, 5, 9, 13, 37, 2] {
            hw.note(7, p);
        }
        let marks = hw.lanes(7, 4).unwrap();
        let event = |position: u64| Event {
            position,
            lane: (position % 4) as u16,
            ..crate::support::test_event::blank()
        };
        assert!(marks.covers(&event(37)) && marks.covers(&event(33)));
        assert!(!marks.covers(&event(41)), "lane 1, later");
        assert!(marks.covers(&event(2)) && !marks.covers(&event(6)));
        assert!(!marks.covers(&event(0)), "lane 0: nothing written");
        assert_eq!(hw.highest(7), Some(37));
        assert!(hw.lanes(8, 4).is_none());
    }
}
