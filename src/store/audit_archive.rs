//! Where the audit chain's events are read from (store format 3): every
//! event is appended to sled's `audit` tree inside the transaction of the
//! change it records; older ones are also copied, in chunks of
//! [`CHUNK_EVENTS`], into plain files under `<store>/audit/` indexed in the
//! `audit_archive` tree, and read from there. A reader of millions of
//! events (`kim report`, `kim audit verify`, a restore's check) then reads
//! files front to back instead of paying sled's per-item cost and the
//! memory its page cache holds on to while a long scan runs.
//!
//! Why a copy and not a move: sled 0.34 overwrites every free segment of
//! its file at each open, so taking gigabytes out of it would make every
//! later open (the daemon's, each offline admin command's) write them
//! again; the copy costs the archive's size on disk (about 25 MiB for a
//! county's year).
//!
//! An event's bytes are the same in a file as in sled (the JSON its hash
//! covers), so a file holds nothing a reader must trust: every link is
//! still checked. What is indexed is read from the archive only (sled's
//! copy of it is not read again). [`Store::audit_compact`] appends a run of
//! events to the current file and `fdatasync`s it, then indexes the chunks
//! in one sled transaction. A crash between the two leaves bytes past the
//! indexed end of the file, which no reader reads and the next pass cuts
//! off. The newest events are only in sled ([`KEEP_LOOSE`] behind the
//! head): the recent history an admin reads is where it always was.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Store, StoreError};

/// Events a chunk holds (the unit the index points at; about 90 KiB).
pub const CHUNK_EVENTS: u64 = 256;

/// Events a file holds at most before the next file is begun (about
/// 90 MiB: a backup copies whole files).
pub const FILE_EVENTS: u64 = 256 * CHUNK_EVENTS;

/// Events behind the head that the daemon leaves in sled.
pub const KEEP_LOOSE: u64 = 4096;

/// Chunks the daemon archives per pass (it passes every 500 ms).
pub const CHUNKS_PER_PASS: usize = 16;

/// The folder of the archive files, inside the store.
pub const ARCHIVE_DIR: &str = "audit";

/// One stored event's bytes: a value of `audit`, or a slice of a chunk.
#[derive(Clone)]
pub struct RawEvent {
    buf: Buf,
    range: Range<usize>,
}

#[derive(Clone)]
enum Buf {
    Sled(sled::IVec),
    Chunk(Arc<Vec<u8>>),
}

impl RawEvent {
    pub(super) fn sled(v: sled::IVec) -> Self {
        let range = 0..v.len();
        Self {
            buf: Buf::Sled(v),
            range,
        }
    }
}

impl AsRef<[u8]> for RawEvent {
    fn as_ref(&self) -> &[u8] {
        match &self.buf {
            Buf::Sled(v) => &v[self.range.clone()],
            Buf::Chunk(v) => &v[self.range.clone()],
        }
    }
}

impl std::ops::Deref for RawEvent {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_ref()
    }
}

/// Events framed for a file: each as its length (u32, little-endian) and
/// bytes.
pub fn encode<'a>(events: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        let len = u32::try_from(e.len()).expect("an audit event under 4 GiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(e);
    }
    out
}

/// The ranges of the framed events in `bytes`; `None` if they are not.
pub fn decode(bytes: &[u8]) -> Option<Vec<Range<usize>>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let len = bytes.get(at..at.checked_add(4)?)?;
        let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
        let start = at + 4;
        let end = start.checked_add(len)?;
        if end > bytes.len() {
            return None;
        }
        out.push(start..end);
        at = end;
    }
    (!out.is_empty()).then_some(out)
}

/// Where a chunk is: the file (named by its first event), the offset and
/// length of its bytes, and how many events it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub first: u64,
    pub file: u64,
    pub offset: u64,
    pub len: u32,
    pub count: u32,
}

impl Chunk {
    fn to_bytes(self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&self.file.to_le_bytes());
        b[8..16].copy_from_slice(&self.offset.to_le_bytes());
        b[16..20].copy_from_slice(&self.len.to_le_bytes());
        b[20..].copy_from_slice(&self.count.to_le_bytes());
        b
    }

    pub(super) fn from_kv(k: &[u8], v: &[u8]) -> Result<Self, StoreError> {
        let bad = || StoreError::Corrupt("an audit archive index entry".into());
        let u64_at = |r: Range<usize>| -> Result<u64, StoreError> {
            Ok(u64::from_le_bytes(
                v.get(r).ok_or_else(bad)?.try_into().map_err(|_| bad())?,
            ))
        };
        let u32_at = |r: Range<usize>| -> Result<u32, StoreError> {
            Ok(u32::from_le_bytes(
                v.get(r).ok_or_else(bad)?.try_into().map_err(|_| bad())?,
            ))
        };
        if v.len() != 24 {
            return Err(bad());
        }
        Ok(Self {
            first: seq_of(k)?,
            file: u64_at(0..8)?,
            offset: u64_at(8..16)?,
            len: u32_at(16..20)?,
            count: u32_at(20..24)?,
        })
    }

    pub(super) fn end(&self) -> u64 {
        self.first + u64::from(self.count)
    }
}

pub(super) fn seq_of(key: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("audit key".into()))
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Sled(sled::Error::Io(e))
}

/// The archive file that begins with event `first`.
pub fn file_path(store: &Path, first: u64) -> PathBuf {
    store.join(ARCHIVE_DIR).join(format!("{first:020}.events"))
}

/// Reads a chunk's events (from `from` on), with `open` the file last
/// opened, kept for the next chunk of the same file.
pub(super) fn read_chunk(
    dir: &Path,
    c: &Chunk,
    from: u64,
    open: &mut Option<(u64, File)>,
) -> Result<Vec<(u64, RawEvent)>, StoreError> {
    let unreadable = |why: &str| {
        StoreError::Corrupt(format!(
            "the audit archive chunk from event {} cannot be read: {why}",
            c.first
        ))
    };
    if open.as_ref().is_none_or(|(f, _)| *f != c.file) {
        let f =
            File::open(file_path(dir, c.file)).map_err(|e| unreadable(&e.kind().to_string()))?;
        *open = Some((c.file, f));
    }
    let (_, f) = open.as_mut().expect("opened above");
    // Read into spare capacity (not zeroed first: a report reads gigabytes).
    let mut buf = Vec::with_capacity(c.len as usize);
    f.seek(SeekFrom::Start(c.offset))
        .and_then(|_| f.take(u64::from(c.len)).read_to_end(&mut buf))
        .map_err(|e| unreadable(&e.kind().to_string()))?;
    if buf.len() != c.len as usize {
        return Err(unreadable("the file ends inside it"));
    }
    let ranges = decode(&buf).ok_or_else(|| unreadable("not framed events"))?;
    if ranges.len() != c.count as usize {
        return Err(unreadable("not the events indexed"));
    }
    let buf = Arc::new(buf);
    Ok(ranges
        .into_iter()
        .zip(c.first..)
        .filter(|(_, seq)| *seq >= from)
        .map(|(range, seq)| {
            (
                seq,
                RawEvent {
                    buf: Buf::Chunk(buf.clone()),
                    range,
                },
            )
        })
        .collect())
}

/// Reads the chain's events in order from a sequence number, wherever each
/// is stored. A missing event is skipped (the chain check names the gap).
pub struct Cursor<'a> {
    store: &'a Store,
    next: u64,
    ready: VecDeque<(u64, RawEvent)>,
    from: Source,
    file: Option<(u64, File)>,
    done: bool,
}

/// Where the cursor is reading: on in `audit`, on in the archive's index,
/// or neither (look the next event up).
enum Source {
    Loose(sled::Iter),
    Archive(sled::Iter),
    Lookup,
}

/// Events the cursor reads from `audit` in one go.
const BATCH: usize = 256;

impl<'a> Cursor<'a> {
    fn new(store: &'a Store, from: u64) -> Self {
        Self {
            store,
            next: from.max(1),
            ready: VecDeque::new(),
            from: Source::Lookup,
            file: None,
            done: false,
        }
    }

    fn take_chunk(&mut self, c: &Chunk) -> Result<bool, StoreError> {
        let events = read_chunk(&self.store.dir, c, self.next, &mut self.file)?;
        let Some(&(last, _)) = events.last() else {
            return Ok(false);
        };
        self.ready.extend(events);
        self.next = last + 1;
        Ok(true)
    }

    /// Fills `ready` with at least one event, or finds there is none.
    fn fill(&mut self) -> Result<(), StoreError> {
        let t = &self.store.t;
        loop {
            match &mut self.from {
                Source::Loose(it) => {
                    while self.ready.len() < BATCH {
                        match it.next().transpose()? {
                            Some((k, v)) if seq_of(&k)? == self.next => {
                                self.ready.push_back((self.next, RawEvent::sled(v)));
                                self.next += 1;
                            }
                            // A gap (or the end): look up.
                            _ => {
                                self.from = Source::Lookup;
                                break;
                            }
                        }
                    }
                    if !self.ready.is_empty() {
                        return Ok(());
                    }
                }
                Source::Archive(it) => match it.next().transpose()? {
                    Some((k, v)) if seq_of(&k)? == self.next => {
                        let c = Chunk::from_kv(&k, &v)?;
                        if self.take_chunk(&c)? {
                            return Ok(());
                        }
                        self.from = Source::Lookup;
                    }
                    _ => self.from = Source::Lookup,
                },
                Source::Lookup => {
                    let key = self.next.to_be_bytes();
                    // Archived: read from the archive. Otherwise from sled
                    // (every event is there; the archive only grows at its
                    // end, so what sled gives from here on is not indexed
                    // or is the same bytes).
                    if let Some((k, v)) = t.audit_archive.range(..=key).next_back().transpose()? {
                        let c = Chunk::from_kv(&k, &v)?;
                        if c.end() > self.next && self.take_chunk(&c)? {
                            self.from =
                                Source::Archive(t.audit_archive.range(self.next.to_be_bytes()..));
                            return Ok(());
                        }
                    }
                    if t.audit.contains_key(key)? {
                        self.from = Source::Loose(t.audit.range(key..));
                        continue;
                    }
                    // Not stored: go on from the next one that is, if any.
                    let loose = t.audit.range(key..).keys().next().transpose()?;
                    let archived = t.audit_archive.range(key..).keys().next().transpose()?;
                    let mut after = None;
                    for k in [loose, archived].into_iter().flatten() {
                        let seq = seq_of(&k)?;
                        after = Some(after.map_or(seq, |a: u64| a.min(seq)));
                    }
                    match after {
                        Some(seq) if seq > self.next => self.next = seq,
                        _ => {
                            self.done = true;
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

impl Iterator for Cursor<'_> {
    type Item = Result<(u64, RawEvent), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ready.is_empty() && !self.done {
            if let Err(e) = self.fill() {
                self.done = true;
                return Some(Err(e));
            }
        }
        self.ready.pop_front().map(Ok)
    }
}

impl Store {
    /// The audit events from `from` on, in order, as stored.
    pub fn audit_cursor(&self, from: u64) -> Cursor<'_> {
        Cursor::new(self, from)
    }

    /// The stored bytes of audit event `seq`, from where readers read it.
    pub fn audit_raw_at(&self, seq: u64) -> Result<Option<RawEvent>, StoreError> {
        let key = seq.to_be_bytes();
        if let Some((k, v)) = self.t.audit_archive.range(..=key).next_back().transpose()? {
            let c = Chunk::from_kv(&k, &v)?;
            if c.end() > seq {
                return Ok(read_chunk(&self.dir, &c, seq, &mut None)?
                    .into_iter()
                    .next()
                    .map(|(_, e)| e));
            }
        }
        Ok(self.t.audit.get(key)?.map(RawEvent::sled))
    }

    /// Every archive chunk, oldest first (for copying the archive).
    pub fn audit_chunks(&self) -> Result<Vec<Chunk>, StoreError> {
        self.t
            .audit_archive
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Chunk::from_kv(&k, &v)
            })
            .collect()
    }

    /// Archives audit events: whole chunks of [`CHUNK_EVENTS`] consecutive
    /// events after the archive's end that lie more than `keep_loose`
    /// behind the head, oldest first, at most `max_chunks` of them (fewer
    /// at the end of a file). Returns the chunks archived. Holds the
    /// writer lock, so a backup or a key rotation never sees a pass half
    /// done. A gap in sled stops it (nothing is archived across it; the
    /// chain check names the gap).
    pub fn audit_compact(&self, keep_loose: u64, max_chunks: usize) -> Result<usize, StoreError> {
        self.archive_pass(keep_loose, max_chunks, FILE_EVENTS)
    }

    fn archive_pass(
        &self,
        keep_loose: u64,
        max_chunks: usize,
        file_events: u64,
    ) -> Result<usize, StoreError> {
        let _w = self.lock_writer();
        let head = self.audit_head()?.seq;
        let (first, file, mut offset) = match self.t.audit_archive.last()? {
            Some((k, v)) => {
                let c = Chunk::from_kv(&k, &v)?;
                let first = c.end();
                if first - c.file >= file_events {
                    (first, first, 0)
                } else {
                    (first, c.file, c.offset + u64::from(c.len))
                }
            }
            None => (1, 1, 0),
        };
        let room = ((file + file_events - first) / CHUNK_EVENTS) as usize;
        let fits = (head.saturating_sub(keep_loose) + 1).saturating_sub(first) / CHUNK_EVENTS;
        let n = max_chunks.min(room).min(fits as usize);
        if n == 0 {
            return Ok(0);
        }
        let upto = first + n as u64 * CHUNK_EVENTS;
        let mut run = Vec::with_capacity(n * CHUNK_EVENTS as usize);
        for kv in self.t.audit.range(first.to_be_bytes()..upto.to_be_bytes()) {
            let (k, v) = kv?;
            if seq_of(&k)? != first + run.len() as u64 {
                break;
            }
            run.push((k, v));
        }
        // Whole chunks only, and none across a gap.
        let n = run.len() / CHUNK_EVENTS as usize;
        if n == 0 {
            crate::lograte::warning!(
                "audit.archive.gap",
                missing = first + run.len() as u64,
                "audit events missing from the store; not archiving past them (run `kim audit verify`)"
            );
            return Ok(0);
        }
        run.truncate(n * CHUNK_EVENTS as usize);

        // The file first, synced; then the index.
        let dir = self.dir.join(ARCHIVE_DIR);
        crate::fsmode::create_dir_all(&dir).map_err(io)?;
        let path = file_path(&self.dir, file);
        let new = offset == 0;
        let f = crate::fsmode::write_private(&path).map_err(io)?;
        // Bytes past the indexed end are from a pass that did not finish.
        f.set_len(offset).map_err(io)?;
        let mut chunks = Vec::with_capacity(n);
        let mut bytes = Vec::new();
        for (i, events) in run.chunks(CHUNK_EVENTS as usize).enumerate() {
            let framed = encode(events.iter().map(|(_, v)| v.as_ref()));
            let len = u32::try_from(framed.len())
                .map_err(|_| StoreError::Corrupt("an audit chunk over 4 GiB".into()))?;
            chunks.push(Chunk {
                first: first + i as u64 * CHUNK_EVENTS,
                file,
                offset,
                len,
                count: events.len() as u32,
            });
            offset += u64::from(len);
            bytes.extend_from_slice(&framed);
        }
        let start = chunks[0].offset;
        f.write_all_at(&bytes, start)
            .and_then(|()| f.sync_data())
            .map_err(io)?;
        if new {
            File::open(&dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        let mut index = sled::Batch::default();
        for c in &chunks {
            index.insert(&c.first.to_be_bytes(), &c.to_bytes());
        }
        self.t.audit_archive.apply_batch(index).map_err(|e| {
            let e = StoreError::from(e);
            self.write_failed(&e);
            e
        })?;
        Ok(n)
    }

    /// Copies the archive files and index into `new` (a key rotation's
    /// fresh store; the caller holds the writer lock).
    pub(crate) fn copy_archive_into(&self, new: &Store) -> Result<(), StoreError> {
        let mut files = std::collections::BTreeSet::new();
        for c in self.audit_chunks()? {
            files.insert(c.file);
            new.t
                .audit_archive
                .insert(c.first.to_be_bytes(), &c.to_bytes())?;
        }
        if !files.is_empty() {
            crate::fsmode::create_dir_all(&new.dir.join(ARCHIVE_DIR)).map_err(io)?;
        }
        for file in files {
            let to = file_path(&new.dir, file);
            std::fs::copy(file_path(&self.dir, file), &to).map_err(io)?;
            File::open(&to).and_then(|f| f.sync_all()).map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "audit_archive_tests.rs"]
pub(super) mod tests;
