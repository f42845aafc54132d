//! Rate-limited logging for errors that can repeat in a loop (a full disk,
//! a broken store, a dead relay): at most one line per kind per
//! [`WINDOW`], carrying `suppressed`, how many lines of that kind were
//! left out since the last one. A loop that fails a thousand times a
//! second logs one line every 10 s instead of filling the disk it is
//! waiting for.
//!
//! Use [`error!`] / [`warning!`] with a static kind first, then the usual
//! `tracing` fields and message:
//! `lograte::error!("store.flush", error = %e, "store flush failed")`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One line per kind per this long.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Remembers, per kind, when a line was last let through and how many
/// were held back since.
#[derive(Debug)]
pub struct Limiter {
    window: Duration,
    slots: Mutex<HashMap<&'static str, Slot>>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    last: Instant,
    suppressed: u64,
}

impl Limiter {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(suppressed)` if a line of `kind` may be logged now (and how
    /// many were held back since the last one), `None` to hold it back.
    pub fn allow(&self, kind: &'static str) -> Option<u64> {
        self.allow_at(kind, Instant::now())
    }

    fn allow_at(&self, kind: &'static str, now: Instant) -> Option<u64> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        match slots.get_mut(kind) {
            Some(s) if now.saturating_duration_since(s.last) < self.window => {
                s.suppressed += 1;
                None
            }
            Some(s) => {
                let held = s.suppressed;
                *s = Slot {
                    last: now,
                    suppressed: 0,
                };
                Some(held)
            }
            None => {
                slots.insert(
                    kind,
                    Slot {
                        last: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

/// The process-wide limiter the macros use.
pub fn allow(kind: &'static str) -> Option<u64> {
    static GLOBAL: OnceLock<Limiter> = OnceLock::new();
    GLOBAL.get_or_init(|| Limiter::new(WINDOW)).allow(kind)
}

/// `tracing::error!` at most once per kind per [`WINDOW`], with a
/// `suppressed` count.
macro_rules! error {
    ($kind:expr, $($rest:tt)+) => {
        if let Some(suppressed) = $crate::lograte::allow($kind) {
            ::tracing::error!(suppressed, $($rest)+);
        }
    };
}

/// `tracing::warn!` at most once per kind per [`WINDOW`], with a
/// `suppressed` count.
macro_rules! warning {
    ($kind:expr, $($rest:tt)+) => {
        if let Some(suppressed) = $crate::lograte::allow($kind) {
            ::tracing::warn!(suppressed, $($rest)+);
        }
    };
}

pub(crate) use {error, warning};

#[cfg(test)]
#[path = "lograte_tests.rs"]
mod tests;
