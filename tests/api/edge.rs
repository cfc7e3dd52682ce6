//! The webhook edge under clients that cost more than they should: names too long for the
//! queue, forged requests that would spend a shop's allowance, sockets that are slow, idle or
//! too many, and a service started without the key to its secrets.

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::json;
use shopbridge::channel::Channel;
use shopbridge::samples;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Options, TestApp, problem};

/// A body naming the event with `id` and `type`, as nettbutikk and Stripe do (WooCommerce
/// takes its resource id from `id`; Shopify names nothing in the body).
fn named_body(id: &str, kind: &str) -> Vec<u8> {
    json!({ "id": id, "type": kind, "created": Utc::now().timestamp(), "data": {} })
        .to_string()
        .into_bytes()
}

/// (channel, event id argument, topic argument, body, words the detail must contain)
type LongNameRow<'a> = (Channel, &'a str, &'a str, Vec<u8>, [&'static str; 2]);

#[tokio::test]
async fn an_id_or_topic_too_long_for_amqp_gets_400_naming_it_on_every_channel_and_nothing_is_queued()
 {
    let app = TestApp::spawn_with(Options::receiver()).await;
    let long = "x".repeat(300);
    let rows: Vec<LongNameRow<'_>> = vec![
        (
            Channel::Nettbutikk,
            &long,
            "order.created",
            named_body(&long, "order.created"),
            ["webhook-id", "255"],
        ),
        (
            Channel::Nettbutikk,
            "evt_1",
            "order.created",
            named_body("evt_1", &long),
            ["`type`", "200"],
        ),
        (
            Channel::Shopify,
            &long,
            "orders/create",
            b"{}".to_vec(),
            ["X-Shopify-Webhook-Id", "255"],
        ),
        (
            Channel::Shopify,
            "wh_1",
            &long,
            b"{}".to_vec(),
            ["X-Shopify-Topic", "200"],
        ),
        (
            Channel::WooCommerce,
            "",
            &long,
            named_body("1", ""),
            ["X-WC-Webhook-Topic", "200"],
        ),
        (
            Channel::WooCommerce,
            "",
            "order.created",
            named_body(&long, ""),
            ["`id`", "255"],
        ),
        (
            Channel::Stripe,
            "",
            "",
            named_body(&long, "charge.succeeded"),
            ["`id`", "255"],
        ),
        (
            Channel::Stripe,
            "",
            "",
            named_body("evt_1", &long),
            ["`type`", "200"],
        ),
    ];
    for channel in Channel::ALL {
        let conn = app.add_connection(channel).await;
        for (c, event_id, topic, body, words) in rows.iter().filter(|r| r.0 == channel) {
            let resp = app
                .post_signed(conn.connection.id, *c, &conn.secret, event_id, topic, body)
                .await;
            let (status, p) = problem(resp).await;
            assert_eq!(status, 400, "{c} {words:?}: {p}");
            let detail = p["detail"].as_str().unwrap_or_default();
            for word in words {
                assert!(detail.contains(word), "{c}: `{word}` in {detail:?}");
            }
        }
        // The handler survived: a normal event on the same channel is still accepted.
        let s = samples::order(channel, "after-long-names", Utc::now(), 0);
        let resp = app
            .post_signed(
                conn.connection.id,
                channel,
                &conn.secret,
                &s.event_id,
                &s.topic,
                &s.body,
            )
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{channel}");
    }
    let queued = app.queued_events().await;
    assert_eq!(queued.len(), 4, "only the four normal events are queued");
    app.cleanup().await;
}

/// Sends `body` as nettbutikk with a signature no key made.
async fn post_forged(app: &TestApp, id: uuid::Uuid, body: &[u8]) -> reqwest::Response {
    app.client
        .post(app.webhook_url(id))
        .header("content-type", "application/json")
        .header("webhook-id", "evt_forged")
        .header("webhook-timestamp", Utc::now().timestamp().to_string())
        .header(
            "webhook-signature",
            "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .body(body.to_vec())
        .send()
        .await
        .expect("request sent")
}

#[tokio::test]
async fn forged_requests_spend_their_own_allowance_so_the_shops_signed_event_still_gets_202() {
    let app = TestApp::spawn_with(Options {
        rate_limit: 5,
        bad_signature_rate_limit: 3,
        ..Options::receiver()
    })
    .await;
    let conn = app.add_connection(Channel::Nettbutikk).await;
    let id = conn.connection.id;
    let sample = samples::order(Channel::Nettbutikk, "forged", Utc::now(), 0);

    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut retry_after = None;
    for _ in 0..60 {
        let resp = post_forged(&app, id, &sample.body).await;
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = resp.headers().get("retry-after").cloned();
        }
        *statuses.entry(resp.status().as_u16()).or_default() += 1;
    }
    assert!(
        statuses.keys().all(|s| [401, 429].contains(s)),
        "forged requests get 401 or 429: {statuses:?}"
    );
    assert!(
        statuses.get(&401).copied().unwrap_or(0) >= 3,
        "the bad-signature burst is answered 401: {statuses:?}"
    );
    assert!(
        statuses.get(&429).copied().unwrap_or(0) > 0,
        "forged requests past the bad-signature allowance get 429: {statuses:?}"
    );
    assert!(retry_after.is_some(), "the 429 says when to retry");

    // The shop's allowance (5 per second) was not touched by the 60 forged requests.
    for i in 0..3 {
        let s = samples::order(Channel::Nettbutikk, &format!("signed-{i}"), Utc::now(), 0);
        let resp = app
            .post_signed(
                id,
                Channel::Nettbutikk,
                &conn.secret,
                &s.event_id,
                &s.topic,
                &s.body,
            )
            .await;
        assert_eq!(
            resp.status(),
            StatusCode::ACCEPTED,
            "signed event {i} after the forged burst"
        );
    }
    app.cleanup().await;
}

/// Waits up to `limit` for the server to close `sock` (EOF or reset), panicking with `what`
/// if it answers or keeps it open.
async fn closed_within(sock: &mut tokio::net::tcp::OwnedReadHalf, limit: Duration, what: &str) {
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(limit, sock.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => {}
        Ok(Ok(n)) => panic!(
            "{what}: the server answered instead of closing: {}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(_) => panic!("{what}: the connection was still open after {limit:?}"),
    }
}

/// Reads one small response (head and body arrive in one read on loopback).
async fn read_response(sock: &mut tokio::net::tcp::OwnedReadHalf, what: &str) -> String {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 5 s"))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";

#[tokio::test]
async fn a_client_sending_its_request_head_one_line_at_a_time_is_closed_at_the_header_timeout() {
    let app = TestApp::spawn_with(Options {
        header_timeout: Duration::from_secs(1),
        keep_alive_timeout: Duration::from_secs(60),
        ..Options::receiver()
    })
    .await;
    let (mut rd, mut wr) = TcpStream::connect(app.addr).await.unwrap().into_split();
    let trickle = tokio::spawn(async move {
        wr.write_all(b"GET /healthz HTTP/1.1\r\n").await.ok();
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if wr.write_all(b"x-slow: 1\r\n").await.is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    closed_within(&mut rd, Duration::from_secs(5), "slow request head").await;
    trickle.abort();
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "closed at the header timeout, not at once: {:?}",
        started.elapsed()
    );

    // A socket that says nothing at all is closed at the same timeout.
    let (mut rd, _wr) = TcpStream::connect(app.addr).await.unwrap().into_split();
    closed_within(&mut rd, Duration::from_secs(5), "silent socket").await;
    app.cleanup().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_at_the_keep_alive_timeout() {
    let app = TestApp::spawn_with(Options {
        header_timeout: Duration::from_secs(30),
        keep_alive_timeout: Duration::from_secs(1),
        ..Options::receiver()
    })
    .await;
    let (mut rd, mut wr) = TcpStream::connect(app.addr).await.unwrap().into_split();
    for i in 0..2 {
        wr.write_all(HEALTHZ).await.unwrap();
        let answer = read_response(&mut rd, "a kept-alive request").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "request {i}: {answer}");
    }
    let idle = Instant::now();
    closed_within(
        &mut rd,
        Duration::from_secs(5),
        "idle kept-alive connection",
    )
    .await;
    assert!(
        idle.elapsed() >= Duration::from_millis(800),
        "closed at the keep-alive timeout, not at once: {:?}",
        idle.elapsed()
    );
    app.cleanup().await;
}

#[tokio::test]
async fn connections_over_the_cap_wait_while_the_open_ones_are_served() {
    let app = TestApp::spawn_with(Options {
        header_timeout: Duration::from_secs(30),
        keep_alive_timeout: Duration::from_secs(30),
        max_connections: 2,
        ..Options::receiver()
    })
    .await;
    let (mut a_rd, mut a_wr) = TcpStream::connect(app.addr).await.unwrap().into_split();
    let b = TcpStream::connect(app.addr).await.unwrap();
    // Let the server accept both before the third arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (mut c_rd, mut c_wr) = TcpStream::connect(app.addr).await.unwrap().into_split();
    c_wr.write_all(HEALTHZ).await.unwrap();
    let mut buf = [0u8; 256];
    assert!(
        tokio::time::timeout(Duration::from_millis(700), c_rd.read(&mut buf))
            .await
            .is_err(),
        "the third connection waits while two are open"
    );

    a_wr.write_all(HEALTHZ).await.unwrap();
    let answer = read_response(&mut a_rd, "an open connection under the cap").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    drop(b); // a slot frees up: the waiting connection is served
    let answer = read_response(&mut c_rd, "the waiting connection").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    app.cleanup().await;
}

/// Keeps one connection to `addr` busy with a `GET /healthz` every 200 ms, as a client holding
/// a slot would; when the server closes it, opens the next. Counts the answers in `answers`.
async fn squat(
    addr: std::net::SocketAddr,
    answers: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    loop {
        let Ok(sock) = TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let (mut rd, mut wr) = sock.into_split();
        let mut buf = vec![0u8; 4096];
        loop {
            if wr.write_all(HEALTHZ).await.is_err() {
                break;
            }
            match tokio::time::timeout(Duration::from_secs(5), rd.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {
                    answers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                _ => break, // closed (or stuck in the backlog): open another
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn clients_keeping_every_slot_busy_with_kept_alive_requests_do_not_lock_out_a_new_client() {
    let app = TestApp::spawn_with(Options {
        header_timeout: Duration::from_secs(30),
        keep_alive_timeout: Duration::from_secs(60),
        max_connections: 4,
        ..Options::receiver()
    })
    .await;
    let answers = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let squatters: Vec<_> = (0..4)
        .map(|_| tokio::spawn(squat(app.addr, std::sync::Arc::clone(&answers))))
        .collect();
    // Every slot is taken and in use before the new client arrives.
    let taken = Instant::now();
    while answers.load(std::sync::atomic::Ordering::Relaxed) < 8 {
        assert!(
            taken.elapsed() < Duration::from_secs(5),
            "the four clients were not served: {} answers",
            answers.load(std::sync::atomic::Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let asked = Instant::now();
    let (mut rd, mut wr) = TcpStream::connect(app.addr).await.unwrap().into_split();
    wr.write_all(HEALTHZ).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let answer = match tokio::time::timeout(Duration::from_secs(3), rd.read(&mut buf)).await {
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Ok(Err(e)) => panic!("the new client's connection failed: {e}"),
        Err(_) => panic!(
            "the new client got no answer within 3 s while four kept-alive clients held every slot"
        ),
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let waited = asked.elapsed();
    let before = answers.load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        answers.load(std::sync::atomic::Ordering::Relaxed) > before,
        "the other clients are still served after the new one got in ({waited:?})"
    );
    for s in squatters {
        s.abort();
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_request_arriving_while_a_client_waits_for_a_slot_is_answered_before_its_connection_closes()
 {
    let app = TestApp::spawn_with(Options {
        header_timeout: Duration::from_secs(30),
        keep_alive_timeout: Duration::from_secs(30),
        max_connections: 2,
        ..Options::receiver()
    })
    .await;
    let (mut a_rd, mut a_wr) = TcpStream::connect(app.addr).await.unwrap().into_split();
    a_wr.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let _b = TcpStream::connect(app.addr).await.unwrap(); // says nothing yet
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (mut c_rd, mut c_wr) = TcpStream::connect(app.addr).await.unwrap().into_split();
    c_wr.write_all(HEALTHZ).await.unwrap();
    let mut buf = [0u8; 256];
    assert!(
        tokio::time::timeout(Duration::from_millis(700), c_rd.read(&mut buf))
            .await
            .is_err(),
        "a request head under way and a new connection are not cut to make room"
    );

    a_wr.write_all(b"host: x\r\n\r\n").await.unwrap();
    let answer = read_response(&mut a_rd, "the request whose head was arriving").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "the answer says the connection closes: {answer}"
    );
    closed_within(&mut a_rd, Duration::from_secs(2), "the answered connection").await;
    let answer = read_response(&mut c_rd, "the waiting connection").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    app.cleanup().await;
}

#[tokio::test]
async fn a_service_started_without_the_master_key_of_its_encrypted_secrets_refuses_to_start() {
    let app = TestApp::spawn_with(Options::receiver()).await;
    app.add_connection(Channel::Nettbutikk).await; // its secret is sealed with the test key
    let stop = tokio_util::sync::CancellationToken::new();

    let mut args = app.args().clone();
    args.db.master_key = None;
    let err = shopbridge::app::build_state(&args, stop.clone())
        .await
        .err()
        .expect("no receiver starts without the key");
    let message = format!("{err:#}");
    assert!(
        message.contains("SHOPBRIDGE_MASTER_KEY is not set"),
        "{message}"
    );

    args.db.master_key = Some(shopbridge::config::MasterKey([7; 32]));
    let err = shopbridge::app::build_state(&args, stop.clone())
        .await
        .err()
        .expect("no receiver starts with a key that opens none of the secrets");
    let message = format!("{err:#}");
    assert!(message.contains("wrong SHOPBRIDGE_MASTER_KEY"), "{message}");
    stop.cancel();
    app.cleanup().await;
}

/// A webhook whose body is still arriving when shutdown begins is still queued: the server
/// finishes the requests in flight, and the publisher stays until they are answered.
#[tokio::test]
async fn a_webhook_still_arriving_when_shutdown_begins_is_queued_and_gets_202() {
    let app = TestApp::spawn_with(Options::receiver()).await;
    let conn = app.add_connection(Channel::Nettbutikk).await;
    let sample = samples::order(Channel::Nettbutikk, "late", Utc::now(), 0);
    let head = app.signed_head(&conn, &sample);
    let sock = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (mut rd, mut wr) = sock.into_split();
    let (first, rest) = sample.body.split_at(sample.body.len() / 2);
    wr.write_all(head.as_bytes()).await.unwrap();
    wr.write_all(first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await; // the handler waits for the rest
    app.stop.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await; // shutdown under way
    wr.write_all(rest).await.unwrap();
    let answer = read_response(&mut rd, "the answer to the late webhook").await;
    assert!(answer.starts_with("HTTP/1.1 202"), "got: {answer}");
    let queued = app.queued_events().await;
    assert_eq!(queued.len(), 1, "the event was queued");
    app.cleanup().await;
}
