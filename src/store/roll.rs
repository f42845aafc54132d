//! The school directory and the roll of children, sealed, with HMAC blind
//! indexes for candidate lookup. An import replaces the whole roll
//! atomically: it is written under a new generation and a single pointer in
//! `meta` flips to it, so a crash mid-import leaves the old roll in force.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{trees, Store, StoreError};
use crate::import::{Pupil, School};
use crate::matching::normalise::{given_keys, normalise};

const ROLL_GENERATION: &[u8] = b"roll_generation";
const ROLL_COUNT: &[u8] = b"roll_count";
/// Blind-index domains: (normalised family name, date of birth) and
/// (normalised given or known-as name, date of birth).
const IDX_FAMILY: &str = "roll family+dob v1";
const IDX_GIVEN: &str = "roll given+dob v1";
/// Writes per sled batch during an import.
const BATCH: usize = 20_000;

/// Counts for `kim roll stats` (no personal data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollStats {
    pub generation: u32,
    pub pupils: u64,
    pub schools: u64,
    pub per_school: Vec<(String, u64)>,
}

fn gen_prefix(generation: u32) -> [u8; 4] {
    generation.to_be_bytes()
}

impl Store {
    /// The school directory, unsealed, in URN order.
    pub fn schools(&self) -> Result<Vec<School>, StoreError> {
        self.t
            .schools
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                let plain = self.keys.seal_key().open(trees::SCHOOLS, &k, &v)?;
                serde_json::from_slice(&plain)
                    .map_err(|_| StoreError::Corrupt("school record".into()))
            })
            .collect()
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
    fn roll_urns(&self) -> Result<HashSet<String>, StoreError> {
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

    fn roll_generation(&self) -> Result<u32, StoreError> {
        Ok(self
            .t
            .meta
            .get(ROLL_GENERATION)?
            .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
            .map(u32::from_be_bytes)
            .unwrap_or(0))
    }

    /// The record key of a pupil: a blind index of the LA's pupil id, so
    /// tree keys carry no identifier in the clear.
    fn pupil_key(&self, generation: u32, pupil_id: &str) -> Vec<u8> {
        let mut k = gen_prefix(generation).to_vec();
        k.extend_from_slice(
            &self
                .keys
                .blind_index("roll pupil v1", &[pupil_id.as_bytes()])[..16],
        );
        k
    }

    fn index_key(
        &self,
        generation: u32,
        domain: &str,
        name_key: &str,
        dob: jiff::civil::Date,
    ) -> Vec<u8> {
        let mut k = gen_prefix(generation).to_vec();
        let dob = dob.to_string();
        k.extend_from_slice(
            &self
                .keys
                .blind_index(domain, &[name_key.as_bytes(), dob.as_bytes()])[..16],
        );
        k
    }

    /// Replaces the roll: writes the new generation, flushes, flips the
    /// pointer, then removes the old generation.
    pub fn replace_roll(&self, pupils: &[Pupil]) -> Result<u64, StoreError> {
        let old = self.roll_generation()?;
        let new = old.wrapping_add(1);
        // Anything left under `new` from an import that crashed earlier.
        self.remove_generation(new)?;
        let mut batch_roll = sled::Batch::default();
        let mut batch_idx = sled::Batch::default();
        let mut pending = 0usize;
        for p in pupils {
            let pk = self.pupil_key(new, &p.pupil_id);
            let plain = zeroize::Zeroizing::new(
                serde_json::to_vec(p).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
            let sealed = self.keys.seal_key().seal(trees::ROLL, &pk, &plain)?;
            batch_roll.insert(pk.clone(), sealed);
            let suffix = &pk[4..];
            let fam = normalise(&p.family_name);
            let mut keys = vec![self.index_key(new, IDX_FAMILY, &fam, p.date_of_birth)];
            for g in given_keys(&p.given_name, &p.other_names) {
                keys.push(self.index_key(new, IDX_GIVEN, &g, p.date_of_birth));
            }
            // Swapped name order is handled at lookup (each police name is
            // probed in both domains), so one entry per name suffices here.
            for ik in keys {
                let mut full = ik;
                full.extend_from_slice(suffix);
                batch_idx.insert(full, &[][..]);
            }
            pending += 1;
            if pending >= BATCH {
                self.t.roll.apply_batch(std::mem::take(&mut batch_roll))?;
                self.t
                    .roll_idx
                    .apply_batch(std::mem::take(&mut batch_idx))?;
                pending = 0;
            }
        }
        self.t.roll.apply_batch(batch_roll)?;
        self.t.roll_idx.apply_batch(batch_idx)?;
        let mut counts: std::collections::BTreeMap<&str, u64> = Default::default();
        for p in pupils {
            *counts.entry(p.school_urn.as_str()).or_default() += 1;
        }
        let per_school: Vec<(String, u64)> =
            counts.into_iter().map(|(u, n)| (u.to_owned(), n)).collect();
        let stats = RollStats {
            generation: new,
            pupils: pupils.len() as u64,
            schools: per_school.len() as u64,
            per_school,
        };
        self.flush_now()?;
        {
            let _w = self.lock_writer();
            let mut b = sled::Batch::default();
            b.insert(ROLL_GENERATION, &gen_prefix(new)[..]);
            b.insert(
                ROLL_COUNT,
                serde_json::to_vec(&stats).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
            self.t.meta.apply_batch(b)?;
            self.flush_now()?;
        }
        self.remove_generation(old)?;
        self.flush_now()?;
        Ok(pupils.len() as u64)
    }

    fn remove_generation(&self, generation: u32) -> Result<(), StoreError> {
        let prefix = gen_prefix(generation);
        for tree in [&self.t.roll, &self.t.roll_idx] {
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for k in tree.scan_prefix(prefix).keys() {
                batch.remove(k?);
                n += 1;
                if n >= BATCH {
                    tree.apply_batch(std::mem::take(&mut batch))?;
                    n = 0;
                }
            }
            tree.apply_batch(batch)?;
        }
        Ok(())
    }

    pub fn roll_stats(&self) -> Result<RollStats, StoreError> {
        match self.t.meta.get(ROLL_COUNT)? {
            Some(v) => {
                serde_json::from_slice(&v).map_err(|_| StoreError::Corrupt("roll stats".into()))
            }
            None => Ok(RollStats {
                generation: 0,
                pupils: 0,
                schools: 0,
                per_school: Vec::new(),
            }),
        }
    }

    /// Pupils on the current roll whose (family name, date of birth) or
    /// (given or known-as name, date of birth) blind index matches. Never a
    /// scan: each lookup is a prefix read of the index tree.
    pub fn roll_candidates(
        &self,
        given_names: &[String],
        family_name: &str,
        dob: jiff::civil::Date,
    ) -> Result<Vec<Pupil>, StoreError> {
        let generation = self.roll_generation()?;
        let mut prefixes =
            vec![self.index_key(generation, IDX_FAMILY, &normalise(family_name), dob)];
        // Swapped order: the police's family name as a given name, and the
        // other way round.
        prefixes.push(self.index_key(generation, IDX_GIVEN, &normalise(family_name), dob));
        for g in given_names {
            let g = normalise(g);
            if g.is_empty() {
                continue;
            }
            prefixes.push(self.index_key(generation, IDX_GIVEN, &g, dob));
            prefixes.push(self.index_key(generation, IDX_FAMILY, &g, dob));
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for prefix in prefixes {
            for k in self.t.roll_idx.scan_prefix(&prefix).keys() {
                let k = k?;
                let mut pk = gen_prefix(generation).to_vec();
                pk.extend_from_slice(&k[prefix.len()..]);
                if !seen.insert(pk.clone()) {
                    continue;
                }
                if let Some(sealed) = self.t.roll.get(&pk)? {
                    let plain = self.keys.seal_key().open(trees::ROLL, &pk, &sealed)?;
                    out.push(
                        serde_json::from_slice(&plain)
                            .map_err(|_| StoreError::Corrupt("roll record".into()))?,
                    );
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::crypto::MasterKey;

    fn school(urn: &str) -> School {
        School {
            urn: urn.into(),
            name: format!("School {urn}"),
            dsl_name: "Ms Dee Ess-Ell".into(),
            dsl_email: "dsl@school.example".into(),
            deputy_email: None,
            phone: None,
        }
    }

    fn pupil(id: &str, given: &str, family: &str, other: &[&str], dob: &str, urn: &str) -> Pupil {
        Pupil {
            pupil_id: id.into(),
            given_name: given.into(),
            family_name: family.into(),
            other_names: other.iter().map(|s| s.to_string()).collect(),
            date_of_birth: dob.parse().unwrap(),
            postcode: Some("QX9 7ZZ".into()),
            school_urn: urn.into(),
        }
    }

    fn store(dir: &std::path::Path) -> Store {
        Store::open(&dir.join("store"), &MasterKey::from_bytes([3; 32])).unwrap()
    }

    fn ids(v: &[Pupil]) -> Vec<&str> {
        let mut ids: Vec<&str> = v.iter().map(|p| p.pupil_id.as_str()).collect();
        ids.sort();
        ids
    }

    #[test]
    fn candidates_come_from_blind_indexes_in_both_orders_and_need_the_exact_dob() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        assert!(s
            .replace_schools(&[school("100001"), school("100002")])
            .unwrap()
            .is_ok());
        s.replace_roll(&[
            pupil(
                "P1",
                "Zebediah",
                "Quixotic-Marsh",
                &["Zeb"],
                "2013-05-17",
                "100001",
            ),
            pupil("P2", "Siobhán", "O'Brien", &[], "2014-01-02", "100002"),
            pupil("P3", "Other", "Quixotic-Marsh", &[], "2013-05-18", "100002"),
        ])
        .unwrap();
        let d = |x: &str| x.parse::<jiff::civil::Date>().unwrap();
        // Family name + dob, with punctuation and case differences.
        assert_eq!(
            ids(&s
                .roll_candidates(&["Zebby".into()], "QUIXOTIC MARSH", d("2013-05-17"))
                .unwrap()),
            ["P1"]
        );
        // Given (known-as) name + dob.
        assert_eq!(
            ids(&s
                .roll_candidates(&["zeb".into()], "Unknown", d("2013-05-17"))
                .unwrap()),
            ["P1"]
        );
        // Swapped order.
        assert_eq!(
            ids(&s
                .roll_candidates(&["OBrien".into()], "Siobhan", d("2014-01-02"))
                .unwrap()),
            ["P2"]
        );
        // A wrong date of birth finds nothing.
        assert!(s
            .roll_candidates(&["Zebediah".into()], "Quixotic-Marsh", d("2013-05-16"))
            .unwrap()
            .is_empty());
        let stats = s.roll_stats().unwrap();
        assert_eq!(stats.pupils, 3);
        assert_eq!(
            stats.per_school,
            vec![("100001".into(), 1), ("100002".into(), 2)]
        );
    }

    #[test]
    fn a_new_roll_replaces_the_old_one_and_schools_in_use_cannot_be_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        assert!(s
            .replace_schools(&[school("100001"), school("100002")])
            .unwrap()
            .is_ok());
        s.replace_roll(&[pupil("P1", "Ann", "Lee", &[], "2015-06-01", "100001")])
            .unwrap();
        s.replace_roll(&[pupil("P9", "Bo", "Ng", &[], "2016-07-02", "100002")])
            .unwrap();
        let d = |x: &str| x.parse::<jiff::civil::Date>().unwrap();
        assert!(s
            .roll_candidates(&["Ann".into()], "Lee", d("2015-06-01"))
            .unwrap()
            .is_empty());
        assert_eq!(
            ids(&s
                .roll_candidates(&["Bo".into()], "Ng", d("2016-07-02"))
                .unwrap()),
            ["P9"]
        );
        assert_eq!(s.t.roll.len(), 1, "the old generation was removed");
        // 100002 has a pupil: a directory without it is refused.
        assert_eq!(
            s.replace_schools(&[school("100001")]).unwrap(),
            Err(vec!["100002".to_owned()])
        );
        assert_eq!(s.schools().unwrap().len(), 2);
    }

    #[test]
    fn no_name_dob_or_postcode_in_the_clear_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = store(dir.path());
            assert!(s.replace_schools(&[school("100001")]).unwrap().is_ok());
            s.replace_roll(&[pupil(
                "PID-SECRET-1",
                "Zebediah",
                "Quixotic-Marsh",
                &["Zeb"],
                "2013-05-17",
                "100001",
            )])
            .unwrap();
            s.flush_now().unwrap();
        }
        let mut stack = vec![dir.path().to_owned()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                    continue;
                }
                let bytes = std::fs::read(e.path()).unwrap();
                for needle in [
                    "Zebediah",
                    "Quixotic",
                    "2013-05-17",
                    "QX9 7ZZ",
                    "PID-SECRET",
                    "Ess-Ell",
                    "dsl@school",
                ] {
                    assert!(
                        !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                        "{needle} in the clear in {}",
                        e.path().display()
                    );
                }
            }
        }
    }
}
