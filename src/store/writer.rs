//! The accept path's group commit, pipelined: a writer thread takes every
//! prepared notification waiting and commits them in one transaction; a sync
//! thread makes everything committed so far durable with one flush +
//! fdatasync and only then answers those callers. The writer commits the
//! next batch while the sync thread syncs the last, so neither waits idle.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::notifications::Prepared;
use super::{AcceptOutcome, Store};

/// Most notifications committed in one transaction.
const MAX_BATCH: usize = 512;

/// Counters of the group commit, for metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub batches: AtomicU64,
    pub batched: AtomicU64,
    pub commit_us: AtomicU64,
    pub syncs: AtomicU64,
    pub sync_us: AtomicU64,
}

/// The store could not make the batch durable: answer 503, nothing was
/// promised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the store could not make the notification durable")]
pub struct Unavailable;

struct Job {
    prepared: Prepared,
    reply: oneshot::Sender<Result<AcceptOutcome, Unavailable>>,
}

/// The handle the HTTP handlers use. Cloning is cheap.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Job>,
}

impl Ingest {
    /// Starts the writer thread. It ends when every `Ingest` is dropped.
    pub fn spawn(store: Arc<Store>) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let s = store.clone();
        std::thread::Builder::new()
            .name("kim-writer".into())
            .spawn(move || writer(s, rx, done_tx))
            .expect("spawn the writer thread");
        std::thread::Builder::new()
            .name("kim-sync".into())
            .spawn(move || syncer(store, done_rx))
            .expect("spawn the sync thread");
        Self { tx }
    }

    /// Commits `prepared` and waits until it is on disk (or was already).
    pub async fn accept(&self, prepared: Prepared) -> Result<AcceptOutcome, Unavailable> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { prepared, reply })
            .await
            .map_err(|_| Unavailable)?;
        rx.await.map_err(|_| Unavailable)?
    }
}

type Reply = oneshot::Sender<Result<AcceptOutcome, Unavailable>>;

/// Committed (in memory) and waiting for the sync thread.
type Committed = Vec<(Reply, AcceptOutcome)>;

fn writer(
    store: Arc<Store>,
    mut rx: mpsc::Receiver<Job>,
    done: std::sync::mpsc::Sender<Committed>,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let (prepared, replies): (Vec<_>, Vec<_>) =
            jobs.into_iter().map(|j| (j.prepared, j.reply)).unzip();
        let started = std::time::Instant::now();
        let n = prepared.len();
        let committed = store.commit_batch(prepared);
        let us = started.elapsed().as_micros() as u64;
        store.stats.batches.fetch_add(1, Ordering::Relaxed);
        store.stats.batched.fetch_add(n as u64, Ordering::Relaxed);
        store.stats.commit_us.fetch_add(us, Ordering::Relaxed);
        match committed {
            Ok(outcomes) => {
                if done
                    .send(replies.into_iter().zip(outcomes).collect())
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = replies.len(), "commit failed; answering 503");
                for reply in replies {
                    let _ = reply.send(Err(Unavailable));
                }
            }
        }
    }
}

/// Syncs everything committed before the sync began, then answers it.
fn syncer(store: Arc<Store>, rx: std::sync::mpsc::Receiver<Committed>) {
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        while let Ok(more) = rx.try_recv() {
            batches.push(more);
        }
        let started = std::time::Instant::now();
        let synced = store.flush_now();
        store.stats.syncs.fetch_add(1, Ordering::Relaxed);
        store
            .stats
            .sync_us
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        if let Err(e) = &synced {
            tracing::error!(error = %e, "flush failed; answering 503");
        }
        for (reply, out) in batches.into_iter().flatten() {
            let _ = reply.send(match &synced {
                Ok(()) => Ok(out),
                Err(_) => Err(Unavailable),
            });
        }
    }
}
