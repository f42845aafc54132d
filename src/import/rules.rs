//! Field rules of the imports: the shared ones in `crate::fields`, worded
//! here as `line N: column: why`. Each returns the value to store, or why it
//! is refused.

use super::*;

pub(super) fn too_long(max: usize) -> Why {
    format!("too long (at most {max} characters)").into()
}

/// A refused character of any class reads "contains a control character".
pub(super) fn forbidden(s: &str) -> Result<(), Why> {
    fields::check_line(s).map_err(|_| Why::from(CONTROL))
}

/// A required one-line text field (names): trimmed, 1..=max characters.
pub(super) fn required_text(s: &str, max: usize) -> Result<&str, Why> {
    Line::parse(s, max)
        .map(|l| l.as_str())
        .map_err(|e| match e {
            TextError::Empty => REQUIRED.into(),
            TextError::Forbidden(_) => CONTROL.into(),
            TextError::Blank => "only whitespace".into(),
            TextError::TooLong { max } => too_long(max),
        })
}

/// A DfE Unique Reference Number: 6 or 7 ASCII digits.
pub(super) fn valid_urn(s: &str) -> Result<&str, Why> {
    Urn::parse(s).map(|u| u.as_str()).map_err(|e| match e {
        UrnError::Empty => REQUIRED.into(),
        UrnError::Shape => "must be 6 or 7 digits (a DfE URN)".into(),
    })
}

pub(super) fn required_email(s: &str) -> Result<&str, Why> {
    Email::parse(s).map(|e| e.as_str()).map_err(|e| match e {
        EmailError::Empty => REQUIRED.into(),
        EmailError::Forbidden(_) => CONTROL.into(),
        EmailError::TooLong => too_long(fields::MAX_EMAIL_CHARS),
        EmailError::Invalid => "not a valid email address".into(),
    })
}

pub(super) fn optional_email(s: &str) -> Result<Option<&str>, Why> {
    forbidden(s)?;
    if s.trim().is_empty() {
        Ok(None)
    } else {
        required_email(s).map(Some)
    }
}

/// Trimmed; empty is `None`; otherwise a [`fields::Phone`] or [`fields::Postcode`].
pub(super) fn optional_code<'a, T>(
    s: &'a str,
    parse: impl FnOnce(&'a str) -> Result<T, CodeError>,
    chars: &'static str,
) -> Result<Option<&'a str>, Why> {
    forbidden(s)?;
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match parse(t) {
        Ok(_) => Ok(Some(t)),
        Err(CodeError::TooLong { max }) => Err(too_long(max)),
        Err(CodeError::NoDigit) => Err("must contain at least one digit".into()),
        // Empty and blank cannot happen once trimmed.
        Err(CodeError::BadChars | CodeError::Empty | CodeError::Blank) => Err(chars.into()),
    }
}

/// Up to 30 characters of digits, spaces, `+ ( ) -`, with at least one digit.
pub(super) fn optional_phone(s: &str) -> Result<Option<&str>, Why> {
    optional_code(s, Phone::parse, "may contain only digits, spaces, + ( ) -")
}

/// Up to 10 ASCII letters, digits and spaces; trimmed.
pub(super) fn optional_postcode(s: &str) -> Result<Option<&str>, Why> {
    optional_code(
        s,
        Postcode::parse,
        "may contain only letters, digits and spaces",
    )
}

/// The local authority's record key: 1..=64 of `A-Z a-z 0-9 - _ .`, case-sensitive.
pub(super) fn valid_pupil_id(s: &str) -> Result<&str, Why> {
    if s.is_empty() {
        return Err(REQUIRED.into());
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("may contain only A-Z a-z 0-9 - _ .".into());
    }
    if s.len() > 64 {
        return Err(too_long(64));
    }
    Ok(s)
}

/// `;`-separated, each trimmed, empty items dropped, at most 10 person names.
pub(super) fn valid_other_names(s: &str) -> Result<Vec<String>, Why> {
    forbidden(s)?;
    let items = || s.split(';').map(str::trim).filter(|n| !n.is_empty());
    let count = items().count();
    if count > 10 {
        return Err("too many names (at most 10)".into());
    }
    if items().any(|n| PersonName::parse(n).is_err()) {
        return Err("a name is too long (at most 100 characters each)".into());
    }
    // Exact capacity: 9 M rolls hold a lot of these.
    let mut names = Vec::with_capacity(count);
    names.extend(items().map(str::to_owned));
    Ok(names)
}

/// The email rule, for the tests that list addresses.
#[cfg(test)]
pub(super) fn is_valid_email(s: &str) -> bool {
    Email::parse(s).is_ok()
}

/// `YYYY-MM-DD`, a real date, not after `today`.
pub(super) fn valid_date_of_birth(s: &str, today: Date) -> Result<Date, Why> {
    let date = fields::parse_date(s).map_err(|e| match e {
        DateError::Empty => Why::from(REQUIRED),
        DateError::Shape => "not a date in the form YYYY-MM-DD".into(),
        DateError::Impossible => "impossible date (must be YYYY-MM-DD)".into(),
    })?;
    if date > today {
        return Err("in the future".into());
    }
    Ok(date)
}
