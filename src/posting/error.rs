//! Why an event cannot be posted. Every message is for an operator: it names the line, account,
//! rate or order concerned. Only [`PostingError::is_retryable`] errors are worth retrying;
//! the rest need a person (fix a rule, the chart, or the event) and are dead-lettered.

use chrono::NaiveDate;

use super::chart::AccountNo;
use super::money::{Money, Rate};
use super::vat::VatCode;
use super::voucher::VoucherError;

/// Why [`super::post`] refused an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostingError {
    /// Permanent: a rule, setting or VAT code names an account the chart does not have.
    #[error("account {account} (used by {used_by}) is not in the chart of accounts")]
    UnknownAccount {
        /// The missing account.
        account: AccountNo,
        /// Who named it: "rule 12", "the connection's prepaid_account".
        used_by: String,
    },
    /// Permanent: no VAT code has the line's rate on the sale's date.
    #[error("no VAT code has rate {rate} % on {date} ({line})")]
    UnknownVatRate {
        /// The line's rate.
        rate: Rate,
        /// The sale's date.
        date: NaiveDate,
        /// The line: `line 2 "Kaffe" (goods, VAT 15 %)`.
        line: String,
    },
    /// Permanent: several VAT codes have the rate and none is the default for it.
    #[error("several VAT codes have rate {rate} % on {date} and none is the default ({line})")]
    AmbiguousVatRate {
        /// The line's rate.
        rate: Rate,
        /// The sale's date.
        date: NaiveDate,
        /// The line.
        line: String,
    },
    /// Permanent: a rule's VAT code does not carry the line's rate on the sale's date.
    #[error(
        "rule {rule} sets VAT code {code}, which does not have rate {rate} % on that date ({line})"
    )]
    VatOverrideMismatch {
        /// The rule.
        rule: i64,
        /// The code it sets.
        code: VatCode,
        /// The line's rate.
        rate: Rate,
        /// The line.
        line: String,
    },
    /// Permanent: lines carry VAT at a code that has no output-VAT account.
    #[error("VAT code {code} has no output-VAT account, but its lines carry VAT {vat}")]
    NoOutputVatAccount {
        /// The code.
        code: VatCode,
        /// The VAT it should have carried.
        vat: Money,
    },
    /// Permanent: no rule places the line.
    #[error("no posting rule places {line}")]
    Unplaceable {
        /// The line: `line 2 "Kaffe" (goods, VAT 15 %)`.
        line: String,
    },
    /// Permanent: the event is in another currency and no rate was found.
    #[error("no exchange rate for {currency} to {base}")]
    NoExchangeRate {
        /// The event's currency.
        currency: String,
        /// The company's currency.
        base: String,
    },
    /// Permanent: an exchange rate is zero or negative.
    #[error("exchange rate for {currency} is not positive ({micros} millionths)")]
    BadExchangeRate {
        /// The currency.
        currency: String,
        /// The rate as given.
        micros: i64,
    },
    /// Permanent: the shop's total and the sum of the lines differ by more than rounding.
    #[error(
        "order {order}: the shop's total {stated} and the sum of the lines {computed} differ by more than {tolerance}"
    )]
    TotalMismatch {
        /// The order number.
        order: String,
        /// The shop's total.
        stated: Money,
        /// Our sum of the lines.
        computed: Money,
        /// The largest difference posted as rounding.
        tolerance: Money,
    },
    /// Permanent: the event breaks the contract of the canonical events (a zero quantity, a
    /// negative payment).
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// Retryable: a refund or cancellation arrived before its order; the order will come.
    #[error("{event} arrived before order {order_id}; retry later")]
    UnknownOrder {
        /// The order.
        order_id: String,
        /// What arrived: "refund r-1".
        event: String,
    },
    /// Permanent: a refund names a SKU the order does not have.
    #[error("refund {refund} names SKU {sku}, which order {order_id} does not have")]
    UnknownRefundSku {
        /// The refund.
        refund: String,
        /// The SKU.
        sku: String,
        /// The order.
        order_id: String,
    },
    /// Permanent: a refund's amount is not the sum of its lines and shipping.
    #[error("refund {refund} pays back {amount}, but its lines and shipping add up to {lines}")]
    RefundMismatch {
        /// The refund.
        refund: String,
        /// The amount paid back.
        amount: Money,
        /// Lines plus shipping.
        lines: Money,
    },
    /// Permanent: a refund credits more of an order line than is left of it (its units or gross
    /// amount exceed what was invoiced less what earlier refunds credited). Refused whole.
    #[error(transparent)]
    RefundExceedsLine(Box<RefundExcess>),
    /// Permanent: an order update invoices less of a line than refunds already credited of it.
    #[error(
        "order {order} version {version} invoices {invoiced} of {line}, less than refunds \
         already credited of it ({returned})"
    )]
    UpdateBelowReturns {
        /// The order number.
        order: String,
        /// The update's version.
        version: i64,
        /// The line, or the SKU when the update drops it.
        line: String,
        /// What the update invoices of it.
        invoiced: String,
        /// What refunds credited of it.
        returned: String,
    },
    /// Permanent until an operator looks at it: the order's total is above the connection's
    /// `max_order_amount` (both in the company's currency).
    #[error(
        "order {order} comes to {amount} {currency}, above the connection's max_order_amount of \
         {ceiling} {currency}; if it is real, raise the ceiling and replay the event"
    )]
    AboveCeiling {
        /// The order number.
        order: String,
        /// Its total, converted to the company's currency.
        amount: Money,
        /// The connection's ceiling.
        ceiling: Money,
        /// The company's currency.
        currency: String,
    },
    /// Permanent (a worker bug): the state passed in belongs to another order.
    #[error("state of order {state} passed for an event of order {event}")]
    WrongState {
        /// The state's order.
        state: String,
        /// The event's order.
        event: String,
    },
    /// Permanent until an operator unlocks the period: a voucher would be dated in a locked
    /// month and the connection's policy is to refuse it. The message starts with
    /// `period locked: YYYY-MM`, which operators filter dead letters by.
    #[error("period locked: {month} (voucher {key} dated {date})")]
    PeriodLocked {
        /// The locked month, `2026-03`.
        month: String,
        /// The voucher's key.
        key: String,
        /// The date it would have had.
        date: NaiveDate,
    },
    /// Permanent: an amount is too large to compute with.
    #[error("amount too large: {0}")]
    Overflow(String),
    /// Permanent (an engine bug): the engine made lines that do not balance.
    #[error(transparent)]
    Voucher(#[from] VoucherError),
}

/// What [`PostingError::RefundExceedsLine`] reports (boxed: it names much, and errors are
/// passed by value everywhere).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refund {refund} credits {asked} of {line} of order {order}, but only {left} is left to \
     refund of the {invoiced} invoiced"
)]
pub struct RefundExcess {
    /// The refund.
    pub refund: String,
    /// The order number.
    pub order: String,
    /// The line: `line 1 "T-skjorte" (goods, VAT 25 %)`.
    pub line: String,
    /// What the refund credits of it: "3 units for 5000.00" (shipping: the amount).
    pub asked: String,
    /// What is left to refund of it.
    pub left: String,
    /// What the order invoices of it.
    pub invoiced: String,
}

impl PostingError {
    /// True when the same event may post later without anyone changing anything (it waited
    /// for another event); the worker sends it through its delay queue. Everything else is
    /// permanent: dead-letter it with the message as reason.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, PostingError::UnknownOrder { .. })
    }
}
