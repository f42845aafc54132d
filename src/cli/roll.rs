//! `kim schools import|list` and `kim roll import|stats`: atomic CSV imports
//! into the sealed store (DESIGN §4). The same handlers run in the CLI on
//! the store, or in the daemon for a CLI that asked over the admin socket.

use std::path::Path;

use super::{CliResult, Ctx, Failure};
use crate::audit::{EventKind, Refs};
use crate::import::{parse_roll_each, parse_schools, ImportError};

fn rejected(e: ImportError, file: &Path) -> Failure {
    Failure::failed(anyhow::anyhow!("{}: {e}", file.display()))
}

fn audit(
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

pub fn schools_import(ctx: &mut Ctx<'_>, file: &Path) -> CliResult {
    let store = ctx.store;
    let schools = parse_schools(ctx.take_file(file)?).map_err(|e| rejected(e, file))?;
    match store.replace_schools(&schools).map_err(Failure::failed)? {
        Ok(()) => {}
        Err(orphaned) => {
            return Err(Failure::failed(anyhow::anyhow!(
                "{}: refused: the roll has pupils at {} school(s) this file leaves out (URNs {}); import a roll without them first",
                file.display(),
                orphaned.len(),
                orphaned.join(", ")
            )))
        }
    }
    audit(store, &ctx.actor, "schools_import", schools.len() as u64)?;
    say!(
        ctx,
        "imported {} schools from {} (the directory was replaced)",
        schools.len(),
        file.display()
    );
    Ok(())
}

pub fn schools_list(ctx: &mut Ctx<'_>, json: bool) -> CliResult {
    let store = ctx.store;
    let schools = store.schools().map_err(Failure::failed)?;
    if json {
        say!(
            ctx,
            "{}",
            serde_json::to_string_pretty(&schools).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    say!(
        ctx,
        "{:<8} {:<40} {:<28} {:<7} PHONE",
        "URN",
        "NAME",
        "DSL EMAIL",
        "DEPUTY"
    );
    for s in &schools {
        say!(
            ctx,
            "{:<8} {:<40} {:<28} {:<7} {}",
            s.urn,
            truncate(&s.name, 40),
            truncate(&s.dsl_email, 28),
            if s.deputy_email.is_some() {
                "yes"
            } else {
                "no"
            },
            s.phone.as_deref().unwrap_or("")
        );
    }
    say!(ctx, "{} school(s)", schools.len());
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

pub fn roll_import(ctx: &mut Ctx<'_>, file: &Path) -> CliResult {
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
    audit(store, &ctx.actor, "roll_import", n)?;
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

pub fn roll_stats(ctx: &mut Ctx<'_>, json: bool) -> CliResult {
    let store = ctx.store;
    let stats = store.roll_stats().map_err(Failure::failed)?;
    if json {
        say!(
            ctx,
            "{}",
            serde_json::to_string_pretty(&stats).map_err(anyhow::Error::from)?
        );
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
