//! The contract types of `POST /v1/notifications` (`Notification`, `Incident`,
//! `Child`, `Officer` and their enums), their redacting `Debug` and the wire
//! form of timestamps and dates. Only [`super::parse_notification`] makes them
//! from outside input.

use super::*;

/// A validated police notification. `Debug` is redacting.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    pub police_reference: String,
    pub incident: Incident,
    pub children: Vec<Child>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer: Option<Officer>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    #[serde(with = "timestamp_serde")]
    pub occurred_at: Timestamp,
    pub category: Category,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_for_school: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    DomesticAbuse,
}

impl Category {
    pub const ALL: &'static [Category] = &[Category::DomesticAbuse];

    /// The wire (serde) name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Category::DomesticAbuse => "domestic_abuse",
        }
    }

    pub(super) fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Child {
    pub given_name: String,
    pub family_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_names: Vec<String>,
    #[serde(with = "date_serde")]
    pub date_of_birth: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school_urn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    pub involvement: Involvement,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_of_child: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Involvement {
    Present,
    Witnessed,
    NotPresent,
    Unknown,
}

impl Involvement {
    pub const ALL: &'static [Involvement] = &[
        Involvement::Present,
        Involvement::Witnessed,
        Involvement::NotPresent,
        Involvement::Unknown,
    ];

    /// The wire (serde) name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Involvement::Present => "present",
            Involvement::Witnessed => "witnessed",
            Involvement::NotPresent => "not_present",
            Involvement::Unknown => "unknown",
        }
    }

    pub(super) fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|i| i.as_str() == s)
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Officer {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Notification {
    /// Canonical bytes for idempotency comparison (serde_json of self; same content -> same bytes).
    #[must_use]
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Cannot fail: every map key is a fixed field name and every leaf is a
        // string, so serde_json has nothing it could reject.
        serde_json::to_vec(self).expect("a Notification always serializes to JSON")
    }
}

// Hand-written, redacting Debug: no names, dates, postcodes, contact details or free text.

impl fmt::Debug for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notification")
            .field("incident", &self.incident)
            .field("children", &self.children)
            .field("officer", &self.officer)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Incident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incident")
            .field("category", &self.category)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("involvement", &self.involvement)
            .field("other_names", &self.other_names.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Officer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Officer")
            .field("has_phone", &self.phone.is_some())
            .field("has_email", &self.email.is_some())
            .finish_non_exhaustive()
    }
}

/// jiff is used without its `serde` feature: timestamps travel as RFC 3339 in UTC
/// (`Display`), which parses back to the identical instant.
mod timestamp_serde {
    use jiff::Timestamp;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(ts)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| D::Error::custom("invalid RFC 3339 timestamp"))
    }
}

/// Dates travel as `YYYY-MM-DD`.
mod date_serde {
    use jiff::civil::Date;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(date: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(date)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_strict_date(&s).ok_or_else(|| D::Error::custom("invalid YYYY-MM-DD date"))
    }
}
