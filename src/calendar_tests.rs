//! Tests of `calendar.rs`, kept in their own file.

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
