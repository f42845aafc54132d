//! Opening the store: the sled trees, the key check against the master
//! key, the format version, the roll files and the accept journal replayed
//! (or salvaged) before anything is served.

use super::*;

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

    pub(super) fn open_with(
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
            .map_err(|e| sled_open_error(path, e))?;
        let t = Trees {
            meta: db.open_tree(trees::META)?,
            notifications: db.open_tree(trees::NOTIFICATIONS)?,
            payloads: db.open_tree(trees::PAYLOADS)?,
            refs: db.open_tree(trees::REFS)?,
            work_match: db.open_tree(trees::WORK_MATCH)?,
            audit: db.open_tree(trees::AUDIT)?,
            audit_archive: db.open_tree(trees::AUDIT_ARCHIVE)?,
            schools: db.open_tree(trees::SCHOOLS)?,
            roll: db.open_tree(trees::ROLL)?,
            roll_idx: db.open_tree(trees::ROLL_IDX)?,
            review: db.open_tree(trees::REVIEW)?,
            dismissals: db.open_tree(trees::DISMISSALS)?,
            outbox: db.open_tree(trees::OUTBOX)?,
            outbox_active: db.open_tree(trees::OUTBOX_ACTIVE)?,
            withdrawals: db.open_tree(trees::WITHDRAWALS)?,
            checkpoints: db.open_tree(trees::CHECKPOINTS)?,
            outbox_by_time: db.open_tree(trees::OUTBOX_BY_TIME)?,
            review_candidates: db.open_tree(trees::REVIEW_CANDIDATES)?,
        };
        crate::fsmode::tighten_files(path).map_err(|e| StoreError::Sled(sled::Error::Io(e)))?;
        let keys = Keyring::new(master);
        let format_found = format::check_and_stamp(&t.meta)?;
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
        // Only a kim holding the right key is recorded as a writer.
        let written_by = format::stamp_writer(&t.meta)?;
        if written_by.as_deref() != Some(format::KIM_VERSION) {
            tracing::info!(
                format = format_found,
                last_written_by = written_by.as_deref().unwrap_or("unrecorded"),
                now = format::KIM_VERSION,
                "store opened by a different kim version than last wrote it"
            );
        }
        let (flushed, _) = watch::channel(FlushState::default());
        let data_file = std::fs::File::open(path.join("db")).ok();
        let store = Self {
            db,
            data_file,
            dir: path.to_owned(),
            keys,
            days: kek::DayKeys::new(path, crypto::day_key_wrap(master)),
            t,
            writer: Mutex::new(()),
            roll_import: Mutex::new(()),
            accept_gate: Mutex::new(()),
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
        store.build_alert_index()?;
        let replayed = store.replay_journal(replay)?;
        store.migrate(format_found)?;
        if replayed.applied > 0 {
            tracing::info!(
                notifications = replayed.applied,
                "applied accepted notifications from the journal"
            );
        }
        Ok((store, replayed))
    }
}

/// sled's error opening the store at `path`: [`StoreError::Locked`] when
/// another process holds it (the daemon), else sled's own.
pub(super) fn sled_open_error(path: &Path, e: sled::Error) -> StoreError {
    match &e {
        sled::Error::Io(io)
            if io.kind() == std::io::ErrorKind::WouldBlock
                || io.to_string().contains("could not acquire lock") =>
        {
            StoreError::Locked(path.display().to_string())
        }
        _ => StoreError::Sled(e),
    }
}
