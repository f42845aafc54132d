//! Tests of `matching/nearmiss.rs`: the field comparisons, the date
//! variants, and the near-miss search against a real sealed roll (each
//! kind of near miss is found, and none is ever auto-matched).

use super::*;
use crate::import::School;
use crate::ingest::notification::Involvement;
use crate::matching::decide::Decision;
use crate::matching::stage::match_child;
use crate::store::crypto::MasterKey;

const T: f64 = 0.92;

fn d(s: &str) -> Date {
    s.parse().unwrap()
}

fn child(given: &str, family: &str, dob: &str) -> Child {
    Child {
        given_name: given.into(),
        family_name: family.into(),
        other_names: vec![],
        date_of_birth: d(dob),
        school_urn: None,
        postcode: None,
        involvement: Involvement::Present,
        voice_of_child: None,
    }
}

fn pupil(id: &str, given: &str, family: &str, dob: &str, urn: &str) -> Pupil {
    Pupil {
        pupil_id: id.into(),
        given_name: given.into(),
        family_name: family.into(),
        other_names: vec![],
        date_of_birth: d(dob),
        postcode: Some("ME14 1XX".into()),
        school_urn: urn.into(),
    }
}

#[test]
fn each_date_relation_is_named() {
    let police = d("2014-03-09");
    for (pupil, want) in [
        ("2014-03-09", DobRelation::Same),
        ("2014-09-03", DobRelation::DayMonthSwapped),
        ("2014-03-10", DobRelation::OneDay),
        ("2014-03-08", DobRelation::OneDay),
        ("2014-04-09", DobRelation::OneMonth),
        ("2014-02-09", DobRelation::OneMonth),
        ("2015-03-09", DobRelation::OneYear),
        ("2013-03-09", DobRelation::OneYear),
        ("2014-03-29", DobRelation::OneDigit),
        ("2016-03-09", DobRelation::OneDigit),
        ("2014-07-09", DobRelation::OneDigit),
        ("2012-05-01", DobRelation::Differs),
    ] {
        assert_eq!(compare_dob(police, d(pupil)), want, "{pupil}");
    }
    // Across a month and a year boundary.
    assert_eq!(
        compare_dob(d("2014-12-31"), d("2015-01-01")),
        DobRelation::OneDay
    );
    assert_eq!(
        compare_dob(d("2014-12-05"), d("2015-01-05")),
        DobRelation::OneMonth
    );
    // The same day and month swapped is the same date, not a swap.
    assert_eq!(
        compare_dob(d("2014-03-03"), d("2014-03-03")),
        DobRelation::Same
    );
}

#[test]
fn the_variants_cover_every_kind_and_only_valid_dates() {
    let v = dob_variants(d("2014-03-09"));
    for want in [
        "2014-09-03",
        "2014-03-10",
        "2014-03-08",
        "2014-04-09",
        "2014-02-09",
        "2015-03-09",
        "2013-03-09",
        "2014-03-29",
        "2016-03-09",
    ] {
        assert!(v.contains(&d(want)), "{want} missing");
    }
    assert!(!v.contains(&d("2014-03-09")), "not the date itself");
    assert!(v.len() < 100, "bounded: {}", v.len());
    // 2014-02-28 + one digit: never an impossible date such as 2014-02-29.
    assert!(dob_variants(d("2014-02-28"))
        .iter()
        .all(|x| compare_dob(d("2014-02-28"), *x) != DobRelation::Differs));
}

#[test]
fn fields_compare_postcode_and_hint() {
    let mut c = child("Amelia", "Khan", "2014-03-09");
    let p = pupil("P1", "Amelia", "Khan", "2014-03-09", "118765");
    let got = compare(&c, &p, T, "weighed");
    assert_eq!(got.name_score, 1.0);
    assert_eq!(got.names, "exact");
    assert_eq!(got.postcode, PostcodeRelation::Unknown);
    assert_eq!(got.hint, HintRelation::None);
    c.postcode = Some("me141xx".into());
    c.school_urn = Some("118765".into());
    let got = compare(&c, &p, T, "weighed");
    assert_eq!(got.postcode, PostcodeRelation::Same);
    assert_eq!(got.hint, HintRelation::Agrees);
    c.postcode = Some("ME1 2AB".into());
    c.school_urn = Some("999999".into());
    let got = compare(&c, &p, T, "weighed");
    assert_eq!(got.postcode, PostcodeRelation::Differs);
    assert_eq!(got.hint, HintRelation::Conflicts);
    // Swapped order scores as well as the right order.
    let swapped = compare(&child("Khan", "Amelia", "2014-03-09"), &p, T, "weighed");
    assert_eq!(swapped.name_score, 1.0);
}

fn store_with(pupils: &[Pupil]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), &MasterKey::from_bytes([7; 32])).unwrap();
    let schools: Vec<School> = ["118765", "118766", "118767"]
        .iter()
        .map(|u| School {
            urn: (*u).into(),
            name: format!("School {u}"),
            dsl_name: "D".into(),
            dsl_email: "dsl@school.example".into(),
            deputy_email: None,
            phone: None,
        })
        .collect();
    assert!(s.replace_schools(&schools).unwrap().is_ok());
    s.replace_roll(pupils).unwrap();
    (dir, s)
}

/// Decoys around the right pupil: other children on the roll.
fn decoys() -> Vec<Pupil> {
    vec![
        pupil("D1", "Oliver", "Smith", "2014-03-09", "118766"),
        pupil("D2", "Amelia", "Jones", "2013-06-01", "118766"),
        pupil("D3", "Zara", "Khan", "2011-01-01", "118767"),
    ]
}

#[test]
fn each_near_miss_kind_is_found_and_never_auto_matched() {
    for (kind, police_dob, want) in [
        ("swap", "2014-09-03", DobRelation::DayMonthSwapped),
        ("one day", "2014-03-10", DobRelation::OneDay),
        ("one month", "2014-04-09", DobRelation::OneMonth),
        ("one year", "2015-03-09", DobRelation::OneYear),
        ("one digit", "2014-03-29", DobRelation::OneDigit),
    ] {
        let mut roll = decoys();
        roll.push(pupil("P-RIGHT", "Amelia", "Khan", "2014-03-09", "118765"));
        let (_dir, s) = store_with(&roll);
        let c = child("Amelia", "Khan", police_dob);
        assert!(
            matches!(match_child(&s, &c, T).unwrap(), Decision::NeedsReview(_)),
            "{kind}: a near miss must never be auto-matched"
        );
        let got = review_candidates(&s, &c, T).unwrap();
        let right = got
            .iter()
            .find(|x| x.pupil.pupil_id == "P-RIGHT")
            .unwrap_or_else(|| panic!("{kind}: the right pupil is among the candidates"));
        assert_eq!(right.dob, want, "{kind}");
        assert_eq!(right.found_as, "near_miss", "{kind}");
        assert_eq!(right.pupil.school_urn, "118765");
        assert!(
            got.iter().all(|x| !x.pupil.pupil_id.starts_with('D')),
            "{kind}: no decoy with other names or dates"
        );
    }
}

#[test]
fn a_name_just_under_the_threshold_on_the_same_date_is_a_candidate() {
    // "Amelie Kham": neither name equal (found through the initials index);
    // the family name scores 0.883, under 0.92 and above 0.77.
    let mut roll = decoys();
    roll.push(pupil("P-RIGHT", "Amelia", "Khan", "2014-03-09", "118765"));
    let (_dir, s) = store_with(&roll);
    let c = child("Amelie", "Kham", "2014-03-09");
    let score = name_score(&c, &roll[3]);
    assert!((T - NEAR_NAME_MARGIN..T).contains(&score), "{score}");
    assert!(matches!(
        match_child(&s, &c, T).unwrap(),
        Decision::NeedsReview(_)
    ));
    let got = review_candidates(&s, &c, T).unwrap();
    let right = got
        .iter()
        .find(|x| x.pupil.pupil_id == "P-RIGHT")
        .expect("listed");
    assert_eq!(right.dob, DobRelation::Same);
    assert_eq!(right.names, "weak");
    assert_eq!(right.found_as, "weighed");
}

#[test]
fn namesakes_at_two_schools_are_both_listed() {
    let mut roll = decoys();
    roll.push(pupil("P-A", "Amelia", "Khan", "2014-03-09", "118765"));
    roll.push(pupil("P-B", "Amelia", "Khan", "2014-03-09", "118766"));
    let (_dir, s) = store_with(&roll);
    let c = child("Amelia", "Khan", "2014-03-09");
    assert!(matches!(
        match_child(&s, &c, T).unwrap(),
        Decision::NeedsReview(crate::matching::decide::ReviewReason::AmbiguousSchools)
    ));
    let got = review_candidates(&s, &c, T).unwrap();
    let ids: Vec<&str> = got.iter().map(|x| x.pupil.pupil_id.as_str()).collect();
    assert!(ids.contains(&"P-A") && ids.contains(&"P-B"), "{ids:?}");
    assert!(got
        .iter()
        .all(|x| x.found_as == "weighed" || x.dob != DobRelation::Same));
}
