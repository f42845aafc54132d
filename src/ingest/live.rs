//! The police listener's live settings: the config and the TLS material
//! that each new connection (and, for the force, each request) reads, as
//! one snapshot that a reload replaces whole. Open connections keep the TLS
//! session they made with the old material.

use std::sync::{Arc, RwLock};

use crate::config::Config;

/// What one reload produced: a checked config and the rustls config built
/// from the files it names.
#[derive(Debug)]
pub struct Snapshot {
    pub cfg: Arc<Config>,
    pub tls: Arc<rustls::ServerConfig>,
}

/// The current [`Snapshot`]; readers take an `Arc` and never wait for a
/// reload's file reading (that happens before [`Live::store`]).
#[derive(Debug)]
pub struct Live(RwLock<Arc<Snapshot>>);

impl Live {
    pub fn new(cfg: Arc<Config>, tls: Arc<rustls::ServerConfig>) -> Self {
        Self(RwLock::new(Arc::new(Snapshot { cfg, tls })))
    }

    /// The snapshot in force now.
    pub fn load(&self) -> Arc<Snapshot> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `next` in force for every new connection and request.
    pub fn store(&self, next: Snapshot) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
    }
}
