//! The delivery settings that a reload replaces: the transport (`[mail]`)
//! and the policy (`[mail]` addresses, `[alert]`, `[review] notify`).

use std::sync::{Arc, RwLock};

use super::transport::Transport;
use super::Policy;

/// The delivery worker's transport and policy (`[mail]`, `[alert]`,
/// `[review] notify`), replaced whole by a reload (`daemon::reload`); each
/// message reads them when it is built and sent, so the next message uses
/// new ones while a send in flight finishes on the old.
pub struct LiveSettings(RwLock<(Arc<dyn Transport>, Arc<Policy>)>);

impl LiveSettings {
    pub fn new(transport: Arc<dyn Transport>, policy: Policy) -> Self {
        Self(RwLock::new((transport, Arc::new(policy))))
    }

    /// The transport and policy in force now.
    pub fn load(&self) -> (Arc<dyn Transport>, Arc<Policy>) {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts a new policy in force, and a new transport when given.
    pub fn store(&self, transport: Option<Arc<dyn Transport>>, policy: Policy) {
        let mut w = self.0.write().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = transport {
            w.0 = t;
        }
        w.1 = Arc::new(policy);
    }
}
