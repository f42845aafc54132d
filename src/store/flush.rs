//! Durability: flush tickets, the group-commit flusher (one fsync releases
//! every write before it, failures retried with a backoff), and the health
//! that follows from it (writable, broken, ready).

use super::*;

impl Store {
    /// Marks a committed write as waiting for the next flush.
    pub(crate) fn ticket(&self) -> FlushTicket {
        let t = self.written.fetch_add(1, Ordering::SeqCst) + 1;
        self.flush_wanted.notify_one();
        FlushTicket(t)
    }

    /// Runs the group-commit flusher until the store is dropped elsewhere.
    /// Every waiter whose write committed before a flush began is released
    /// by that one fsync. A failed flush is retried after a backoff
    /// ([`FLUSH_RETRY_FIRST`] doubling up to [`FLUSH_RETRY_MAX`]), never in
    /// a tight loop, and logged at most once per `lograte::WINDOW`.
    pub fn spawn_flusher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let wanted = self.flush_wanted.clone();
        tokio::spawn(async move {
            let mut backoff = FLUSH_RETRY_FIRST;
            loop {
                let Some(store) = weak.upgrade() else { return };
                let target = store.written.load(Ordering::SeqCst);
                if target <= store.flushed.borrow().done {
                    drop(store);
                    wanted.notified().await;
                    continue;
                }
                let s2 = store.clone();
                let busy = crate::heartbeat::busy(crate::heartbeat::Stage::Flusher);
                let res = tokio::task::spawn_blocking(move || s2.flush_now()).await;
                drop(busy);
                let failed = !matches!(res, Ok(Ok(())));
                store.flushed.send_modify(|s| match res {
                    Ok(Ok(_)) => s.done = s.done.max(target),
                    Ok(Err(ref e)) => {
                        crate::lograte::error!("store.flush", error = %e, retry_in = ?backoff, "store flush failed; answering 503");
                        s.failed_upto = s.failed_upto.max(target);
                    }
                    Err(_) => s.failed_upto = s.failed_upto.max(target),
                });
                drop(store);
                if failed {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(FLUSH_RETRY_MAX);
                } else {
                    backoff = FLUSH_RETRY_FIRST;
                }
            }
        })
    }

    /// Makes `durable` flush on the caller's thread instead of waiting for
    /// the group-commit flusher (single-threaded tools and paused-time tests,
    /// where a blocking thread would let tokio's clock run ahead).
    pub fn set_inline_flush(&self, inline: bool) {
        self.inline_flush
            .store(inline, std::sync::atomic::Ordering::SeqCst);
    }

    /// Waits until the write behind `ticket` is on disk. Fails at once
    /// once the store cannot write (see `health`).
    pub async fn durable(&self, ticket: FlushTicket) -> Result<(), StoreError> {
        if self.health.broken().is_some() {
            return Err(StoreError::NotDurable);
        }
        if self.inline_flush.load(Ordering::SeqCst) {
            self.flush_now()?;
            self.flushed.send_modify(|s| s.done = s.done.max(ticket.0));
            return Ok(());
        }
        let mut rx = self.flushed.subscribe();
        loop {
            {
                let s = *rx.borrow_and_update();
                if s.failed_upto >= ticket.0 && s.done < ticket.0 {
                    return Err(StoreError::NotDurable);
                }
                if s.done >= ticket.0 {
                    return Ok(());
                }
            }
            self.flush_wanted.notify_one();
            if rx.changed().await.is_err() {
                return Err(StoreError::NotDurable);
            }
        }
    }

    /// Makes everything written so far durable: sled's flush, then
    /// fdatasync of its data file.
    /// A failure marks the store broken (see `health`).
    pub fn flush_now(&self) -> Result<(), StoreError> {
        let flushed =
            self.db
                .flush()
                .map_err(StoreError::from)
                .and_then(|_| match &self.data_file {
                    Some(f) => f
                        .sync_data()
                        .map_err(|e| StoreError::Sled(sled::Error::Io(e))),
                    None => Ok(()),
                });
        if let Err(e) = &flushed {
            self.health.failed(e);
        }
        flushed
    }

    /// Whether sled can still write, asked cheaply: a flush of whatever is
    /// pending in sled's buffers (usually nothing), without the
    /// `fdatasync`. Once a write failed, sled fails every flush, so this
    /// notices a failure that only a background stage saw.
    pub fn probe_writable(&self) -> Result<(), Broken> {
        if let Err(e) = self.db.flush() {
            self.health.failed(&StoreError::Sled(e));
        }
        match self.health.broken() {
            Some(b) => Err(b),
            None => Ok(()),
        }
    }

    /// Records a failed write: the store is broken from now on if it was
    /// the disk or sled (see `health`).
    pub(crate) fn write_failed(&self, e: &StoreError) {
        self.health.failed(e);
    }

    /// `Some` once the store cannot write (see `health`).
    pub fn broken(&self) -> Option<Broken> {
        self.health.broken()
    }

    /// Why the store cannot answer reads and writes now, if it cannot (for
    /// `/readyz`): each condition is read once, so the reason given is the
    /// one that made the answer.
    pub fn unready(&self) -> Option<Unready> {
        if let Some(b) = self.health.broken() {
            return Some(Unready::Broken(b));
        }
        if self.flush_failing() {
            return Some(Unready::FlushFailing);
        }
        match self.t.meta.get(KEY_CHECK) {
            Ok(Some(_)) => None,
            _ => Some(Unready::KeyCheck),
        }
    }

    /// A flush failed and none has succeeded since: the store cannot write
    /// now, though it is not (yet) declared broken.
    pub fn flush_failing(&self) -> bool {
        let f = self.flushed.borrow();
        f.failed_upto > f.done
    }

    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }
}
