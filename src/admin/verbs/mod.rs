//! The admin verbs, one file each (DESIGN §4c): each owns its verb's
//! handlers, which run on a [`Ctx`] the same way whether the CLI opened the
//! store itself (daemon stopped) or the daemon runs them for a CLI that
//! asked over the admin socket (daemon running). `crate::admin::dispatch`
//! maps a `Request` to them.

pub mod alerts;
pub mod audit;
pub mod backup;
pub mod report;
pub mod retention;
pub mod review;
pub mod review_show;
pub mod roll;
pub mod roll_find;
pub mod schools;
pub mod status;

use std::path::Path;

use crate::admin::outcome::Failure;
use crate::audit::{EventKind, Refs};
use crate::import::ImportError;

/// A CSV file the import refused, named with the import's own wording.
pub(super) fn rejected(e: ImportError, file: &Path) -> Failure {
    Failure::failed(anyhow::anyhow!("{}: {e}", file.display()))
}

/// A pupil's names as the roll verbs print them: "Given Family (Known, As)".
pub(super) fn pupil_names(given: &str, family: &str, others: &[String]) -> String {
    if others.is_empty() {
        format!("{given} {family}")
    } else {
        format!("{given} {family} ({})", others.join(", "))
    }
}

/// An import recorded in the audit (how many records, no contents), flushed.
pub(super) fn audit_import(
    store: &crate::store::Store,
    actor: &str,
    action: &str,
    count: u64,
) -> Result<(), Failure> {
    let mut detail = serde_json::Map::new();
    detail.insert("action".into(), action.into());
    detail.insert("records".into(), count.into());
    let _ = store
        .audit_append(EventKind::AdminAccess, actor, Refs::default(), detail)
        .map_err(Failure::failed)?;
    store.flush_now().map_err(Failure::failed)
}
