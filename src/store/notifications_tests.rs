//! Tests of the parent module, kept in their own file.

use super::*;
use crate::ingest::notification::parse_notification;
use crate::store::crypto::MasterKey;
use crate::store::journal::Journal;

fn notification(reference: &str, now: jiff::Timestamp) -> Notification {
    let body = serde_json::to_vec(&serde_json::json!({
        "police_reference": reference,
        "incident": {"occurred_at": "2026-11-22T21:40:00Z", "category": "domestic_abuse"},
        "children": [{"given_name": "Journalia", "family_name": "Quillfeather",
                      "date_of_birth": "2014-03-09", "involvement": "present"}]
    }))
    .unwrap();
    parse_notification(&body, now).unwrap()
}

use crate::store::reopen;

#[test]
fn journaled_notifications_answer_resends_and_status_and_are_applied_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let key = MasterKey::from_bytes([9; 32]);
    let now: jiff::Timestamp = "2026-11-23T07:00:00Z".parse().unwrap();
    let receipts: Vec<String> = {
        let s = Store::open(&path, &key).unwrap();
        s.load_known_refs().unwrap();
        let mut journal = Journal::create(&s.dir, s.keys.seal_key()).unwrap();
        let batch = ["KNT/1", "KNT/2", "KNT/1"]
            .iter()
            .map(|r| s.prepare("kent", &notification(r, now), now).unwrap())
            .collect();
        let (outcomes, fresh) = s.admit(batch).unwrap();
        assert!(matches!(outcomes[0], Some(AcceptOutcome::Accepted(_))));
        assert!(matches!(outcomes[1], Some(AcceptOutcome::Accepted(_))));
        assert!(
            matches!(outcomes[2], Some(AcceptOutcome::Duplicate(_))),
            "a re-send in the same batch"
        );
        assert_eq!(fresh.len(), 2);
        let entries: Vec<_> = fresh.iter().map(Prepared::journal_entry).collect();
        journal.append(s.keys.seal_key(), &entries).unwrap();
        s.mark_pending(&fresh);
        let receipts: Vec<String> = fresh.iter().map(|p| p.receipt.to_string()).collect();
        // Journaled, not applied: status and re-sends see it already.
        assert!(s.is_pending(&receipts[0]));
        assert_eq!(
            s.record(&receipts[0]).unwrap().unwrap().police_reference,
            "KNT/1"
        );
        assert!(s.t.notifications.is_empty());
        let again = s.prepare("kent", &notification("KNT/2", now), now).unwrap();
        match &s.admit(vec![again]).unwrap().0[0] {
            Some(AcceptOutcome::Duplicate(rec)) => {
                assert_eq!(rec.receipt_id.as_str(), receipts[1])
            }
            other => panic!("{other:?}"),
        }
        let mut changed = notification("KNT/2", now);
        changed.police_reference = "KNT/2".into();
        changed.children[0].given_name = "Other".into();
        let conflict = s.prepare("kent", &changed, now).unwrap();
        assert!(matches!(
            s.admit(vec![conflict]).unwrap().0[0],
            Some(AcceptOutcome::Conflict(_))
        ));
        // A receipt id made twice (48 random bits apart within a second):
        // refused before its 202, in the same batch or after the first.
        let mut twin = s.prepare("kent", &notification("KNT/3", now), now).unwrap();
        twin.receipt = fresh[0].receipt.clone();
        let twin2 = s.prepare("kent", &notification("KNT/4", now), now).unwrap();
        let mut twin3 = s.prepare("kent", &notification("KNT/5", now), now).unwrap();
        twin3.receipt = twin2.receipt.clone();
        let (outcomes, fresh2) = s.admit(vec![twin, twin2, twin3]).unwrap();
        assert!(outcomes[0].is_none(), "a twin of a journaled receipt");
        assert!(matches!(outcomes[1], Some(AcceptOutcome::Accepted(_))));
        assert!(outcomes[2].is_none(), "a twin in the same batch");
        assert_eq!(fresh2.len(), 1);
        receipts
        // Dropped without applying, as a kill would leave it.
    };
    let s = reopen(&path, &key);
    for r in &receipts {
        assert!(!s.is_pending(r));
        assert!(
            s.t.notifications.contains_key(r.as_bytes()).unwrap(),
            "{r} applied"
        );
        let n = s.load_notification(r).unwrap().unwrap();
        assert_eq!(n.children[0].family_name, "Quillfeather");
    }
    let waiting: Vec<String> = s.pending_match().map(Result::unwrap).collect();
    assert_eq!(waiting.len(), 2);
    let received = s
        .audit_events()
        .map(Result::unwrap)
        .filter(|e| e.kind == EventKind::Received)
        .count();
    assert_eq!(received, 2);
    assert!(journal::segments(&journal::journal_dir(&s.dir))
        .unwrap()
        .is_empty());
    drop(s);
    // Opening again applies nothing twice.
    let s = reopen(&path, &key);
    assert_eq!(s.notification_count(), 2);
    let again = s.prepare("kent", &notification("KNT/1", now), now).unwrap();
    s.load_known_refs().unwrap();
    assert!(matches!(
        s.admit(vec![again]).unwrap().0[0],
        Some(AcceptOutcome::Duplicate(_))
    ));
}

#[test]
fn receipt_ids_are_readable_and_parse_back() {
    let id = ReceiptId::generate().unwrap();
    assert_eq!(id.as_str().len(), 19);
    assert_eq!(ReceiptId::parse(id.as_str()), Some(id.clone()));
    assert_eq!(
        ReceiptId::parse(&id.as_str().to_ascii_lowercase()),
        Some(id)
    );
    assert!(
        ReceiptId::parse("ABCD-EFGH-JKMN-PQRI").is_none(),
        "I is not in the alphabet"
    );
    assert!(ReceiptId::parse("../../etc/passwd").is_none());
    assert!(ReceiptId::parse("ABCDEFGHJKMNPQRST").is_none());
    // Receipts sort by the second they were made in, whatever their
    // random part (the trees keyed by them grow at one end).
    let a = ReceiptId::from_parts(1_790_000_000, [0xff; 6]);
    let b = ReceiptId::from_parts(1_790_000_001, [0; 6]);
    assert!(a.as_str() < b.as_str(), "{a} {b}");
    assert_eq!(a.second(), 1_790_000_000);
    assert_eq!(b.second(), 1_790_000_001);
    assert_eq!(ReceiptId::parse(a.as_str()), Some(a));
}

#[test]
fn a_test_reference_is_apart_from_the_same_live_reference_and_the_record_says_test() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("store"), &MasterKey::from_bytes([7; 32])).unwrap();
    let now: jiff::Timestamp = "2026-11-23T07:00:00Z".parse().unwrap();
    let n = notification("KNT/T/1", now);
    let p = s.prepare_as("kent", true, &n, now).unwrap();
    let test = s.commit_batch(&[p]).unwrap().pop().unwrap();
    let AcceptOutcome::Accepted(test) = test else {
        panic!("{test:?}")
    };
    assert!(test.test);
    // The same reference and content from a live name: new, not a re-send
    // of the test (which never reached a school).
    let (live, _) = s.accept("kent", &n, now).unwrap();
    let AcceptOutcome::Accepted(live) = live else {
        panic!("{live:?}")
    };
    assert!(!live.test);
    assert_ne!(live.receipt_id, test.receipt_id);
    // Each mode's re-send is answered from its own original.
    let p = s.prepare_as("kent", true, &n, now).unwrap();
    assert!(matches!(
        &s.commit_batch(&[p]).unwrap()[0],
        AcceptOutcome::Duplicate(r) if r.receipt_id == test.receipt_id
    ));
    let (again, _) = s.accept("kent", &n, now).unwrap();
    assert!(matches!(again, AcceptOutcome::Duplicate(r) if r.receipt_id == live.receipt_id));
    // Stored and read back with the flag; a live record's JSON lacks it, so
    // records written before test mode existed read as live.
    assert!(s.record(test.receipt_id.as_str()).unwrap().unwrap().test);
    let json = serde_json::to_value(&live).unwrap();
    assert!(json.get("test").is_none(), "{json}");
    let old: NotificationRecord = serde_json::from_value(json).unwrap();
    assert!(!old.test);
}
