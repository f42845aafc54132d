//! The morning summary's record (issue 18, item 4): what the summary says
//! (counts and identifiers, never a child's details) and queueing it once
//! per school day as an [`AlertKind::AdminSummary`] outbox message with its
//! `alert_queued` event, so it is sent through the durable outbox like any
//! alert. What goes into it is decided by `crate::deliver::summary`.

use serde::{Deserialize, Serialize};

use super::alert_record::{AlertKind, AlertRecord};
use super::batch::Batch;
use super::{FlushTicket, Store, StoreError};
use crate::audit::{Actor, EventKind, Refs};

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

/// The outbox id of the summary of `day`.
pub fn summary_id(day: jiff::civil::Date) -> String {
    format!("summary.{day}")
}

impl Store {
    /// Queues the summary of `summary.day` unless that day's is already in
    /// the outbox (once per day, across restarts). `None`: nothing queued.
    pub fn queue_summary(
        &self,
        summary: Summary,
        now: jiff::Timestamp,
    ) -> Result<Option<(String, FlushTicket)>, StoreError> {
        let Some(day) = summary.day else {
            return Ok(None);
        };
        let id = summary_id(day);
        let _w = self.lock_writer();
        if self.alert(&id)?.is_some() {
            return Ok(None);
        }
        let mut batch = Batch::new(self, now)?;
        let mut detail = serde_json::Map::new();
        detail.insert("kind".into(), "admin_summary".into());
        detail.insert("needs_a_human".into(), summary.needs_a_human.len().into());
        batch.event(
            EventKind::AlertQueued,
            Actor::SYSTEM.as_str(),
            Refs {
                alert_id: Some(id.clone()),
                ..Refs::default()
            },
            detail,
        );
        let mut notice = AlertRecord::new(id.clone(), AlertKind::AdminSummary, "", 0, "", now);
        notice.summary = Some(summary);
        batch.put_alert(notice);
        Ok(Some((id, batch.commit(self)?)))
    }
}
