//! The outbox's records (DESIGN §7): what one message kim owes someone is
//! (`AlertRecord`: kind, state, attempts, deadline), the audit events an
//! alert change writes, and a decided change (`AlertChange`) as the store
//! commits it. Identifiers, states, times and SMTP codes: no personal data.
//! Data only: `crate::deliver::transition` decides, `super::outbox` stores.

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
    /// The `[review] notify` addresses: children waiting for review
    /// (identifiers only).
    AdminReview,
    /// The admin mailbox: the morning summary (counts and identifiers).
    AdminSummary,
    /// The admin mailbox: a CRL, the server certificate or a police CA
    /// expires soon (identifiers only).
    AdminExpiry,
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
    /// For [`AlertKind::AdminReview`]: the children waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Vec<super::notice_content::ReviewEntry>>,
    /// For [`AlertKind::AdminReview`]: a reminder (`remind_at` or
    /// `deadline`), not the first notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder: Option<super::notice_content::ReviewReminder>,
    /// The keyed hash of the address the last attempt went to
    /// (`Store::address_hash`), so a changed address is noticed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_hash: Option<String>,
    /// When an admin last re-queued it (`kim alerts retry`): the retry
    /// window starts again from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeued_at: Option<jiff::Timestamp>,
    /// For [`AlertKind::AdminSummary`]: what the summary says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<super::notice_content::Summary>,
    /// For [`AlertKind::AdminExpiry`]: what expires when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<super::notice_content::ExpiryItem>,
    /// Caused by a notification in test mode: addressed only to `[mail]
    /// test_recipient`, marked TEST (its follow-ups inherit it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

impl AlertKind {
    /// Whether a message of this kind is about a child, for that child's
    /// school.
    pub fn to_school(self) -> bool {
        matches!(self, Self::Dsl | Self::Deputy)
    }
}

/// A message that follows another (its `follows` field): the kind it has
/// and the suffix its id gets after the followed alert's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUp {
    Deputy,
    Withdrawal,
    AdminEscalation,
    AdminFailure,
}

impl FollowUp {
    pub fn kind(self) -> AlertKind {
        match self {
            Self::Deputy => AlertKind::Deputy,
            Self::Withdrawal => AlertKind::Withdrawal,
            Self::AdminEscalation => AlertKind::AdminEscalation,
            Self::AdminFailure => AlertKind::AdminFailure,
        }
    }

    /// The id suffix (on disk since the first build: kept as it is).
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Deputy => "deputy",
            Self::Withdrawal => "withdrawn",
            Self::AdminEscalation => "escalated",
            Self::AdminFailure => "failed",
        }
    }
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
            review: None,
            reminder: None,
            to_hash: None,
            requeued_at: None,
            summary: None,
            expiry: None,
            test: false,
        }
    }

    /// The message of kind `f` that follows this one, queued at `now`: the
    /// one constructor of follow-up records.
    pub fn follow_up(&self, f: FollowUp, now: jiff::Timestamp) -> Self {
        let mut n = Self::new(
            format!("{}.{}", self.id, f.suffix()),
            f.kind(),
            &self.receipt,
            self.child,
            &self.urn,
            now,
        );
        n.follows = Some(self.id.clone());
        n.test = self.test;
        n
    }

    /// Whether this message is about a child for that child's school.
    pub fn to_school(&self) -> bool {
        self.kind.to_school()
    }

    pub fn refs(&self) -> Refs {
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

/// An audit event that an alert change writes.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub kind: EventKind,
    pub actor: String,
    pub refs: Refs,
    pub detail: serde_json::Map<String, serde_json::Value>,
}

/// A change to one alert, decided outside the store
/// (`crate::deliver::transition`): committed as it is, in one transaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertChange {
    /// The record's new value, if it changes.
    pub alert: Option<AlertRecord>,
    /// Messages to create; one already in the outbox is kept as it is.
    pub follow_ups: Vec<AlertRecord>,
    pub events: Vec<AlertEvent>,
    /// Whether the child's status (handed to the decision) was changed.
    pub child_changed: bool,
}

impl AlertChange {
    pub(crate) fn is_empty(&self) -> bool {
        self.alert.is_none() && self.follow_ups.is_empty() && self.events.is_empty()
    }
}
