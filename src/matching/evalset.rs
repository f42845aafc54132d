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

fn known_as_of(given: &str) -> &'static [&'static str] {
    KNOWN_AS
        .iter()
        .find(|(g, _)| *g == given)
        .map(|(_, k)| *k)
        .unwrap_or(&[])
}

fn feminine(family: &str) -> String {
    for (m, f) in [("dzki", "dzka"), ("cki", "cka"), ("ski", "ska")] {
        if let Some(stem) = family.strip_suffix(m) {
            return format!("{stem}{f}");
        }
    }
    family.to_owned()
}

// ---------------------------------------------------------------------------
// The generator's own folding (independent of `normalise`, on purpose).

fn deaccent(c: char) -> char {
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
fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .map(deaccent)
        .collect()
}

/// The name as typed on a keyboard without accents: same case and
/// punctuation, diacritics (and combining marks) dropped.
fn strip_diacritics(s: &str) -> String {
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

fn has_diacritics(s: &str) -> bool {
    !s.is_ascii()
}

fn has_separator(s: &str) -> bool {
    s.contains(['-', '\'', ' ', '.', '’'])
}

fn is_particle_surname(s: &str) -> bool {
    s.contains(' ')
        || s.contains('\'')
        || ["Mc", "Mac", "De", "Le", "La", "St"]
            .iter()
            .any(|p| s.starts_with(p) && s[p.len()..].starts_with(char::is_uppercase))
}

fn title_words(s: &str) -> String {
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

// ---------------------------------------------------------------------------
// The roll.

const INVOLVEMENTS: &[Involvement] = &[
    Involvement::Present,
    Involvement::Witnessed,
    Involvement::NotPresent,
    Involvement::Unknown,
];

fn first_dob() -> Date {
    jiff::civil::date(2008, 9, 1)
}

/// Days in the range of dates of birth (school years R to 13, roughly).
const DOB_DAYS: i64 = 5112;

fn random_dob(rng: &mut Rng) -> Date {
    first_dob()
        .checked_add((rng.below(DOB_DAYS as usize) as i64).days())
        .expect("in range")
}

fn in_range(d: Date) -> bool {
    d >= first_dob() && d <= first_dob().checked_add(DOB_DAYS.days()).expect("in range")
}

fn postcode(rng: &mut Rng, school: usize) -> String {
    let area = POSTCODE_AREAS[school % POSTCODE_AREAS.len()];
    let district = 1 + (school / POSTCODE_AREAS.len()) % 99;
    let letters = b"ABDEFGHJLNPQRSTUWXYZ";
    format!(
        "{area}{district} {}{}{}",
        rng.below(10),
        letters[rng.below(letters.len())] as char,
        letters[rng.below(letters.len())] as char
    )
}

fn pick_culture(rng: &mut Rng) -> &'static Culture {
    let total: u32 = CULTURES.iter().map(|c| c.weight).sum();
    let mut r = rng.below(total as usize) as u32;
    for c in CULTURES {
        if r < c.weight {
            return c;
        }
        r -= c.weight;
    }
    &CULTURES[0]
}

struct RollBuilder {
    pupils: Vec<Pupil>,
    /// Indexes of twin pairs (same family, date of birth, school).
    twins: Vec<(usize, usize)>,
    /// Indexes of namesakes: same names and date of birth, two schools.
    namesakes: Vec<(usize, usize)>,
    /// Indexes of near namesakes: same family name and date of birth, a
    /// given name near but below the threshold, two schools.
    near: Vec<(usize, usize)>,
}

impl RollBuilder {
    fn push(
        &mut self,
        given: &str,
        family: &str,
        other_names: Vec<String>,
        dob: Date,
        postcode: &str,
        urn: &str,
    ) -> usize {
        let i = self.pupils.len();
        self.pupils.push(Pupil {
            pupil_id: format!("EV{i:08}"),
            given_name: given.to_owned(),
            family_name: family.to_owned(),
            other_names,
            date_of_birth: dob,
            postcode: Some(postcode.to_owned()),
            school_urn: urn.to_owned(),
        });
        i
    }
}

fn known_as_for_roll(rng: &mut Rng, given: &str) -> Vec<String> {
    let k = known_as_of(given);
    if !k.is_empty() && rng.chance(0.35) {
        vec![(*rng.pick(k)).to_owned()]
    } else {
        Vec::new()
    }
}

fn build_roll(
    rng: &mut Rng,
    pupils: usize,
    schools: &[School],
    namesakes: usize,
    near: usize,
) -> RollBuilder {
    let mut b = RollBuilder {
        pupils: Vec::with_capacity(pupils),
        twins: Vec::new(),
        namesakes: Vec::new(),
        near: Vec::new(),
    };
    let base = pupils - namesakes - near;
    while b.pupils.len() < base {
        let culture = pick_culture(rng);
        let mut family = (*rng.pick_common(culture.families)).to_owned();
        if rng.chance(culture.double_barrelled) {
            let other = rng.pick(culture.families);
            if *other != family && !family.contains(['-', ' ']) && !other.contains(['-', ' ']) {
                family = format!("{family}-{other}");
            }
        }
        let school = rng.below(schools.len());
        let home = postcode(rng, school);
        let kids = 1 + usize::from(rng.chance(0.45)) + usize::from(rng.chance(0.15));
        let eldest = random_dob(rng);
        let mut taken: Vec<String> = Vec::new();
        if rng.chance(0.03) && b.pupils.len() + 2 <= base {
            // Twins: same family, date of birth and school.
            let (a, c) = if rng.chance(0.5) {
                let pair = rng.pick(TWIN_NAMES);
                (pair[0], pair[1])
            } else {
                let girl_a = rng.chance(0.5);
                let girl_c = rng.chance(0.5);
                let pool = |g: bool| if g { culture.girls } else { culture.boys };
                let a = *rng.pick(pool(girl_a));
                let mut c = *rng.pick(pool(girl_c));
                while fold(c) == fold(a) {
                    c = *rng.pick(pool(girl_c));
                }
                ((a, girl_a), (c, girl_c))
            };
            let urn = &schools[school].urn;
            let mut idx = [0; 2];
            for (k, (given, girl)) in [a, c].into_iter().enumerate() {
                let fam = if girl && culture.gendered_family {
                    feminine(&family)
                } else {
                    family.clone()
                };
                let other = known_as_for_roll(rng, given);
                idx[k] = b.push(given, &fam, other, eldest, &home, urn);
            }
            b.twins.push((idx[0], idx[1]));
            continue;
        }
        for k in 0..kids {
            if b.pupils.len() >= base {
                break;
            }
            let dob = if k == 0 {
                eldest
            } else {
                let gap = 320 + rng.below(1500) as i64;
                match eldest.checked_add(gap.days()) {
                    Ok(d) if in_range(d) => d,
                    _ => break,
                }
            };
            let girl = rng.chance(0.5);
            let given = loop {
                let g = *rng.pick_common(if girl { culture.girls } else { culture.boys });
                if !taken.contains(&fold(g)) {
                    break g;
                }
            };
            taken.push(fold(given));
            let fam = if girl && culture.gendered_family {
                feminine(&family)
            } else {
                family.clone()
            };
            // Mostly at the same school as the eldest; sometimes elsewhere.
            let s = if rng.chance(0.75) {
                school
            } else {
                rng.below(schools.len())
            };
            let other = known_as_for_roll(rng, given);
            b.push(given, &fam, other, dob, &home, &schools[s].urn);
        }
    }
    // Namesakes: a different child with the same full name and date of
    // birth at another school (common names recur).
    let twin_members: HashSet<usize> = b.twins.iter().flat_map(|&(x, y)| [x, y]).collect();
    let mut used: HashSet<usize> = HashSet::new();
    while b.namesakes.len() < namesakes || b.near.len() < near {
        let i = rng.below(base);
        if twin_members.contains(&i) || used.contains(&i) {
            continue;
        }
        let orig = b.pupils[i].clone();
        let is_near = b.namesakes.len() >= namesakes;
        let given = if is_near {
            let Some(g) = near_miss(rng, &orig.given_name, &[&orig.given_name]) else {
                continue;
            };
            g
        } else {
            orig.given_name.clone()
        };
        used.insert(i);
        let s = loop {
            let s = rng.below(schools.len());
            if schools[s].urn != orig.school_urn {
                break s;
            }
        };
        let home = loop {
            let h = postcode(rng, s);
            if Some(&h) != orig.postcode.as_ref() {
                break h;
            }
        };
        let j = b.push(
            &given,
            &orig.family_name,
            Vec::new(),
            orig.date_of_birth,
            &home,
            &schools[s].urn,
        );
        if is_near {
            b.near.push((i, j));
        } else {
            b.namesakes.push((i, j));
        }
    }
    b
}

// ---------------------------------------------------------------------------
// Case generation.

/// A pupil's names folded, for the generator's ambiguity check.
struct Folded {
    given_forms: Vec<String>,
    family: String,
}

fn folded(given: &str, family: &str, other: &[String]) -> Folded {
    let mut given_forms = vec![fold(given)];
    given_forms.extend(other.iter().map(|o| fold(o)));
    Folded {
        given_forms,
        family: fold(family),
    }
}

fn close(a: &str, b: &str) -> bool {
    !a.is_empty() && !b.is_empty() && (a == b || strsim::jaro_winkler(a, b) >= LOOKALIKE)
}

/// Whether a child (folded) and a pupil (folded) could be taken for the same
/// person, in either name order, by any known-as form: deliberately looser
/// than the matcher.
fn lookalike(child: &Folded, pupil: &Folded) -> bool {
    let cg = &child.given_forms[0];
    let cf = &child.family;
    let alt = &child.given_forms[1..];
    let direct = close(cf, &pupil.family)
        && std::iter::once(cg)
            .chain(alt)
            .any(|g| pupil.given_forms.iter().any(|p| close(g, p)));
    let swapped = close(cg, &pupil.family)
        && std::iter::once(cf)
            .chain(alt)
            .any(|g| pupil.given_forms.iter().any(|p| close(g, p)));
    direct || swapped
}

struct Gen<'a> {
    rng: Rng,
    schools: &'a [School],
    pupils: &'a [Pupil],
    folded: Vec<Folded>,
    by_dob: HashMap<Date, Vec<u32>>,
    twins: &'a [(usize, usize)],
    namesakes: &'a [(usize, usize)],
    near: &'a [(usize, usize)],
    /// Namesakes and near namesakes: sources for their own kinds only.
    reserved: HashSet<usize>,
    used: HashSet<usize>,
}

impl Gen<'_> {
    /// True when no pupil with the child's date of birth looks like the
    /// child, other than pupils at `truth`'s school and `allowed`.
    fn unambiguous(&self, child: &Child, truth: Option<&str>, allowed: &[usize]) -> bool {
        let c = folded(&child.given_name, &child.family_name, &child.other_names);
        let Some(same_day) = self.by_dob.get(&child.date_of_birth) else {
            return true;
        };
        same_day.iter().all(|&q| {
            let q = q as usize;
            allowed.contains(&q)
                || truth == Some(self.pupils[q].school_urn.as_str())
                || !lookalike(&c, &self.folded[q])
        })
    }

    /// A random pupil, not a namesake, not used yet, passing `filter`.
    fn source(&mut self, filter: impl Fn(&Pupil) -> bool) -> Option<usize> {
        for attempt in 0..20_000 {
            let i = self.rng.below(self.pupils.len());
            if self.reserved.contains(&i) || (attempt < 10_000 && self.used.contains(&i)) {
                continue;
            }
            if filter(&self.pupils[i]) {
                return Some(i);
            }
        }
        None
    }

    fn child_of(&mut self, p: &Pupil) -> Child {
        Child {
            given_name: p.given_name.clone(),
            family_name: p.family_name.clone(),
            other_names: Vec::new(),
            date_of_birth: p.date_of_birth,
            school_urn: None,
            postcode: None,
            involvement: *self.rng.pick(INVOLVEMENTS),
            voice_of_child: None,
        }
    }

    /// What police usually also send: sometimes the right school, sometimes
    /// the home postcode.
    fn decorate(&mut self, child: &mut Child, p: &Pupil) {
        if self.rng.chance(0.3) {
            child.school_urn = Some(p.school_urn.clone());
        }
        if self.rng.chance(0.4) {
            child.postcode = p.postcode.clone();
        }
    }

    fn other_school(&mut self, urn: &str) -> String {
        loop {
            let s = self.rng.pick(self.schools);
            if s.urn != urn {
                return s.urn.clone();
            }
        }
    }

    fn finish(
        &mut self,
        kind: CaseKind,
        src: usize,
        child: Child,
        truth: Option<String>,
        allowed: &[usize],
    ) -> Option<Case> {
        if !self.unambiguous(&child, truth.as_deref(), allowed) {
            return None;
        }
        self.used.insert(src);
        Some(Case { kind, child, truth })
    }

    /// A plain source: the child is this pupil, matched on their own.
    fn plain(
        &mut self,
        kind: CaseKind,
        filter: impl Fn(&Pupil) -> bool,
        change: impl Fn(&mut Rng, &Pupil, &mut Child) -> bool,
    ) -> Option<Case> {
        let i = self.source(filter)?;
        let pupils = self.pupils;
        let p = &pupils[i];
        let mut child = self.child_of(p);
        if !change(&mut self.rng, p, &mut child) {
            return None;
        }
        self.decorate(&mut child, p);
        self.finish(kind, i, child, Some(p.school_urn.clone()), &[])
    }

    fn make(&mut self, kind: CaseKind) -> Option<Case> {
        let pupils = self.pupils;
        match kind {
            CaseKind::Exact => self.plain(kind, |_| true, |_, _, _| true),
            CaseKind::CaseChanged => self.plain(
                kind,
                |_| true,
                |rng, p, c| {
                    if rng.chance(0.5) {
                        c.given_name = p.given_name.to_uppercase();
                        c.family_name = p.family_name.to_uppercase();
                    } else {
                        c.given_name = p.given_name.to_lowercase();
                        c.family_name = p.family_name.to_lowercase();
                    }
                    true
                },
            ),
            CaseKind::DiacriticsDropped => self.plain(
                kind,
                |p| has_diacritics(&p.given_name) || has_diacritics(&p.family_name),
                |_, p, c| {
                    c.given_name = strip_diacritics(&p.given_name);
                    c.family_name = strip_diacritics(&p.family_name);
                    true
                },
            ),
            CaseKind::PunctuationChanged => self.plain(
                kind,
                |p| has_separator(&p.family_name) || has_separator(&p.given_name),
                |rng, p, c| {
                    let vary = |rng: &mut Rng, s: &str| -> String {
                        match rng.below(4) {
                            0 => s.replace(['-', '\'', ' ', '.', '’'], ""),
                            1 => s.replace(['-', '\'', '.'], " "),
                            2 => s.replace(' ', "-").replace('\'', "’"),
                            _ => s.replace(['\'', '.'], "").replace('-', " - "),
                        }
                    };
                    c.family_name = vary(rng, &p.family_name);
                    c.given_name = vary(rng, &p.given_name);
                    c.family_name != p.family_name || c.given_name != p.given_name
                },
            ),
            CaseKind::NamesSwapped => self.plain(
                kind,
                |_| true,
                |_, p, c| {
                    c.given_name = p.family_name.clone();
                    c.family_name = p.given_name.clone();
                    true
                },
            ),
            CaseKind::KnownAs => self.plain(
                kind,
                |p| !p.other_names.is_empty(),
                |_, p, c| {
                    c.given_name = p.other_names[0].clone();
                    true
                },
            ),
            CaseKind::KnownAsPoliceSide => self.plain(
                kind,
                |p| !known_as_of(&p.given_name).is_empty(),
                |rng, p, c| {
                    c.given_name = (*rng.pick(known_as_of(&p.given_name))).to_owned();
                    c.other_names = vec![p.given_name.clone()];
                    true
                },
            ),
            CaseKind::TypoOneLetter => self.plain(
                kind,
                |_| true,
                |rng, p, c| {
                    if rng.chance(0.5) {
                        typo(rng, &p.given_name).map(|t| c.given_name = t).is_some()
                    } else {
                        typo(rng, &p.family_name)
                            .map(|t| c.family_name = t)
                            .is_some()
                    }
                },
            ),
            CaseKind::TypoBoth => self.plain(
                kind,
                |_| true,
                |rng, p, c| match (typo(rng, &p.given_name), typo(rng, &p.family_name)) {
                    (Some(g), Some(f)) => {
                        c.given_name = g;
                        c.family_name = f;
                        true
                    }
                    _ => false,
                },
            ),
            CaseKind::ParticleSurnameVariants => self.plain(
                kind,
                |p| is_particle_surname(&p.family_name),
                |rng, p, c| {
                    let f = &p.family_name;
                    c.family_name = match rng.below(5) {
                        0 => title_words(f),
                        1 => f.to_lowercase().replace([' ', '\''], ""),
                        2 => f.to_uppercase(),
                        3 => f.replace(' ', "-"),
                        _ => {
                            // Split a prefix: "Mc Donald", "O Brien", "De La Cruz".
                            let mut out = String::new();
                            for (k, ch) in f.chars().enumerate() {
                                if k > 0 && ch.is_uppercase() && !out.ends_with(' ') {
                                    out.push(' ');
                                }
                                if ch != '\'' {
                                    out.push(ch);
                                }
                            }
                            title_words(&out.replace("  ", " "))
                        }
                    };
                    c.family_name != *f
                },
            ),
            CaseKind::WrongDob => {
                let i = self.source(|_| true)?;
                let p = &pupils[i];
                let mut child = self.child_of(p);
                let d = p.date_of_birth;
                let wrong = match self.rng.below(5) {
                    0 => d.checked_add(1.day()).ok(),
                    1 => d.checked_sub(1.day()).ok(),
                    2 if d.day() <= 12 && d.day() != d.month() => {
                        Date::new(d.year(), d.day(), d.month()).ok()
                    }
                    3 => Date::new(d.year() + 1, d.month(), d.day()).ok(),
                    _ => Date::new(d.year() - 1, d.month(), d.day()).ok(),
                }?;
                child.date_of_birth = wrong;
                // The police often know the school: it must not rescue a
                // wrong date of birth.
                if self.rng.chance(0.5) {
                    child.school_urn = Some(p.school_urn.clone());
                }
                self.finish(kind, i, child, None, &[])
            }
            CaseKind::NotOnRoll | CaseKind::HintOnly => {
                let i = self.source(|_| true)?;
                let p = self.pupils[i].clone();
                let mut child = self.child_of(&p);
                let culture = pick_culture(&mut self.rng);
                let girl = self.rng.chance(0.5);
                let given = *self
                    .rng
                    .pick_common(if girl { culture.girls } else { culture.boys });
                child.given_name = given.to_owned();
                match self.rng.below(3) {
                    // A stranger: new names, a random date of birth.
                    0 => {
                        child.family_name = (*self.rng.pick_common(culture.families)).to_owned();
                        child.date_of_birth = random_dob(&mut self.rng);
                    }
                    // A sibling not on the roll (another school out of the
                    // area, or twin of a pupil): same family, same or another
                    // date of birth, another given name.
                    1 => {
                        if self.rng.chance(0.5) {
                            child.date_of_birth = child
                                .date_of_birth
                                .checked_add((400 + self.rng.below(900) as i64).days())
                                .ok()?;
                        }
                    }
                    // A namesake born on another day.
                    _ => {
                        child.given_name = p.given_name.clone();
                        child.date_of_birth = child
                            .date_of_birth
                            .checked_sub((30 + self.rng.below(700) as i64).days())
                            .ok()?;
                    }
                }
                if self.rng.chance(0.3) {
                    child.postcode = p.postcode.clone();
                }
                if kind == CaseKind::HintOnly {
                    // The hint is the school of the pupil the child is
                    // related to, or any school.
                    child.school_urn = Some(if self.rng.chance(0.6) {
                        p.school_urn.clone()
                    } else {
                        self.rng.pick(self.schools).urn.clone()
                    });
                }
                self.finish(kind, i, child, None, &[])
            }
            CaseKind::HintConflict => {
                let i = self.source(|_| true)?;
                let p = &pupils[i];
                let mut child = self.child_of(p);
                if self.rng.chance(0.5) {
                    child.postcode = p.postcode.clone();
                }
                let urn = p.school_urn.clone();
                child.school_urn = Some(self.other_school(&urn));
                self.finish(kind, i, child, Some(urn), &[])
            }
            CaseKind::Twin => {
                let &(a, b) = self.rng.pick(self.twins);
                let (i, sibling) = if self.rng.chance(0.5) { (a, b) } else { (b, a) };
                // Each twin once, while unused ones are easy to find.
                if self.used.contains(&i) && self.rng.chance(0.95) {
                    return None;
                }
                let p = &pupils[i];
                let mut child = self.child_of(p);
                self.decorate(&mut child, p);
                let urn = p.school_urn.clone();
                self.finish(kind, i, child, Some(urn), &[sibling])
            }
            CaseKind::NearNamesakeElsewhere => {
                let &(i, other) = self.rng.pick(self.near);
                if self.used.contains(&i) && self.rng.chance(0.95) {
                    return None;
                }
                let p = &pupils[i];
                let mut child = self.child_of(p);
                self.decorate(&mut child, p);
                let urn = p.school_urn.clone();
                self.finish(kind, i, child, Some(urn), &[other])
            }
            CaseKind::NearMissDayMonthSwapped
            | CaseKind::NearMissOneDay
            | CaseKind::NearMissOneMonth
            | CaseKind::NearMissOneYear
            | CaseKind::NearMissOneDigit => {
                let i = self.source(|_| true)?;
                let p = &pupils[i];
                let mut child = self.child_of(p);
                let want = CaseKind::NEAR_MISSES
                    .iter()
                    .find(|(k, _)| *k == kind)
                    .map(|(_, r)| *r)?;
                let variants = dob_variants(p.date_of_birth);
                let fitting: Vec<Date> = variants
                    .into_iter()
                    .filter(|d| compare_dob(*d, p.date_of_birth) == want)
                    .collect();
                if fitting.is_empty() {
                    return None;
                }
                child.date_of_birth = *self.rng.pick(&fitting);
                // The right school as a hint must not rescue it either.
                if self.rng.chance(0.5) {
                    child.school_urn = Some(p.school_urn.clone());
                }
                self.decorate(&mut child, p);
                self.finish(kind, i, child, None, &[])
            }
            CaseKind::NearMissFamilyName => {
                let i = self.source(|p| p.family_name.chars().count() >= 5)?;
                let p = &pupils[i];
                let mut child = self.child_of(p);
                child.family_name = near_miss(&mut self.rng, &p.family_name, &[&p.family_name])?;
                self.decorate(&mut child, p);
                self.finish(kind, i, child, None, &[i])
            }
            CaseKind::WeakName => {
                let i = self.source(|p| p.given_name.chars().count() >= 4)?;
                let p = &pupils[i];
                let mut child = self.child_of(p);
                let forms: Vec<&str> = std::iter::once(p.given_name.as_str())
                    .chain(p.other_names.iter().map(String::as_str))
                    .collect();
                child.given_name = near_miss(&mut self.rng, &p.given_name, &forms)?;
                // Neither the right school nor the home postcode may rescue
                // a weak name.
                self.decorate(&mut child, p);
                self.finish(kind, i, child, None, &[i])
            }
            CaseKind::SameNameTwoSchoolsNoHint
            | CaseKind::SameNameTwoSchoolsWithHint
            | CaseKind::SameNameTwoSchoolsPostcode => {
                let k = self.rng.below(self.namesakes.len());
                let (a, b) = self.namesakes[k];
                let (i, other) = if self.rng.chance(0.5) { (a, b) } else { (b, a) };
                if self.used.contains(&i) && self.rng.chance(0.95) {
                    return None;
                }
                let p = &pupils[i];
                let mut child = self.child_of(p);
                match kind {
                    CaseKind::SameNameTwoSchoolsWithHint => {
                        child.school_urn = Some(p.school_urn.clone());
                    }
                    CaseKind::SameNameTwoSchoolsPostcode => {
                        child.postcode = p.postcode.clone();
                    }
                    _ => {}
                }
                let urn = p.school_urn.clone();
                let case = self.finish(kind, i, child, Some(urn), &[a, b]);
                if case.is_some() {
                    self.used.insert(other);
                }
                case
            }
        }
    }
}

/// Keyboard neighbours for plausible substitutions.
fn neighbour(c: char) -> char {
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
fn edit_once(rng: &mut Rng, chars: &[char]) -> Option<Vec<char>> {
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
fn near_miss(rng: &mut Rng, name: &str, forms: &[&str]) -> Option<String> {
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
