//! Matching outcomes and the review queue: recording a notification's
//! decisions (child states, review items, `matched`/`needs_review` audit
//! events, the work item removed) in one transaction, so a crash matches
//! nothing twice; and the admin's assign/dismiss of review items.

use super::batch::Batch;
use super::{trees, ChildState, FlushTicket, NotificationRecord, Store, StoreError};
use crate::audit::{Actor, EventKind, Refs};
use crate::matching::decide::{Decision, ReviewReason};
use serde::{Deserialize, Serialize};

/// One child waiting for a human. No personal data: the admin reveals the
/// child's details through the notification (audited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItem {
    pub receipt_id: String,
    pub index: u32,
    pub force: String,
    pub police_reference: String,
    pub reason: ReviewReason,
    pub received_at: jiff::Timestamp,
    pub queued_at: jiff::Timestamp,
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

pub(crate) fn review_key(receipt: &str, index: u32) -> Vec<u8> {
    let mut k = receipt.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// Records the matching stage's decisions for every child of `receipt`
    /// and removes its work item, atomically. Returns `None` if the work item
    /// was already gone (done before a crash): nothing is recorded twice.
    pub fn complete_match(
        &self,
        receipt: &str,
        decisions: &[(u32, Decision)],
    ) -> Result<Option<FlushTicket>, StoreError> {
        self.complete_match_at(receipt, decisions, jiff::Timestamp::now())
    }

    /// `complete_match` at a given time (the alert's queue time).
    pub fn complete_match_at(
        &self,
        receipt: &str,
        decisions: &[(u32, Decision)],
        now: jiff::Timestamp,
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
        for (index, d) in decisions {
            let Some(child) = rec.children.get_mut(*index as usize) else {
                return Err(StoreError::Corrupt(format!("child {index} of {receipt}")));
            };
            let mut detail = serde_json::Map::new();
            let refs = |urn: Option<String>| Refs {
                receipt: Some(receipt.to_owned()),
                child: Some(*index),
                school_urn: urn,
                alert_id: None,
            };
            match d {
                Decision::Matched { urn, basis } => {
                    child.state = ChildState::Matched;
                    child.school_urn = Some(urn.clone());
                    detail.insert("basis".into(), (*basis).into());
                    batch.event(
                        EventKind::Matched,
                        Actor::SYSTEM.as_str(),
                        refs(Some(urn.clone())),
                        detail,
                    );
                    batch.queue_alert(self, &mut rec, *index, urn);
                }
                Decision::NeedsReview(reason) => {
                    child.state = ChildState::NeedsReview;
                    detail.insert("reason".into(), reason.as_str().into());
                    batch.put_review(
                        review_key(receipt, *index),
                        json(&ReviewItem {
                            receipt_id: receipt.to_owned(),
                            index: *index,
                            force: rec.force.clone(),
                            police_reference: rec.police_reference.clone(),
                            reason: *reason,
                            received_at: rec.received_at,
                            queued_at: batch.now(),
                        })?,
                    );
                    batch.event(
                        EventKind::NeedsReview,
                        Actor::SYSTEM.as_str(),
                        refs(None),
                        detail,
                    );
                }
            }
        }
        batch.put_record(rec);
        Ok(Some(batch.commit(self)?))
    }

    /// Every child waiting for review, oldest receipt key first.
    pub fn review_list(&self) -> Result<Vec<ReviewItem>, StoreError> {
        let mut items: Vec<ReviewItem> = self
            .t
            .review
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                let plain = self.keys.seal_key().open(trees::REVIEW, &k, &v)?;
                serde_json::from_slice(&plain)
                    .map_err(|e| StoreError::Corrupt(format!("review item: {e}")))
            })
            .collect::<Result<_, _>>()?;
        items.sort_by_key(|i| (i.queued_at, i.receipt_id.clone(), i.index));
        Ok(items)
    }

    /// An admin decides the school: the child becomes `matched`.
    pub fn review_assign(
        &self,
        receipt: &str,
        index: u32,
        urn: &str,
        actor: &str,
    ) -> Result<FlushTicket, ReviewError> {
        if self.school(urn)?.is_none() {
            return Err(ReviewError::UnknownSchool(urn.to_owned()));
        }
        self.review_resolve(
            receipt,
            index,
            actor,
            ChildState::Matched,
            Some(urn),
            "assigned",
        )
    }

    /// An admin decides the child is not for kim to notify (not on the roll,
    /// out of area…): the child becomes `failed`, so the police know kim did
    /// not tell a school. The reason text is kept sealed, never in the audit.
    pub fn review_dismiss(
        &self,
        receipt: &str,
        index: u32,
        reason: &str,
        actor: &str,
    ) -> Result<FlushTicket, ReviewError> {
        let key = review_key(receipt, index);
        let sealed = self
            .keys
            .seal_key()
            .seal(trees::DISMISSALS, &key, reason.as_bytes())
            .map_err(StoreError::from)?;
        self.t
            .dismissals
            .insert(key, sealed)
            .map_err(StoreError::from)?;
        self.review_resolve(receipt, index, actor, ChildState::Failed, None, "dismissed")
    }

    fn review_resolve(
        &self,
        receipt: &str,
        index: u32,
        actor: &str,
        state: ChildState,
        urn: Option<&str>,
        decision: &str,
    ) -> Result<FlushTicket, ReviewError> {
        let _w = self.lock_writer();
        let key = review_key(receipt, index);
        let not_queued = || ReviewError::NotInQueue {
            receipt: receipt.to_owned(),
            index,
        };
        if !self.t.review.contains_key(&key).map_err(StoreError::from)? {
            return Err(not_queued());
        }
        let mut rec: NotificationRecord = self.record(receipt)?.ok_or_else(not_queued)?;
        let child = rec
            .children
            .get_mut(index as usize)
            .ok_or_else(not_queued)?;
        child.state = state;
        child.school_urn = urn.map(str::to_owned);
        let mut batch = Batch::new(self, jiff::Timestamp::now())?;
        let mut detail = serde_json::Map::new();
        detail.insert("decision".into(), decision.into());
        batch.event(
            EventKind::Reviewed,
            actor,
            Refs {
                receipt: Some(receipt.to_owned()),
                child: Some(index),
                school_urn: urn.map(str::to_owned),
                alert_id: None,
            },
            detail,
        );
        if let Some(urn) = urn {
            batch.queue_alert(self, &mut rec, index, urn);
        }
        batch.del_review(key);
        batch.put_record(rec);
        Ok(batch.commit(self)?)
    }
}
