//! Refused admin requests, audited without flooding the audit: the first
//! refusal of a caller is audited at once; further refusals of the same
//! caller within a minute are counted and audited as one event when the
//! minute ends (or the daemon stops). A caller retrying in a loop adds two
//! events a minute, not one per try.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long refusals of one caller are gathered into one event.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// Refusals of one caller since the first of the current window.
#[derive(Debug)]
struct Window {
    opened: Instant,
    since: jiff::Timestamp,
    /// Refusals after the first (which was audited at once).
    more: u64,
    verbs: BTreeSet<String>,
}

/// An event to audit: `actor` was refused `count` times since `since`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    pub actor: String,
    pub count: u64,
    pub verbs: Vec<String>,
    pub since: jiff::Timestamp,
}

#[derive(Debug, Default)]
pub(crate) struct Refusals {
    open: Mutex<HashMap<String, Window>>,
}

impl Refusals {
    /// Notes a refusal; true when it opens a window (audit it at once).
    pub(crate) fn note(&self, actor: &str, verb: &str, now: Instant) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        match open.get_mut(actor) {
            Some(w) if now.duration_since(w.opened) < WINDOW => {
                w.more += 1;
                w.verbs.insert(verb.to_owned());
                false
            }
            _ => {
                open.insert(
                    actor.to_owned(),
                    Window {
                        opened: now,
                        since: jiff::Timestamp::now(),
                        more: 0,
                        verbs: BTreeSet::new(),
                    },
                );
                true
            }
        }
    }

    /// Closes the windows a minute old (every window if `all`): the repeated
    /// refusals to audit.
    pub(crate) fn close(&self, now: Instant, all: bool) -> Vec<Summary> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let due: Vec<String> = open
            .iter()
            .filter(|(_, w)| all || now.duration_since(w.opened) >= WINDOW)
            .map(|(a, _)| a.clone())
            .collect();
        due.into_iter()
            .filter_map(|actor| {
                let w = open.remove(&actor)?;
                (w.more > 0).then(|| Summary {
                    actor,
                    count: w.more,
                    verbs: w.verbs.into_iter().collect(),
                    since: w.since,
                })
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "refusals_tests.rs"]
mod tests;
