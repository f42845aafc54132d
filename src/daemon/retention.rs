//! The daily retention run (issue 14): every minute it asks whether today's
//! run is due (`[retention] run_at`, UK time, passed, and no run recorded
//! since) and runs [`crate::retention::run`] once. The store records each
//! run, so a restart neither repeats nor skips a day: a kim that was down
//! at `run_at` runs when it comes back.

use std::sync::Arc;
use std::time::Duration;

use crate::config::RetentionConfig;
use crate::retention::{self, RunOptions};
use crate::store::Store;

const TICK: Duration = Duration::from_secs(60);

/// The instant of today's run (UK date of `now`, at `at` UK time).
pub fn todays_run(at: jiff::civil::Time, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
    let tz = crate::calendar::school_tz();
    let today = now.to_zoned(tz.clone()).date();
    today
        .to_datetime(at)
        .to_zoned(tz)
        .ok()
        .map(|z| z.timestamp())
}

/// Whether a run is due at `now`, given the last one.
pub fn due(at: jiff::civil::Time, last: Option<jiff::Timestamp>, now: jiff::Timestamp) -> bool {
    match todays_run(at, now) {
        Some(run) => now >= run && last.is_none_or(|l| l < run),
        None => false,
    }
}

/// Runs until `stop` changes.
pub async fn run(
    store: Arc<Store>,
    policy: RetentionConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if store.broken().is_none() {
            let s = store.clone();
            let p = policy.clone();
            let done = tokio::task::spawn_blocking(move || {
                let now = jiff::Timestamp::now();
                let last = s.retention_last()?.map(|l| l.at);
                if !due(p.run_at, last, now) {
                    return Ok(None);
                }
                retention::run(&s, &p, &RunOptions::default(), now, "system").map(Some)
            })
            .await;
            match done {
                Ok(Ok(Some(r))) => tracing::info!(
                    purged = r.purged.len(),
                    alerts = r.alerts,
                    days_shredded = r.days_shredded.len(),
                    waiting_kept = r.waiting_kept,
                    "retention run"
                ),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "retention run failed; retried at the next tick")
                }
                Err(e) => tracing::error!(error = %e, "retention task failed"),
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn due_once_a_day_after_run_at_uk_time_and_after_a_missed_one() {
        let at = jiff::civil::time(2, 0, 0, 0);
        // 02:00 UK in December is 02:00 UTC; in July 01:00 UTC.
        assert!(!due(at, None, t("2026-12-01T01:59:00Z")));
        assert!(due(at, None, t("2026-12-01T02:00:00Z")));
        assert!(due(at, None, t("2026-07-01T01:00:00Z")));
        assert!(!due(
            at,
            Some(t("2026-12-01T02:00:30Z")),
            t("2026-12-01T23:00:00Z")
        ));
        // Down at 02:00, back at 10:00: runs then.
        assert!(due(
            at,
            Some(t("2026-11-30T02:00:30Z")),
            t("2026-12-01T10:00:00Z")
        ));
    }
}
