//! The audit chain as stored: its head, its events and checkpoints, and
//! appending events (alone, or inside another transaction) so the chain
//! stays linear under the writer lock.

use super::*;

impl Store {
    /// The audit chain's head as stored.
    pub fn audit_head(&self) -> Result<Head, StoreError> {
        match self.t.meta.get(AUDIT_HEAD)? {
            Some(v) => serde_json::from_slice(&v)
                .map_err(|e| StoreError::Corrupt(format!("audit head: {e}"))),
            None => Ok(Head::default()),
        }
    }

    /// Every audit event in order (for verification and listing).
    pub fn audit_events(&self) -> impl Iterator<Item = Result<AuditEvent, StoreError>> + '_ {
        self.audit_cursor(1).map(parse)
    }

    /// The stored bytes of the audit events from the first one at or
    /// after `since` (as [`audit_events_from`](Self::audit_events_from)),
    /// unparsed: for readers that check each with
    /// [`crate::audit::raw::check_link`] and parse only what they need.
    /// Each comes with the sequence number it is stored under.
    pub fn audit_raw_from(
        &self,
        since: jiff::Timestamp,
    ) -> Result<audit_archive::Cursor<'_>, StoreError> {
        let lo = self.audit_first_at(since)?;
        Ok(self.audit_cursor(lo))
    }

    /// The sequence number of the first event at or after `since` (a
    /// binary search: events are appended in time order); past the head
    /// if there is none.
    pub fn audit_first_at(&self, since: jiff::Timestamp) -> Result<u64, StoreError> {
        #[derive(serde::Deserialize)]
        struct Time {
            time: jiff::Timestamp,
        }
        let (mut lo, mut hi) = (1u64, self.audit_head()?.seq + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let before = match self.audit_raw_at(mid)? {
                Some(v) => {
                    let ev: Time = serde_json::from_slice(&v)
                        .map_err(|e| StoreError::Corrupt(format!("audit event: {e}")))?;
                    ev.time < since
                }
                None => false,
            };
            if before {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Audit events from the first one at or after `since` (found by a
    /// binary search over sequence numbers: events are appended in time
    /// order), so a reader of recent history skips the old chain.
    pub fn audit_events_from(
        &self,
        since: jiff::Timestamp,
    ) -> Result<impl Iterator<Item = Result<AuditEvent, StoreError>> + '_, StoreError> {
        let lo = self.audit_first_at(since)?;
        Ok(self.audit_cursor(lo).map(parse))
    }

    /// The hash of audit event `seq`, if it is stored.
    pub fn audit_hash_at(&self, seq: u64) -> Result<Option<String>, StoreError> {
        match self.audit_raw_at(seq)? {
            None => Ok(None),
            Some(v) => {
                let ev: AuditEvent = serde_json::from_slice(&v)
                    .map_err(|e| StoreError::Corrupt(format!("audit event: {e}")))?;
                Ok(Some(ev.hash))
            }
        }
    }

    /// Every stored checkpoint, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.t
            .checkpoints
            .iter()
            .values()
            .map(|v| {
                serde_json::from_slice(&v?)
                    .map_err(|e| StoreError::Corrupt(format!("checkpoint: {e}")))
            })
            .collect()
    }

    /// Signs the chain's head as a checkpoint and stores it, unless the
    /// last checkpoint already covers the head. Holds the writer lock, so
    /// the head cannot move meanwhile.
    pub fn checkpoint(
        &self,
        signer: &Signer,
        now: jiff::Timestamp,
    ) -> Result<Option<(Checkpoint, FlushTicket)>, StoreError> {
        let _w = self.lock_writer();
        let head = self.audit_head()?;
        if head.seq == 0 || self.last_checkpoint_seq()? >= head.seq {
            return Ok(None);
        }
        // The first checkpoint under a new signing key names the old key's
        // last one (signed by the new key), so the chain of trust carries on.
        let previous = self
            .last_checkpoint()?
            .filter(|last| last.key_id != signer.key_id())
            .map(|last| crate::audit::checkpoint::Link::to(&last));
        let cp = signer.sign_linked(&head, now, previous);
        let bytes = serde_json::to_vec(&cp).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.t.checkpoints.insert(cp.seq.to_be_bytes(), bytes)?;
        Ok(Some((cp, self.ticket())))
    }

    /// The newest stored checkpoint.
    pub fn last_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        match self.t.checkpoints.last()? {
            Some((_, v)) => Ok(Some(
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            )),
            None => Ok(None),
        }
    }

    pub fn last_checkpoint_seq(&self) -> Result<u64, StoreError> {
        Ok(match self.t.checkpoints.last()? {
            Some((k, _)) => u64::from_be_bytes(
                k.as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("checkpoint key".into()))?,
            ),
            None => 0,
        })
    }

    /// Appends one audit event on its own (not part of another change).
    pub fn audit_append(
        &self,
        kind: EventKind,
        actor: &str,
        refs: Refs,
        detail: serde_json::Map<String, serde_json::Value>,
    ) -> Result<FlushTicket, StoreError> {
        let _w = self.lock_writer();
        let head = self.audit_head()?;
        let ev = AuditEvent::next(
            &head,
            jiff::Timestamp::now(),
            kind,
            actor.to_owned(),
            refs,
            detail,
        );
        (&self.t.audit, &self.t.meta).transaction(|(ta, tm)| append_in_tx(ta, tm, &ev))?;
        Ok(self.ticket())
    }
}

/// An event from its stored bytes.
fn parse(
    item: Result<(u64, audit_archive::RawEvent), StoreError>,
) -> Result<AuditEvent, StoreError> {
    let (_, v) = item?;
    serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(format!("audit event: {e}")))
}

/// Writes `ev` only; the caller moves the head (once per batch).
pub(crate) fn append_event_in_tx(
    audit: &TransactionalTree,
    ev: &AuditEvent,
) -> Result<(), ConflictableTransactionError<StoreError>> {
    let body = match serde_json::to_vec(ev) {
        Ok(b) => b,
        Err(e) => return abort(StoreError::Corrupt(e.to_string())),
    };
    audit.insert(&ev.seq.to_be_bytes(), body)?;
    Ok(())
}

/// Writes `ev` and moves the head, inside a transaction over (audit, meta).
pub(crate) fn append_in_tx(
    audit: &TransactionalTree,
    meta: &TransactionalTree,
    ev: &AuditEvent,
) -> Result<(), ConflictableTransactionError<StoreError>> {
    append_event_in_tx(audit, ev)?;
    let head = serde_json::to_vec(&ev.head()).expect("head serializes");
    meta.insert(AUDIT_HEAD, head)?;
    Ok(())
}

impl Store {
    /// For benchmarks only (`benches/report.rs`): appends a pre-built run of
    /// events (which must continue the chain) and moves the head to the
    /// last, in sled batches — never for a live store, whose events are
    /// appended inside the transactions of the changes they record.
    #[doc(hidden)]
    pub fn bench_put_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for ev in events {
            let v = serde_json::to_vec(ev).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            b.insert(&ev.seq.to_be_bytes()[..], v);
        }
        self.t.audit.apply_batch(b)?;
        if let Some(last) = events.last() {
            let head =
                serde_json::to_vec(&last.head()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            self.t.meta.insert(AUDIT_HEAD, head)?;
        }
        Ok(())
    }
}
