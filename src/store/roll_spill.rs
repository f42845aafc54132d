//! The blind-index spill of a roll import: entries go to unnamed scratch
//! files as they come and are sorted part by part at the end, so an
//! import's memory does not grow with the roll.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

use super::{IndexHash, INDEX_ENTRY};
use crate::store::StoreError;

/// Blind-index entries of an import, spilled to scratch files as they come
/// (so memory does not grow with the number of names on the roll), split by
/// the top 4 bits of the blind index: each part is sorted on its own at the
/// end, and the parts in order are the whole index in order.
///
/// The files are unnamed (`O_TMPFILE`) in the store's folder, so they vanish
/// when closed, also on a crash. They hold blind indexes and row numbers:
/// nothing that is personal data without the store's keys.
pub(super) struct IndexSpill {
    parts: Vec<io::BufWriter<File>>,
    pub(super) entries: u64,
}

const SPILL_PARTS: usize = 16;

fn io_error(e: io::Error) -> StoreError {
    StoreError::Sled(sled::Error::Io(e))
}

impl IndexSpill {
    pub(super) fn new(dir: &std::path::Path) -> Result<Self, StoreError> {
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

    pub(super) fn push(&mut self, h: &IndexHash, row: u32) -> Result<(), StoreError> {
        let part = &mut self.parts[usize::from(h[0] >> 4)];
        part.write_all(h)
            .and_then(|()| part.write_all(&row.to_be_bytes()))
            .map_err(io_error)?;
        self.entries += 1;
        Ok(())
    }

    /// Each part's entries, sorted, in order; a part is read only when the
    /// one before it has been dropped.
    pub(super) fn sorted_parts(
        self,
    ) -> impl Iterator<Item = Result<Vec<[u8; INDEX_ENTRY]>, StoreError>> {
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
