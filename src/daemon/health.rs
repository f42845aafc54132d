//! The store's health while the daemon runs: systemd's watchdog is pinged
//! only while the store can write and no stage (journal, applier, matcher,
//! deliverer, flusher: `crate::heartbeat`) has been stuck in one piece of
//! work for longer than the watchdog period; a store that stays unable to write
//! ends the daemon (non-zero, for systemd to start it again).

use std::sync::Arc;
use std::time::Duration;

use crate::store::Store;

/// Pings systemd's watchdog while the store can write; a store that
/// cannot write gets no more pings, so systemd restarts kim even if its own
/// exit (see [`store_broken`]) hangs.
pub(super) fn spawn_watchdog(store: Arc<Store>) {
    let mut usec = 0;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        let every = Duration::from_micros(usec / 2);
        // A stage busy with one piece of work for longer than the whole
        // watchdog period is stuck (crate::heartbeat).
        let bound = Duration::from_micros(usec);
        tokio::spawn(async move {
            let mut stuck_logged = false;
            loop {
                if let Some(b) = store.broken() {
                    tracing::error!("{}: watchdog pings stopped", b.reason());
                    return;
                }
                let stuck = crate::heartbeat::stalled(bound);
                if !stuck.is_empty() {
                    if !stuck_logged {
                        let which: Vec<String> = stuck
                            .iter()
                            .map(|(s, d)| format!("{} ({} s)", s.as_str(), d.as_secs()))
                            .collect();
                        tracing::error!(stages = %which.join(", "), "a stage stopped making progress: watchdog pings stopped");
                        stuck_logged = true;
                    }
                    tokio::time::sleep(every).await;
                    continue;
                }
                stuck_logged = false;
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
                tokio::time::sleep(every).await;
            }
        });
    }
}

/// How long kim answers 503 with a store that cannot write before it exits
/// non-zero (systemd's `Restart=on-failure` starts it again; the open
/// replays the accept journal). Waiting longer would not help: sled 0.34
/// never writes again after a failed write (see `store::health`). The few
/// seconds let requests in flight get their answer and `/readyz` say why.
const BROKEN_EXIT_AFTER: Duration = Duration::from_secs(5);
/// How often the store's health is probed.
const HEALTH_EVERY: Duration = Duration::from_secs(1);

/// Resolves once the store has been unable to write for
/// [`BROKEN_EXIT_AFTER`].
///
/// Why exit rather than reopen sled in-process: every stage (ingest,
/// applier, matching, delivery, checkpoints, admin) holds an `Arc<Store>`
/// whose trees belong to the one `sled::Db`; swapping it under them would
/// need a lock on every store access and a way to drain each stage, and
/// sled's lock file is only released when the last handle drops. A new
/// process gets all of that from the start path that already runs at every
/// boot, including the replay of the accept journal (which holds every
/// notification that got a 202); if the disk is still full, the start
/// fails fast with a clear error and systemd tries again after
/// `RestartSec`.
pub(super) async fn store_broken(store: Arc<Store>) -> crate::store::Broken {
    loop {
        tokio::time::sleep(HEALTH_EVERY).await;
        let s = store.clone();
        if let Ok(Err(b)) = tokio::task::spawn_blocking(move || s.probe_writable()).await {
            if b.for_how_long() >= BROKEN_EXIT_AFTER {
                return b;
            }
        }
    }
}
