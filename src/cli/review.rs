//! `kim review list|assign|dismiss`: the queue of children the matching
//! stage would not decide. Listings show identifiers and reasons only; every
//! decision is audited with the admin's OS user name.

use super::{CliResult, Ctx, Failure};
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

pub fn list(ctx: &mut Ctx<'_>, json: bool) -> CliResult {
    let store = ctx.store;
    let items = store.review_list().map_err(Failure::failed)?;
    if json {
        say!(
            ctx,
            "{}",
            serde_json::to_string_pretty(&items).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    if items.is_empty() {
        say!(ctx, "the review queue is empty");
        return Ok(());
    }
    say!(
        ctx,
        "{:<20} {:>5}  {:<18} {:<8} {:<20} RECEIVED",
        "RECEIPT",
        "CHILD",
        "REASON",
        "FORCE",
        "POLICE REFERENCE"
    );
    for i in &items {
        say!(
            ctx,
            "{:<20} {:>5}  {:<18} {:<8} {:<20} {}",
            i.receipt_id,
            i.index,
            i.reason.as_str(),
            i.force,
            i.police_reference,
            i.received_at.strftime("%Y-%m-%d %H:%M UTC")
        );
    }
    say!(ctx,
        "{} child(ren) waiting. Decide with `kim review assign RECEIPT CHILD URN` or `kim review dismiss RECEIPT CHILD --reason TEXT`.",
        items.len()
    );
    Ok(())
}

pub fn assign(ctx: &mut Ctx<'_>, r: &str, index: u32, urn: &str) -> CliResult {
    let rid = receipt(r)?;
    let store = ctx.store;
    let _ = store
        .review_assign(&rid, index, urn, &ctx.actor)
        .map_err(failed)?;
    store.flush_now().map_err(Failure::failed)?;
    say!(ctx, "child {index} of {rid} assigned to school {urn}");
    Ok(())
}

pub fn dismiss(ctx: &mut Ctx<'_>, r: &str, index: u32, reason: &str) -> CliResult {
    let rid = receipt(r)?;
    if reason.trim().is_empty() {
        return Err(Failure::usage(anyhow::anyhow!("--reason must say why")));
    }
    let store = ctx.store;
    let _ = store
        .review_dismiss(&rid, index, reason, &ctx.actor)
        .map_err(failed)?;
    store.flush_now().map_err(Failure::failed)?;
    say!(ctx, "child {index} of {rid} dismissed; the police status shows `failed` (no school told by kim)");
    Ok(())
}
