//! `kim review show RECEIPT INDEX` and `kim review assign RECEIPT INDEX
//! --pupil PUPIL_ID` (issue 12 item 3): the police's details of a child
//! waiting for review beside each candidate pupil the matching stage kept
//! (sealed) for it, field by field, and an assignment through one of those
//! pupils. Showing is an audited `admin_access`; the output goes to the
//! admin's terminal only, never to the daemon's log.

use serde::Serialize;

use crate::admin::ctx::Ctx;
use crate::admin::outcome::{CliResult, Failure};
use crate::audit::{EventKind, Refs};
use crate::matching::nearmiss::{Candidate, ReviewCandidates};
use crate::store::review::ReviewError;
use crate::store::ReceiptId;

fn receipt(s: &str) -> Result<String, Failure> {
    ReceiptId::parse(s).map(|r| r.to_string()).ok_or_else(|| {
        Failure::usage(anyhow::anyhow!(
            "`{s}` is not a receipt id (like V398-5BRG-PWXE-JR9Y)"
        ))
    })
}

fn not_waiting(rid: &str, index: u32) -> Failure {
    Failure::failed(ReviewError::NotInQueue {
        receipt: rid.to_owned(),
        index,
    })
}

#[derive(Serialize)]
struct PoliceChild {
    given_name: String,
    family_name: String,
    other_names: Vec<String>,
    date_of_birth: String,
    postcode: Option<String>,
    school_hint: Option<String>,
}

#[derive(Serialize)]
struct Row {
    pupil_id: String,
    given_name: String,
    family_name: String,
    other_names: Vec<String>,
    date_of_birth: String,
    school_urn: String,
    school_name: Option<String>,
    postcode: Option<String>,
    found_as: String,
    names: String,
    name_score: f64,
    dob: &'static str,
    postcode_compare: &'static str,
    hint: &'static str,
}

#[derive(Serialize)]
struct Shown {
    receipt_id: String,
    index: u32,
    reason: String,
    child: PoliceChild,
    /// False for a child that went to review before kim kept candidates.
    candidates_kept: bool,
    candidates: Vec<Row>,
}

fn row(ctx: &Ctx<'_>, c: Candidate) -> Result<Row, Failure> {
    let school_name = ctx
        .store
        .school(&c.pupil.school_urn)
        .map_err(Failure::failed)?
        .map(|s| s.name);
    let p = c.pupil;
    Ok(Row {
        pupil_id: p.pupil_id,
        given_name: p.given_name,
        family_name: p.family_name,
        other_names: p.other_names,
        date_of_birth: p.date_of_birth.to_string(),
        school_urn: p.school_urn,
        school_name,
        postcode: p.postcode,
        found_as: c.found_as,
        names: c.names,
        name_score: c.name_score,
        dob: c.dob.as_str(),
        postcode_compare: match c.postcode {
            crate::matching::nearmiss::PostcodeRelation::Same => "same",
            crate::matching::nearmiss::PostcodeRelation::Differs => "differs",
            crate::matching::nearmiss::PostcodeRelation::Unknown => "unknown",
        },
        hint: match c.hint {
            crate::matching::nearmiss::HintRelation::Agrees => "agrees",
            crate::matching::nearmiss::HintRelation::Conflicts => "conflicts",
            crate::matching::nearmiss::HintRelation::None => "none",
        },
    })
}

/// What the reason code means, for the admin.
fn explain(reason: &str) -> &'static str {
    match reason {
        "no_candidate" => "no pupil on the roll has this date of birth and a name kim could look up",
        "weak_name" => "pupils with this date of birth were found, but no name agrees well enough",
        "ambiguous_schools" => "names agree with pupils at more than one school and neither the school hint nor the postcode decides",
        "hint_conflict" => "the only agreeing pupil's school differs from the school the police named",
        "same_pupil_twice" => "two children of this notification resolve to the same pupil",
        _ => "see the README's review reason codes",
    }
}

pub fn show(ctx: &mut Ctx<'_>, r: &str, index: u32, json: bool) -> CliResult {
    let rid = receipt(r)?;
    let store = ctx.store;
    if !store.review_waiting(&rid, index).map_err(Failure::failed)? {
        return Err(not_waiting(&rid, index));
    }
    let child = store
        .load_notification(&rid)
        .map_err(Failure::failed)?
        .and_then(|n| n.children.get(index as usize).cloned())
        .ok_or_else(|| not_waiting(&rid, index))?;
    let kept: Option<ReviewCandidates> = store
        .review_candidates(&rid, index)
        .map_err(Failure::failed)?;
    let reason = match &kept {
        Some(k) => k.reason.clone(),
        None => store
            .review_list()
            .map_err(Failure::failed)?
            .into_iter()
            .find(|i| i.receipt_id == rid && i.index == index)
            .map(|i| i.reason)
            .unwrap_or_default(),
    };
    let mut detail = serde_json::Map::new();
    detail.insert("action".into(), "review_show".into());
    let candidates_n = kept.as_ref().map_or(0, |k| k.candidates.len());
    detail.insert("candidates".into(), candidates_n.into());
    let refs = Refs {
        receipt: Some(rid.clone()),
        child: Some(index),
        ..Refs::default()
    };
    let _ = store
        .audit_append(EventKind::AdminAccess, &ctx.actor, refs, detail)
        .map_err(Failure::failed)?;
    store.flush_now().map_err(Failure::failed)?;
    let candidates_kept = kept.is_some();
    let mut rows = Vec::with_capacity(candidates_n);
    for c in kept.map(|k| k.candidates).unwrap_or_default() {
        rows.push(row(ctx, c)?);
    }
    let shown = Shown {
        receipt_id: rid,
        index,
        reason,
        child: PoliceChild {
            given_name: child.given_name,
            family_name: child.family_name,
            other_names: child.other_names,
            date_of_birth: child.date_of_birth.to_string(),
            postcode: child.postcode,
            school_hint: child.school_urn,
        },
        candidates_kept,
        candidates: rows,
    };
    if json {
        return ctx.say_json(&shown);
    }
    print_table(ctx, &shown);
    Ok(())
}

fn print_table(ctx: &mut Ctx<'_>, s: &Shown) {
    let c = &s.child;
    say!(
        ctx,
        "child {} of {}: {} ({})",
        s.index,
        s.receipt_id,
        s.reason,
        explain(&s.reason)
    );
    say!(
        ctx,
        "police: {} {}{}, born {}, postcode {}, school hint {}",
        c.given_name,
        c.family_name,
        if c.other_names.is_empty() {
            String::new()
        } else {
            format!(" (also {})", c.other_names.join(", "))
        },
        c.date_of_birth,
        c.postcode.as_deref().unwrap_or("-"),
        c.school_hint.as_deref().unwrap_or("-"),
    );
    if !s.candidates_kept {
        say!(ctx, "no candidates were kept for this child (it went to review before kim kept them); search the roll with `kim roll find --family NAME`");
    } else if s.candidates.is_empty() {
        say!(ctx, "no candidate pupils were found on the roll; search it with `kim roll find --family NAME`");
    } else {
        say!(
            ctx,
            "{:<14} {:<28} {:<10} {:<8} {:<24} {:<9} {:<9} {:>5} {:<17} {:<8} {:<9}",
            "PUPIL",
            "NAMES",
            "BORN",
            "URN",
            "SCHOOL",
            "POSTCODE",
            "FOUND AS",
            "NAME",
            "DOB",
            "POSTCODE",
            "HINT"
        );
        for r in &s.candidates {
            let names = super::pupil_names(&r.given_name, &r.family_name, &r.other_names);
            say!(
                ctx,
                "{:<14} {:<28} {:<10} {:<8} {:<24} {:<9} {:<9} {:>5.3} {:<17} {:<8} {:<9}",
                r.pupil_id,
                names,
                r.date_of_birth,
                r.school_urn,
                r.school_name.as_deref().unwrap_or("(not in directory)"),
                r.postcode.as_deref().unwrap_or("-"),
                r.found_as,
                r.name_score,
                r.dob,
                r.postcode_compare,
                r.hint
            );
        }
    }
    say!(
        ctx,
        "Decide with `kim review assign {} {} --pupil PUPIL_ID`, `kim review assign {} {} URN` or `kim review dismiss {} {} --reason TEXT`.",
        s.receipt_id, s.index, s.receipt_id, s.index, s.receipt_id, s.index
    );
    ctx.say_reveal_audited();
}

pub fn assign_pupil(ctx: &mut Ctx<'_>, r: &str, index: u32, pupil: &str) -> CliResult {
    let rid = receipt(r)?;
    let store = ctx.store;
    let kept: Option<ReviewCandidates> = store
        .review_candidates(&rid, index)
        .map_err(Failure::failed)?;
    if !store.review_waiting(&rid, index).map_err(Failure::failed)? {
        return Err(not_waiting(&rid, index));
    }
    // Not echoed: the argument may hold anything.
    let Some(urn) = kept
        .into_iter()
        .flat_map(|k| k.candidates)
        .find(|c| c.pupil.pupil_id == pupil)
        .map(|c| c.pupil.school_urn)
    else {
        return Err(Failure::failed(anyhow::anyhow!(
            "that pupil is not among the candidates kept for child {index} of {rid} (see `kim review show {rid} {index}`); assign by school instead: `kim review assign {rid} {index} URN`"
        )));
    };
    let _ = store
        .review_assign_pupil(&rid, index, &urn, pupil, &ctx.actor)
        .map_err(|e| match e {
            ReviewError::Store(s) => Failure::failed(s),
            other => Failure::failed(other),
        })?;
    store.flush_now().map_err(Failure::failed)?;
    say!(
        ctx,
        "child {index} of {rid} assigned to school {urn} (the pupil's school)"
    );
    Ok(())
}
