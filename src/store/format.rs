//! The store's format version, kept in the `meta` tree under
//! `format_version`:
//! - 1: sealed sled trees, the roll in its own files under `<store>/roll/`,
//!   every value sealed by the master-derived key;
//! - 2: as 1, with a child's details (data keys, review candidates,
//!   dismissal notes, withdrawal reasons) sealed by the key of their
//!   receipt's day under `<store>/keys/` (`super::kek`), so retention can
//!   shred them;
//! - 3: as 2, with older audit events archived in files under
//!   `<store>/audit/` and indexed in the `audit_archive` tree
//!   (`super::audit_archive`), which a kim of format 2 would not read (it
//!   would find the chain cut). Migrating a store of format 2 changes
//!   nothing in it: the daemon archives its older events as it runs.
//!
//! A new store is stamped at creation; a store from before the stamp (no
//! key, but a key check) is version 1. A store written by a newer kim is
//! refused before anything in it is read or written. An older one is
//! migrated once, when it is opened, after its journal is applied; the
//! migration is logged (with the advice to back up first) and audited.
//! Beside it, `written_by` names the kim version that last opened the store
//! for writing (every open is one), for an admin reading a store years later.

use super::{EventKind, Refs, Store, StoreError, KEY_CHECK};

/// The `meta` key of the format version (a decimal number, UTF-8).
pub(crate) const FORMAT_VERSION_KEY: &[u8] = b"format_version";

/// The format this kim reads and writes.
pub const FORMAT_VERSION: u32 = 3;

/// The `meta` key of the kim version that last opened the store for
/// writing (UTF-8, e.g. `0.1.0`).
pub(crate) const WRITTEN_BY_KEY: &[u8] = b"written_by";

/// This kim's version, as recorded in `written_by`.
pub const KIM_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a store says about its versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreVersions {
    /// The format version (1 for a store from before the stamp).
    pub format: u32,
    /// The kim that last opened it for writing (`None`: written before kim
    /// recorded it).
    pub written_by: Option<String>,
}

/// Records this kim as the store's last writer; returns the one before.
pub(crate) fn stamp_writer(meta: &sled::Tree) -> Result<Option<String>, StoreError> {
    let before = meta
        .get(WRITTEN_BY_KEY)?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    if before.as_deref() != Some(KIM_VERSION) {
        meta.insert(WRITTEN_BY_KEY, KIM_VERSION.as_bytes())?;
        meta.flush()?;
    }
    Ok(before)
}

/// Reads the versions of the store at `path` without opening it for kim
/// (nothing is stamped or migrated; no key needed). `Ok(None)` when there
/// is no store there yet.
///
/// # Errors
/// [`StoreError::Locked`] while the daemon holds it, [`StoreError::Corrupt`]
/// for a version that is not a number, sled's errors.
pub fn peek(path: &std::path::Path) -> Result<Option<StoreVersions>, StoreError> {
    match std::fs::symlink_metadata(path.join("conf")) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::Sled(sled::Error::Io(e))),
        Ok(_) => {}
    }
    let db = sled::Config::new()
        .path(path)
        .cache_capacity(8 * 1024 * 1024)
        .open()
        .map_err(|e| super::open::sled_open_error(path, e))?;
    let meta = db.open_tree(super::trees::META)?;
    let format = match meta.get(FORMAT_VERSION_KEY)? {
        Some(v) => {
            parse(&v).ok_or_else(|| StoreError::Corrupt("the store's format_version".into()))?
        }
        None if meta.contains_key(KEY_CHECK)? => 1,
        None => FORMAT_VERSION,
    };
    let written_by = meta
        .get(WRITTEN_BY_KEY)?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    Ok(Some(StoreVersions { format, written_by }))
}

/// Checks the store's format version and stamps a new store. Returns the
/// version found (this one for a new store).
///
/// # Errors
/// [`StoreError::FormatTooNew`] for a store of a newer format,
/// [`StoreError::Corrupt`] for a version that is not a number.
pub(crate) fn check_and_stamp(meta: &sled::Tree) -> Result<u32, StoreError> {
    match meta.get(FORMAT_VERSION_KEY)? {
        Some(v) => {
            let found = parse(&v)
                .ok_or_else(|| StoreError::Corrupt("the store's format_version".into()))?;
            if found > FORMAT_VERSION {
                return Err(StoreError::FormatTooNew {
                    found,
                    supported: FORMAT_VERSION,
                    kim: env!("CARGO_PKG_VERSION"),
                });
            }
            Ok(found)
        }
        // Written before the stamp: version 1.
        None if meta.contains_key(KEY_CHECK)? => {
            stamp(meta, 1)?;
            Ok(1)
        }
        None => {
            stamp(meta, FORMAT_VERSION)?;
            Ok(FORMAT_VERSION)
        }
    }
}

fn stamp(meta: &sled::Tree, version: u32) -> Result<(), StoreError> {
    meta.insert(FORMAT_VERSION_KEY, version.to_string().as_bytes())?;
    Ok(())
}

fn parse(v: &[u8]) -> Option<u32> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

impl Store {
    /// Migrates a store of format `found` to this kim's, once: the values
    /// of format 1 move under their day keys (format 2 to 3 moves nothing:
    /// the daemon archives older audit events as it runs). Audited
    /// (`store_migrated`).
    pub(crate) fn migrate(&self, found: u32) -> Result<(), StoreError> {
        if found >= FORMAT_VERSION {
            return Ok(());
        }
        tracing::warn!(
            from = found,
            to = FORMAT_VERSION,
            store = %self.dir.display(),
            "migrating the store to a newer format, in place; keep the backup you took before upgrading \
             (`kim backup`) until kim has run well on the new format"
        );
        let moved = if found < 2 {
            self.migrate_to_day_keys()?
        } else {
            0
        };
        let mut detail = serde_json::Map::new();
        detail.insert("from".into(), found.into());
        detail.insert("to".into(), FORMAT_VERSION.into());
        detail.insert("resealed".into(), moved.into());
        let _ = self.audit_append(EventKind::StoreMigrated, "system", Refs::default(), detail)?;
        stamp(&self.t.meta, FORMAT_VERSION)?;
        self.flush_now()?;
        tracing::info!(
            resealed = moved,
            "store migrated to format {FORMAT_VERSION}; values from before it are shredded from sled's \
             live data when purged, and from its old segments once the old master key is rotated away"
        );
        Ok(())
    }
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
