//! Refunds and amounts beyond what was invoiced: refused with a reason that names the line or
//! the ceiling, or posted and flagged when the money is real.

use chrono::NaiveDate;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shopbridge::channel::Channel;
use shopbridge::connections::Added;
use sqlx::PgPool;

use crate::helpers::{TestApp, eventually};

const ORDER_1001: &[u8] = include_bytes!("../fixtures/events/order-created-1001.json");
const PAYMENT_1001: &[u8] = include_bytes!("../fixtures/events/payment-captured-1001.json");
const REFUND_1001: &[u8] = include_bytes!("../fixtures/events/refund-created-1001.json");

fn jan_first() -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2026, 1, 1)
}

/// Order 1001 as 1 × Vase at `price` (25 %), no shipping.
fn vase_order(price: &str) -> Vec<u8> {
    let mut o: Value = serde_json::from_slice(ORDER_1001).unwrap();
    let order = &mut o["data"]["order"];
    order["lines"] = json!([{ "sku": "VASE", "name": "Vase", "quantity": 1, "unit_price": price,
        "vat_rate": "25", "discount": "0.00" }]);
    order["shipping"] = Value::Null;
    order["total"] = price.into();
    o.to_string().into_bytes()
}

fn refund(event_id: &str, refund_id: &str, quantity: i64, amount: &str) -> Vec<u8> {
    let mut r: Value = serde_json::from_slice(REFUND_1001).unwrap();
    r["id"] = event_id.into();
    let refund = &mut r["data"]["refund"];
    refund["id"] = refund_id.into();
    refund["lines"] = json!([{ "sku": "VASE", "quantity": quantity, "amount": amount }]);
    refund["amount"] = amount.into();
    r.to_string().into_bytes()
}

fn payment(event_id: &str, payment_id: &str, amount: &str) -> Vec<u8> {
    let mut p: Value = serde_json::from_slice(PAYMENT_1001).unwrap();
    p["id"] = event_id.into();
    p["data"]["payment"]["id"] = payment_id.into();
    p["data"]["payment"]["amount"] = amount.into();
    p["data"]["payment"]["fee"] = Value::Null;
    p.to_string().into_bytes()
}

async fn send(app: &TestApp, conn: &Added, body: &[u8]) -> (String, Option<String>) {
    assert_eq!(
        app.post_native(conn, body).await.status(),
        StatusCode::ACCEPTED
    );
    let v: Value = serde_json::from_slice(body).unwrap();
    app.wait_for_event(v["id"].as_str().unwrap()).await
}

async fn voucher_keys(db: &PgPool) -> Vec<String> {
    sqlx::query_scalar("select idempotency_key from vouchers order by idempotency_key")
        .fetch_all(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn refunds_of_three_units_for_5000_against_a_one_unit_order_are_dead_lettered_naming_the_line()
 {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, jan_first())
        .await;
    assert_eq!(
        send(&app, &conn, &vase_order("100.00")).await.0,
        "processed"
    );

    for (event, id) in [("evt_refund_a", "rf_a"), ("evt_refund_b", "rf_b")] {
        let (status, reason) = send(&app, &conn, &refund(event, id, 3, "5000.00")).await;
        assert_eq!(status, "failed");
        assert_eq!(
            reason.as_deref(),
            Some(
                format!(
                    "refund {id} credits 3 units for 5000.00 of line 1 \"Vase\" (goods, VAT 25 %) \
                     of order 1001, but only 1 unit for 100.00 is left to refund of the 1 unit \
                     for 100.00 invoiced"
                )
                .as_str()
            )
        );
    }
    assert_eq!(voucher_keys(&app.db).await, vec!["invoice:1001:1"]);
    let dead = std::sync::Mutex::new(Vec::new());
    eventually("both refunds reach the DLQ", || async {
        let got = app.drain_queue(&app.names.dead_queue).await;
        let mut dead = dead.lock().unwrap();
        dead.extend(got);
        dead.len() >= 2
    })
    .await;

    // Refused whole, so nothing of them counts: the one unit still refunds, once.
    let (status, _) = send(&app, &conn, &refund("evt_refund_c", "rf_c", 1, "100.00")).await;
    assert_eq!(status, "processed");
    let (status, reason) = send(&app, &conn, &refund("evt_refund_d", "rf_d", 1, "0.01")).await;
    assert_eq!(status, "failed");
    assert!(reason.unwrap().contains("line 1 \"Vase\""));
    let revenue: Option<i64> = sqlx::query_scalar(
        "select sum(amount)::bigint from voucher_lines where account in (3000, 2700)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        revenue,
        Some(0),
        "no revenue or VAT reversed beyond the invoice"
    );
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn an_order_above_max_order_amount_is_dead_lettered_and_the_ceiling_is_changeable() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, jan_first())
        .await;
    let (status, reason) = send(&app, &conn, &vase_order("10000000000000000.00")).await;
    assert_eq!(status, "failed");
    assert_eq!(
        reason.as_deref(),
        Some(
            "order 1001 comes to 10000000000000000.00 NOK, above the connection's \
             max_order_amount of 1000000.00 NOK; if it is real, raise the ceiling and replay \
             the event"
        )
    );
    let settings = shopbridge::ops::books::SettingsIn {
        max_order_amount: Some("50.00".into()),
        ..Default::default()
    };
    shopbridge::ops::books::update_connection(&app.db, conn.connection.id, &settings)
        .await
        .unwrap();
    let zero = shopbridge::ops::books::SettingsIn {
        max_order_amount: Some("0".into()),
        ..Default::default()
    };
    let refused = shopbridge::ops::books::update_connection(&app.db, conn.connection.id, &zero);
    assert!(
        refused
            .await
            .unwrap_err()
            .to_string()
            .contains("max_order_amount")
    );
    // The worker's cached settings expire within seconds; until then the old ceiling holds.
    let mut n = 0;
    eventually("a 100.00 order is refused under a 50.00 ceiling", || {
        n += 1;
        let mut body: Value = serde_json::from_slice(&vase_order("100.00")).unwrap();
        body["id"] = format!("evt_small_{n}").into();
        body["data"]["order"]["id"] = format!("small-{n}").into();
        let body = body.to_string().into_bytes();
        let (app, conn) = (&app, &conn);
        async move {
            let (status, reason) = send(app, conn, &body).await;
            status == "failed" && reason.is_some_and(|r| r.contains("max_order_amount of 50.00"))
        }
    })
    .await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_payment_of_999_999_against_a_100_order_is_posted_flagged_and_counted() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, jan_first())
        .await;
    assert_eq!(
        send(&app, &conn, &vase_order("100.00")).await.0,
        "processed"
    );
    let before = app.state.metrics.overpaid_count();
    let (status, reason) = send(&app, &conn, &payment("evt_big_pay", "pay_big", "999999.00")).await;
    assert_eq!((status.as_str(), reason), ("processed", None));
    let flag: Option<String> =
        sqlx::query_scalar("select flag from events where source_event_id = 'evt_big_pay'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        flag.as_deref(),
        Some(
            "overpaid: payment pay_big took 999999.00 where 100.00 was owed; 999899.00 stands \
             to the customer's credit"
        )
    );
    assert_eq!(
        voucher_keys(&app.db).await,
        vec!["invoice:1001:1", "payment:pay_big"]
    );
    assert_eq!(app.state.metrics.overpaid_count(), before + 1);
    assert!(
        app.state
            .metrics
            .render()
            .contains("shopbridge_overpaid_payments_total 1")
    );
    let views = shopbridge::ops::views::events(&mut app.db.acquire().await.unwrap(), "evt_big_pay")
        .await
        .unwrap();
    let json = serde_json::to_value(&views).unwrap();
    assert_eq!(json[0]["flag"].as_str(), flag.as_deref());
    // A payment of what is owed is not flagged.
    let mut second = serde_json::from_slice::<Value>(&vase_order("100.00")).unwrap();
    second["id"] = "evt_order_2".into();
    second["data"]["order"]["id"] = "2002".into();
    second["data"]["order"]["number"] = "2002".into();
    assert_eq!(
        send(&app, &conn, second.to_string().as_bytes()).await.0,
        "processed"
    );
    let mut exact: Value =
        serde_json::from_slice(&payment("evt_exact", "pay_exact", "100.00")).unwrap();
    exact["data"]["payment"]["order_id"] = "2002".into();
    assert_eq!(
        send(&app, &conn, exact.to_string().as_bytes()).await.0,
        "processed"
    );
    let flag: Option<String> =
        sqlx::query_scalar("select flag from events where source_event_id = 'evt_exact'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(flag, None);
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}
