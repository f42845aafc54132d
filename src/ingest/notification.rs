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

use crate::fields::{
    self, CharClass, CodeError, Email, Forbidden, FreeText, PersonName, Phone, Postcode, TextError,
    Urn, MAX_EMAIL_CHARS, MAX_NAME_CHARS,
};

/// Most children one notification may name.
pub const MAX_CHILDREN: usize = 20;
/// Most entries in a child's `other_names`.
pub const MAX_OTHER_NAMES: usize = 10;

const MAX_REFERENCE_CHARS: usize = 64;
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
const MSG_INVISIBLE: &str =
    "must not contain line separators, bidirectional controls or invisible characters";
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
    fields::parse_date(s).ok()
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

fn forbidden_message(f: Forbidden, control: &str) -> String {
    match f.0 {
        CharClass::Control => control.to_owned(),
        CharClass::LineSeparator | CharClass::Bidi | CharClass::Invisible => {
            MSG_INVISIBLE.to_owned()
        }
    }
}

/// A person name (`fields::PersonName`), kept as sent; its length counts
/// any surrounding spaces too.
fn name_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some(MSG_EMPTY.to_owned());
    }
    if s.chars().count() > MAX_NAME_CHARS {
        return Some(too_long(MAX_NAME_CHARS));
    }
    match PersonName::parse(s) {
        Ok(_) => None,
        Err(TextError::Forbidden(f)) => Some(forbidden_message(f, MSG_CONTROL)),
        Err(TextError::Empty | TextError::Blank) => Some(MSG_BLANK.to_owned()),
        Err(TextError::TooLong { max }) => Some(too_long(max)),
    }
}

/// Free text (summary_for_school, voice_of_child): `fields::FreeText`, at most
/// 500 characters. Of the Unicode control characters (C0, DEL, C1) only line
/// feed `\n` and tab `\t` are allowed; carriage return is rejected, so senders
/// must use `\n` line endings.
fn free_text_problem(s: &str) -> Option<String> {
    match FreeText::parse(s) {
        Ok(_) => None,
        Err(TextError::Forbidden(f)) => Some(forbidden_message(f, MSG_TEXT_CONTROL)),
        Err(TextError::TooLong { max }) => Some(too_long(max)),
        Err(TextError::Empty | TextError::Blank) => None,
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
    Urn::parse(s).err().map(|_| MSG_URN.to_owned())
}

fn code_problem(e: CodeError, chars: &str) -> String {
    match e {
        CodeError::Empty => MSG_EMPTY.to_owned(),
        CodeError::TooLong { max } => too_long(max),
        CodeError::BadChars => chars.to_owned(),
        CodeError::Blank => MSG_BLANK.to_owned(),
        CodeError::NoDigit => MSG_PHONE_DIGIT.to_owned(),
    }
}

fn postcode_problem(s: &str) -> Option<String> {
    Postcode::parse(s)
        .err()
        .map(|e| code_problem(e, MSG_POSTCODE_CHARS))
}

fn phone_problem(s: &str) -> Option<String> {
    Phone::parse(s)
        .err()
        .map(|e| code_problem(e, MSG_PHONE_CHARS))
}

/// `fields::Email`, the same rule as the school directory's addresses.
fn email_problem(s: &str) -> Option<String> {
    if s.chars().count() > MAX_EMAIL_CHARS {
        return Some(too_long(MAX_EMAIL_CHARS));
    }
    Email::parse(s).err().map(|_| MSG_EMAIL.to_owned())
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
#[path = "notification_tests.rs"]
mod tests;
