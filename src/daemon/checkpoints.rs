//! Signed audit checkpoints while the daemon runs: the checkpointer (every
//! `[audit] checkpoint_every` events or `checkpoint_interval`), the
//! shipper that keeps `[audit] checkpoint_file` holding every one, and, on
//! the same tick, the archiving of older audit events into files
//! (`store::audit_archive`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::metrics::Metrics;
use crate::store::Store;

/// Signs a checkpoint of the chain's head (if it moved) and makes it
/// durable.
pub(super) async fn checkpoint_once(
    store: &Store,
    signer: &crate::audit::checkpoint::Signer,
) -> anyhow::Result<()> {
    if let Some((cp, ticket)) = store.checkpoint(signer, jiff::Timestamp::now())? {
        store.durable(ticket).await?;
        tracing::info!(seq = cp.seq, key = %cp.key_id, "audit checkpoint signed");
    }
    Ok(())
}

/// When the signing key is not the one that signed the store's last
/// checkpoint (an audit key rotation), records `key_rotated` (key
/// `audit_signing`, old and new key ids) and signs a checkpoint at once:
/// the first under the new key, linked to the old key's last one.
pub(super) async fn note_signing_key(
    store: &Store,
    signer: &crate::audit::checkpoint::Signer,
) -> anyhow::Result<()> {
    let Some(last) = store.last_checkpoint()? else {
        return Ok(());
    };
    if last.key_id == signer.key_id() {
        return Ok(());
    }
    let mut detail = serde_json::Map::new();
    detail.insert("key".into(), "audit_signing".into());
    detail.insert("old_key".into(), last.key_id.clone().into());
    detail.insert("new_key".into(), signer.key_id().into());
    detail.insert("old_key_last_checkpoint".into(), last.seq.into());
    let ticket = store.audit_append(
        crate::audit::EventKind::KeyRotated,
        crate::audit::Actor::SYSTEM.as_str(),
        crate::audit::Refs::default(),
        detail,
    )?;
    store.durable(ticket).await?;
    tracing::warn!(
        old_key = %last.key_id,
        new_key = %signer.key_id(),
        old_key_last_checkpoint = last.seq,
        "the audit signing key changed: recorded key_rotated; the next checkpoint links to the old key's last one (keep the old public key in [audit] trusted_keys)"
    );
    checkpoint_once(store, signer).await
}

/// Keeps `[audit] checkpoint_file` holding every stored checkpoint: one
/// that could not be appended (a full disk, no descriptors left) is
/// appended on a later try, in order, never skipped; meanwhile the gauge
/// `kim_audit_checkpoints_unshipped` says how many the file lacks and an
/// error is logged every 10 s.
pub(super) struct Shipper {
    pub(super) path: std::path::PathBuf,
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
    pub(super) fn new(path: std::path::PathBuf, metrics: Arc<Metrics>) -> Self {
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
    pub(super) fn failing(&self) -> bool {
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

    pub(super) fn ship(&mut self, store: &Store) {
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
                        error = %crate::admin::outcome::describe(&e),
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
pub(super) async fn run(
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
        archive(&store).await;
    }
}

/// One bounded pass of [`Store::audit_compact`], off the async threads.
async fn archive(store: &Arc<Store>) {
    use crate::store::audit_archive::{CHUNKS_PER_PASS, KEEP_LOOSE};
    if store.broken().is_some() {
        return;
    }
    let s = store.clone();
    match tokio::task::spawn_blocking(move || s.audit_compact(KEEP_LOOSE, CHUNKS_PER_PASS)).await {
        Ok(Ok(0)) | Err(_) => {}
        Ok(Ok(chunks)) => tracing::debug!(chunks, "older audit events archived"),
        Ok(Err(e)) => {
            crate::lograte::error!("audit.archive", error = %e, "archiving older audit events failed; retrying (they stay in sled meanwhile)")
        }
    }
}
