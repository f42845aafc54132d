//! Socket activation: the police listening socket handed over by systemd
//! (`systemd/kim.socket`, `LISTEN_FDS`/`LISTEN_PID`/`LISTEN_FDNAMES`), or,
//! without one, `[server] listen` bound by kim itself. With the socket held
//! by systemd, a restart queues new connections in the kernel's backlog
//! instead of refusing them.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// The `FileDescriptorName=` kim looks for among several passed sockets.
pub const POLICE_FD_NAME: &str = "police";

/// Why the police listener could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("socket activation: {0}")]
    Passed(String),
    #[error(
        "socket activation: descriptor {index} ({name}) is not a listening TCP socket: {source}"
    )]
    NotTcp {
        index: usize,
        name: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Where the police listener came from (logged at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Passed by the service manager (socket activation).
    Activated,
    /// Bound by kim from `[server] listen`.
    Bound,
}

/// Which of the passed descriptors (`names`, one per descriptor, from
/// `LISTEN_FDNAMES`; empty when unset) is the police socket: the one named
/// [`POLICE_FD_NAME`], else the only one.
pub(crate) fn pick(count: usize, names: &[String]) -> Result<usize, String> {
    if let Some(i) = names.iter().position(|n| n == POLICE_FD_NAME) {
        if i < count {
            return Ok(i);
        }
    }
    if count == 1 {
        return Ok(0);
    }
    Err(format!(
        "{count} sockets passed and none named \"{POLICE_FD_NAME}\" \
         (set FileDescriptorName=police in kim.socket); names: {names:?}"
    ))
}

/// The police listener: the socket passed by systemd when `LISTEN_FDS`
/// and `LISTEN_PID` (this process) say so, else `listen` bound here.
pub async fn police_listener(listen: SocketAddr) -> Result<(TcpListener, Origin), ActivationError> {
    // Reads and clears LISTEN_PID/LISTEN_FDS (so nothing kim starts
    // inherits them); checks LISTEN_PID against this process.
    let mut fds = listenfd::ListenFd::from_env();
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|n| n.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    if fds.len() == 0 {
        return bind(listen).await;
    }
    let index = pick(fds.len(), &names).map_err(ActivationError::Passed)?;
    let name = names
        .get(index)
        .cloned()
        .unwrap_or_else(|| "unnamed".into());
    let not_tcp = |source| ActivationError::NotTcp {
        index,
        name: name.clone(),
        source,
    };
    let std_listener = fds
        .take_tcp_listener(index)
        .map_err(not_tcp)?
        .ok_or_else(|| ActivationError::Passed(format!("descriptor {index} already taken")))?;
    std_listener.set_nonblocking(true).map_err(not_tcp)?;
    let listener = TcpListener::from_std(std_listener).map_err(not_tcp)?;
    if let Ok(addr) = listener.local_addr() {
        if addr != listen {
            tracing::warn!(
                passed = %addr,
                configured = %listen,
                "the socket passed by systemd is not [server] listen; serving on the passed one \
                 (make kim.socket's ListenStream= match)"
            );
        }
    }
    Ok((listener, Origin::Activated))
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, Origin), ActivationError> {
    TcpListener::bind(addr)
        .await
        .map(|l| (l, Origin::Bound))
        .map_err(|source| ActivationError::Bind { addr, source })
}

#[cfg(test)]
mod tests {
    use super::pick;

    #[test]
    fn picks_the_named_socket_or_the_only_one() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(pick(1, &[]), Ok(0));
        assert_eq!(pick(1, &names(&["other"])), Ok(0));
        assert_eq!(pick(2, &names(&["metrics", "police"])), Ok(1));
        assert!(pick(2, &names(&["a", "b"])).is_err());
        assert!(pick(2, &[]).is_err());
    }
}
