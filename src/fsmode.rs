//! File modes for everything kim writes: files 0600 and folders 0700,
//! whatever the umask (a umask can only take bits away from these). The
//! store, the journal, the roll files, the checkpoint file, exports and the
//! development mail folder hold sealed data or audit evidence: nobody but
//! kim's user (and root) has any business reading them.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the files kim creates.
pub const FILE: u32 = 0o600;
/// Mode of the folders kim creates.
pub const DIR: u32 = 0o700;

/// `create_dir_all`, each new folder 0700.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR).create(path)
}

/// As [`create_dir_all`], then takes group and other bits off `path` itself
/// (kim's own folder, e.g. the store: it may have been made by hand).
pub fn own_dir(path: &Path) -> io::Result<()> {
    create_dir_all(path)?;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

/// Opens `path` for appending, creating it 0600.
pub fn append_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE)
        .open(path)
}

/// Opens `path` for writing at any offset (not truncated), creating it
/// 0600.
pub fn write_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(FILE)
        .open(path)
}

/// Creates `path` (never an existing file) for writing, 0600.
pub fn create_new_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE)
        .open(path)
}

/// Takes group and other bits off every file directly in `dir` (files a
/// library created with its own modes, such as sled's).
pub fn tighten_files(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            let want = if meta.is_dir() {
                mode & 0o700
            } else {
                mode & 0o600
            };
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(want))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "fsmode_tests.rs"]
mod tests;
