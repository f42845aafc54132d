//! Review reminders (issue 12, item 2): committing, in one transaction, a
//! reminder to the `[review] notify` addresses (an [`AlertKind::AdminReview`]
//! outbox record marked with its [`ReviewReminder`]), its `alert_queued`
//! event, the waiting items' flags (so a restart neither repeats nor skips
//! a reminder) and, at the deadline, `deadline_missed` for each child still
//! waiting. Which children are due is decided outside the store
//! (`crate::daemon::review_remind::plan`). Identifiers only.

use super::alert_record::{AlertKind, AlertRecord};
use super::batch::Batch;
pub use super::notice_content::ReviewReminder;
use super::review::{review_key, ReviewItem};
use super::review_digest::{QueuedNotice, ReviewEntry};
use super::{FlushTicket, NotificationRecord, Store, StoreError};
use crate::audit::{Actor, EventKind, Refs};

/// The children (receipt, index) due for each reminder now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DueReminders {
    pub remind_at: Vec<(String, u32)>,
    pub deadline: Vec<(String, u32)>,
}

impl DueReminders {
    pub fn is_empty(&self) -> bool {
        self.remind_at.is_empty() && self.deadline.is_empty()
    }
}

/// A reminder just queued.
#[derive(Debug)]
pub struct QueuedReminder {
    pub kind: ReviewReminder,
    pub notice: QueuedNotice,
}

impl Store {
    /// Queues the reminders that `due` picks from the waiting children (as
    /// [`Store::review_list`] returns them, read under the writer lock, so a
    /// child decided meanwhile is never listed): one message per reminder
    /// kind, each child's flag set, `deadline_missed` audited (and the
    /// child's `deadline_met` set false) for those at the deadline. `None`
    /// if nothing is due.
    pub fn queue_review_reminders(
        &self,
        now: jiff::Timestamp,
        due: impl FnOnce(&[ReviewItem]) -> DueReminders,
    ) -> Result<Option<(FlushTicket, Vec<QueuedReminder>)>, StoreError> {
        let _w = self.lock_writer();
        let items = self.review_list()?;
        let due = due(&items);
        if due.is_empty() {
            return Ok(None);
        }
        let pick = |keys: &[(String, u32)]| -> Vec<ReviewItem> {
            items
                .iter()
                .filter(|i| {
                    keys.iter()
                        .any(|(r, x)| *r == i.receipt_id && *x == i.index)
                })
                .cloned()
                .collect()
        };
        let mut batch = Batch::new(self, now)?;
        let mut queued = Vec::new();
        let mut records = std::collections::BTreeMap::new();
        // Children from forces in test mode get reminders of their own,
        // sent only to the test recipient.
        let mut groups = Vec::new();
        for (kind, all) in [
            (ReviewReminder::RemindAt, pick(&due.remind_at)),
            (ReviewReminder::Deadline, pick(&due.deadline)),
        ] {
            let (test, live): (Vec<_>, Vec<_>) = all.into_iter().partition(|i| i.test);
            groups.push((kind, live));
            groups.push((kind, test));
        }
        for (kind, group) in groups {
            if group.is_empty() {
                continue;
            }
            let first = &group[0];
            let test = first.test;
            let id = format!(
                "review.{}.{}.{}.{}",
                kind.as_str().replace('_', "-"),
                now.as_microsecond(),
                first.receipt_id,
                first.index
            );
            let mut entries = Vec::with_capacity(group.len());
            for item in group {
                entries.push(ReviewEntry::of(&item));
                if kind == ReviewReminder::Deadline {
                    self.stage_deadline_missed(&mut batch, &mut records, &item)?;
                }
                let marked = ReviewItem {
                    reminded: true,
                    deadline_missed: item.deadline_missed || kind == ReviewReminder::Deadline,
                    ..item
                };
                let key = review_key(&marked.receipt_id, marked.index);
                let value =
                    serde_json::to_vec(&marked).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                batch.put_review(key, value);
            }
            let mut counts = vec![
                ("reminder", kind.as_str().into()),
                ("children", entries.len().into()),
            ];
            if test {
                counts.push(("test", true.into()));
            }
            batch.notice_queued(&id, "admin_review", &counts);
            queued.push(QueuedReminder {
                kind,
                notice: QueuedNotice {
                    id: id.clone(),
                    children: entries.len(),
                },
            });
            let mut notice = AlertRecord::new(id, AlertKind::AdminReview, "", 0, "", now);
            notice.review = Some(entries);
            notice.reminder = Some(kind);
            notice.test = test;
            batch.put_alert(notice);
        }
        for rec in records.into_values() {
            batch.put_record(rec);
        }
        let ticket = batch.commit(self)?;
        Ok(Some((ticket, queued)))
    }

    /// `deadline_missed` for a child still in review at its deadline, and
    /// its `deadline_met` false in the police status (in `records`, one
    /// copy per receipt for the batch).
    fn stage_deadline_missed(
        &self,
        batch: &mut Batch,
        records: &mut std::collections::BTreeMap<String, NotificationRecord>,
        item: &ReviewItem,
    ) -> Result<(), StoreError> {
        let deadline = item.deadline_by(&self.calendar());
        let mut detail = serde_json::Map::new();
        detail.insert("deadline".into(), deadline.to_string().into());
        detail.insert("state".into(), "needs_review".into());
        detail.insert("in_review".into(), true.into());
        batch.event(
            EventKind::DeadlineMissed,
            Actor::SYSTEM.as_str(),
            Refs {
                receipt: Some(item.receipt_id.clone()),
                child: Some(item.index),
                ..Refs::default()
            },
            detail,
        );
        if !records.contains_key(&item.receipt_id) {
            if let Some(rec) = self.record(&item.receipt_id)? {
                records.insert(item.receipt_id.clone(), rec);
            }
        }
        if let Some(c) = records
            .get_mut(&item.receipt_id)
            .and_then(|r| r.children.get_mut(item.index as usize))
        {
            c.deadline = Some(deadline);
            c.deadline_met = Some(false);
        }
        Ok(())
    }
}
