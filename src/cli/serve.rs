//! `kim serve`: assemble the daemon from a checked config (store, TLS,
//! listeners, background tasks), tell systemd when it is ready, and shut
//! down in one place on SIGTERM/SIGINT: stop accepting, drain, flush, exit 0.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::{check_config, CliResult, Failure};
use crate::audit::{EventKind, Refs};
use crate::config::Config;
use crate::ingest::admission::{raise_nofile_limit, AcceptBackoff, Descriptors, Summary};
use crate::ingest::{self, http::AppState, tls};
use crate::metrics::Metrics;
use crate::store::crypto::MasterKey;
use crate::store::Store;

/// A daemon running inside this process (used by `serve` and `demo`).
pub struct Running {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub store: Arc<Store>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops accepting, drains, appends the `stopped` audit event, flushes.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.done.await.context("the server task panicked")?
    }
}

fn detail(pairs: &[(&str, serde_json::Value)]) -> serde_json::Map<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Opens the store, binds the listeners and starts serving.
pub async fn start(
    cfg: Config,
    tls_config: Arc<rustls::ServerConfig>,
    master: MasterKey,
) -> anyhow::Result<Running> {
    let cfg = Arc::new(cfg);
    let forces = cfg.forces.len();
    let store_path = cfg.store.path.clone();
    let cache_mb = cfg.store.cache_mb;
    let store = tokio::task::spawn_blocking(move || {
        crate::fsmode::own_dir(&store_path)
            .with_context(|| format!("cannot create the store folder {}", store_path.display()))?;
        Store::open_with_cache(&store_path, &master, cache_mb * 1024 * 1024)
            .map_err(|e| cannot_write(e, "cannot open the store"))
    })
    .await??;
    let store = Arc::new(store);
    store.spawn_flusher();
    store.set_calendar(cfg.delivery.calendar());
    let policy = crate::deliver::Policy::from_config(&cfg)?;
    let transport: Arc<dyn crate::deliver::transport::Transport> =
        crate::deliver::transport::from_config(
            &cfg.mail,
            cfg.delivery.concurrency,
            cfg.delivery.send_timeout.0,
        )?
        .into();

    let metrics = Arc::new(Metrics::default());
    if let Some(secs) = tls::load_certs("server certificate", &cfg.server.cert)
        .ok()
        .and_then(|c| c.first().and_then(tls::seconds_to_expiry))
    {
        metrics.server_cert_expiry_seconds.set(secs);
        if secs < 14 * 86_400 {
            tracing::warn!(days = secs / 86_400, "the server certificate expires soon");
        }
    }

    // Connections may use the descriptors up to a reserve kept for the
    // store, the journal, delivery and the checkpoint file.
    let fds = Descriptors::new(raise_nofile_limit());
    tracing::info!(
        limit = fds.limit(),
        reserve = fds.reserve(),
        "open-file limit"
    );

    let listener = TcpListener::bind(cfg.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.server.listen))?;
    let addr = listener.local_addr()?;
    let metrics_addr = match cfg.metrics.listen {
        Some(a) => Some(spawn_metrics(a, metrics.clone(), store.clone(), fds.clone()).await?),
        None => None,
    };

    // Which configuration this run uses: its path and a hash of its text
    // (the text itself holds addresses, not for the audit).
    let config_hash = std::fs::read(&cfg.source)
        .map(|b| {
            ring::digest::digest(&ring::digest::SHA256, &b)
                .as_ref()
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect::<String>()
        })
        .unwrap_or_default();
    let ticket = store
        .audit_append(
            EventKind::ConfigLoaded,
            "system",
            Refs::default(),
            detail(&[
                ("path", cfg.source.display().to_string().into()),
                ("sha256", config_hash.into()),
            ]),
        )
        .map_err(|e| cannot_write(e, STARTED))?;
    // On disk before anything else can fail (a start that fails later
    // exits without a flush), and a full disk stops the start here.
    store
        .durable(ticket)
        .await
        .map_err(|e| cannot_write(e, STARTED))?;

    crate::matching::stage::spawn(store.clone(), cfg.matching.name_threshold);
    {
        // After a reboot the roll is not in the page cache: read it once in
        // the background, so matching does not wait for the disk per lookup.
        let store = store.clone();
        std::thread::Builder::new()
            .name("kim-warm".into())
            .spawn(move || {
                crate::store::writer::lower_priority(10);
                let started = std::time::Instant::now();
                match store.warm_roll() {
                    Ok(0) => {}
                    Ok(bytes) => tracing::info!(
                        mib = bytes >> 20,
                        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
                        "roll read into the page cache"
                    ),
                    Err(e) => tracing::warn!(error = %e, "could not read the roll ahead"),
                }
            })
            .context("cannot start a thread")?;
    }

    let signer = match cfg.signing_key_path()? {
        Some(p) => Some(Arc::new(
            crate::audit::checkpoint::Signer::load(&p).map_err(anyhow::Error::from)?,
        )),
        None => {
            tracing::warn!(
                "no [audit] signing key: the audit chain runs without signed checkpoints"
            );
            None
        }
    };
    let shipper = cfg
        .audit
        .checkpoint_file
        .clone()
        .map(|p| Shipper::new(p, metrics.clone()));
    let (ckpt_stop, ckpt_stop_rx) = tokio::sync::watch::channel(false);
    let checkpointer = signer.clone().map(|s| {
        tokio::spawn(run_checkpointer(
            store.clone(),
            s,
            cfg.audit.checkpoint_every,
            cfg.audit.checkpoint_interval.0,
            shipper,
            ckpt_stop_rx,
        ))
    });

    let admin_server = crate::admin::server::AdminServer::bind(&cfg.admin)?;
    tracing::info!(socket = %admin_server.path().display(), "admin socket ready");
    let (admin_stop, mut admin_stop_rx) = tokio::sync::watch::channel(false);
    let admin_task = tokio::spawn(admin_server.serve(store.clone(), cfg.clone(), async move {
        let _ = admin_stop_rx.changed().await;
    }));

    let (deliver_stop, deliver_stop_rx) = tokio::sync::watch::channel(false);
    let deliverer = tokio::spawn(
        crate::deliver::Deliverer::new(
            store.clone(),
            transport,
            policy,
            Arc::new(crate::deliver::SystemClock),
        )
        .run(deliver_stop_rx),
    );

    let ingest = crate::store::writer::Ingest::spawn(store.clone())
        .context("cannot start the accept journal")?;
    let state = Arc::new(AppState {
        store: store.clone(),
        ingest: ingest.clone(),
        metrics,
        body_timeout: cfg.limits.body_timeout.0,
    });
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let serve_store = store.clone();
    let done = tokio::spawn(async move {
        ingest::serve(cfg, tls_config, state, fds, listener, async {
            let _ = stop_rx.await;
        })
        .await;
        // Every journaled notification into the trees before anything
        // else stops (the matching stage and delivery pick them up).
        let left = ingest.shutdown().await;
        if let Some(b) = serve_store.broken() {
            // Nothing more can be written: stop the rest without waiting
            // long, and say what the replay at the next start will apply.
            let _ = admin_stop.send(true);
            let _ = deliver_stop.send(true);
            let _ = ckpt_stop.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(1), admin_task).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), deliverer).await;
            return Err(anyhow::Error::new(StoreBroken {
                reason: b.reason(),
                left: Some(left),
            }));
        }
        let _ = admin_stop.send(true);
        let _ = admin_task.await;
        let _ = deliver_stop.send(true);
        let _ = deliverer.await;
        let t = serve_store.audit_append(
            EventKind::Stopped,
            "system",
            Refs::default(),
            Default::default(),
        )?;
        serve_store.durable(t).await?;
        let _ = ckpt_stop.send(true);
        let mut shipper = match checkpointer {
            Some(c) => c.await.ok().flatten(),
            None => None,
        };
        // A last checkpoint covers everything up to `stopped`.
        if let Some(s) = &signer {
            checkpoint_once(&serve_store, s).await?;
            if let Some(sh) = shipper.as_mut() {
                sh.ship(&serve_store);
                if sh.failing() {
                    tracing::error!(file = %sh.path.display(), "the checkpoint file lacks stored checkpoints; the next start appends them");
                }
            }
        }
        serve_store.flush_now()?;
        Ok(())
    });
    // Only once everything is bound and running: a start that fails on the
    // way leaves no `started` in the audit.
    let ticket = store
        .audit_append(
            EventKind::Started,
            "system",
            Refs::default(),
            detail(&[
                ("version", env!("CARGO_PKG_VERSION").into()),
                ("forces", forces.into()),
            ]),
        )
        .map_err(|e| cannot_write(e, STARTED))?;
    store
        .durable(ticket)
        .await
        .map_err(|e| cannot_write(e, STARTED))?;
    tracing::info!(%addr, "listening for police systems");
    if let Some(m) = metrics_addr {
        tracing::info!(addr = %m, "metrics on http://{m}/metrics");
    }
    Ok(Running {
        addr,
        metrics_addr,
        store,
        stop: Some(stop_tx),
        done,
    })
}

/// Most metrics connections at once: a scraper needs one or two; more are
/// closed at once.
const METRICS_MAX_CONNECTIONS: usize = 16;
/// Time allowed to send a metrics request's headers.
const METRICS_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a metrics connection may stay open, keep-alive included.
const METRICS_CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The Prometheus listener: plain HTTP, at most `METRICS_MAX_CONNECTIONS`
/// connections within the shared descriptor budget, each bounded in time.
async fn spawn_metrics(
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
                        let (status, body) = if req.uri().path() == "/metrics" {
                            (200, metrics.render(&store))
                        } else {
                            (404, "not found\n".to_owned())
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

/// Signs a checkpoint of the chain's head (if it moved) and makes it
/// durable.
async fn checkpoint_once(
    store: &Store,
    signer: &crate::audit::checkpoint::Signer,
) -> anyhow::Result<()> {
    if let Some((cp, ticket)) = store.checkpoint(signer, jiff::Timestamp::now())? {
        store.durable(ticket).await?;
        tracing::info!(seq = cp.seq, key = %cp.key_id, "audit checkpoint signed");
    }
    Ok(())
}

/// Keeps `[audit] checkpoint_file` holding every stored checkpoint: one
/// that could not be appended (a full disk, no descriptors left) is
/// appended on a later try, in order, never skipped; meanwhile the gauge
/// `kim_audit_checkpoints_unshipped` says how many the file lacks and an
/// error is logged every 10 s.
struct Shipper {
    path: std::path::PathBuf,
    /// The last checkpoint the file holds (`None`: read the file again).
    shipped: Option<u64>,
    /// The last checkpoint the file was seen to hold (for the gauge while
    /// the file cannot be read).
    seen: u64,
    metrics: Arc<Metrics>,
    failing_since: Option<tokio::time::Instant>,
    last_log: Option<tokio::time::Instant>,
}

impl Shipper {
    fn new(path: std::path::PathBuf, metrics: Arc<Metrics>) -> Self {
        Self {
            path,
            shipped: None,
            seen: 0,
            metrics,
            failing_since: None,
            last_log: None,
        }
    }

    /// Whether the last try failed (so the next tick tries again).
    fn failing(&self) -> bool {
        self.failing_since.is_some()
    }

    /// The last checkpoint in the file.
    fn last_in_file(&self) -> anyhow::Result<u64> {
        match std::fs::File::open(&self.path) {
            Ok(f) => Ok(
                crate::audit::export::read_checkpoint_file(std::io::BufReader::new(f))
                    .map_err(|e| {
                        anyhow::anyhow!("the checkpoint file {}: {e}", self.path.display())
                    })?
                    .last()
                    .map_or(0, |c| c.seq),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(anyhow::anyhow!(
                "cannot read the checkpoint file {}: {e}",
                self.path.display()
            )),
        }
    }

    /// Appends every stored checkpoint newer than the file's last, fsynced.
    fn try_ship(&mut self, store: &Store) -> anyhow::Result<()> {
        use std::io::Write;
        let stored = store.checkpoints()?;
        let behind = |upto: u64| stored.iter().filter(|c| c.seq > upto).count() as i64;
        let shipped = match self.shipped {
            Some(s) => s,
            None => match self.last_in_file() {
                Ok(s) => s,
                Err(e) => {
                    self.metrics
                        .audit_checkpoints_unshipped
                        .set(behind(self.seen));
                    return Err(e);
                }
            },
        };
        self.shipped = Some(shipped);
        self.seen = shipped;
        self.metrics
            .audit_checkpoints_unshipped
            .set(behind(shipped));
        let missing: Vec<_> = stored.iter().filter(|c| c.seq > shipped).collect();
        let Some(last) = missing.last().map(|c| c.seq) else {
            return Ok(());
        };
        let mut lines = Vec::new();
        for cp in &missing {
            serde_json::to_writer(&mut lines, cp)?;
            lines.push(b'\n');
        }
        // A partial line may land before a failure: read the file's end
        // again before the next try.
        self.shipped = None;
        let mut f = crate::fsmode::append_private(&self.path)
            .with_context(|| format!("cannot open the checkpoint file {}", self.path.display()))?;
        f.write_all(&lines)
            .and_then(|()| f.sync_data())
            .with_context(|| format!("cannot append to {}", self.path.display()))?;
        self.shipped = Some(last);
        self.seen = last;
        self.metrics.audit_checkpoints_unshipped.set(0);
        Ok(())
    }

    fn ship(&mut self, store: &Store) {
        match self.try_ship(store) {
            Ok(()) => {
                if let Some(since) = self.failing_since.take() {
                    tracing::info!(after = ?since.elapsed(), file = %self.path.display(),
                        "the checkpoint file holds every stored checkpoint again");
                }
                self.last_log = None;
            }
            Err(e) => {
                let now = tokio::time::Instant::now();
                self.failing_since.get_or_insert(now);
                if self
                    .last_log
                    .is_none_or(|t| now - t >= Duration::from_secs(10))
                {
                    self.last_log = Some(now);
                    tracing::error!(
                        error = %super::describe(&e),
                        unshipped = self.metrics.audit_checkpoints_unshipped.get(),
                        "audit checkpoints missing from the checkpoint file; retrying every 500 ms"
                    );
                }
            }
        }
    }
}

/// Every `every` events or `interval` (if the chain moved), a checkpoint;
/// the checkpoint file catches up after each, and on every tick while it
/// is behind.
async fn run_checkpointer(
    store: Arc<Store>,
    signer: Arc<crate::audit::checkpoint::Signer>,
    every: u64,
    interval: Duration,
    mut shipper: Option<Shipper>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<Shipper> {
    let mut last_at = tokio::time::Instant::now();
    // Checkpoints stored before a restart that the file never got.
    if let Some(s) = shipper.as_mut() {
        s.ship(&store);
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => return shipper,
        }
        let (Ok(head), Ok(last)) = (store.audit_head(), store.last_checkpoint_seq()) else {
            continue;
        };
        let due = head.seq >= last + every || (head.seq > last && last_at.elapsed() >= interval);
        if due {
            match checkpoint_once(&store, &signer).await {
                Ok(()) => last_at = tokio::time::Instant::now(),
                Err(e) => {
                    crate::lograte::error!("audit.checkpoint", error = %e, "audit checkpoint failed; retrying")
                }
            }
        }
        if let Some(s) = shipper.as_mut() {
            if due || s.failing() {
                s.ship(&store);
            }
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT.
async fn termination() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}

/// Pings systemd's watchdog while the store can write; a store that
/// cannot write gets no more pings, so systemd restarts kim even if its own
/// exit (see [`store_broken`]) hangs.
fn spawn_watchdog(store: Arc<Store>) {
    let mut usec = 0;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        let every = Duration::from_micros(usec / 2);
        tokio::spawn(async move {
            loop {
                if let Some(b) = store.broken() {
                    tracing::error!("{}: watchdog pings stopped", b.reason());
                    return;
                }
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
                tokio::time::sleep(every).await;
            }
        });
    }
}

/// How long kim answers 503 with a store that cannot write before it exits
/// non-zero (systemd's `Restart=on-failure` starts it again; the open
/// replays the accept journal). Waiting longer would not help: sled 0.34
/// never writes again after a failed write (see `store::health`). The few
/// seconds let requests in flight get their answer and `/readyz` say why.
const BROKEN_EXIT_AFTER: Duration = Duration::from_secs(5);
/// How often the store's health is probed.
const HEALTH_EVERY: Duration = Duration::from_secs(1);

/// Resolves once the store has been unable to write for
/// [`BROKEN_EXIT_AFTER`].
///
/// Why exit rather than reopen sled in-process: every stage (ingest,
/// applier, matching, delivery, checkpoints, admin) holds an `Arc<Store>`
/// whose trees belong to the one `sled::Db`; swapping it under them would
/// need a lock on every store access and a way to drain each stage, and
/// sled's lock file is only released when the last handle drops. A new
/// process gets all of that from the start path that already runs at every
/// boot, including the replay of the accept journal (which holds every
/// notification that got a 202); if the disk is still full, the start
/// fails fast with a clear error and systemd tries again after
/// `RestartSec`.
async fn store_broken(store: Arc<Store>) -> crate::store::Broken {
    loop {
        tokio::time::sleep(HEALTH_EVERY).await;
        let s = store.clone();
        if let Ok(Err(b)) = tokio::task::spawn_blocking(move || s.probe_writable()).await {
            if b.for_how_long() >= BROKEN_EXIT_AFTER {
                return b;
            }
        }
    }
}

/// The daemon stopped with a store that cannot write (disk full?): the
/// final error, with what the replay at the next start will apply.
#[derive(Debug, thiserror::Error)]
#[error("{reason}: stopped without the final flush; {} left in the accept journal for the replay at the next start", match .left {
    Some(n) => format!("{n} accepted notification(s)"),
    None => "every accepted notification not yet in the store is".to_owned(),
})]
struct StoreBroken {
    reason: &'static str,
    /// How many accepted notifications only the journal holds (unknown if
    /// the shutdown did not finish).
    left: Option<u64>,
}

/// What a start that cannot write its first audit events says.
const STARTED: &str = "cannot record the start in the audit";

/// A store error at start, with a hint when it is the disk.
fn cannot_write(e: crate::store::StoreError, what: &str) -> anyhow::Error {
    if e.is_unavailable() {
        anyhow::anyhow!(
            "{what}: {e} ({}; the accept journal keeps every accepted notification for the next start)",
            crate::store::CANNOT_WRITE
        )
    } else {
        anyhow::Error::new(e).context(what.to_owned())
    }
}

pub fn main(config: &Path) -> CliResult {
    let (cfg, tls_config, master) = check_config::load_checked(config)?;
    // A socket folder others can write is a configuration error (exit 2),
    // found before the store opens.
    crate::admin::server::AdminServer::check_place(&cfg.admin).map_err(Failure::usage)?;
    let _log = super::init_logging(cfg.log.format, "info");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kim")
        .build()
        .map_err(Failure::failed)?;
    rt.block_on(async move {
        let grace = cfg.limits.shutdown_grace.0;
        tracing::info!(config = %config.display(), forces = cfg.forces.len(), "kim starting");
        let running = start(cfg, tls_config, master).await.map_err(|e| {
            if e.is::<crate::admin::server::AdminSocketError>() {
                return Failure::usage(e);
            }
            match e.downcast::<crate::store::StoreError>() {
                Ok(store) => super::store_failure(store),
                Err(other) => Failure::failed(other),
            }
        })?;
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        let store = running.store.clone();
        spawn_watchdog(store.clone());
        tokio::select! {
            _ = termination() => {}
            b = store_broken(store.clone()) => tracing::error!(
                "{}: kim cannot keep its promises with this store; exiting non-zero so that it is started again (the start replays the accept journal)",
                b.reason()
            ),
        }
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        // With a store that cannot write there is nothing to flush: the
        // stop fits in the grace period.
        let limit = match store.broken() {
            Some(_) => grace,
            None => grace + Duration::from_secs(5),
        };
        let stopped = tokio::time::timeout(limit, running.shutdown()).await;
        let failure = match (stopped, store.broken()) {
            (Ok(Ok(())), None) => {
                tracing::info!("stopped cleanly; store flushed");
                return Ok(());
            }
            (Ok(Err(e)), _) if e.is::<StoreBroken>() => e,
            (_, Some(b)) => anyhow::Error::new(StoreBroken {
                reason: b.reason(),
                left: None,
            }),
            (Ok(Err(e)), None) => e,
            (Err(_), None) => anyhow::anyhow!("shutdown did not finish in time"),
        };
        tracing::error!("{failure:#}");
        Err(Failure::failed(failure))
    })
}
