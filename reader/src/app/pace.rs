//! Pacing of the drain loop between rounds. Every batch says how close it
//! came to a bound that a pause must not overrun (its *fill*, measured by
//! [`crate::ingest`]: the larger of its positions over one lane's slots and
//! of the message numbers its events span over the message slots; a batch
//! that took all of `batch_max` positions is full). A round whose fullest
//! batch reached a quarter is followed by the next at once (the reader is
//! behind: drain batch after batch). A round that moved fewer positions is
//! followed by a *gather* pause, so that under a steady load each batch
//! carries what arrived during the pause rather than the few events of a
//! tight loop: the cost of a round (clock reads, the ring's counters, one
//! `write`, the commit, a wake-up) is then shared by many events. The pause
//! starts at 1 ms, doubles after a round that filled less than 1/16 (up to
//! 32 ms) and halves after one that filled more than 1/8, so batches settle
//! between 1/16 and 1/8 full: a load can grow 2 to 4 times within one pause
//! before the loop goes on at once, and 8 to 16 times before a bound is
//! reached (more where the longest pause leaves batches under 1/16). At 100k
//! events/s from two threads (two lanes of 16384 slots with the default
//! ring) a round carries ~1,600 events after a 16 ms pause; below ~64k
//! events/s in a ring the pause stays at 32 ms, so the loop wakes ~30 times
//! a second. Events reach the exporters at most that much later. After a
//! round in which no position moved (no event and no loss) the loop spins
//! briefly (not after a gather pause), then sleeps with doubling intervals
//! from 50 µs (or from the gather pause) up to the time the smallest lane
//! of the attached rings takes to fill at [`BURST_EVENTS_PER_SEC`], within
//! 10 ms ..= 32 ms: 32 ms with the default lanes of 16384 slots (the
//! margin of the longest gather pause), so an idle reader wakes ~30 times
//! a second; with lanes of 4096 slots or fewer it stays at 10 ms (~100
//! wake-ups a second).

use crate::ingest::FILL_FULL;
use std::time::Duration;

/// What the drain loop does after a round (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pace {
    /// Nothing moved: spin, then sleep longer and longer.
    Idle,
    /// A batch less than a quarter full: pause so that the next is fuller.
    Gather,
    /// A batch at least a quarter full: the next round at once.
    Busy,
}

impl Pace {
    /// After a round that passed `progress` positions, the fullest batch
    /// filled to `fill` parts of [`FILL_FULL`].
    pub(super) fn after(progress: usize, fill: u32) -> Pace {
        if progress == 0 {
            Pace::Idle
        } else if fill < FILL_FULL / 4 {
            Pace::Gather
        } else {
            Pace::Busy
        }
    }
}

/// Spin, then sleep with doubling intervals up to a cap; or, after a round
/// with a few events, a pause sized so that batches settle between 1/16
/// and 1/8 full.
pub(super) struct Backoff {
    spins: u32,
    sleep: Duration,
    gather: Duration,
}

const SPIN_ROUNDS: u32 = 8;
const MIN_SLEEP: Duration = Duration::from_micros(50);
/// The longest idle sleep whatever the lanes.
const SHORT_IDLE_CAP: Duration = Duration::from_millis(10);
/// The rate of a burst that an idle sleep must not let fill a lane.
const BURST_EVENTS_PER_SEC: u64 = 500_000;
/// Shortest and longest gather pause (see the module docs).
const MIN_GATHER: Duration = Duration::from_millis(1);
const MAX_GATHER: Duration = Duration::from_millis(32);

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            spins: 0,
            sleep: MIN_SLEEP,
            gather: MIN_GATHER,
        }
    }
}

impl Backoff {
    /// After a round in which nothing moved; `smallest_lane` is the fewest
    /// slots of a lane among the attached rings (none attached: `None`).
    pub(super) fn idle(&mut self, smallest_lane: Option<u64>) {
        if self.spins < SPIN_ROUNDS {
            self.spins += 1;
            for _ in 0..64 {
                std::hint::spin_loop();
            }
            return;
        }
        let cap = Self::idle_cap(smallest_lane);
        self.sleep = self.sleep.min(cap);
        std::thread::sleep(self.sleep);
        self.sleep = (self.sleep * 2).min(cap);
    }

    /// The longest idle sleep: the time a lane of `smallest_lane` slots
    /// takes to fill at [`BURST_EVENTS_PER_SEC`], within
    /// [`SHORT_IDLE_CAP`] ..= [`MAX_GATHER`].
    fn idle_cap(smallest_lane: Option<u64>) -> Duration {
        let Some(slots) = smallest_lane else {
            return SHORT_IDLE_CAP;
        };
        let fill = Duration::from_nanos(slots.saturating_mul(1_000_000_000 / BURST_EVENTS_PER_SEC));
        fill.clamp(SHORT_IDLE_CAP, MAX_GATHER)
    }

    pub(super) fn busy(&mut self) {
        self.spins = 0;
        self.sleep = MIN_SLEEP;
        self.gather = MIN_GATHER;
    }

    /// The pause after a round whose fullest batch filled `fill` parts of
    /// [`FILL_FULL`] (less than a quarter).
    pub(super) fn gather(&mut self, fill: u32) {
        self.gather = Self::next_gather(self.gather, fill);
        // The load is light: an empty round after this one sleeps from the
        // pause on rather than spinning.
        self.spins = SPIN_ROUNDS;
        self.sleep = self.gather;
        std::thread::sleep(self.gather);
    }

    /// Doubles the pause after a batch under 1/16 full, halves it after one
    /// over 1/8, within [`MIN_GATHER`] ..= [`MAX_GATHER`].
    fn next_gather(pause: Duration, fill: u32) -> Duration {
        if fill < FILL_FULL / 16 {
            (pause * 2).min(MAX_GATHER)
        } else if fill > FILL_FULL / 8 {
            (pause / 2).max(MIN_GATHER)
        } else {
            pause
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{
        Backoff, Pace, FILL_FULL, MAX_GATHER, MIN_GATHER, MIN_SLEEP, SHORT_IDLE_CAP, SPIN_ROUNDS,
    };
    use std::time::Duration;

    #[test]
    fn a_round_under_a_quarter_full_gathers_and_a_quarter_goes_on_at_once() {
        assert_eq!(Pace::after(0, 0), Pace::Idle);
        assert_eq!(Pace::after(100, FILL_FULL / 40), Pace::Gather);
        assert_eq!(Pace::after(3000, FILL_FULL / 4 - 1), Pace::Gather);
        assert_eq!(Pace::after(1024, FILL_FULL / 4), Pace::Busy);
        assert_eq!(Pace::after(4096, FILL_FULL), Pace::Busy);
        // Losses alone are progress.
        assert_eq!(Pace::after(1, FILL_FULL), Pace::Busy);
    }

    #[test]
    fn the_gather_pause_settles_batches_between_a_sixteenth_and_an_eighth() {
        let ms = Duration::from_millis;
        // 100k events/s, lanes of 16384 slots: 100 events a millisecond,
        // 1/160 full after 1 ms; the pause doubles to 16 ms (1,600 events,
        // within 1/16..1/8) and stays.
        let mut pause = MIN_GATHER;
        let mut pauses = Vec::new();
        for _ in 0..7 {
            let fill = (100 * pause.as_millis() as u32 * FILL_FULL / 16384).min(FILL_FULL);
            pause = Backoff::next_gather(pause, fill);
            pauses.push(pause);
        }
        assert_eq!(
            pauses,
            [ms(2), ms(4), ms(8), ms(16), ms(16), ms(16), ms(16)]
        );
        // A light load goes to the longest pause and no further.
        assert_eq!(Backoff::next_gather(ms(16), 1), MAX_GATHER);
        assert_eq!(Backoff::next_gather(ms(20), 1), MAX_GATHER);
        assert_eq!(Backoff::next_gather(MAX_GATHER, 0), MAX_GATHER);
        // A load that grows shortens it, down to the shortest.
        assert_eq!(Backoff::next_gather(ms(8), FILL_FULL / 5), ms(4));
        assert_eq!(Backoff::next_gather(MIN_GATHER, FILL_FULL / 5), MIN_GATHER);
        // Between the two marks the pause holds.
        assert_eq!(Backoff::next_gather(ms(4), FILL_FULL / 10), ms(4));
    }

    #[test]
    fn an_empty_round_after_a_gather_sleeps_from_the_pause_and_a_busy_one_resets() {
        let mut b = Backoff::default();
        b.gather(0);
        assert_eq!(
            (b.gather, b.sleep),
            (Duration::from_millis(2), Duration::from_millis(2))
        );
        assert_eq!(b.spins, SPIN_ROUNDS);
        b.idle(Some(16384));
        assert_eq!(b.sleep, Duration::from_millis(4));
        b.busy();
        assert_eq!((b.gather, b.sleep, b.spins), (MIN_GATHER, MIN_SLEEP, 0));
    }

    #[test]
    fn idle_sleeps_grow_to_what_the_smallest_lane_allows() {
        let ms = Duration::from_millis;
        // The default lanes (16384 slots) fill in 32.8 ms at 500k events/s:
        // the longest gather pause.
        assert_eq!(Backoff::idle_cap(Some(16384)), MAX_GATHER);
        assert_eq!(Backoff::idle_cap(Some(1 << 20)), MAX_GATHER);
        assert_eq!(Backoff::idle_cap(Some(8192)), Duration::from_micros(16_384));
        // Small lanes, and no ring: the short cap.
        assert_eq!(Backoff::idle_cap(Some(4096)), SHORT_IDLE_CAP);
        assert_eq!(Backoff::idle_cap(Some(64)), SHORT_IDLE_CAP);
        assert_eq!(Backoff::idle_cap(None), SHORT_IDLE_CAP);
        // The sleeps double up to the cap and stay there.
        let mut b = Backoff {
            spins: SPIN_ROUNDS,
            sleep: ms(8),
            gather: MAX_GATHER,
        };
        b.idle(Some(16384));
        assert_eq!(b.sleep, ms(16));
        b.idle(Some(16384));
        b.idle(Some(16384));
        assert_eq!(b.sleep, MAX_GATHER);
        // A ring with small lanes attached since: the next sleep is short.
        b.idle(Some(1024));
        assert_eq!(b.sleep, SHORT_IDLE_CAP);
    }
}
