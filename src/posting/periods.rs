//! Locked accounting periods. Vouchers are built with the date their event gives them; this
//! last step of [`super::post`] then refuses or moves every voucher dated in a locked month,
//! by the connection's [`LockedPeriodPolicy`].
//!
//! Why here and not in the worker: the decision is bookkeeping (which date a voucher carries),
//! so it belongs with the other rules of the books, where unit tests reach it without a
//! database. The worker only loads the locks into the [`super::Context`]; a trigger in the
//! database refuses what a stale context might still let through (migrations/0003).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use super::error::PostingError;
use super::state::Posting;
use super::voucher::{Voucher, VoucherHead};

/// What to do with a voucher dated in a locked period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockedPeriodPolicy {
    /// Refuse the event: it is dead-lettered with `period locked: YYYY-MM`, and can be
    /// replayed after the period is unlocked. The safe default: nothing moves silently.
    #[default]
    DeadLetter,
    /// Post the voucher on the first day of the next open month, with its original date in
    /// the description.
    NextOpenDate,
}

impl LockedPeriodPolicy {
    /// The database and command-line name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            LockedPeriodPolicy::DeadLetter => "dead_letter",
            LockedPeriodPolicy::NextOpenDate => "next_open_date",
        }
    }
}

impl fmt::Display for LockedPeriodPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LockedPeriodPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dead_letter" => Ok(LockedPeriodPolicy::DeadLetter),
            "next_open_date" => Ok(LockedPeriodPolicy::NextOpenDate),
            other => Err(format!(
                "unknown locked-period policy `{other}` (dead_letter or next_open_date)"
            )),
        }
    }
}

/// The first day of `date`'s month: how a period is named and stored.
#[must_use]
pub fn month_of(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

/// A month as operators write it: `2026-03`.
#[must_use]
pub fn month_label(month: NaiveDate) -> String {
    month.format("%Y-%m").to_string()
}

/// The first day of the first month after `date`'s that is not in `locked`; `None` only past
/// the end of the calendar.
#[must_use]
pub fn next_open_date(date: NaiveDate, locked: &BTreeSet<NaiveDate>) -> Option<NaiveDate> {
    let mut month = month_of(date).checked_add_months(Months::new(1))?;
    while locked.contains(&month) {
        month = month.checked_add_months(Months::new(1))?;
    }
    Some(month)
}

/// Applies the locks to a posting: unchanged when no voucher falls in a locked month.
///
/// # Errors
/// [`PostingError::PeriodLocked`] under [`LockedPeriodPolicy::DeadLetter`] (or when no open
/// month follows); [`PostingError::Voucher`] cannot happen, as moving keeps the lines.
pub fn apply(
    posting: Posting,
    locked: &BTreeSet<NaiveDate>,
    policy: LockedPeriodPolicy,
) -> Result<Posting, PostingError> {
    if locked.is_empty()
        || !posting
            .vouchers
            .iter()
            .any(|v| locked.contains(&month_of(v.date())))
    {
        return Ok(posting);
    }
    let Posting {
        vouchers,
        mut state,
        outcome,
        flags,
    } = posting;
    let mut out = Vec::with_capacity(vouchers.len());
    for v in vouchers {
        let date = v.date();
        if !locked.contains(&month_of(date)) {
            out.push(v);
            continue;
        }
        let refused = || PostingError::PeriodLocked {
            month: month_label(month_of(date)),
            key: v.key().to_owned(),
            date,
        };
        let moved_to = match policy {
            LockedPeriodPolicy::DeadLetter => return Err(refused()),
            LockedPeriodPolicy::NextOpenDate => next_open_date(date, locked).ok_or_else(refused)?,
        };
        if let Some(invoice) = state.invoice.as_mut().filter(|i| i.key == v.key()) {
            invoice.date = moved_to;
        }
        let (head, lines) = v.into_parts();
        let head = VoucherHead {
            date: moved_to,
            description: format!(
                "{} (bilagsdato {date}; perioden {} er låst)",
                head.description,
                month_label(month_of(date))
            ),
            ..head
        };
        out.push(Voucher::balanced(head, lines)?);
    }
    Ok(Posting {
        vouchers: out,
        state,
        outcome,
        flags,
    })
}
