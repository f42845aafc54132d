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

mod pointer;
mod types;
mod validate;

pub(crate) use pointer::key_pointer;
use pointer::*;
pub use types::*;
use validate::*;

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

#[cfg(test)]
#[path = "notification_tests.rs"]
mod tests;
