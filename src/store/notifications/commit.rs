//! Committing prepared notifications in one transaction (records, sealed
//! payloads and data keys, per-force references, matching work items,
//! `received` audit events), re-sends answered from the original and
//! audited (`resent`, `reference_conflict`).

use super::*;

impl Store {
    /// Commits prepared notifications in ONE transaction (records, sealed
    /// payloads and data keys, references, matching work items, `received`
    /// audit events chained in order). A re-send — of an earlier notification
    /// or of one earlier in the same batch — is answered from the original.
    /// The caller makes it durable (`durable`/`flush_now`) before answering.
    pub fn commit_batch(&self, batch: &[Prepared]) -> Result<Vec<AcceptOutcome>, StoreError> {
        self.commit(batch, false)
    }

    /// Applies notifications that [`admit`](Self::admit) found new and the
    /// journal holds (the applier): as [`commit_batch`](Self::commit_batch)
    /// without reading sled for re-sends again — three reads per
    /// notification, a fifth of the applier's time.
    pub(crate) fn apply_admitted(&self, batch: &[Prepared]) -> Result<(), StoreError> {
        self.commit(batch, true).map(drop)
    }

    pub(super) fn commit(
        &self,
        batch: &[Prepared],
        admitted: bool,
    ) -> Result<Vec<AcceptOutcome>, StoreError> {
        let _w = self.lock_writer();
        let mut head = self.audit_head()?;
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut fresh: Vec<(&Prepared, AuditEvent)> = Vec::new();
        let mut in_batch: std::collections::HashMap<Vec<u8>, NotificationRecord> =
            Default::default();
        for p in batch {
            if admitted {
                // Checked before it was journaled: against the trees and
                // the journal (re-sends), and against every receipt of its
                // second (twins; the journal thread starts in a second after
                // the last one of an earlier run, see `writer`).
            } else if let Some(rec) = self.earlier(&p.ref_key, &in_batch, false)? {
                outcomes.push(if rec.fingerprint == p.fingerprint {
                    AcceptOutcome::Duplicate(rec)
                } else {
                    AcceptOutcome::Conflict(rec)
                });
                continue;
            } else if self.t.notifications.contains_key(p.receipt.as_str())? {
                return Err(StoreError::Corrupt("receipt id collision".into()));
            }
            let mut detail = serde_json::Map::new();
            detail.insert("children".into(), p.record.children.len().into());
            detail.insert("police_reference".into(), p.police_reference.clone().into());
            if p.record.test {
                detail.insert("test".into(), true.into());
            }
            let ev = AuditEvent::next(
                &head,
                p.record.received_at,
                EventKind::Received,
                Actor::force(&p.force).to_string(),
                Refs {
                    receipt: Some(p.receipt.to_string()),
                    ..Refs::default()
                },
                detail,
            );
            head = ev.head();
            in_batch.insert(p.ref_key.clone(), p.record.clone());
            outcomes.push(AcceptOutcome::Accepted(p.record.clone()));
            fresh.push((p, ev));
        }
        if fresh.is_empty() {
            return Ok(outcomes);
        }
        let head_bytes =
            serde_json::to_vec(&head).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let t = &self.t;
        // The sealed payloads (the largest values) go in first, as plain
        // inserts, which do not hold sled's lock exclusively (a transaction
        // does). They precede the transaction in sled's log: a crash in
        // between leaves at worst a sealed payload nothing refers to yet
        // (the journal, or a re-send, brings the rest), never a record
        // without its payload.
        for (p, _) in &fresh {
            t.payloads
                .insert(p.receipt.as_str().as_bytes(), p.sealed.as_slice())?;
        }
        // Four writes per notification, and the audit head once per batch.
        (&t.notifications, &t.refs, &t.work_match, &t.audit, &t.meta).transaction(
            |(tn, tr, tw, ta, tm)| {
                for (p, ev) in &fresh {
                    let rk = p.receipt.as_str().as_bytes();
                    if !admitted && tr.get(&p.ref_key)?.is_some() {
                        return abort(StoreError::Corrupt("reference raced".into()));
                    }
                    tn.insert(rk, p.sealed_record.as_slice())?;
                    tr.insert(p.ref_key.as_slice(), rk)?;
                    tw.insert(rk, &[][..])?;
                    append_event_in_tx(ta, ev)?;
                }
                tm.insert(AUDIT_HEAD, head_bytes.as_slice())?;
                Ok(())
            },
        )?;
        if let Some(known) = self.known_refs.set.get() {
            let mut known = known.lock().unwrap_or_else(|p| p.into_inner());
            for (p, _) in &fresh {
                known.insert(self.known_refs.hash(&p.ref_key));
            }
        }
        self.match_wanted.notify();
        Ok(outcomes)
    }

    /// The record an earlier notification with `ref_key` has: in this
    /// batch, in the journal (if `journal`), or in the trees.
    pub(super) fn earlier(
        &self,
        ref_key: &[u8],
        in_batch: &HashMap<Vec<u8>, NotificationRecord>,
        journal: bool,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        if let Some(rec) = in_batch.get(ref_key) {
            return Ok(Some(rec.clone()));
        }
        // The journal before the trees: the applier removes an entry from
        // `pending` only after its transaction, so nothing falls between.
        if journal {
            if let Some(rec) = self.pending().by_ref.get(ref_key) {
                return Ok(Some(rec.clone()));
            }
            if !self.known_refs()?.contains(&self.known_refs.hash(ref_key)) {
                return Ok(None);
            }
        }
        match self.t.refs.get(ref_key)? {
            Some(existing) => {
                let rid = String::from_utf8_lossy(&existing).into_owned();
                Ok(Some(self.record(&rid)?.ok_or_else(|| {
                    StoreError::Corrupt("reference without record".into())
                })?))
            }
            None => Ok(None),
        }
    }

    /// Audits a police re-send of `original` (the record the answer came
    /// from): `resent` (same content, answered 200) or `reference_conflict`
    /// (other content, answered 409). Identifiers only, as `received`
    /// records them: the force, the original's receipt, the police
    /// reference (and `test`). The caller waits for the ticket before
    /// answering, and for the original to be in the trees before calling,
    /// so the event follows the original's `received` in the chain.
    pub fn audit_resend(
        &self,
        original: &NotificationRecord,
        conflict: bool,
    ) -> Result<FlushTicket, StoreError> {
        let mut detail = serde_json::Map::new();
        detail.insert(
            "police_reference".into(),
            original.police_reference.clone().into(),
        );
        if original.test {
            detail.insert("test".into(), true.into());
        }
        let kind = if conflict {
            EventKind::ReferenceConflict
        } else {
            EventKind::Resent
        };
        self.audit_append(
            kind,
            &Actor::force(&original.force).to_string(),
            Refs {
                receipt: Some(original.receipt_id.to_string()),
                ..Refs::default()
            },
            detail,
        )
    }
}
