//! The encrypted store: sled's trees (the only module that touches sled),
//! the roll's own files (`rollfile`) and the accept journal (`journal`). It
//! owns the single-writer lock that keeps the audit chain linear and the
//! group commit that makes an accepted notification durable before its 202
//! (`writer`). Keys carry no personal data; values that do are sealed.

pub mod batch;
pub mod crypto;
pub mod format;
mod health;
mod journal;
pub mod notifications;
pub mod outbox;
pub mod replay;
pub mod review;
pub mod roll;
mod rollfile;
pub mod rotate;
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

pub use health::{Broken, Health, CANNOT_WRITE};
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
    pub const SCHOOLS: &str = "schools";
    pub const ROLL: &str = "roll";
    pub const ROLL_IDX: &str = "roll_idx";
    pub const REVIEW: &str = "review";
    pub const DISMISSALS: &str = "dismissals";
    pub const OUTBOX: &str = "outbox";
    pub const OUTBOX_ACTIVE: &str = "outbox_active";
    pub const WITHDRAWALS: &str = "withdrawals";
    pub const CHECKPOINTS: &str = "checkpoints";
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
        matches!(self, Self::Sled(_) | Self::NotDurable)
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
    pub schools: sled::Tree,
    pub roll: sled::Tree,
    pub roll_idx: sled::Tree,
    pub review: sled::Tree,
    pub dismissals: sled::Tree,
    pub outbox: sled::Tree,
    pub outbox_active: sled::Tree,
    pub withdrawals: sled::Tree,
    pub checkpoints: sled::Tree,
}

pub struct Store {
    db: sled::Db,
    /// sled's data file, for fdatasync: sled's own flush uses
    /// sync_file_range, which does not reach the disk's cache or metadata.
    data_file: Option<std::fs::File>,
    /// The store's folder (for an import's scratch files).
    dir: std::path::PathBuf,
    pub(crate) keys: Keyring,
    pub(crate) t: Trees,
    /// One writer at a time: every transaction that appends to the audit
    /// chain holds this, so the chain never forks.
    writer: Mutex<()>,
    /// One roll import at a time (each writes the generation after the
    /// current one).
    roll_import: Mutex<()>,
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
    /// Opens (or creates) the store at `path` with `master` and the default
    /// page cache (512 MiB: what a one-off admin command needs).
    pub fn open(path: &Path, master: &MasterKey) -> Result<Self, StoreError> {
        Self::open_with_cache(path, master, CACHE_CAPACITY)
    }

    /// As [`open`](Self::open) with a page cache of `cache_bytes` (the
    /// daemon's `[store] cache_mb`).
    pub fn open_with_cache(
        path: &Path,
        master: &MasterKey,
        cache_bytes: u64,
    ) -> Result<Self, StoreError> {
        Self::open_with(path, master, cache_bytes, &Replay::Strict).map(|(s, _)| s)
    }

    /// Opens the store and salvages a damaged accept journal (`kim journal
    /// salvage`): see [`Replay::Salvage`].
    pub fn open_salvaging(
        path: &Path,
        master: &MasterKey,
        actor: &str,
    ) -> Result<(Self, Replayed), StoreError> {
        Self::open_with(
            path,
            master,
            CACHE_CAPACITY,
            &Replay::Salvage {
                actor: actor.to_owned(),
            },
        )
    }

    fn open_with(
        path: &Path,
        master: &MasterKey,
        cache_bytes: u64,
        replay: &Replay,
    ) -> Result<(Self, Replayed), StoreError> {
        // 0700 before sled puts anything in it (sled's own files get its
        // modes; they are tightened below, and the folder keeps them unread).
        crate::fsmode::own_dir(path).map_err(|e| StoreError::Sled(sled::Error::Io(e)))?;
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            // kim flushes explicitly (group commit); no timer-driven flushes
            // competing with it.
            .flush_every_ms(None)
            // sled's default is 1 GiB; the roll is not in sled (it has its
            // own files), so what sled caches is notifications, outbox and
            // audit: 512 MiB by default (`[store] cache_mb`).
            .cache_capacity(cache_bytes)
            .open()
            .map_err(|e| match &e {
                sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("could not acquire lock") =>
                {
                    StoreError::Locked(path.display().to_string())
                }
                _ => StoreError::Sled(e),
            })?;
        let t = Trees {
            meta: db.open_tree(trees::META)?,
            notifications: db.open_tree(trees::NOTIFICATIONS)?,
            payloads: db.open_tree(trees::PAYLOADS)?,
            refs: db.open_tree(trees::REFS)?,
            work_match: db.open_tree(trees::WORK_MATCH)?,
            audit: db.open_tree(trees::AUDIT)?,
            schools: db.open_tree(trees::SCHOOLS)?,
            roll: db.open_tree(trees::ROLL)?,
            roll_idx: db.open_tree(trees::ROLL_IDX)?,
            review: db.open_tree(trees::REVIEW)?,
            dismissals: db.open_tree(trees::DISMISSALS)?,
            outbox: db.open_tree(trees::OUTBOX)?,
            outbox_active: db.open_tree(trees::OUTBOX_ACTIVE)?,
            withdrawals: db.open_tree(trees::WITHDRAWALS)?,
            checkpoints: db.open_tree(trees::CHECKPOINTS)?,
        };
        crate::fsmode::tighten_files(path).map_err(|e| StoreError::Sled(sled::Error::Io(e)))?;
        format::check_and_stamp(&t.meta)?;
        let keys = Keyring::new(master);
        match t.meta.get(KEY_CHECK)? {
            Some(sealed) => {
                keys.seal_key()
                    .open(trees::META, KEY_CHECK, &sealed)
                    .map_err(|_| StoreError::WrongKey)?;
            }
            None => {
                let sealed = keys.seal_key().seal(trees::META, KEY_CHECK, b"kim store")?;
                t.meta.insert(KEY_CHECK, sealed)?;
                db.flush()?;
            }
        }
        let (flushed, _) = watch::channel(FlushState::default());
        let data_file = std::fs::File::open(path.join("db")).ok();
        let store = Self {
            db,
            data_file,
            dir: path.to_owned(),
            keys,
            t,
            writer: Mutex::new(()),
            roll_import: Mutex::new(()),
            roll_files: Mutex::new(None),
            pending: Mutex::new(notifications::Pending::default()),
            known_refs: notifications::KnownRefs::default(),
            written: AtomicU64::new(0),
            flush_wanted: Arc::new(Notify::new()),
            flushed,
            match_wanted: Wake::default(),
            deliver_wanted: Arc::new(Notify::new()),
            calendar: std::sync::RwLock::new(SchoolCalendar::default()),
            inline_flush: std::sync::atomic::AtomicBool::new(false),
            stats: writer::WriterStats::default(),
            health: Health::default(),
        };
        // A kill after a 202 leaves notifications in the accept journal
        // that the trees do not have yet.
        let replayed = store.replay_journal(replay)?;
        if replayed.applied > 0 {
            tracing::info!(
                notifications = replayed.applied,
                "applied accepted notifications from the journal"
            );
        }
        Ok((store, replayed))
    }

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

    /// Marks a committed write as waiting for the next flush.
    pub(crate) fn ticket(&self) -> FlushTicket {
        let t = self.written.fetch_add(1, Ordering::SeqCst) + 1;
        self.flush_wanted.notify_one();
        FlushTicket(t)
    }

    /// Runs the group-commit flusher until the store is dropped elsewhere.
    /// Every waiter whose write committed before a flush began is released
    /// by that one fsync. A failed flush is retried after a backoff
    /// ([`FLUSH_RETRY_FIRST`] doubling up to [`FLUSH_RETRY_MAX`]), never in
    /// a tight loop, and logged at most once per `lograte::WINDOW`.
    pub fn spawn_flusher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let wanted = self.flush_wanted.clone();
        tokio::spawn(async move {
            let mut backoff = FLUSH_RETRY_FIRST;
            loop {
                let Some(store) = weak.upgrade() else { return };
                let target = store.written.load(Ordering::SeqCst);
                if target <= store.flushed.borrow().done {
                    drop(store);
                    wanted.notified().await;
                    continue;
                }
                let s2 = store.clone();
                let res = tokio::task::spawn_blocking(move || s2.flush_now()).await;
                let failed = !matches!(res, Ok(Ok(())));
                store.flushed.send_modify(|s| match res {
                    Ok(Ok(_)) => s.done = s.done.max(target),
                    Ok(Err(ref e)) => {
                        crate::lograte::error!("store.flush", error = %e, retry_in = ?backoff, "store flush failed; answering 503");
                        s.failed_upto = s.failed_upto.max(target);
                    }
                    Err(_) => s.failed_upto = s.failed_upto.max(target),
                });
                drop(store);
                if failed {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(FLUSH_RETRY_MAX);
                } else {
                    backoff = FLUSH_RETRY_FIRST;
                }
            }
        })
    }

    /// Makes `durable` flush on the caller's thread instead of waiting for
    /// the group-commit flusher (single-threaded tools and paused-time tests,
    /// where a blocking thread would let tokio's clock run ahead).
    pub fn set_inline_flush(&self, inline: bool) {
        self.inline_flush
            .store(inline, std::sync::atomic::Ordering::SeqCst);
    }

    /// Waits until the write behind `ticket` is on disk. Fails at once
    /// once the store cannot write (see `health`).
    pub async fn durable(&self, ticket: FlushTicket) -> Result<(), StoreError> {
        if self.health.broken().is_some() {
            return Err(StoreError::NotDurable);
        }
        if self.inline_flush.load(Ordering::SeqCst) {
            self.flush_now()?;
            self.flushed.send_modify(|s| s.done = s.done.max(ticket.0));
            return Ok(());
        }
        let mut rx = self.flushed.subscribe();
        loop {
            {
                let s = *rx.borrow_and_update();
                if s.failed_upto >= ticket.0 && s.done < ticket.0 {
                    return Err(StoreError::NotDurable);
                }
                if s.done >= ticket.0 {
                    return Ok(());
                }
            }
            self.flush_wanted.notify_one();
            if rx.changed().await.is_err() {
                return Err(StoreError::NotDurable);
            }
        }
    }

    /// Makes everything written so far durable: sled's flush, then
    /// fdatasync of its data file.
    /// A failure marks the store broken (see `health`).
    pub fn flush_now(&self) -> Result<(), StoreError> {
        let flushed =
            self.db
                .flush()
                .map_err(StoreError::from)
                .and_then(|_| match &self.data_file {
                    Some(f) => f
                        .sync_data()
                        .map_err(|e| StoreError::Sled(sled::Error::Io(e))),
                    None => Ok(()),
                });
        if let Err(e) = &flushed {
            self.health.failed(e);
        }
        flushed
    }

    /// Whether sled can still write, asked cheaply: a flush of whatever is
    /// pending in sled's buffers (usually nothing), without the
    /// `fdatasync`. Once a write failed, sled fails every flush, so this
    /// notices a failure that only a background stage saw.
    pub fn probe_writable(&self) -> Result<(), Broken> {
        if let Err(e) = self.db.flush() {
            self.health.failed(&StoreError::Sled(e));
        }
        match self.health.broken() {
            Some(b) => Err(b),
            None => Ok(()),
        }
    }

    /// Records a failed write: the store is broken from now on if it was
    /// the disk or sled (see `health`).
    pub(crate) fn write_failed(&self, e: &StoreError) {
        self.health.failed(e);
    }

    /// `Some` once the store cannot write (see `health`).
    pub fn broken(&self) -> Option<Broken> {
        self.health.broken()
    }

    /// Whether the store answers reads and writes (for `/readyz`).
    pub fn ready(&self) -> bool {
        self.health.broken().is_none()
            && self
                .t
                .meta
                .get(KEY_CHECK)
                .map(|v| v.is_some())
                .unwrap_or(false)
            && self.flushed.borrow().failed_upto <= self.flushed.borrow().done
    }

    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// The audit chain's head as stored.
    pub fn audit_head(&self) -> Result<Head, StoreError> {
        match self.t.meta.get(AUDIT_HEAD)? {
            Some(v) => serde_json::from_slice(&v)
                .map_err(|e| StoreError::Corrupt(format!("audit head: {e}"))),
            None => Ok(Head::default()),
        }
    }

    /// Every audit event in order (for verification and listing).
    pub fn audit_events(&self) -> impl Iterator<Item = Result<AuditEvent, StoreError>> + '_ {
        self.t.audit.iter().values().map(|v| {
            let v = v?;
            serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(format!("audit event: {e}")))
        })
    }

    /// The hash of audit event `seq`, if it is stored.
    pub fn audit_hash_at(&self, seq: u64) -> Result<Option<String>, StoreError> {
        match self.t.audit.get(seq.to_be_bytes())? {
            None => Ok(None),
            Some(v) => {
                let ev: AuditEvent = serde_json::from_slice(&v)
                    .map_err(|e| StoreError::Corrupt(format!("audit event: {e}")))?;
                Ok(Some(ev.hash))
            }
        }
    }

    /// Every stored checkpoint, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.t
            .checkpoints
            .iter()
            .values()
            .map(|v| {
                serde_json::from_slice(&v?)
                    .map_err(|e| StoreError::Corrupt(format!("checkpoint: {e}")))
            })
            .collect()
    }

    /// Signs the chain's head as a checkpoint and stores it, unless the
    /// last checkpoint already covers the head. Holds the writer lock, so
    /// the head cannot move meanwhile.
    pub fn checkpoint(
        &self,
        signer: &Signer,
        now: jiff::Timestamp,
    ) -> Result<Option<(Checkpoint, FlushTicket)>, StoreError> {
        let _w = self.lock_writer();
        let head = self.audit_head()?;
        if head.seq == 0 || self.last_checkpoint_seq()? >= head.seq {
            return Ok(None);
        }
        let cp = signer.sign(&head, now);
        let bytes = serde_json::to_vec(&cp).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.t.checkpoints.insert(cp.seq.to_be_bytes(), bytes)?;
        Ok(Some((cp, self.ticket())))
    }

    pub fn last_checkpoint_seq(&self) -> Result<u64, StoreError> {
        Ok(match self.t.checkpoints.last()? {
            Some((k, _)) => u64::from_be_bytes(
                k.as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("checkpoint key".into()))?,
            ),
            None => 0,
        })
    }

    /// Appends one audit event on its own (not part of another change).
    pub fn audit_append(
        &self,
        kind: EventKind,
        actor: &str,
        refs: Refs,
        detail: serde_json::Map<String, serde_json::Value>,
    ) -> Result<FlushTicket, StoreError> {
        let _w = self.lock_writer();
        let head = self.audit_head()?;
        let ev = AuditEvent::next(
            &head,
            jiff::Timestamp::now(),
            kind,
            actor.to_owned(),
            refs,
            detail,
        );
        (&self.t.audit, &self.t.meta).transaction(|(ta, tm)| append_in_tx(ta, tm, &ev))?;
        Ok(self.ticket())
    }
}

/// Writes `ev` only; the caller moves the head (once per batch).
pub(crate) fn append_event_in_tx(
    audit: &TransactionalTree,
    ev: &AuditEvent,
) -> Result<(), ConflictableTransactionError<StoreError>> {
    let body = match serde_json::to_vec(ev) {
        Ok(b) => b,
        Err(e) => return abort(StoreError::Corrupt(e.to_string())),
    };
    audit.insert(&ev.seq.to_be_bytes(), body)?;
    Ok(())
}

/// Writes `ev` and moves the head, inside a transaction over (audit, meta).
pub(crate) fn append_in_tx(
    audit: &TransactionalTree,
    meta: &TransactionalTree,
    ev: &AuditEvent,
) -> Result<(), ConflictableTransactionError<StoreError>> {
    let body = match serde_json::to_vec(ev) {
        Ok(b) => b,
        Err(e) => return abort(StoreError::Corrupt(e.to_string())),
    };
    let head = serde_json::to_vec(&ev.head()).expect("head serializes");
    audit.insert(&ev.seq.to_be_bytes(), body)?;
    meta.insert(AUDIT_HEAD, head)?;
    Ok(())
}
