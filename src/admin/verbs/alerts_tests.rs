//! `alerts list` on a real sled store with an injected clock: `--late`
//! lists an alert delivered after its deadline and one still waiting past
//! it, not one delivered in time nor one whose deadline is still ahead;
//! newest first; `--since` and `--limit`; the time index rebuilt for a store
//! made before it.

use std::sync::Arc;

use super::*;
use crate::deliver::transition::SendOutcome;
use crate::import::School;
use crate::matching::decide::Decision;
use crate::store::crypto::MasterKey;

fn t(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

/// A notification received at `at`, matched at once: its DSL alert's id.
fn queued(store: &Store, reference: &str, at: jiff::Timestamp) -> String {
    let body = serde_json::json!({
        "police_reference": reference,
        "incident": {"occurred_at": "2026-11-22T19:00:00Z", "category": "domestic_abuse"},
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
        .complete_match_at(
            &receipt,
            &[(
                0,
                Decision::Matched {
                    urn: "118765".into(),
                    basis: "exact",
                },
            )],
            at,
        )
        .unwrap()
        .unwrap();
    format!("{receipt}.0")
}

fn delivered(store: &Store, id: &str, at: jiff::Timestamp) {
    let _ = store.mark_sending(&[id.to_owned()], at).unwrap();
    let outcome = Outcome::Sent(SendOutcome::Delivered { code: 250 });
    let _ = crate::deliver::decide(store, id, &outcome, at)
        .unwrap()
        .unwrap();
}

fn ids(store: &Store, f: &ListFilter, now: jiff::Timestamp) -> (Vec<String>, bool) {
    let (rows, more) = select(store, f, now).unwrap();
    (rows.into_iter().map(|r| r.alert_id).collect(), more)
}

#[test]
fn late_lists_alerts_delivered_after_or_waiting_past_their_deadline_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(&dir.path().join("store"), &MasterKey::from_bytes([7; 32])).unwrap());
    store.set_inline_flush(true);
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
    // Sunday evening: the deadline is Monday 08:00 UK time (08:00Z in November).
    let late = queued(&store, "KNT/L/1", t("2026-11-22T20:00:00Z"));
    let in_time = queued(&store, "KNT/L/2", t("2026-11-22T20:30:00Z"));
    let waiting = queued(&store, "KNT/L/3", t("2026-11-22T21:00:00Z"));
    // Monday morning, after the deadline: due Tuesday 08:00.
    let fresh = queued(&store, "KNT/L/4", t("2026-11-23T09:30:00Z"));
    delivered(&store, &late, t("2026-11-23T09:00:00Z"));
    delivered(&store, &in_time, t("2026-11-23T07:30:00Z"));
    let now = t("2026-11-23T10:00:00Z");

    let all = ListFilter::default();
    assert_eq!(
        ids(&store, &all, now),
        (
            vec![
                fresh.clone(),
                waiting.clone(),
                in_time.clone(),
                late.clone()
            ],
            false
        ),
        "newest first"
    );
    let lates = ListFilter {
        late: true,
        ..ListFilter::default()
    };
    assert_eq!(
        ids(&store, &lates, now),
        (vec![waiting.clone(), late.clone()], false)
    );
    let lates_week = ListFilter {
        late: true,
        since: Some("7d".into()),
        ..ListFilter::default()
    };
    assert_eq!(
        ids(&store, &lates_week, now).0,
        vec![waiting.clone(), late.clone()]
    );
    // Before the deadline, the waiting alert is not late yet.
    assert_eq!(
        ids(&store, &lates, t("2026-11-23T07:59:00Z")).0,
        vec![late.clone()]
    );
    let (rows, _) = select(&store, &lates, now).unwrap();
    assert_eq!(rows[1].deadline_met, Some(false));
    assert_eq!(rows[1].state, AlertState::Delivered);
    assert!(rows[0].next_attempt_at.is_some());
    // --since, --state, --limit.
    let recent = ListFilter {
        since: Some("1h".into()),
        ..ListFilter::default()
    };
    assert_eq!(ids(&store, &recent, now).0, vec![fresh.clone()]);
    let delivered_only = ListFilter {
        state: Some("delivered".into()),
        ..ListFilter::default()
    };
    assert_eq!(
        ids(&store, &delivered_only, now).0,
        vec![in_time.clone(), late.clone()]
    );
    let two = ListFilter {
        limit: Some(2),
        ..ListFilter::default()
    };
    assert_eq!(
        ids(&store, &two, now),
        (vec![fresh.clone(), waiting.clone()], true)
    );
    // No personal data in the rows.
    let text = serde_json::to_string(&select(&store, &all, now).unwrap().0).unwrap();
    for p in ["Zebediah", "Quixotic", "2013-05-17", "QX9"] {
        assert!(!text.contains(p), "{text}");
    }

    // A store made before the time index: rebuilt at open, same answers.
    store.t.outbox_by_time.clear().unwrap();
    store.t.meta.remove(b"outbox_by_time_built").unwrap();
    assert_eq!(ids(&store, &all, now).0.len(), 0);
    store.build_alert_index().unwrap();
    assert_eq!(
        ids(&store, &all, now).0,
        vec![fresh, waiting, in_time, late]
    );
}
