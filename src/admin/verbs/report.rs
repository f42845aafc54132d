//! `kim report`: what kim did over a period, for the partnership (issue
//! 15). Verifies the audit chain first (and refuses, naming the first bad
//! event, if it does not), then computes the figures from the audit events
//! and the school directory's URNs and names only ([`crate::report`]) and
//! prints them as text, JSON or CSV, and with `--html` writes the page into
//! the file the CLI created (never an existing one). Never opens a sealed
//! payload.

use std::collections::HashMap;

use crate::admin::ctx::Ctx;
use crate::admin::outcome::{CliResult, Failure};
use crate::audit::raw::check_link;
use crate::audit::Head;
use crate::report::scan::Scan;
use crate::report::{self, Period, Verified};
use crate::store::audit_archive::RawEvent;
use crate::store::Store;

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
    /// `--html FILE`: the CLI created it new and sent it with the request.
    pub html: Option<&'a std::path::Path>,
}

pub fn main(ctx: &mut Ctx<'_>, a: &Args<'_>) -> CliResult {
    let period =
        Period::from_flags(a.from, a.to, jiff::Timestamp::now()).map_err(Failure::usage)?;
    let store = ctx.store;
    let calendar = ctx.cfg.delivery.calendar();
    let (mut figures, head, first) = stream(store, &period, a.force, calendar)?;
    if let Some(f) = a.force {
        if figures.received.notifications == 0 && !ctx.cfg.forces.iter().any(|x| x.id == f) {
            return Err(Failure::usage(anyhow::anyhow!(
                "--force {f:?}: no such force in the config, and none in the period's audit"
            )));
        }
    }
    figures.audit = Verified {
        events: head.seq,
        head_hash: head.hash,
        from_event: first,
    };
    if let Some(path) = a.html {
        let mut file = ctx.take_file(path)?;
        let page = report::html::page(&figures);
        std::io::Write::write_all(&mut file, page.as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|e| Failure::failed(anyhow::anyhow!("writing {}: {e}", path.display())))?;
        if a.format == Format::Text {
            say!(ctx, "{}", figures.headline.sentence());
            say!(ctx, "report page written to {}", path.display());
            return Ok(());
        }
    }
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

fn refuse(why: String) -> Failure {
    Failure::failed(anyhow::anyhow!(
        "no report: the audit chain is broken: {why}; run `kim audit verify` and restore the store from a backup"
    ))
}

/// Streams the audit from the period's first event to the head read
/// first (inside the daemon events may be added meanwhile; every append
/// moves the head in the same transaction), checking each link from the
/// stored bytes and counting it ([`Scan`] parses only the events the
/// figures need): the figures, the verified head, and the first event
/// checked. Nothing is held but the tally's per-receipt and per-child state.
fn stream(
    store: &Store,
    period: &Period,
    force: Option<&str>,
    calendar: crate::calendar::SchoolCalendar,
) -> Result<(report::Figures, Head, u64), Failure> {
    let stored = store.audit_head().map_err(Failure::failed)?;
    let mut scan = Scan::new(report::Tally::new(period, force).with_calendar(calendar));
    // Two threads, about even: one reads sled and checks each link (the
    // chain is one sequence), the other counts what it checked.
    let checked = std::thread::scope(|s| -> Result<Checked, Failure> {
        let (tx, rx) = std::sync::mpsc::sync_channel(BATCHES);
        let reader = s.spawn(move || read_and_check(store, period.start, stored.seq, &tx));
        for batch in rx {
            for (seq, bytes) in batch {
                scan.push(seq, &bytes).map_err(Failure::failed)?;
            }
        }
        reader.join().unwrap_or_else(|_| {
            Err(Failure::failed(anyhow::anyhow!(
                "the audit reader stopped unexpectedly"
            )))
        })
    })?;
    let (head, first) = match checked {
        Some(c) => c,
        None => (stored.clone(), stored.seq + 1),
    };
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
    Ok((scan.finish(&names), head, first))
}

/// Events per batch handed on, and batches waiting at most.
const BATCH: usize = 1024;
const BATCHES: usize = 4;

/// The head of the events checked and the first of them (`None`: none).
type Checked = Option<(Head, u64)>;

/// Reads the stored events from the first at or after `since` up to
/// `last`, checks each as the next link of the chain, and sends them on in
/// batches; stops at the first fault (returned) or when the counter hangs
/// up (it could not read an event).
fn read_and_check(
    store: &Store,
    since: jiff::Timestamp,
    last: u64,
    tx: &std::sync::mpsc::SyncSender<Vec<(u64, RawEvent)>>,
) -> Result<Checked, Failure> {
    let mut head: Option<Head> = None;
    let mut first = 0;
    let mut thin = crate::report::scan::Thinner::default();
    let mut batch = Vec::with_capacity(BATCH);
    for item in store.audit_raw_from(since).map_err(Failure::failed)? {
        let (seq, bytes) = item.map_err(Failure::failed)?;
        if seq > last {
            break;
        }
        let prev = match head.take() {
            Some(h) => h,
            None => {
                first = seq;
                start_of(store, seq)?
            }
        };
        head = Some(check_link(&prev, &bytes).map_err(|e| refuse(e.to_string()))?);
        thin.next(seq, bytes, &mut batch);
        if batch.len() >= BATCH
            && tx
                .send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                .is_err()
        {
            return Ok(None);
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
    Ok(head.map(|h| (h, first)))
}

/// The link before event `seq`: the genesis, or event `seq - 1`'s hash.
fn start_of(store: &Store, seq: u64) -> Result<Head, Failure> {
    if seq <= 1 {
        return Ok(Head::default());
    }
    match store.audit_hash_at(seq - 1).map_err(Failure::failed)? {
        Some(hash) => Ok(Head { seq: seq - 1, hash }),
        None => Err(refuse(format!(
            "audit event {}: missing (the event before the period)",
            seq - 1
        ))),
    }
}
