//! The native event format (channel `nettbutikk`), as published in docs/events.md and
//! docs/events.schema.json.
//!
//! It is our own contract, so it is read to the letter: amounts are decimal strings ("249.00"),
//! VAT rates percentage strings ("25"), and a field the contract requires must be there. Fields
//! we do not know are ignored, so shops may send more than we read.
//!
//! The order's `payment` block is informational: its `method` fills the order's payment method
//! (which payment-method rules match on), and its `status` is not read. Money received is posted
//! only from `payment.captured`, which carries the provider's transaction id that makes it
//! idempotent; reading "paid" from an order snapshot as well would post the money twice.

use chrono::{DateTime, Utc};

use super::AdapterError;
use super::amounts::{check_line, sum};
use super::json::{self, Node, Obj, invalid};
use crate::posting::event::{
    Customer, Event, LineKind, Order, OrderCancellation, OrderLine, Payment, Product, Refund,
    RefundLine,
};
use crate::posting::money::Money;

/// The currency of a refund that does not name one: the default company's base currency.
const DEFAULT_REFUND_CURRENCY: &str = "NOK";

/// Reads one native event. The body's `type` decides what it is; every type yields one event.
pub(super) fn parse(body: &[u8]) -> Result<Vec<Event>, AdapterError> {
    let envelope = json::root(body)?;
    let kind = envelope.req_as("type", Node::text_nonempty)?;
    let data = || envelope.req_object("data");
    let event = match kind.as_str() {
        "order.created" | "order.updated" => Event::Order(order(&data()?.req_object("order")?)?),
        "order.cancelled" => Event::OrderCancelled(cancellation(&envelope, &data()?)?),
        "payment.captured" => Event::Payment(payment(&data()?.req_object("payment")?)?),
        "refund.created" => Event::Refund(refund(&data()?.req_object("refund")?)?),
        "product.created" | "product.updated" => {
            Event::Product(product(&data()?.req_object("product")?)?)
        }
        _ => Event::Ignored { topic: kind },
    };
    Ok(vec![event])
}

/// `data.order` of `order.created` and `order.updated`: a complete snapshot.
fn order(o: &Obj<'_>) -> Result<Order, AdapterError> {
    let id = o.req_as("id", Node::id)?;
    let mut lines = Vec::new();
    for node in o.req_as("lines", Node::array)? {
        lines.push(line(&node)?);
    }
    if lines.is_empty() {
        return Err(invalid(&o.child("lines"), "must hold at least one line"));
    }
    if let Some(shipping) = o.opt_object("shipping")? {
        lines.push(shipping_line(&shipping)?);
    }
    let payment = o.opt_object("payment")?;
    Ok(Order {
        number: o.opt("number", Node::id)?.unwrap_or_else(|| id.clone()),
        id,
        version: o.req_as("version", version)?,
        registered_at: o.req_as("created_at", Node::timestamp)?,
        currency: o.req_as("currency", Node::currency)?,
        exchange_rate: None,
        prices_include_vat: o.req_as("prices_include_vat", Node::boolean)?,
        customer: o
            .opt_object("customer")?
            .map(|c| customer(&c))
            .transpose()?,
        lines,
        total: o.req_as("total", Node::price_string)?,
        payment_method: payment.map(|p| p.opt_text("method")).transpose()?.flatten(),
        cancelled: false,
    })
}

fn version(n: &Node<'_>) -> Result<i64, AdapterError> {
    let v = n.integer()?;
    if v < 0 {
        return Err(invalid(n.path(), format!("must not be negative, got {v}")));
    }
    Ok(v)
}

/// One element of `data.order.lines`.
fn line(n: &Node<'_>) -> Result<OrderLine, AdapterError> {
    let l = n.object()?;
    let line = OrderLine {
        kind: l.opt("kind", line_kind)?.unwrap_or(LineKind::Goods),
        sku: l.opt_text("sku")?,
        name: l.req_as("name", Node::text_nonempty)?,
        product_group: l.opt_text("product_group")?,
        quantity: l.req_as("quantity", Node::quantity)?,
        unit_price: l.req_as("unit_price", Node::price_string)?,
        discount: l
            .opt("discount", Node::price_string)?
            .unwrap_or(Money::ZERO),
        vat_rate: l.req_as("vat_rate", Node::rate_percent)?,
        vat_amount: l.opt("vat_amount", Node::price_string)?,
    };
    check_line(n.path(), &line)?;
    Ok(line)
}

fn line_kind(n: &Node<'_>) -> Result<LineKind, AdapterError> {
    match n.string()?.as_str() {
        "goods" => Ok(LineKind::Goods),
        "shipping" => Ok(LineKind::Shipping),
        "fee" => Ok(LineKind::Fee),
        other => Err(AdapterError::Unsupported {
            path: n.path().to_owned(),
            value: other.to_owned(),
            expected: "goods, shipping or fee",
        }),
    }
}

/// `data.order.shipping`: one shipping line, quantity 1.
fn shipping_line(s: &Obj<'_>) -> Result<OrderLine, AdapterError> {
    let line = OrderLine {
        kind: LineKind::Shipping,
        sku: None,
        name: s.opt_text("name")?.unwrap_or_else(|| "Shipping".to_owned()),
        product_group: None,
        quantity: 1,
        unit_price: s.req_as("price", Node::price_string)?,
        discount: s
            .opt("discount", Node::price_string)?
            .unwrap_or(Money::ZERO),
        vat_rate: s.req_as("vat_rate", Node::rate_percent)?,
        vat_amount: s.opt("vat_amount", Node::price_string)?,
    };
    check_line(s.path(), &line)?;
    Ok(line)
}

fn customer(c: &Obj<'_>) -> Result<Customer, AdapterError> {
    Ok(Customer {
        id: c.req_as("id", Node::id)?,
        name: c.req_as("name", Node::text_nonempty)?,
        email: c.opt_text("email")?,
    })
}

/// `order.cancelled`: `data.order` {id, version?, cancelled_at?}; without `cancelled_at` the
/// envelope's `occurred_at` dates the cancellation.
fn cancellation(envelope: &Obj<'_>, data: &Obj<'_>) -> Result<OrderCancellation, AdapterError> {
    let o = data.req_object("order")?;
    let cancelled_at: Option<DateTime<Utc>> = match o.opt("cancelled_at", Node::timestamp)? {
        Some(at) => Some(at),
        None => envelope.opt("occurred_at", Node::timestamp)?,
    };
    Ok(OrderCancellation {
        order_id: o.req_as("id", Node::id)?,
        version: o.opt("version", version)?,
        cancelled_at: cancelled_at.ok_or_else(|| AdapterError::Missing {
            path: format!("{} (or occurred_at)", o.child("cancelled_at")),
        })?,
    })
}

/// `data.payment` of `payment.captured`.
fn payment(p: &Obj<'_>) -> Result<Payment, AdapterError> {
    let amount = p.req_as("amount", Node::price_string)?;
    if amount.is_zero() {
        return Err(invalid(&p.child("amount"), "must be more than zero"));
    }
    Ok(Payment {
        id: p.req_as("id", Node::id)?,
        order_id: p.req_as("order_id", Node::id)?,
        amount,
        currency: p.req_as("currency", Node::currency)?,
        method: p.opt_text("method")?,
        fee: p.opt("fee", Node::price_string)?,
        captured_at: p.req_as("captured_at", Node::timestamp)?,
    })
}

/// `data.refund` of `refund.created`. Its `amount` must equal the lines plus shipping: the
/// credit note is built from the lines, the refund payment from `amount`, and both must agree.
fn refund(r: &Obj<'_>) -> Result<Refund, AdapterError> {
    let mut lines = Vec::new();
    for node in r.req_as("lines", Node::array)? {
        let l = node.object()?;
        lines.push(RefundLine {
            sku: l.req_as("sku", Node::text_nonempty)?,
            quantity: l.req_as("quantity", Node::quantity)?,
            amount: l.req_as("amount", Node::price_string)?,
        });
    }
    let shipping = r.opt("shipping", refund_shipping)?.filter(|m| !m.is_zero());
    let amount = r.req_as("amount", Node::price_string)?;
    let parts = lines.iter().map(|l| l.amount).chain(shipping);
    let expected = sum(&r.child("lines"), parts)?;
    if amount != expected {
        let reason =
            format!("{amount} does not equal the refunded lines plus shipping ({expected})");
        return Err(invalid(&r.child("amount"), reason));
    }
    Ok(Refund {
        id: r.req_as("id", Node::id)?,
        order_id: r.req_as("order_id", Node::id)?,
        lines,
        shipping,
        amount,
        currency: r
            .opt("currency", Node::currency)?
            .unwrap_or_else(|| DEFAULT_REFUND_CURRENCY.to_owned()),
        created_at: r.req_as("created_at", Node::timestamp)?,
    })
}

/// Refunded shipping: a decimal string, or an object `{"amount": "99.00"}`.
fn refund_shipping(n: &Node<'_>) -> Result<Money, AdapterError> {
    match n.object() {
        Ok(o) => o.req_as("amount", Node::price_string),
        Err(_) => n.price_string(),
    }
}

/// `data.product` of `product.created` and `product.updated`.
fn product(p: &Obj<'_>) -> Result<Product, AdapterError> {
    Ok(Product {
        sku: p.req_as("sku", Node::text_nonempty)?,
        name: p.req_as("name", Node::text_nonempty)?,
        price: p.opt("price", Node::price_string)?,
        vat_rate: p.opt("vat_rate", Node::rate_percent)?,
        product_group: p.opt_text("product_group")?,
    })
}

#[cfg(test)]
mod tests;
