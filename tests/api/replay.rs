//! Replay from the dead-letter queue and from the stored events: what was missing is posted
//! exactly once, what was done stays done, and nothing is lost on the way.

use std::time::Duration;

use chrono::NaiveDate;
use reqwest::StatusCode;
use shopbridge::channel::Channel;
use shopbridge::ops::books::{self, RuleIn};
use shopbridge::ops::dlq::{self, DeadFilter};
use shopbridge::ops::stored::{self, EventFilter};
use shopbridge::ops::{Broker, ReplayResult, no_progress};
use shopbridge::worker::contexts::CONTEXT_TTL;
use sqlx::PgPool;

use crate::helpers::{TestApp, amqp_url, eventually};

const ORDER_1001: &[u8] = include_bytes!("../fixtures/events/order-created-1001.json");
const ORDER_1002: &[u8] = include_bytes!("../fixtures/events/order-updated-1002.json");
const WAIT: Option<Duration> = Some(Duration::from_secs(30));

fn jan_first() -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2026, 1, 1)
}

fn broker(app: &TestApp) -> Broker {
    Broker {
        url: amqp_url(),
        names: app.names.clone(),
    }
}

/// Order 1001 with its coffee line at 22 %, a rate no VAT code has: dead-lettered.
fn poison(id: &str, topic: &str) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(ORDER_1001).unwrap();
    v["id"] = id.into();
    v["type"] = topic.into();
    v["data"]["order"]["lines"][1]["vat_rate"] = "22".into();
    v.to_string().into_bytes()
}

async fn vouchers_with_key(db: &PgPool, key: &str) -> i64 {
    sqlx::query_scalar("select count(*) from vouchers where idempotency_key = $1")
        .bind(key)
        .fetch_one(db)
        .await
        .unwrap()
}

async fn voucher_count(db: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from vouchers")
        .fetch_one(db)
        .await
        .unwrap()
}

async fn status_of(db: &PgPool, event_id: &str) -> Option<String> {
    sqlx::query_scalar("select status from events where source_event_id = $1")
        .bind(event_id)
        .fetch_optional(db)
        .await
        .unwrap()
}

async fn dlq_depth(app: &TestApp) -> u32 {
    broker(app).depths().await.expect("queues exist").1
}

async fn post_poison(app: &TestApp, conn: &shopbridge::connections::Added, body: &[u8], id: &str) {
    assert_eq!(
        app.post_native(conn, body).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(app.wait_for_event(id).await.0, "failed");
}

#[tokio::test]
async fn a_poison_event_fixed_and_replayed_from_the_dlq_is_posted_exactly_once() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, jan_first())
        .await;
    post_poison(
        &app,
        &conn,
        &poison("evt_poison", "order.created"),
        "evt_poison",
    )
    .await;
    eventually("the poison reaches the DLQ", || async {
        dlq_depth(&app).await == 1
    })
    .await;

    // Listing loses nothing, however often it is done.
    for _ in 0..3 {
        let list = dlq::list(&broker(&app), &DeadFilter::default())
            .await
            .unwrap();
        assert_eq!(list.messages.len(), 1);
        let letter = &list.messages[0];
        assert_eq!(letter.message_id.as_deref(), Some("evt_poison"));
        assert_eq!(letter.connection_id, Some(conn.connection.id));
        assert_eq!(letter.topic.as_deref(), Some("order.created"));
        assert!(
            letter.reason.as_deref().unwrap().contains("22 %"),
            "{letter:?}"
        );
        assert!(letter.dead_lettered_at.is_some());
    }
    // A dry run replays nothing.
    let dry = dlq::replay(
        &broker(&app),
        &app.db,
        &DeadFilter::default(),
        false,
        WAIT,
        &no_progress,
    )
    .await
    .unwrap();
    assert_eq!(
        (dry.matched, dry.republished, dry.totals.would_replay),
        (1, 0, 1)
    );
    assert_eq!(dlq_depth(&app).await, 1);

    app.add_vat_22().await;
    let filter = DeadFilter {
        reason: Some("22 %".into()),
        ..DeadFilter::default()
    };
    let report = dlq::replay(&broker(&app), &app.db, &filter, true, WAIT, &no_progress)
        .await
        .unwrap();

    assert_eq!(
        (report.matched, report.republished, report.left_in_queue),
        (1, 1, 0)
    );
    assert_eq!(report.totals.posted, 1, "{report:#?}");
    let event = &report.events[0];
    assert_eq!(event.result, ReplayResult::Posted);
    assert_eq!(event.status_before.as_deref(), Some("failed"));
    assert!(
        event.vouchers.iter().any(|v| v.ends_with("invoice:1001:1")),
        "{event:?}"
    );
    assert_eq!(dlq_depth(&app).await, 0, "the DLQ is empty");
    assert_eq!(vouchers_with_key(&app.db, "invoice:1001:1").await, 1);
    assert_eq!(
        status_of(&app.db, "evt_poison").await.as_deref(),
        Some("processed")
    );

    let again = dlq::replay(&broker(&app), &app.db, &filter, true, WAIT, &no_progress)
        .await
        .unwrap();
    assert_eq!(again.matched, 0, "nothing left to replay");
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn replaying_processed_stored_events_changes_nothing_and_says_so() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, jan_first())
        .await;
    for body in [ORDER_1001, ORDER_1002] {
        assert_eq!(
            app.post_native(&conn, body).await.status(),
            StatusCode::ACCEPTED
        );
    }
    app.wait_for_event("evt_01JNC0B7T2D4F6H8K0M2P4R6S8").await;
    let v: serde_json::Value = serde_json::from_slice(ORDER_1001).unwrap();
    assert_eq!(
        app.wait_for_event(v["id"].as_str().unwrap()).await.0,
        "processed"
    );
    let before = voucher_count(&app.db).await;
    let filter = EventFilter {
        connection: Some(conn.connection.id),
        ..EventFilter::default()
    };

    let dry = stored::replay(&app.db, &broker(&app), &filter, false, None, &no_progress)
        .await
        .unwrap();
    assert_eq!(dry.totals.would_replay, 2);
    assert!(
        dry.events
            .iter()
            .all(|e| e.detail.as_deref().unwrap().contains("changes nothing"))
    );

    let report = stored::replay(&app.db, &broker(&app), &filter, true, WAIT, &no_progress)
        .await
        .unwrap();
    assert_eq!((report.matched, report.republished), (2, 2));
    assert_eq!(report.totals.duplicate, 2, "{report:#?}");
    assert_eq!(report.totals.posted, 0);
    for e in &report.events {
        assert_eq!(e.result, ReplayResult::Duplicate);
        assert!(
            e.detail.as_deref().unwrap().contains("nothing changed"),
            "{e:?}"
        );
        assert!(e.vouchers.is_empty());
    }
    assert_eq!(
        voucher_count(&app.db).await,
        before,
        "the ledger is unchanged"
    );
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_stored_replay_after_a_rule_fix_posts_exactly_what_was_missing() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, jan_first())
        .await;
    // No rule places 15 % food: order 1001 (coffee) fails, order 1002 (all 25 %) posts.
    sqlx::query("delete from posting_rules where vat_code = 31")
        .execute(&app.db)
        .await
        .unwrap();
    tokio::time::sleep(CONTEXT_TTL).await;
    let id_1001 = serde_json::from_slice::<serde_json::Value>(ORDER_1001).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    post_poison(&app, &conn, ORDER_1001, &id_1001).await;
    assert_eq!(
        app.post_native(&conn, ORDER_1002).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.wait_for_event("evt_01JNC0B7T2D4F6H8K0M2P4R6S8").await.0,
        "processed"
    );
    let before = voucher_count(&app.db).await;

    let rule = RuleIn {
        vat_code: Some(31),
        account: 3030,
        ..RuleIn::default()
    };
    books::save_rule(&app.db, None, &rule).await.unwrap();
    tokio::time::sleep(CONTEXT_TTL + Duration::from_millis(200)).await;
    let failed = EventFilter {
        connection: Some(conn.connection.id),
        status: Some("failed".into()),
        ..EventFilter::default()
    };
    let report = stored::replay(&app.db, &broker(&app), &failed, true, WAIT, &no_progress)
        .await
        .unwrap();
    assert_eq!(report.matched, 1, "only the failed event");
    assert_eq!(report.totals.posted, 1, "{report:#?}");
    assert_eq!(report.events[0].vouchers.len(), 1);
    assert!(report.events[0].vouchers[0].ends_with("invoice:1001:1"));
    assert_eq!(
        voucher_count(&app.db).await,
        before + 1,
        "exactly the missing invoice"
    );

    // Its dead letter is still in the DLQ; replaying it now is a harmless duplicate.
    eventually("the dead letter is there", || async {
        dlq_depth(&app).await == 1
    })
    .await;
    let from_dlq = dlq::replay(
        &broker(&app),
        &app.db,
        &DeadFilter::default(),
        true,
        WAIT,
        &no_progress,
    )
    .await
    .unwrap();
    assert_eq!(from_dlq.totals.duplicate, 1, "{from_dlq:#?}");
    assert_eq!(voucher_count(&app.db).await, before + 1);
    assert_eq!(dlq_depth(&app).await, 0);
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_dlq_replay_that_dies_between_republish_and_ack_loses_nothing_and_posts_once() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, jan_first())
        .await;
    post_poison(
        &app,
        &conn,
        &poison("evt_poison", "order.created"),
        "evt_poison",
    )
    .await;
    eventually("the poison reaches the DLQ", || async {
        dlq_depth(&app).await == 1
    })
    .await;
    app.add_vat_22().await;

    // The replay's first step, then the process dies before its ack.
    let session = broker(&app).open().await.unwrap();
    let got = session
        .reader
        .basic_get(
            app.names.dead_queue.as_str().into(),
            lapin::options::BasicGetOptions::default(),
        )
        .await
        .unwrap()
        .expect("the dead letter");
    dlq::republish(&session.publisher, &app.names, &got.delivery)
        .await
        .expect("copy confirmed");
    session.close().await; // no ack: the broker puts the dead letter back

    eventually("the republished copy is posted", || async {
        status_of(&app.db, "evt_poison").await.as_deref() == Some("processed")
    })
    .await;
    eventually("the dead letter is back in the DLQ", || async {
        dlq_depth(&app).await == 1
    })
    .await;
    assert_eq!(vouchers_with_key(&app.db, "invoice:1001:1").await, 1);

    // The operator replays again: a duplicate, nothing posted twice.
    let report = dlq::replay(
        &broker(&app),
        &app.db,
        &DeadFilter::default(),
        true,
        WAIT,
        &no_progress,
    )
    .await
    .unwrap();
    assert_eq!(report.totals.duplicate, 1, "{report:#?}");
    assert_eq!(dlq_depth(&app).await, 0);
    assert_eq!(
        vouchers_with_key(&app.db, "invoice:1001:1").await,
        1,
        "posted once"
    );
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn purging_the_dlq_needs_execute_and_removes_only_what_matches() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, jan_first())
        .await;
    post_poison(&app, &conn, &poison("evt_a", "order.created"), "evt_a").await;
    let mut b: serde_json::Value =
        serde_json::from_slice(&poison("evt_b", "order.updated")).unwrap();
    b["data"]["order"]["id"] = "2002".into();
    post_poison(&app, &conn, b.to_string().as_bytes(), "evt_b").await;
    eventually("both reach the DLQ", || async {
        dlq_depth(&app).await == 2
    })
    .await;
    let updates = DeadFilter {
        topic: Some("order.updated".into()),
        ..DeadFilter::default()
    };

    let dry = dlq::purge(&broker(&app), &updates, false, &no_progress)
        .await
        .unwrap();
    assert_eq!((dry.executed, dry.purged), (false, 1));
    assert_eq!(dlq_depth(&app).await, 2, "a dry run deletes nothing");

    let done = dlq::purge(&broker(&app), &updates, true, &no_progress)
        .await
        .unwrap();
    assert_eq!(done.purged, 1);
    assert_eq!(done.messages[0].message_id.as_deref(), Some("evt_b"));
    let left = dlq::list(&broker(&app), &DeadFilter::default())
        .await
        .unwrap();
    assert_eq!(left.messages.len(), 1);
    assert_eq!(left.messages[0].message_id.as_deref(), Some("evt_a"));
    app.cleanup().await;
}
