//! The morning summary's record (issue 18, item 4): what the summary says
//! (counts and identifiers, never a child's details) and queueing it once
//! per school day as an [`AlertKind::AdminSummary`] outbox message with its
//! `alert_queued` event, so it is sent through the durable outbox like any
//! alert. What goes into it is decided by `crate::deliver::summary`.

use super::alert_record::{AlertKind, AlertRecord};
use super::batch::Batch;
pub use super::notice_content::{Summary, SummaryItem};
use super::{FlushTicket, Store, StoreError};

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
        batch.notice_queued(
            &id,
            "admin_summary",
            &[("needs_a_human", summary.needs_a_human.len().into())],
        );
        let mut notice = AlertRecord::new(id.clone(), AlertKind::AdminSummary, "", 0, "", now);
        notice.summary = Some(summary);
        batch.put_alert(notice);
        Ok(Some((id, batch.commit(self)?)))
    }
}
