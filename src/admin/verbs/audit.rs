//! `kim audit verify|list|export`: recompute the hash chain, check the signed
//! checkpoints and name the first bad event; export and verify an export; list events by time, receipt or school. Audit events hold
//! identifiers only, so listing them reveals no personal data.

use std::path::Path;

use crate::admin::ctx::Ctx;
use crate::admin::outcome::{CliResult, Failure};
use crate::audit::checkpoint::{Signer, Trusted};
use crate::audit::export::{read_checkpoint_file, verify_checkpoints, verify_export, write_export};
use crate::audit::{verify_chain, AuditEvent, Head};
use crate::config::HumanDuration;

pub fn verify(ctx: &mut Ctx<'_>) -> CliResult {
    verify_with(ctx, &[])
}

/// The keys whose checkpoints verify: the signing key's public half,
/// `[audit] trusted_keys` and `extra` (hex, from `--public-key`).
pub(crate) fn trusted_keys(
    cfg: &crate::config::Config,
    extra: &[String],
) -> Result<Trusted, Failure> {
    let mut trusted = Trusted::default();
    if let Some(key) = cfg.signing_key_path().map_err(Failure::usage)? {
        trusted.add(Signer::load(&key).map_err(Failure::usage)?.public_key());
    }
    for p in &cfg.audit.trusted_keys {
        trusted
            .add_file(p)
            .map_err(|e| Failure::usage(anyhow::anyhow!("[audit] trusted_keys: {e}")))?;
    }
    for k in extra {
        trusted.add_hex(k).map_err(Failure::usage)?;
    }
    Ok(trusted)
}

/// The request of `kim audit verify [--public-key K]…` (the CLI reads the
/// key files; the daemon gets the keys).
pub fn verify_request(
    public_keys: &[std::path::PathBuf],
) -> Result<crate::admin::Request, Failure> {
    if public_keys.is_empty() {
        return Ok(crate::admin::Request::AuditVerify);
    }
    let mut t = Trusted::default();
    for k in public_keys {
        t.add_file(k).map_err(Failure::usage)?;
    }
    Ok(crate::admin::Request::AuditVerifyWith {
        public_keys: t.hex_keys(),
    })
}

/// `kim audit verify [--public-key K]…`: checkpoints signed by any trusted
/// key verify (a signing key rotated over the years).
pub fn verify_with(ctx: &mut Ctx<'_>, extra: &[String]) -> CliResult {
    let cfg = ctx.cfg;
    let store = ctx.store;
    // Run inside the daemon, events and checkpoints may be added while we
    // read. Checkpoints first, so none can vouch for more than the head read
    // next; every append moves the head in the same transaction, so every
    // event up to that head is there: verify up to it, ignore later ones.
    let stored_cps = store.checkpoints().map_err(Failure::failed)?;
    let file_cps = cfg
        .audit
        .checkpoint_file
        .as_ref()
        .map(|p| (p, std::fs::read(p)));
    let stored = store.audit_head().map_err(Failure::failed)?;
    let events: Vec<AuditEvent> = store
        .audit_events()
        .take_while(|e| e.as_ref().map_or(true, |e| e.seq <= stored.seq))
        .collect::<Result<_, _>>()
        .map_err(Failure::failed)?;
    let broken = |e: crate::audit::ChainError| {
        Failure::failed(anyhow::anyhow!("the audit chain is broken: {e}"))
    };
    let head = verify_chain(&Head::default(), &events).map_err(broken)?;
    if stored != head {
        return Err(Failure::failed(anyhow::anyhow!(
            "the audit chain is broken: the recorded head is event {} but the chain ends at event {} (events removed from the tail?)",
            stored.seq,
            head.seq
        )));
    }
    let hash_at = |seq: u64| {
        events
            .get((seq as usize).wrapping_sub(1))
            .filter(|e| e.seq == seq)
            .map(|e| e.hash.clone())
    };
    let mut checked = Vec::new();
    // A restore recorded in the chain explains checkpoints of the events
    // after the backup (issue 14 item 4); an unrecorded copy-back does not.
    let restore = events
        .iter()
        .rev()
        .find_map(crate::store::backup::RestoreRecord::from_event);
    let mut warnings: Vec<String> = restore.iter().map(|r| r.warning()).collect();
    let trusted = trusted_keys(cfg, extra)?;
    match trusted.is_empty() {
        true => {
            checked.push("no [audit] signing key configured: checkpoints not checked".to_owned())
        }
        false => {
            let public = &trusted;
            let n =
                verify_checkpoints(&stored_cps, public, &head, hash_at, "store").map_err(broken)?;
            checked.push(format!("{n} stored checkpoints"));
            if let Some((path, read)) = file_cps {
                match read {
                    Ok(bytes) => {
                        let cps = read_checkpoint_file(&bytes[..]).map_err(|e| {
                            Failure::failed(anyhow::anyhow!(
                                "the checkpoint file {}: {e}",
                                path.display()
                            ))
                        })?;
                        let (ours, lost) = lost_timeline(&cps, restore.as_ref());
                        let n = verify_checkpoints(ours, public, &head, hash_at, "checkpoint file")
                            .map_err(broken)?;
                        if lost > 0 {
                            warnings.push(format!(
                                "{lost} checkpoints in the file vouch for the events a restore lost"
                            ));
                        }
                        checked.push(format!("{n} checkpoints in {}", path.display()));
                        unshipped(&stored_cps, &cps, path, jiff::Timestamp::now())?;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        checked.push(format!("no checkpoint file yet at {}", path.display()))
                    }
                    Err(e) => {
                        return Err(Failure::failed(anyhow::anyhow!("{}: {e}", path.display())))
                    }
                }
            }
            let last = stored_cps.last().map(|c| c.seq).unwrap_or(0);
            if head.seq > last {
                checked.push(format!(
                    "{} events after the last checkpoint (covered by the chain only)",
                    head.seq - last
                ));
            }
        }
    }
    for w in warnings {
        say!(ctx, "warning: {w}");
    }
    say!(
        ctx,
        "the audit chain verifies: {} events, head {}; {}",
        head.seq,
        head.hash,
        checked.join("; ")
    );
    Ok(())
}

/// The checkpoint file's checkpoints that must match this chain, and how
/// many were left out: those the file held when a restore was recorded
/// that vouch for events after the backup (the timeline the restore lost).
fn lost_timeline<'a>(
    cps: &'a [crate::audit::checkpoint::Checkpoint],
    restore: Option<&crate::store::backup::RestoreRecord>,
) -> (Vec<&'a crate::audit::checkpoint::Checkpoint>, usize) {
    let Some(r) = restore else {
        return (cps.iter().collect(), 0);
    };
    let (mut ours, mut lost) = (Vec::new(), 0);
    for (i, cp) in cps.iter().enumerate() {
        if (i as u64) < r.checkpoint_file_entries && cp.seq > r.backup_seq {
            lost += 1;
        } else {
            ours.push(cp);
        }
    }
    (ours, lost)
}

/// Fails when the store holds checkpoints that the checkpoint file lacks
/// (the file was not appended to: a full disk, no descriptors left), except
/// the newest ones of the last 3 s, which the daemon may be appending now.
fn unshipped(
    stored: &[crate::audit::checkpoint::Checkpoint],
    in_file: &[crate::audit::checkpoint::Checkpoint],
    path: &Path,
    now: jiff::Timestamp,
) -> Result<(), Failure> {
    let have: std::collections::HashSet<u64> = in_file.iter().map(|c| c.seq).collect();
    let file_last = in_file.iter().map(|c| c.seq).max().unwrap_or(0);
    let recent = |c: &crate::audit::checkpoint::Checkpoint| {
        c.seq > file_last && now.duration_since(c.time) < jiff::SignedDuration::from_secs(3)
    };
    let missing: Vec<u64> = stored
        .iter()
        .filter(|c| !have.contains(&c.seq) && !recent(c))
        .map(|c| c.seq)
        .collect();
    match missing.first() {
        None => Ok(()),
        Some(first) => Err(Failure::failed(anyhow::anyhow!(
            "the checkpoint file {} lacks {} of the store's signed checkpoints (the first at event {first}): \
             it was not appended to, so what was shipped from it vouches for less than the store holds",
            path.display(),
            missing.len()
        ))),
    }
}

/// `kim audit verify --file F --public-key K`: an export, anywhere.
pub fn verify_file(file: &Path, public_keys: &[std::path::PathBuf]) -> CliResult {
    let mut public = Trusted::default();
    for k in public_keys {
        public.add_file(k).map_err(Failure::usage)?;
    }
    let f = std::fs::File::open(file)
        .map_err(|e| Failure::usage(anyhow::anyhow!("cannot open {}: {e}", file.display())))?;
    let r = verify_export(std::io::BufReader::with_capacity(1 << 20, f), &public).map_err(|e| {
        Failure::failed(anyhow::anyhow!(
            "the export {} does not verify: {e}",
            file.display()
        ))
    })?;
    println!(
        "the export verifies: {} events, head {}, {} signed checkpoints",
        r.head.seq, r.head.hash, r.checkpoints
    );
    if r.checkpoints == 0 || r.after_last_checkpoint > 0 {
        println!(
            "warning: {} events after the last signed checkpoint are covered by the chain only (a cut-off tail there would not show)",
            r.after_last_checkpoint
        );
    }
    Ok(())
}

/// `kim audit export --out FILE`: JSON lines, events and checkpoints.
pub fn export(ctx: &mut Ctx<'_>, out: &Path) -> CliResult {
    let f = ctx.take_file(out)?;
    let store = ctx.store;
    let cps = store.checkpoints().map_err(Failure::failed)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let lines = write_export(&mut w, store.audit_events(), &cps)
        .map_err(|e| Failure::failed(anyhow::anyhow!("{e}")))?;
    let f = w
        .into_inner()
        .map_err(|e| Failure::failed(anyhow::anyhow!("{e}")))?;
    f.sync_all().map_err(Failure::failed)?;
    say!(ctx,
        "wrote {lines} lines ({} checkpoints) to {}; check it anywhere with `kim audit verify --file {} --public-key KEY.pub`",
        cps.len(),
        out.display(),
        out.display()
    );
    Ok(())
}

pub struct Filter {
    pub since: Option<String>,
    pub receipt: Option<String>,
    pub school: Option<String>,
    pub json: bool,
}

pub fn list(ctx: &mut Ctx<'_>, f: &Filter) -> CliResult {
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
    let store = ctx.store;
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
        ctx.say_json(&shown)?;
        return Ok(());
    }
    say!(
        ctx,
        "{:>6}  {:<20} {:<15} {:<16} {:<20} {:>5} {:<8} DETAIL",
        "SEQ",
        "TIME (UTC)",
        "KIND",
        "ACTOR",
        "RECEIPT",
        "CHILD",
        "SCHOOL"
    );
    for ev in &shown {
        let kind = serde_json::to_value(ev.kind).ok();
        say!(
            ctx,
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
    say!(ctx, "{} event(s)", shown.len());
    Ok(())
}
