//! What the engine remembers about one order between events, and what one call returns.
//!
//! The worker loads an order's [`OrderState`] (row-locked) before posting and stores
//! [`Posting::state`] in the same transaction as the vouchers. It is plain serde data, so a
//! JSONB column holds it.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::event::{ExchangeRate, Order};
use super::money::Money;
use super::voucher::{Voucher, VoucherKind, VoucherLine};

/// The invoice currently standing for an order, as posted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedInvoice {
    /// Its voucher key (`invoice:1001:1`).
    pub key: String,
    /// 1 for the first invoice, one more for each re-invoicing after a change.
    pub revision: u32,
    /// Its date.
    pub date: NaiveDate,
    /// The exchange rate it was converted at; returns are credited at the same rate.
    pub exchange_rate: Option<ExchangeRate>,
    /// Its lines, exactly as posted: a credit note reverses these, even if rules changed since.
    pub lines: Vec<VoucherLine>,
}

/// A voucher posted for an order before any snapshot of it arrived (a payment captured before
/// its order came), exactly as posted: if the order turns out to be skipped, a new voucher
/// reverses these lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedEarly {
    /// Its voucher key (`payment:pay_1`).
    pub key: String,
    /// Its kind; the reversal has the same, so it is numbered in the same series.
    pub kind: VoucherKind,
    /// Its date; the reversal is never dated before it.
    pub date: NaiveDate,
    /// Its description, quoted by the reversal's.
    pub description: String,
    /// Its lines, exactly as posted.
    pub lines: Vec<VoucherLine>,
}

/// Everything known about one order before an event is posted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    /// The shop's order id.
    pub order_id: String,
    /// The highest order version applied; older snapshots are stale.
    pub applied_version: Option<i64>,
    /// The last snapshot applied; returns look up their lines in it.
    pub snapshot: Option<Order>,
    /// Why the order is skipped (registered before `process_orders_from`); its payments and
    /// refunds are skipped too.
    pub skipped: Option<String>,
    /// The invoice standing now; `None` before the first one and after a cancellation.
    pub invoice: Option<PostedInvoice>,
    /// The highest invoice revision ever used, so that keys are never reused after a
    /// cancellation and reactivation.
    pub last_revision: u32,
    /// Lines of the return credit notes posted against the order since the last cancellation;
    /// a cancellation reverses the invoice net of these.
    pub refund_credits: Vec<VoucherLine>,
    /// True once the order is cancelled (until a later snapshot reactivates it).
    pub cancelled: bool,
    /// Ids of the payments already handled (posted or skipped).
    pub payments: BTreeSet<String>,
    /// Ids of the refunds already handled (posted or skipped).
    pub refunds: BTreeSet<String>,
    /// Vouchers posted while the order was unknown, kept until its first snapshot decides
    /// whether they stand (the order is posted) or are reversed (it is skipped). Absent from
    /// states stored before it existed, which load with none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub posted_before_order: Vec<PostedEarly>,
    /// What refunds have credited of each order line so far: a refund may credit at most what
    /// is left of a line. Kept through cancellations and updates (see `posting::returns`).
    /// States stored before it was kept load with none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub returned: Vec<Returned>,
    /// The part of `returned` that no standing credit note carries: refunds whose credit notes
    /// a cancellation reversed along with the invoice, and refunds posted while no invoice
    /// stood (they move only money). Every invoice is built net of these, so that an order
    /// reactivated after a cancellation does not bill refunded goods again, while refunds
    /// posted against the standing invoice keep standing as their own credit notes (in
    /// `refund_credits`). Absent from states stored before it was kept, which load with none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub netted_returns: Vec<Returned>,
    /// The customer's balance on the order, in the order's currency: every receivable line
    /// posted for it, summed (positive: the customer owes). `None` in states stored before it
    /// was kept, until the next posting seeds it from the standing invoice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receivable: Option<Money>,
}

/// What refunds have credited so far of one order line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Returned {
    /// The line's SKU; `None` for shipping.
    pub sku: Option<String>,
    /// Which of the order's lines with this SKU (or of its shipping lines) it is, from 0: an
    /// order may carry one SKU on several lines.
    #[serde(default)]
    pub nth: usize,
    /// Units returned (0 for shipping, which refunds by amount only).
    pub quantity: i64,
    /// The gross amount credited (VAT included), in the order's currency.
    pub gross: Money,
    /// The VAT part of `gross`.
    pub vat: Money,
}

impl OrderState {
    /// The state of an order nothing is known about yet.
    #[must_use]
    pub fn new(order_id: &str) -> OrderState {
        OrderState {
            order_id: order_id.to_owned(),
            applied_version: None,
            snapshot: None,
            skipped: None,
            invoice: None,
            last_revision: 0,
            refund_credits: Vec::new(),
            cancelled: false,
            payments: BTreeSet::new(),
            refunds: BTreeSet::new(),
            posted_before_order: Vec::new(),
            returned: Vec::new(),
            netted_returns: Vec::new(),
            receivable: None,
        }
    }

    /// True when no order event has been applied (only payments, or nothing, seen so far).
    #[must_use]
    pub fn is_unknown(&self) -> bool {
        self.snapshot.is_none() && self.skipped.is_none()
    }
}

/// What the worker records for the event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "snake_case")]
pub enum Outcome {
    /// Vouchers were made (see [`Posting::vouchers`]).
    Posted,
    /// Deliberately not posted, with the reason for operators. No vouchers, except when an
    /// order turns out to be skipped after vouchers were posted for it while it was unknown
    /// (a payment that came first): then the vouchers reverse those, each naming the key it
    /// reverses, and the events that posted them are skipped with it
    /// ([`super::set_aside_reason`]).
    Skipped(String),
    /// An order version at or below the applied one: ignored.
    Stale,
    /// Nothing to post: the books already say what the event says (a re-sent payment, an update
    /// that changes nothing the ledger sees).
    Unchanged,
    /// A product event: nothing to post; the worker upserts the product register.
    ProductUpserted,
    /// A topic shopbridge does not post.
    Ignored(String),
}

/// Something posted as it came that an operator should see: the event is processed, and the
/// worker records the flag on its row and counts it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "flag", rename_all = "snake_case")]
pub enum Flag {
    /// A payment took more than the order had outstanding. It is real money and stays on the
    /// customer's account as a credit, but it may be a mistake (a wrong amount, a double
    /// capture) that the shop should refund.
    Overpaid {
        /// The payment.
        payment: String,
        /// What it took.
        amount: Money,
        /// What the order had outstanding before it.
        owed: Money,
    },
    /// Payments that arrived before their order took more than its first invoice came to: the
    /// same overpayment, seen when the order arrives.
    PrepaidAboveInvoice {
        /// The order number.
        order: String,
        /// What the payments before it took.
        paid: Money,
        /// What its invoice came to.
        invoiced: Money,
    },
    /// A payment arrived before its order and took more than any order of the connection may
    /// come to (`max_order_amount`, in the company's currency): no order can be owed that much.
    PrepaidAboveCeiling {
        /// The payment.
        payment: String,
        /// What it took, in the company's currency.
        amount: Money,
        /// The connection's ceiling.
        ceiling: Money,
    },
}

impl std::fmt::Display for Flag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Flag::Overpaid {
                payment,
                amount,
                owed,
            } => {
                let credit = Money(amount.0.saturating_sub(owed.0));
                write!(
                    f,
                    "overpaid: payment {payment} took {amount} where {owed} was owed; \
                     {credit} stands to the customer's credit"
                )
            }
            Flag::PrepaidAboveInvoice {
                order,
                paid,
                invoiced,
            } => {
                let credit = Money(paid.0.saturating_sub(invoiced.0));
                write!(
                    f,
                    "overpaid: payments of {paid} before order {order} exceed its invoice of \
                     {invoiced}; {credit} stands to the customer's credit"
                )
            }
            Flag::PrepaidAboveCeiling {
                payment,
                amount,
                ceiling,
            } => write!(
                f,
                "overpaid: payment {payment} took {amount} before its order, more than \
                 max_order_amount {ceiling}; it stands to the customer's credit"
            ),
        }
    }
}

/// The result of posting one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Posting {
    /// The vouchers to insert, in order; empty unless the outcome is `Posted` (or `Skipped`
    /// with reversals, see [`Outcome::Skipped`]).
    pub vouchers: Vec<Voucher>,
    /// The order's state to persist (the prior one unchanged when nothing happened).
    pub state: OrderState,
    /// What happened.
    pub outcome: Outcome,
    /// What an operator should look at in what was posted; set by [`super::post`].
    pub flags: Vec<Flag>,
}

impl Posting {
    /// Nothing posted; the state as given.
    #[must_use]
    pub fn nothing(state: OrderState, outcome: Outcome) -> Posting {
        Posting {
            vouchers: Vec::new(),
            state,
            outcome,
            flags: Vec::new(),
        }
    }
}
