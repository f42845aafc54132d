//! The encrypted store: sled's trees (the only module that touches sled),
//! the roll's own files (`rollfile`) and the accept journal (`journal`). It
//! owns the single-writer lock that keeps the audit chain linear and the
//! group commit that makes an accepted notification durable before its 202
//! (`writer`). Keys carry no personal data; values that do are sealed.

mod alert_record;
mod alerts_index;
pub mod audit_archive;
pub mod audit_detached;
mod audit_log;
pub mod backup;
pub mod batch;
pub mod crypto;
pub mod expiry_notice;
mod flush;
pub mod format;
mod health;
pub(crate) mod journal;
pub mod kek;
mod notice_content;
pub mod notifications;
mod open;
pub mod outbox;
pub mod ownership;
pub mod replay;
pub mod retention;
pub mod review;
mod review_candidates;
pub mod review_digest;
pub mod review_remind;
pub mod roll;
pub(crate) mod rollfile;
pub mod rotate;
mod shred;
pub mod summary;
pub mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;
use tokio::sync::{watch, Notify};

use crate::audit::checkpoint::{Checkpoint, Signer};
use crate::audit::{AuditEvent, EventKind, Head, Refs};
use crate::calendar::SchoolCalendar;
use crypto::{CryptoError, Keyring, MasterKey};

pub use alerts_index::IndexEntry;
pub(crate) use audit_log::{append_event_in_tx, append_in_tx};
pub use health::{Broken, Health, Unready, CANNOT_WRITE};
pub use notifications::{AcceptOutcome, ChildState, ChildStatus, NotificationRecord, ReceiptId};
pub use replay::{JournalLoss, Replay, Replayed};

/// Tree names. They appear in AAD, so they are part of the on-disk format.
pub mod trees {
    pub const META: &str = "meta";
    pub const NOTIFICATIONS: &str = "notifications";
    pub const PAYLOADS: &str = "payloads";
    /// Not a tree: the AAD domain of data keys, stored inside `payloads`.
    pub const DATA_KEYS: &str = "data_keys";
    pub const REFS: &str = "refs";
    pub const WORK_MATCH: &str = "work_match";
    pub const AUDIT: &str = "audit";
    /// Where older audit events are in the archive files (`audit_archive`).
    pub const AUDIT_ARCHIVE: &str = "audit_archive";
    pub const SCHOOLS: &str = "schools";
    pub const ROLL: &str = "roll";
    pub const ROLL_IDX: &str = "roll_idx";
    pub const REVIEW: &str = "review";
    pub const DISMISSALS: &str = "dismissals";
    pub const OUTBOX: &str = "outbox";
    pub const OUTBOX_ACTIVE: &str = "outbox_active";
    pub const WITHDRAWALS: &str = "withdrawals";
    pub const CHECKPOINTS: &str = "checkpoints";
    /// The outbox by the time each message was queued (`alerts_index`).
    pub const OUTBOX_BY_TIME: &str = "outbox_by_time";
    /// The candidates kept for each review item (sealed; `review_candidates.rs`).
    pub const REVIEW_CANDIDATES: &str = "review_candidates";
}

const KEY_CHECK: &[u8] = b"key_check";
/// The group flusher's backoff after a failed flush.
const FLUSH_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);
const FLUSH_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);
/// sled's page cache, in bytes.
const CACHE_CAPACITY: u64 = 512 * 1024 * 1024;
pub(crate) const AUDIT_HEAD: &[u8] = b"audit_head";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {0} is in use by another process (is `kim serve` running?)")]
    Locked(String),
    #[error("the store failed: {0}")]
    Sled(#[from] sled::Error),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("the store has format version {found}; this kim ({kim}) reads format version {supported} at most: run the kim that wrote it, or a newer one")]
    FormatTooNew {
        found: u32,
        supported: u32,
        kim: &'static str,
    },
    #[error("the master key does not open this store (wrong key file?)")]
    WrongKey,
    #[error("a stored record is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    DayKey(#[from] kek::KekError),
    #[error("notification {0} was purged by retention: its details no longer exist")]
    Shredded(String),
    #[error("the store could not make the write durable")]
    NotDurable,
    #[error(
        "the accept journal is damaged: {segment} at byte {offset}: {lost} acknowledged notification(s) \
         cannot be read, and notifications after them may be held back; nothing was applied or deleted. \
         With the daemon stopped, run `kim journal salvage` to apply every notification that still opens, \
         keep the segment in journal/damaged/ and tell the admin mailbox which references the police must re-send"
    )]
    JournalDamaged {
        segment: String,
        offset: u64,
        lost: u32,
    },
}

impl StoreError {
    /// Whether the caller should answer "try again later" (503) rather than
    /// treat this as a bug.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Sled(_) | Self::NotDurable | Self::DayKey(kek::KekError::Io { .. })
        )
    }
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => Self::Sled(e),
        }
    }
}

/// A write that has committed in memory; `Store::durable` waits until it is
/// on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a write is not durable until Store::durable(ticket) returns"]
pub struct FlushTicket(u64);

#[derive(Debug, Clone, Copy, Default)]
struct FlushState {
    done: u64,
    failed_upto: u64,
}

pub(crate) struct Trees {
    pub meta: sled::Tree,
    pub notifications: sled::Tree,
    pub payloads: sled::Tree,
    pub refs: sled::Tree,
    pub work_match: sled::Tree,
    pub audit: sled::Tree,
    pub audit_archive: sled::Tree,
    pub schools: sled::Tree,
    pub roll: sled::Tree,
    pub roll_idx: sled::Tree,
    pub review: sled::Tree,
    pub dismissals: sled::Tree,
    pub outbox: sled::Tree,
    pub outbox_active: sled::Tree,
    pub withdrawals: sled::Tree,
    pub checkpoints: sled::Tree,
    pub outbox_by_time: sled::Tree,
    pub review_candidates: sled::Tree,
}

pub struct Store {
    db: sled::Db,
    /// sled's data file, for fdatasync: sled's own flush uses
    /// sync_file_range, which does not reach the disk's cache or metadata.
    data_file: Option<std::fs::File>,
    /// The store's folder (for an import's scratch files).
    dir: std::path::PathBuf,
    pub(crate) keys: Keyring,
    /// The per-day keys that seal children's details (`kek`, `shred`).
    pub(crate) days: kek::DayKeys,
    pub(crate) t: Trees,
    /// One writer at a time: every transaction that appends to the audit
    /// chain holds this, so the chain never forks.
    writer: Mutex<()>,
    /// One roll import at a time (each writes the generation after the
    /// current one).
    roll_import: Mutex<()>,
    /// Held by the journal thread around each batch it journals; a backup
    /// takes it to stop new notifications joining the journal while the
    /// applier catches up (`backup`).
    accept_gate: Mutex<()>,
    /// The roll generation in force, its files open (see `roll`).
    roll_files: Mutex<Option<Arc<rollfile::RollFiles>>>,
    /// Accepted notifications in the journal, not yet in the trees.
    pending: Mutex<notifications::Pending>,
    known_refs: notifications::KnownRefs,
    written: AtomicU64,
    flush_wanted: Arc<Notify>,
    flushed: watch::Sender<FlushState>,
    /// Woken when a notification is waiting for the matching stage.
    pub match_wanted: Wake,
    /// Woken when an alert is waiting for the delivery worker.
    pub deliver_wanted: Arc<Notify>,
    /// Decides each alert's deadline (`[delivery]` closures and day start).
    calendar: std::sync::RwLock<SchoolCalendar>,
    /// See `set_inline_flush`.
    inline_flush: std::sync::atomic::AtomicBool,
    /// Group-commit counters (see `writer`).
    pub stats: writer::WriterStats,
    /// Whether sled can still write (see `health`).
    health: Health,
}

/// Wakes a background thread (the matching stage) that waits with a
/// timeout; a wake while it works is kept for its next wait.
#[derive(Debug, Default)]
pub struct Wake {
    wanted: Mutex<bool>,
    cv: std::sync::Condvar,
}

impl Wake {
    pub fn notify(&self) {
        *self.wanted.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_one();
    }

    /// Waits until notified (since the last wait) or `timeout` passes.
    pub fn wait(&self, timeout: std::time::Duration) {
        let guard = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
        let (mut guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |wanted| !*wanted)
            .unwrap_or_else(|p| p.into_inner());
        *guard = false;
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

fn abort<T>(e: impl Into<StoreError>) -> Result<T, ConflictableTransactionError<StoreError>> {
    Err(ConflictableTransactionError::Abort(e.into()))
}

impl Store {
    /// Seals a record value (notifications, outbox, review): records hold
    /// identifiers only, but together they link a police reference, a
    /// receipt and a school, so none of them is on disk in the clear.
    pub(crate) fn seal_json<T: serde::Serialize>(
        &self,
        tree: &str,
        key: &[u8],
        value: &T,
    ) -> Result<Vec<u8>, StoreError> {
        let plain = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(self.keys.seal_key().seal(tree, key, &plain)?)
    }

    /// Opens a value sealed by [`seal_json`](Self::seal_json).
    pub(crate) fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        tree: &str,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<T, StoreError> {
        let plain = self.keys.seal_key().open(tree, key, sealed)?;
        serde_json::from_slice(&plain)
            .map_err(|e| StoreError::Corrupt(format!("{tree} record: {e}")))
    }

    /// Every value of a sealed tree of JSON records, in key order; `corrupt`
    /// words the error for a value that does not parse.
    pub(crate) fn open_all<T: serde::de::DeserializeOwned>(
        &self,
        tree: &sled::Tree,
        name: &str,
        corrupt: impl Fn(serde_json::Error) -> String,
    ) -> Result<Vec<T>, StoreError> {
        tree.iter()
            .map(|kv| {
                let (k, v) = kv?;
                let plain = self.keys.seal_key().open(name, &k, &v)?;
                serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt(corrupt(e)))
            })
            .collect()
    }

    /// Sets the school calendar that alerts queued from now on use.
    pub fn set_calendar(&self, calendar: SchoolCalendar) {
        *self.calendar.write().unwrap_or_else(|p| p.into_inner()) = calendar;
    }

    pub fn calendar(&self) -> SchoolCalendar {
        self.calendar
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, ()> {
        // A panic while holding the lock cannot leave a half-written
        // transaction (sled transactions are atomic), so poison is ignored.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Opens the store again in a test: sled's I/O threads may hold the file
/// lock a moment after the last handle is dropped.
#[cfg(test)]
pub(crate) fn reopen(path: &std::path::Path, key: &MasterKey) -> Store {
    for _ in 0..250 {
        match Store::open(path, key) {
            Err(StoreError::Locked(_)) => std::thread::sleep(std::time::Duration::from_millis(20)),
            other => return other.unwrap(),
        }
    }
    panic!("the store stayed locked");
}
