//! The worker under tokio's paused clock: backoff, the retry window,
//! escalation and the school-day deadline, hours of time in milliseconds.
//! The store is a real sled directory; the transport is scripted (the real
//! SMTP path is tested against a real server in tests/it/delivery.rs).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::transport::{Accepted, SendError, SendFuture, Transport};
use super::*;
use crate::config::HumanDuration;
use crate::import::School;
use crate::matching::decide::Decision;
use crate::store::crypto::MasterKey;

struct Sent {
    id: String,
    at: Timestamp,
    to: Vec<String>,
    body: String,
}

struct Scripted {
    clock: Arc<dyn Clock>,
    script: Mutex<VecDeque<Result<Accepted, SendError>>>,
    /// When the script is empty: fail transiently for DSL alerts (true) or accept.
    then_fail: bool,
    sent: Mutex<Vec<Sent>>,
}

impl Transport for Scripted {
    fn send<'a>(&'a self, id: &'a str, msg: &'a Message) -> SendFuture<'a> {
        let res = self.script.lock().unwrap().pop_front();
        let res = res.unwrap_or(
            if self.then_fail
                && !id.contains(".escalated")
                && !id.contains(".failed")
                && !id.contains(".deputy")
            {
                Err(transient())
            } else {
                Ok(Accepted { code: 250 })
            },
        );
        self.sent.lock().unwrap().push(Sent {
            id: id.to_owned(),
            at: self.clock.now(),
            to: msg.envelope().to().iter().map(|a| a.to_string()).collect(),
            body: String::from_utf8_lossy(&msg.formatted()).replace("=\r\n", ""),
        });
        Box::pin(async move { res })
    }
}

fn transient() -> SendError {
    SendError {
        code: Some(421),
        permanent: false,
        why: "421 4.3.2 try later".into(),
    }
}

fn london(s: &str) -> Timestamp {
    s.parse::<jiff::civil::DateTime>()
        .unwrap()
        .to_zoned(deadline::school_tz())
        .unwrap()
        .timestamp()
}

fn policy(f: impl FnOnce(&mut DeliveryConfig)) -> Policy {
    let mut delivery = DeliveryConfig {
        escalate_after: HumanDuration(Duration::from_secs(30 * 60)),
        give_up_after: HumanDuration(Duration::from_secs(24 * 3600)),
        retry_initial: HumanDuration(Duration::from_secs(30)),
        retry_max: HumanDuration(Duration::from_secs(15 * 60)),
        ..DeliveryConfig::default()
    };
    f(&mut delivery);
    Policy {
        delivery,
        alert: AlertConfig::default(),
        from: "Keep in mind <kim@council.example>".parse().unwrap(),
        admin: "safeguarding@council.example".parse().unwrap(),
        review_notify: vec!["safeguarding@council.example".parse().unwrap()],
        test_recipient: None,
    }
}

/// No escalation and no giving up within a week: the deadline tests watch
/// the clock alone.
fn patient(d: &mut DeliveryConfig) {
    d.escalate_after = HumanDuration(Duration::from_secs(7 * 24 * 3600));
    d.give_up_after = HumanDuration(Duration::from_secs(7 * 24 * 3600));
}

struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    transport: Arc<Scripted>,
    alert: String,
    stop: watch::Sender<bool>,
}

/// A store with one school and one notification received at `received`
/// (the clock's start), matched and its alert queued; the worker running.
async fn rig(
    received: Timestamp,
    closures: &[jiff::civil::Date],
    script: Vec<Result<Accepted, SendError>>,
    then_fail: bool,
    p: Policy,
) -> Rig {
    let clock = Arc::new(TokioClock::starting_at(received));
    rig_with_clock(received, closures, script, then_fail, p, clock).await
}

/// As `rig`, with the worker on `clock`.
async fn rig_with_clock(
    received: Timestamp,
    closures: &[jiff::civil::Date],
    script: Vec<Result<Accepted, SendError>>,
    then_fail: bool,
    p: Policy,
    clock: Arc<dyn Clock>,
) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(&dir.path().join("store"), &MasterKey::from_bytes([7; 32])).unwrap());
    store.set_inline_flush(true);
    store.set_calendar(deadline::SchoolCalendar::new(
        jiff::civil::time(8, 0, 0, 0),
        closures,
    ));
    store
        .replace_schools(&[School {
            urn: "118765".into(),
            name: "Maidstone Primary".into(),
            dsl_name: "Ms Dee".into(),
            dsl_email: "dsl@maidstone.example".into(),
            deputy_email: Some("deputy@maidstone.example".into()),
            phone: None,
        }])
        .unwrap()
        .unwrap();
    let body = serde_json::json!({
        "police_reference": "KNT/26/T1",
        "incident": {"occurred_at": "2026-01-01T20:00:00Z", "category": "domestic_abuse"},
        "children": [{"given_name": "Zebediah", "family_name": "Quixotic", "date_of_birth": "2013-05-17", "involvement": "present"}]
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
            &[(
                0,
                Decision::Matched {
                    urn: "118765".into(),
                    basis: "exact",
                },
            )],
            received,
        )
        .unwrap()
        .unwrap();
    let transport = Arc::new(Scripted {
        clock: clock.clone(),
        script: Mutex::new(script.into()),
        then_fail,
        sent: Mutex::new(Vec::new()),
    });
    let (stop, stop_rx) = watch::channel(false);
    let d = Deliverer::new(store.clone(), transport.clone(), p, clock);
    tokio::spawn(d.run(stop_rx));
    Rig {
        _dir: dir,
        store,
        transport,
        alert: format!("{receipt}.0"),
        stop,
    }
}

fn secs(a: Timestamp, b: Timestamp) -> f64 {
    b.duration_since(a).as_secs_f64()
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_with_jitter_then_deliver() {
    let t0 = london("2026-11-23T21:00");
    let r = rig(
        t0,
        &[],
        vec![
            Err(transient()),
            Err(transient()),
            Err(transient()),
            Err(transient()),
        ],
        false,
        policy(|_| {}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let a = r.store.alert(&r.alert).unwrap().unwrap();
    assert_eq!(a.state, crate::store::outbox::AlertState::Delivered);
    assert_eq!(a.attempts, 5);
    let sent = r.transport.sent.lock().unwrap();
    let times: Vec<Timestamp> = sent
        .iter()
        .filter(|s| s.id == r.alert)
        .map(|s| s.at)
        .collect();
    assert_eq!(times.len(), 5);
    for (i, base) in [30.0, 60.0, 120.0, 240.0].iter().enumerate() {
        let gap = secs(times[i], times[i + 1]);
        assert!(
            gap >= base * 0.8 - 0.01 && gap <= base * 1.2 + 0.01,
            "gap {i} was {gap}s, expected {base}s ±20%"
        );
    }
    assert_eq!(a.deadline_met, Some(true));
    let _ = r.stop.send(true);
}

#[tokio::test(start_paused = true)]
async fn waits_are_capped_and_the_window_ends_in_failure_and_an_admin_notice() {
    let t0 = london("2026-11-23T21:00");
    let r = rig(
        t0,
        &[],
        vec![],
        true,
        policy(|d| {
            d.give_up_after = HumanDuration(Duration::from_secs(3600));
            d.retry_max = HumanDuration(Duration::from_secs(300));
            d.escalate_after = HumanDuration(Duration::from_secs(48 * 3600));
        }),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    let a = r.store.alert(&r.alert).unwrap().unwrap();
    assert_eq!(a.state, crate::store::outbox::AlertState::Failed);
    let sent = r.transport.sent.lock().unwrap();
    let times: Vec<Timestamp> = sent
        .iter()
        .filter(|s| s.id == r.alert)
        .map(|s| s.at)
        .collect();
    for w in times.windows(2) {
        assert!(
            secs(w[0], w[1]) <= 300.0 * 1.2 + 0.01,
            "a wait exceeded retry_max"
        );
    }
    assert!(
        secs(t0, *times.last().unwrap()) <= 3600.0,
        "an attempt after give_up_after"
    );
    assert!(times.len() >= 10, "{} attempts", times.len());
    let admin: Vec<&Sent> = sent.iter().filter(|s| s.id.ends_with(".failed")).collect();
    assert_eq!(admin.len(), 1);
    assert_eq!(admin[0].to, vec!["safeguarding@council.example".to_owned()]);
    assert!(!admin[0].body.contains("Zebediah") && !admin[0].body.contains("2013"));
    let events: Vec<_> = r.store.audit_events().map(|e| e.unwrap()).collect();
    assert!(events
        .iter()
        .any(|e| e.kind == crate::audit::EventKind::Failed));
    let _ = r.stop.send(true);
}

#[tokio::test(start_paused = true)]
async fn a_late_alert_escalates_to_the_deputy_and_tells_the_admin_once() {
    let t0 = london("2026-11-23T21:00");
    let r = rig(t0, &[], vec![], true, policy(|_| {})).await;
    tokio::time::sleep(Duration::from_secs(29 * 60)).await;
    assert!(
        r.transport
            .sent
            .lock()
            .unwrap()
            .iter()
            .all(|s| s.id == r.alert),
        "nothing escalated before 30 minutes"
    );
    tokio::time::sleep(Duration::from_secs(2 * 60)).await;
    {
        let sent = r.transport.sent.lock().unwrap();
        let deputy: Vec<&Sent> = sent.iter().filter(|s| s.id.ends_with(".deputy")).collect();
        assert_eq!(deputy.len(), 1);
        assert_eq!(deputy[0].to, vec!["deputy@maidstone.example".to_owned()]);
        assert!(
            deputy[0].body.contains("Zebediah"),
            "the deputy gets the alert itself"
        );
        let at = secs(t0, deputy[0].at);
        assert!((1800.0..1860.0).contains(&at), "escalated at {at}s");
        let admin: Vec<&Sent> = sent
            .iter()
            .filter(|s| s.id.ends_with(".escalated"))
            .collect();
        assert_eq!(admin.len(), 1);
        assert_eq!(admin[0].to, vec!["safeguarding@council.example".to_owned()]);
        assert!(!admin[0].body.contains("Zebediah") && !admin[0].body.contains("Quixotic"));
    }
    tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    let sent = r.transport.sent.lock().unwrap();
    assert_eq!(
        sent.iter().filter(|s| s.id.ends_with(".escalated")).count(),
        1,
        "escalated once"
    );
    let a = r.store.alert(&r.alert).unwrap().unwrap();
    assert!(a.escalated);
    let events: Vec<_> = r.store.audit_events().map(|e| e.unwrap()).collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == crate::audit::EventKind::Escalated)
            .count(),
        1
    );
    let _ = r.stop.send(true);
}

#[tokio::test(start_paused = true)]
async fn friday_night_deadline_is_monday_eight_and_a_miss_is_recorded() {
    // Friday 20 November 2026, 22:00; the relay refuses all weekend.
    let t0 = london("2026-11-20T22:00");
    let r = rig(
        t0,
        &[],
        vec![],
        true,
        policy(|d| {
            patient(d);
            d.retry_max = HumanDuration(Duration::from_secs(3600));
        }),
    )
    .await;
    let a = r.store.alert(&r.alert).unwrap().unwrap();
    assert_eq!(a.deadline, Some(london("2026-11-23T08:00")));
    // Sunday evening: not yet missed.
    tokio::time::sleep(Duration::from_secs(44 * 3600)).await;
    assert_eq!(r.store.alert(&r.alert).unwrap().unwrap().deadline_met, None);
    // Monday 09:00: missed, once, in the alert, the status and the audit.
    tokio::time::sleep(Duration::from_secs(15 * 3600)).await;
    let a = r.store.alert(&r.alert).unwrap().unwrap();
    assert_eq!(a.deadline_met, Some(false));
    let rec = r.store.record(&a.receipt).unwrap().unwrap();
    assert_eq!(rec.children[0].deadline_met, Some(false));
    let missed: Vec<_> = r
        .store
        .audit_events()
        .map(|e| e.unwrap())
        .filter(|e| e.kind == crate::audit::EventKind::DeadlineMissed)
        .collect();
    assert_eq!(missed.len(), 1);
    assert!(
        missed[0].time >= london("2026-11-23T08:00") && missed[0].time < london("2026-11-23T09:00")
    );
    let _ = r.stop.send(true);
}

#[tokio::test(start_paused = true)]
async fn a_closure_moves_the_deadline_and_a_weekend_delivery_meets_it() {
    let t0 = london("2026-11-20T22:00");
    let closure: jiff::civil::Date = "2026-11-23".parse().unwrap();
    // Down for 30 hours (the whole of Saturday), then accepted.
    let script: Vec<_> = (0..40).map(|_| Err(transient())).collect();
    let r = rig(
        t0,
        &[closure],
        script,
        false,
        policy(|d| {
            patient(d);
            d.retry_max = HumanDuration(Duration::from_secs(3600));
        }),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4 * 24 * 3600)).await;
    let a = r.store.alert(&r.alert).unwrap().unwrap();
    assert_eq!(
        a.deadline,
        Some(london("2026-11-24T08:00")),
        "Monday is closed: Tuesday"
    );
    assert_eq!(a.state, crate::store::outbox::AlertState::Delivered);
    assert!(a.delivered_at.unwrap() > london("2026-11-21T12:00"));
    assert_eq!(a.deadline_met, Some(true));
    let _ = r.stop.send(true);
}

#[tokio::test(start_paused = true)]
async fn the_clocks_going_back_do_not_move_the_deadline_by_an_hour() {
    // Friday 23 October 2026, 22:00 BST; GMT from Sunday. Monday 08:00 GMT.
    let t0 = london("2026-10-23T22:00");
    let r = rig(t0, &[], vec![], false, policy(|_| {})).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let a = r.store.alert(&r.alert).unwrap().unwrap();
    assert_eq!(a.deadline, Some("2026-10-26T08:00:00Z".parse().unwrap()));
    assert_eq!(a.deadline_met, Some(true));
    let _ = r.stop.send(true);
}

#[test]
fn backoff_doubles_and_is_capped() {
    let p = policy(|_| {});
    assert_eq!(p.backoff(1, 0.5), Duration::from_secs(30));
    assert_eq!(p.backoff(2, 0.5), Duration::from_secs(60));
    assert_eq!(p.backoff(3, 0.0), Duration::from_secs(96));
    assert_eq!(p.backoff(3, 1.0), Duration::from_secs(144));
    assert_eq!(p.backoff(30, 0.5), Duration::from_secs(900));
}

#[tokio::test(start_paused = true)]
async fn the_clocks_going_forward_move_the_deadline_to_seven_utc() {
    // Friday 27 March 2026, 22:00 GMT; BST from Sunday: Monday 08:00 BST is
    // 07:00 UTC. The relay is down until Monday 07:30 BST: missed.
    let t0 = london("2026-03-27T22:00");
    let r = rig(
        t0,
        &[],
        vec![],
        true,
        policy(|d| {
            patient(d);
            d.retry_max = HumanDuration(Duration::from_secs(600));
        }),
    )
    .await;
    let a = r.store.alert(&r.alert).unwrap().unwrap();
    assert_eq!(a.deadline, Some("2026-03-30T07:00:00Z".parse().unwrap()));
    // Monday 06:59 UTC (07:59 BST): not yet missed; 07:01 UTC: missed.
    tokio::time::sleep(Duration::from_secs(
        until(t0, "2026-03-30T06:59:00Z".parse().unwrap()).as_secs(),
    ))
    .await;
    assert_eq!(r.store.alert(&r.alert).unwrap().unwrap().deadline_met, None);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        r.store.alert(&r.alert).unwrap().unwrap().deadline_met,
        Some(false)
    );
    let _ = r.stop.send(true);
}

/// A wall clock that steps (an NTP correction, an admin's `date -s`, a VM
/// resumed): the paused tokio clock plus an offset the test changes.
struct Stepping {
    base: TokioClock,
    offset: Mutex<jiff::SignedDuration>,
}

impl Clock for Stepping {
    fn now(&self) -> Timestamp {
        let off = *self.offset.lock().unwrap();
        self.base.now().checked_add(off).unwrap()
    }
}

/// Found by the fault campaign (tests/faults, clock part): an alert waiting
/// to retry when the wall clock stepped back an hour waited that hour too
/// (its retry time is wall-clock time), a retry of 30 s held back an hour.
#[tokio::test(start_paused = true)]
async fn a_step_back_of_the_wall_clock_does_not_hold_a_retry_back() {
    let t0 = london("2026-11-23T21:00");
    let clock = Arc::new(Stepping {
        base: TokioClock::starting_at(t0),
        offset: Mutex::new(jiff::SignedDuration::ZERO),
    });
    let r = rig_with_clock(
        t0,
        &[],
        vec![Err(transient())],
        false,
        policy(|_| {}),
        clock.clone(),
    )
    .await;
    // The first attempt is refused; the retry is due in 30 s (±20 %).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let a = r.store.alert(&r.alert).unwrap().unwrap();
    assert_eq!(a.state, crate::store::outbox::AlertState::RetryWait);
    *clock.offset.lock().unwrap() = jiff::SignedDuration::from_hours(-1);
    // Well past the longest wait retry_max allows (15 min + 20 %).
    tokio::time::sleep(Duration::from_secs(20 * 60)).await;
    let a = r.store.alert(&r.alert).unwrap().unwrap();
    assert_eq!(
        a.state,
        crate::store::outbox::AlertState::Delivered,
        "a step back of the clock held the retry back"
    );
    let sent = r.transport.sent.lock().unwrap();
    assert_eq!(sent.iter().filter(|s| s.id == r.alert).count(), 2);
    let _ = r.stop.send(true);
}
