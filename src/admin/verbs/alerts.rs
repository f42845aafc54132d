//! `kim alerts list|show|retry|flush`: the delivery queue for an admin
//! (issue 18), like Postfix's `postqueue -p`, `postqueue -f` and
//! `postsuper -r`. Listing reads the outbox's non-personal records through
//! its time index (never a notification's sealed payload); `show` adds the
//! alert's audit history and the recipient's address (an `admin_access`
//! event); `retry` re-queues failed alerts addressed from the current school
//! directory (`requeued`); `flush` makes every `retry_wait` alert due now
//! (`flushed`). What each does to an alert is the outbox state machine's
//! (`crate::deliver::transition`).

use std::collections::HashMap;

use serde::Serialize;

use crate::admin::ctx::Ctx;
use crate::admin::outcome::{CliResult, Failure};
use crate::audit::{AuditEvent, EventKind};
use crate::config::HumanDuration;
use crate::deliver::transition::{transition, Outcome};
use crate::deliver::transport::scrub_addresses;
use crate::store::outbox::{AlertChange, AlertKind, AlertRecord, AlertState};
use crate::store::Store;
use crate::store::{ChildState, IndexEntry};

/// The rows `alerts list` shows when `--limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;

/// What `alerts list` selects.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub state: Option<String>,
    pub since: Option<String>,
    pub school: Option<String>,
    pub receipt: Option<String>,
    pub late: bool,
    /// At most this many rows (0: all).
    pub limit: Option<usize>,
    pub json: bool,
}

/// One row of `alerts list`: identifiers, states, times and SMTP codes.
#[derive(Debug, Serialize)]
pub struct Row {
    pub alert_id: String,
    /// `dsl`, `deputy`, `withdrawal`, or an admin notice.
    pub kind: AlertKind,
    pub receipt: String,
    pub child: u32,
    pub school_urn: String,
    pub school_name: Option<String>,
    pub state: AlertState,
    pub attempts: u32,
    pub last_code: Option<u16>,
    /// The last reply, addresses replaced by `[address]`.
    pub last_reply: Option<String>,
    pub queued_at: jiff::Timestamp,
    /// When the next attempt is due (waiting alerts only).
    pub next_attempt_at: Option<jiff::Timestamp>,
    pub deadline: Option<jiff::Timestamp>,
    pub deadline_met: Option<bool>,
    pub delivered_at: Option<jiff::Timestamp>,
}

fn since_time(
    since: Option<&str>,
    now: jiff::Timestamp,
) -> Result<Option<jiff::Timestamp>, Failure> {
    let Some(s) = since else { return Ok(None) };
    let d = HumanDuration::parse(s).map_err(|e| Failure::usage(anyhow::anyhow!("--since: {e}")))?;
    let d = jiff::SignedDuration::try_from(d.0)
        .map_err(|e| Failure::usage(anyhow::anyhow!("--since: {e}")))?;
    Ok(Some(now.checked_sub(d).unwrap_or(jiff::Timestamp::MIN)))
}

fn parse_state(s: &str) -> Result<AlertState, Failure> {
    serde_json::from_value(serde_json::Value::from(s)).map_err(|_| {
        Failure::usage(anyhow::anyhow!(
            "--state: `{s}` is not one of queued, sending, retry_wait, delivered, failed, withdrawn"
        ))
    })
}

/// Whether `a` is late at `now`: a DSL alert delivered after its deadline,
/// or still waiting (or failed) past it.
pub fn is_late(a: &IndexEntry, now: jiff::Timestamp) -> bool {
    if a.kind != AlertKind::Dsl {
        return false;
    }
    match (a.deadline_met, a.deadline) {
        (Some(false), _) => a.state != AlertState::Withdrawn,
        (Some(true), _) => false,
        (None, Some(d)) => {
            (a.state.is_active() || a.state == AlertState::Failed) && now > d
                || a.delivered_at.is_some_and(|t| t > d)
        }
        (None, None) => false,
    }
}

/// School names by URN, each looked up once.
struct Names<'s> {
    store: &'s Store,
    cache: HashMap<String, Option<String>>,
}

impl Names<'_> {
    fn get(&mut self, urn: &str) -> Result<Option<String>, Failure> {
        if let Some(n) = self.cache.get(urn) {
            return Ok(n.clone());
        }
        let n = self
            .store
            .school(urn)
            .map_err(Failure::failed)?
            .map(|s| s.name);
        self.cache.insert(urn.to_owned(), n.clone());
        Ok(n)
    }
}

fn row(a: AlertRecord, names: &mut Names<'_>) -> Result<Row, Failure> {
    let school_name = if a.urn.is_empty() {
        None
    } else {
        names.get(&a.urn)?
    };
    Ok(Row {
        school_name,
        next_attempt_at: a.state.is_active().then_some(a.next_attempt_at),
        last_reply: a.last_reply.as_deref().map(scrub_addresses),
        alert_id: a.id,
        kind: a.kind,
        receipt: a.receipt,
        child: a.child,
        school_urn: a.urn,
        state: a.state,
        attempts: a.attempts,
        last_code: a.last_code,
        queued_at: a.queued_at,
        deadline: a.deadline,
        deadline_met: a.deadline_met,
        delivered_at: a.delivered_at,
    })
}

/// The rows `f` selects at `now`, newest first, and whether more were left
/// off by the limit.
pub fn select(
    store: &Store,
    f: &ListFilter,
    now: jiff::Timestamp,
) -> Result<(Vec<Row>, bool), Failure> {
    let state = f.state.as_deref().map(parse_state).transpose()?;
    let since = since_time(f.since.as_deref(), now)?;
    let receipt = f.receipt.as_ref().map(|r| r.to_ascii_uppercase());
    let limit = match f.limit {
        Some(0) => usize::MAX,
        Some(n) => n,
        None => DEFAULT_LIMIT,
    };
    let mut names = Names {
        store,
        cache: HashMap::new(),
    };
    let mut rows = Vec::new();
    let mut more = false;
    // Filtered on the index; only the rows shown are opened (and checked
    // again, as a running daemon may have changed them meanwhile).
    let wanted = |e: &IndexEntry| {
        state.is_none_or(|s| e.state == s)
            && f.school.as_ref().is_none_or(|u| &e.urn == u)
            && receipt.as_ref().is_none_or(|r| {
                e.id.strip_prefix(r.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
            })
            && (!f.late || is_late(e, now))
    };
    for a in store.alerts_newest_first(since, wanted) {
        let a = a.map_err(Failure::failed)?;
        if !wanted(&IndexEntry::of(&a)) {
            continue;
        }
        if rows.len() == limit {
            more = true;
            break;
        }
        rows.push(row(a, &mut names)?);
    }
    Ok((rows, more))
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn time(t: Option<jiff::Timestamp>) -> String {
    t.map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".into())
}

fn kind_str(k: AlertKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

pub fn list(ctx: &mut Ctx<'_>, f: &ListFilter) -> CliResult {
    list_at(ctx, f, jiff::Timestamp::now())
}

/// `list` as of `now` (a test's clock).
pub fn list_at(ctx: &mut Ctx<'_>, f: &ListFilter, now: jiff::Timestamp) -> CliResult {
    let (rows, more) = select(ctx.store, f, now)?;
    if f.json {
        return ctx.say_json(&serde_json::json!({ "alerts": rows, "more": more }));
    }
    say!(
        ctx,
        "{:<28} {:<17} {:<8} {:<24} {:<10} {:>3} {:<5} {:<16} {:<16} {:<4} LAST REPLY",
        "ALERT",
        "KIND",
        "SCHOOL",
        "SCHOOL NAME",
        "STATE",
        "TRY",
        "CODE",
        "NEXT ATTEMPT",
        "DEADLINE",
        "MET"
    );
    for r in &rows {
        let name: String = r
            .school_name
            .as_deref()
            .unwrap_or("-")
            .chars()
            .take(24)
            .collect();
        say!(
            ctx,
            "{:<28} {:<17} {:<8} {:<24} {:<10} {:>3} {:<5} {:<16} {:<16} {:<4} {}",
            r.alert_id,
            kind_str(r.kind),
            if r.school_urn.is_empty() {
                "-"
            } else {
                &r.school_urn
            },
            name,
            r.state.as_str(),
            r.attempts,
            opt(r.last_code),
            time(r.next_attempt_at),
            time(r.deadline),
            r.deadline_met
                .map(|m| if m { "yes" } else { "no" })
                .unwrap_or("-"),
            r.last_reply.as_deref().unwrap_or("")
        );
    }
    if more {
        say!(
            ctx,
            "{} alert(s) shown, newest first; more match (--limit N, or --limit 0 for all)",
            rows.len()
        );
    } else {
        say!(ctx, "{} alert(s)", rows.len());
    }
    Ok(())
}

/// The address a message of `a` goes to now, from the current directory
/// (`None`: the school is gone or has no deputy).
fn recipient(ctx: &Ctx<'_>, a: &AlertRecord) -> Result<Option<String>, Failure> {
    if a.test {
        // Test mode (`crate::deliver`): only ever the test recipient.
        let m = &ctx.cfg.mail;
        return Ok(Some(
            m.test_recipient
                .clone()
                .unwrap_or_else(|| m.admin_email.clone()),
        ));
    }
    Ok(match a.kind {
        AlertKind::Dsl | AlertKind::Withdrawal | AlertKind::Deputy => {
            let s = ctx.store.school(&a.urn).map_err(Failure::failed)?;
            match a.kind {
                AlertKind::Deputy => s.and_then(|s| s.deputy_email),
                _ => s.map(|s| s.dsl_email),
            }
        }
        AlertKind::AdminReview if !ctx.cfg.review.notify.is_empty() => {
            Some(ctx.cfg.review.notify.join(", "))
        }
        _ => Some(ctx.cfg.mail.admin_email.clone()),
    })
}

fn find(store: &Store, id: &str) -> Result<AlertRecord, Failure> {
    store
        .alert(id)
        .map_err(Failure::failed)?
        .ok_or_else(|| Failure::failed(anyhow::anyhow!("no such alert: {id}")))
}

/// Whether `ev` belongs to the history of alert `a`: its own events, those
/// of the messages that follow it, and the police's withdrawal.
fn about(ev: &AuditEvent, a: &AlertRecord) -> bool {
    match ev.refs.alert_id.as_deref() {
        Some(id) => {
            id == a.id
                || id
                    .strip_prefix(a.id.as_str())
                    .is_some_and(|r| r.starts_with('.'))
        }
        None => {
            ev.kind == EventKind::Withdrawn
                && ev.refs.receipt.as_deref() == Some(a.receipt.as_str())
        }
    }
}

pub fn show(ctx: &mut Ctx<'_>, id: &str, json: bool) -> CliResult {
    let store = ctx.store;
    let a = find(store, id)?;
    let to = recipient(ctx, &a)?;
    let mut detail = serde_json::Map::new();
    detail.insert("action".into(), "alerts_show".into());
    let _ = store
        .audit_append(EventKind::AdminAccess, &ctx.actor, a.refs(), detail)
        .map_err(Failure::failed)?;
    store.flush_now().map_err(Failure::failed)?;
    // Events are appended in time order; start a margin before the queueing.
    let from = a.queued_at - jiff::SignedDuration::from_hours(1);
    let mut history = Vec::new();
    for ev in store.audit_events_from(from).map_err(Failure::failed)? {
        let ev = ev.map_err(Failure::failed)?;
        if about(&ev, &a) {
            history.push(ev);
        }
    }
    let same = match (&to, &a.to_hash) {
        (Some(t), Some(h)) => Some(&store.address_hash(t) == h),
        _ => None,
    };
    let mut names = Names {
        store,
        cache: HashMap::new(),
    };
    let r = row(a, &mut names)?;
    if json {
        return ctx.say_json(&serde_json::json!({
            "alert": r,
            "recipient": to,
            "last_attempt_went_to_recipient": same,
            "history": history,
        }));
    }
    say!(
        ctx,
        "alert {} ({}) receipt {} child {} school {} {}",
        r.alert_id,
        kind_str(r.kind),
        r.receipt,
        r.child,
        r.school_urn,
        r.school_name.as_deref().unwrap_or("")
    );
    say!(
        ctx,
        "state {}  attempts {}  deadline {}  met {}  delivered {}",
        r.state.as_str(),
        r.attempts,
        time(r.deadline),
        opt(r.deadline_met),
        time(r.delivered_at)
    );
    say!(
        ctx,
        "recipient (current directory): {}{}",
        to.as_deref().unwrap_or("none"),
        match same {
            Some(false) => " — the last attempt went to another address",
            _ => "",
        }
    );
    say!(ctx, "history:");
    for ev in &history {
        let d = ev
            .detail
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join(" ");
        say!(
            ctx,
            "  {}  {:<16} {:<22} {:<16} {}",
            ev.time.strftime("%Y-%m-%d %H:%M:%S"),
            serde_json::to_value(ev.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            ev.refs.alert_id.as_deref().unwrap_or("-"),
            ev.actor,
            d
        );
    }
    ctx.say_reveal_audited();
    Ok(())
}

/// What `alerts retry` re-queues: named alerts, or every failed one.
#[derive(Debug, Clone, Default)]
pub struct RetryFilter {
    pub ids: Vec<String>,
    pub failed: bool,
    pub school: Option<String>,
    pub since: Option<String>,
}

pub fn retry(ctx: &mut Ctx<'_>, f: &RetryFilter) -> CliResult {
    let store = ctx.store;
    let now = jiff::Timestamp::now();
    let targets: Vec<AlertRecord> = if f.failed {
        if !f.ids.is_empty() {
            return Err(Failure::usage(anyhow::anyhow!(
                "give alert ids or --failed, not both"
            )));
        }
        let since = since_time(f.since.as_deref(), now)?;
        let mut v = Vec::new();
        let wanted = |e: &IndexEntry| {
            e.state == AlertState::Failed && f.school.as_ref().is_none_or(|u| &e.urn == u)
        };
        for a in store.alerts_newest_first(since, wanted) {
            v.push(a.map_err(Failure::failed)?);
        }
        v
    } else if f.ids.is_empty() {
        return Err(Failure::usage(anyhow::anyhow!(
            "name the alerts to retry (ALERT_ID…), or --failed"
        )));
    } else {
        f.ids
            .iter()
            .map(|id| find(store, id))
            .collect::<Result<_, _>>()?
    };
    let mut requeued = 0usize;
    let mut left = Vec::new();
    for a in targets {
        if a.state != AlertState::Failed {
            left.push(format!(
                "{} is {}, not failed: left as it is",
                a.id,
                a.state.as_str()
            ));
            continue;
        }
        let to_hash = recipient(ctx, &a)?.map(|t| store.address_hash(&t));
        let outcome = Outcome::Requeue {
            actor: ctx.actor.to_string(),
            to_hash,
        };
        // Decided under the writer lock: a notification the police
        // withdrew meanwhile is never sent again.
        let mut withdrawn = false;
        let done = store
            .change_alert(&a.id, now, |a, child| {
                if a.kind.to_school()
                    && child
                        .as_ref()
                        .is_some_and(|c| c.state == ChildState::Withdrawn)
                {
                    withdrawn = true;
                    return AlertChange::default();
                }
                transition(a, &outcome, now).into_change(child)
            })
            .map_err(Failure::failed)?;
        if done.is_some() {
            requeued += 1;
            say!(ctx, "{}: queued again", a.id);
        } else if withdrawn {
            left.push(format!(
                "{}: the police withdrew the notification: left failed",
                a.id
            ));
        }
    }
    store.flush_now().map_err(Failure::failed)?;
    for l in &left {
        say!(ctx, "{l}");
    }
    say!(
        ctx,
        "{requeued} alert(s) queued again, addressed from the current school directory"
    );
    if !left.is_empty() && !f.failed {
        return Err(Failure::failed(anyhow::anyhow!(
            "{} alert(s) were not failed and were left as they are",
            left.len()
        )));
    }
    Ok(())
}

pub fn flush(ctx: &mut Ctx<'_>) -> CliResult {
    let store = ctx.store;
    let now = jiff::Timestamp::now();
    let outcome = Outcome::Flush {
        actor: ctx.actor.to_string(),
    };
    let mut n = 0usize;
    for a in store.active_alerts().map_err(Failure::failed)? {
        if a.state != AlertState::RetryWait {
            continue;
        }
        if store
            .change_alert(&a.id, now, |a, child| {
                transition(a, &outcome, now).into_change(child)
            })
            .map_err(Failure::failed)?
            .is_some()
        {
            n += 1;
        }
    }
    store.flush_now().map_err(Failure::failed)?;
    say!(ctx, "{n} waiting alert(s) made due now");
    Ok(())
}

/// How many waiting messages a directory replacing the current one with
/// `schools` sends to another address than their last attempt's.
pub fn redirects(store: &Store, schools: &[crate::import::School]) -> Result<usize, Failure> {
    let by_urn: HashMap<&str, &crate::import::School> =
        schools.iter().map(|s| (s.urn.as_str(), s)).collect();
    let mut n = 0;
    for a in store.active_alerts().map_err(Failure::failed)? {
        let Some(old) = a.to_hash.as_deref().filter(|_| !a.test) else {
            continue;
        };
        let new = by_urn.get(a.urn.as_str()).and_then(|s| match a.kind {
            AlertKind::Deputy => s.deputy_email.as_deref(),
            AlertKind::Dsl | AlertKind::Withdrawal => Some(s.dsl_email.as_str()),
            _ => None,
        });
        if new.is_some_and(|e| store.address_hash(e) != old) {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
#[path = "alerts_tests.rs"]
mod tests;
