//! Tests of `store/writer.rs`, kept in their own file.

#[test]
fn readyz_shows_a_failed_journal_write_until_one_succeeds_or_10_s_pass() {
    let st = WriterStats::default();
    assert!(!st.journal_failing());
    st.journal_failed_ms.store(now_ms(), Ordering::Relaxed);
    assert!(st.journal_failing());
    st.journal_ok_ms.store(now_ms() + 1, Ordering::Relaxed);
    assert!(!st.journal_failing());
    st.journal_failed_ms
        .store(now_ms() - JOURNAL_FAILURE_SHOWN - 1, Ordering::Relaxed);
    st.journal_ok_ms.store(0, Ordering::Relaxed);
    assert!(!st.journal_failing(), "no traffic for 10 s: ready again");
}

use super::*;
use crate::ingest::notification::parse_notification;
use crate::store::crypto::MasterKey;

fn prepared(store: &Store, reference: &str) -> Prepared {
    let now = jiff::Timestamp::now();
    let body = serde_json::to_vec(&serde_json::json!({
        "police_reference": reference,
        "incident": {"occurred_at": "2026-11-22T21:40:00Z", "category": "domestic_abuse"},
        "children": [{"given_name": "Stallia", "family_name": "Backlogson",
                      "date_of_birth": "2014-03-09", "involvement": "present"}]
    }))
    .unwrap();
    let n = parse_notification(&body, now).unwrap();
    store.prepare("kent", &n, now).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journaled_then_applied_and_a_stalled_applier_gets_503s_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(&dir.path().join("store"), &MasterKey::from_bytes([4; 32])).unwrap());
    let ingest = Ingest::spawn(store.clone()).unwrap();
    let out = ingest.accept(prepared(&store, "KNT/A")).await.unwrap();
    let AcceptOutcome::Accepted(rec) = out else {
        panic!("{out:?}")
    };
    assert!(settled(&store, rec.receipt_id.as_str(), Duration::from_secs(5)).await);
    assert!(store
        .t
        .notifications
        .contains_key(rec.receipt_id.as_str())
        .unwrap());

    // The applier far behind (as if sled had stopped taking writes):
    // after APPLIER_STALLED the police get 503, and nothing is journaled.
    store
        .stats
        .unapplied
        .fetch_add(MAX_UNAPPLIED + 1, Ordering::Relaxed);
    let started = Instant::now();
    let refused = ingest.accept(prepared(&store, "KNT/B")).await;
    assert_eq!(refused, Err(Unavailable));
    assert!(started.elapsed() >= APPLIER_STALLED);
    // Refused at once while it stays stalled.
    let started = Instant::now();
    assert_eq!(
        ingest.accept(prepared(&store, "KNT/C")).await,
        Err(Unavailable)
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // Caught up: accepted again, and B (never acknowledged) is new.
    store
        .stats
        .unapplied
        .fetch_sub(MAX_UNAPPLIED + 1, Ordering::Relaxed);
    let again = ingest.accept(prepared(&store, "KNT/B")).await.unwrap();
    assert!(matches!(again, AcceptOutcome::Accepted(_)), "{again:?}");

    // At shutdown everything is applied and the journal is gone.
    ingest.shutdown().await;
    assert_eq!(store.notification_count(), 2);
    assert!(journal::segments(&journal::journal_dir(&store.dir))
        .unwrap()
        .is_empty());
}
