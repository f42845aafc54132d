//! What kim's notices to its admins carry, in the outbox record: the
//! children a review notice lists, which reminder a message is, and the
//! morning summary's figures — identifiers and counts only. Plain data, so
//! the alert record can hold it without knowing who makes it.

use serde::{Deserialize, Serialize};

/// One waiting child as a review notice lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewEntry {
    pub receipt: String,
    pub index: u32,
    pub reason: String,
    pub force: String,
    pub police_reference: String,
    /// The deadline an alert would have had (next school day, 08:00 UK).
    pub deadline: jiff::Timestamp,
}

/// Which of a waiting child's two reminders a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewReminder {
    /// At `[review] remind_at` on the deadline day.
    RemindAt,
    /// At the deadline: the child is now late.
    Deadline,
}

impl ReviewReminder {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RemindAt => "remind_at",
            Self::Deadline => "deadline",
        }
    }
}

/// One thing that needs a human now, with the command to act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryItem {
    /// `failed`, `late` or `review`.
    pub what: String,
    /// The alert id, or `RECEIPT child N` for a review item.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school_urn: Option<String>,
    /// A reason code or the last SMTP code; no personal data.
    pub detail: String,
    pub command: String,
}

/// The morning summary of one school day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub day: Option<jiff::civil::Date>,
    /// The window counted: the previous school day's summary time to now.
    pub since: Option<jiff::Timestamp>,
    pub until: Option<jiff::Timestamp>,
    pub notifications_received: u64,
    pub children_matched: u64,
    pub children_to_review: u64,
    pub children_dismissed: u64,
    pub delivered_on_time: u64,
    pub delivered_late: u64,
    pub failed: u64,
    /// DSL alerts not yet delivered, now.
    pub waiting: u64,
    /// Children in the review queue, now.
    pub in_review: u64,
    pub needs_a_human: Vec<SummaryItem>,
}

/// Something kim needs that expires soon, as the expiry notice names it:
/// what it is, its file name, URL or certificate subject, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiryItem {
    /// `crl`, `server_certificate` or `client_ca`.
    pub what: String,
    /// The CRL's file or URL, or the certificate's subject.
    pub name: String,
    /// nextUpdate or notAfter.
    pub expires_at: jiff::Timestamp,
}
