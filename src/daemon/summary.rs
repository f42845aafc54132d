//! The morning summary task (issue 18, item 4): every 30 seconds it asks
//! `crate::deliver::summary::queue_if_due` whether today's summary is due
//! (`[delivery] summary_at` on a school day) and queues it through the
//! outbox once. Nothing is held in memory: the outbox record is the proof
//! that the day's summary was queued.

use std::sync::Arc;
use std::time::Duration;

use crate::calendar::SchoolCalendar;
use crate::store::Store;

const TICK: Duration = Duration::from_secs(30);

/// Runs until `stop` changes.
pub async fn run(
    store: Arc<Store>,
    cal: SchoolCalendar,
    at: jiff::civil::Time,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if store.broken().is_none() {
            let s = store.clone();
            let c = cal.clone();
            let queued = tokio::task::spawn_blocking(move || {
                crate::deliver::summary::queue_if_due(&s, &c, at, jiff::Timestamp::now())
            })
            .await;
            match queued {
                Ok(Ok(Some((id, ticket)))) => match store.durable(ticket).await {
                    Ok(()) => tracing::info!(alert = %id, "morning summary queued"),
                    Err(e) => {
                        tracing::error!(error = %e, "morning summary not on disk; retried at the next tick")
                    }
                },
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "cannot queue the morning summary"),
                Err(e) => tracing::error!(error = %e, "morning summary task failed"),
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}
