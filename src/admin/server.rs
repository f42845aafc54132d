//! The daemon side of the admin API: a Unix socket at `[admin] socket`,
//! mode 0600 (0660 with `[admin] group`), the caller identified by
//! SO_PEERCRED and admitted only if it is root, the daemon's own user, or
//! listed in `[admin] users` / `groups`. A refusal is audited. Each admitted
//! request runs the same handler as the CLI, on a blocking thread. The
//! daemon listens only in a folder that root or its own user alone can
//! write (see `trust`), and never replaces a socket another user made.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{UnixListener, UnixStream};

use super::ctx::Ctx;
use super::refusals::{self, Refusals};
use super::{answer, Answer, Request};
use crate::audit::{Actor, EventKind, Refs};
use crate::config::{AdminConfig, Config};
use crate::store::Store;

/// Most bytes of one request line.
const MAX_REQUEST: u64 = 64 * 1024;
/// The CLI sends its one request line at once; a connection that sends
/// nothing for this long is closed.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Admin requests served at once; more are answered "busy" straight away
/// (an import or export can take a while; idle connections cannot pile up).
const MAX_CONNECTIONS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum AdminSocketError {
    #[error("cannot create the admin socket's folder {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on the admin socket {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set the admin socket's permissions: {0}")]
    Permissions(String),
    #[error("[admin] group `{0}` does not exist")]
    NoGroup(String),
    #[error(transparent)]
    Trust(#[from] super::trust::TrustError),
}

/// Who is calling, from SO_PEERCRED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub name: Option<String>,
}

impl Caller {
    /// The caller `uid`/`gid`, named as the user database names it.
    pub fn of(uid: u32, gid: u32) -> Self {
        let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name);
        Self { uid, gid, name }
    }

    /// `admin:NAME`, or `admin:uidN` for a uid without a name (as the CLI
    /// names its own user: see [`Actor`]).
    pub fn actor(&self) -> Actor {
        Actor::admin(self.uid, self.name.as_deref())
    }
}

/// Whether `caller` may use the admin API: root, the daemon's own user,
/// a listed user, or a member (primary or supplementary) of a listed group.
pub fn admitted(caller: &Caller, cfg: &AdminConfig, daemon_uid: u32) -> bool {
    if caller.uid == 0 || caller.uid == daemon_uid {
        return true;
    }
    if let Some(name) = &caller.name {
        if cfg.users.iter().any(|u| u == name) {
            return true;
        }
    }
    cfg.groups.iter().any(|g| {
        let Ok(Some(group)) = nix::unistd::Group::from_name(g) else {
            return false;
        };
        group.gid.as_raw() == caller.gid
            || caller
                .name
                .as_ref()
                .is_some_and(|n| group.mem.iter().any(|m| m == n))
    })
}

/// A listening admin socket.
pub struct AdminServer {
    listener: UnixListener,
    path: PathBuf,
}

impl AdminServer {
    /// Checks, before anything else starts, that the socket's folder (if
    /// it exists) and any socket file already there are safe to use.
    pub fn check_place(cfg: &AdminConfig) -> Result<(), AdminSocketError> {
        let trusted = super::trust::daemon_side(cfg)?;
        Ok(super::trust::check_place(&cfg.socket, &trusted)?)
    }

    /// Binds `[admin] socket` (a stale file from a crash is removed first;
    /// the store lock guarantees no other daemon uses it) and sets its mode.
    /// A missing folder is made 0750; a folder others may write, or a
    /// socket another user made, is refused.
    pub fn bind(cfg: &AdminConfig) -> Result<Self, AdminSocketError> {
        let path = cfg.socket.clone();
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)
                .map_err(|source| AdminSocketError::Dir {
                    path: dir.to_owned(),
                    source,
                })?;
        }
        Self::check_place(cfg)?;
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(AdminSocketError::Bind {
                path: path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another kim daemon answers on it",
                ),
            });
        }
        // A stale socket from a crash is replaced; anything else at that
        // path (a mistyped `[admin] socket`) is left alone.
        match std::fs::symlink_metadata(&path) {
            Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
                let _ = std::fs::remove_file(&path);
            }
            Ok(_) => {
                return Err(AdminSocketError::Bind {
                    path: path.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "something other than a socket is there; kim will not remove it",
                    ),
                })
            }
            Err(_) => {}
        }
        let listener = UnixListener::bind(&path).map_err(|source| AdminSocketError::Bind {
            path: path.clone(),
            source,
        })?;
        let mode = match &cfg.group {
            Some(g) => {
                if let Some(dir) = path.parent() {
                    traversable(dir)?;
                }
                let group = nix::unistd::Group::from_name(g)
                    .ok()
                    .flatten()
                    .ok_or_else(|| AdminSocketError::NoGroup(g.clone()))?;
                std::os::unix::fs::chown(&path, None, Some(group.gid.as_raw()))
                    .map_err(|e| AdminSocketError::Permissions(e.to_string()))?;
                0o660
            }
            None => 0o600,
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| AdminSocketError::Permissions(e.to_string()))?;
        Ok(Self { listener, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves until `stop` resolves, then removes the socket file.
    pub async fn serve(
        self,
        store: Arc<Store>,
        cfg: Arc<Config>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let daemon_uid = nix::unistd::getuid().as_raw();
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let refusals = Arc::new(Refusals::default());
        let mut closing = tokio::time::interval(std::time::Duration::from_secs(5));
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = closing.tick() => {
                    audit_repeated(&store, refusals.close(tokio::time::Instant::now(), false)).await;
                }
                r = self.listener.accept() => {
                    let Ok((stream, _)) = r else { continue };
                    let store = store.clone();
                    let cfg = cfg.clone();
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        tracing::warn!(limit = MAX_CONNECTIONS, "admin request refused: too many at once");
                        tokio::spawn(busy(stream));
                        continue;
                    };
                    let refusals = refusals.clone();
                    tokio::spawn(async move {
                        if let Err(e) = connection(stream, store, cfg, daemon_uid, &refusals).await {
                            tracing::warn!(error = %e, "admin connection failed");
                        }
                        drop(slot);
                    });
                }
            }
        }
        audit_repeated(&store, refusals.close(tokio::time::Instant::now(), true)).await;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One `admin_access` event per caller for the refusals gathered in a window.
async fn audit_repeated(store: &Arc<Store>, closed: Vec<refusals::Summary>) {
    for s in closed {
        let mut detail = serde_json::Map::new();
        detail.insert("outcome".into(), "refused".into());
        detail.insert("repeated".into(), s.count.into());
        detail.insert("verbs".into(), s.verbs.clone().into());
        detail.insert("since".into(), s.since.to_string().into());
        let store = store.clone();
        let actor = s.actor.clone();
        let audited = tokio::task::spawn_blocking(move || {
            store.audit_append(EventKind::AdminAccess, &actor, Refs::default(), detail)
        })
        .await;
        if !matches!(audited, Ok(Ok(_))) {
            tracing::error!(actor = %s.actor, count = s.count, "could not audit repeated admin refusals");
        }
    }
}

/// The file the CLI passed for `req` (an import reads it, an export writes
/// it): exactly one regular file when the verb needs one, else none.
fn passed_file(req: &Request, fds: Vec<OwnedFd>) -> Result<Option<std::fs::File>, String> {
    if req.file_use().is_none() {
        return Ok(None);
    }
    let mut fds = fds.into_iter();
    let (Some(fd), None) = (fds.next(), fds.next()) else {
        return Err(
            "this request needs exactly one open file passed with it (is the CLI the same version as the daemon?)"
                .into(),
        );
    };
    let file = std::fs::File::from(fd);
    let want_dir = matches!(req.file_use(), Some(super::FileUse::Dir(_)));
    match file.metadata() {
        Ok(m) if m.is_file() && !want_dir => Ok(Some(file)),
        Ok(m) if m.is_dir() && want_dir => Ok(Some(file)),
        Ok(_) => Err("the file passed with the request is not a regular file".into()),
        Err(e) => Err(format!(
            "the file passed with the request cannot be used: {e}"
        )),
    }
}

/// Reads the request line and any descriptors passed with it (SCM_RIGHTS).
async fn read_request(stream: &UnixStream) -> std::io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut line = Vec::new();
    let mut fds = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let (n, passed) = stream
            .async_io(Interest::READABLE, || {
                let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
                let mut control = RecvAncillaryBuffer::new(&mut space);
                let got = rustix::net::recvmsg(
                    stream,
                    &mut [IoSliceMut::new(&mut buf)],
                    &mut control,
                    RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
                )
                .map_err(std::io::Error::from)?;
                let mut passed = Vec::new();
                for m in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(p) = m {
                        passed.extend(p);
                    }
                }
                Ok((got.bytes, passed))
            })
            .await?;
        fds.extend(passed);
        let chunk = &buf[..n.min(buf.len())];
        if chunk.is_empty() {
            // Closed: whatever came is the request (empty: unreadable).
            return Ok((line, fds));
        }
        if let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&chunk[..end]);
            return Ok((line, fds));
        }
        line.extend_from_slice(chunk);
        if line.len() as u64 > MAX_REQUEST {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the admin request line is too long",
            ));
        }
    }
}

/// Answers a connection over the limit without reading it.
async fn busy(stream: UnixStream) {
    let ans = Answer {
        code: 1,
        stdout: String::new(),
        error: format!(
            "the daemon is busy with {MAX_CONNECTIONS} admin requests; try again in a moment"
        ),
    };
    let (_, mut write) = stream.into_split();
    if let Ok(mut out) = serde_json::to_vec(&ans) {
        out.push(b'\n');
        let _ = write.write_all(&out).await;
        let _ = write.shutdown().await;
    }
}

fn caller_of(stream: &UnixStream) -> std::io::Result<Caller> {
    let cred = stream.peer_cred()?;
    Ok(Caller::of(cred.uid(), cred.gid()))
}

async fn connection(
    stream: UnixStream,
    store: Arc<Store>,
    cfg: Arc<Config>,
    daemon_uid: u32,
    refusals: &Refusals,
) -> std::io::Result<()> {
    let caller = caller_of(&stream)?;
    let (line, fds) = match tokio::time::timeout(REQUEST_TIMEOUT, read_request(&stream)).await {
        Ok(read) => read?,
        Err(_) => {
            tracing::warn!(
                uid = caller.uid,
                "admin connection closed: no request within the timeout"
            );
            return Ok(());
        }
    };
    let (_, mut write) = stream.into_split();
    let req: Result<Request, _> = serde_json::from_slice(&line);
    let verb = req.as_ref().map(Request::verb).unwrap_or("unreadable");
    let ans = if !admitted(&caller, &cfg.admin, daemon_uid) {
        // The first refusal of a caller is audited (and logged) at once;
        // more within the minute are counted into one event.
        if refusals.note(&caller.actor(), verb, tokio::time::Instant::now()) {
            tracing::warn!(uid = caller.uid, actor = %caller.actor(), verb, "admin request refused: caller not admitted (repeats within a minute are counted)");
            let mut detail = serde_json::Map::new();
            detail.insert("outcome".into(), "refused".into());
            detail.insert("verb".into(), verb.into());
            let s2 = store.clone();
            let actor = caller.actor();
            let audited = tokio::task::spawn_blocking(move || {
                s2.audit_append(EventKind::AdminAccess, &actor, Refs::default(), detail)
                    .and_then(|_| s2.flush_now())
            })
            .await;
            if !matches!(audited, Ok(Ok(()))) {
                tracing::error!("could not audit a refused admin request");
            }
        }
        Answer {
            code: 1,
            stdout: String::new(),
            error: format!(
                "the daemon refused this request: {} is not admitted (add it to [admin] users or groups)",
                caller.actor()
            ),
        }
    } else {
        match req {
            Err(_) => Answer {
                code: 2,
                stdout: String::new(),
                error: "the daemon could not read the request (is the CLI the same version as the daemon?)".into(),
            },
            Ok(req) => {
                let actor = caller.actor();
                tracing::info!(actor = %actor, verb, "admin request");
                tokio::task::spawn_blocking(move || {
                    let file = match passed_file(&req, fds) {
                        Ok(f) => f,
                        Err(error) => {
                            return Answer {
                                code: 2,
                                stdout: String::new(),
                                error,
                            }
                        }
                    };
                    let mut ctx = Ctx {
                        store: &store,
                        cfg: &cfg,
                        actor,
                        out: String::new(),
                        file,
                    };
                    answer(&mut ctx, &req)
                })
                .await
                .unwrap_or_else(|_| Answer {
                    code: 1,
                    stdout: String::new(),
                    error: "the request failed inside the daemon (see its log)".into(),
                })
            }
        }
    };
    let mut out = serde_json::to_vec(&ans)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}

/// With `[admin] group`, the group's members must reach the 0660 socket
/// through its folder, which systemd makes `RuntimeDirectoryMode=0750` for
/// the daemon's own user and group: kim adds search (o+x) to a folder it
/// owns, never read or write, so the socket's own mode decides who
/// connects. A folder kim does not own is left as it is, with a warning.
fn traversable(dir: &Path) -> Result<(), AdminSocketError> {
    use std::os::unix::fs::MetadataExt;
    let dir_err = |source| AdminSocketError::Dir {
        path: dir.to_owned(),
        source,
    };
    let meta = std::fs::metadata(dir).map_err(dir_err)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o001 != 0 {
        return Ok(());
    }
    if meta.uid() != crate::perms::running_uid() {
        tracing::warn!(
            folder = %dir.display(),
            mode = format!("{mode:o}"),
            "[admin] group is set but the admin socket's folder is not searchable by others \
             and not kim's to change: group members may not reach the socket"
        );
        return Ok(());
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o001))
        .map_err(dir_err)?;
    tracing::info!(
        folder = %dir.display(),
        mode = format!("{:o}", mode | 0o001),
        "admin socket folder made searchable (o+x) for the [admin] group"
    );
    Ok(())
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
