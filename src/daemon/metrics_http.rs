//! The Prometheus listener (`[metrics] listen`): plain HTTP on its own
//! port, bounded in connections, descriptors and time. It also answers
//! `/healthz` and `/readyz` as the police listener does, so a load
//! balancer or monitor needs no police certificate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::ingest::admission::{AcceptBackoff, Descriptors, Summary};
use crate::metrics::Metrics;
use crate::store::Store;

/// Most metrics connections at once: a scraper needs one or two; more are
/// closed at once.
const METRICS_MAX_CONNECTIONS: usize = 16;
/// Time allowed to send a metrics request's headers.
const METRICS_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a metrics connection may stay open, keep-alive included.
const METRICS_CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The Prometheus listener: plain HTTP, at most `METRICS_MAX_CONNECTIONS`
/// connections within the shared descriptor budget, each bounded in time.
pub(super) async fn spawn(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    store: Arc<Store>,
    fds: Arc<Descriptors>,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    let slots = Arc::new(tokio::sync::Semaphore::new(METRICS_MAX_CONNECTIONS));
    tokio::spawn(async move {
        let mut backoff = AcceptBackoff::default();
        let (refused, errors) = (Summary::default(), Summary::default());
        loop {
            let tcp = match listener.accept().await {
                Ok((tcp, _)) => {
                    backoff.succeeded();
                    tcp
                }
                Err(e) => {
                    metrics.accept_errors.inc();
                    if let Some(count) = errors.note() {
                        tracing::warn!(error = %e, count, "metrics: accept failed; backing off");
                    }
                    tokio::time::sleep(backoff.failed()).await;
                    continue;
                }
            };
            let (Some(fd), Ok(permit)) = (fds.try_take(), slots.clone().try_acquire_owned()) else {
                metrics.metrics_connections_refused.inc();
                if let Some(count) = refused.note() {
                    tracing::warn!(
                        count,
                        max = METRICS_MAX_CONNECTIONS,
                        "metrics: connections closed at once (cap or descriptor reserve reached)"
                    );
                }
                continue;
            };
            let metrics = metrics.clone();
            let store = store.clone();
            tokio::spawn(async move {
                let _held = (fd, permit);
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let metrics = metrics.clone();
                    let store = store.clone();
                    async move {
                        let (status, body) = match req.uri().path() {
                            "/metrics" => (200, metrics.render(&store)),
                            "/healthz" => return Ok(crate::ingest::http::healthz()),
                            "/readyz" => return Ok(crate::ingest::http::readyz(&store, &metrics)),
                            _ => (404, "not found\n".to_owned()),
                        };
                        let mut r = hyper::Response::new(http_body_util::Full::new(
                            bytes::Bytes::from(body),
                        ));
                        *r.status_mut() =
                            hyper::StatusCode::from_u16(status).expect("valid status");
                        r.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
                        );
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(METRICS_HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(tcp), svc);
                let _ = tokio::time::timeout(METRICS_CONNECTION_TIMEOUT, conn).await;
            });
        }
    });
    Ok(bound)
}
