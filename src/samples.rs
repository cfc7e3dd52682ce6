//! Sample events, correctly shaped for each channel: `send-test-event` sends them, the load
//! generator and the tests use them. The native sample is DESIGN's order 1001 (two T-shirts,
//! a coffee, shipping; 726.00 NOK paid by card), dated now so it falls after any cut-off date.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::channel::Channel;

/// A sample webhook: what to sign and send.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The event id the receiver will report.
    pub event_id: String,
    /// The topic (sent in a header where the channel has one).
    pub topic: String,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// An order event for `channel`, for the order `order_id`, with `extra_lines` more goods lines
/// (to make bodies of realistic size).
#[must_use]
pub fn order(channel: Channel, order_id: &str, now: DateTime<Utc>, extra_lines: usize) -> Sample {
    match channel {
        Channel::Nettbutikk => nettbutikk_order(order_id, now, extra_lines),
        Channel::Shopify => shopify_order(order_id, now, extra_lines),
        Channel::WooCommerce => woocommerce_order(order_id, now),
        Channel::Stripe => stripe_payment(order_id, now),
    }
}

fn nettbutikk_order(order_id: &str, now: DateTime<Utc>, extra_lines: usize) -> Sample {
    let event_id = format!("evt_{}", Uuid::now_v7().simple());
    let ts = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut lines = vec![
        json!({"sku": "TS-1", "name": "T-skjorte", "quantity": 2, "unit_price": "249.00",
               "vat_rate": "25", "discount": "0.00", "product_group": "clothing"}),
        json!({"sku": "KAFFE-1", "name": "Kaffe 250 g", "quantity": 1, "unit_price": "129.00",
               "vat_rate": "15", "discount": "0.00", "product_group": "food"}),
    ];
    let total = order_total(extra_lines);
    for i in 0..extra_lines {
        lines.push(
            json!({"sku": format!("SOKK-{i}"), "name": "Sokker, ull", "quantity": 1,
                          "unit_price": "59.00", "vat_rate": "25", "discount": "0.00",
                          "product_group": "clothing"}),
        );
    }
    let body = json!({
        "type": "order.created",
        "id": event_id,
        "occurred_at": ts,
        "data": {"order": {
            "id": order_id, "number": order_id, "version": 1, "created_at": ts,
            "currency": "NOK", "prices_include_vat": true,
            "customer": {"id": "c-77", "name": "Kari Nordmann", "email": "kari@example.no"},
            "lines": lines,
            "shipping": {"name": "Posten", "price": "99.00", "vat_rate": "25"},
            "total": format!("{}.{:02}", total / 100, total % 100),
            "payment": {"status": "paid", "method": "card"}
        }}
    });
    Sample {
        event_id,
        topic: "order.created".into(),
        body: body.to_string().into_bytes(),
    }
}

/// The native `payment.captured` event paying `amount_ore` (øre, integer) for the order
/// `order_id` by card.
#[must_use]
pub fn payment(order_id: &str, amount_ore: i64, now: DateTime<Utc>) -> Sample {
    let event_id = format!("evt_pay_{order_id}");
    let body = json!({"type": "payment.captured", "id": event_id, "occurred_at": now,
        "data": {"payment": {"id": format!("pay_{order_id}"), "order_id": order_id,
            "amount": format!("{}.{:02}", amount_ore / 100, amount_ore % 100), "currency": "NOK",
            "method": "card", "fee": "2.50", "captured_at": now}}});
    Sample {
        event_id,
        topic: "payment.captured".into(),
        body: body.to_string().into_bytes(),
    }
}

/// The native `order.updated` event that replaces `original` (an `order.created` sample) with
/// version 2 of the same order.
#[must_use]
pub fn order_update(original: &Sample) -> Sample {
    let mut v: serde_json::Value = serde_json::from_slice(&original.body).unwrap_or_default();
    let event_id = format!("{}-v2", original.event_id);
    v["id"] = event_id.clone().into();
    v["type"] = "order.updated".into();
    v["data"]["order"]["version"] = 2.into();
    Sample {
        event_id,
        topic: "order.updated".into(),
        body: v.to_string().into_bytes(),
    }
}

/// The total in øre of a native sample order with `extra_lines` extra lines.
#[must_use]
pub fn order_total(extra_lines: usize) -> i64 {
    72_600 + 5_900 * i64::try_from(extra_lines).unwrap_or(0)
}

fn shopify_order(order_id: &str, now: DateTime<Utc>, extra_lines: usize) -> Sample {
    let ts = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut items = vec![
        json!({"id": 1, "sku": "TS-1", "title": "T-skjorte", "quantity": 2,
        "price": "249.00", "taxable": true, "tax_lines": [{"price": "99.60", "rate": 0.25, "title": "MVA"}]}),
    ];
    for i in 0..extra_lines {
        items.push(json!({"id": i + 2, "sku": format!("SOKK-{i}"), "title": "Sokker", "quantity": 1,
            "price": "59.00", "taxable": true, "tax_lines": [{"price": "11.80", "rate": 0.25, "title": "MVA"}]}));
    }
    let body = json!({
        "id": order_id.parse::<u64>().unwrap_or(450_789_469), "name": format!("#{order_id}"),
        "created_at": ts, "updated_at": ts, "currency": "NOK", "taxes_included": true,
        "financial_status": "pending", "total_price": "498.00", "line_items": items,
        "shipping_lines": [], "tax_lines": [{"price": "99.60", "rate": 0.25, "title": "MVA"}]
    });
    Sample {
        event_id: Uuid::new_v4().to_string(),
        topic: "orders/create".into(),
        body: body.to_string().into_bytes(),
    }
}

fn woocommerce_order(order_id: &str, now: DateTime<Utc>) -> Sample {
    let body = json!({
        "id": order_id.parse::<u64>().unwrap_or(727), "status": "processing", "currency": "NOK",
        "date_created_gmt": now.format("%Y-%m-%dT%H:%M:%S").to_string(),
        "prices_include_tax": true, "total": "498.00",
        "line_items": [{"id": 1, "sku": "TS-1", "name": "T-skjorte", "quantity": 2, "total": "398.40", "total_tax": "99.60"}]
    });
    // The receiver derives WooCommerce event ids from the body; this one is a placeholder.
    Sample {
        event_id: String::new(),
        topic: "order.created".into(),
        body: body.to_string().into_bytes(),
    }
}

fn stripe_payment(order_id: &str, now: DateTime<Utc>) -> Sample {
    let event_id = format!("evt_{}", Uuid::now_v7().simple());
    let body = json!({
        "id": event_id, "object": "event", "type": "payment_intent.succeeded",
        "created": now.timestamp(),
        "data": {"object": {"id": format!("pi_{}", Uuid::new_v4().simple()), "object": "payment_intent",
                 "amount": 72_600, "currency": "nok", "metadata": {"order_id": order_id}}}
    });
    Sample {
        event_id,
        topic: "payment_intent.succeeded".into(),
        body: body.to_string().into_bytes(),
    }
}
