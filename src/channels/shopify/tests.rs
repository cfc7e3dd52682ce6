//! The Shopify fixtures in tests/fixtures/shopify/ and Shopify's own docs sample parse to the
//! exact events they stand for; bad payloads fail with the field's path.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{parse, read};
use crate::posting::event::{
    Customer, Event, LineKind, Order, OrderCancellation, OrderLine, Payment, Product,
};
use crate::posting::money::{Money, Rate};

/// A change to a sample's JSON.
type Edit = fn(&mut Value);

macro_rules! fixture {
    ($path:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $path
        ))
    };
}

const NOK_ORDER: &[u8] = fixture!("shopify/order-nok-taxes-included.json");
const EUR_ORDER: &[u8] = fixture!("shopify/order-presentment-eur.json");

pub(super) fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn order(topic: &str, body: &[u8]) -> Order {
    match parse(topic, body).unwrap().as_slice() {
        [Event::Order(order), ..] => order.clone(),
        other => panic!("not an order: {other:?}"),
    }
}

/// `fixture` with one change made by `edit`, as bytes.
pub(super) fn edited(fixture: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(fixture).unwrap();
    edit(&mut body);
    body.to_string().into_bytes()
}

pub(super) fn refused(topic: &str, fixture: &[u8], edit: impl FnOnce(&mut Value)) -> String {
    match parse(topic, &edited(fixture, edit)) {
        Ok(events) => panic!("accepted: {events:?}"),
        Err(e) => e.to_string(),
    }
}

fn line(
    kind: LineKind,
    sku: Option<&str>,
    name: &str,
    qty: i64,
    price: i64,
    rate: u32,
    vat: i64,
) -> OrderLine {
    OrderLine {
        kind,
        sku: sku.map(Into::into),
        name: name.into(),
        product_group: None,
        quantity: qty,
        unit_price: Money(price),
        discount: Money::ZERO,
        vat_rate: Rate(rate),
        vat_amount: Some(Money(vat)),
    }
}

#[test]
fn a_nok_order_with_taxes_included_keeps_ids_rates_and_vat_exact() {
    let expected = Order {
        id: "9007199254740993".into(),
        number: "1001".into(),
        version: at("2026-03-02T10:15:31Z").timestamp_millis(),
        registered_at: at("2026-03-02T10:14:55Z"),
        currency: "NOK".into(),
        exchange_rate: None,
        prices_include_vat: true,
        customer: Some(Customer {
            id: "9007199254740997".into(),
            name: "Kari Nordmann".into(),
            email: Some("kari@example.no".into()),
        }),
        lines: vec![
            line(
                LineKind::Goods,
                Some("TS-1"),
                "T-skjorte - M",
                2,
                24900,
                2500,
                9960,
            ),
            line(
                LineKind::Goods,
                Some("KAFFE-1"),
                "Kaffe 250 g",
                1,
                12900,
                1500,
                1683,
            ),
            line(
                LineKind::Shipping,
                None,
                "Posten Servicepakke",
                1,
                9900,
                2500,
                1980,
            ),
        ],
        total: Money(72600),
        payment_method: Some("shopify_payments".into()),
        cancelled: false,
    };
    assert_eq!(order("orders/create", NOK_ORDER), expected);
    assert_eq!(order("orders/updated", NOK_ORDER), expected);
}

#[test]
fn orders_paid_yields_the_snapshot_and_a_payment_of_its_total() {
    let events = parse("orders/paid", NOK_ORDER).unwrap();
    assert_eq!(events.len(), 2);
    assert!(matches!(&events[0], Event::Order(o) if o.id == "9007199254740993"));
    let payment = Payment {
        id: "order-9007199254740993-paid".into(),
        order_id: "9007199254740993".into(),
        amount: Money(72600),
        currency: "NOK".into(),
        method: Some("shopify_payments".into()),
        fee: None,
        captured_at: at("2026-03-02T10:15:31Z"),
    };
    assert_eq!(events[1], Event::Payment(payment));
    let free = edited(NOK_ORDER, |o| {
        o["total_price_set"]["shop_money"]["amount"] = json!("0.00")
    });
    assert_eq!(
        parse("orders/paid", &free).unwrap().len(),
        1,
        "a free order has no payment"
    );
}

#[test]
fn a_foreign_currency_order_is_posted_in_shop_money() {
    let o = order("orders/create", EUR_ORDER);
    assert_eq!(
        (o.currency.as_str(), o.exchange_rate, o.total),
        ("NOK", None, Money(122_810))
    );
    assert_eq!(o.customer.unwrap().name, "Anna Schmidt");
    let ull = &o.lines[0];
    assert_eq!(
        (ull.name.as_str(), ull.unit_price, ull.discount),
        ("Ullgenser", Money(119_900), Money(11990))
    );
    assert_eq!(
        (ull.vat_rate, ull.vat_amount),
        (Rate(2500), Some(Money(21582)))
    );
    assert_eq!(
        (o.lines[1].unit_price, o.lines[1].vat_amount),
        (Money(14900), Some(Money(2980)))
    );
    // The shop-money bag wins over the plain field whenever both are there.
    let skewed = edited(EUR_ORDER, |o| o["line_items"][0]["price"] = json!("104.00"));
    assert_eq!(
        order("orders/create", &skewed).lines[0].unit_price,
        Money(119_900)
    );
    // Without bags, the plain fields (shop money by Shopify's definition) are read.
    let plain = edited(EUR_ORDER, |o| {
        o["line_items"][0]
            .as_object_mut()
            .unwrap()
            .remove("price_set");
    });
    assert_eq!(
        order("orders/create", &plain).lines[0].unit_price,
        Money(119_900)
    );
    let wrong = refused("orders/create", EUR_ORDER, |o| {
        o["total_price_set"]["shop_money"]["currency_code"] = json!("EUR");
    });
    assert_eq!(
        wrong,
        "total_price_set.shop_money.currency_code: is EUR, expected NOK (shop_money)"
    );
}

#[test]
fn shopifys_docs_sample_uses_the_order_level_rate_for_lines_without_tax_lines() {
    let o = order(
        "orders/create",
        fixture!("webhooks/shopify-order-docs-sample.json"),
    );
    assert_eq!(
        (o.id.as_str(), o.number.as_str(), o.currency.as_str()),
        ("450789469", "1001", "USD")
    );
    assert!(!o.prices_include_vat);
    assert_eq!(o.total, Money(40994));
    assert_eq!(o.payment_method.as_deref(), Some("authorize_net"));
    let ipods: Vec<_> = o
        .lines
        .iter()
        .filter(|l| l.kind == LineKind::Goods)
        .collect();
    assert_eq!(ipods.len(), 3);
    for l in ipods {
        assert_eq!(
            (l.unit_price, l.vat_rate, l.vat_amount, l.quantity),
            (Money(19900), Rate(600), None, 1)
        );
    }
    let shipping = &o.lines[3];
    assert_eq!(
        (shipping.kind, shipping.unit_price, shipping.vat_rate),
        (LineKind::Shipping, Money(0), Rate(0))
    );
    let customer = o.customer.unwrap();
    assert_eq!(
        (customer.id.as_str(), customer.name.as_str()),
        ("207119551", "Bob Norman")
    );
}

#[test]
fn ids_beyond_2_pow_53_and_64_bits_stay_exact() {
    let body = edited(NOK_ORDER, |o| {
        o["customer"]["id"] = json!(18_446_744_073_709_551_615_u64)
    });
    assert_eq!(
        order("orders/create", &body).customer.unwrap().id,
        "18446744073709551615"
    );
    let body = String::from_utf8(NOK_ORDER.to_vec()).unwrap().replace(
        "\"id\": 9007199254740993,",
        "\"id\": 123456789012345678901234567890,",
    );
    assert_eq!(
        order("orders/create", body.as_bytes()).id,
        "123456789012345678901234567890"
    );
}

#[test]
fn a_line_without_a_sku_is_keyed_by_its_line_id() {
    let body = edited(NOK_ORDER, |o| o["line_items"][1]["sku"] = json!(""));
    assert_eq!(
        order("orders/create", &body).lines[1].sku.as_deref(),
        Some("line:9007199254741003")
    );
}

#[test]
fn a_cancelled_order_gives_its_cancellation_and_a_cancelled_snapshot() {
    let body = edited(NOK_ORDER, |o| {
        o["cancelled_at"] = json!("2026-03-03T09:00:00+01:00")
    });
    let expected = OrderCancellation {
        order_id: "9007199254740993".into(),
        version: Some(at("2026-03-02T10:15:31Z").timestamp_millis()),
        cancelled_at: at("2026-03-03T08:00:00Z"),
    };
    assert_eq!(
        parse("orders/cancelled", &body).unwrap(),
        [Event::OrderCancelled(expected)]
    );
    assert!(order("orders/updated", &body).cancelled);
}

#[test]
fn topics_we_do_not_post_are_ignored() {
    let events = parse("orders/fulfilled", NOK_ORDER).unwrap();
    assert_eq!(
        events,
        [Event::Ignored {
            topic: "orders/fulfilled".into()
        }]
    );
}

#[test]
fn bad_orders_are_refused_with_the_fields_path() {
    let cases: [(&str, Edit); 9] = [
        ("line_items[1].quantity: must be at least 1, got 0", |o| {
            o["line_items"][1]["quantity"] = json!(0)
        }),
        (
            "line_items[0].price_set.shop_money.amount: `249.001` has more than 2 decimals",
            |o| o["line_items"][0]["price_set"]["shop_money"]["amount"] = json!("249.001"),
        ),
        (
            "line_items[0].tax_lines[0].rate: `0.123456` has more than 4 decimals",
            |o| o["line_items"][0]["tax_lines"][0]["rate"] = json!(0.123456),
        ),
        (
            "line_items[0].tax_lines[0].rate: rate 25 is above 1 (expected a fraction such as 0.25)",
            |o| o["line_items"][0]["tax_lines"][0]["rate"] = json!(25),
        ),
        (
            "line_items[0]: sells a gift card, which is a liability rather than a sale; post it by hand",
            |o| o["line_items"][0]["gift_card"] = json!(true),
        ),
        (
            "line_items[0].tax_lines: the line has no tax lines and the order's tax_lines hold several rates (25 %, 15 %); cannot tell which is this line's",
            |o| o["line_items"][0]["tax_lines"] = json!([]),
        ),
        (
            "total_discounts: 50.00 is not what the lines' discount_allocations add up to (0.00 on items, 0.00 with shipping)",
            |o| o["total_discounts_set"]["shop_money"]["amount"] = json!("50.00"),
        ),
        ("total_price: missing", |o| {
            o.as_object_mut().unwrap().remove("total_price");
            o.as_object_mut().unwrap().remove("total_price_set");
        }),
        ("id: must be a string or a whole-number id", |o| {
            o["id"] = json!(1.5)
        }),
    ];
    for (expected, edit) in cases {
        assert_eq!(refused("orders/create", NOK_ORDER, edit), expected);
    }
}

#[test]
fn a_product_gives_one_event_per_variant_with_a_sku() {
    let events = parse("products/update", fixture!("shopify/product.json")).unwrap();
    let product = |sku: &str, name: &str, price| {
        Event::Product(Product {
            sku: sku.into(),
            name: name.into(),
            price: Some(Money(price)),
            vat_rate: None,
            product_group: Some("Klær".into()),
        })
    };
    assert_eq!(
        events,
        [
            product("TS-1", "T-skjorte - M", 24900),
            product("TS-1-L", "T-skjorte - L", 25900)
        ]
    );
    let no_skus = edited(fixture!("shopify/product.json"), |p| {
        p["variants"] = json!([])
    });
    assert_eq!(
        parse("products/create", &no_skus).unwrap(),
        [Event::Ignored {
            topic: "products/create".into()
        }]
    );
}

#[test]
fn orders_cancelled_for_an_order_whose_cancelled_at_is_null_is_refused() {
    let reason = refused("orders/cancelled", NOK_ORDER, |_| {});
    assert_eq!(
        reason,
        "cancelled_at: is null: the order is not cancelled, so the topic orders/cancelled \
         disagrees with the body and nothing is cancelled"
    );
    let reason = refused("orders/cancelled", NOK_ORDER, |o| {
        o.as_object_mut().unwrap().remove("cancelled_at");
    });
    assert!(reason.starts_with("cancelled_at: is null"), "{reason}");
}

#[test]
fn orders_paid_for_an_order_the_body_does_not_call_paid_is_refused() {
    for status in ["pending", "authorized", "partially_paid", "voided"] {
        let reason = refused("orders/paid", NOK_ORDER, |o| {
            o["financial_status"] = json!(status)
        });
        assert_eq!(
            reason,
            format!(
                "financial_status: is `{status}`, not `paid`: the body does not say the order \
                 was paid, so the topic orders/paid disagrees with it and no payment is posted"
            )
        );
    }
    let reason = refused("orders/paid", NOK_ORDER, |o| {
        o.as_object_mut().unwrap().remove("financial_status");
    });
    assert_eq!(reason, "financial_status: missing");
    let reason = refused("orders/paid", NOK_ORDER, |o| {
        o["total_outstanding"] = json!("126.00")
    });
    assert!(
        reason.starts_with("total_outstanding: 126.00 is still owed"),
        "{reason}"
    );
    let settled = edited(NOK_ORDER, |o| o["total_outstanding"] = json!("0.00"));
    assert_eq!(parse("orders/paid", &settled).unwrap().len(), 2);
    // The snapshot alone does not depend on the financial status.
    let pending = edited(NOK_ORDER, |o| o["financial_status"] = json!("pending"));
    assert!(!order("orders/create", &pending).cancelled);
}

#[test]
fn the_content_key_is_what_the_body_says_happened_to_which_order_as_of_when() {
    let key = |topic: &str, body: &[u8]| read(topic, body).unwrap().content_key;
    let snapshot = Some("order:9007199254740993:2026-03-02T10:15:31Z".to_owned());
    assert_eq!(key("orders/create", NOK_ORDER), snapshot);
    assert_eq!(key("orders/updated", NOK_ORDER), snapshot, "one snapshot");
    assert_eq!(
        key("orders/paid", NOK_ORDER).as_deref(),
        Some("paid:9007199254740993:2026-03-02T10:15:31Z")
    );
    // One instant written with another offset is the same content.
    let utc = edited(NOK_ORDER, |o| {
        o["updated_at"] = json!("2026-03-02T10:15:31Z")
    });
    assert_eq!(key("orders/create", &utc), snapshot);
    let later = edited(NOK_ORDER, |o| {
        o["updated_at"] = json!("2026-03-02T11:15:32+01:00")
    });
    assert_ne!(key("orders/updated", &later), snapshot, "a later change");
    assert_eq!(
        key("refunds/create", fixture!("shopify/refund-nok.json")).as_deref(),
        Some("refund:9007199254742001:2026-03-09T12:00:00Z")
    );
    assert_eq!(key("orders/fulfilled", NOK_ORDER), None, "posts nothing");
}
