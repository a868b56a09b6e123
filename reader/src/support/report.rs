//! Error messages that repeat (a full disk, a receiver that is down) as a
//! clear message rather than a flood.

use std::time::{Duration, Instant};

/// Prints an error the first time and then at most once per interval,
/// saying how many were suppressed in between, so a full disk produces a
/// clear message rather than a flood.
#[derive(Debug)]
pub struct ErrorReporter {
    what: &'static str,
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorReporter {
    /// A reporter prefixing messages with `what`.
    pub fn new(what: &'static str) -> ErrorReporter {
        ErrorReporter {
            what,
            interval: Duration::from_secs(10),
            last: None,
            suppressed: 0,
        }
    }

    /// Reports `message` (through the log, see [`super::log`]) unless one was
    /// reported recently.
    pub fn report(&mut self, message: &str) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.interval)
        {
            self.suppressed += 1;
            return;
        }
        if self.suppressed > 0 {
            tracing::error!(
                "{} error: {message} ({} similar errors since the last message)",
                self.what,
                self.suppressed
            );
        } else {
            tracing::error!("{} error: {message}", self.what);
        }
        self.last = Some(now);
        self.suppressed = 0;
    }

    /// Forgets the last report: the next error prints right away (after a
    /// recovery).
    pub fn recovered(&mut self) {
        if self.last.take().is_some() {
            tracing::info!("{} recovered", self.what);
        }
        self.suppressed = 0;
    }
}
