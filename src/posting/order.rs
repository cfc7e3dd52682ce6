//! Order snapshots and cancellations: invoice, re-invoice on change, credit on cancellation.
//!
//! Invoice keys are `invoice:{order_id}:{revision}` (revision 1, 2, ...); the credit note that
//! reverses revision n is `credit:{order_id}:{n}`. The first invoice is dated the day the order
//! was registered; corrections are dated the day of the event that caused them, so a closed
//! period is never touched.

use chrono::NaiveDate;

use super::calendar::oslo_date;
use super::context::Context;
use super::draft::{Conversion, finish};
use super::error::PostingError;
use super::event::{Order, OrderCancellation};
use super::invoice::{invoice_lines, sale_date};
use super::refund;
use super::returns;
use super::state::{OrderState, Outcome, PostedInvoice, Posting, Returned};
use super::voucher::{Voucher, VoucherHead, VoucherKind, VoucherLine};

/// Posts an order snapshot.
pub(crate) fn post_order(
    order: &Order,
    ctx: &Context,
    prior: &OrderState,
) -> Result<Posting, PostingError> {
    if prior.applied_version.is_some_and(|v| order.version <= v) {
        return Ok(Posting::nothing(prior.clone(), Outcome::Stale));
    }
    let mut state = prior.clone();
    state.applied_version = Some(order.version);
    state.snapshot = Some(order.clone());
    if let Some(reason) = &state.skipped {
        let outcome = Outcome::Skipped(reason.clone());
        return Ok(Posting::nothing(state, outcome));
    }
    let registered = sale_date(order);
    let cutoff = ctx.connection.process_orders_from;
    if state.last_revision == 0 && registered < cutoff {
        let reason = format!("registered {registered}, before process_orders_from {cutoff}");
        state.skipped = Some(reason.clone());
        return Ok(Posting::nothing(state, Outcome::Skipped(reason)));
    }
    returns::check_update(order, &state.returned)?;
    if order.cancelled {
        return cancel(state, ctx.event_date, &order.number);
    }
    let conv = Conversion::resolve(
        &order.currency,
        ctx,
        &[
            order.exchange_rate,
            prior.invoice.as_ref().and_then(|i| i.exchange_rate),
            ctx.exchange_rate,
        ],
    )?;
    let revision = state
        .last_revision
        .checked_add(1)
        .ok_or_else(|| PostingError::Overflow("revision".into()))?;
    let date = if revision == 1 {
        registered
    } else {
        ctx.event_date
    };
    check_ceiling(order, &conv, ctx)?;
    let invoice = build_invoice(order, ctx, &conv, revision, date, &state.netted_returns)?;
    let mut vouchers = Vec::new();
    if let Some(old) = state.invoice.take() {
        if same_content(&old.lines, invoice.as_ref().map_or(&[], |i| i.lines())) {
            state.invoice = Some(old);
            return Ok(Posting::nothing(state, Outcome::Unchanged));
        }
        let why = format!("endret, erstattes av revisjon {revision}");
        vouchers.push(credit_note(
            &order.id,
            &old,
            &old.lines,
            ctx.event_date,
            &order.number,
            &why,
        )?);
    }
    state.cancelled = false;
    if let Some(invoice) = invoice {
        state.last_revision = revision;
        state.invoice = Some(PostedInvoice {
            key: invoice.key().to_owned(),
            revision,
            date,
            exchange_rate: conv.rate,
            lines: invoice.lines().to_vec(),
        });
        vouchers.push(invoice);
    }
    let outcome = if vouchers.is_empty() {
        Outcome::Unchanged
    } else {
        Outcome::Posted
    };
    Ok(Posting {
        vouchers,
        state,
        outcome,
        flags: Vec::new(),
    })
}

/// The invoice for `order` net of the returns `netted` (those no standing credit note carries,
/// see [`OrderState::netted_returns`]), or `None` when it has nothing to post (no lines, zero
/// total, everything returned). The returns are netted into the lines they return, as a
/// cancellation nets refund credits, so that an update or reactivation posts what stands.
fn build_invoice(
    order: &Order,
    ctx: &Context,
    conv: &Conversion,
    revision: u32,
    date: NaiveDate,
    netted: &[Returned],
) -> Result<Option<Voucher>, PostingError> {
    let mut lines = invoice_lines(order, ctx, conv)?;
    if !netted.is_empty() {
        let parts = returns::parts(order, netted)?;
        let credits = refund::returned_lines(order, ctx, conv, &parts, &lines)?;
        lines = net_of_returns(&lines, &credits)?;
    }
    if lines.iter().all(VoucherLine::is_empty) {
        return Ok(None);
    }
    let head = VoucherHead {
        key: format!("invoice:{}:{revision}", order.id),
        kind: VoucherKind::Invoice,
        date,
        description: format!("Faktura ordre {}", order.number),
        order_id: order.id.clone(),
        reverses: None,
    };
    finish(head, lines, conv, ctx).map(Some)
}

/// Refuses an order whose stated total, in the company's currency, is above the connection's
/// `max_order_amount`: a total that large is far likelier a shop's bug or a forged order than
/// a sale, and an operator should see it before it reaches the books. Judged before the
/// invoice is built, so that an absurd total is named as such rather than as an overflow; a
/// total that differs from its lines is refused when the invoice is built.
fn check_ceiling(order: &Order, conv: &Conversion, ctx: &Context) -> Result<(), PostingError> {
    let total = conv.to_base(order.total)?;
    let ceiling = ctx.connection.max_order_amount;
    if total.0.unsigned_abs() <= ceiling.0.unsigned_abs() {
        return Ok(());
    }
    Err(PostingError::AboveCeiling {
        order: order.number.clone(),
        amount: total,
        ceiling,
        currency: ctx.base_currency.clone(),
    })
}

/// True when two invoices post the same: the same lines in the same order, texts aside (a
/// renamed product is no reason to re-invoice).
fn same_content(a: &[VoucherLine], b: &[VoucherLine]) -> bool {
    let substance = |l: &VoucherLine| VoucherLine {
        description: String::new(),
        ..l.clone()
    };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| substance(x) == substance(y))
}

/// Posts a cancellation event.
pub(crate) fn post_cancellation(
    c: &OrderCancellation,
    ctx: &Context,
    prior: &OrderState,
) -> Result<Posting, PostingError> {
    let date = oslo_date(c.cancelled_at);
    if let Some(reason) = &prior.skipped {
        return Ok(Posting::nothing(
            prior.clone(),
            Outcome::Skipped(reason.clone()),
        ));
    }
    if prior.is_unknown() {
        let cutoff = ctx.connection.process_orders_from;
        if date < cutoff {
            let reason = format!("cancelled {date}, before process_orders_from {cutoff}");
            return Ok(Posting::nothing(prior.clone(), Outcome::Skipped(reason)));
        }
        let event = format!("cancellation of order {}", c.order_id);
        return Err(PostingError::UnknownOrder {
            order_id: c.order_id.clone(),
            event,
        });
    }
    if c.version
        .is_some_and(|v| prior.applied_version.is_some_and(|a| v < a))
    {
        return Ok(Posting::nothing(prior.clone(), Outcome::Stale));
    }
    if prior.cancelled {
        return Ok(Posting::nothing(prior.clone(), Outcome::Unchanged));
    }
    let mut state = prior.clone();
    state.applied_version = match (prior.applied_version, c.version) {
        (Some(a), Some(v)) => Some(a.max(v)),
        (a, v) => a.or(v),
    };
    let number = prior
        .snapshot
        .as_ref()
        .map_or(c.order_id.as_str(), |o| o.number.as_str())
        .to_owned();
    cancel(state, date, &number)
}

/// Marks the order cancelled and credits what stands of its invoice: the invoice net of the
/// returns credited since it was posted (exactly the invoice when there were none).
fn cancel(mut state: OrderState, date: NaiveDate, number: &str) -> Result<Posting, PostingError> {
    state.cancelled = true;
    let Some(invoice) = state.invoice.take() else {
        return Ok(Posting::nothing(state, Outcome::Unchanged));
    };
    let standing = net_of_returns(&invoice.lines, &state.refund_credits)?;
    // The credit note reverses the refunds' credit notes along with the invoice, so no credit
    // note of a return stands any more: an invoice after a reactivation is built net of all.
    state.refund_credits.clear();
    state.netted_returns.clone_from(&state.returned);
    if standing.iter().all(VoucherLine::is_empty) {
        return Ok(Posting::nothing(state, Outcome::Unchanged));
    }
    let credit = credit_note(
        &state.order_id,
        &invoice,
        &standing,
        date,
        number,
        "kansellert",
    )?;
    Ok(Posting {
        vouchers: vec![credit],
        state,
        outcome: Outcome::Posted,
        flags: Vec::new(),
    })
}

/// The invoice's lines less what returns credited: return lines are netted into the invoice
/// line they reverse (same account, VAT code, customer, dimensions, role, SKU).
fn net_of_returns(
    invoice: &[VoucherLine],
    credits: &[VoucherLine],
) -> Result<Vec<VoucherLine>, PostingError> {
    let mut standing = invoice.to_vec();
    let overflow = || PostingError::Overflow("an invoice net of its returns".into());
    for c in credits {
        let same = |l: &&mut VoucherLine| {
            let key = |x: &VoucherLine| {
                (
                    x.account,
                    x.vat_code,
                    x.customer_id.clone(),
                    x.department.clone(),
                    x.location.clone(),
                    x.role,
                    x.sku.clone(),
                    x.currency.clone(),
                )
            };
            key(l) == key(c)
        };
        if let Some(l) = standing.iter_mut().find(same) {
            l.amount = l.amount.checked_add(c.amount).ok_or_else(overflow)?;
            l.currency_amount = l
                .currency_amount
                .checked_add(c.currency_amount)
                .ok_or_else(overflow)?;
            l.vat_base = match (l.vat_base, c.vat_base) {
                (Some(a), Some(b)) => Some(a.checked_add(b).ok_or_else(overflow)?),
                (a, b) => a.or(b),
            };
        } else {
            standing.push(c.clone());
        }
    }
    standing.retain(|l| !l.is_empty());
    Ok(standing)
}

/// A credit note reversing `lines` of `invoice`, exactly.
fn credit_note(
    order_id: &str,
    invoice: &PostedInvoice,
    lines: &[VoucherLine],
    date: NaiveDate,
    number: &str,
    why: &str,
) -> Result<Voucher, PostingError> {
    let order_id = order_id.to_owned();
    let head = VoucherHead {
        key: format!("credit:{order_id}:{}", invoice.revision),
        kind: VoucherKind::CreditNote,
        date,
        description: format!("Kreditnota ordre {number} ({why})"),
        order_id,
        reverses: Some(invoice.key.clone()),
    };
    Ok(Voucher::balanced(
        head,
        lines.iter().map(VoucherLine::reversed).collect(),
    )?)
}
