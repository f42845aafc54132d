//! Tests of `store/roll/find.rs`: `roll_find` through the family-name
//! index, and the clear refusal for a roll imported without it.

use super::*;
use crate::store::crypto::MasterKey;

fn pupil(id: &str, given: &str, family: &str, dob: &str, urn: &str) -> Pupil {
    Pupil {
        pupil_id: id.into(),
        given_name: given.into(),
        family_name: family.into(),
        other_names: vec![],
        date_of_birth: dob.parse().unwrap(),
        postcode: None,
        school_urn: urn.into(),
    }
}

fn store(pupils: &[Pupil]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), &MasterKey::from_bytes([3; 32])).unwrap();
    s.replace_roll(pupils).unwrap();
    (dir, s)
}

fn q(family: &str) -> RollQuery<'_> {
    RollQuery {
        family,
        given: None,
        dob: None,
        threshold: 0.92,
        limit: 50,
    }
}

fn ids(f: &RollFound) -> Vec<&str> {
    let mut v: Vec<&str> = f.pupils.iter().map(|p| p.pupil_id.as_str()).collect();
    v.sort_unstable();
    v
}

fn roll() -> Vec<Pupil> {
    let mut known = pupil("P3", "Olivia", "O'Brien", "2012-07-01", "100003");
    known.other_names = vec!["Liv".into()];
    vec![
        pupil("P1", "Amelia", "Khan", "2014-03-09", "100001"),
        pupil("P2", "Yusuf", "Khan", "2013-05-02", "100002"),
        known,
        pupil("P4", "Amelia", "Smith", "2014-03-09", "100001"),
    ]
}

#[test]
fn finds_by_family_alone_and_by_family_and_given() {
    let (_d, s) = store(&roll());
    assert_eq!(ids(&s.roll_find(&q("KHAN")).unwrap()), ["P1", "P2"]);
    // Normalised: apostrophes, case, spaces.
    assert_eq!(ids(&s.roll_find(&q("o brien")).unwrap()), ["P3"]);
    let given = RollQuery {
        given: Some("Amelia"),
        ..q("Khan")
    };
    assert_eq!(ids(&s.roll_find(&given).unwrap()), ["P1"]);
    // A known-as name, and a typo in the given name within the threshold.
    let liv = RollQuery {
        given: Some("Liv"),
        ..q("OBrien")
    };
    assert_eq!(ids(&s.roll_find(&liv).unwrap()), ["P3"]);
    let typo = RollQuery {
        given: Some("Yussuf"),
        ..q("Khan")
    };
    assert_eq!(ids(&s.roll_find(&typo).unwrap()), ["P2"]);
}

#[test]
fn finds_nothing_for_an_absent_name() {
    let (_d, s) = store(&roll());
    assert!(s.roll_find(&q("Nobody")).unwrap().pupils.is_empty());
    let wrong_given = RollQuery {
        given: Some("Zara"),
        ..q("Khan")
    };
    assert!(s.roll_find(&wrong_given).unwrap().pupils.is_empty());
}

#[test]
fn with_a_date_of_birth_a_similar_family_name_is_found() {
    let (_d, s) = store(&roll());
    let by_dob = RollQuery {
        dob: Some("2014-03-09".parse().unwrap()),
        given: Some("Amelia"),
        ..q("Khaan")
    };
    assert_eq!(ids(&s.roll_find(&by_dob).unwrap()), ["P1"]);
    let other_dob = RollQuery {
        dob: Some("2014-03-10".parse().unwrap()),
        ..q("Khan")
    };
    assert!(s.roll_find(&other_dob).unwrap().pupils.is_empty());
}

#[test]
fn at_most_limit_rows_and_says_there_are_more() {
    let many: Vec<Pupil> = (0..60)
        .map(|i| pupil(&format!("S{i}"), "Sam", "Smith", "2014-01-01", "100001"))
        .collect();
    let (_d, s) = store(&many);
    let f = s.roll_find(&q("Smith")).unwrap();
    assert_eq!(f.pupils.len(), 50);
    assert!(f.more);
}

#[test]
fn an_older_roll_without_the_index_asks_for_a_reimport() {
    let (_d, s) = store(&roll());
    // What a roll imported by an older kim looks like: no marker.
    s.t.meta.remove(ROLL_FIND_INDEX).unwrap();
    let e = s.roll_find(&q("Khan")).unwrap_err();
    assert!(matches!(e, RollFindError::NeedsReimport), "{e}");
    assert!(e.to_string().contains("re-import the roll"));
    // A fresh import writes the index again.
    s.replace_roll(&roll()).unwrap();
    assert_eq!(s.roll_find(&q("Khan")).unwrap().pupils.len(), 2);
}

#[test]
fn no_roll_and_empty_names_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), &MasterKey::from_bytes([3; 32])).unwrap();
    assert!(matches!(
        s.roll_find(&q("Khan")).unwrap_err(),
        RollFindError::NoRoll
    ));
    let (_d, s) = store(&roll());
    assert!(matches!(
        s.roll_find(&q("--")).unwrap_err(),
        RollFindError::EmptyName
    ));
}
