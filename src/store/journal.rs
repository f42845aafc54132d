//! The accept journal: an append-only file in `<store>/journal/` that makes
//! an accepted notification durable before its 202 without a sled
//! transaction on the way. sled 0.34 holds a global lock for the whole of
//! its flush (write + sync) that every transaction needs exclusively, so a
//! sled-only accept path runs commit, sync, commit, sync… in series. Here
//! the accept path appends whole batches of frames and `fdatasync`s this
//! file; the same notifications are then applied to the sled trees in one
//! transaction per batch in the background (`super::writer`), and a
//! segment is deleted once everything in it is in sled and sled is flushed.
//! At open, the store applies whatever the journal still holds
//! ([`Store::replay_journal`](super::Store::replay_journal)).
//!
//! A segment file `NNNNNNNNNNNNNNNN.journal` is a sequence of frames, each a
//! `u32` (big-endian) length and that many bytes sealed with the store's
//! sealing key (AES-256-GCM; AAD = "journal" + segment + offset), so a
//! frame is secret, cannot be altered, and cannot be moved. Inside: the
//! notification's plain record (identifiers, no personal data) and its
//! sealed payload. A crash can leave a torn frame only after the last
//! `fdatasync`, that is after everything acknowledged: reading stops there.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::crypto::SealKey;
use super::StoreError;

/// The AAD domain of journal frames (not a tree).
const DOMAIN: &str = "journal";
/// A new segment is started past this size (at a batch boundary).
const SEGMENT_BYTES: u64 = 32 << 20;
/// A frame is a notification of at most 64 KiB sealed, twice at worst.
const MAX_FRAME: usize = 1 << 20;

pub(crate) fn journal_dir(store_dir: &Path) -> PathBuf {
    store_dir.join("journal")
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:016}.journal"))
}

fn segment_of(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".journal")?;
    (stem.len() == 16).then(|| stem.parse().ok()).flatten()
}

fn io_error(e: io::Error) -> StoreError {
    StoreError::Sled(sled::Error::Io(e))
}

fn aad_key(segment: u64, offset: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&segment.to_be_bytes());
    k[8..].copy_from_slice(&offset.to_be_bytes());
    k
}

/// The segments in `dir`, oldest first.
pub(crate) fn segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let name = entry.map_err(io_error)?.file_name();
        if let Some(s) = name.to_str().and_then(segment_of) {
            found.push(s);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Deletes every segment older than `keep_from` (they are all in sled,
/// and sled is flushed).
pub(crate) fn remove_before(dir: &Path, keep_from: u64) -> Result<(), StoreError> {
    let mut removed = false;
    for s in segments(dir)? {
        if s < keep_from {
            std::fs::remove_file(segment_path(dir, s)).map_err(io_error)?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error)
}

/// What one frame holds: a notification's record and sealed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub record: Vec<u8>,
    pub sealed: Vec<u8>,
}

impl Entry {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(4 + self.record.len() + self.sealed.len());
        v.extend_from_slice(&(self.record.len() as u32).to_be_bytes());
        v.extend_from_slice(&self.record);
        v.extend_from_slice(&self.sealed);
        v
    }

    fn decode(plain: &[u8]) -> Option<Self> {
        let len = u32::from_be_bytes(plain.get(..4)?.try_into().ok()?) as usize;
        let record = plain.get(4..4 + len)?.to_vec();
        let sealed = plain.get(4 + len..)?.to_vec();
        Some(Self { record, sealed })
    }
}

/// The segment being appended to. Owned by the accept path's one writer.
pub(crate) struct Journal {
    dir: PathBuf,
    file: File,
    segment: u64,
    /// Bytes known good (written and synced, or before any failure).
    len: u64,
}

impl Journal {
    /// Starts a new segment after every one in `dir` (which replay has
    /// emptied, or whose older segments the applier still has to delete).
    pub(crate) fn create(store_dir: &Path) -> Result<Self, StoreError> {
        let dir = journal_dir(store_dir);
        std::fs::create_dir_all(&dir).map_err(io_error)?;
        let segment = segments(&dir)?.last().map_or(1, |s| s + 1);
        let file = Self::new_file(&dir, segment)?;
        Ok(Self {
            dir,
            file,
            segment,
            len: 0,
        })
    }

    fn new_file(dir: &Path, segment: u64) -> Result<File, StoreError> {
        let file = File::options()
            .append(true)
            .create_new(true)
            .open(segment_path(dir, segment))
            .map_err(io_error)?;
        sync_dir(dir)?;
        Ok(file)
    }

    pub(crate) fn segment(&self) -> u64 {
        self.segment
    }

    /// Appends `entries` and syncs them to disk: when this returns `Ok`,
    /// they survive a crash. On error nothing of them counts: the file is
    /// cut back to where it was (or, if that fails too, a new segment is
    /// started, and replay stops at the torn end of this one).
    pub(crate) fn append(&mut self, key: &SealKey, entries: &[Entry]) -> Result<(), StoreError> {
        let mut buf = Vec::new();
        let mut at = self.len;
        for e in entries {
            let sealed = key.seal(DOMAIN, &aad_key(self.segment, at), &e.encode())?;
            buf.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
            buf.extend_from_slice(&sealed);
            at = self.len + buf.len() as u64;
        }
        let written = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len = at;
                Ok(())
            }
            Err(e) => {
                let cut = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.sync_data());
                if cut.is_err() {
                    self.start_next()?;
                }
                Err(io_error(e))
            }
        }
    }

    /// Starts the next segment if this one is big enough; returns the
    /// segment just finished.
    pub(crate) fn rotate_if_full(&mut self) -> Result<Option<u64>, StoreError> {
        if self.len < SEGMENT_BYTES {
            return Ok(None);
        }
        let done = self.segment;
        self.start_next()?;
        Ok(Some(done))
    }

    fn start_next(&mut self) -> Result<(), StoreError> {
        self.file = Self::new_file(&self.dir, self.segment + 1)?;
        self.segment += 1;
        self.len = 0;
        Ok(())
    }
}

/// Reads segment `segment`'s frames, in order, up to its end or to the
/// first frame that does not open (a torn write after the last sync).
/// Returns the entries and whether the segment ended cleanly.
pub(crate) fn read_segment(
    dir: &Path,
    segment: u64,
    key: &SealKey,
) -> Result<(Vec<Entry>, bool), StoreError> {
    let mut bytes = Vec::new();
    File::open(segment_path(dir, segment))
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io_error)?;
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(len) = bytes
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize)
        else {
            return Ok((out, false));
        };
        let Some(frame) = bytes.get(at + 4..at + 4 + len).filter(|_| len <= MAX_FRAME) else {
            return Ok((out, false));
        };
        let Some(entry) = key
            .open(DOMAIN, &aad_key(segment, at as u64), frame)
            .ok()
            .and_then(|plain| Entry::decode(&plain))
        else {
            return Ok((out, false));
        };
        out.push(entry);
        at += 4 + len;
    }
    Ok((out, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    fn key() -> SealKey {
        SealKey::from_bytes(&[7; 32])
    }

    fn entry(i: u8) -> Entry {
        Entry {
            record: format!("{{\"n\":{i}}}").into_bytes(),
            sealed: vec![i; 100 + usize::from(i)],
        }
    }

    #[test]
    fn frames_round_trip_in_order_across_appends() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path()).unwrap();
        assert_eq!(j.segment(), 1);
        j.append(&key(), &[entry(1), entry(2)]).unwrap();
        j.append(&key(), &[entry(3)]).unwrap();
        let jd = journal_dir(dir.path());
        assert_eq!(segments(&jd).unwrap(), [1]);
        let (got, clean) = read_segment(&jd, 1, &key()).unwrap();
        assert!(clean);
        assert_eq!(got, [entry(1), entry(2), entry(3)]);
        // Nothing readable in the clear.
        let raw = std::fs::read(segment_path(&jd, 1)).unwrap();
        assert!(!raw.windows(5).any(|w| w == b"{\"n\":"));
        // A new journal starts after the existing segment.
        let j2 = Journal::create(dir.path()).unwrap();
        assert_eq!(j2.segment(), 2);
        remove_before(&jd, 2).unwrap();
        assert_eq!(segments(&jd).unwrap(), [2]);
    }

    #[test]
    fn a_torn_or_altered_tail_ends_the_segment_and_keeps_what_came_before() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path()).unwrap();
        j.append(&key(), &[entry(1), entry(2)]).unwrap();
        let jd = journal_dir(dir.path());
        let path = segment_path(&jd, 1);
        let full = std::fs::read(&path).unwrap();
        // Torn: the last frame half written.
        std::fs::write(&path, &full[..full.len() - 30]).unwrap();
        let (got, clean) = read_segment(&jd, 1, &key()).unwrap();
        assert_eq!((got, clean), (vec![entry(1)], false));
        // Altered: one byte of the first frame.
        let mut bad = full.clone();
        bad[10] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let (got, clean) = read_segment(&jd, 1, &key()).unwrap();
        assert!(got.is_empty() && !clean);
        // Another key opens nothing.
        std::fs::write(&path, &full).unwrap();
        let other = SealKey::from_bytes(&[8; 32]);
        assert!(read_segment(&jd, 1, &other).unwrap().0.is_empty());
        // A frame moved to another segment does not open.
        std::fs::write(segment_path(&jd, 5), &full).unwrap();
        assert!(read_segment(&jd, 5, &key()).unwrap().0.is_empty());
    }

    #[test]
    fn segments_rotate_past_their_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path()).unwrap();
        assert_eq!(j.rotate_if_full().unwrap(), None);
        j.len = SEGMENT_BYTES;
        assert_eq!(j.rotate_if_full().unwrap(), Some(1));
        j.append(&key(), &[entry(4)]).unwrap();
        let jd = journal_dir(dir.path());
        assert_eq!(segments(&jd).unwrap(), [1, 2]);
        assert_eq!(read_segment(&jd, 2, &key()).unwrap().0, [entry(4)]);
        assert_eq!(segment_of("0000000000000002.journal"), Some(2));
        assert_eq!(segment_of("2.journal"), None);
    }
}
