//! The store's format version, kept in the `meta` tree under
//! `format_version`: version 1 is the layout this kim writes (sealed sled
//! trees, the roll in its own files under `<store>/roll/`). A new store is
//! stamped at creation; a store from before the stamp (no key) is version 1
//! and is stamped when opened; a store written by a newer kim is refused
//! before anything in it is read or written. A later format change migrates
//! a store once, when it is opened, and raises the version.

use super::StoreError;

/// The `meta` key of the format version (a decimal number, UTF-8).
pub(crate) const FORMAT_VERSION_KEY: &[u8] = b"format_version";

/// The format this kim reads and writes.
pub const FORMAT_VERSION: u32 = 1;

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
