//! Per-stage liveness for systemd's watchdog (issue 13, item 6): each
//! stage (the journal writer, the applier, matching, delivery, the store
//! flusher) marks when it starts a piece of work and when it is done; a
//! stage waiting for work is idle and alive. `daemon::health` stops the
//! watchdog pings while any stage has been busy longer than a bound, and
//! logs which. Plain atomics in a static table: every stage reaches it
//! without threading a handle through.
//!
//! Test hook (debug builds only): `KIM_TEST_STALL_STAGE=matcher` (or
//! `deliverer`) makes that stage hang in its first piece of work.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The stages that report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Journal = 0,
    Applier = 1,
    Matcher = 2,
    Deliverer = 3,
    Flusher = 4,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Journal,
        Stage::Applier,
        Stage::Matcher,
        Stage::Deliverer,
        Stage::Flusher,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Journal => "journal",
            Self::Applier => "applier",
            Self::Matcher => "matcher",
            Self::Deliverer => "deliverer",
            Self::Flusher => "flusher",
        }
    }
}

/// When each stage started the work it is doing (ms since the epoch; 0:
/// idle).
static BUSY_SINCE: [AtomicI64; 5] = [
    AtomicI64::new(0),
    AtomicI64::new(0),
    AtomicI64::new(0),
    AtomicI64::new(0),
    AtomicI64::new(0),
];

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as i64)
        .max(1)
}

/// Marks `stage` busy until the guard drops.
pub struct Busy(Stage);

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY_SINCE[self.0 as usize].store(0, Ordering::Relaxed);
    }
}

/// `stage` starts a piece of work.
pub fn busy(stage: Stage) -> Busy {
    BUSY_SINCE[stage as usize].store(now_ms(), Ordering::Relaxed);
    Busy(stage)
}

/// The stages busy for longer than `bound`, with for how long.
pub fn stalled(bound: Duration) -> Vec<(Stage, Duration)> {
    let now = now_ms();
    Stage::ALL
        .into_iter()
        .filter_map(|s| {
            let since = BUSY_SINCE[s as usize].load(Ordering::Relaxed);
            let for_ms = now - since;
            (since > 0 && for_ms > bound.as_millis() as i64)
                .then(|| (s, Duration::from_millis(for_ms as u64)))
        })
        .collect()
}

/// Whether the test hook asks `stage` to hang (never in release builds).
pub fn stall_requested(stage: Stage) -> bool {
    cfg!(debug_assertions)
        && std::env::var("KIM_TEST_STALL_STAGE").is_ok_and(|v| v == stage.as_str())
}

/// The test hook for a blocking thread: hangs here forever if asked.
pub fn maybe_stall(stage: Stage) {
    if stall_requested(stage) {
        tracing::warn!(
            stage = stage.as_str(),
            "KIM_TEST_STALL_STAGE: this stage hangs now"
        );
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}
