//! `kim audit verify|list`: recompute the hash chain and name the first bad
//! event; list events by time, receipt or school. Audit events hold
//! identifiers only, so listing them reveals no personal data.

use std::path::Path;

use super::{open_store, CliResult, Failure};
use crate::audit::{verify_chain, AuditEvent, Head};
use crate::config::HumanDuration;

pub fn verify(config: &Path) -> CliResult {
    let store = open_store(config)?;
    let events: Vec<AuditEvent> = store
        .audit_events()
        .collect::<Result<_, _>>()
        .map_err(Failure::failed)?;
    let head = verify_chain(&Head::default(), &events)
        .map_err(|e| Failure::failed(anyhow::anyhow!("the audit chain is broken: {e}")))?;
    let stored = store.audit_head().map_err(Failure::failed)?;
    if stored != head {
        return Err(Failure::failed(anyhow::anyhow!(
            "the audit chain is broken: the recorded head is event {} but the chain ends at event {} (events removed from the tail?)",
            stored.seq,
            head.seq
        )));
    }
    println!(
        "the audit chain verifies: {} events, head {}",
        head.seq, head.hash
    );
    Ok(())
}

pub struct Filter {
    pub since: Option<String>,
    pub receipt: Option<String>,
    pub school: Option<String>,
    pub json: bool,
}

pub fn list(config: &Path, f: &Filter) -> CliResult {
    let since = match &f.since {
        Some(s) => {
            let d = HumanDuration::parse(s)
                .map_err(|e| Failure::usage(anyhow::anyhow!("--since: {e}")))?;
            let d = jiff::SignedDuration::try_from(d.0)
                .map_err(|e| Failure::usage(anyhow::anyhow!("--since: {e}")))?;
            Some(jiff::Timestamp::now() - d)
        }
        None => None,
    };
    let receipt = f.receipt.as_ref().map(|r| r.to_ascii_uppercase());
    let store = open_store(config)?;
    let mut shown = Vec::new();
    for ev in store.audit_events() {
        let ev = ev.map_err(Failure::failed)?;
        if since.is_some_and(|t| ev.time < t)
            || receipt
                .as_ref()
                .is_some_and(|r| ev.refs.receipt.as_ref() != Some(r))
            || f.school
                .as_ref()
                .is_some_and(|u| ev.refs.school_urn.as_ref() != Some(u))
        {
            continue;
        }
        shown.push(ev);
    }
    if f.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&shown).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    println!(
        "{:>6}  {:<20} {:<15} {:<16} {:<20} {:>5} {:<8} DETAIL",
        "SEQ", "TIME (UTC)", "KIND", "ACTOR", "RECEIPT", "CHILD", "SCHOOL"
    );
    for ev in &shown {
        let kind = serde_json::to_value(ev.kind).ok();
        println!(
            "{:>6}  {:<20} {:<15} {:<16} {:<20} {:>5} {:<8} {}",
            ev.seq,
            ev.time.strftime("%Y-%m-%d %H:%M:%S"),
            kind.as_ref().and_then(|k| k.as_str()).unwrap_or("?"),
            ev.actor,
            ev.refs.receipt.as_deref().unwrap_or("-"),
            ev.refs
                .child
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            ev.refs.school_urn.as_deref().unwrap_or("-"),
            ev.detail
                .iter()
                .map(|(k, v)| format!(
                    "{k}={}",
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string())
                ))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    println!("{} event(s)", shown.len());
    Ok(())
}
