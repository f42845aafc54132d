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

mod commit;
mod pending;
mod prepare;

pub(crate) use pending::{KnownRefs, Pending};
pub use prepare::Prepared;

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
        Self::generate_at(jiff::Timestamp::now())
    }

    /// A receipt made at `now` (its receipt time: the notification's
    /// `received_at`, whose UTC day names the key that seals it).
    pub fn generate_at(now: jiff::Timestamp) -> Result<Self, StoreError> {
        let secs = now.as_second().clamp(0, i64::from(u32::MAX));
        Ok(Self::from_parts(secs as u32, random_id_bytes::<6>()?))
    }

    /// The lowest receipt of second `secs`: receipts of one span of time
    /// are a range of keys.
    pub(crate) fn lowest_at(secs: i64) -> Self {
        Self::from_parts(secs.clamp(0, i64::from(u32::MAX)) as u32, [0; 6])
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
    /// Sent by a certificate in test mode: everything it causes goes to
    /// `[mail] test_recipient` only. Absent (false) in older stores.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
    /// When every child last reached a final state (delivered, failed or
    /// dismissed, withdrawn): retention counts from here. Absent while any
    /// child waits, and in records stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<jiff::Timestamp>,
    /// When retention purged the notification's details (only these
    /// identifiers and states remain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purged_at: Option<jiff::Timestamp>,
}

impl ChildState {
    /// Whether nothing more will happen to the child: delivered, failed
    /// (or dismissed by an admin), withdrawn.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Failed | Self::Withdrawn)
    }
}

impl NotificationRecord {
    /// Whether every child has reached a final state.
    pub fn is_settled(&self) -> bool {
        self.children.iter().all(|c| c.state.is_final())
    }

    /// When the notification settled: as kept, or for a record from before
    /// it was kept, the latest delivery (or its receipt).
    pub fn settled_since(&self) -> Option<jiff::Timestamp> {
        if !self.is_settled() {
            return None;
        }
        self.settled_at.or_else(|| {
            self.children
                .iter()
                .filter_map(|c| c.delivered_at)
                .chain(std::iter::once(self.received_at))
                .max()
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// New: stored, waiting for the flush behind the ticket.
    Accepted(NotificationRecord),
    /// The same force sent the same reference with the same content before.
    Duplicate(NotificationRecord),
    /// The same force sent the same reference with different content:
    /// the original's record (its receipt is what the audit refers to).
    Conflict(NotificationRecord),
}

/// The `refs` key of a force's reference. Test-mode references have their
/// own namespace (separator 1, not 0; force ids are `[a-z0-9_-]`), so a live
/// notification reusing a reference a test sent is new, not a re-send.
fn ref_key(force: &str, reference: &str, test: bool) -> Vec<u8> {
    let mut k = Vec::with_capacity(force.len() + reference.len() + 1);
    k.extend_from_slice(force.as_bytes());
    k.push(u8::from(test));
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

impl Store {
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
        let dk_bytes = self.open_personal(trees::DATA_KEYS, rk, sealed_dk)?;
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
