//! The school directory and the roll of children, sealed, with HMAC blind
//! indexes for candidate lookup. An import replaces the whole roll
//! atomically: it is written under a new generation and a single pointer in
//! `meta` flips to it, so a crash mid-import leaves the old roll in force.
//! Imports stream (a national roll is 9 M pupils): pupils are sealed and
//! written to the generation's record file as the file is read, and the
//! blind index is sorted and written to its index file at the end
//! (`super::rollfile`). These roll files are the roll's only layout: version
//! 1 of the store (`super::format`).

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::rollfile::{self, IndexWriter, RecordWriter, RollFiles};
use super::{trees, Store, StoreError};
use crate::import::{Pupil, School};
use crate::normalise::{given_keys, normalise};

mod find;
mod lookup;
mod schools;
mod write;

pub use find::{RollFindError, RollFound, RollQuery};
pub use write::RollWriter;

const ROLL_GENERATION: &[u8] = b"roll_generation";
const ROLL_COUNT: &[u8] = b"roll_count";
/// Blind-index domains: (normalised family name, date of birth) and
/// (normalised given or known-as name, date of birth).
const IDX_FAMILY: &str = "roll family+dob v1";
const IDX_GIVEN: &str = "roll given+dob v1";
/// First letters of a given (or known-as) and the family name, with the date
/// of birth: the fallback for a child whose given AND family name both carry
/// a typo, so neither name index finds them. Wide (a few pupils per key),
/// probed only when the name indexes give no match.
const IDX_INITIALS: &str = "roll initials+dob v1";

/// The initials key of two normalised names, `None` if either is empty.
fn initials(a: &str, b: &str) -> Option<String> {
    let (x, y) = (a.chars().next()?, b.chars().next()?);
    Some(format!("{x}{y}"))
}
/// Index buckets are sized for about this many entries each.
const ENTRIES_PER_INDEX_BUCKET: u64 = 64;
const MAX_INDEX_BITS: u8 = 24;
/// 16 bytes of blind index + a `u32` row.
const INDEX_ENTRY: usize = rollfile::ENTRY;
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
    /// The generation in force and how it is laid out (`None`: no roll was
    /// ever imported, generation 0).
    fn roll_generation(&self) -> Result<(u32, Option<Layout>), StoreError> {
        match self.t.meta.get(ROLL_GENERATION)? {
            None => Ok((0, None)),
            Some(v) => parse_generation(&v)
                .map(|(g, layout)| (g, Some(layout)))
                .ok_or_else(|| {
                    StoreError::Corrupt(
                        "roll generation pointer: not a roll-file generation of store format 1"
                            .into(),
                    )
                }),
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
    /// [`RollWriter`], which seals them and appends them to the new
    /// generation's record file as they come. Their blind-index entries
    /// (20 bytes each) go to scratch files and are sorted into the index
    /// file once `feed` is done. Then both files are synced, the pointer in
    /// `meta` flips to the new generation (one durable write), and the old
    /// generation is removed. Memory stays flat whatever the roll's size
    /// (452 MiB peak for 9 M pupils in `kim roll import`: one offset per
    /// pupil, a sort part of the index, sled's cache).
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
            b.insert(find::ROLL_FIND_INDEX, &gen_prefix(new)[..]);
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
        rollfile::remove_generations(&rollfile::roll_dir(&self.dir), |g| g == generation)?;
        let prefix = gen_prefix(generation);
        for tree in [&self.t.roll, &self.t.roll_idx] {
            remove_keys(tree, tree.scan_prefix(prefix).keys())?;
        }
        Ok(())
    }

    /// Removes every generation but `keep` (cheap when there are none).
    fn remove_generations_except(&self, keep: u32) -> Result<(), StoreError> {
        rollfile::remove_generations(&rollfile::roll_dir(&self.dir), |g| g != keep)?;
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
}

/// The first 16 bytes of an HMAC blind index.
type IndexHash = [u8; 16];

/// How a roll generation is laid out, stored with the generation number so
/// the pointer flip switches both. Store format 1 has one layout; a later
/// one is migrated to once when the store's format version goes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// The generation's own files in `<store>/roll/` (`super::rollfile`).
    /// sled holds only the pointer.
    Files { index_bits: u8 },
}

/// The pointer's layout tag (2 was a sled layout of pre-release builds).
const LAYOUT_FILES: u8 = 3;

/// The `roll_generation` value: the generation number (4 bytes, big-endian),
/// the layout tag and the index bits.
fn generation_value(generation: u32, layout: Layout) -> Vec<u8> {
    let mut v = gen_prefix(generation).to_vec();
    match layout {
        Layout::Files { index_bits } => v.extend_from_slice(&[LAYOUT_FILES, index_bits]),
    }
    v
}

fn parse_generation(v: &[u8]) -> Option<(u32, Layout)> {
    let generation = u32::from_be_bytes(v.get(..4)?.try_into().ok()?);
    match v[4..] {
        [LAYOUT_FILES, index_bits] if index_bits <= MAX_INDEX_BITS => {
            Some((generation, Layout::Files { index_bits }))
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

#[path = "roll_spill.rs"]
mod spill;
use spill::IndexSpill;

#[cfg(test)]
#[path = "roll_tests.rs"]
mod tests;
