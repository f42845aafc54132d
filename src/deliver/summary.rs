//! The morning summary (issue 18, item 4): when it is due
//! ([`due`]: `[delivery] summary_at` on a school day, Europe/London), what
//! it counts ([`compute`]: from the audit since the previous school day's
//! summary, the outbox's waiting alerts and the review queue — identifiers,
//! states and codes only) and queueing it once per day ([`queue_if_due`];
//! the store refuses a second one for the same day). The daemon's task
//! (`crate::daemon::summary`) calls [`queue_if_due`] on a short tick.

use std::time::Duration;

use jiff::civil::{Date, Time};
use jiff::Timestamp;

use crate::audit::EventKind;
use crate::calendar::{school_tz, SchoolCalendar};
use crate::store::outbox::{AlertKind, AlertState};
use crate::store::summary::{Summary, SummaryItem};
use crate::store::{ChildState, FlushTicket, Store, StoreError};

/// A daemon started this long after `summary_at` still sends the day's
/// summary (a restart at that moment does not lose it).
pub const GRACE: Duration = Duration::from_secs(5 * 60);

/// How far back failed alerts are listed as needing a human.
const FAILED_LOOKBACK: jiff::SignedDuration = jiff::SignedDuration::from_hours(30 * 24);

fn at_on(day: Date, at: Time) -> Option<Timestamp> {
    day.to_datetime(at)
        .to_zoned(school_tz())
        .ok()
        .map(|z| z.timestamp())
}

/// The school day whose summary is due at `now`: today (UK) when it is a
/// school day and `now` is within [`GRACE`] after `at`.
pub fn due(cal: &SchoolCalendar, at: Time, now: Timestamp) -> Option<Date> {
    let today = now.to_zoned(school_tz()).date();
    if !cal.is_school_day(today) {
        return None;
    }
    let t = at_on(today, at)?;
    let grace = jiff::SignedDuration::try_from(GRACE).ok()?;
    (t <= now && now < t.checked_add(grace).ok()?).then_some(today)
}

/// Where `day`'s summary starts counting: the previous school day's
/// summary time (so Monday's covers Friday morning to Monday morning).
pub fn window_start(cal: &SchoolCalendar, at: Time, day: Date) -> Option<Timestamp> {
    let mut d = day;
    for _ in 0..400 {
        d = d.yesterday().ok()?;
        if cal.is_school_day(d) {
            return at_on(d, at);
        }
    }
    None
}

/// What `day`'s summary says, counting from `since` to `now`.
pub fn compute(
    store: &Store,
    day: Date,
    since: Timestamp,
    now: Timestamp,
) -> Result<Summary, StoreError> {
    let mut s = Summary {
        day: Some(day),
        since: Some(since),
        until: Some(now),
        ..Summary::default()
    };
    for ev in store.audit_events_from(since)? {
        let ev = ev?;
        // A report leaves out what forces in test mode sent.
        if ev.time > now || ev.detail.get("test").and_then(|t| t.as_bool()) == Some(true) {
            continue;
        }
        let dsl = ev
            .refs
            .alert_id
            .as_deref()
            .is_some_and(|id| id.matches('.').count() == 1 && !id.starts_with("summary."));
        match ev.kind {
            EventKind::Received => s.notifications_received += 1,
            EventKind::Matched => s.children_matched += 1,
            EventKind::NeedsReview => s.children_to_review += 1,
            EventKind::Reviewed
                if ev.detail.get("decision").and_then(|d| d.as_str()) == Some("dismissed") =>
            {
                s.children_dismissed += 1
            }
            EventKind::Delivered if dsl => {
                if ev.detail.get("deadline_met").and_then(|m| m.as_bool()) == Some(false) {
                    s.delivered_late += 1;
                } else {
                    s.delivered_on_time += 1;
                }
            }
            EventKind::Failed if dsl => s.failed += 1,
            _ => {}
        }
    }
    let mut items = Vec::new();
    for a in store.active_alerts()? {
        if a.kind != AlertKind::Dsl || a.test {
            continue;
        }
        s.waiting += 1;
        if a.deadline.is_some_and(|d| d < now) {
            items.push(SummaryItem {
                what: "late".into(),
                id: a.id.clone(),
                school_urn: Some(a.urn.clone()),
                detail: format!(
                    "still {}, {} attempt(s), last code {}",
                    a.state.as_str(),
                    a.attempts,
                    a.last_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into())
                ),
                command: format!("kim alerts show {}", a.id),
            });
        }
    }
    let failed = |e: &crate::store::IndexEntry| e.state == AlertState::Failed && e.kind.to_school();
    for a in store.alerts_newest_first(Some(now - FAILED_LOOKBACK), failed) {
        let a = a?;
        if a.state != AlertState::Failed || a.test {
            continue;
        }
        let withdrawn = store
            .record(&a.receipt)?
            .and_then(|r| r.children.get(a.child as usize).map(|c| c.state))
            == Some(ChildState::Withdrawn);
        if withdrawn {
            continue;
        }
        items.push(SummaryItem {
            what: "failed".into(),
            id: a.id.clone(),
            school_urn: Some(a.urn.clone()),
            detail: format!(
                "last code {}",
                a.last_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into())
            ),
            command: format!(
                "kim alerts show {0}; once the directory is right: kim alerts retry {0}",
                a.id
            ),
        });
    }
    let review: Vec<_> = store
        .review_list()?
        .into_iter()
        .filter(|r| !r.test)
        .collect();
    s.in_review = review.len() as u64;
    for r in review {
        items.push(SummaryItem {
            what: "review".into(),
            id: format!("{} child {}", r.receipt_id, r.index),
            school_urn: None,
            detail: r.reason.clone(),
            command: format!(
                "kim status {0} --reveal; then kim review assign {0} {1} URN or kim review dismiss {0} {1} --reason TEXT",
                r.receipt_id, r.index
            ),
        });
    }
    s.needs_a_human = items;
    Ok(s)
}

/// Queues today's summary if it is due at `now` and not yet queued:
/// the summary's outbox id and the write to wait for.
pub fn queue_if_due(
    store: &Store,
    cal: &SchoolCalendar,
    at: Time,
    now: Timestamp,
) -> Result<Option<(String, FlushTicket)>, StoreError> {
    let Some(day) = due(cal, at, now) else {
        return Ok(None);
    };
    if store
        .alert(&crate::store::summary::summary_id(day))?
        .is_some()
    {
        return Ok(None);
    }
    let since = window_start(cal, at, day).unwrap_or(now - jiff::SignedDuration::from_hours(24));
    let summary = compute(store, day, since, now)?;
    store.queue_summary(summary, now)
}

#[cfg(test)]
#[path = "summary_tests.rs"]
mod tests;
