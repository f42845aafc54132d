//! The figures of `kim report` (issue 15): one pure computation over audit
//! events (and the school directory's URN → name), which every renderer
//! (text, JSON, CSV in [`render`]) prints unchanged. Audit events hold
//! identifiers, states and codes only, so nothing here can carry a child's
//! name, date of birth or postcode; sealed payloads are never opened.
//!
//! The cohort is the notifications *received* in the period (UK dates,
//! both ends included); their children are followed through every later
//! event the chain holds, so a child received on the last evening and
//! delivered the next morning counts as delivered.

pub mod render;

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, EventKind};
use crate::calendar::school_tz;

/// A `--from`/`--to` that cannot make a period.
#[derive(Debug, thiserror::Error)]
pub enum PeriodError {
    #[error("{flag}: {value:?} is not a date (YYYY-MM-DD)")]
    BadDate { flag: &'static str, value: String },
    #[error("--from {from} is after --to {to}")]
    Reversed { from: Date, to: Date },
    #[error("the period cannot be placed in UK time: {0}")]
    Time(String),
}

/// The period: UK calendar dates `from..=to`, and the instants they span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub from: Date,
    pub to: Date,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Period {
    pub fn new(from: Date, to: Date) -> Result<Self, PeriodError> {
        if from > to {
            return Err(PeriodError::Reversed { from, to });
        }
        let tz = school_tz();
        let t = |e: jiff::Error| PeriodError::Time(e.to_string());
        let start = from.to_zoned(tz.clone()).map_err(t)?.timestamp();
        let next = to.tomorrow().map_err(t)?;
        let end = next.to_zoned(tz).map_err(t)?.timestamp();
        Ok(Self {
            from,
            to,
            start,
            end,
        })
    }

    /// The period the flags name at `now`: both given, as given; none, the
    /// last full calendar month (UK time); only `--from`, up to today; only
    /// `--to`, from the first of its month.
    pub fn from_flags(
        from: Option<&str>,
        to: Option<&str>,
        now: Timestamp,
    ) -> Result<Self, PeriodError> {
        let parse = |flag: &'static str, v: &str| {
            v.parse::<Date>().map_err(|_| PeriodError::BadDate {
                flag,
                value: v.to_owned(),
            })
        };
        let today = now.to_zoned(school_tz()).date();
        let t = |e: jiff::Error| PeriodError::Time(e.to_string());
        match (from, to) {
            (None, None) => {
                let first_this = today.first_of_month();
                let last_prev = first_this.yesterday().map_err(t)?;
                Self::new(last_prev.first_of_month(), last_prev)
            }
            (Some(f), None) => Self::new(parse("--from", f)?, today),
            (None, Some(to)) => {
                let to = parse("--to", to)?;
                Self::new(to.first_of_month(), to)
            }
            (Some(f), Some(to)) => Self::new(parse("--from", f)?, parse("--to", to)?),
        }
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

/// Notifications and the children in them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub notifications: u64,
    pub children: u64,
}

/// How the children were placed at a school.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matching {
    pub matched_automatically: u64,
    pub sent_to_review: u64,
    pub matched_after_review: u64,
    /// Assignments per admin (`admin:USER`).
    pub matched_after_review_by: BTreeMap<String, u64>,
    /// Children sent to review, per reason code.
    pub review_reasons: BTreeMap<String, u64>,
}

/// Where every child of the period ended (each child counted once):
/// the school was told, a reviewer dismissed it, the police withdrew it
/// before delivery, delivery failed, or it is still waiting (queued,
/// retrying or in review).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    pub delivered: u64,
    pub dismissed: u64,
    pub withdrawn: u64,
    pub failed: u64,
    pub waiting: u64,
}

/// Children whose school was told by the deadline, and those it missed
/// (late delivery, or the deadline passed undelivered or in review).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub met: u64,
    pub missed: u64,
}

/// Seconds from receipt to delivery of the DSL alert (nearest rank).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Times {
    pub count: u64,
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub max: Option<u64>,
}

/// One school: counts only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolRow {
    pub urn: String,
    /// From the school directory (absent if the school left it).
    pub name: Option<String>,
    pub children_notified: u64,
    pub alerts_delivered: u64,
    pub deadline_misses: u64,
}

/// What the police did besides notifying, and what kim did when late.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Events {
    /// DSL alerts escalated (copied to the deputy when the school has one).
    pub escalations: u64,
    /// Copies to deputies delivered.
    pub deputy_copies_delivered: u64,
    /// Notifications the police withdrew.
    pub withdrawals: u64,
    /// Withdrawal notices delivered to schools already told.
    pub withdrawal_notices_delivered: u64,
    /// Re-sends of a notification (duplicate 200s): not in the audit, so
    /// unknown (null) until kim audits them.
    pub resends: Option<u64>,
    /// Conflicting re-sends (409s): likewise not audited yet.
    pub conflicts: Option<u64>,
}

/// The audit chain check that precedes every report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    pub events: u64,
    pub head_hash: String,
}

/// Every figure of a report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    pub from: String,
    pub to: String,
    pub time_zone: String,
    pub force: Option<String>,
    pub audit: Verified,
    pub received: Count,
    pub per_force: BTreeMap<String, Count>,
    pub per_day: BTreeMap<String, Count>,
    pub matching: Matching,
    pub outcomes: Outcomes,
    pub deadline: Deadline,
    pub receipt_to_delivery_seconds: Times,
    pub schools: Vec<SchoolRow>,
    pub events: Events,
}

#[derive(Default)]
struct Child {
    urn: Option<String>,
    delivered_at: Option<Timestamp>,
    dismissed: bool,
    failed: bool,
    missed: bool,
    met: bool,
}

struct Receipt {
    received_at: Timestamp,
    withdrawn: bool,
    children: Vec<Child>,
}

fn detail_str<'a>(ev: &'a AuditEvent, key: &str) -> Option<&'a str> {
    ev.detail.get(key).and_then(|v| v.as_str())
}

/// The figures for `period` (and `force`, if given) from `events`, in
/// chain order; `names` maps URNs to school names.
pub fn compute<'a>(
    period: &Period,
    force: Option<&str>,
    events: impl IntoIterator<Item = &'a AuditEvent>,
    names: &HashMap<String, String>,
) -> Figures {
    let tz = school_tz();
    let mut f = Figures {
        from: period.from.to_string(),
        to: period.to.to_string(),
        time_zone: crate::calendar::SCHOOL_TZ.to_owned(),
        force: force.map(str::to_owned),
        ..Figures::default()
    };
    let mut cohort: HashMap<String, Receipt> = HashMap::new();
    for ev in events {
        let Some(receipt) = ev.refs.receipt.as_deref() else {
            continue;
        };
        if ev.kind == EventKind::Received {
            let Some(id) = ev.actor.strip_prefix("force:") else {
                continue;
            };
            if !period.contains(ev.time) || force.is_some_and(|x| x != id) {
                continue;
            }
            let n = ev
                .detail
                .get("children")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            let day = ev.time.to_zoned(tz.clone()).date().to_string();
            for c in [
                &mut f.received,
                f.per_force.entry(id.to_owned()).or_default(),
                f.per_day.entry(day).or_default(),
            ] {
                c.notifications += 1;
                c.children += n;
            }
            cohort.insert(
                receipt.to_owned(),
                Receipt {
                    received_at: ev.time,
                    withdrawn: false,
                    children: (0..n).map(|_| Child::default()).collect(),
                },
            );
            continue;
        }
        let Some(r) = cohort.get_mut(receipt) else {
            continue;
        };
        // The DSL alert of a child is `RECEIPT.INDEX`; follow-ups add a suffix.
        let dsl = match (&ev.refs.alert_id, ev.refs.child) {
            (Some(id), Some(i)) => *id == crate::store::outbox::alert_id(receipt, i),
            _ => false,
        };
        if ev.kind == EventKind::Withdrawn && ev.refs.child.is_none() {
            r.withdrawn = true;
            f.events.withdrawals += 1;
            continue;
        }
        if ev.kind == EventKind::Delivered && !dsl {
            match detail_str(ev, "kind") {
                Some("withdrawal") => f.events.withdrawal_notices_delivered += 1,
                Some("deputy") => f.events.deputy_copies_delivered += 1,
                _ => {}
            }
            continue;
        }
        let Some(c) = ev.refs.child.and_then(|i| r.children.get_mut(i as usize)) else {
            continue;
        };
        match ev.kind {
            EventKind::Matched => {
                f.matching.matched_automatically += 1;
                c.urn = ev.refs.school_urn.clone();
            }
            EventKind::NeedsReview => {
                f.matching.sent_to_review += 1;
                let reason = detail_str(ev, "reason").unwrap_or("unknown");
                *f.matching
                    .review_reasons
                    .entry(reason.to_owned())
                    .or_default() += 1;
            }
            EventKind::Reviewed => match detail_str(ev, "decision") {
                Some("assigned") => {
                    f.matching.matched_after_review += 1;
                    *f.matching
                        .matched_after_review_by
                        .entry(ev.actor.clone())
                        .or_default() += 1;
                    c.urn = ev.refs.school_urn.clone();
                }
                Some("dismissed") => c.dismissed = true,
                _ => {}
            },
            EventKind::Delivered if dsl => {
                c.delivered_at = Some(ev.time);
                c.failed = false;
                match ev.detail.get("deadline_met").and_then(|v| v.as_bool()) {
                    Some(true) => c.met = true,
                    Some(false) => c.missed = true,
                    None => {}
                }
            }
            EventKind::Failed if dsl => c.failed = true,
            EventKind::Requeued if dsl => c.failed = false,
            EventKind::DeadlineMissed if dsl || ev.refs.alert_id.is_none() => c.missed = true,
            EventKind::Escalated if dsl => f.events.escalations += 1,
            _ => {}
        }
    }
    let mut times = Vec::new();
    let mut schools: BTreeMap<String, SchoolRow> = BTreeMap::new();
    for r in cohort.values() {
        for c in &r.children {
            let o = &mut f.outcomes;
            if let Some(at) = c.delivered_at {
                o.delivered += 1;
                times.push(at.duration_since(r.received_at).as_secs().max(0) as u64);
            } else if c.dismissed {
                o.dismissed += 1;
            } else if r.withdrawn {
                o.withdrawn += 1;
            } else if c.failed {
                o.failed += 1;
            } else {
                o.waiting += 1;
            }
            if c.missed {
                f.deadline.missed += 1;
            } else if c.met && c.delivered_at.is_some() {
                f.deadline.met += 1;
            }
            if let Some(urn) = &c.urn {
                let row = schools.entry(urn.clone()).or_insert_with(|| SchoolRow {
                    urn: urn.clone(),
                    name: names.get(urn).cloned(),
                    ..SchoolRow::default()
                });
                row.children_notified += 1;
                row.alerts_delivered += u64::from(c.delivered_at.is_some());
                row.deadline_misses += u64::from(c.missed);
            }
        }
    }
    f.receipt_to_delivery_seconds = percentiles(times);
    f.schools = schools.into_values().collect();
    f
}

/// p50, p95 and max of `v` by nearest rank.
pub fn percentiles(mut v: Vec<u64>) -> Times {
    v.sort_unstable();
    let rank = |p: u64| -> Option<u64> {
        let n = v.len() as u64;
        if n == 0 {
            return None;
        }
        let idx = (p * n).div_ceil(100).max(1) - 1;
        v.get(idx as usize).copied()
    };
    Times {
        count: v.len() as u64,
        p50: rank(50),
        p95: rank(95),
        max: v.last().copied(),
    }
}

#[cfg(test)]
mod tests;
