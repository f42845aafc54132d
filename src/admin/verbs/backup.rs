//! `kim backup --out DIR`: the store held at a consistent point (see
//! `store::backup`) while `crate::backup` copies it into the folder the CLI
//! opened, then the `backup` audit event (identifiers only: file count,
//! bytes, audit sequence) and a one-line summary.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::admin::ctx::Ctx;
use crate::admin::outcome::{store_failure, CliResult, Failure};
use crate::audit::{EventKind, Refs};

/// How long a backup waits for the applier to apply what is journaled.
const APPLIER_WAIT: Duration = Duration::from_secs(30);

pub fn backup(ctx: &mut Ctx<'_>, out: &Path) -> CliResult {
    let dir = ctx.take_file(out)?;
    let started = Instant::now();
    let (manifest, held) = {
        let quiet = ctx.store.quiesce(APPLIER_WAIT).map_err(store_failure)?;
        let m = crate::backup::copy_store(
            ctx.store.dir(),
            ctx.cfg.audit.checkpoint_file.as_deref(),
            &dir,
            &quiet,
        )
        .map_err(Failure::failed)?;
        (m, started.elapsed())
    };
    let mut detail = serde_json::Map::new();
    detail.insert("files".into(), manifest.files.len().into());
    detail.insert("bytes".into(), manifest.total_bytes().into());
    detail.insert("audit_seq".into(), manifest.audit_head.seq.into());
    detail.insert("held_ms".into(), (held.as_millis() as u64).into());
    let actor = ctx.actor.to_string();
    ctx.store
        .audit_append(EventKind::Backup, &actor, Refs::default(), detail)
        .and_then(|_| ctx.store.flush_now())
        .map_err(store_failure)?;
    tracing::info!(
        files = manifest.files.len(),
        bytes = manifest.total_bytes(),
        audit_seq = manifest.audit_head.seq,
        held_ms = held.as_millis() as u64,
        "backup written"
    );
    say!(
        ctx,
        "backup of {} files, {} bytes, at audit sequence {} ({}), taken in {:.2} s; \
         it opens only with the master key",
        manifest.files.len(),
        manifest.total_bytes(),
        manifest.audit_head.seq,
        manifest.created_at,
        held.as_secs_f64()
    );
    Ok(())
}
