//! The review queue's storage: review items (sealed, keyed by receipt and
//! child), the admins' sealed dismissal notes, and committing a decided
//! change to a child ([`ChildChange`]) with its audit events in one
//! transaction, so a crash matches nothing twice. What a matching result or
//! an admin's assign/dismiss changes is decided in
//! `crate::matching::review`; the store only commits it.

use super::alert_record::AlertEvent;
use super::batch::Batch;
use super::{trees, ChildState, FlushTicket, NotificationRecord, Store, StoreError};
use crate::calendar::SchoolCalendar;
use serde::{Deserialize, Serialize};

/// One child waiting for a human. No personal data: the admin reveals the
/// child's details through the notification (audited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItem {
    pub receipt_id: String,
    pub index: u32,
    pub force: String,
    pub police_reference: String,
    /// The stable reason code (`no_candidate`, `weak_name`, …), as the
    /// matching decision names it.
    pub reason: String,
    pub received_at: jiff::Timestamp,
    pub queued_at: jiff::Timestamp,
    /// A review notice naming this child is in the outbox
    /// (`crate::store::review_digest`).
    #[serde(default)]
    pub notified: bool,
    /// The deadline an alert would have had ([`ReviewItem::deadline_by`]),
    /// fixed when the child entered review; `review_list` fills it in for
    /// items stored before it was kept.
    #[serde(default)]
    pub deadline: Option<jiff::Timestamp>,
    /// The reminder at `[review] remind_at` on the deadline day is queued
    /// (`crate::store::review_remind`).
    #[serde(default)]
    pub reminded: bool,
    /// The deadline passed with the child waiting: `deadline_missed` is
    /// audited and the deadline reminder queued.
    #[serde(default)]
    pub deadline_missed: bool,
    /// From a notification in test mode: its review notices are apart and
    /// go only to `[mail] test_recipient`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

impl ReviewItem {
    /// The child's deadline: the one stored with the item, or else the one
    /// function every deadline comes from, [`SchoolCalendar::deadline`] of
    /// the receipt time (08:00 UK on the next school day, closures skipped).
    pub fn deadline_by(&self, calendar: &SchoolCalendar) -> jiff::Timestamp {
        self.deadline
            .unwrap_or_else(|| calendar.deadline(self.received_at))
    }
}

/// Why an admin action on the review queue could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no child {index} of receipt {receipt} is waiting for review")]
    NotInQueue { receipt: String, index: u32 },
    #[error("no school with URN {0} in the school directory")]
    UnknownSchool(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a change does to the child's review item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewSlot {
    /// Queue the child for a human.
    Queue(ReviewItem),
    /// The child leaves the queue (an admin decided).
    Resolve,
}

/// A change to one child of a notification, decided outside the store
/// (`crate::matching::review`): committed as it is, in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildChange {
    pub index: u32,
    pub state: ChildState,
    pub school_urn: Option<String>,
    /// Audit events, written before the alert's `alert_queued`.
    pub events: Vec<AlertEvent>,
    /// Queue the DSL alert to `school_urn` (with its school-day deadline).
    pub queue_alert: bool,
    pub review: Option<ReviewSlot>,
}

pub(crate) fn review_key(receipt: &str, index: u32) -> Vec<u8> {
    let mut k = receipt.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

impl Store {
    /// Commits the matching stage's decisions for every child of `receipt`
    /// (`decide` is handed the record and the commit time) and removes its
    /// work item, atomically. Returns `None` if the work item was already
    /// gone (done before a crash): nothing is recorded twice.
    pub fn complete_match_with(
        &self,
        receipt: &str,
        now: jiff::Timestamp,
        decide: impl FnOnce(&NotificationRecord, jiff::Timestamp) -> Vec<ChildChange>,
    ) -> Result<Option<FlushTicket>, StoreError> {
        let _w = self.lock_writer();
        if !self.t.work_match.contains_key(receipt.as_bytes())? {
            return Ok(None);
        }
        let mut rec = self
            .record(receipt)?
            .ok_or_else(|| StoreError::Corrupt(format!("work item without record {receipt}")))?;
        let mut batch = Batch::new(self, now)?;
        batch.complete_work(receipt);
        for change in decide(&rec, now) {
            let index = change.index;
            if !self.stage_child(&mut batch, &mut rec, change)? {
                return Err(StoreError::Corrupt(format!("child {index} of {receipt}")));
            }
        }
        batch.put_record(rec);
        Ok(Some(batch.commit(self)?))
    }

    /// Commits an admin's decision on child `index` of `receipt`, which must
    /// be waiting for review; `note` (a dismissal's reason) is kept sealed,
    /// never in the audit.
    pub fn resolve_review_with(
        &self,
        receipt: &str,
        index: u32,
        note: Option<&str>,
        decide: impl FnOnce(&NotificationRecord) -> ChildChange,
    ) -> Result<FlushTicket, ReviewError> {
        let key = review_key(receipt, index);
        if let Some(note) = note {
            let sealed = self.seal_personal(trees::DISMISSALS, &key, note.as_bytes())?;
            self.t
                .dismissals
                .insert(key.clone(), sealed)
                .map_err(StoreError::from)?;
        }
        let _w = self.lock_writer();
        let not_queued = || ReviewError::NotInQueue {
            receipt: receipt.to_owned(),
            index,
        };
        if !self.t.review.contains_key(&key).map_err(StoreError::from)? {
            return Err(not_queued());
        }
        let mut rec: NotificationRecord = self.record(receipt)?.ok_or_else(not_queued)?;
        let change = decide(&rec);
        let mut batch = Batch::new(self, jiff::Timestamp::now())?;
        if change.index != index || !self.stage_child(&mut batch, &mut rec, change)? {
            return Err(not_queued());
        }
        batch.put_record(rec);
        let ticket = batch.commit(self)?;
        // Decided: the candidates kept for the admin are not needed any more.
        self.drop_review_candidates(&key)?;
        Ok(ticket)
    }

    /// Puts one decided child change into `batch`; `false` if the record
    /// has no such child.
    fn stage_child(
        &self,
        batch: &mut Batch,
        rec: &mut NotificationRecord,
        change: ChildChange,
    ) -> Result<bool, StoreError> {
        // A child entering review gets the deadline an alert would have,
        // kept with the item and shown in the police status.
        let review = match change.review {
            Some(ReviewSlot::Queue(mut item)) => {
                item.deadline = Some(item.deadline_by(&self.calendar()));
                Some(ReviewSlot::Queue(item))
            }
            other => other,
        };
        let Some(child) = rec.children.get_mut(change.index as usize) else {
            return Ok(false);
        };
        child.state = change.state;
        child.school_urn = change.school_urn.clone();
        if let Some(ReviewSlot::Queue(item)) = &review {
            child.deadline = item.deadline;
        }
        let key = review_key(rec.receipt_id.as_str(), change.index);
        match review {
            Some(ReviewSlot::Queue(item)) => {
                let value =
                    serde_json::to_vec(&item).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                batch.put_review(key, value);
            }
            Some(ReviewSlot::Resolve) => batch.del_review(key),
            None => {}
        }
        for ev in change.events {
            batch.event(ev.kind, &ev.actor, ev.refs, ev.detail);
        }
        if let (true, Some(urn)) = (change.queue_alert, change.school_urn) {
            batch.queue_alert(self, rec, change.index, &urn);
        }
        Ok(true)
    }

    /// Every child waiting for review, the longest waiting first, each with
    /// its deadline.
    pub fn review_list(&self) -> Result<Vec<ReviewItem>, StoreError> {
        let mut items: Vec<ReviewItem> = self.open_all(&self.t.review, trees::REVIEW, |e| {
            format!("review item: {e}")
        })?;
        items.sort_by_key(|i| (i.queued_at, i.receipt_id.clone(), i.index));
        let calendar = self.calendar();
        for i in &mut items {
            i.deadline = Some(i.deadline_by(&calendar));
        }
        Ok(items)
    }
}
