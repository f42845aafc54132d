//! `kim status RECEIPT [--reveal] [--json]`: a notification's states for an
//! admin. `--reveal` opens the sealed notification and shows the children's
//! details; that read is itself an `admin_access` audit event.

use serde_json::json;

use crate::admin::ctx::Ctx;
use crate::admin::outcome::{CliResult, Failure};
use crate::audit::{EventKind, Refs};
use crate::store::ReceiptId;

pub fn main(ctx: &mut Ctx<'_>, receipt: &str, reveal: bool, as_json: bool) -> CliResult {
    let rid = ReceiptId::parse(receipt).ok_or_else(|| {
        Failure::usage(anyhow::anyhow!(
            "`{receipt}` is not a receipt id (like V398-5BRG-PWXE-JR9Y)"
        ))
    })?;
    let store = ctx.store;
    let rec = store
        .record(rid.as_str())
        .map_err(Failure::failed)?
        .ok_or_else(|| Failure::failed(anyhow::anyhow!("no such receipt: {rid}")))?;
    let revealed = if reveal {
        let mut detail = serde_json::Map::new();
        detail.insert("action".into(), "reveal".into());
        let _ = store
            .audit_append(
                EventKind::AdminAccess,
                &ctx.actor,
                Refs {
                    receipt: Some(rid.to_string()),
                    ..Refs::default()
                },
                detail,
            )
            .map_err(Failure::failed)?;
        store.flush_now().map_err(Failure::failed)?;
        store
            .load_notification(rid.as_str())
            .map_err(Failure::failed)?
    } else {
        None
    };
    if as_json {
        let mut v = json!({
            "receipt_id": rec.receipt_id,
            "force": rec.force,
            "police_reference": rec.police_reference,
            "received_at": rec.received_at,
            "children": rec.children,
        });
        if let Some(t) = rec.purged_at {
            v["purged_at"] = json!(t);
        }
        if let Some(n) = &revealed {
            v["notification"] = serde_json::to_value(n).map_err(anyhow::Error::from)?;
        }
        ctx.say_json(&v)?;
        return Ok(());
    }
    say!(
        ctx,
        "receipt {}  force {}  police reference {}",
        rec.receipt_id,
        rec.force,
        rec.police_reference
    );
    say!(
        ctx,
        "received {}",
        rec.received_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    );
    if let Some(t) = rec.purged_at {
        say!(
            ctx,
            "purged {} by retention: only these identifiers and states remain",
            t.strftime("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    for c in &rec.children {
        let state = serde_json::to_value(c.state).map_err(anyhow::Error::from)?;
        say_part!(
            ctx,
            "  child {}: {}{}",
            c.index,
            state.as_str().unwrap_or("?"),
            c.school_urn
                .as_deref()
                .map(|u| format!(" (school {u})"))
                .unwrap_or_default()
        );
        if let Some(child) = revealed
            .as_ref()
            .and_then(|n| n.children.get(c.index as usize))
        {
            say_part!(
                ctx,
                " — {} {}, born {}, {}",
                child.given_name,
                child.family_name,
                child.date_of_birth,
                child.involvement.as_str()
            );
        }
        say!(ctx);
    }
    if reveal {
        ctx.say_reveal_audited();
    }
    Ok(())
}
