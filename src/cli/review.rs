//! `kim review list|assign|dismiss`: the queue of children the matching
//! stage would not decide. Listings show identifiers and reasons only; every
//! decision is audited with the admin's OS user name.

use std::path::Path;

use super::{admin_actor, open_store, CliResult, Failure};
use crate::store::review::ReviewError;
use crate::store::ReceiptId;

fn receipt(s: &str) -> Result<String, Failure> {
    ReceiptId::parse(s).map(|r| r.to_string()).ok_or_else(|| {
        Failure::usage(anyhow::anyhow!(
            "`{s}` is not a receipt id (like V398-5BRG-PWXE-JR9Y)"
        ))
    })
}

fn failed(e: ReviewError) -> Failure {
    match e {
        ReviewError::Store(s) => Failure::failed(s),
        other => Failure::failed(other),
    }
}

pub fn list(config: &Path, json: bool) -> CliResult {
    let store = open_store(config)?;
    let items = store.review_list().map_err(Failure::failed)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&items).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    if items.is_empty() {
        println!("the review queue is empty");
        return Ok(());
    }
    println!(
        "{:<20} {:>5}  {:<18} {:<8} {:<20} RECEIVED",
        "RECEIPT", "CHILD", "REASON", "FORCE", "POLICE REFERENCE"
    );
    for i in &items {
        println!(
            "{:<20} {:>5}  {:<18} {:<8} {:<20} {}",
            i.receipt_id,
            i.index,
            i.reason.as_str(),
            i.force,
            i.police_reference,
            i.received_at.strftime("%Y-%m-%d %H:%M UTC")
        );
    }
    println!(
        "{} child(ren) waiting. Decide with `kim review assign RECEIPT CHILD URN` or `kim review dismiss RECEIPT CHILD --reason TEXT`.",
        items.len()
    );
    Ok(())
}

pub fn assign(config: &Path, r: &str, index: u32, urn: &str) -> CliResult {
    let rid = receipt(r)?;
    let store = open_store(config)?;
    let _ = store
        .review_assign(&rid, index, urn, &admin_actor())
        .map_err(failed)?;
    store.flush_now().map_err(Failure::failed)?;
    println!("child {index} of {rid} assigned to school {urn}");
    Ok(())
}

pub fn dismiss(config: &Path, r: &str, index: u32, reason: &str) -> CliResult {
    let rid = receipt(r)?;
    if reason.trim().is_empty() {
        return Err(Failure::usage(anyhow::anyhow!("--reason must say why")));
    }
    let store = open_store(config)?;
    let _ = store
        .review_dismiss(&rid, index, reason, &admin_actor())
        .map_err(failed)?;
    store.flush_now().map_err(Failure::failed)?;
    println!("child {index} of {rid} dismissed; the police status shows `failed` (no school told by kim)");
    Ok(())
}
