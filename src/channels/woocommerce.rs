//! WooCommerce webhooks (REST v3 payloads, as `X-WC-Webhook-Topic` names them).
//!
//! `order.created` and `order.updated` become the order's snapshot; every other topic is
//! ignored for now (refunds, payments and products are left to later work). The topic header is
//! not signed, so it only picks how the body is read: whether the order is cancelled comes from
//! its `status`, and each delivery carries a [`Reading::content_key`].
//!
//! WooCommerce stores line totals without tax whatever `prices_include_tax` says, with the tax
//! beside them, so orders are posted as net prices with the shop's own VAT amounts
//! (`prices_include_vat` is false). A line gives only its net subtotal, and `subtotal / quantity`
//! need not be whole øre (10.00 / 3), so the unit price is rounded up to the øre and the
//! difference is added to the line's discount: quantity × unit price − discount is exactly the
//! line's net `total`. A line's VAT rate is the `rate_percent` of the order's `tax_lines` that its
//! `taxes` point to (sent by WooCommerce 5.7 and later); without it the order fails rather than
//! guess a rate from rounded amounts. Dates are the `*_gmt` fields, which carry no offset.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::amounts::check_line;
use super::json::{self, Node, Obj, invalid};
use super::{AdapterError, Reading};
use crate::posting::event::{Customer, Event, LineKind, Order, OrderLine};
use crate::posting::money::{Money, Rate};

/// Reads one WooCommerce webhook of `topic`.
pub(super) fn read(topic: &str, body: &[u8]) -> Result<Reading, AdapterError> {
    let root = json::root(body)?;
    match topic {
        "order.created" | "order.updated" => {
            let order = order(&root)?;
            let content_key = content_key(&root, &order)?;
            Ok(Reading {
                events: vec![Event::Order(order)],
                content_key: Some(content_key),
            })
        }
        _ => Ok(Reading {
            events: vec![Event::Ignored {
                topic: topic.to_owned(),
            }],
            content_key: None,
        }),
    }
}

/// The events of [`read`] alone, as the unit tests compare them.
#[cfg(test)]
fn parse(topic: &str, body: &[u8]) -> Result<Vec<Event>, AdapterError> {
    read(topic, body).map(|r| r.events)
}

/// What an order delivery is, for deduplicating on content ([`Reading::content_key`]): the
/// order's snapshot as of `date_modified_gmt`. The event id the receiver derives contains the
/// topic, which is not signed, so the same body sent as `order.created` and as `order.updated`
/// gets two ids; both topics carry nothing but the snapshot, so they are one kind here. One
/// `date_modified_gmt` is one version, which the posting engine applies once anyway.
fn content_key(o: &Obj<'_>, order: &Order) -> Result<String, AdapterError> {
    let as_of = o.req_as("date_modified_gmt", gmt)?;
    Ok(super::content_key("order", &order.id, as_of))
}

fn order(o: &Obj<'_>) -> Result<Order, AdapterError> {
    let id = o.req_as("id", Node::id)?;
    let rates = tax_rates(o)?;
    let mut lines = Vec::new();
    let groups = [
        ("line_items", LineKind::Goods),
        ("shipping_lines", LineKind::Shipping),
        ("fee_lines", LineKind::Fee),
    ];
    for (list, kind) in groups {
        for n in o.list(list)? {
            lines.push(line(&n, kind, &rates)?);
        }
    }
    Ok(Order {
        number: o.opt("number", Node::id)?.unwrap_or_else(|| id.clone()),
        version: o.req_as("date_modified_gmt", gmt)?.timestamp_millis(),
        registered_at: o.req_as("date_created_gmt", gmt)?,
        currency: o.req_as("currency", Node::currency)?,
        exchange_rate: None,
        prices_include_vat: false,
        customer: customer(o)?,
        lines,
        total: o.req_as("total", Node::price_text)?,
        payment_method: o.opt_text("payment_method")?,
        cancelled: o.opt_text("status")?.as_deref() == Some("cancelled"),
        id,
    })
}

/// A `*_gmt` date: "2017-03-22T19:28:08", UTC without an offset.
fn gmt(n: &Node<'_>) -> Result<DateTime<Utc>, AdapterError> {
    let s = n.string()?;
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S")
        .map(|t| t.and_utc())
        .map_err(|_| {
            invalid(
                n.path(),
                format!("`{s}` is not a date such as 2017-03-22T19:28:08"),
            )
        })
}

/// `tax_lines` as (rate id, rate), from each line's `rate_id` and `rate_percent`.
fn tax_rates(o: &Obj<'_>) -> Result<Vec<(String, Rate)>, AdapterError> {
    let mut rates = Vec::new();
    for n in o.list("tax_lines")? {
        let t = n.object()?;
        let rate = t.get("rate_percent").ok_or_else(|| {
            let reason = "missing (WooCommerce 5.7 and later send it; without it a line's VAT rate is unknown)";
            invalid(&t.child("rate_percent"), reason)
        })?;
        rates.push((t.req_as("rate_id", Node::id)?, rate.percent_text()?));
    }
    Ok(rates)
}

/// A line item, shipping line or fee line; all three carry `total`, `total_tax` and `taxes`.
fn line(n: &Node<'_>, kind: LineKind, rates: &[(String, Rate)]) -> Result<OrderLine, AdapterError> {
    let l = n.object()?;
    let total = l.req_as("total", Node::price_text)?;
    let (quantity, subtotal) = match kind {
        LineKind::Goods => (
            l.req_as("quantity", Node::quantity)?,
            l.req_as("subtotal", Node::price_text)?,
        ),
        _ => (1, total),
    };
    let unit_price =
        Money(subtotal.0.div_euclid(quantity) + i64::from(subtotal.0.rem_euclid(quantity) != 0));
    let gross = unit_price
        .checked_mul(quantity)
        .ok_or_else(|| invalid(n.path(), "amount is too large"))?;
    if total > gross {
        return Err(invalid(
            &l.child("total"),
            format!("{total} is more than the subtotal {subtotal}"),
        ));
    }
    let name_key = if kind == LineKind::Shipping {
        "method_title"
    } else {
        "name"
    };
    let line = OrderLine {
        kind,
        sku: l.opt_text("sku")?,
        name: l
            .opt_text(name_key)?
            .unwrap_or_else(|| "(unnamed)".to_owned()),
        product_group: None,
        quantity,
        unit_price,
        discount: Money(gross.0 - total.0),
        vat_rate: line_rate(&l, rates)?,
        vat_amount: Some(l.req_as("total_tax", Node::price_text)?),
    };
    check_line(n.path(), &line)?;
    Ok(line)
}

/// The sum of the rates the line's `taxes` point to (a line may carry a compound tax).
fn line_rate(l: &Obj<'_>, rates: &[(String, Rate)]) -> Result<Rate, AdapterError> {
    let mut total = 0_u32;
    for n in l.list("taxes")? {
        let t = n.object()?;
        let id = t.req_as("id", Node::id)?;
        let Some((_, rate)) = rates.iter().find(|(rate_id, _)| *rate_id == id) else {
            return Err(invalid(
                &t.child("id"),
                format!("tax rate {id} is not among the order's tax_lines"),
            ));
        };
        total = total
            .checked_add(rate.0)
            .ok_or_else(|| invalid(n.path(), "rates add up to too much"))?;
    }
    Ok(Rate(total))
}

/// The customer by `customer_id` with the billing name and e-mail; a guest (id 0) is `None`.
fn customer(o: &Obj<'_>) -> Result<Option<Customer>, AdapterError> {
    let id = o.opt("customer_id", Node::id)?;
    let Some(id) = id.filter(|id| id != "0") else {
        return Ok(None);
    };
    let billing = o.opt_object("billing")?;
    let field = |key: &str| {
        billing
            .as_ref()
            .map(|b| b.opt_text(key))
            .transpose()
            .map(Option::flatten)
    };
    let name = [field("first_name")?, field("last_name")?]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let email = field("email")?;
    let name = match (name.is_empty(), field("company")?) {
        (false, _) => name,
        (true, Some(company)) => company,
        (true, None) => email.clone().unwrap_or_else(|| id.clone()),
    };
    Ok(Some(Customer { id, name, email }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn woo_order() -> serde_json::Value {
        json!({
            "id": 727, "number": "727", "status": "processing", "currency": "NOK",
            "date_created_gmt": "2026-03-02T10:14:55", "date_modified_gmt": "2026-03-02T10:15:31",
            "prices_include_tax": true, "total": "1000.00", "customer_id": 12,
            "payment_method": "vipps",
            "billing": {"first_name": "Ola", "last_name": "Nordmann", "email": "ola@example.no"},
            "tax_lines": [{"id": 1, "rate_id": 1, "rate_percent": 25, "tax_total": "200.00"},
                          {"id": 2, "rate_id": 2, "rate_percent": 15, "tax_total": "0.00"}],
            "line_items": [{"id": 5, "name": "Kopp", "sku": "KOPP-1", "quantity": 3,
                            "subtotal": "800.00", "total": "720.00", "total_tax": "180.00",
                            "taxes": [{"id": 1, "total": "180.0", "subtotal": "200.0"}]}],
            "shipping_lines": [{"id": 6, "method_title": "Posten", "total": "80.00",
                                "total_tax": "20.00", "taxes": [{"id": 1, "total": "20.0"}]}],
            "fee_lines": [], "coupon_lines": [{"code": "ti", "discount": "80.00"}]
        })
    }

    fn parsed(body: &serde_json::Value) -> Result<Order, AdapterError> {
        match parse("order.updated", body.to_string().as_bytes())?.remove(0) {
            Event::Order(o) => Ok(o),
            other => panic!("not an order: {other:?}"),
        }
    }

    #[test]
    fn an_order_is_posted_net_with_the_shops_vat_and_an_exact_line_total() {
        let o = parsed(&woo_order()).unwrap();
        assert_eq!(
            (o.id.as_str(), o.prices_include_vat, o.total),
            ("727", false, Money(100_000))
        );
        let kopp = &o.lines[0];
        // 800.00 / 3 is not whole øre: 266.67 × 3 − 80.01 = 720.00 exactly.
        assert_eq!(
            (kopp.unit_price, kopp.discount, kopp.quantity),
            (Money(26667), Money(8001), 3)
        );
        assert_eq!(
            (kopp.vat_rate, kopp.vat_amount),
            (Rate(2500), Some(Money(18000)))
        );
        assert_eq!(
            (o.lines[1].kind, o.lines[1].unit_price),
            (LineKind::Shipping, Money(8000))
        );
        assert_eq!(o.customer.unwrap().name, "Ola Nordmann");
        assert_eq!(o.payment_method.as_deref(), Some("vipps"));
    }

    #[test]
    fn the_woocommerce_docs_sample_parses_once_its_tax_line_names_its_rate() {
        let sample: serde_json::Value = serde_json::from_slice(include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/webhooks/woocommerce-order-docs-sample.json"
        )))
        .unwrap();
        let err = parsed(&sample).unwrap_err().to_string();
        assert!(
            err.starts_with("tax_lines[0].rate_percent: missing"),
            "{err}"
        );
        let mut body = sample;
        body["tax_lines"][0]["rate_percent"] = json!(7.5);
        let o = parsed(&body).unwrap();
        assert_eq!(
            (o.currency.as_str(), o.total, o.customer),
            ("USD", Money(2935), None)
        );
        assert_eq!(
            o.registered_at,
            DateTime::parse_from_rfc3339("2017-03-22T19:28:02Z").unwrap()
        );
        let single = &o.lines[0];
        assert_eq!(
            (single.quantity, single.unit_price, single.discount),
            (2, Money(300), Money::ZERO)
        );
        assert_eq!(
            (single.vat_rate, single.vat_amount, single.sku.as_deref()),
            (Rate(750), Some(Money(45)), None)
        );
        assert_eq!(
            (o.lines[2].kind, o.lines[2].unit_price, o.lines[2].vat_rate),
            (LineKind::Shipping, Money(1000), Rate(0))
        );
    }

    #[test]
    fn an_order_without_rate_percent_is_refused() {
        let mut body = woo_order();
        body["tax_lines"][0]
            .as_object_mut()
            .unwrap()
            .remove("rate_percent");
        let err = parsed(&body).unwrap_err().to_string();
        assert!(
            err.starts_with("tax_lines[0].rate_percent: missing"),
            "{err}"
        );
        let topic = parse("product.updated", b"{}").unwrap();
        assert_eq!(
            topic,
            [Event::Ignored {
                topic: "product.updated".into()
            }]
        );
    }

    #[test]
    fn both_order_topics_give_one_content_key_and_other_topics_none() {
        let body = woo_order().to_string();
        let key = |topic: &str| read(topic, body.as_bytes()).unwrap().content_key;
        let snapshot = Some("order:727:2026-03-02T10:15:31Z".to_owned());
        assert_eq!(key("order.created"), snapshot);
        assert_eq!(key("order.updated"), snapshot);
        assert_eq!(key("order.deleted"), None);
        let mut later = woo_order();
        later["date_modified_gmt"] = json!("2026-03-02T10:16:00");
        let later = read("order.updated", later.to_string().as_bytes()).unwrap();
        assert_ne!(later.content_key, snapshot, "a later change is new content");
    }
}
