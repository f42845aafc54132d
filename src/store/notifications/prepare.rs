//! Preparing a notification for the accept path, off the writer lock: the
//! receipt id, the data key, the sealed payload and the keyed fingerprint
//! that tells a re-send from a conflict; and its accept-journal form.

use super::*;

/// A notification sealed and ready to commit: everything that needs CPU
/// (receipt id, data key, sealing, fingerprint) is done before the writer
/// lock, on the caller's thread.
pub struct Prepared {
    pub(super) force: String,
    pub(super) police_reference: String,
    pub(super) ref_key: Vec<u8>,
    pub(super) fingerprint: String,
    pub(super) receipt: ReceiptId,
    /// The sealed data key and the payload it seals, in one value (see
    /// `pack_sealed`).
    pub(super) sealed: Vec<u8>,
    pub(super) record: NotificationRecord,
    /// The record as the journal keeps it (inside its sealed frame).
    pub(super) record_bytes: Vec<u8>,
    /// The record as the `notifications` tree keeps it.
    pub(super) sealed_record: Vec<u8>,
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
            ref_key: ref_key(&record.force, &record.police_reference, record.test),
            fingerprint: record.fingerprint.clone(),
            receipt: record.receipt_id.clone(),
            sealed: e.sealed,
            record,
            record_bytes: e.record,
        })
    }
}

impl Prepared {
    /// The receipt this notification will have.
    pub fn receipt(&self) -> &str {
        self.receipt.as_str()
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
        self.prepare_as(force, false, n, now)
    }

    /// As [`prepare`](Self::prepare), from a certificate in test mode if
    /// `test` (the record says so; its references are apart from live ones).
    pub fn prepare_as(
        &self,
        force: &str,
        test: bool,
        n: &Notification,
        now: jiff::Timestamp,
    ) -> Result<Prepared, StoreError> {
        let canonical = Zeroizing::new(n.canonical_bytes());
        let fingerprint = self.fingerprint(force, &canonical);
        let receipt = ReceiptId::generate_at(now)?;
        let rk = receipt.as_str().as_bytes();
        let dk = DataKey::generate()?;
        // Under the key of the receipt's day: retention shreds by day.
        let sealed_dk = self.seal_personal(trees::DATA_KEYS, rk, dk.bytes())?;
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
            test,
            settled_at: None,
            purged_at: None,
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
            ref_key: ref_key(force, &n.police_reference, test),
            fingerprint,
            receipt,
            sealed: pack_sealed(&sealed_dk, &payload),
            record,
            record_bytes,
        })
    }
}
