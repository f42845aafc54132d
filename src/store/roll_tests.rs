//! Tests of the parent module, kept in their own file.

use super::*;
use crate::store::crypto::MasterKey;

fn school(urn: &str) -> School {
    School {
        urn: urn.into(),
        name: format!("School {urn}"),
        dsl_name: "Ms Dee Ess-Ell".into(),
        dsl_email: "dsl@school.example".into(),
        deputy_email: None,
        phone: None,
    }
}

fn pupil(id: &str, given: &str, family: &str, other: &[&str], dob: &str, urn: &str) -> Pupil {
    Pupil {
        pupil_id: id.into(),
        given_name: given.into(),
        family_name: family.into(),
        other_names: other.iter().map(|s| s.to_string()).collect(),
        date_of_birth: dob.parse().unwrap(),
        postcode: Some("QX9 7ZZ".into()),
        school_urn: urn.into(),
    }
}

fn store(dir: &std::path::Path) -> Store {
    Store::open(&dir.join("store"), &MasterKey::from_bytes([3; 32])).unwrap()
}

fn ids(v: &[Pupil]) -> Vec<&str> {
    let mut ids: Vec<&str> = v.iter().map(|p| p.pupil_id.as_str()).collect();
    ids.sort();
    ids
}

#[test]
fn candidates_come_from_blind_indexes_in_both_orders_and_need_the_exact_dob() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    assert!(s
        .replace_schools(&[school("100001"), school("100002")])
        .unwrap()
        .is_ok());
    s.replace_roll(&[
        pupil(
            "P1",
            "Zebediah",
            "Quixotic-Marsh",
            &["Zeb"],
            "2013-05-17",
            "100001",
        ),
        pupil("P2", "Siobhán", "O'Brien", &[], "2014-01-02", "100002"),
        pupil("P3", "Other", "Quixotic-Marsh", &[], "2013-05-18", "100002"),
    ])
    .unwrap();
    let d = |x: &str| x.parse::<jiff::civil::Date>().unwrap();
    // Family name + dob, with punctuation and case differences.
    assert_eq!(
        ids(&s
            .roll_candidates(&["Zebby".into()], "QUIXOTIC MARSH", d("2013-05-17"))
            .unwrap()),
        ["P1"]
    );
    // Given (known-as) name + dob.
    assert_eq!(
        ids(&s
            .roll_candidates(&["zeb".into()], "Unknown", d("2013-05-17"))
            .unwrap()),
        ["P1"]
    );
    // Swapped order.
    assert_eq!(
        ids(&s
            .roll_candidates(&["OBrien".into()], "Siobhan", d("2014-01-02"))
            .unwrap()),
        ["P2"]
    );
    // A wrong date of birth finds nothing.
    assert!(s
        .roll_candidates(&["Zebediah".into()], "Quixotic-Marsh", d("2013-05-16"))
        .unwrap()
        .is_empty());
    let stats = s.roll_stats().unwrap();
    assert_eq!(stats.pupils, 3);
    assert_eq!(
        stats.per_school,
        vec![("100001".into(), 1), ("100002".into(), 2)]
    );
}

#[test]
fn a_new_roll_replaces_the_old_one_and_schools_in_use_cannot_be_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    assert!(s
        .replace_schools(&[school("100001"), school("100002")])
        .unwrap()
        .is_ok());
    s.replace_roll(&[pupil("P1", "Ann", "Lee", &[], "2015-06-01", "100001")])
        .unwrap();
    s.replace_roll(&[pupil("P9", "Bo", "Ng", &[], "2016-07-02", "100002")])
        .unwrap();
    let d = |x: &str| x.parse::<jiff::civil::Date>().unwrap();
    assert!(s
        .roll_candidates(&["Ann".into()], "Lee", d("2015-06-01"))
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(&s
            .roll_candidates(&["Bo".into()], "Ng", d("2016-07-02"))
            .unwrap()),
        ["P9"]
    );
    assert_eq!(
        roll_files(&s),
        ["00000002.idx", "00000002.rec"],
        "the old generation was removed"
    );
    // 100002 has a pupil: a directory without it is refused.
    assert_eq!(
        s.replace_schools(&[school("100001")]).unwrap(),
        Err(vec!["100002".to_owned()])
    );
    assert_eq!(s.schools().unwrap().len(), 2);
}

/// The names in the store's roll folder, sorted.
fn roll_files(s: &Store) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(rollfile::roll_dir(&s.dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Every key in `tree` belongs to `generation`.
fn only_generation(tree: &sled::Tree, generation: u32) -> bool {
    tree.iter()
        .keys()
        .all(|k| k.unwrap().starts_with(&gen_prefix(generation)))
}

fn d(x: &str) -> jiff::civil::Date {
    x.parse().unwrap()
}

#[test]
fn a_failed_import_leaves_the_old_roll_and_removes_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    assert!(s.replace_schools(&[school("100001")]).unwrap().is_ok());
    s.replace_roll(&[pupil("P1", "Ann", "Lee", &[], "2015-06-01", "100001")])
        .unwrap();
    let err = s
        .import_roll_stream(|w| {
            for i in 0..40 {
                w.add(&pupil(
                    &format!("N{i}"),
                    "Bo",
                    "Ng",
                    &[],
                    "2016-07-02",
                    "100001",
                ))?;
            }
            assert_eq!(w.pupils(), 40);
            Err(StoreError::Corrupt("the file was rejected".into()))
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert_eq!(s.roll_stats().unwrap().pupils, 1);
    assert_eq!(s.roll_generation().unwrap().0, 1);
    assert_eq!(
        ids(&s
            .roll_candidates(&["Ann".into()], "Lee", d("2015-06-01"))
            .unwrap()),
        ["P1"]
    );
    assert!(s
        .roll_candidates(&["Bo".into()], "Ng", d("2016-07-02"))
        .unwrap()
        .is_empty());
    assert!(only_generation(&s.t.roll, 1) && only_generation(&s.t.roll_idx, 1));
    assert_eq!(roll_files(&s), ["00000001.idx", "00000001.rec"]);
}

#[test]
fn the_next_import_removes_what_a_crashed_one_left() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    assert!(s.replace_schools(&[school("100001")]).unwrap().is_ok());
    s.replace_roll(&[pupil("P1", "Ann", "Lee", &[], "2015-06-01", "100001")])
        .unwrap();
    // A crash mid-import leaves generation 2 half written (and, in an
    // older version, a stale generation 0).
    for tree in [&s.t.roll, &s.t.roll_idx] {
        for generation in [0u32, 2, 9] {
            let mut k = gen_prefix(generation).to_vec();
            k.extend_from_slice(b"leftover");
            tree.insert(k, &b"x"[..]).unwrap();
        }
    }
    let folder = rollfile::roll_dir(&s.dir);
    for leftover in ["00000002.rec", "00000009.idx"] {
        std::fs::write(folder.join(leftover), b"half written").unwrap();
    }
    // The old roll is still the roll.
    assert_eq!(
        ids(&s
            .roll_candidates(&["Ann".into()], "Lee", d("2015-06-01"))
            .unwrap()),
        ["P1"]
    );
    s.replace_roll(&[pupil("P2", "Bo", "Ng", &[], "2016-07-02", "100001")])
        .unwrap();
    assert!(s.t.roll.is_empty() && s.t.roll_idx.is_empty());
    assert_eq!(roll_files(&s), ["00000002.idx", "00000002.rec"]);
    assert_eq!(
        ids(&s
            .roll_candidates(&["Bo".into()], "Ng", d("2016-07-02"))
            .unwrap()),
        ["P2"]
    );
}

#[test]
fn a_large_roll_is_found_through_its_index_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let urns: Vec<School> = (0..7).map(|i| school(&format!("10000{i}"))).collect();
    assert!(s.replace_schools(&urns).unwrap().is_ok());
    let given = ["Ann", "Bo", "Siobhán", "Zoë", "Jean-Luc", "Łucja"];
    let roll: Vec<Pupil> = (0..3000)
        .map(|i| {
            let other = if i % 5 == 0 { vec!["Kit"] } else { vec![] };
            pupil(
                &format!("P{i}"),
                given[i % given.len()],
                &format!("Fam{}", char::from(b'a' + (i % 26) as u8)),
                &other,
                &format!("2014-{:02}-{:02}", 1 + i % 12, 1 + (i / 12) % 28),
                &format!("10000{}", i % 7),
            )
        })
        .collect();
    s.replace_roll(&roll).unwrap();
    let (generation, layout) = s.roll_generation().unwrap();
    assert_eq!(generation, 1);
    assert!(
        matches!(layout, Some(Layout::Files { index_bits }) if index_bits >= 5),
        "{layout:?}"
    );
    for p in roll.iter().step_by(37).chain(roll.last()) {
        let by_family = s
            .roll_candidates(&["Nobody".into()], &p.family_name, p.date_of_birth)
            .unwrap();
        assert!(by_family.contains(p), "{}", p.pupil_id);
        let by_given = s
            .roll_candidates(
                std::slice::from_ref(&p.given_name),
                "Nobody",
                p.date_of_birth,
            )
            .unwrap();
        assert!(by_given.contains(p), "{}", p.pupil_id);
        for c in by_family.iter().chain(&by_given) {
            assert_eq!(c.date_of_birth, p.date_of_birth);
        }
    }
    let kit = s
        .roll_candidates(&["kit".into()], "Nobody", roll[0].date_of_birth)
        .unwrap();
    // P0 and P1680 are both born on 2014-01-01 and known as Kit.
    assert_eq!(ids(&kit), ["P0", "P1680"]);
    let stats = s.roll_stats().unwrap();
    assert_eq!((stats.pupils, stats.schools), (3000, 7));
    assert_eq!(stats.per_school[0], ("100000".to_owned(), 429));
}

#[test]
fn generation_pointer_and_index_helpers() {
    for (generation, layout) in [
        (7, Layout::Files { index_bits: 0 }),
        (u32::MAX, Layout::Files { index_bits: 24 }),
    ] {
        assert_eq!(
            parse_generation(&generation_value(generation, layout)),
            Some((generation, layout))
        );
    }
    assert_eq!(parse_generation(&[0, 0, 1]), None);
    // A bare number or the bucketed tag (pre-release sled layouts) is no
    // layout of store format 1.
    assert_eq!(parse_generation(&[0, 0, 0, 1]), None);
    assert_eq!(parse_generation(&[0, 0, 0, 1, 2, 1]), None);
    assert_eq!(parse_generation(&[0, 0, 0, 1, LAYOUT_FILES, 25]), None);
    assert_eq!(parse_generation(&[0, 0, 0, 1, 9, 1]), None);
    assert_eq!(index_bits(0), 0);
    assert_eq!(index_bits(127), 0);
    assert_eq!(index_bits(256), 2);
    assert_eq!(index_bits(u64::MAX), MAX_INDEX_BITS);
}

#[test]
fn no_name_dob_or_postcode_in_the_clear_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = store(dir.path());
        assert!(s.replace_schools(&[school("100001")]).unwrap().is_ok());
        s.replace_roll(&[pupil(
            "PID-SECRET-1",
            "Zebediah",
            "Quixotic-Marsh",
            &["Zeb"],
            "2013-05-17",
            "100001",
        )])
        .unwrap();
        s.flush_now().unwrap();
    }
    let mut stack = vec![dir.path().to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
                continue;
            }
            let bytes = std::fs::read(e.path()).unwrap();
            for needle in [
                "Zebediah",
                "Quixotic",
                "2013-05-17",
                "QX9 7ZZ",
                "PID-SECRET",
                "Ess-Ell",
                "dsl@school",
            ] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle} in the clear in {}",
                    e.path().display()
                );
            }
        }
    }
}

#[test]
fn the_wide_lookup_finds_a_typo_in_both_names_by_initials_and_exact_dob() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    assert!(s.replace_schools(&[school("100001")]).unwrap().is_ok());
    s.replace_roll(&[
        pupil(
            "P1",
            "Zebediah",
            "Quixotic",
            &["Zeb"],
            "2013-05-17",
            "100001",
        ),
        pupil("P2", "Amelia", "Quinn", &[], "2013-05-17", "100001"),
        pupil("P3", "Zara", "Quayle", &[], "2013-05-18", "100001"),
    ])
    .unwrap();
    let d = |x: &str| x.parse::<jiff::civil::Date>().unwrap();
    // A typo in both names: the name indexes find nobody…
    assert!(s
        .roll_candidates(&["Zebedaih".into()], "Quixottic", d("2013-05-17"))
        .unwrap()
        .is_empty());
    // …the initials + date of birth do, in either name order; never another
    // date of birth or other initials.
    assert_eq!(
        ids(&s
            .roll_candidates_wide(&["Zebedaih".into()], "Quixottic", d("2013-05-17"))
            .unwrap()),
        ["P1"]
    );
    assert_eq!(
        ids(&s
            .roll_candidates_wide(&["Quixottic".into()], "Zebedaih", d("2013-05-17"))
            .unwrap()),
        ["P1"]
    );
    assert!(s
        .roll_candidates_wide(&["Zebedaih".into()], "Quixottic", d("2013-05-16"))
        .unwrap()
        .is_empty());
    // Known-as initials too.
    assert_eq!(
        ids(&s
            .roll_candidates_wide(&["Zebb".into()], "Quixottic", d("2013-05-17"))
            .unwrap()),
        ["P1"]
    );
}

#[test]
fn a_damaged_roll_file_is_an_error_not_a_silent_miss() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    assert!(s.replace_schools(&[school("100001")]).unwrap().is_ok());
    s.replace_roll(&[pupil("P1", "Ann", "Lee", &[], "2015-06-01", "100001")])
        .unwrap();
    drop(s);
    // A flipped byte in the sealed record: the record no longer opens.
    let rec = dir.path().join("store/roll/00000001.rec");
    let mut bytes = std::fs::read(&rec).unwrap();
    bytes[20] ^= 0x40;
    std::fs::write(&rec, bytes).unwrap();
    let s = store(dir.path());
    let err = s
        .roll_candidates(&["Ann".into()], "Lee", d("2015-06-01"))
        .unwrap_err();
    assert!(matches!(err, StoreError::Crypto(_)), "{err:?}");
    // A missing index file.
    std::fs::remove_file(dir.path().join("store/roll/00000001.idx")).unwrap();
    drop(s);
    let s = store(dir.path());
    assert!(s
        .roll_candidates(&["Ann".into()], "Lee", d("2015-06-01"))
        .is_err());
}

#[test]
fn the_roll_in_force_can_be_read_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    assert_eq!(s.warm_roll().unwrap(), 0, "no roll yet");
    assert!(s.replace_schools(&[school("100001")]).unwrap().is_ok());
    s.replace_roll(&[pupil("P1", "Ann", "Lee", &[], "2015-06-01", "100001")])
        .unwrap();
    let folder = rollfile::roll_dir(&s.dir);
    let size: u64 = ["00000001.idx", "00000001.rec"]
        .iter()
        .map(|f| std::fs::metadata(folder.join(f)).unwrap().len())
        .sum();
    assert_eq!(s.warm_roll().unwrap(), size);
}
