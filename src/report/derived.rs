//! The figures a report derives per child once the audit is read (issue
//! 15, the page's charts): the headline, outcomes per day of receipt, the
//! receipt → delivery histogram against the deadline, the cause of each
//! deadline miss and the review queue's throughput. Plain counts and
//! seconds, like the rest of [`super::Figures`], so every renderer prints
//! the same numbers.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The page's and the demo's headline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headline {
    /// Children whose school was told (their DSL alert was delivered).
    pub children_kept_in_mind: u64,
    /// Schools that received at least one DSL alert.
    pub schools_told: u64,
    /// Of the children whose deadline is decided (met or missed), the share
    /// told before the school day, rounded down; null when there is none.
    pub before_school_day_percent: Option<u64>,
}

impl Headline {
    /// "N children kept in mind, M schools told, X% before the school day".
    pub fn sentence(&self) -> String {
        let pct = self
            .before_school_day_percent
            .map(|p| format!("{p}%"))
            .unwrap_or_else(|| "-".into());
        format!(
            "{} {} kept in mind, {} {} told, {pct} before the school day",
            self.children_kept_in_mind,
            if self.children_kept_in_mind == 1 {
                "child"
            } else {
                "children"
            },
            self.schools_told,
            if self.schools_told == 1 {
                "school"
            } else {
                "schools"
            },
        )
    }
}

/// Children delivered within `up_to_seconds` of receipt (and after the
/// bucket before), by whether their deadline was met.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeBucket {
    /// The bucket's upper bound (included); null: longer than the last.
    pub up_to_seconds: Option<u64>,
    pub met: u64,
    pub missed: u64,
}

/// The upper bounds of the receipt → delivery buckets.
pub const BUCKETS: [u64; 10] = [
    60, 300, 900, 3_600, 7_200, 14_400, 28_800, 57_600, 86_400, 172_800,
];

/// Empty buckets, one per bound and one for longer.
pub fn buckets() -> Vec<TimeBucket> {
    BUCKETS
        .iter()
        .map(|b| Some(*b))
        .chain([None])
        .map(|up_to_seconds| TimeBucket {
            up_to_seconds,
            ..TimeBucket::default()
        })
        .collect()
}

/// The bucket `secs` falls in.
pub fn bucket_of(secs: u64) -> usize {
    BUCKETS
        .iter()
        .position(|b| secs <= *b)
        .unwrap_or(BUCKETS.len())
}

/// Why each deadline was missed (each missed child counted once, under
/// the first cause that applies, in this order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissCauses {
    /// The notification arrived less than [`TOO_LATE_SECONDS`] before the
    /// deadline: meeting it was already impossible.
    pub arrived_too_late: u64,
    /// kim was down (between a stop or its last event and the next start)
    /// at some time between receipt and the deadline.
    pub kim_down: u64,
    /// The child was in review at the deadline (decided after it, or not).
    pub waited_in_review: u64,
    /// The mail relay refused or could not be reached (a delivery attempt
    /// retried or refused, or the alert failed) before the deadline.
    pub relay_refused_or_unreachable: u64,
    /// None of these.
    pub other: u64,
}

/// Less time than this between receipt and deadline: a miss is the
/// notification's lateness.
pub const TOO_LATE_SECONDS: i64 = 600;

/// The children that entered review and were decided, per UK day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewDay {
    pub entered: u64,
    pub decided: u64,
}

/// What the tally knows of one missed child, to find its cause.
pub struct MissFacts {
    pub received_at: Timestamp,
    pub deadline: Timestamp,
    pub review_at: Option<Timestamp>,
    pub decided_at: Option<Timestamp>,
    pub relay_trouble_at: Option<Timestamp>,
}

impl MissCauses {
    /// Counts one missed child; `down` are the intervals kim was down.
    pub fn add(&mut self, m: &MissFacts, down: &[(Timestamp, Timestamp)]) {
        let overlaps = |(a, b): &(Timestamp, Timestamp)| *a < m.deadline && *b > m.received_at;
        if m.deadline.duration_since(m.received_at).as_secs() < TOO_LATE_SECONDS {
            self.arrived_too_late += 1;
        } else if down.iter().any(overlaps) {
            self.kim_down += 1;
        } else if m.review_at.is_some_and(|r| r < m.deadline)
            && m.decided_at.is_none_or(|d| d > m.deadline)
        {
            self.waited_in_review += 1;
        } else if m.relay_trouble_at.is_some_and(|t| t <= m.deadline) {
            self.relay_refused_or_unreachable += 1;
        } else {
            self.other += 1;
        }
    }
}
