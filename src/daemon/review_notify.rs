//! The review notice task (issue 12, item 1): every short tick it asks the
//! store to close the review digest once its window (`[review]
//! digest_every`) has passed, which queues the notice through the outbox
//! (`crate::store::review_digest`). Nothing is held in memory: a crash
//! leaves the open digest in the store for the next start.

use std::sync::Arc;
use std::time::Duration;

use crate::store::Store;

/// How often the digest is checked: a quarter of the window, between
/// 200 ms and 5 s.
fn tick(every: Duration) -> Duration {
    (every / 4).clamp(Duration::from_millis(200), Duration::from_secs(5))
}

/// Runs until `stop` changes. `every` is the live `[review] digest_every`:
/// a reload's new value counts from the next tick.
pub async fn run(
    store: Arc<Store>,
    every: tokio::sync::watch::Receiver<Duration>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let every = *every.borrow();
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(tick(every)) => {}
        }
        if store.broken().is_some() {
            continue;
        }
        let s = store.clone();
        let closed = tokio::task::spawn_blocking(move || {
            s.close_review_digest(jiff::Timestamp::now(), every)
        })
        .await;
        match closed {
            Ok(Ok(Some((ticket, notices)))) => {
                if let Err(e) = store.durable(ticket).await {
                    tracing::error!(error = %e, "review notice not on disk; retried at the next tick");
                    continue;
                }
                for n in notices {
                    tracing::info!(alert = %n.id, children = n.children, "review notice queued");
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot queue the review notice"),
            Err(e) => tracing::error!(error = %e, "review notice task failed"),
        }
    }
}
