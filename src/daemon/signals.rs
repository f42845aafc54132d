//! The daemon's signals: the first SIGTERM or SIGINT starts the shutdown;
//! SIGHUP reloads the config (`reload`) and never stops kim.

use std::sync::Arc;

use tokio::signal::unix::{signal, Signal, SignalKind};

use super::reload::{Reloader, Trigger};

/// SIGHUP, caught: from [`hangups`] on, SIGHUP no longer ends the process
/// (its default action); each one is queued here until the reload task
/// takes it.
pub struct Hangups(Signal);

/// Catches SIGHUP for the rest of the process's life. Call it first thing
/// in the runtime, before the config is read, so no SIGHUP kills kim.
pub fn hangups() -> std::io::Result<Hangups> {
    signal(SignalKind::hangup()).map(Hangups)
}

/// Resolves on the first SIGTERM or SIGINT.
pub(super) async fn termination() {
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}

/// One reload per SIGHUP (several arriving during a reload make one more),
/// with systemd told RELOADING=1 before and READY=1 after.
pub(super) async fn reload_on_hangup(mut hangups: Hangups, reloader: Arc<Reloader>) {
    while hangups.0.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the config");
        let mut states = vec![sd_notify::NotifyState::Reloading];
        if let Ok(now) = sd_notify::NotifyState::monotonic_usec_now() {
            states.push(now);
        }
        let _ = sd_notify::notify(false, &states);
        // The outcome is logged, audited and counted by the reloader.
        let _ = reloader.reload(Trigger::Signal).await;
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    }
}
