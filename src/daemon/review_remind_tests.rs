//! Review reminders: the pure schedule ([`plan`], [`remind_time`]) across a
//! weekend, a closure date and the clocks changing; and the task with the
//! real delivery worker under tokio's paused clock, on a real sled store
//! (reopened to restart) writing real `.eml` files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::civil::{date, time};
use jiff::Timestamp;
use tokio::sync::watch;

use super::*;
use crate::audit::EventKind;
use crate::calendar::{school_tz, SchoolCalendar};
use crate::deliver::transport::FileTransport;
use crate::deliver::{Deliverer, Policy, TokioClock};
use crate::import::School;
use crate::matching::decide::{Decision, ReviewReason};
use crate::store::crypto::MasterKey;

fn london(s: &str) -> Timestamp {
    s.parse::<jiff::civil::DateTime>()
        .unwrap()
        .to_zoned(school_tz())
        .unwrap()
        .timestamp()
}

const HALF_SIX: Time = time(6, 30, 0, 0);

/// Monday 23 November 2026 is a closure day.
fn calendar() -> SchoolCalendar {
    SchoolCalendar::new(time(8, 0, 0, 0), &[date(2026, 11, 23)])
}

fn item(received: &str, queued: &str) -> ReviewItem {
    let received = london(received);
    ReviewItem {
        receipt_id: "AAAA-AAAA-AAAA-AAAA".into(),
        index: 0,
        force: "kent".into(),
        police_reference: "KNT/1".into(),
        reason: "ambiguous_schools".into(),
        received_at: received,
        queued_at: london(queued),
        notified: true,
        deadline: Some(calendar().deadline(received)),
        reminded: false,
        deadline_missed: false,
        test: false,
    }
}

fn key() -> Vec<(String, u32)> {
    vec![("AAAA-AAAA-AAAA-AAAA".into(), 0)]
}

#[test]
fn the_reminder_time_is_remind_at_on_the_deadline_day_in_uk_time() {
    // GMT: 06:30 UK is 06:30 UTC; BST (after the clocks go forward on
    // Sunday 29 March 2026): 06:30 UK is 05:30 UTC.
    assert_eq!(
        remind_time(london("2026-10-26T08:00"), HALF_SIX),
        Some("2026-10-26T06:30:00Z".parse().unwrap())
    );
    assert_eq!(
        remind_time(london("2026-03-30T08:00"), HALF_SIX),
        Some("2026-03-30T05:30:00Z".parse().unwrap())
    );
    // Never at or after the deadline.
    assert_eq!(
        remind_time(london("2026-03-30T08:00"), time(8, 0, 0, 0)),
        None
    );
}

#[test]
fn friday_night_over_a_weekend_and_a_closure_is_reminded_tuesday() {
    let mut i = item("2026-11-20T21:00", "2026-11-20T21:01");
    assert_eq!(i.deadline, Some(london("2026-11-24T08:00")));
    // Saturday, Sunday and the closed Monday: nothing due; next Tuesday 06:30.
    for now in [
        "2026-11-21T12:00",
        "2026-11-22T06:30",
        "2026-11-23T06:30",
        "2026-11-24T06:29:59",
    ] {
        let p = plan(std::slice::from_ref(&i), HALF_SIX, london(now));
        assert!(p.due.is_empty(), "{now}: {p:?}");
        assert_eq!(p.next, Some(london("2026-11-24T06:30")), "{now}");
    }
    let p = plan(
        std::slice::from_ref(&i),
        HALF_SIX,
        london("2026-11-24T06:30"),
    );
    assert_eq!(p.due.remind_at, key());
    assert!(p.due.deadline.is_empty());
    assert_eq!(p.next, Some(london("2026-11-24T08:00")));
    // Sent: not again; the deadline is next.
    i.reminded = true;
    let p = plan(
        std::slice::from_ref(&i),
        HALF_SIX,
        london("2026-11-24T07:59:59"),
    );
    assert!(p.due.is_empty());
    assert_eq!(p.next, Some(london("2026-11-24T08:00")));
    let p = plan(
        std::slice::from_ref(&i),
        HALF_SIX,
        london("2026-11-24T08:00"),
    );
    assert_eq!(p.due.deadline, key());
    assert!(p.due.remind_at.is_empty());
    // Recorded: nothing more, ever.
    i.deadline_missed = true;
    let p = plan(
        std::slice::from_ref(&i),
        HALF_SIX,
        london("2026-11-25T08:00"),
    );
    assert_eq!(p, Plan::default());
}

#[test]
fn a_restart_sends_a_missed_reminder_late_and_the_deadline_one_instead_after_the_deadline() {
    let i = item("2026-11-20T21:00", "2026-11-20T21:01");
    // Down at 06:30, up at 07:40: the reminder now.
    let p = plan(
        std::slice::from_ref(&i),
        HALF_SIX,
        london("2026-11-24T07:40"),
    );
    assert_eq!(p.due.remind_at, key());
    // Up only after 08:00: one deadline reminder, not two messages.
    let p = plan(
        std::slice::from_ref(&i),
        HALF_SIX,
        london("2026-11-24T09:10"),
    );
    assert_eq!(p.due.deadline, key());
    assert!(p.due.remind_at.is_empty());
}

#[test]
fn a_child_entering_review_after_remind_at_gets_only_the_deadline_reminder() {
    // Received Tuesday 07:00 (its notice tells the desk now): deadline 08:00.
    let i = item("2026-11-24T07:00", "2026-11-24T07:00");
    assert_eq!(i.deadline, Some(london("2026-11-24T08:00")));
    let p = plan(
        std::slice::from_ref(&i),
        HALF_SIX,
        london("2026-11-24T07:00"),
    );
    assert!(p.due.is_empty());
    assert_eq!(p.next, Some(london("2026-11-24T08:00")));
}

#[test]
fn the_clocks_going_forward_move_the_reminder_to_half_past_five_utc() {
    // Friday 27 March 2026 22:00 GMT; the clocks go forward on Sunday.
    let received = london("2026-03-27T22:00");
    let mut i = item("2026-03-27T22:00", "2026-03-27T22:01");
    i.deadline = Some(SchoolCalendar::default().deadline(received));
    assert_eq!(i.deadline, Some("2026-03-30T07:00:00Z".parse().unwrap()));
    let p = plan(
        std::slice::from_ref(&i),
        HALF_SIX,
        london("2026-03-28T12:00"),
    );
    assert_eq!(p.next, Some("2026-03-30T05:30:00Z".parse().unwrap()));
}

// ---- the task, the store and the delivery worker under the paused clock ----

const NAME: (&str, &str, &str, &str) = ("Zebediah", "Quixotic", "2013-05-17", "QX9 7ZZ");

fn open_store(path: &Path) -> Arc<Store> {
    let store = Arc::new(crate::store::reopen(path, &MasterKey::from_bytes([7; 32])));
    store.set_inline_flush(true);
    store.set_calendar(calendar());
    store
}

/// Accepts a notification at `received` and sends its child to review.
fn into_review(store: &Store, reference: &str, received: Timestamp) -> String {
    let body = serde_json::json!({
        "police_reference": reference,
        "incident": {"occurred_at": "2026-11-20T20:00:00Z", "category": "domestic_abuse"},
        "children": [{"given_name": NAME.0, "family_name": NAME.1, "date_of_birth": NAME.2,
                      "postcode": NAME.3, "involvement": "present"}]
    });
    let n = crate::ingest::notification::parse_notification(body.to_string().as_bytes(), received)
        .unwrap();
    let (out, _) = store.accept("kent", &n, received).unwrap();
    let crate::store::AcceptOutcome::Accepted(rec) = out else {
        panic!("not accepted")
    };
    let receipt = rec.receipt_id.as_str().to_owned();
    let _ = store
        .complete_match_at(
            &receipt,
            &[(0, Decision::NeedsReview(ReviewReason::AmbiguousSchools))],
            received,
        )
        .unwrap()
        .unwrap();
    receipt
}

/// A fresh store with one school.
fn install(dir: &Path) -> Arc<Store> {
    let store = open_store(&dir.join("store"));
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
    std::fs::create_dir_all(dir.join("outbox")).unwrap();
    store
}

/// kim's reminder task and delivery worker, as the daemon runs them.
struct Running {
    clock: Arc<TokioClock>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn start(store: &Arc<Store>, outbox: &Path, at: Timestamp) -> Running {
    let clock = Arc::new(TokioClock::starting_at(at));
    let policy = Policy {
        delivery: crate::config::DeliveryConfig::default(),
        alert: crate::config::AlertConfig::default(),
        from: "Keep in mind <kim@council.example>".parse().unwrap(),
        admin: "safeguarding@council.example".parse().unwrap(),
        review_notify: vec!["review-desk@council.example".parse().unwrap()],
        test_recipient: None,
    };
    let (stop, rx) = watch::channel(false);
    let d = Deliverer::new(
        store.clone(),
        Arc::new(FileTransport::new(outbox.to_owned())),
        policy,
        clock.clone(),
    );
    let tasks = vec![
        tokio::spawn(d.run(rx.clone())),
        tokio::spawn(run(store.clone(), HALF_SIX, clock.clone(), rx)),
    ];
    Running { clock, stop, tasks }
}

impl Running {
    async fn until(&self, uk: &str) {
        let d = Duration::try_from(london(uk).duration_since(self.clock.now())).unwrap();
        tokio::time::sleep(d).await;
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

/// The reminders written to the outbox, by file name, with their text.
fn reminders(outbox: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(outbox)
        .unwrap()
        .filter_map(|e| {
            let p: PathBuf = e.ok()?.path();
            let name = p.file_name()?.to_str()?.to_owned();
            (name.starts_with("review.") && name.ends_with(".eml")).then(|| {
                let text = std::fs::read_to_string(&p).unwrap().replace("=\r\n", "");
                (name, text)
            })
        })
        .collect();
    v.sort();
    v
}

/// The children `deadline_missed` was audited for (receipt, index, detail).
fn missed(store: &Store) -> Vec<(String, u32, serde_json::Value)> {
    store
        .audit_events()
        .map(|e| e.unwrap())
        .filter(|e| e.kind == EventKind::DeadlineMissed)
        .map(|e| {
            (
                e.refs.receipt.clone().unwrap_or_default(),
                e.refs.child.unwrap_or(99),
                serde_json::Value::Object(e.detail.clone()),
            )
        })
        .collect()
}

fn assert_no_personal_data(text: &str) {
    for p in [NAME.0, NAME.1, NAME.2, NAME.3, "QX9", "7ZZ", "17 May 2013"] {
        assert!(!text.contains(p), "{p} in a reminder: {text}");
    }
}

#[tokio::test(start_paused = true)]
async fn reminded_at_remind_at_and_audited_at_the_deadline_across_a_weekend_and_a_closure() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let store = install(dir.path());
    // Friday night: three children go to review.
    let a = into_review(&store, "KNT/A", london("2026-11-20T21:00"));
    let b = into_review(&store, "KNT/B", london("2026-11-20T21:05"));
    let c = into_review(&store, "KNT/C", london("2026-11-20T21:10"));
    let kim = start(&store, &outbox, london("2026-11-20T21:15"));

    // B is decided on Saturday: never reminded, never late. (Dismissed:
    // an assignment would queue a DSL alert at the real time, not the
    // paused clock's.)
    kim.until("2026-11-21T10:00").await;
    let _ = store
        .review_dismiss(&b, 0, "not ours", "admin:test")
        .unwrap();

    // Nothing over the weekend and the closed Monday.
    kim.until("2026-11-24T06:29:50").await;
    assert!(reminders(&outbox).is_empty(), "{:?}", reminders(&outbox));
    kim.until("2026-11-24T06:30:10").await;
    let r = reminders(&outbox);
    assert_eq!(r.len(), 1, "one reminder at 06:30 Tuesday: {r:?}");
    let (name, text) = &r[0];
    assert!(name.starts_with("review.remind-at."), "{name}");
    assert!(
        text.contains("Subject: kim: reminder: 2 children still need review before 08:00"),
        "{text}"
    );
    assert!(text.contains("To: review-desk@council.example"), "{text}");
    for (receipt, reference) in [(&a, "KNT/A"), (&c, "KNT/C")] {
        assert!(
            text.contains(receipt.as_str()) && text.contains(reference),
            "{text}"
        );
    }
    assert!(text.contains("reason ambiguous_schools"), "{text}");
    assert!(
        text.contains("Tuesday 24 November 2026 at 08:00 (UK time)"),
        "{text}"
    );
    assert!(
        !text.contains(b.as_str()) && !text.contains("KNT/B"),
        "B was decided: {text}"
    );
    assert_no_personal_data(text);
    assert!(missed(&store).is_empty(), "not late yet");

    // C is decided after the reminder, before the deadline.
    kim.until("2026-11-24T07:00").await;
    let _ = store
        .review_dismiss(&c, 0, "moved away", "admin:test")
        .unwrap();
    kim.until("2026-11-24T07:59:50").await;
    assert!(missed(&store).is_empty());
    assert_eq!(reminders(&outbox).len(), 1);

    kim.until("2026-11-24T08:00:10").await;
    let r = reminders(&outbox);
    assert_eq!(r.len(), 2, "{r:?}");
    let (name, text) = &r[0];
    assert!(name.starts_with("review.deadline."), "{name}");
    assert!(
        text.contains("Subject: kim: deadline passed: 1 child still needs review"),
        "{text}"
    );
    assert!(text.contains(a.as_str()), "{text}");
    assert!(
        !text.contains(b.as_str()) && !text.contains(c.as_str()),
        "{text}"
    );
    assert_no_personal_data(text);
    let m = missed(&store);
    assert_eq!(m.len(), 1, "deadline_missed for A only: {m:?}");
    assert_eq!((m[0].0.as_str(), m[0].1), (a.as_str(), 0));
    assert_eq!(m[0].2["in_review"], true);
    assert_eq!(m[0].2["deadline"], london("2026-11-24T08:00").to_string());
    // The police status says so.
    let child = &store.record(&a).unwrap().unwrap().children[0];
    assert_eq!(child.deadline, Some(london("2026-11-24T08:00")));
    assert_eq!(child.deadline_met, Some(false));

    // Once each: nothing more the next days.
    kim.until("2026-11-26T09:00").await;
    assert_eq!(reminders(&outbox).len(), 2);
    assert_eq!(missed(&store).len(), 1);
    kim.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_neither_repeats_nor_skips_a_reminder() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let path = dir.path().join("store");
    let store = install(dir.path());
    let a = into_review(&store, "KNT/A", london("2026-11-20T21:00"));

    // Down from 06:00 to 07:10 on Tuesday: the 06:30 reminder comes late.
    let kim = start(&store, &outbox, london("2026-11-20T21:15"));
    kim.until("2026-11-24T06:00").await;
    kim.stop().await;
    drop(store);
    assert!(reminders(&outbox).is_empty());

    let store = open_store(&path);
    let kim = start(&store, &outbox, london("2026-11-24T07:10"));
    kim.until("2026-11-24T07:10:05").await;
    let r = reminders(&outbox);
    assert_eq!(r.len(), 1, "late rather than never: {r:?}");
    assert!(r[0].0.starts_with("review.remind-at."));
    assert!(r[0].1.contains(a.as_str()));
    kim.stop().await;
    drop(store);

    // Up again before the deadline: not repeated; the deadline one comes.
    let store = open_store(&path);
    let kim = start(&store, &outbox, london("2026-11-24T07:20"));
    kim.until("2026-11-24T07:59:50").await;
    assert_eq!(
        reminders(&outbox).len(),
        1,
        "the 06:30 reminder is not repeated"
    );
    kim.until("2026-11-24T08:00:10").await;
    assert_eq!(reminders(&outbox).len(), 2);
    assert_eq!(missed(&store).len(), 1);
    kim.stop().await;
    drop(store);

    // And after the deadline: neither repeated.
    let store = open_store(&path);
    let kim = start(&store, &outbox, london("2026-11-24T08:30"));
    kim.until("2026-11-25T09:00").await;
    assert_eq!(reminders(&outbox).len(), 2);
    assert_eq!(missed(&store).len(), 1);
    kim.stop().await;
}
