//! Live reload (issue 13): on SIGHUP, re-read the config file and every
//! file it names, check all of it into a new snapshot, refuse the whole
//! reload if a key that cannot change live changed, and put the snapshot in
//! force only when everything is good; and the CRL refresh, which re-reads
//! the `[server] crls` files when they change on disk (checked every
//! `[server] crl_refresh`) without a SIGHUP. A refused reload changes
//! nothing: it is logged naming the file and key, audited
//! (`config_reload_failed`) and counted (`kim_config_reloads_total`).
//!
//! What changes live: `[server]` cert, key, client_ca, crls, crl_refresh,
//! crl_urls, expiry warnings; `[[forces]]`; `[matching]`; `[mail]` and
//! `[alert]` (the next message is built and sent with them); `[review]`
//! (notify for the next notice, remind_at and digest_every at once);
//! `[delivery]` closures and school_day_start;
//! `[limits]` handshake_timeout, header_timeout and idle_timeout (for new
//! connections). Everything else is fixed while kim runs ([`fixed_changes`]).

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::audit::{Actor, EventKind, Refs};
use crate::config::{Config, ConfigError};
use crate::ingest::live::{Live, Snapshot};
use crate::ingest::tls::{self, TlsError, TlsMaterial};
use crate::metrics::Metrics;
use crate::store::Store;

/// Why a reload was refused. Each names the config file; the TLS errors
/// also name the certificate, key or CRL file.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{path}: [server]: {source}")]
    Tls {
        path: PathBuf,
        #[source]
        source: TlsError,
    },
    #[error("{path}: [server]: {source}")]
    Secret {
        path: PathBuf,
        #[source]
        source: Box<crate::perms::PermError>,
    },
    #[error("{path}: [mail]: {message}")]
    Mail { path: PathBuf, message: String },
    #[error("{path}: {} cannot change while kim runs; restart kim to apply; nothing was reloaded", list(.changed))]
    Fixed {
        path: PathBuf,
        /// Each key (or section) changed, and why it cannot change live.
        changed: Vec<(&'static str, String)>,
    },
}

/// What started a reload (for the log and the audit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP (`systemctl reload kim`): the config and every file.
    Signal,
    /// A CRL file changed on disk: the `[server]` files only.
    CrlChanged,
    /// A newer CRL was fetched from `[server] crl_urls`: the same.
    CrlFetched,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Signal => "sighup",
            Self::CrlChanged => "crl_refresh",
            Self::CrlFetched => "crl_fetch",
        }
    }
}

/// Applies reloads to the running daemon.
pub struct Reloader {
    live: Arc<Live>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    /// `[matching] name_threshold` (f64 bits), read by the matching thread.
    threshold: Arc<AtomicU64>,
    /// One reload at a time (SIGHUP and the CRL refresh).
    busy: tokio::sync::Mutex<()>,
    /// The CRL files' fingerprint when last read.
    crl_print: Mutex<Vec<u8>>,
    /// What expires when, in the material in force (for `super::expiry`).
    expiring: Mutex<Vec<super::expiry::Expiring>>,
    /// The delivery worker's transport and policy (`[mail]`, `[alert]`,
    /// `[review] notify`), once the worker runs.
    delivery: Mutex<Option<Arc<crate::deliver::LiveSettings>>>,
    /// `[review] remind_at` and `digest_every`, for the review tasks.
    remind_at: tokio::sync::watch::Sender<jiff::civil::Time>,
    digest_every: tokio::sync::watch::Sender<std::time::Duration>,
}

/// A new transport (when `[mail]` changed) and policy for the delivery worker.
type NewDelivery = (
    Option<Arc<dyn crate::deliver::transport::Transport>>,
    crate::deliver::Policy,
);

/// What a reload read and checked: the snapshot, the TLS material, the
/// config's SHA-256, the CRL files' fingerprint, and the delivery settings.
type Prepared = (Snapshot, TlsMaterial, String, Vec<u8>, Option<NewDelivery>);

impl Reloader {
    pub(super) fn new(
        live: Arc<Live>,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        material: &TlsMaterial,
    ) -> Self {
        let snap = live.load();
        let threshold = Arc::new(AtomicU64::new(snap.cfg.matching.name_threshold.to_bits()));
        let print = crate::ingest::crl::fingerprint(&snap.cfg.server.crls);
        let r = Self {
            live,
            store,
            metrics,
            threshold,
            busy: tokio::sync::Mutex::new(()),
            crl_print: Mutex::new(print),
            expiring: Mutex::new(Vec::new()),
            delivery: Mutex::new(None),
            remind_at: tokio::sync::watch::Sender::new(snap.cfg.review.remind_at),
            digest_every: tokio::sync::watch::Sender::new(snap.cfg.review.digest_every.0),
        };
        r.report(material);
        r
    }

    /// Gives the reloads the delivery worker's settings to replace.
    pub(super) fn set_delivery(&self, settings: Arc<crate::deliver::LiveSettings>) {
        *self.delivery.lock().unwrap_or_else(|p| p.into_inner()) = Some(settings);
    }

    /// The live `[review] remind_at`.
    pub(super) fn remind_at(&self) -> tokio::sync::watch::Receiver<jiff::civil::Time> {
        self.remind_at.subscribe()
    }

    /// The live `[review] digest_every`.
    pub(super) fn digest_every(&self) -> tokio::sync::watch::Receiver<std::time::Duration> {
        self.digest_every.subscribe()
    }

    /// The live `[matching] name_threshold`, for the matching thread.
    pub(super) fn threshold(&self) -> impl Fn() -> f64 + Send + 'static {
        let t = self.threshold.clone();
        move || f64::from_bits(t.load(Ordering::Relaxed))
    }

    /// Re-reads everything (`Trigger::Signal`) or the `[server]` files
    /// (`Trigger::CrlChanged`) and puts it in force, or refuses it all.
    /// Returns how long it took to take effect.
    pub async fn reload(self: &Arc<Self>, trigger: Trigger) -> Result<f64, Arc<ReloadError>> {
        let _one = self.busy.lock().await;
        let started = Instant::now();
        let current = self.live.load();
        let path = current.cfg.source.clone();
        let me = self.clone();
        let prepared = tokio::task::spawn_blocking(move || me.prepare(&current, trigger))
            .await
            .unwrap_or_else(|e| {
                Err(ReloadError::Config(ConfigError::Parse {
                    path: path.clone(),
                    message: format!("the reload task failed: {e}"),
                }))
            });
        match prepared {
            Ok((next, material, sha256, print, delivery)) => {
                let cfg = next.cfg.clone();
                if let Some((transport, policy)) = delivery {
                    if let Some(d) = &*self.delivery.lock().unwrap_or_else(|p| p.into_inner()) {
                        d.store(transport, policy);
                    }
                }
                self.remind_at.send_if_modified(|t| {
                    let changed = *t != cfg.review.remind_at;
                    *t = cfg.review.remind_at;
                    changed
                });
                self.digest_every.send_if_modified(|t| {
                    let changed = *t != cfg.review.digest_every.0;
                    *t = cfg.review.digest_every.0;
                    changed
                });
                self.store.set_calendar(cfg.delivery.calendar());
                self.threshold
                    .store(cfg.matching.name_threshold.to_bits(), Ordering::Relaxed);
                self.live.store(next);
                *self.crl_print.lock().unwrap_or_else(|p| p.into_inner()) = print;
                let took = started.elapsed().as_secs_f64();
                self.report(&material);
                self.metrics.reloads.ok.inc();
                self.metrics
                    .last_reload_success
                    .set(jiff::Timestamp::now().as_second());
                tracing::info!(
                    trigger = trigger.as_str(),
                    config = %cfg.source.display(),
                    forces = cfg.forces.len(),
                    crls = material.crls.len(),
                    ms = format!("{:.1}", took * 1000.0),
                    "config reloaded; new connections use it"
                );
                self.audit(
                    EventKind::ConfigLoaded,
                    &[
                        ("path", cfg.source.display().to_string().into()),
                        ("sha256", sha256.into()),
                        ("trigger", trigger.as_str().into()),
                    ],
                )
                .await;
                Ok(took)
            }
            Err(e) => {
                let e = Arc::new(e);
                self.metrics.reloads.failed.inc();
                tracing::error!(
                    trigger = trigger.as_str(),
                    "reload refused, the config in force stays: {e}"
                );
                self.audit(
                    EventKind::ConfigReloadFailed,
                    &[
                        ("trigger", trigger.as_str().into()),
                        ("error", e.to_string().into()),
                    ],
                )
                .await;
                Err(e)
            }
        }
    }

    /// Reads and checks; changes nothing.
    fn prepare(&self, current: &Snapshot, trigger: Trigger) -> Result<Prepared, ReloadError> {
        let path = current.cfg.source.clone();
        let (cfg, sha256) = match trigger {
            Trigger::Signal => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let cfg = Config::from_toml(&text, &path)?;
                let changed = fixed_changes(&current.cfg, &cfg);
                if !changed.is_empty() {
                    return Err(ReloadError::Fixed { path, changed });
                }
                (Arc::new(cfg), sha256_hex(text.as_bytes()))
            }
            Trigger::CrlChanged | Trigger::CrlFetched => (
                current.cfg.clone(),
                std::fs::read(&path)
                    .map(|b| sha256_hex(&b))
                    .unwrap_or_default(),
            ),
        };
        // The same rule as at start for the TLS key: private to root or
        // kim's user, in a folder only they can change.
        crate::perms::check_secret_file("the server TLS key", &cfg.server.key, false).map_err(
            |source| ReloadError::Secret {
                path: path.clone(),
                source: Box::new(source),
            },
        )?;
        // The fingerprint before the read: a file changed during the read
        // is read again at the next check.
        let print = crate::ingest::crl::fingerprint(&cfg.server.crls);
        let material = tls::load_all(&cfg).map_err(|source| ReloadError::Tls {
            path: path.clone(),
            source,
        })?;
        // [mail], [alert], [review] notify: a new policy, and a new
        // transport only when [mail] changed (the pool stays otherwise).
        let delivery = match trigger {
            Trigger::Signal => {
                let mail = |message: String| ReloadError::Mail {
                    path: path.clone(),
                    message,
                };
                let policy =
                    crate::deliver::Policy::from_config(&cfg).map_err(|e| mail(e.to_string()))?;
                let transport = if format!("{:?}", current.cfg.mail) != format!("{:?}", cfg.mail) {
                    let t = crate::deliver::transport::from_config(
                        &cfg.mail,
                        cfg.delivery.concurrency,
                        cfg.delivery.send_timeout.0,
                    )
                    .map_err(|e| mail(e.to_string()))?;
                    Some(Arc::from(t))
                } else {
                    None
                };
                Some((transport, policy))
            }
            Trigger::CrlChanged | Trigger::CrlFetched => None,
        };
        let next = Snapshot {
            cfg,
            tls: material.config.clone(),
        };
        Ok((next, material, sha256, print, delivery))
    }

    /// The items of the material in force within their warning window
    /// (`[server] expiry_warning_crl` / `expiry_warning_cert`) at `now`.
    pub(super) fn expiring(
        &self,
        now: jiff::Timestamp,
    ) -> Vec<crate::store::expiry_notice::ExpiryItem> {
        let server = self.live.load().cfg.server.clone();
        super::expiry::due(
            &self.expiring.lock().unwrap_or_else(|p| p.into_inner()),
            &server,
            now,
        )
    }

    /// Metrics and warnings for what is now loaded.
    fn report(&self, material: &TlsMaterial) {
        *self.expiring.lock().unwrap_or_else(|p| p.into_inner()) = super::expiry::items(material);
        self.metrics
            .server_cert_not_after
            .set(material.server_not_after.unwrap_or(0));
        self.metrics.client_ca_not_after.set(
            material
                .client_cas
                .iter()
                .map(|(_, t)| *t)
                .min()
                .unwrap_or(0),
        );
        self.metrics.crl_next_update.set(
            material
                .crls
                .iter()
                .filter_map(|c| Some((c.path.display().to_string(), c.next_update?)))
                .collect(),
        );
        for w in material.expired_crls() {
            tracing::warn!("{w}");
        }
        if let Some(t) = material.server_not_after {
            let left = t - jiff::Timestamp::now().as_second();
            if left < 14 * 86_400 {
                tracing::warn!(days = left / 86_400, "the server certificate expires soon");
            }
        }
    }

    async fn audit(&self, kind: EventKind, pairs: &[(&str, serde_json::Value)]) {
        let detail = super::detail(pairs);
        match self
            .store
            .audit_append(kind, Actor::SYSTEM.as_str(), Refs::default(), detail)
        {
            Ok(t) => {
                if let Err(e) = self.store.durable(t).await {
                    tracing::error!(error = %e, "the reload's audit event is not on disk");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot audit the reload"),
        }
    }

    /// Checks the CRL files every `[server] crl_refresh` and reloads the
    /// `[server]` files when one changed. Runs until aborted.
    pub(super) async fn refresh_crls(self: Arc<Self>) {
        let mut last = Instant::now();
        // The distribution points at once at start, then every crl_refresh.
        if self.fetch_urls().await {
            let _ = self.reload(Trigger::CrlFetched).await;
        }
        loop {
            // Woken at least every second, so a reload that shortens
            // crl_refresh takes effect without waiting out the old period.
            let every = self.live.load().cfg.server.crl_refresh.0;
            let left = every.saturating_sub(last.elapsed());
            if !left.is_zero() {
                tokio::time::sleep(left.min(std::time::Duration::from_secs(1))).await;
                continue;
            }
            last = Instant::now();
            if self.fetch_urls().await {
                let _ = self.reload(Trigger::CrlFetched).await;
            }
            let crls = self.live.load().cfg.server.crls.clone();
            if crls.is_empty() {
                continue;
            }
            let print = tokio::task::spawn_blocking(move || crate::ingest::crl::fingerprint(&crls))
                .await
                .unwrap_or_default();
            let changed = *self.crl_print.lock().unwrap_or_else(|p| p.into_inner()) != print;
            // A refused one is not tried again until the files change again.
            if changed && self.reload(Trigger::CrlChanged).await.is_err() {
                *self.crl_print.lock().unwrap_or_else(|p| p.into_inner()) = print;
            }
        }
    }
}

impl Reloader {
    /// Fetches every `[server] crl_urls` distribution point once; whether
    /// any gave a newer CRL (now kept in the store folder's `crl/`). What
    /// cannot be used is logged naming the URL and why.
    async fn fetch_urls(&self) -> bool {
        use crate::ingest::crl_fetch::{self, Fetched};
        let cfg = self.live.load().cfg.clone();
        if cfg.server.crl_urls.is_empty() {
            return false;
        }
        let ca_file = cfg.server.client_ca.clone();
        let cas =
            tokio::task::spawn_blocking(move || tls::load_certs("police CA bundle", &ca_file))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
        let cas = match cas {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("CRL URLs not fetched: {e}");
                return false;
            }
        };
        let dir = crl_fetch::cache_dir(&cfg.store.path);
        let mut newer = false;
        for url in &cfg.server.crl_urls {
            match crl_fetch::refresh(url, &dir, &cas).await {
                Ok(Fetched::New) => {
                    tracing::info!(url = %url, "fetched a newer CRL; putting it in force");
                    newer = true;
                }
                Ok(Fetched::Unchanged) => {}
                Err(e) => tracing::warn!("{e}"),
            }
        }
        newer
    }
}

fn sha256_hex(b: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// The config's SHA-256 (hex) as audited at start and at each reload.
pub(super) fn config_sha256(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| sha256_hex(&b))
        .unwrap_or_default()
}

fn list(changed: &[(&'static str, String)]) -> String {
    changed
        .iter()
        .map(|(key, why)| format!("key `{key}` ({why})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every key (or section) that differs between `old` and `new` but cannot
/// change while kim runs, and why. Sections compare by their `Debug` form,
/// with the keys that can change live set equal first.
pub fn fixed_changes(old: &Config, new: &Config) -> Vec<(&'static str, String)> {
    fn differs<T: Debug>(a: &T, b: &T) -> bool {
        format!("{a:?}") != format!("{b:?}")
    }
    let mut changed = Vec::new();
    if old.server.listen != new.server.listen {
        changed.push((
            "server.listen",
            format!(
                "the listening socket is {}, the file now says {}",
                old.server.listen, new.server.listen
            ),
        ));
    }
    let sections: [(&'static str, bool, &str); 6] = [
        (
            "store",
            differs(&old.store, &new.store),
            "the store and its master key are opened once, at start",
        ),
        (
            "admin",
            differs(&old.admin, &new.admin),
            "the admin socket is bound at start",
        ),
        (
            "metrics",
            differs(&old.metrics, &new.metrics),
            "the metrics listener is bound at start",
        ),
        (
            "audit",
            differs(&old.audit, &new.audit),
            "the signing key and checkpoint file are opened at start",
        ),
        (
            "log",
            differs(&old.log, &new.log),
            "logging is set up at start",
        ),
        ("delivery", differs(&old.delivery, &live_delivery(&new.delivery, &old.delivery)),
            "only closures and school_day_start change live; the retry, escalation and concurrency settings are read at start"),
    ];
    changed.extend(
        sections
            .into_iter()
            .filter(|(_, d, _)| *d)
            .map(|(key, _, why)| (key, why.to_owned())),
    );
    let mut limits = new.limits.clone();
    limits.handshake_timeout = old.limits.handshake_timeout;
    limits.header_timeout = old.limits.header_timeout;
    limits.idle_timeout = old.limits.idle_timeout;
    if differs(&old.limits, &limits) {
        changed.push((
            "limits",
            "only handshake_timeout, header_timeout and idle_timeout change live; the connection and handshake caps, body_timeout and shutdown_grace are set at start".to_owned(),
        ));
    }
    changed
}

/// `new` with the keys that change live taken from `old`.
fn live_delivery(
    new: &crate::config::DeliveryConfig,
    old: &crate::config::DeliveryConfig,
) -> crate::config::DeliveryConfig {
    let mut d = new.clone();
    d.closures = old.closures.clone();
    d.school_day_start = old.school_day_start;
    d
}

#[cfg(test)]
#[path = "reload_tests.rs"]
mod tests;
