//! Retention (issue 14): deciding which notifications have been kept long
//! enough and carrying out one run — purge each due notification's
//! details, delete finished outbox records, destroy the keys of days with
//! nothing left to open. A notification is due when every child reached a
//! final state (delivered, failed or dismissed, withdrawn) at least
//! `[retention] notification_days` ago; one still waiting (queued, in
//! review, retrying) is never due, whatever its age. The store carries the
//! run out (`crate::store::retention`); the daemon runs it daily at
//! `[retention] run_at` (`crate::daemon::retention`) and `kim retention
//! run` on demand.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::RetentionConfig;
use crate::store::retention::utc_day;
use crate::store::{NotificationRecord, Store, StoreError};

/// Purges made durable together in a long run.
const FLUSH_EVERY: usize = 32;

/// What one run is asked to do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// Count and list, change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Purge what settled longer ago than this, instead of the config's
    /// `notification_days` (and `alert_days`).
    #[serde(default)]
    pub older_than_secs: Option<u64>,
}

/// What a run purged (or, dry, would purge): counts and identifiers only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    pub dry_run: bool,
    /// Notifications whose details were purged (receipts).
    pub purged: Vec<String>,
    /// Settled long enough ago but… none: kept because a child still waits.
    pub waiting_kept: u64,
    /// Finished outbox records deleted.
    pub alerts: u64,
    /// Days whose key was destroyed (every notification of the day purged).
    pub days_shredded: Vec<String>,
    /// The settling time before which notifications were due.
    pub cutoff: String,
}

/// Whether `rec` is due for purging at `cutoff`: not purged yet, every
/// child final, and settled at or before `cutoff`.
pub fn due(rec: &NotificationRecord, cutoff: jiff::Timestamp) -> bool {
    rec.purged_at.is_none() && rec.settled_since().is_some_and(|t| t <= cutoff)
}

fn before(now: jiff::Timestamp, d: Duration) -> jiff::Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_sub(d).ok())
        .unwrap_or(jiff::Timestamp::MIN)
}

/// One retention run at `now` as `actor`.
pub fn run(
    store: &Store,
    policy: &RetentionConfig,
    opts: &RunOptions,
    now: jiff::Timestamp,
    actor: &str,
) -> Result<RunReport, StoreError> {
    let (keep, keep_alerts) = match opts.older_than_secs {
        Some(s) => (Duration::from_secs(s), Duration::from_secs(s)),
        None => (policy.notification_after(), policy.alert_after()),
    };
    let cutoff = before(now, keep);
    let mut report = RunReport {
        dry_run: opts.dry_run,
        cutoff: cutoff.to_string(),
        ..RunReport::default()
    };
    let mut due_now = Vec::new();
    store.for_each_record(|rec| {
        if due(&rec, cutoff) {
            due_now.push(rec.receipt_id.as_str().to_owned());
        } else if rec.purged_at.is_none() && !rec.is_settled() && rec.received_at <= cutoff {
            report.waiting_kept += 1;
        }
        Ok(())
    })?;
    if opts.dry_run {
        report.purged = due_now;
    } else {
        for receipt in due_now {
            // Decided again under the writer lock: a withdrawal or a
            // re-queue since the scan keeps it.
            if store
                .purge_notification(&receipt, now, actor, |r| due(r, cutoff))?
                .is_some()
            {
                report.purged.push(receipt);
                // A long run keeps its progress across a crash.
                if report.purged.len() % FLUSH_EVERY == 0 {
                    store.flush_now()?;
                }
            }
        }
        store.flush_now()?;
    }
    report.alerts = store.purge_alerts(before(now, keep_alerts), opts.dry_run)?;
    // Never today's or yesterday's key (UTC): receipts are being made under
    // them.
    let yesterday = utc_day(now).yesterday().unwrap_or(utc_day(now));
    report.days_shredded = store
        .destroy_spent_day_keys(yesterday, actor, opts.dry_run)?
        .into_iter()
        .map(|d| d.to_string())
        .collect();
    if !opts.dry_run {
        store.set_retention_last(crate::store::retention::LastRun {
            at: now,
            purged: report.purged.len() as u64,
        })?;
    }
    Ok(report)
}

impl RunReport {
    /// The lines `kim retention run` prints: counts and receipts only.
    pub fn render(&self) -> String {
        let verb = if self.dry_run {
            "would purge"
        } else {
            "purged"
        };
        let mut s =
            format!(
            "retention: {verb} {} notification(s) settled before {}; {} finished alert record(s); \
             {} day key(s) {}; {} older notification(s) kept (a child still waits)\n",
            self.purged.len(),
            self.cutoff,
            self.alerts,
            self.days_shredded.len(),
            if self.dry_run { "would be destroyed" } else { "destroyed" },
            self.waiting_kept,
        );
        for r in &self.purged {
            s.push_str(&format!("  {r}\n"));
        }
        for d in &self.days_shredded {
            s.push_str(&format!(
                "  day {d}: key destroyed, its notifications shredded\n"
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests;
