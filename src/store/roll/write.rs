//! Writing a roll generation as the import streams: pupils sealed into the
//! record file, blind-index entries spilled and sorted into the index file.

use super::*;

/// Writes pupils into a new roll generation; see [`Store::import_roll_stream`].
pub struct RollWriter<'a> {
    store: &'a Store,
    generation: u32,
    /// Pupils added so far (the next pupil's row).
    rows: u32,
    records: RecordWriter,
    index: IndexSpill,
    per_school: HashMap<String, u64>,
}

impl<'a> RollWriter<'a> {
    pub(super) fn new(store: &'a Store, generation: u32) -> Result<Self, StoreError> {
        Ok(Self {
            store,
            generation,
            rows: 0,
            records: RecordWriter::create(&rollfile::roll_dir(&store.dir), generation)?,
            index: IndexSpill::new(&store.dir)?,
            per_school: HashMap::new(),
        })
    }

    /// Seals `p` into the new generation's record file and notes its
    /// blind-index entries.
    pub fn add(&mut self, p: &Pupil) -> Result<(), StoreError> {
        let s = self.store;
        let row = self.rows;
        let next = row
            .checked_add(1)
            .ok_or_else(|| StoreError::Corrupt("more than 4 billion pupils".into()))?;
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(p).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        );
        let sealed =
            s.keys
                .seal_key()
                .seal(trees::ROLL, &record_key(self.generation, row), &plain)?;
        self.records.push(&sealed)?;

        let dob = p.date_of_birth.to_string();
        let family_key = normalise(&p.family_name);
        let family = s.index_hash(IDX_FAMILY, &family_key, &dob);
        self.index.push(&family, row)?;
        // Swapped name order is handled at lookup (each police name is
        // probed in both domains), so one entry per name suffices here.
        // The family-name index (`kim roll find`): the family name alone,
        // and with the first letter of each given or known-as name.
        self.index
            .push(&s.index_hash(find::IDX_FAMILY_ONLY, &family_key, ""), row)?;
        let mut seen_letters = Vec::new();
        let mut seen_initials = Vec::new();
        for g in given_keys(&p.given_name, &p.other_names) {
            if let Some(l) = find::first_letter(&g) {
                if !seen_letters.contains(&l) {
                    self.index.push(
                        &s.index_hash(find::IDX_FAMILY_INITIAL, &family_key, &l),
                        row,
                    )?;
                    seen_letters.push(l);
                }
            }
            self.index.push(&s.index_hash(IDX_GIVEN, &g, &dob), row)?;
            if let Some(i) = initials(&g, &family_key) {
                if !seen_initials.contains(&i) {
                    self.index
                        .push(&s.index_hash(IDX_INITIALS, &i, &dob), row)?;
                    seen_initials.push(i);
                }
            }
        }

        match self.per_school.get_mut(p.school_urn.as_str()) {
            Some(n) => *n += 1,
            None => {
                self.per_school.insert(p.school_urn.clone(), 1);
            }
        }
        self.rows = next;
        Ok(())
    }

    /// Pupils added so far.
    pub fn pupils(&self) -> u64 {
        self.rows.into()
    }

    /// Finishes the record file, writes the sorted index file, syncs both
    /// and their folder; returns the layout and the counts.
    pub(super) fn finish(self) -> Result<(Layout, RollStats), StoreError> {
        let dir = rollfile::roll_dir(&self.store.dir);
        self.records.finish(self.generation)?;
        let index_bits = index_bits(self.index.entries);
        let mut idx = IndexWriter::create(&dir, self.generation, index_bits)?;
        for part in self.index.sorted_parts() {
            for e in &part? {
                idx.push(e)?;
            }
        }
        idx.finish(self.generation)?;
        rollfile::sync_dir(&dir)?;

        let mut per_school: Vec<(String, u64)> = self.per_school.into_iter().collect();
        per_school.sort_unstable();
        let stats = RollStats {
            generation: self.generation,
            pupils: self.rows.into(),
            schools: per_school.len() as u64,
            per_school,
        };
        Ok((Layout::Files { index_bits }, stats))
    }
}
