//! `kim roll import|stats`: the roll of children, replaced whole from a CSV
//! file into the sealed store (atomic: any bad row rejects it all), and
//! pupil counts per school (no personal data).

use std::path::Path;

use super::{audit_import, rejected};
use crate::admin::ctx::Ctx;
use crate::admin::outcome::{CliResult, Failure};
use crate::import::{parse_roll_each, ImportError};

pub fn import(ctx: &mut Ctx<'_>, file: &Path) -> CliResult {
    let store = ctx.store;
    let urns = store.school_urns().map_err(Failure::failed)?;
    if urns.is_empty() {
        return Err(Failure::failed(anyhow::anyhow!(
            "the school directory is empty: run `kim schools import FILE` first"
        )));
    }
    let today = jiff::Zoned::now().date();
    let started = std::time::Instant::now();
    let input = ctx.take_file(file)?;
    // Pupils go into the store as they are read; a file with any bad row
    // is rejected whole, and what was written of it is removed again.
    let stats = store
        .import_roll_stream(|w| {
            parse_roll_each(input, &urns, today, |p| {
                w.add(&p)?;
                Ok::<_, RollImportError>(())
            })
            .map(drop)
        })
        .map_err(|e| match e {
            RollImportError::Rejected(e) => rejected(e, file),
            RollImportError::Store(e) => Failure::failed(e),
        })?;
    let n = stats.pupils;
    audit_import(store, &ctx.actor, "roll_import", n)?;
    say!(
        ctx,
        "imported {n} pupils at {} schools from {} in {:.1}s; the roll was replaced",
        stats.schools,
        file.display(),
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}

/// Why a streamed roll import stopped.
enum RollImportError {
    Rejected(ImportError),
    Store(crate::store::StoreError),
}

impl From<ImportError> for RollImportError {
    fn from(e: ImportError) -> Self {
        Self::Rejected(e)
    }
}

impl From<crate::store::StoreError> for RollImportError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Store(e)
    }
}

pub fn stats(ctx: &mut Ctx<'_>, json: bool) -> CliResult {
    let store = ctx.store;
    let stats = store.roll_stats().map_err(Failure::failed)?;
    if json {
        ctx.say_json(&stats)?;
        return Ok(());
    }
    say!(
        ctx,
        "roll generation {}: {} pupils at {} schools",
        stats.generation,
        stats.pupils,
        stats.schools
    );
    say!(ctx, "{:<8} PUPILS", "URN");
    for (urn, n) in &stats.per_school {
        say!(ctx, "{urn:<8} {n}");
    }
    Ok(())
}
