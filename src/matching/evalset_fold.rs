//! The evaluation set's own name folding and look-alike test: it decides
//! truth without calling the matcher under test.

use super::*;

pub(super) fn known_as_of(given: &str) -> &'static [&'static str] {
    KNOWN_AS
        .iter()
        .find(|(g, _)| *g == given)
        .map(|(_, k)| *k)
        .unwrap_or(&[])
}

pub(super) fn feminine(family: &str) -> String {
    for (m, f) in [("dzki", "dzka"), ("cki", "cka"), ("ski", "ska")] {
        if let Some(stem) = family.strip_suffix(m) {
            return format!("{stem}{f}");
        }
    }
    family.to_owned()
}

// ---------------------------------------------------------------------------
// The generator's own folding (independent of `normalise`, on purpose).

pub(super) fn deaccent(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'è' | 'é' | 'ê' | 'ë' | 'ę' | 'ė' | 'ẹ' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'ı' => 'i',
        'ł' => 'l',
        'ñ' | 'ń' => 'n',
        'ò' | 'ó' | 'ô' | 'ö' | 'õ' | 'ọ' | 'ø' => 'o',
        'ś' | 'ş' | 'ș' | 'š' | 'ṣ' => 's',
        'ţ' | 'ț' => 't',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        'ź' | 'ż' | 'ž' => 'z',
        'ğ' => 'g',
        'ý' => 'y',
        other => other,
    }
}

/// Lower case, no diacritics, letters and digits only.
pub(super) fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .map(deaccent)
        .collect()
}

/// The name as typed on a keyboard without accents: same case and
/// punctuation, diacritics (and combining marks) dropped.
pub(super) fn strip_diacritics(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if ('\u{0300}'..='\u{036F}').contains(&c) {
            continue;
        }
        if c == 'İ' {
            out.push('I');
            continue;
        }
        let lower: Vec<char> = c.to_lowercase().collect();
        if lower.len() == 1 {
            let plain = deaccent(lower[0]);
            if plain != lower[0] {
                if c.is_uppercase() {
                    out.extend(plain.to_uppercase());
                } else {
                    out.push(plain);
                }
                continue;
            }
        }
        out.push(c);
    }
    out
}

pub(super) fn has_diacritics(s: &str) -> bool {
    !s.is_ascii()
}

pub(super) fn has_separator(s: &str) -> bool {
    s.contains(['-', '\'', ' ', '.', '’'])
}

pub(super) fn is_particle_surname(s: &str) -> bool {
    s.contains(' ')
        || s.contains('\'')
        || ["Mc", "Mac", "De", "Le", "La", "St"]
            .iter()
            .any(|p| s.starts_with(p) && s[p.len()..].starts_with(char::is_uppercase))
}

pub(super) fn title_words(s: &str) -> String {
    s.split(' ')
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(f) => f.to_uppercase().chain(cs).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
