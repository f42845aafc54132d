//! The outbox state machine (DESIGN §7) as a pure function: given an alert
//! record and what just happened to it (a send's outcome, escalation, a
//! missed deadline, the police withdrawing), [`transition`] decides the
//! record's next state, the follow-up messages to create (deputy copy,
//! admin notice, withdrawal notice), the audit events and the change to the
//! child's state. No store, no clock, no I/O: the store commits what it
//! returns in one transaction ([`crate::store::outbox::AlertChange`]).

use jiff::Timestamp;

use crate::audit::{Actor, EventKind};
use crate::store::outbox::{AlertChange, AlertEvent, AlertKind, AlertRecord, AlertState, FollowUp};
use crate::store::{ChildState, ChildStatus};

/// The outcome of one send, as the worker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Delivered {
        code: u16,
    },
    /// Try again at `next`.
    Retry {
        code: Option<u16>,
        reply: String,
        next: Timestamp,
    },
    /// Permanent refusal, or the retry window ran out.
    Failed {
        code: Option<u16>,
        reply: String,
        why: &'static str,
    },
}

/// What happened to an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A send ended (the record is `sending`).
    Sent(SendOutcome),
    /// The alert is late past `escalate_after`.
    Escalate { has_deputy: bool },
    /// Its school-day deadline passed undelivered.
    DeadlineMissed,
    /// The police force withdrew the notification.
    Withdraw { force: String },
    /// An admin re-queues a failed alert (`kim alerts retry`); `to_hash` is
    /// the hash of the address the current directory gives.
    Requeue {
        actor: String,
        to_hash: Option<String>,
    },
    /// An admin has a `retry_wait` alert sent now (`kim alerts flush`).
    Flush { actor: String },
}

/// How the child's state in the notification record changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildUpdate {
    /// A message reached the school; `deadline_met` only for the DSL alert.
    Delivered {
        at: Timestamp,
        deadline_met: Option<Option<bool>>,
    },
    /// The DSL alert failed.
    Failed,
    /// The deadline passed undelivered.
    DeadlineMissed,
    /// A failed alert was re-queued.
    Requeued,
}

impl ChildUpdate {
    /// Applies the update to the child's status.
    pub fn apply(self, c: &mut ChildStatus) {
        match self {
            Self::Delivered { at, deadline_met } => {
                if c.delivered_at.is_none() {
                    c.delivered_at = Some(at);
                }
                if let Some(met) = deadline_met {
                    c.deadline_met = met;
                }
                if c.state != ChildState::Withdrawn {
                    c.state = ChildState::Delivered;
                }
            }
            Self::Failed => {
                if c.state == ChildState::Matched {
                    c.state = ChildState::Failed;
                }
            }
            Self::DeadlineMissed => c.deadline_met = Some(false),
            Self::Requeued => {
                if c.state == ChildState::Failed {
                    c.state = ChildState::Matched;
                }
            }
        }
    }
}

/// What [`transition`] decided: nothing, or a change to commit.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The record's new value (`None`: the record stays as it is).
    pub alert: Option<AlertRecord>,
    /// Messages to create (each once: one already in the outbox is kept).
    pub follow_ups: Vec<AlertRecord>,
    pub events: Vec<AlertEvent>,
    pub child: Option<ChildUpdate>,
}

impl Transition {
    fn none() -> Self {
        Self {
            alert: None,
            follow_ups: Vec::new(),
            events: Vec::new(),
            child: None,
        }
    }

    /// Whether nothing changes.
    pub fn is_none(&self) -> bool {
        self.alert.is_none() && self.follow_ups.is_empty() && self.events.is_empty()
    }

    /// The change for the store to commit, with the child's update applied
    /// to `child` (the child's status in its notification record, if any).
    pub fn into_change(self, child: Option<&mut ChildStatus>) -> AlertChange {
        let child_changed = match (self.child, child) {
            (Some(u), Some(c)) => {
                u.apply(c);
                true
            }
            _ => false,
        };
        AlertChange {
            alert: self.alert,
            follow_ups: self.follow_ups,
            events: self.events,
            child_changed,
        }
    }
}

fn detail(pairs: &[(&str, serde_json::Value)]) -> serde_json::Map<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn event(
    a: &AlertRecord,
    kind: EventKind,
    actor: &str,
    mut d: serde_json::Map<String, serde_json::Value>,
) -> AlertEvent {
    if a.test {
        d.insert("test".into(), true.into());
    }
    AlertEvent {
        kind,
        actor: actor.to_owned(),
        refs: a.refs(),
        detail: d,
    }
}

/// The next state of `a` after `outcome` at `now`.
pub fn transition(a: &AlertRecord, outcome: &Outcome, now: Timestamp) -> Transition {
    match outcome {
        Outcome::Sent(s) => sent(a, s, now),
        Outcome::Escalate { has_deputy } => escalate(a, *has_deputy, now),
        Outcome::DeadlineMissed => deadline_missed(a),
        Outcome::Withdraw { force } => withdraw(a, force, now),
        Outcome::Requeue { actor, to_hash } => requeue(a, actor, to_hash.as_deref(), now),
        Outcome::Flush { actor } => flush(a, actor, now),
    }
}

/// A failed message goes back to `queued`, due now, its retry window
/// starting again; same id, so the same Message-ID. Audited `requeued` with
/// the old and new address hashes (never the addresses).
fn requeue(a: &AlertRecord, actor: &str, to_hash: Option<&str>, now: Timestamp) -> Transition {
    let mut t = Transition::none();
    if a.state != AlertState::Failed {
        return t;
    }
    let mut n = a.clone();
    n.state = AlertState::Queued;
    n.next_attempt_at = now;
    n.requeued_at = Some(now);
    let hash = |h: Option<&str>| h.map(serde_json::Value::from).unwrap_or_default();
    t.events.push(event(
        a,
        EventKind::Requeued,
        actor,
        detail(&[
            ("old_to_hash", hash(a.to_hash.as_deref())),
            ("new_to_hash", hash(to_hash)),
            (
                "address_changed",
                (a.to_hash.is_some() && a.to_hash.as_deref() != to_hash).into(),
            ),
        ]),
    ));
    if a.kind == AlertKind::Dsl {
        t.child = Some(ChildUpdate::Requeued);
    }
    t.alert = Some(n);
    t
}

/// A message waiting for its next retry is made due now (audited).
fn flush(a: &AlertRecord, actor: &str, now: Timestamp) -> Transition {
    let mut t = Transition::none();
    if a.state != AlertState::RetryWait {
        return t;
    }
    let mut n = a.clone();
    n.next_attempt_at = now;
    t.events.push(event(
        a,
        EventKind::Flushed,
        actor,
        detail(&[("was_due", a.next_attempt_at.to_string().into())]),
    ));
    t.alert = Some(n);
    t
}

/// Records the address hash `to_hash` an attempt of `a` went to: when it
/// differs from the last attempt's, the directory changed meanwhile and the
/// message was redirected (audited `redirected`, hashes only).
pub fn note_recipient(a: &AlertRecord, t: &mut Transition, to_hash: &str) {
    let Some(n) = t.alert.as_mut() else {
        return;
    };
    if let Some(old) = a.to_hash.as_deref().filter(|o| *o != to_hash) {
        t.events.insert(
            0,
            event(
                a,
                EventKind::Redirected,
                Actor::SYSTEM.as_str(),
                detail(&[
                    ("old_to_hash", old.into()),
                    ("new_to_hash", to_hash.into()),
                    ("attempt", a.attempts.into()),
                ]),
            ),
        );
    }
    n.to_hash = Some(to_hash.to_owned());
}

fn sent(a: &AlertRecord, outcome: &SendOutcome, now: Timestamp) -> Transition {
    let mut t = Transition::none();
    let mut n = a.clone();
    let attempt = |code: Option<u16>, result: &str| {
        detail(&[
            ("attempt", a.attempts.into()),
            (
                "code",
                code.map(serde_json::Value::from)
                    .unwrap_or(serde_json::Value::Null),
            ),
            ("result", result.into()),
        ])
    };
    match outcome {
        SendOutcome::Delivered { code } => {
            t.events.push(event(
                a,
                EventKind::DeliveryAttempt,
                Actor::SYSTEM.as_str(),
                attempt(Some(*code), "accepted"),
            ));
            n.state = AlertState::Delivered;
            n.delivered_at = Some(now);
            n.last_code = Some(*code);
            n.last_reply = None;
            let met = a.deadline.map(|d| now <= d);
            let dsl = a.kind == AlertKind::Dsl;
            if dsl {
                n.deadline_met = met.or(a.deadline_met);
            }
            let mut d = detail(&[("kind", serde_json::to_value(a.kind).unwrap_or_default())]);
            if let (true, Some(m)) = (dsl, met) {
                d.insert("deadline_met".into(), m.into());
            }
            t.events
                .push(event(a, EventKind::Delivered, Actor::SYSTEM.as_str(), d));
            if a.kind.to_school() {
                t.child = Some(ChildUpdate::Delivered {
                    at: now,
                    deadline_met: dsl.then_some(met),
                });
                if a.withdraw_pending {
                    n.withdraw_pending = false;
                    t.follow_ups.push(a.follow_up(FollowUp::Withdrawal, now));
                }
            }
        }
        SendOutcome::Retry { code, reply, next } => {
            let mut d = attempt(*code, "retry");
            d.insert("reply".into(), reply.clone().into());
            t.events.push(event(
                a,
                EventKind::DeliveryAttempt,
                Actor::SYSTEM.as_str(),
                d,
            ));
            n.last_code = *code;
            n.last_reply = Some(reply.clone());
            if !withdrawn_while_sending(&mut n, &mut t) {
                n.state = AlertState::RetryWait;
                n.next_attempt_at = *next;
            }
        }
        SendOutcome::Failed { code, reply, why } => {
            let mut d = attempt(*code, "refused");
            d.insert("reply".into(), reply.clone().into());
            t.events.push(event(
                a,
                EventKind::DeliveryAttempt,
                Actor::SYSTEM.as_str(),
                d,
            ));
            n.last_code = *code;
            n.last_reply = Some(reply.clone());
            if !withdrawn_while_sending(&mut n, &mut t) {
                n.state = AlertState::Failed;
                t.events.push(event(
                    a,
                    EventKind::Failed,
                    Actor::SYSTEM.as_str(),
                    detail(&[("why", (*why).into()), ("attempts", a.attempts.into())]),
                ));
                if a.kind.to_school() {
                    t.follow_ups.push(a.follow_up(FollowUp::AdminFailure, now));
                    if a.kind == AlertKind::Dsl {
                        t.child = Some(ChildUpdate::Failed);
                    }
                }
            }
        }
    }
    t.alert = Some(n);
    t
}

/// A send that did not deliver, for an alert the police withdrew meanwhile:
/// it ends `withdrawn` (audited) instead of retrying or failing.
fn withdrawn_while_sending(n: &mut AlertRecord, t: &mut Transition) -> bool {
    if !n.withdraw_pending {
        return false;
    }
    n.withdraw_pending = false;
    n.state = AlertState::Withdrawn;
    t.events.push(event(
        n,
        EventKind::Withdrawn,
        Actor::SYSTEM.as_str(),
        detail(&[("was", "sending".into())]),
    ));
    true
}

/// Late past `escalate_after`: copy the DSL alert to the deputy (when the
/// school has one) and tell the admin mailbox. Once per alert.
fn escalate(a: &AlertRecord, has_deputy: bool, now: Timestamp) -> Transition {
    let mut t = Transition::none();
    if a.escalated || !a.state.is_active() || a.kind != AlertKind::Dsl {
        return t;
    }
    let mut n = a.clone();
    n.escalated = true;
    t.events.push(event(
        a,
        EventKind::Escalated,
        Actor::SYSTEM.as_str(),
        detail(&[
            ("deputy", has_deputy.into()),
            ("state", a.state.as_str().into()),
        ]),
    ));
    if has_deputy {
        t.follow_ups.push(a.follow_up(FollowUp::Deputy, now));
    }
    t.follow_ups
        .push(a.follow_up(FollowUp::AdminEscalation, now));
    t.alert = Some(n);
    t
}

/// The deadline passed with the alert undelivered: recorded once.
fn deadline_missed(a: &AlertRecord) -> Transition {
    let mut t = Transition::none();
    if a.deadline_met.is_some() || a.state == AlertState::Delivered {
        return t;
    }
    let mut n = a.clone();
    n.deadline_met = Some(false);
    t.events.push(event(
        a,
        EventKind::DeadlineMissed,
        Actor::SYSTEM.as_str(),
        detail(&[
            (
                "deadline",
                a.deadline.map(|d| d.to_string()).unwrap_or_default().into(),
            ),
            ("state", a.state.as_str().into()),
        ]),
    ));
    t.child = Some(ChildUpdate::DeadlineMissed);
    t.alert = Some(n);
    t
}

/// The police withdrew the notification: a message to the school not yet
/// sent is cancelled, one being sent is withdrawn once its outcome is known,
/// one delivered gets a withdrawal notice. Other messages are left alone.
fn withdraw(a: &AlertRecord, force: &str, now: Timestamp) -> Transition {
    let mut t = Transition::none();
    if !a.kind.to_school() {
        return t;
    }
    match a.state {
        AlertState::Queued | AlertState::RetryWait => {
            let mut n = a.clone();
            n.state = AlertState::Withdrawn;
            t.events.push(event(
                a,
                EventKind::Withdrawn,
                &Actor::force(force),
                detail(&[("was", "undelivered".into())]),
            ));
            t.alert = Some(n);
        }
        AlertState::Sending => {
            let mut n = a.clone();
            n.withdraw_pending = true;
            t.alert = Some(n);
        }
        AlertState::Delivered => t.follow_ups.push(a.follow_up(FollowUp::Withdrawal, now)),
        AlertState::Failed | AlertState::Withdrawn => {}
    }
    t
}

#[cfg(test)]
#[path = "transition_tests.rs"]
mod tests;
