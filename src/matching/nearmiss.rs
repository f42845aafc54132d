//! Candidates for a human (issue 12 item 3): for a child the matching stage
//! sent to review, the pupils it weighed and the near misses it must never
//! auto-match on (same names with a date of birth one slip away; same date
//! of birth with a name just under the threshold), each compared with the
//! police's details field by field. Display only: nothing here feeds
//! [`super::decide`]. Found through the roll's blind indexes (the date
//! variants are probed one by one), never by decrypting the roll.

use std::collections::BTreeSet;

use jiff::civil::Date;
use jiff::ToSpan;
use serde::{Deserialize, Serialize};

use crate::import::Pupil;
use crate::ingest::notification::Child;
use crate::normalise::{agree, given_keys, normalise, similarity, NameAgreement};
use crate::store::{Store, StoreError};

/// How far below the name threshold a same-date-of-birth pupil may score and
/// still be shown as "a name just under the threshold".
pub const NEAR_NAME_MARGIN: f64 = 0.15;
/// At most this many candidates are kept per review item (closest first).
pub const MAX_CANDIDATES: usize = 20;

/// How a candidate's date of birth compares with the police's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DobRelation {
    Same,
    DayMonthSwapped,
    OneDay,
    OneMonth,
    OneYear,
    OneDigit,
    Differs,
}

impl DobRelation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Same => "same",
            Self::DayMonthSwapped => "day_month_swapped",
            Self::OneDay => "one_day",
            Self::OneMonth => "one_month",
            Self::OneYear => "one_year",
            Self::OneDigit => "one_digit",
            Self::Differs => "differs",
        }
    }
}

/// How a candidate's postcode compares (`unknown`: either side has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostcodeRelation {
    Same,
    Differs,
    Unknown,
}

/// How the police's school hint compares with the candidate's school.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HintRelation {
    Agrees,
    Conflicts,
    None,
}

/// One candidate pupil and how each field compares with the police's details.
/// Holds personal data: stored sealed only, shown only by `kim review show`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub pupil: Pupil,
    /// `weighed`: the matching stage considered this pupil (same date of
    /// birth, found through a name index); `near_miss`: found only by the
    /// near-miss search, never a basis for a match.
    pub found_as: String,
    /// Jaro-Winkler of the names, best order (1.0: equal after normalising).
    pub name_score: f64,
    /// `exact`, `known_as`, `similar` or `weak` (the matching rules' grade).
    pub names: String,
    pub dob: DobRelation,
    pub postcode: PostcodeRelation,
    pub hint: HintRelation,
}

impl std::fmt::Debug for Candidate {
    /// Identifiers and grades only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Candidate")
            .field("school_urn", &self.pupil.school_urn)
            .field("found_as", &self.found_as)
            .field("dob", &self.dob)
            .finish_non_exhaustive()
    }
}

/// What is kept (sealed) for one review item: the reason and the candidates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewCandidates {
    pub reason: String,
    pub candidates: Vec<Candidate>,
}

/// Finds and keeps (sealed) the candidates of child `index` of `receipt`,
/// going to review for `reason`.
pub fn keep_review_candidates(
    store: &Store,
    receipt: &str,
    index: u32,
    child: &Child,
    reason: &str,
    threshold: f64,
) -> Result<usize, StoreError> {
    let candidates = review_candidates(store, child, threshold)?;
    let n = candidates.len();
    store.put_review_candidates(
        receipt,
        index,
        &ReviewCandidates {
            reason: reason.to_owned(),
            candidates,
        },
    )?;
    Ok(n)
}

/// Compares two dates of birth; the first matching relation wins, in the
/// order of [`DobRelation`].
pub fn compare_dob(police: Date, pupil: Date) -> DobRelation {
    if police == pupil {
        return DobRelation::Same;
    }
    if police.year() == pupil.year()
        && police.month() == pupil.day()
        && police.day() == pupil.month()
    {
        return DobRelation::DayMonthSwapped;
    }
    let off = |span: jiff::Span| {
        police.checked_add(span).ok() == Some(pupil) || police.checked_sub(span).ok() == Some(pupil)
    };
    if off(1.day()) {
        return DobRelation::OneDay;
    }
    if police.day() == pupil.day() && off(1.month()) {
        return DobRelation::OneMonth;
    }
    if police.month() == pupil.month() && police.day() == pupil.day() && off(1.year()) {
        return DobRelation::OneYear;
    }
    let (a, b) = (police.to_string(), pupil.to_string());
    if a.len() == b.len() && a.bytes().zip(b.bytes()).filter(|(x, y)| x != y).count() == 1 {
        return DobRelation::OneDigit;
    }
    DobRelation::Differs
}

/// Every date one slip away from `dob` (day/month swapped, a day, a month or
/// a year either way, any one digit changed), valid dates only, without `dob`.
pub fn dob_variants(dob: Date) -> Vec<Date> {
    let mut out = BTreeSet::new();
    if dob.day() <= 12 {
        if let Ok(d) = Date::new(dob.year(), dob.day(), dob.month()) {
            out.insert(d);
        }
    }
    for span in [1.day(), 1.month(), 1.year()] {
        out.extend(
            [dob.checked_add(span), dob.checked_sub(span)]
                .into_iter()
                .flatten(),
        );
    }
    let text = dob.to_string();
    let bytes = text.as_bytes();
    for (i, c) in bytes.iter().enumerate() {
        if !c.is_ascii_digit() {
            continue;
        }
        for digit in b'0'..=b'9' {
            if digit == *c {
                continue;
            }
            let mut v = bytes.to_vec();
            v[i] = digit;
            if let Some(d) = std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.parse::<Date>().ok())
            {
                out.insert(d);
            }
        }
    }
    out.remove(&dob);
    out.into_iter().collect()
}

/// The names' Jaro-Winkler score, best order: in each order the lower of the
/// family score and the best given/known-as score; 0.0 if a name is empty.
pub fn name_score(child: &Child, p: &Pupil) -> f64 {
    let (cg, cf) = (normalise(&child.given_name), normalise(&child.family_name));
    let pf = normalise(&p.family_name);
    let child_known = given_keys("", &child.other_names);
    let pupil_forms = given_keys(&p.given_name, &p.other_names);
    let best_given = |g: &str| {
        std::iter::once(g)
            .chain(child_known.iter().map(String::as_str))
            .flat_map(|form| pupil_forms.iter().map(move |pf| similarity(form, pf)))
            .fold(0.0_f64, f64::max)
    };
    [(&cg, &cf), (&cf, &cg)]
        .iter()
        .map(|(g, f)| similarity(f, &pf).min(best_given(g)))
        .fold(0.0, f64::max)
}

fn postcode_key(p: &str) -> String {
    p.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// Compares `child` (the police's details) with pupil `p`.
pub fn compare(child: &Child, p: &Pupil, threshold: f64, found_as: &str) -> Candidate {
    let grade = agree(
        &child.given_name,
        &child.family_name,
        &child.other_names,
        &p.given_name,
        &p.family_name,
        &p.other_names,
        threshold,
    );
    let postcode = match (child.postcode.as_deref(), p.postcode.as_deref()) {
        (Some(a), Some(b)) if !postcode_key(a).is_empty() && !postcode_key(b).is_empty() => {
            if postcode_key(a) == postcode_key(b) {
                PostcodeRelation::Same
            } else {
                PostcodeRelation::Differs
            }
        }
        _ => PostcodeRelation::Unknown,
    };
    let hint = match child.school_urn.as_deref() {
        None => HintRelation::None,
        Some(u) if u == p.school_urn => HintRelation::Agrees,
        Some(_) => HintRelation::Conflicts,
    };
    Candidate {
        pupil: p.clone(),
        found_as: found_as.to_owned(),
        name_score: (name_score(child, p) * 1000.0).round() / 1000.0,
        names: match grade {
            NameAgreement::Exact => "exact",
            NameAgreement::KnownAs => "known_as",
            NameAgreement::Similar => "similar",
            NameAgreement::Weak => "weak",
        }
        .to_owned(),
        dob: compare_dob(child.date_of_birth, p.date_of_birth),
        postcode,
        hint,
    }
}

/// The candidates to show for `child`: the pupils with its date of birth the
/// name indexes (and the initials index) find, whose names agree or score at
/// least `threshold - NEAR_NAME_MARGIN`; and pupils with the same names
/// (both equal after normalising, either order, known-as included), born on
/// a date one slip away ([`dob_variants`], each probed through the name
/// indexes; only rows both names' probes return are opened). Closest
/// first, at most [`MAX_CANDIDATES`].
pub fn review_candidates(
    store: &Store,
    child: &Child,
    threshold: f64,
) -> Result<Vec<Candidate>, StoreError> {
    let mut given = Vec::with_capacity(1 + child.other_names.len());
    given.push(child.given_name.clone());
    given.extend(child.other_names.iter().cloned());
    let mut out: Vec<Candidate> = Vec::new();
    let mut seen = BTreeSet::new();
    for p in store.roll_candidates_wide(&given, &child.family_name, child.date_of_birth)? {
        let c = compare(child, &p, threshold, "weighed");
        if (c.names != "weak" || c.name_score >= threshold - NEAR_NAME_MARGIN)
            && seen.insert(p.pupil_id.clone())
        {
            out.push(c);
        }
    }
    let variants = dob_variants(child.date_of_birth);
    for p in store.roll_candidates_at(&given, &child.family_name, &variants)? {
        let c = compare(child, &p, threshold, "near_miss");
        if c.names != "weak" && seen.insert(p.pupil_id.clone()) {
            out.push(c);
        }
    }
    out.sort_by(|a, b| {
        a.dob
            .cmp(&b.dob)
            .then(b.name_score.total_cmp(&a.name_score))
            .then_with(|| a.pupil.pupil_id.cmp(&b.pupil.pupil_id))
    });
    out.truncate(MAX_CANDIDATES);
    Ok(out)
}

#[cfg(test)]
#[path = "nearmiss_tests.rs"]
mod tests;
