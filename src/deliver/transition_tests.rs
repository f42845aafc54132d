//! The outbox state machine without a store: every state × every outcome.

use super::*;
use crate::store::outbox::alert_id;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn alert(kind: AlertKind, state: AlertState) -> AlertRecord {
    let mut a = AlertRecord::new(
        alert_id("R1", 0),
        kind,
        "R1",
        0,
        "100001",
        t("2026-11-23T07:00:00Z"),
    );
    if kind != AlertKind::Dsl {
        a.id = format!("R1.0.{kind:?}");
        a.follows = Some("R1.0".into());
    }
    a.state = state;
    a.attempts = 1;
    a.deadline = Some(t("2026-11-23T08:00:00Z"));
    a
}

const STATES: [AlertState; 6] = [
    AlertState::Queued,
    AlertState::Sending,
    AlertState::RetryWait,
    AlertState::Delivered,
    AlertState::Failed,
    AlertState::Withdrawn,
];

const KINDS: [AlertKind; 3] = [AlertKind::Dsl, AlertKind::Deputy, AlertKind::AdminFailure];

fn outcomes() -> Vec<Outcome> {
    vec![
        Outcome::Sent(SendOutcome::Delivered { code: 250 }),
        Outcome::Sent(SendOutcome::Retry {
            code: Some(451),
            reply: "try later".into(),
            next: t("2026-11-23T07:35:00Z"),
        }),
        Outcome::Sent(SendOutcome::Failed {
            code: Some(550),
            reply: "no such user".into(),
            why: "refused",
        }),
        Outcome::Escalate { has_deputy: true },
        Outcome::Escalate { has_deputy: false },
        Outcome::DeadlineMissed,
        Outcome::Withdraw {
            force: "kent".into(),
        },
        Outcome::Requeue {
            actor: "admin:root".into(),
            to_hash: Some("00ff".into()),
        },
        Outcome::Flush {
            actor: "admin:root".into(),
        },
    ]
}

/// What a transition looks like, in short: new state, follow-up ids,
/// event kinds, child update.
fn shape(
    tr: &Transition,
) -> (
    Option<AlertState>,
    Vec<String>,
    Vec<EventKind>,
    Option<ChildUpdate>,
) {
    (
        tr.alert.as_ref().map(|a| a.state),
        tr.follow_ups.iter().map(|f| f.id.clone()).collect(),
        tr.events.iter().map(|e| e.kind).collect(),
        tr.child,
    )
}

/// The expected result, written out per case (the table the design's
/// state machine implies).
fn expected(
    a: &AlertRecord,
    o: &Outcome,
    now: Timestamp,
) -> (
    Option<AlertState>,
    Vec<String>,
    Vec<EventKind>,
    Option<ChildUpdate>,
) {
    use AlertState::*;
    use EventKind as E;
    let id = |s: &str| format!("{}.{s}", a.id);
    let school = a.kind.to_school();
    let dsl = a.kind == AlertKind::Dsl;
    match o {
        Outcome::Sent(SendOutcome::Delivered { .. }) => (
            Some(Delivered),
            vec![],
            vec![E::DeliveryAttempt, E::Delivered],
            school.then_some(ChildUpdate::Delivered {
                at: now,
                deadline_met: dsl.then_some(Some(true)),
            }),
        ),
        Outcome::Sent(SendOutcome::Retry { .. }) => {
            (Some(RetryWait), vec![], vec![E::DeliveryAttempt], None)
        }
        Outcome::Sent(SendOutcome::Failed { .. }) => (
            Some(Failed),
            if school { vec![id("failed")] } else { vec![] },
            vec![E::DeliveryAttempt, E::Failed],
            dsl.then_some(ChildUpdate::Failed),
        ),
        Outcome::Escalate { has_deputy } => {
            if dsl && a.state.is_active() {
                let mut f = vec![];
                if *has_deputy {
                    f.push(id("deputy"));
                }
                f.push(id("escalated"));
                (Some(a.state), f, vec![E::Escalated], None)
            } else {
                (None, vec![], vec![], None)
            }
        }
        Outcome::DeadlineMissed => {
            if a.state == Delivered {
                (None, vec![], vec![], None)
            } else {
                (
                    Some(a.state),
                    vec![],
                    vec![E::DeadlineMissed],
                    Some(ChildUpdate::DeadlineMissed),
                )
            }
        }
        Outcome::Withdraw { .. } => match (school, a.state) {
            (false, _) | (_, Failed | Withdrawn) => (None, vec![], vec![], None),
            (true, Queued | RetryWait) => (Some(Withdrawn), vec![], vec![E::Withdrawn], None),
            (true, Sending) => (Some(Sending), vec![], vec![], None),
            (true, Delivered) => (None, vec![id("withdrawn")], vec![], None),
        },
        // Only a failed message goes back in the queue; only the DSL
        // alert's child goes back to `matched`.
        Outcome::Requeue { .. } => match a.state {
            Failed => (
                Some(Queued),
                vec![],
                vec![E::Requeued],
                dsl.then_some(ChildUpdate::Requeued),
            ),
            _ => (None, vec![], vec![], None),
        },
        // Only a message waiting for a retry is made due now.
        Outcome::Flush { .. } => match a.state {
            RetryWait => (Some(RetryWait), vec![], vec![E::Flushed], None),
            _ => (None, vec![], vec![], None),
        },
    }
}

#[test]
fn every_state_and_outcome_of_every_kind() {
    let now = t("2026-11-23T07:30:00Z");
    let mut cases = 0;
    for kind in KINDS {
        for state in STATES {
            for o in outcomes() {
                let a = alert(kind, state);
                let tr = transition(&a, &o, now);
                assert_eq!(
                    shape(&tr),
                    expected(&a, &o, now),
                    "{kind:?} {state:?} {o:?}"
                );
                for f in &tr.follow_ups {
                    assert_eq!(f.follows.as_deref(), Some(a.id.as_str()));
                    assert_eq!(f.state, AlertState::Queued);
                    assert_eq!(
                        (f.receipt.as_str(), f.child, f.urn.as_str()),
                        ("R1", 0, "100001")
                    );
                }
                for e in &tr.events {
                    assert_eq!(e.refs.alert_id.as_deref(), Some(a.id.as_str()));
                }
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 3 * 6 * 9);
}

#[test]
fn follow_up_kinds_come_from_the_type_and_ids_stay_as_on_disk() {
    let a = alert(AlertKind::Dsl, AlertState::Queued);
    let now = t("2026-11-23T07:30:00Z");
    let tr = transition(&a, &Outcome::Escalate { has_deputy: true }, now);
    let kinds: Vec<_> = tr
        .follow_ups
        .iter()
        .map(|f| (f.id.as_str(), f.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("R1.0.deputy", AlertKind::Deputy),
            ("R1.0.escalated", AlertKind::AdminEscalation)
        ]
    );
    assert!(tr.alert.unwrap().escalated);
    // Escalated once only.
    let mut done = a.clone();
    done.escalated = true;
    assert!(transition(&done, &Outcome::Escalate { has_deputy: true }, now).is_none());
}

#[test]
fn a_send_that_ends_after_a_withdrawal_is_withdrawn_or_followed_by_a_notice() {
    let now = t("2026-11-23T07:30:00Z");
    let mut a = alert(AlertKind::Deputy, AlertState::Sending);
    a.withdraw_pending = true;
    for o in [
        SendOutcome::Retry {
            code: None,
            reply: "timed out".into(),
            next: now,
        },
        SendOutcome::Failed {
            code: Some(550),
            reply: "no".into(),
            why: "refused",
        },
    ] {
        let tr = transition(&a, &Outcome::Sent(o), now);
        let n = tr.alert.as_ref().unwrap();
        assert_eq!(
            (n.state, n.withdraw_pending),
            (AlertState::Withdrawn, false)
        );
        assert!(tr.follow_ups.is_empty());
        assert_eq!(
            tr.events.iter().map(|e| e.kind).collect::<Vec<_>>(),
            [EventKind::DeliveryAttempt, EventKind::Withdrawn]
        );
    }
    let tr = transition(
        &a,
        &Outcome::Sent(SendOutcome::Delivered { code: 250 }),
        now,
    );
    let n = tr.alert.as_ref().unwrap();
    assert_eq!(
        (n.state, n.withdraw_pending),
        (AlertState::Delivered, false)
    );
    assert_eq!(tr.follow_ups.len(), 1);
    assert_eq!(tr.follow_ups[0].kind, AlertKind::Withdrawal);
}

#[test]
fn a_late_delivery_misses_the_deadline_and_the_child_records_it() {
    let late = t("2026-11-23T09:00:00Z");
    let a = alert(AlertKind::Dsl, AlertState::Sending);
    let tr = transition(
        &a,
        &Outcome::Sent(SendOutcome::Delivered { code: 250 }),
        late,
    );
    assert_eq!(tr.alert.as_ref().unwrap().deadline_met, Some(false));
    let mut c = ChildStatus {
        index: 0,
        state: ChildState::Matched,
        school_urn: Some("100001".into()),
        delivered_at: None,
        deadline: a.deadline,
        deadline_met: None,
    };
    let change = tr.into_change(Some(&mut c));
    assert!(change.child_changed);
    assert_eq!(
        (c.state, c.delivered_at, c.deadline_met),
        (ChildState::Delivered, Some(late), Some(false))
    );
    // A withdrawn child stays withdrawn when a message still gets through.
    c.state = ChildState::Withdrawn;
    ChildUpdate::Delivered {
        at: late,
        deadline_met: None,
    }
    .apply(&mut c);
    assert_eq!(c.state, ChildState::Withdrawn);
}

#[test]
fn a_requeued_alert_is_due_now_keeps_its_id_and_audits_both_address_hashes() {
    let now = t("2026-11-23T09:00:00Z");
    let mut a = alert(AlertKind::Dsl, AlertState::Failed);
    a.to_hash = Some("aaaa".into());
    let o = Outcome::Requeue {
        actor: "admin:root".into(),
        to_hash: Some("bbbb".into()),
    };
    let tr = transition(&a, &o, now);
    let n = tr.alert.clone().unwrap();
    assert_eq!((n.id.as_str(), n.state), ("R1.0", AlertState::Queued));
    assert_eq!((n.next_attempt_at, n.requeued_at), (now, Some(now)));
    let ev = &tr.events[0];
    assert_eq!(ev.actor, "admin:root");
    assert_eq!(ev.detail["old_to_hash"], "aaaa");
    assert_eq!(ev.detail["new_to_hash"], "bbbb");
    assert_eq!(ev.detail["address_changed"], true);
}

#[test]
fn an_attempt_to_a_changed_address_is_audited_as_redirected() {
    let now = t("2026-11-23T07:30:00Z");
    let mut a = alert(AlertKind::Dsl, AlertState::Sending);
    a.to_hash = Some("aaaa".into());
    let o = Outcome::Sent(SendOutcome::Delivered { code: 250 });
    let mut tr = transition(&a, &o, now);
    note_recipient(&a, &mut tr, "bbbb");
    assert_eq!(tr.events[0].kind, EventKind::Redirected);
    assert_eq!(tr.alert.as_ref().unwrap().to_hash.as_deref(), Some("bbbb"));
    // The same address again: no redirect.
    let mut tr = transition(&a, &o, now);
    note_recipient(&a, &mut tr, "aaaa");
    assert!(tr.events.iter().all(|e| e.kind != EventKind::Redirected));
    // A first attempt only records the address.
    a.to_hash = None;
    let mut tr = transition(&a, &o, now);
    note_recipient(&a, &mut tr, "bbbb");
    assert!(tr.events.iter().all(|e| e.kind != EventKind::Redirected));
    assert_eq!(tr.alert.unwrap().to_hash.as_deref(), Some("bbbb"));
}
