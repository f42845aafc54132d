//! The morning summary with an injected clock on a real sled store: due
//! once at `summary_at` on a school day (winter and summer time), never on
//! a weekend or a closure; counts since the previous school day's summary;
//! lists exactly the alerts and review items that need a human, with the
//! command to act; no child's name, date of birth or postcode.

use std::sync::Arc;

use super::*;
use crate::deliver::transition::{Outcome, SendOutcome};
use crate::import::School;
use crate::matching::decide::{Decision, ReviewReason};
use crate::store::crypto::MasterKey;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn at() -> Time {
    jiff::civil::time(7, 15, 0, 0)
}

fn cal() -> SchoolCalendar {
    SchoolCalendar::new(
        jiff::civil::time(8, 0, 0, 0),
        &[jiff::civil::date(2026, 12, 2)],
    )
}

#[test]
fn due_at_summary_at_on_school_days_only() {
    let c = cal();
    // Tuesday 1 December 2026 (GMT).
    assert_eq!(
        due(&c, at(), t("2026-12-01T07:15:00Z")),
        Some(jiff::civil::date(2026, 12, 1))
    );
    assert!(due(&c, at(), t("2026-12-01T07:19:59Z")).is_some());
    assert_eq!(due(&c, at(), t("2026-12-01T07:14:59Z")), None);
    assert_eq!(due(&c, at(), t("2026-12-01T07:20:00Z")), None);
    assert_eq!(due(&c, at(), t("2026-12-01T19:15:00Z")), None);
    // Wednesday 2 December is a closure; Saturday and Sunday are not school days.
    assert_eq!(due(&c, at(), t("2026-12-02T07:16:00Z")), None);
    assert_eq!(due(&c, at(), t("2026-11-28T07:16:00Z")), None);
    assert_eq!(due(&c, at(), t("2026-11-29T07:16:00Z")), None);
    // Summer time: 07:15 in London is 06:15 UTC.
    assert!(due(&c, at(), t("2026-06-02T06:16:00Z")).is_some());
    assert_eq!(due(&c, at(), t("2026-06-02T07:16:00Z")), None);
    // Monday's summary counts from Friday's; Thursday's from Tuesday's (closure).
    assert_eq!(
        window_start(&c, at(), jiff::civil::date(2026, 11, 30)),
        Some(t("2026-11-27T07:15:00Z"))
    );
    assert_eq!(
        window_start(&c, at(), jiff::civil::date(2026, 12, 3)),
        Some(t("2026-12-01T07:15:00Z"))
    );
}

fn notification(store: &Store, reference: &str, at: Timestamp, decision: Decision) -> String {
    let body = serde_json::json!({
        "police_reference": reference,
        "incident": {"occurred_at": "2026-11-26T17:00:00Z", "category": "domestic_abuse"},
        "children": [{"given_name": "Zebediah", "family_name": "Quixotic", "date_of_birth": "2013-05-17", "postcode": "QX9 7ZZ", "involvement": "present"}]
    });
    let n =
        crate::ingest::notification::parse_notification(body.to_string().as_bytes(), at).unwrap();
    let (out, _) = store.accept("kent", &n, at).unwrap();
    let crate::store::AcceptOutcome::Accepted(rec) = out else {
        panic!("not accepted")
    };
    let receipt = rec.receipt_id.as_str().to_owned();
    let _ = store
        .complete_match_at(&receipt, &[(0, decision)], at)
        .unwrap()
        .unwrap();
    receipt
}

fn matched(store: &Store, reference: &str, at: Timestamp) -> String {
    let r = notification(
        store,
        reference,
        at,
        Decision::Matched {
            urn: "118765".into(),
            basis: "exact",
        },
    );
    format!("{r}.0")
}

fn sent(store: &Store, id: &str, at: Timestamp, outcome: SendOutcome) {
    let _ = store.mark_sending(&[id.to_owned()], at).unwrap();
    let _ = crate::deliver::decide(store, id, &Outcome::Sent(outcome), at)
        .unwrap()
        .unwrap();
}

#[test]
fn the_summary_is_queued_once_and_lists_exactly_what_needs_a_human() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(&dir.path().join("store"), &MasterKey::from_bytes([7; 32])).unwrap());
    store.set_inline_flush(true);
    store.set_calendar(cal());
    store
        .replace_schools(&[School {
            urn: "118765".into(),
            name: "Maidstone Primary".into(),
            dsl_name: "Ms Dee".into(),
            dsl_email: "dsl@maidstone.example".into(),
            deputy_email: None,
            phone: None,
        }])
        .unwrap()
        .unwrap();
    // Before the window (Friday): counted in Monday's summary, not Tuesday's.
    let old = matched(&store, "KNT/S/0", t("2026-11-27T12:00:00Z"));
    sent(
        &store,
        &old,
        t("2026-11-27T12:01:00Z"),
        SendOutcome::Delivered { code: 250 },
    );
    // Monday evening, deadline Tuesday 08:00.
    let on_time = matched(&store, "KNT/S/1", t("2026-11-30T18:00:00Z"));
    sent(
        &store,
        &on_time,
        t("2026-11-30T18:01:00Z"),
        SendOutcome::Delivered { code: 250 },
    );
    let refused = || SendOutcome::Failed {
        code: Some(550),
        reply: "550 5.1.1 [address]: no such user".into(),
        why: "refused",
    };
    let failed = matched(&store, "KNT/S/2", t("2026-11-30T18:10:00Z"));
    sent(&store, &failed, t("2026-11-30T18:11:00Z"), refused());
    // Failed, then withdrawn by the police: nothing for a human to do.
    let gone = matched(&store, "KNT/S/3", t("2026-11-30T18:20:00Z"));
    sent(&store, &gone, t("2026-11-30T18:21:00Z"), refused());
    let gone_receipt = gone.trim_end_matches(".0").to_owned();
    let _ = crate::deliver::withdraw(
        &store,
        "kent",
        &gone_receipt,
        "error",
        t("2026-11-30T18:30:00Z"),
    )
    .unwrap()
    .unwrap();
    // Still waiting (queued in the small hours, deadline 08:00 Tuesday).
    let waiting = matched(&store, "KNT/S/4", t("2026-12-01T02:00:00Z"));
    let review = notification(
        &store,
        "KNT/S/5",
        t("2026-12-01T03:00:00Z"),
        Decision::NeedsReview(ReviewReason::NoCandidate),
    );

    // Not before 07:15, not on Saturday.
    assert!(
        queue_if_due(&store, &cal(), at(), t("2026-12-01T07:14:00Z"))
            .unwrap()
            .is_none()
    );
    assert!(
        queue_if_due(&store, &cal(), at(), t("2026-11-28T07:16:00Z"))
            .unwrap()
            .is_none()
    );
    // 07:16 Tuesday: once.
    let now = t("2026-12-01T07:16:00Z");
    let (id, _) = queue_if_due(&store, &cal(), at(), now)
        .unwrap()
        .expect("queued");
    assert_eq!(id, "summary.2026-12-01");
    assert!(
        queue_if_due(&store, &cal(), at(), t("2026-12-01T07:17:00Z"))
            .unwrap()
            .is_none()
    );
    let rec = store.alert(&id).unwrap().unwrap();
    assert_eq!(rec.kind, AlertKind::AdminSummary);
    assert_eq!(rec.state, AlertState::Queued);
    let s = rec.summary.clone().unwrap();
    assert_eq!(s.notifications_received, 5, "{s:?}");
    assert_eq!(s.children_matched, 4);
    assert_eq!(s.children_to_review, 1);
    assert_eq!((s.delivered_on_time, s.delivered_late, s.failed), (1, 0, 2));
    assert_eq!((s.waiting, s.in_review), (1, 1));
    // Nothing is late at 07:16 (the deadline is 08:00): failed + review only.
    let listed: Vec<(&str, &str)> = s
        .needs_a_human
        .iter()
        .map(|i| (i.what.as_str(), i.id.as_str()))
        .collect();
    let review_id = format!("{review} child 0");
    assert_eq!(
        listed,
        vec![("failed", failed.as_str()), ("review", review_id.as_str())]
    );
    // Past the deadline the waiting alert needs a human too.
    let later = compute(
        &store,
        jiff::civil::date(2026, 12, 1),
        t("2026-11-30T07:15:00Z"),
        t("2026-12-01T08:30:00Z"),
    )
    .unwrap();
    assert!(later
        .needs_a_human
        .iter()
        .any(|i| i.what == "late" && i.id == waiting));

    let r = crate::alert::summary::render_summary(&s);
    assert!(
        r.subject.contains("2 item(s) need a human"),
        "{}",
        r.subject
    );
    assert!(
        r.text.contains(&format!("kim alerts retry {failed}")),
        "{}",
        r.text
    );
    assert!(
        r.text
            .contains(&format!("kim review assign {review} 0 URN")),
        "{}",
        r.text
    );
    assert!(!r.text.contains(&gone) && !r.text.contains(&old));
    for p in ["Zebediah", "Quixotic", "2013-05-17", "2013", "QX9", "dsl@"] {
        assert!(
            !r.text.contains(p) && !r.html.contains(p) && !r.subject.contains(p),
            "{p}"
        );
    }
}

/// As `notification`, from a certificate in test mode.
fn test_notification(store: &Store, reference: &str, at: Timestamp, decision: Decision) -> String {
    let body = serde_json::json!({
        "police_reference": reference,
        "incident": {"occurred_at": "2026-11-26T17:00:00Z", "category": "domestic_abuse"},
        "children": [{"given_name": "Zebediah", "family_name": "Quixotic", "date_of_birth": "2013-05-17", "involvement": "present"}]
    });
    let n =
        crate::ingest::notification::parse_notification(body.to_string().as_bytes(), at).unwrap();
    let p = store.prepare_as("met", true, &n, at).unwrap();
    let Some(crate::store::AcceptOutcome::Accepted(rec)) = store.commit_batch(&[p]).unwrap().pop()
    else {
        panic!("not accepted")
    };
    let receipt = rec.receipt_id.as_str().to_owned();
    let _ = store
        .complete_match_at(&receipt, &[(0, decision)], at)
        .unwrap()
        .unwrap();
    receipt
}

#[test]
fn the_summary_leaves_out_what_forces_in_test_mode_sent() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(&dir.path().join("store"), &MasterKey::from_bytes([7; 32])).unwrap());
    store.set_inline_flush(true);
    store.set_calendar(cal());
    let matched = || Decision::Matched {
        urn: "118765".into(),
        basis: "exact",
    };
    let delivered = format!(
        "{}.0",
        test_notification(&store, "MET/T/1", t("2026-11-30T18:00:00Z"), matched())
    );
    sent(
        &store,
        &delivered,
        t("2026-11-30T18:01:00Z"),
        SendOutcome::Delivered { code: 250 },
    );
    let failed = format!(
        "{}.0",
        test_notification(&store, "MET/T/2", t("2026-11-30T18:10:00Z"), matched())
    );
    sent(
        &store,
        &failed,
        t("2026-11-30T18:11:00Z"),
        SendOutcome::Failed {
            code: Some(550),
            reply: "550 no such user".into(),
            why: "refused",
        },
    );
    let _waiting = test_notification(&store, "MET/T/3", t("2026-12-01T02:00:00Z"), matched());
    let _review = test_notification(
        &store,
        "MET/T/4",
        t("2026-12-01T03:00:00Z"),
        Decision::NeedsReview(ReviewReason::NoCandidate),
    );
    let s = compute(
        &store,
        jiff::civil::date(2026, 12, 1),
        t("2026-11-30T07:15:00Z"),
        t("2026-12-01T08:30:00Z"),
    )
    .unwrap();
    let nothing = crate::store::summary::Summary {
        day: s.day,
        since: s.since,
        until: s.until,
        ..Default::default()
    };
    assert_eq!(s, nothing, "test mode is left out of the report");
}
