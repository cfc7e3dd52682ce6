//! Refunds: a credit note `refund:{refund_id}` reversing the returned lines' revenue and VAT
//! (and refunded shipping), and a refund payment `refund-payment:{refund_id}` paying the money
//! back from the prepaid account (or a refund rule's account).
//!
//! A returned line goes back to the account, VAT code and dimensions its invoice line was
//! posted with, even if the rules changed since. No refund credits more of a line than is left
//! of it, and refunds that add up to a whole line reverse its invoice amounts exactly (see
//! [`super::returns`]).

use std::collections::BTreeMap;

use super::calendar::oslo_date;
use super::context::Context;
use super::draft::{Conversion, finish};
use super::error::PostingError;
use super::event::{Order, OrderLine, Refund};
use super::invoice::{self, Placed, add_vat, revenue_line, sale_date, vat_lines};
use super::money::Money;
use super::payment::{customer_id, settlement};
use super::returns::{self, Part};
use super::rules::RuleKind;
use super::state::{OrderState, Outcome, Posting};
use super::vat::VatCode;
use super::voucher::{LineRole, Voucher, VoucherHead, VoucherKind, VoucherLine, sum};

/// Posts a refund.
pub(crate) fn post_refund(
    r: &Refund,
    ctx: &Context,
    prior: &OrderState,
) -> Result<Posting, PostingError> {
    if prior.refunds.contains(&r.id) {
        return Ok(Posting::nothing(prior.clone(), Outcome::Unchanged));
    }
    let mut state = prior.clone();
    state.refunds.insert(r.id.clone());
    if let Some(reason) = &prior.skipped {
        let outcome = Outcome::Skipped(format!("order {} is skipped: {reason}", r.order_id));
        return Ok(Posting::nothing(state, outcome));
    }
    let created = oslo_date(r.created_at);
    let cutoff = ctx.connection.process_orders_from;
    let Some(order) = prior.snapshot.as_ref() else {
        if created < cutoff {
            let reason = format!("refunded {created}, before process_orders_from {cutoff}");
            return Ok(Posting::nothing(state, Outcome::Skipped(reason)));
        }
        let event = format!("refund {}", r.id);
        return Err(PostingError::UnknownOrder {
            order_id: r.order_id.clone(),
            event,
        });
    };
    check(r, order)?;
    // Judged against the lines even when the order is cancelled (then only money moves): a
    // refund of more than was sold is wrong either way.
    let parts = returns::allocate(r, order, &mut state.returned)?;
    let mut vouchers = Vec::new();
    if let Some(credit) = credit_note(r, order, ctx, prior, &parts)? {
        state.refund_credits.extend(credit.lines().iter().cloned());
        vouchers.push(credit);
    } else if prior.invoice.is_none() {
        // No invoice stands to credit, so the next one is built without these goods.
        returns::add_difference(&mut state.netted_returns, &prior.returned, &state.returned);
    }
    if r.amount.0 > 0 {
        vouchers.push(refund_payment(r, order, ctx, prior)?);
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

/// The refund's amounts are non-negative, in the order's currency, and add up.
fn check(r: &Refund, order: &Order) -> Result<(), PostingError> {
    let invalid = |what: String| {
        Err(PostingError::InvalidEvent(format!(
            "refund {}: {what}",
            r.id
        )))
    };
    if !r.currency.eq_ignore_ascii_case(&order.currency) {
        return invalid(format!(
            "in {}, but order {} is in {}",
            r.currency, order.number, order.currency
        ));
    }
    let shipping = r.shipping.unwrap_or_default();
    let bad_line = r.lines.iter().find(|l| l.quantity < 1 || l.amount.0 < 0);
    if let Some(l) = bad_line {
        return invalid(format!(
            "SKU {} has quantity {} and amount {}",
            l.sku, l.quantity, l.amount
        ));
    }
    if r.amount.0 < 0 || shipping.0 < 0 {
        return invalid(format!(
            "negative amount {} or shipping {shipping}",
            r.amount
        ));
    }
    let parts = r
        .lines
        .iter()
        .map(|l| l.amount)
        .chain(std::iter::once(shipping));
    let lines = sum(parts).ok_or_else(|| PostingError::Overflow(format!("refund {}", r.id)))?;
    if lines != r.amount {
        return Err(PostingError::RefundMismatch {
            refund: r.id.clone(),
            amount: r.amount,
            lines,
        });
    }
    Ok(())
}

/// The credit note, when the order has an invoice standing and the refund returns anything.
fn credit_note(
    r: &Refund,
    order: &Order,
    ctx: &Context,
    prior: &OrderState,
    parts: &[Part<'_>],
) -> Result<Option<Voucher>, PostingError> {
    let Some(invoice) = prior.invoice.as_ref() else {
        // Cancelled (the cancellation credited the whole order) or nothing invoiced: only money
        // moves now, and the next invoice is built without the returned goods.
        return Ok(None);
    };
    let conv = Conversion::resolve(
        &r.currency,
        ctx,
        &[
            invoice.exchange_rate,
            order.exchange_rate,
            ctx.exchange_rate,
        ],
    )?;
    let lines = returned_lines(order, ctx, &conv, parts, &invoice.lines)?;
    if lines.iter().all(VoucherLine::is_empty) {
        return Ok(None);
    }
    let head = VoucherHead {
        key: format!("refund:{}", r.id),
        kind: VoucherKind::CreditNote,
        date: oslo_date(r.created_at),
        description: format!("Kreditnota ordre {}, retur {}", order.number, r.id),
        order_id: order.id.clone(),
        reverses: Some(invoice.key.clone()),
    };
    finish(head, lines, &conv, ctx).map(Some)
}

/// What returning `parts` of `order` credits, in the order's currency (not yet converted): an
/// invoice of those parts, reversed. Each line goes where the invoice lines `posted` put it.
pub(crate) fn returned_lines(
    order: &Order,
    ctx: &Context,
    conv: &Conversion,
    parts: &[Part<'_>],
    posted: &[VoucherLine],
) -> Result<Vec<VoucherLine>, PostingError> {
    let mut lines = Vec::new();
    let mut vat: BTreeMap<VatCode, Money> = BTreeMap::new();
    for part in parts {
        let l = part.line;
        let placed = placed_as_invoiced(order, part.no, l, ctx, posted)?;
        add_vat(&mut vat, placed.vat_code, part.split.vat)?;
        let text = format!("Retur: {}", l.name);
        let role = LineRole::Sales(l.kind);
        let mut line = revenue_line(ctx, conv, &placed, part.split.net, role, text)?;
        line.sku.clone_from(&l.sku);
        lines.push(line);
    }
    lines.extend(vat_lines(&vat, sale_date(order), ctx, conv)?);
    let gross = sum(parts.iter().map(|p| p.split.gross))
        .ok_or_else(|| PostingError::Overflow(format!("the returns of order {}", order.number)))?;
    lines.insert(0, invoice::receivable(order, ctx, conv, gross));
    // Built like an invoice of the returned part, then reversed: the credit.
    Ok(lines.iter().map(VoucherLine::reversed).collect())
}

/// Where the invoice put line `l`: its account, VAT code and dimensions as posted, or, for a
/// line the invoice does not show, where the rules place it now.
fn placed_as_invoiced(
    order: &Order,
    no: usize,
    l: &OrderLine,
    ctx: &Context,
    posted: &[VoucherLine],
) -> Result<Placed, PostingError> {
    let role = LineRole::Sales(l.kind);
    let was = posted.iter().find(|p| p.role == role && p.sku == l.sku);
    match was.and_then(|p| p.vat_code.map(|code| (p, code))) {
        Some((p, vat_code)) => Ok(Placed {
            account: p.account,
            vat_code,
            department: p.department.clone(),
            location: p.location.clone(),
        }),
        None => invoice::place(order, no, l, ctx),
    }
}

/// The money paid back: debit the customer, credit the prepaid (or refund rule's) account.
fn refund_payment(
    r: &Refund,
    order: &Order,
    ctx: &Context,
    prior: &OrderState,
) -> Result<Voucher, PostingError> {
    let invoice_rate = prior.invoice.as_ref().and_then(|i| i.exchange_rate);
    let conv = Conversion::resolve(
        &r.currency,
        ctx,
        &[ctx.exchange_rate, order.exchange_rate, invoice_rate],
    )?;
    let method = order.payment_method.as_deref();
    let money = settlement(ctx, RuleKind::Refund, method)?;
    let mut customer = super::draft::line(
        ctx,
        &conv,
        ctx.system.receivable,
        r.amount,
        LineRole::Receivable,
        format!("Tilbakebetalt kunde, ordre {}", order.number),
    );
    customer.customer_id = customer_id(Some(order));
    let paid = money.line(
        ctx,
        &conv,
        -r.amount,
        LineRole::Settlement,
        format!("Tilbakebetaling retur {}", r.id),
    );
    let head = VoucherHead {
        key: format!("refund-payment:{}", r.id),
        kind: VoucherKind::RefundPayment,
        date: oslo_date(r.created_at),
        description: format!("Tilbakebetaling ordre {}, retur {}", order.number, r.id),
        order_id: order.id.clone(),
        reverses: None,
    };
    finish(head, vec![customer, paid], &conv, ctx)
}
