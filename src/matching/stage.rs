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
                    // Kept before the item is queued, so a queued item has
                    // its candidates (a crash in between redoes both).
                    let candidates = super::nearmiss::keep_review_candidates(
                        store,
                        &receipt,
                        i as u32,
                        &n.children[i],
                        reason.as_str(),
                        threshold,
                    )?;
                    tracing::info!(
                        receipt,
                        child = i,
                        reason = reason.as_str(),
                        candidates,
                        "needs review"
                    )
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
    spawn_with(store, move || threshold)
}

/// Like [`spawn`], with the name threshold read before each pass (so a
/// config reload changes it for the notifications matched after it).
pub fn spawn_with(store: Arc<Store>, threshold: impl Fn() -> f64 + Send + 'static) {
    std::thread::Builder::new()
        .name("kim-match".into())
        .spawn(move || {
            crate::store::writer::lower_priority(MATCH_NICE);
            loop {
                let busy = crate::heartbeat::busy(crate::heartbeat::Stage::Matcher);
                crate::heartbeat::maybe_stall(crate::heartbeat::Stage::Matcher);
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_pending(&store, threshold())
                }));
                drop(busy);
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
#[path = "stage_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "stage_clash_tests.rs"]
mod clash_tests;
