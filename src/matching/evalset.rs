//! The matching evaluation set (DESIGN §5.4): a DETERMINISTIC generator of a
//! synthetic roll (diverse names, twins, namesakes at two schools, known-as
//! names) and of notified children with known truth, each tagged with the
//! hard case it exercises, plus the scoring of decisions against that truth.
//!
//! Every name here is synthetic, drawn from name pools; nothing is real data.
//! The generator decides truth without calling the matcher under test: it
//! folds names itself and uses `strsim` directly, and it refuses any case
//! whose truth would be ambiguous (another pupil with the same date of birth
//! whose names look alike), except the cases built to be ambiguous.

use std::collections::{HashMap, HashSet};

use jiff::civil::Date;
use jiff::ToSpan;

use super::nearmiss::{compare_dob, dob_variants, DobRelation};
use crate::import::{Pupil, School};
use crate::ingest::notification::{Child, Involvement};

/// The name threshold the evaluation is run at (the configuration default).
pub const THRESHOLD: f64 = 0.92;

/// How close (Jaro-Winkler on folded names) another pupil's names must be for
/// the generator to call a case's truth ambiguous. Looser than [`THRESHOLD`],
/// so no case sits on the matcher's edge by accident.
const LOOKALIKE: f64 = 0.85;

// ---------------------------------------------------------------------------
// A tiny PRNG (splitmix64): deterministic across platforms and releases.

/// splitmix64. Not cryptographic; only for reproducible synthetic data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0)");
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    /// Skewed towards the start of `xs`, so common names recur.
    fn pick_common<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        let i = (self.unit().powf(1.4) * xs.len() as f64) as usize;
        &xs[i.min(xs.len() - 1)]
    }

    fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i + 1);
            xs.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------
#[path = "evalset_names.rs"]
mod names;
use names::{Culture, CULTURES, KNOWN_AS, POSTCODE_AREAS, TWIN_NAMES};

#[path = "evalset_fold.rs"]
mod fold;
use fold::*;
#[path = "evalset_roll.rs"]
mod roll;
use roll::*;
#[path = "evalset_cases.rs"]
mod cases;
use cases::*;
#[path = "evalset_edits.rs"]
mod edits;
pub use edits::typo;
use edits::*;

// ---------------------------------------------------------------------------
// Cases.

/// The hard case a notified child exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CaseKind {
    /// Names and date of birth exactly as on the roll.
    Exact,
    /// Names all upper or all lower case.
    CaseChanged,
    /// Diacritics dropped ("Zoe" for "Zoë", "Lukasz" for "Łukasz").
    DiacriticsDropped,
    /// Separators changed ("OBrien", "Smith Jones").
    PunctuationChanged,
    /// Given and family name in each other's places.
    NamesSwapped,
    /// The police use the roll's known-as name as the given name.
    KnownAs,
    /// The police give a nickname as given name and the roll's given name in
    /// `other_names`.
    KnownAsPoliceSide,
    /// One edit in one name, within the Jaro-Winkler threshold.
    TypoOneLetter,
    /// One edit in each name, each within the threshold.
    TypoBoth,
    /// The date of birth is off (a day, day/month swapped, a year): must not
    /// match.
    WrongDob,
    /// A child not on the roll (a stranger, or a same-family same-birthday
    /// sibling not on it): must not match.
    NotOnRoll,
    /// Same full name and date of birth at two schools, no hint: review.
    SameNameTwoSchoolsNoHint,
    /// As above, the police's `school_urn` names the right one: match.
    SameNameTwoSchoolsWithHint,
    /// As above, the police's postcode is the right pupil's: match.
    SameNameTwoSchoolsPostcode,
    /// Not on the roll, but the police name a school: must not match.
    HintOnly,
    /// On the roll at A, the police name B: review.
    HintConflict,
    /// One of twins (same family, date of birth and school): match.
    Twin,
    /// Particle and prefix surnames re-spaced or re-cased ("Van Der Berg",
    /// "vanderberg", "Mc Donald").
    ParticleSurnameVariants,
    /// The child exactly as on the roll at A; at B, a pupil with the same
    /// family name and date of birth and a given name near but below the
    /// threshold (a cousin, or a similar name): match A.
    NearNamesakeElsewhere,
    /// A pupil's names with the given name two or three edits away (near but
    /// below the threshold): the rules call that weak, review.
    WeakName,
    /// Near misses (issue 12): a pupil's names exactly, the date of birth
    /// with day and month swapped: never auto-matched, review.
    NearMissDayMonthSwapped,
    /// … the date of birth a day off: review.
    NearMissOneDay,
    /// … the date of birth a month off (same day): review.
    NearMissOneMonth,
    /// … the date of birth a year off (same day and month): review.
    NearMissOneYear,
    /// … one digit of the date of birth changed (none of the above): review.
    NearMissOneDigit,
    /// The same date of birth, the given name exact and the family name two
    /// or three edits away (just under the threshold): review.
    NearMissFamilyName,
}

impl CaseKind {
    pub const ALL: &'static [CaseKind] = &[
        CaseKind::Exact,
        CaseKind::CaseChanged,
        CaseKind::DiacriticsDropped,
        CaseKind::PunctuationChanged,
        CaseKind::NamesSwapped,
        CaseKind::KnownAs,
        CaseKind::KnownAsPoliceSide,
        CaseKind::TypoOneLetter,
        CaseKind::TypoBoth,
        CaseKind::WrongDob,
        CaseKind::NotOnRoll,
        CaseKind::SameNameTwoSchoolsNoHint,
        CaseKind::SameNameTwoSchoolsWithHint,
        CaseKind::SameNameTwoSchoolsPostcode,
        CaseKind::HintOnly,
        CaseKind::HintConflict,
        CaseKind::Twin,
        CaseKind::ParticleSurnameVariants,
        CaseKind::NearNamesakeElsewhere,
        CaseKind::WeakName,
        CaseKind::NearMissDayMonthSwapped,
        CaseKind::NearMissOneDay,
        CaseKind::NearMissOneMonth,
        CaseKind::NearMissOneYear,
        CaseKind::NearMissOneDigit,
        CaseKind::NearMissFamilyName,
    ];

    /// The near-miss kinds (issue 12) and the date relation each is built
    /// with: `kim review show` must list the source pupil with it.
    pub const NEAR_MISSES: &'static [(CaseKind, DobRelation)] = &[
        (
            CaseKind::NearMissDayMonthSwapped,
            DobRelation::DayMonthSwapped,
        ),
        (CaseKind::NearMissOneDay, DobRelation::OneDay),
        (CaseKind::NearMissOneMonth, DobRelation::OneMonth),
        (CaseKind::NearMissOneYear, DobRelation::OneYear),
        (CaseKind::NearMissOneDigit, DobRelation::OneDigit),
        (CaseKind::NearMissFamilyName, DobRelation::Same),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::CaseChanged => "case_changed",
            Self::DiacriticsDropped => "diacritics_dropped",
            Self::PunctuationChanged => "punctuation_changed",
            Self::NamesSwapped => "names_swapped",
            Self::KnownAs => "known_as",
            Self::KnownAsPoliceSide => "known_as_police_side",
            Self::TypoOneLetter => "typo_one_letter",
            Self::TypoBoth => "typo_both",
            Self::WrongDob => "wrong_dob",
            Self::NotOnRoll => "not_on_roll",
            Self::SameNameTwoSchoolsNoHint => "same_name_two_schools_no_hint",
            Self::SameNameTwoSchoolsWithHint => "same_name_two_schools_with_hint",
            Self::SameNameTwoSchoolsPostcode => "same_name_two_schools_postcode",
            Self::HintOnly => "hint_only",
            Self::HintConflict => "hint_conflict",
            Self::Twin => "twin",
            Self::ParticleSurnameVariants => "particle_surname_variants",
            Self::NearNamesakeElsewhere => "near_namesake_elsewhere",
            Self::WeakName => "weak_name",
            Self::NearMissDayMonthSwapped => "near_miss_day_month_swapped",
            Self::NearMissOneDay => "near_miss_one_day",
            Self::NearMissOneMonth => "near_miss_one_month",
            Self::NearMissOneYear => "near_miss_one_year",
            Self::NearMissOneDigit => "near_miss_one_digit",
            Self::NearMissFamilyName => "near_miss_family_name",
        }
    }

    /// Whether the right outcome is a match (else: the review queue).
    pub fn expects_match(self) -> bool {
        !matches!(
            self,
            Self::WrongDob
                | Self::NotOnRoll
                | Self::SameNameTwoSchoolsNoHint
                | Self::HintOnly
                | Self::HintConflict
                | Self::WeakName
                | Self::NearMissDayMonthSwapped
                | Self::NearMissOneDay
                | Self::NearMissOneMonth
                | Self::NearMissOneYear
                | Self::NearMissOneDigit
                | Self::NearMissFamilyName
        )
    }
}

/// One notified child with its known truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub kind: CaseKind,
    pub child: Child,
    /// The only URN a match may name without being a wrong school (for
    /// `hint_conflict` and `same_name_two_schools_no_hint` the child's real
    /// school, though the rules must still send those to review); `None`:
    /// any match is wrong.
    pub truth: Option<String>,
}

/// A generated roll and the cases to match against it.
#[derive(Debug, Clone)]
pub struct EvalSet {
    pub schools: Vec<School>,
    pub pupils: Vec<Pupil>,
    pub cases: Vec<Case>,
}

/// Generates the evaluation set: `schools` schools, `pupils` pupils, and
/// `notifications` cases spread evenly over [`CaseKind::ALL`], in a shuffled
/// order. The same arguments always give the same set.
///
/// # Panics
/// If the roll is too small to draw the cases from (fewer than 2 schools, or
/// fewer pupils than about 20 times the number of cases' namesakes).
pub fn generate(seed: u64, pupils: usize, schools: usize, notifications: usize) -> EvalSet {
    assert!(schools >= 2, "at least two schools");
    let mut rng = Rng::new(seed);
    let school_list: Vec<School> = (0..schools)
        .map(|i| School {
            urn: format!("{}", 100_000 + i),
            name: format!("Eval School {i}"),
            dsl_name: format!("DSL {i}"),
            dsl_email: format!("dsl{i}@school.example"),
            deputy_email: None,
            phone: None,
        })
        .collect();
    let kinds = CaseKind::ALL.len();
    let per_kind = notifications.div_ceil(kinds);
    // Enough namesake pairs for the three namesake kinds, one pair per case.
    let namesakes = (3 * per_kind + 10).min(pupils / 10);
    let near = (per_kind + 10).min(pupils / 20);
    assert!(pupils >= 100, "at least 100 pupils");
    let roll = build_roll(&mut rng, pupils, &school_list, namesakes, near);

    let folded_all: Vec<Folded> = roll
        .pupils
        .iter()
        .map(|p| folded(&p.given_name, &p.family_name, &p.other_names))
        .collect();
    let mut by_dob: HashMap<Date, Vec<u32>> = HashMap::new();
    for (i, p) in roll.pupils.iter().enumerate() {
        by_dob.entry(p.date_of_birth).or_default().push(i as u32);
    }
    let mut g = Gen {
        rng: Rng::new(rng.next_u64()),
        schools: &school_list,
        pupils: &roll.pupils,
        folded: folded_all,
        by_dob,
        twins: &roll.twins,
        namesakes: &roll.namesakes,
        near: &roll.near,
        reserved: roll
            .namesakes
            .iter()
            .chain(&roll.near)
            .flat_map(|&(a, b)| [a, b])
            .collect(),
        used: HashSet::new(),
    };
    assert!(!g.twins.is_empty(), "the roll is too small to have twins");

    let mut cases = Vec::with_capacity(notifications);
    for (k, &kind) in CaseKind::ALL.iter().enumerate() {
        let n = notifications / kinds + usize::from(k < notifications % kinds);
        let mut made = 0;
        let mut tries = 0usize;
        while made < n {
            tries += 1;
            assert!(
                tries < 200 * n + 10_000,
                "cannot draw {n} {} cases from this roll",
                kind.as_str()
            );
            if let Some(case) = g.make(kind) {
                cases.push(case);
                made += 1;
            }
        }
    }
    g.rng.shuffle(&mut cases);
    EvalSet {
        schools: school_list,
        pupils: roll.pupils,
        cases,
    }
}

#[path = "evalset_score.rs"]
mod score;
pub use score::{KindScore, Score};

#[cfg(test)]
#[path = "evalset_tests.rs"]
mod tests;
