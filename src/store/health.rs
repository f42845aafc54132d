//! Whether the store can still write: set, for good, by the first write
//! or flush to sled (or `fdatasync` of its file) that fails.
//!
//! Why for good: sled 0.34 keeps the first IO error of a log write as a
//! "global error" and returns it from every later flush, so once a flush
//! failed (a full disk) the `Db` never writes again, even after space
//! returns. And after a failed `fdatasync` Linux may have dropped the dirty
//! pages, so a later "successful" sync proves nothing. The only way back is
//! a new `Db`: the daemon answers 503, says why on `/readyz`, stops its
//! watchdog pings and exits non-zero, and systemd starts it again; the open
//! replays the accept journal, which holds every notification that got a
//! 202 (see `daemon::health` for why not a reopen in-process).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::StoreError;

/// What `/readyz` and the logs say while the store cannot write (no
/// personal data: nothing here comes from a notification).
pub const CANNOT_WRITE: &str = "store cannot write: disk full?";

/// The store's write health.
#[derive(Debug, Default)]
pub struct Health {
    broken: Mutex<Option<Broken>>,
}

/// The store stopped writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Broken {
    pub since: Instant,
    /// The failure was ENOSPC (or EDQUOT).
    pub disk_full: bool,
}

impl Broken {
    /// For `/readyz` and the logs.
    pub fn reason(&self) -> &'static str {
        if self.disk_full {
            "store cannot write: disk full"
        } else {
            CANNOT_WRITE
        }
    }

    pub fn for_how_long(&self) -> Duration {
        self.since.elapsed()
    }
}

/// Why the store is not ready (see `Store::unready`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unready {
    /// It stopped writing for good.
    Broken(Broken),
    /// A flush failed and none has succeeded since (not yet broken).
    FlushFailing,
    /// Its key check cannot be read.
    KeyCheck,
}

impl Unready {
    /// For `/readyz`: the reason, and when to ask again (seconds).
    pub fn reason(&self) -> (&'static str, &'static str) {
        match self {
            Unready::Broken(b) => (b.reason(), "30"),
            Unready::FlushFailing => ("store cannot write: a flush failed (disk full?)", "10"),
            Unready::KeyCheck => ("store cannot read its key check", "10"),
        }
    }
}

fn is_disk_full(e: &StoreError) -> bool {
    let StoreError::Sled(sled::Error::Io(io)) = e else {
        return false;
    };
    io.kind() == std::io::ErrorKind::StorageFull
        || io.kind() == std::io::ErrorKind::QuotaExceeded
        || io.raw_os_error() == Some(28)
}

impl Health {
    /// Records a failed write or flush. Only errors of the disk or of sled
    /// count (`StoreError::is_unavailable`); a corrupt record does not stop
    /// the store from writing.
    pub(crate) fn failed(&self, e: &StoreError) {
        if !e.is_unavailable() {
            return;
        }
        let mut b = self.broken.lock().unwrap_or_else(|p| p.into_inner());
        if b.is_none() {
            let now = Broken {
                since: Instant::now(),
                disk_full: is_disk_full(e),
            };
            tracing::error!(error = %e, "{}: the store stopped writing; answering 503 from now on", now.reason());
            *b = Some(now);
        }
    }

    /// `Some` once the store cannot write.
    pub fn broken(&self) -> Option<Broken> {
        *self.broken.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
