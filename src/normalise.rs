//! Name normalisation and name similarity for matching (DESIGN §5): turns a
//! name into a comparison key and grades how well two people's names agree.
//! A leaf module: matching and the store's blind indexes both key on it.
//! This module never logs or prints names, nor anything derived from them.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// A normalised name key. Empty means "no usable letters".
///
/// Steps: Unicode NFKC; case fold (`char::to_lowercase`, full mapping, plus
/// Greek final sigma `ς` → `σ`); NFD; drop combining marks that sit on a
/// Latin letter (or on nothing, or on a removed punctuation/space); map the
/// letters that have no decomposition (`ł ø đ ħ ı æ œ þ ð ß`); drop
/// separators (whitespace, hyphen and other dashes, apostrophes `'` `’` `‘`
/// and look-alikes, full stop, comma, backtick) and invisible format
/// characters (zero-width, bidi controls, soft hyphen); NFC recompose.
///
/// Non-Latin scripts keep their combining marks (a Devanagari vowel sign or
/// a Cyrillic `й` breve is part of the spelling, not an accent), so they only
/// lose case, separators and invisible characters.
///
/// If what remains has no alphabetic character the key is empty, so a name
/// made only of punctuation, digits or invisible characters never matches.
pub fn normalise(name: &str) -> String {
    // NFKC, then case fold.
    let mut folded = String::with_capacity(name.len());
    for c in name.nfkc() {
        for lower in c.to_lowercase() {
            folded.push(if lower == 'ς' { 'σ' } else { lower });
        }
    }

    // NFD, strip Latin diacritics, transliterate, drop separators/invisibles.
    let mut stripped = String::with_capacity(folded.len());
    // Whether a combining mark seen now should be dropped: true at the start
    // (a mark with no base), after a Latin letter, and after a removed
    // separator (e.g. NFKC turns `´` into a space plus U+0301).
    let mut drop_marks = true;
    for c in folded.nfd() {
        if is_invisible(c) {
            // Invisible: marks after it still belong to the previous letter.
            continue;
        }
        if is_combining_mark(c) {
            if !drop_marks {
                stripped.push(c);
            }
            continue;
        }
        if is_separator(c) {
            drop_marks = true;
            continue;
        }
        drop_marks = is_latin_letter(c);
        match transliterate(c) {
            Some(s) => stripped.push_str(s),
            None => stripped.push(c),
        }
    }

    let key: String = stripped.nfc().collect();
    if key.chars().any(char::is_alphabetic) {
        key
    } else {
        String::new()
    }
}

/// Every normalised form a person may be known by, for one child or pupil:
/// `given_name` plus each of `other_names`, each normalised whole.
///
/// A multi-part given name ("Mary Jane") is NOT split into parts: only exact
/// forms are keys, precision first. Returns deduplicated, non-empty keys,
/// in input order (`given_name`'s key first when it is non-empty).
pub fn given_keys(given_name: &str, other_names: &[String]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::with_capacity(1 + other_names.len());
    for name in std::iter::once(given_name).chain(other_names.iter().map(String::as_str)) {
        let key = normalise(name);
        if !key.is_empty() && !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// Jaro-Winkler similarity of two ALREADY normalised keys
/// (`strsim::jaro_winkler`, per `char`), 1.0 for equal keys.
///
/// An empty key has no usable letters and is similar to nothing, not even
/// another empty key: the result is 0.0 if either side is empty.
pub fn similarity(a: &str, b: &str) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    if a == b {
        return 1.0;
    }
    strsim::jaro_winkler(a, b)
}

/// How well a notification's names agree with a school pupil's names.
///
/// Ordered strongest first; the decision layer decides what each may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameAgreement {
    /// Given and family keys equal (directly, or with the child's given and
    /// family names swapped — both swapped pairs equal).
    Exact,
    /// Family keys equal and the given name equal only via a known-as form
    /// (`other_names`) on either side.
    KnownAs,
    /// Not equal, but given AND family similarity both reach the threshold
    /// within one order (direct or swapped).
    Similar,
    /// Anything else, including any empty given or family key.
    Weak,
}

/// How well a notification's names agree with a pupil's, trying both orders
/// of given/family name (police may swap them).
///
/// * `Exact`: given == pupil given AND family == pupil family, or the child's
///   family == pupil given AND the child's given == pupil family.
/// * `KnownAs`: as `Exact`, but the given name matched only via one of either
///   side's `other_names`. The family name must still be equal.
/// * `Similar`: in one order (direct or swapped — never mixing the two),
///   both the best given similarity (over all known-as forms of both sides)
///   and the family similarity are `>= threshold`. A threshold that is not
///   finite or is `<= 0.0` disables `Similar` (a misconfiguration must not
///   make every pupil "similar").
/// * `Weak`: anything else. If any of the four primary names (child given,
///   child family, pupil given, pupil family) normalises to empty, the answer
///   is always `Weak`.
///
/// Similar twins ("Aisha"/"Ayesha" share a family name) are not this
/// function's concern: it grades one child against one pupil; the decision
/// layer must handle several candidate pupils.
pub fn agree(
    child_given: &str,
    child_family: &str,
    child_other: &[String],
    pupil_given: &str,
    pupil_family: &str,
    pupil_other: &[String],
    threshold: f64,
) -> NameAgreement {
    let child_given_key = normalise(child_given);
    let child_family_key = normalise(child_family);
    let pupil_given_key = normalise(pupil_given);
    let pupil_family_key = normalise(pupil_family);
    if child_given_key.is_empty()
        || child_family_key.is_empty()
        || pupil_given_key.is_empty()
        || pupil_family_key.is_empty()
    {
        return NameAgreement::Weak;
    }
    let child_known_as = given_keys("", child_other);
    let pupil_known_as = given_keys("", pupil_other);
    let pupil_forms: Vec<&str> = std::iter::once(pupil_given_key.as_str())
        .chain(pupil_known_as.iter().map(String::as_str))
        .collect();
    // (the child's given name, the child's family name) in each order. The
    // child's known-as names are given names, so in either order they are
    // alternatives to whichever child name is taken as the given name.
    let orders: [(&str, &str); 2] = [
        (&child_given_key, &child_family_key),
        (&child_family_key, &child_given_key),
    ];

    if orders
        .iter()
        .any(|&(given, family)| given == pupil_given_key && family == pupil_family_key)
    {
        return NameAgreement::Exact;
    }

    if orders.iter().any(|&(given, family)| {
        family == pupil_family_key
            && std::iter::once(given)
                .chain(child_known_as.iter().map(String::as_str))
                .any(|form| pupil_forms.contains(&form))
    }) {
        return NameAgreement::KnownAs;
    }

    if threshold.is_finite() && threshold > 0.0 {
        // Both names must reach the threshold within the SAME order.
        let similar_in = |given: &str, family: &str| -> bool {
            similarity(family, &pupil_family_key) >= threshold
                && std::iter::once(given)
                    .chain(child_known_as.iter().map(String::as_str))
                    .any(|form| {
                        pupil_forms
                            .iter()
                            .any(|pupil_form| similarity(form, pupil_form) >= threshold)
                    })
        };
        if orders
            .iter()
            .any(|&(given, family)| similar_in(given, family))
        {
            return NameAgreement::Similar;
        }
    }

    NameAgreement::Weak
}

/// Visible separators ignored in names: all whitespace, hyphens and dashes,
/// apostrophes and their look-alikes, full stops, commas, backticks.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '\''
                | '.'
                | ','
                | '`'
                | '\u{2018}' // ‘ left single quotation mark
                | '\u{2019}' // ’ right single quotation mark
                | '\u{02BC}' // ʼ modifier letter apostrophe
                | '\u{2032}' // ′ prime, typed for an apostrophe
                | '\u{00B4}' // ´ acute accent (NFKC makes it space + U+0301)
                | '\u{00B7}' // · middle dot
                | '\u{2010}'
                ..='\u{2015}' // hyphen, non-breaking hyphen, dashes
                | '\u{2212}' // − minus sign
        )
}

/// Invisible format characters removed from names: zero-width space/joiners,
/// LRM/RLM, bidi embeddings/overrides/isolates, word joiner, BOM, Arabic
/// letter mark, soft hyphen.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{061C}'
            | '\u{00AD}'
    )
}

/// Latin-script letters (after case folding and NFD), whose combining marks
/// are diacritics to strip.
fn is_latin_letter(c: char) -> bool {
    c.is_ascii_alphabetic()
        || (matches!(c, '\u{00C0}'..='\u{024F}') && c != '\u{00D7}' && c != '\u{00F7}')
        || matches!(
            c,
            '\u{0250}'..='\u{02AF}'     // IPA extensions
                | '\u{1D00}'..='\u{1DBF}' // phonetic extensions
                | '\u{1E00}'..='\u{1EFF}' // Latin extended additional
                | '\u{2C60}'..='\u{2C7F}' // Latin extended-C
                | '\u{A720}'..='\u{A7FF}' // Latin extended-D
                | '\u{AB30}'..='\u{AB6F}' // Latin extended-E
        )
}

/// Latin letters with no Unicode decomposition that appear on UK school
/// rolls, mapped to plain letters. Applied after case folding, but upper
/// case is listed too for safety.
fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        'ł' | 'Ł' => "l",
        'ø' | 'Ø' => "o",
        'đ' | 'Đ' => "d",
        'ħ' | 'Ħ' => "h",
        'ı' => "i",
        'æ' | 'Æ' => "ae",
        'œ' | 'Œ' => "oe",
        'þ' | 'Þ' => "th",
        'ð' | 'Ð' => "d",
        'ß' | 'ẞ' => "ss",
        _ => return None,
    })
}

#[cfg(test)]
#[path = "normalise_tests.rs"]
mod tests;
