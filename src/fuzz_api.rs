//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz) and their
//! regression tests (`tests/it/fuzz_regressions.rs`): thin wrappers over the
//! crate-internal readers of outside bytes — the accept journal and the roll
//! files — which the targets could not reach otherwise. Not an API: hidden
//! from the docs, nothing in kim calls it, and it adds no behaviour.

/// The accept journal (`store::journal`): write frames with the real
/// writer, read them back with the real scanner.
pub mod journal {
    use std::path::{Path, PathBuf};

    use crate::store::crypto::{SealKey, KEY_LEN};
    use crate::store::journal::{self as j, Entry, Identifiers, Journal};

    /// One journaled notification as the scanner gives it back.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Frame {
        pub receipt: String,
        pub force: String,
        pub police_reference: String,
        pub record: Vec<u8>,
        pub sealed: Vec<u8>,
    }

    /// What a scan found.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Replayed {
        /// Every frame that opened, oldest first.
        pub entries: Vec<Frame>,
        /// Damage records (acknowledged frames that no longer open).
        pub damaged: usize,
        /// Notifications the damage records count as lost.
        pub lost: u64,
        /// Lost notifications still named by their heads.
        pub named: Vec<String>,
        /// Torn tails (never acknowledged).
        pub torn: usize,
    }

    /// Writes `batches` into a new journal under `store_dir`: each batch
    /// is one append (one sync); after a batch whose flag is set, the next
    /// segment starts (as a full segment would).
    pub fn write(
        store_dir: &Path,
        key: &[u8; KEY_LEN],
        batches: &[(Vec<Frame>, bool)],
    ) -> Result<(), String> {
        let key = SealKey::from_bytes(key);
        let mut journal = Journal::create(store_dir, &key).map_err(|e| e.to_string())?;
        for (frames, rotate) in batches {
            let entries: Vec<Entry> = frames
                .iter()
                .map(|f| Entry {
                    ids: Identifiers {
                        receipt: f.receipt.clone(),
                        force: f.force.clone(),
                        police_reference: f.police_reference.clone(),
                    },
                    record: f.record.clone(),
                    sealed: f.sealed.clone(),
                })
                .collect();
            journal.append(&key, &entries).map_err(|e| e.to_string())?;
            if *rotate {
                journal.start_next(&key).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// The journal's segment files, oldest first.
    pub fn segment_files(store_dir: &Path) -> Result<Vec<PathBuf>, String> {
        let dir = j::journal_dir(store_dir);
        let numbers = j::segments(&dir).map_err(|e| e.to_string())?;
        Ok(numbers.iter().map(|&n| j::segment_path(&dir, n)).collect())
    }

    /// Where each frame of a whole segment file starts (its start frame
    /// first).
    pub fn frame_starts(segment: &[u8]) -> Vec<usize> {
        j::frame_starts(segment)
    }

    /// Reads the journal back as the store does at open.
    pub fn scan(store_dir: &Path, key: &[u8; KEY_LEN]) -> Result<Replayed, String> {
        let key = SealKey::from_bytes(key);
        let scan = j::scan(&j::journal_dir(store_dir), &key).map_err(|e| e.to_string())?;
        Ok(Replayed {
            entries: scan
                .entries
                .into_iter()
                .map(|e| Frame {
                    receipt: e.ids.receipt,
                    force: e.ids.force,
                    police_reference: e.ids.police_reference,
                    record: e.record,
                    sealed: e.sealed,
                })
                .collect(),
            damaged: scan.damage.len(),
            lost: scan.damage.iter().map(|d| u64::from(d.lost)).sum(),
            named: scan
                .damage
                .iter()
                .flat_map(|d| d.named.iter().map(|n| n.receipt.clone()))
                .collect(),
            torn: scan.torn.len(),
        })
    }
}

/// The roll's own files (`store::rollfile`): written by the real writers,
/// read by the real reader.
pub mod rollfile {
    use std::collections::BTreeSet;
    use std::path::Path;

    use crate::store::rollfile::{IndexWriter, RecordWriter, RollFiles, ENTRY};

    /// Bytes of one index entry (16 bytes of blind index + a `u32` row).
    pub const ENTRY_BYTES: usize = ENTRY;

    /// Writes generation `generation` in `dir`: `records` in row order and
    /// `entries` (sorted here) in an index of `2^bits` buckets.
    pub fn write(
        dir: &Path,
        generation: u32,
        records: &[Vec<u8>],
        entries: &[[u8; ENTRY]],
        bits: u8,
    ) -> Result<(), String> {
        let mut rec = RecordWriter::create(dir, generation).map_err(|e| e.to_string())?;
        for r in records {
            rec.push(r).map_err(|e| e.to_string())?;
        }
        rec.finish(generation).map_err(|e| e.to_string())?;
        let mut sorted = entries.to_vec();
        sorted.sort_unstable();
        let mut idx = IndexWriter::create(dir, generation, bits).map_err(|e| e.to_string())?;
        for e in &sorted {
            idx.push(e).map_err(|e| e.to_string())?;
        }
        idx.finish(generation).map_err(|e| e.to_string())
    }

    /// What the reader gives back.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Read {
        pub rows: u32,
        /// `record(row)` for the first rows (an error as text).
        pub records: Vec<Result<Vec<u8>, String>>,
        /// `for_each_record` over every row, up to `max_rows`.
        pub walked: Result<Vec<Vec<u8>>, String>,
        /// `rows_for` of each probe.
        pub hits: Vec<Result<BTreeSet<u32>, String>>,
    }

    /// Opens generation `generation` and reads up to `max_rows` records
    /// both ways, and looks up each of `probes`.
    pub fn read(
        dir: &Path,
        generation: u32,
        probes: &[[u8; 16]],
        max_rows: u32,
    ) -> Result<Read, String> {
        let files = RollFiles::open(dir, generation).map_err(|e| e.to_string())?;
        let rows = files.rows();
        let records = (0..rows.min(max_rows))
            .map(|r| files.record(r).map_err(|e| e.to_string()))
            .collect();
        let walked = if rows <= max_rows {
            let mut all = Vec::new();
            files
                .for_each_record(|_, r| {
                    all.push(r.to_vec());
                    Ok::<_, crate::store::StoreError>(())
                })
                .map(|()| all)
                .map_err(|e| e.to_string())
        } else {
            Err("too many rows to walk".to_owned())
        };
        let hits = probes
            .iter()
            .map(|h| {
                let mut rows = BTreeSet::new();
                files
                    .rows_for(h, &mut rows)
                    .map(|()| rows)
                    .map_err(|e| e.to_string())
            })
            .collect();
        Ok(Read {
            rows,
            records,
            walked,
            hits,
        })
    }
}
