//! Review decisions without a store: every matching decision (each review
//! reason) and both admin choices, on a record built in memory.

use super::*;
use crate::matching::decide::ReviewReason;
use crate::store::{ChildStatus, ReceiptId};

fn t(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn record() -> NotificationRecord {
    NotificationRecord {
        receipt_id: ReceiptId::parse("0000-0000-0000-0001").unwrap(),
        force: "kent".into(),
        police_reference: "KNT/26/1".into(),
        received_at: t("2026-11-22T21:45:00Z"),
        fingerprint: "f".into(),
        children: (0..2)
            .map(|index| ChildStatus {
                index,
                state: ChildState::Queued,
                school_urn: None,
                delivered_at: None,
                deadline: None,
                deadline_met: None,
            })
            .collect(),
        test: false,
        settled_at: None,
        purged_at: None,
    }
}

fn refs(index: u32, urn: Option<&str>) -> Refs {
    Refs {
        receipt: Some("0000-0000-0000-0001".into()),
        child: Some(index),
        school_urn: urn.map(str::to_owned),
        alert_id: None,
    }
}

fn ev(kind: EventKind, actor: &str, refs: Refs, key: &str, value: &str) -> AlertEvent {
    AlertEvent {
        kind,
        actor: actor.into(),
        refs,
        detail: [(key.to_owned(), Value::from(value))].into_iter().collect(),
    }
}

#[test]
fn a_match_sets_the_school_queues_the_alert_and_audits_the_basis() {
    let d = Decision::Matched {
        urn: "100001".into(),
        basis: "exact",
    };
    let c = on_match(&record(), 1, &d, t("2026-11-22T21:46:00Z"));
    assert_eq!(
        c,
        ChildChange {
            index: 1,
            state: ChildState::Matched,
            school_urn: Some("100001".into()),
            events: vec![ev(
                EventKind::Matched,
                "system",
                refs(1, Some("100001")),
                "basis",
                "exact"
            )],
            queue_alert: true,
            review: None,
        }
    );
}

#[test]
fn every_review_reason_queues_an_item_with_its_code_and_no_alert() {
    let now = t("2026-11-22T21:46:00Z");
    for reason in ReviewReason::ALL {
        let c = on_match(&record(), 0, &Decision::NeedsReview(reason), now);
        assert_eq!(
            c,
            ChildChange {
                index: 0,
                state: ChildState::NeedsReview,
                school_urn: None,
                events: vec![ev(
                    EventKind::NeedsReview,
                    "system",
                    refs(0, None),
                    "reason",
                    reason.as_str()
                )],
                queue_alert: false,
                review: Some(ReviewSlot::Queue(ReviewItem {
                    receipt_id: "0000-0000-0000-0001".into(),
                    index: 0,
                    force: "kent".into(),
                    police_reference: "KNT/26/1".into(),
                    reason: reason.as_str().into(),
                    received_at: t("2026-11-22T21:45:00Z"),
                    queued_at: now,
                    notified: false,
                    deadline: None,
                    reminded: false,
                    deadline_missed: false,
                    test: false,
                })),
            },
            "{reason:?}"
        );
    }
}

#[test]
fn assign_matches_the_child_resolves_the_item_and_queues_the_alert() {
    let c = on_admin(
        &record(),
        1,
        AdminChoice::Assign { urn: "100002" },
        "admin:alice",
    );
    assert_eq!(
        c,
        ChildChange {
            index: 1,
            state: ChildState::Matched,
            school_urn: Some("100002".into()),
            events: vec![ev(
                EventKind::Reviewed,
                "admin:alice",
                refs(1, Some("100002")),
                "decision",
                "assigned"
            )],
            queue_alert: true,
            review: Some(ReviewSlot::Resolve),
        }
    );
}

#[test]
fn dismiss_fails_the_child_without_a_school_or_an_alert() {
    let mut rec = record();
    rec.children[0].school_urn = Some("100001".into());
    let c = on_admin(&rec, 0, AdminChoice::Dismiss, "admin:alice");
    assert_eq!(
        c,
        ChildChange {
            index: 0,
            state: ChildState::Failed,
            school_urn: None,
            events: vec![ev(
                EventKind::Reviewed,
                "admin:alice",
                refs(0, None),
                "decision",
                "dismissed"
            )],
            queue_alert: false,
            review: Some(ReviewSlot::Resolve),
        }
    );
}
