//! Checks and sums on amounts that every adapter needs.

use super::AdapterError;
use super::json::invalid;
use crate::posting::event::OrderLine;
use crate::posting::money::Money;

/// Adds up `amounts`, refusing an overflow (reported against `path`).
pub(super) fn sum(
    path: &str,
    amounts: impl IntoIterator<Item = Money>,
) -> Result<Money, AdapterError> {
    amounts.into_iter().try_fold(Money::ZERO, |acc, m| {
        acc.checked_add(m)
            .ok_or_else(|| invalid(path, "amounts add up to more than can be held"))
    })
}

/// Refuses a line whose discount exceeds its price times its quantity.
pub(super) fn check_line(path: &str, line: &OrderLine) -> Result<(), AdapterError> {
    let gross = line
        .unit_price
        .checked_mul(line.quantity)
        .ok_or_else(|| invalid(path, "quantity times unit price is too large"))?;
    if line.discount > gross {
        let reason = format!(
            "discount {} is more than the line's {} ({} × {})",
            line.discount, gross, line.quantity, line.unit_price
        );
        return Err(invalid(path, reason));
    }
    Ok(())
}
