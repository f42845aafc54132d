//! The decision (DESIGN §5.3): given a child from a notification and the
//! roll candidates with the same date of birth, either one school or the
//! review queue with a reason. Precision first: anything short of names that
//! agree at exactly one school goes to a human.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::normalise::{agree, NameAgreement};
use crate::import::Pupil;
use crate::ingest::notification::Child;

/// Why a child needs a human. Stable codes: they appear in the audit and the
/// review queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewReason {
    /// Nobody on the roll has this date of birth and a matching name key.
    NoCandidate,
    /// Pupils with this date of birth were found, but no name agrees well enough.
    WeakName,
    /// Names agree with pupils at more than one school and no hint decides.
    AmbiguousSchools,
    /// The only candidate school differs from the school the police named.
    HintConflict,
    /// Two children of one notification resolve to the same pupil: at least
    /// one of them is someone else (e.g. an unlisted twin with a similar name).
    SamePupilTwice,
}

impl ReviewReason {
    /// Every reason, for listings and tests.
    pub const ALL: [Self; 5] = [
        Self::NoCandidate,
        Self::WeakName,
        Self::AmbiguousSchools,
        Self::HintConflict,
        Self::SamePupilTwice,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NoCandidate => "no_candidate",
            Self::WeakName => "weak_name",
            Self::AmbiguousSchools => "ambiguous_schools",
            Self::HintConflict => "hint_conflict",
            Self::SamePupilTwice => "same_pupil_twice",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Matched {
        urn: String,
        /// How the names agreed (exact, known_as, similar), and whether a
        /// hint broke a tie — for the audit.
        basis: &'static str,
    },
    NeedsReview(ReviewReason),
}

fn postcode_key(p: &str) -> String {
    p.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// The candidates whose date of birth is exact and whose names agree.
fn agreeing<'a>(
    child: &Child,
    candidates: &'a [Pupil],
    threshold: f64,
) -> Vec<(&'a Pupil, NameAgreement)> {
    candidates
        .iter()
        .filter(|p| p.date_of_birth == child.date_of_birth)
        .map(|p| {
            let a = agree(
                &child.given_name,
                &child.family_name,
                &child.other_names,
                &p.given_name,
                &p.family_name,
                &p.other_names,
                threshold,
            );
            (p, a)
        })
        .filter(|(_, a)| *a != NameAgreement::Weak)
        .collect()
}

/// The pupil ids whose names agree with `child` (kept in memory only: used to
/// see whether two children of one notification resolve to the same pupil).
pub fn agreeing_ids(child: &Child, candidates: &[Pupil], threshold: f64) -> Vec<String> {
    agreeing(child, candidates, threshold)
        .into_iter()
        .map(|(p, _)| p.pupil_id.clone())
        .collect()
}

/// Decides the school for `child` among `candidates` (all sharing its exact
/// date of birth; the store only returns those).
pub fn decide(child: &Child, candidates: &[Pupil], threshold: f64) -> Decision {
    let agreeing = agreeing(child, candidates, threshold);
    if agreeing.is_empty() {
        return Decision::NeedsReview(if candidates.is_empty() {
            ReviewReason::NoCandidate
        } else {
            ReviewReason::WeakName
        });
    }
    let schools: BTreeSet<&str> = agreeing
        .iter()
        .map(|(p, _)| p.school_urn.as_str())
        .collect();
    let basis = |a: NameAgreement| match a {
        NameAgreement::Exact => "exact",
        NameAgreement::KnownAs => "known_as",
        NameAgreement::Similar => "similar",
        NameAgreement::Weak => "weak",
    };
    // The weakest agreement at the chosen school is what the match rests on.
    let weakest_at = |urn: &str| {
        agreeing
            .iter()
            .filter(|(p, _)| p.school_urn == urn)
            .map(|(_, a)| *a)
            .max_by_key(|a| match a {
                NameAgreement::Exact => 0,
                NameAgreement::KnownAs => 1,
                NameAgreement::Similar => 2,
                NameAgreement::Weak => 3,
            })
            .unwrap_or(NameAgreement::Weak)
    };
    if schools.len() == 1 {
        let urn = *schools.iter().next().expect("one school");
        if let Some(hint) = &child.school_urn {
            if hint != urn {
                return Decision::NeedsReview(ReviewReason::HintConflict);
            }
        }
        return Decision::Matched {
            urn: urn.to_owned(),
            basis: basis(weakest_at(urn)),
        };
    }
    // Several schools: a hint or the postcode may break the tie, never more.
    if let Some(hint) = &child.school_urn {
        if schools.contains(hint.as_str()) {
            return Decision::Matched {
                urn: hint.clone(),
                basis: "tie_broken_by_school_hint",
            };
        }
    }
    if let Some(pc) = child
        .postcode
        .as_deref()
        .map(postcode_key)
        .filter(|p| !p.is_empty())
    {
        let by_postcode: BTreeSet<&str> = agreeing
            .iter()
            .filter(|(p, _)| {
                p.postcode.as_deref().map(postcode_key).as_deref() == Some(pc.as_str())
            })
            .map(|(p, _)| p.school_urn.as_str())
            .collect();
        if by_postcode.len() == 1 {
            return Decision::Matched {
                urn: (*by_postcode.iter().next().expect("one")).to_owned(),
                basis: "tie_broken_by_postcode",
            };
        }
    }
    Decision::NeedsReview(ReviewReason::AmbiguousSchools)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::notification::Involvement;

    fn child(given: &str, family: &str, dob: &str) -> Child {
        Child {
            given_name: given.into(),
            family_name: family.into(),
            other_names: vec![],
            date_of_birth: dob.parse().unwrap(),
            school_urn: None,
            postcode: None,
            involvement: Involvement::Present,
            voice_of_child: None,
        }
    }

    fn pupil(given: &str, family: &str, dob: &str, urn: &str, postcode: Option<&str>) -> Pupil {
        Pupil {
            pupil_id: format!("{given}-{urn}"),
            given_name: given.into(),
            family_name: family.into(),
            other_names: vec![],
            date_of_birth: dob.parse().unwrap(),
            postcode: postcode.map(String::from),
            school_urn: urn.into(),
        }
    }

    const T: f64 = 0.92;

    #[test]
    fn exact_names_at_one_school_match() {
        let c = child("Amelia", "Khan", "2014-03-09");
        let d = decide(
            &c,
            &[pupil("Amelia", "Khan", "2014-03-09", "118765", None)],
            T,
        );
        assert_eq!(
            d,
            Decision::Matched {
                urn: "118765".into(),
                basis: "exact"
            }
        );
    }

    #[test]
    fn a_wrong_date_of_birth_never_matches() {
        let c = child("Amelia", "Khan", "2014-03-10");
        let d = decide(
            &c,
            &[pupil("Amelia", "Khan", "2014-03-09", "118765", None)],
            T,
        );
        assert_eq!(d, Decision::NeedsReview(ReviewReason::WeakName));
        assert_eq!(
            decide(&c, &[], T),
            Decision::NeedsReview(ReviewReason::NoCandidate)
        );
    }

    #[test]
    fn a_typo_within_the_threshold_matches_and_a_weak_name_does_not() {
        let c = child("Mohamed", "Hussain", "2013-01-01");
        let p = pupil("Mohammed", "Hussain", "2013-01-01", "100001", None);
        assert_eq!(
            decide(&c, std::slice::from_ref(&p), T),
            Decision::Matched {
                urn: "100001".into(),
                basis: "similar"
            }
        );
        let c = child("Aisha", "Hussain", "2013-01-01");
        assert_eq!(
            decide(&c, &[p], T),
            Decision::NeedsReview(ReviewReason::WeakName)
        );
    }

    #[test]
    fn two_schools_without_a_hint_never_auto_pick() {
        let c = child("Jack", "Smith", "2015-05-05");
        let ps = [
            pupil("Jack", "Smith", "2015-05-05", "100001", Some("ME1 1AA")),
            pupil("Jack", "Smith", "2015-05-05", "100002", Some("ME2 2BB")),
        ];
        assert_eq!(
            decide(&c, &ps, T),
            Decision::NeedsReview(ReviewReason::AmbiguousSchools)
        );
        // A hint naming one of them breaks the tie.
        let mut h = c.clone();
        h.school_urn = Some("100002".into());
        assert_eq!(
            decide(&h, &ps, T),
            Decision::Matched {
                urn: "100002".into(),
                basis: "tie_broken_by_school_hint"
            }
        );
        // A hint naming neither does not.
        h.school_urn = Some("100003".into());
        assert_eq!(
            decide(&h, &ps, T),
            Decision::NeedsReview(ReviewReason::AmbiguousSchools)
        );
        // The postcode may break it too, when it singles out one school.
        let mut p = c.clone();
        p.postcode = Some("me1 1aa".into());
        assert_eq!(
            decide(&p, &ps, T),
            Decision::Matched {
                urn: "100001".into(),
                basis: "tie_broken_by_postcode"
            }
        );
    }

    #[test]
    fn a_hint_alone_never_matches_and_a_conflicting_hint_goes_to_review() {
        let mut c = child("Jack", "Smith", "2015-05-05");
        c.school_urn = Some("100001".into());
        c.postcode = Some("ME1 1AA".into());
        assert_eq!(
            decide(&c, &[], T),
            Decision::NeedsReview(ReviewReason::NoCandidate)
        );
        let other = pupil("Oscar", "Wilde", "2015-05-05", "100001", Some("ME1 1AA"));
        assert_eq!(
            decide(&c, &[other], T),
            Decision::NeedsReview(ReviewReason::WeakName)
        );
        let elsewhere = pupil("Jack", "Smith", "2015-05-05", "100009", None);
        assert_eq!(
            decide(&c, &[elsewhere], T),
            Decision::NeedsReview(ReviewReason::HintConflict)
        );
    }

    #[test]
    fn twins_at_one_school_match_that_school() {
        let c = child("Hassan", "Ali", "2016-02-02");
        let ps = [
            pupil("Hassan", "Ali", "2016-02-02", "100001", None),
            pupil("Hussein", "Ali", "2016-02-02", "100001", None),
        ];
        assert!(matches!(decide(&c, &ps, T), Decision::Matched { ref urn, .. } if urn == "100001"));
    }
}
