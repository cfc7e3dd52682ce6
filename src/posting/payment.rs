//! Payments: money in, key `payment:{payment_id}`. The money lands on the connection's prepaid
//! (clearing) account unless a payment rule for the method says otherwise, and is credited to
//! the customer's receivable. A payment that arrives before its order is posted all the same:
//! the customer stands in credit until the invoice meets it, and the books end up as if the
//! events had come in order.

use super::calendar::oslo_date;
use super::chart::AccountNo;
use super::context::Context;
use super::draft::{Conversion, finish, line};
use super::error::PostingError;
use super::event::{Order, Payment};
use super::money::Money;
use super::rules::{self, LineFacts, RuleKind};
use super::state::{OrderState, Outcome, Posting};
use super::voucher::{LineRole, VoucherHead, VoucherKind, VoucherLine};

/// The money side of a payment or refund: account and dimensions.
pub(crate) struct Settlement {
    pub account: AccountNo,
    pub department: Option<String>,
    pub location: Option<String>,
}

/// Where money moves for `kind` (payment or refund) by `method`: a rule's account, or the
/// connection's prepaid account.
pub(crate) fn settlement(
    ctx: &Context,
    kind: RuleKind,
    method: Option<&str>,
) -> Result<Settlement, PostingError> {
    let facts = LineFacts {
        kind,
        vat_code: None,
        vat_rate: None,
        sku: None,
        product_group: None,
        payment_method: method,
    };
    let conn = &ctx.connection;
    match rules::best(&ctx.rules, conn.id, &facts) {
        Some(m) => {
            let then = &m.rule.then;
            ctx.check_account(then.account, || format!("rule {}", m.rule.id))?;
            Ok(Settlement {
                account: then.account,
                department: then.department.clone().or_else(|| conn.department.clone()),
                location: then.location.clone().or_else(|| conn.location.clone()),
            })
        }
        None => Ok(Settlement {
            account: conn.prepaid_account,
            department: conn.department.clone(),
            location: conn.location.clone(),
        }),
    }
}

impl Settlement {
    /// A line on the settlement account.
    pub(crate) fn line(
        &self,
        ctx: &Context,
        conv: &Conversion,
        amount: Money,
        role: LineRole,
        text: String,
    ) -> VoucherLine {
        let mut l = line(ctx, conv, self.account, amount, role, text);
        l.department.clone_from(&self.department);
        l.location.clone_from(&self.location);
        l
    }
}

/// The customer id known for the order, if any.
pub(crate) fn customer_id(order: Option<&Order>) -> Option<String> {
    order
        .and_then(|o| o.customer.as_ref())
        .map(|c| c.id.clone())
}

/// Posts a payment.
pub(crate) fn post_payment(
    p: &Payment,
    ctx: &Context,
    prior: &OrderState,
) -> Result<Posting, PostingError> {
    if prior.payments.contains(&p.id) {
        return Ok(Posting::nothing(prior.clone(), Outcome::Unchanged));
    }
    let mut state = prior.clone();
    state.payments.insert(p.id.clone());
    if let Some(reason) = &prior.skipped {
        let outcome = Outcome::Skipped(format!("order {} is skipped: {reason}", p.order_id));
        return Ok(Posting::nothing(state, outcome));
    }
    let captured = oslo_date(p.captured_at);
    let cutoff = ctx.connection.process_orders_from;
    if prior.is_unknown() && captured < cutoff {
        // Its order was registered before the capture, so before the cut-off too.
        let reason = format!("captured {captured}, before process_orders_from {cutoff}");
        return Ok(Posting::nothing(state, Outcome::Skipped(reason)));
    }
    let fee = p.fee.unwrap_or_default();
    if p.amount.0 <= 0 || fee.0 < 0 {
        let what = format!("payment {} has amount {} and fee {fee}", p.id, p.amount);
        return Err(PostingError::InvalidEvent(what));
    }
    let order = prior.snapshot.as_ref();
    let conv = Conversion::resolve(
        &p.currency,
        ctx,
        &[
            ctx.exchange_rate,
            order
                .filter(|o| o.currency.eq_ignore_ascii_case(&p.currency))
                .and_then(|o| o.exchange_rate),
            prior.invoice.as_ref().and_then(|i| i.exchange_rate),
        ],
    )?;
    let method = p
        .method
        .as_deref()
        .or_else(|| order.and_then(|o| o.payment_method.as_deref()));
    let money = settlement(ctx, RuleKind::Payment, method)?;
    let number = order.map_or(p.order_id.as_str(), |o| o.number.as_str());
    let via = method.map(|m| format!(" ({m})")).unwrap_or_default();
    let mut lines = vec![money.line(
        ctx,
        &conv,
        p.amount,
        LineRole::Settlement,
        format!("Innbetalt{via}"),
    )];
    let mut customer = line(
        ctx,
        &conv,
        ctx.system.receivable,
        -p.amount,
        LineRole::Receivable,
        format!("Betaling ordre {number}"),
    );
    customer.customer_id = customer_id(order);
    lines.push(customer);
    if !fee.is_zero() {
        let text = format!("Gebyr betalingsformidler{via}");
        lines.push(line(
            ctx,
            &conv,
            ctx.system.card_fees,
            fee,
            LineRole::ProviderFee,
            text.clone(),
        ));
        lines.push(money.line(ctx, &conv, -fee, LineRole::Settlement, text));
    }
    let head = VoucherHead {
        key: format!("payment:{}", p.id),
        kind: VoucherKind::Payment,
        date: captured,
        description: format!("Innbetaling ordre {number}{via}"),
        order_id: p.order_id.clone(),
        reverses: None,
    };
    let voucher = finish(head, lines, &conv, ctx)?;
    Ok(Posting {
        vouchers: vec![voucher],
        state,
        outcome: Outcome::Posted,
        flags: Vec::new(),
    })
}
