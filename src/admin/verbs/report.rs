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
use crate::audit::raw::Link;
use crate::audit::Head;
use crate::report::pass::PassError;
use crate::report::scan::Scan;
use crate::report::{self, Period, Verified};
use crate::store::audit_archive::RawEvent;
use crate::store::{Store, StoreError};

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
    let plan = Plan::read(ctx.store, ctx.cfg, a)?;
    let events = ctx.store.audit_cursor(plan.first);
    let figures = plan.count(events)?;
    write(&mut ctx.out, &mut ctx.file, a, figures)
}

/// Events in sled only (past the archive's end) that a report with the
/// daemon stopped copies before closing sled; with more (a store not
/// archived yet) it reads through sled instead.
const MAX_LOOSE: usize = 65_536;

/// `kim report` with the daemon stopped: [`main`], but sled is closed
/// (on a thread of its own: its close waits for its writes) once what the
/// report needs of it is read, and the audit is counted from the archive
/// files meanwhile, so sled's memory is given back while the tally grows.
/// The store is closed when this returns. The answer's text, and how it
/// ended.
pub fn offline(
    store: Store,
    cfg: &crate::config::Config,
    mut file: Option<std::fs::File>,
    a: &Args<'_>,
) -> (String, CliResult) {
    let mut out = String::new();
    let counted = count_closing(store, cfg, a);
    let res = counted.and_then(|figures| write(&mut out, &mut file, a, figures));
    (out, res)
}

fn count_closing(
    store: Store,
    cfg: &crate::config::Config,
    a: &Args<'_>,
) -> Result<report::Figures, Failure> {
    let plan = Plan::read(&store, cfg, a)?;
    match store
        .audit_detached(plan.first, MAX_LOOSE)
        .map_err(Failure::failed)?
    {
        Some(events) => {
            let closing = std::thread::spawn(move || drop(store));
            let figures = plan.count(events);
            let _ = closing.join();
            figures
        }
        None => {
            let events = store.audit_cursor(plan.first);
            plan.count(events)
        }
    }
}

/// The figures printed as asked, and the page written into the file the
/// CLI created (never an existing one).
fn write(
    out: &mut String,
    file: &mut Option<std::fs::File>,
    a: &Args<'_>,
    figures: report::Figures,
) -> CliResult {
    use std::fmt::Write as _;
    if let Some(path) = a.html {
        let mut file = file
            .take()
            .ok_or_else(|| crate::admin::ctx::no_file(path))?;
        let page = report::html::page(&figures);
        std::io::Write::write_all(&mut file, page.as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|e| Failure::failed(anyhow::anyhow!("writing {}: {e}", path.display())))?;
        if a.format == Format::Text {
            let _ = writeln!(out, "{}", figures.headline.sentence());
            let _ = writeln!(out, "report page written to {}", path.display());
            return Ok(());
        }
    }
    match a.format {
        Format::Json => {
            let text = serde_json::to_string_pretty(&figures).map_err(anyhow::Error::from)?;
            let _ = writeln!(out, "{text}");
        }
        Format::Csv => {
            let text = report::render::csv(&figures).map_err(Failure::failed)?;
            out.push_str(&text);
        }
        Format::Text => out.push_str(&report::render::text(&figures)),
    }
    Ok(())
}

fn refuse(why: String) -> Failure {
    Failure::failed(anyhow::anyhow!(
        "no report: the audit chain is broken: {why}; run `kim audit verify` and restore the store from a backup"
    ))
}

/// What a report reads of the store before it counts: the period, the
/// recorded head (read first; inside the daemon events may be added
/// meanwhile, and every append moves the head in the same transaction),
/// the period's first event and the link before it, and the schools'
/// names.
struct Plan {
    period: Period,
    force: Option<String>,
    /// Whether `force` is one of the config's.
    force_known: bool,
    calendar: crate::calendar::SchoolCalendar,
    stored: Head,
    first: u64,
    /// The link before `first` (`None`: the period has no event).
    start: Option<Link>,
    names: HashMap<String, String>,
}

impl Plan {
    fn read(store: &Store, cfg: &crate::config::Config, a: &Args<'_>) -> Result<Self, Failure> {
        let period =
            Period::from_flags(a.from, a.to, jiff::Timestamp::now()).map_err(Failure::usage)?;
        let stored = store.audit_head().map_err(Failure::failed)?;
        let first = store
            .audit_first_at(period.start)
            .map_err(Failure::failed)?;
        let start = if first <= stored.seq {
            Some(start_of(store, first)?)
        } else {
            None
        };
        let names = store
            .schools()
            .map_err(Failure::failed)?
            .into_iter()
            .map(|s| (s.urn, s.name))
            .collect();
        Ok(Self {
            force_known: a
                .force
                .is_some_and(|f| cfg.forces.iter().any(|x| x.id == f)),
            force: a.force.map(str::to_owned),
            calendar: cfg.delivery.calendar(),
            period,
            stored,
            first,
            start,
            names,
        })
    }

    /// Streams `events` (the audit from the period's first event) to the
    /// recorded head, checking each link from the stored bytes and counting
    /// it ([`report::pass`]: on every core, in chain order). Nothing is
    /// held but the tally's per-receipt and per-child state.
    fn count<I>(self, events: I) -> Result<report::Figures, Failure>
    where
        I: Iterator<Item = Result<(u64, RawEvent), StoreError>> + Send,
    {
        let tally =
            report::Tally::new(&self.period, self.force.as_deref()).with_calendar(self.calendar);
        let mut scan = Scan::new(tally);
        let (head, first) = match self.start {
            None => (self.stored.clone(), self.stored.seq + 1),
            Some(start) => {
                let (link, first) = report::pass::run(events, start, self.stored.seq, &mut scan)
                    .map_err(|e| match e {
                        PassError::Chain(e) => refuse(e.to_string()),
                        PassError::Store(e) => Failure::failed(e),
                        PassError::Unreadable(e) => Failure::failed(e),
                    })?;
                (link.head(), first)
            }
        };
        if head != self.stored {
            return Err(refuse(format!(
                "the recorded head is event {} but the chain ends at event {} (events removed from the tail?)",
                self.stored.seq, head.seq
            )));
        }
        let mut figures = scan.finish(&self.names);
        if let Some(f) = &self.force {
            if figures.received.notifications == 0 && !self.force_known {
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
        Ok(figures)
    }
}

/// The link before event `seq`: the genesis, or event `seq - 1`'s hash.
fn start_of(store: &Store, seq: u64) -> Result<Link, Failure> {
    let head = if seq <= 1 {
        Some(Head::default())
    } else {
        store
            .audit_hash_at(seq - 1)
            .map_err(Failure::failed)?
            .map(|hash| Head { seq: seq - 1, hash })
    };
    match head {
        Some(h) => Link::of(&h).ok_or_else(|| {
            refuse(format!(
                "audit event {}: its hash is not 64 hex digits",
                seq - 1
            ))
        }),
        None => Err(refuse(format!(
            "audit event {}: missing (the event before the period)",
            seq - 1
        ))),
    }
}
