//! Whom the admin socket's two ends trust. The CLI hands the daemon open
//! files (a roll with every child's details; an export to fill), so before
//! it sends a byte it checks that the socket's folder can be changed only
//! by root or the daemon's user, that the socket file is theirs, and that
//! the process answering (SO_PEERCRED) runs as root, as the CLI's own user
//! or as the daemon's user. The daemon refuses to listen in a folder others
//! could plant a socket in, and will not replace a socket another user made.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::config::Config;
use crate::perms::{self, PermError};

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("[admin] daemon_user `{0}` is not a user on this system")]
    NoUser(String),
    #[error(transparent)]
    Place(#[from] PermError),
    #[error("cannot tell who answers on the admin socket {path}: {source}")]
    PeerCred {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the process answering on the admin socket {path} runs as {peer}, not as {trusted}: it is not the kim daemon, so kim sent it nothing (no request, no file); find it with `ss -xlp | grep {path}`, stop it, and check [admin] socket / daemon_user")]
    Impostor {
        path: String,
        peer: String,
        trusted: String,
    },
}

fn uid_of(name: &str) -> Result<u32, TrustError> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(u)) => Ok(u.uid.as_raw()),
        _ => Err(TrustError::NoUser(name.to_owned())),
    }
}

/// The users the daemon trusts with its socket's folder: root, itself, and
/// `[admin] daemon_user` if set.
pub fn daemon_side(cfg: &crate::config::AdminConfig) -> Result<Vec<u32>, TrustError> {
    let mut uids = vec![0, perms::running_uid()];
    if let Some(name) = &cfg.daemon_user {
        uids.push(uid_of(name)?);
    }
    Ok(uids)
}

/// The users the CLI accepts as the daemon: root, the CLI's own user, and
/// `[admin] daemon_user` — or, when that is not set, the owner of the store
/// folder (the daemon made it; systemd's StateDirectory gives it to `User=`).
pub fn client_side(cfg: &Config) -> Result<Vec<u32>, TrustError> {
    let mut uids = vec![0, perms::running_uid()];
    match &cfg.admin.daemon_user {
        Some(name) => uids.push(uid_of(name)?),
        None => {
            if let Ok(m) = std::fs::metadata(&cfg.store.path) {
                uids.push(m.uid());
            }
        }
    }
    Ok(uids)
}

/// The socket's folder and file are safe to use for `trusted`.
pub fn check_place(socket: &Path, trusted: &[u32]) -> Result<(), TrustError> {
    if let Some(folder) = socket.parent() {
        perms::check_socket_folder(folder, trusted)?;
    }
    perms::check_socket_owner(socket, trusted)?;
    Ok(())
}

/// The peer of a connected admin socket runs as one of `trusted`.
pub fn check_peer(stream: impl AsFd, socket: &Path, trusted: &[u32]) -> Result<(), TrustError> {
    let path = socket.display().to_string();
    let cred = rustix::net::sockopt::socket_peercred(stream).map_err(|e| TrustError::PeerCred {
        path: path.clone(),
        source: e.into(),
    })?;
    let uid = cred.uid.as_raw();
    if trusted.contains(&uid) {
        Ok(())
    } else {
        Err(TrustError::Impostor {
            path,
            peer: perms::user_name(uid),
            trusted: perms::user_names(trusted),
        })
    }
}
