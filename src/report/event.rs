//! What the tally reads of one audit event, borrowed from its stored
//! bytes (no map of details, no copies of identifiers), and the peeks that
//! let a streaming report skip an event without parsing it: its kind and
//! receipt, read from the stored JSON's fixed layout. A peek that finds
//! nothing means "parse it": skipping is only ever an optimisation.

use std::borrow::Cow;

use jiff::Timestamp;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;

use crate::audit::{AuditEvent, EventKind};

/// A detail value of whatever JSON type: the tally reads strings, numbers
/// and booleans, and a value of another type than expected reads as absent.
#[derive(Debug, Default, Clone, PartialEq)]
pub enum Loose<'a> {
    #[default]
    Absent,
    Str(Cow<'a, str>),
    U64(u64),
    Bool(bool),
    Other,
}

impl<'a> Loose<'a> {
    pub fn str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn u64(&self) -> Option<u64> {
        match self {
            Self::U64(n) => Some(*n),
            _ => None,
        }
    }
    pub fn bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }
    fn from_value(v: Option<&'a serde_json::Value>) -> Self {
        match v {
            None => Self::Absent,
            Some(serde_json::Value::String(s)) => Self::Str(Cow::Borrowed(s)),
            Some(serde_json::Value::Bool(b)) => Self::Bool(*b),
            Some(v) => v.as_u64().map_or(Self::Other, Self::U64),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Loose<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Loose::U64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(u64::try_from(v).map_or(Loose::Other, Loose::U64))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Loose::Bool(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// The details the tally reads; the others are skipped unread.
#[derive(Debug, Default, Deserialize)]
pub struct Detail<'a> {
    #[serde(default, borrow)]
    pub children: Loose<'a>,
    #[serde(default, borrow)]
    pub reason: Loose<'a>,
    #[serde(default, borrow)]
    pub decision: Loose<'a>,
    #[serde(default, borrow)]
    pub kind: Loose<'a>,
    #[serde(default, borrow)]
    pub deadline_met: Loose<'a>,
    #[serde(default, borrow)]
    pub result: Loose<'a>,
}

/// One audit event as the tally reads it.
#[derive(Debug, Deserialize)]
pub struct Ev<'a> {
    pub time: Timestamp,
    pub kind: EventKind,
    #[serde(borrow)]
    pub actor: Cow<'a, str>,
    #[serde(default, borrow)]
    pub receipt: Option<Cow<'a, str>>,
    #[serde(default)]
    pub child: Option<u32>,
    #[serde(default, borrow)]
    pub school_urn: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub alert_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub detail: Detail<'a>,
}

impl<'a> Ev<'a> {
    /// The same view of a parsed event.
    pub fn of(ev: &'a AuditEvent) -> Self {
        let d = |k: &str| Loose::from_value(ev.detail.get(k));
        let b = |s: &'a Option<String>| s.as_deref().map(Cow::Borrowed);
        Self {
            time: ev.time,
            kind: ev.kind,
            actor: Cow::Borrowed(&ev.actor),
            receipt: b(&ev.refs.receipt),
            child: ev.refs.child,
            school_urn: b(&ev.refs.school_urn),
            alert_id: b(&ev.refs.alert_id),
            detail: Detail {
                children: d("children"),
                reason: d("reason"),
                decision: d("decision"),
                kind: d("kind"),
                deadline_met: d("deadline_met"),
                result: d("result"),
            },
        }
    }
}

/// The string value of the first top-level `"key":"…"` member (kim writes
/// `seq`, `time`, `kind`, `actor`, then the references, before `detail`),
/// if it is an unescaped string.
fn peek_str<'b>(bytes: &'b [u8], key: &[u8]) -> Option<&'b [u8]> {
    let head = &bytes[..bytes.len().min(256)];
    let at = memchr::memmem::find(head, key)? + key.len();
    let rest = &head[at..];
    let end = rest.iter().position(|b| *b == b'"' || *b == b'\\')?;
    (rest[end] == b'"').then_some(&rest[..end])
}

/// The event's kind as written (`alert_queued`, …), read without parsing it.
pub fn peek_kind(bytes: &[u8]) -> Option<&[u8]> {
    peek_str(bytes, b",\"kind\":\"")
}

/// The event's receipt, read without parsing it (`None`: it has none, or
/// the peek could not tell; parse it then).
pub fn peek_receipt(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(peek_str(bytes, b",\"receipt\":\"")?).ok()
}

/// Whether a `delivery_attempt` was accepted by the relay, as far as the
/// bytes tell (`false`: parse it).
pub fn accepted_attempt(bytes: &[u8]) -> bool {
    const ACCEPTED: &[u8] = b"\"result\":\"accepted\"";
    memchr::memmem::find(bytes, ACCEPTED).is_some()
}
