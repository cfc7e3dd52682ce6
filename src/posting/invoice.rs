//! An order snapshot as invoice lines: each line priced and split into net and VAT, coded,
//! placed by the rules; then output VAT per code, the customer's receivable, and the øre
//! between the shop's total and ours.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::calendar::oslo_date;
use super::chart::AccountNo;
use super::context::Context;
use super::draft::{Conversion, line};
use super::error::PostingError;
use super::event::{LineKind, Order, OrderLine};
use super::money::Money;
use super::rules::{self, LineFacts, Match, RuleKind};
use super::vat::{self, CodeLookup, Split, VatCode};
use super::voucher::{LineRole, VoucherLine, sum};

/// The largest difference between the shop's total and the sum of the lines that is posted as
/// rounding (1.00 in the order's currency, e.g. a cash total rounded to whole kroner). Anything
/// larger is a missing or wrong line, which a rounding account must not hide.
pub const MAX_ROUNDING: Money = Money(100);

/// `-m`, or an overflow error (only `i64::MIN` has no negation).
pub(crate) fn neg(m: Money) -> Result<Money, PostingError> {
    m.checked_neg()
        .ok_or_else(|| PostingError::Overflow(format!("-({m})")))
}

/// Where a line goes: account, final VAT code and dimensions, and the rule that said so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Placed {
    pub account: AccountNo,
    pub vat_code: VatCode,
    pub department: Option<String>,
    pub location: Option<String>,
}

/// How operators see a line in errors: `line 2 "Kaffe" (goods, VAT 15 %)`.
pub(crate) fn describe(no: usize, l: &OrderLine) -> String {
    format!(
        "line {no} \"{}\" ({}, VAT {} %)",
        l.name,
        kind_name(l.kind),
        l.vat_rate
    )
}

pub(crate) fn kind_name(kind: LineKind) -> &'static str {
    rules::kind_name(rule_kind(kind))
}

pub(crate) fn rule_kind(kind: LineKind) -> RuleKind {
    match kind {
        LineKind::Goods => RuleKind::Goods,
        LineKind::Shipping => RuleKind::Shipping,
        LineKind::Fee => RuleKind::Fee,
    }
}

/// The day an order's VAT and cut-off are judged by.
pub(crate) fn sale_date(order: &Order) -> NaiveDate {
    oslo_date(order.registered_at)
}

/// The line's amount (quantity × unit price − discount) split into net and VAT.
pub(crate) fn price(order: &Order, no: usize, l: &OrderLine) -> Result<Split, PostingError> {
    if l.quantity < 1 || l.discount.0 < 0 {
        let what = format!(
            "{} has quantity {} and discount {}",
            describe(no, l),
            l.quantity,
            l.discount
        );
        return Err(PostingError::InvalidEvent(what));
    }
    let overflow = || PostingError::Overflow(describe(no, l));
    let amount = l
        .unit_price
        .checked_mul(l.quantity)
        .and_then(|a| a.checked_sub(l.discount));
    let amount = amount.ok_or_else(overflow)?;
    vat::split(amount, l.vat_rate, order.prices_include_vat, l.vat_amount).ok_or_else(overflow)
}

/// What the rules see of an order line.
pub(crate) fn facts<'a>(
    order: &'a Order,
    l: &'a OrderLine,
    kind: RuleKind,
    code: VatCode,
) -> LineFacts<'a> {
    LineFacts {
        kind,
        vat_code: Some(code),
        vat_rate: Some(l.vat_rate),
        sku: l.sku.as_deref(),
        product_group: l.product_group.as_deref(),
        payment_method: order.payment_method.as_deref(),
    }
}

/// The VAT code the line's rate resolves to on the sale's date, before any rule.
pub(crate) fn natural_code(
    order: &Order,
    no: usize,
    l: &OrderLine,
    ctx: &Context,
) -> Result<VatCode, PostingError> {
    let date = sale_date(order);
    match ctx.vat.code_for_rate(l.vat_rate, date) {
        CodeLookup::Found(code) => Ok(code),
        CodeLookup::Unknown => Err(PostingError::UnknownVatRate {
            rate: l.vat_rate,
            date,
            line: describe(no, l),
        }),
        CodeLookup::Ambiguous => Err(PostingError::AmbiguousVatRate {
            rate: l.vat_rate,
            date,
            line: describe(no, l),
        }),
    }
}

/// Turns a matching rule into a placement, checking its VAT code and account.
pub(crate) fn placement(
    m: &Match<'_>,
    natural: VatCode,
    order: &Order,
    no: usize,
    l: &OrderLine,
    ctx: &Context,
) -> Result<Placed, PostingError> {
    let then = &m.rule.then;
    let code = then.vat_code.unwrap_or(natural);
    let rate_ok = ctx
        .vat
        .entry(code, sale_date(order))
        .is_some_and(|e| e.rate == l.vat_rate);
    if !rate_ok {
        let (rule, rate, line) = (m.rule.id, l.vat_rate, describe(no, l));
        return Err(PostingError::VatOverrideMismatch {
            rule,
            code,
            rate,
            line,
        });
    }
    ctx.check_account(then.account, || {
        format!("rule {}, placing {}", m.rule.id, describe(no, l))
    })?;
    Ok(Placed {
        account: then.account,
        vat_code: code,
        department: then
            .department
            .clone()
            .or_else(|| ctx.connection.department.clone()),
        location: then
            .location
            .clone()
            .or_else(|| ctx.connection.location.clone()),
    })
}

/// Where an order line's revenue goes.
pub(crate) fn place(
    order: &Order,
    no: usize,
    l: &OrderLine,
    ctx: &Context,
) -> Result<Placed, PostingError> {
    let natural = natural_code(order, no, l, ctx)?;
    let facts = facts(order, l, rule_kind(l.kind), natural);
    let Some(m) = rules::best(&ctx.rules, ctx.connection.id, &facts) else {
        return Err(PostingError::Unplaceable {
            line: describe(no, l),
        });
    };
    placement(&m, natural, order, no, l, ctx)
}

/// Where the line's discount goes when a discount rule places it on its own account.
fn place_discount(
    order: &Order,
    no: usize,
    l: &OrderLine,
    ctx: &Context,
) -> Result<Option<Placed>, PostingError> {
    if l.discount.is_zero() {
        return Ok(None);
    }
    let natural = natural_code(order, no, l, ctx)?;
    let facts = facts(order, l, RuleKind::Discount, natural);
    match rules::best(&ctx.rules, ctx.connection.id, &facts) {
        Some(m) => placement(&m, natural, order, no, l, ctx).map(Some),
        None => Ok(None),
    }
}

/// A revenue-side line (credit): net on the placed account with its VAT code.
pub(crate) fn revenue_line(
    ctx: &Context,
    conv: &Conversion,
    p: &Placed,
    net: Money,
    role: LineRole,
    text: String,
) -> Result<VoucherLine, PostingError> {
    let mut r = line(ctx, conv, p.account, neg(net)?, role, text);
    r.vat_code = Some(p.vat_code);
    r.department.clone_from(&p.department);
    r.location.clone_from(&p.location);
    Ok(r)
}

/// Output VAT per code, credited: one line per code that carries VAT.
pub(crate) fn vat_lines(
    vat: &BTreeMap<VatCode, Money>,
    date: NaiveDate,
    ctx: &Context,
    conv: &Conversion,
) -> Result<Vec<VoucherLine>, PostingError> {
    let mut out = Vec::new();
    for (&code, &amount) in vat.iter().filter(|(_, a)| !a.is_zero()) {
        let entry = ctx.vat.entry(code, date);
        let Some(account) = entry.and_then(|e| e.output_account) else {
            return Err(PostingError::NoOutputVatAccount { code, vat: amount });
        };
        ctx.check_account(account, || format!("VAT code {code}"))?;
        let rate = entry.map(|e| e.rate).unwrap_or_default();
        let text = format!("Utgående merverdiavgift {rate} % (kode {code})");
        let mut v = line(ctx, conv, account, neg(amount)?, LineRole::OutputVat, text);
        v.vat_code = Some(code);
        out.push(v);
    }
    Ok(out)
}

/// Adds `amount` to the total of `code`.
pub(crate) fn add_vat(
    vat: &mut BTreeMap<VatCode, Money>,
    code: VatCode,
    amount: Money,
) -> Result<(), PostingError> {
    let total = vat.entry(code).or_default();
    *total = total
        .checked_add(amount)
        .ok_or_else(|| PostingError::Overflow(format!("VAT at code {code}")))?;
    Ok(())
}

/// The lines of one order line: revenue, and a discount line when a discount rule matches.
fn sales_lines(
    order: &Order,
    no: usize,
    l: &OrderLine,
    ctx: &Context,
    conv: &Conversion,
) -> Result<(Split, VatCode, Vec<VoucherLine>), PostingError> {
    let split = price(order, no, l)?;
    let p = place(order, no, l, ctx)?;
    let text = match l.kind {
        LineKind::Shipping => format!("Frakt: {}", l.name),
        LineKind::Goods | LineKind::Fee => format!("{} × {}", l.quantity, l.name),
    };
    let role = LineRole::Sales(l.kind);
    let mut out = Vec::new();
    if let Some(d) = place_discount(order, no, l, ctx)? {
        // The VAT stays computed on the discounted line (as the shop charged it); only the net
        // is shown in two parts: the undiscounted revenue and the discount's net.
        let overflow = || PostingError::Overflow(describe(no, l));
        let disc = vat::split(l.discount, l.vat_rate, order.prices_include_vat, None)
            .ok_or_else(overflow)?;
        let gross_net = split.net.checked_add(disc.net).ok_or_else(overflow)?;
        out.push(revenue_line(ctx, conv, &p, gross_net, role, text)?);
        let d = Placed {
            vat_code: p.vat_code,
            ..d
        };
        out.push(revenue_line(
            ctx,
            conv,
            &d,
            neg(disc.net)?,
            LineRole::Discount,
            format!("Rabatt: {}", l.name),
        )?);
    } else {
        out.push(revenue_line(ctx, conv, &p, split.net, role, text)?);
    }
    if let Some(first) = out.first_mut() {
        first.sku.clone_from(&l.sku);
    }
    Ok((split, p.vat_code, out))
}

/// Every line of the invoice for `order`, amounts in the order's currency (not yet converted).
pub(crate) fn invoice_lines(
    order: &Order,
    ctx: &Context,
    conv: &Conversion,
) -> Result<Vec<VoucherLine>, PostingError> {
    let mut lines = Vec::new();
    let mut vat: BTreeMap<VatCode, Money> = BTreeMap::new();
    let mut gross = Vec::new();
    for (i, l) in order.lines.iter().enumerate() {
        let (split, code, sales) = sales_lines(order, i + 1, l, ctx, conv)?;
        add_vat(&mut vat, code, split.vat)?;
        gross.push(split.gross);
        lines.extend(sales);
    }
    lines.extend(vat_lines(&vat, sale_date(order), ctx, conv)?);
    let overflow = || PostingError::Overflow(format!("the total of order {}", order.number));
    let computed = sum(gross).ok_or_else(overflow)?;
    let difference = order.total.checked_sub(computed).ok_or_else(overflow)?;
    if difference.0.abs() > MAX_ROUNDING.0 {
        let (order, stated, tolerance) = (order.number.clone(), order.total, MAX_ROUNDING);
        return Err(PostingError::TotalMismatch {
            order,
            stated,
            computed,
            tolerance,
        });
    }
    if !difference.is_zero() {
        let text = format!(
            "Avrunding: butikkens total {} mot linjenes sum {computed}",
            order.total
        );
        lines.push(line(
            ctx,
            conv,
            ctx.system.rounding,
            neg(difference)?,
            LineRole::Rounding,
            text,
        ));
    }
    lines.insert(0, receivable(order, ctx, conv, order.total));
    Ok(lines)
}

/// The customer's line: `amount` debited to receivables.
pub(crate) fn receivable(
    order: &Order,
    ctx: &Context,
    conv: &Conversion,
    amount: Money,
) -> VoucherLine {
    let name = order
        .customer
        .as_ref()
        .map_or("kontantkunde", |c| c.name.as_str());
    let text = format!("Kunde {name}, ordre {}", order.number);
    let mut r = line(
        ctx,
        conv,
        ctx.system.receivable,
        amount,
        LineRole::Receivable,
        text,
    );
    r.customer_id = order.customer.as_ref().map(|c| c.id.clone());
    r
}
