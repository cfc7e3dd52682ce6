//! Period locks end to end: an event dated in a locked month is dead-lettered or moved, by the
//! connection's policy, and the database refuses a voucher in a locked month whatever happens.

use chrono::NaiveDate;
use reqwest::StatusCode;
use shopbridge::channel::Channel;
use shopbridge::db::periods;
use shopbridge::posting::LockedPeriodPolicy;
use shopbridge::queue::headers;
use shopbridge::worker::contexts::CONTEXT_TTL;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{TestApp, eventually};

const ORDER_1001: &[u8] = include_bytes!("../fixtures/events/order-created-1001.json");
const PAYMENT_1001: &[u8] = include_bytes!("../fixtures/events/payment-captured-1001.json");

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn event_id(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

async fn default_company(db: &PgPool) -> Uuid {
    periods::company(&mut db.acquire().await.unwrap(), None)
        .await
        .unwrap()
}

/// Locks (or unlocks) a month the way `shopbridge periods lock` does.
async fn set_lock(db: &PgPool, month: NaiveDate, lock: bool) {
    let company = default_company(db).await;
    let mut tx = db.begin().await.unwrap();
    let changed = if lock {
        periods::lock(&mut tx, company, month, "test", Some("closing March"))
            .await
            .unwrap()
    } else {
        periods::unlock(&mut tx, company, month, "test", None)
            .await
            .unwrap()
    };
    tx.commit().await.unwrap();
    assert!(changed, "the lock changed");
}

async fn event_status(db: &PgPool, source_event_id: &str) -> Option<(String, Option<String>)> {
    sqlx::query_as("select status, reason from events where source_event_id = $1")
        .bind(source_event_id)
        .fetch_optional(db)
        .await
        .unwrap()
}

/// (key, date, description) of every voucher.
async fn vouchers(db: &PgPool) -> Vec<(String, NaiveDate, String)> {
    sqlx::query_as(
        "select idempotency_key, voucher_date, description from vouchers order by series, number",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_event_in_a_locked_month_is_dead_lettered_and_posts_after_unlocking_and_replay() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, Some(day(2026, 1, 1)))
        .await;
    set_lock(&app.db, day(2026, 3, 1), true).await;

    let resp = app.post_native(&conn, ORDER_1001).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED, "the shop is not told");
    let (status, reason) = app.wait_for_event(&event_id(ORDER_1001)).await;
    assert_eq!(status, "failed");
    let reason = reason.unwrap_or_default();
    assert!(
        reason.starts_with("period locked: 2026-03"),
        "the reason names the month: {reason}"
    );
    let dead = std::sync::Mutex::new(Vec::new());
    eventually("the event reaches the DLQ", || async {
        let got = app.drain_queue(&app.names.dead_queue).await;
        let mut dead = dead.lock().unwrap();
        dead.extend(got);
        !dead.is_empty()
    })
    .await;
    let dead = dead.into_inner().unwrap();
    assert_eq!(
        dead[0].header(headers::REASON).as_deref(),
        Some(reason.as_str())
    );
    assert!(vouchers(&app.db).await.is_empty(), "nothing was posted");

    // Unlock, wait out the workers' context cache (the documented delay), and replay the
    // event as the shop or an operator would: it posts on its own date.
    set_lock(&app.db, day(2026, 3, 1), false).await;
    tokio::time::sleep(CONTEXT_TTL + std::time::Duration::from_millis(500)).await;
    assert_eq!(
        app.post_native(&conn, ORDER_1001).await.status(),
        StatusCode::ACCEPTED
    );
    let id = event_id(ORDER_1001);
    eventually("the replayed event is processed", || async {
        event_status(&app.db, &id).await.map(|s| s.0).as_deref() == Some("processed")
    })
    .await;
    let posted = vouchers(&app.db).await;
    assert_eq!(posted.len(), 1);
    assert_eq!(
        (posted[0].0.as_str(), posted[0].1),
        ("invoice:1001:1", day(2026, 3, 2))
    );
    let log: Vec<String> = sqlx::query_scalar("select action from period_lock_log order by id")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(log, ["lock", "unlock"], "the unlock is logged");
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn with_next_open_date_vouchers_move_to_the_first_open_day_with_their_original_date() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, Some(day(2026, 1, 1)))
        .await;
    let mut db = app.db.acquire().await.unwrap();
    assert!(
        periods::set_policy(
            &mut db,
            conn.connection.id,
            LockedPeriodPolicy::NextOpenDate
        )
        .await
        .unwrap()
    );
    drop(db);
    set_lock(&app.db, day(2026, 3, 1), true).await;
    set_lock(&app.db, day(2026, 4, 1), true).await;

    for body in [ORDER_1001, PAYMENT_1001] {
        assert_eq!(
            app.post_native(&conn, body).await.status(),
            StatusCode::ACCEPTED
        );
        assert_eq!(app.wait_for_event(&event_id(body)).await.0, "processed");
    }
    let posted = vouchers(&app.db).await;
    assert_eq!(posted.len(), 2, "{posted:?}");
    for (key, date, description) in &posted {
        assert_eq!(*date, day(2026, 5, 1), "{key} moves past March and April");
        assert!(
            description.contains("2026-03-02") && description.contains("2026-03"),
            "{key} keeps its original date: {description}"
        );
    }
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn the_database_refuses_a_voucher_in_a_locked_month_even_from_a_stale_context() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, Some(day(2026, 1, 1)))
        .await;
    // A context loaded before the lock, as a worker's cache may still hold it.
    let (_, ctx) = shopbridge::db::ledger::load_context(
        &mut app.db.acquire().await.unwrap(),
        conn.connection.id,
    )
    .await
    .unwrap();
    set_lock(&app.db, day(2026, 3, 1), true).await;

    let events =
        shopbridge::channels::parse(Channel::Nettbutikk, "order.created", ORDER_1001).unwrap();
    let posting = shopbridge::posting::post(
        &events[0],
        &ctx.for_event(None, day(2026, 3, 2)),
        &shopbridge::posting::OrderState::new("1001"),
    )
    .unwrap();
    assert_eq!(
        posting.vouchers[0].date(),
        day(2026, 3, 2),
        "the stale context lets it through"
    );

    let mut tx = app.db.begin().await.unwrap();
    let event_row: Uuid = sqlx::query_scalar(
        "insert into events (id, connection_id, source_event_id, channel, topic, body, received_at, status) \
         values ($1, $2, 'evt_stale', 'nettbutikk', 'order.created', '\\x', now(), 'processing') returning id",
    )
    .bind(Uuid::now_v7())
    .bind(conn.connection.id)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let company = default_company(&app.db).await;
    let err = shopbridge::db::vouchers::insert(
        &mut tx,
        &[shopbridge::db::vouchers::ToInsert {
            voucher: &posting.vouchers[0],
            company_id: company,
            connection_id: conn.connection.id,
            source_event: event_row,
        }],
    )
    .await
    .unwrap_err();
    let sqlx::Error::Database(db_err) = &err else {
        panic!("a database error: {err}")
    };
    assert_eq!(
        db_err.code().as_deref(),
        Some("40001"),
        "a serialization failure, which the worker retries: {err}"
    );
    assert!(
        db_err.message().starts_with("period locked: 2026-03"),
        "{err}"
    );
    assert!(
        shopbridge::db::is_transient(&anyhow::Error::from(err)),
        "the worker retries it with a fresh context"
    );
    app.cleanup().await;
}
