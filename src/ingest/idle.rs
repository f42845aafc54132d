//! `[limits] idle_timeout`: an authenticated keep-alive connection with no
//! request in flight and no bytes either way for that long is closed, so an
//! idle police client does not hold a connection slot for ever. The stream
//! wrapper notes every read and write; the request counter keeps a slow
//! answer from counting as idle.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// When a connection was last busy.
#[derive(Debug)]
pub(crate) struct Activity {
    origin: Instant,
    /// Milliseconds after `origin` of the last byte read or written.
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// Requests begun on this connection, and a wake-up for the first.
    started: AtomicUsize,
    first: tokio::sync::Notify,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            started: AtomicUsize::new(0),
            first: tokio::sync::Notify::new(),
        })
    }

    fn touch(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Marks a request in flight until the guard drops.
    pub(crate) fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        if self.started.fetch_add(1, Ordering::AcqRel) == 0 {
            self.first.notify_waiters();
        }
        InFlight(self.clone())
    }

    /// Resolves once a request has begun on this connection (at once if
    /// one already has).
    pub(crate) async fn first_request(&self) {
        loop {
            // Registered before the check: `notify_waiters` reaches it.
            let woken = self.first.notified();
            if self.started.load(Ordering::Acquire) > 0 {
                return;
            }
            woken.await;
        }
    }

    /// When the connection becomes idle for `limit`, if nothing happens
    /// before: `None` while a request is in flight.
    fn idle_deadline(&self, limit: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let last = self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(last + limit)
    }

    /// Resolves once the connection has been idle for `limit`.
    pub(crate) async fn idle_for(&self, limit: Duration) {
        loop {
            match self.idle_deadline(limit) {
                Some(at) if at <= Instant::now() => return,
                Some(at) => tokio::time::sleep_until(at).await,
                // A request is being answered: look again a little later.
                None => tokio::time::sleep(limit.min(Duration::from_secs(1))).await,
            }
        }
    }
}

/// A request in flight (see [`Activity::request`]).
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream that notes its activity.
pub(crate) struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Self {
        activity.touch();
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "idle_tests.rs"]
mod tests;
