//! Retention as stored (issue 14): purging one notification's details in
//! one transaction (its sealed payload and data key, review candidates,
//! dismissal notes, withdrawal reason; the record keeps identifiers,
//! states and times and gains `purged_at`; `purged` audited), deleting
//! finished outbox records, destroying the key of a day none of whose
//! notifications keeps details, and moving values sealed before day keys
//! existed under them (format 1 → 2). Which notifications are due is
//! decided by `crate::retention`; the store only carries it out.

use jiff::civil::Date;
use sled::transaction::TransactionalTree;

use super::alert_record::AlertRecord;
use super::kek::day_of_second;
use super::notifications::{pack_sealed, unpack_sealed};
use super::shred::receipt_day;
use super::*;

/// What purging one notification removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purge {
    pub candidates: u64,
    pub notes: u64,
}

/// Every key of `tree` that belongs to `receipt` (`receipt` itself or
/// `receipt \0 …`).
fn keys_of(tree: &sled::Tree, receipt: &str) -> Result<Vec<sled::IVec>, StoreError> {
    let mut out = Vec::new();
    if tree.contains_key(receipt.as_bytes())? {
        out.push(sled::IVec::from(receipt.as_bytes()));
    }
    let mut prefix = receipt.as_bytes().to_vec();
    prefix.push(0);
    for k in tree.scan_prefix(&prefix).keys() {
        out.push(k?);
    }
    Ok(out)
}

fn remove_all(
    tree: &TransactionalTree,
    keys: &[sled::IVec],
) -> Result<(), sled::transaction::ConflictableTransactionError<StoreError>> {
    for k in keys {
        tree.remove(k)?;
    }
    Ok(())
}

impl Store {
    /// Every notification record, for retention to decide on (identifiers
    /// and states only; the journal's are too young to matter).
    pub fn for_each_record(
        &self,
        mut f: impl FnMut(NotificationRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for kv in self.t.notifications.iter() {
            let (k, v) = kv?;
            f(self.open_json(trees::NOTIFICATIONS, &k, &v)?)?;
        }
        Ok(())
    }

    /// Purges the details of `receipt`, if it still has them and
    /// `still_due` says so of the record as it is now (under the writer
    /// lock): one transaction, so a crash leaves it whole or purged.
    pub fn purge_notification(
        &self,
        receipt: &str,
        now: jiff::Timestamp,
        actor: &str,
        still_due: impl Fn(&NotificationRecord) -> bool,
    ) -> Result<Option<Purge>, StoreError> {
        let _w = self.lock_writer();
        let Some(v) = self.t.notifications.get(receipt.as_bytes())? else {
            return Ok(None);
        };
        let mut rec: NotificationRecord =
            self.open_json(trees::NOTIFICATIONS, receipt.as_bytes(), &v)?;
        if rec.purged_at.is_some() || !still_due(&rec) {
            return Ok(None);
        }
        rec.purged_at = Some(now);
        let sealed_rec = self.seal_json(trees::NOTIFICATIONS, receipt.as_bytes(), &rec)?;
        let candidates = keys_of(&self.t.review_candidates, receipt)?;
        let notes = keys_of(&self.t.dismissals, receipt)?;
        let withdrawals = keys_of(&self.t.withdrawals, receipt)?;
        let review = keys_of(&self.t.review, receipt)?;
        let mut detail = serde_json::Map::new();
        detail.insert("force".into(), rec.force.clone().into());
        detail.insert("reference".into(), rec.police_reference.clone().into());
        detail.insert("children".into(), rec.children.len().into());
        let ev = crate::audit::AuditEvent::next(
            &self.audit_head()?,
            now,
            EventKind::Purged,
            actor.to_owned(),
            Refs {
                receipt: Some(receipt.to_owned()),
                ..Refs::default()
            },
            detail,
        );
        let t = &self.t;
        (
            &t.notifications,
            &t.payloads,
            &t.review_candidates,
            &t.dismissals,
            &t.withdrawals,
            &t.review,
            &t.audit,
            &t.meta,
        )
            .transaction(|(tn, tp, tc, td, tw, tr, ta, tm)| {
                tn.insert(receipt.as_bytes(), sealed_rec.as_slice())?;
                tp.remove(receipt.as_bytes())?;
                remove_all(tc, &candidates)?;
                remove_all(td, &notes)?;
                remove_all(tw, &withdrawals)?;
                remove_all(tr, &review)?;
                append_in_tx(ta, tm, &ev)?;
                Ok(())
            })?;
        Ok(Some(Purge {
            candidates: candidates.len() as u64,
            notes: (notes.len() + withdrawals.len()) as u64,
        }))
    }

    /// Deletes finished outbox records (delivered, failed, withdrawn) that
    /// finished before `cutoff`; `dry_run` only counts them.
    pub fn purge_alerts(&self, cutoff: jiff::Timestamp, dry_run: bool) -> Result<u64, StoreError> {
        let mut due = Vec::new();
        for kv in self.t.outbox.iter() {
            let (k, v) = kv?;
            let a: AlertRecord = self.open_json(trees::OUTBOX, &k, &v)?;
            let finished = a.delivered_at.unwrap_or(a.next_attempt_at.max(a.queued_at));
            if !a.state.is_active() && finished < cutoff {
                due.push((k, super::alerts_index::time_key(a.queued_at, &a.id)));
            }
        }
        if dry_run {
            return Ok(due.len() as u64);
        }
        let _w = self.lock_writer();
        for (k, tk) in &due {
            (
                &self.t.outbox,
                &self.t.outbox_by_time,
                &self.t.outbox_active,
            )
                .transaction(|(to, tbt, tact)| {
                    // Still finished (an admin may have re-queued it).
                    if tact.get(k)?.is_some() {
                        return Ok(());
                    }
                    to.remove(k)?;
                    tbt.remove(tk.as_slice())?;
                    Ok(())
                })?;
        }
        Ok(due.len() as u64)
    }

    /// Whether any value sealed under `day`'s key is still in the trees
    /// (or waiting in the journal).
    fn day_in_use(&self, day: Date) -> Result<bool, StoreError> {
        let start = day
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?
            .timestamp()
            .as_second();
        let lo = ReceiptId::lowest_at(start);
        let hi = ReceiptId::lowest_at(start + 86_400);
        for tree in [
            &self.t.payloads,
            &self.t.review_candidates,
            &self.t.dismissals,
            &self.t.withdrawals,
        ] {
            if tree
                .range(lo.as_str().as_bytes()..hi.as_str().as_bytes())
                .next()
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(self.any_pending_receipt(|r| receipt_day(r.as_bytes()).ok() == Some(day)))
    }

    /// Destroys the key of every day before `before` none of whose
    /// notifications keeps details, after making the purges durable: from
    /// then on nothing in the store opens that day's notifications. Audits
    /// `day_key_destroyed` for each. `dry_run` only lists them.
    pub fn destroy_spent_day_keys(
        &self,
        before: Date,
        actor: &str,
        dry_run: bool,
    ) -> Result<Vec<Date>, StoreError> {
        let mut spent = Vec::new();
        for day in self.days.days()? {
            if day < before && !self.day_in_use(day)? {
                spent.push(day);
            }
        }
        if dry_run || spent.is_empty() {
            return Ok(spent);
        }
        // The purges on disk first: a key destroyed while a purged payload
        // could come back after a crash would leave it unopenable.
        self.flush_now()?;
        for day in &spent {
            let mut detail = serde_json::Map::new();
            detail.insert("day".into(), day.to_string().into());
            let _ =
                self.audit_append(EventKind::DayKeyDestroyed, actor, Refs::default(), detail)?;
        }
        // Audited on disk before the keys go.
        self.flush_now()?;
        for day in &spent {
            self.days.destroy(*day)?;
        }
        Ok(spent)
    }

    /// Moves every value sealed by the master-derived key that holds a
    /// child's details under its day's key (format 1 → 2); returns how many.
    pub fn migrate_to_day_keys(&self) -> Result<u64, StoreError> {
        let _w = self.lock_writer();
        let mut n = 0;
        for kv in self.t.payloads.iter() {
            let (k, v) = kv?;
            let (sealed_dk, payload) = unpack_sealed(&v)?;
            if self.is_legacy(sealed_dk)? {
                let dk = self.open_personal(trees::DATA_KEYS, &k, sealed_dk)?;
                let new_dk = self.seal_personal(trees::DATA_KEYS, &k, &dk)?;
                self.t.payloads.insert(&k, pack_sealed(&new_dk, payload))?;
                n += 1;
            }
        }
        for (name, tree) in [
            (trees::REVIEW_CANDIDATES, &self.t.review_candidates),
            (trees::DISMISSALS, &self.t.dismissals),
            (trees::WITHDRAWALS, &self.t.withdrawals),
        ] {
            for kv in tree.iter() {
                let (k, v) = kv?;
                if self.is_legacy(&v)? {
                    let plain = self.open_personal(name, &k, &v)?;
                    tree.insert(&k, self.seal_personal(name, &k, &plain)?)?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

impl Store {
    /// For benchmarks only (`benches/retention.rs`): marks every child of
    /// `receipts` delivered at `at` (settled then) and takes them off the
    /// matching stage's queue, without alerts or audit events — never for a
    /// live store.
    #[doc(hidden)]
    pub fn bench_settle(&self, receipts: &[String], at: jiff::Timestamp) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for r in receipts {
            let Some(mut rec) = self.record(r)? else {
                continue;
            };
            for c in &mut rec.children {
                c.state = ChildState::Delivered;
                c.delivered_at = Some(at);
            }
            rec.settled_at = Some(at);
            b.insert(
                r.as_bytes(),
                self.seal_json(trees::NOTIFICATIONS, r.as_bytes(), &rec)?,
            );
        }
        self.t.notifications.apply_batch(b)?;
        for r in receipts {
            self.t.work_match.remove(r.as_bytes())?;
        }
        Ok(())
    }
}

/// The `meta` key of the last retention run.
const LAST_RUN: &[u8] = b"retention_last_run";

/// The last retention run (for the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastRun {
    pub at: jiff::Timestamp,
    pub purged: u64,
}

impl Store {
    /// Records a retention run (not a dry one).
    pub fn set_retention_last(&self, last: LastRun) -> Result<(), StoreError> {
        let v = serde_json::to_vec(&last).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.t.meta.insert(LAST_RUN, v)?;
        Ok(())
    }

    /// The last retention run, if any.
    pub fn retention_last(&self) -> Result<Option<LastRun>, StoreError> {
        match self.t.meta.get(LAST_RUN)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("retention_last_run: {e}"))),
        }
    }

    /// How many days have a key on disk.
    pub fn day_key_count(&self) -> Result<usize, StoreError> {
        Ok(self.days.days()?.len())
    }
}

/// The UTC day of a timestamp (the day keys' calendar).
pub fn utc_day(t: jiff::Timestamp) -> Date {
    day_of_second(t.as_second())
}
