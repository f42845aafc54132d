//! The school directory and the roll of children, sealed, with HMAC blind
//! indexes for candidate lookup. An import replaces the whole roll
//! atomically: it is written under a new generation and a single pointer in
//! `meta` flips to it, so a crash mid-import leaves the old roll in force.
//! Imports stream (a national roll is 9 M pupils): pupils are sealed and
//! written in buckets as the file is read, and the blind index is written
//! in buckets at the end (see [`Layout`] for why buckets).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

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
/// Pupils per record bucket: one `roll` value holds this many sealed pupils
/// (see [`Layout::Bucketed`]).
const ROWS_PER_BUCKET: u32 = 16;
/// Index buckets are sized for about this many entries each.
const ENTRIES_PER_INDEX_BUCKET: u64 = 64;
const MAX_INDEX_BITS: u8 = 24;
/// 16 bytes of blind index + a `u32` row.
const INDEX_ENTRY: usize = 20;
/// Buckets per sled batch during an import. sled holds one epoch guard per
/// batch, so its garbage grows with the batch: keep them modest.
const BATCH: usize = 256;
/// Keys per sled batch when removing a generation.
const REMOVE_BATCH: usize = 1000;

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

    /// The generation in force and how it is laid out.
    fn roll_generation(&self) -> Result<(u32, Layout), StoreError> {
        match self.t.meta.get(ROLL_GENERATION)? {
            None => Ok((0, Layout::PerPupil)),
            Some(v) => parse_generation(&v)
                .ok_or_else(|| StoreError::Corrupt("roll generation pointer".into())),
        }
    }

    /// The blind index of a (normalised name, date of birth) pair.
    fn index_hash(&self, domain: &str, name_key: &str, dob: &str) -> IndexHash {
        let mac = self
            .keys
            .blind_index(domain, &[name_key.as_bytes(), dob.as_bytes()]);
        mac[..16].try_into().expect("16 of 32 bytes")
    }

    /// Replaces the roll with `pupils` (small callers and tests; an import
    /// from a file streams through [`Store::import_roll_stream`]).
    pub fn replace_roll(&self, pupils: &[Pupil]) -> Result<u64, StoreError> {
        let stats = self.import_roll_stream(|w| pupils.iter().try_for_each(|p| w.add(p)))?;
        Ok(stats.pupils)
    }

    /// Replaces the roll, streaming: `feed` hands pupils to the
    /// [`RollWriter`], which seals them and writes them under a new
    /// generation in sled batches as they come. Their blind-index entries
    /// (20 bytes each) go to scratch files and are sorted and written in
    /// buckets once `feed` is done. Then the new generation is flushed, the
    /// pointer in `meta` flips to it (one durable write), and the old
    /// generation is removed. Memory stays flat whatever the roll's size
    /// (about 0.8 GiB peak for 9 M pupils, most of it sled's cache).
    ///
    /// If `feed` (or a write) fails, the partial generation is removed and
    /// the old roll stays in force. A crash at any point before the flip
    /// leaves the old roll in force too; the next import first removes
    /// whatever a crash left behind (every generation but the current one).
    ///
    /// # Errors
    /// `feed`'s error, or the store's.
    pub fn import_roll_stream<E: From<StoreError>>(
        &self,
        feed: impl FnOnce(&mut RollWriter<'_>) -> Result<(), E>,
    ) -> Result<RollStats, E> {
        let _one_import = self.roll_import.lock().unwrap_or_else(|p| p.into_inner());
        let (old, _) = self.roll_generation()?;
        let new = old.wrapping_add(1);
        self.remove_generations_except(old)?;
        let mut w = RollWriter::new(self, new)?;
        let written = feed(&mut w).and_then(|()| w.finish().map_err(E::from));
        let (layout, stats) = match written {
            Ok(done) => done,
            Err(e) => {
                if let Err(cleanup) = self.remove_generation(new).and_then(|()| self.flush_now()) {
                    // The pointer never moved, so the old roll is in force;
                    // the next import removes the leftovers.
                    tracing::warn!(error = %cleanup, generation = new, "could not remove a partial roll generation");
                }
                return Err(e);
            }
        };
        self.flush_now()?;
        {
            let _w = self.lock_writer();
            let mut b = sled::Batch::default();
            b.insert(ROLL_GENERATION, generation_value(new, layout));
            b.insert(
                ROLL_COUNT,
                serde_json::to_vec(&stats).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
            self.t.meta.apply_batch(b).map_err(StoreError::from)?;
            self.flush_now()?;
        }
        self.remove_generation(old)?;
        self.flush_now()?;
        Ok(stats)
    }

    fn remove_generation(&self, generation: u32) -> Result<(), StoreError> {
        let prefix = gen_prefix(generation);
        for tree in [&self.t.roll, &self.t.roll_idx] {
            remove_keys(tree, tree.scan_prefix(prefix).keys())?;
        }
        Ok(())
    }

    /// Removes every generation but `keep` (cheap when there are none).
    fn remove_generations_except(&self, keep: u32) -> Result<(), StoreError> {
        let at = gen_prefix(keep);
        for tree in [&self.t.roll, &self.t.roll_idx] {
            remove_keys(tree, tree.range(..at).keys())?;
            if let Some(after) = keep.checked_add(1) {
                remove_keys(tree, tree.range(gen_prefix(after)..).keys())?;
            }
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
    /// scan: each probe reads one index bucket (or, in a generation written
    /// before buckets, one key prefix).
    pub fn roll_candidates(
        &self,
        given_names: &[String],
        family_name: &str,
        dob: jiff::civil::Date,
    ) -> Result<Vec<Pupil>, StoreError> {
        let dob = dob.to_string();
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
        let mut attempts = 0;
        loop {
            let (generation, layout) = self.roll_generation()?;
            let found = match layout {
                Layout::Bucketed { index_bits } => {
                    self.bucketed_candidates(generation, index_bits, &probes)
                }
                Layout::PerPupil => self.per_pupil_candidates(generation, &probes),
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

    fn bucketed_candidates(
        &self,
        generation: u32,
        index_bits: u8,
        probes: &[IndexHash],
    ) -> Result<Vec<Pupil>, StoreError> {
        let mut rows = BTreeSet::new();
        for h in probes {
            let key = index_bucket_key(generation, index_bucket(h, index_bits));
            let Some(bucket) = self.t.roll_idx.get(key)? else {
                continue;
            };
            if bucket.len() % INDEX_ENTRY != 0 {
                return Err(StoreError::Corrupt("roll index bucket".into()));
            }
            for e in bucket.chunks_exact(INDEX_ENTRY) {
                if e[..16] == h[..] {
                    rows.insert(u32::from_be_bytes(e[16..].try_into().expect("4 bytes")));
                }
            }
        }
        let mut out = Vec::with_capacity(rows.len());
        let mut bucket: Option<(u32, sled::IVec)> = None;
        for row in rows {
            let n = row / ROWS_PER_BUCKET;
            if bucket.as_ref().is_none_or(|(b, _)| *b != n) {
                let v = self
                    .t
                    .roll
                    .get(record_bucket_key(generation, n))?
                    .ok_or_else(|| StoreError::Corrupt("roll index without a record".into()))?;
                bucket = Some((n, v));
            }
            let (_, records) = bucket.as_ref().expect("just read");
            let sealed = nth_record(records, row % ROWS_PER_BUCKET)
                .ok_or_else(|| StoreError::Corrupt("roll record bucket".into()))?;
            let plain =
                self.keys
                    .seal_key()
                    .open(trees::ROLL, &record_key(generation, row), sealed)?;
            out.push(
                serde_json::from_slice(&plain)
                    .map_err(|_| StoreError::Corrupt("roll record".into()))?,
            );
        }
        Ok(out)
    }

    /// Lookup in a generation written before buckets: one index key per
    /// (blind index, pupil key), one record per pupil key.
    fn per_pupil_candidates(
        &self,
        generation: u32,
        probes: &[IndexHash],
    ) -> Result<Vec<Pupil>, StoreError> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for h in probes {
            let mut prefix = gen_prefix(generation).to_vec();
            prefix.extend_from_slice(h);
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

/// The first 16 bytes of an HMAC blind index.
type IndexHash = [u8; 16];

/// How a roll generation is laid out in the `roll` and `roll_idx` trees.
/// Stored with the generation number, so the pointer flip switches both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Written before streaming imports: one `roll` entry per pupil, keyed
    /// by generation + blind index of the pupil id, and one empty
    /// `roll_idx` entry per (blind index, pupil key). Read only.
    PerPupil,
    /// Buckets, because sled's cost is per entry (a 9 M roll is ~33 M
    /// entries the other way):
    /// - `roll`: generation + bucket number (row / [`ROWS_PER_BUCKET`]) →
    ///   the bucket's pupils in row order, each `u32` length + sealed
    ///   value, sealed for the record key generation + row;
    /// - `roll_idx`: generation + the top `index_bits` bits of the blind
    ///   index → its entries in order, each 16 bytes of blind index + `u32`
    ///   row ([`INDEX_ENTRY`] bytes).
    Bucketed { index_bits: u8 },
}

const LAYOUT_BUCKETED: u8 = 2;

/// The `roll_generation` value: the generation number (4 bytes, big-endian),
/// then for [`Layout::Bucketed`] the layout tag and index bits. A bare
/// number is [`Layout::PerPupil`].
fn generation_value(generation: u32, layout: Layout) -> Vec<u8> {
    let mut v = gen_prefix(generation).to_vec();
    if let Layout::Bucketed { index_bits } = layout {
        v.extend_from_slice(&[LAYOUT_BUCKETED, index_bits]);
    }
    v
}

fn parse_generation(v: &[u8]) -> Option<(u32, Layout)> {
    let generation = u32::from_be_bytes(v.get(..4)?.try_into().ok()?);
    match v[4..] {
        [] => Some((generation, Layout::PerPupil)),
        [LAYOUT_BUCKETED, index_bits] if index_bits <= MAX_INDEX_BITS => {
            Some((generation, Layout::Bucketed { index_bits }))
        }
        _ => None,
    }
}

/// The key a pupil's sealed record is bound to (AAD); not a tree key.
fn record_key(generation: u32, row: u32) -> [u8; 8] {
    let mut k = [0; 8];
    k[..4].copy_from_slice(&gen_prefix(generation));
    k[4..].copy_from_slice(&row.to_be_bytes());
    k
}

fn record_bucket_key(generation: u32, bucket: u32) -> [u8; 8] {
    record_key(generation, bucket)
}

fn index_bucket_key(generation: u32, bucket: u32) -> [u8; 8] {
    record_key(generation, bucket)
}

fn index_bucket(h: &IndexHash, bits: u8) -> u32 {
    let top = u32::from_be_bytes(h[..4].try_into().expect("4 bytes"));
    top.checked_shr(32 - u32::from(bits)).unwrap_or(0)
}

/// Index bits for `entries` entries: about [`ENTRIES_PER_INDEX_BUCKET`] per
/// bucket, at most 2^[`MAX_INDEX_BITS`] buckets.
fn index_bits(entries: u64) -> u8 {
    let buckets = entries / ENTRIES_PER_INDEX_BUCKET;
    if buckets <= 1 {
        0
    } else {
        (buckets.ilog2() as u8).min(MAX_INDEX_BITS)
    }
}

/// The sealed value at `pos` in a record bucket.
fn nth_record(bucket: &[u8], pos: u32) -> Option<&[u8]> {
    let mut rest = bucket;
    for i in 0..=pos {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let value = rest.get(4..4 + len)?;
        if i == pos {
            return Some(value);
        }
        rest = &rest[4 + len..];
    }
    None
}

/// Lets sled's memory go. sled (0.34) frees replaced tree nodes through
/// crossbeam-epoch, which collects a few bags of garbage per pin; a bulk
/// load pins once per batch and makes garbage faster than that, so
/// without this a 1 M-pupil import held gigabytes of dead nodes. Pinning
/// and flushing the thread's guard runs the collector. (`sled::pin` is
/// sled's own guard, so this is the collector sled uses.)
fn collect_garbage() {
    for _ in 0..32 {
        sled::pin().flush();
    }
}

/// Removes `keys` from `tree` in batches.
fn remove_keys(
    tree: &sled::Tree,
    keys: impl Iterator<Item = sled::Result<sled::IVec>>,
) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    let mut n = 0;
    for k in keys {
        batch.remove(k?);
        n += 1;
        if n >= REMOVE_BATCH {
            tree.apply_batch(std::mem::take(&mut batch))?;
            collect_garbage();
            n = 0;
        }
    }
    tree.apply_batch(batch)?;
    collect_garbage();
    Ok(())
}

/// Blind-index entries of an import, spilled to scratch files as they come
/// (so memory does not grow with the number of names on the roll), split by
/// the top 4 bits of the blind index: each part is sorted on its own at the
/// end, and the parts in order are the whole index in order.
///
/// The files are unnamed (`O_TMPFILE`) in the store's folder, so they vanish
/// when closed, also on a crash. They hold blind indexes and row numbers:
/// nothing that is personal data without the store's keys.
struct IndexSpill {
    parts: Vec<io::BufWriter<File>>,
    entries: u64,
}

const SPILL_PARTS: usize = 16;

fn io_error(e: io::Error) -> StoreError {
    StoreError::Sled(sled::Error::Io(e))
}

impl IndexSpill {
    fn new(dir: &std::path::Path) -> Result<Self, StoreError> {
        let parts = (0..SPILL_PARTS)
            .map(|_| {
                Ok(io::BufWriter::with_capacity(
                    64 * 1024,
                    tempfile::tempfile_in(dir)?,
                ))
            })
            .collect::<io::Result<_>>()
            .map_err(io_error)?;
        Ok(Self { parts, entries: 0 })
    }

    fn push(&mut self, h: &IndexHash, row: u32) -> Result<(), StoreError> {
        let part = &mut self.parts[usize::from(h[0] >> 4)];
        part.write_all(h)
            .and_then(|()| part.write_all(&row.to_be_bytes()))
            .map_err(io_error)?;
        self.entries += 1;
        Ok(())
    }

    /// Each part's entries, sorted, in order; a part is read only when the
    /// one before it has been dropped.
    fn sorted_parts(self) -> impl Iterator<Item = Result<Vec<[u8; INDEX_ENTRY]>, StoreError>> {
        self.parts.into_iter().map(|part| {
            let mut f = part.into_inner().map_err(|e| io_error(e.into_error()))?;
            let len = f.seek(SeekFrom::End(0)).map_err(io_error)?;
            f.seek(SeekFrom::Start(0)).map_err(io_error)?;
            let n = usize::try_from(len).unwrap_or(usize::MAX) / INDEX_ENTRY;
            let mut entries = vec![[0u8; INDEX_ENTRY]; n];
            f.read_exact(entries.as_flattened_mut()).map_err(io_error)?;
            entries.sort_unstable();
            Ok(entries)
        })
    }
}

/// Writes pupils into a new roll generation; see [`Store::import_roll_stream`].
pub struct RollWriter<'a> {
    store: &'a Store,
    generation: u32,
    /// Pupils added so far (the next pupil's row).
    rows: u32,
    /// The record bucket being filled.
    bucket: Vec<u8>,
    batch: sled::Batch,
    batched: usize,
    index: IndexSpill,
    per_school: HashMap<String, u64>,
}

impl<'a> RollWriter<'a> {
    fn new(store: &'a Store, generation: u32) -> Result<Self, StoreError> {
        Ok(Self {
            store,
            generation,
            rows: 0,
            bucket: Vec::new(),
            batch: sled::Batch::default(),
            batched: 0,
            index: IndexSpill::new(&store.dir)?,
            per_school: HashMap::new(),
        })
    }

    /// Seals `p` into the new generation (written in batches) and notes its
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
        let len = u32::try_from(sealed.len())
            .map_err(|_| StoreError::Corrupt("roll record too large".into()))?;
        self.bucket.extend_from_slice(&len.to_be_bytes());
        self.bucket.extend_from_slice(&sealed);

        let dob = p.date_of_birth.to_string();
        let family = s.index_hash(IDX_FAMILY, &normalise(&p.family_name), &dob);
        self.index.push(&family, row)?;
        // Swapped name order is handled at lookup (each police name is
        // probed in both domains), so one entry per name suffices here.
        for g in given_keys(&p.given_name, &p.other_names) {
            self.index.push(&s.index_hash(IDX_GIVEN, &g, &dob), row)?;
        }

        match self.per_school.get_mut(p.school_urn.as_str()) {
            Some(n) => *n += 1,
            None => {
                self.per_school.insert(p.school_urn.clone(), 1);
            }
        }
        self.rows = next;
        if next % ROWS_PER_BUCKET == 0 {
            self.end_bucket()?;
        }
        Ok(())
    }

    /// Pupils added so far.
    pub fn pupils(&self) -> u64 {
        self.rows.into()
    }

    fn end_bucket(&mut self) -> Result<(), StoreError> {
        if self.bucket.is_empty() {
            return Ok(());
        }
        let n = (self.rows - 1) / ROWS_PER_BUCKET;
        self.batch.insert(
            &record_bucket_key(self.generation, n)[..],
            std::mem::take(&mut self.bucket),
        );
        self.batched += 1;
        if self.batched >= BATCH {
            self.apply(&self.store.t.roll)?;
        }
        Ok(())
    }

    fn apply(&mut self, tree: &sled::Tree) -> Result<(), StoreError> {
        tree.apply_batch(std::mem::take(&mut self.batch))?;
        self.batched = 0;
        collect_garbage();
        Ok(())
    }

    /// Writes the last record bucket and the whole index; returns the
    /// layout and the counts.
    fn finish(mut self) -> Result<(Layout, RollStats), StoreError> {
        self.end_bucket()?;
        self.apply(&self.store.t.roll)?;

        let index = std::mem::replace(
            &mut self.index,
            IndexSpill {
                parts: Vec::new(),
                entries: 0,
            },
        );
        let index_bits = index_bits(index.entries);
        let idx = &self.store.t.roll_idx;
        let mut current: Option<u32> = None;
        let mut value = Vec::new();
        for part in index.sorted_parts() {
            for e in &part? {
                let h: &IndexHash = e[..16].try_into().expect("16 bytes");
                let b = index_bucket(h, index_bits);
                if let Some(c) = current.filter(|&c| c != b) {
                    self.batch.insert(
                        &index_bucket_key(self.generation, c)[..],
                        std::mem::take(&mut value),
                    );
                    self.batched += 1;
                    if self.batched >= BATCH {
                        self.apply(idx)?;
                    }
                }
                current = Some(b);
                value.extend_from_slice(e);
            }
        }
        if let Some(c) = current {
            self.batch
                .insert(&index_bucket_key(self.generation, c)[..], value);
        }
        self.apply(idx)?;

        let mut per_school: Vec<(String, u64)> = self.per_school.into_iter().collect();
        per_school.sort_unstable();
        let stats = RollStats {
            generation: self.generation,
            pupils: self.rows.into(),
            schools: per_school.len() as u64,
            per_school,
        };
        Ok((Layout::Bucketed { index_bits }, stats))
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

    /// Every key in `tree` belongs to `generation`.
    fn only_generation(tree: &sled::Tree, generation: u32) -> bool {
        tree.iter()
            .keys()
            .all(|k| k.unwrap().starts_with(&gen_prefix(generation)))
    }

    fn d(x: &str) -> jiff::civil::Date {
        x.parse().unwrap()
    }

    #[test]
    fn a_failed_import_leaves_the_old_roll_and_removes_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        assert!(s.replace_schools(&[school("100001")]).unwrap().is_ok());
        s.replace_roll(&[pupil("P1", "Ann", "Lee", &[], "2015-06-01", "100001")])
            .unwrap();
        let err = s
            .import_roll_stream(|w| {
                for i in 0..40 {
                    w.add(&pupil(
                        &format!("N{i}"),
                        "Bo",
                        "Ng",
                        &[],
                        "2016-07-02",
                        "100001",
                    ))?;
                }
                assert_eq!(w.pupils(), 40);
                Err(StoreError::Corrupt("the file was rejected".into()))
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        assert_eq!(s.roll_stats().unwrap().pupils, 1);
        assert_eq!(s.roll_generation().unwrap().0, 1);
        assert_eq!(
            ids(&s
                .roll_candidates(&["Ann".into()], "Lee", d("2015-06-01"))
                .unwrap()),
            ["P1"]
        );
        assert!(s
            .roll_candidates(&["Bo".into()], "Ng", d("2016-07-02"))
            .unwrap()
            .is_empty());
        assert!(only_generation(&s.t.roll, 1) && only_generation(&s.t.roll_idx, 1));
    }

    #[test]
    fn the_next_import_removes_what_a_crashed_one_left() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        assert!(s.replace_schools(&[school("100001")]).unwrap().is_ok());
        s.replace_roll(&[pupil("P1", "Ann", "Lee", &[], "2015-06-01", "100001")])
            .unwrap();
        // A crash mid-import leaves generation 2 half written (and, in an
        // older version, a stale generation 0).
        for tree in [&s.t.roll, &s.t.roll_idx] {
            for generation in [0u32, 2, 9] {
                let mut k = gen_prefix(generation).to_vec();
                k.extend_from_slice(b"leftover");
                tree.insert(k, &b"x"[..]).unwrap();
            }
        }
        // The old roll is still the roll.
        assert_eq!(
            ids(&s
                .roll_candidates(&["Ann".into()], "Lee", d("2015-06-01"))
                .unwrap()),
            ["P1"]
        );
        s.replace_roll(&[pupil("P2", "Bo", "Ng", &[], "2016-07-02", "100001")])
            .unwrap();
        assert!(only_generation(&s.t.roll, 2) && only_generation(&s.t.roll_idx, 2));
        assert_eq!(
            ids(&s
                .roll_candidates(&["Bo".into()], "Ng", d("2016-07-02"))
                .unwrap()),
            ["P2"]
        );
    }

    #[test]
    fn a_large_roll_is_found_through_its_buckets() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let urns: Vec<School> = (0..7).map(|i| school(&format!("10000{i}"))).collect();
        assert!(s.replace_schools(&urns).unwrap().is_ok());
        let given = ["Ann", "Bo", "Siobhán", "Zoë", "Jean-Luc", "Łucja"];
        let roll: Vec<Pupil> = (0..3000)
            .map(|i| {
                let other = if i % 5 == 0 { vec!["Kit"] } else { vec![] };
                pupil(
                    &format!("P{i}"),
                    given[i % given.len()],
                    &format!("Fam{}", char::from(b'a' + (i % 26) as u8)),
                    &other,
                    &format!("2014-{:02}-{:02}", 1 + i % 12, 1 + (i / 12) % 28),
                    &format!("10000{}", i % 7),
                )
            })
            .collect();
        s.replace_roll(&roll).unwrap();
        let (generation, layout) = s.roll_generation().unwrap();
        assert_eq!(generation, 1);
        assert!(
            matches!(layout, Layout::Bucketed { index_bits } if index_bits >= 5),
            "{layout:?}"
        );
        for p in roll.iter().step_by(37).chain(roll.last()) {
            let by_family = s
                .roll_candidates(&["Nobody".into()], &p.family_name, p.date_of_birth)
                .unwrap();
            assert!(by_family.contains(p), "{}", p.pupil_id);
            let by_given = s
                .roll_candidates(
                    std::slice::from_ref(&p.given_name),
                    "Nobody",
                    p.date_of_birth,
                )
                .unwrap();
            assert!(by_given.contains(p), "{}", p.pupil_id);
            for c in by_family.iter().chain(&by_given) {
                assert_eq!(c.date_of_birth, p.date_of_birth);
            }
        }
        let kit = s
            .roll_candidates(&["kit".into()], "Nobody", roll[0].date_of_birth)
            .unwrap();
        // P0 and P1680 are both born on 2014-01-01 and known as Kit.
        assert_eq!(ids(&kit), ["P0", "P1680"]);
        let stats = s.roll_stats().unwrap();
        assert_eq!((stats.pupils, stats.schools), (3000, 7));
        assert_eq!(stats.per_school[0], ("100000".to_owned(), 429));
    }

    #[test]
    fn a_roll_written_before_buckets_is_still_read_and_then_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        assert!(s.replace_schools(&[school("100001")]).unwrap().is_ok());
        // Generation 1 as the per-pupil layout wrote it.
        let p = pupil(
            "P1",
            "Zebediah",
            "Quixotic-Marsh",
            &["Zeb"],
            "2013-05-17",
            "100001",
        );
        let mut pk = gen_prefix(1).to_vec();
        pk.extend_from_slice(&s.keys.blind_index("roll pupil v1", &[b"P1".as_slice()])[..16]);
        let sealed = s
            .keys
            .seal_key()
            .seal(trees::ROLL, &pk, &serde_json::to_vec(&p).unwrap())
            .unwrap();
        s.t.roll.insert(&pk, sealed).unwrap();
        for (domain, name) in [
            (IDX_FAMILY, "quixoticmarsh"),
            (IDX_GIVEN, "zebediah"),
            (IDX_GIVEN, "zeb"),
        ] {
            let mut k = gen_prefix(1).to_vec();
            k.extend_from_slice(&s.index_hash(domain, name, "2013-05-17"));
            k.extend_from_slice(&pk[4..]);
            s.t.roll_idx.insert(k, &[][..]).unwrap();
        }
        s.t.meta
            .insert(ROLL_GENERATION, &gen_prefix(1)[..])
            .unwrap();
        assert_eq!(s.roll_generation().unwrap(), (1, Layout::PerPupil));
        assert_eq!(
            ids(&s
                .roll_candidates(&["zeb".into()], "Nobody", d("2013-05-17"))
                .unwrap()),
            ["P1"]
        );
        s.replace_roll(&[p]).unwrap();
        assert!(matches!(
            s.roll_generation().unwrap(),
            (2, Layout::Bucketed { .. })
        ));
        assert!(only_generation(&s.t.roll, 2) && only_generation(&s.t.roll_idx, 2));
        assert_eq!(
            ids(&s
                .roll_candidates(&["Zebediah".into()], "QUIXOTIC MARSH", d("2013-05-17"))
                .unwrap()),
            ["P1"]
        );
    }

    #[test]
    fn generation_pointer_and_bucket_helpers() {
        for (generation, layout) in [
            (7, Layout::PerPupil),
            (8, Layout::Bucketed { index_bits: 0 }),
            (u32::MAX, Layout::Bucketed { index_bits: 24 }),
        ] {
            assert_eq!(
                parse_generation(&generation_value(generation, layout)),
                Some((generation, layout))
            );
        }
        assert_eq!(parse_generation(&[0, 0, 1]), None);
        assert_eq!(parse_generation(&[0, 0, 0, 1, LAYOUT_BUCKETED, 25]), None);
        assert_eq!(parse_generation(&[0, 0, 0, 1, 9, 1]), None);
        assert_eq!(index_bits(0), 0);
        assert_eq!(index_bits(127), 0);
        assert_eq!(index_bits(256), 2);
        assert_eq!(index_bits(u64::MAX), MAX_INDEX_BITS);
        let h = [0xffu8; 16];
        assert_eq!(index_bucket(&h, 0), 0);
        assert_eq!(index_bucket(&h, 1), 1);
        assert_eq!(index_bucket(&h, 24), 0xff_ffff);
        let bucket = [
            &3u32.to_be_bytes()[..],
            b"abc",
            &0u32.to_be_bytes(),
            &2u32.to_be_bytes(),
            b"de",
        ]
        .concat();
        assert_eq!(nth_record(&bucket, 0), Some(&b"abc"[..]));
        assert_eq!(nth_record(&bucket, 1), Some(&b""[..]));
        assert_eq!(nth_record(&bucket, 2), Some(&b"de"[..]));
        assert_eq!(nth_record(&bucket, 3), None);
        assert_eq!(nth_record(&bucket[..5], 0), None);
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
