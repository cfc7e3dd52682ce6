//! Locked periods: the engine refuses or moves vouchers dated in a locked month.

use std::collections::BTreeSet;

use super::periods::{month_of, next_open_date};
use super::tests::{ctx, day, order_1001, payment};
use super::*;

fn locked(months: &[(i32, u32)]) -> BTreeSet<chrono::NaiveDate> {
    months.iter().map(|&(y, m)| day(y, m, 1)).collect()
}

#[test]
fn the_next_open_date_skips_every_locked_month_and_the_year_end() {
    let l = locked(&[(2026, 3), (2026, 4), (2026, 12)]);
    assert_eq!(next_open_date(day(2026, 3, 2), &l), Some(day(2026, 5, 1)));
    assert_eq!(next_open_date(day(2026, 12, 31), &l), Some(day(2027, 1, 1)));
    assert_eq!(month_of(day(2026, 3, 31)), day(2026, 3, 1));
}

#[test]
fn with_dead_letter_a_voucher_in_a_locked_month_is_refused_naming_the_month() {
    let mut c = ctx();
    c.locked_periods = locked(&[(2026, 3)]);
    let err = post(&Event::Order(order_1001()), &c, &OrderState::new("1001")).unwrap_err();
    assert!(
        err.to_string().starts_with("period locked: 2026-03"),
        "{err}"
    );
    assert!(matches!(err, PostingError::PeriodLocked { .. }));
    assert!(!err.is_retryable(), "an operator must unlock, then replay");
}

#[test]
fn with_next_open_date_the_voucher_moves_to_the_first_open_day_keeping_its_lines() {
    let open = post(
        &Event::Order(order_1001()),
        &ctx(),
        &OrderState::new("1001"),
    )
    .unwrap();
    let mut c = ctx();
    c.locked_periods = locked(&[(2026, 3), (2026, 4)]);
    c.connection.locked_period_policy = LockedPeriodPolicy::NextOpenDate;
    let moved = post(&Event::Order(order_1001()), &c, &OrderState::new("1001")).unwrap();
    let (before, after) = (&open.vouchers[0], &moved.vouchers[0]);
    assert_eq!(after.date(), day(2026, 5, 1));
    assert_eq!(
        after.lines(),
        before.lines(),
        "only the date and text change"
    );
    assert_eq!(
        after.key(),
        before.key(),
        "idempotency does not depend on the date"
    );
    assert!(
        after.description().contains("2026-03-02") && after.description().contains("2026-03"),
        "the original date is kept: {}",
        after.description()
    );
    assert_eq!(
        moved.state.invoice.as_ref().map(|i| i.date),
        Some(day(2026, 5, 1)),
        "the order remembers the invoice as posted"
    );
}

#[test]
fn vouchers_in_open_months_are_untouched_by_locks_elsewhere() {
    let mut c = ctx();
    c.locked_periods = locked(&[(2026, 2), (2026, 4)]);
    let p = post(&Event::Order(order_1001()), &c, &OrderState::new("1001")).unwrap();
    assert_eq!(p.vouchers[0].date(), day(2026, 3, 2));
    assert!(!p.vouchers[0].description().contains("låst"));
}

#[test]
fn a_payment_in_a_locked_month_follows_the_same_policy() {
    let first = post(
        &Event::Order(order_1001()),
        &ctx(),
        &OrderState::new("1001"),
    )
    .unwrap();
    let mut c = ctx();
    c.locked_periods = locked(&[(2026, 3)]);
    let err = post(&payment("p-1", "726.00"), &c, &first.state).unwrap_err();
    assert!(err.to_string().starts_with("period locked: 2026-03"));
    c.connection.locked_period_policy = LockedPeriodPolicy::NextOpenDate;
    let p = post(&payment("p-1", "726.00"), &c, &first.state).unwrap();
    assert_eq!(p.vouchers[0].date(), day(2026, 4, 1));
}

#[test]
fn policies_parse_from_their_names() {
    for p in [
        LockedPeriodPolicy::DeadLetter,
        LockedPeriodPolicy::NextOpenDate,
    ] {
        assert_eq!(p.as_str().parse::<LockedPeriodPolicy>(), Ok(p));
    }
    assert!("later".parse::<LockedPeriodPolicy>().is_err());
}
