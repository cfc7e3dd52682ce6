//! Accounting dates. Shops send instants in UTC; Norwegian books are kept by the Norwegian
//! calendar day, so an order placed 31 December 23:30 UTC belongs to 1 January.
//!
//! Norway follows the EU summer-time rule (since 1996): UTC+2 from the last Sunday of March,
//! 01:00 UTC, to the last Sunday of October, 01:00 UTC; UTC+1 otherwise. A dozen lines here
//! spare the engine a time-zone database dependency.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc, Weekday};

/// The calendar day in Norway (Europe/Oslo) at `instant`.
#[must_use]
pub fn oslo_date(instant: DateTime<Utc>) -> NaiveDate {
    let utc = instant.naive_utc();
    let year = utc.year();
    let summer = match (switch(year, 3), switch(year, 10)) {
        (Some(start), Some(end)) => start <= utc && utc < end,
        _ => false,
    };
    let offset = if summer { 2 } else { 1 };
    (utc + Duration::hours(offset)).date()
}

/// 01:00 UTC on the last Sunday of `month`.
fn switch(year: i32, month: u32) -> Option<NaiveDateTime> {
    let mut day = NaiveDate::from_ymd_opt(year, month + 1, 1)?.pred_opt()?;
    while day.weekday() != Weekday::Sun {
        day = day.pred_opt()?;
    }
    day.and_hms_opt(1, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn new_year_in_oslo_comes_an_hour_before_utc() {
        assert_eq!(oslo_date(at("2025-12-31T22:59:59Z")), day(2025, 12, 31));
        assert_eq!(oslo_date(at("2025-12-31T23:00:00Z")), day(2026, 1, 1));
    }

    #[test]
    fn summer_time_is_two_hours_ahead() {
        // 2026: summer time from 29 March to 25 October.
        assert_eq!(oslo_date(at("2026-06-30T21:59:00Z")), day(2026, 6, 30));
        assert_eq!(oslo_date(at("2026-06-30T22:00:00Z")), day(2026, 7, 1));
        assert_eq!(oslo_date(at("2026-03-28T22:30:00Z")), day(2026, 3, 28));
        assert_eq!(oslo_date(at("2026-10-31T22:30:00Z")), day(2026, 10, 31));
        assert_eq!(oslo_date(at("2026-10-31T23:00:00Z")), day(2026, 11, 1));
    }
}
