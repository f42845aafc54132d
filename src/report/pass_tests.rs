use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use super::*;
use crate::audit::{AuditEvent, EventKind, Head, Refs};
use crate::report::tests::november;
use crate::report::{compute, Tally};

/// A chain of `n` notifications a minute apart from 1 Nov 2026 (received,
/// matched, queued, the relay's acceptance, delivered on time), kim
/// restarting every 700: some 5 × `n` events, in many batches.
fn chain(n: u32) -> Vec<AuditEvent> {
    let mut head = Head::default();
    let mut out = Vec::new();
    let t0: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
    let mut push = |at: Timestamp, kind, actor: &str, refs: Refs, detail: serde_json::Value| {
        let ev = AuditEvent::next(
            &head,
            at,
            kind,
            actor.into(),
            refs,
            detail.as_object().cloned().unwrap_or_default(),
        );
        head = ev.head();
        out.push(ev);
    };
    for i in 0..n {
        let at = t0 + SignedDuration::from_secs(60 * i64::from(i));
        let receipt = format!("R{i:05}");
        let alert = format!("{receipt}.0");
        let urn = format!("{}", 100_000 + i % 600);
        let refs = |child: Option<u32>, urn: Option<&str>, alert: Option<&str>| Refs {
            receipt: Some(receipt.clone()),
            child,
            school_urn: urn.map(Into::into),
            alert_id: alert.map(Into::into),
        };
        if i % 700 == 699 {
            push(at, EventKind::Stopped, "system", Refs::default(), json!({}));
            push(at, EventKind::Started, "system", Refs::default(), json!({}));
        }
        let force = if i % 3 == 0 {
            "force:met"
        } else {
            "force:kent"
        };
        push(
            at,
            EventKind::Received,
            force,
            refs(None, None, None),
            json!({"children": 1}),
        );
        push(
            at,
            EventKind::Matched,
            "system",
            refs(Some(0), Some(&urn), None),
            json!({}),
        );
        push(
            at,
            EventKind::AlertQueued,
            "system",
            refs(Some(0), Some(&urn), Some(&alert)),
            json!({}),
        );
        push(
            at,
            EventKind::DeliveryAttempt,
            "system",
            refs(Some(0), None, Some(&alert)),
            json!({"result": "accepted", "attempt": 1}),
        );
        push(
            at + SignedDuration::from_secs(30),
            EventKind::Delivered,
            "system",
            refs(Some(0), None, Some(&alert)),
            json!({"deadline_met": true}),
        );
    }
    out
}

fn stored(events: &[AuditEvent]) -> Vec<(u64, Vec<u8>)> {
    events
        .iter()
        .map(|e| (e.seq, serde_json::to_vec(e).unwrap()))
        .collect()
}

fn genesis() -> Link {
    Link::of(&Head::default()).unwrap()
}

fn pass(
    events: Vec<(u64, Vec<u8>)>,
    last: u64,
) -> (Result<Checked, PassError<String>>, crate::report::Figures) {
    let mut scan = Scan::new(Tally::new(&november(), None));
    let r = run(events.into_iter().map(Ok), genesis(), last, &mut scan);
    (r, scan.finish(&HashMap::new()))
}

#[test]
fn many_batches_come_back_in_chain_order_with_the_figures_of_one_thread() {
    let events = chain(8_000);
    assert!(
        events.len() > 2 * IN_FLIGHT * BATCH,
        "{} events",
        events.len()
    );
    let last = events.last().unwrap().seq;
    let (checked, figures) = pass(stored(&events), last);
    let (head, first) = checked.unwrap();
    assert_eq!((head.seq, first), (last, 1));
    assert_eq!(head.head(), events.last().unwrap().head());
    let truth = compute(&november(), None, &events, &HashMap::new());
    assert_eq!(figures, truth);
    assert_eq!(figures.received.notifications, 8_000);
    assert_eq!(figures.outcomes.delivered, 8_000);
    assert_eq!(figures.per_force["met"].notifications, 2_667);
}

#[test]
fn a_pass_stops_at_the_last_event_asked_for() {
    let events = chain(3_000);
    let last = events[9_000].seq;
    let (checked, _) = pass(stored(&events), last);
    assert_eq!(checked.unwrap().0.head(), events[9_000].head());
}

#[test]
fn a_changed_event_deep_in_the_pass_is_named() {
    let events = chain(6_000);
    let mut bytes = stored(&events);
    let at = 25_000;
    let seq = bytes[at].0;
    let text = String::from_utf8(bytes[at].1.clone()).unwrap();
    bytes[at].1 = text.replacen("system", "systen", 1).into_bytes();
    let last = events.last().unwrap().seq;
    match pass(bytes, last).0 {
        Err(PassError::Chain(e)) => assert_eq!(e.seq, seq, "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_event_is_named() {
    let events = chain(3_000);
    let mut bytes = stored(&events);
    let gone = bytes.remove(4_321).0;
    let last = events.last().unwrap().seq;
    match pass(bytes, last).0 {
        Err(PassError::Chain(e)) => assert_eq!(e.seq, gone, "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_read_fault_is_returned_in_its_turn_after_the_events_before_it() {
    let events = chain(3_000);
    let last = events.last().unwrap().seq;
    let bytes = stored(&events);
    let mut scan = Scan::new(Tally::new(&november(), None));
    let items = bytes.into_iter().enumerate().map(|(i, e)| {
        if i == 5_000 {
            Err("the file ends inside it".to_owned())
        } else {
            Ok(e)
        }
    });
    match run(items, genesis(), last, &mut scan) {
        Err(PassError::Store(e)) => assert_eq!(e, "the file ends inside it"),
        other => panic!("{other:?}"),
    }
    // Everything before the fault was counted, nothing after it.
    let f = scan.finish(&HashMap::new());
    assert_eq!(f.received.notifications, 1_000, "{:?}", f.received);
}

#[test]
fn no_event_read_leaves_the_start() {
    let (checked, figures) = pass(Vec::new(), 10);
    assert_eq!(checked.unwrap(), (genesis(), 1));
    assert_eq!(figures.received.notifications, 0);
}
