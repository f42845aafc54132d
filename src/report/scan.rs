//! A report's pass over the stored audit (issue 15): each event's bytes,
//! already checked as a link of the chain ([`crate::audit::raw`]), are
//! counted by the [`Tally`], parsed only when the tally needs them: an
//! `alert_queued`, a `delivery_attempt` the relay accepted, and an event of
//! a notification outside the cohort are skipped unread.

use std::collections::HashMap;

use super::event::Ev;
use super::layout::{accepted_attempt, Peek, Peeked};
use super::{Figures, Tally};
use crate::audit::EventKind;

/// An event the report cannot read (it checked as a link of the chain:
/// written by a newer kim, or not by kim).
#[derive(Debug, thiserror::Error)]
#[error("audit event {seq}: cannot be read: {why}")]
pub struct Unreadable {
    pub seq: u64,
    pub why: serde_json::Error,
}

/// The tally, fed stored bytes.
pub struct Scan {
    tally: Tally,
    /// The last event skipped unread: its time counts if a `started`
    /// follows (kim was down from then).
    skipped: Vec<u8>,
    has_skipped: bool,
    /// The event being parsed, without its hashes (see `push`).
    scratch: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct Time {
    time: jiff::Timestamp,
}

impl Scan {
    pub fn new(tally: Tally) -> Self {
        Self {
            tally,
            skipped: Vec::new(),
            has_skipped: false,
            scratch: Vec::new(),
        }
    }

    /// Counts the stored event `seq` (the next of the chain), `peeked` as
    /// [`Peeked::of`] its bytes.
    pub fn push(&mut self, seq: u64, bytes: &[u8], peeked: Peeked) -> Result<(), Unreadable> {
        let unreadable = |why| Unreadable { seq, why };
        if self.skips(bytes, peeked.get(bytes)) {
            self.skipped.clear();
            self.skipped.extend_from_slice(bytes);
            self.has_skipped = true;
            return Ok(());
        }
        // The tally reads neither hash: kim's layout is read without them
        // (two fifths of its bytes) and without a JSON parser; another
        // layout is parsed by serde_json, as text checked once (it then
        // skips checking each string).
        let head = crate::audit::raw::without_hashes(bytes);
        let fast = head.and_then(super::layout::parse);
        let ev = match fast {
            Some(ev) => ev,
            None => serde_parse(bytes, head, &mut self.scratch).map_err(unreadable)?,
        };
        if std::mem::take(&mut self.has_skipped) && ev.kind == EventKind::Started {
            let t: Time = serde_json::from_slice(&self.skipped).map_err(unreadable)?;
            self.tally.saw(t.time);
        }
        self.tally.add_ev(&ev);
        Ok(())
    }

    /// Whether the tally would do nothing with the event in `bytes`, as far
    /// as its kind and receipt tell unparsed (if they cannot be read, it is
    /// parsed).
    fn skips(&self, bytes: &[u8], p: Peek<'_>) -> bool {
        let Some(kind) = p.kind else {
            return false;
        };
        match kind {
            b"received" | b"resent" | b"reference_conflict" | b"started" => false,
            _ if never_counted(&p, bytes) => true,
            _ => p
                .receipt
                .and_then(|r| std::str::from_utf8(r).ok())
                .is_some_and(|r| !self.tally.follows(r)),
        }
    }

    /// The figures; `names` maps URNs to school names.
    pub fn finish(self, names: &HashMap<String, String>) -> Figures {
        self.tally.finish(names)
    }
}

/// `bytes` parsed by serde_json: without its hashes if `head` is the part
/// before them (the copy made in `scratch`), else whole. (Cut where kim's
/// layout puts the hashes, an event a link check let through in another
/// layout may not parse: it is read whole then.)
fn serde_parse<'a>(
    bytes: &'a [u8],
    head: Option<&[u8]>,
    scratch: &'a mut Vec<u8>,
) -> Result<Ev<'a>, serde_json::Error> {
    if let Some(head) = head {
        scratch.clear();
        scratch.extend_from_slice(head);
        scratch.push(b'}');
        let parsed = match std::str::from_utf8(scratch) {
            Ok(s) => serde_json::from_str(s),
            Err(_) => serde_json::from_slice(scratch),
        };
        if let Ok(ev) = parsed {
            return Ok(ev);
        }
    }
    serde_json::from_slice(bytes)
}

/// Leaves out the events the tally never reads whatever came before (an
/// `alert_queued`, a `delivery_attempt` the relay accepted: two in five),
/// so a reader need not hand them on — all but such an event right before
/// a `started`, whose time the tally reads (kim was down from then). What
/// it hands on goes with its [`Peeked`].
pub struct Thinner<T> {
    held: Option<(u64, T, Peeked)>,
}

impl<T: AsRef<[u8]>> Default for Thinner<T> {
    fn default() -> Self {
        Self { held: None }
    }
}

impl<T: AsRef<[u8]>> Thinner<T> {
    /// Takes event `seq` (the next of the chain) and pushes onto `out`
    /// what the tally must see of it, in order.
    pub fn next(&mut self, seq: u64, ev: T, out: &mut Vec<(u64, T, Peeked)>) {
        let peeked = Peeked::of(ev.as_ref());
        let p = peeked.get(ev.as_ref());
        if never_counted(&p, ev.as_ref()) {
            self.held = Some((seq, ev, peeked));
            return;
        }
        let started = p.kind == Some(b"started");
        if let Some(h) = self.held.take() {
            if started {
                out.push(h);
            }
        }
        out.push((seq, ev, peeked));
    }
}

fn never_counted(p: &Peek<'_>, bytes: &[u8]) -> bool {
    match p.kind {
        Some(b"alert_queued") => true,
        Some(b"delivery_attempt") => accepted_attempt(bytes),
        _ => false,
    }
}
