//! Tests of `matching/stage.rs`, kept in their own file.

use super::*;
use crate::audit::EventKind;
use crate::import::{Pupil, School};
use crate::ingest::notification::parse_notification;
use crate::store::crypto::MasterKey;
use crate::store::ChildState;

fn body(reference: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "police_reference": reference,
        "incident": {"occurred_at": "2026-11-22T21:40:00Z", "category": "domestic_abuse"},
        "children": [
            {"given_name": "Amelia", "family_name": "Khan", "date_of_birth": "2014-03-09", "involvement": "present"},
            {"given_name": "Nobody", "family_name": "Known", "date_of_birth": "2015-01-01", "involvement": "unknown"}
        ]
    }))
    .unwrap()
}

#[test]
fn a_restart_between_accept_and_match_loses_nothing_and_matches_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::from_bytes([5; 32]);
    let now: jiff::Timestamp = "2026-11-23T07:00:00Z".parse().unwrap();
    let receipt = {
        let s = Store::open(dir.path(), &key).unwrap();
        let school = School {
            urn: "118765".into(),
            name: "Maidstone Primary".into(),
            dsl_name: "D".into(),
            dsl_email: "dsl@school.example".into(),
            deputy_email: None,
            phone: None,
        };
        assert!(s.replace_schools(&[school]).unwrap().is_ok());
        s.replace_roll(&[Pupil {
            pupil_id: "P1".into(),
            given_name: "Amelia".into(),
            family_name: "Khan".into(),
            other_names: vec![],
            date_of_birth: "2014-03-09".parse().unwrap(),
            postcode: None,
            school_urn: "118765".into(),
        }])
        .unwrap();
        let n = parse_notification(&body("KNT/1"), now).unwrap();
        let (out, _) = s.accept("kent", &n, now).unwrap();
        let crate::store::AcceptOutcome::Accepted(rec) = out else {
            panic!()
        };
        s.flush_now().unwrap();
        rec.receipt_id.to_string()
        // The store is dropped here without matching: the "crash".
    };
    let s = crate::store::reopen(dir.path(), &key);
    assert_eq!(s.pending_match().count(), 1, "the work item survived");
    assert_eq!(run_pending(&s, 0.92).unwrap(), 1);
    assert_eq!(
        run_pending(&s, 0.92).unwrap(),
        0,
        "nothing is matched twice"
    );
    let rec = s.record(&receipt).unwrap().unwrap();
    assert_eq!(rec.children[0].state, ChildState::Matched);
    assert_eq!(rec.children[0].school_urn.as_deref(), Some("118765"));
    assert_eq!(rec.children[1].state, ChildState::NeedsReview);
    let kinds: Vec<EventKind> = s.audit_events().map(|e| e.unwrap().kind).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == EventKind::Matched).count(),
        1
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EventKind::NeedsReview)
            .count(),
        1
    );
    let review = s.review_list().unwrap();
    assert_eq!(review.len(), 1);
    assert_eq!(review[0].index, 1);
    assert_eq!(review[0].reason.as_str(), "no_candidate");
    // The record trees link the police reference, the receipt and the
    // school: their values are sealed, none of the three in the clear.
    for tree in [&s.t.notifications, &s.t.outbox, &s.t.review] {
        assert!(!tree.is_empty());
        for kv in tree.iter() {
            let (_, v) = kv.unwrap();
            for needle in [&b"KNT/1"[..], b"118765", receipt.as_bytes(), b"kent"] {
                assert!(
                    !v.windows(needle.len()).any(|w| w == needle),
                    "{} in the clear in a record value",
                    String::from_utf8_lossy(needle)
                );
            }
        }
    }
}
