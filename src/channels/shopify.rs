//! Shopify webhooks (REST payloads, as `X-Shopify-Topic` names them).
//!
//! | topic | events |
//! | --- | --- |
//! | `orders/create`, `orders/updated` | the order's snapshot |
//! | `orders/paid` | the snapshot, and a payment of its total (none for a free order); only for a body whose `financial_status` is `paid` |
//! | `orders/cancelled` | the cancellation; only for a body with a `cancelled_at` |
//! | `refunds/create` | the refund ([`refund`]) |
//! | `products/create`, `products/update` | one product per variant with a SKU ([`product`]) |
//! | anything else | ignored |
//!
//! The topic header is not signed, so it only picks how the body is read; what is posted
//! follows from the body, and a body that contradicts its topic is refused (see the note above
//! `paid`). Each delivery also carries a [`Reading::content_key`], since its webhook id is not
//! signed either.
//!
//! Decisions, each because the ledger must be exact:
//! - **Shop money.** Amounts are posted in the shop's currency (`currency`): every amount is read
//!   from its `*_set.shop_money` when the payload has one (and its currency must be the shop's),
//!   else from the plain field, which Shopify documents as shop money. Presentment money (what
//!   the customer saw) is never posted, so `exchange_rate` stays `None`.
//! - **Version** is `updated_at` in epoch milliseconds, so a later update wins over an earlier one
//!   whatever order they arrive in.
//! - **Ids** are kept as the exact digits sent (order ids exceed 2^53). A line item without a SKU
//!   is keyed `line:{line item id}`, in orders and refunds alike, so that refunds still find it.
//! - **Taxes.** A line's `tax_lines` give its VAT amount (their sum, the shop's own figure) and its
//!   rate (their sum, read from the JSON number's digits). A line without tax lines takes the
//!   order-level rate when the order has exactly one; with several it fails rather than guess.
//!   Shipping without tax lines is untaxed: Shopify puts shipping tax on the shipping line.
//! - **Discounts** come from each line's `discount_allocations`; `total_discounts` must equal
//!   their sum (with or without shipping's), else the order fails instead of posting a discount
//!   that no line carries.

mod product;
mod refund;

use chrono::{DateTime, Utc};

use super::amounts::{check_line, sum};
use super::json::{self, Node, Obj, invalid};
use super::{AdapterError, Reading};
use crate::posting::event::{
    Customer, Event, LineKind, Order, OrderCancellation, OrderLine, Payment,
};
use crate::posting::money::{Money, Rate};

/// Reads one Shopify webhook of `topic`.
pub(super) fn read(topic: &str, body: &[u8]) -> Result<Reading, AdapterError> {
    let root = json::root(body)?;
    let events = match topic {
        "orders/create" | "orders/updated" => vec![Event::Order(order(&root)?)],
        "orders/paid" => {
            let order = order(&root)?;
            let payment = paid(&root, &order)?;
            std::iter::once(Event::Order(order))
                .chain(payment.map(Event::Payment))
                .collect()
        }
        "orders/cancelled" => vec![Event::OrderCancelled(cancellation(&root)?)],
        "refunds/create" => refund::parse(&root, topic)?,
        "products/create" | "products/update" => product::parse(&root, topic)?,
        _ => vec![Event::Ignored {
            topic: topic.to_owned(),
        }],
    };
    Ok(Reading {
        events,
        content_key: content_key(topic, &root)?,
    })
}

/// What the delivery is, for deduplicating on content ([`Reading::content_key`]): the kind of
/// event the topic reads the body as, the resource's `id` and its `updated_at` (else
/// `created_at`). `orders/create` and `orders/updated` are one kind, since both carry nothing
/// but the order's snapshot; `orders/paid` and `orders/cancelled` post more, so each is its own.
/// An order's snapshot at one `updated_at` is one version, which the posting engine applies
/// once anyway, so keying on it loses no change that would have been posted.
fn content_key(topic: &str, o: &Obj<'_>) -> Result<Option<String>, AdapterError> {
    let kind = match topic {
        "orders/create" | "orders/updated" => "order",
        "orders/paid" => "paid",
        "orders/cancelled" => "cancelled",
        "refunds/create" => "refund",
        "products/create" | "products/update" => "product",
        _ => return Ok(None),
    };
    // Shopify always sends both; a body without them has no content to key, and is
    // deduplicated on its webhook id alone.
    let (Some(id), Some(as_of)) = (
        o.opt("id", Node::id)?,
        match o.opt("updated_at", Node::timestamp)? {
            Some(at) => Some(at),
            None => o.opt("created_at", Node::timestamp)?,
        },
    ) else {
        return Ok(None);
    };
    Ok(Some(super::content_key(kind, &id, as_of)))
}

/// Which side of Shopify's money bags (`{"shop_money": .., "presentment_money": ..}`) to read,
/// and the currency it must be in.
pub(super) struct Side<'c> {
    bag: &'static str,
    currency: &'c str,
}

impl<'c> Side<'c> {
    /// Shop money in `currency`; falls back to the plain field, which is shop money too.
    pub(super) fn shop(currency: &'c str) -> Self {
        Side {
            bag: "shop_money",
            currency,
        }
    }

    /// Presentment money (what the customer paid in) in `currency`.
    pub(super) fn presentment(currency: &'c str) -> Self {
        Side {
            bag: "presentment_money",
            currency,
        }
    }

    /// The amount `key` of `o`: `{key}_set.{bag}.amount`, else (shop side only) `key`.
    pub(super) fn amount(&self, o: &Obj<'_>, key: &str) -> Result<Option<Money>, AdapterError> {
        let Some(set) = o.opt_object(&format!("{key}_set"))? else {
            return if self.bag == "shop_money" {
                o.opt(key, Node::money_text)
            } else {
                Ok(None)
            };
        };
        let bag = set.req_object(self.bag)?;
        if let Some(code) = bag.opt("currency_code", Node::currency)?
            && code != self.currency
        {
            let reason = format!("is {code}, expected {} ({})", self.currency, self.bag);
            return Err(invalid(&bag.child("currency_code"), reason));
        }
        bag.req_as("amount", Node::money_text).map(Some)
    }

    /// Like [`Side::amount`], but the amount must be there.
    pub(super) fn req(&self, o: &Obj<'_>, key: &str) -> Result<Money, AdapterError> {
        self.amount(o, key)?
            .ok_or_else(|| AdapterError::Missing { path: o.child(key) })
    }

    /// The sum of `key` over the elements of the array `list` of `o`.
    fn sum_of(&self, o: &Obj<'_>, list: &str, key: &str) -> Result<Money, AdapterError> {
        let mut amounts = Vec::new();
        for n in o.list(list)? {
            amounts.push(self.req(&n.object()?, key)?);
        }
        sum(&o.child(list), amounts)
    }
}

/// An order payload (`orders/*` topics).
fn order(o: &Obj<'_>) -> Result<Order, AdapterError> {
    let id = o.req_as("id", Node::id)?;
    let currency = o.req_as("currency", Node::currency)?;
    let shop = Side::shop(&currency);
    let fallback = order_rates(o)?;
    let mut lines = Vec::new();
    for n in o.req_as("line_items", Node::array)? {
        lines.push(line_item(&n, &shop, &fallback)?);
    }
    for n in o.list("shipping_lines")? {
        lines.push(shipping_line(&n, &shop)?);
    }
    check_discounts(o, &shop, &lines)?;
    Ok(Order {
        number: number(o, &id)?,
        version: version(o)?,
        registered_at: placed_at(o)?,
        prices_include_vat: o.req_as("taxes_included", Node::boolean)?,
        customer: customer(o)?,
        total: shop.req(o, "total_price")?,
        payment_method: gateway(o)?,
        cancelled: o.opt("cancelled_at", Node::timestamp)?.is_some(),
        exchange_rate: None,
        lines,
        currency,
        id,
    })
}

/// `name` ("#1001") without its `#`, else `order_number`, else the id.
fn number(o: &Obj<'_>, id: &str) -> Result<String, AdapterError> {
    if let Some(name) = o.opt_text("name")? {
        return Ok(name.trim_start_matches('#').to_owned());
    }
    Ok(o.opt("order_number", Node::id)?
        .unwrap_or_else(|| id.to_owned()))
}

/// `updated_at` (else `created_at`) in epoch milliseconds.
fn version(o: &Obj<'_>) -> Result<i64, AdapterError> {
    let at = match o.opt("updated_at", Node::timestamp)? {
        Some(at) => at,
        None => o.req_as("created_at", Node::timestamp)?,
    };
    Ok(at.timestamp_millis())
}

/// When the order was placed: `processed_at` (set to the original date for imported orders),
/// else `created_at`.
pub(super) fn placed_at(o: &Obj<'_>) -> Result<DateTime<Utc>, AdapterError> {
    match o.opt("processed_at", Node::timestamp)? {
        Some(at) => Ok(at),
        None => o.req_as("created_at", Node::timestamp),
    }
}

/// The rate for lines that carry no `tax_lines`, from the order-level `tax_lines`.
enum OrderRates {
    /// The order has no tax lines: untaxed.
    None,
    /// One rate for the whole order.
    One(Rate),
    /// Several rates: a line without its own tax lines cannot be placed.
    Several(Vec<Rate>),
}

fn order_rates(o: &Obj<'_>) -> Result<OrderRates, AdapterError> {
    let mut rates: Vec<Rate> = Vec::new();
    for n in o.list("tax_lines")? {
        let rate = n.object()?.req_as("rate", Node::rate_fraction)?;
        if !rates.contains(&rate) {
            rates.push(rate);
        }
    }
    Ok(match rates.as_slice() {
        [] => OrderRates::None,
        [one] => OrderRates::One(*one),
        _ => OrderRates::Several(rates),
    })
}

/// A line's own `tax_lines`: the sum of their rates and of their amounts; `None` when it has none.
fn line_taxes(l: &Obj<'_>, shop: &Side<'_>) -> Result<Option<(Rate, Money)>, AdapterError> {
    let taxes = l.list("tax_lines")?;
    if taxes.is_empty() {
        return Ok(None);
    }
    let (mut rate, mut amounts) = (0_u32, Vec::new());
    for n in &taxes {
        let t = n.object()?;
        let r = t.req_as("rate", Node::rate_fraction)?;
        rate = rate
            .checked_add(r.0)
            .ok_or_else(|| invalid(n.path(), "rates add up to too much"))?;
        amounts.push(shop.req(&t, "price")?);
    }
    Ok(Some((Rate(rate), sum(&l.child("tax_lines"), amounts)?)))
}

fn line_item(
    n: &Node<'_>,
    shop: &Side<'_>,
    fallback: &OrderRates,
) -> Result<OrderLine, AdapterError> {
    let l = n.object()?;
    let id = l.req_as("id", Node::id)?;
    if l.opt("gift_card", Node::boolean)? == Some(true) {
        let reason = "sells a gift card, which is a liability rather than a sale; post it by hand";
        return Err(invalid(n.path(), reason));
    }
    let (vat_rate, vat_amount) = match line_taxes(&l, shop)? {
        Some((rate, amount)) => (rate, Some(amount)),
        None if l.opt("taxable", Node::boolean)? == Some(false) => (Rate(0), None),
        None => (fallback_rate(&l, fallback)?, None),
    };
    let line = OrderLine {
        kind: LineKind::Goods,
        sku: Some(l.opt_text("sku")?.unwrap_or_else(|| format!("line:{id}"))),
        name: match l.opt_text("name")? {
            Some(name) => name,
            None => l.opt_text("title")?.unwrap_or_else(|| format!("Item {id}")),
        },
        product_group: None,
        quantity: l.req_as("quantity", Node::quantity)?,
        unit_price: shop.req(&l, "price")?,
        discount: shop.sum_of(&l, "discount_allocations", "amount")?,
        vat_rate,
        vat_amount,
    };
    check_line(n.path(), &line)?;
    Ok(line)
}

fn fallback_rate(l: &Obj<'_>, fallback: &OrderRates) -> Result<Rate, AdapterError> {
    match fallback {
        OrderRates::None => Ok(Rate(0)),
        OrderRates::One(rate) => Ok(*rate),
        OrderRates::Several(rates) => {
            let list: Vec<String> = rates.iter().map(|r| format!("{r} %")).collect();
            let reason = format!(
                "the line has no tax lines and the order's tax_lines hold several rates ({}); \
                 cannot tell which is this line's",
                list.join(", ")
            );
            Err(invalid(&l.child("tax_lines"), reason))
        }
    }
}

fn shipping_line(n: &Node<'_>, shop: &Side<'_>) -> Result<OrderLine, AdapterError> {
    let s = n.object()?;
    let (vat_rate, vat_amount) = match line_taxes(&s, shop)? {
        Some((rate, amount)) => (rate, Some(amount)),
        None => (Rate(0), None),
    };
    let line = OrderLine {
        kind: LineKind::Shipping,
        sku: None,
        name: match s.opt_text("title")? {
            Some(title) => title,
            None => s.opt_text("code")?.unwrap_or_else(|| "Shipping".to_owned()),
        },
        product_group: None,
        quantity: 1,
        unit_price: shop.req(&s, "price")?,
        discount: shop.sum_of(&s, "discount_allocations", "amount")?,
        vat_rate,
        vat_amount,
    };
    check_line(n.path(), &line)?;
    Ok(line)
}

/// `total_discounts` must be what the lines' allocations add up to (Shopify versions differ on
/// whether shipping discounts count in it, so both readings are accepted).
fn check_discounts(o: &Obj<'_>, shop: &Side<'_>, lines: &[OrderLine]) -> Result<(), AdapterError> {
    let Some(total) = shop.amount(o, "total_discounts")? else {
        return Ok(());
    };
    let path = o.child("total_discounts");
    let goods = lines
        .iter()
        .filter(|l| l.kind == LineKind::Goods)
        .map(|l| l.discount);
    let on_items = sum(&path, goods)?;
    let with_shipping = sum(&path, lines.iter().map(|l| l.discount))?;
    if total == on_items || total == with_shipping {
        return Ok(());
    }
    let reason = format!(
        "{total} is not what the lines' discount_allocations add up to ({on_items} on items, \
         {with_shipping} with shipping)"
    );
    Err(invalid(&path, reason))
}

/// `customer` {id, first_name, last_name, email}; the name falls back to the e-mail, then the id.
fn customer(o: &Obj<'_>) -> Result<Option<Customer>, AdapterError> {
    let Some(c) = o.opt_object("customer")? else {
        return Ok(None);
    };
    let id = c.req_as("id", Node::id)?;
    let email = match c.opt_text("email")? {
        Some(email) => Some(email),
        None => o.opt_text("email")?,
    };
    let parts = [c.opt_text("first_name")?, c.opt_text("last_name")?];
    let name = parts.into_iter().flatten().collect::<Vec<_>>().join(" ");
    let name = if name.is_empty() {
        email.clone().unwrap_or_else(|| id.clone())
    } else {
        name
    };
    Ok(Some(Customer { id, name, email }))
}

/// The first of `payment_gateway_names`, else `gateway`.
fn gateway(o: &Obj<'_>) -> Result<Option<String>, AdapterError> {
    if let Some(first) = o.list("payment_gateway_names")?.first() {
        let name = first.string()?;
        if !name.trim().is_empty() {
            return Ok(Some(name));
        }
    }
    o.opt_text("gateway")
}

// The topic and the webhook id are headers, which Shopify's HMAC does not cover: anyone who
// captured one signed body can send it again under any topic, any number of times. So the topic
// only says how to read the body, and what is posted must follow from the body: `orders/paid`
// posts a payment only for an order the body says is paid, `orders/cancelled` cancels only an
// order the body says is cancelled. A topic the body contradicts is refused here, in the worker,
// so the event is dead-lettered with the field in its reason, rather than with 400 at the edge:
// the edge reads no channel's payloads (one reader of bodies, which replays of stored events go
// through too), Shopify answers any non-2xx with retries for two days and then deletes the
// subscription, and a dead letter keeps the body for an operator to look at.

/// The payment an `orders/paid` stands for: the order's total in shop money, identified by the
/// order (the webhook names no transaction, and the payload carries no transactions). Only a
/// body whose `financial_status` is `paid`, with nothing outstanding, stands for one: that is
/// the change Shopify sends `orders/paid` for. A free order has nothing to post.
fn paid(o: &Obj<'_>, order: &Order) -> Result<Option<Payment>, AdapterError> {
    let status = o.req_as("financial_status", Node::text_nonempty)?;
    if status != "paid" {
        let reason = format!(
            "is `{status}`, not `paid`: the body does not say the order was paid, so the \
             topic orders/paid disagrees with it and no payment is posted"
        );
        return Err(invalid(&o.child("financial_status"), reason));
    }
    let shop = Side::shop(&order.currency);
    if let Some(owed) = shop.amount(o, "total_outstanding")?
        && !owed.is_zero()
    {
        let reason = format!(
            "{owed} is still owed, so the order is not paid in full; the payment is left for \
             an operator to post"
        );
        return Err(invalid(&o.child("total_outstanding"), reason));
    }
    if order.total.is_zero() {
        return Ok(None);
    }
    Ok(Some(Payment {
        id: format!("order-{}-paid", order.id),
        order_id: order.id.clone(),
        amount: order.total,
        currency: order.currency.clone(),
        method: order.payment_method.clone(),
        fee: None,
        captured_at: o
            .opt("updated_at", Node::timestamp)?
            .unwrap_or(order.registered_at),
    }))
}

/// `orders/cancelled`: dated by `cancelled_at`, versioned like the snapshot. An order whose
/// `cancelled_at` is null is not cancelled, whatever the topic says.
fn cancellation(o: &Obj<'_>) -> Result<OrderCancellation, AdapterError> {
    let Some(cancelled_at) = o.opt("cancelled_at", Node::timestamp)? else {
        let reason = "is null: the order is not cancelled, so the topic orders/cancelled \
                      disagrees with the body and nothing is cancelled";
        return Err(invalid(&o.child("cancelled_at"), reason));
    };
    Ok(OrderCancellation {
        order_id: o.req_as("id", Node::id)?,
        version: Some(version(o)?),
        cancelled_at,
    })
}

/// The events of [`read`] alone, as the unit tests compare them.
#[cfg(test)]
fn parse(topic: &str, body: &[u8]) -> Result<Vec<Event>, AdapterError> {
    read(topic, body).map(|r| r.events)
}

#[cfg(test)]
mod tests;
