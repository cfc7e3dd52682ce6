//! VAT: the SAF-T standard codes with their rates over time, which output-VAT account each
//! code posts to, and the split of a line amount into net and VAT, rounded half-up to øre.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::chart::AccountNo;
use super::money::{Money, Rate, div_round_half_up};

/// A SAF-T standard VAT code ("3" = output VAT at the regular rate). The codes on the official
/// list are all numeric, so a number is enough and cannot be misspelt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VatCode(pub u16);

impl fmt::Display for VatCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One code at one rate over one period. A rate change is a new entry for the same code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VatCodeEntry {
    /// The SAF-T standard code.
    pub code: VatCode,
    /// The rate in force over the period.
    pub rate: Rate,
    /// First day the rate applies.
    pub valid_from: NaiveDate,
    /// Last day the rate applies; `None` while it is in force.
    pub valid_to: Option<NaiveDate>,
    /// Where the output VAT of this code is credited; `None` for codes without VAT (0 %).
    pub output_account: Option<AccountNo>,
    /// Chosen when a line's rate fits several codes (0 % fits 5, 52 and 6); a rule may still
    /// override it, e.g. to 52 for exports.
    pub default_for_rate: bool,
}

impl VatCodeEntry {
    fn valid_on(&self, date: NaiveDate) -> bool {
        self.valid_from <= date && self.valid_to.is_none_or(|to| date <= to)
    }
}

/// The VAT codes a company posts with, loaded from the database.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VatTable {
    /// Every code and period; order does not matter.
    pub entries: Vec<VatCodeEntry>,
}

/// Why a rate has no single code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeLookup {
    /// Exactly one code (or the default one) has the rate on that day.
    Found(VatCode),
    /// No code has the rate on that day.
    Unknown,
    /// Several codes have it and none is marked as the default.
    Ambiguous,
}

impl VatTable {
    /// The Norwegian output-VAT codes a webshop sells with: 3 (25 %), 31 (15 %), 33 (12 %, with
    /// its 2020–21 cut to 6 %), and the 0 % codes 5 (zero-rated, the default for 0 %), 52 (export)
    /// and 6 (outside the VAT act). Output VAT goes to 2700, 2701 and 2703.
    #[must_use]
    pub fn norwegian() -> VatTable {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN);
        let entry = |code, rate, from, to, account: Option<u32>| VatCodeEntry {
            code: VatCode(code),
            rate: Rate(rate),
            valid_from: from,
            valid_to: to,
            output_account: account.map(AccountNo),
            default_for_rate: code == 5,
        };
        let start = day(2005, 1, 1);
        VatTable {
            entries: vec![
                entry(3, 2500, start, None, Some(2700)),
                entry(31, 1500, day(2012, 1, 1), None, Some(2701)),
                entry(
                    33,
                    1200,
                    day(2018, 1, 1),
                    Some(day(2020, 3, 31)),
                    Some(2703),
                ),
                entry(33, 600, day(2020, 4, 1), Some(day(2021, 9, 30)), Some(2703)),
                entry(33, 1200, day(2021, 10, 1), None, Some(2703)),
                entry(5, 0, start, None, None),
                entry(52, 0, start, None, None),
                entry(6, 0, start, None, None),
            ],
        }
    }

    /// The code for a line at `rate` sold on `date`.
    #[must_use]
    pub fn code_for_rate(&self, rate: Rate, date: NaiveDate) -> CodeLookup {
        let mut fits = self
            .entries
            .iter()
            .filter(|e| e.rate == rate && e.valid_on(date));
        let Some(first) = fits.next() else {
            return CodeLookup::Unknown;
        };
        let rest: Vec<&VatCodeEntry> = fits.filter(|e| e.code != first.code).collect();
        if rest.is_empty() {
            return CodeLookup::Found(first.code);
        }
        let mut defaults = std::iter::once(first)
            .chain(rest)
            .filter(|e| e.default_for_rate);
        match (defaults.next(), defaults.next()) {
            (Some(only), None) => CodeLookup::Found(only.code),
            _ => CodeLookup::Ambiguous,
        }
    }

    /// The entry of `code` in force on `date`.
    #[must_use]
    pub fn entry(&self, code: VatCode, date: NaiveDate) -> Option<&VatCodeEntry> {
        self.entries
            .iter()
            .find(|e| e.code == code && e.valid_on(date))
    }
}

/// A line amount split into its net and its VAT, in the same currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// Revenue: the amount without VAT, and the base the VAT is computed on.
    pub net: Money,
    /// The VAT.
    pub vat: Money,
    /// What the customer pays: net + VAT.
    pub gross: Money,
}

/// Splits `amount` at `rate`. With `includes_vat`, `amount` is gross and
/// VAT = round_half_up(gross × r / (1 + r)); otherwise it is net and VAT = round_half_up(net × r).
/// A VAT amount the shop computed itself (`shop_vat`) wins over ours.
///
/// Returns `None` when an amount overflows.
#[must_use]
pub fn split(
    amount: Money,
    rate: Rate,
    includes_vat: bool,
    shop_vat: Option<Money>,
) -> Option<Split> {
    let r = i128::from(rate.0);
    let a = i128::from(amount.0);
    let computed = if includes_vat {
        div_round_half_up(a.checked_mul(r)?, 10_000 + r)
    } else {
        div_round_half_up(a.checked_mul(r)?, 10_000)
    };
    let vat = match shop_vat {
        Some(v) => v,
        None => Money(i64::try_from(computed).ok()?),
    };
    if includes_vat {
        Some(Split {
            net: amount.checked_sub(vat)?,
            vat,
            gross: amount,
        })
    } else {
        Some(Split {
            net: amount,
            vat,
            gross: amount.checked_add(vat)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn gross_prices_split_half_up_per_line() {
        let coffee = split(Money(12900), Rate(1500), true, None).unwrap();
        assert_eq!((coffee.net, coffee.vat), (Money(11217), Money(1683)));
        let shirts = split(Money(49800), Rate(2500), true, None).unwrap();
        assert_eq!((shirts.net, shirts.vat), (Money(39840), Money(9960)));
    }

    #[test]
    fn net_prices_add_vat_half_up() {
        let s = split(Money(1002), Rate(2500), false, None).unwrap();
        assert_eq!(
            (s.net, s.vat, s.gross),
            (Money(1002), Money(251), Money(1253))
        );
    }

    #[test]
    fn the_shops_vat_wins() {
        let s = split(Money(12900), Rate(1500), true, Some(Money(1682))).unwrap();
        assert_eq!((s.net, s.vat), (Money(11218), Money(1682)));
    }

    #[test]
    fn rates_find_their_code_on_the_day() {
        let t = VatTable::norwegian();
        assert_eq!(
            t.code_for_rate(Rate(2500), day(2026, 3, 2)),
            CodeLookup::Found(VatCode(3))
        );
        assert_eq!(
            t.code_for_rate(Rate(600), day(2021, 1, 1)),
            CodeLookup::Found(VatCode(33))
        );
        assert_eq!(
            t.code_for_rate(Rate(600), day(2026, 1, 1)),
            CodeLookup::Unknown
        );
        assert_eq!(
            t.code_for_rate(Rate(0), day(2026, 1, 1)),
            CodeLookup::Found(VatCode(5))
        );
        assert_eq!(
            t.code_for_rate(Rate(2200), day(2026, 1, 1)),
            CodeLookup::Unknown
        );
    }
}
