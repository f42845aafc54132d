//! The outbox's index by time (`outbox_by_time`): one empty value per
//! message under `queued_at` (big-endian nanoseconds, sign bit flipped) and
//! its id, so `kim alerts list` reads the newest messages, or those of the
//! last days, without opening every record. Keys hold a time and an alert
//! id: no personal data. Written with the outbox in the same transaction
//! (`batch`); built once from the outbox for a store made before it.
//! Also the keyed hash under which the outbox and the audit remember a
//! recipient's address (never the address itself).

use super::outbox::AlertRecord;
use super::{trees, Store, StoreError};

/// `meta` key: the index has been built from the outbox.
const BUILT: &[u8] = b"outbox_by_time_built";

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
                .insert(time_key(a.queued_at, &a.id), &[][..])?;
            n += 1;
        }
        self.t.meta.insert(BUILT, &b"1"[..])?;
        if n > 0 {
            tracing::info!(alerts = n, "built the outbox's time index");
        }
        Ok(())
    }

    /// Outbox records newest first (by the time they were queued), back to
    /// `since` if given. Records are opened one by one as the caller reads.
    pub fn alerts_newest_first(
        &self,
        since: Option<jiff::Timestamp>,
    ) -> impl Iterator<Item = Result<AlertRecord, StoreError>> + '_ {
        let lo = since.map(time_prefix).unwrap_or([0; 8]);
        self.t
            .outbox_by_time
            .range(lo.to_vec()..)
            .rev()
            .filter_map(move |kv| {
                let k = match kv {
                    Ok((k, _)) => k,
                    Err(e) => return Some(Err(e.into())),
                };
                let id = String::from_utf8_lossy(k.get(8..).unwrap_or_default()).into_owned();
                self.alert(&id).transpose()
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
            index.insert(time_key(a.queued_at, &a.id), &[][..]);
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
