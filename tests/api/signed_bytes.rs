//! Signed bytes decide the books: Shopify's and WooCommerce's topic and delivery id are headers
//! the signature does not cover, so a captured body sent again under another topic or a fresh
//! id must post nothing the body does not say.

use chrono::{NaiveDate, Utc};
use reqwest::StatusCode;
use shopbridge::channel::Channel;
use shopbridge::connections::Added;
use shopbridge::signature;
use uuid::Uuid;

use crate::helpers::{Options, TestApp, eventually};

/// A Shopify order as Shopify signs it: paid, not cancelled, `updated_at` 2026-03-02.
const SHOPIFY_ORDER: &[u8] = include_bytes!("../fixtures/shopify/order-nok-taxes-included.json");
/// Its id, as the voucher keys spell it.
const ORDER_ID: &str = "9007199254740993";

fn jan_first() -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2026, 1, 1)
}

/// `body` with one change, as the shop would have signed it.
fn edited(body: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(body).unwrap();
    edit(&mut v);
    v.to_string().into_bytes()
}

/// Posts `body` correctly signed for the connection's channel, with the unsigned headers given
/// (topic, event id and `extra`) as an attacker who captured the body may choose them. Returns
/// the event id the receiver answered with.
async fn resend(
    app: &TestApp,
    conn: &Added,
    event_id: &str,
    topic: &str,
    body: &[u8],
    extra: &[(&'static str, &str)],
) -> String {
    let channel: Channel = conn.connection.channel.parse().expect("a known channel");
    let mut headers = signature::sign(channel, &conn.secret, event_id, topic, Utc::now(), body);
    for (name, value) in extra {
        headers.insert(*name, value.parse().unwrap());
    }
    let resp = app
        .client
        .post(app.webhook_url(conn.connection.id))
        .headers(headers)
        .body(body.to_vec())
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), StatusCode::ACCEPTED, "{topic} {event_id}");
    let answer: serde_json::Value = resp.json().await.unwrap();
    answer["event_id"].as_str().expect("event_id").to_owned()
}

/// The idempotency keys of the connection's vouchers, sorted.
async fn voucher_keys(app: &TestApp, connection: Uuid) -> Vec<String> {
    sqlx::query_scalar(
        "select idempotency_key from vouchers where connection_id = $1 order by idempotency_key",
    )
    .bind(connection)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

async fn dead_lettered(app: &TestApp, n: u32) {
    eventually(
        &format!("{n} event(s) on the dead-letter queue"),
        || async { app.queue_depth(&app.names.dead_queue).await == n },
    )
    .await;
}

#[tokio::test]
async fn a_shopify_order_resent_as_orders_cancelled_under_a_fresh_id_cancels_nothing() {
    let app = TestApp::spawn().await;
    let conn = app.add_connection_from(Channel::Shopify, jan_first()).await;
    resend(
        &app,
        &conn,
        "wh-create",
        "orders/create",
        SHOPIFY_ORDER,
        &[],
    )
    .await;
    assert_eq!(app.wait_for_event("wh-create").await.0, "processed");

    // The captured body says `"cancelled_at": null`; only the unsigned topic says otherwise.
    resend(
        &app,
        &conn,
        "wh-forged",
        "orders/cancelled",
        SHOPIFY_ORDER,
        &[],
    )
    .await;
    let (status, reason) = app.wait_for_event("wh-forged").await;
    assert_eq!(status, "failed", "{reason:?}");
    let reason = reason.unwrap();
    assert!(
        reason.starts_with("invalid payload: cancelled_at: is null: the order is not cancelled"),
        "{reason}"
    );
    dead_lettered(&app, 1).await;
    assert_eq!(
        voucher_keys(&app, conn.connection.id).await,
        [format!("invoice:{ORDER_ID}:1")],
        "no credit note"
    );
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_shopify_order_resent_as_orders_paid_posts_no_payment_its_body_does_not_carry() {
    let app = TestApp::spawn().await;
    let conn = app.add_connection_from(Channel::Shopify, jan_first()).await;
    // An order placed with a payment still to come (a bank transfer, say).
    let unpaid = edited(SHOPIFY_ORDER, |o| o["financial_status"] = "pending".into());
    resend(&app, &conn, "wh-create", "orders/create", &unpaid, &[]).await;
    assert_eq!(app.wait_for_event("wh-create").await.0, "processed");

    resend(&app, &conn, "wh-forged", "orders/paid", &unpaid, &[]).await;
    let (status, reason) = app.wait_for_event("wh-forged").await;
    assert_eq!(status, "failed", "{reason:?}");
    let reason = reason.unwrap();
    assert!(
        reason.starts_with("invalid payload: financial_status: is `pending`, not `paid`"),
        "{reason}"
    );
    dead_lettered(&app, 1).await;
    assert_eq!(
        voucher_keys(&app, conn.connection.id).await,
        [format!("invoice:{ORDER_ID}:1")],
        "no payment"
    );
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_shopify_body_resent_under_a_fresh_webhook_id_is_a_duplicate_and_posts_nothing() {
    let app = TestApp::spawn().await;
    let conn = app.add_connection_from(Channel::Shopify, jan_first()).await;
    resend(&app, &conn, "wh-paid", "orders/paid", SHOPIFY_ORDER, &[]).await;
    assert_eq!(app.wait_for_event("wh-paid").await.0, "processed");
    let posted = voucher_keys(&app, conn.connection.id).await;
    assert_eq!(
        posted,
        [
            format!("invoice:{ORDER_ID}:1"),
            format!("payment:order-{ORDER_ID}-paid")
        ]
    );
    // Shopify's own orders/create of the same order: its snapshot came with orders/paid.
    resend(
        &app,
        &conn,
        "wh-create",
        "orders/create",
        SHOPIFY_ORDER,
        &[],
    )
    .await;
    assert_eq!(app.wait_for_event("wh-create").await.0, "skipped");

    // The same bodies again under fresh ids, and the snapshot under its other topic.
    let replays = [
        ("wh-paid-again", "orders/paid", "wh-paid"),
        ("wh-create-again", "orders/create", "wh-create"),
        ("wh-updated", "orders/updated", "wh-create"),
    ];
    for (id, topic, original) in replays {
        resend(&app, &conn, id, topic, SHOPIFY_ORDER, &[]).await;
        let (status, reason) = app.wait_for_event(id).await;
        assert_eq!(status, "duplicate", "{id}: {reason:?}");
        let reason = reason.unwrap();
        assert!(
            reason.contains(&format!("as event {original},")),
            "{id}: {reason}"
        );
    }
    assert_eq!(voucher_keys(&app, conn.connection.id).await, posted);
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn two_copies_of_one_shopify_body_under_fresh_ids_taken_together_post_once() {
    // Queued before any worker runs, so one worker takes both at once (one batch, or two
    // batches that meet on the content key).
    let app = TestApp::spawn_with(Options::receiver()).await;
    let conn = app.add_connection_from(Channel::Shopify, jan_first()).await;
    for id in ["wh-b", "wh-a"] {
        resend(&app, &conn, id, "orders/paid", SHOPIFY_ORDER, &[]).await;
    }
    let _worker = app.spawn_extra_worker();
    let (a, b) = (
        app.wait_for_event("wh-a").await,
        app.wait_for_event("wh-b").await,
    );
    let (kept, repeat) = match (a.0.as_str(), b.0.as_str()) {
        ("processed", "duplicate") => ("wh-a", b.1),
        ("duplicate", "processed") => ("wh-b", a.1),
        _ => panic!("one is posted and the other a duplicate of it: {a:?}, {b:?}"),
    };
    let repeat = repeat.unwrap();
    assert!(repeat.contains(&format!("as event {kept},")), "{repeat}");
    assert_eq!(
        voucher_keys(&app, conn.connection.id).await,
        [
            format!("invoice:{ORDER_ID}:1"),
            format!("payment:order-{ORDER_ID}-paid")
        ]
    );
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

/// A WooCommerce order as WooCommerce 5.7+ signs it (its tax line names its rate).
fn woo_order() -> Vec<u8> {
    serde_json::json!({
        "id": 727, "number": "727", "status": "processing", "currency": "NOK",
        "date_created_gmt": "2026-03-02T10:14:55", "date_modified_gmt": "2026-03-02T10:15:31",
        "prices_include_tax": true, "total": "1000.00", "customer_id": 12,
        "payment_method": "vipps",
        "billing": {"first_name": "Ola", "last_name": "Nordmann", "email": "ola@example.no"},
        "tax_lines": [{"id": 1, "rate_id": 1, "rate_percent": 25, "tax_total": "200.00"}],
        "line_items": [{"id": 5, "name": "Kopp", "sku": "KOPP-1", "quantity": 4,
                        "subtotal": "720.00", "total": "720.00", "total_tax": "180.00",
                        "taxes": [{"id": 1, "total": "180.0", "subtotal": "180.0"}]}],
        "shipping_lines": [{"id": 6, "method_title": "Posten", "total": "80.00",
                            "total_tax": "20.00", "taxes": [{"id": 1, "total": "20.0"}]}],
        "fee_lines": []
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn a_woocommerce_order_resent_under_another_topic_or_delivery_id_is_a_duplicate() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::WooCommerce, jan_first())
        .await;
    let body = woo_order();
    let delivery = |n: &'static str| [("x-wc-webhook-delivery-id", n)];
    let first = resend(&app, &conn, "", "order.created", &body, &delivery("1")).await;
    assert_eq!(app.wait_for_event(&first).await.0, "processed");
    let posted = voucher_keys(&app, conn.connection.id).await;
    assert_eq!(posted, ["invoice:727:1"]);

    // A fresh delivery id is no new event: the id is derived from the signed body.
    let again = resend(&app, &conn, "", "order.created", &body, &delivery("2")).await;
    assert_eq!(again, first);
    eventually(
        "the second delivery is counted on the first event",
        || async {
            let n: i32 =
                sqlx::query_scalar("select deliveries from events where source_event_id = $1")
                    .bind(&first)
                    .fetch_one(&app.db)
                    .await
                    .unwrap();
            n == 2
        },
    )
    .await;

    // Another topic gives another derived id, but the same content.
    let updated = resend(&app, &conn, "", "order.updated", &body, &delivery("3")).await;
    assert_ne!(updated, first);
    let (status, reason) = app.wait_for_event(&updated).await;
    assert_eq!(status, "duplicate", "{reason:?}");
    let reason = reason.unwrap();
    assert!(reason.contains(&format!("as event {first},")), "{reason}");
    assert_eq!(voucher_keys(&app, conn.connection.id).await, posted);
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}
