//! Reading an audit event in the exact layout kim stores it — `{"seq":N,
//! "time":…,"kind":…,"actor":…`, the references in their order, then
//! `"detail":{…}` of plain values, then the hashes — without a JSON parser:
//! a report counts millions of events. Anything else (another key order,
//! an escape in a string, a nested or fractional value, whitespace) reads
//! as `None`, and the caller parses the event with serde_json, which gives
//! the same [`Ev`] or names the fault: this is only ever a shortcut, and a
//! differential test and fuzz target hold it to serde_json's reading.

use std::borrow::Cow;

use jiff::fmt::temporal::DateTimeParser;
use serde::de::value::{BorrowedStrDeserializer, Error as ValueError};
use serde::Deserialize;

use super::event::{Detail, Ev, Loose};
use crate::audit::EventKind;

/// A position in the stored bytes (`text`: the same, checked to be UTF-8,
/// when the strings read are wanted as text).
struct Cur<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
}

/// Where the first `"`, `\\` or control character is in `b`: eight bytes
/// at a time (strings here are a few dozen bytes; a call to memchr costs
/// more). In each word only the lowest flagged byte is exact, which is the
/// one taken.
fn str_end(b: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero_at = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let mut words = b.chunks_exact(8);
    let mut at = 0;
    for w in words.by_ref() {
        let w = u64::from_le_bytes(w.try_into().expect("eight bytes"));
        let flagged = (w.wrapping_sub(LO * 0x20) & !w & HI)
            | zero_at(w ^ (LO * u64::from(b'"')))
            | zero_at(w ^ (LO * u64::from(b'\\')));
        if flagged != 0 {
            return Some(at + (flagged.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| at + p)
}

impl<'a> Cur<'a> {
    fn new(b: &'a [u8]) -> Self {
        Self { b, text: "", i: 0 }
    }

    /// A cursor over `text` (checked once: a check per string costs more).
    fn text(text: &'a str) -> Self {
        Self {
            b: text.as_bytes(),
            text,
            i: 0,
        }
    }

    /// Steps over `s` if the bytes go on with it. (A loop: these are a few
    /// bytes, where a call to `memcmp` costs more than the comparing.)
    fn lit(&mut self, s: &[u8]) -> bool {
        let rest = &self.b[self.i..];
        if rest.len() < s.len() || rest.iter().zip(s).any(|(a, b)| a != b) {
            return false;
        }
        self.i += s.len();
        true
    }

    /// A string without escapes or control characters, quotes and all: its
    /// bytes between the quotes (not checked to be UTF-8).
    fn str_range(&mut self) -> Option<std::ops::Range<usize>> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i + 1;
        let end = start + str_end(&self.b[start..])?;
        if self.b[end] != b'"' {
            return None;
        }
        self.i = end + 1;
        Some(start..end)
    }

    fn str_bytes(&mut self) -> Option<&'a [u8]> {
        let r = self.str_range()?;
        Some(&self.b[r])
    }

    /// A string as text (a cursor made by [`Cur::text`] only).
    fn str(&mut self) -> Option<&'a str> {
        let r = self.str_range()?;
        self.text.get(r)
    }

    /// A JSON integer that is a `u64` (no sign, fraction, exponent or
    /// leading zero).
    fn uint(&mut self) -> Option<u64> {
        let rest = &self.b[self.i..];
        let end = rest
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let digits = &rest[..end];
        if end == 0 || (end > 1 && digits[0] == b'0') {
            return None;
        }
        if matches!(rest.get(end), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let mut n: u64 = 0;
        for d in digits {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        self.i += end;
        Some(n)
    }

    /// A detail value: a plain string, a `u64`, `true`, `false` or `null`.
    fn scalar(&mut self) -> Option<Val> {
        match self.b.get(self.i)? {
            b'"' => {
                let r = self.str_range()?;
                // The bytes were checked as UTF-8 as a whole; a string
                // ends at a quote, so at a character's end.
                Some(Val::Str(span(r)?))
            }
            b't' => self.lit(b"true").then_some(Val::Bool(true)),
            b'f' => self.lit(b"false").then_some(Val::Bool(false)),
            b'n' => self.lit(b"null").then_some(Val::Other),
            _ => self.uint().map(Val::U64),
        }
    }

    /// Steps over `{"seq":N` and `,"time":"…"` (the stored layout's first
    /// members).
    /// The time's bytes.
    fn seq_and_time(&mut self) -> Option<&'a [u8]> {
        if !(self.lit(b"{\"seq\":") && self.uint().is_some() && self.lit(b",\"time\":")) {
            return None;
        }
        self.str_bytes()
    }

    fn at_end(&self) -> bool {
        self.i == self.b.len()
    }

    fn span(&mut self) -> Option<Span> {
        self.str_range().and_then(span)
    }

    /// The string member `key` if it comes next (`Some(None)`: it does not).
    fn opt_span(&mut self, key: &[u8]) -> Option<Option<Span>> {
        if self.lit(key) {
            return self.span().map(Some);
        }
        Some(None)
    }
}

pub(super) fn kind_of(s: &str) -> Option<EventKind> {
    EventKind::deserialize(BorrowedStrDeserializer::<ValueError>::new(s)).ok()
}

/// Where a string is in the text read (bytes `.0...1`).
type Span = (u32, u32);

/// A detail value as read: a string as where it is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Val {
    #[default]
    Absent,
    Str(Span),
    U64(u64),
    Bool(bool),
    Other,
}

impl Val {
    fn loose(self, text: &str) -> Option<Loose<'_>> {
        Some(match self {
            Self::Absent => Loose::Absent,
            Self::Str((a, b)) => Loose::Str(Cow::Borrowed(text.get(a as usize..b as usize)?)),
            Self::U64(n) => Loose::U64(n),
            Self::Bool(b) => Loose::Bool(b),
            Self::Other => Loose::Other,
        })
    }
}

/// An event in kim's layout as read ([`spans`]): its time and kind, and
/// where its strings are, so a reader can read events on one thread and
/// count them on another ([`Spans::ev`] with the same text).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spans {
    time: jiff::Timestamp,
    kind: EventKind,
    actor: Span,
    receipt: Option<Span>,
    child: Option<u32>,
    school_urn: Option<Span>,
    alert_id: Option<Span>,
    /// children, reason, decision, kind, deadline_met, result.
    detail: [Val; 6],
}

/// Reads `text`, a stored event without its hashes
/// ([`crate::audit::raw::without_hashes`]), if it has kim's layout.
pub fn spans(text: &str) -> Option<Spans> {
    let mut c = Cur::text(text);
    let time = DateTimeParser::new()
        .parse_timestamp(c.seq_and_time()?)
        .ok()?;
    let kind = kind_of(c.lit(b",\"kind\":").then(|| c.str())??)?;
    let actor = c.lit(b",\"actor\":").then(|| c.span())??;
    let receipt = c.opt_span(b",\"receipt\":")?;
    let child = if c.lit(b",\"child\":") {
        Some(u32::try_from(c.uint()?).ok()?)
    } else {
        None
    };
    let school_urn = c.opt_span(b",\"school_urn\":")?;
    let alert_id = c.opt_span(b",\"alert_id\":")?;
    let detail = if c.lit(b",\"detail\":{") {
        detail(&mut c)?
    } else {
        [Val::Absent; 6]
    };
    if !c.at_end() {
        return None;
    }
    Some(Spans {
        time,
        kind,
        actor,
        receipt,
        child,
        school_urn,
        alert_id,
        detail,
    })
}

impl Spans {
    /// The event read from `text`, the text [`spans`] read it from.
    pub fn ev<'a>(&self, text: &'a str) -> Option<Ev<'a>> {
        let s = |(a, b): Span| text.get(a as usize..b as usize);
        let opt = |o: Option<Span>| match o {
            Some(sp) => s(sp).map(|x| Some(Cow::Borrowed(x))),
            None => Some(None),
        };
        let [children, reason, decision, kind, deadline_met, result] = self.detail;
        Some(Ev {
            time: self.time,
            kind: self.kind,
            actor: Cow::Borrowed(s(self.actor)?),
            receipt: opt(self.receipt)?,
            child: self.child,
            school_urn: opt(self.school_urn)?,
            alert_id: opt(self.alert_id)?,
            detail: Detail {
                children: children.loose(text)?,
                reason: reason.loose(text)?,
                decision: decision.loose(text)?,
                kind: kind.loose(text)?,
                deadline_met: deadline_met.loose(text)?,
                result: result.loose(text)?,
            },
        })
    }
}

/// Reads `head`, a stored event without its hashes
/// ([`crate::audit::raw::without_hashes`]), if it has kim's layout.
pub fn parse(head: &[u8]) -> Option<Ev<'_>> {
    let text = simdutf8::basic::from_utf8(head).ok()?;
    spans(text)?.ev(text)
}

/// The members of `detail` after its `{`, through its `}`. A key the tally
/// reads given twice is refused by serde_json: not read here either.
fn detail(c: &mut Cur<'_>) -> Option<[Val; 6]> {
    let mut d = [Val::Absent; 6];
    if c.lit(b"}") {
        return Some(d);
    }
    let mut seen = 0u8;
    loop {
        let key = c.str()?.as_bytes();
        if !c.lit(b":") {
            return None;
        }
        let value = c.scalar()?;
        let slot = match key {
            b"children" => Some(0),
            b"reason" => Some(1),
            b"decision" => Some(2),
            b"kind" => Some(3),
            b"deadline_met" => Some(4),
            b"result" => Some(5),
            _ => None,
        };
        if let Some(bit) = slot {
            if seen & (1 << bit) != 0 {
                return None;
            }
            seen |= 1 << bit;
            d[bit] = value;
        }
        if c.lit(b",") {
            continue;
        }
        return c.lit(b"}").then_some(d);
    }
}

/// What a reader can tell of a stored event without parsing it: its kind
/// as written (`alert_queued`, …) and its receipt (`None`: it has none, or
/// the walk could not tell; parse it then).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Peek<'a> {
    pub kind: Option<&'a [u8]>,
    pub receipt: Option<&'a [u8]>,
}

/// Peeks at the stored event `bytes` (one walk over its first members).
pub fn peek(bytes: &[u8]) -> Peek<'_> {
    let mut p = Peek::default();
    let mut c = Cur::new(bytes);
    p.kind = kind_bytes(&mut c);
    if p.kind.is_some()
        && c.lit(b",\"actor\":")
        && c.str_range().is_some()
        && c.lit(b",\"receipt\":")
    {
        p.receipt = c.str_bytes();
    }
    p
}

/// The kind as written, after the seq and time.
fn kind_bytes<'a>(c: &mut Cur<'a>) -> Option<&'a [u8]> {
    if !(c.seq_and_time().is_some() && c.lit(b",\"kind\":")) {
        return None;
    }
    c.str_bytes()
}

/// The kind of the stored event `bytes` as written, if a walk over its
/// first members can tell.
pub fn peek_kind(bytes: &[u8]) -> Option<&[u8]> {
    kind_bytes(&mut Cur::new(bytes))
}

fn span(r: std::ops::Range<usize>) -> Option<Span> {
    Some((u32::try_from(r.start).ok()?, u32::try_from(r.end).ok()?))
}

/// Whether a `delivery_attempt` was accepted by the relay, as far as the
/// bytes tell (`false`: parse it).
pub fn accepted_attempt(bytes: &[u8]) -> bool {
    static ACCEPTED: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"result\":\"accepted\""));
    ACCEPTED.find(bytes).is_some()
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
