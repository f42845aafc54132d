//! The store's format version, kept in the `meta` tree under
//! `format_version`: version 1 is the layout this kim writes (sealed sled
//! trees, the roll in its own files under `<store>/roll/`). A new store is
//! stamped at creation; a store from before the stamp (no key) is version 1
//! and is stamped when opened; a store written by a newer kim is refused
//! before anything in it is read or written. A later format change migrates
//! a store once, when it is opened, and raises the version. Beside it,
//! `written_by` names the kim version that last opened the store for
//! writing (every open is one), for an admin reading a store years later.

use super::StoreError;

/// The `meta` key of the format version (a decimal number, UTF-8).
pub(crate) const FORMAT_VERSION_KEY: &[u8] = b"format_version";

/// The format this kim reads and writes.
pub const FORMAT_VERSION: u32 = 1;

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
        .map_err(|e| match &e {
            sled::Error::Io(io)
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("could not acquire lock") =>
            {
                StoreError::Locked(path.display().to_string())
            }
            _ => StoreError::Sled(e),
        })?;
    let meta = db.open_tree(super::trees::META)?;
    let format = match meta.get(FORMAT_VERSION_KEY)? {
        Some(v) => {
            parse(&v).ok_or_else(|| StoreError::Corrupt("the store's format_version".into()))?
        }
        None => FORMAT_VERSION,
    };
    let written_by = meta
        .get(WRITTEN_BY_KEY)?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    Ok(Some(StoreVersions { format, written_by }))
}

/// Checks the store's format version and stamps a store that has none.
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
        None => {
            // A new store, or one written before the stamp: both version 1.
            meta.insert(FORMAT_VERSION_KEY, FORMAT_VERSION.to_string().as_bytes())?;
            Ok(FORMAT_VERSION)
        }
    }
}

fn parse(v: &[u8]) -> Option<u32> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
