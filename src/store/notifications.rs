//! Notification records: preparing one (receipt, data key, sealing),
//! telling a re-send from a new one (against the trees and the accept
//! journal's pending set), committing batches (one transaction: sealed
//! payload, sealed data key, per-force reference, matching work item,
//! `received` audit event), and the per-force status
//! view.

use std::fmt;

use serde::{Deserialize, Serialize};
use sled::Transactional;
use zeroize::Zeroizing;

use std::collections::HashMap;

use super::crypto::{random_id_bytes, DataKey};
use super::journal::{self, Entry};
use super::{abort, append_event_in_tx, trees, FlushTicket, Store, StoreError, AUDIT_HEAD};
use crate::audit::{Actor, AuditEvent, EventKind, Refs};
use crate::ingest::notification::Notification;

/// Crockford base32: no I, L, O, U, so a receipt read aloud over the phone
/// is unambiguous.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A receipt id: 80 random bits as `XXXX-XXXX-XXXX-XXXX`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReceiptId(String);

impl ReceiptId {
    /// The first 32 bits are the time in seconds (so receipts sort by
    /// arrival and the trees keyed by them take new keys at one end, which
    /// is cheaper for sled than keys scattered over the whole tree), the
    /// other 48 are random.
    pub fn generate() -> Result<Self, StoreError> {
        let secs = jiff::Timestamp::now()
            .as_second()
            .clamp(0, i64::from(u32::MAX));
        Ok(Self::from_parts(secs as u32, random_id_bytes::<6>()?))
    }

    fn from_parts(secs: u32, random: [u8; 6]) -> Self {
        let mut bits = u128::from(secs);
        for b in random {
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
        Self(s)
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

    /// The second a receipt was made in (its first 32 bits).
    pub fn second(&self) -> u32 {
        let bits = self.0.bytes().filter(|&b| b != b'-').fold(0u128, |acc, b| {
            let v = ALPHABET.iter().position(|&a| a == b).unwrap_or(0);
            (acc << 5) | v as u128
        });
        (bits >> 48) as u32
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
    /// The record as the journal keeps it (inside its sealed frame).
    record_bytes: Vec<u8>,
    /// The record as the `notifications` tree keeps it.
    sealed_record: Vec<u8>,
}

impl Prepared {
    /// What the accept journal keeps of it.
    pub(crate) fn journal_entry(&self) -> Entry {
        Entry {
            ids: journal::Identifiers {
                receipt: self.receipt.as_str().to_owned(),
                force: self.force.clone(),
                police_reference: self.police_reference.clone(),
            },
            record: self.record_bytes.clone(),
            sealed: self.sealed.clone(),
        }
    }

    /// Rebuilds it from a journal entry (at replay).
    pub(crate) fn from_journal(store: &Store, e: Entry) -> Result<Self, StoreError> {
        let record: NotificationRecord = serde_json::from_slice(&e.record)
            .map_err(|err| StoreError::Corrupt(format!("journal record: {err}")))?;
        let sealed_record = store.keys.seal_key().seal(
            trees::NOTIFICATIONS,
            record.receipt_id.as_str().as_bytes(),
            &e.record,
        )?;
        Ok(Self {
            sealed_record,
            force: record.force.clone(),
            police_reference: record.police_reference.clone(),
            ref_key: ref_key(&record.force, &record.police_reference),
            fingerprint: record.fingerprint.clone(),
            receipt: record.receipt_id.clone(),
            sealed: e.sealed,
            record,
            record_bytes: e.record,
        })
    }
}

/// Notifications in the accept journal, durable but not yet applied to the
/// trees (see `super::journal`): re-sends and status answers see them here.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    by_ref: HashMap<Vec<u8>, NotificationRecord>,
    by_receipt: HashMap<String, Vec<u8>>,
    /// Receipts journaled in the last [`RECENT_SECS`] seconds, oldest
    /// first. A receipt starts with its second, so only these could be
    /// made again (48 random bits apart): `admit` refuses such a twin
    /// before its 202 instead of letting it overwrite the first.
    /// (second, hash of the receipt): a hash collision only costs a 503.
    recent: std::collections::VecDeque<(i64, u64)>,
    recent_set: std::collections::HashSet<u64>,
}

const RECENT_SECS: i64 = 10;

/// A hash of every reference the store holds or the journal holds, so the
/// accept path tells a new notification from a re-send without reading
/// sled (whose reads wait while the applier's transaction runs). Built on
/// first use from the `refs` tree; 64-bit hashes under a per-process key:
/// a hit is confirmed in sled, a miss is certain.
#[derive(Debug, Default)]
pub(crate) struct KnownRefs {
    hasher: std::hash::RandomState,
    set: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<u64>>>,
}

impl KnownRefs {
    fn hash(&self, ref_key: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(ref_key)
    }
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
        let sealed_record = self
            .keys
            .seal_key()
            .seal(trees::NOTIFICATIONS, rk, &record_bytes)?;
        Ok(Prepared {
            sealed_record,
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

    fn commit(&self, batch: &[Prepared], admitted: bool) -> Result<Vec<AcceptOutcome>, StoreError> {
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
                    AcceptOutcome::Conflict
                });
                continue;
            } else if self.t.notifications.contains_key(p.receipt.as_str())? {
                return Err(StoreError::Corrupt("receipt id collision".into()));
            }
            let mut detail = serde_json::Map::new();
            detail.insert("children".into(), p.record.children.len().into());
            detail.insert("police_reference".into(), p.police_reference.clone().into());
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
    fn earlier(
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

    /// The second the newest stored receipt was made in, if any.
    pub(crate) fn newest_receipt_second(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .t
            .notifications
            .last()?
            .and_then(|(k, _)| ReceiptId::parse(&String::from_utf8_lossy(&k)))
            .map(|r| i64::from(r.second())))
    }

    /// Reads the [`KnownRefs`] now (the accept path calls this before it
    /// journals anything, so no reference is applied while it reads).
    pub(crate) fn load_known_refs(&self) -> Result<(), StoreError> {
        self.known_refs().map(drop)
    }

    /// The set of [`KnownRefs`], read from the `refs` tree the first time.
    fn known_refs(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, std::collections::HashSet<u64>>, StoreError> {
        let set = match self.known_refs.set.get() {
            Some(set) => set,
            None => {
                let mut all = std::collections::HashSet::new();
                for k in self.t.refs.iter().keys() {
                    all.insert(self.known_refs.hash(&k?));
                }
                // Another thread may have built it meanwhile: either is whole.
                let _ = self.known_refs.set.set(std::sync::Mutex::new(all));
                self.known_refs.set.get().expect("just set")
            }
        };
        Ok(set.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The accept path's first half (`super::writer`): answers re-sends and
    /// conflicts (against this batch, the journal and the trees) and returns
    /// the new notifications, which the caller journals. `None`: answer 503
    /// (a receipt id made twice). Writes nothing.
    pub(crate) fn admit(
        &self,
        batch: Vec<Prepared>,
    ) -> Result<(Vec<Option<AcceptOutcome>>, Vec<Prepared>), StoreError> {
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut fresh = Vec::new();
        let mut in_batch: HashMap<Vec<u8>, NotificationRecord> = HashMap::new();
        let mut receipts = std::collections::HashSet::new();
        for p in batch {
            if let Some(rec) = self.earlier(&p.ref_key, &in_batch, true)? {
                outcomes.push(Some(if rec.fingerprint == p.fingerprint {
                    AcceptOutcome::Duplicate(rec)
                } else {
                    AcceptOutcome::Conflict
                }));
                continue;
            }
            let r = p.receipt.as_str();
            let h = self.known_refs.hash(r.as_bytes());
            if !receipts.insert(h) || self.pending().recent_set.contains(&h) {
                tracing::error!(
                    receipt = r,
                    "receipt id made twice; answering 503 (the police system will re-send)"
                );
                outcomes.push(None);
                continue;
            }
            in_batch.insert(p.ref_key.clone(), p.record.clone());
            outcomes.push(Some(AcceptOutcome::Accepted(p.record.clone())));
            fresh.push(p);
        }
        Ok((outcomes, fresh))
    }

    /// Journaled notifications become visible to re-sends and status.
    pub(crate) fn mark_pending(&self, batch: &[Prepared]) {
        if let Some(known) = self.known_refs.set.get() {
            let mut known = known.lock().unwrap_or_else(|p| p.into_inner());
            for p in batch {
                known.insert(self.known_refs.hash(&p.ref_key));
            }
        }
        let mut pending = self.pending();
        for p in batch {
            pending
                .by_receipt
                .insert(p.receipt.as_str().to_owned(), p.ref_key.clone());
            pending.by_ref.insert(p.ref_key.clone(), p.record.clone());
            let second = p.record.received_at.as_second();
            let h = self.known_refs.hash(p.receipt.as_str().as_bytes());
            pending.recent.push_back((second, h));
            pending.recent_set.insert(h);
        }
        let newest = pending.recent.back().map_or(0, |(s, _)| *s);
        while pending
            .recent
            .front()
            .is_some_and(|(s, _)| *s < newest - RECENT_SECS)
        {
            if let Some((_, r)) = pending.recent.pop_front() {
                pending.recent_set.remove(&r);
            }
        }
    }

    /// Applied to the trees: the trees answer for them from now on.
    pub(crate) fn unmark_pending(&self, batch: &[Prepared]) {
        let mut pending = self.pending();
        for p in batch {
            pending.by_receipt.remove(p.receipt.as_str());
            pending.by_ref.remove(&p.ref_key);
        }
    }

    /// Whether `receipt` is journaled but not yet in the trees (a change
    /// to it, such as a withdrawal, waits until it is).
    pub fn is_pending(&self, receipt: &str) -> bool {
        self.pending().by_receipt.contains_key(receipt)
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
            .commit_batch(&[p])?
            .pop()
            .ok_or_else(|| StoreError::Corrupt("empty batch".into()))?;
        let ticket = matches!(out, AcceptOutcome::Accepted(_)).then(|| self.ticket());
        Ok((out, ticket))
    }

    /// The plain record (identifiers and states) of a receipt.
    pub fn record(&self, receipt: &str) -> Result<Option<NotificationRecord>, StoreError> {
        // The journal first (see `earlier`).
        {
            let pending = self.pending();
            if let Some(rec) = pending
                .by_receipt
                .get(receipt)
                .and_then(|rk| pending.by_ref.get(rk))
            {
                return Ok(Some(rec.clone()));
            }
        }
        match self.t.notifications.get(receipt.as_bytes())? {
            None => Ok(None),
            Some(v) => self
                .open_json(trees::NOTIFICATIONS, receipt.as_bytes(), &v)
                .map(Some),
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
#[path = "notifications_tests.rs"]
mod tests;
