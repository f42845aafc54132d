//! Who owns the store's files after a command run as root rewrote them.
//! `kim keys rotate` writes a fresh store folder and swaps it in; an admin
//! command run offline as root lets sled and the roll make new files. Left
//! alone, those are root's, and the daemon's user can no longer open the
//! store. This module gives every file and folder of a rewritten tree the
//! owner and mode of its counterpart in the original (the same relative
//! path), and anything new the owner of the original store folder. Safe std
//! calls only (`lchown`, `set_permissions`); it never follows a symlink.

use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot give {path} the owner {uid}:{gid} (mode {mode:04o}) of the store it replaces: {source}")]
    Set {
        path: PathBuf,
        uid: u32,
        gid: u32,
        mode: u32,
        source: std::io::Error,
    },
}

/// What was changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    /// Entries whose owner was changed.
    pub owners: usize,
    /// Entries whose mode was changed.
    pub modes: usize,
}

fn meta(path: &Path) -> Result<std::fs::Metadata, OwnershipError> {
    std::fs::symlink_metadata(path).map_err(|source| OwnershipError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Sets `path`'s owner to `uid:gid` and (unless `mode` is `None` or it is a
/// symlink) its permission bits to `mode`, changing only what differs.
fn set(
    path: &Path,
    have: &std::fs::Metadata,
    uid: u32,
    gid: u32,
    mode: Option<u32>,
    fixed: &mut Fixed,
) -> Result<(), OwnershipError> {
    let err = |source| OwnershipError::Set {
        path: path.to_owned(),
        uid,
        gid,
        mode: mode.unwrap_or(have.mode() & 0o7777),
        source,
    };
    if have.uid() != uid || have.gid() != gid {
        lchown(path, Some(uid), Some(gid)).map_err(err)?;
        fixed.owners += 1;
    }
    if let Some(m) = mode {
        if !have.file_type().is_symlink() && have.mode() & 0o7777 != m {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).map_err(err)?;
            fixed.modes += 1;
        }
    }
    Ok(())
}

/// Gives `target` (a file) the owner and mode of `reference` (the file it
/// replaces, e.g. the old master key beside its new one).
pub fn match_file(reference: &Path, target: &Path) -> Result<Fixed, OwnershipError> {
    let want = meta(reference)?;
    let mut fixed = Fixed::default();
    set(
        target,
        &meta(target)?,
        want.uid(),
        want.gid(),
        Some(want.mode() & 0o7777),
        &mut fixed,
    )?;
    Ok(fixed)
}

/// Walks `target` (a store folder written afresh) and gives each entry the
/// owner and mode of the entry at the same relative path under `reference`
/// (the store it replaces) when there is one of the same kind; any other
/// entry gets the owner of `reference` itself and keeps its mode.
pub fn match_tree(reference: &Path, target: &Path) -> Result<Fixed, OwnershipError> {
    let root = meta(reference)?;
    let mut fixed = Fixed::default();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let path = target.join(&rel);
        let have = meta(&path)?;
        let counterpart = std::fs::symlink_metadata(reference.join(&rel))
            .ok()
            .filter(|m| m.file_type() == have.file_type());
        match &counterpart {
            Some(m) => set(
                &path,
                &have,
                m.uid(),
                m.gid(),
                Some(m.mode() & 0o7777),
                &mut fixed,
            )?,
            None => set(&path, &have, root.uid(), root.gid(), None, &mut fixed)?,
        }
        if have.is_dir() {
            let entries = std::fs::read_dir(&path).map_err(|source| OwnershipError::Read {
                path: path.clone(),
                source,
            })?;
            for e in entries {
                let e = e.map_err(|source| OwnershipError::Read {
                    path: path.clone(),
                    source,
                })?;
                stack.push(rel.join(e.file_name()));
            }
        }
    }
    Ok(fixed)
}

/// Gives every entry under the store folder `store` that another user owns
/// the folder's own owner (modes are kept): what an admin command run as
/// root leaves behind in a store the daemon's user owns.
pub fn keep_store_owner(store: &Path) -> Result<Fixed, OwnershipError> {
    let root = meta(store)?;
    let mut fixed = Fixed::default();
    let mut stack = vec![store.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| OwnershipError::Read {
            path: dir.clone(),
            source,
        })?;
        for e in entries {
            let e = e.map_err(|source| OwnershipError::Read {
                path: dir.clone(),
                source,
            })?;
            let path = e.path();
            let have = meta(&path)?;
            set(&path, &have, root.uid(), root.gid(), None, &mut fixed)?;
            if have.is_dir() {
                stack.push(path);
            }
        }
    }
    Ok(fixed)
}

#[cfg(test)]
#[path = "ownership_tests.rs"]
mod tests;
