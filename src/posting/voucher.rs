//! Vouchers: the balanced, immutable unit the ledger stores. [`Voucher::balanced`] is the only
//! way to make one, so a [`Voucher`] value is proof that its lines sum to zero.
//!
//! **Sign convention.** A line's `amount` is signed: debit is positive, credit is negative.
//! A voucher balances when its amounts sum to exactly zero, in the base currency and, per
//! currency, in `currency_amount`. One signed column keeps that check a plain sum and makes a
//! reversal a plain negation; the database and SAF-T export split it into debit and credit.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::chart::AccountNo;
use super::event::LineKind;
use super::money::Money;
use super::vat::VatCode;

/// What a voucher is, which also picks its number series in the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoucherKind {
    /// A sale: the customer owes the order's total.
    Invoice,
    /// Reverses an invoice in whole (cancellation, change) or in part (return).
    CreditNote,
    /// Money received from the customer.
    Payment,
    /// Money paid back to the customer.
    RefundPayment,
}

/// Why a line is on a voucher. Stored with the line so that later vouchers can find what an
/// earlier one posted (a return reverses the revenue line of the returned SKU).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineRole {
    /// The customer's side: receivables.
    Receivable,
    /// Revenue from an order line of this kind.
    Sales(LineKind),
    /// A discount posted on its own account (a discount rule matched).
    Discount,
    /// Output VAT of one VAT code.
    OutputVat,
    /// An øre difference: the shop's total against our sum, or currency conversion.
    Rounding,
    /// The money side of a payment or refund: prepaid/clearing or bank account.
    Settlement,
    /// A payment provider's fee.
    ProviderFee,
}

/// One line of a voucher.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoucherLine {
    /// The account posted to.
    pub account: AccountNo,
    /// Base-currency amount in øre: debit positive, credit negative.
    pub amount: Money,
    /// ISO 4217 code of the event's currency (the base currency when they are the same).
    pub currency: String,
    /// The amount in `currency`, signed like `amount`. Zero on a line that only absorbs the
    /// øre lost in conversion, so that the voucher balances in each currency too.
    pub currency_amount: Money,
    /// VAT code of revenue and VAT lines; `None` on balance lines.
    pub vat_code: Option<VatCode>,
    /// The net (base currency, signed like the revenue) that the VAT was computed on; SAF-T
    /// reports it with every line that has a VAT code.
    pub vat_base: Option<Money>,
    /// The shop's customer id on receivable lines, so the customer ledger can be kept.
    pub customer_id: Option<String>,
    /// Department dimension (SAF-T analysis type `A`).
    pub department: Option<String>,
    /// Location ("sted/lager") dimension.
    pub location: Option<String>,
    /// What the line is for, in the operators' language ("2 × T-skjorte").
    pub description: String,
    /// Why the line is on the voucher.
    pub role: LineRole,
    /// The SKU of the order line behind a revenue line; returns find it by this.
    pub sku: Option<String>,
}

impl VoucherLine {
    /// A line with nothing but an account, amounts in one currency, role and text; the
    /// dimensions and VAT fields start empty.
    #[must_use]
    pub fn new(
        account: AccountNo,
        amount: Money,
        currency: &str,
        role: LineRole,
        description: String,
    ) -> Self {
        VoucherLine {
            account,
            amount,
            currency: currency.to_owned(),
            currency_amount: amount,
            vat_code: None,
            vat_base: None,
            customer_id: None,
            department: None,
            location: None,
            description,
            role,
            sku: None,
        }
    }

    /// The same line with every amount negated: what reverses it.
    #[must_use]
    pub fn reversed(&self) -> VoucherLine {
        VoucherLine {
            amount: -self.amount,
            currency_amount: -self.currency_amount,
            vat_base: self.vat_base.map(|b| -b),
            ..self.clone()
        }
    }

    /// True when the line moves nothing (no amount, no currency amount, no VAT base).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.amount.is_zero()
            && self.currency_amount.is_zero()
            && self.vat_base.is_none_or(Money::is_zero)
    }
}

/// Everything about a voucher except its lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoucherHead {
    /// Business idempotency key (`invoice:1001:1`); unique in the ledger.
    pub key: String,
    /// Invoice, credit note, payment or refund payment.
    pub kind: VoucherKind,
    /// The accounting date.
    pub date: NaiveDate,
    /// What the voucher is, in the operators' language ("Faktura ordre 1001").
    pub description: String,
    /// The shop's id of the order the voucher belongs to; links a payment to its invoice.
    pub order_id: String,
    /// Key of the voucher this one reverses or corrects, when any.
    pub reverses: Option<String>,
}

/// The largest amount a line may carry, in either direction: 10^15 kroner, far beyond any
/// real voucher and far below where sums of many lines could overflow.
pub const MAX_LINE_AMOUNT: Money = Money(100_000_000_000_000_000);

/// A balanced voucher. The database assigns its number; the engine never does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Voucher {
    head: VoucherHead,
    lines: Vec<VoucherLine>,
}

/// Why lines do not make a voucher.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VoucherError {
    /// A voucher needs at least one line.
    #[error("voucher {key} has no lines")]
    Empty {
        /// The voucher's key.
        key: String,
    },
    /// Debits and credits differ; `difference` is debits minus credits.
    #[error("voucher {key} does not balance: debits exceed credits by {difference}")]
    Unbalanced {
        /// The voucher's key.
        key: String,
        /// Sum of the signed amounts.
        difference: Money,
    },
    /// The lines in one currency do not sum to zero in that currency.
    #[error("voucher {key} does not balance in {currency}: debits exceed credits by {difference}")]
    UnbalancedInCurrency {
        /// The voucher's key.
        key: String,
        /// The currency concerned.
        currency: String,
        /// Sum of that currency's signed amounts.
        difference: Money,
    },
    /// A line exceeds [`MAX_LINE_AMOUNT`], or a sum does not fit in an i64 count of øre.
    #[error("voucher {key}: amounts too large")]
    Overflow {
        /// The voucher's key.
        key: String,
    },
}

impl Voucher {
    /// Makes a voucher of `lines`, checking that it has lines and that they sum to zero in the
    /// base currency and per currency, with checked arithmetic.
    ///
    /// # Errors
    /// [`VoucherError`] when there are no lines, a sum overflows, or a sum is not zero (the
    /// error reports the difference).
    pub fn balanced(head: VoucherHead, lines: Vec<VoucherLine>) -> Result<Voucher, VoucherError> {
        let key = || head.key.clone();
        if lines.is_empty() {
            return Err(VoucherError::Empty { key: key() });
        }
        let overflow = || VoucherError::Overflow { key: key() };
        // Bounded lines can always be negated, so a stored voucher can always be reversed.
        let bounded = |m: Money| m.0.unsigned_abs() <= MAX_LINE_AMOUNT.0.unsigned_abs();
        let fits = |l: &VoucherLine| {
            bounded(l.amount) && bounded(l.currency_amount) && l.vat_base.is_none_or(bounded)
        };
        if !lines.iter().all(fits) {
            return Err(overflow());
        }
        let difference = sum(lines.iter().map(|l| l.amount)).ok_or_else(overflow)?;
        if !difference.is_zero() {
            return Err(VoucherError::Unbalanced {
                key: key(),
                difference,
            });
        }
        let mut currencies: Vec<&str> = lines.iter().map(|l| l.currency.as_str()).collect();
        currencies.sort_unstable();
        currencies.dedup();
        for currency in currencies {
            let in_currency = lines.iter().filter(|l| l.currency == currency);
            let difference = sum(in_currency.map(|l| l.currency_amount)).ok_or_else(overflow)?;
            if !difference.is_zero() {
                let currency = currency.to_owned();
                return Err(VoucherError::UnbalancedInCurrency {
                    key: key(),
                    currency,
                    difference,
                });
            }
        }
        Ok(Voucher { head, lines })
    }

    /// Business idempotency key.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.head.key
    }

    /// Invoice, credit note, payment or refund payment.
    #[must_use]
    pub fn kind(&self) -> VoucherKind {
        self.head.kind
    }

    /// The accounting date.
    #[must_use]
    pub fn date(&self) -> NaiveDate {
        self.head.date
    }

    /// What the voucher is.
    #[must_use]
    pub fn description(&self) -> &str {
        &self.head.description
    }

    /// The order the voucher belongs to.
    #[must_use]
    pub fn order_id(&self) -> &str {
        &self.head.order_id
    }

    /// The key of the voucher this one reverses, when any.
    #[must_use]
    pub fn reverses(&self) -> Option<&str> {
        self.head.reverses.as_deref()
    }

    /// Everything but the lines.
    #[must_use]
    pub fn head(&self) -> &VoucherHead {
        &self.head
    }

    /// The lines, in posting order.
    #[must_use]
    pub fn lines(&self) -> &[VoucherLine] {
        &self.lines
    }

    /// The head and lines, to build a changed voucher with [`Voucher::balanced`] again (a
    /// voucher moved out of a locked period).
    #[must_use]
    pub fn into_parts(self) -> (VoucherHead, Vec<VoucherLine>) {
        (self.head, self.lines)
    }

    /// Sum of the debit lines in base currency: the voucher's size, as operators see it.
    #[must_use]
    pub fn total_debit(&self) -> Money {
        // Cannot overflow: `balanced` summed the same amounts with checks, and the debits
        // alone are bounded by the sum of their magnitudes, checked below all the same.
        let debits = self.lines.iter().map(|l| l.amount).filter(|a| a.0 > 0);
        sum(debits).unwrap_or(Money(i64::MAX))
    }
}

/// Checked sum; `None` on overflow.
pub(crate) fn sum(amounts: impl IntoIterator<Item = Money>) -> Option<Money> {
    amounts
        .into_iter()
        .try_fold(Money::ZERO, Money::checked_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> VoucherHead {
        VoucherHead {
            key: "invoice:1:1".into(),
            kind: VoucherKind::Invoice,
            date: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
            description: "Faktura ordre 1".into(),
            order_id: "1".into(),
            reverses: None,
        }
    }

    fn line(account: u32, amount: i64) -> VoucherLine {
        VoucherLine::new(
            AccountNo(account),
            Money(amount),
            "NOK",
            LineRole::Receivable,
            String::new(),
        )
    }

    #[test]
    fn balanced_lines_make_a_voucher() {
        let v = Voucher::balanced(head(), vec![line(1500, 100), line(3000, -100)]).unwrap();
        assert_eq!(v.total_debit(), Money(100));
    }

    #[test]
    fn empty_and_unbalanced_vouchers_are_refused_with_the_difference() {
        assert!(matches!(
            Voucher::balanced(head(), vec![]),
            Err(VoucherError::Empty { .. })
        ));
        let err = Voucher::balanced(head(), vec![line(1500, 100), line(3000, -99)]).unwrap_err();
        assert_eq!(
            err,
            VoucherError::Unbalanced {
                key: "invoice:1:1".into(),
                difference: Money(1)
            }
        );
        let err = Voucher::balanced(head(), vec![line(1500, i64::MAX), line(1500, 1)]).unwrap_err();
        assert!(matches!(err, VoucherError::Overflow { .. }));
    }

    #[test]
    fn each_currency_must_balance_on_its_own() {
        let mut usd = line(1500, 1000);
        usd.currency = "USD".into();
        usd.currency_amount = Money(100);
        let mut nok = line(3000, -1000);
        nok.currency_amount = Money(-1000);
        let err = Voucher::balanced(head(), vec![usd, nok]).unwrap_err();
        assert!(matches!(err, VoucherError::UnbalancedInCurrency { .. }));
    }
}
