//! The bad-input matrix (docs/bad-input.md): hostile or broken webhooks each get their
//! documented answer, and nothing accepted is lost. The rows of DESIGN.md §4 not covered here
//! are in `webhooks.rs` (see the matrix for the test of each row).

use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shopbridge::channel::Channel;
use shopbridge::connections::Added;
use shopbridge::samples;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Options, TestApp, eventually, problem};

const ORDER_1001: &[u8] = include_bytes!("../fixtures/events/order-created-1001.json");

/// The native order 1001 with a fresh event id, changed by `edit`.
fn order_with(event_id: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(ORDER_1001).unwrap();
    v["id"] = event_id.into();
    v["data"]["order"]["id"] = event_id.into();
    v["data"]["order"]["created_at"] = Utc::now().to_rfc3339().into();
    edit(&mut v);
    v.to_string().into_bytes()
}

async fn send_native(app: &TestApp, conn: &Added, event_id: &str, body: &[u8]) -> StatusCode {
    app.post_signed(
        conn.connection.id,
        Channel::Nettbutikk,
        &conn.secret,
        event_id,
        "order.created",
        body,
    )
    .await
    .status()
}

/// Each row: (event id, what is wrong, the body, words the dead-letter reason must contain).
type DeadRow = (&'static str, &'static str, Vec<u8>, &'static [&'static str]);

#[tokio::test]
async fn valid_json_that_cannot_be_posted_is_accepted_then_dead_lettered_with_its_reason() {
    let app = TestApp::spawn().await;
    let conn = app.add_connection(Channel::Nettbutikk).await;
    let line = |field: &'static str, value: Value| {
        move |v: &mut Value| v["data"]["order"]["lines"][0][field] = value
    };
    let rows: Vec<DeadRow> = vec![
        (
            "evt_amount_beyond_i64",
            "an amount beyond i64 øre",
            order_with(
                "evt_amount_beyond_i64",
                line("unit_price", "92233720368547758.08".into()),
            ),
            &["unit_price"],
        ),
        (
            "evt_amount_beyond_f64",
            "an amount as a JSON number beyond f64 precision",
            order_with("evt_amount_beyond_f64", |v| {
                v["data"]["order"]["total"] = json!(726.000_000_000_000_000_1)
            }),
            &["total"],
        ),
        (
            "evt_quantity_beyond_i64",
            "a quantity beyond i64",
            // serde_json keeps the digits when they do not fit: write the number by hand.
            String::from_utf8(order_with("evt_quantity_beyond_i64", |_| {}))
                .unwrap()
                .replacen("\"quantity\":2", "\"quantity\":99999999999999999999999", 1)
                .into_bytes(),
            &["quantity"],
        ),
        (
            "evt_zero_quantity",
            "a zero quantity",
            order_with("evt_zero_quantity", line("quantity", 0.into())),
            &["quantity"],
        ),
        (
            "evt_negative_quantity",
            "a negative quantity",
            order_with("evt_negative_quantity", line("quantity", (-2).into())),
            &["quantity"],
        ),
        (
            "evt_three_decimals",
            "an amount with three decimals",
            order_with("evt_three_decimals", line("unit_price", "249.001".into())),
            &["unit_price"],
        ),
        (
            "evt_no_rate",
            "a currency the company keeps no rate for",
            order_with("evt_no_rate", |v| {
                v["data"]["order"]["currency"] = "SEK".into()
            }),
            &["no exchange rate", "SEK"],
        ),
    ];
    for (id, what, body, _) in &rows {
        assert_eq!(
            send_native(&app, &conn, id, body).await,
            StatusCode::ACCEPTED,
            "{what}: valid JSON is accepted (the shop cannot fix it by retrying)"
        );
    }
    for (id, what, _, words) in &rows {
        let (status, reason) = app.wait_for_event(id).await;
        let reason = reason.unwrap_or_default();
        assert_eq!(status, "failed", "{what}: dead-lettered ({reason})");
        for word in *words {
            assert!(
                reason.contains(word),
                "{what}: the reason names {word}: {reason}"
            );
        }
    }
    let dead = std::sync::Mutex::new(Vec::new());
    eventually("every row reaches the dead-letter queue", || async {
        let got = app.drain_queue(&app.names.dead_queue).await;
        let mut dead = dead.lock().unwrap();
        dead.extend(got);
        dead.len() >= rows.len()
    })
    .await;
    let dead = dead.into_inner().unwrap();
    for (id, what, _, _) in &rows {
        let letter = dead
            .iter()
            .find(|m| m.message_id().as_deref() == Some(*id))
            .unwrap_or_else(|| panic!("{what}: in the dead-letter queue"));
        assert!(
            letter.header(shopbridge::queue::headers::REASON).is_some(),
            "{what}: the dead letter carries its reason"
        );
    }
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn huge_ids_are_kept_as_text_and_an_unknown_event_type_is_recorded_as_ignored() {
    let app = TestApp::spawn().await;
    let conn = app.add_connection(Channel::Nettbutikk).await;
    // An order id beyond i64 and f64 precision, as a string: kept exactly.
    let big_id = "123456789012345678901234567890";
    let body = order_with("evt_big_id", |v| v["data"]["order"]["id"] = big_id.into());
    assert_eq!(
        send_native(&app, &conn, "evt_big_id", &body).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(app.wait_for_event("evt_big_id").await.0, "processed");
    let key: String = sqlx::query_scalar(
        "select idempotency_key from vouchers where idempotency_key like 'invoice:%'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        key,
        format!("invoice:{big_id}:1"),
        "the id survives digit for digit"
    );

    let body = json!({"type": "customer.created", "id": "evt_unknown_type",
                      "occurred_at": Utc::now().to_rfc3339(), "data": {"customer": {"id": "c-1"}}})
    .to_string();
    assert_eq!(
        send_native(&app, &conn, "evt_unknown_type", body.as_bytes()).await,
        StatusCode::ACCEPTED
    );
    let (status, reason) = app.wait_for_event("evt_unknown_type").await;
    assert_eq!(
        status, "ignored",
        "an unknown type is recorded, not failed: {reason:?}"
    );
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_signed_body_that_is_not_utf8_or_nested_10000_deep_gets_400_on_every_channel() {
    let app = TestApp::spawn_with(Options::receiver()).await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes();
    let not_utf8 = b"{\"type\": \"order.created\", \"id\": \"\xff\xfe\"}".to_vec();
    // Every scheme parses the verified body (to name the event, or to check it is JSON) with
    // serde_json, whose recursion limit (128) turns deep nesting into an error, not a crash.
    for channel in Channel::ALL {
        let conn = app.add_connection(channel).await;
        for (what, body) in [("invalid UTF-8", &not_utf8), ("nested 10 000 deep", &deep)] {
            let resp = app
                .post_signed(
                    conn.connection.id,
                    channel,
                    &conn.secret,
                    "evt_x",
                    "orders/create",
                    body,
                )
                .await;
            let (status, p) = problem(resp).await;
            assert_eq!(status, 400, "{channel}, {what}: {p}");
        }
    }
    assert!(app.queued_events().await.is_empty(), "nothing queued");
    app.cleanup().await;
}

#[tokio::test]
async fn a_100_mb_body_gets_413_after_at_most_the_limit_is_read() {
    let app = TestApp::spawn_with(Options::receiver()).await; // the default 1 MiB limit
    let conn = app.add_connection(Channel::Nettbutikk).await;
    let path = format!("/webhooks/{}", conn.connection.id);
    // Chunked, so no Content-Length gives it away: the limit must cut the stream.
    let mut sock = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
    let (mut rd, mut wr) = sock.into_split();
    let writer = tokio::spawn(async move {
        let mut sent = 0usize;
        while sent < 100 * 1024 * 1024 {
            if wr.write_all(chunk.as_bytes()).await.is_err() {
                break; // the server closed: it stopped reading
            }
            sent += 64 * 1024;
        }
        sent
    });
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), rd.read(&mut buf))
        .await
        .expect("answered while the body was still coming")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "got: {text}");
    assert!(text.contains("application/problem+json"), "got: {text}");
    drop(rd);
    let sent = tokio::time::timeout(Duration::from_secs(60), writer)
        .await
        .expect("the sender stops once the server closes")
        .unwrap();
    assert!(
        sent < 100 * 1024 * 1024,
        "the server did not read all 100 MB"
    );
    assert!(app.queued_events().await.is_empty());
    app.cleanup().await;
}

#[tokio::test]
async fn a_body_sent_one_byte_per_second_times_out_with_408_and_nothing_is_queued() {
    let app = TestApp::spawn_with(Options {
        request_timeout: Duration::from_secs(2),
        ..Options::receiver()
    })
    .await;
    let conn = app.add_connection(Channel::Nettbutikk).await;
    let sample = samples::order(Channel::Nettbutikk, "slow", Utc::now(), 0);
    let head = app.signed_head(&conn, &sample);
    let sock = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (mut rd, mut wr) = sock.into_split();
    wr.write_all(head.as_bytes()).await.unwrap();
    let body = sample.body.clone();
    let trickle = tokio::spawn(async move {
        for byte in body.iter().take(20) {
            if wr.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut answer = Vec::new();
    let read_all = tokio::time::timeout(Duration::from_secs(15), rd.read_to_end(&mut answer)).await;
    trickle.abort();
    read_all
        .expect("the server answers and closes the connection before the body is done")
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "got: {text}");
    assert!(text.contains("application/problem+json"), "got: {text}");
    assert!(text.contains("request-timeout"), "got: {text}");
    assert!(app.queued_events().await.is_empty(), "nothing queued");
    app.cleanup().await;
}

#[tokio::test]
async fn ten_thousand_bad_signatures_get_401_while_good_events_still_get_202() {
    let app = TestApp::spawn_with(Options::receiver()).await;
    let conn = app.add_connection(Channel::Nettbutikk).await;
    let id = conn.connection.id;
    let sample = samples::order(Channel::Nettbutikk, "flood", Utc::now(), 0);
    let mut forged = shopbridge::signature::sign(
        Channel::Nettbutikk,
        &conn.secret,
        &sample.event_id,
        &sample.topic,
        Utc::now(),
        &sample.body,
    );
    forged.insert(
        "webhook-signature",
        "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
            .parse()
            .unwrap(),
    );
    let url = app.webhook_url(id);
    let bad = futures_util::stream::iter(0..10_000)
        .map(|_| {
            let (client, url, headers, body) = (
                app.client.clone(),
                url.clone(),
                forged.clone(),
                sample.body.clone(),
            );
            async move {
                client
                    .post(url)
                    .headers(headers)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }
        })
        .buffer_unordered(32)
        .fold(
            std::collections::BTreeMap::<String, usize>::new(),
            |mut seen, r| async move {
                let key = r.map_or_else(|e| format!("error: {e}"), |s| s.to_string());
                *seen.entry(key).or_default() += 1;
                seen
            },
        );
    let good = async {
        let mut accepted = Vec::new();
        for i in 0..20 {
            let s = samples::order(Channel::Nettbutikk, &format!("good-{i}"), Utc::now(), 0);
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
                "a good event during the flood"
            );
            accepted.push(s.event_id);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        accepted
    };
    let (seen, mut accepted) = futures_util::join!(bad, good);
    assert_eq!(
        seen.get("401"),
        Some(&10_000),
        "every forged request got 401: {seen:?}"
    );
    let s = samples::order(Channel::Nettbutikk, "after", Utc::now(), 0);
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
        "a good event after the flood"
    );
    accepted.push(s.event_id);
    let mut queued: Vec<String> = app
        .queued_events()
        .await
        .iter()
        .filter_map(|m| m.message_id())
        .collect();
    queued.sort();
    accepted.sort();
    assert_eq!(queued, accepted, "exactly the good events are queued");
    app.cleanup().await;
}
