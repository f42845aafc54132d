//! What the tally reads of one audit event, borrowed from its stored
//! bytes (no map of details, no copies of identifiers), as serde_json
//! reads it ([`super::layout`] reads kim's own layout faster, the same).

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
#[derive(Debug, Default, PartialEq, Deserialize)]
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
#[derive(Debug, PartialEq, Deserialize)]
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
