//! The daemon: assembled from a checked config (store, TLS, listeners,
//! background tasks), run until SIGTERM/SIGINT or a store that cannot
//! write, and shut down in one place: stop accepting, drain, flush.
//! `kim serve` (src/cli/serve.rs) loads the config and calls [`run`];
//! the demo, the benches and the tests call [`start`].

pub mod activation;
mod checkpoints;
mod expiry;
mod health;
mod metrics_http;
pub mod reload;
mod retention;
mod review_notify;
mod review_remind;
mod signals;
mod summary;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::oneshot;

use crate::audit::{Actor, EventKind, Refs};
use crate::config::Config;
use crate::ingest::admission::{raise_nofile_limit, Descriptors};
use crate::ingest::{self, http::AppState, tls};
use crate::metrics::Metrics;
use crate::store::crypto::MasterKey;
use crate::store::Store;
use checkpoints::{checkpoint_once, Shipper};

/// A daemon running inside this process (used by `serve` and `demo`).
pub struct Running {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub store: Arc<Store>,
    /// Applies reloads (SIGHUP in `run`; the CRL refresh runs by itself).
    pub reloader: Arc<reload::Reloader>,
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

pub use signals::{hangups, Hangups};

fn detail(pairs: &[(&str, serde_json::Value)]) -> serde_json::Map<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Opens the store, binds the listeners and starts serving.
pub async fn start(
    cfg: Config,
    tls_material: tls::TlsMaterial,
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
    // A store put back by `kim restore` while the checkpoint file vouches
    // for more: say so at every start (issue 14 item 4).
    match store.last_restore() {
        Ok(Some(r)) if r.file_ahead() => tracing::warn!("{}", r.warning()),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the last restore's record"),
    }
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
    let live = Arc::new(ingest::Live::new(cfg.clone(), tls_material.config.clone()));
    let reloader = Arc::new(reload::Reloader::new(
        live.clone(),
        store.clone(),
        metrics.clone(),
        &tls_material,
    ));

    // Connections may use the descriptors up to a reserve kept for the
    // store, the journal, delivery and the checkpoint file.
    let fds = Descriptors::new(raise_nofile_limit());
    tracing::info!(
        limit = fds.limit(),
        reserve = fds.reserve(),
        "open-file limit"
    );

    let (listener, origin) = activation::police_listener(cfg.server.listen).await?;
    let addr = listener.local_addr()?;
    let metrics_addr = match cfg.metrics.listen {
        Some(a) => Some(metrics_http::spawn(a, metrics.clone(), store.clone(), fds.clone()).await?),
        None => None,
    };

    // Which configuration this run uses: its path and a hash of its text
    // (the text itself holds addresses, not for the audit).
    let config_hash = reload::config_sha256(&cfg.source);
    let ticket = store
        .audit_append(
            EventKind::ConfigLoaded,
            Actor::SYSTEM.as_str(),
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

    crate::matching::stage::spawn_with(store.clone(), reloader.threshold());
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
    let rotation_signer = signer.clone();
    let shipper = cfg
        .audit
        .checkpoint_file
        .clone()
        .map(|p| Shipper::new(p, metrics.clone()));
    let (ckpt_stop, ckpt_stop_rx) = tokio::sync::watch::channel(false);
    let checkpointer = signer.clone().map(|s| {
        tokio::spawn(checkpoints::run(
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
    let review_task = {
        let notify = review_notify::run(
            store.clone(),
            reloader.digest_every(),
            deliver_stop_rx.clone(),
        );
        let remind = review_remind::run_live(
            store.clone(),
            reloader.remind_at(),
            Arc::new(crate::deliver::SystemClock),
            deliver_stop_rx.clone(),
        );
        let expiry = expiry::run(reloader.clone(), store.clone(), deliver_stop_rx.clone());
        tokio::spawn(async move {
            tokio::join!(notify, remind, expiry);
        })
    };
    let summary_task = cfg
        .delivery
        .summary_time()
        .map(|at| tokio::spawn(summary::run(store.clone(), at, deliver_stop_rx.clone())));
    let retention_task = tokio::spawn(retention::run(
        store.clone(),
        cfg.retention.clone(),
        deliver_stop_rx.clone(),
    ));
    let deliverer = crate::deliver::Deliverer::new(
        store.clone(),
        transport,
        policy,
        Arc::new(crate::deliver::SystemClock),
    );
    reloader.set_delivery(deliverer.settings());
    let deliverer = tokio::spawn(deliverer.run(deliver_stop_rx));

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
    let crl_refresh = tokio::spawn(reloader.clone().refresh_crls());
    let done = tokio::spawn(async move {
        ingest::serve(live, state, fds, listener, async {
            let _ = stop_rx.await;
        })
        .await;
        crl_refresh.abort();
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
            let _ = tokio::time::timeout(Duration::from_secs(1), review_task).await;
            if let Some(t) = summary_task {
                let _ = tokio::time::timeout(Duration::from_secs(1), t).await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), retention_task).await;
            return Err(anyhow::Error::new(StoreBroken {
                reason: b.reason(),
                left: Some(left),
            }));
        }
        let _ = admin_stop.send(true);
        let _ = admin_task.await;
        let _ = deliver_stop.send(true);
        let _ = deliverer.await;
        let _ = review_task.await;
        if let Some(t) = summary_task {
            let _ = t.await;
        }
        let _ = retention_task.await;
        let t = serve_store.audit_append(
            EventKind::Stopped,
            Actor::SYSTEM.as_str(),
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
            Actor::SYSTEM.as_str(),
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
    if let Some(s) = &rotation_signer {
        checkpoints::note_signing_key(&store, s).await?;
    }
    tracing::info!(
        %addr,
        activated = origin == activation::Origin::Activated,
        "listening for police systems"
    );
    if let Some(m) = metrics_addr {
        tracing::info!(addr = %m, "metrics on http://{m}/metrics");
    }
    Ok(Running {
        addr,
        metrics_addr,
        store,
        reloader,
        stop: Some(stop_tx),
        done,
    })
}

/// Runs the daemon until SIGTERM/SIGINT (Ok after a clean stop) or until
/// the store cannot write (an error naming what the accept journal keeps).
/// `config` is the file `cfg` came from (for the log).
pub async fn run(
    config: &Path,
    cfg: Config,
    tls_material: tls::TlsMaterial,
    master: MasterKey,
    hangups: signals::Hangups,
) -> anyhow::Result<()> {
    let grace = cfg.limits.shutdown_grace.0;
    tracing::info!(config = %config.display(), forces = cfg.forces.len(), "kim starting");
    let testing: Vec<&str> = cfg
        .forces
        .iter()
        .filter(|f| f.has_test_mode())
        .map(|f| f.id.as_str())
        .collect();
    if !testing.is_empty() {
        tracing::warn!(forces = ?testing, "forces in test mode: what they send goes only to [mail] test_recipient");
    }
    let running = start(cfg, tls_material, master).await?;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    tokio::spawn(signals::reload_on_hangup(hangups, running.reloader.clone()));
    let store = running.store.clone();
    health::spawn_watchdog(store.clone());
    tokio::select! {
        _ = signals::termination() => {}
        b = health::store_broken(store.clone()) => tracing::error!(
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
    Err(failure)
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
