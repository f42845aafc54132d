//! Searching the roll for a human (issue 12 items 3-4): the near-miss probe
//! (the name indexes at several dates of birth) and `kim roll find` through
//! the family-name index (family name alone, and family name + first letter
//! of a given or known-as name), written at import. Never a scan: each probe
//! reads one index bucket and only the rows it names are opened.

use super::*;
use crate::normalise::similarity;

/// Blind-index domains of the family-name index: the normalised family name
/// alone, and with the first letter of each given/known-as name.
pub(super) const IDX_FAMILY_ONLY: &str = "roll family v1";
pub(super) const IDX_FAMILY_INITIAL: &str = "roll family+initial v1";
/// `meta`: the generation whose files hold the family-name index (a roll
/// imported by an older kim has none: `kim roll find` asks for a re-import).
pub(super) const ROLL_FIND_INDEX: &[u8] = b"roll_find_index";

/// The first letter of a normalised name.
pub(super) fn first_letter(key: &str) -> Option<String> {
    key.chars().next().map(String::from)
}

/// What `kim roll find` looks for.
#[derive(Debug, Clone, Default)]
pub struct RollQuery<'a> {
    pub family: &'a str,
    pub given: Option<&'a str>,
    pub dob: Option<jiff::civil::Date>,
    /// The matching rules' name threshold.
    pub threshold: f64,
    /// At most this many pupils are returned.
    pub limit: usize,
}

/// The pupils found; `more` is true when more pupils matched than `limit`.
#[derive(Debug, Clone, Default)]
pub struct RollFound {
    pub pupils: Vec<Pupil>,
    pub more: bool,
}

/// Why `kim roll find` could not search.
#[derive(Debug, thiserror::Error)]
pub enum RollFindError {
    #[error("no roll has been imported: run `kim roll import FILE` first")]
    NoRoll,
    #[error("the roll in force was imported by an older kim and has no family-name index: re-import the roll (`kim roll import FILE`) to search it")]
    NeedsReimport,
    #[error("the family name has no letters to search for")]
    EmptyName,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Pupils born on any of `dobs` whose family AND given (or known-as)
    /// names both equal the police's after normalising, in either order:
    /// at each date, only rows that a family-side probe and a given-side
    /// probe both return are opened (the near-miss search; pupils sharing
    /// one name only are never decrypted).
    pub fn roll_candidates_at(
        &self,
        given_names: &[String],
        family_name: &str,
        dobs: &[jiff::civil::Date],
    ) -> Result<Vec<Pupil>, StoreError> {
        let (generation, layout) = self.roll_generation()?;
        if layout.is_none() {
            return Ok(Vec::new());
        }
        let files = self.roll_files(generation)?;
        let family = normalise(family_name);
        let given: Vec<String> = given_names
            .iter()
            .map(|g| normalise(g))
            .filter(|g| !g.is_empty())
            .collect();
        if family.is_empty() || given.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows = BTreeSet::new();
        for d in dobs {
            let dob = d.to_string();
            let mut family_side = BTreeSet::new();
            files.rows_for(
                &self.index_hash(IDX_FAMILY, &family, &dob),
                &mut family_side,
            )?;
            files.rows_for(&self.index_hash(IDX_GIVEN, &family, &dob), &mut family_side)?;
            if family_side.is_empty() {
                continue;
            }
            let mut given_side = BTreeSet::new();
            for g in &given {
                files.rows_for(&self.index_hash(IDX_GIVEN, g, &dob), &mut given_side)?;
                files.rows_for(&self.index_hash(IDX_FAMILY, g, &dob), &mut given_side)?;
            }
            rows.extend(family_side.intersection(&given_side));
        }
        rows.into_iter()
            .map(|row| self.open_pupil(&record_key(generation, row), &files.record(row)?))
            .collect()
    }

    /// `kim roll find`: pupils whose normalised family name is the one
    /// asked for (with a date of birth: or similar within the threshold,
    /// found through the date-of-birth name indexes), whose given or
    /// known-as name, if asked for, agrees within the threshold (among
    /// pupils sharing its first letter), born on `dob` if given.
    pub fn roll_find(&self, q: &RollQuery<'_>) -> Result<RollFound, RollFindError> {
        let family = normalise(q.family);
        if family.is_empty() {
            return Err(RollFindError::EmptyName);
        }
        let (generation, layout) = self.roll_generation()?;
        if layout.is_none() {
            return Err(RollFindError::NoRoll);
        }
        if self
            .t
            .meta
            .get(ROLL_FIND_INDEX)
            .map_err(StoreError::from)?
            .as_deref()
            != Some(&gen_prefix(generation)[..])
        {
            return Err(RollFindError::NeedsReimport);
        }
        let given = q.given.map(normalise).filter(|g| !g.is_empty());
        let given_ok = |p: &Pupil| match &given {
            None => true,
            Some(g) => given_keys(&p.given_name, &p.other_names)
                .iter()
                .any(|f| similarity(g, f) >= q.threshold),
        };
        let files = self.roll_files(generation)?;
        let mut rows = BTreeSet::new();
        let exact_family = match (q.dob, &given) {
            (Some(dob), _) => {
                let names: Vec<String> = q.given.map(str::to_owned).into_iter().collect();
                for h in self.probes(&names, q.family, dob, true) {
                    files.rows_for(&h, &mut rows)?;
                }
                false
            }
            (None, Some(g)) => {
                if let Some(i) = first_letter(g) {
                    let h = self.index_hash(IDX_FAMILY_INITIAL, &family, &i);
                    files.rows_for(&h, &mut rows)?;
                }
                true
            }
            (None, None) => {
                let h = self.index_hash(IDX_FAMILY_ONLY, &family, "");
                files.rows_for(&h, &mut rows)?;
                true
            }
        };
        let mut found = RollFound::default();
        for row in rows {
            let p = self.open_pupil(&record_key(generation, row), &files.record(row)?)?;
            let pf = normalise(&p.family_name);
            let family_ok = if exact_family {
                pf == family
            } else {
                similarity(&family, &pf) >= q.threshold
            };
            if !family_ok || !given_ok(&p) || q.dob.is_some_and(|d| d != p.date_of_birth) {
                continue;
            }
            if found.pupils.len() == q.limit {
                found.more = true;
                break;
            }
            found.pupils.push(p);
        }
        Ok(found)
    }
}

#[cfg(test)]
#[path = "find_tests.rs"]
mod tests;
