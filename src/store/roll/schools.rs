//! The school directory in the store: sealed rows keyed by URN, replaced
//! whole by an import (refused while the roll names a school it drops).

use super::*;

impl Store {
    /// The school directory, unsealed, in URN order.
    pub fn schools(&self) -> Result<Vec<School>, StoreError> {
        self.open_all(&self.t.schools, trees::SCHOOLS, |_| "school record".into())
    }

    pub fn school(&self, urn: &str) -> Result<Option<School>, StoreError> {
        let Some(v) = self.t.schools.get(urn.as_bytes())? else {
            return Ok(None);
        };
        let plain = self
            .keys
            .seal_key()
            .open(trees::SCHOOLS, urn.as_bytes(), &v)?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|_| StoreError::Corrupt("school record".into()))
    }

    pub fn school_urns(&self) -> Result<HashSet<String>, StoreError> {
        self.t
            .schools
            .iter()
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?).into_owned()))
            .collect()
    }

    /// URNs that pupils on the current roll attend.
    pub(super) fn roll_urns(&self) -> Result<HashSet<String>, StoreError> {
        Ok(self
            .roll_stats()?
            .per_school
            .into_iter()
            .map(|(u, _)| u)
            .collect())
    }

    /// Replaces the school directory in one transaction. Refused if the
    /// current roll has pupils at a school the new directory drops.
    pub fn replace_schools(
        &self,
        schools: &[School],
    ) -> Result<Result<(), Vec<String>>, StoreError> {
        let new: HashSet<&str> = schools.iter().map(|s| s.urn.as_str()).collect();
        let mut orphaned: Vec<String> = self
            .roll_urns()?
            .into_iter()
            .filter(|u| !new.contains(u.as_str()))
            .collect();
        if !orphaned.is_empty() {
            orphaned.sort();
            return Ok(Err(orphaned));
        }
        let mut batch = sled::Batch::default();
        for k in self.t.schools.iter().keys() {
            batch.remove(k?);
        }
        for s in schools {
            let plain = zeroize::Zeroizing::new(
                serde_json::to_vec(s).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
            let sealed = self
                .keys
                .seal_key()
                .seal(trees::SCHOOLS, s.urn.as_bytes(), &plain)?;
            batch.insert(s.urn.as_bytes(), sealed);
        }
        let _w = self.lock_writer();
        self.t.schools.apply_batch(batch)?;
        self.flush_now()?;
        Ok(Ok(()))
    }
}
