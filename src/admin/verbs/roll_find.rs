//! `kim roll find --family NAME [--given NAME] [--dob YYYY-MM-DD]` (issue 12
//! item 4): pupils of the sealed roll found through its family-name index
//! (never by decrypting the whole roll), at most [`MAX_ROWS`]. An audited
//! `admin_access` (the counts, never the names asked for); the answer goes
//! to the admin's terminal only, never to the daemon's log.

use serde::Serialize;

use crate::admin::ctx::Ctx;
use crate::admin::outcome::{CliResult, Failure};
use crate::audit::{EventKind, Refs};
use crate::store::roll::{RollFindError, RollQuery};

/// At most this many pupils are listed.
pub const MAX_ROWS: usize = 50;

#[derive(Serialize)]
struct Row {
    pupil_id: String,
    given_name: String,
    family_name: String,
    other_names: Vec<String>,
    date_of_birth: String,
    postcode: Option<String>,
    school_urn: String,
    school_name: Option<String>,
}

#[derive(Serialize)]
struct Found {
    pupils: Vec<Row>,
    /// More pupils matched than are listed: narrow with --given or --dob.
    more: bool,
}

pub fn find(
    ctx: &mut Ctx<'_>,
    family: &str,
    given: Option<&str>,
    dob: Option<&str>,
    json: bool,
) -> CliResult {
    // Never echoed: the arguments are a child's details.
    let dob = dob
        .map(crate::fields::parse_date)
        .transpose()
        .map_err(|_| Failure::usage(anyhow::anyhow!("--dob must be a date as YYYY-MM-DD")))?;
    let store = ctx.store;
    let found = store
        .roll_find(&RollQuery {
            family,
            given,
            dob,
            threshold: ctx.cfg.matching.name_threshold,
            limit: MAX_ROWS,
        })
        .map_err(|e| match e {
            RollFindError::EmptyName => Failure::usage(e),
            RollFindError::Store(s) => Failure::failed(s),
            other => Failure::failed(other),
        })?;
    let mut detail = serde_json::Map::new();
    detail.insert("action".into(), "roll_find".into());
    detail.insert("given".into(), given.is_some().into());
    detail.insert("dob".into(), dob.is_some().into());
    detail.insert("rows".into(), found.pupils.len().into());
    let _ = store
        .audit_append(EventKind::AdminAccess, &ctx.actor, Refs::default(), detail)
        .map_err(Failure::failed)?;
    store.flush_now().map_err(Failure::failed)?;
    let mut rows = Vec::with_capacity(found.pupils.len());
    for p in found.pupils {
        let school_name = store
            .school(&p.school_urn)
            .map_err(Failure::failed)?
            .map(|s| s.name);
        rows.push(Row {
            pupil_id: p.pupil_id,
            given_name: p.given_name,
            family_name: p.family_name,
            other_names: p.other_names,
            date_of_birth: p.date_of_birth.to_string(),
            postcode: p.postcode,
            school_urn: p.school_urn,
            school_name,
        });
    }
    let found = Found {
        pupils: rows,
        more: found.more,
    };
    if json {
        return ctx.say_json(&found);
    }
    if found.pupils.is_empty() {
        say!(ctx, "no pupil on the roll matches");
        ctx.say_reveal_audited();
        return Ok(());
    }
    say!(
        ctx,
        "{:<14} {:<32} {:<10} {:<9} {:<8} SCHOOL",
        "PUPIL",
        "NAMES",
        "BORN",
        "POSTCODE",
        "URN"
    );
    for r in &found.pupils {
        let names = super::pupil_names(&r.given_name, &r.family_name, &r.other_names);
        say!(
            ctx,
            "{:<14} {:<32} {:<10} {:<9} {:<8} {}",
            r.pupil_id,
            names,
            r.date_of_birth,
            r.postcode.as_deref().unwrap_or("-"),
            r.school_urn,
            r.school_name.as_deref().unwrap_or("(not in directory)")
        );
    }
    if found.more {
        say!(
            ctx,
            "more than {MAX_ROWS} pupils match: narrow the search with --given or --dob"
        );
    }
    ctx.say_reveal_audited();
    Ok(())
}
