//! The police-facing HTTPS server: accepts TCP connections without ever
//! blocking the accept loop, gives connections that have not finished the
//! mutual-TLS handshake their own small budget (see `admission`), takes a
//! `max_connections` slot only once the handshake succeeded, identifies the
//! force from the certificate, and serves HTTP/1.1 with a header timeout until
//! shutdown, when it stops accepting and drains: requests in flight finish,
//! and a connection accepted before the stop that has not sent its first
//! request yet gets that one answered (it may have been queued in the
//! backlog, or mid-handshake), so a restart costs no police request.

pub mod admission;
pub mod crl;
pub mod crl_fetch;
pub mod http;
mod idle;
pub mod live;
pub mod notification;
mod probes;
pub mod routes;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::config::LimitsConfig;
use admission::{
    AcceptBackoff, Budget, Descriptors, FdSlot, Handshakes, Pending, Summary, SUMMARY_EVERY,
};
use http::{AppState, Peer};
pub use live::Live;

/// What a flood would otherwise write line by line: counted in metrics,
/// logged at most once per [`SUMMARY_EVERY`] each.
#[derive(Debug, Default)]
struct Noise {
    timeouts: Summary,
    refused_tls: Summary,
    evicted: Summary,
    refused_fd: Summary,
    accept_errors: Summary,
}

impl Noise {
    fn flush(&self, fds: &Descriptors) {
        if let Some(count) = self.timeouts.flush() {
            tracing::info!(count, "TLS handshake timed out (summary)");
        }
        if let Some(count) = self.refused_tls.flush() {
            tracing::info!(count, "TLS handshake refused (summary)");
        }
        if let Some(count) = self.evicted.flush() {
            tracing::info!(count, "TLS handshakes closed to admit newer ones (summary)");
        }
        if let Some(count) = self.refused_fd.flush() {
            tracing::warn!(
                count,
                open = fds.open(),
                limit = fds.limit(),
                "connections refused: file-descriptor reserve reached (summary)"
            );
        }
        if let Some(count) = self.accept_errors.flush() {
            tracing::warn!(count, "accept failed (summary)");
        }
    }
}

/// What every connection task shares.
struct Shared {
    /// The config and TLS material in force (replaced by a reload).
    live: Arc<Live>,
    state: Arc<AppState>,
    slots: Arc<Semaphore>,
    noise: Noise,
}

/// Serves the police API on `listener` until `shutdown` resolves, then
/// drains for at most `limits.shutdown_grace`. `fds` is the descriptor
/// budget shared with the metrics listener.
pub async fn serve(
    live: Arc<Live>,
    state: Arc<AppState>,
    fds: Arc<Descriptors>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    // Sizes fixed at start (a reload refuses to change them); the timeouts
    // are read per connection from the live snapshot.
    let limits: LimitsConfig = live.load().cfg.limits.clone();
    let handshakes = Handshakes::new(limits.max_handshakes, limits.max_handshakes_per_source);
    let shared = Arc::new(Shared {
        live,
        state: state.clone(),
        slots: Arc::new(Semaphore::new(limits.max_connections)),
        noise: Noise::default(),
    });
    let metrics = state.metrics.clone();
    // `true` once shutdown begins; every connection task holds a receiver,
    // so the drain waits for them all (`closed`).
    let (stopping, stop_rx) = watch::channel(false);
    let mut backoff = AcceptBackoff::default();
    let mut summaries = tokio::time::interval(SUMMARY_EVERY);
    summaries.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            _ = &mut shutdown => break,
            _ = summaries.tick() => {
                shared.noise.flush(&fds);
                continue;
            }
            r = listener.accept() => match r {
                Ok(x) => {
                    backoff.succeeded();
                    x
                }
                Err(e) => {
                    // EMFILE and friends: the connection stays in the
                    // backlog; back off (growing to 1 s) instead of spinning.
                    metrics.accept_errors.inc();
                    if let Some(count) = shared.noise.accept_errors.note() {
                        tracing::warn!(error = %e, count, "accept failed; backing off");
                    }
                    let pause = backoff.failed();
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(pause) => continue,
                    }
                }
            },
        };
        let (fd, budget) = fds.take();
        let admission = match budget {
            Budget::Within => handshakes.admit(addr.ip(), false),
            Budget::Short => handshakes.admit(addr.ip(), true),
            Budget::Spent => admission::Admission {
                pending: None,
                evicted: 0,
            },
        };
        if admission.evicted > 0 {
            metrics.handshakes_evicted.add(admission.evicted as u64);
            if let Some(count) = shared.noise.evicted.note() {
                tracing::info!(count, "TLS handshakes closed to admit newer ones");
            }
        }
        let Some((pending, evicted)) = admission.pending else {
            metrics.connections_refused.inc();
            if let Some(count) = shared.noise.refused_fd.note() {
                tracing::warn!(
                    count,
                    open = fds.open(),
                    limit = fds.limit(),
                    "connection refused: file-descriptor reserve reached"
                );
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(connection(
            shared.clone(),
            tcp,
            addr,
            fd,
            pending,
            evicted,
            stop_rx.clone(),
        ));
    }
    drop(listener);
    drop(stop_rx);
    shared.noise.flush(&fds);
    tracing::info!("stopped accepting; draining in-flight requests");
    let _ = stopping.send(true);
    if tokio::time::timeout(limits.shutdown_grace.0, stopping.closed())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?limits.shutdown_grace.0, "grace period over; closing remaining connections");
    }
}

/// One police connection: the handshake (within its timeout, unless evicted
/// first), then a `max_connections` slot, then HTTP until it closes.
async fn connection(
    shared: Arc<Shared>,
    tcp: TcpStream,
    addr: SocketAddr,
    _fd: FdSlot,
    pending: Pending,
    evicted: oneshot::Receiver<()>,
    mut stop: watch::Receiver<bool>,
) {
    let metrics = shared.state.metrics.clone();
    // This connection's TLS material and timeouts: those in force now.
    let snapshot = shared.live.load();
    let limits = &snapshot.cfg.limits;
    metrics.connections_total.inc();
    metrics.handshakes_pending.add(1);
    let handshake = async {
        // A police client sends its ClientHello at once: wait for the first
        // byte (without reading it), so a silent socket is first to go.
        let mut first = [0u8; 1];
        let _ = tcp.peek(&mut first).await;
        match pending.spoke() {
            Some(0) => {}
            Some(n) => {
                metrics.handshakes_evicted.add(n as u64);
                if let Some(count) = shared.noise.evicted.note() {
                    tracing::info!(count, "TLS handshakes closed to admit newer ones");
                }
            }
            // Evicted meanwhile: the select below ends this connection.
            None => std::future::pending::<()>().await,
        }
        TlsAcceptor::from(snapshot.tls.clone()).accept(tcp).await
    };
    let outcome = tokio::select! {
        biased;
        _ = evicted => None,
        r = tokio::time::timeout(limits.handshake_timeout.0, handshake) => Some(r),
    };
    drop(pending);
    metrics.handshakes_pending.add(-1);
    let tls = match outcome {
        None => return,
        Some(Err(_)) => {
            metrics.handshake_timeouts.inc();
            if let Some(count) = shared.noise.timeouts.note() {
                tracing::info!(peer = %addr, count, "TLS handshake timed out");
            }
            return;
        }
        Some(Ok(Err(e))) => {
            metrics.handshake_failures.inc();
            if let Some(count) = shared.noise.refused_tls.note() {
                tracing::info!(peer = %addr, error = %e, count, "TLS handshake refused");
            }
            return;
        }
        Some(Ok(Ok(s))) => s,
    };
    // Authenticated: only now a connection slot (waiting for one if all are
    // taken), so unauthenticated sockets can never hold them.
    let Ok(_permit) = shared.slots.clone().acquire_owned().await else {
        return;
    };
    let identities = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(tls::identities)
        .unwrap_or_default();
    if snapshot.cfg.force_for(&identities).is_none() {
        tracing::warn!(peer = %addr, identities = ?identities, "client certificate is CA-valid but not listed in [[forces]]; answering 403");
    }
    metrics.connections_open.add(1);
    let state = shared.state.clone();
    let activity = idle::Activity::new();
    let busy = activity.clone();
    let live = shared.live.clone();
    let svc = service_fn(move |req| {
        let in_flight = busy.request();
        // The force per request, from the [[forces]] in force now: a force
        // removed by a reload gets 403 even on a connection opened before.
        let snap = live.load();
        let found = snap.cfg.force_and_mode_for(&identities);
        let force = found.map(|(f, _)| f.id.clone());
        let test = found.is_some_and(|(_, test)| test);
        let peer = Arc::new(Peer { addr, force, test });
        let answer = http::handle(req, peer.clone(), state.clone());
        async move {
            let r = answer.await;
            drop(in_flight);
            r
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout.0)
        .keep_alive(true)
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(idle::Watched::new(tls, activity.clone())), svc);
    tokio::pin!(conn);
    // Shutdown: `Some(deadline)` until which a connection that has not begun
    // a request yet waits for its first; then a graceful close (the request
    // in flight finishes, keep-alive ends).
    let mut draining: Option<tokio::time::Instant> = None;
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(peer = %addr, error = %e, "connection ended with an error");
                }
                break;
            }
            // Nothing in flight: dropping the connection closes it.
            _ = activity.idle_for(limits.idle_timeout.0), if draining.is_none() => {
                metrics.idle_closed.inc();
                break;
            }
            _ = stop.wait_for(|s| *s), if draining.is_none() => {
                draining = Some(tokio::time::Instant::now() + limits.header_timeout.0);
            }
            _ = first_or(&activity, draining), if draining.is_some() && !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    metrics.connections_open.add(-1);
}

/// While draining: resolves when the connection has begun a request (at
/// once if it already has) or at `deadline`, whichever is first.
async fn first_or(activity: &idle::Activity, deadline: Option<tokio::time::Instant>) {
    let Some(deadline) = deadline else {
        return std::future::pending().await;
    };
    let _ = tokio::time::timeout_at(deadline, activity.first_request()).await;
}
