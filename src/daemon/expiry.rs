//! Expiry warnings (issue 13, item 3): what in the TLS material in force
//! expires (each CRL's nextUpdate, the server certificate's and each police
//! CA's notAfter), and a task that, once a minute, logs a warning and
//! queues one notice a day to `[mail] admin_email` for each item within
//! `[server] expiry_warning_crl` (CRLs, default 48 h) or
//! `expiry_warning_cert` (certificates, default 21 days). Identifiers only:
//! the file name or URL, the certificate subject, the time.

use std::sync::Arc;
use std::time::Duration;

use crate::config::ServerConfig;
use crate::ingest::tls::TlsMaterial;
use crate::store::expiry_notice::ExpiryItem;
use crate::store::Store;

const TICK: Duration = Duration::from_secs(60);

/// One thing that expires, and whether it is a CRL (its window differs).
#[derive(Debug, Clone)]
pub struct Expiring {
    pub item: ExpiryItem,
    pub crl: bool,
}

/// Every expiring item of `m`.
pub fn items(m: &TlsMaterial) -> Vec<Expiring> {
    let at = |t: i64| jiff::Timestamp::from_second(t).ok();
    let mut out = Vec::new();
    for c in &m.crls {
        if let Some(t) = c.next_update.and_then(at) {
            out.push(Expiring {
                item: ExpiryItem {
                    what: "crl".into(),
                    name: c.path.display().to_string(),
                    expires_at: t,
                },
                crl: true,
            });
        }
    }
    if let Some(t) = m.server_not_after.and_then(at) {
        out.push(Expiring {
            item: ExpiryItem {
                what: "server_certificate".into(),
                name: m.server_subject.clone(),
                expires_at: t,
            },
            crl: false,
        });
    }
    for (subject, t) in &m.client_cas {
        if let Some(t) = at(*t) {
            out.push(Expiring {
                item: ExpiryItem {
                    what: "client_ca".into(),
                    name: subject.clone(),
                    expires_at: t,
                },
                crl: false,
            });
        }
    }
    out
}

/// The items within their window at `now` (expired ones included).
pub fn due(items: &[Expiring], server: &ServerConfig, now: jiff::Timestamp) -> Vec<ExpiryItem> {
    items
        .iter()
        .filter(|e| {
            let window = if e.crl {
                server.expiry_warning_crl.0
            } else {
                server.expiry_warning_cert.0
            };
            let left = e.item.expires_at.as_second() - now.as_second();
            left < window.as_secs() as i64
        })
        .map(|e| e.item.clone())
        .collect()
}

/// Runs until `stop` changes: at start, then every minute.
pub async fn run(
    reloader: Arc<super::reload::Reloader>,
    store: Arc<Store>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut first = true;
    loop {
        if store.broken().is_none() {
            let now = jiff::Timestamp::now();
            let due = reloader.expiring(now);
            let mut queued = 0;
            for item in &due {
                let (s, it) = (store.clone(), item.clone());
                match tokio::task::spawn_blocking(move || s.queue_expiry_notice(it, now)).await {
                    Ok(Ok(Some((id, ticket)))) => match store.durable(ticket).await {
                        Ok(()) => {
                            queued += 1;
                            tracing::warn!(
                                what = %item.what,
                                name = %item.name,
                                expires_at = %item.expires_at,
                                alert = %id,
                                "expires soon; the admin mailbox is told (once a day)"
                            );
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "expiry notice not on disk; retried at the next check")
                        }
                    },
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "cannot queue the expiry notice"),
                    Err(e) => tracing::error!(error = %e, "expiry check failed"),
                }
            }
            if first {
                first = false;
                tracing::info!(due = due.len(), queued, "expiry check done");
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}
