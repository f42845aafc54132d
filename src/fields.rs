//! One rule per outside field: DfE URNs, email addresses, person names,
//! postcodes, phone numbers, `YYYY-MM-DD` dates, free text, and the ONE set
//! of forbidden characters. The police API (`ingest::notification`), both CSV
//! imports (`import`), the config (`config`), the admin CLI and the alert
//! renderer (`alert`) all use these, so a value one of them refuses is refused
//! by all of them.
//!
//! "Parse, don't validate": each newtype (`Urn`, `Email`, `PersonName`, …) is
//! only made by its `parse`, which returns the accepted value or a typed
//! reason. The reasons never carry the submitted value (not even the
//! offending character): callers word them for their audience (a JSON
//! pointer for the API, `line N: column: why` for imports, the key name for
//! the config), so no error can echo personal data.
//!
//! # Forbidden characters
//!
//! Refused in every field (see [`CharClass`]):
//! - **controls**: C0 (U+0000–001F), DEL, C1 (U+0080–009F). Free text
//!   ([`FreeText`]) alone may hold line feed `\n` and tab `\t`.
//! - **line separators**: U+2028, U+2029.
//! - **bidi controls**: U+202A–202E (embeddings, overrides), U+2066–2069
//!   (isolates), U+200E/U+200F (LRM/RLM), U+061C (ALM). They can make a name
//!   display reversed or reordered.
//! - **invisible characters** that can disguise a name: U+200B (zero width
//!   space), U+2060–2064 (word joiner, invisible operators), U+FEFF (BOM /
//!   zero width no-break space), U+180E (Mongolian vowel separator), U+00AD
//!   (soft hyphen), U+206A–206F (deprecated format controls), U+FFF9–FFFB
//!   (interlinear annotation), U+E0000–E007F (tag characters).
//! - U+200C (ZWNJ) and U+200D (ZWJ) are **allowed only between two letters
//!   of a script that needs them** to be spelt correctly: Arabic-script
//!   (Arabic, Persian, Urdu…, U+0600–06FF, U+0750–077F, U+08A0–08FF,
//!   U+FB50–FDFF, U+FE70–FEFE) and the Brahmic scripts of South and
//!   South-East Asia (U+0900–0DFF Devanagari…Sinhala, U+0F00–0FFF Tibetan,
//!   U+1000–109F Myanmar, U+1780–17FF Khmer, U+A8E0–A8FF Devanagari
//!   extended), i.e. both neighbours must be in one of those blocks. Anywhere
//!   else (Latin names, the start or end of a name, beside a space) they only
//!   hide things, and are refused.
//!
//! The alert renderer cannot refuse (an old store record may predate these
//! rules), so [`sanitize`] strips the same set when rendering.

use std::borrow::Cow;

use jiff::civil::Date;

/// `as_str` for the borrowed newtypes: the accepted text, nothing else.
macro_rules! accepted_text {
    ($($name:ident),*) => {$(
        impl<'a> $name<'a> {
            /// The accepted text.
            #[must_use]
            pub fn as_str(&self) -> &'a str {
                self.0
            }
        }
    )*};
}
accepted_text!(Line, PersonName, FreeText, Urn, Postcode, Phone, Email);

/// Longest person name (given, family, each other name, officer), in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest free text (`summary_for_school`, `voice_of_child`), in characters.
pub const MAX_FREE_TEXT_CHARS: usize = 500;
/// Longest postcode, in characters.
pub const MAX_POSTCODE_CHARS: usize = 10;
/// Longest phone number, in characters.
pub const MAX_PHONE_CHARS: usize = 30;
/// Longest email address (RFC 5321 path limit), in bytes (a valid one is ASCII).
pub const MAX_EMAIL_CHARS: usize = 254;

// ---------------------------------------------------------------------------
// Forbidden characters

/// Which kind of forbidden character a value holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CharClass {
    /// C0 (U+0000–001F), DEL (U+007F) or C1 (U+0080–009F).
    Control,
    /// U+2028 LINE SEPARATOR or U+2029 PARAGRAPH SEPARATOR.
    LineSeparator,
    /// A bidirectional formatting control (embedding, override, isolate, mark).
    Bidi,
    /// A zero-width or otherwise invisible character that can disguise text.
    Invisible,
}

/// A value holds a forbidden character. Carries its class, never the character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("contains a forbidden character ({0:?})")]
pub struct Forbidden(pub CharClass);

/// Whether `\n` and `\t` are allowed (free text) or not (every one-line field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lines {
    One,
    Free,
}

/// The class of `c` if it is forbidden wherever it stands. ZWNJ/ZWJ are
/// reported as [`CharClass::Invisible`]; whether their place allows them is
/// decided by [`joiner_allowed`].
#[must_use]
pub fn class_of(c: char) -> Option<CharClass> {
    match c {
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => Some(CharClass::Control),
        '\u{2028}' | '\u{2029}' => Some(CharClass::LineSeparator),
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}' => {
            Some(CharClass::Bidi)
        }
        '\u{200b}'..='\u{200d}'
        | '\u{2060}'..='\u{2064}'
        | '\u{206a}'..='\u{206f}'
        | '\u{feff}'
        | '\u{180e}'
        | '\u{ad}'
        | '\u{fff9}'..='\u{fffb}'
        | '\u{e0000}'..='\u{e007f}' => Some(CharClass::Invisible),
        _ => None,
    }
}

/// Scripts whose spelling needs ZWNJ/ZWJ between letters (see the module docs).
fn needs_joiners(c: char) -> bool {
    matches!(c,
        '\u{600}'..='\u{6ff}'
        | '\u{750}'..='\u{77f}'
        | '\u{8a0}'..='\u{8ff}'
        | '\u{900}'..='\u{dff}'
        | '\u{f00}'..='\u{fff}'
        | '\u{1000}'..='\u{109f}'
        | '\u{1780}'..='\u{17ff}'
        | '\u{a8e0}'..='\u{a8ff}'
        | '\u{fb50}'..='\u{fdff}'
        | '\u{fe70}'..='\u{fefe}')
}

/// A ZWNJ/ZWJ between `before` and `after` is allowed when both are in a
/// script that needs it.
fn joiner_allowed(before: Option<char>, after: Option<char>) -> bool {
    before.is_some_and(needs_joiners) && after.is_some_and(needs_joiners)
}

/// Walks `s`, calling `hit(byte index, char, class)` for every forbidden
/// character in its place; stops early when `hit` returns `false`.
fn scan(s: &str, lines: Lines, mut hit: impl FnMut(usize, char, CharClass) -> bool) {
    let allowed_control = |c: char| lines == Lines::Free && (c == '\n' || c == '\t');
    if s.is_ascii() {
        // Fast path (most names and every valid email): only C0 and DEL.
        for (i, b) in s.bytes().enumerate() {
            if (b < 0x20 || b == 0x7f)
                && !allowed_control(char::from(b))
                && !hit(i, char::from(b), CharClass::Control)
            {
                return;
            }
        }
        return;
    }
    let mut prev = None;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let class = match class_of(c) {
            Some(_) if allowed_control(c) => None,
            Some(CharClass::Invisible)
                if matches!(c, '\u{200c}' | '\u{200d}')
                    && joiner_allowed(prev, it.peek().map(|&(_, n)| n)) =>
            {
                None
            }
            other => other,
        };
        if let Some(class) = class {
            if !hit(i, c, class) {
                return;
            }
        }
        prev = Some(c);
    }
}

fn first_forbidden(s: &str, lines: Lines) -> Result<(), Forbidden> {
    let mut found = None;
    scan(s, lines, |_, _, class| {
        found = Some(class);
        false
    });
    found.map_or(Ok(()), |class| Err(Forbidden(class)))
}

/// Checks a one-line field (a name, an address, a code) for the forbidden set.
///
/// # Errors
/// [`Forbidden`] with the class of the first forbidden character.
pub fn check_line(s: &str) -> Result<(), Forbidden> {
    first_forbidden(s, Lines::One)
}

/// As [`check_line`], but `\n` and `\t` are allowed (free text).
///
/// # Errors
/// [`Forbidden`] with the class of the first forbidden character.
pub fn check_free_text(s: &str) -> Result<(), Forbidden> {
    first_forbidden(s, Lines::Free)
}

/// For rendering what cannot be refused (an old store record): every
/// forbidden character removed, except that controls and line separators
/// become a space (they separated words); with `keep_newlines`, `\n` stays.
/// Borrows when there is nothing to change.
#[must_use]
pub fn sanitize(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let mut hits: Vec<(usize, char, CharClass)> = Vec::new();
    // `\t` is forbidden in output too: only `\n` may be kept.
    scan(s, Lines::One, |i, c, class| {
        if !(keep_newlines && c == '\n') {
            hits.push((i, c, class));
        }
        true
    });
    if hits.is_empty() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut from = 0;
    for (i, c, class) in hits {
        out.push_str(&s[from..i]);
        if matches!(class, CharClass::Control | CharClass::LineSeparator) {
            out.push(' ');
        }
        from = i + c.len_utf8();
    }
    out.push_str(&s[from..]);
    Cow::Owned(out)
}

/// More than `max` characters (counted only when the bytes could be).
fn longer_than(s: &str, max: usize) -> bool {
    s.len() > max && s.chars().count() > max
}

// ---------------------------------------------------------------------------
// One-line text and person names

/// Why a one-line text field (a name) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("empty")]
    Empty,
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("only whitespace")]
    Blank,
    #[error("longer than {max} characters")]
    TooLong { max: usize },
}

/// One line of text: not empty, no forbidden character, not only whitespace,
/// at most `max` characters once trimmed. Holds the trimmed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a>(&'a str);

impl<'a> Line<'a> {
    /// # Errors
    /// [`TextError`], checked in that order: empty, forbidden, blank, too long.
    pub fn parse(s: &'a str, max: usize) -> Result<Self, TextError> {
        if s.is_empty() {
            return Err(TextError::Empty);
        }
        check_line(s)?;
        let t = s.trim();
        if t.is_empty() {
            return Err(TextError::Blank);
        }
        if longer_than(t, max) {
            return Err(TextError::TooLong { max });
        }
        Ok(Line(t))
    }
}

/// A person's name (a child's given, family or other name, an officer, a
/// DSL): any script, [`MAX_NAME_CHARS`] at most, no forbidden character.
/// Holds the trimmed name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonName<'a>(&'a str);

impl<'a> PersonName<'a> {
    /// # Errors
    /// As [`Line::parse`] with `max` = [`MAX_NAME_CHARS`].
    pub fn parse(s: &'a str) -> Result<Self, TextError> {
        Line::parse(s, MAX_NAME_CHARS).map(|l| PersonName(l.0))
    }
}

/// Free text written for a school (`summary_for_school`, `voice_of_child`):
/// at most [`MAX_FREE_TEXT_CHARS`]; `\n` and `\t` allowed, the rest of the
/// forbidden set (carriage return included) refused. Held as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreeText<'a>(&'a str);

impl<'a> FreeText<'a> {
    /// # Errors
    /// [`TextError::TooLong`] first, then [`TextError::Forbidden`].
    pub fn parse(s: &'a str) -> Result<Self, TextError> {
        if longer_than(s, MAX_FREE_TEXT_CHARS) {
            return Err(TextError::TooLong {
                max: MAX_FREE_TEXT_CHARS,
            });
        }
        check_free_text(s)?;
        Ok(FreeText(s))
    }
}

// ---------------------------------------------------------------------------
// Codes: URN, postcode, phone

/// Why a DfE URN was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrnError {
    #[error("empty")]
    Empty,
    #[error("not 6 or 7 ASCII digits")]
    Shape,
}

/// A DfE Unique Reference Number: 6 or 7 ASCII digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Urn<'a>(&'a str);

impl<'a> Urn<'a> {
    /// # Errors
    /// [`UrnError`].
    pub fn parse(s: &'a str) -> Result<Self, UrnError> {
        if s.is_empty() {
            Err(UrnError::Empty)
        } else if (6..=7).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Urn(s))
        } else {
            Err(UrnError::Shape)
        }
    }
}

/// Why a postcode or a phone number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("empty")]
    Empty,
    #[error("longer than {max} characters")]
    TooLong { max: usize },
    #[error("holds a character outside its set")]
    BadChars,
    #[error("only spaces")]
    Blank,
    #[error("holds no digit")]
    NoDigit,
}

/// A postcode as given (used for matching only, never forwarded): up to
/// [`MAX_POSTCODE_CHARS`] ASCII letters, digits and spaces, not only spaces.
/// Callers that trim do so before parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Postcode<'a>(&'a str);

impl<'a> Postcode<'a> {
    /// # Errors
    /// [`CodeError`], checked in order: empty, too long, characters, blank.
    pub fn parse(s: &'a str) -> Result<Self, CodeError> {
        code(s, MAX_POSTCODE_CHARS, |b| {
            b.is_ascii_alphanumeric() || b == b' '
        })?;
        if s.bytes().all(|b| b == b' ') {
            return Err(CodeError::Blank);
        }
        Ok(Postcode(s))
    }
}

/// A phone number as given: up to [`MAX_PHONE_CHARS`] of digits, spaces and
/// `+ ( ) -`, with at least one digit. Callers that trim do so before parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phone<'a>(&'a str);

impl<'a> Phone<'a> {
    /// # Errors
    /// [`CodeError`], checked in order: empty, too long, characters, no digit.
    pub fn parse(s: &'a str) -> Result<Self, CodeError> {
        code(s, MAX_PHONE_CHARS, |b| {
            b.is_ascii_digit() || matches!(b, b' ' | b'+' | b'(' | b')' | b'-')
        })?;
        if !s.bytes().any(|b| b.is_ascii_digit()) {
            return Err(CodeError::NoDigit);
        }
        Ok(Phone(s))
    }
}

/// An ASCII code: not empty, at most `max` characters, every byte in `allowed`.
fn code(s: &str, max: usize, allowed: impl Fn(u8) -> bool) -> Result<(), CodeError> {
    if s.is_empty() {
        Err(CodeError::Empty)
    } else if longer_than(s, max) {
        Err(CodeError::TooLong { max })
    } else if !s.bytes().all(allowed) {
        Err(CodeError::BadChars)
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Email

/// Why an email address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("empty")]
    Empty,
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("longer than {MAX_EMAIL_CHARS} characters")]
    TooLong,
    #[error("not an address of the form local@domain.tld")]
    Invalid,
}

/// An email address: one `@`; the local part an RFC 5322 dot-atom (ASCII,
/// at most 64 bytes, so no `a..b`); the domain two or more labels of ASCII
/// letters, digits and inner hyphens (at most 63 each); at most
/// [`MAX_EMAIL_CHARS`] in all. No quoted local parts, no address literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Email<'a>(&'a str);

impl<'a> Email<'a> {
    /// # Errors
    /// [`EmailError`], checked in order: empty, forbidden, too long, shape.
    pub fn parse(s: &'a str) -> Result<Self, EmailError> {
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        check_line(s)?;
        if s.len() > MAX_EMAIL_CHARS {
            return Err(EmailError::TooLong);
        }
        if is_valid_email(s) {
            Ok(Email(s))
        } else {
            Err(EmailError::Invalid)
        }
    }
}

fn is_valid_email(s: &str) -> bool {
    const ATEXT_SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(&b))
        });
    let domain_ok = domain.contains('.')
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    local_ok && domain_ok
}

/// A mailbox as written in a `From:` header: `Display Name <address>` or a
/// bare address. The display name (plain or quoted) may be empty but holds
/// no forbidden character and no `<` `>`; the address is an [`Email`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mailbox<'a> {
    pub name: Option<&'a str>,
    pub email: Email<'a>,
}

impl<'a> Mailbox<'a> {
    /// # Errors
    /// [`EmailError`] for the address, [`EmailError::Forbidden`] or
    /// [`EmailError::Invalid`] for the display name.
    pub fn parse(s: &'a str) -> Result<Self, EmailError> {
        let s = s.trim();
        let Some(open) = s.strip_suffix('>') else {
            return Email::parse(s).map(|email| Mailbox { name: None, email });
        };
        let Some((name, addr)) = open.rsplit_once('<') else {
            return Err(EmailError::Invalid);
        };
        check_line(name)?;
        if name.contains(['<', '>']) {
            return Err(EmailError::Invalid);
        }
        let name = name.trim();
        Ok(Mailbox {
            name: (!name.is_empty()).then_some(name),
            email: Email::parse(addr)?,
        })
    }
}

// ---------------------------------------------------------------------------
// Dates

/// Why a `YYYY-MM-DD` date was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("empty")]
    Empty,
    #[error("not of the form YYYY-MM-DD")]
    Shape,
    #[error("not a calendar date")]
    Impossible,
}

/// `YYYY-MM-DD` exactly (ASCII digits, no sign, no time) and a real
/// calendar date. Errors never carry the date.
///
/// # Errors
/// [`DateError`].
pub fn parse_date(s: &str) -> Result<Date, DateError> {
    if s.is_empty() {
        return Err(DateError::Empty);
    }
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err(DateError::Shape);
    }
    let num =
        |r: std::ops::Range<usize>| b[r].iter().fold(0i16, |n, d| n * 10 + i16::from(d - b'0'));
    // Month and day are two digits, so they fit in i8.
    Date::new(num(0..4), num(5..7) as i8, num(8..10) as i8).map_err(|_| DateError::Impossible)
}

#[cfg(test)]
#[path = "fields_tests.rs"]
pub(crate) mod tests;
