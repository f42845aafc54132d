//! The review reminder task (issue 12, item 2): a child still in review on
//! its deadline day is listed again in one reminder at `[review] remind_at`
//! (UK time), and once more at the deadline, when `deadline_missed` is
//! audited for it. [`plan`] decides, as a pure function of the waiting
//! items, the time and the flags stored with them, which reminders are due
//! and when the next one is; [`run`] sleeps until then (at most a minute,
//! to see new items) and has the store queue them
//! (`crate::store::review_remind`). Every reminder is recorded in the store
//! with the items, so a restart neither repeats one nor skips one: one
//! missed while kim was down is sent late.

use std::sync::Arc;
use std::time::Duration;

use jiff::civil::Time;
use jiff::Timestamp;

use crate::deliver::Clock;
use crate::store::review::ReviewItem;
use crate::store::review_remind::DueReminders;
use crate::store::Store;

/// The longest sleep: a child entering review is seen within this.
const LOOK_AGAIN: Duration = Duration::from_secs(60);

/// The reminder time of a child with `deadline`: `remind_at` (UK time) on
/// the deadline's day, if that is before the deadline.
pub fn remind_time(deadline: Timestamp, remind_at: Time) -> Option<Timestamp> {
    let day = deadline.to_zoned(crate::calendar::school_tz()).date();
    let t = day
        .to_datetime(remind_at)
        .to_zoned(crate::calendar::school_tz())
        .ok()?
        .timestamp();
    (t < deadline).then_some(t)
}

/// What is due at `now`, and when the next reminder is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub due: DueReminders,
    pub next: Option<Timestamp>,
}

/// Which waiting children are due for which reminder at `now`:
/// - at the deadline (and after it, once): the deadline reminder and
///   `deadline_missed`; it stands for the `remind_at` one if that was not
///   sent (kim was down), so a late child is reminded once, not twice;
/// - from `remind_at` on the deadline day until the deadline: the
///   `remind_at` reminder, once — also late, after a restart. A child that
///   entered review after its `remind_at` has just been told by the review
///   notice, so it has no `remind_at` reminder.
///
/// `items` carry their deadline (as `Store::review_list` returns them).
pub fn plan(items: &[ReviewItem], remind_at: Time, now: Timestamp) -> Plan {
    let mut p = Plan::default();
    let mut soonest = |t: Timestamp| {
        p.next = Some(p.next.map_or(t, |n: Timestamp| n.min(t)));
    };
    let mut due = DueReminders::default();
    for i in items {
        let Some(deadline) = i.deadline else { continue };
        if i.deadline_missed {
            continue;
        }
        let key = (i.receipt_id.clone(), i.index);
        if now >= deadline {
            due.deadline.push(key);
            continue;
        }
        soonest(deadline);
        if i.reminded {
            continue;
        }
        match remind_time(deadline, remind_at) {
            Some(r) if i.queued_at < r && now >= r => due.remind_at.push(key),
            Some(r) if i.queued_at < r => soonest(r),
            _ => {}
        }
    }
    p.due = due;
    p
}

fn until(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

/// Runs until `stop` changes, with time from `clock` (the tests' entry).
#[cfg(test)]
pub async fn run(
    store: Arc<Store>,
    remind_at: Time,
    clock: Arc<dyn Clock>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let (_keep, remind_at) = tokio::sync::watch::channel(remind_at);
    run_live(store, remind_at, clock, stop).await
}

/// As [`run`], with `remind_at` the live `[review] remind_at`: a reload's
/// new value is planned with at once.
pub async fn run_live(
    store: Arc<Store>,
    mut remind_at_rx: tokio::sync::watch::Receiver<Time>,
    clock: Arc<dyn Clock>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let remind_at = *remind_at_rx.borrow_and_update();
        let now = clock.now();
        let mut next = None;
        let mut wait = LOOK_AGAIN;
        if store.broken().is_none() {
            let queued = store.queue_review_reminders(now, |items| {
                let p = plan(items, remind_at, now);
                next = p.next;
                p.due
            });
            match queued {
                Ok(Some((ticket, reminders))) => match store.durable(ticket).await {
                    Ok(()) => {
                        for r in reminders {
                            tracing::info!(alert = %r.notice.id, children = r.notice.children, reminder = r.kind.as_str(), "review reminder queued");
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "review reminder not on disk; a restart sends it again")
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot queue the review reminder; retrying in 5s");
                    wait = Duration::from_secs(5);
                }
            }
        }
        if let Some(t) = next {
            wait = wait.min(until(clock.now(), t).max(Duration::from_millis(10)));
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(wait) => {}
            Ok(()) = remind_at_rx.changed() => {
                tracing::info!(remind_at = %*remind_at_rx.borrow(), "review reminders planned with the new remind_at");
            }
        }
    }
}

#[cfg(test)]
#[path = "review_remind_tests.rs"]
mod tests;
