//! `/metrics`: on its own listener and not the public one, with bounded labels, and cheap to
//! scrape (one long-lived broker connection, no count of the whole events table).

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use shopbridge::channel::Channel;
use shopbridge::queue::depths::{Depths, QueueDepths};
use shopbridge::samples;

use crate::helpers::{Options, TestApp, amqp_addr, problem};
use crate::proxy::FaultProxy;

#[tokio::test]
async fn metrics_answer_on_their_own_listener_and_the_public_listener_answers_404_problem_json() {
    let app = TestApp::spawn_with(Options::receiver()).await;
    let conn = app.add_connection(Channel::Nettbutikk).await;
    let s = samples::order(Channel::Nettbutikk, "1", Utc::now(), 0);
    let resp = app
        .post_signed(
            conn.connection.id,
            Channel::Nettbutikk,
            &conn.secret,
            &s.event_id,
            &s.topic,
            &s.body,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);

    let public = app
        .client
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap();
    let (status, p) = problem(public).await;
    assert_eq!(
        (status, p["type"].as_str()),
        (404, Some("urn:shopbridge:problem:not-found")),
        "{p}"
    );

    let metrics = app.metrics().await;
    assert!(
        metrics.contains("shopbridge_webhook_requests_total{outcome=\"accepted\"} 1"),
        "one series per outcome, none per connection:\n{metrics}"
    );
    assert!(
        !metrics.contains(&conn.connection.id.to_string()),
        "no connection id is exported:\n{metrics}"
    );
    assert!(
        metrics.contains("shopbridge_publish_confirm_seconds_bucket"),
        "{metrics}"
    );
    let elsewhere = app
        .client
        .get(format!("{}/webhooks", app.metrics_url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(elsewhere).await.0,
        404,
        "the metrics listener serves /metrics only"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn the_events_gauge_counts_failed_and_in_flight_events_not_the_whole_table() {
    let app = TestApp::spawn().await;
    let conn = app.add_connection(Channel::Nettbutikk).await;
    let s = samples::order(Channel::Nettbutikk, "1", Utc::now(), 0);
    app.post_signed(
        conn.connection.id,
        Channel::Nettbutikk,
        &conn.secret,
        &s.event_id,
        &s.topic,
        &s.body,
    )
    .await;
    assert_eq!(app.wait_for_event(&s.event_id).await.0, "processed");

    let metrics = app.metrics().await;
    assert!(
        metrics.contains("shopbridge_events{status=\"failed\"} 0")
            && metrics.contains("shopbridge_events{status=\"processing\"} 0"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("shopbridge_events{status=\"processed\"}"),
        "done events are not counted at scrape time:\n{metrics}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn repeated_scrapes_open_no_broker_connection_each() {
    let proxy = FaultProxy::start(amqp_addr()).await;
    let app = TestApp::spawn_with(Options {
        amqp_url: format!("amqp://guest:guest@{}/%2f", proxy.addr),
        ..Options::receiver()
    })
    .await;
    let after_start = proxy.connections();

    for _ in 0..5 {
        let metrics = app.metrics().await;
        assert!(
            metrics.contains("shopbridge_queue_messages{queue=\"events\"} 0"),
            "{metrics}"
        );
    }
    assert!(
        proxy.connections() - after_start <= 1,
        "five scrapes opened {} broker connections",
        proxy.connections() - after_start
    );
    app.cleanup().await;
}

#[tokio::test]
async fn the_queue_depth_reader_keeps_one_connection_and_opens_another_after_it_dropped() {
    let app = TestApp::spawn_with(Options::receiver()).await;
    let proxy = FaultProxy::start(amqp_addr()).await;
    let depths = QueueDepths::new(
        format!("amqp://guest:guest@{}/%2f", proxy.addr),
        app.names.clone(),
    );
    let limit = Duration::from_secs(2);
    let empty = Depths { events: 0, dead: 0 };
    for _ in 0..3 {
        assert_eq!(depths.read(limit).await.expect("depths"), empty);
    }
    assert_eq!(proxy.connections(), 1, "three reads, one connection");

    proxy.cut();
    assert!(depths.read(limit).await.is_err(), "the broker is cut off");
    proxy.restore();
    let mut healed = None;
    for _ in 0..50 {
        if let Ok(d) = depths.read(limit).await {
            healed = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        healed,
        Some(empty),
        "the reader reconnects once the broker is back"
    );
    assert_eq!(proxy.connections(), 2, "one new connection after the cut");
    app.cleanup().await;
}
