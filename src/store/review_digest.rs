//! The review notice's digest (issue 12, item 1): children that entered the
//! review queue and are not yet named in a notice are the open digest (a
//! flag on their stored [`ReviewItem`], so a crash loses nothing). Closing
//! the digest commits, in one transaction, the notice to the `[review]
//! notify` addresses (an [`AlertKind::AdminReview`] outbox record, delivered
//! like any alert), its `alert_queued` audit event and the items' flags.
//! Identifiers, reason codes and deadlines only: never a child's details.

use std::time::Duration;

use super::alert_record::{AlertKind, AlertRecord};
use super::batch::Batch;
pub use super::notice_content::ReviewEntry;
use super::review::{review_key, ReviewItem};
use super::{FlushTicket, Store, StoreError};

impl ReviewEntry {
    /// The entry for a waiting child (as `review_list` returns it, with its
    /// deadline).
    pub(crate) fn of(item: &ReviewItem) -> Self {
        Self {
            receipt: item.receipt_id.clone(),
            index: item.index,
            reason: item.reason.clone(),
            force: item.force.clone(),
            police_reference: item.police_reference.clone(),
            deadline: item.deadline.unwrap_or(item.received_at),
        }
    }
}

/// A review notice just queued.
#[derive(Debug)]
pub struct QueuedNotice {
    pub id: String,
    pub children: usize,
}

/// What the review queue holds now, for the metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReviewStats {
    pub waiting: usize,
    pub oldest_seconds: i64,
    pub past_deadline: usize,
}

fn add(t: jiff::Timestamp, d: Duration) -> jiff::Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(t)
}

impl Store {
    /// Closes the open digest if its first child has waited `every` (at
    /// `now`): queues one notice listing every child not yet notified, or
    /// (with `every` zero) one notice per child. Empty if nothing is due.
    pub fn close_review_digest(
        &self,
        now: jiff::Timestamp,
        every: Duration,
    ) -> Result<Option<(FlushTicket, Vec<QueuedNotice>)>, StoreError> {
        let _w = self.lock_writer();
        let open: Vec<ReviewItem> = self
            .review_list()?
            .into_iter()
            .filter(|i| !i.notified)
            .collect();
        let Some(first) = open.first() else {
            return Ok(None);
        };
        if add(first.queued_at, every) > now {
            return Ok(None);
        }
        let groups: Vec<Vec<ReviewItem>> = if every.is_zero() {
            open.into_iter().map(|i| vec![i]).collect()
        } else {
            // Children from forces in test mode get a notice of their own,
            // sent only to the test recipient.
            let (test, live): (Vec<_>, Vec<_>) = open.into_iter().partition(|i| i.test);
            [live, test].into_iter().filter(|g| !g.is_empty()).collect()
        };
        let mut batch = Batch::new(self, now)?;
        let mut queued = Vec::new();
        for group in groups {
            let first = &group[0];
            let test = first.test;
            let id = format!(
                "review.{}.{}.{}",
                now.as_microsecond(),
                first.receipt_id,
                first.index
            );
            let mut entries = Vec::with_capacity(group.len());
            for item in group {
                entries.push(ReviewEntry::of(&item));
                let key = review_key(&item.receipt_id, item.index);
                let marked = ReviewItem {
                    notified: true,
                    ..item
                };
                let value =
                    serde_json::to_vec(&marked).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                batch.put_review(key, value);
            }
            let mut notice = AlertRecord::new(id.clone(), AlertKind::AdminReview, "", 0, "", now);
            let mut counts = vec![("children", entries.len().into())];
            if test {
                counts.push(("test", true.into()));
            }
            batch.notice_queued(&id, "admin_review", &counts);
            queued.push((id, entries.len()));
            notice.review = Some(entries);
            notice.test = test;
            batch.put_alert(notice);
        }
        let ticket = batch.commit(self)?;
        let out = queued
            .into_iter()
            .map(|(id, children)| QueuedNotice { id, children })
            .collect();
        Ok(Some((ticket, out)))
    }

    /// The review queue's size, age and deadlines at `now`.
    pub fn review_stats(&self, now: jiff::Timestamp) -> Result<ReviewStats, StoreError> {
        let items = self.review_list()?;
        let calendar = self.calendar();
        let oldest = items
            .iter()
            .map(|i| i.queued_at)
            .min()
            .map_or(0, |t| now.duration_since(t).as_secs().max(0));
        Ok(ReviewStats {
            waiting: items.len(),
            oldest_seconds: oldest,
            past_deadline: items
                .iter()
                .filter(|i| i.deadline_by(&calendar) < now)
                .count(),
        })
    }
}
