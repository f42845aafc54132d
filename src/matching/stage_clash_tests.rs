//! Tests of `matching/stage.rs`, kept in their own file.

use super::*;
use crate::import::{Pupil, School};
use crate::ingest::notification::Involvement;
use crate::store::crypto::MasterKey;

fn child(given: &str, family: &str) -> Child {
    Child {
        given_name: given.into(),
        family_name: family.into(),
        other_names: vec![],
        date_of_birth: "2016-04-04".parse().unwrap(),
        school_urn: None,
        postcode: None,
        involvement: Involvement::Present,
        voice_of_child: None,
    }
}

#[test]
fn two_children_resolving_to_one_pupil_both_go_to_review() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), &MasterKey::from_bytes([9; 32])).unwrap();
    let school = |urn: &str| School {
        urn: urn.into(),
        name: "S".into(),
        dsl_name: "D".into(),
        dsl_email: "d@s.example".into(),
        deputy_email: None,
        phone: None,
    };
    assert!(s
        .replace_schools(&[school("100001"), school("100002")])
        .unwrap()
        .is_ok());
    let pupil = |id: &str, given: &str, urn: &str| Pupil {
        pupil_id: id.into(),
        given_name: given.into(),
        family_name: "Novak".into(),
        other_names: vec![],
        date_of_birth: "2016-04-04".parse().unwrap(),
        postcode: None,
        school_urn: urn.into(),
    };
    // Only Daniel is on the roll; his twin Daniela is not.
    s.replace_roll(&[pupil("P1", "Daniel", "100001")]).unwrap();
    // Alone, "Daniela" would match Daniel's school (Jaro-Winkler 0.97)...
    assert!(matches!(
        match_child(&s, &child("Daniela", "Novak"), 0.92).unwrap(),
        Decision::Matched { .. }
    ));
    // ...so when both are notified together, neither is sent automatically.
    let d = match_notification(
        &s,
        &[child("Daniel", "Novak"), child("Daniela", "Novak")],
        0.92,
    )
    .unwrap();
    assert_eq!(
        d,
        vec![Decision::NeedsReview(ReviewReason::SamePupilTwice); 2]
    );
    // Twins who are both on the roll match, each to their own record.
    s.replace_roll(&[
        pupil("P1", "Daniel", "100001"),
        pupil("P2", "Amira", "100001"),
    ])
    .unwrap();
    let d = match_notification(
        &s,
        &[child("Daniel", "Novak"), child("Amira", "Novak")],
        0.92,
    )
    .unwrap();
    assert!(
        d.iter().all(|d| matches!(d, Decision::Matched { .. })),
        "{d:?}"
    );
}
