//! Retention on a real sled directory: what is due, what is kept, what a
//! dry run changes (nothing), what a purge leaves (identifiers, the audit
//! chain) and the shredding proof at the store's level (the binary's is in
//! tests/it/retention.rs).

use std::path::Path;

use super::*;
use crate::audit::{verify_chain, AuditEvent, EventKind, Head};
use crate::matching::decide::{Decision, ReviewReason};
use crate::store::crypto::MasterKey;
use crate::store::{reopen, AcceptOutcome, ChildState};

const NAMES: [&str; 3] = ["Zebediah", "Quixotic", "ME14 1XX"];

fn key() -> MasterKey {
    MasterKey::from_bytes([7; 32])
}

fn t(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn accept(store: &Store, reference: &str, at: jiff::Timestamp) -> String {
    let body = serde_json::json!({
        "police_reference": reference,
        "incident": {"occurred_at": "2026-01-01T20:00:00Z", "category": "domestic_abuse"},
        "children": [{"given_name": NAMES[0], "family_name": NAMES[1], "date_of_birth": "2013-05-17",
                      "involvement": "present", "postcode": NAMES[2]}]
    });
    let n =
        crate::ingest::notification::parse_notification(body.to_string().as_bytes(), at).unwrap();
    let (out, _) = store.accept("kent", &n, at).unwrap();
    let AcceptOutcome::Accepted(rec) = out else {
        panic!("not accepted")
    };
    store.flush_now().unwrap();
    rec.receipt_id.as_str().to_owned()
}

/// Into review (with sealed candidates kept), at `at`.
fn to_review(store: &Store, receipt: &str, at: jiff::Timestamp) {
    store
        .complete_match_at(
            receipt,
            &[(0, Decision::NeedsReview(ReviewReason::NoCandidate))],
            at,
        )
        .unwrap();
    store
        .put_review_candidates(receipt, 0, &serde_json::json!({"near": NAMES[0]}))
        .unwrap();
}

fn dismissed(store: &Store, receipt: &str, at: jiff::Timestamp) {
    to_review(store, receipt, at);
    let _ = store
        .review_dismiss(receipt, 0, "moved away, per the police", "admin:test")
        .unwrap();
}

fn policy() -> RetentionConfig {
    RetentionConfig::default()
}

fn events(store: &Store) -> Vec<AuditEvent> {
    store.audit_events().map(Result::unwrap).collect()
}

/// Every byte of every file under `dir`.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in walk(dir) {
        out.extend(std::fs::read(e).unwrap());
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_settled_notification_is_purged_after_its_days_and_a_waiting_one_of_the_same_age_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &key()).unwrap();
    let old = t("2026-10-01T21:00:00Z");
    let done = accept(&store, "KNT/26/1", old);
    dismissed(&store, &done, old);
    let waiting = accept(&store, "KNT/26/2", old);
    to_review(&store, &waiting, old);
    let matched = accept(&store, "KNT/26/3", old);
    store
        .complete_match_at(
            &matched,
            &[(
                0,
                Decision::Matched {
                    urn: "118765".into(),
                    basis: "exact",
                },
            )],
            old,
        )
        .unwrap();
    let settled = store.record(&done).unwrap().unwrap().settled_at.unwrap();

    // 29 days after it settled: kept.
    let early = settled
        .checked_add(jiff::SignedDuration::from_hours(29 * 24))
        .unwrap();
    let r = run(&store, &policy(), &RunOptions::default(), early, "system").unwrap();
    assert!(r.purged.is_empty(), "{r:?}");

    // A dry run a day later lists it and changes nothing.
    let later = settled
        .checked_add(jiff::SignedDuration::from_hours(31 * 24))
        .unwrap();
    let head = store.audit_head().unwrap();
    let dry = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };
    let r = run(&store, &policy(), &dry, later, "system").unwrap();
    assert_eq!(r.purged, vec![done.clone()]);
    assert_eq!(r.waiting_kept, 2, "the one in review and the one retrying");
    assert_eq!(
        store.audit_head().unwrap(),
        head,
        "a dry run audits nothing"
    );
    assert!(store.load_notification(&done).unwrap().is_some());
    assert!(store.record(&done).unwrap().unwrap().purged_at.is_none());

    let r = run(&store, &policy(), &RunOptions::default(), later, "system").unwrap();
    assert_eq!(r.purged, vec![done.clone()]);
    assert!(r.render().contains(&done));
    // Purged: the details gone, the identifiers and states kept.
    assert!(store.load_notification(&done).unwrap().is_none());
    let rec = store.record(&done).unwrap().unwrap();
    assert_eq!(rec.purged_at, Some(later));
    assert_eq!(rec.police_reference, "KNT/26/1");
    assert_eq!(rec.children[0].state, ChildState::Failed);
    assert!(store
        .review_candidates::<serde_json::Value>(&done, 0)
        .unwrap()
        .is_none());
    // The waiting ones whole, whatever their age.
    for r in [&waiting, &matched] {
        assert!(store.load_notification(r).unwrap().is_some());
        assert!(store.record(r).unwrap().unwrap().purged_at.is_none());
    }
    assert!(store
        .review_candidates::<serde_json::Value>(&waiting, 0)
        .unwrap()
        .is_some());
    // `purged` audited, identifiers only; the chain still verifies.
    let evs = events(&store);
    let purged: Vec<_> = evs.iter().filter(|e| e.kind == EventKind::Purged).collect();
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0].refs.receipt.as_deref(), Some(done.as_str()));
    let text = serde_json::to_string(&evs).unwrap();
    for n in NAMES {
        assert!(!text.contains(n), "{n} in the audit");
    }
    verify_chain(&Head::default(), &evs).unwrap();
    // A second run purges nothing more; the day's key stays (two of its
    // notifications still wait).
    let r = run(&store, &policy(), &RunOptions::default(), later, "system").unwrap();
    assert!(r.purged.is_empty() && r.days_shredded.is_empty(), "{r:?}");
    assert!(dir.path().join("keys/2026-10-01.kek").exists());
}

#[test]
fn purging_a_whole_day_destroys_its_key_and_a_copy_from_before_opens_none_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = Store::open(&path, &key()).unwrap();
    let day1 = t("2026-10-01T21:00:00Z");
    let day2 = t("2026-10-02T09:00:00Z");
    let gone: Vec<String> = (0..3)
        .map(|i| {
            let r = accept(&store, &format!("KNT/26/G{i}"), day1);
            dismissed(&store, &r, day1);
            r
        })
        .collect();
    let kept = accept(&store, "KNT/26/K", day2);
    to_review(&store, &kept, day2);
    let kek1 = path.join("keys/2026-10-01.kek");
    assert!(kek1.exists() && path.join("keys/2026-10-02.kek").exists());
    drop(store);

    // The copy an attacker (or an old backup) keeps: before the purge.
    let before = dir.path().join("before");
    copy_dir(&path, &before);

    let store = reopen(&path, &key());
    // Settled when dismissed (now); purged with `--older-than 0s`.
    let now = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60);
    let opts = RunOptions {
        older_than_secs: Some(0),
        ..RunOptions::default()
    };
    let r = run(&store, &policy(), &opts, now, "system").unwrap();
    assert_eq!(r.purged.len(), 3);
    assert_eq!(r.days_shredded, vec!["2026-10-01".to_string()]);
    assert!(!kek1.exists(), "the day's key file is removed");
    assert!(events(&store)
        .iter()
        .any(|e| e.kind == EventKind::DayKeyDestroyed && e.detail["day"] == "2026-10-01"));
    drop(store);

    // The old copy with the key state after the purge: the day's key gone.
    std::fs::remove_file(before.join("keys/2026-10-01.kek")).unwrap();
    let old = reopen(&before, &key());
    for r in &gone {
        // The copy still has the sealed payload in its trees...
        assert!(old.t.payloads.contains_key(r.as_bytes()).unwrap());
        // ...and nothing opens it.
        match old.load_notification(r) {
            Err(StoreError::Shredded(x)) => assert_eq!(&x, r),
            other => panic!("{r}: {other:?}"),
        }
        assert!(matches!(
            old.review_candidates::<serde_json::Value>(r, 0),
            Ok(None) | Err(StoreError::Shredded(_))
        ));
    }
    // Another day's notification opens.
    let n = old.load_notification(&kept).unwrap().unwrap();
    assert_eq!(n.children[0].given_name, NAMES[0]);
    drop(old);
    // And no name is in the clear anywhere in the folder.
    let bytes = all_bytes(&path);
    for n in NAMES {
        assert!(
            !bytes.windows(n.len()).any(|w| w == n.as_bytes()),
            "{n} on disk"
        );
    }
}

#[test]
fn a_store_of_format_1_is_migrated_under_day_keys_once_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &key()).unwrap();
    let at = t("2026-10-01T21:00:00Z");
    let r = accept(&store, "KNT/26/M", at);
    to_review(&store, &r, at);
    // Make it look as format 1 wrote it: the data key and the candidates
    // sealed by the master-derived key, and the version 1.
    let (dk, payload) = {
        let v = store.t.payloads.get(r.as_bytes()).unwrap().unwrap();
        let (sdk, p) = crate::store::notifications::unpack_sealed(&v).unwrap();
        (
            store
                .open_personal(crate::store::trees::DATA_KEYS, r.as_bytes(), sdk)
                .unwrap(),
            p.to_vec(),
        )
    };
    let legacy = store
        .keys
        .seal_key()
        .seal(crate::store::trees::DATA_KEYS, r.as_bytes(), &dk)
        .unwrap();
    store
        .t
        .payloads
        .insert(
            r.as_bytes(),
            crate::store::notifications::pack_sealed(&legacy, &payload),
        )
        .unwrap();
    store
        .t
        .meta
        .insert(crate::store::format::FORMAT_VERSION_KEY, &b"1"[..])
        .unwrap();
    store.flush_now().unwrap();
    drop(store);

    let store = reopen(dir.path(), &key());
    let v = store.t.payloads.get(r.as_bytes()).unwrap().unwrap();
    let (sdk, _) = crate::store::notifications::unpack_sealed(&v).unwrap();
    assert!(
        !store.is_legacy(sdk).unwrap(),
        "the data key moved under the day key"
    );
    assert!(store.load_notification(&r).unwrap().is_some());
    assert_eq!(
        store
            .t
            .meta
            .get(crate::store::format::FORMAT_VERSION_KEY)
            .unwrap()
            .as_deref(),
        Some(crate::store::format::FORMAT_VERSION.to_string().as_bytes())
    );
    let migrated = events(&store)
        .into_iter()
        .filter(|e| e.kind == EventKind::StoreMigrated)
        .count();
    assert_eq!(migrated, 1);
    drop(store);
    let store = reopen(dir.path(), &key());
    let again = events(&store)
        .into_iter()
        .filter(|e| e.kind == EventKind::StoreMigrated)
        .count();
    assert_eq!(again, 1, "migrated once");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
