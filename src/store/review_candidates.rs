//! The candidates kept for each review item (issue 12 item 3): what the
//! matching stage weighed and the near misses it found, sealed under the
//! review item's key (`receipt \0 index`), written before the item is
//! queued and removed when an admin decides. The store does not know their
//! shape (`crate::matching::nearmiss` does): it seals and opens JSON.

use super::review::review_key;
use super::{trees, Store, StoreError};

impl Store {
    /// Keeps `value` (sealed) as the candidates of child `index` of `receipt`.
    pub fn put_review_candidates<T: serde::Serialize>(
        &self,
        receipt: &str,
        index: u32,
        value: &T,
    ) -> Result<(), StoreError> {
        let key = review_key(receipt, index);
        let sealed = self.seal_json_personal(trees::REVIEW_CANDIDATES, &key, value)?;
        self.t.review_candidates.insert(key, sealed)?;
        Ok(())
    }

    /// The candidates kept for child `index` of `receipt`, if any.
    pub fn review_candidates<T: serde::de::DeserializeOwned>(
        &self,
        receipt: &str,
        index: u32,
    ) -> Result<Option<T>, StoreError> {
        let key = review_key(receipt, index);
        match self.t.review_candidates.get(&key)? {
            Some(v) => self
                .open_json_personal(trees::REVIEW_CANDIDATES, &key, &v)
                .map(Some),
            None => Ok(None),
        }
    }

    /// Whether child `index` of `receipt` is waiting for review.
    pub fn review_waiting(&self, receipt: &str, index: u32) -> Result<bool, StoreError> {
        Ok(self.t.review.contains_key(review_key(receipt, index))?)
    }

    pub(super) fn drop_review_candidates(&self, key: &[u8]) -> Result<(), StoreError> {
        self.t.review_candidates.remove(key)?;
        Ok(())
    }
}
