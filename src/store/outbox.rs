//! The outbox (DESIGN §7): one record per message kim owes someone — the
//! alert to a school's DSL, its copy to the deputy, a withdrawal notice, an
//! admin notice — with its state machine `queued → sending → delivered`,
//! `sending → retry_wait → sending`, `… → failed`, `→ withdrawn`. Every
//! change is one transaction with its audit events and the child's state in
//! the notification record, so a state is on disk before its side effect.
//! Records hold identifiers, states, times and SMTP codes: no personal data
//! (their types are in `alert_record`).

use super::batch::Batch;
use super::{trees, ChildState, FlushTicket, NotificationRecord, Store, StoreError};
use crate::audit::{Actor, EventKind, Refs};

pub use super::alert_record::*;

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
            Some(v) => self.open_json(trees::OUTBOX, id.as_bytes(), &v).map(Some),
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
            .map(|kv| {
                let (k, v) = kv?;
                self.open_json(trees::OUTBOX, &k, &v)
            })
            .collect()
    }

    /// Every outbox record (for metrics and listings).
    pub fn all_alerts(&self) -> Result<Vec<AlertRecord>, StoreError> {
        self.t
            .outbox
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                self.open_json(trees::OUTBOX, &k, &v)
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

    /// Applies `decide`'s change to alert `id` under the writer lock: the
    /// decision sees the record and the child's status (which it may
    /// change) and the store commits what it returns, with its audit events,
    /// in one transaction. `None` if there is no such alert or nothing
    /// changes.
    pub fn change_alert(
        &self,
        id: &str,
        now: jiff::Timestamp,
        decide: impl FnOnce(&AlertRecord, Option<&mut super::ChildStatus>) -> AlertChange,
    ) -> Result<Option<FlushTicket>, StoreError> {
        let _w = self.lock_writer();
        let Some(a) = self.alert(id)? else {
            return Ok(None);
        };
        let mut rec = self.record(&a.receipt)?;
        let child = rec
            .as_mut()
            .and_then(|r| r.children.get_mut(a.child as usize));
        let change = decide(&a, child);
        if change.is_empty() {
            return Ok(None);
        }
        let mut batch = Batch::new(self, now)?;
        let child_changed = change.child_changed;
        self.stage_change(&mut batch, change)?;
        if let (true, Some(r)) = (child_changed, rec) {
            batch.put_record(r);
        }
        Ok(Some(batch.commit(self)?))
    }

    /// Puts a decided change into `batch`.
    fn stage_change(&self, batch: &mut Batch, change: AlertChange) -> Result<(), StoreError> {
        for ev in change.events {
            batch.event(ev.kind, &ev.actor, ev.refs, ev.detail);
        }
        for f in change.follow_ups {
            if self.alert(&f.id)?.is_none() {
                batch.put_alert(f);
            }
        }
        if let Some(a) = change.alert {
            batch.put_alert(a);
        }
        Ok(())
    }

    /// The police withdraw a notification: alerts not yet sent are
    /// cancelled, schools already told get a withdrawal notice, children
    /// waiting for matching or review are withdrawn. `None` if `force` did
    /// not send `receipt`. Withdrawing twice changes nothing the second time.
    ///
    /// What happens to each message is `decide`'s (the outbox state
    /// machine, `crate::deliver::transition`); the store commits it.
    pub fn withdraw_with(
        &self,
        force: &str,
        receipt: &str,
        reason: &str,
        now: jiff::Timestamp,
        mut decide: impl FnMut(&AlertRecord) -> AlertChange,
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
            self.seal_personal(trees::WITHDRAWALS, receipt.as_bytes(), reason.as_bytes())?;
        self.t.withdrawals.insert(receipt.as_bytes(), sealed)?;
        let mut batch = Batch::new(self, now)?;
        batch.work_drop = Some(receipt.to_owned());
        let mut notices = 0u32;
        let mut cancelled = 0u32;
        for a in self.alerts_for(receipt)? {
            let change = decide(&a);
            if change
                .alert
                .as_ref()
                .is_some_and(|n| n.state == AlertState::Withdrawn && a.state != n.state)
            {
                cancelled += 1;
            }
            notices += change.follow_ups.len() as u32;
            self.stage_change(&mut batch, change)?;
        }
        for c in rec.children.iter_mut() {
            if c.state == ChildState::NeedsReview {
                batch.del_review(super::review::review_key(receipt, c.index));
            }
            c.state = ChildState::Withdrawn;
        }
        batch.event(
            EventKind::Withdrawn,
            &Actor::force(force),
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
