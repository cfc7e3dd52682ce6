//! The admin API at its edges: a database outage, a broker that refuses us, bodies too large,
//! paths and methods that do not exist, and replays larger than what is read at once.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::json;
use shopbridge::channel::Channel;
use shopbridge::http::AppState;
use shopbridge::ops::stored::{self, EventFilter};
use shopbridge::ops::{Broker, ReplayResult, no_progress};
use uuid::Uuid;

use crate::helpers::{Options, TestApp, amqp_url, pg_addr, problem};
use crate::proxy::FaultProxy;

async fn token(app: &TestApp) -> String {
    shopbridge::ops::tokens::create(&app.db, "tests")
        .await
        .expect("token")
        .1
}

fn retry_after(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_database_outage_answers_503_with_retry_after_even_for_a_token_that_cannot_be_checked() {
    let proxy = FaultProxy::start(pg_addr()).await;
    let app = TestApp::spawn_with(Options {
        pg_server: format!("postgres://postgres@{}", proxy.addr),
        ..Options::receiver()
    })
    .await;
    let good = token(&app).await;
    let get = |bearer: String| {
        app.client
            .get(format!("{}/api/v1/connections", app.url))
            .bearer_auth(bearer)
            .send()
    };
    assert_eq!(get(good.clone()).await.unwrap().status(), StatusCode::OK);

    proxy.cut();
    for bearer in [good.clone(), "sbt_not-a-live-token".to_owned()] {
        let resp = get(bearer).await.unwrap();
        assert_eq!(retry_after(&resp).as_deref(), Some("5"));
        let (status, p) = problem(resp).await;
        assert_eq!(
            (status, p["type"].as_str()),
            (503, Some("urn:shopbridge:problem:database-unavailable")),
            "{p}"
        );
    }

    proxy.restore();
    let mut healed = false;
    for _ in 0..50 {
        if get(good.clone()).await.unwrap().status() == StatusCode::OK {
            healed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        healed,
        "the admin API answers again once PostgreSQL is back"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_broker_that_refuses_us_answers_503_without_naming_its_user_or_vhost() {
    let app = TestApp::spawn_with(Options::receiver()).await;
    let bearer = token(&app).await;
    let host = amqp_url()
        .rsplit('@')
        .next()
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let state = AppState {
        broker: Arc::new(Broker {
            url: format!("amqp://guest:guest@{host}/shopbridge-no-such-vhost"),
            names: app.names.clone(),
        }),
        ..app.state.clone()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(shopbridge::http::serve(
        listener,
        shopbridge::http::router(state),
        shopbridge::http::ConnectionLimits::of(&app.args().serve),
        app.stop.clone(),
    ));

    let resp = app
        .client
        .get(format!("{url}/api/v1/dlq"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(retry_after(&resp).as_deref(), Some("5"));
    let (status, p) = problem(resp).await;
    assert_eq!(status, 503, "{p}");
    assert_eq!(
        p["detail"], "the message broker is unavailable; retry later",
        "the broker's own message stays in the log"
    );
    let text = p.to_string();
    assert!(
        !text.contains("guest") && !text.contains("no-such-vhost"),
        "{text}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn admin_bodies_over_one_mebibyte_answer_413_problem_json_declared_or_chunked() {
    let app = TestApp::spawn_with(Options::receiver()).await;
    let bearer = token(&app).await;
    let big = json!({ "filter": { "topic": "x".repeat(2 * 1024 * 1024) } }).to_string();
    let url = format!("{}/api/v1/events/replay", app.url);

    let declared = app
        .client
        .post(&url)
        .bearer_auth(&bearer)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let (status, p) = problem(declared).await;
    assert_eq!(
        (status, p["type"].as_str()),
        (413, Some("urn:shopbridge:problem:body-too-large")),
        "{p}"
    );

    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .into_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let chunked = app
        .client
        .post(&url)
        .bearer_auth(&bearer)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(chunked).await.0, 413);

    let small = app
        .client
        .post(&url)
        .bearer_auth(&bearer)
        .json(&json!({ "filter": { "topic": "order.created" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), StatusCode::OK, "a small body still passes");
    app.cleanup().await;
}

#[tokio::test]
async fn unmatched_paths_and_methods_answer_problem_json_404_and_405() {
    let app = TestApp::spawn_with(Options::receiver()).await;
    let bearer = token(&app).await;
    for path in [
        "/nothing-here",
        "/api/v1/nothing-here",
        "/api/v2/connections",
    ] {
        let resp = app
            .client
            .get(format!("{}{path}", app.url))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap();
        let (status, p) = problem(resp).await;
        assert_eq!(
            (status, p["type"].as_str()),
            (404, Some("urn:shopbridge:problem:not-found")),
            "{path}: {p}"
        );
    }
    for (method, path, allowed) in [
        (Method::DELETE, "/api/v1/events".to_owned(), "GET"),
        (Method::PUT, "/api/v1/dlq/replay".to_owned(), "POST"),
        (Method::GET, format!("/webhooks/{}", Uuid::now_v7()), "POST"),
    ] {
        let resp = app
            .client
            .request(method.clone(), format!("{}{path}", app.url))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap();
        let allow = resp
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(allow.contains(allowed), "{method} {path}: Allow: {allow}");
        let (status, p) = problem(resp).await;
        assert_eq!(
            (status, p["type"].as_str()),
            (405, Some("urn:shopbridge:problem:method-not-allowed")),
            "{method} {path}: {p}"
        );
    }
    app.cleanup().await;
}

/// Stores `n` failed events of `bytes` bytes each for `connection`, one second apart.
async fn store_failed_events(
    app: &TestApp,
    connection: Uuid,
    n: usize,
    bytes: usize,
) -> Vec<String> {
    let start = Utc::now() - chrono::Duration::hours(1);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let event_id = format!("stored-{i:04}");
        let mut body = format!("{{\"id\":\"{event_id}\",\"pad\":\"").into_bytes();
        body.resize(bytes.saturating_sub(2).max(body.len()), b'x');
        body.extend_from_slice(b"\"}");
        sqlx::query(
            "insert into events (id, connection_id, source_event_id, channel, topic, body, received_at, status, reason) \
             values ($1, $2, $3, 'nettbutikk', 'order.created', $4, $5, 'failed', 'a test failure')",
        )
        .bind(Uuid::now_v7())
        .bind(connection)
        .bind(&event_id)
        .bind(&body)
        .bind(start + chrono::Duration::seconds(i64::try_from(i).unwrap()))
        .execute(&app.db)
        .await
        .unwrap();
        ids.push(event_id);
    }
    ids
}

#[tokio::test]
async fn a_dry_run_replay_reads_no_event_bodies() {
    let proxy = FaultProxy::start(pg_addr()).await;
    let app = TestApp::spawn_with(Options {
        pg_server: format!("postgres://postgres@{}", proxy.addr),
        ..Options::receiver()
    })
    .await;
    let conn = app.add_connection(Channel::Nettbutikk).await;
    let ids = store_failed_events(&app, conn.connection.id, 40, 64 * 1024).await;
    let broker = Broker {
        url: amqp_url(),
        names: app.names.clone(),
    };
    let filter = EventFilter {
        connection: Some(conn.connection.id),
        ..EventFilter::default()
    };

    let before = proxy.bytes_from_upstream();
    let report = stored::replay(&app.db, &broker, &filter, false, None, &no_progress)
        .await
        .unwrap();
    let read = proxy.bytes_from_upstream() - before;

    assert_eq!(report.matched, ids.len());
    assert!(
        report
            .events
            .iter()
            .all(|e| e.result == ReplayResult::WouldReplay)
    );
    assert!(
        read < 256 * 1024,
        "a dry run of 40 events of 64 KiB read {read} bytes from PostgreSQL"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_replay_larger_than_a_batch_republishes_every_event_once_in_order() {
    let app = TestApp::spawn_with(Options::receiver()).await;
    let conn = app.add_connection(Channel::Nettbutikk).await;
    let ids = store_failed_events(&app, conn.connection.id, 230, 200).await;
    let broker = Broker {
        url: amqp_url(),
        names: app.names.clone(),
    };
    let filter = EventFilter {
        connection: Some(conn.connection.id),
        limit: Some(1000),
        ..EventFilter::default()
    };

    let report = stored::replay(&app.db, &broker, &filter, true, None, &no_progress)
        .await
        .unwrap();

    assert_eq!((report.matched, report.republished), (230, 230));
    assert_eq!(report.totals.republished, 230);
    let reported: Vec<String> = report
        .events
        .iter()
        .map(|e| e.event_id.clone().unwrap())
        .collect();
    assert_eq!(
        reported, ids,
        "the report lists every event once, oldest first"
    );
    let messages = app.queued_events().await;
    let queued: Vec<String> = messages.iter().filter_map(|m| m.message_id()).collect();
    assert_eq!(queued, ids, "each was queued once, in order");
    assert!(
        messages
            .iter()
            .zip(&ids)
            .all(|(m, id)| m.body.starts_with(format!("{{\"id\":\"{id}\"").as_bytes())),
        "each with its own stored body"
    );
    app.cleanup().await;
}
