//! Counting a report's figures one audit event at a time, in chain order
//! (issue 15), into compact per-receipt and per-child state: a year of
//! England's (600,000 notifications, 900,000 children) is a few tens of
//! MiB, and nothing else of an event is kept once it is counted.

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;

use jiff::civil::Date;
use jiff::Timestamp;

use super::event::Ev;
use super::{
    derived, percentiles, Count, Figures, Headline, Outcomes, Period, ReviewDay, SchoolRow,
};
use crate::audit::{AuditEvent, EventKind};
use crate::calendar::{school_tz, SchoolCalendar};

/// Nanoseconds since the Unix epoch (an `i64` spans 1678–2262); [`NONE`]
/// when unset.
type Ns = i64;
const NONE: Ns = i64::MIN;
const NO_URN: u32 = u32::MAX;

fn ns(t: Timestamp) -> Ns {
    i64::try_from(t.as_nanosecond()).unwrap_or(if t.as_second() < 0 {
        NONE + 1
    } else {
        i64::MAX
    })
}

fn ts(n: Ns) -> Timestamp {
    Timestamp::from_nanosecond(i128::from(n)).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn opt(n: Ns) -> Option<Timestamp> {
    (n != NONE).then(|| ts(n))
}

/// Whole seconds from `a` to `b`, never negative (as a `SignedDuration`'s).
fn secs(a: Ns, b: Ns) -> u64 {
    (b.saturating_sub(a) / 1_000_000_000).max(0) as u64
}

const DISMISSED: u8 = 1;
const FAILED: u8 = 2;
const MISSED: u8 = 4;
const MET: u8 = 8;

/// One child of the cohort (40 bytes).
#[derive(Clone, Copy)]
struct Child {
    /// The school, as an index into [`Tally::urns`].
    urn: u32,
    flags: u8,
    delivered_at: Ns,
    review_at: Ns,
    decided_at: Ns,
    relay_trouble_at: Ns,
}

impl Default for Child {
    fn default() -> Self {
        Self {
            urn: NO_URN,
            flags: 0,
            delivered_at: NONE,
            review_at: NONE,
            decided_at: NONE,
            relay_trouble_at: NONE,
        }
    }
}

impl Child {
    fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
    fn set(&mut self, f: u8, on: bool) {
        if on {
            self.flags |= f;
        } else {
            self.flags &= !f;
        }
    }
}

/// One notification of the cohort: its children are `children[first..first + n]`.
struct Receipt {
    received_at: Ns,
    first: u32,
    n: u32,
    withdrawn: bool,
}

/// The UK day of a time, remembered for the day it was last asked about
/// (events come in time order, so nearly every ask is that day).
struct Days {
    tz: jiff::tz::TimeZone,
    start: Timestamp,
    end: Timestamp,
    day: Date,
}

impl Days {
    fn new() -> Self {
        Self {
            tz: school_tz(),
            start: Timestamp::MAX,
            end: Timestamp::MIN,
            day: Date::default(),
        }
    }

    fn of(&mut self, t: Timestamp) -> Date {
        if !(self.start <= t && t < self.end) {
            let date = t.to_zoned(self.tz.clone()).date();
            let at = |d: Date| d.to_zoned(self.tz.clone()).map(|z| z.timestamp());
            match (at(date), date.tomorrow().and_then(at)) {
                (Ok(s), Ok(e)) => (self.start, self.end) = (s, e),
                _ => (self.start, self.end) = (t, t),
            }
            self.day = date;
        }
        self.day
    }
}

/// A map by day as the figures give it: by the day's ISO date (which sorts
/// as the days do).
fn by_name<V>(m: BTreeMap<Date, V>) -> BTreeMap<String, V> {
    m.into_iter().map(|(d, v)| (d.to_string(), v)).collect()
}

fn bump_str<'m, V: Default>(m: &'m mut FxHashMap<Box<str>, V>, k: &str) -> &'m mut V {
    if !m.contains_key(k) {
        m.insert(k.into(), V::default());
    }
    m.get_mut(k).expect("just inserted")
}

fn bump<'m, V: Default>(m: &'m mut BTreeMap<String, V>, k: &str) -> &'m mut V {
    if !m.contains_key(k) {
        m.insert(k.to_owned(), V::default());
    }
    m.get_mut(k).expect("just inserted")
}

/// Whether `alert` is the DSL alert of child `child` of `receipt`
/// (`RECEIPT.INDEX`, as `store::outbox::alert_id` makes it); follow-ups
/// (deputy copies, withdrawal notices) add a suffix.
fn is_dsl(alert: &str, receipt: &str, child: u32) -> bool {
    let Some(n) = alert
        .strip_prefix(receipt)
        .and_then(|r| r.strip_prefix('.'))
    else {
        return false;
    };
    !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
        && (n == "0" || !n.starts_with('0'))
        && n.parse::<u32>() == Ok(child)
}

/// The figures being counted, one event at a time (in chain order), so a
/// report streams the audit instead of holding it.
pub struct Tally {
    period: Period,
    force: Option<String>,
    f: Figures,
    index: FxHashMap<Box<str>, u32>,
    receipts: Vec<Receipt>,
    children: Vec<Child>,
    urns: Vec<String>,
    urn_index: FxHashMap<String, u32>,
    calendar: SchoolCalendar,
    days: Days,
    /// Notifications per force and per day (the figures' maps, kept
    /// where a lookup costs less while counting).
    per_force: FxHashMap<Box<str>, Count>,
    per_day: BTreeMap<Date, Count>,
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
            f: Figures {
                from: period.from.to_string(),
                to: period.to.to_string(),
                time_zone: crate::calendar::SCHOOL_TZ.to_owned(),
                force: force.map(str::to_owned),
                ..Figures::default()
            },
            index: FxHashMap::default(),
            receipts: Vec::new(),
            children: Vec::new(),
            urns: Vec::new(),
            urn_index: FxHashMap::default(),
            calendar: SchoolCalendar::default(),
            days: Days::new(),
            per_force: FxHashMap::default(),
            per_day: BTreeMap::new(),
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

    /// Whether `receipt` was received in the period (only its events count
    /// beyond `received`, `resent`, `reference_conflict` and `started`).
    pub fn follows(&self, receipt: &str) -> bool {
        self.index.contains_key(receipt)
    }

    /// An event the caller skipped unread happened at `time` (only the time
    /// of the event before a `started` matters: when kim went down).
    pub fn saw(&mut self, time: Timestamp) {
        self.last_time = Some(time);
    }

    fn urn(&mut self, urn: Option<&str>) -> u32 {
        let Some(urn) = urn else { return NO_URN };
        if let Some(i) = self.urn_index.get(urn) {
            return *i;
        }
        let i = self.urns.len() as u32;
        self.urns.push(urn.to_owned());
        self.urn_index.insert(urn.to_owned(), i);
        i
    }

    /// The force of a police event counted in the period, if it is one.
    fn police<'e>(&self, ev: &'e Ev<'_>) -> Option<&'e str> {
        let id = ev.actor.strip_prefix("force:")?;
        let mine = self.force.as_deref().is_none_or(|x| x == id);
        (self.period.contains(ev.time) && mine).then_some(id)
    }

    fn received(&mut self, ev: &Ev<'_>, receipt: &str) {
        let Some(id) = self.police(ev) else { return };
        let n = ev.detail.children.u64().unwrap_or(0);
        let day = self.days.of(ev.time);
        for c in [
            &mut self.f.received,
            bump_str(&mut self.per_force, id),
            self.per_day.entry(day).or_default(),
        ] {
            c.notifications += 1;
            c.children += n;
        }
        let first = self.children.len() as u32;
        let n = u32::try_from(n).unwrap_or(u32::MAX).min(1_000);
        self.children
            .extend(std::iter::repeat_n(Child::default(), n as usize));
        let r = Receipt {
            received_at: ns(ev.time),
            first,
            n,
            withdrawn: false,
        };
        match self.index.get(receipt) {
            Some(&i) => self.receipts[i as usize] = r,
            None => {
                self.index
                    .insert(receipt.into(), self.receipts.len() as u32);
                self.receipts.push(r);
            }
        }
    }

    /// A police re-send (or conflict) made in the period, by its force and day.
    fn resent(&mut self, ev: &Ev<'_>) {
        let Some(id) = self.police(ev) else { return };
        let conflict = ev.kind == EventKind::ReferenceConflict;
        let day = self.days.of(ev.time);
        for c in [
            &mut self.f.received,
            bump_str(&mut self.per_force, id),
            self.per_day.entry(day).or_default(),
        ] {
            if conflict {
                c.conflicts += 1;
            } else {
                c.resends += 1;
            }
        }
        let f = &mut self.f;
        f.events.resends = f.received.resends;
        f.events.conflicts = f.received.conflicts;
    }

    /// Counts `ev`, the next event of the chain.
    pub fn add(&mut self, ev: &AuditEvent) {
        self.add_ev(&Ev::of(ev));
    }

    /// Counts `ev`, the next event of the chain (as read from its bytes).
    pub fn add_ev(&mut self, ev: &Ev<'_>) {
        if ev.kind == EventKind::Started {
            if let Some(last) = self.last_time {
                self.down.push((last, ev.time));
            }
        }
        self.last_time = Some(ev.time);
        let Some(receipt) = ev.receipt.as_deref() else {
            return;
        };
        match ev.kind {
            EventKind::Received => return self.received(ev, receipt),
            EventKind::Resent | EventKind::ReferenceConflict => return self.resent(ev),
            _ => {}
        }
        let Some(&ri) = self.index.get(receipt) else {
            return;
        };
        let dsl = match (&ev.alert_id, ev.child) {
            (Some(id), Some(i)) => is_dsl(id, receipt, i),
            _ => false,
        };
        let urn = match ev.kind {
            EventKind::Matched | EventKind::Reviewed => self.urn(ev.school_urn.as_deref()),
            _ => NO_URN,
        };
        let f = &mut self.f;
        let r = &mut self.receipts[ri as usize];
        if ev.kind == EventKind::Withdrawn && ev.child.is_none() {
            r.withdrawn = true;
            f.events.withdrawals += 1;
            return;
        }
        if ev.kind == EventKind::Delivered && !dsl {
            match ev.detail.kind.str() {
                Some("withdrawal") => f.events.withdrawal_notices_delivered += 1,
                Some("deputy") => f.events.deputy_copies_delivered += 1,
                _ => {}
            }
            return;
        }
        let Some(i) = ev.child.filter(|i| *i < r.n) else {
            return;
        };
        let c = &mut self.children[(r.first + i) as usize];
        let now = ns(ev.time);
        let first = |at: &mut Ns| {
            if *at == NONE {
                *at = now;
            }
        };
        match ev.kind {
            EventKind::Matched => {
                f.matching.matched_automatically += 1;
                c.urn = urn;
            }
            EventKind::NeedsReview => {
                f.matching.sent_to_review += 1;
                first(&mut c.review_at);
                let reason = ev.detail.reason.str().unwrap_or("unknown");
                *bump(&mut f.matching.review_reasons, reason) += 1;
            }
            EventKind::Reviewed => match ev.detail.decision.str() {
                Some("assigned") => {
                    first(&mut c.decided_at);
                    f.matching.matched_after_review += 1;
                    *bump(&mut f.matching.matched_after_review_by, &ev.actor) += 1;
                    c.urn = urn;
                }
                Some("dismissed") => {
                    first(&mut c.decided_at);
                    c.set(DISMISSED, true);
                }
                _ => {}
            },
            EventKind::Delivered if dsl => {
                c.delivered_at = now;
                c.set(FAILED, false);
                match ev.detail.deadline_met.bool() {
                    Some(true) => c.set(MET, true),
                    Some(false) => c.set(MISSED, true),
                    None => {}
                }
            }
            EventKind::Failed if dsl => {
                c.set(FAILED, true);
                first(&mut c.relay_trouble_at);
            }
            EventKind::DeliveryAttempt
                if dsl && ev.detail.result.str().is_some_and(|r| r != "accepted") =>
            {
                first(&mut c.relay_trouble_at);
            }
            EventKind::Requeued if dsl => c.set(FAILED, false),
            EventKind::DeadlineMissed if dsl || ev.alert_id.is_none() => c.set(MISSED, true),
            EventKind::Escalated if dsl => f.events.escalations += 1,
            _ => {}
        }
    }

    /// The figures; `names` maps URNs to school names.
    pub fn finish(mut self, names: &HashMap<String, String>) -> Figures {
        let mut f = std::mem::take(&mut self.f);
        f.per_force = std::mem::take(&mut self.per_force)
            .into_iter()
            .map(|(k, v)| (k.into(), v))
            .collect();
        f.per_day = by_name(std::mem::take(&mut self.per_day));
        let mut outcomes_per_day: BTreeMap<Date, Outcomes> = BTreeMap::new();
        let mut review_per_day: BTreeMap<Date, ReviewDay> = BTreeMap::new();
        let mut times = Vec::new();
        let mut to_deadline = Vec::new();
        let mut review_times = Vec::new();
        let mut hist = derived::buckets();
        let mut schools: Vec<SchoolRow> = Vec::new();
        let mut school_of: Vec<u32> = vec![NO_URN; self.urns.len()];
        // Deadlines repeat: the one of a receipt holds for every later
        // receipt before it (receipts come in time order).
        let mut cached: Option<(Ns, Ns)> = None;
        let mut deadline_of = |received: Ns, cal: &SchoolCalendar| -> Ns {
            match cached {
                Some((from, d)) if from <= received && received < d => d,
                _ => {
                    let d = ns(cal.deadline(ts(received)));
                    cached = Some((received, d));
                    d
                }
            }
        };
        for r in &self.receipts {
            let deadline = deadline_of(r.received_at, &self.calendar);
            let day = self.days.of(ts(r.received_at));
            let per_day = outcomes_per_day.entry(day).or_default();
            let kids = &self.children[r.first as usize..(r.first + r.n) as usize];
            for c in kids {
                for o in [&mut f.outcomes, &mut *per_day] {
                    if c.delivered_at != NONE {
                        o.delivered += 1;
                    } else if c.has(DISMISSED) {
                        o.dismissed += 1;
                    } else if r.withdrawn {
                        o.withdrawn += 1;
                    } else if c.has(FAILED) {
                        o.failed += 1;
                    } else {
                        o.waiting += 1;
                    }
                }
            }
            for c in kids {
                if c.delivered_at != NONE {
                    let s = secs(r.received_at, c.delivered_at);
                    times.push(s);
                    let b = &mut hist[derived::bucket_of(s)];
                    if c.has(MISSED) {
                        b.missed += 1;
                    } else {
                        b.met += 1;
                    }
                    to_deadline.push(secs(r.received_at, deadline));
                }
                if c.review_at != NONE {
                    let d = self.days.of(ts(c.review_at));
                    review_per_day.entry(d).or_default().entered += 1;
                }
                if c.decided_at != NONE {
                    let d = self.days.of(ts(c.decided_at));
                    review_per_day.entry(d).or_default().decided += 1;
                    if c.review_at != NONE {
                        review_times.push(secs(c.review_at, c.decided_at));
                    }
                }
                if c.has(MISSED) {
                    f.deadline.missed += 1;
                    let facts = derived::MissFacts {
                        received_at: ts(r.received_at),
                        deadline: ts(deadline),
                        review_at: opt(c.review_at),
                        decided_at: opt(c.decided_at),
                        relay_trouble_at: opt(c.relay_trouble_at),
                    };
                    f.misses_by_cause.add(&facts, &self.down);
                } else if c.has(MET) && c.delivered_at != NONE {
                    f.deadline.met += 1;
                }
                if let Some(urn) = self.urns.get(c.urn as usize) {
                    let at = &mut school_of[c.urn as usize];
                    if *at == NO_URN {
                        *at = schools.len() as u32;
                        schools.push(SchoolRow {
                            urn: urn.clone(),
                            name: names.get(urn).cloned(),
                            ..SchoolRow::default()
                        });
                    }
                    let row = &mut schools[*at as usize];
                    row.children_notified += 1;
                    row.alerts_delivered += u64::from(c.delivered_at != NONE);
                    row.deadline_misses += u64::from(c.has(MISSED));
                }
            }
        }
        f.outcomes_per_day = by_name(outcomes_per_day);
        f.review_per_day = by_name(review_per_day);
        schools.sort_by(|a, b| a.urn.cmp(&b.urn));
        f.receipt_to_delivery_seconds = percentiles(times);
        f.receipt_to_deadline_seconds = percentiles(to_deadline);
        f.review_to_decision_seconds = percentiles(review_times);
        f.delivery_time_histogram = hist;
        f.schools = schools;
        let decided = f.deadline.met + f.deadline.missed;
        f.headline = Headline {
            children_kept_in_mind: f.outcomes.delivered,
            schools_told: f.schools.iter().filter(|s| s.alerts_delivered > 0).count() as u64,
            before_school_day_percent: (decided > 0).then(|| f.deadline.met * 100 / decided),
        };
        f
    }
}
