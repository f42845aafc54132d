//! Tests of `matching/decide.rs`, kept in their own file.

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
