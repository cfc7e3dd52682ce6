//! Shopify refunds: which reading of the subtotals is taken, shipping from either place,
//! presentment-currency transactions, and refunds that must be posted by hand.

use serde_json::json;

use super::super::parse;
use super::super::tests::{at, edited, refused};
use crate::posting::event::{Event, Refund, RefundLine};
use crate::posting::money::Money;

const REFUND: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/shopify/refund-nok.json"
));

fn refund(body: &[u8]) -> Refund {
    match parse("refunds/create", body).unwrap().as_slice() {
        [Event::Refund(r)] => r.clone(),
        other => panic!("not one refund: {other:?}"),
    }
}

#[test]
fn a_refund_in_a_tax_inclusive_shop_credits_the_subtotal() {
    let expected = Refund {
        id: "9007199254742001".into(),
        order_id: "9007199254740993".into(),
        lines: vec![RefundLine {
            sku: "KAFFE-1".into(),
            quantity: 1,
            amount: Money(12900),
        }],
        shipping: None,
        amount: Money(12900),
        currency: "NOK".into(),
        created_at: at("2026-03-09T12:00:00Z"),
    };
    assert_eq!(refund(REFUND), expected);
}

#[test]
fn a_refund_in_a_tax_exclusive_shop_adds_the_tax() {
    let body = edited(REFUND, |r| r["transactions"][0]["amount"] = json!("145.83"));
    let r = refund(&body);
    assert_eq!((r.lines[0].amount, r.amount), (Money(14583), Money(14583)));
}

#[test]
fn refunded_shipping_comes_from_shipping_lines_or_order_adjustments() {
    let shipping_lines = edited(REFUND, |r| {
        r["refund_shipping_lines"] = json!([{"id": 1, "subtotal_amount_set": {
            "shop_money": {"amount": "99.00", "currency_code": "NOK"},
            "presentment_money": {"amount": "99.00", "currency_code": "NOK"}}}]);
        r["transactions"][0]["amount"] = json!("228.00");
    });
    let r = refund(&shipping_lines);
    assert_eq!((r.shipping, r.amount), (Some(Money(9900)), Money(22800)));
    let adjustments = edited(REFUND, |r| {
        r["order_adjustments"] = json!([{"id": 2, "kind": "shipping_refund", "amount": "-79.20",
            "tax_amount": "-19.80", "reason": "Shipping refund"}]);
        r["transactions"][0]["amount"] = json!("244.83");
    });
    let r = refund(&adjustments);
    assert_eq!(
        (r.lines[0].amount, r.shipping, r.amount),
        (Money(14583), Some(Money(9900)), Money(24483))
    );
}

#[test]
fn a_refund_paid_in_presentment_currency_is_checked_there_and_posted_in_shop_money() {
    let body = edited(REFUND, |r| {
        let item = &mut r["refund_line_items"][0];
        item["subtotal_set"]["presentment_money"] =
            json!({"amount": "11.20", "currency_code": "EUR"});
        item["total_tax_set"]["presentment_money"] =
            json!({"amount": "1.46", "currency_code": "EUR"});
        r["transactions"][0]["amount"] = json!("11.20");
        r["transactions"][0]["currency"] = json!("EUR");
    });
    let r = refund(&body);
    assert_eq!((r.currency.as_str(), r.amount), ("NOK", Money(12900)));
}

#[test]
fn a_refund_that_does_not_add_up_is_refused() {
    let err = refused("refunds/create", REFUND, |r| {
        r["transactions"][0]["amount"] = json!("100.00")
    });
    assert!(err.starts_with("transactions: the refund transactions total 100.00, but the refunded lines and shipping come to 129.00 (prices with tax) or 145.83 (tax added)"), "{err}");
    let err = refused("refunds/create", REFUND, |r| {
        r["refund_line_items"][0]["quantity"] = json!(0)
    });
    assert_eq!(
        err,
        "refund_line_items[0].quantity: must be at least 1, got 0"
    );
    let failed = refused("refunds/create", REFUND, |r| {
        r["transactions"][0]["status"] = json!("failure")
    });
    assert!(failed.contains("transactions total 0.00"), "{failed}");
}

#[test]
fn an_empty_refund_is_ignored() {
    let body = json!({"id": 1, "order_id": 2, "created_at": "2026-03-09T13:00:00+01:00",
                      "refund_line_items": [], "transactions": []});
    let events = parse("refunds/create", body.to_string().as_bytes()).unwrap();
    assert_eq!(
        events,
        [Event::Ignored {
            topic: "refunds/create".into()
        }]
    );
}
