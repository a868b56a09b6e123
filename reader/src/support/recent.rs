//! How much a growing counter grew over about the last minute: the losses
//! and limit hits that `/health` and `/metrics` report as recent.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How much a growing counter grew over about the last minute, from the
/// values seen at each publish.
#[derive(Default)]
pub struct Recent {
    samples: VecDeque<(Instant, u64)>,
}

/// The span of [`Recent`].
const RECENT: Duration = Duration::from_secs(60);

impl Recent {
    /// A counter that was `value` at `at`: growth from then on counts.
    pub fn starting(at: Instant, value: u64) -> Recent {
        Recent {
            samples: [(at, value)].into(),
        }
    }

    /// Records `value` at `now`; returns its growth since the oldest sample
    /// of the last minute.
    pub fn update(&mut self, now: Instant, value: u64) -> u64 {
        while self.samples.len() > 1
            && self
                .samples
                .get(1)
                .is_some_and(|(at, _)| now.duration_since(*at) >= RECENT)
        {
            self.samples.pop_front();
        }
        self.samples.push_back((now, value));
        value.saturating_sub(self.samples.front().map_or(value, |s| s.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_growth_covers_about_the_last_minute() {
        let t0 = Instant::now();
        let mut recent = Recent::default();
        assert_eq!(recent.update(t0, 100), 0, "losses before the start are old");
        assert_eq!(recent.update(t0 + Duration::from_secs(1), 105), 5);
        assert_eq!(recent.update(t0 + Duration::from_secs(30), 110), 10);
        // 61 s after the 1 s sample: only growth since then counts.
        assert_eq!(recent.update(t0 + Duration::from_secs(62), 110), 5);
        assert_eq!(recent.update(t0 + Duration::from_secs(120), 110), 0);
    }
}
