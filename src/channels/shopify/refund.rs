//! `refunds/create`: a Shopify refund as one canonical refund, in shop money.
//!
//! Lines come from `refund_line_items` (SKU of the embedded `line_item`, quantity, `subtotal`
//! and `total_tax`); refunded shipping from `refund_shipping_lines` (API 2024-10 and later) or,
//! in older payloads, the `shipping_refund` entries of `order_adjustments`.
//!
//! Shopify's subtotals follow the shop's tax setting (they include tax when the shop's prices
//! do), and a refund payload does not say which setting the shop has. So the gross amount is
//! decided by the money that actually went back: the refund transactions (`kind` refund, status
//! success or pending). If the subtotals plus shipping equal that money, tax was included; if
//! they equal it with the taxes added, it was not; with no tax both readings agree. When neither
//! reading adds up (a refund discrepancy, goods returned without money back) the refund fails
//! with both sums in its reason, for an operator to post by hand, rather than crediting a guess.
//! Transactions are in the presentment currency, so the comparison is made in that currency and
//! the amounts posted are the shop-money ones.

use super::Side;
use crate::channels::AdapterError;
use crate::channels::amounts::sum;
use crate::channels::json::{Node, Obj, invalid};
use crate::posting::event::{Event, Refund, RefundLine};
use crate::posting::money::Money;

/// A refunded line before we know whether its subtotal includes tax.
struct Part {
    sku: String,
    quantity: i64,
    subtotal: Money,
    tax: Money,
}

/// A refund's amounts on one side of the money bags.
struct Sums {
    lines: Vec<Part>,
    shipping: Money,
    shipping_tax: Money,
}

impl Sums {
    fn read(r: &Obj<'_>, side: &Side<'_>) -> Result<Sums, AdapterError> {
        let mut lines = Vec::new();
        for n in r.list("refund_line_items")? {
            lines.push(part(&n, side)?);
        }
        let (shipping, shipping_tax) = shipping(r, side)?;
        Ok(Sums {
            lines,
            shipping,
            shipping_tax,
        })
    }

    /// The refund's gross total if subtotals include tax (`tax_included`) or not.
    fn total(&self, path: &str, tax_included: bool) -> Result<Money, AdapterError> {
        let lines = self
            .lines
            .iter()
            .map(|p| gross(p.subtotal, p.tax, tax_included));
        let shipping = gross(self.shipping, self.shipping_tax, tax_included);
        let all: Result<Vec<Money>, AdapterError> = lines.chain([shipping]).collect();
        sum(path, all?)
    }
}

fn gross(amount: Money, tax: Money, tax_included: bool) -> Result<Money, AdapterError> {
    if tax_included {
        return Ok(amount);
    }
    amount
        .checked_add(tax)
        .ok_or_else(|| invalid("refund_line_items", "amounts are too large"))
}

/// Reads a refund payload.
pub(super) fn parse(r: &Obj<'_>, topic: &str) -> Result<Vec<Event>, AdapterError> {
    // A refund without lines, shipping or money (a restock, say) has nothing to post.
    let nothing = || {
        vec![Event::Ignored {
            topic: topic.to_owned(),
        }]
    };
    let (paid, paid_currency) = transactions(r)?;
    let Some(currency) = shop_currency(r)?.or_else(|| paid_currency.clone()) else {
        if r.list("refund_line_items")?.is_empty() && r.list("refund_shipping_lines")?.is_empty() {
            return Ok(nothing());
        }
        let reason = "names no currency: no shop_money amounts and no refund transactions";
        return Err(invalid(r.path(), reason));
    };
    let shop = Sums::read(r, &Side::shop(&currency))?;
    if shop.lines.is_empty() && shop.shipping.is_zero() && paid.is_zero() {
        return Ok(nothing());
    }
    let presentment = match paid_currency {
        Some(code) if code != currency => Some(Sums::read(r, &Side::presentment(&code))?),
        _ => None,
    };
    let compared = presentment.as_ref().unwrap_or(&shop);
    let tax_included = basis(r, compared, paid)?;
    let mut lines = Vec::new();
    for p in &shop.lines {
        let amount = gross(p.subtotal, p.tax, tax_included)?;
        lines.push(RefundLine {
            sku: p.sku.clone(),
            quantity: p.quantity,
            amount,
        });
    }
    let shipping = gross(shop.shipping, shop.shipping_tax, tax_included)?;
    Ok(vec![Event::Refund(Refund {
        id: r.req_as("id", Node::id)?,
        order_id: r.req_as("order_id", Node::id)?,
        amount: shop.total(r.path(), tax_included)?,
        shipping: Some(shipping).filter(|m| !m.is_zero()),
        lines,
        currency,
        created_at: super::placed_at(r)?,
    })])
}

/// Whether the subtotals include tax, decided by the money refunded (`paid`).
fn basis(r: &Obj<'_>, sums: &Sums, paid: Money) -> Result<bool, AdapterError> {
    let (included, added) = (sums.total(r.path(), true)?, sums.total(r.path(), false)?);
    if paid == added {
        return Ok(false);
    }
    if paid == included {
        return Ok(true);
    }
    let reason = format!(
        "the refund transactions total {paid}, but the refunded lines and shipping come to \
         {included} (prices with tax) or {added} (tax added); a refund that differs from its \
         lines (a refund discrepancy, or goods returned without money back) must be posted by hand"
    );
    Err(invalid("transactions", reason))
}

fn part(n: &Node<'_>, side: &Side<'_>) -> Result<Part, AdapterError> {
    let l = n.object()?;
    let item = l.opt_object("line_item")?;
    let sku = match &item {
        Some(item) => item.opt_text("sku")?,
        None => None,
    };
    let sku = match sku {
        Some(sku) => sku,
        None => {
            let id = match l.opt("line_item_id", Node::id)? {
                Some(id) => id,
                None => item
                    .as_ref()
                    .map_or(Err(missing(&l, "line_item")), |i| i.req_as("id", Node::id))?,
            };
            format!("line:{id}")
        }
    };
    Ok(Part {
        sku,
        quantity: l.req_as("quantity", Node::quantity)?,
        subtotal: side.req(&l, "subtotal")?,
        tax: side.amount(&l, "total_tax")?.unwrap_or(Money::ZERO),
    })
}

fn missing(o: &Obj<'_>, key: &str) -> AdapterError {
    AdapterError::Missing { path: o.child(key) }
}

/// Refunded shipping and its tax, as positive amounts.
fn shipping(r: &Obj<'_>, side: &Side<'_>) -> Result<(Money, Money), AdapterError> {
    let lines = r.list("refund_shipping_lines")?;
    let (mut amounts, mut taxes) = (Vec::new(), Vec::new());
    if lines.is_empty() {
        for n in r.list("order_adjustments")? {
            let a = n.object()?;
            if a.opt_text("kind")?.as_deref() == Some("shipping_refund") {
                // Shopify writes these as negative adjustments of the order.
                amounts.push(magnitude(&a, side.req(&a, "amount")?)?);
                taxes.push(magnitude(
                    &a,
                    side.amount(&a, "tax_amount")?.unwrap_or_default(),
                )?);
            }
        }
    } else {
        for n in lines {
            let s = n.object()?;
            amounts.push(side.req(&s, "subtotal_amount")?);
            taxes.push(side.amount(&s, "tax_amount")?.unwrap_or_default());
        }
    }
    let path = r.child("refund_shipping_lines");
    Ok((sum(&path, amounts)?, sum(&path, taxes)?))
}

/// `m` without its sign (shipping refunds are written as negative order adjustments).
fn magnitude(a: &Obj<'_>, m: Money) -> Result<Money, AdapterError> {
    m.0.checked_abs()
        .map(Money)
        .ok_or_else(|| invalid(a.path(), "amount is too large"))
}

/// The money that went back (successful or pending refund transactions) and its currency.
fn transactions(r: &Obj<'_>) -> Result<(Money, Option<String>), AdapterError> {
    let (mut amounts, mut currency) = (Vec::new(), None::<String>);
    for n in r.list("transactions")? {
        let t = n.object()?;
        let counts = t.opt_text("kind")?.as_deref() == Some("refund")
            && matches!(
                t.opt_text("status")?.as_deref(),
                Some("success" | "pending")
            );
        if !counts {
            continue;
        }
        let code = t.req_as("currency", Node::currency)?;
        if currency.as_ref().is_some_and(|c| *c != code) {
            return Err(invalid(
                &t.child("currency"),
                format!("{code} differs from the other refund transactions"),
            ));
        }
        currency = Some(code);
        amounts.push(t.req_as("amount", Node::price_text)?);
    }
    Ok((sum(&r.child("transactions"), amounts)?, currency))
}

/// The shop currency, from the first shop-money bag in the refund; `None` without any.
fn shop_currency(r: &Obj<'_>) -> Result<Option<String>, AdapterError> {
    let places = [
        ("refund_line_items", "subtotal_set"),
        ("refund_shipping_lines", "subtotal_amount_set"),
        ("order_adjustments", "amount_set"),
    ];
    for (list, set) in places {
        for n in r.list(list)? {
            let Some(bag) = n.object()?.opt_object(set)? else {
                continue;
            };
            if let Some(shop) = bag.opt_object("shop_money")? {
                return shop.opt("currency_code", Node::currency);
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
