//! Ownership and mode checks for what kim trusts on disk: secret files (the
//! master key, the audit signing key, the server's TLS key) must be private
//! to root or the running user and sit in folders nobody else can change;
//! the admin socket's folder must be writable only by root or the daemon's
//! user (else anyone could plant a socket that pretends to be the daemon).
//! Every refusal names the path and the command that fixes it.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Set on a folder, only an entry's owner (or the folder's) may rename or
/// remove it (`/tmp`).
const STICKY: u32 = 0o1000;

#[derive(Debug, thiserror::Error)]
pub enum PermError {
    #[error("cannot check {what} {path}: {source}")]
    Stat {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {path} is readable or writable by group or others (mode {mode:04o}); fix: chmod 0400 {path}")]
    Mode {
        what: &'static str,
        path: PathBuf,
        mode: u32,
    },
    #[error("{what} {path} belongs to {owner}, not to root or {running}; fix: chown {running} {path} (or chown root), after checking who put it there")]
    Owner {
        what: &'static str,
        path: PathBuf,
        owner: String,
        running: String,
    },
    #[error("{what} {path} is in the folder {folder} (mode {mode:04o}, owner {owner}), which someone other than root or {running} can change, so they could replace it; fix: chmod go-w {folder} and chown root {folder}, or move the file to a folder such as /etc/kim")]
    Folder {
        what: &'static str,
        path: PathBuf,
        folder: PathBuf,
        mode: u32,
        owner: String,
        running: String,
    },
    #[error("the admin socket's folder {folder} (mode {mode:04o}, owner {owner}) can be written by someone other than {trusted}, who could put a socket there that pretends to be the daemon; fix: chmod 0750 {folder} and chown it to root or the daemon's user, or set [admin] socket to a path in such a folder (e.g. /run/kim/admin.sock, systemd RuntimeDirectory=kim)")]
    SocketFolder {
        folder: PathBuf,
        mode: u32,
        owner: String,
        trusted: String,
    },
    #[error("the admin socket {path} belongs to {owner}, not to {trusted}: kim did not make it; check who did (ss -xlp | grep {path}), stop that process, remove the file (rm {path}) and try again")]
    SocketOwner {
        path: PathBuf,
        owner: String,
        trusted: String,
    },
}

/// `NAME (uid N)`, or `uid N` for a uid without a name.
pub fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => format!("{} (uid {uid})", u.name),
        _ => format!("uid {uid}"),
    }
}

/// `root, kim (uid 998)`: the users in `uids`, for messages.
pub fn user_names(uids: &[u32]) -> String {
    let mut seen = Vec::new();
    for u in uids {
        if !seen.contains(u) {
            seen.push(*u);
        }
    }
    seen.iter()
        .map(|&u| if u == 0 { "root".into() } else { user_name(u) })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The effective uid of this process.
pub fn running_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn stat(what: &'static str, path: &Path) -> Result<std::fs::Metadata, PermError> {
    std::fs::metadata(path).map_err(|source| PermError::Stat {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Checks a secret file kim reads: mode without any group/other bits; unless
/// it is a systemd credential (`credential`: systemd made it and its
/// folder), also owned by root or the running user, in folders (up to `/`)
/// that only root or the running user can change (a folder others may write
/// is fine only with the sticky bit, as `/tmp`).
pub fn check_secret_file(
    what: &'static str,
    path: &Path,
    credential: bool,
) -> Result<(), PermError> {
    let meta = stat(what, path)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(PermError::Mode {
            what,
            path: path.to_owned(),
            mode,
        });
    }
    if credential {
        return Ok(());
    }
    let me = running_uid();
    let trusted = [0, me];
    let running = user_names(&[me]);
    if !trusted.contains(&meta.uid()) {
        return Err(PermError::Owner {
            what,
            path: path.to_owned(),
            owner: user_name(meta.uid()),
            running,
        });
    }
    let real = std::fs::canonicalize(path).map_err(|source| PermError::Stat {
        what,
        path: path.to_owned(),
        source,
    })?;
    for folder in real.ancestors().skip(1) {
        let m = stat(what, folder)?;
        let fmode = m.mode() & 0o7777;
        let others_write = fmode & 0o022 != 0 && fmode & STICKY == 0;
        if others_write || !trusted.contains(&m.uid()) {
            return Err(PermError::Folder {
                what,
                path: path.to_owned(),
                folder: folder.to_owned(),
                mode: fmode,
                owner: user_name(m.uid()),
                running,
            });
        }
    }
    Ok(())
}

/// Whether `path` (a config file) can be written by group or others: a
/// warning, not a refusal (its owner decides what the file says).
pub fn writable_by_others(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.mode() & 0o7777;
    (mode & 0o022 != 0).then_some(mode)
}

/// Checks the folder of the admin socket: owned by one of `trusted`, not
/// writable by group or others (a sticky bit does not help: a stranger may
/// still create the socket's name first), and its parents changeable only
/// by `trusted` (or sticky). A folder that does not exist yet passes (no one
/// can have planted anything in it).
pub fn check_socket_folder(folder: &Path, trusted: &[u32]) -> Result<(), PermError> {
    let Ok(real) = std::fs::canonicalize(folder) else {
        return Ok(());
    };
    for (i, f) in real.ancestors().enumerate() {
        let m = stat("the admin socket's folder", f)?;
        let mode = m.mode() & 0o7777;
        let writable = mode & 0o022 != 0 && (i == 0 || mode & STICKY == 0);
        if writable || !trusted.contains(&m.uid()) {
            return Err(PermError::SocketFolder {
                folder: f.to_owned(),
                mode,
                owner: user_name(m.uid()),
                trusted: user_names(trusted),
            });
        }
    }
    Ok(())
}

/// Checks that the socket file at `path`, if there is one, belongs to one
/// of `trusted`.
pub fn check_socket_owner(path: &Path, trusted: &[u32]) -> Result<(), PermError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() && !trusted.contains(&m.uid()) => {
            Err(PermError::SocketOwner {
                path: path.to_owned(),
                owner: user_name(m.uid()),
                trusted: user_names(trusted),
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "perms_tests.rs"]
mod tests;
