//! Owns the JSON contract types of `POST /v1/notifications` and their validation.
//! Every broken rule is reported with its RFC 6901 pointer; error messages (and the
//! `Debug` output of the types) never echo a submitted value.

use std::fmt;

use jiff::civil::Date;
use jiff::tz::Offset;
use jiff::{SignedDuration, Span, Timestamp};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Most children one notification may name.
pub const MAX_CHILDREN: usize = 20;
/// Most entries in a child's `other_names`.
pub const MAX_OTHER_NAMES: usize = 10;

const MAX_REFERENCE_CHARS: usize = 64;
const MAX_NAME_CHARS: usize = 100;
const MAX_FREE_TEXT_CHARS: usize = 500;
const MAX_POSTCODE_CHARS: usize = 10;
const MAX_PHONE_CHARS: usize = 30;
const MAX_EMAIL_CHARS: usize = 254;
/// Unknown keys are submitted data: only this many of their characters go into a pointer.
const MAX_POINTER_KEY_CHARS: usize = 64;
/// How far into the future (relative to `now`) `occurred_at` may be, for clock skew.
const MAX_FUTURE_SKEW: SignedDuration = SignedDuration::from_mins(5);
const ADULT_AGE_YEARS: i64 = 18;

const NOTIFICATION_FIELDS: &[&str] = &["police_reference", "incident", "children", "officer"];
const INCIDENT_FIELDS: &[&str] = &["occurred_at", "category", "summary_for_school"];
const CHILD_FIELDS: &[&str] = &[
    "given_name",
    "family_name",
    "other_names",
    "date_of_birth",
    "school_urn",
    "postcode",
    "involvement",
    "voice_of_child",
];
const OFFICER_FIELDS: &[&str] = &["name", "phone", "email"];

// ---------------------------------------------------------------------------
// Contract types
// ---------------------------------------------------------------------------

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

    fn from_wire(s: &str) -> Option<Self> {
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

    fn from_wire(s: &str) -> Option<Self> {
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

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// One problem in the body. `message` NEVER contains any submitted value (no names, dates,
/// postcodes, not even the offending characters): only what the rule is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub pointer: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON at all. The string says where (line/column) but never quotes the input.
    #[error("the body is not valid JSON: {0}")]
    Syntax(String),
    /// Well-formed JSON that breaks the contract; every problem found, each with its RFC 6901 JSON pointer.
    #[error("the notification breaks {} rule(s)", .0.len())]
    Invalid(Vec<FieldError>),
}

const MSG_REQUIRED: &str = "is required";
const MSG_STRING: &str = "must be a string";
const MSG_OBJECT: &str = "must be an object";
const MSG_ARRAY: &str = "must be an array";
const MSG_UNKNOWN: &str = "unknown field";
const MSG_DUPLICATE: &str = "duplicate field";
const MSG_EMPTY: &str = "must not be empty";
const MSG_BLANK: &str = "must not be only whitespace";
const MSG_CONTROL: &str = "must not contain control characters";
const MSG_TEXT_CONTROL: &str = "must not contain control characters other than line feed and tab";
const MSG_REFERENCE_CHARS: &str = "must contain only letters A-Z a-z, digits 0-9 and / - _ .";
const MSG_TIMESTAMP: &str =
    "must be an RFC 3339 date-time with a UTC offset (YYYY-MM-DDTHH:MM:SS followed by Z or +HH:MM)";
const MSG_FUTURE: &str = "must not be more than 5 minutes in the future";
const MSG_DATE: &str = "must be a date YYYY-MM-DD";
const MSG_DOB_AFTER_INCIDENT: &str = "must not be after the incident date";
const MSG_DOB_ADULT: &str = "child must be under 18 on the incident date";
const MSG_URN: &str = "must be a DfE URN of 6 or 7 digits";
const MSG_POSTCODE_CHARS: &str = "must contain only ASCII letters, digits and spaces";
const MSG_PHONE_CHARS: &str = "must contain only digits, spaces and + ( ) -";
const MSG_PHONE_DIGIT: &str = "must contain at least one digit";
const MSG_EMAIL: &str =
    "must be an email address with one @, a non-empty local part, a domain containing a dot and no spaces";

fn too_long(max: usize) -> String {
    format!("must be at most {max} characters")
}

fn one_of(names: impl Iterator<Item = &'static str>) -> String {
    format!("must be one of: {}", names.collect::<Vec<_>>().join(", "))
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Parse and validate a `POST /v1/notifications` body. `now` is the receive time; it
/// bounds `incident.occurred_at` (at most 5 minutes ahead).
///
/// # Errors
/// [`ParseError::Syntax`] if the body is not JSON, otherwise [`ParseError::Invalid`]
/// with every broken rule (never empty).
pub fn parse_notification(body: &[u8], now: Timestamp) -> Result<Notification, ParseError> {
    let mut duplicates = Vec::new();
    let value = parse_json(body, &mut duplicates)?;

    let mut v = Validator {
        now,
        errors: duplicates
            .into_iter()
            .map(|pointer| FieldError {
                pointer,
                message: MSG_DUPLICATE.to_owned(),
            })
            .collect(),
    };
    let notification = v.notification(&value);
    match notification {
        Some(n) if v.errors.is_empty() => Ok(n),
        _ => {
            if v.errors.is_empty() {
                // Unreachable by construction; never return an empty error list.
                v.error(String::new(), "is invalid");
            }
            Err(ParseError::Invalid(v.errors))
        }
    }
}

/// Parse JSON into a `Value`, recording the pointer of every duplicated object key
/// (the last occurrence would otherwise silently win).
fn parse_json(body: &[u8], duplicates: &mut Vec<String>) -> Result<Value, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = ValueSeed {
        path: String::new(),
        duplicates,
    }
    .deserialize(&mut de)
    .map_err(syntax_error)?;
    de.end().map_err(syntax_error)?;
    Ok(value)
}

/// Only the position and the error class: `serde_json::Error`'s `Display` can quote input.
fn syntax_error(e: serde_json::Error) -> ParseError {
    use serde_json::error::Category as C;
    let kind = match e.classify() {
        C::Io => "read error",
        C::Syntax => "syntax error",
        C::Data => "data error",
        C::Eof => "unexpected end of input",
    };
    ParseError::Syntax(format!(
        "{kind} at line {}, column {}",
        e.line(),
        e.column()
    ))
}

/// Builds a `serde_json::Value` like its own `Deserialize` impl, but notes duplicate keys.
/// Nesting depth stays bounded by serde_json's recursion limit.
struct ValueSeed<'a> {
    path: String,
    duplicates: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element_seed(ValueSeed {
            path: index_pointer(&self.path, out.len()),
            duplicates: &mut *self.duplicates,
        })? {
            out.push(item);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = key_pointer(&self.path, &key);
            let item = map.next_value_seed(ValueSeed {
                path: path.clone(),
                duplicates: &mut *self.duplicates,
            })?;
            if out.insert(key, item).is_some() {
                self.duplicates.push(path);
            }
        }
        Ok(Value::Object(out))
    }
}

/// RFC 6901 pointer to `key` under `parent`. The key is capped at
/// `MAX_POINTER_KEY_CHARS` characters, control characters become U+FFFD (pointers end
/// up in logs), and `~` / `/` are escaped as `~0` / `~1`.
fn key_pointer(parent: &str, key: &str) -> String {
    let mut p = String::with_capacity(parent.len() + key.len().min(4 * MAX_POINTER_KEY_CHARS) + 1);
    p.push_str(parent);
    p.push('/');
    for c in key.chars().take(MAX_POINTER_KEY_CHARS) {
        match c {
            '~' => p.push_str("~0"),
            '/' => p.push_str("~1"),
            c if c.is_control() => p.push(char::REPLACEMENT_CHARACTER),
            c => p.push(c),
        }
    }
    p
}

fn index_pointer(parent: &str, index: usize) -> String {
    format!("{parent}/{index}")
}

/// `YYYY-MM-DD` exactly (ASCII digits, no sign, no time), and a real calendar date.
fn parse_strict_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_digit());
    if !shape_ok {
        return None;
    }
    let year: i16 = s[0..4].parse().ok()?;
    let month: i8 = s[5..7].parse().ok()?;
    let day: i8 = s[8..10].parse().ok()?;
    Date::new(year, month, day).ok()
}

/// RFC 3339 `date-time` shape: `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)`, `T`/`Z`
/// in either case. This rules out forms jiff would otherwise accept (no offset is
/// already rejected by jiff, but also bracketed time zone annotations, the space
/// separator, basic format, `+HH` offsets, and so on). Field ranges are left to jiff.
fn is_rfc3339_shape(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let head_ok = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !head_ok {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| -> Option<u8> {
                (a.is_ascii_digit() && b.is_ascii_digit()).then(|| (a - b'0') * 10 + (b - b'0'))
            };
            matches!((two(*h1, *h2), two(*m1, *m2)), (Some(h), Some(m)) if h <= 23 && m <= 59)
        }
        _ => false,
    }
}

// Pure rule checks: `Some(message)` when broken. Messages never include the value.

fn name_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        Some(MSG_EMPTY.to_owned())
    } else if s.chars().count() > MAX_NAME_CHARS {
        Some(too_long(MAX_NAME_CHARS))
    } else if s.chars().any(char::is_control) {
        Some(MSG_CONTROL.to_owned())
    } else if s.chars().all(char::is_whitespace) {
        Some(MSG_BLANK.to_owned())
    } else {
        None
    }
}

/// Free text (summary_for_school, voice_of_child): at most 500 characters. Of the
/// Unicode control characters (C0, DEL, C1) only line feed `\n` and tab `\t` are
/// allowed; carriage return is rejected, so senders must use `\n` line endings.
fn free_text_problem(s: &str) -> Option<String> {
    if s.chars().count() > MAX_FREE_TEXT_CHARS {
        Some(too_long(MAX_FREE_TEXT_CHARS))
    } else if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        Some(MSG_TEXT_CONTROL.to_owned())
    } else {
        None
    }
}

fn reference_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        Some(MSG_EMPTY.to_owned())
    } else if s.chars().count() > MAX_REFERENCE_CHARS {
        Some(too_long(MAX_REFERENCE_CHARS))
    } else if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'))
    {
        Some(MSG_REFERENCE_CHARS.to_owned())
    } else {
        None
    }
}

fn urn_problem(s: &str) -> Option<String> {
    let ok = (6..=7).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    (!ok).then(|| MSG_URN.to_owned())
}

fn postcode_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        Some(MSG_EMPTY.to_owned())
    } else if s.chars().count() > MAX_POSTCODE_CHARS {
        Some(too_long(MAX_POSTCODE_CHARS))
    } else if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ') {
        Some(MSG_POSTCODE_CHARS.to_owned())
    } else if s.bytes().all(|b| b == b' ') {
        Some(MSG_BLANK.to_owned())
    } else {
        None
    }
}

fn phone_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        Some(MSG_EMPTY.to_owned())
    } else if s.chars().count() > MAX_PHONE_CHARS {
        Some(too_long(MAX_PHONE_CHARS))
    } else if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'+' | b'(' | b')' | b'-'))
    {
        Some(MSG_PHONE_CHARS.to_owned())
    } else if !s.bytes().any(|b| b.is_ascii_digit()) {
        Some(MSG_PHONE_DIGIT.to_owned())
    } else {
        None
    }
}

fn email_problem(s: &str) -> Option<String> {
    if s.chars().count() > MAX_EMAIL_CHARS {
        return Some(too_long(MAX_EMAIL_CHARS));
    }
    let ok = !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && s.matches('@').count() == 1
        && s.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && domain.split('.').all(|label| !label.is_empty())
        });
    (!ok).then(|| MSG_EMAIL.to_owned())
}

/// Walks the parsed `Value`, collecting every problem. Each check returns `None` when
/// it recorded an error, so a typed value is only assembled from valid parts.
struct Validator {
    now: Timestamp,
    errors: Vec<FieldError>,
}

impl Validator {
    fn error(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            pointer: pointer.into(),
            message: message.into(),
        });
    }

    /// A required member: missing or `null` is an error, otherwise `check` decides.
    fn req<'v, T>(
        &mut self,
        obj: &'v Map<String, Value>,
        parent: &str,
        key: &str,
        check: impl FnOnce(&mut Self, &'v Value, &str) -> Option<T>,
    ) -> Option<T> {
        let ptr = key_pointer(parent, key);
        match obj.get(key) {
            None | Some(Value::Null) => {
                self.error(ptr, MSG_REQUIRED);
                None
            }
            Some(v) => check(self, v, &ptr),
        }
    }

    /// An optional member: missing or `null` is `Some(None)`; `None` means invalid.
    fn opt<'v, T>(
        &mut self,
        obj: &'v Map<String, Value>,
        parent: &str,
        key: &str,
        check: impl FnOnce(&mut Self, &'v Value, &str) -> Option<T>,
    ) -> Option<Option<T>> {
        match obj.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(v) => check(self, v, &key_pointer(parent, key)).map(Some),
        }
    }

    fn object<'v>(
        &mut self,
        v: &'v Value,
        ptr: &str,
        allowed: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Value::Object(obj) = v else {
            self.error(ptr, MSG_OBJECT);
            return None;
        };
        for key in obj.keys().filter(|k| !allowed.contains(&k.as_str())) {
            self.error(key_pointer(ptr, key), MSG_UNKNOWN);
        }
        Some(obj)
    }

    fn array<'v>(&mut self, v: &'v Value, ptr: &str) -> Option<&'v [Value]> {
        match v {
            Value::Array(a) => Some(a),
            _ => {
                self.error(ptr, MSG_ARRAY);
                None
            }
        }
    }

    fn string<'v>(&mut self, v: &'v Value, ptr: &str) -> Option<&'v str> {
        match v {
            Value::String(s) => Some(s),
            _ => {
                self.error(ptr, MSG_STRING);
                None
            }
        }
    }

    /// A string checked by a pure rule.
    fn rule(
        &mut self,
        v: &Value,
        ptr: &str,
        problem: fn(&str) -> Option<String>,
    ) -> Option<String> {
        let s = self.string(v, ptr)?;
        match problem(s) {
            Some(message) => {
                self.error(ptr, message);
                None
            }
            None => Some(s.to_owned()),
        }
    }

    fn name(&mut self, v: &Value, ptr: &str) -> Option<String> {
        self.rule(v, ptr, name_problem)
    }

    fn free_text(&mut self, v: &Value, ptr: &str) -> Option<String> {
        self.rule(v, ptr, free_text_problem)
    }

    fn notification(&mut self, root: &Value) -> Option<Notification> {
        let obj = self.object(root, "", NOTIFICATION_FIELDS)?;
        let police_reference = self.req(obj, "", "police_reference", |s, v, p| {
            s.rule(v, p, reference_problem)
        });
        let (incident, occurred_at) = match obj.get("incident") {
            None | Some(Value::Null) => {
                self.error("/incident", MSG_REQUIRED);
                (None, None)
            }
            Some(v) => self.incident(v, "/incident"),
        };
        // The incident's civil date in UTC, for the date-of-birth checks.
        let occurred_on = occurred_at.map(|ts| Offset::UTC.to_datetime(ts).date());
        let children = self.req(obj, "", "children", |s, v, p| s.children(v, p, occurred_on));
        let officer = self.opt(obj, "", "officer", Self::officer);
        Some(Notification {
            police_reference: police_reference?,
            incident: incident?,
            children: children?,
            officer: officer?,
        })
    }

    /// Returns the incident and, separately, `occurred_at` when that field alone is valid.
    fn incident(&mut self, v: &Value, ptr: &str) -> (Option<Incident>, Option<Timestamp>) {
        let Some(obj) = self.object(v, ptr, INCIDENT_FIELDS) else {
            return (None, None);
        };
        let occurred_at = self.req(obj, ptr, "occurred_at", Self::occurred_at);
        let category = self.req(obj, ptr, "category", Self::category);
        let summary_for_school = self.opt(obj, ptr, "summary_for_school", Self::free_text);
        let incident = match (occurred_at, category, summary_for_school) {
            (Some(occurred_at), Some(category), Some(summary_for_school)) => Some(Incident {
                occurred_at,
                category,
                summary_for_school,
            }),
            _ => None,
        };
        (incident, occurred_at)
    }

    fn occurred_at(&mut self, v: &Value, ptr: &str) -> Option<Timestamp> {
        let s = self.string(v, ptr)?;
        let parsed = if is_rfc3339_shape(s) {
            s.parse::<Timestamp>().ok()
        } else {
            None
        };
        let Some(ts) = parsed else {
            self.error(ptr, MSG_TIMESTAMP);
            return None;
        };
        if ts.duration_since(self.now) > MAX_FUTURE_SKEW {
            self.error(ptr, MSG_FUTURE);
            return None;
        }
        Some(ts)
    }

    fn category(&mut self, v: &Value, ptr: &str) -> Option<Category> {
        let s = self.string(v, ptr)?;
        let c = Category::from_wire(s);
        if c.is_none() {
            self.error(ptr, one_of(Category::ALL.iter().map(Category::as_str)));
        }
        c
    }

    fn involvement(&mut self, v: &Value, ptr: &str) -> Option<Involvement> {
        let s = self.string(v, ptr)?;
        let i = Involvement::from_wire(s);
        if i.is_none() {
            self.error(
                ptr,
                one_of(Involvement::ALL.iter().map(Involvement::as_str)),
            );
        }
        i
    }

    fn children(&mut self, v: &Value, ptr: &str, occurred_on: Option<Date>) -> Option<Vec<Child>> {
        let items = self.array(v, ptr)?;
        let mut ok = true;
        if items.is_empty() {
            self.error(ptr, "must have at least 1 entry");
            ok = false;
        } else if items.len() > MAX_CHILDREN {
            self.error(ptr, format!("must have at most {MAX_CHILDREN} entries"));
            ok = false;
        }
        let mut out = Vec::with_capacity(items.len().min(MAX_CHILDREN));
        for (i, item) in items.iter().enumerate() {
            match self.child(item, &index_pointer(ptr, i), occurred_on) {
                Some(child) => out.push(child),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn child(&mut self, v: &Value, ptr: &str, occurred_on: Option<Date>) -> Option<Child> {
        let obj = self.object(v, ptr, CHILD_FIELDS)?;
        let given_name = self.req(obj, ptr, "given_name", Self::name);
        let family_name = self.req(obj, ptr, "family_name", Self::name);
        let other_names = self.opt(obj, ptr, "other_names", Self::other_names);
        let date_of_birth = self.req(obj, ptr, "date_of_birth", |s, v, p| {
            s.date_of_birth(v, p, occurred_on)
        });
        let school_urn = self.opt(obj, ptr, "school_urn", |s, v, p| s.rule(v, p, urn_problem));
        let postcode = self.opt(obj, ptr, "postcode", |s, v, p| {
            s.rule(v, p, postcode_problem)
        });
        let involvement = self.req(obj, ptr, "involvement", Self::involvement);
        let voice_of_child = self.opt(obj, ptr, "voice_of_child", Self::free_text);
        Some(Child {
            given_name: given_name?,
            family_name: family_name?,
            other_names: other_names?.unwrap_or_default(),
            date_of_birth: date_of_birth?,
            school_urn: school_urn?,
            postcode: postcode?,
            involvement: involvement?,
            voice_of_child: voice_of_child?,
        })
    }

    fn other_names(&mut self, v: &Value, ptr: &str) -> Option<Vec<String>> {
        let items = self.array(v, ptr)?;
        let mut ok = true;
        if items.len() > MAX_OTHER_NAMES {
            self.error(ptr, format!("must have at most {MAX_OTHER_NAMES} entries"));
            ok = false;
        }
        let mut out = Vec::with_capacity(items.len().min(MAX_OTHER_NAMES));
        for (i, item) in items.iter().enumerate() {
            match self.name(item, &index_pointer(ptr, i)) {
                Some(name) => out.push(name),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// The cross-checks against the incident date run only when `occurred_at` is valid.
    /// The 18th birthday is `date_of_birth + 18 years` in jiff's arithmetic (29 February
    /// becomes 28 February in a common year); it must be strictly after the incident date.
    fn date_of_birth(&mut self, v: &Value, ptr: &str, occurred_on: Option<Date>) -> Option<Date> {
        let s = self.string(v, ptr)?;
        let Some(dob) = parse_strict_date(s) else {
            self.error(ptr, MSG_DATE);
            return None;
        };
        if let Some(incident_day) = occurred_on {
            if dob > incident_day {
                self.error(ptr, MSG_DOB_AFTER_INCIDENT);
                return None;
            }
            // Overflow means the birthday lies beyond jiff's range: certainly later.
            if let Ok(eighteenth) = dob.checked_add(Span::new().years(ADULT_AGE_YEARS)) {
                if eighteenth <= incident_day {
                    self.error(ptr, MSG_DOB_ADULT);
                    return None;
                }
            }
        }
        Some(dob)
    }

    fn officer(&mut self, v: &Value, ptr: &str) -> Option<Officer> {
        let obj = self.object(v, ptr, OFFICER_FIELDS)?;
        let name = self.req(obj, ptr, "name", Self::name);
        let phone = self.opt(obj, ptr, "phone", |s, v, p| s.rule(v, p, phone_problem));
        let email = self.opt(obj, ptr, "email", |s, v, p| s.rule(v, p, email_problem));
        Some(Officer {
            name: name?,
            phone: phone?,
            email: email?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-11-23T09:00:00Z".parse().unwrap()
    }

    fn valid() -> Value {
        json!({
            "police_reference": "KNT/26/004512",
            "incident": {
                "occurred_at": "2026-11-22T21:40:00Z",
                "category": "domestic_abuse",
                "summary_for_school": "Police attended a verbal argument at the home. No injuries."
            },
            "children": [
                {
                    "given_name": "Amelia", "family_name": "Khan", "other_names": ["Amy"],
                    "date_of_birth": "2014-03-09", "school_urn": "118765", "postcode": "ME14 1XX",
                    "involvement": "present",
                    "voice_of_child": "Spoken to by officers; said she was scared but is OK now."
                }
            ],
            "officer": { "name": "PC 4411 Jones", "phone": "01622 000000", "email": "p.jones@police.example" }
        })
    }

    fn parse_value(v: &Value) -> Result<Notification, ParseError> {
        parse_notification(&serde_json::to_vec(v).unwrap(), now())
    }

    fn accepts(v: &Value) -> Notification {
        match parse_value(v) {
            Ok(n) => n,
            Err(e) => panic!("expected acceptance, got {e:?}"),
        }
    }

    fn errors(v: &Value) -> Vec<FieldError> {
        match parse_value(v) {
            Err(ParseError::Invalid(errs)) => errs,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    /// Asserts exactly one error, at `pointer`; returns its message.
    fn rejects_at(v: &Value, pointer: &str) -> String {
        let errs = errors(v);
        assert_eq!(
            errs.len(),
            1,
            "expected one error at {pointer}, got {errs:?}"
        );
        assert_eq!(errs[0].pointer, pointer, "{errs:?}");
        errs[0].message.clone()
    }

    /// Sets (or inserts) the member at `pointer`.
    fn set(v: &mut Value, pointer: &str, new: Value) {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        match v.pointer_mut(parent).unwrap() {
            Value::Object(m) => {
                m.insert(key.replace("~1", "/").replace("~0", "~"), new);
            }
            Value::Array(a) => a[key.parse::<usize>().unwrap()] = new,
            _ => panic!("bad parent {parent}"),
        }
    }

    fn remove(v: &mut Value, pointer: &str) {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        v.pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key)
            .unwrap();
    }

    fn with(pointer: &str, new: Value) -> Value {
        let mut v = valid();
        set(&mut v, pointer, new);
        v
    }

    fn without(pointer: &str) -> Value {
        let mut v = valid();
        remove(&mut v, pointer);
        v
    }

    fn child() -> Value {
        valid()["children"][0].clone()
    }

    // --- whole body -------------------------------------------------------

    #[test]
    fn example_body_is_accepted() {
        let n = accepts(&valid());
        assert_eq!(n.police_reference, "KNT/26/004512");
        assert_eq!(
            n.incident.occurred_at,
            "2026-11-22T21:40:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(n.incident.category, Category::DomesticAbuse);
        assert!(n.incident.summary_for_school.is_some());
        let c = &n.children[0];
        assert_eq!(
            (c.given_name.as_str(), c.family_name.as_str()),
            ("Amelia", "Khan")
        );
        assert_eq!(c.other_names, vec!["Amy".to_owned()]);
        assert_eq!(c.date_of_birth, jiff::civil::date(2014, 3, 9));
        assert_eq!(c.school_urn.as_deref(), Some("118765"));
        assert_eq!(c.postcode.as_deref(), Some("ME14 1XX"));
        assert_eq!(c.involvement, Involvement::Present);
        let o = n.officer.as_ref().unwrap();
        assert_eq!(o.name, "PC 4411 Jones");
        assert_eq!(o.phone.as_deref(), Some("01622 000000"));
        assert_eq!(o.email.as_deref(), Some("p.jones@police.example"));
    }

    #[test]
    fn minimal_body_is_accepted_and_optionals_are_absent() {
        let v = json!({
            "police_reference": "R1",
            "incident": { "occurred_at": "2026-11-22T21:40:00Z", "category": "domestic_abuse" },
            "children": [{ "given_name": "A", "family_name": "B", "date_of_birth": "2014-03-09", "involvement": "unknown" }]
        });
        let n = accepts(&v);
        assert!(n.officer.is_none() && n.incident.summary_for_school.is_none());
        let c = &n.children[0];
        assert!(
            c.other_names.is_empty()
                && c.school_urn.is_none()
                && c.postcode.is_none()
                && c.voice_of_child.is_none()
        );
    }

    #[test]
    fn null_optional_fields_are_treated_as_absent() {
        let mut v = valid();
        for p in [
            "/incident/summary_for_school",
            "/children/0/other_names",
            "/children/0/school_urn",
            "/children/0/postcode",
            "/children/0/voice_of_child",
            "/officer/phone",
            "/officer/email",
        ] {
            set(&mut v, p, Value::Null);
        }
        let n = accepts(&v);
        assert!(n.incident.summary_for_school.is_none());
        assert!(n.children[0].other_names.is_empty() && n.children[0].postcode.is_none());
        let n = accepts(&with("/officer", Value::Null));
        assert!(n.officer.is_none());
    }

    #[test]
    fn top_level_must_be_an_object() {
        for v in [json!([]), json!("x"), json!(1), Value::Null] {
            assert_eq!(rejects_at(&v, ""), MSG_OBJECT);
        }
    }

    #[test]
    fn not_json_is_a_syntax_error_without_quoting_input() {
        for body in [
            &b"{\"police_reference\": Zebediah}"[..],
            b"",
            b"{\"a\":1",
            b"{} trailing",
            b"\xff\xfe",
        ] {
            match parse_notification(body, now()) {
                Err(ParseError::Syntax(msg)) => {
                    assert!(msg.contains("line ") && msg.contains("column "), "{msg}");
                    assert!(
                        !msg.contains("Zebediah") && !msg.contains("trailing"),
                        "{msg}"
                    );
                }
                other => panic!("expected Syntax, got {other:?}"),
            }
        }
        let e = parse_notification(b"{\"x\": Zebediah}", now()).unwrap_err();
        assert!(!e.to_string().contains("Zebediah") && !format!("{e:?}").contains("Zebediah"));
    }

    #[test]
    fn deep_nesting_is_a_syntax_error_not_a_crash() {
        let body = format!(
            "{{\"police_reference\":{}{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(matches!(
            parse_notification(body.as_bytes(), now()),
            Err(ParseError::Syntax(_))
        ));
    }

    #[test]
    fn duplicate_keys_are_rejected_at_their_pointer() {
        let body = valid()
            .to_string()
            .replacen('{', "{\"police_reference\":\"X\",", 1);
        let errs = match parse_notification(body.as_bytes(), now()) {
            Err(ParseError::Invalid(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            errs,
            vec![FieldError {
                pointer: "/police_reference".into(),
                message: MSG_DUPLICATE.into()
            }]
        );
        let body = r#"{"children":[{"postcode":"A","postcode":"B"}]}"#;
        let Err(ParseError::Invalid(errs)) = parse_notification(body.as_bytes(), now()) else {
            panic!()
        };
        assert!(
            errs.iter()
                .any(|e| e.pointer == "/children/0/postcode" && e.message == MSG_DUPLICATE),
            "{errs:?}"
        );
    }

    #[test]
    fn multiple_errors_are_reported_together() {
        let mut v = valid();
        set(&mut v, "/police_reference", json!("has space"));
        set(
            &mut v,
            "/incident/occurred_at",
            json!("2026-11-22T21:40:00"),
        );
        set(&mut v, "/children/0/date_of_birth", json!("2014-02-30"));
        set(&mut v, "/children/0/nickname", json!("x"));
        set(&mut v, "/officer/email", json!("nope"));
        set(&mut v, "/unexpected_field", json!(1));
        let mut pointers: Vec<_> = errors(&v).into_iter().map(|e| e.pointer).collect();
        pointers.sort();
        assert_eq!(
            pointers,
            [
                "/children/0/date_of_birth",
                "/children/0/nickname",
                "/incident/occurred_at",
                "/officer/email",
                "/police_reference",
                "/unexpected_field"
            ]
        );
    }

    // --- unknown fields -----------------------------------------------------

    #[test]
    fn unknown_fields_are_rejected_at_every_level() {
        for p in [
            "/unexpected_field",
            "/incident/severity",
            "/children/0/nickname",
            "/officer/badge",
        ] {
            let msg = rejects_at(&with(p, json!("x")), p);
            assert_eq!(msg, MSG_UNKNOWN);
        }
        // even when null
        rejects_at(
            &with("/children/0/nickname", Value::Null),
            "/children/0/nickname",
        );
    }

    #[test]
    fn unknown_field_pointer_is_escaped_and_capped() {
        rejects_at(&with("/a~1b~0c", json!(1)), "/a~1b~0c");
        let long = "k".repeat(200);
        let p = rejects_at(
            &with(&format!("/{long}"), json!(1)),
            &format!("/{}", "k".repeat(64)),
        );
        assert_eq!(p, MSG_UNKNOWN);
        let errs = errors(&with("/bad\u{7}key", json!(1)));
        assert_eq!(errs[0].pointer, "/bad\u{FFFD}key");
    }

    // --- police_reference ------------------------------------------------------

    #[test]
    fn police_reference_accepts_allowed_charset_up_to_64() {
        let r = format!("Az09/-_.{}", "x".repeat(56));
        assert_eq!(r.len(), 64);
        assert_eq!(
            accepts(&with("/police_reference", json!(r))).police_reference,
            r
        );
    }

    #[test]
    fn police_reference_rejections() {
        let p = "/police_reference";
        assert_eq!(
            rejects_at(&with(p, json!("KNT 26")), p),
            MSG_REFERENCE_CHARS
        );
        assert_eq!(rejects_at(&with(p, json!("x".repeat(65))), p), too_long(64));
        assert_eq!(rejects_at(&with(p, json!("")), p), MSG_EMPTY);
        assert_eq!(rejects_at(&with(p, json!("KNT/é")), p), MSG_REFERENCE_CHARS);
        assert_eq!(rejects_at(&with(p, json!(4512)), p), MSG_STRING);
        assert_eq!(rejects_at(&with(p, Value::Null), p), MSG_REQUIRED);
        assert_eq!(rejects_at(&without(p), p), MSG_REQUIRED);
    }

    // --- incident ---------------------------------------------------------------

    #[test]
    fn incident_is_a_required_object() {
        assert_eq!(rejects_at(&without("/incident"), "/incident"), MSG_REQUIRED);
        assert_eq!(
            rejects_at(&with("/incident", Value::Null), "/incident"),
            MSG_REQUIRED
        );
        assert_eq!(
            rejects_at(&with("/incident", json!(["x"])), "/incident"),
            MSG_OBJECT
        );
    }

    #[test]
    fn occurred_at_accepts_rfc3339_forms() {
        let p = "/incident/occurred_at";
        let n = accepts(&with(p, json!("2026-11-22T22:40:00+01:00")));
        assert_eq!(
            n.incident.occurred_at,
            "2026-11-22T21:40:00Z".parse::<Timestamp>().unwrap()
        );
        accepts(&with(p, json!("2026-11-22T16:40:00-05:00")));
        accepts(&with(p, json!("2026-11-22t21:40:00.123456789z")));
        accepts(&with(p, json!("2026-11-22T21:40:00.5Z")));
    }

    #[test]
    fn occurred_at_rejects_other_forms() {
        let p = "/incident/occurred_at";
        for bad in [
            "2026-11-22T21:40:00",
            "2026-11-22",
            "2026-11-22 21:40:00Z",
            "2026-11-22T21:40Z",
            "2026-11-22T21:40:00+01",
            "2026-11-22T21:40:00+0100",
            "2026-11-22T21:40:00Z[Europe/London]",
            "2026-11-22T21:40:00.Z",
            "20261122T214000Z",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T21:40:00+24:00",
            "yesterday",
            "",
        ] {
            assert_eq!(rejects_at(&with(p, json!(bad)), p), MSG_TIMESTAMP, "{bad}");
        }
        assert_eq!(rejects_at(&with(p, json!(1_795_000_000)), p), MSG_STRING);
        assert_eq!(rejects_at(&without(p), p), MSG_REQUIRED);
    }

    #[test]
    fn occurred_at_future_bound_is_five_minutes() {
        let p = "/incident/occurred_at";
        let at = |mins: i64| (now() + SignedDuration::from_mins(mins)).to_string();
        accepts(&with(p, json!(at(4))));
        accepts(&with(p, json!(at(5))));
        accepts(&with(p, json!(at(-60 * 24 * 365))));
        assert_eq!(rejects_at(&with(p, json!(at(6))), p), MSG_FUTURE);
        // 5 minutes and one second
        let late = (now() + SignedDuration::from_secs(301)).to_string();
        assert_eq!(rejects_at(&with(p, json!(late)), p), MSG_FUTURE);
    }

    #[test]
    fn category_is_an_enum() {
        let p = "/incident/category";
        assert_eq!(
            accepts(&valid()).incident.category.as_str(),
            "domestic_abuse"
        );
        let msg = rejects_at(&with(p, json!("burglary")), p);
        assert_eq!(msg, "must be one of: domestic_abuse");
        rejects_at(&with(p, json!("DomesticAbuse")), p);
        rejects_at(&with(p, json!("DOMESTIC_ABUSE")), p);
        assert_eq!(
            rejects_at(&with(p, json!(["domestic_abuse"])), p),
            MSG_STRING
        );
        assert_eq!(rejects_at(&without(p), p), MSG_REQUIRED);
        for c in Category::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), json!(c.as_str()));
        }
    }

    #[test]
    fn summary_for_school_rules() {
        let p = "/incident/summary_for_school";
        // 500 characters but 1000 bytes: chars are counted
        accepts(&with(p, json!("é".repeat(500))));
        accepts(&with(p, json!("")));
        accepts(&with(p, json!("line one\nline two\tindented")));
        accepts(&with(p, json!("العربية हिन्दी русский \u{1F600}")));
        assert_eq!(
            rejects_at(&with(p, json!("é".repeat(501))), p),
            too_long(500)
        );
        for bad in [
            "a\r\nb",
            "bell\u{7}",
            "nul\u{0}",
            "del\u{7f}",
            "c1\u{85}",
            "esc\u{1b}[31m",
        ] {
            assert_eq!(
                rejects_at(&with(p, json!(bad)), p),
                MSG_TEXT_CONTROL,
                "{bad:?}"
            );
        }
        assert_eq!(rejects_at(&with(p, json!(true)), p), MSG_STRING);
    }

    // --- children ------------------------------------------------------------------

    #[test]
    fn children_is_a_required_array_of_1_to_20() {
        let p = "/children";
        assert_eq!(rejects_at(&without(p), p), MSG_REQUIRED);
        assert_eq!(rejects_at(&with(p, Value::Null), p), MSG_REQUIRED);
        assert_eq!(rejects_at(&with(p, child()), p), MSG_ARRAY);
        assert_eq!(
            rejects_at(&with(p, json!([])), p),
            "must have at least 1 entry"
        );
        let twenty = vec![child(); MAX_CHILDREN];
        assert_eq!(accepts(&with(p, json!(twenty))).children.len(), 20);
        let twenty_one = vec![child(); MAX_CHILDREN + 1];
        assert_eq!(
            rejects_at(&with(p, json!(twenty_one)), p),
            "must have at most 20 entries"
        );
    }

    #[test]
    fn each_child_must_be_an_object() {
        let v = with("/children", json!([child(), "Amelia", null]));
        let errs = errors(&v);
        assert_eq!(
            errs,
            vec![
                FieldError {
                    pointer: "/children/1".into(),
                    message: MSG_OBJECT.into()
                },
                FieldError {
                    pointer: "/children/2".into(),
                    message: MSG_OBJECT.into()
                },
            ]
        );
    }

    #[test]
    fn names_in_any_script_are_accepted() {
        for (given, family) in [
            ("Анастасия", "Смирнова"),
            ("فاطمة", "الزهراء"),
            ("अनन्या", "शर्मा"),
            ("Zoë", "O'Brien-Núñez"),
        ] {
            let mut v = valid();
            set(&mut v, "/children/0/given_name", json!(given));
            set(&mut v, "/children/0/family_name", json!(family));
            let n = accepts(&v);
            assert_eq!(
                (
                    n.children[0].given_name.as_str(),
                    n.children[0].family_name.as_str()
                ),
                (given, family)
            );
        }
        accepts(&with("/children/0/given_name", json!("x".repeat(100))));
        accepts(&with("/children/0/family_name", json!(" Khan ")));
    }

    #[test]
    fn name_rejections() {
        for p in ["/children/0/given_name", "/children/0/family_name"] {
            assert_eq!(rejects_at(&with(p, json!("Ame\u{7}lia")), p), MSG_CONTROL);
            assert_eq!(rejects_at(&with(p, json!("Ame\tlia")), p), MSG_CONTROL);
            assert_eq!(rejects_at(&with(p, json!("Amelia\n")), p), MSG_CONTROL);
            assert_eq!(rejects_at(&with(p, json!("")), p), MSG_EMPTY);
            assert_eq!(rejects_at(&with(p, json!("   ")), p), MSG_BLANK);
            assert_eq!(rejects_at(&with(p, json!("\u{3000}")), p), MSG_BLANK);
            assert_eq!(
                rejects_at(&with(p, json!("я".repeat(101))), p),
                too_long(100)
            );
            assert_eq!(rejects_at(&with(p, json!(42)), p), MSG_STRING);
            assert_eq!(rejects_at(&with(p, Value::Null), p), MSG_REQUIRED);
            assert_eq!(rejects_at(&without(p), p), MSG_REQUIRED);
        }
    }

    #[test]
    fn other_names_rules() {
        let p = "/children/0/other_names";
        let ten: Vec<String> = (0..10).map(|i| format!("Name{i}")).collect();
        assert_eq!(accepts(&with(p, json!(ten))).children[0].other_names, ten);
        accepts(&with(p, json!([])));
        let eleven: Vec<String> = (0..11).map(|i| format!("Name{i}")).collect();
        assert_eq!(
            rejects_at(&with(p, json!(eleven)), p),
            "must have at most 10 entries"
        );
        assert_eq!(rejects_at(&with(p, json!("Amy")), p), MSG_ARRAY);

        let mut second = child();
        second["other_names"] = json!(["A", "B", "C", "D\u{7}"]);
        let v = with("/children", json!([child(), second]));
        assert_eq!(rejects_at(&v, "/children/1/other_names/3"), MSG_CONTROL);
        assert_eq!(
            rejects_at(&with(p, json!(["A", ""])), "/children/0/other_names/1"),
            MSG_EMPTY
        );
        assert_eq!(
            rejects_at(&with(p, json!([null])), "/children/0/other_names/0"),
            MSG_STRING
        );
        assert_eq!(
            rejects_at(
                &with(p, json!(["x".repeat(101)])),
                "/children/0/other_names/0"
            ),
            too_long(100)
        );
    }

    #[test]
    fn date_of_birth_format() {
        let p = "/children/0/date_of_birth";
        for bad in [
            "2014-02-30",
            "2014-3-9",
            "2014-03-09T00:00:00Z",
            "20140309",
            "09/03/2014",
            "2014-13-01",
            "+2014-03-09",
            "",
            "２０１４-03-09",
        ] {
            assert_eq!(rejects_at(&with(p, json!(bad)), p), MSG_DATE, "{bad}");
        }
        accepts(&with(p, json!("2012-02-29")));
        assert_eq!(rejects_at(&with(p, json!("2013-02-29")), p), MSG_DATE);
        assert_eq!(rejects_at(&with(p, json!(20140309)), p), MSG_STRING);
        assert_eq!(rejects_at(&without(p), p), MSG_REQUIRED);
    }

    #[test]
    fn date_of_birth_not_after_incident_date() {
        let p = "/children/0/date_of_birth";
        // incident 2026-11-22 (UTC)
        accepts(&with(p, json!("2026-11-22")));
        assert_eq!(
            rejects_at(&with(p, json!("2026-11-23")), p),
            MSG_DOB_AFTER_INCIDENT
        );
    }

    #[test]
    fn incident_date_is_taken_in_utc() {
        // 00:30 at +01:00 is 23:30 UTC the previous day.
        let mut v = with("/incident/occurred_at", json!("2026-11-23T00:30:00+01:00"));
        set(&mut v, "/children/0/date_of_birth", json!("2026-11-23"));
        assert_eq!(
            rejects_at(&v, "/children/0/date_of_birth"),
            MSG_DOB_AFTER_INCIDENT
        );
    }

    #[test]
    fn child_must_be_under_18_on_the_incident_date() {
        let p = "/children/0/date_of_birth";
        // 18th birthday exactly on the incident date: reject.
        assert_eq!(rejects_at(&with(p, json!("2008-11-22")), p), MSG_DOB_ADULT);
        // Incident the day before the 18th birthday: accept.
        accepts(&with(p, json!("2008-11-23")));
        assert_eq!(rejects_at(&with(p, json!("1990-01-01")), p), MSG_DOB_ADULT);
    }

    #[test]
    fn leap_day_birthday_uses_jiff_arithmetic() {
        // Born 2008-02-29; jiff puts the 18th birthday on 2026-02-28.
        let mut v = with("/children/0/date_of_birth", json!("2008-02-29"));
        set(
            &mut v,
            "/incident/occurred_at",
            json!("2026-02-27T12:00:00Z"),
        );
        accepts(&v);
        set(
            &mut v,
            "/incident/occurred_at",
            json!("2026-02-28T12:00:00Z"),
        );
        assert_eq!(rejects_at(&v, "/children/0/date_of_birth"), MSG_DOB_ADULT);
    }

    #[test]
    fn date_of_birth_cross_checks_are_skipped_when_occurred_at_is_invalid() {
        let mut v = with("/incident/occurred_at", json!("not a time"));
        set(&mut v, "/children/0/date_of_birth", json!("1990-01-01"));
        rejects_at(&v, "/incident/occurred_at");
    }

    #[test]
    fn school_urn_rules() {
        let p = "/children/0/school_urn";
        accepts(&with(p, json!("118765")));
        accepts(&with(p, json!("1187650")));
        for bad in ["11876", "11876501", "11876A", "١١٨٧٦٥", " 118765", ""] {
            assert_eq!(rejects_at(&with(p, json!(bad)), p), MSG_URN, "{bad}");
        }
        assert_eq!(rejects_at(&with(p, json!(118765)), p), MSG_STRING);
    }

    #[test]
    fn postcode_rules() {
        let p = "/children/0/postcode";
        accepts(&with(p, json!("ME141XX")));
        accepts(&with(p, json!("SW1A  2AA ")));
        assert_eq!(rejects_at(&with(p, json!("SW1A  2AA X")), p), too_long(10));
        assert_eq!(
            rejects_at(&with(p, json!("ME14-1XX")), p),
            MSG_POSTCODE_CHARS
        );
        assert_eq!(
            rejects_at(&with(p, json!("МЕ14 1XX")), p),
            MSG_POSTCODE_CHARS
        );
        assert_eq!(
            rejects_at(&with(p, json!("ME14\t1XX")), p),
            MSG_POSTCODE_CHARS
        );
        assert_eq!(rejects_at(&with(p, json!("")), p), MSG_EMPTY);
        assert_eq!(rejects_at(&with(p, json!("   ")), p), MSG_BLANK);
        assert_eq!(rejects_at(&with(p, json!({})), p), MSG_STRING);
    }

    #[test]
    fn involvement_rules() {
        let p = "/children/0/involvement";
        for i in Involvement::ALL {
            assert_eq!(
                accepts(&with(p, json!(i.as_str()))).children[0].involvement,
                *i
            );
            assert_eq!(serde_json::to_value(i).unwrap(), json!(i.as_str()));
        }
        assert_eq!(Involvement::NotPresent.as_str(), "not_present");
        let msg = rejects_at(&with(p, json!("Present")), p);
        assert_eq!(
            msg,
            "must be one of: present, witnessed, not_present, unknown"
        );
        rejects_at(&with(p, json!("notpresent")), p);
        assert_eq!(rejects_at(&with(p, Value::Null), p), MSG_REQUIRED);
        assert_eq!(rejects_at(&without(p), p), MSG_REQUIRED);
        assert_eq!(rejects_at(&with(p, json!(1)), p), MSG_STRING);
    }

    #[test]
    fn voice_of_child_rules() {
        let p = "/children/0/voice_of_child";
        accepts(&with(p, json!("ж".repeat(500))));
        accepts(&with(p, json!("She said:\n\t\"I'm OK\"")));
        assert_eq!(
            rejects_at(&with(p, json!("ж".repeat(501))), p),
            too_long(500)
        );
        assert_eq!(rejects_at(&with(p, json!("a\rb")), p), MSG_TEXT_CONTROL);
        assert_eq!(rejects_at(&with(p, json!("a\u{7}b")), p), MSG_TEXT_CONTROL);
        assert_eq!(rejects_at(&with(p, json!(["x"])), p), MSG_STRING);
    }

    // --- officer ----------------------------------------------------------------------

    #[test]
    fn officer_is_an_optional_object_with_required_name() {
        accepts(&without("/officer"));
        assert_eq!(
            rejects_at(&with("/officer", json!("PC Jones")), "/officer"),
            MSG_OBJECT
        );
        let p = "/officer/name";
        assert_eq!(rejects_at(&without(p), p), MSG_REQUIRED);
        assert_eq!(rejects_at(&with(p, Value::Null), p), MSG_REQUIRED);
        assert_eq!(
            rejects_at(&with(p, json!("x".repeat(101))), p),
            too_long(100)
        );
        assert_eq!(rejects_at(&with(p, json!("PC\u{0}Jones")), p), MSG_CONTROL);
        assert_eq!(rejects_at(&with(p, json!("")), p), MSG_EMPTY);
        accepts(&with(p, json!("x".repeat(100))));
        let n = accepts(&with("/officer", json!({ "name": "DC Smith" })));
        let o = n.officer.unwrap();
        assert!(o.phone.is_none() && o.email.is_none());
    }

    #[test]
    fn officer_phone_rules() {
        let p = "/officer/phone";
        accepts(&with(p, json!("+44 (0)1622 000-000")));
        accepts(&with(p, json!("0".repeat(30))));
        assert_eq!(rejects_at(&with(p, json!("0".repeat(31))), p), too_long(30));
        assert_eq!(
            rejects_at(&with(p, json!("01622 000000 ext 4")), p),
            MSG_PHONE_CHARS
        );
        assert_eq!(
            rejects_at(&with(p, json!("01622.000000")), p),
            MSG_PHONE_CHARS
        );
        assert_eq!(rejects_at(&with(p, json!("+ ( ) -")), p), MSG_PHONE_DIGIT);
        assert_eq!(rejects_at(&with(p, json!("")), p), MSG_EMPTY);
        assert_eq!(rejects_at(&with(p, json!(1622000000)), p), MSG_STRING);
    }

    #[test]
    fn officer_email_rules() {
        let p = "/officer/email";
        accepts(&with(p, json!("a@b.c")));
        accepts(&with(p, json!("first.last+tag@kent.police.example")));
        let max = format!(
            "{}@{}.example",
            "a".repeat(64),
            "b".repeat(254 - 64 - 1 - 8)
        );
        assert_eq!(max.len(), 254);
        accepts(&with(p, json!(max)));
        let over = format!("{}@{}.example", "a".repeat(64), "b".repeat(254 - 64 - 8));
        assert_eq!(rejects_at(&with(p, json!(over)), p), too_long(254));
        for bad in [
            "p.jones",
            "p@jones@police.example",
            "@police.example",
            "p.jones@police",
            "p jones@police.example",
            "p.jones@police.example ",
            "p.jones@.example",
            "p.jones@police.",
            "p.jones@police..example",
            "p.jones@",
        ] {
            assert_eq!(rejects_at(&with(p, json!(bad)), p), MSG_EMAIL, "{bad}");
        }
        assert_eq!(rejects_at(&with(p, json!(false)), p), MSG_STRING);
    }

    // --- serde, canonical bytes, redaction -------------------------------------------

    #[test]
    fn serde_round_trip_is_exact() {
        let mut v = valid();
        set(
            &mut v,
            "/incident/occurred_at",
            json!("2026-11-22T22:40:00.123456789+01:00"),
        );
        let twenty = vec![child(); 2];
        set(&mut v, "/children", json!(twenty));
        remove(&mut v, "/children/1/other_names");
        remove(&mut v, "/children/1/postcode");
        for n in [
            accepts(&v),
            accepts(&valid()),
            accepts(&without("/officer")),
        ] {
            let bytes = serde_json::to_vec(&n).unwrap();
            let back: Notification = serde_json::from_slice(&bytes).unwrap();
            assert!(back == n);
            assert_eq!(back.canonical_bytes(), n.canonical_bytes());
            assert_eq!(back.canonical_bytes(), bytes);
        }
        let n = accepts(&v);
        let j: Value = serde_json::from_slice(&n.canonical_bytes()).unwrap();
        assert_eq!(
            j["incident"]["occurred_at"],
            "2026-11-22T21:40:00.123456789Z"
        );
        assert_eq!(j["children"][0]["date_of_birth"], "2014-03-09");
        assert!(j["children"][1].get("postcode").is_none());
    }

    #[test]
    fn canonical_bytes_equal_for_equal_content() {
        // Same content, different key order, whitespace, null-vs-absent and offset.
        let a = accepts(&valid());
        let mut v = valid();
        set(
            &mut v,
            "/incident/occurred_at",
            json!("2026-11-22T22:40:00+01:00"),
        );
        let reordered = format!(
            "{{ \"officer\": {},\n \"children\": {}, \"incident\": {}, \"police_reference\": \"KNT/26/004512\" }}",
            v["officer"], v["children"], v["incident"]
        );
        let b = parse_notification(reordered.as_bytes(), now()).unwrap();
        assert!(a == b);
        assert_eq!(a.canonical_bytes(), b.canonical_bytes());
        let c = accepts(&with("/children/0/other_names", json!(["Amy", "Mia"])));
        assert_ne!(a.canonical_bytes(), c.canonical_bytes());
    }

    #[test]
    fn stored_json_with_unknown_fields_does_not_deserialize() {
        let mut j = serde_json::to_value(accepts(&valid())).unwrap();
        j["children"][0]["nickname"] = json!("x");
        assert!(serde_json::from_value::<Notification>(j).is_err());
    }

    #[test]
    fn errors_never_echo_submitted_values() {
        let mut v = valid();
        set(&mut v, "/children/0/given_name", json!("Zebediah\u{7}"));
        set(&mut v, "/children/0/family_name", json!("Quixotic-Marsh"));
        set(&mut v, "/children/0/date_of_birth", json!("2031-01-01"));
        set(&mut v, "/children/0/postcode", json!("ZZ9 9ZZ-"));
        set(&mut v, "/children/0/school_urn", json!("ZZ9"));
        set(&mut v, "/children/0/involvement", json!("Zebediah"));
        set(&mut v, "/children/0/other_names", json!(["Quixotic\u{0}"]));
        set(
            &mut v,
            "/incident/occurred_at",
            json!("2031-01-01T00:00:00Z"),
        );
        set(&mut v, "/incident/category", json!("Quixotic"));
        set(&mut v, "/incident/summary_for_school", json!("Zebediah\r"));
        set(
            &mut v,
            "/officer/email",
            json!("Zebediah Quixotic-Marsh@ZZ9"),
        );
        set(&mut v, "/officer/phone", json!("ZZ9 2031"));
        set(&mut v, "/police_reference", json!("ZZ9 2031"));
        let err = parse_value(&v).unwrap_err();
        let ParseError::Invalid(errs) = &err else {
            panic!("{err:?}")
        };
        assert!(errs.len() >= 10, "{errs:?}");
        let outputs = [
            format!("{err:?}"),
            err.to_string(),
            serde_json::to_string(errs).unwrap(),
        ];
        for out in &outputs {
            for secret in ["Zebediah", "Quixotic", "2031", "ZZ9"] {
                assert!(!out.contains(secret), "{secret} leaked in {out}");
            }
        }
        // valid except for the child's age: the dob must still not leak
        let mut v = with("/children/0/date_of_birth", json!("2031-01-01"));
        set(&mut v, "/children/0/given_name", json!("Zebediah"));
        let err = parse_value(&v).unwrap_err();
        assert!(!format!("{err:?}").contains("2031") && !err.to_string().contains("2031"));
    }

    #[test]
    fn debug_is_redacting() {
        let mut v = valid();
        set(&mut v, "/children/0/given_name", json!("Zebediah"));
        set(&mut v, "/children/0/family_name", json!("Quixotic-Marsh"));
        set(&mut v, "/children/0/postcode", json!("ZZ9 9ZZ"));
        let n = accepts(&v);
        let dbg = format!("{n:?}");
        let pretty = format!("{n:#?}");
        for out in [&dbg, &pretty] {
            for secret in [
                "Zebediah",
                "Quixotic",
                "Amy",
                "2014",
                "03-09",
                "ZZ9",
                "118765",
                "KNT",
                "004512",
                "Jones",
                "01622",
                "police.example",
                "argument",
                "scared",
                "21:40",
            ] {
                assert!(!out.contains(secret), "{secret} leaked in {out}");
            }
        }
        assert!(dbg.contains("involvement: Present"), "{dbg}");
        assert!(dbg.contains("DomesticAbuse"), "{dbg}");
    }
}
