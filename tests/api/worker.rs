//! The worker and the ledger: what signed webhooks become in the books.

use std::time::Duration;

use chrono::NaiveDate;
use reqwest::StatusCode;
use shopbridge::channel::Channel;
use shopbridge::queue::headers;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{Options, TestApp, eventually};

const ORDER_1001: &[u8] = include_bytes!("../fixtures/events/order-created-1001.json");
const PAYMENT_1001: &[u8] = include_bytes!("../fixtures/events/payment-captured-1001.json");
const REFUND_1001: &[u8] = include_bytes!("../fixtures/events/refund-created-1001.json");

fn jan_first() -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2026, 1, 1)
}

fn event_id(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// The lines of the voucher with this key: (account, amount in øre, VAT code).
async fn lines_of(db: &PgPool, key: &str) -> Vec<(i32, i64, Option<i32>)> {
    sqlx::query_as(
        "select l.account, l.amount, l.vat_code from voucher_lines l join vouchers v on v.id = l.voucher_id \
         where v.idempotency_key = $1 order by l.account, l.amount",
    )
    .bind(key)
    .fetch_all(db)
    .await
    .unwrap()
}

/// Balance per account of one connection's vouchers.
async fn balances(db: &PgPool, connection: Uuid) -> Vec<(i32, i64)> {
    sqlx::query_as(
        "select l.account, sum(l.amount)::bigint from voucher_lines l join vouchers v on v.id = l.voucher_id \
         where v.connection_id = $1 group by l.account having sum(l.amount) <> 0 order by l.account",
    )
    .bind(connection)
    .fetch_all(db)
    .await
    .unwrap()
}

async fn voucher_count(db: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from vouchers")
        .fetch_one(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_worked_example_becomes_exactly_the_designed_vouchers() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, jan_first())
        .await;
    for body in [ORDER_1001, PAYMENT_1001, REFUND_1001] {
        assert_eq!(
            app.post_native(&conn, body).await.status(),
            StatusCode::ACCEPTED
        );
        assert_eq!(app.wait_for_event(&event_id(body)).await.0, "processed");
    }
    // Invoice: 1500 debit 726.00; 3000 398.40 (3), 3030 112.17 (31), shipping 79.20 (3),
    // 2700 119.40, 2701 16.83.
    let mut invoice = lines_of(&app.db, "invoice:1001:1").await;
    invoice.sort();
    assert_eq!(
        invoice,
        vec![
            (1500, 72_600, None),
            (2700, -11_940, Some(3)),
            (2701, -1_683, Some(31)),
            (3000, -39_840, Some(3)),
            (3030, -11_217, Some(31)),
            (3080, -7_920, Some(3)),
        ]
    );
    // Payment to the prepaid account, with the provider's fee.
    let payment = lines_of(&app.db, "payment:pay_7Hk2Lm9Qr4").await;
    assert!(
        payment.contains(&(1522, 72_600, None)) && payment.contains(&(1500, -72_600, None)),
        "{payment:?}"
    );
    assert!(
        payment.contains(&(7770, 1_089, None)) && payment.contains(&(1522, -1_089, None)),
        "{payment:?}"
    );
    // The returned coffee: credit note and refund paid.
    let mut credit = lines_of(&app.db, "refund:rf_1001_1").await;
    credit.sort();
    assert_eq!(
        credit,
        vec![
            (1500, -12_900, None),
            (2701, 1_683, Some(31)),
            (3030, 11_217, Some(31))
        ]
    );
    let mut refund = lines_of(&app.db, "refund-payment:rf_1001_1").await;
    refund.sort();
    assert_eq!(refund, vec![(1500, 12_900, None), (1522, -12_900, None)]);
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_shopify_order_is_posted_from_its_webhook() {
    let app = TestApp::spawn().await;
    let conn = app.add_connection_from(Channel::Shopify, jan_first()).await;
    let body = include_bytes!("../fixtures/shopify/order-nok-taxes-included.json");
    let resp = app
        .post_signed(
            conn.connection.id,
            Channel::Shopify,
            &conn.secret,
            "shopify-wh-1",
            "orders/paid",
            body,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(app.wait_for_event("shopify-wh-1").await.0, "processed");
    let kinds: Vec<(String, String)> =
        sqlx::query_as("select kind, idempotency_key from vouchers order by number")
            .fetch_all(&app.db)
            .await
            .unwrap();
    let keys: Vec<&str> = kinds.iter().map(|k| k.1.as_str()).collect();
    assert!(
        keys.contains(&"invoice:9007199254740993:1"),
        "the id above 2^53 is exact: {keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.starts_with("payment:")),
        "orders/paid also posts the payment: {keys:?}"
    );
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_shopify_orders_paid_after_its_orders_create_is_processed_with_its_payment() {
    let app = TestApp::spawn().await;
    let conn = app.add_connection_from(Channel::Shopify, jan_first()).await;
    let body = include_bytes!("../fixtures/shopify/order-nok-taxes-included.json");
    // Shopify sends both for a checkout paid at once, with one `updated_at`: the snapshot in
    // orders/paid is the one orders/create brought, the payment is new.
    for (id, topic) in [("wh-create", "orders/create"), ("wh-paid", "orders/paid")] {
        let resp = app
            .post_signed(
                conn.connection.id,
                Channel::Shopify,
                &conn.secret,
                id,
                topic,
                body,
            )
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        assert_eq!(
            app.wait_for_event(id).await,
            ("processed".into(), None),
            "{id}"
        );
    }
    let payment = lines_of(&app.db, "payment:order-9007199254740993-paid").await;
    assert_eq!(payment, vec![(1500, -72_600, None), (1522, 72_600, None)]);
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn the_same_event_ten_times_and_to_several_workers_posts_one_voucher() {
    let app = TestApp::spawn().await;
    let _second = app.spawn_extra_worker();
    let _third = app.spawn_extra_worker();
    let conn = app
        .add_connection_from(Channel::Nettbutikk, jan_first())
        .await;
    let sends = (0..10).map(|_| app.post_native(&conn, ORDER_1001));
    for resp in futures_util::future::join_all(sends).await {
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
    }
    let id = event_id(ORDER_1001);
    eventually("all ten deliveries are seen", || async {
        let n: Option<i32> = sqlx::query_scalar(
            "select deliveries from events where source_event_id = $1 and status = 'processed'",
        )
        .bind(&id)
        .fetch_optional(&app.db)
        .await
        .unwrap();
        n == Some(10)
    })
    .await;
    assert_eq!(voucher_count(&app.db).await, 1, "one invoice");
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

/// Sends a payment, an order update (v2) and the order (v1) in the given order and returns the
/// connection's balances.
async fn post_sequence(app: &TestApp, order_first: bool) -> Vec<(i32, i64)> {
    let conn = app
        .add_connection_from(Channel::Nettbutikk, jan_first())
        .await;
    let v1: serde_json::Value = serde_json::from_slice(ORDER_1001).unwrap();
    let mut v2 = v1.clone();
    v2["type"] = "order.updated".into();
    v2["id"] = format!("{}-v2", v1["id"].as_str().unwrap()).into();
    v2["data"]["order"]["version"] = 2.into();
    v2["data"]["order"]["lines"][0]["quantity"] = 3.into();
    v2["data"]["order"]["total"] = "975.00".into();
    let mut payment: serde_json::Value = serde_json::from_slice(PAYMENT_1001).unwrap();
    payment["data"]["payment"]["amount"] = "975.00".into();
    let bodies: Vec<Vec<u8>> = if order_first {
        vec![
            v1.to_string().into(),
            v2.to_string().into(),
            payment.to_string().into(),
        ]
    } else {
        vec![
            payment.to_string().into(),
            v2.to_string().into(),
            v1.to_string().into(),
        ]
    };
    for body in &bodies {
        assert_eq!(
            app.post_native(&conn, body).await.status(),
            StatusCode::ACCEPTED
        );
        let (status, reason) = app
            .wait_for_event_of(Some(conn.connection.id), &event_id(body))
            .await;
        // Version 1 after version 2 is skipped as stale; nothing fails.
        assert!(
            status == "processed" || status == "skipped",
            "{status}: {reason:?}"
        );
    }
    balances(&app.db, conn.connection.id).await
}

#[tokio::test]
async fn payment_before_order_and_updates_out_of_order_end_as_in_order() {
    let app = TestApp::spawn().await;
    let in_order = post_sequence(&app, true).await;
    let reversed = post_sequence(&app, false).await;
    assert_eq!(reversed, in_order, "the same balances per account");
    assert!(
        in_order.contains(&(3000, -59_760)),
        "3 T-shirts net of VAT after the update: {in_order:?}"
    );
    assert!(
        !in_order.iter().any(|(a, _)| *a == 1500),
        "the customer is settled: {in_order:?}"
    );
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_with_its_reason_and_later_events_flow() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, jan_first())
        .await;
    let mut poison: serde_json::Value = serde_json::from_slice(ORDER_1001).unwrap();
    poison["id"] = "evt_poison".into();
    poison["data"]["order"]["lines"][1]["vat_rate"] = "22".into();
    let poison = poison.to_string().into_bytes();
    assert_eq!(
        app.post_native(&conn, &poison).await.status(),
        StatusCode::ACCEPTED
    );
    let (status, reason) = app.wait_for_event("evt_poison").await;
    assert_eq!(status, "failed");
    let reason = reason.unwrap();
    assert!(
        reason.contains("22 %") && reason.contains("Kaffe"),
        "the reason names the line: {reason}"
    );

    assert_eq!(
        app.post_native(&conn, ORDER_1001).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.wait_for_event(&event_id(ORDER_1001)).await.0,
        "processed"
    );

    let dead = std::sync::Mutex::new(Vec::new());
    eventually("the poison event reaches the DLQ", || async {
        let got = app.drain_queue(&app.names.dead_queue).await;
        let mut dead = dead.lock().unwrap();
        dead.extend(got);
        !dead.is_empty()
    })
    .await;
    let dead = dead.into_inner().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id().as_deref(), Some("evt_poison"));
    assert_eq!(
        dead[0].body, poison,
        "the dead letter is the source document"
    );
    assert_eq!(
        dead[0].header(headers::REASON).as_deref(),
        Some(reason.as_str())
    );
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_refund_before_its_order_is_retried_until_the_order_is_posted() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, jan_first())
        .await;
    assert_eq!(
        app.post_native(&conn, REFUND_1001).await.status(),
        StatusCode::ACCEPTED
    );
    let id = event_id(REFUND_1001);
    eventually("the refund waits for its order", || async {
        let reason: Option<Option<String>> =
            sqlx::query_scalar("select reason from events where source_event_id = $1")
                .bind(&id)
                .fetch_optional(&app.db)
                .await
                .unwrap();
        reason
            .flatten()
            .is_some_and(|r| r.starts_with("will retry"))
    })
    .await;
    assert_eq!(
        app.post_native(&conn, ORDER_1001).await.status(),
        StatusCode::ACCEPTED
    );
    eventually("the refund is posted after its retry", || async {
        let s: Option<String> =
            sqlx::query_scalar("select status from events where source_event_id = $1")
                .bind(&id)
                .fetch_optional(&app.db)
                .await
                .unwrap();
        s.as_deref() == Some("processed")
    })
    .await;
    assert_eq!(lines_of(&app.db, "refund:rf_1001_1").await.len(), 3);
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn an_order_before_process_orders_from_is_skipped_with_its_payment() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, NaiveDate::from_ymd_opt(2026, 6, 1))
        .await;
    for body in [ORDER_1001, PAYMENT_1001] {
        app.post_native(&conn, body).await;
        let (status, reason) = app.wait_for_event(&event_id(body)).await;
        assert_eq!(status, "skipped", "{reason:?}");
        assert!(reason.unwrap().contains("2026-06-01"));
    }
    assert_eq!(voucher_count(&app.db).await, 0);
    app.cleanup().await;
}

/// `body` (a payment event) captured at `at`, said to have happened then too.
fn captured_at(body: &[u8], at: &str) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["occurred_at"] = at.into();
    v["data"]["payment"]["captured_at"] = at.into();
    serde_json::to_vec(&v).unwrap()
}

async fn status_of(db: &PgPool, source_event_id: &str) -> (String, Option<String>) {
    sqlx::query_as("select status, reason from events where source_event_id = $1")
        .bind(source_event_id)
        .fetch_one(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_payment_before_an_order_that_is_skipped_is_reversed_and_skipped_with_it() {
    // The order is registered on 2 March, the day before the connection starts; its payment,
    // captured on 3 March, arrives first and is posted while the order is unknown.
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, NaiveDate::from_ymd_opt(2026, 3, 3))
        .await;
    // A ceiling below the payment, so that the payment is flagged while its order is unknown.
    lower_ceiling(&app.db, conn.connection.id).await;
    let payment = captured_at(PAYMENT_1001, "2026-03-03T09:00:00Z");
    app.post_native(&conn, &payment).await;
    let (status, reason) = app.wait_for_event(&event_id(&payment)).await;
    assert_eq!(status, "processed", "{reason:?}");
    assert!(
        flag_of(&app.db, &event_id(&payment)).await.is_some(),
        "a payment above max_order_amount before its order is flagged"
    );

    app.post_native(&conn, ORDER_1001).await;
    let (status, reason) = app.wait_for_event(&event_id(ORDER_1001)).await;
    assert_eq!(status, "skipped", "{reason:?}");

    // Net, the books are as if the events had come in order: nothing on any account (1500,
    // 2900, 1522 and the fee's 7770 included). The vouchers are not: the payment stays posted,
    // and a voucher of the order's skipped event reverses it.
    assert_eq!(balances(&app.db, conn.connection.id).await, vec![]);
    let (reversed, source): (String, Uuid) = sqlx::query_as(
        "select p.idempotency_key, r.source_event from vouchers r join vouchers p on p.id = r.reverses \
         where r.idempotency_key = 'reversal:payment:pay_7Hk2Lm9Qr4'",
    )
    .fetch_one(&app.db)
    .await
    .expect("the payment's reversal is posted and names the payment");
    assert_eq!(reversed, "payment:pay_7Hk2Lm9Qr4");
    let order_event: Uuid = sqlx::query_scalar("select id from events where source_event_id = $1")
        .bind(event_id(ORDER_1001))
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        source, order_event,
        "the reversal belongs to the order's event"
    );
    let mut negated: Vec<(i32, i64, Option<i32>)> = lines_of(&app.db, "payment:pay_7Hk2Lm9Qr4")
        .await
        .into_iter()
        .map(|(account, amount, code)| (account, -amount, code))
        .collect();
    negated.sort_unstable();
    assert_eq!(
        lines_of(&app.db, "reversal:payment:pay_7Hk2Lm9Qr4").await,
        negated
    );
    let reason = reason.unwrap_or_default();
    assert!(
        reason.contains("reverses payment:pay_7Hk2Lm9Qr4"),
        "{reason}"
    );

    // Both events read as they would in order: skipped, the payment with why and no flag.
    let (status, reason) = status_of(&app.db, &event_id(&payment)).await;
    assert_eq!(status, "skipped");
    assert_eq!(
        flag_of(&app.db, &event_id(&payment)).await,
        None,
        "the payment is reversed, so its flag no longer stands"
    );
    let reason = reason.unwrap_or_default();
    assert!(
        reason.starts_with("order 1001 is skipped: registered 2026-03-02")
            && reason.ends_with("reversed by reversal:payment:pay_7Hk2Lm9Qr4"),
        "{reason}"
    );
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_payment_and_its_skipped_order_queued_together_end_skipped_and_net_zero() {
    // Both are queued before a worker runs, so that one batch takes them. A batch posts its
    // events in the order of their ids: this payment's id sorts before the order's.
    let app = TestApp::spawn_with(Options {
        worker: false,
        ..Options::default()
    })
    .await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, NaiveDate::from_ymd_opt(2026, 3, 3))
        .await;
    lower_ceiling(&app.db, conn.connection.id).await;
    let mut payment: serde_json::Value =
        serde_json::from_slice(&captured_at(PAYMENT_1001, "2026-03-03T09:00:00Z")).unwrap();
    payment["id"] = "evt_00_payment_first".into();
    let payment = serde_json::to_vec(&payment).unwrap();
    for body in [payment.as_slice(), ORDER_1001] {
        assert_eq!(
            app.post_native(&conn, body).await.status(),
            StatusCode::ACCEPTED
        );
    }
    let _worker = app.spawn_extra_worker();
    for body in [ORDER_1001, payment.as_slice()] {
        let (status, reason) = app.wait_for_event(&event_id(body)).await;
        assert_eq!(status, "skipped", "{reason:?}");
    }
    assert_eq!(balances(&app.db, conn.connection.id).await, vec![]);
    let (_, reason) = status_of(&app.db, &event_id(&payment)).await;
    assert!(
        reason.is_some_and(|r| r.ends_with("reversed by reversal:payment:pay_7Hk2Lm9Qr4")),
        "the payment's event says why it is skipped"
    );
    assert_eq!(
        flag_of(&app.db, &event_id(&payment)).await,
        None,
        "the payment is reversed, so its flag no longer stands"
    );
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

/// Sets the connection's `max_order_amount` to 1.00, below any payment of these tests. Done
/// before its first event, so that the worker loads the connection with it.
async fn lower_ceiling(db: &PgPool, connection: Uuid) {
    sqlx::query("update connections set max_order_amount = 100 where id = $1")
        .bind(connection)
        .execute(db)
        .await
        .unwrap();
}

/// The flag on the event with this source id.
async fn flag_of(db: &PgPool, source_event_id: &str) -> Option<String> {
    sqlx::query_scalar("select flag from events where source_event_id = $1")
        .bind(source_event_id)
        .fetch_one(db)
        .await
        .unwrap()
}

/// What the order's state remembers of the vouchers posted before it arrived.
async fn posted_before_order(db: &PgPool) -> Vec<shopbridge::posting::PostedEarly> {
    let state: String =
        sqlx::query_scalar("select state::text from orders where order_id = '1001'")
            .fetch_one(db)
            .await
            .unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    serde_json::from_value(state["posted_before_order"].clone()).unwrap_or_default()
}

#[tokio::test]
async fn a_payment_posted_before_its_order_by_an_earlier_version_is_reversed_after_the_upgrade() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, NaiveDate::from_ymd_opt(2026, 3, 3))
        .await;
    let payment = captured_at(PAYMENT_1001, "2026-03-03T09:00:00Z");
    app.post_native(&conn, &payment).await;
    assert_eq!(app.wait_for_event(&event_id(&payment)).await.0, "processed");
    let remembered = posted_before_order(&app.db).await;
    assert_eq!(remembered.len(), 1, "the payment is remembered");

    // As an earlier version stored it: no record of the payment in the state. Migration 0013
    // rebuilds it from the ledger.
    sqlx::query("update orders set state = (state::jsonb - 'posted_before_order')::json")
        .execute(&app.db)
        .await
        .unwrap();
    assert!(posted_before_order(&app.db).await.is_empty());
    sqlx::raw_sql(include_str!(
        "../../migrations/0013_posted_before_order.sql"
    ))
    .execute(&app.db)
    .await
    .unwrap();
    assert_eq!(posted_before_order(&app.db).await, remembered);

    app.post_native(&conn, ORDER_1001).await;
    assert_eq!(app.wait_for_event(&event_id(ORDER_1001)).await.0, "skipped");
    assert_eq!(balances(&app.db, conn.connection.id).await, vec![]);
    assert_eq!(status_of(&app.db, &event_id(&payment)).await.0, "skipped");
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_worker_aborted_mid_transaction_leaves_nothing_and_the_redelivery_posts_once() {
    let app = TestApp::spawn_with(Options {
        worker: false,
        ..Options::default()
    })
    .await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, jan_first())
        .await;
    assert_eq!(
        app.post_native(&conn, ORDER_1001).await.status(),
        StatusCode::ACCEPTED
    );

    // Take the delivery without acking it, as a worker would.
    let amqp = lapin::Connection::connect(
        &crate::helpers::amqp_url(),
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let ch = amqp.create_channel().await.unwrap();
    let msg = ch
        .basic_get(
            app.names.events_queue.as_str().into(),
            lapin::options::BasicGetOptions::default(),
        )
        .await
        .unwrap()
        .expect("the event is queued");
    let incoming = shopbridge::worker::incoming::Incoming::new(msg.delivery);

    // Hold the order's row so the worker's transaction stops half-way, then abort the worker.
    let mut blocker = app.db.begin().await.unwrap();
    sqlx::query("insert into orders (connection_id, order_id) values ($1, '1001')")
        .bind(conn.connection.id)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let deps = app.worker_deps();
    let task = tokio::spawn(async move {
        shopbridge::worker::batch::process(&deps, std::slice::from_ref(&incoming))
            .await
            .map(|_| ())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "the worker waits on the order's lock");
    task.abort();
    let _ = task.await;
    blocker.rollback().await.unwrap();
    let rows: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(rows, 0, "the aborted transaction left nothing behind");

    // The unacked delivery goes back to the queue when its channel closes; a worker posts it once.
    amqp.close(200, "crash".into()).await.unwrap();
    let _worker = app.spawn_extra_worker();
    assert_eq!(
        app.wait_for_event(&event_id(ORDER_1001)).await.0,
        "processed"
    );
    assert_eq!(voucher_count(&app.db).await, 1);
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

/// Two transactions that start in the same microsecond have the same `now()`. Lines that one
/// of them inserts for a voucher the other posts must still be refused at its commit: the check
/// matches the posting transaction by its id. The two sessions are dblink connections driven
/// from one DO block, begun again and again until their start times are equal (a few thousand
/// tries here); then one inserts an unbalancing line for the voucher the other posts.
#[tokio::test]
async fn lines_of_a_transaction_that_started_in_the_same_microsecond_cannot_join_a_voucher() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, jan_first())
        .await;
    sqlx::query("create extension if not exists dblink")
        .execute(&app.db)
        .await
        .expect("dblink (PostgreSQL's contrib) is installed");
    sqlx::query("create table race (tries int, same_start boolean, outcome text, lines bigint)")
        .execute(&app.db)
        .await
        .unwrap();
    let company: Uuid = sqlx::query_scalar("select id from companies")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let line = |id: &str, n: i32, amount: i64| {
        format!(
            "insert into voucher_lines (voucher_id, line_no, company_id, account, amount, currency, \
             currency_amount, description, role) values ('{id}', {n}, '{company}', 1500, {amount}, 'NOK', \
             {amount}, 'x', 'receivable')"
        )
    };
    let x = Uuid::now_v7().to_string();
    let block = format!(
        r#"do $race$
declare ta timestamptz; tb timestamptz; tries int := 0; outcome text;
begin
  perform dblink_connect('a', {url});
  perform dblink_connect('b', {url});
  loop
    tries := tries + 1;
    perform dblink_send_query('a', 'begin');
    perform dblink_send_query('b', 'begin');
    perform * from dblink_get_result('a') as t(s text); perform * from dblink_get_result('a') as t(s text);
    perform * from dblink_get_result('b') as t(s text); perform * from dblink_get_result('b') as t(s text);
    select t into ta from dblink('a', 'select now()') as (t timestamptz);
    select t into tb from dblink('b', 'select now()') as (t timestamptz);
    exit when ta = tb or tries >= 200000;
    perform dblink_exec('a', 'rollback');
    perform dblink_exec('b', 'rollback');
  end loop;
  if ta = tb then
    perform dblink_exec('b', {intruder});
    perform dblink_exec('a', {first});
    perform dblink_exec('a', {second});
    perform dblink_exec('a', {voucher});
    perform dblink_exec('a', 'commit');
    begin
      perform dblink_exec('b', 'commit');
      outcome := 'committed';
    exception when others then
      outcome := sqlerrm;
    end;
  end if;
  insert into race select tries, ta = tb, outcome, (select count(*) from voucher_lines where voucher_id = '{x}');
  perform dblink_disconnect('a');
  perform dblink_disconnect('b');
end $race$"#,
        url = quote(&app.db_url()),
        intruder = quote(&line(&x, 91, 1_000_000)),
        first = quote(&line(&x, 1, 100)),
        second = quote(&line(&x, 2, -100)),
        voucher = quote(&format!(
            "with n as (insert into voucher_counters (company_id, series, year, last_number) \
             values ('{company}', 'sales', 2026, 1) on conflict (company_id, series, year) \
             do update set last_number = voucher_counters.last_number + 1 returning last_number) \
             insert into vouchers (id, company_id, connection_id, series, year, number, voucher_date, \
             kind, description, idempotency_key) select '{x}', '{company}', '{}', 'sales', 2026, \
             n.last_number, '2026-03-02', 'invoice', 'x', 'race' from n",
            conn.connection.id
        )),
    );
    sqlx::raw_sql(&block).execute(&app.db).await.unwrap();
    let (tries, same_start, outcome, lines): (i32, bool, Option<String>, i64) =
        sqlx::query_as("select * from race")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(
        same_start,
        "no two transactions started in the same microsecond in {tries} tries"
    );
    let outcome = outcome.unwrap_or_default();
    assert!(
        outcome.contains("did not post"),
        "the intruder's commit is refused (after {tries} tries): {outcome}"
    );
    assert_eq!(lines, 2, "the voucher keeps its own two lines");
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

/// A line waits for the lock on its account while another transaction renumbers that account
/// and puts a new account under the old number. When the wait ends, an account with the line's
/// number exists again, but not the row the line waited for: the insert fails as a
/// serialization failure (40001), which the worker retries with the chart as it now is, instead
/// of going through with an account it never locked.
#[tokio::test]
async fn lines_that_wait_while_the_chart_changes_under_them_fail_as_a_retryable_conflict() {
    let app = TestApp::spawn().await;
    let company: Uuid = sqlx::query_scalar("select id from companies")
        .fetch_one(&app.db)
        .await
        .unwrap();
    // The chart's change: 1500 (no lines yet, so it may move) becomes 1509, and a new 1500 is
    // made. Held open while the line waits.
    let mut chart = app.db.begin().await.unwrap();
    sqlx::query("update accounts set number = 1509 where company_id = $1 and number = 1500")
        .bind(company)
        .execute(&mut *chart)
        .await
        .unwrap();
    sqlx::query(
        "insert into accounts (company_id, number, name, account_type) \
         values ($1, 1500, 'Kundefordringer (ny)', 'asset')",
    )
    .bind(company)
    .execute(&mut *chart)
    .await
    .unwrap();

    let db = app.db.clone();
    let line = tokio::spawn(async move {
        let mut tx = db.begin().await?;
        sqlx::query(
            "insert into voucher_lines (voucher_id, line_no, company_id, account, amount, currency, \
             currency_amount, description, role) \
             values ($1, 1, $2, 1500, 100, 'NOK', 100, 'x', 'receivable')",
        )
        .bind(Uuid::now_v7())
        .bind(company)
        .execute(&mut *tx)
        .await
        .map(drop)
    });
    // Bounded: the line's insert must come to wait for the chart's transaction.
    eventually("the line's insert waits for the account's lock", || async {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity \
             where datname = current_database() and wait_event_type = 'Lock' \
             and query like 'insert into voucher_lines%'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        waiting == 1
    })
    .await;
    chart.commit().await.unwrap();

    let err = line
        .await
        .unwrap()
        .expect_err("a line that waited through a change of its account is refused");
    let code = err
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("40001"), "{err}");
    assert!(
        err.to_string().contains("chart of accounts changed"),
        "{err}"
    );
    assert!(
        shopbridge::db::is_transient(&anyhow::Error::from(err)),
        "the worker retries it"
    );
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

/// `s` as an SQL string literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[tokio::test]
async fn posted_vouchers_cannot_be_changed_deleted_or_unbalanced() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, jan_first())
        .await;
    app.post_native(&conn, ORDER_1001).await;
    app.wait_for_event(&event_id(ORDER_1001)).await;
    for sql in [
        "update voucher_lines set amount = amount + 1",
        "delete from voucher_lines",
        "update vouchers set description = 'changed'",
        "update vouchers set number = number + 1000",
        "delete from vouchers",
        "truncate vouchers cascade",
    ] {
        let err = sqlx::query(sql).execute(&app.db).await.expect_err(sql);
        assert!(
            err.to_string().contains("cannot be changed"),
            "{sql}: {err}"
        );
    }
    // A balanced pair of lines added later to a posted voucher is refused too.
    let late = sqlx::query(
        "insert into voucher_lines (voucher_id, line_no, company_id, account, amount, currency, currency_amount, description, role) \
         select id, 90 + n, company_id, 1500, case n when 1 then 100 else -100 end, 'NOK', case n when 1 then 100 else -100 end, 'late', 'receivable' \
         from vouchers, generate_series(1, 2) n",
    )
    .execute(&app.db)
    .await
    .expect_err("lines cannot join an old voucher");
    assert!(late.to_string().contains("is posted already"), "{late}");
    let company: Uuid = sqlx::query_scalar("select id from companies")
        .fetch_one(&app.db)
        .await
        .unwrap();
    // Posting by hand as the worker does: the lines of voucher `id`, then the voucher with the
    // next number of its series' counter; `voucher` false stops after the lines. Returns the open transaction and the
    // first error, if any.
    let posting = |id: Uuid, key: &'static str, lines: &'static str, voucher: bool| {
        let db = app.db.clone();
        let connection = conn.connection.id;
        async move {
            let mut tx = db.begin().await.unwrap();
            if !lines.is_empty() {
                let inserted = sqlx::query(&format!("insert into voucher_lines (voucher_id, line_no, company_id, account, amount, currency, currency_amount, description, role) select $1, n, $2, a, m, c, cm, 'x', 'receivable' from (values {lines}) as l(n, a, m, c, cm)"))
                    .bind(id)
                    .bind(company)
                    .execute(&mut *tx)
                    .await;
                if let Err(e) = inserted {
                    return (tx, Err(e));
                }
            }
            let posted = if voucher {
                sqlx::query("with n as (insert into voucher_counters (company_id, series, year, last_number) values ($2, 'sales', 2026, 1) \
                                 on conflict (company_id, series, year) do update set last_number = voucher_counters.last_number + 1 \
                                 returning last_number) \
                             insert into vouchers (id, company_id, connection_id, series, year, number, voucher_date, kind, description, idempotency_key) \
                             select $1, $2, $3, 'sales', 2026, n.last_number, '2026-03-02', 'invoice', 'x', $4 from n")
                    .bind(id)
                    .bind(company)
                    .bind(connection)
                    .bind(key)
                    .execute(&mut *tx)
                    .await
                    .map(|_| ())
            } else {
                Ok(())
            };
            (tx, posted)
        }
    };
    let balanced = "(1, 1500, 100, 'NOK', 100), (2, 1500, -100, 'NOK', -100)";
    // A voucher that does not balance is refused as it is inserted.
    let (_, posted) = posting(
        Uuid::now_v7(),
        "unbalanced",
        "(1, 1500, 100, 'NOK', 100)",
        true,
    )
    .await;
    let err = posted.expect_err("unbalanced");
    assert!(err.to_string().contains("does not balance"), "{err}");
    // Balanced in NOK but not in the line currency; no lines at all.
    let (_, posted) = posting(
        Uuid::now_v7(),
        "euro",
        "(1, 1500, 1100, 'EUR', 100), (2, 1500, -1100, 'EUR', -90)",
        true,
    )
    .await;
    let err = posted.expect_err("unbalanced in EUR");
    assert!(err.to_string().contains("does not balance in EUR"), "{err}");
    let (_, posted) = posting(Uuid::now_v7(), "empty", "", true).await;
    let err = posted.expect_err("no lines");
    assert!(err.to_string().contains("has no lines"), "{err}");

    // Lines whose voucher never comes are refused at commit.
    let (tx, posted) = posting(Uuid::now_v7(), "orphan", balanced, false).await;
    posted.unwrap();
    let err = tx.commit().await.expect_err("lines without their voucher");
    assert!(err.to_string().contains("did not post"), "{err}");

    // Once posted, a voucher takes no more lines, even in the transaction that posted it.
    let id = Uuid::now_v7();
    let (mut tx, posted) = posting(id, "closed", balanced, true).await;
    posted.unwrap();
    let err = sqlx::query("insert into voucher_lines (voucher_id, line_no, company_id, account, amount, currency, currency_amount, description, role) values ($1, 3, $2, 1500, 5000, 'NOK', 5000, 'late', 'receivable')")
        .bind(id)
        .bind(company)
        .execute(&mut *tx)
        .await
        .expect_err("a line after the voucher");
    assert!(err.to_string().contains("is posted already"), "{err}");
    drop(tx);

    // Lines slipped in by another transaction while a voucher is being posted cannot join it:
    // they are refused at their commit, whether the voucher committed first or not at all.
    let id = Uuid::now_v7();
    let intruding = "(91, 1500, 100, 'NOK', 100), (92, 1500, -100, 'NOK', -100)";
    let (intruder, posted) = posting(id, "intruder", intruding, false).await;
    posted.unwrap();
    let (owner, posted) = posting(id, "owner", balanced, true).await;
    posted.unwrap();
    owner.commit().await.expect("the owner's voucher posts");
    let err = intruder
        .commit()
        .await
        .expect_err("lines of another transaction");
    assert!(err.to_string().contains("did not post"), "{err}");
    let lines: i64 = sqlx::query_scalar("select count(*) from voucher_lines where voucher_id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(lines, 2, "only the owner's lines");

    // A voucher needs its number, one its series' counter handed out; and its lines must be of
    // its own company.
    let id = Uuid::now_v7();
    let (mut tx, lines) = posting(id, "ahead", balanced, false).await;
    lines.unwrap();
    let err = sqlx::query("insert into vouchers (id, company_id, connection_id, series, year, number, voucher_date, kind, description, idempotency_key) \
                           select $1, $2, $3, 'sales', 2026, last_number + 5, '2026-03-02', 'invoice', 'x', 'ahead' \
                           from voucher_counters where company_id = $2 and series = 'sales' and year = 2026")
        .bind(id)
        .bind(company)
        .bind(conn.connection.id)
        .execute(&mut *tx)
        .await
        .expect_err("a number beyond the counter");
    assert!(err.to_string().contains("has not handed out"), "{err}");
    drop(tx);
    let other = Uuid::now_v7();
    sqlx::query("insert into companies (id, name) values ($1, 'Annet AS')")
        .bind(other)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("insert into accounts (company_id, number, name, account_type) values ($1, 1500, 'Kunder', 'asset')")
        .bind(other)
        .execute(&app.db)
        .await
        .unwrap();
    let mut tx = app.db.begin().await.unwrap();
    let id = Uuid::now_v7();
    sqlx::query("insert into voucher_lines (voucher_id, line_no, company_id, account, amount, currency, currency_amount, description, role) \
                 select $1, n, c, 1500, m, 'NOK', m, 'x', 'receivable' from (values (1, 100, $2::uuid), (2, -100, $3::uuid)) as l(n, m, c)")
        .bind(id)
        .bind(company)
        .bind(other)
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query("with n as (update voucher_counters set last_number = last_number + 1 \
                               where company_id = $2 and series = 'sales' and year = 2026 returning last_number) \
                           insert into vouchers (id, company_id, connection_id, series, year, number, voucher_date, kind, description, idempotency_key) \
                           select $1, $2, $3, 'sales', 2026, n.last_number, '2026-03-02', 'invoice', 'x', 'mixed' from n")
        .bind(id)
        .bind(company)
        .bind(conn.connection.id)
        .execute(&mut *tx)
        .await
        .expect_err("lines of another company");
    assert!(err.to_string().contains("of another company"), "{err}");
    drop(tx);

    // The counters cannot go down or be deleted: they would hand out numbers already taken.
    for sql in [
        "update voucher_counters set last_number = last_number - 1",
        "delete from voucher_counters",
    ] {
        let err = sqlx::query(sql).execute(&app.db).await.expect_err(sql);
        assert!(err.to_string().contains("only go up"), "{sql}: {err}");
    }

    // And it needs a number at all.
    let err = sqlx::query("insert into vouchers (id, company_id, connection_id, series, year, voucher_date, kind, description, idempotency_key) values ($1, $2, $3, 'sales', 2026, '2026-03-02', 'invoice', 'x', 'unnumbered')")
        .bind(Uuid::now_v7())
        .bind(company)
        .bind(conn.connection.id)
        .execute(&app.db)
        .await
        .expect_err("inserted without a number");
    assert!(err.to_string().contains("\"number\""), "{err}");

    // A line on an account the company does not have is refused, and an account with lines
    // cannot be deleted or renumbered.
    let (_, inserted) = posting(
        Uuid::now_v7(),
        "no-account",
        "(1, 1500, 100, 'NOK', 100), (2, 999999, -100, 'NOK', -100)",
        true,
    )
    .await;
    let err = inserted.expect_err("unknown account");
    assert!(err.to_string().contains("account 999999"), "{err}");
    for sql in [
        "delete from accounts where number = 1500",
        "update accounts set number = 1599 where number = 1500",
    ] {
        let err = sqlx::query(sql).execute(&app.db).await.expect_err(sql);
        assert!(
            err.to_string().contains("has voucher lines"),
            "{sql}: {err}"
        );
    }
    // Renaming a used account is fine; deleting one in a repeatable-read transaction, whose
    // snapshot could miss lines committed since it began, is refused outright.
    sqlx::query("update accounts set name = name || ' (renamed)' where number = 1500")
        .execute(&app.db)
        .await
        .expect("a used account can be renamed");
    let mut tx = app.db.begin().await.unwrap();
    sqlx::query("set transaction isolation level repeatable read")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query("delete from accounts where number = 1920")
        .execute(&mut *tx)
        .await
        .expect_err("repeatable read");
    assert!(err.to_string().contains("read committed"), "{err}");
    app.cleanup().await;
}
