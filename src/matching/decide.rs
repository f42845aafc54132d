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
#[path = "decide_tests.rs"]
mod tests;
