//! Master key rotation (`kim keys rotate`): everything sealed or indexed
//! under the old master key is copied into a fresh store under the new one
//! — values re-sealed (their AAD, tree and record key, unchanged), blind
//! indexes and notification fingerprints recomputed, each notification's
//! day keys re-wrapped (what they seal is untouched) — and the rest
//! (references, work items, audit chain, checkpoints) copied as they are. The old
//! store is not modified, so a crash at any point loses nothing; the caller
//! swaps the folders afterwards.

use super::notifications::{pack_sealed, unpack_sealed};
use super::{trees, Store, StoreError, AUDIT_HEAD};
use crate::audit::{EventKind, Refs};

/// What a rotation copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rotated {
    pub notifications: u64,
    pub pupils: u64,
    pub schools: u64,
    pub audit_events: u64,
    pub old_key_id: u32,
    pub new_key_id: u32,
}

impl Store {
    /// Copies this store into `new` (empty, opened with the new master key)
    /// and records `key_rotated` there. `actor` is the admin who ran it.
    pub fn rotate_into(&self, new: &Store, actor: &str) -> Result<Rotated, StoreError> {
        let _w = self.lock_writer();
        let old_seal = self.keys.seal_key();
        let new_seal = new.keys.seal_key();
        let mut out = Rotated {
            old_key_id: old_seal.id(),
            new_key_id: new_seal.id(),
            ..Rotated::default()
        };
        if out.old_key_id == out.new_key_id {
            return Err(StoreError::Corrupt(
                "the new master key is the key in use".into(),
            ));
        }
        let reseal =
            |tree: &'static str, from: &sled::Tree, to: &sled::Tree| -> Result<u64, StoreError> {
                let mut n = 0;
                for kv in from.iter() {
                    let (k, v) = kv?;
                    let plain = zeroize::Zeroizing::new(old_seal.open(tree, &k, &v)?);
                    to.insert(&k, new_seal.seal(tree, &k, &plain)?)?;
                    n += 1;
                }
                Ok(n)
            };
        let copy = |from: &sled::Tree, to: &sled::Tree| -> Result<u64, StoreError> {
            let mut n = 0;
            for kv in from.iter() {
                let (k, v) = kv?;
                to.insert(k, v)?;
                n += 1;
            }
            Ok(n)
        };
        out.schools = reseal(trees::SCHOOLS, &self.t.schools, &new.t.schools)?;
        reseal(trees::REVIEW, &self.t.review, &new.t.review)?;
        // Children's details are sealed by day keys, which are re-wrapped
        // (the values stay as they are); values from before the day keys
        // move under them now.
        self.days.rewrap_into(&new.days)?;
        let personal =
            |tree: &'static str, from: &sled::Tree, to: &sled::Tree| -> Result<(), StoreError> {
                for kv in from.iter() {
                    let (k, v) = kv?;
                    if self.is_legacy(&v)? {
                        let plain = self.open_personal(tree, &k, &v)?;
                        to.insert(&k, new.seal_personal(tree, &k, &plain)?)?;
                    } else {
                        to.insert(k, v)?;
                    }
                }
                Ok(())
            };
        personal(trees::DISMISSALS, &self.t.dismissals, &new.t.dismissals)?;
        personal(trees::WITHDRAWALS, &self.t.withdrawals, &new.t.withdrawals)?;
        personal(
            trees::REVIEW_CANDIDATES,
            &self.t.review_candidates,
            &new.t.review_candidates,
        )?;
        reseal(trees::OUTBOX, &self.t.outbox, &new.t.outbox)?;
        for (from, to) in [
            (&self.t.refs, &new.t.refs),
            (&self.t.work_match, &new.t.work_match),
            (&self.t.outbox_active, &new.t.outbox_active),
            (&self.t.checkpoints, &new.t.checkpoints),
            (&self.t.outbox_by_time, &new.t.outbox_by_time),
        ] {
            copy(from, to)?;
        }
        out.audit_events = copy(&self.t.audit, &new.t.audit)?;
        self.copy_archive_into(new)?;
        if let Some(head) = self.t.meta.get(AUDIT_HEAD)? {
            new.t.meta.insert(AUDIT_HEAD, head)?;
        }

        // Notifications: re-wrap the data key, recompute the fingerprint
        // (a keyed HMAC) so that a re-send is still recognised.
        for kv in self.t.notifications.iter() {
            let (k, v) = kv?;
            let receipt = String::from_utf8_lossy(&k).into_owned();
            let mut rec: super::NotificationRecord =
                self.open_json(trees::NOTIFICATIONS, &k, &v)?;
            if let Some(sealed) = self.t.payloads.get(&k)? {
                let (sealed_dk, payload) = unpack_sealed(&sealed)?;
                let n = self
                    .load_notification(&receipt)?
                    .ok_or_else(|| StoreError::Corrupt(format!("payload of {receipt}")))?;
                rec.fingerprint = new.fingerprint(&rec.force, &n.canonical_bytes());
                if self.is_legacy(sealed_dk)? {
                    let dk = self.open_personal(trees::DATA_KEYS, &k, sealed_dk)?;
                    let rewrapped = new.seal_personal(trees::DATA_KEYS, &k, &dk)?;
                    new.t
                        .payloads
                        .insert(&k, pack_sealed(&rewrapped, payload))?;
                } else {
                    new.t.payloads.insert(&k, sealed)?;
                }
            }
            new.t
                .notifications
                .insert(&k, new.seal_json(trees::NOTIFICATIONS, &k, &rec)?)?;
            out.notifications += 1;
        }

        // The roll: re-imported under the new key (new blind indexes).
        let stats = new.import_roll_stream(|w| self.for_each_pupil(|p| w.add(&p)))?;
        out.pupils = stats.pupils;
        drop(_w);

        let mut detail = serde_json::Map::new();
        detail.insert("old_key".into(), format!("{:08x}", out.old_key_id).into());
        detail.insert("new_key".into(), format!("{:08x}", out.new_key_id).into());
        detail.insert("notifications".into(), out.notifications.into());
        detail.insert("pupils".into(), out.pupils.into());
        let _ = new.audit_append(EventKind::KeyRotated, actor, Refs::default(), detail)?;
        new.flush_now()?;
        Ok(out)
    }
}

#[cfg(test)]
#[path = "rotate_tests.rs"]
mod tests;
