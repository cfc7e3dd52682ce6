//! The posting engine: canonical events and rules in, balanced vouchers out. Pure: no IO, no
//! async, so every rule of the books can be tested on its own.
//!
//! The worker calls [`post`] once per event, inside the transaction that holds the order's row
//! lock, with the [`Context`] it cached and the order's [`OrderState`]; it inserts
//! [`Posting::vouchers`] (numbering them) and stores [`Posting::state`].
//!
//! | event | vouchers (keys) |
//! | --- | --- |
//! | order, first time | invoice `invoice:{order_id}:1` |
//! | order, changed | credit note `credit:{order_id}:{n}` + invoice `invoice:{order_id}:{n+1}` |
//! | order cancelled | credit note `credit:{order_id}:{n}` |
//! | payment | `payment:{payment_id}` |
//! | refund | credit note `refund:{refund_id}` + refund payment `refund-payment:{refund_id}` |
//! | order skipped after a payment came first | `reversal:{key}` reversing each voucher posted before the order arrived (`early.rs`) |
//!
//! Amounts on voucher lines are signed, debit positive and credit negative (see [`voucher`]).

mod calendar;
pub mod chart;
pub mod context;
mod draft;
mod early;
pub mod error;
pub mod event;
mod explain;
mod invoice;
pub mod money;
mod order;
mod payment;
pub mod periods;
mod refund;
mod returns;
pub mod rules;
pub mod state;
pub mod vat;
pub mod voucher;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod proptests_arrival;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_limits;
#[cfg(test)]
mod tests_periods;
#[cfg(test)]
mod tests_rules;

pub use calendar::oslo_date;
pub use chart::{Account, AccountNo, AccountType, SystemAccounts, default_accounts};
pub use context::{ConnectionSettings, Context, DEFAULT_MAX_ORDER_AMOUNT};
pub use early::{SetAside, set_aside_reason};
pub use error::PostingError;
pub use event::Event;
pub use explain::{Explanation, explain};
pub use invoice::MAX_ROUNDING;
pub use money::{Money, Rate};
pub use periods::LockedPeriodPolicy;
pub use rules::{Criteria, Placement, Rule, RuleKind, default_rules};
pub use state::{Flag, OrderState, Outcome, PostedEarly, PostedInvoice, Posting, Returned};
pub use vat::{VatCode, VatCodeEntry, VatTable};
pub use voucher::{LineRole, Voucher, VoucherError, VoucherHead, VoucherKind, VoucherLine};

/// Posts one event: the vouchers it causes, the order's new state, and what happened.
///
/// `prior` is the state of the order the event belongs to ([`Event::order_id`]); pass
/// [`OrderState::new`] for an order never seen. Product and ignored events need no state: pass
/// any, it comes back unchanged.
///
/// # Errors
/// [`PostingError`]: retryable ([`PostingError::is_retryable`]) when a refund or cancellation
/// came before its order; otherwise permanent, with a message naming the line, account or rate
/// concerned (no rule places a line, unknown VAT rate or account, missing exchange rate, a
/// voucher in a locked period under the `dead_letter` policy, ...).
pub fn post(event: &Event, ctx: &Context, prior: &OrderState) -> Result<Posting, PostingError> {
    if let Some(id) = event.order_id()
        && id != prior.order_id
    {
        let (state, event) = (prior.order_id.clone(), id.to_owned());
        return Err(PostingError::WrongState { state, event });
    }
    if event.order_id().is_some() {
        check_settings(ctx)?;
    }
    let posting = match event {
        Event::Order(o) => order::post_order(o, ctx, prior),
        Event::OrderCancelled(c) => order::post_cancellation(c, ctx, prior),
        Event::Payment(p) => payment::post_payment(p, ctx, prior),
        Event::Refund(r) => refund::post_refund(r, ctx, prior),
        Event::Product(_) => Ok(Posting::nothing(prior.clone(), Outcome::ProductUpserted)),
        Event::Ignored { topic } => Ok(Posting::nothing(
            prior.clone(),
            Outcome::Ignored(topic.clone()),
        )),
    }?;
    let posting = early::settle(posting, prior, ctx)?;
    // Vouchers are built with their own dates, then refused or moved out of locked periods, so
    // no builder needs to know about locks.
    let mut posting = periods::apply(
        posting,
        &ctx.locked_periods,
        ctx.connection.locked_period_policy,
    )?;
    if event.order_id().is_some() {
        review(event, ctx, prior, &mut posting);
    }
    // Last, so that what is remembered is what is posted, dates included.
    Ok(early::remember(posting, prior))
}

/// Keeps the customer's balance on the order in its state, and flags a payment that took more
/// than the order had outstanding (or, before its order, more than any order may come to).
fn review(event: &Event, ctx: &Context, prior: &OrderState, posting: &mut Posting) {
    let receivable = |lines: &[VoucherLine], base: bool| -> i128 {
        lines
            .iter()
            .filter(|l| l.role == LineRole::Receivable)
            .map(|l| {
                i128::from(if base {
                    l.amount.0
                } else {
                    l.currency_amount.0
                })
            })
            .sum()
    };
    // A state stored before the balance was kept starts from its standing invoice: payments
    // posted before then are not known to it (docs/events.md says so).
    let before = prior.receivable.map_or_else(
        || {
            prior
                .invoice
                .as_ref()
                .map_or(0, |i| receivable(&i.lines, false))
        },
        |m| i128::from(m.0),
    );
    let delta: i128 = posting
        .vouchers
        .iter()
        .map(|v| receivable(v.lines(), false))
        .sum();
    // Informational only (no voucher reads it), so an absurd balance saturates.
    let clamp =
        |x: i128| Money(i64::try_from(x).unwrap_or(if x < 0 { i64::MIN } else { i64::MAX }));
    // The order's first snapshot, posted (a skipped one reverses the payments before it, and
    // they flag nothing): payments before it were judged against the ceiling only, and now what
    // the order owes is known. Judged whatever the snapshot posts, so that one already
    // cancelled, or totalling zero, flags those payments as a payment after it would be.
    if let Event::Order(o) = event
        && prior.snapshot.is_none()
        && posting.state.skipped.is_none()
    {
        let foreign = prior
            .posted_before_order
            .iter()
            .flat_map(|v| &v.lines)
            .any(|l| {
                l.role == LineRole::Receivable && !l.currency.eq_ignore_ascii_case(&o.currency)
            });
        if foreign {
            // The balance so far is in the currency the payments were made in, not the
            // order's: adding the invoice to it would add øre of two currencies, and a flag
            // judged on that sum would be raised or spared by accident. The payments are not
            // compared (as one in another currency than its order's never is), and the
            // balance starts over, in the order's currency, from what the order's own vouchers
            // say.
            posting.state.receivable = Some(clamp(delta));
            return;
        }
        if before < 0 && before + delta < 0 {
            posting.flags.push(Flag::PrepaidAboveInvoice {
                order: o.number.clone(),
                paid: clamp(-before),
                invoiced: clamp(delta),
            });
        }
    }
    if posting.vouchers.is_empty() {
        return;
    }
    posting.state.receivable = Some(clamp(before + delta));
    if posting.outcome != Outcome::Posted {
        return;
    }
    let Event::Payment(p) = event else {
        return;
    };
    match &prior.snapshot {
        Some(order) if order.currency.eq_ignore_ascii_case(&p.currency) => {
            let owed = clamp(before.max(0));
            if p.amount > owed {
                posting.flags.push(Flag::Overpaid {
                    payment: p.id.clone(),
                    amount: p.amount,
                    owed,
                });
            }
        }
        Some(_) => {} // paid in another currency than invoiced: no like-for-like comparison
        None => {
            let paid = clamp(
                -posting
                    .vouchers
                    .iter()
                    .map(|v| receivable(v.lines(), true))
                    .sum::<i128>(),
            );
            let ceiling = ctx.connection.max_order_amount;
            if paid > ceiling {
                posting.flags.push(Flag::PrepaidAboveCeiling {
                    payment: p.id.clone(),
                    amount: paid,
                    ceiling,
                });
            }
        }
    }
}

/// The accounts every order event may post to must be in the chart.
fn check_settings(ctx: &Context) -> Result<(), PostingError> {
    ctx.check_account(ctx.connection.prepaid_account, || {
        "the connection's prepaid_account".into()
    })?;
    ctx.check_account(ctx.system.receivable, || "the receivables account".into())?;
    ctx.check_account(ctx.system.rounding, || "the rounding account".into())?;
    ctx.check_account(ctx.system.card_fees, || "the card-fee account".into())
}
