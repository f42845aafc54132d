//! The outbox (DESIGN §7): one record per message kim owes someone — the
//! alert to a school's DSL, its copy to the deputy, a withdrawal notice, an
//! admin notice — with its state machine `queued → sending → delivered`,
//! `sending → retry_wait → sending`, `… → failed`, `→ withdrawn`. Every
//! change is one transaction with its audit events and the child's state in
//! the notification record, so a state is on disk before its side effect.
//! Records hold identifiers, states, times and SMTP codes: no personal data.

use super::batch::Batch;
use super::{trees, ChildState, FlushTicket, NotificationRecord, Store, StoreError};
use crate::audit::{EventKind, Refs};
use serde::{Deserialize, Serialize};

/// Whom a message is for and what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The alert to the school's DSL.
    Dsl,
    /// The same alert to the deputy DSL, after escalation.
    Deputy,
    /// A short notice that the police withdrew a delivered alert.
    Withdrawal,
    /// The admin mailbox: an alert is late and was escalated.
    AdminEscalation,
    /// The admin mailbox: an alert could not be delivered.
    AdminFailure,
    /// The admin mailbox: the accept journal was damaged; which forces must
    /// re-send which references.
    AdminJournalDamaged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Queued,
    Sending,
    RetryWait,
    Delivered,
    Failed,
    Withdrawn,
}

impl AlertState {
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Sending | Self::RetryWait)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::RetryWait => "retry_wait",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Withdrawn => "withdrawn",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// `RECEIPT.INDEX` for the DSL alert; derived ids for the others.
    pub id: String,
    pub kind: AlertKind,
    pub receipt: String,
    pub child: u32,
    pub urn: String,
    pub state: AlertState,
    pub attempts: u32,
    pub queued_at: jiff::Timestamp,
    pub next_attempt_at: jiff::Timestamp,
    /// The start of the next school day after the notification arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_met: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<jiff::Timestamp>,
    #[serde(default)]
    pub escalated: bool,
    /// The alert this one follows (a deputy copy, a withdrawal or an admin
    /// notice refers to the DSL alert).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows: Option<String>,
    /// The police withdrew the notification while this was being sent: once
    /// the send's outcome is known, a delivered alert gets a withdrawal notice.
    #[serde(default)]
    pub withdraw_pending: bool,
    /// The last SMTP reply code (or none if the connection failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_code: Option<u16>,
    /// The last reply or error, for the admin notice (no child's details).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reply: Option<String>,
    /// For [`AlertKind::AdminJournalDamaged`]: what was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<super::JournalLoss>,
}

impl AlertRecord {
    pub(crate) fn new(
        id: String,
        kind: AlertKind,
        receipt: &str,
        child: u32,
        urn: &str,
        now: jiff::Timestamp,
    ) -> Self {
        Self {
            id,
            kind,
            receipt: receipt.to_owned(),
            child,
            urn: urn.to_owned(),
            state: AlertState::Queued,
            attempts: 0,
            queued_at: now,
            next_attempt_at: now,
            deadline: None,
            deadline_met: None,
            delivered_at: None,
            escalated: false,
            follows: None,
            withdraw_pending: false,
            last_code: None,
            last_reply: None,
            journal: None,
        }
    }

    /// Whether this message is about a child for that child's school.
    pub fn to_school(&self) -> bool {
        matches!(self.kind, AlertKind::Dsl | AlertKind::Deputy)
    }

    pub(crate) fn refs(&self) -> Refs {
        Refs {
            receipt: Some(self.receipt.clone()),
            child: Some(self.child),
            school_urn: Some(self.urn.clone()),
            alert_id: Some(self.id.clone()),
        }
    }
}

/// The id of the DSL alert for child `index` of `receipt`.
pub fn alert_id(receipt: &str, index: u32) -> String {
    format!("{receipt}.{index}")
}

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
        next: jiff::Timestamp,
    },
    /// Permanent refusal, or the retry window ran out.
    Failed {
        code: Option<u16>,
        reply: String,
        why: &'static str,
    },
}

/// A send that did not deliver, for an alert the police withdrew meanwhile:
/// it ends `withdrawn` (audited) instead of retrying or failing.
fn withdrawn_while_sending(a: &mut AlertRecord, batch: &mut Batch) -> bool {
    if !a.withdraw_pending {
        return false;
    }
    a.withdraw_pending = false;
    a.state = AlertState::Withdrawn;
    batch.event(
        EventKind::Withdrawn,
        "system",
        a.refs(),
        detail(&[("was", "sending".into())]),
    );
    true
}

fn detail(pairs: &[(&str, serde_json::Value)]) -> serde_json::Map<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

impl Store {
    pub fn alert(&self, id: &str) -> Result<Option<AlertRecord>, StoreError> {
        match self.t.outbox.get(id.as_bytes())? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("outbox record: {e}"))),
        }
    }

    /// Every alert still to be sent (queued, sending, retry_wait).
    pub fn active_alerts(&self) -> Result<Vec<AlertRecord>, StoreError> {
        let mut out = Vec::new();
        for k in self.t.outbox_active.iter().keys() {
            let k = k?;
            let id = String::from_utf8_lossy(&k);
            if let Some(a) = self.alert(&id)? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Every message about `receipt`, in id order.
    pub fn alerts_for(&self, receipt: &str) -> Result<Vec<AlertRecord>, StoreError> {
        let mut prefix = receipt.as_bytes().to_vec();
        prefix.push(b'.');
        self.t
            .outbox
            .scan_prefix(prefix)
            .values()
            .map(|v| {
                serde_json::from_slice(&v?)
                    .map_err(|e| StoreError::Corrupt(format!("outbox record: {e}")))
            })
            .collect()
    }

    /// Every outbox record (for metrics and listings).
    pub fn all_alerts(&self) -> Result<Vec<AlertRecord>, StoreError> {
        self.t
            .outbox
            .iter()
            .values()
            .map(|v| {
                serde_json::from_slice(&v?)
                    .map_err(|e| StoreError::Corrupt(format!("outbox record: {e}")))
            })
            .collect()
    }

    /// Marks `ids` as `sending` (one more attempt each) before the worker
    /// sends them. Ids no longer active are skipped and not returned.
    pub fn mark_sending(
        &self,
        ids: &[String],
        now: jiff::Timestamp,
    ) -> Result<(Vec<AlertRecord>, Option<FlushTicket>), StoreError> {
        let _w = self.lock_writer();
        let mut batch = Batch::new(self, now)?;
        let mut out = Vec::new();
        for id in ids {
            let Some(mut a) = self.alert(id)? else {
                continue;
            };
            if !a.state.is_active() {
                continue;
            }
            a.state = AlertState::Sending;
            a.attempts += 1;
            out.push(a.clone());
            batch.put_alert(a);
        }
        if out.is_empty() {
            return Ok((out, None));
        }
        batch.wake_delivery = false;
        Ok((out, Some(batch.commit(self)?)))
    }

    /// Records the outcome of one attempt: `delivery_attempt` with the SMTP
    /// code, then `delivered` or `failed` (with the admin notice queued), and
    /// the child's state.
    pub fn record_send(
        &self,
        id: &str,
        outcome: &SendOutcome,
        now: jiff::Timestamp,
    ) -> Result<FlushTicket, StoreError> {
        let _w = self.lock_writer();
        let mut a = self
            .alert(id)?
            .ok_or_else(|| StoreError::Corrupt(format!("no outbox record {id}")))?;
        let mut batch = Batch::new(self, now)?;
        let mut rec = self.record(&a.receipt)?;
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
                batch.event(
                    EventKind::DeliveryAttempt,
                    "system",
                    a.refs(),
                    attempt(Some(*code), "accepted"),
                );
                a.state = AlertState::Delivered;
                a.delivered_at = Some(now);
                a.last_code = Some(*code);
                a.last_reply = None;
                let met = a.deadline.map(|d| now <= d);
                if a.kind == AlertKind::Dsl {
                    a.deadline_met = met.or(a.deadline_met);
                }
                let mut d = detail(&[("kind", serde_json::to_value(a.kind).unwrap_or_default())]);
                if let (AlertKind::Dsl, Some(m)) = (a.kind, met) {
                    d.insert("deadline_met".into(), m.into());
                }
                batch.event(EventKind::Delivered, "system", a.refs(), d);
                if a.to_school() {
                    if let Some(r) = rec.as_mut() {
                        if let Some(c) = r.children.get_mut(a.child as usize) {
                            if c.delivered_at.is_none() {
                                c.delivered_at = Some(now);
                            }
                            if a.kind == AlertKind::Dsl {
                                c.deadline_met = met;
                            }
                            if c.state != ChildState::Withdrawn {
                                c.state = ChildState::Delivered;
                            }
                        }
                    }
                    if a.withdraw_pending {
                        a.withdraw_pending = false;
                        let notice = self.withdrawal_notice(&a, now);
                        batch.put_alert(notice);
                    }
                }
            }
            SendOutcome::Retry { code, reply, next } => {
                batch.event(
                    EventKind::DeliveryAttempt,
                    "system",
                    a.refs(),
                    attempt(*code, "retry"),
                );
                a.last_code = *code;
                a.last_reply = Some(reply.clone());
                if !withdrawn_while_sending(&mut a, &mut batch) {
                    a.state = AlertState::RetryWait;
                    a.next_attempt_at = *next;
                }
            }
            SendOutcome::Failed { code, reply, why } => {
                batch.event(
                    EventKind::DeliveryAttempt,
                    "system",
                    a.refs(),
                    attempt(*code, "refused"),
                );
                a.last_code = *code;
                a.last_reply = Some(reply.clone());
                if !withdrawn_while_sending(&mut a, &mut batch) {
                    a.state = AlertState::Failed;
                    batch.event(
                        EventKind::Failed,
                        "system",
                        a.refs(),
                        detail(&[("why", (*why).into()), ("attempts", a.attempts.into())]),
                    );
                    if a.to_school() {
                        let mut notice = AlertRecord::new(
                            format!("{}.failed", a.id),
                            AlertKind::AdminFailure,
                            &a.receipt,
                            a.child,
                            &a.urn,
                            now,
                        );
                        notice.follows = Some(a.id.clone());
                        batch.put_alert(notice);
                        if a.kind == AlertKind::Dsl {
                            if let Some(r) = rec.as_mut() {
                                if let Some(c) = r.children.get_mut(a.child as usize) {
                                    if c.state == ChildState::Matched {
                                        c.state = ChildState::Failed;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        batch.put_alert(a);
        if let Some(r) = rec {
            batch.put_record(r);
        }
        batch.commit(self)
    }

    fn withdrawal_notice(&self, a: &AlertRecord, now: jiff::Timestamp) -> AlertRecord {
        let mut n = AlertRecord::new(
            format!("{}.withdrawn", a.id),
            AlertKind::Withdrawal,
            &a.receipt,
            a.child,
            &a.urn,
            now,
        );
        n.follows = Some(a.id.clone());
        n
    }

    /// An alert late past `escalate_after`: copy it to the deputy DSL (when
    /// the school has one) and tell the admin mailbox.
    pub fn escalate(
        &self,
        id: &str,
        has_deputy: bool,
        now: jiff::Timestamp,
    ) -> Result<Option<FlushTicket>, StoreError> {
        let _w = self.lock_writer();
        let Some(mut a) = self.alert(id)? else {
            return Ok(None);
        };
        if a.escalated || !a.state.is_active() || a.kind != AlertKind::Dsl {
            return Ok(None);
        }
        let mut batch = Batch::new(self, now)?;
        a.escalated = true;
        batch.event(
            EventKind::Escalated,
            "system",
            a.refs(),
            detail(&[
                ("deputy", has_deputy.into()),
                ("state", a.state.as_str().into()),
            ]),
        );
        if has_deputy {
            let mut copy = AlertRecord::new(
                format!("{}.deputy", a.id),
                AlertKind::Deputy,
                &a.receipt,
                a.child,
                &a.urn,
                now,
            );
            copy.follows = Some(a.id.clone());
            batch.put_alert(copy);
        }
        let mut notice = AlertRecord::new(
            format!("{}.escalated", a.id),
            AlertKind::AdminEscalation,
            &a.receipt,
            a.child,
            &a.urn,
            now,
        );
        notice.follows = Some(a.id.clone());
        batch.put_alert(notice);
        batch.put_alert(a);
        Ok(Some(batch.commit(self)?))
    }

    /// The deadline passed with the alert undelivered: recorded once.
    pub fn deadline_missed(
        &self,
        id: &str,
        now: jiff::Timestamp,
    ) -> Result<Option<FlushTicket>, StoreError> {
        let _w = self.lock_writer();
        let Some(mut a) = self.alert(id)? else {
            return Ok(None);
        };
        if a.deadline_met.is_some() || a.state == AlertState::Delivered {
            return Ok(None);
        }
        let mut batch = Batch::new(self, now)?;
        a.deadline_met = Some(false);
        batch.event(
            EventKind::DeadlineMissed,
            "system",
            a.refs(),
            detail(&[
                (
                    "deadline",
                    a.deadline.map(|d| d.to_string()).unwrap_or_default().into(),
                ),
                ("state", a.state.as_str().into()),
            ]),
        );
        if let Some(mut r) = self.record(&a.receipt)? {
            if let Some(c) = r.children.get_mut(a.child as usize) {
                c.deadline_met = Some(false);
            }
            batch.put_record(r);
        }
        batch.put_alert(a);
        Ok(Some(batch.commit(self)?))
    }

    /// The police withdraw a notification: alerts not yet sent are
    /// cancelled, schools already told get a withdrawal notice, children
    /// waiting for matching or review are withdrawn. `None` if `force` did
    /// not send `receipt`. Withdrawing twice changes nothing the second time.
    pub fn withdraw(
        &self,
        force: &str,
        receipt: &str,
        reason: &str,
        now: jiff::Timestamp,
    ) -> Result<Option<(NotificationRecord, Option<FlushTicket>)>, StoreError> {
        let _w = self.lock_writer();
        let Some(mut rec) = self.record(receipt)?.filter(|r| r.force == force) else {
            return Ok(None);
        };
        if rec
            .children
            .iter()
            .all(|c| c.state == ChildState::Withdrawn)
        {
            return Ok(Some((rec, None)));
        }
        let sealed =
            self.keys
                .seal_key()
                .seal(trees::WITHDRAWALS, receipt.as_bytes(), reason.as_bytes())?;
        self.t.withdrawals.insert(receipt.as_bytes(), sealed)?;
        let mut batch = Batch::new(self, now)?;
        batch.work_drop = Some(receipt.to_owned());
        let mut notices = 0u32;
        let mut cancelled = 0u32;
        for mut a in self.alerts_for(receipt)? {
            if !a.to_school() {
                continue;
            }
            match a.state {
                AlertState::Queued | AlertState::RetryWait => {
                    a.state = AlertState::Withdrawn;
                    cancelled += 1;
                    batch.event(
                        EventKind::Withdrawn,
                        &format!("force:{force}"),
                        a.refs(),
                        detail(&[("was", "undelivered".into())]),
                    );
                    batch.put_alert(a);
                }
                AlertState::Sending => {
                    a.withdraw_pending = true;
                    batch.put_alert(a);
                }
                AlertState::Delivered => {
                    notices += 1;
                    let n = self.withdrawal_notice(&a, now);
                    if self.alert(&n.id)?.is_none() {
                        batch.put_alert(n);
                    }
                }
                AlertState::Failed | AlertState::Withdrawn => {}
            }
        }
        for c in rec.children.iter_mut() {
            if c.state == ChildState::NeedsReview {
                batch.del_review(super::review::review_key(receipt, c.index));
            }
            c.state = ChildState::Withdrawn;
        }
        batch.event(
            EventKind::Withdrawn,
            &format!("force:{force}"),
            Refs {
                receipt: Some(receipt.to_owned()),
                ..Refs::default()
            },
            detail(&[("cancelled", cancelled.into()), ("notices", notices.into())]),
        );
        batch.put_record(rec.clone());
        let ticket = batch.commit(self)?;
        Ok(Some((rec, Some(ticket))))
    }
}
