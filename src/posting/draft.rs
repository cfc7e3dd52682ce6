//! From lines in the event's currency to a balanced voucher in the base currency.
//!
//! Builders write every amount into `currency_amount` (the event's currency). [`finish`]
//! converts each line half-up, sets the VAT bases from the converted revenue, and puts the øre
//! that conversion loses on the rounding account, with a zero currency amount, so that the
//! voucher balances in the base currency and in the event's currency alike.

use std::collections::BTreeMap;

use super::chart::AccountNo;
use super::context::Context;
use super::error::PostingError;
use super::event::ExchangeRate;
use super::money::{Money, div_round_half_up};
use super::vat::VatCode;
use super::voucher::{LineRole, Voucher, VoucherHead, VoucherLine, sum};

/// How an event's amounts become base currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Conversion {
    /// The event's currency.
    pub currency: String,
    /// `None` when the event is in the base currency.
    pub rate: Option<ExchangeRate>,
}

impl Conversion {
    /// The conversion for `currency`: none for the base currency, else the first rate of
    /// `rates` (most trusted first).
    pub fn resolve(
        currency: &str,
        ctx: &Context,
        rates: &[Option<ExchangeRate>],
    ) -> Result<Conversion, PostingError> {
        let currency = currency.to_ascii_uppercase();
        if currency == ctx.base_currency.to_ascii_uppercase() {
            return Ok(Conversion {
                currency,
                rate: None,
            });
        }
        let Some(rate) = rates.iter().flatten().next().copied() else {
            return Err(PostingError::NoExchangeRate {
                currency,
                base: ctx.base_currency.clone(),
            });
        };
        if rate.micros <= 0 {
            return Err(PostingError::BadExchangeRate {
                currency,
                micros: rate.micros,
            });
        }
        Ok(Conversion {
            currency,
            rate: Some(rate),
        })
    }

    /// `amount` in base currency, half-up to øre.
    pub fn to_base(&self, amount: Money) -> Result<Money, PostingError> {
        let Some(rate) = self.rate else {
            return Ok(amount);
        };
        let exact = i128::from(amount.0) * i128::from(rate.micros);
        i64::try_from(div_round_half_up(exact, 1_000_000))
            .map(Money)
            .map_err(|_| {
                PostingError::Overflow(format!("{amount} {} in base currency", self.currency))
            })
    }
}

/// A line in the event's currency with the connection's dimensions.
pub(crate) fn line(
    ctx: &Context,
    conv: &Conversion,
    account: AccountNo,
    amount: Money,
    role: LineRole,
    description: String,
) -> VoucherLine {
    let mut l = VoucherLine::new(account, amount, &conv.currency, role, description);
    l.department.clone_from(&ctx.connection.department);
    l.location.clone_from(&ctx.connection.location);
    l
}

/// Converts `lines` (amounts in `currency_amount`), fills in VAT bases, absorbs conversion
/// øre, drops empty lines and balances the voucher.
pub(crate) fn finish(
    head: VoucherHead,
    mut lines: Vec<VoucherLine>,
    conv: &Conversion,
    ctx: &Context,
) -> Result<Voucher, PostingError> {
    let mut bases: BTreeMap<VatCode, Money> = BTreeMap::new();
    for l in &mut lines {
        l.amount = conv.to_base(l.currency_amount)?;
        if matches!(l.role, LineRole::Sales(_) | LineRole::Discount) {
            l.vat_base = Some(l.amount);
            if let Some(code) = l.vat_code {
                let b = bases.entry(code).or_default();
                *b = b.checked_add(l.amount).ok_or_else(|| overflow(&head))?;
            }
        }
    }
    for l in lines.iter_mut().filter(|l| l.role == LineRole::OutputVat) {
        l.vat_base = l.vat_code.and_then(|c| bases.get(&c).copied());
    }
    let residual = sum(lines.iter().map(|l| l.amount)).ok_or_else(|| overflow(&head))?;
    if !residual.is_zero() && conv.rate.is_some() {
        let text = format!("Valutaavrunding {} → {}", conv.currency, ctx.base_currency);
        let mut r = line(
            ctx,
            conv,
            ctx.system.rounding,
            Money::ZERO,
            LineRole::Rounding,
            text,
        );
        r.amount = super::invoice::neg(residual)?;
        lines.push(r);
    }
    lines.retain(|l| !l.is_empty());
    Ok(Voucher::balanced(head, lines)?)
}

fn overflow(head: &VoucherHead) -> PostingError {
    PostingError::Overflow(format!("the lines of voucher {}", head.key))
}
