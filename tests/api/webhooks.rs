//! The webhook endpoint: what it accepts, what it refuses, and that what it accepts is queued.

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use shopbridge::channel::Channel;
use shopbridge::connections;
use shopbridge::queue::headers;
use shopbridge::samples;
use shopbridge::signature::{self, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Options, TestApp, amqp_addr, eventually, problem};
use crate::proxy::FaultProxy;

#[tokio::test]
async fn a_valid_event_of_each_channel_is_accepted_and_queued_once_with_its_headers() {
    let app = TestApp::spawn_with(Options::receiver()).await;
    for channel in Channel::ALL {
        let conn = app.add_connection(channel).await;
        let id = conn.connection.id;
        let sample = samples::order(channel, "1001", Utc::now(), 0);
        let resp = app
            .post_signed(
                id,
                channel,
                &conn.secret,
                &sample.event_id,
                &sample.topic,
                &sample.body,
            )
            .await
            .error_for_status()
            .expect("2xx");
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{channel}");
        let answer: serde_json::Value = resp.json().await.unwrap();
        let event_id = answer["event_id"]
            .as_str()
            .expect("event_id in answer")
            .to_owned();
        if !sample.event_id.is_empty() {
            assert_eq!(
                event_id, sample.event_id,
                "{channel}: the shop's event id is kept"
            );
        }

        let queued = app.queued_events().await;
        assert_eq!(queued.len(), 1, "{channel}: exactly one message");
        let msg = &queued[0];
        assert_eq!(
            msg.body, sample.body,
            "{channel}: the body is queued byte for byte"
        );
        assert_eq!(msg.message_id().as_deref(), Some(event_id.as_str()));
        assert_eq!(msg.header(headers::CONNECTION_ID), Some(id.to_string()));
        assert_eq!(
            msg.header(headers::CHANNEL).as_deref(),
            Some(channel.as_str())
        );
        assert_eq!(msg.header(headers::TOPIC), Some(sample.topic.clone()));
        assert!(
            msg.header(headers::RECEIVED_AT).is_some(),
            "received_at header"
        );
        assert!(
            msg.header(headers::REQUEST_ID).is_some(),
            "request id header"
        );
        assert_eq!(msg.properties.delivery_mode(), &Some(2), "persistent");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn the_woocommerce_fixture_verifies_over_http_with_the_platforms_own_secret() {
    let app = TestApp::spawn_with(Options::receiver()).await;
    let conn = app.add_connection(Channel::WooCommerce).await;
    let id = conn.connection.id;
    // WC-2 of the shared test vectors: the platform's secret, set the way an operator would.
    let secret = Secret::new("wc_test_secret".into());
    connections::replace_secret(&app.db, &app.vault(), id, Some(secret), Duration::ZERO)
        .await
        .unwrap();
    let body = include_bytes!("../fixtures/webhooks/woocommerce-order-docs-sample.json");
    let resp = app
        .client
        .post(app.webhook_url(id))
        .header(
            "x-wc-webhook-signature",
            "j1bsC9fSyEDssUtA9yZXx5gEF589iH9q9J4Nc0bvSH4=",
        )
        .header("x-wc-webhook-topic", "order.created")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(app.queued_events().await.len(), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn the_woocommerce_creation_ping_gets_200_and_nothing_is_queued() {
    let app = TestApp::spawn_with(Options::receiver()).await;
    let conn = app.add_connection(Channel::WooCommerce).await;
    let resp = app
        .client
        .post(app.webhook_url(conn.connection.id))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("webhook_id=17")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(app.queued_events().await.is_empty());
    app.cleanup().await;
}

#[tokio::test]
async fn every_rejection_has_its_status_and_problem_body_and_queues_nothing() {
    let app = TestApp::spawn_with(Options::receiver()).await;
    let conn = app.add_connection(Channel::Nettbutikk).await;
    let id = conn.connection.id;
    let sample = samples::order(Channel::Nettbutikk, "1001", Utc::now(), 0);
    let good = signature::sign(
        Channel::Nettbutikk,
        &conn.secret,
        &sample.event_id,
        &sample.topic,
        Utc::now(),
        &sample.body,
    );
    let post = |url: String, headers: reqwest::header::HeaderMap, body: Vec<u8>| {
        let client = app.client.clone();
        async move {
            client
                .post(url)
                .headers(headers)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };

    // 404: an id that is no connection, and a path that is no id at all.
    let (s, p) = problem(
        post(
            app.webhook_url(uuid::Uuid::now_v7()),
            good.clone(),
            sample.body.clone(),
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, p["type"].as_str().unwrap()),
        (404, "urn:shopbridge:problem:unknown-connection")
    );
    let (s, _) = problem(
        post(
            format!("{}/webhooks/not-a-uuid", app.url),
            good.clone(),
            sample.body.clone(),
        )
        .await,
    )
    .await;
    assert_eq!(s, 404);

    // 400: a header missing, and a timestamp that is no number.
    let mut missing = good.clone();
    missing.remove("webhook-signature");
    let (s, p) = problem(post(app.webhook_url(id), missing, sample.body.clone()).await).await;
    assert_eq!(s, 400);
    assert!(
        p["detail"].as_str().unwrap().contains("webhook-signature"),
        "detail names the header: {p}"
    );
    let mut malformed = good.clone();
    malformed.insert("webhook-timestamp", "yesterday".parse().unwrap());
    assert_eq!(
        problem(post(app.webhook_url(id), malformed, sample.body.clone()).await)
            .await
            .0,
        400
    );

    // 401: one byte of the body changed; the signature is not echoed.
    let mut tampered = sample.body.clone();
    tampered[10] ^= 1;
    let (s, p) = problem(post(app.webhook_url(id), good.clone(), tampered).await).await;
    assert_eq!(s, 401);
    let sig = good["webhook-signature"].to_str().unwrap();
    assert!(
        !p.to_string().contains(&sig[3..20]),
        "the signature is never echoed"
    );

    // 401: stale and future timestamps, correctly signed (the exact ±300 s edge is a unit test;
    // over HTTP the clock moves between signing and checking).
    for skew in [-310, 310] {
        let at = Utc::now() + chrono::Duration::seconds(skew);
        let h = signature::sign(
            Channel::Nettbutikk,
            &conn.secret,
            &sample.event_id,
            &sample.topic,
            at,
            &sample.body,
        );
        assert_eq!(
            problem(post(app.webhook_url(id), h, sample.body.clone()).await)
                .await
                .0,
            401,
            "skew {skew}"
        );
    }

    // 401: signed with a secret that is not (or no longer) the connection's.
    let other = Secret::generate(Channel::Nettbutikk);
    let h = signature::sign(
        Channel::Nettbutikk,
        &other,
        &sample.event_id,
        &sample.topic,
        Utc::now(),
        &sample.body,
    );
    assert_eq!(
        problem(post(app.webhook_url(id), h, sample.body.clone()).await)
            .await
            .0,
        401
    );

    // 400: correctly signed, but not JSON.
    let h = signature::sign(
        Channel::Nettbutikk,
        &conn.secret,
        "evt_x",
        "order.created",
        Utc::now(),
        b"not json",
    );
    assert_eq!(
        problem(post(app.webhook_url(id), h, b"not json".to_vec()).await)
            .await
            .0,
        400
    );

    // 403: disabled.
    connections::set_enabled(&app.db, id, false).await.unwrap();
    // Until the change notice reaches the receiver's cache, the probe is still accepted (and
    // queued, rightly): count those.
    let accepted_while_disabling = std::sync::atomic::AtomicUsize::new(0);
    eventually("the disable reaches the receiver", || {
        let (url, h, b) = (app.webhook_url(id), good.clone(), sample.body.clone());
        let (post, accepted) = (&post, &accepted_while_disabling);
        async move {
            let status = post(url, h, b).await.status();
            if status == StatusCode::ACCEPTED {
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            status == StatusCode::FORBIDDEN
        }
    })
    .await;
    let (s, p) = problem(post(app.webhook_url(id), good.clone(), sample.body.clone()).await).await;
    assert_eq!(
        (s, p["type"].as_str().unwrap()),
        (403, "urn:shopbridge:problem:connection-disabled")
    );

    assert_eq!(
        app.queued_events().await.len(),
        accepted_while_disabling.into_inner(),
        "no rejected request queued anything"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_without_being_read() {
    let app = TestApp::spawn_with(Options {
        body_limit: 4096,
        ..Options::receiver()
    })
    .await;
    let conn = app.add_connection(Channel::Nettbutikk).await;
    let path = format!("/webhooks/{}", conn.connection.id);

    // Announces 100 MB but sends 10 bytes, then waits: the answer must come without the rest.
    let mut sock = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 104857600\r\n\r\n{{\"a\":12345"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf))
        .await
        .expect("answered before the body was sent")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "got: {text}");
    assert!(text.contains("application/problem+json"), "got: {text}");

    // Chunked, with no length announced: cut off once past the limit.
    let resp = app
        .client
        .post(app.webhook_url(conn.connection.id))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            (0..10).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])),
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp).await.0, 413);
    assert!(app.queued_events().await.is_empty());
    app.cleanup().await;
}

#[tokio::test]
async fn too_many_requests_for_one_connection_get_429_with_retry_after() {
    let app = TestApp::spawn_with(Options {
        rate_limit: 2,
        ..Options::receiver()
    })
    .await;
    let conn = app.add_connection(Channel::Nettbutikk).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..5 {
        let s = samples::order(Channel::Nettbutikk, &format!("{i}"), Utc::now(), 0);
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
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
        }
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(
        &statuses[..2],
        &[202, 202],
        "the burst is allowed: {statuses:?}"
    );
    assert!(statuses.contains(&429), "then refused: {statuses:?}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    app.cleanup().await;
}

#[tokio::test]
async fn when_the_broker_is_unreachable_the_answer_is_503_and_it_heals_without_a_restart() {
    let proxy = FaultProxy::start(amqp_addr()).await;
    let url = format!("amqp://guest:guest@{}/%2f", proxy.addr);
    let app = TestApp::spawn_with(Options {
        amqp_url: url,
        confirm_timeout: Duration::from_secs(2),
        ..Options::receiver()
    })
    .await;
    let conn = app.add_connection(Channel::Nettbutikk).await;
    let send = |order: &str| {
        let s = samples::order(Channel::Nettbutikk, order, Utc::now(), 0);
        let (app, conn) = (&app, &conn);
        async move {
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
            (resp, s.event_id)
        }
    };
    let (resp, first) = send("1").await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);

    proxy.cut();
    let (resp, _) = send("2").await;
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned())
            .as_deref(),
        Some("5")
    );
    let (s, p) = problem(resp).await;
    assert_eq!(
        (s, p["type"].as_str().unwrap()),
        (503, "urn:shopbridge:problem:queue-unavailable")
    );
    let ready = app
        .client
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ready.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready without the broker"
    );

    proxy.restore();
    let accepted = std::sync::Mutex::new(None);
    eventually("the publisher reconnects by itself", || async {
        let (resp, id) = send("3").await;
        let ok = resp.status() == StatusCode::ACCEPTED;
        if ok {
            *accepted.lock().unwrap() = Some(id);
        }
        ok
    })
    .await;
    let accepted = accepted.into_inner().unwrap().unwrap();
    let ids: Vec<_> = app
        .queued_events()
        .await
        .iter()
        .filter_map(|m| m.message_id())
        .collect();
    assert!(
        ids.contains(&first),
        "the event accepted before the cut is kept"
    );
    assert!(
        ids.contains(&accepted),
        "the event accepted after the heal is queued"
    );
    assert_eq!(ids.len(), 2, "the refused event was not queued: {ids:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn during_a_rotation_both_secrets_verify_and_after_it_only_the_new_one() {
    let app = TestApp::spawn_with(Options::receiver()).await;
    let conn = app.add_connection(Channel::Nettbutikk).await;
    let id = conn.connection.id;
    let new = connections::replace_secret(&app.db, &app.vault(), id, None, Duration::from_secs(2))
        .await
        .unwrap();
    let send = |secret: &Secret, n: u32| {
        let s = samples::order(Channel::Nettbutikk, &n.to_string(), Utc::now(), 0);
        let secret = secret.clone();
        let app = &app;
        async move {
            app.post_signed(
                id,
                Channel::Nettbutikk,
                &secret,
                &s.event_id,
                &s.topic,
                &s.body,
            )
            .await
            .status()
        }
    };
    assert_eq!(
        send(&conn.secret, 1).await,
        StatusCode::ACCEPTED,
        "old secret during the overlap"
    );
    assert_eq!(
        send(&new, 2).await,
        StatusCode::ACCEPTED,
        "new secret during the overlap"
    );
    eventually("the old secret expires", || async {
        send(&conn.secret, 3).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert_eq!(
        send(&new, 4).await,
        StatusCode::ACCEPTED,
        "new secret after the overlap"
    );

    // A second rotation retires the first secret for good: never more than two verify.
    let newest =
        connections::replace_secret(&app.db, &app.vault(), id, None, Duration::from_secs(3600))
            .await
            .unwrap();
    connections::replace_secret(&app.db, &app.vault(), id, None, Duration::from_secs(3600))
        .await
        .unwrap();
    eventually("the rotated-out secret stops", || async {
        send(&new, 5).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert_eq!(send(&newest, 6).await, StatusCode::ACCEPTED);
    app.cleanup().await;
}

#[tokio::test]
async fn a_request_in_flight_at_shutdown_completes_with_202() {
    let proxy = FaultProxy::start(amqp_addr()).await;
    let url = format!("amqp://guest:guest@{}/%2f", proxy.addr);
    let app = TestApp::spawn_with(Options {
        amqp_url: url,
        ..Options::receiver()
    })
    .await;
    let conn = app.add_connection(Channel::Nettbutikk).await;
    proxy.set_latency(Duration::from_millis(400)); // the confirm is slow to come
    let s = samples::order(Channel::Nettbutikk, "1", Utc::now(), 0);
    let in_flight = app.post_signed(
        conn.connection.id,
        Channel::Nettbutikk,
        &conn.secret,
        &s.event_id,
        &s.topic,
        &s.body,
    );
    let stop = app.stop.clone();
    let (resp, ()) = tokio::join!(in_flight, async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.cancel();
    });
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    proxy.set_latency(Duration::ZERO);
    let ids: Vec<_> = app
        .queued_events()
        .await
        .iter()
        .filter_map(|m| m.message_id())
        .collect();
    assert_eq!(ids, vec![s.event_id]);
    app.cleanup().await;
}

#[tokio::test]
async fn health_and_readiness_answer_on_the_public_listener() {
    let app = TestApp::spawn_with(Options::receiver()).await;
    let get = |p: &str| app.client.get(format!("{}{p}", app.url)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);
    assert_eq!(get("/readyz").await.unwrap().status(), StatusCode::OK);
    app.cleanup().await;
}
