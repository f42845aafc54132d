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

pub mod derived;
pub mod event;
pub mod html;
pub mod layout;
pub mod pass;
pub mod render;
pub mod scan;
mod svg;
mod tally;

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::calendar::school_tz;
pub use derived::{Headline, MissCauses, ReviewDay, TimeBucket};
pub use tally::Tally;

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

/// Notifications and the children in them; and the police's re-sends
/// (`resent`) and conflicting re-sends (`reference_conflict`) made in the
/// period (by when they were made, whenever the original came).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub notifications: u64,
    pub children: u64,
    #[serde(default)]
    pub resends: u64,
    #[serde(default)]
    pub conflicts: u64,
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
    /// Re-sends of a notification made in the period (answered 200 with
    /// the original receipt; audited `resent`).
    pub resends: u64,
    /// Re-sends of a reference with other content made in the period
    /// (answered 409; audited `reference_conflict`).
    pub conflicts: u64,
}

/// The audit chain check that precedes every report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// The head's sequence number (events in the chain).
    pub events: u64,
    pub head_hash: String,
    /// The first event checked: the period's first (the link to the one
    /// before it is checked too); events before the period are left to
    /// `kim audit verify`.
    pub from_event: u64,
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
    /// Added for the page (issue 15); older answers lack them.
    #[serde(default)]
    pub headline: Headline,
    /// Children per UK day of receipt, by outcome.
    #[serde(default)]
    pub outcomes_per_day: BTreeMap<String, Outcomes>,
    /// Receipt → delivery of the DSL alerts, bucketed, met or missed.
    #[serde(default)]
    pub delivery_time_histogram: Vec<TimeBucket>,
    /// Time between receipt and the deadline of the delivered children.
    #[serde(default)]
    pub receipt_to_deadline_seconds: Times,
    #[serde(default)]
    pub misses_by_cause: MissCauses,
    /// Review entry → decision (assigned or dismissed).
    #[serde(default)]
    pub review_to_decision_seconds: Times,
    /// Children entering review and decided, per UK day.
    #[serde(default)]
    pub review_per_day: BTreeMap<String, ReviewDay>,
}

/// The figures for `period` (and `force`, if given) from `events`, in
/// chain order; `names` maps URNs to school names.
pub fn compute<'a>(
    period: &Period,
    force: Option<&str>,
    events: impl IntoIterator<Item = &'a AuditEvent>,
    names: &HashMap<String, String>,
) -> Figures {
    let mut t = Tally::new(period, force);
    for ev in events {
        t.add(ev);
    }
    t.finish(names)
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
