//! `kim report`: what kim did over a period, for the partnership (issue
//! 15). Verifies the audit chain first (and refuses, naming the first bad
//! event, if it does not), then computes the figures from the audit events
//! and the school directory's URNs and names only ([`crate::report`]) and
//! prints them as text, JSON or CSV. Never opens a sealed payload.

use std::collections::HashMap;

use crate::admin::ctx::Ctx;
use crate::admin::outcome::{CliResult, Failure};
use crate::audit::{verify_chain, AuditEvent, Head};
use crate::report::{self, Period, Verified};

/// How the figures are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Csv,
}

pub struct Args<'a> {
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub force: Option<&'a str>,
    pub format: Format,
}

pub fn main(ctx: &mut Ctx<'_>, a: &Args<'_>) -> CliResult {
    let period =
        Period::from_flags(a.from, a.to, jiff::Timestamp::now()).map_err(Failure::usage)?;
    if let Some(f) = a.force {
        if !ctx.cfg.forces.iter().any(|x| x.id == f) {
            return Err(Failure::usage(anyhow::anyhow!(
                "--force {f:?}: no such force in the config"
            )));
        }
    }
    let store = ctx.store;
    // Inside the daemon events may be added while we read: verify up to the
    // head read first (every append moves it in the same transaction).
    let stored = store.audit_head().map_err(Failure::failed)?;
    let events: Vec<AuditEvent> = store
        .audit_events()
        .take_while(|e| e.as_ref().map_or(true, |e| e.seq <= stored.seq))
        .collect::<Result<_, _>>()
        .map_err(Failure::failed)?;
    let refuse = |why: String| {
        Failure::failed(anyhow::anyhow!(
            "no report: the audit chain is broken: {why}; run `kim audit verify` and restore the store from a backup"
        ))
    };
    let head = verify_chain(&Head::default(), &events).map_err(|e| refuse(e.to_string()))?;
    if head != stored {
        return Err(refuse(format!(
            "the recorded head is event {} but the chain ends at event {} (events removed from the tail?)",
            stored.seq, head.seq
        )));
    }
    let names: HashMap<String, String> = store
        .schools()
        .map_err(Failure::failed)?
        .into_iter()
        .map(|s| (s.urn, s.name))
        .collect();
    let mut figures = report::compute(&period, a.force, &events, &names);
    figures.audit = Verified {
        events: head.seq,
        head_hash: head.hash,
    };
    match a.format {
        Format::Json => ctx.say_json(&figures)?,
        Format::Csv => {
            let text = report::render::csv(&figures).map_err(Failure::failed)?;
            say_part!(ctx, "{text}");
        }
        Format::Text => {
            let text = report::render::text(&figures);
            say_part!(ctx, "{text}");
        }
    }
    Ok(())
}
