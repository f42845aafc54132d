//! The audit read apart from sled ([`Detached`]): the archive's index
//! entries from an event on, whose files are read as the reader goes, and
//! the events after the archive's end, copied when it is made. A reader
//! that needs nothing more of the store closes sled meanwhile — `kim
//! report` with the daemon stopped gives back the memory sled's open took
//! (about 200 MiB for England's year) while it counts.

use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;

use super::audit_archive::{read_chunk, seq_of, Chunk, RawEvent};
use super::{Store, StoreError};

/// The audit events from one on, in order as stored, without sled; see the
/// module's documentation. A missing event is skipped (the chain check
/// names the gap), as [`Store::audit_cursor`] does.
pub struct Detached {
    dir: PathBuf,
    from: u64,
    chunks: VecDeque<Chunk>,
    loose: VecDeque<(u64, RawEvent)>,
    ready: VecDeque<(u64, RawEvent)>,
    file: Option<(u64, File)>,
}

impl Store {
    /// The audit events from `from` on, as [`Store::audit_cursor`] reads
    /// them, in a reader that outlives sled: `None` if more than
    /// `max_loose` of them are in sled only (a store not archived yet) or
    /// the archive's index is not one run; read with the cursor then.
    pub fn audit_detached(
        &self,
        from: u64,
        max_loose: usize,
    ) -> Result<Option<Detached>, StoreError> {
        let from = from.max(1);
        let index = &self.t.audit_archive;
        // The chunk that holds `from`, if one does, and every later one.
        let start = match index.range(..=from.to_be_bytes()).next_back().transpose()? {
            Some((k, v)) if Chunk::from_kv(&k, &v)?.end() > from => seq_of(&k)?,
            _ => from,
        };
        let mut chunks = VecDeque::new();
        let mut end: Option<u64> = None;
        for kv in index.range(start.to_be_bytes()..) {
            let (k, v) = kv?;
            let c = Chunk::from_kv(&k, &v)?;
            if end.is_some_and(|e| e != c.first) {
                return Ok(None);
            }
            end = Some(c.end());
            chunks.push_back(c);
        }
        let mut loose = VecDeque::new();
        let after = end.map_or(from, |e| e.max(from));
        for kv in self.t.audit.range(after.to_be_bytes()..) {
            if loose.len() >= max_loose {
                return Ok(None);
            }
            let (k, v) = kv?;
            loose.push_back((seq_of(&k)?, RawEvent::sled(v)));
        }
        Ok(Some(Detached {
            dir: self.dir.clone(),
            from,
            chunks,
            loose,
            ready: VecDeque::new(),
            file: None,
        }))
    }
}

impl Iterator for Detached {
    type Item = Result<(u64, RawEvent), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(Ok(e));
            }
            let Some(c) = self.chunks.pop_front() else {
                return self.loose.pop_front().map(Ok);
            };
            match read_chunk(&self.dir, &c, self.from, &mut self.file) {
                Ok(events) => self.ready.extend(events),
                Err(e) => {
                    self.chunks.clear();
                    self.loose.clear();
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "audit_detached_tests.rs"]
mod tests;
