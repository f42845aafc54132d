//! The school-day calendar, a leaf module that `config`, `alert`, `deliver`
//! and `store` use. The deadline of DESIGN §7: an alert should reach the school before the
//! next school day starts (08:00 Europe/London by default, Monday to Friday,
//! minus configured closure dates). Pure calendar arithmetic in the school's
//! time zone, so the clocks changing in March and October are handled by jiff.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The schools' time zone.
pub const SCHOOL_TZ: &str = "Europe/London";

/// Whether a day is a school day and when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolCalendar {
    day_start: Time,
    closures: Vec<Date>,
    tz: TimeZone,
}

impl Default for SchoolCalendar {
    fn default() -> Self {
        Self::new(jiff::civil::time(8, 0, 0, 0), &[])
    }
}

/// The time zone of English schools (bundled tzdb, so it works in a
/// hardened unit without /usr/share/zoneinfo).
pub fn school_tz() -> TimeZone {
    TimeZone::get(SCHOOL_TZ).expect("the bundled time zone database has Europe/London")
}

impl SchoolCalendar {
    pub fn new(day_start: Time, closures: &[Date]) -> Self {
        let mut closures = closures.to_vec();
        closures.sort();
        closures.dedup();
        Self {
            day_start,
            closures,
            tz: school_tz(),
        }
    }

    pub fn is_school_day(&self, d: Date) -> bool {
        !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
            && self.closures.binary_search(&d).is_err()
    }

    /// The start of the first school day that begins after `received`.
    pub fn deadline(&self, received: Timestamp) -> Timestamp {
        let mut day = received.to_zoned(self.tz.clone()).date();
        // A school year has ~190 days; a closure list cannot make a year of
        // consecutive closed days, so 400 steps always find one.
        for _ in 0..400 {
            if self.is_school_day(day) {
                if let Ok(start) = day.to_datetime(self.day_start).to_zoned(self.tz.clone()) {
                    if start.timestamp() > received {
                        return start.timestamp();
                    }
                }
            }
            day = day
                .tomorrow()
                .expect("dates this close to now have a tomorrow");
        }
        received
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn london(s: &str) -> Timestamp {
        s.parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(school_tz())
            .unwrap()
            .timestamp()
    }

    #[test]
    fn friday_night_is_due_monday_at_eight() {
        // Friday 20 November 2026, 22:00 GMT.
        let cal = SchoolCalendar::default();
        assert_eq!(
            cal.deadline(london("2026-11-20T22:00")),
            ts("2026-11-23T08:00:00Z")
        );
    }

    #[test]
    fn a_weekday_night_is_due_next_morning_and_an_early_morning_the_same_day() {
        let cal = SchoolCalendar::default();
        assert_eq!(
            cal.deadline(london("2026-11-24T21:40")),
            ts("2026-11-25T08:00:00Z")
        );
        assert_eq!(
            cal.deadline(london("2026-11-25T06:30")),
            ts("2026-11-25T08:00:00Z")
        );
        // During the school day: the next one.
        assert_eq!(
            cal.deadline(london("2026-11-25T08:00")),
            ts("2026-11-26T08:00:00Z")
        );
    }

    #[test]
    fn closure_dates_are_skipped() {
        let closures = ["2026-11-23".parse().unwrap(), "2026-11-24".parse().unwrap()];
        let cal = SchoolCalendar::new(jiff::civil::time(8, 0, 0, 0), &closures);
        assert_eq!(
            cal.deadline(london("2026-11-20T22:00")),
            ts("2026-11-25T08:00:00Z")
        );
        // Christmas: a closure list across the holiday.
        let xmas: Vec<Date> = (0..14)
            .map(|i| {
                "2026-12-21"
                    .parse::<Date>()
                    .unwrap()
                    .checked_add(jiff::Span::new().days(i))
                    .unwrap()
            })
            .collect();
        let cal = SchoolCalendar::new(jiff::civil::time(8, 45, 0, 0), &xmas);
        assert_eq!(
            cal.deadline(london("2026-12-18T23:00")),
            ts("2027-01-04T08:45:00Z")
        );
    }

    #[test]
    fn clocks_going_forward_in_march() {
        // BST starts Sunday 29 March 2026 at 01:00 GMT: Monday's 08:00 is 07:00 UTC.
        let cal = SchoolCalendar::default();
        assert_eq!(
            cal.deadline(london("2026-03-27T22:00")),
            ts("2026-03-30T07:00:00Z")
        );
        // Received in the skipped hour's night, Saturday into Sunday.
        assert_eq!(
            cal.deadline(ts("2026-03-29T01:30:00Z")),
            ts("2026-03-30T07:00:00Z")
        );
    }

    #[test]
    fn clocks_going_back_in_october() {
        // GMT resumes Sunday 25 October 2026 at 01:00 UTC: Friday's 08:00 was
        // 07:00 UTC, Monday's is 08:00 UTC.
        let cal = SchoolCalendar::default();
        assert_eq!(
            cal.deadline(london("2026-10-22T22:00")),
            ts("2026-10-23T07:00:00Z")
        );
        assert_eq!(
            cal.deadline(london("2026-10-23T22:00")),
            ts("2026-10-26T08:00:00Z")
        );
    }
}
