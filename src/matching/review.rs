//! Review decisions (DESIGN §5.3–5.4): what a matching result, or an
//! admin's `review assign` / `review dismiss`, changes for one child: its
//! state and school, the review item, the audit events and whether the
//! DSL alert is queued. Pure functions of the record: no sled, no clock;
//! the store commits what they return ([`ChildChange`]) in one transaction.
//! The admin verbs and the matching stage reach them through the `Store`
//! methods below.

use serde_json::{Map, Value};

use super::decide::Decision;
use crate::audit::{Actor, EventKind, Refs};
use crate::store::outbox::AlertEvent;
use crate::store::review::{ChildChange, ReviewError, ReviewItem, ReviewSlot};
use crate::store::{ChildState, FlushTicket, NotificationRecord, Store, StoreError};

/// What an admin decided for a child waiting for review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminChoice<'a> {
    /// The child attends the school with this URN.
    Assign { urn: &'a str },
    /// Not for kim to notify (not on the roll, out of area…).
    Dismiss,
}

fn event(
    kind: EventKind,
    actor: &str,
    rec: &NotificationRecord,
    index: u32,
    urn: Option<&str>,
    key: &str,
    value: &str,
) -> AlertEvent {
    let mut detail = Map::new();
    detail.insert(key.into(), Value::from(value));
    if rec.test {
        detail.insert("test".into(), Value::from(true));
    }
    AlertEvent {
        kind,
        actor: actor.to_owned(),
        refs: Refs {
            receipt: Some(rec.receipt_id.as_str().to_owned()),
            child: Some(index),
            school_urn: urn.map(str::to_owned),
            alert_id: None,
        },
        detail,
    }
}

/// What the matching stage's decision for child `index` changes, at `now`.
pub fn on_match(
    rec: &NotificationRecord,
    index: u32,
    decision: &Decision,
    now: jiff::Timestamp,
) -> ChildChange {
    match decision {
        Decision::Matched { urn, basis } => ChildChange {
            index,
            state: ChildState::Matched,
            school_urn: Some(urn.clone()),
            events: vec![event(
                EventKind::Matched,
                Actor::SYSTEM.as_str(),
                rec,
                index,
                Some(urn),
                "basis",
                basis,
            )],
            queue_alert: true,
            review: None,
        },
        Decision::NeedsReview(reason) => ChildChange {
            index,
            state: ChildState::NeedsReview,
            school_urn: rec
                .children
                .get(index as usize)
                .and_then(|c| c.school_urn.clone()),
            events: vec![event(
                EventKind::NeedsReview,
                Actor::SYSTEM.as_str(),
                rec,
                index,
                None,
                "reason",
                reason.as_str(),
            )],
            queue_alert: false,
            review: Some(ReviewSlot::Queue(ReviewItem {
                receipt_id: rec.receipt_id.as_str().to_owned(),
                index,
                force: rec.force.clone(),
                police_reference: rec.police_reference.clone(),
                reason: reason.as_str().to_owned(),
                received_at: rec.received_at,
                queued_at: now,
                notified: false,
                deadline: None,
                reminded: false,
                deadline_missed: false,
                test: rec.test,
            })),
        },
    }
}

/// What an admin's choice for child `index` changes: assigned, the child
/// is `matched` and its DSL alert queued; dismissed, it is `failed`, so the
/// police know kim did not tell a school.
pub fn on_admin(
    rec: &NotificationRecord,
    index: u32,
    choice: AdminChoice<'_>,
    actor: &str,
) -> ChildChange {
    let (state, urn, decision) = match choice {
        AdminChoice::Assign { urn } => (ChildState::Matched, Some(urn), "assigned"),
        AdminChoice::Dismiss => (ChildState::Failed, None, "dismissed"),
    };
    ChildChange {
        index,
        state,
        school_urn: urn.map(str::to_owned),
        events: vec![event(
            EventKind::Reviewed,
            actor,
            rec,
            index,
            urn,
            "decision",
            decision,
        )],
        queue_alert: urn.is_some(),
        review: Some(ReviewSlot::Resolve),
    }
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
        self.complete_match_with(receipt, now, |rec, now| {
            decisions
                .iter()
                .map(|(index, d)| on_match(rec, *index, d, now))
                .collect()
        })
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
        self.resolve_review_with(receipt, index, None, |rec| {
            on_admin(rec, index, AdminChoice::Assign { urn }, actor)
        })
    }

    /// An admin decides the school through a pupil of the roll (one of the
    /// candidates `kim review show` lists): the child becomes `matched` at
    /// `urn`, the pupil's school, and the `reviewed` event records the
    /// pupil's id (the local authority's record key, no name).
    pub fn review_assign_pupil(
        &self,
        receipt: &str,
        index: u32,
        urn: &str,
        pupil_id: &str,
        actor: &str,
    ) -> Result<FlushTicket, ReviewError> {
        if self.school(urn)?.is_none() {
            return Err(ReviewError::UnknownSchool(urn.to_owned()));
        }
        self.resolve_review_with(receipt, index, None, |rec| {
            let mut change = on_admin(rec, index, AdminChoice::Assign { urn }, actor);
            for ev in &mut change.events {
                ev.detail.insert("pupil".into(), Value::from(pupil_id));
            }
            change
        })
    }

    /// An admin decides the child is not for kim to notify: the child
    /// becomes `failed`. The reason text is kept sealed, never in the audit.
    pub fn review_dismiss(
        &self,
        receipt: &str,
        index: u32,
        reason: &str,
        actor: &str,
    ) -> Result<FlushTicket, ReviewError> {
        self.resolve_review_with(receipt, index, Some(reason), |rec| {
            on_admin(rec, index, AdminChoice::Dismiss, actor)
        })
    }
}

#[cfg(test)]
#[path = "review_tests.rs"]
mod tests;
