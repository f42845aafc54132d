//! The accept path's group commit. A journal thread takes every prepared
//! notification waiting, answers re-sends and conflicts, appends the new
//! ones to the accept journal (`super::journal`) in one write and one
//! `fdatasync`, and only then answers those callers. An applier thread
//! moves journaled notifications into the sled trees, one transaction per
//! batch (record, sealed payload, reference, matching work item, `received`
//! audit event), flushes sled, and deletes journal segments that sled now
//! holds. The two never wait on each other: sled's flush lock is no longer
//! on the way to a 202.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::journal::{self, Journal};
use super::notifications::Prepared;
use super::{AcceptOutcome, Store, StoreError};

/// Most notifications journaled in one write + sync.
const MAX_BATCH: usize = 512;
/// Most notifications applied to sled in one transaction (a transaction
/// holds sled's lock exclusively; readers wait that long).
const MAX_APPLY: usize = 256;
/// sled is flushed (and journal segments deleted) after this many applied
/// notifications, or when the applier has been idle this long.
const FLUSH_EVERY: usize = 4096;
const FLUSH_IDLE: Duration = Duration::from_millis(100);
/// The applier runs at a lower CPU priority than the accept path (a burst
/// of police notifications is answered first and applied a moment later);
/// past this many unapplied notifications the journal thread waits for it,
/// so the backlog (and the memory of `pending`) stays bounded.
const MAX_UNAPPLIED: u64 = 20_000;
const APPLIER_NICE: i32 = 10;
/// A request waits at most this long for the applier before a 503.
const APPLIER_STALLED: Duration = Duration::from_secs(5);

/// Counters of the group commit, for metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Journal writes (batches) and the notifications in them.
    pub batches: AtomicU64,
    pub batched: AtomicU64,
    /// Time spent applying to sled (transactions), in µs.
    pub commit_us: AtomicU64,
    /// Journal write + `fdatasync` calls and their time in µs.
    pub syncs: AtomicU64,
    pub sync_us: AtomicU64,
    /// Notifications journaled and not yet applied to sled.
    pub unapplied: AtomicU64,
    /// Transactions that applied journaled notifications.
    pub applies: AtomicU64,
    /// The most notifications ever waiting to be applied at once, and how
    /// often the journal thread waited for the applier.
    pub max_unapplied: AtomicU64,
    pub throttled: AtomicU64,
    /// When (ms since the Unix epoch) a journal write last failed and last
    /// succeeded: see [`WriterStats::journal_failing`].
    journal_failed_ms: AtomicU64,
    journal_ok_ms: AtomicU64,
}

/// How long after a failed journal write `/readyz` says so, unless a write
/// succeeds first (with no traffic, nothing would ever write to clear it).
const JOURNAL_FAILURE_SHOWN: u64 = 10_000;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl WriterStats {
    /// Whether the accept journal's last write failed (a full disk: every
    /// POST answers 503), within the last 10 s.
    pub fn journal_failing(&self) -> bool {
        let failed = self.journal_failed_ms.load(Ordering::Relaxed);
        failed > self.journal_ok_ms.load(Ordering::Relaxed)
            && now_ms().saturating_sub(failed) < JOURNAL_FAILURE_SHOWN
    }
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

/// Journaled notifications on their way to sled, with the segment they
/// are in.
struct Journaled {
    segment: u64,
    batch: Vec<Prepared>,
}

/// The handle the HTTP handlers use. Cloning is cheap.
#[derive(Clone)]
pub struct Ingest {
    inner: Arc<Inner>,
}

struct Inner {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    /// Fires when the applier has applied everything and deleted the
    /// journal, or (the store broken) gave up: with how many accepted
    /// notifications only the journal holds.
    done: Mutex<Option<oneshot::Receiver<u64>>>,
    /// Set at shutdown: an applier that cannot write stops retrying.
    stopping: Arc<AtomicBool>,
}

impl Ingest {
    /// Starts a new journal segment and the two threads.
    ///
    /// # Errors
    /// The journal's folder or file cannot be created.
    pub fn spawn(store: Arc<Store>) -> Result<Self, StoreError> {
        let journal = Journal::create(&store.dir, store.keys.seal_key())?;
        store.load_known_refs()?;
        // Receipts start with their second and `admit` knows the receipts
        // of this run only: if an earlier run made one in this very second
        // (a quick restart), begin in the next.
        if let Some(newest) = store.newest_receipt_second()? {
            let now = jiff::Timestamp::now().as_second();
            // (A receipt of an older build is random: far from now.)
            if (now - 5..=now).contains(&newest) {
                while jiff::Timestamp::now().as_second() <= newest {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let (apply_tx, apply_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let s = store.clone();
        std::thread::Builder::new()
            .name("kim-journal".into())
            .spawn(move || journal_thread(s, journal, rx, apply_tx))
            .expect("spawn the journal thread");
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        std::thread::Builder::new()
            .name("kim-apply".into())
            .spawn(move || {
                lower_priority(APPLIER_NICE);
                let left = applier(&store, apply_rx, &stop);
                let _ = done_tx.send(left);
            })
            .expect("spawn the applier thread");
        Ok(Self {
            inner: Arc::new(Inner {
                tx: Mutex::new(Some(tx)),
                done: Mutex::new(Some(done_rx)),
                stopping,
            }),
        })
    }

    /// Journals `prepared` and waits until it is on disk (or was already).
    pub async fn accept(&self, prepared: Prepared) -> Result<AcceptOutcome, Unavailable> {
        let tx = self
            .inner
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(Unavailable)?;
        let (reply, rx) = oneshot::channel();
        tx.send(Job { prepared, reply })
            .await
            .map_err(|_| Unavailable)?;
        rx.await.map_err(|_| Unavailable)?
    }

    /// Stops taking notifications and waits until every journaled one is
    /// in sled, sled is flushed and the journal is deleted (at shutdown).
    /// With a store that cannot write, it does not wait for that: it
    /// returns how many accepted notifications only the journal holds (the
    /// replay at the next start applies them); 0 after a clean stop.
    pub async fn shutdown(&self) -> u64 {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.inner
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let done = self
            .inner
            .done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match done {
            Some(done) => done.await.unwrap_or(u64::MAX),
            None => 0,
        }
    }
}

/// Waits (up to `limit`) until `receipt` is in the trees, not only in the
/// journal: a change to a notification needs its record there.
pub async fn settled(store: &Store, receipt: &str, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while store.is_pending(receipt) {
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

type Reply = oneshot::Sender<Result<AcceptOutcome, Unavailable>>;

fn journal_thread(
    store: Arc<Store>,
    mut journal: Journal,
    mut rx: mpsc::Receiver<Job>,
    apply: std::sync::mpsc::Sender<Journaled>,
) {
    let mut stalled_since: Option<Instant> = None;
    while let Some(first) = rx.blocking_recv() {
        let _busy = crate::heartbeat::busy(crate::heartbeat::Stage::Journal);
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let (prepared, replies): (Vec<_>, Vec<Reply>) =
            jobs.into_iter().map(|j| (j.prepared, j.reply)).unzip();
        // A store that cannot write never applies what the journal would
        // take: no 202 for it (the journal may well work again once space
        // returns, sled does not; see `super::health`).
        if let Some(b) = store.broken() {
            crate::lograte::error!(
                "accept.broken",
                batch = replies.len(),
                unapplied = store.stats.unapplied.load(Ordering::Relaxed),
                "{}: answering 503",
                b.reason()
            );
            fail(replies);
            continue;
        }
        // A backup holds the gate while it waits for the applier to catch
        // up (see `backup`): this batch waits, it is not refused.
        let _gate = store.accept_gate.lock().unwrap_or_else(|p| p.into_inner());
        if !wait_for_applier(&store, &mut stalled_since) {
            crate::lograte::error!(
                "accept.stalled",
                unapplied = store.stats.unapplied.load(Ordering::Relaxed),
                "the store is not taking journaled notifications; answering 503"
            );
            fail(replies);
            continue;
        }
        let (outcomes, fresh) = match store.admit(prepared) {
            Ok(admitted) => admitted,
            Err(e) => {
                crate::lograte::error!("accept.admit", error = %e, batch = replies.len(), "re-send check failed; answering 503");
                fail(replies);
                continue;
            }
        };
        if !fresh.is_empty() {
            let entries: Vec<_> = fresh.iter().map(Prepared::journal_entry).collect();
            let started = Instant::now();
            let written = journal.append(store.keys.seal_key(), &entries);
            store.stats.syncs.fetch_add(1, Ordering::Relaxed);
            store
                .stats
                .sync_us
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            if let Err(e) = written {
                store
                    .stats
                    .journal_failed_ms
                    .store(now_ms(), Ordering::Relaxed);
                crate::lograte::error!("accept.journal", error = %e, batch = replies.len(), "accept journal write failed; answering 503");
                fail(replies);
                continue;
            }
            store.stats.journal_ok_ms.store(now_ms(), Ordering::Relaxed);
            store.mark_pending(&fresh);
            let waiting = store
                .stats
                .unapplied
                .fetch_add(fresh.len() as u64, Ordering::Relaxed)
                + fresh.len() as u64;
            store
                .stats
                .max_unapplied
                .fetch_max(waiting, Ordering::Relaxed);
        }
        store.stats.batches.fetch_add(1, Ordering::Relaxed);
        store
            .stats
            .batched
            .fetch_add(replies.len() as u64, Ordering::Relaxed);
        for (reply, out) in replies.into_iter().zip(outcomes) {
            let _ = reply.send(out.ok_or(Unavailable));
        }
        if !fresh.is_empty() {
            let segment = journal.segment();
            if apply
                .send(Journaled {
                    segment,
                    batch: fresh,
                })
                .is_err()
            {
                return;
            }
            if let Err(e) = journal.rotate_if_full(store.keys.seal_key()) {
                crate::lograte::error!("accept.rotate", error = %e, "cannot start a new accept journal segment");
            }
        }
    }
}

/// Waits while the applier is more than [`MAX_UNAPPLIED`] behind; false
/// once it has been behind for [`APPLIER_STALLED`] (sled failing, e.g. a
/// full disk): from then on batches are refused at once, until it catches
/// up.
fn wait_for_applier(store: &Store, stalled_since: &mut Option<Instant>) -> bool {
    let behind = || store.stats.unapplied.load(Ordering::Relaxed) > MAX_UNAPPLIED;
    if !behind() {
        *stalled_since = None;
        return true;
    }
    store.stats.throttled.fetch_add(1, Ordering::Relaxed);
    let since = *stalled_since.get_or_insert_with(Instant::now);
    while behind() {
        if since.elapsed() >= APPLIER_STALLED {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    *stalled_since = None;
    true
}

fn fail(replies: Vec<Reply>) {
    for reply in replies {
        let _ = reply.send(Err(Unavailable));
    }
}

/// Applies journaled batches to sled in order. A failed transaction is
/// retried (the journal keeps the notifications safe meanwhile). sled is
/// flushed every [`FLUSH_EVERY`] notifications and when idle; then the
/// segments before the one last applied are deleted (entries arrive in
/// order, so those are wholly in sled). When the journal thread is gone,
/// everything is applied, flushed and the journal deleted, and it returns
/// 0; or, if the store cannot write, it gives up, leaves the journal as it
/// is for the replay at the next start and returns how many accepted
/// notifications only the journal holds.
fn applier(store: &Store, rx: std::sync::mpsc::Receiver<Journaled>, stopping: &AtomicBool) -> u64 {
    use std::sync::mpsc::RecvTimeoutError;
    let dir = journal::journal_dir(&store.dir);
    let mut unflushed = 0usize;
    let mut last_segment = 0u64;
    let mut gave_up = false;
    let flush = |keep: u64| match store.flush_now() {
        Ok(()) => {
            if let Err(e) = journal::remove_before(&dir, keep) {
                crate::lograte::warning!("apply.remove", error = %e, "cannot delete applied accept journal segments");
            }
            true
        }
        Err(e) => {
            crate::lograte::error!("apply.flush", error = %e, "flushing applied notifications failed; the journal keeps them");
            false
        }
    };
    loop {
        match rx.recv_timeout(FLUSH_IDLE) {
            Ok(first) => {
                let _busy = crate::heartbeat::busy(crate::heartbeat::Stage::Applier);
                let mut batch = first.batch;
                last_segment = first.segment;
                while batch.len() < MAX_APPLY {
                    match rx.try_recv() {
                        Ok(more) => {
                            last_segment = more.segment;
                            batch.extend(more.batch);
                        }
                        Err(_) => break,
                    }
                }
                if !apply(store, &batch, stopping) {
                    gave_up = true;
                    break;
                }
                unflushed += batch.len();
                if unflushed >= FLUSH_EVERY && flush(last_segment) {
                    unflushed = 0;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if unflushed > 0 && flush(last_segment) {
                    unflushed = 0;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // Everything journaled is applied: once flushed, no segment is needed.
    if gave_up || !flush(u64::MAX) {
        let left = store.stats.unapplied.load(Ordering::Relaxed) + unflushed as u64;
        tracing::error!(
            left,
            "the store cannot write: {left} accepted notification(s) left in the accept journal for the replay at the next start"
        );
        return left;
    }
    let st = &store.stats;
    let per = |us: &AtomicU64, n: &AtomicU64| {
        us.load(Ordering::Relaxed) as f64 / n.load(Ordering::Relaxed).max(1) as f64 / 1000.0
    };
    tracing::info!(
        batches = st.batches.load(Ordering::Relaxed),
        notifications = st.batched.load(Ordering::Relaxed),
        journal_ms_per_write = format!("{:.2}", per(&st.sync_us, &st.syncs)),
        apply_ms_per_transaction = format!("{:.2}", per(&st.commit_us, &st.applies)),
        max_unapplied = st.max_unapplied.load(Ordering::Relaxed),
        throttled = st.throttled.load(Ordering::Relaxed),
        "accept journal closed: everything applied to the store"
    );
    0
}

/// Applies one batch, retrying until sled takes it; false if it gave up
/// (at shutdown, with a store that cannot write).
fn apply(store: &Store, batch: &[Prepared], stopping: &AtomicBool) -> bool {
    let mut delay = Duration::from_millis(100);
    loop {
        let started = Instant::now();
        let applied = store.apply_admitted(batch);
        store
            .stats
            .commit_us
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        match applied {
            Ok(_) => {
                store.stats.applies.fetch_add(1, Ordering::Relaxed);
                store.unmark_pending(batch);
                store
                    .stats
                    .unapplied
                    .fetch_sub(batch.len() as u64, Ordering::Relaxed);
                return true;
            }
            Err(e) => {
                store.write_failed(&e);
                crate::lograte::error!("apply.commit", error = %e, batch = batch.len(), retry_in = ?delay, "applying journaled notifications to the store failed; they stay in the journal");
                let until = Instant::now() + delay;
                while Instant::now() < until {
                    if stopping.load(Ordering::SeqCst) && store.broken().is_some() {
                        return false;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Lowers this thread's CPU priority (nice) by `by`; a failure is only
/// logged (the thread then runs at the daemon's priority).
pub(crate) fn lower_priority(by: i32) {
    let tid = rustix::thread::gettid();
    let now = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
    if let Err(e) = rustix::process::setpriority_process(Some(tid), (now + by).min(19)) {
        tracing::warn!(error = %e, "cannot lower a background thread's priority");
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
