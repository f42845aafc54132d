//! Wall-clock time for the delivery worker and the daemon's timed tasks:
//! the system clock, or one that follows tokio's (pausable) clock in tests.

use jiff::Timestamp;

/// Wall-clock time for the worker.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Wall-clock time that follows tokio's clock from a fixed start, so a test
/// with `tokio::time::pause` can jump hours ahead.
pub struct TokioClock {
    base: Timestamp,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(base: Timestamp) -> Self {
        Self {
            base,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        let d = jiff::SignedDuration::try_from(self.start.elapsed()).unwrap_or_default();
        self.base.checked_add(d).unwrap_or(self.base)
    }
}
