//! The contract's rules, field by field: the `Validator` that walks the
//! parsed `Value` and records every broken rule with its pointer, and the
//! messages it uses (rules only, never a submitted value). Character and
//! code rules come from `crate::fields`.

use super::*;

pub(super) const MSG_REQUIRED: &str = "is required";
pub(super) const MSG_STRING: &str = "must be a string";
pub(super) const MSG_OBJECT: &str = "must be an object";
pub(super) const MSG_ARRAY: &str = "must be an array";
pub(super) const MSG_UNKNOWN: &str = "unknown field";
pub(super) const MSG_DUPLICATE: &str = "duplicate field";
pub(super) const MSG_EMPTY: &str = "must not be empty";
pub(super) const MSG_BLANK: &str = "must not be only whitespace";
pub(super) const MSG_CONTROL: &str = "must not contain control characters";
pub(super) const MSG_TEXT_CONTROL: &str =
    "must not contain control characters other than line feed and tab";
pub(super) const MSG_INVISIBLE: &str =
    "must not contain line separators, bidirectional controls or invisible characters";
pub(super) const MSG_REFERENCE_CHARS: &str =
    "must contain only letters A-Z a-z, digits 0-9 and / - _ .";
pub(super) const MSG_TIMESTAMP: &str =
    "must be an RFC 3339 date-time with a UTC offset (YYYY-MM-DDTHH:MM:SS followed by Z or +HH:MM)";
pub(super) const MSG_FUTURE: &str = "must not be more than 5 minutes in the future";
pub(super) const MSG_DATE: &str = "must be a date YYYY-MM-DD";
pub(super) const MSG_DOB_AFTER_INCIDENT: &str = "must not be after the incident date";
pub(super) const MSG_DOB_ADULT: &str = "child must be under 18 on the incident date";
pub(super) const MSG_URN: &str = "must be a DfE URN of 6 or 7 digits";
pub(super) const MSG_POSTCODE_CHARS: &str = "must contain only ASCII letters, digits and spaces";
pub(super) const MSG_PHONE_CHARS: &str = "must contain only digits, spaces and + ( ) -";
pub(super) const MSG_PHONE_DIGIT: &str = "must contain at least one digit";
pub(super) const MSG_EMAIL: &str =
    "must be an email address with one @, a non-empty local part, a domain containing a dot and no spaces";

pub(super) fn too_long(max: usize) -> String {
    format!("must be at most {max} characters")
}

pub(super) fn one_of(names: impl Iterator<Item = &'static str>) -> String {
    format!("must be one of: {}", names.collect::<Vec<_>>().join(", "))
}
/// `YYYY-MM-DD` exactly (ASCII digits, no sign, no time), and a real calendar date.
pub(super) fn parse_strict_date(s: &str) -> Option<Date> {
    fields::parse_date(s).ok()
}

/// RFC 3339 `date-time` shape: `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)`, `T`/`Z`
/// in either case. This rules out forms jiff would otherwise accept (no offset is
/// already rejected by jiff, but also bracketed time zone annotations, the space
/// separator, basic format, `+HH` offsets, and so on). Field ranges are left to jiff.
pub(super) fn is_rfc3339_shape(s: &str) -> bool {
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

pub(super) fn forbidden_message(f: Forbidden, control: &str) -> String {
    match f.0 {
        CharClass::Control => control.to_owned(),
        CharClass::LineSeparator | CharClass::Bidi | CharClass::Invisible => {
            MSG_INVISIBLE.to_owned()
        }
    }
}

/// A person name (`fields::PersonName`), kept as sent; its length counts
/// any surrounding spaces too.
pub(super) fn name_problem(s: &str) -> Option<String> {
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
pub(super) fn free_text_problem(s: &str) -> Option<String> {
    match FreeText::parse(s) {
        Ok(_) => None,
        Err(TextError::Forbidden(f)) => Some(forbidden_message(f, MSG_TEXT_CONTROL)),
        Err(TextError::TooLong { max }) => Some(too_long(max)),
        Err(TextError::Empty | TextError::Blank) => None,
    }
}

pub(super) fn reference_problem(s: &str) -> Option<String> {
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

pub(super) fn urn_problem(s: &str) -> Option<String> {
    Urn::parse(s).err().map(|_| MSG_URN.to_owned())
}

pub(super) fn code_problem(e: CodeError, chars: &str) -> String {
    match e {
        CodeError::Empty => MSG_EMPTY.to_owned(),
        CodeError::TooLong { max } => too_long(max),
        CodeError::BadChars => chars.to_owned(),
        CodeError::Blank => MSG_BLANK.to_owned(),
        CodeError::NoDigit => MSG_PHONE_DIGIT.to_owned(),
    }
}

pub(super) fn postcode_problem(s: &str) -> Option<String> {
    Postcode::parse(s)
        .err()
        .map(|e| code_problem(e, MSG_POSTCODE_CHARS))
}

pub(super) fn phone_problem(s: &str) -> Option<String> {
    Phone::parse(s)
        .err()
        .map(|e| code_problem(e, MSG_PHONE_CHARS))
}

/// `fields::Email`, the same rule as the school directory's addresses.
pub(super) fn email_problem(s: &str) -> Option<String> {
    if s.chars().count() > MAX_EMAIL_CHARS {
        return Some(too_long(MAX_EMAIL_CHARS));
    }
    Email::parse(s).err().map(|_| MSG_EMAIL.to_owned())
}

/// Walks the parsed `Value`, collecting every problem. Each check returns `None` when
/// it recorded an error, so a typed value is only assembled from valid parts.
pub(super) struct Validator {
    pub(super) now: Timestamp,
    pub(super) errors: Vec<FieldError>,
}

impl Validator {
    pub(super) fn error(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            pointer: pointer.into(),
            message: message.into(),
        });
    }

    /// A required member: missing or `null` is an error, otherwise `check` decides.
    pub(super) fn req<'v, T>(
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
    pub(super) fn opt<'v, T>(
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

    pub(super) fn object<'v>(
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

    pub(super) fn array<'v>(&mut self, v: &'v Value, ptr: &str) -> Option<&'v [Value]> {
        match v {
            Value::Array(a) => Some(a),
            _ => {
                self.error(ptr, MSG_ARRAY);
                None
            }
        }
    }

    pub(super) fn string<'v>(&mut self, v: &'v Value, ptr: &str) -> Option<&'v str> {
        match v {
            Value::String(s) => Some(s),
            _ => {
                self.error(ptr, MSG_STRING);
                None
            }
        }
    }

    /// A string checked by a pure rule.
    pub(super) fn rule(
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

    pub(super) fn name(&mut self, v: &Value, ptr: &str) -> Option<String> {
        self.rule(v, ptr, name_problem)
    }

    pub(super) fn free_text(&mut self, v: &Value, ptr: &str) -> Option<String> {
        self.rule(v, ptr, free_text_problem)
    }

    pub(super) fn notification(&mut self, root: &Value) -> Option<Notification> {
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
    pub(super) fn incident(
        &mut self,
        v: &Value,
        ptr: &str,
    ) -> (Option<Incident>, Option<Timestamp>) {
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

    pub(super) fn occurred_at(&mut self, v: &Value, ptr: &str) -> Option<Timestamp> {
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

    pub(super) fn category(&mut self, v: &Value, ptr: &str) -> Option<Category> {
        let s = self.string(v, ptr)?;
        let c = Category::from_wire(s);
        if c.is_none() {
            self.error(ptr, one_of(Category::ALL.iter().map(Category::as_str)));
        }
        c
    }

    pub(super) fn involvement(&mut self, v: &Value, ptr: &str) -> Option<Involvement> {
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

    pub(super) fn children(
        &mut self,
        v: &Value,
        ptr: &str,
        occurred_on: Option<Date>,
    ) -> Option<Vec<Child>> {
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

    pub(super) fn child(
        &mut self,
        v: &Value,
        ptr: &str,
        occurred_on: Option<Date>,
    ) -> Option<Child> {
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

    pub(super) fn other_names(&mut self, v: &Value, ptr: &str) -> Option<Vec<String>> {
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
    pub(super) fn date_of_birth(
        &mut self,
        v: &Value,
        ptr: &str,
        occurred_on: Option<Date>,
    ) -> Option<Date> {
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

    pub(super) fn officer(&mut self, v: &Value, ptr: &str) -> Option<Officer> {
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
