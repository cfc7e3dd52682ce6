//! Money and rates as exact integers: øre (minor units) and VAT rates in hundredths of a percent.
//!
//! Nothing here touches floating point. Shops send amounts as decimal strings ("249.00") and
//! rates as strings or JSON numbers ("25", 0.06); both are parsed digit by digit.

use std::fmt;
use std::ops::Neg;

use serde::{Deserialize, Serialize};

/// An amount in minor units (øre for NOK), signed. Arithmetic is checked: an overflow is an
/// error, never a wrap.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(pub i64);

/// Why a decimal string is not an amount or a rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseAmountError {
    /// Empty, a stray character, or a second decimal point.
    #[error("`{0}` is not a decimal number")]
    NotDecimal(String),
    /// More fractional digits than the unit allows (amounts: 2).
    #[error("`{0}` has more than {1} decimals")]
    TooPrecise(String, u32),
    /// Beyond what an i64 count of minor units holds.
    #[error("`{0}` is too large")]
    TooLarge(String),
}

impl Money {
    /// Zero øre.
    pub const ZERO: Money = Money(0);

    /// Parses a decimal string in the currency's major unit ("249.00", "-5", "0.5") into minor
    /// units, refusing more than two decimals instead of rounding them away.
    ///
    /// # Errors
    /// [`ParseAmountError`] when the string is not a plain decimal, has more than two decimals,
    /// or does not fit.
    pub fn parse(s: &str) -> Result<Money, ParseAmountError> {
        parse_scaled(s, 2).map(Money)
    }

    /// The sum, or `None` on overflow.
    #[must_use]
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// The difference, or `None` on overflow.
    #[must_use]
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    /// The product with a whole quantity, or `None` on overflow.
    #[must_use]
    pub fn checked_mul(self, quantity: i64) -> Option<Money> {
        self.0.checked_mul(quantity).map(Money)
    }

    /// The negation, or `None` for `i64::MIN` (whose negation does not fit).
    #[must_use]
    pub fn checked_neg(self) -> Option<Money> {
        self.0.checked_neg().map(Money)
    }

    /// True for exactly zero.
    #[must_use]
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}

/// Formats as a decimal string in the major unit with two decimals: `Money(72600)` → `726.00`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// A VAT (or exchange) rate in hundredths of a percent: 25 % is `Rate(2500)`, 6 % is `Rate(600)`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Rate(pub u32);

impl Rate {
    /// Parses a percentage ("25", "12.5", "0") into hundredths of a percent.
    ///
    /// # Errors
    /// [`ParseAmountError`] for anything but a non-negative decimal with at most two decimals.
    pub fn parse_percent(s: &str) -> Result<Rate, ParseAmountError> {
        let v = parse_scaled(s, 2)?;
        u32::try_from(v)
            .map(Rate)
            .map_err(|_| ParseAmountError::NotDecimal(s.to_owned()))
    }

    /// Parses a fraction ("0.25", "0.06", as Shopify sends them) into hundredths of a percent.
    ///
    /// # Errors
    /// [`ParseAmountError`] for anything but a non-negative decimal with at most four decimals.
    pub fn parse_fraction(s: &str) -> Result<Rate, ParseAmountError> {
        let v = parse_scaled(s, 4)?;
        u32::try_from(v)
            .map(Rate)
            .map_err(|_| ParseAmountError::NotDecimal(s.to_owned()))
    }
}

/// Formats as a percentage: `Rate(2500)` → `25`, `Rate(1250)` → `12.5`.
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{whole}"),
            f2 if f2 % 10 == 0 => write!(f, "{whole}.{}", f2 / 10),
            f2 => write!(f, "{whole}.{f2:02}"),
        }
    }
}

/// Parses `[-]digits[.digits]` into an integer scaled by 10^`scale`, refusing extra decimals.
fn parse_scaled(s: &str, scale: u32) -> Result<i64, ParseAmountError> {
    let not_decimal = || ParseAmountError::NotDecimal(s.to_owned());
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && frac.is_empty() || !all_digits(whole) || !all_digits(frac) {
        return Err(not_decimal());
    }
    if digits.ends_with('.') && frac.is_empty() && whole.is_empty() {
        return Err(not_decimal());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > scale as usize {
        return Err(ParseAmountError::TooPrecise(s.to_owned(), scale));
    }
    let too_large = || ParseAmountError::TooLarge(s.to_owned());
    let whole = whole.trim_start_matches('0');
    let mut value: i64 = 0;
    for b in whole.bytes().chain(frac.bytes()) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .ok_or_else(too_large)?;
    }
    let pad = scale - u32::try_from(frac.len()).map_err(|_| too_large())?;
    value = value.checked_mul(10_i64.pow(pad)).ok_or_else(too_large)?;
    Ok(if negative { -value } else { value })
}

/// Divides `numerator` by `denominator` (> 0), rounding half away from zero: the rounding that
/// Norwegian VAT and invoices use ("half-up" on the magnitude).
#[must_use]
pub fn div_round_half_up(numerator: i128, denominator: i128) -> i128 {
    debug_assert!(denominator > 0, "denominator must be positive");
    let q = numerator / denominator;
    let r = numerator % denominator;
    if 2 * r.abs() >= denominator {
        q + numerator.signum()
    } else {
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_exactly_and_refuse_extra_decimals() {
        assert_eq!(Money::parse("249.00"), Ok(Money(24900)));
        assert_eq!(Money::parse("0.5"), Ok(Money(50)));
        assert_eq!(Money::parse("-12.34"), Ok(Money(-1234)));
        assert_eq!(Money::parse("7"), Ok(Money(700)));
        assert_eq!(Money::parse("1.230"), Ok(Money(123)));
        assert!(matches!(
            Money::parse("1.234"),
            Err(ParseAmountError::TooPrecise(..))
        ));
        assert!(matches!(
            Money::parse("1e3"),
            Err(ParseAmountError::NotDecimal(_))
        ));
        assert!(matches!(
            Money::parse(""),
            Err(ParseAmountError::NotDecimal(_))
        ));
        assert!(matches!(
            Money::parse("."),
            Err(ParseAmountError::NotDecimal(_))
        ));
        assert!(matches!(
            Money::parse("1.2.3"),
            Err(ParseAmountError::NotDecimal(_))
        ));
        assert!(matches!(
            Money::parse("99999999999999999999"),
            Err(ParseAmountError::TooLarge(_))
        ));
    }

    #[test]
    fn amounts_print_in_the_major_unit() {
        assert_eq!(Money(72600).to_string(), "726.00");
        assert_eq!(Money(-5).to_string(), "-0.05");
        assert_eq!(Money(0).to_string(), "0.00");
    }

    #[test]
    fn rates_parse_from_percent_and_fraction() {
        assert_eq!(Rate::parse_percent("25"), Ok(Rate(2500)));
        assert_eq!(Rate::parse_percent("12.5"), Ok(Rate(1250)));
        assert_eq!(Rate::parse_fraction("0.06"), Ok(Rate(600)));
        assert_eq!(Rate::parse_fraction("0.25"), Ok(Rate(2500)));
        assert!(Rate::parse_percent("-25").is_err());
        assert_eq!(Rate(1250).to_string(), "12.5");
        assert_eq!(Rate(2500).to_string(), "25");
    }

    #[test]
    fn half_up_rounds_magnitudes() {
        assert_eq!(div_round_half_up(5, 10), 1);
        assert_eq!(div_round_half_up(-5, 10), -1);
        assert_eq!(div_round_half_up(4, 10), 0);
        assert_eq!(div_round_half_up(-14, 10), -1);
        assert_eq!(div_round_half_up(15, 10), 2);
    }
}
