//! What the accept path knows before sled does: the pending set of
//! notifications durable in the accept journal but not yet applied, and the
//! hashed set of every known reference (a miss is certain, a hit confirmed).

use super::*;

/// Notifications in the accept journal, durable but not yet applied to the
/// trees (see `super::journal`): re-sends and status answers see them here.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub(super) by_ref: HashMap<Vec<u8>, NotificationRecord>,
    pub(super) by_receipt: HashMap<String, Vec<u8>>,
    /// Receipts journaled in the last [`RECENT_SECS`] seconds, oldest
    /// first. A receipt starts with its second, so only these could be
    /// made again (48 random bits apart): `admit` refuses such a twin
    /// before its 202 instead of letting it overwrite the first.
    /// (second, hash of the receipt): a hash collision only costs a 503.
    pub(super) recent: std::collections::VecDeque<(i64, u64)>,
    pub(super) recent_set: std::collections::HashSet<u64>,
}

pub(super) const RECENT_SECS: i64 = 10;

/// A hash of every reference the store holds or the journal holds, so the
/// accept path tells a new notification from a re-send without reading
/// sled (whose reads wait while the applier's transaction runs). Built on
/// first use from the `refs` tree; 64-bit hashes under a per-process key:
/// a hit is confirmed in sled, a miss is certain.
#[derive(Debug, Default)]
pub(crate) struct KnownRefs {
    pub(super) hasher: std::hash::RandomState,
    pub(super) set: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<u64>>>,
}

impl KnownRefs {
    pub(super) fn hash(&self, ref_key: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(ref_key)
    }
}

impl Store {
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
    pub(super) fn known_refs(
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

    pub(super) fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a receipt in the journal, not yet in the trees, satisfies `f`.
    pub(crate) fn any_pending_receipt(&self, f: impl Fn(&str) -> bool) -> bool {
        self.pending().by_receipt.keys().any(|r| f(r))
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
                    AcceptOutcome::Conflict(rec)
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
}
