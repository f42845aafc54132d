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
pub mod html;
pub mod render;
mod svg;

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, EventKind};
use crate::calendar::{school_tz, SchoolCalendar};
pub use derived::{Headline, MissCauses, ReviewDay, TimeBucket};

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

/// One child of the cohort (small: a year of England's is millions).
#[derive(Default)]
struct Child {
    /// The school, as an index into [`Tally::urns`].
    urn: Option<u32>,
    delivered_at: Option<Timestamp>,
    dismissed: bool,
    failed: bool,
    missed: bool,
    met: bool,
    review_at: Option<Timestamp>,
    decided_at: Option<Timestamp>,
    relay_trouble_at: Option<Timestamp>,
}

struct Receipt {
    received_at: Timestamp,
    withdrawn: bool,
    children: Vec<Child>,
}

fn detail_str<'a>(ev: &'a AuditEvent, key: &str) -> Option<&'a str> {
    ev.detail.get(key).and_then(|v| v.as_str())
}

/// The figures being counted, one event at a time (in chain order), so a
/// report streams the audit instead of holding it.
pub struct Tally {
    period: Period,
    force: Option<String>,
    tz: jiff::tz::TimeZone,
    f: Figures,
    cohort: HashMap<String, Receipt>,
    urns: Vec<String>,
    urn_index: HashMap<String, u32>,
    calendar: SchoolCalendar,
    /// The time of the last event seen, and when kim was down (from its
    /// last event before a start to the start).
    last_time: Option<Timestamp>,
    down: Vec<(Timestamp, Timestamp)>,
}

impl Tally {
    pub fn new(period: &Period, force: Option<&str>) -> Self {
        Self {
            period: period.clone(),
            force: force.map(str::to_owned),
            tz: school_tz(),
            f: Figures {
                from: period.from.to_string(),
                to: period.to.to_string(),
                time_zone: crate::calendar::SCHOOL_TZ.to_owned(),
                force: force.map(str::to_owned),
                ..Figures::default()
            },
            cohort: HashMap::new(),
            urns: Vec::new(),
            urn_index: HashMap::new(),
            calendar: SchoolCalendar::default(),
            last_time: None,
            down: Vec::new(),
        }
    }

    /// The school calendar that decides each child's deadline (the
    /// config's `[delivery]` one; the default otherwise).
    pub fn with_calendar(mut self, calendar: SchoolCalendar) -> Self {
        self.calendar = calendar;
        self
    }

    fn urn(&mut self, urn: Option<&String>) -> Option<u32> {
        let urn = urn?;
        if let Some(i) = self.urn_index.get(urn) {
            return Some(*i);
        }
        let i = self.urns.len() as u32;
        self.urns.push(urn.clone());
        self.urn_index.insert(urn.clone(), i);
        Some(i)
    }

    fn received(&mut self, ev: &AuditEvent, receipt: &str) {
        let Some(id) = ev.actor.strip_prefix("force:") else {
            return;
        };
        if !self.period.contains(ev.time) || self.force.as_deref().is_some_and(|x| x != id) {
            return;
        }
        let n = ev
            .detail
            .get("children")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        let day = ev.time.to_zoned(self.tz.clone()).date().to_string();
        let f = &mut self.f;
        for c in [
            &mut f.received,
            f.per_force.entry(id.to_owned()).or_default(),
            f.per_day.entry(day).or_default(),
        ] {
            c.notifications += 1;
            c.children += n;
        }
        self.cohort.insert(
            receipt.to_owned(),
            Receipt {
                received_at: ev.time,
                withdrawn: false,
                children: (0..n).map(|_| Child::default()).collect(),
            },
        );
    }

    /// A police re-send (or conflict) made in the period, by its force and day.
    fn resent(&mut self, ev: &AuditEvent) {
        let Some(id) = ev.actor.strip_prefix("force:") else {
            return;
        };
        if !self.period.contains(ev.time) || self.force.as_deref().is_some_and(|x| x != id) {
            return;
        }
        let conflict = ev.kind == EventKind::ReferenceConflict;
        let day = ev.time.to_zoned(self.tz.clone()).date().to_string();
        let f = &mut self.f;
        for c in [
            &mut f.received,
            f.per_force.entry(id.to_owned()).or_default(),
            f.per_day.entry(day).or_default(),
        ] {
            if conflict {
                c.conflicts += 1;
            } else {
                c.resends += 1;
            }
        }
        f.events.resends = f.received.resends;
        f.events.conflicts = f.received.conflicts;
    }

    /// Counts `ev`, the next event of the chain.
    pub fn add(&mut self, ev: &AuditEvent) {
        if ev.kind == EventKind::Started {
            if let Some(last) = self.last_time {
                self.down.push((last, ev.time));
            }
        }
        self.last_time = Some(ev.time);
        let Some(receipt) = ev.refs.receipt.as_deref() else {
            return;
        };
        match ev.kind {
            EventKind::Received => return self.received(ev, receipt),
            EventKind::Resent | EventKind::ReferenceConflict => return self.resent(ev),
            _ => {}
        }
        if !self.cohort.contains_key(receipt) {
            return;
        }
        // The DSL alert of a child is `RECEIPT.INDEX`; follow-ups add a suffix.
        let dsl = match (&ev.refs.alert_id, ev.refs.child) {
            (Some(id), Some(i)) => *id == crate::store::outbox::alert_id(receipt, i),
            _ => false,
        };
        let urn = match ev.kind {
            EventKind::Matched | EventKind::Reviewed => self.urn(ev.refs.school_urn.as_ref()),
            _ => None,
        };
        let f = &mut self.f;
        let Some(r) = self.cohort.get_mut(receipt) else {
            return;
        };
        if ev.kind == EventKind::Withdrawn && ev.refs.child.is_none() {
            r.withdrawn = true;
            f.events.withdrawals += 1;
            return;
        }
        if ev.kind == EventKind::Delivered && !dsl {
            match detail_str(ev, "kind") {
                Some("withdrawal") => f.events.withdrawal_notices_delivered += 1,
                Some("deputy") => f.events.deputy_copies_delivered += 1,
                _ => {}
            }
            return;
        }
        let Some(c) = ev.refs.child.and_then(|i| r.children.get_mut(i as usize)) else {
            return;
        };
        match ev.kind {
            EventKind::Matched => {
                f.matching.matched_automatically += 1;
                c.urn = urn;
            }
            EventKind::NeedsReview => {
                f.matching.sent_to_review += 1;
                c.review_at.get_or_insert(ev.time);
                let reason = detail_str(ev, "reason").unwrap_or("unknown");
                *f.matching
                    .review_reasons
                    .entry(reason.to_owned())
                    .or_default() += 1;
            }
            EventKind::Reviewed => match detail_str(ev, "decision") {
                Some("assigned") => {
                    c.decided_at.get_or_insert(ev.time);
                    f.matching.matched_after_review += 1;
                    *f.matching
                        .matched_after_review_by
                        .entry(ev.actor.clone())
                        .or_default() += 1;
                    c.urn = urn;
                }
                Some("dismissed") => {
                    c.decided_at.get_or_insert(ev.time);
                    c.dismissed = true;
                }
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
            EventKind::Failed if dsl => {
                c.failed = true;
                c.relay_trouble_at.get_or_insert(ev.time);
            }
            EventKind::DeliveryAttempt
                if dsl && detail_str(ev, "result").is_some_and(|r| r != "accepted") =>
            {
                c.relay_trouble_at.get_or_insert(ev.time);
            }
            EventKind::Requeued if dsl => c.failed = false,
            EventKind::DeadlineMissed if dsl || ev.refs.alert_id.is_none() => c.missed = true,
            EventKind::Escalated if dsl => f.events.escalations += 1,
            _ => {}
        }
    }

    /// The figures; `names` maps URNs to school names.
    pub fn finish(self, names: &HashMap<String, String>) -> Figures {
        let mut f = self.f;
        let mut times = Vec::new();
        let mut to_deadline = Vec::new();
        let mut review_times = Vec::new();
        let mut hist = derived::buckets();
        let mut schools: BTreeMap<&str, SchoolRow> = BTreeMap::new();
        let day = |t: Timestamp| t.to_zoned(self.tz.clone()).date().to_string();
        for r in self.cohort.values() {
            let deadline = self.calendar.deadline(r.received_at);
            let per_day = f.outcomes_per_day.entry(day(r.received_at)).or_default();
            for c in &r.children {
                for o in [&mut f.outcomes, &mut *per_day] {
                    if c.delivered_at.is_some() {
                        o.delivered += 1;
                    } else if c.dismissed {
                        o.dismissed += 1;
                    } else if r.withdrawn {
                        o.withdrawn += 1;
                    } else if c.failed {
                        o.failed += 1;
                    } else {
                        o.waiting += 1;
                    }
                }
                if let Some(at) = c.delivered_at {
                    let secs = at.duration_since(r.received_at).as_secs().max(0) as u64;
                    times.push(secs);
                    let b = &mut hist[derived::bucket_of(secs)];
                    if c.missed {
                        b.missed += 1;
                    } else {
                        b.met += 1;
                    }
                    let avail = deadline.duration_since(r.received_at).as_secs().max(0);
                    to_deadline.push(avail as u64);
                }
                if let Some(t) = c.review_at {
                    f.review_per_day.entry(day(t)).or_default().entered += 1;
                }
                if let Some(t) = c.decided_at {
                    f.review_per_day.entry(day(t)).or_default().decided += 1;
                    if let Some(r0) = c.review_at {
                        review_times.push(t.duration_since(r0).as_secs().max(0) as u64);
                    }
                }
                if c.missed {
                    f.deadline.missed += 1;
                    let facts = derived::MissFacts {
                        received_at: r.received_at,
                        deadline,
                        review_at: c.review_at,
                        decided_at: c.decided_at,
                        relay_trouble_at: c.relay_trouble_at,
                    };
                    f.misses_by_cause.add(&facts, &self.down);
                } else if c.met && c.delivered_at.is_some() {
                    f.deadline.met += 1;
                }
                if let Some(urn) = c.urn.and_then(|i| self.urns.get(i as usize)) {
                    let row = schools.entry(urn).or_insert_with(|| SchoolRow {
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
        f.receipt_to_deadline_seconds = percentiles(to_deadline);
        f.review_to_decision_seconds = percentiles(review_times);
        f.delivery_time_histogram = hist;
        f.schools = schools.into_values().collect();
        let decided = f.deadline.met + f.deadline.missed;
        f.headline = Headline {
            children_kept_in_mind: f.outcomes.delivered,
            schools_told: f.schools.iter().filter(|s| s.alerts_delivered > 0).count() as u64,
            before_school_day_percent: (decided > 0).then(|| f.deadline.met * 100 / decided),
        };
        f
    }
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
