//! Reading the roll: candidate lookup by blind index (never a scan), the
//! wider initials lookup, warming the roll files, and walking every pupil.

use super::*;

impl Store {
    /// Pupils on the current roll whose (family name, date of birth) or
    /// (given or known-as name, date of birth) blind index matches. Never a
    /// scan: each probe reads one index bucket (or, in a generation written
    /// before buckets, one key prefix).
    pub fn roll_candidates(
        &self,
        given_names: &[String],
        family_name: &str,
        dob: jiff::civil::Date,
    ) -> Result<Vec<Pupil>, StoreError> {
        self.candidates_for(&self.probes(given_names, family_name, dob, false))
    }

    /// The wider lookup: pupils born on `dob` whose initials match the
    /// police's names in either order (given or known-as, family). Used when
    /// [`roll_candidates`](Self::roll_candidates) found no match, e.g. a
    /// typo in both names. Includes what `roll_candidates` finds.
    pub fn roll_candidates_wide(
        &self,
        given_names: &[String],
        family_name: &str,
        dob: jiff::civil::Date,
    ) -> Result<Vec<Pupil>, StoreError> {
        self.candidates_for(&self.probes(given_names, family_name, dob, true))
    }

    /// The name probes, and with `wide` the initials probes too.
    pub(super) fn probes(
        &self,
        given_names: &[String],
        family_name: &str,
        dob: jiff::civil::Date,
        wide: bool,
    ) -> Vec<IndexHash> {
        let dob = dob.to_string();
        let mut probes = self.name_probes(given_names, family_name, &dob);
        if !wide {
            return probes;
        }
        let family = normalise(family_name);
        for g in given_names {
            let g = normalise(g);
            for i in [initials(&g, &family), initials(&family, &g)]
                .into_iter()
                .flatten()
            {
                let h = self.index_hash(IDX_INITIALS, &i, &dob);
                if !probes.contains(&h) {
                    probes.push(h);
                }
            }
        }
        probes
    }

    pub(super) fn name_probes(
        &self,
        given_names: &[String],
        family_name: &str,
        dob: &str,
    ) -> Vec<IndexHash> {
        let dob = dob.to_owned();
        let family = normalise(family_name);
        let mut probes = vec![
            self.index_hash(IDX_FAMILY, &family, &dob),
            // Swapped order: the police's family name as a given name, and
            // the other way round.
            self.index_hash(IDX_GIVEN, &family, &dob),
        ];
        for g in given_names {
            let g = normalise(g);
            if g.is_empty() {
                continue;
            }
            probes.push(self.index_hash(IDX_GIVEN, &g, &dob));
            probes.push(self.index_hash(IDX_FAMILY, &g, &dob));
        }
        probes
    }

    pub(super) fn candidates_for(&self, probes: &[IndexHash]) -> Result<Vec<Pupil>, StoreError> {
        let mut attempts = 0;
        loop {
            let (generation, layout) = self.roll_generation()?;
            let found = match layout {
                None => Ok(Vec::new()),
                Some(Layout::Files { .. }) => self.file_candidates(generation, probes),
            };
            // An import that flipped the pointer meanwhile removes the
            // generation being read: read the new one.
            attempts += 1;
            if found.is_err() && attempts < 3 && self.roll_generation()?.0 != generation {
                continue;
            }
            return found;
        }
    }

    /// Reads the roll in force once so the OS page cache holds it (`kim
    /// serve` does this in the background at start). Returns the bytes read
    /// (0 when there is no roll).
    pub fn warm_roll(&self) -> Result<u64, StoreError> {
        match self.roll_generation()? {
            (generation, Some(Layout::Files { .. })) => {
                rollfile::warm(&rollfile::roll_dir(&self.dir), generation)
            }
            (_, None) => Ok(0),
        }
    }

    /// The open files of `generation`, opened once and kept (an import
    /// that replaces them unlinks them; open handles still read them).
    pub(super) fn roll_files(
        &self,
        generation: u32,
    ) -> Result<std::sync::Arc<RollFiles>, StoreError> {
        let mut cached = self.roll_files.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = cached.as_ref().filter(|f| f.generation == generation) {
            return Ok(f.clone());
        }
        let f = std::sync::Arc::new(RollFiles::open(&rollfile::roll_dir(&self.dir), generation)?);
        *cached = Some(f.clone());
        Ok(f)
    }

    pub(super) fn file_candidates(
        &self,
        generation: u32,
        probes: &[IndexHash],
    ) -> Result<Vec<Pupil>, StoreError> {
        let files = self.roll_files(generation)?;
        let mut rows = BTreeSet::new();
        for h in probes {
            files.rows_for(h, &mut rows)?;
        }
        rows.into_iter()
            .map(|row| {
                let sealed = files.record(row)?;
                self.open_pupil(&record_key(generation, row), &sealed)
            })
            .collect()
    }

    pub(super) fn open_pupil(&self, key: &[u8], sealed: &[u8]) -> Result<Pupil, StoreError> {
        let plain = self.keys.seal_key().open(trees::ROLL, key, sealed)?;
        serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt("roll record".into()))
    }

    /// Every pupil of the roll in force, opened, in row order (key rotation
    /// re-imports them under the new key).
    pub fn for_each_pupil<E: From<StoreError>>(
        &self,
        mut f: impl FnMut(Pupil) -> Result<(), E>,
    ) -> Result<(), E> {
        match self.roll_generation()? {
            (generation, Some(Layout::Files { .. })) => {
                self.roll_files(generation)?.for_each_record(|row, sealed| {
                    f(self.open_pupil(&record_key(generation, row), sealed)?)
                })
            }
            (_, None) => Ok(()),
        }
    }
}
