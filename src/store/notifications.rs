//! Notification records: accept (one transaction: sealed payload, sealed
//! data key, per-force reference, matching work item, `received` audit
//! event), idempotent re-sends, and the per-force status view.

use std::fmt;

use serde::{Deserialize, Serialize};
use sled::Transactional;
use zeroize::Zeroizing;

use super::crypto::{random_id_bytes, DataKey};
use super::{abort, append_event_in_tx, trees, FlushTicket, Store, StoreError, AUDIT_HEAD};
use crate::audit::{AuditEvent, EventKind, Refs};
use crate::ingest::notification::Notification;

/// Crockford base32: no I, L, O, U, so a receipt read aloud over the phone
/// is unambiguous.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A receipt id: 80 random bits as `XXXX-XXXX-XXXX-XXXX`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReceiptId(String);

impl ReceiptId {
    pub fn generate() -> Result<Self, StoreError> {
        let bytes = random_id_bytes::<10>()?;
        let mut bits: u128 = 0;
        for b in bytes {
            bits = (bits << 8) | u128::from(b);
        }
        let mut s = String::with_capacity(19);
        for i in 0..16 {
            if i > 0 && i % 4 == 0 {
                s.push('-');
            }
            let shift = 5 * (15 - i);
            s.push(ALPHABET[((bits >> shift) & 31) as usize] as char);
        }
        Ok(Self(s))
    }

    /// Parses what a client sends (case-insensitive); `None` if it cannot be
    /// a receipt id.
    pub fn parse(s: &str) -> Option<Self> {
        let up = s.to_ascii_uppercase();
        let ok = up.len() == 19
            && up.bytes().enumerate().all(|(i, b)| {
                if i % 5 == 4 {
                    b == b'-'
                } else {
                    ALPHABET.contains(&b)
                }
            });
        ok.then_some(Self(up))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReceiptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ReceiptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReceiptId({})", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildState {
    Queued,
    Matched,
    NeedsReview,
    Delivered,
    Failed,
    Withdrawn,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildStatus {
    pub index: u32,
    pub state: ChildState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school_urn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<jiff::Timestamp>,
    /// When the school should have it by: the start of the next school day
    /// (once an alert is queued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<jiff::Timestamp>,
    /// Whether it reached the school by then (once known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_met: Option<bool>,
}

/// What the `notifications` tree holds, in the clear: identifiers and states
/// only. The notification itself is in `payloads`, sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRecord {
    pub receipt_id: ReceiptId,
    pub force: String,
    pub police_reference: String,
    pub received_at: jiff::Timestamp,
    /// Keyed HMAC of the canonical content: tells a re-send from a conflict
    /// without keeping the content readable.
    pub fingerprint: String,
    pub children: Vec<ChildStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// New: stored, waiting for the flush behind the ticket.
    Accepted(NotificationRecord),
    /// The same force sent the same reference with the same content before.
    Duplicate(NotificationRecord),
    /// The same force sent the same reference with different content.
    Conflict,
}

fn ref_key(force: &str, reference: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(force.len() + reference.len() + 1);
    k.extend_from_slice(force.as_bytes());
    k.push(0);
    k.extend_from_slice(reference.as_bytes());
    k
}

/// The `payloads` value: the data key sealed by the master-derived key, then
/// the notification sealed by the data key: `len(dk) u16 BE | dk | payload`.
/// Retention destroys the data key part to shred the payload.
pub(crate) fn pack_sealed(sealed_dk: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + sealed_dk.len() + payload.len());
    v.extend_from_slice(&(sealed_dk.len() as u16).to_be_bytes());
    v.extend_from_slice(sealed_dk);
    v.extend_from_slice(payload);
    v
}

pub(crate) fn unpack_sealed(v: &[u8]) -> Result<(&[u8], &[u8]), StoreError> {
    let corrupt = || StoreError::Corrupt("payload framing".into());
    let len = u16::from_be_bytes(
        v.get(..2)
            .ok_or_else(corrupt)?
            .try_into()
            .map_err(|_| corrupt())?,
    ) as usize;
    let dk = v.get(2..2 + len).ok_or_else(corrupt)?;
    Ok((dk, &v[2 + len..]))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A notification sealed and ready to commit: everything that needs CPU
/// (receipt id, data key, sealing, fingerprint) is done before the writer
/// lock, on the caller's thread.
pub struct Prepared {
    force: String,
    police_reference: String,
    ref_key: Vec<u8>,
    fingerprint: String,
    receipt: ReceiptId,
    /// The sealed data key and the payload it seals, in one value (see
    /// `pack_sealed`).
    sealed: Vec<u8>,
    record: NotificationRecord,
    record_bytes: Vec<u8>,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Prepared({}, {})", self.force, self.receipt)
    }
}

impl Store {
    /// The keyed fingerprint of a notification's canonical content.
    pub(crate) fn fingerprint(&self, force: &str, canonical: &[u8]) -> String {
        hex(&self.keys.blind_index(
            "notification fingerprint v1",
            &[force.as_bytes(), canonical],
        ))
    }

    /// Seals a validated notification from `force` for `commit_batch`.
    pub fn prepare(
        &self,
        force: &str,
        n: &Notification,
        now: jiff::Timestamp,
    ) -> Result<Prepared, StoreError> {
        let canonical = Zeroizing::new(n.canonical_bytes());
        let fingerprint = self.fingerprint(force, &canonical);
        let receipt = ReceiptId::generate()?;
        let rk = receipt.as_str().as_bytes();
        let dk = DataKey::generate()?;
        let sealed_dk = self
            .keys
            .seal_key()
            .seal(trees::DATA_KEYS, rk, dk.bytes())?;
        let payload = dk.seal_key().seal(trees::PAYLOADS, rk, &canonical)?;
        let record = NotificationRecord {
            receipt_id: receipt.clone(),
            force: force.to_owned(),
            police_reference: n.police_reference.clone(),
            received_at: now,
            fingerprint: fingerprint.clone(),
            children: (0..n.children.len() as u32)
                .map(|index| ChildStatus {
                    index,
                    state: ChildState::Queued,
                    school_urn: None,
                    delivered_at: None,
                    deadline: None,
                    deadline_met: None,
                })
                .collect(),
        };
        let record_bytes =
            serde_json::to_vec(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Prepared {
            force: force.to_owned(),
            police_reference: n.police_reference.clone(),
            ref_key: ref_key(force, &n.police_reference),
            fingerprint,
            receipt,
            sealed: pack_sealed(&sealed_dk, &payload),
            record,
            record_bytes,
        })
    }

    /// Commits prepared notifications in ONE transaction (records, sealed
    /// payloads and data keys, references, matching work items, `received`
    /// audit events chained in order). A re-send — of an earlier notification
    /// or of one earlier in the same batch — is answered from the original.
    /// The caller makes it durable (`durable`/`flush_now`) before answering.
    pub fn commit_batch(&self, batch: Vec<Prepared>) -> Result<Vec<AcceptOutcome>, StoreError> {
        let _w = self.lock_writer();
        let mut head = self.audit_head()?;
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut fresh: Vec<(Prepared, AuditEvent)> = Vec::new();
        let mut in_batch: std::collections::HashMap<Vec<u8>, NotificationRecord> =
            Default::default();
        for p in batch {
            let earlier = match in_batch.get(&p.ref_key) {
                Some(rec) => Some(rec.clone()),
                None => match self.t.refs.get(&p.ref_key)? {
                    Some(existing) => {
                        let rid = String::from_utf8_lossy(&existing).into_owned();
                        Some(self.record(&rid)?.ok_or_else(|| {
                            StoreError::Corrupt("reference without record".into())
                        })?)
                    }
                    None => None,
                },
            };
            if let Some(rec) = earlier {
                outcomes.push(if rec.fingerprint == p.fingerprint {
                    AcceptOutcome::Duplicate(rec)
                } else {
                    AcceptOutcome::Conflict
                });
                continue;
            }
            if self.t.notifications.contains_key(p.receipt.as_str())? {
                return Err(StoreError::Corrupt("receipt id collision".into()));
            }
            let mut detail = serde_json::Map::new();
            detail.insert("children".into(), p.record.children.len().into());
            detail.insert("police_reference".into(), p.police_reference.clone().into());
            let ev = AuditEvent::next(
                &head,
                p.record.received_at,
                EventKind::Received,
                format!("force:{}", p.force),
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
        // inserts: those share sled's lock with a flush in progress, where a
        // transaction must wait for the flush to end, so this part of the
        // commit overlaps the previous batch's sync. They precede the
        // transaction in sled's log: a crash in between leaves at worst a
        // sealed payload nothing refers to (never acknowledged), never a
        // record without its payload.
        for (p, _) in &fresh {
            t.payloads
                .insert(p.receipt.as_str().as_bytes(), p.sealed.as_slice())?;
        }
        // Four writes per notification, and the audit head once per batch.
        (&t.notifications, &t.refs, &t.work_match, &t.audit, &t.meta).transaction(
            |(tn, tr, tw, ta, tm)| {
                for (p, ev) in &fresh {
                    let rk = p.receipt.as_str().as_bytes();
                    if tr.get(&p.ref_key)?.is_some() {
                        return abort(StoreError::Corrupt("reference raced".into()));
                    }
                    tn.insert(rk, p.record_bytes.as_slice())?;
                    tr.insert(p.ref_key.as_slice(), rk)?;
                    tw.insert(rk, &[][..])?;
                    append_event_in_tx(ta, ev)?;
                }
                tm.insert(AUDIT_HEAD, head_bytes.as_slice())?;
                Ok(())
            },
        )?;
        self.match_wanted.notify_one();
        Ok(outcomes)
    }

    /// Stores one validated notification (prepare + a batch of one). The
    /// caller must await `durable(ticket)` before answering 202.
    pub fn accept(
        &self,
        force: &str,
        n: &Notification,
        now: jiff::Timestamp,
    ) -> Result<(AcceptOutcome, Option<FlushTicket>), StoreError> {
        let p = self.prepare(force, n, now)?;
        let out = self
            .commit_batch(vec![p])?
            .pop()
            .ok_or_else(|| StoreError::Corrupt("empty batch".into()))?;
        let ticket = matches!(out, AcceptOutcome::Accepted(_)).then(|| self.ticket());
        Ok((out, ticket))
    }

    /// The plain record (identifiers and states) of a receipt.
    pub fn record(&self, receipt: &str) -> Result<Option<NotificationRecord>, StoreError> {
        match self.t.notifications.get(receipt.as_bytes())? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("notification record: {e}"))),
        }
    }

    /// The record, only if `force` sent it: another force sees nothing.
    pub fn record_for_force(
        &self,
        force: &str,
        receipt: &ReceiptId,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        Ok(self.record(receipt.as_str())?.filter(|r| r.force == force))
    }

    /// Opens the sealed notification (its data key first).
    pub fn load_notification(&self, receipt: &str) -> Result<Option<Notification>, StoreError> {
        let rk = receipt.as_bytes();
        let Some(sealed) = self.t.payloads.get(rk)? else {
            return Ok(None);
        };
        let (sealed_dk, payload) = unpack_sealed(&sealed)?;
        let dk_bytes = self.keys.seal_key().open(trees::DATA_KEYS, rk, sealed_dk)?;
        let dk = DataKey::from_slice(&dk_bytes)?;
        let plain = dk.seal_key().open(trees::PAYLOADS, rk, payload)?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("payload of {receipt} does not parse")))
    }

    /// Receipts waiting for the matching stage, oldest first by key order.
    pub fn pending_match(&self) -> impl Iterator<Item = Result<String, StoreError>> + '_ {
        self.t
            .work_match
            .iter()
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?).into_owned()))
    }

    pub fn notification_count(&self) -> usize {
        self.t.notifications.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_ids_are_readable_and_parse_back() {
        let id = ReceiptId::generate().unwrap();
        assert_eq!(id.as_str().len(), 19);
        assert_eq!(ReceiptId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(
            ReceiptId::parse(&id.as_str().to_ascii_lowercase()),
            Some(id)
        );
        assert!(
            ReceiptId::parse("ABCD-EFGH-JKMN-PQRI").is_none(),
            "I is not in the alphabet"
        );
        assert!(ReceiptId::parse("../../etc/passwd").is_none());
        assert!(ReceiptId::parse("ABCDEFGHJKMNPQRST").is_none());
    }
}
