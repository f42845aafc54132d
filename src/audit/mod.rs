//! The audit event and its SHA-256 hash chain. Events hold identifiers,
//! states and codes only — never a child's name, date of birth or postcode.
//! Appending happens inside store transactions (see `store`).

mod actor;
pub mod checkpoint;
pub mod export;
pub mod raw;

pub use actor::Actor;

use ring::digest;
use serde::{Deserialize, Serialize};

/// What happened. The list grows with kim; names are stable once written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Received,
    Matched,
    NeedsReview,
    Reviewed,
    AlertQueued,
    DeliveryAttempt,
    Delivered,
    Failed,
    Escalated,
    DeadlineMissed,
    Withdrawn,
    Purged,
    AdminAccess,
    ConfigLoaded,
    KeyRotated,
    Started,
    Stopped,
    /// The accept journal held frames that no longer open (salvaged).
    JournalDamaged,
    /// An admin put a failed alert back in the queue (`kim alerts retry`).
    Requeued,
    /// A waiting alert went to the school's new address (directory changed).
    Redirected,
    /// An admin had a waiting alert sent now (`kim alerts flush`).
    Flushed,
    /// A config reload (SIGHUP, or a CRL file that changed) was refused:
    /// the old config stays in force (details: the file and why).
    ConfigReloadFailed,
    /// Retention destroyed the key of a day whose every notification was
    /// purged (details: the day): they are shredded.
    DayKeyDestroyed,
    /// The store was migrated to a newer format (details: from, to).
    StoreMigrated,
    /// `kim backup` copied the store (details: files, bytes, audit sequence).
    Backup,
    /// `kim restore` put a backup in place (details: the backup's sequence
    /// and time, and how far the checkpoint file reached then).
    Restored,
    /// The police re-sent a notification they had sent before, same
    /// reference and content (answered 200 with the original receipt;
    /// refs: the original's receipt; details: the police reference).
    Resent,
    /// The police re-sent a reference with different content (answered
    /// 409; refs: the original's receipt; details: the police reference).
    ReferenceConflict,
}

/// An event before it joins the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school_urn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<String>,
}

/// One link of the chain, as stored (JSON) in the `audit` tree under its
/// big-endian sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: u64,
    pub time: jiff::Timestamp,
    pub kind: EventKind,
    /// `force:ID`, `admin:USER` or `system`, as [`Actor`] renders it.
    pub actor: String,
    #[serde(flatten)]
    pub refs: Refs,
    /// Non-personal outcome details (states, reason codes, SMTP codes).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub detail: serde_json::Map<String, serde_json::Value>,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of the empty chain's head.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chain's head: the last sequence number and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

impl Default for Head {
    fn default() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

/// A SHA-256 digest's hex digits, on the stack.
pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    // const-hex: SIMD where the CPU has it (a report hashes millions).
    let mut out = [0u8; 64];
    const_hex::encode_to_slice(bytes, &mut out).expect("64 digits for 32 bytes");
    out
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const_hex::encode(bytes)
}

impl AuditEvent {
    /// Builds the next event after `head`, computing its hash.
    pub fn next(
        head: &Head,
        time: jiff::Timestamp,
        kind: EventKind,
        actor: String,
        refs: Refs,
        detail: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        let mut ev = Self {
            seq: head.seq + 1,
            time,
            kind,
            actor,
            refs,
            detail,
            prev_hash: head.hash.clone(),
            hash: String::new(),
        };
        ev.hash = ev.compute_hash();
        ev
    }

    /// SHA-256 over the event's JSON with an empty `hash` field; the JSON
    /// includes `prev_hash`, which links the chain.
    pub fn compute_hash(&self) -> String {
        let mut copy = self.clone();
        copy.hash = String::new();
        let bytes = serde_json::to_vec(&copy).expect("audit events serialize");
        hex(digest::digest(&digest::SHA256, &bytes).as_ref())
    }

    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

/// Why a chain does not verify: the first bad sequence number and the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit event {seq}: {why}")]
pub struct ChainError {
    pub seq: u64,
    pub why: String,
}

/// Checks that `events` (in order, starting after `start`) form an unbroken
/// chain. Returns the new head.
pub fn verify_chain<'a>(
    start: &Head,
    events: impl IntoIterator<Item = &'a AuditEvent>,
) -> Result<Head, ChainError> {
    let mut head = start.clone();
    for ev in events {
        let expected = head.seq + 1;
        if ev.seq != expected {
            return Err(ChainError {
                seq: expected,
                why: format!("missing or out of order (found sequence {})", ev.seq),
            });
        }
        if ev.prev_hash != head.hash {
            return Err(ChainError {
                seq: ev.seq,
                why: "prev_hash does not match the previous event".into(),
            });
        }
        if ev.compute_hash() != ev.hash {
            return Err(ChainError {
                seq: ev.seq,
                why: "content does not match its hash (altered)".into(),
            });
        }
        head = ev.head();
    }
    Ok(head)
}

#[cfg(test)]
mod tests;
