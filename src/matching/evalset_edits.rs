//! The evaluation set's spelling edits: one-keystroke typos and near
//! misses of a name.

use super::*;

/// Keyboard neighbours for plausible substitutions.
pub(super) fn neighbour(c: char) -> char {
    const ROWS: [&str; 3] = ["qwertyuiop", "asdfghjkl", "zxcvbnm"];
    let lower = c.to_ascii_lowercase();
    for row in ROWS {
        if let Some(k) = row.find(lower) {
            let bytes = row.as_bytes();
            let n = if k + 1 < bytes.len() {
                bytes[k + 1]
            } else {
                bytes[k - 1]
            } as char;
            return if c.is_ascii_uppercase() {
                n.to_ascii_uppercase()
            } else {
                n
            };
        }
    }
    c
}

/// One random plausible edit (substitution by a keyboard neighbour,
/// deletion, doubling, transposition) of a letter after the first.
pub(super) fn edit_once(rng: &mut Rng, chars: &[char]) -> Option<Vec<char>> {
    if chars.len() < 2 {
        return None;
    }
    let pos = 1 + rng.below(chars.len() - 1);
    if !chars[pos].is_alphabetic() {
        return None;
    }
    let mut out = chars.to_vec();
    match rng.below(4) {
        0 => {
            let n = neighbour(chars[pos]);
            if n == chars[pos] {
                return None;
            }
            out[pos] = n;
        }
        1 => {
            out.remove(pos);
        }
        2 => out.insert(pos, chars[pos]),
        _ => {
            if pos + 1 >= chars.len()
                || !chars[pos + 1].is_alphabetic()
                || chars[pos] == chars[pos + 1]
            {
                return None;
            }
            out.swap(pos, pos + 1);
        }
    }
    Some(out)
}

/// One plausible edit such that the folded names stay within [`THRESHOLD`]
/// by `strsim::jaro_winkler`. `None` if no edit qualifies (short names
/// cannot take one).
pub fn typo(rng: &mut Rng, name: &str) -> Option<String> {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() < 4 {
        return None;
    }
    for _ in 0..24 {
        let Some(out) = edit_once(rng, &chars) else {
            continue;
        };
        let edited: String = out.into_iter().collect();
        let (a, b) = (fold(name), fold(&edited));
        if a != b && strsim::jaro_winkler(&a, &b) >= THRESHOLD {
            return Some(edited);
        }
    }
    None
}

/// Two or three edits that leave a name NEAR but below [`THRESHOLD`]
/// against every one of `forms` (Jaro-Winkler of folded names in
/// `[0.80, 0.915)`): another child's name, or a name too far gone to trust.
pub(super) fn near_miss(rng: &mut Rng, name: &str, forms: &[&str]) -> Option<String> {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() < 4 {
        return None;
    }
    'attempt: for _ in 0..40 {
        let mut out = chars.clone();
        for _ in 0..2 + rng.below(2) {
            match edit_once(rng, &out) {
                Some(o) => out = o,
                None => continue 'attempt,
            }
        }
        let edited: String = out.into_iter().collect();
        let b = fold(&edited);
        if forms.iter().all(|f| {
            let a = fold(f);
            let jw = strsim::jaro_winkler(&a, &b);
            a != b && (0.80..0.915).contains(&jw)
        }) {
            return Some(edited);
        }
    }
    None
}
