//! The CLI side of the admin API: ask the running daemon over its Unix
//! socket, or — when no daemon answers there — open the store and run the
//! same handler here. Clear messages for a socket the user may not open and
//! for a daemon that holds the store but does not answer.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::{answer, Answer, Request};
use crate::cli::{admin_actor, open_store_for, Ctx, Failure};
use crate::config::Config;

/// Most bytes of an answer the client reads (a long audit listing fits).
const MAX_ANSWER: u64 = 256 * 1024 * 1024;

/// Runs `req` through the daemon if it is running, else on the store.
pub fn run(config: &Path, req: Request) -> Result<(), Failure> {
    let cfg = Config::load(config).map_err(Failure::usage)?;
    let socket = &cfg.admin.socket;
    let answer = match UnixStream::connect(socket) {
        Ok(stream) => ask(stream, &req, socket)?,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(Failure::usage(anyhow::anyhow!(
                "permission denied on the admin socket {}: the daemon is running and this user may not use its socket; ask for your user or group in [admin] users/groups and the socket's group, or run as the kim user",
                socket.display()
            )));
        }
        // No socket, or nobody listening: the daemon is not running.
        Err(_) => {
            let store = open_store_for(&cfg, socket)?;
            let mut ctx = Ctx {
                store: &store,
                cfg: &cfg,
                actor: admin_actor(),
                out: String::new(),
            };
            answer(&mut ctx, &req)
        }
    };
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

fn ask(mut stream: UnixStream, req: &Request, socket: &Path) -> Result<Answer, Failure> {
    let broken = |e: &dyn std::fmt::Display| {
        Failure::failed(anyhow::anyhow!(
            "the daemon's admin socket {} did not answer properly: {e}",
            socket.display()
        ))
    };
    let mut line = serde_json::to_vec(req).map_err(|e| broken(&e))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(|e| broken(&e))?;
    let mut reader = BufReader::new(std::io::Read::take(stream, MAX_ANSWER));
    let mut buf = Vec::new();
    reader.read_until(b'\n', &mut buf).map_err(|e| broken(&e))?;
    if buf.is_empty() {
        return Err(broken(&"the connection closed without an answer"));
    }
    serde_json::from_slice(&buf).map_err(|e| broken(&e))
}
