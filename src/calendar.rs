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
#[path = "calendar_tests.rs"]
mod tests;
