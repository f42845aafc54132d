//! A report's pass over the stored audit, on every core: one thread reads
//! the events in batches, two check each event's own hash and read it
//! ([`crate::audit::raw::self_hashed`], [`prepare`]: the work that needs
//! no other event), whichever is free taking the next batch, and the
//! caller's thread takes the batches back in order, checks each link
//! against the one before it ([`link_after`]) and counts the event
//! ([`Scan::push`]). So the chain is still checked in order, event by
//! event, and the tally still sees the events in chain order. At most
//! [`IN_FLIGHT`] batches are read ahead of the count.

use std::collections::BTreeMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use super::scan::{prepare, Prepared, Scan, Unreadable};
use crate::audit::raw::{link_after, self_hashed, Link};
use crate::audit::ChainError;

/// Events per batch.
const BATCH: usize = 1024;
/// Batches read and not yet counted, at most.
const IN_FLIGHT: usize = 16;
/// Threads checking hashes and reading events.
const WORKERS: usize = 2;

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum PassError<E> {
    #[error("{0}")]
    Store(E),
    #[error("{0}")]
    Chain(#[from] ChainError),
    #[error("{0}")]
    Unreadable(#[from] Unreadable),
}

/// The last link checked (`start` if none was read) and the first event's
/// number.
pub type Checked = (Link, u64);

type Batch<T> = Vec<(u64, T)>;
/// A batch and, for each of its events, [`self_hashed`] and [`prepare`]'s
/// answers.
type Done<T> = (Batch<T>, Vec<(Option<u64>, Prepared)>);
/// A batch and its place in the order read.
type Numbered<B, E> = (usize, Result<B, E>);

/// Reads `events` up to event `last`, checks each as the next link of the
/// chain after `start`, and counts it into `scan`; stops at the first
/// fault. A missing event shows as a link that does not follow.
pub fn run<T, E, I>(
    events: I,
    start: Link,
    last: u64,
    scan: &mut Scan<T>,
) -> Result<Checked, PassError<E>>
where
    T: AsRef<[u8]> + Send,
    E: Send,
    I: Iterator<Item = Result<(u64, T), E>> + Send,
{
    let (work_tx, work_rx) = sync_channel::<Numbered<Batch<T>, E>>(IN_FLIGHT);
    let (done_tx, done_rx) = sync_channel::<Numbered<Done<T>, E>>(IN_FLIGHT);
    // A token per batch that may be read ahead; the count gives it back.
    let (token_tx, token_rx) = sync_channel::<()>(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        let _ = token_tx.send(());
    }
    let work_rx = Mutex::new(work_rx);
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            let done_tx = done_tx.clone();
            let work_rx = &work_rx;
            s.spawn(move || work(work_rx, &done_tx));
        }
        drop(done_tx);
        s.spawn(move || read(events, last, &work_tx, &token_rx));
        count(&done_rx, &token_tx, start, scan)
        // Returning drops the receiver and the tokens: the reader stops,
        // then the workers.
    })
}

/// Hands `events` out in numbered batches, each once a token allows, up
/// to `last` or a fault (handed on in its turn).
fn read<T, E>(
    events: impl Iterator<Item = Result<(u64, T), E>>,
    last: u64,
    to: &SyncSender<Numbered<Batch<T>, E>>,
    tokens: &Receiver<()>,
) {
    let mut n = 0;
    let mut send = |msg: Result<Batch<T>, E>| {
        let ok = tokens.recv().is_ok() && to.send((n, msg)).is_ok();
        n += 1;
        ok
    };
    let mut batch = Vec::with_capacity(BATCH);
    for item in events {
        match item {
            Ok((seq, _)) if seq > last => break,
            Ok(e) => batch.push(e),
            Err(e) => {
                if !batch.is_empty() && !send(Ok(std::mem::take(&mut batch))) {
                    return;
                }
                send(Err(e));
                return;
            }
        }
        if batch.len() >= BATCH
            && !send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))))
        {
            return;
        }
    }
    if !batch.is_empty() {
        send(Ok(batch));
    }
}

/// Checks each event's own hash and reads it, batch by batch.
fn work<T: AsRef<[u8]>, E>(
    from: &Mutex<Receiver<Numbered<Batch<T>, E>>>,
    to: &SyncSender<Numbered<Done<T>, E>>,
) {
    loop {
        let next = match from.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((n, batch)) = next else { return };
        let done = batch.map(|b| {
            let read = b
                .iter()
                .map(|(_, ev)| {
                    let bytes = ev.as_ref();
                    (self_hashed(bytes), prepare(bytes))
                })
                .collect();
            (b, read)
        });
        if to.send((n, done)).is_err() {
            return;
        }
    }
}

/// Takes the workers' batches back in order: each event's link, then its
/// count.
fn count<T: AsRef<[u8]>, E>(
    from: &Receiver<Numbered<Done<T>, E>>,
    tokens: &SyncSender<()>,
    start: Link,
    scan: &mut Scan<T>,
) -> Result<Checked, PassError<E>> {
    let mut head: Option<Link> = None;
    let mut early = BTreeMap::new();
    let mut next = 0;
    loop {
        let Some(batch) = early.remove(&next) else {
            match from.recv() {
                Ok((n, b)) => {
                    early.insert(n, b);
                    continue;
                }
                // Every batch read was counted (a worker that stopped
                // short leaves a gap the head check names).
                Err(_) => break,
            }
        };
        next += 1;
        let (events, read) = batch.map_err(PassError::Store)?;
        for ((seq, ev), (hashed, prepared)) in events.into_iter().zip(&read) {
            let prev = head.unwrap_or(start);
            head = Some(link_after(&prev, ev.as_ref(), *hashed)?);
            scan.push(seq, ev, prepared)?;
        }
        let _ = tokens.try_send(());
    }
    Ok((head.unwrap_or(start), start.seq + 1))
}

#[cfg(test)]
#[path = "pass_tests.rs"]
mod tests;
