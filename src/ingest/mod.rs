//! The police-facing HTTPS server: accepts TCP connections up to a limit,
//! completes the mutual-TLS handshake within a deadline, identifies the force
//! from the certificate, and serves HTTP/1.1 with a header timeout until
//! shutdown, when it stops accepting and drains in-flight requests.

pub mod http;
pub mod notification;
pub mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, LimitsConfig};
use http::{AppState, Peer};

/// Serves the police API on `listener` until `shutdown` resolves, then
/// drains for at most `limits.shutdown_grace`.
pub async fn serve(
    cfg: Arc<Config>,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let limits: LimitsConfig = cfg.limits.clone();
    let acceptor = TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
        };
        let (tcp, addr) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    crate::lograte::warning!("tcp.accept", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let cfg = cfg.clone();
        let state = state.clone();
        let limits = limits.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            state.metrics.connections_total.inc();
            let tls = match tokio::time::timeout(limits.handshake_timeout.0, acceptor.accept(tcp))
                .await
            {
                Err(_) => {
                    state.metrics.handshake_timeouts.inc();
                    tracing::info!(peer = %addr, "TLS handshake timed out");
                    return;
                }
                Ok(Err(e)) => {
                    state.metrics.handshake_failures.inc();
                    tracing::info!(peer = %addr, error = %e, "TLS handshake refused");
                    return;
                }
                Ok(Ok(s)) => s,
            };
            let identities = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(tls::identities)
                .unwrap_or_default();
            let force = cfg.force_for(&identities).map(|f| f.id.clone());
            if force.is_none() {
                tracing::warn!(peer = %addr, identities = ?identities, "client certificate is CA-valid but not listed in [[forces]]; answering 403");
            }
            let peer = Arc::new(Peer { addr, force });
            let metrics = state.metrics.clone();
            metrics.connections_open.add(1);
            let svc = service_fn(move |req| http::handle(req, peer.clone(), state.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout.0)
                .keep_alive(true)
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(tls), svc);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(peer = %addr, error = %e, "connection ended with an error");
            }
            metrics.connections_open.add(-1);
        });
    }
    drop(listener);
    tracing::info!("stopped accepting; draining in-flight requests");
    if tokio::time::timeout(limits.shutdown_grace.0, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?limits.shutdown_grace.0, "grace period over; closing remaining connections");
    }
}
