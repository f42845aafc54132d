//! The CLI side of the admin API: ask the running daemon over its Unix
//! socket, or — when no daemon answers there — open the store and run the
//! same handler here. Clear messages for a socket the user may not open and
//! for a daemon that holds the store but does not answer. Before it sends a
//! byte or a file, it checks the socket's folder and who answers (`trust`).

use std::fs::File;
use std::io::{BufRead, BufReader, IoSlice, Write};
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

use super::ctx::Ctx;
use super::outcome::{store_failure, Failure};
use super::{answer, Answer, FileUse, Request};
use crate::audit::Actor;
use crate::config::Config;

/// Most bytes of an answer the client reads (a long audit listing fits).
const MAX_ANSWER: u64 = 256 * 1024 * 1024;

/// Runs `req` through the daemon if it is running, else on the store.
pub fn run(config: &Path, req: Request) -> Result<(), Failure> {
    let cfg = Config::load(config).map_err(Failure::usage)?;
    let socket = &cfg.admin.socket;
    let file = open_for(&req, &cfg.store.path)?;
    let answer = run_with(
        &cfg,
        socket,
        &req,
        file.as_ref()
            .map(|(f, _)| f.try_clone())
            .transpose()
            .map_err(Failure::failed)?,
    );
    let answer = match answer {
        Ok(a) => a,
        Err(f) => {
            discard_export(file);
            return Err(f);
        }
    };
    if answer.code != 0 {
        discard_export(file);
    }
    // `kim audit list | head` closes the pipe early: not an error to panic on.
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(answer.stdout.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(Failure::failed(anyhow::anyhow!("writing the answer: {e}")))
        }
        _ => {}
    }
    if answer.code == 0 {
        Ok(())
    } else {
        Err(Failure {
            code: answer.code,
            error: anyhow::anyhow!("{}", answer.error),
        })
    }
}

/// Asks the daemon (or runs the handler here) and returns the answer's
/// text instead of printing it: `kim demo` shows it indented.
pub fn answer_text(config: &Path, req: Request) -> Result<String, Failure> {
    let cfg = Config::load(config).map_err(Failure::usage)?;
    let answer = run_with(&cfg, &cfg.admin.socket, &req, None)?;
    if answer.code == 0 {
        Ok(answer.stdout)
    } else {
        Err(Failure {
            code: answer.code,
            error: anyhow::anyhow!("{}", answer.error),
        })
    }
}

/// Opens the request's file with this user's rights; for an export, also
/// the path, so a failed export leaves no empty file behind.
fn open_for(
    req: &Request,
    store: &Path,
) -> Result<Option<(File, Option<std::path::PathBuf>)>, Failure> {
    match req.file_use() {
        None => Ok(None),
        Some(FileUse::Read(path)) => File::open(path)
            .map(|f| Some((f, None)))
            .map_err(|e| Failure::usage(anyhow::anyhow!("cannot open {}: {e}", path.display()))),
        Some(FileUse::Dir(path)) => open_backup_dir(path, store).map(Some),
        Some(FileUse::Create(path)) => crate::fsmode::create_new_private(path)
            .map(|f| Some((f, Some(path.to_owned()))))
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Failure::usage(anyhow::anyhow!(
                        "{} already exists; kim never overwrites an export",
                        path.display()
                    ))
                } else {
                    Failure::failed(anyhow::anyhow!("cannot create {}: {e}", path.display()))
                }
            }),
    }
}

/// Removes an export file (or a backup folder) this CLI created if the
/// export failed.
fn discard_export(file: Option<(File, Option<std::path::PathBuf>)>) {
    if let Some((f, Some(path))) = file {
        if f.metadata().is_ok_and(|m| m.is_dir()) {
            let _ = std::fs::remove_dir_all(path);
        } else {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Creates the backup folder `path` (0700), or takes an existing empty one
/// (left as it is if the backup fails: without its manifest, last written,
/// no restore takes it); opened.
fn open_backup_dir(
    path: &std::path::Path,
    store: &Path,
) -> Result<(File, Option<std::path::PathBuf>), Failure> {
    use std::os::unix::fs::DirBuilderExt;
    let created = match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let empty = std::fs::read_dir(path)
                .map_err(|e| Failure::usage(anyhow::anyhow!("{}: {e}", path.display())))?
                .next()
                .is_none();
            if !empty {
                return Err(Failure::usage(anyhow::anyhow!(
                    "{} is not empty; kim never writes a backup over anything",
                    path.display()
                )));
            }
            false
        }
        Err(e) => {
            return Err(Failure::failed(anyhow::anyhow!(
                "cannot create {}: {e}",
                path.display()
            )))
        }
    };
    // Run as root, the folder goes to the store's owner (the daemon's
    // user), which writes into it through the descriptor passed over the
    // socket; another admin must own a folder that user may write into.
    if rustix::process::geteuid().is_root() {
        if let Ok(m) = std::fs::metadata(store) {
            use std::os::unix::fs::MetadataExt;
            std::os::unix::fs::chown(path, Some(m.uid()), Some(m.gid())).map_err(|e| {
                Failure::failed(anyhow::anyhow!(
                    "cannot hand {} to the store's owner: {e}",
                    path.display()
                ))
            })?;
        }
    }
    let f = File::open(path)
        .map_err(|e| Failure::failed(anyhow::anyhow!("cannot open {}: {e}", path.display())))?;
    Ok((f, created.then(|| path.to_owned())))
}

/// Asks the daemon, or runs the handler here when no daemon answers.
fn run_with(
    cfg: &Config,
    socket: &Path,
    req: &Request,
    file: Option<File>,
) -> Result<Answer, Failure> {
    let trusted = super::trust::client_side(cfg).map_err(Failure::usage)?;
    super::trust::check_place(socket, &trusted).map_err(Failure::usage)?;
    Ok(match UnixStream::connect(socket) {
        Ok(stream) => {
            super::trust::check_peer(&stream, socket, &trusted).map_err(Failure::failed)?;
            ask(stream, req, socket, file.as_ref())?
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(Failure::usage(anyhow::anyhow!(
                "permission denied on the admin socket {}: the daemon is running and this user may not use its socket; ask for your user or group in [admin] users/groups and the socket's group, or run as the kim user",
                socket.display()
            )));
        }
        // No socket, or nobody listening: the daemon is not running.
        Err(_) => {
            // A report streams the whole audit once, mostly from the
            // archive files: a page cache would only hold what it has read
            // (16 MiB, not 512: England's year in 256 MiB of memory).
            let cache = match req {
                Request::Report { .. } => Some(16 * 1024 * 1024),
                _ => None,
            };
            let store = open_store_for(cfg, socket, cache)?;
            let answered = match req.report_args() {
                // The report closes the store itself, as soon as it can.
                Some(a) => {
                    let (out, res) = super::verbs::report::offline(store, cfg, file, &a);
                    super::answer_of(out, res)
                }
                None => {
                    let mut ctx = Ctx {
                        store: &store,
                        cfg,
                        actor: Actor::current_user(),
                        out: String::new(),
                        file,
                    };
                    let answered = answer(&mut ctx, req);
                    drop(store);
                    answered
                }
            };
            // Run as root, sled and the roll may have made files: they
            // stay the store owner's (the daemon's user).
            if let Err(e) = crate::store::ownership::keep_store_owner(&cfg.store.path) {
                eprintln!("kim: warning: {e}");
            }
            answered
        }
    })
}

fn ask(
    mut stream: UnixStream,
    req: &Request,
    socket: &Path,
    file: Option<&File>,
) -> Result<Answer, Failure> {
    let broken = |e: &dyn std::fmt::Display| {
        Failure::failed(anyhow::anyhow!(
            "the daemon's admin socket {} did not answer properly: {e}",
            socket.display()
        ))
    };
    let mut line = serde_json::to_vec(req).map_err(|e| broken(&e))?;
    line.push(b'\n');
    // The file travels as an open descriptor (SCM_RIGHTS) with the first
    // bytes of the request: the daemon uses it, never the path.
    let sent = match file {
        Some(f) => {
            let fds = [f.as_fd()];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
                return Err(broken(&"no room to pass the file"));
            }
            rustix::net::sendmsg(
                &stream,
                &[IoSlice::new(&line)],
                &mut control,
                SendFlags::NOSIGNAL,
            )
            .map_err(std::io::Error::from)
        }
        None => Ok(0),
    };
    // A daemon that answers before reading (busy) may have closed its end
    // already: read its answer before blaming the write.
    let wrote = sent.and_then(|n| stream.write_all(&line[n..]));
    let mut reader = BufReader::new(std::io::Read::take(stream, MAX_ANSWER));
    let mut buf = Vec::new();
    let read = reader.read_until(b'\n', &mut buf);
    if buf.is_empty() {
        return Err(match (wrote, read) {
            (Err(e), _) | (Ok(()), Err(e)) => broken(&e),
            (Ok(()), Ok(_)) => broken(&"the connection closed without an answer"),
        });
    }
    serde_json::from_slice(&buf).map_err(|e| broken(&e))
}

/// Opens the store for an admin command when no daemon answered on
/// `socket`: a locked store then means the daemon runs but its socket
/// cannot be reached.
fn open_store_for(
    cfg: &Config,
    socket: &Path,
    cache: Option<u64>,
) -> Result<crate::store::Store, Failure> {
    let key = cfg.master_key_path().map_err(Failure::usage)?;
    let master = crate::store::crypto::MasterKey::load(&key).map_err(Failure::usage)?;
    let opened = match cache {
        Some(bytes) => crate::store::Store::open_with_cache(&cfg.store.path, &master, bytes),
        None => crate::store::Store::open(&cfg.store.path, &master),
    };
    match opened {
        Ok(s) => {
            s.set_calendar(cfg.delivery.calendar());
            Ok(s)
        }
        Err(crate::store::StoreError::Locked(p)) => Err(Failure::failed(anyhow::anyhow!(
            "the store at {p} is in use by a running daemon, but its admin socket {} does not answer; check [admin] socket in this config against the daemon's",
            socket.display()
        ))),
        Err(e) => Err(store_failure(e)),
    }
}
