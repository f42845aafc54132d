//! A report's pass over the stored audit (issue 15): each event's bytes
//! are read ([`prepare`], on any thread: kim's own layout without a JSON
//! parser) and, once checked as the next link of the chain
//! ([`crate::audit::raw`]), counted in chain order by the [`Tally`]
//! ([`Scan::push`]). An `alert_queued`, a `delivery_attempt` the relay
//! accepted, and an event of a notification outside the cohort are not
//! counted.

use std::collections::HashMap;

use super::event::Ev;
use super::layout::{accepted_attempt, kind_of, peek, peek_kind, Spans};
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

/// What [`prepare`] read of an event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Prepared {
    /// An event the tally never reads whatever came before it (two in five).
    Never,
    /// kim's layout, read.
    Read(Spans),
    /// Another layout: parsed by serde_json when counted.
    Other,
}

/// Reads the stored event `bytes` as far as the tally needs (on a thread
/// of its own: what it gives is counted by [`Scan::push`] with the same
/// bytes).
pub fn prepare(bytes: &[u8]) -> Prepared {
    match peek_kind(bytes) {
        Some(b"alert_queued") => return Prepared::Never,
        Some(b"delivery_attempt") if accepted_attempt(bytes) => return Prepared::Never,
        _ => {}
    }
    crate::audit::raw::without_hashes(bytes)
        .and_then(|h| simdutf8::basic::from_utf8(h).ok())
        .and_then(super::layout::spans)
        .map_or(Prepared::Other, Prepared::Read)
}

/// The tally, fed stored bytes.
pub struct Scan<T> {
    tally: Tally,
    /// The last event not counted: its time counts if a `started`
    /// follows (kim was down from then).
    skipped: Option<T>,
    /// The event being parsed, without its hashes (see `push`).
    scratch: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct Time {
    time: jiff::Timestamp,
}

impl<T: AsRef<[u8]>> Scan<T> {
    pub fn new(tally: Tally) -> Self {
        Self {
            tally,
            skipped: None,
            scratch: Vec::new(),
        }
    }

    /// Counts the stored event `seq` (the next of the chain), `prepared`
    /// as [`prepare`] read its bytes.
    pub fn push(&mut self, seq: u64, event: T, prepared: &Prepared) -> Result<(), Unreadable> {
        let unreadable = |why| Unreadable { seq, why };
        let bytes = event.as_ref();
        let head = crate::audit::raw::without_hashes(bytes);
        let read = match prepared {
            Prepared::Never => None,
            // Checked as UTF-8 again: the bytes crossed a thread (it costs
            // far less than reading them).
            Prepared::Read(s) => head
                .and_then(|h| simdutf8::basic::from_utf8(h).ok())
                .and_then(|text| s.ev(text)),
            Prepared::Other if self.skips_unread(bytes) => None,
            Prepared::Other => Some(
                // The tally reads neither hash: another layout is parsed by
                // serde_json without them if it can be.
                serde_parse(bytes, head, &mut self.scratch).map_err(unreadable)?,
            ),
        };
        let ev = match read {
            Some(ev) if !skips(&self.tally, &ev) => ev,
            _ => {
                self.skipped = Some(event);
                return Ok(());
            }
        };
        if ev.kind == EventKind::Started {
            if let Some(s) = self.skipped.take() {
                let t: Time = serde_json::from_slice(s.as_ref()).map_err(unreadable)?;
                self.tally.saw(t.time);
            }
        }
        self.skipped = None;
        self.tally.add_ev(&ev);
        Ok(())
    }

    /// [`skips`] for an event in another layout, as far as its kind
    /// and receipt tell unparsed (if they cannot be read, it is parsed).
    fn skips_unread(&self, bytes: &[u8]) -> bool {
        let p = peek(bytes);
        let kind = p.kind.and_then(|k| std::str::from_utf8(k).ok());
        let receipt = p.receipt.and_then(|r| std::str::from_utf8(r).ok());
        match (kind.and_then(kind_of), receipt) {
            (Some(k), Some(r)) => !counts_always(k) && !self.tally.follows(r),
            // A kind this kim does not know, of a receipt outside the
            // cohort: nothing the tally reads.
            (None, Some(r)) => kind.is_some() && !self.tally.follows(r),
            _ => false,
        }
    }

    /// The figures; `names` maps URNs to school names.
    pub fn finish(self, names: &HashMap<String, String>) -> Figures {
        self.tally.finish(names)
    }
}

/// Whether the tally would do nothing with `ev` but note its time: an
/// event of a receipt outside the cohort.
fn skips(tally: &Tally, ev: &Ev<'_>) -> bool {
    !counts_always(ev.kind) && ev.receipt.as_deref().is_some_and(|r| !tally.follows(r))
}

/// The kinds counted whatever their receipt.
fn counts_always(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Received | EventKind::Resent | EventKind::ReferenceConflict | EventKind::Started
    )
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
