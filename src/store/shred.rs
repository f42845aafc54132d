//! Sealing a child's details under the key of their notification's day
//! (`super::kek`), so that destroying the day's key shreds them: the data
//! key of every notification, review candidates, dismissal notes and
//! withdrawal reasons. Values sealed before the day keys existed (format 1)
//! name the master-derived key and still open with it until they are
//! re-sealed (`super::retention::migrate_to_day_keys`).

use std::sync::Arc;

use jiff::civil::Date;
use zeroize::Zeroizing;

use super::crypto::{sealed_key_id, SealKey};
use super::kek::day_of_second;
use super::{ReceiptId, Store, StoreError};

/// The receipt a record key names: the key itself, or what comes before its
/// first NUL (`receipt \0 index`).
pub(crate) fn receipt_of_key(key: &[u8]) -> &[u8] {
    key.split(|&b| b == 0).next().unwrap_or(key)
}

/// The UTC day a receipt was made on (receipts begin with their second).
pub(crate) fn receipt_day(receipt: &[u8]) -> Result<Date, StoreError> {
    let s = std::str::from_utf8(receipt)
        .ok()
        .and_then(ReceiptId::parse)
        .ok_or_else(|| StoreError::Corrupt("a record key that is not a receipt".into()))?;
    Ok(day_of_second(i64::from(s.second())))
}

impl Store {
    /// The key of the day of `receipt`, made if `create`.
    fn day_key(&self, receipt: &[u8], create: bool) -> Result<Option<Arc<SealKey>>, StoreError> {
        Ok(self.days.get(receipt_day(receipt)?, create)?)
    }

    /// Seals `plain` (a child's details) for record `key` of `tree` under
    /// the day key of the receipt `key` names.
    pub(crate) fn seal_personal(
        &self,
        tree: &str,
        key: &[u8],
        plain: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let k = self
            .day_key(receipt_of_key(key), true)?
            .ok_or_else(|| StoreError::Corrupt("a day key was not made".into()))?;
        Ok(k.seal(tree, key, plain)?)
    }

    /// Opens a value sealed by [`seal_personal`](Self::seal_personal), or
    /// one of format 1 sealed by the master-derived key.
    /// [`StoreError::Shredded`] when the day's key is destroyed.
    pub(crate) fn open_personal(
        &self,
        tree: &str,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        if self.is_legacy(sealed)? {
            return Ok(self.keys.seal_key().open(tree, key, sealed)?);
        }
        let receipt = receipt_of_key(key);
        match self.day_key(receipt, false)? {
            Some(k) => Ok(k.open(tree, key, sealed)?),
            None => Err(StoreError::Shredded(
                String::from_utf8_lossy(receipt).into_owned(),
            )),
        }
    }

    /// Whether a sealed value was sealed by the master-derived key (before
    /// day keys: format 1).
    pub(crate) fn is_legacy(&self, sealed: &[u8]) -> Result<bool, StoreError> {
        Ok(sealed_key_id(sealed)? == self.keys.seal_key().id())
    }

    /// As [`seal_personal`](Self::seal_personal), of a JSON value.
    pub(crate) fn seal_json_personal<T: serde::Serialize>(
        &self,
        tree: &str,
        key: &[u8],
        value: &T,
    ) -> Result<Vec<u8>, StoreError> {
        let plain = Zeroizing::new(
            serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        );
        self.seal_personal(tree, key, &plain)
    }

    /// As [`open_personal`](Self::open_personal), of a JSON value.
    pub(crate) fn open_json_personal<T: serde::de::DeserializeOwned>(
        &self,
        tree: &str,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<T, StoreError> {
        let plain = self.open_personal(tree, key, sealed)?;
        serde_json::from_slice(&plain)
            .map_err(|e| StoreError::Corrupt(format!("{tree} record: {e}")))
    }
}
