//! The roll's own files: each roll generation is a pair of immutable files
//! in `<store>/roll/`, written once by an import and read with positioned
//! reads (`pread`) by the matching stage. sled's cost is per page it has to
//! rebuild; a national roll (9 M pupils, ~3 GB) does not fit its cache, so a
//! lookup through sled rebuilt several large pages. Here a lookup is a
//! handful of small reads that the OS page cache serves.
//!
//! - `NNNNNNNN.rec`: the sealed pupils in row order, then a table of
//!   `rows + 1` offsets (`u64`, big-endian; row `r` is the bytes between
//!   offsets `r` and `r + 1`), then a [`Footer`].
//! - `NNNNNNNN.idx`: the blind-index entries sorted (16 bytes of HMAC + a
//!   `u32` row, [`ENTRY`] bytes each), then a directory of `2^bits + 1`
//!   entry numbers (`u64`; bucket `b` — the top `bits` bits of the HMAC —
//!   is the entries between `b` and `b + 1`), then a [`Footer`].
//!
//! Both files hold nothing readable without the store's keys: each pupil is
//! sealed (AES-256-GCM, AAD = the `roll` tree name + generation + row, so a
//! record moved to another row or generation fails to open), and the index
//! holds blind indexes and row numbers. A damaged index can only make a
//! lookup miss or return a pupil that the matching rules then reject.
//! Which generation is in force is sled's `meta` pointer: files of any other
//! generation are leftovers, removed by the next import.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::StoreError;

/// Bytes of one index entry: 16 bytes of blind index + a `u32` row.
pub(crate) const ENTRY: usize = 20;
const FOOTER: usize = 32;
const REC_MAGIC: &[u8; 8] = b"KIMREC01";
const IDX_MAGIC: &[u8; 8] = b"KIMIDX01";
/// The largest sealed pupil record read back (a record is a few hundred
/// bytes; this bounds what a damaged offset table can make us allocate).
const MAX_RECORD: u64 = 1 << 20;

/// The folder of the roll files inside the store's folder.
pub(crate) fn roll_dir(store_dir: &Path) -> PathBuf {
    store_dir.join("roll")
}

fn path(dir: &Path, generation: u32, ext: &str) -> PathBuf {
    dir.join(format!("{generation:08}.{ext}"))
}

/// The generation a roll file's name stands for, if it is one.
pub(crate) fn generation_of(name: &str) -> Option<u32> {
    let (stem, ext) = name.split_once('.')?;
    (stem.len() == 8 && matches!(ext, "rec" | "idx"))
        .then(|| stem.parse().ok())
        .flatten()
}

fn io_error(e: io::Error) -> StoreError {
    StoreError::Sled(sled::Error::Io(e))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("roll file: {what}"))
}

/// The last [`FOOTER`] bytes of both files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Footer {
    generation: u32,
    /// Rows (`.rec`) or entries (`.idx`).
    count: u64,
    /// Where the offset table (`.rec`) or directory (`.idx`) starts.
    table: u64,
    /// Index bits (`.idx`); 0 in `.rec`.
    bits: u8,
}

impl Footer {
    fn encode(&self, magic: &[u8; 8]) -> [u8; FOOTER] {
        let mut f = [0u8; FOOTER];
        f[..8].copy_from_slice(magic);
        f[8..12].copy_from_slice(&self.generation.to_be_bytes());
        f[12..20].copy_from_slice(&self.count.to_be_bytes());
        f[20..28].copy_from_slice(&self.table.to_be_bytes());
        f[28] = self.bits;
        f
    }

    /// Reads and checks the footer of `file`: the magic, the generation,
    /// and that the table it points to ends exactly at the footer.
    fn read(
        file: &File,
        magic: &[u8; 8],
        generation: u32,
        table_len: impl Fn(&Footer) -> Option<u64>,
    ) -> Result<Self, StoreError> {
        let len = file.metadata().map_err(io_error)?.len();
        if len < FOOTER as u64 {
            return Err(corrupt("too short"));
        }
        let mut f = [0u8; FOOTER];
        file.read_exact_at(&mut f, len - FOOTER as u64)
            .map_err(io_error)?;
        let u64_at = |i: usize| u64::from_be_bytes(f[i..i + 8].try_into().expect("8 bytes"));
        let footer = Footer {
            generation: u32::from_be_bytes(f[8..12].try_into().expect("4 bytes")),
            count: u64_at(12),
            table: u64_at(20),
            bits: f[28],
        };
        if &f[..8] != magic || footer.generation != generation {
            return Err(corrupt("wrong magic or generation"));
        }
        let end = table_len(&footer)
            .and_then(|t| footer.table.checked_add(t))
            .and_then(|t| t.checked_add(FOOTER as u64));
        if end != Some(len) {
            return Err(corrupt("tables do not fit the file"));
        }
        Ok(footer)
    }
}

fn u64_at(file: &File, at: u64) -> Result<u64, StoreError> {
    let mut b = [0u8; 8];
    file.read_exact_at(&mut b, at).map_err(io_error)?;
    Ok(u64::from_be_bytes(b))
}

/// Two consecutive `u64`s at `at` (one read).
fn u64_pair_at(file: &File, at: u64) -> Result<(u64, u64), StoreError> {
    let mut b = [0u8; 16];
    file.read_exact_at(&mut b, at).map_err(io_error)?;
    Ok((
        u64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
        u64::from_be_bytes(b[8..].try_into().expect("8 bytes")),
    ))
}

/// Ends a roll file: its table of `u64`s, its footer, then a sync to disk.
fn end_file(mut out: BufWriter<File>, table: &[u64], footer: &[u8]) -> Result<(), StoreError> {
    for v in table {
        out.write_all(&v.to_be_bytes()).map_err(io_error)?;
    }
    out.write_all(footer).map_err(io_error)?;
    let file = out.into_inner().map_err(|e| io_error(e.into_error()))?;
    file.sync_all().map_err(io_error)
}

/// Writes a `.rec` file: sealed records in row order.
pub(crate) struct RecordWriter {
    out: BufWriter<File>,
    offsets: Vec<u64>,
    at: u64,
}

impl RecordWriter {
    /// Creates the file (refuses an existing one: a leftover of a crashed
    /// import is removed before the import starts).
    pub(crate) fn create(dir: &Path, generation: u32) -> Result<Self, StoreError> {
        crate::fsmode::create_dir_all(dir).map_err(io_error)?;
        let file =
            crate::fsmode::create_new_private(&path(dir, generation, "rec")).map_err(io_error)?;
        Ok(Self {
            out: BufWriter::with_capacity(1 << 20, file),
            offsets: vec![0],
            at: 0,
        })
    }

    /// Appends the next row's sealed record.
    pub(crate) fn push(&mut self, sealed: &[u8]) -> Result<(), StoreError> {
        self.out.write_all(sealed).map_err(io_error)?;
        self.at += sealed.len() as u64;
        self.offsets.push(self.at);
        Ok(())
    }

    /// Writes the offset table and footer and syncs the file to disk.
    pub(crate) fn finish(self, generation: u32) -> Result<(), StoreError> {
        let footer = Footer {
            generation,
            count: self.offsets.len() as u64 - 1,
            table: self.at,
            bits: 0,
        };
        end_file(self.out, &self.offsets, &footer.encode(REC_MAGIC))
    }
}

/// Writes a `.idx` file from entries handed over in sorted order.
pub(crate) struct IndexWriter {
    out: BufWriter<File>,
    bits: u8,
    /// `dir[b]`: the number of the first entry of bucket `b`.
    dir: Vec<u64>,
    entries: u64,
    last: Option<[u8; ENTRY]>,
}

impl IndexWriter {
    pub(crate) fn create(dir: &Path, generation: u32, bits: u8) -> Result<Self, StoreError> {
        let file =
            crate::fsmode::create_new_private(&path(dir, generation, "idx")).map_err(io_error)?;
        Ok(Self {
            out: BufWriter::with_capacity(1 << 20, file),
            bits,
            dir: Vec::with_capacity((1usize << bits) + 1),
            entries: 0,
            last: None,
        })
    }

    /// Appends `e`, which must not sort before the entry before it.
    pub(crate) fn push(&mut self, e: &[u8; ENTRY]) -> Result<(), StoreError> {
        if self.last.is_some_and(|l| l > *e) {
            return Err(corrupt("index entries out of order"));
        }
        let b = bucket(e[..16].try_into().expect("16 bytes"), self.bits) as usize;
        while self.dir.len() <= b {
            self.dir.push(self.entries);
        }
        self.out.write_all(e).map_err(io_error)?;
        self.entries += 1;
        self.last = Some(*e);
        Ok(())
    }

    pub(crate) fn finish(mut self, generation: u32) -> Result<(), StoreError> {
        while self.dir.len() <= 1usize << self.bits {
            self.dir.push(self.entries);
        }
        let footer = Footer {
            generation,
            count: self.entries,
            table: self.entries * ENTRY as u64,
            bits: self.bits,
        };
        end_file(self.out, &self.dir, &footer.encode(IDX_MAGIC))
    }
}

/// Makes the files' names durable (after both were synced).
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error)
}

/// The bucket of a blind index: its top `bits` bits.
pub(crate) fn bucket(h: &[u8; 16], bits: u8) -> u32 {
    let top = u32::from_be_bytes(h[..4].try_into().expect("4 bytes"));
    top.checked_shr(32 - u32::from(bits)).unwrap_or(0)
}

/// One generation's files, open for reading.
#[derive(Debug)]
pub(crate) struct RollFiles {
    pub generation: u32,
    rec: File,
    rec_footer: Footer,
    idx: File,
    idx_footer: Footer,
}

impl RollFiles {
    pub(crate) fn open(dir: &Path, generation: u32) -> Result<Self, StoreError> {
        let open = |ext| File::open(path(dir, generation, ext)).map_err(io_error);
        let (rec, idx) = (open("rec")?, open("idx")?);
        let rec_footer = Footer::read(&rec, REC_MAGIC, generation, |f| {
            f.count.checked_add(1)?.checked_mul(8)
        })?;
        let idx_footer = Footer::read(&idx, IDX_MAGIC, generation, |f| {
            if f.bits > 32 || f.table != f.count.checked_mul(ENTRY as u64)? {
                return None;
            }
            ((1u64 << f.bits) + 1).checked_mul(8)
        })?;
        Ok(Self {
            generation,
            rec,
            rec_footer,
            idx,
            idx_footer,
        })
    }

    pub(crate) fn rows(&self) -> u32 {
        u32::try_from(self.rec_footer.count).unwrap_or(u32::MAX)
    }

    /// Adds to `rows` the row of every entry whose blind index is `h`.
    pub(crate) fn rows_for(
        &self,
        h: &[u8; 16],
        rows: &mut std::collections::BTreeSet<u32>,
    ) -> Result<(), StoreError> {
        let f = &self.idx_footer;
        let b = u64::from(bucket(h, f.bits));
        let (start, end) = u64_pair_at(&self.idx, f.table + b * 8)?;
        if start > end || end > f.count {
            return Err(corrupt("index directory"));
        }
        if start == end {
            return Ok(());
        }
        let mut buf = vec![0u8; usize::try_from((end - start) * ENTRY as u64).unwrap_or(0)];
        self.idx
            .read_exact_at(&mut buf, start * ENTRY as u64)
            .map_err(io_error)?;
        for e in buf.chunks_exact(ENTRY) {
            if e[..16] == h[..] {
                rows.insert(u32::from_be_bytes(e[16..].try_into().expect("4 bytes")));
            }
        }
        Ok(())
    }

    /// The sealed record of `row`.
    pub(crate) fn record(&self, row: u32) -> Result<Vec<u8>, StoreError> {
        let f = &self.rec_footer;
        if u64::from(row) >= f.count {
            return Err(corrupt("row beyond the roll"));
        }
        let (start, end) = u64_pair_at(&self.rec, f.table + u64::from(row) * 8)?;
        if start > end || end > f.table || end - start > MAX_RECORD {
            return Err(corrupt("record offsets"));
        }
        let mut buf = vec![0u8; usize::try_from(end - start).unwrap_or(0)];
        self.rec.read_exact_at(&mut buf, start).map_err(io_error)?;
        Ok(buf)
    }

    /// Every sealed record in row order (for key rotation).
    pub(crate) fn for_each_record<E: From<StoreError>>(
        &self,
        mut f: impl FnMut(u32, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let table = self.rec_footer.table;
        let mut start = u64_at(&self.rec, table)?;
        for row in 0..self.rows() {
            let end = u64_at(&self.rec, table + (u64::from(row) + 1) * 8)?;
            if start > end || end > table || end - start > MAX_RECORD {
                return Err(corrupt("record offsets").into());
            }
            let mut buf = vec![0u8; usize::try_from(end - start).unwrap_or(0)];
            self.rec.read_exact_at(&mut buf, start).map_err(io_error)?;
            f(row, &buf)?;
            start = end;
        }
        Ok(())
    }
}

/// Reads both files of `generation` once, front to back, so the OS page
/// cache holds them (after a reboot the first lookups would otherwise each
/// wait for the disk). Returns the bytes read.
pub(crate) fn warm(dir: &Path, generation: u32) -> Result<u64, StoreError> {
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 20];
    for ext in ["idx", "rec"] {
        let mut f = File::open(path(dir, generation, ext)).map_err(io_error)?;
        loop {
            let n = f.read(&mut buf).map_err(io_error)?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    Ok(total)
}

/// Removes the files of every generation in `dir` for which `remove` is
/// true (and nothing else). A missing folder is no roll files.
pub(crate) fn remove_generations(
    dir: &Path,
    remove: impl Fn(u32) -> bool,
) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(e)),
    };
    let mut removed = false;
    for entry in entries {
        let entry = entry.map_err(io_error)?;
        let name = entry.file_name();
        if let Some(g) = name.to_str().and_then(generation_of) {
            if remove(g) {
                std::fs::remove_file(entry.path()).map_err(io_error)?;
                removed = true;
            }
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "rollfile_tests.rs"]
mod tests;
