//! The expiry notice's record (issue 13, item 3): queueing one
//! [`AlertKind::AdminExpiry`] outbox message to the admin mailbox per item
//! (a CRL, the server certificate, a police CA) per UK calendar day, with
//! its `alert_queued` event. The outbox record, whose id holds the day and
//! the item, is what remembers that the day's notice went out, across
//! restarts. Which items are due is decided by `crate::daemon::expiry`.

use super::alert_record::{AlertKind, AlertRecord};
use super::batch::Batch;
pub use super::notice_content::ExpiryItem;
use super::{FlushTicket, Store, StoreError};

/// The outbox id of the notice about `item` on `day`.
pub fn expiry_id(item: &ExpiryItem, day: jiff::civil::Date) -> String {
    let key = format!("{}\n{}", item.what, item.name);
    let d = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let hex: String = d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("expiry.{day}.{hex}")
}

impl Store {
    /// Queues the notice about `item` unless today's (UK date of `now`) is
    /// already in the outbox. `None`: nothing queued.
    pub fn queue_expiry_notice(
        &self,
        item: ExpiryItem,
        now: jiff::Timestamp,
    ) -> Result<Option<(String, FlushTicket)>, StoreError> {
        let day = now.to_zoned(crate::calendar::school_tz()).date();
        let id = expiry_id(&item, day);
        let _w = self.lock_writer();
        if self.alert(&id)?.is_some() {
            return Ok(None);
        }
        let mut batch = Batch::new(self, now)?;
        batch.notice_queued(&id, "admin_expiry", &[("what", item.what.clone().into())]);
        let mut notice = AlertRecord::new(id.clone(), AlertKind::AdminExpiry, "", 0, "", now);
        notice.expiry = Some(item);
        batch.put_alert(notice);
        Ok(Some((id, batch.commit(self)?)))
    }
}
