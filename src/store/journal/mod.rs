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
//! ([`Store::replay_journal`](super::Store::replay_journal)), after
//! [`scan`] has told a torn tail (never acknowledged) from damage (frames
//! that were acknowledged and no longer open).
//!
//! A segment file `NNNNNNNNNNNNNNNN.journal` is a sequence of frames:
//!
//! ```text
//! "KIMj" | index u32 | head_len u16 | body_len u32 | sealed head | sealed body
//! ```
//!
//! `index` counts the segment's frames from 0. The head is sealed on its
//! own (AES-256-GCM, AAD = segment + the 14-byte prefix) and names the
//! frame: the segment's start frame says how the previous segment ended
//! (frames and bytes acknowledged), an entry's head holds its receipt id,
//! force and police reference (identifiers, no personal data). The body
//! (AAD = segment + index) holds the notification's plain record and its
//! sealed payload. So a frame is secret, cannot be altered or moved; after
//! a damaged frame the reader finds the next one by its magic and its head;
//! and a lost frame can still be named when only its body is damaged.

mod scan;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::crypto::{SealKey, SEAL_OVERHEAD};
use super::StoreError;

pub(crate) use scan::{frame_starts, scan, Damage};

/// The AAD domain of journal frames (not a tree).
const DOMAIN: &str = "journal";
/// A new segment is started past this size (at a batch boundary).
const SEGMENT_BYTES: u64 = 32 << 20;
/// A frame body is a notification of at most 64 KiB sealed, twice at worst.
const MAX_BODY: usize = 1 << 20;
/// A frame head is a few identifiers.
const MAX_HEAD: usize = 4096;
const MAGIC: &[u8; 4] = b"KIMj";
/// magic, index, head length, body length.
const PREFIX: usize = 4 + 4 + 2 + 4;
/// Where `kim journal salvage` keeps segments it could not read whole.
pub(crate) const DAMAGED: &str = "damaged";

pub(crate) fn journal_dir(store_dir: &Path) -> PathBuf {
    store_dir.join("journal")
}

pub(crate) fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:016}.journal"))
}

fn segment_of(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".journal")?;
    (stem.len() == 16).then(|| stem.parse().ok()).flatten()
}

fn io_error(e: io::Error) -> StoreError {
    StoreError::Sled(sled::Error::Io(e))
}

fn head_aad(segment: u64, prefix: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + PREFIX);
    k.push(b'h');
    k.extend_from_slice(&segment.to_be_bytes());
    k.extend_from_slice(prefix);
    k
}

fn body_aad(segment: u64, index: u32) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[0] = b'b';
    k[1..9].copy_from_slice(&segment.to_be_bytes());
    k[9..].copy_from_slice(&index.to_be_bytes());
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

/// Moves segment `segment` into `journal/damaged/` (never deleting it);
/// returns where it went.
pub(crate) fn set_aside(dir: &Path, segment: u64) -> Result<PathBuf, StoreError> {
    let damaged = dir.join(DAMAGED);
    crate::fsmode::create_dir_all(&damaged).map_err(io_error)?;
    let to = segment_path(&damaged, segment);
    std::fs::rename(segment_path(dir, segment), &to).map_err(io_error)?;
    sync_dir(&damaged)?;
    sync_dir(dir)?;
    Ok(to)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error)
}

/// The identifiers of a journaled notification, readable from its frame's
/// head even when the body is damaged: enough to ask the force to re-send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifiers {
    pub receipt: String,
    pub force: String,
    pub police_reference: String,
}

/// How a segment ended: what its successor's start frame vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentEnd {
    pub segment: u64,
    /// Frames acknowledged in it, its start frame included.
    pub frames: u32,
    /// Bytes acknowledged in it.
    pub len: u64,
}

/// A frame's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub(crate) enum Head {
    /// The first frame of every segment.
    Start { prev: Option<SegmentEnd> },
    /// A notification.
    Entry(Identifiers),
}

/// What one entry frame holds: a notification's identifiers, record and
/// sealed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub ids: Identifiers,
    pub record: Vec<u8>,
    pub sealed: Vec<u8>,
}

impl Entry {
    fn encode_body(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(4 + self.record.len() + self.sealed.len());
        v.extend_from_slice(&(self.record.len() as u32).to_be_bytes());
        v.extend_from_slice(&self.record);
        v.extend_from_slice(&self.sealed);
        v
    }

    fn decode_body(ids: Identifiers, plain: &[u8]) -> Option<Self> {
        let len = u32::from_be_bytes(plain.get(..4)?.try_into().ok()?) as usize;
        let record = plain.get(4..4 + len)?.to_vec();
        let sealed = plain.get(4 + len..)?.to_vec();
        Some(Self {
            ids,
            record,
            sealed,
        })
    }
}

/// Appends one sealed frame to `buf`.
fn encode_frame(
    key: &SealKey,
    segment: u64,
    index: u32,
    head: &Head,
    body: Option<&[u8]>,
    buf: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let head_plain = serde_json::to_vec(head).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let sealed_body = match body {
        Some(b) => key.seal(DOMAIN, &body_aad(segment, index), b)?,
        None => Vec::new(),
    };
    let head_len = SEAL_OVERHEAD + head_plain.len();
    let mut prefix = [0u8; PREFIX];
    prefix[..4].copy_from_slice(MAGIC);
    prefix[4..8].copy_from_slice(&index.to_be_bytes());
    prefix[8..10].copy_from_slice(&(head_len as u16).to_be_bytes());
    prefix[10..].copy_from_slice(&(sealed_body.len() as u32).to_be_bytes());
    let sealed_head = key.seal(DOMAIN, &head_aad(segment, &prefix), &head_plain)?;
    debug_assert_eq!(sealed_head.len(), head_len);
    buf.extend_from_slice(&prefix);
    buf.extend_from_slice(&sealed_head);
    buf.extend_from_slice(&sealed_body);
    Ok(())
}

/// The segment being appended to. Owned by the accept path's one writer.
pub(crate) struct Journal {
    dir: PathBuf,
    file: File,
    segment: u64,
    /// Bytes known good (written and synced, or before any failure).
    len: u64,
    /// Frames known good, the start frame included (the next index).
    frames: u32,
    /// A failed append could not be cut back: nothing more goes into this
    /// file; the next append starts a new segment first.
    broken: bool,
}

impl Journal {
    /// Starts a new segment after every one in `dir` (which replay has
    /// emptied, or whose older segments the applier still has to delete).
    pub(crate) fn create(store_dir: &Path, key: &SealKey) -> Result<Self, StoreError> {
        let dir = journal_dir(store_dir);
        crate::fsmode::create_dir_all(&dir).map_err(io_error)?;
        let segment = segments(&dir)?.last().map_or(1, |s| s + 1);
        let file = Self::new_file(&dir, segment, key, None)?;
        let len = file.metadata().map_err(io_error)?.len();
        Ok(Self {
            dir,
            file,
            segment,
            len,
            frames: 1,
            broken: false,
        })
    }

    /// Creates segment `segment` with its start frame, synced, under a
    /// temporary name and then renamed into place: a segment file always
    /// begins with its start frame, so one without it (cut to nothing, say)
    /// is damage, never a segment that was being made. On failure nothing
    /// of it is left behind (if it can be removed).
    fn new_file(
        dir: &Path,
        segment: u64,
        key: &SealKey,
        prev: Option<SegmentEnd>,
    ) -> Result<File, StoreError> {
        let path = segment_path(dir, segment);
        let tmp = path.with_extension("journal.new");
        let _ = std::fs::remove_file(&tmp);
        let mut file = File::options()
            .append(true)
            .create_new(true)
            .mode(crate::fsmode::FILE)
            .open(&tmp)
            .map_err(io_error)?;
        let mut start = Vec::new();
        encode_frame(key, segment, 0, &Head::Start { prev }, None, &mut start)?;
        let written = file
            .write_all(&start)
            .and_then(|()| file.sync_data())
            .and_then(|()| {
                if path.exists() {
                    Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} already exists", path.display()),
                    ))
                } else {
                    std::fs::rename(&tmp, &path)
                }
            })
            .map_err(io_error)
            .and_then(|()| sync_dir(dir));
        if let Err(e) = written {
            drop(file);
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(file)
    }

    pub(crate) fn segment(&self) -> u64 {
        self.segment
    }

    /// Appends `entries` and syncs them to disk: when this returns `Ok`,
    /// they survive a crash. On error nothing of them counts: the file is
    /// cut back to where it was (or, if that fails too, the journal moves
    /// to a new segment before its next append, whose start frame says
    /// where this one's acknowledged frames end).
    pub(crate) fn append(&mut self, key: &SealKey, entries: &[Entry]) -> Result<(), StoreError> {
        if self.broken {
            self.start_next(key)?;
        }
        let mut buf = Vec::new();
        let mut index = self.frames;
        for e in entries {
            encode_frame(
                key,
                self.segment,
                index,
                &Head::Entry(e.ids.clone()),
                Some(&e.encode_body()),
                &mut buf,
            )?;
            index += 1;
        }
        let written = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += buf.len() as u64;
                self.frames = index;
                Ok(())
            }
            Err(e) => {
                let cut = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.sync_data());
                if cut.is_err() {
                    self.broken = true;
                }
                Err(io_error(e))
            }
        }
    }

    /// Starts the next segment if this one is big enough; returns the
    /// segment just finished.
    pub(crate) fn rotate_if_full(&mut self, key: &SealKey) -> Result<Option<u64>, StoreError> {
        if self.len < SEGMENT_BYTES {
            return Ok(None);
        }
        let done = self.segment;
        self.start_next(key)?;
        Ok(Some(done))
    }

    pub(crate) fn start_next(&mut self, key: &SealKey) -> Result<(), StoreError> {
        let prev = SegmentEnd {
            segment: self.segment,
            frames: self.frames,
            len: self.len,
        };
        let file = Self::new_file(&self.dir, self.segment + 1, key, Some(prev))?;
        self.file = file;
        self.segment += 1;
        self.len = self.file.metadata().map_err(io_error)?.len();
        self.frames = 1;
        self.broken = false;
        Ok(())
    }
}
