//! `kim review list|assign|dismiss`: the queue of children the matching
//! stage would not decide. Listings show identifiers, reasons, waiting
//! times and deadlines only (the longest waiting first); every
//! decision is audited with the admin's OS user name.

use crate::admin::ctx::Ctx;
use crate::admin::outcome::{CliResult, Failure};
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

/// One child's details for the admin deciding a review (revealed only).
#[derive(serde::Serialize)]
struct Revealed {
    given_name: String,
    family_name: String,
    other_names: Vec<String>,
    date_of_birth: String,
    postcode: Option<String>,
    police_school_hint: Option<String>,
}

/// How long a child has waited, short: `45s`, `12m`, `3h05m`, `2d04h`.
fn age_text(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{m}m"),
        s if s < 86_400 => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

/// Lists the waiting children, the longest waiting first, each with how
/// long it has waited and its deadline.
pub fn list(ctx: &mut Ctx<'_>, json: bool, reveal: bool) -> CliResult {
    let store = ctx.store;
    let items = store.review_list().map_err(Failure::failed)?;
    let mut revealed: Vec<Option<Revealed>> = Vec::with_capacity(items.len());
    if reveal && !items.is_empty() {
        let mut detail = serde_json::Map::new();
        detail.insert("action".into(), "reveal_review".into());
        detail.insert("children".into(), items.len().into());
        let _ = store
            .audit_append(
                crate::audit::EventKind::AdminAccess,
                &ctx.actor,
                crate::audit::Refs::default(),
                detail,
            )
            .map_err(Failure::failed)?;
        store.flush_now().map_err(Failure::failed)?;
        for i in &items {
            let n = store
                .load_notification(&i.receipt_id)
                .map_err(Failure::failed)?;
            revealed.push(
                n.and_then(|n| n.children.get(i.index as usize).cloned())
                    .map(|c| Revealed {
                        given_name: c.given_name,
                        family_name: c.family_name,
                        other_names: c.other_names,
                        date_of_birth: c.date_of_birth.to_string(),
                        postcode: c.postcode,
                        police_school_hint: c.school_urn,
                    }),
            );
        }
    }
    let now = jiff::Timestamp::now();
    let age =
        |i: &crate::store::review::ReviewItem| now.duration_since(i.queued_at).as_secs().max(0);
    if json {
        let rows: Vec<serde_json::Value> = items
            .iter()
            .enumerate()
            .map(|(k, i)| {
                let mut v = serde_json::to_value(i).unwrap_or_default();
                v["age_seconds"] = age(i).into();
                if let Some(Some(r)) = revealed.get(k) {
                    v["child"] = serde_json::to_value(r).unwrap_or_default();
                }
                v
            })
            .collect();
        ctx.say_json(&rows)?;
        return Ok(());
    }
    if items.is_empty() {
        say!(ctx, "the review queue is empty");
        return Ok(());
    }
    say!(
        ctx,
        "{:<20} {:>5}  {:<18} {:<8} {:<20} {:<20} {:>8}  DEADLINE (UK)",
        "RECEIPT",
        "CHILD",
        "REASON",
        "FORCE",
        "POLICE REFERENCE",
        "RECEIVED",
        "WAITING"
    );
    for (k, i) in items.iter().enumerate() {
        let deadline = i.deadline.unwrap_or(i.received_at);
        say!(
            ctx,
            "{:<20} {:>5}  {:<18} {:<8} {:<20} {:<20} {:>8}  {}{}",
            i.receipt_id,
            i.index,
            i.reason.as_str(),
            i.force,
            i.police_reference,
            i.received_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            age_text(age(i)),
            deadline
                .to_zoned(crate::calendar::school_tz())
                .strftime("%a %Y-%m-%d %H:%M"),
            if deadline <= now { " PASSED" } else { "" }
        );
        if let Some(Some(r)) = revealed.get(k) {
            say!(
                ctx,
                "      {} {}{}, born {}{}{}",
                r.given_name,
                r.family_name,
                if r.other_names.is_empty() {
                    String::new()
                } else {
                    format!(" (also {})", r.other_names.join(", "))
                },
                r.date_of_birth,
                r.postcode
                    .as_deref()
                    .map(|p| format!(", postcode {p}"))
                    .unwrap_or_default(),
                r.police_school_hint
                    .as_deref()
                    .map(|u| format!(", police think school {u}"))
                    .unwrap_or_default()
            );
        }
    }
    say!(
        ctx,
        "{} child(ren) waiting. Decide with `kim review assign RECEIPT CHILD URN` or `kim review dismiss RECEIPT CHILD --reason TEXT`.",
        items.len()
    );
    if reveal {
        ctx.say_reveal_audited();
    }
    Ok(())
}

pub fn assign(ctx: &mut Ctx<'_>, r: &str, index: u32, urn: &str) -> CliResult {
    // Not echoed: a malformed argument may hold anything.
    let urn = crate::fields::Urn::parse(urn)
        .map_err(|_| Failure::usage(anyhow::anyhow!("URN must be 6 or 7 digits (a DfE URN)")))?
        .as_str();
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
    if crate::fields::check_free_text(reason).is_err() {
        return Err(Failure::usage(anyhow::anyhow!(
            "--reason must not contain control, bidirectional or invisible characters (line feed and tab are fine)"
        )));
    }
    let store = ctx.store;
    let _ = store
        .review_dismiss(&rid, index, reason, &ctx.actor)
        .map_err(failed)?;
    store.flush_now().map_err(Failure::failed)?;
    say!(ctx, "child {index} of {rid} dismissed; the police status shows `failed` (no school told by kim)");
    Ok(())
}
