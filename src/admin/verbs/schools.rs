//! `kim schools import|list`: the school directory, replaced whole from a
//! CSV file (atomic: any bad row rejects it all) and listed (DESIGN §4).

use std::path::Path;

use super::{audit_import, rejected};
use crate::admin::ctx::Ctx;
use crate::admin::outcome::{CliResult, Failure};
use crate::import::parse_schools;

pub fn import(ctx: &mut Ctx<'_>, file: &Path) -> CliResult {
    let store = ctx.store;
    let schools = parse_schools(ctx.take_file(file)?).map_err(|e| rejected(e, file))?;
    let redirects = super::alerts::redirects(store, &schools)?;
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
    audit_import(store, &ctx.actor, "schools_import", schools.len() as u64)?;
    say!(
        ctx,
        "imported {} schools from {} (the directory was replaced)",
        schools.len(),
        file.display()
    );
    if redirects > 0 {
        say!(
            ctx,
            "{redirects} waiting alert(s) will go to their school's new address at their next attempt"
        );
    }
    Ok(())
}

pub fn list(ctx: &mut Ctx<'_>, json: bool) -> CliResult {
    let store = ctx.store;
    let schools = store.schools().map_err(Failure::failed)?;
    if json {
        ctx.say_json(&schools)?;
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
