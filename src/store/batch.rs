//! A batch of store changes that commit in one sled transaction with their
//! audit events: notification records, outbox alerts (and the active set),
//! review items, and the matching work item a batch completes. The matching
//! stage, the review queue, the delivery worker and withdrawals all write
//! through it, so every state change lands with its audit event.

use sled::Transactional;

use super::alert_record::{alert_id, AlertKind, AlertRecord};
use super::{abort, append_in_tx, trees, FlushTicket, NotificationRecord, Store, StoreError};
use crate::audit::{Actor, AuditEvent, EventKind, Head, Refs};

/// Changes that commit together: records, alerts, review items, audit events.
pub(crate) struct Batch {
    head: Head,
    now: jiff::Timestamp,
    events: Vec<AuditEvent>,
    alerts: Vec<AlertRecord>,
    records: Vec<NotificationRecord>,
    review_put: Vec<(Vec<u8>, Vec<u8>)>,
    review_del: Vec<Vec<u8>>,
    /// The matching work item this batch completes (must still exist).
    work_done: Option<String>,
    /// A matching work item to drop if present (a withdrawal).
    pub(crate) work_drop: Option<String>,
    pub(crate) wake_delivery: bool,
}

impl Batch {
    pub(crate) fn new(store: &Store, now: jiff::Timestamp) -> Result<Self, StoreError> {
        Ok(Self {
            head: store.audit_head()?,
            now,
            events: Vec::new(),
            alerts: Vec::new(),
            records: Vec::new(),
            review_put: Vec::new(),
            review_del: Vec::new(),
            work_done: None,
            work_drop: None,
            wake_delivery: false,
        })
    }

    pub(crate) fn event(
        &mut self,
        kind: EventKind,
        actor: &str,
        refs: Refs,
        detail: serde_json::Map<String, serde_json::Value>,
    ) {
        let ev = AuditEvent::next(&self.head, self.now, kind, actor.to_owned(), refs, detail);
        self.head = ev.head();
        self.events.push(ev);
    }

    /// Audits a notice to the admins queued by kim itself (`alert_queued`,
    /// actor `system`): its id, its kind and what it counts (identifiers
    /// and numbers only).
    pub(crate) fn notice_queued(
        &mut self,
        id: &str,
        kind: &str,
        counts: &[(&str, serde_json::Value)],
    ) {
        let mut detail = serde_json::Map::new();
        detail.insert("kind".into(), kind.into());
        for (k, v) in counts {
            detail.insert((*k).into(), v.clone());
        }
        self.event(
            EventKind::AlertQueued,
            crate::audit::Actor::SYSTEM.as_str(),
            Refs {
                alert_id: Some(id.to_owned()),
                ..Refs::default()
            },
            detail,
        );
    }

    pub(crate) fn put_alert(&mut self, a: AlertRecord) {
        if a.state.is_active() {
            self.wake_delivery = true;
        }
        self.alerts.retain(|x| x.id != a.id);
        self.alerts.push(a);
    }

    pub(crate) fn put_record(&mut self, r: NotificationRecord) {
        self.records.retain(|x| x.receipt_id != r.receipt_id);
        self.records.push(r);
    }

    pub(crate) fn put_review(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.review_put.push((key, value));
    }

    pub(crate) fn del_review(&mut self, key: Vec<u8>) {
        self.review_del.push(key);
    }

    pub(crate) fn complete_work(&mut self, receipt: &str) {
        self.work_done = Some(receipt.to_owned());
    }

    /// Queues the DSL alert for a child just matched to `urn`, with its
    /// deadline, and records `alert_queued`. The child gets the deadline too.
    pub(crate) fn queue_alert(
        &mut self,
        store: &Store,
        rec: &mut NotificationRecord,
        index: u32,
        urn: &str,
    ) {
        let mut a = AlertRecord::new(
            alert_id(rec.receipt_id.as_str(), index),
            AlertKind::Dsl,
            rec.receipt_id.as_str(),
            index,
            urn,
            self.now,
        );
        let deadline = store.calendar().deadline(rec.received_at);
        a.deadline = Some(deadline);
        a.test = rec.test;
        if let Some(c) = rec.children.get_mut(index as usize) {
            c.deadline = Some(deadline);
        }
        let mut detail = serde_json::Map::new();
        detail.insert("deadline".into(), deadline.to_string().into());
        if rec.test {
            detail.insert("test".into(), true.into());
        }
        self.event(
            EventKind::AlertQueued,
            Actor::SYSTEM.as_str(),
            a.refs(),
            detail,
        );
        self.put_alert(a);
    }

    pub(crate) fn commit(self, store: &Store) -> Result<FlushTicket, StoreError> {
        let mut alert_bytes = Vec::with_capacity(self.alerts.len());
        for a in &self.alerts {
            let k = a.id.as_bytes();
            alert_bytes.push((
                k,
                store.seal_json(trees::OUTBOX, k, a)?,
                a.state.is_active(),
                super::alerts_index::time_key(a.queued_at, &a.id),
                super::alerts_index::index_value(a),
            ));
        }
        let mut record_bytes = Vec::with_capacity(self.records.len());
        let mut records = self.records;
        for r in &mut records {
            // Retention counts from the last change that left every child
            // in a final state.
            r.settled_at = r.is_settled().then_some(self.now);
        }
        for r in &records {
            let k = r.receipt_id.as_str().as_bytes();
            record_bytes.push((k, store.seal_json(trees::NOTIFICATIONS, k, r)?));
        }
        let review_put = self
            .review_put
            .iter()
            .map(|(k, v)| Ok((k, store.keys.seal_key().seal(trees::REVIEW, k, v)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let t = &store.t;
        (
            &t.notifications,
            &t.work_match,
            &t.review,
            &t.audit,
            &t.meta,
            &t.outbox,
            &t.outbox_active,
            &t.outbox_by_time,
        )
            .transaction(|(tn, tw, tr, ta, tm, to, tact, tbt)| {
                if let Some(w) = &self.work_done {
                    if tw.remove(w.as_bytes())?.is_none() {
                        return abort(StoreError::Corrupt("work item raced".into()));
                    }
                }
                if let Some(w) = &self.work_drop {
                    tw.remove(w.as_bytes())?;
                }
                for (k, v) in &record_bytes {
                    tn.insert(*k, v.as_slice())?;
                }
                for (k, v) in &review_put {
                    tr.insert(k.as_slice(), v.as_slice())?;
                }
                for k in &self.review_del {
                    tr.remove(k.as_slice())?;
                }
                for (k, v, active, tk, tv) in &alert_bytes {
                    to.insert(*k, v.as_slice())?;
                    tbt.insert(tk.as_slice(), tv.as_slice())?;
                    if *active {
                        tact.insert(*k, &[][..])?;
                    } else {
                        tact.remove(*k)?;
                    }
                }
                for ev in &self.events {
                    append_in_tx(ta, tm, ev)?;
                }
                Ok(())
            })?;
        if self.wake_delivery {
            store.deliver_wanted.notify_one();
        }
        Ok(store.ticket())
    }
}
