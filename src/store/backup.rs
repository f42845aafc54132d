//! The store's side of a backup and a restore: a consistent point (no
//! notification acknowledged and left only in the accept journal, nothing
//! written while the files are copied, sled flushed) and the record of a
//! restore (`restored` in the chain, and the same facts in `meta` for the
//! warning at start). Copying and the manifest are `crate::backup`'s.

use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::*;
use crate::audit::{AuditEvent, EventKind, Head, Refs};

/// The `meta` key of the last restore's facts (JSON [`RestoreRecord`]).
const LAST_RESTORE: &[u8] = b"last_restore";

/// The store held still for a copy: while this lives no change reaches
/// sled (every writer waits) and everything acknowledged is in sled and on
/// disk. Police notifications are still taken meanwhile: they wait in the
/// accept journal, which a backup leaves out.
pub struct Quiet<'a> {
    _roll: MutexGuard<'a, ()>,
    _writer: MutexGuard<'a, ()>,
    /// The audit chain's head at this point.
    pub head: Head,
    /// The store's format version as recorded in it.
    pub format_version: u32,
}

/// What a restore recorded; also what `audit verify` and the start warn with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRecord {
    /// The audit sequence the backup ended at.
    pub backup_seq: u64,
    /// When the backup was taken.
    pub backup_time: jiff::Timestamp,
    /// The highest sequence the checkpoint file vouched for at the restore
    /// (0 when there was none, or none beyond the backup).
    pub checkpoint_file_seq: u64,
    /// How many checkpoints the file held then: the ones of the lost
    /// timeline are among these, every later one must match this store.
    pub checkpoint_file_entries: u64,
    /// When the restore ran.
    pub restored_at: jiff::Timestamp,
}

impl RestoreRecord {
    /// Whether the checkpoint file vouched for events this store lacks.
    pub fn file_ahead(&self) -> bool {
        self.checkpoint_file_seq > self.backup_seq
    }

    /// The warning `audit verify` and the start give (no personal data).
    pub fn warning(&self) -> String {
        let date = self.backup_time.strftime("%Y-%m-%d %H:%M:%S UTC");
        if self.file_ahead() {
            format!(
                "restored from a backup at sequence {} on {date}; the checkpoint file holds later checkpoints up to {} (events {}..{} are not in this store)",
                self.backup_seq,
                self.checkpoint_file_seq,
                self.backup_seq + 1,
                self.checkpoint_file_seq
            )
        } else {
            format!(
                "restored from a backup at sequence {} on {date}",
                self.backup_seq
            )
        }
    }

    /// The record a `restored` event carries, if `ev` is one.
    pub fn from_event(ev: &AuditEvent) -> Option<Self> {
        if ev.kind != EventKind::Restored {
            return None;
        }
        serde_json::from_value(serde_json::Value::Object(ev.detail.clone())).ok()
    }
}

impl Store {
    /// The store's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Brings the store to a consistent point and holds it there (see
    /// [`Quiet`]): the journal thread is stopped between batches, the
    /// applier given up to `wait` to apply everything journaled, then every
    /// writer (and a roll import) locked out and sled flushed and synced.
    ///
    /// # Errors
    /// [`StoreError::NotDurable`] if the applier does not catch up in time
    /// or the flush fails.
    pub fn quiesce(&self, wait: Duration) -> Result<Quiet<'_>, StoreError> {
        let gate = self.accept_gate.lock().unwrap_or_else(|p| p.into_inner());
        let until = Instant::now() + wait;
        while self.stats.unapplied.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= until {
                tracing::error!(
                    unapplied = self.stats.unapplied.load(Ordering::Relaxed),
                    "backup: the applier did not catch up with the accept journal in time"
                );
                return Err(StoreError::NotDurable);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let roll = self.roll_import.lock().unwrap_or_else(|p| p.into_inner());
        let writer = self.lock_writer();
        self.flush_now()?;
        // Police notifications may go on into the journal: the copy leaves
        // the journal out, so they are after the backup's point.
        drop(gate);
        let head = self.audit_head()?;
        let format_version = format::check_and_stamp(&self.t.meta)?;
        Ok(Quiet {
            _roll: roll,
            _writer: writer,
            head,
            format_version,
        })
    }

    /// Records a restore: the `restored` event in the chain and its facts
    /// in `meta`, in one transaction, flushed.
    pub fn record_restore(&self, actor: &str, rec: &RestoreRecord) -> Result<(), StoreError> {
        let detail = match serde_json::to_value(rec) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => return Err(StoreError::Corrupt("restore record".into())),
        };
        let bytes = serde_json::to_vec(rec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        {
            let _w = self.lock_writer();
            let head = self.audit_head()?;
            let ev = AuditEvent::next(
                &head,
                jiff::Timestamp::now(),
                EventKind::Restored,
                actor.to_owned(),
                Refs::default(),
                detail,
            );
            (&self.t.audit, &self.t.meta).transaction(|(ta, tm)| {
                append_in_tx(ta, tm, &ev)?;
                tm.insert(LAST_RESTORE, bytes.as_slice())?;
                Ok(())
            })?;
        }
        self.flush_now()
    }

    /// The facts of the last restore into this store, if any.
    pub fn last_restore(&self) -> Result<Option<RestoreRecord>, StoreError> {
        match self.t.meta.get(LAST_RESTORE)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("last_restore: {e}"))),
        }
    }
}
