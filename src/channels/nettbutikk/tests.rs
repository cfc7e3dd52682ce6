//! Every native sample in tests/fixtures/events/ parses to the events it stands for, and every
//! kind of bad input is refused with a message that names the field.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::parse;
use crate::channels::AdapterError;
use crate::posting::event::{
    Customer, Event, LineKind, Order, OrderCancellation, OrderLine, Payment, Product, Refund,
    RefundLine,
};
use crate::posting::money::{Money, Rate};

/// A change to a sample's JSON.
type Edit = fn(&mut Value);

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/events/",
            $name
        ))
    };
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn one(body: &[u8]) -> Event {
    let mut events = parse(body).unwrap();
    assert_eq!(events.len(), 1);
    events.remove(0)
}

fn goods(sku: &str, name: &str, quantity: i64, unit_price: i64, rate: u32) -> OrderLine {
    OrderLine {
        kind: LineKind::Goods,
        sku: Some(sku.into()),
        name: name.into(),
        product_group: None,
        quantity,
        unit_price: Money(unit_price),
        discount: Money::ZERO,
        vat_rate: Rate(rate),
        vat_amount: None,
    }
}

#[test]
fn the_worked_example_order_1001_parses_exactly() {
    let Event::Order(order) = one(fixture!("order-created-1001.json")) else {
        panic!("not an order")
    };
    let tshirt = OrderLine {
        product_group: Some("clothing".into()),
        ..goods("TS-1", "T-skjorte", 2, 24900, 2500)
    };
    let coffee = OrderLine {
        product_group: Some("food".into()),
        ..goods("KAFFE-1", "Kaffe 250 g", 1, 12900, 1500)
    };
    let shipping = OrderLine {
        kind: LineKind::Shipping,
        sku: None,
        ..goods("", "Posten", 1, 9900, 2500)
    };
    let expected = Order {
        id: "1001".into(),
        number: "1001".into(),
        version: 1,
        registered_at: at("2026-03-02T10:14:55Z"),
        currency: "NOK".into(),
        exchange_rate: None,
        prices_include_vat: true,
        customer: Some(Customer {
            id: "c-77".into(),
            name: "Kari Nordmann".into(),
            email: Some("kari@example.no".into()),
        }),
        lines: vec![tshirt, coffee, shipping],
        total: Money(72600),
        payment_method: Some("card".into()),
        cancelled: false,
    };
    assert_eq!(order, expected);
}

#[test]
fn an_update_keeps_fees_discounts_and_the_shops_own_vat() {
    let Event::Order(order) = one(fixture!("order-updated-1002.json")) else {
        panic!("not an order")
    };
    assert_eq!(
        (order.version, order.prices_include_vat, order.total),
        (2, false, Money(151_000))
    );
    assert_eq!(order.payment_method.as_deref(), Some("invoice"));
    let kinds: Vec<_> = order.lines.iter().map(|l| l.kind).collect();
    assert_eq!(kinds, [LineKind::Goods, LineKind::Fee, LineKind::Shipping]);
    assert_eq!(order.lines[0].discount, Money(12000));
    let vat: Vec<_> = order.lines.iter().map(|l| l.vat_amount).collect();
    assert_eq!(
        vat,
        [Some(Money(27000)), Some(Money(1225)), Some(Money(1975))]
    );
    assert_eq!(order.lines[1].sku, None);
}

#[test]
fn cancellation_payment_refund_and_products_parse() {
    assert_eq!(
        one(fixture!("order-cancelled-1002.json")),
        Event::OrderCancelled(OrderCancellation {
            order_id: "1002".into(),
            version: Some(3),
            cancelled_at: at("2026-03-04T14:00:00Z"),
        })
    );
    assert_eq!(
        one(fixture!("payment-captured-1001.json")),
        Event::Payment(Payment {
            id: "pay_7Hk2Lm9Qr4".into(),
            order_id: "1001".into(),
            amount: Money(72600),
            currency: "NOK".into(),
            method: Some("card".into()),
            fee: Some(Money(1089)),
            captured_at: at("2026-03-02T10:15:30Z"),
        })
    );
    assert_eq!(
        one(fixture!("refund-created-1001.json")),
        Event::Refund(Refund {
            id: "rf_1001_1".into(),
            order_id: "1001".into(),
            lines: vec![RefundLine {
                sku: "KAFFE-1".into(),
                quantity: 1,
                amount: Money(12900)
            }],
            shipping: None,
            amount: Money(12900),
            currency: "NOK".into(),
            created_at: at("2026-03-09T12:00:00Z"),
        })
    );
    assert_eq!(
        one(fixture!("product-created-ts-1.json")),
        Event::Product(Product {
            sku: "TS-1".into(),
            name: "T-skjorte".into(),
            price: Some(Money(24900)),
            vat_rate: Some(Rate(2500)),
            product_group: Some("clothing".into()),
        })
    );
    let Event::Product(p) = one(fixture!("product-updated-kaffe-1.json")) else {
        panic!()
    };
    assert_eq!(
        (p.price, p.vat_rate),
        (Some(Money(13900)), Some(Rate(1500)))
    );
}

#[test]
fn an_unknown_type_is_ignored_not_refused() {
    let body = json!({"type": "customer.created", "id": "evt_1", "data": {"whatever": 1}});
    assert_eq!(
        one(body.to_string().as_bytes()),
        Event::Ignored {
            topic: "customer.created".into()
        }
    );
}

#[test]
fn a_cancellation_without_cancelled_at_is_dated_by_occurred_at() {
    let body = json!({"type": "order.cancelled", "occurred_at": "2026-03-04T15:00:00+01:00",
                      "data": {"order": {"id": 1002}}});
    let Event::OrderCancelled(c) = one(body.to_string().as_bytes()) else {
        panic!()
    };
    assert_eq!(
        (c.order_id.as_str(), c.version, c.cancelled_at),
        ("1002", None, at("2026-03-04T14:00:00Z"))
    );
}

#[test]
fn refunded_shipping_may_be_a_string_or_an_object_and_currency_defaults_to_nok() {
    for shipping in [json!("99.00"), json!({"amount": "99.00"})] {
        let body = json!({"type": "refund.created", "data": {"refund": {
            "id": "rf-2", "order_id": "1001", "lines": [], "shipping": shipping,
            "amount": "99.00", "created_at": "2026-03-09T12:00:00Z"}}});
        let Event::Refund(r) = one(body.to_string().as_bytes()) else {
            panic!()
        };
        assert_eq!(
            (r.shipping, r.amount, r.currency.as_str()),
            (Some(Money(9900)), Money(9900), "NOK")
        );
    }
}

/// The 1001 sample with one change made by `edit`; returns the error's message.
fn refused(fixture: &[u8], edit: impl FnOnce(&mut Value)) -> String {
    let mut body: Value = serde_json::from_slice(fixture).unwrap();
    edit(&mut body);
    match parse(body.to_string().as_bytes()) {
        Ok(events) => panic!("accepted: {events:?}"),
        Err(e) => e.to_string(),
    }
}

fn order_refused(edit: impl FnOnce(&mut Value)) -> String {
    refused(fixture!("order-created-1001.json"), |b| {
        edit(&mut b["data"]["order"])
    })
}

#[test]
fn bad_lines_are_refused_with_the_fields_path() {
    let cases: [(&str, Edit); 9] = [
        (
            "data.order.lines[1].quantity: must be at least 1, got 0",
            |o| o["lines"][1]["quantity"] = json!(0),
        ),
        (
            "data.order.lines[0].quantity: must be at least 1, got -2",
            |o| o["lines"][0]["quantity"] = json!(-2),
        ),
        (
            "data.order.lines[0].quantity: must be a whole number",
            |o| o["lines"][0]["quantity"] = json!(2.5),
        ),
        (
            "data.order.lines[0].unit_price: `249.001` has more than 2 decimals",
            |o| o["lines"][0]["unit_price"] = json!("249.001"),
        ),
        (
            "data.order.lines[0].unit_price: must be a decimal string such as \"249.00\"",
            |o| o["lines"][0]["unit_price"] = json!(249),
        ),
        (
            "data.order.lines[0].unit_price: must not be negative, got -249.00",
            |o| o["lines"][0]["unit_price"] = json!("-249.00"),
        ),
        (
            "data.order.lines[0].vat_rate: `25%` is not a decimal number",
            |o| o["lines"][0]["vat_rate"] = json!("25%"),
        ),
        (
            "data.order.lines[0].kind: `bundle` is not supported (goods, shipping or fee)",
            |o| o["lines"][0]["kind"] = json!("bundle"),
        ),
        (
            "data.order.lines[0]: discount 500.00 is more than the line's 498.00 (2 × 249.00)",
            |o| o["lines"][0]["discount"] = json!("500.00"),
        ),
    ];
    for (expected, edit) in cases {
        assert_eq!(order_refused(edit), expected);
    }
}

#[test]
fn bad_order_fields_are_refused_with_the_fields_path() {
    let cases: [(&str, Edit); 5] = [
        ("data.order.total: missing", |o| {
            o.as_object_mut().unwrap().remove("total");
        }),
        ("data.order.shipping.vat_rate: missing", |o| {
            o["shipping"]["vat_rate"] = Value::Null
        }),
        (
            "data.order.currency: `kr` is not an ISO 4217 currency code",
            |o| o["currency"] = json!("kr"),
        ),
        ("data.order.lines: must hold at least one line", |o| {
            o["lines"] = json!([])
        }),
        (
            "data.order.created_at: must be an RFC 3339 timestamp such as \"2026-03-02T10:15:00Z\"",
            |o| o["created_at"] = json!("02.03.2026"),
        ),
    ];
    for (expected, edit) in cases {
        assert_eq!(order_refused(edit), expected);
    }
}

#[test]
fn bad_envelopes_payments_and_refunds_are_refused() {
    let no_type = refused(fixture!("payment-captured-1001.json"), |b| {
        b["type"] = Value::Null
    });
    assert_eq!(no_type, "type: missing");
    let no_data = refused(fixture!("payment-captured-1001.json"), |b| {
        b["data"] = json!([])
    });
    assert_eq!(no_data, "data: must be an object");
    let zero = refused(fixture!("payment-captured-1001.json"), |b| {
        b["data"]["payment"]["amount"] = json!("0.00")
    });
    assert_eq!(zero, "data.payment.amount: must be more than zero");
    let mismatch = refused(fixture!("refund-created-1001.json"), |b| {
        b["data"]["refund"]["amount"] = json!("150.00")
    });
    assert_eq!(
        mismatch,
        "data.refund.amount: 150.00 does not equal the refunded lines plus shipping (129.00)"
    );
    let no_sku = refused(fixture!("refund-created-1001.json"), |b| {
        b["data"]["refund"]["lines"][0]["sku"] = json!("")
    });
    assert_eq!(no_sku, "data.refund.lines[0].sku: must not be empty");
    let root = parse(b"[1, 2]").unwrap_err();
    assert!(matches!(root, AdapterError::WrongType { .. }), "{root}");
    assert_eq!(root.to_string(), "(body): must be an object");
}
