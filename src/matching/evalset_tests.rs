//! Tests of the parent module, kept in their own file.
use crate::matching::decide::Decision;

use super::*;
use crate::matching::stage::match_child;
use crate::normalise::normalise;
use crate::store::crypto::MasterKey;
use crate::store::Store;

const SEED: u64 = 0x6B69_6D5F_6576_616C; // "kim_eval"

#[test]
fn evalset_generation_is_deterministic_and_covers_every_kind() {
    let a = generate(7, 3_000, 40, 400);
    let b = generate(7, 3_000, 40, 400);
    assert_eq!(a.pupils, b.pupils);
    assert_eq!(a.cases, b.cases);
    assert_eq!(a.pupils.len(), 3_000);
    assert_eq!(a.cases.len(), 400);
    for kind in CaseKind::ALL {
        assert!(a.cases.iter().any(|c| c.kind == *kind), "{kind:?}");
    }
    let c = generate(8, 3_000, 40, 400);
    assert_ne!(a.cases, c.cases, "another seed, another set");
}

#[test]
fn evalset_typos_are_one_edit_within_the_threshold() {
    // 600 cases: at least 40 typo cases among the 26 kinds.
    let set = generate(SEED, 3_000, 40, 600);
    let mut seen = 0;
    for case in set
        .cases
        .iter()
        .filter(|c| matches!(c.kind, CaseKind::TypoOneLetter | CaseKind::TypoBoth))
    {
        let want = if case.kind == CaseKind::TypoBoth {
            2
        } else {
            1
        };
        let c = &case.child;
        // Some pupil at the truth's school, born that day, is the source:
        // `want` names differ, each by one edit within the threshold.
        let source = set.pupils.iter().any(|p| {
            if Some(p.school_urn.as_str()) != case.truth.as_deref()
                || p.date_of_birth != c.date_of_birth
            {
                return false;
            }
            let pairs = [
                (normalise(&p.given_name), normalise(&c.given_name)),
                (normalise(&p.family_name), normalise(&c.family_name)),
            ];
            pairs.iter().filter(|(a, b)| a != b).count() == want
                && pairs.iter().all(|(a, b)| {
                    strsim::osa_distance(a, b) <= 1 && strsim::jaro_winkler(a, b) >= THRESHOLD
                })
        });
        assert!(source, "{:?}", case.kind);
        seen += 1;
    }
    assert!(seen >= 40);
}

#[test]
fn evalset_folding_agrees_with_normalise_on_the_name_pools() {
    for c in CULTURES {
        for name in c.boys.iter().chain(c.girls).chain(c.families) {
            assert_eq!(fold(name), normalise(name), "{name}");
            assert_eq!(
                normalise(&strip_diacritics(name)),
                normalise(name),
                "{name}"
            );
        }
    }
}

/// The evaluation (DESIGN §5.4): a 20,000-pupil roll at 500 schools in a
/// real store, 3,000 notified children, each matched exactly as the
/// matching stage does. `cargo test --lib evalset -- --nocapture` prints
/// the table.
#[test]
fn evalset_precision_is_one_and_recall_is_measured() {
    let set = generate(SEED, 20_000, 500, 3_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store"), &MasterKey::from_bytes([7; 32])).unwrap();
    assert!(store.replace_schools(&set.schools).unwrap().is_ok());
    store.replace_roll(&set.pupils).unwrap();
    let mut score = Score::default();
    for case in &set.cases {
        let d = match_child(&store, &case.child, THRESHOLD).unwrap();
        score.record(case, &d);
    }
    println!("{}", score.table());

    for kind in CaseKind::ALL {
        let n = score.per_kind.get(kind).map_or(0, |s| s.cases);
        assert!(n >= 20, "{} has {n} cases", kind.as_str());
    }
    // Precision first: no wrong school, and no match where none is right.
    let total = score.total();
    assert_eq!(total.matched_wrong, 0, "WRONG SCHOOL:\n{}", score.table());
    assert_eq!(total.precision(), 1.0);
    // The cases built for the review queue all reach it.
    for (k, s) in &score.per_kind {
        if !k.expects_match() {
            assert_eq!(s.reviewed, s.cases, "{} must go to review", k.as_str());
        }
    }
    // Recall floors at what the current rules achieve, so a regression
    // fails. The goal is >= 0.97 where a match is expected; the rules
    // reach 1.0 on every such kind except `typo_both` (0.0), which
    // holds the total at 0.9286: the candidate lookup needs one exact
    // name key (family or given/known-as, with the date of birth) and a
    // child with both names misspelt has none, so it goes to review as
    // no_candidate. That is the blind-index design (DESIGN §5.2), not a
    // decision rule; precision is not traded for it.
    for (k, s) in &score.per_kind {
        if !k.expects_match() {
            continue;
        }
        let floor = match k {
            CaseKind::TypoBoth => 0.0,
            _ => 1.0,
        };
        assert!(
            s.recall() >= floor,
            "{} recall {:.4} < {floor}",
            k.as_str(),
            s.recall()
        );
    }
    let recall = score.match_expected().recall();
    assert!(
        recall >= 0.92,
        "recall where a match is expected {recall:.4} < 0.92"
    );
}

/// Issue 12: every near-miss case goes to review (above) AND `kim review
/// show` would list its source pupil: the near-miss search finds, for each
/// kind, a pupil whose names agree with the date relation the case was
/// built with (for a family name just under the threshold: the same date,
/// names graded weak, scored within the margin).
#[test]
fn evalset_near_misses_are_listed_as_candidates() {
    use crate::matching::nearmiss::{review_candidates, DobRelation, NEAR_NAME_MARGIN};
    let set = generate(SEED, 5_000, 100, 1_300);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store"), &MasterKey::from_bytes([7; 32])).unwrap();
    assert!(store.replace_schools(&set.schools).unwrap().is_ok());
    store.replace_roll(&set.pupils).unwrap();
    for (kind, relation) in CaseKind::NEAR_MISSES {
        let mut n = 0;
        for case in set.cases.iter().filter(|c| c.kind == *kind) {
            let d = match_child(&store, &case.child, THRESHOLD).unwrap();
            assert!(
                matches!(d, Decision::NeedsReview(_)),
                "{}: a near miss was auto-matched",
                kind.as_str()
            );
            let got = review_candidates(&store, &case.child, THRESHOLD).unwrap();
            let listed = got.iter().any(|c| {
                c.dob == *relation
                    && if *relation == DobRelation::Same {
                        c.names == "weak" && c.name_score >= THRESHOLD - NEAR_NAME_MARGIN
                    } else {
                        c.names != "weak" && c.found_as == "near_miss"
                    }
            });
            assert!(listed, "{}: the source pupil is not listed", kind.as_str());
            n += 1;
        }
        assert!(n >= 20, "{}: {n} cases", kind.as_str());
    }
}
