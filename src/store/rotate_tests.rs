//! A rotated store opens only with the new key and still answers every
//! question the old one did: notifications, re-sends, the roll, schools,
//! dismissals, the audit chain (with `key_rotated`), the outbox.

use super::*;
use crate::import::{Pupil, School};
use crate::matching::decide::Decision;
use crate::store::crypto::MasterKey;

#[test]
fn everything_survives_a_rotation_and_only_the_new_key_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    let old_key = MasterKey::from_bytes([1; 32]);
    let old = Store::open(&dir.path().join("old"), &old_key).unwrap();
    old.replace_schools(&[School {
        urn: "100001".into(),
        name: "School".into(),
        dsl_name: "Ms Dee".into(),
        dsl_email: "dsl@school.example".into(),
        deputy_email: None,
        phone: None,
    }])
    .unwrap()
    .unwrap();
    let pupils: Vec<Pupil> = (0..40)
        .map(|i| Pupil {
            pupil_id: format!("P{i}"),
            given_name: format!("Ann{}", (b'a' + i as u8 % 26) as char),
            family_name: format!("Lee{}", (b'a' + (i / 26) as u8) as char),
            other_names: vec![],
            date_of_birth: "2014-01-02".parse().unwrap(),
            postcode: None,
            school_urn: "100001".into(),
        })
        .collect();
    old.replace_roll(&pupils).unwrap();
    let now = jiff::Timestamp::now();
    let body = serde_json::json!({
        "police_reference": "KNT/ROT/1",
        "incident": {"occurred_at": "2026-01-01T20:00:00Z", "category": "domestic_abuse"},
        "children": [{"given_name": "Anna", "family_name": "Leea", "date_of_birth": "2014-01-02", "involvement": "present"},
                     {"given_name": "Zed", "family_name": "Nobody", "date_of_birth": "2014-01-02", "involvement": "present"}]
    });
    let n =
        crate::ingest::notification::parse_notification(body.to_string().as_bytes(), now).unwrap();
    let (out, _) = old.accept("kent", &n, now).unwrap();
    let crate::store::AcceptOutcome::Accepted(rec) = out else {
        panic!()
    };
    let receipt = rec.receipt_id.as_str().to_owned();
    let _ = old
        .complete_match(
            &receipt,
            &[
                (
                    0,
                    Decision::Matched {
                        urn: "100001".into(),
                        basis: "exact",
                    },
                ),
                (
                    1,
                    Decision::NeedsReview(crate::matching::decide::ReviewReason::NoCandidate),
                ),
            ],
        )
        .unwrap();
    let _ = old
        .review_dismiss(&receipt, 1, "not ours", "admin:root")
        .unwrap();
    let events_before = old.audit_events().count();

    let new_key = MasterKey::from_bytes([2; 32]);
    let new = Store::open(&dir.path().join("new"), &new_key).unwrap();
    let r = old.rotate_into(&new, "admin:root").unwrap();
    assert_eq!((r.notifications, r.pupils, r.schools), (1, 40, 1));
    assert_ne!(r.old_key_id, r.new_key_id);
    drop(new);
    drop(old);

    assert!(matches!(
        Store::open(&dir.path().join("new"), &old_key),
        Err(StoreError::WrongKey)
    ));
    let new = crate::store::reopen(&dir.path().join("new"), &new_key);
    let n2 = new.load_notification(&receipt).unwrap().unwrap();
    assert_eq!(n2, n);
    // A re-send is still recognised as the same notification.
    let (again, _) = new.accept("kent", &n, now).unwrap();
    assert!(matches!(again, crate::store::AcceptOutcome::Duplicate(_)));
    // The roll answers through the new blind indexes.
    let found = new
        .roll_candidates(&["Anna".into()], "Leea", "2014-01-02".parse().unwrap())
        .unwrap();
    assert!(found.iter().any(|p| p.pupil_id == "P0"));
    assert_eq!(new.roll_stats().unwrap().pupils, 40);
    assert_eq!(
        new.school("100001").unwrap().unwrap().dsl_email,
        "dsl@school.example"
    );
    assert_eq!(new.alerts_for(&receipt).unwrap().len(), 1);
    let events: Vec<_> = new.audit_events().map(|e| e.unwrap()).collect();
    crate::audit::verify_chain(&crate::audit::Head::default(), &events).unwrap();
    assert_eq!(events.len(), events_before + 1);
    assert_eq!(events.last().unwrap().kind, EventKind::KeyRotated);
    let sealed = new.t.dismissals.iter().next().unwrap().unwrap();
    // The note is sealed by its day's key, re-wrapped under the new master
    // key: the new store opens it, the old master key opens no day key.
    let plain = new
        .open_personal(trees::DISMISSALS, &sealed.0, &sealed.1)
        .unwrap();
    assert_eq!(plain.as_slice(), b"not ours");
    let days = new.days.days().unwrap();
    assert_eq!(days.len(), 1);
    let stale = crate::store::kek::DayKeys::new(
        &dir.path().join("new"),
        crate::store::crypto::day_key_wrap(&old_key),
    );
    assert!(stale.get(days[0], false).is_err());
}
