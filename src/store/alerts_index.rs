//! The outbox's index by time (`outbox_by_time`): one entry per message
//! under `queued_at` (big-endian nanoseconds, sign bit flipped) and its id,
//! whose value is the message's listing metadata ([`IndexEntry`]: kind,
//! state, school URN, deadline, whether it was met, delivery time), so
//! `kim alerts list` reads the newest messages, or those of the last days,
//! and filters them without opening the sealed records. Identifiers,
//! states and times only, as in the audit: no personal data. Written with
//! the outbox in the same transaction (`batch`); built once from the
//! outbox for a store made before it.
//! Also the keyed hash under which the outbox and the audit remember a
//! recipient's address (never the address itself).

use super::alert_record::{AlertKind, AlertRecord, AlertState};
use super::{trees, Store, StoreError};

/// `meta` key: the index has been built from the outbox.
const BUILT: &[u8] = b"outbox_by_time_built";

/// What the index holds about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub id: String,
    pub queued_at: jiff::Timestamp,
    pub kind: AlertKind,
    pub state: AlertState,
    pub urn: String,
    pub deadline: Option<jiff::Timestamp>,
    pub deadline_met: Option<bool>,
    pub delivered_at: Option<jiff::Timestamp>,
}

impl IndexEntry {
    /// The entry of record `a`.
    pub fn of(a: &AlertRecord) -> Self {
        Self {
            id: a.id.clone(),
            queued_at: a.queued_at,
            kind: a.kind,
            state: a.state,
            urn: a.urn.clone(),
            deadline: a.deadline,
            deadline_met: a.deadline_met,
            delivered_at: a.delivered_at,
        }
    }
}

const KINDS: [AlertKind; 9] = [
    AlertKind::Dsl,
    AlertKind::Deputy,
    AlertKind::Withdrawal,
    AlertKind::AdminEscalation,
    AlertKind::AdminFailure,
    AlertKind::AdminJournalDamaged,
    AlertKind::AdminReview,
    AlertKind::AdminSummary,
    AlertKind::AdminExpiry,
];
const STATES: [AlertState; 6] = [
    AlertState::Queued,
    AlertState::Sending,
    AlertState::RetryWait,
    AlertState::Delivered,
    AlertState::Failed,
    AlertState::Withdrawn,
];

fn secs(t: Option<jiff::Timestamp>) -> [u8; 8] {
    t.map_or(i64::MIN, |t| t.as_second()).to_be_bytes()
}

fn time_at(b: &[u8]) -> Option<jiff::Timestamp> {
    let n = i64::from_be_bytes(b.try_into().ok()?);
    (n != i64::MIN).then(|| jiff::Timestamp::from_second(n).ok())?
}

/// The index value of `a`: version, kind, state, met (0 unknown, 1 no,
/// 2 yes), deadline and delivery time (seconds, big-endian), the URN.
pub(crate) fn index_value(a: &AlertRecord) -> Vec<u8> {
    let pos = |k| KINDS.iter().position(|x| *x == k).unwrap_or(0) as u8;
    let st = STATES.iter().position(|x| *x == a.state).unwrap_or(0) as u8;
    let met = match a.deadline_met {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    };
    let mut v = vec![1, pos(a.kind), st, met];
    v.extend_from_slice(&secs(a.deadline));
    v.extend_from_slice(&secs(a.delivered_at));
    v.extend_from_slice(a.urn.as_bytes());
    v
}

fn entry(k: &[u8], v: &[u8]) -> Result<IndexEntry, StoreError> {
    let bad = || StoreError::Corrupt("outbox time index entry".into());
    if k.len() < 8 || v.len() < 20 || v[0] != 1 {
        return Err(bad());
    }
    let n = (u64::from_be_bytes(k[..8].try_into().map_err(|_| bad())?) ^ (1 << 63)) as i64;
    Ok(IndexEntry {
        id: String::from_utf8_lossy(&k[8..]).into_owned(),
        queued_at: jiff::Timestamp::from_nanosecond(n as i128).map_err(|_| bad())?,
        kind: *KINDS.get(v[1] as usize).ok_or_else(bad)?,
        state: *STATES.get(v[2] as usize).ok_or_else(bad)?,
        deadline_met: match v[3] {
            1 => Some(false),
            2 => Some(true),
            _ => None,
        },
        deadline: time_at(&v[4..12]),
        delivered_at: time_at(&v[12..20]),
        urn: String::from_utf8_lossy(&v[20..]).into_owned(),
    })
}

/// The index key of a message queued at `at` with id `id`.
pub(crate) fn time_key(at: jiff::Timestamp, id: &str) -> Vec<u8> {
    let n = at.as_nanosecond() as i64;
    let mut k = ((n as u64) ^ (1 << 63)).to_be_bytes().to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

fn time_prefix(at: jiff::Timestamp) -> [u8; 8] {
    let n = at.as_nanosecond() as i64;
    ((n as u64) ^ (1 << 63)).to_be_bytes()
}

impl Store {
    /// Builds the time index from the outbox if this store has none yet
    /// (a store written by an older kim). Idempotent.
    pub(crate) fn build_alert_index(&self) -> Result<(), StoreError> {
        if self.t.meta.get(BUILT)?.is_some() {
            return Ok(());
        }
        let mut n = 0u64;
        for kv in self.t.outbox.iter() {
            let (k, v) = kv?;
            let a: AlertRecord = self.open_json(trees::OUTBOX, &k, &v)?;
            self.t
                .outbox_by_time
                .insert(time_key(a.queued_at, &a.id), index_value(&a))?;
            n += 1;
        }
        self.t.meta.insert(BUILT, &b"1"[..])?;
        if n > 0 {
            tracing::info!(alerts = n, "built the outbox's time index");
        }
        Ok(())
    }

    /// The index's entries newest first (by the time each message was
    /// queued), back to `since` if given: no record is opened.
    pub fn alert_index_newest_first(
        &self,
        since: Option<jiff::Timestamp>,
    ) -> impl Iterator<Item = Result<IndexEntry, StoreError>> + '_ {
        let lo = since.map(time_prefix).unwrap_or([0; 8]);
        self.t.outbox_by_time.range(lo.to_vec()..).rev().map(|kv| {
            let (k, v) = kv?;
            entry(&k, &v)
        })
    }

    /// Outbox records newest first, back to `since`, of those index
    /// entries `keep` selects (only those are opened).
    pub fn alerts_newest_first<'a>(
        &'a self,
        since: Option<jiff::Timestamp>,
        mut keep: impl FnMut(&IndexEntry) -> bool + 'a,
    ) -> impl Iterator<Item = Result<AlertRecord, StoreError>> + 'a {
        self.alert_index_newest_first(since)
            .filter_map(move |e| match e {
                Ok(e) if keep(&e) => self.alert(&e.id).transpose(),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
    }

    /// For benchmarks only (`benches/alerts.rs`): writes outbox records as
    /// they are, with their index keys and without audit events — never
    /// for a live store, whose changes go through `batch` with their events.
    #[doc(hidden)]
    pub fn bench_put_alerts(&self, alerts: &[AlertRecord]) -> Result<(), StoreError> {
        let mut outbox = sled::Batch::default();
        let mut index = sled::Batch::default();
        let mut active = sled::Batch::default();
        for a in alerts {
            let k = a.id.as_bytes();
            outbox.insert(k, self.seal_json(trees::OUTBOX, k, a)?);
            index.insert(time_key(a.queued_at, &a.id), index_value(a));
            if a.state.is_active() {
                active.insert(k, &[][..]);
            }
        }
        self.t.outbox.apply_batch(outbox)?;
        self.t.outbox_by_time.apply_batch(index)?;
        self.t.outbox_active.apply_batch(active)?;
        Ok(())
    }

    /// The keyed hash of a recipient's address (HMAC with the store's index
    /// key, first 8 bytes in hex): the audit and the outbox compare
    /// addresses by it without holding them. Case-insensitive.
    pub fn address_hash(&self, address: &str) -> String {
        let a = address.trim().to_ascii_lowercase();
        let h = self
            .keys
            .blind_index("recipient address v1", &[a.as_bytes()]);
        h[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}
