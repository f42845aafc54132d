//! The matching stage: takes the work items written at accept time, decides
//! each child's school from the roll, and records the outcome through the
//! store in one transaction per notification (restart-safe, never twice).

use std::sync::Arc;
use std::time::Duration;

use super::decide::{agreeing_ids, decide, Decision, ReviewReason};
use crate::ingest::notification::Child;
use crate::store::{Store, StoreError};

/// Decides one child's school: the candidate lookup through the roll's blind
/// indexes (given and known-as names, family name, date of birth), then
/// [`decide`]. Records nothing; `run_pending` and the evaluation use it.
pub fn match_child(store: &Store, child: &Child, threshold: f64) -> Result<Decision, StoreError> {
    Ok(match_child_with_pupils(store, child, threshold)?.0)
}

/// `match_child`, also returning the ids of the pupils whose names agree.
fn match_child_with_pupils(
    store: &Store,
    child: &Child,
    threshold: f64,
) -> Result<(Decision, Vec<String>), StoreError> {
    let mut given = Vec::with_capacity(1 + child.other_names.len());
    given.push(child.given_name.clone());
    given.extend(child.other_names.iter().cloned());
    let candidates = store.roll_candidates(&given, &child.family_name, child.date_of_birth)?;
    let decision = decide(child, &candidates, threshold);
    // No pupil found through either name: both names may carry a typo. Look
    // wider (same date of birth and initials); the same rules decide.
    if matches!(
        decision,
        Decision::NeedsReview(ReviewReason::NoCandidate | ReviewReason::WeakName)
    ) {
        let wide = store.roll_candidates_wide(&given, &child.family_name, child.date_of_birth)?;
        if wide.len() > candidates.len() {
            return Ok((
                decide(child, &wide, threshold),
                agreeing_ids(child, &wide, threshold),
            ));
        }
    }
    Ok((decision, agreeing_ids(child, &candidates, threshold)))
}

/// Decides every child of one notification. Two children who resolve to the
/// same pupil cannot both be right (an unlisted twin with a similar name, a
/// namesake): both go to review rather than risk the wrong child's details.
pub fn match_notification(
    store: &Store,
    children: &[Child],
    threshold: f64,
) -> Result<Vec<Decision>, StoreError> {
    let mut out = Vec::with_capacity(children.len());
    for child in children {
        out.push(match_child_with_pupils(store, child, threshold)?);
    }
    let mut clash = vec![false; out.len()];
    for i in 0..out.len() {
        for j in i + 1..out.len() {
            let either_matched = matches!(out[i].0, Decision::Matched { .. })
                || matches!(out[j].0, Decision::Matched { .. });
            if either_matched && out[i].1.iter().any(|p| out[j].1.contains(p)) {
                clash[i] = true;
                clash[j] = true;
            }
        }
    }
    Ok(out
        .into_iter()
        .zip(clash)
        .map(|((d, _), c)| {
            if c {
                Decision::NeedsReview(ReviewReason::SamePupilTwice)
            } else {
                d
            }
        })
        .collect())
}

/// Matches every notification waiting now. Returns how many were done.
pub fn run_pending(store: &Store, threshold: f64) -> Result<usize, StoreError> {
    let pending: Vec<String> = store.pending_match().collect::<Result<_, _>>()?;
    let mut done = 0;
    for receipt in pending {
        let Some(n) = store.load_notification(&receipt)? else {
            crate::lograte::error!(
                "match.unreadable",
                receipt,
                "work item without a readable notification; left in place"
            );
            continue;
        };
        let mut decisions = Vec::with_capacity(n.children.len());
        for (i, d) in match_notification(store, &n.children, threshold)?
            .into_iter()
            .enumerate()
        {
            match &d {
                Decision::Matched { urn, basis } => {
                    tracing::info!(receipt, child = i, urn, basis, "matched")
                }
                Decision::NeedsReview(reason) => {
                    tracing::info!(receipt, child = i, reason = reason.as_str(), "needs review")
                }
            }
            decisions.push((i as u32, d));
        }
        if store.complete_match(&receipt, &decisions)?.is_some() {
            done += 1;
        }
    }
    if done > 0 {
        store.flush_now()?;
    }
    Ok(done)
}

/// Runs the stage on a thread of its own, at a lower CPU priority than
/// the accept path (a burst of police notifications is answered first;
/// matching follows within moments): on every wake-up and at least every
/// few seconds (so nothing waits on a lost wake-up). It lives as long as
/// the process.
pub fn spawn(store: Arc<Store>, threshold: f64) {
    std::thread::Builder::new()
        .name("kim-match".into())
        .spawn(move || {
            crate::store::writer::lower_priority(MATCH_NICE);
            loop {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_pending(&store, threshold)
                }));
                match ran {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        store.write_failed(&e);
                        crate::lograte::error!("match.stage", error = %e, "matching stage failed; retrying")
                    }
                    Err(_) => crate::lograte::error!("match.panic", "matching stage panicked; retrying"),
                }
                store.match_wanted.wait(Duration::from_secs(5));
            }
        })
        .expect("spawn the matching thread");
}

/// How much lower the matching thread's priority is (nice).
const MATCH_NICE: i32 = 10;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::EventKind;
    use crate::import::{Pupil, School};
    use crate::ingest::notification::parse_notification;
    use crate::store::crypto::MasterKey;
    use crate::store::ChildState;

    fn body(reference: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "police_reference": reference,
            "incident": {"occurred_at": "2026-11-22T21:40:00Z", "category": "domestic_abuse"},
            "children": [
                {"given_name": "Amelia", "family_name": "Khan", "date_of_birth": "2014-03-09", "involvement": "present"},
                {"given_name": "Nobody", "family_name": "Known", "date_of_birth": "2015-01-01", "involvement": "unknown"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn a_restart_between_accept_and_match_loses_nothing_and_matches_once() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::from_bytes([5; 32]);
        let now: jiff::Timestamp = "2026-11-23T07:00:00Z".parse().unwrap();
        let receipt = {
            let s = Store::open(dir.path(), &key).unwrap();
            let school = School {
                urn: "118765".into(),
                name: "Maidstone Primary".into(),
                dsl_name: "D".into(),
                dsl_email: "dsl@school.example".into(),
                deputy_email: None,
                phone: None,
            };
            assert!(s.replace_schools(&[school]).unwrap().is_ok());
            s.replace_roll(&[Pupil {
                pupil_id: "P1".into(),
                given_name: "Amelia".into(),
                family_name: "Khan".into(),
                other_names: vec![],
                date_of_birth: "2014-03-09".parse().unwrap(),
                postcode: None,
                school_urn: "118765".into(),
            }])
            .unwrap();
            let n = parse_notification(&body("KNT/1"), now).unwrap();
            let (out, _) = s.accept("kent", &n, now).unwrap();
            let crate::store::AcceptOutcome::Accepted(rec) = out else {
                panic!()
            };
            s.flush_now().unwrap();
            rec.receipt_id.to_string()
            // The store is dropped here without matching: the "crash".
        };
        let s = Store::open(dir.path(), &key).unwrap();
        assert_eq!(s.pending_match().count(), 1, "the work item survived");
        assert_eq!(run_pending(&s, 0.92).unwrap(), 1);
        assert_eq!(
            run_pending(&s, 0.92).unwrap(),
            0,
            "nothing is matched twice"
        );
        let rec = s.record(&receipt).unwrap().unwrap();
        assert_eq!(rec.children[0].state, ChildState::Matched);
        assert_eq!(rec.children[0].school_urn.as_deref(), Some("118765"));
        assert_eq!(rec.children[1].state, ChildState::NeedsReview);
        let kinds: Vec<EventKind> = s.audit_events().map(|e| e.unwrap().kind).collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == EventKind::Matched).count(),
            1
        );
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == EventKind::NeedsReview)
                .count(),
            1
        );
        let review = s.review_list().unwrap();
        assert_eq!(review.len(), 1);
        assert_eq!(review[0].index, 1);
        assert_eq!(review[0].reason.as_str(), "no_candidate");
        // The record trees link the police reference, the receipt and the
        // school: their values are sealed, none of the three in the clear.
        for tree in [&s.t.notifications, &s.t.outbox, &s.t.review] {
            assert!(!tree.is_empty());
            for kv in tree.iter() {
                let (_, v) = kv.unwrap();
                for needle in [&b"KNT/1"[..], b"118765", receipt.as_bytes(), b"kent"] {
                    assert!(
                        !v.windows(needle.len()).any(|w| w == needle),
                        "{} in the clear in a record value",
                        String::from_utf8_lossy(needle)
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod clash_tests {
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
}
