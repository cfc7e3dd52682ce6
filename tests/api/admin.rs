//! The admin API: bearer tokens on every route, CRUD round trips, validation that names the
//! field, replay through HTTP, and the generated OpenAPI document.

use chrono::NaiveDate;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shopbridge::channel::Channel;

use crate::helpers::{TestApp, eventually, problem};

const ORDER_1001: &[u8] = include_bytes!("../fixtures/events/order-created-1001.json");

struct Admin<'a> {
    app: &'a TestApp,
    token: String,
}

impl Admin<'_> {
    async fn new(app: &TestApp) -> Admin<'_> {
        let (_, token) = shopbridge::ops::tokens::create(&app.db, "tests")
            .await
            .unwrap();
        Admin { app, token }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut req = self
            .app
            .client
            .request(method, format!("{}{path}", self.app.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request sent")
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let resp = self.send(method.clone(), path, body).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }

    /// Asserts a 422 naming `field`.
    async fn invalid(&self, method: Method, path: &str, body: Value, field: &str) {
        let (status, p) = problem(self.send(method, path, Some(body)).await).await;
        assert_eq!(status, 422, "{p}");
        assert_eq!(p["field"], field, "{p}");
        assert!(p["detail"].as_str().unwrap().starts_with(field), "{p}");
    }
}

async fn openapi(app: &TestApp) -> Value {
    let resp = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.expect("the document is JSON")
}

#[tokio::test]
async fn the_openapi_document_is_openapi_3_1_and_requires_bearer_tokens() {
    let app = TestApp::spawn_with(crate::helpers::Options::receiver()).await;
    let doc = openapi(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert!(doc["paths"].as_object().unwrap().len() >= 20);
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["ReplayReport"].is_object());
    app.cleanup().await;
}

#[tokio::test]
async fn every_documented_route_answers_401_without_a_live_token_and_exists_with_one() {
    let app = TestApp::spawn_with(crate::helpers::Options::receiver()).await;
    let admin = Admin::new(&app).await;
    let (revoked_row, revoked) = shopbridge::ops::tokens::create(&app.db, "old")
        .await
        .unwrap();
    assert!(
        shopbridge::db::tokens::revoke(&mut app.db.acquire().await.unwrap(), revoked_row.id)
            .await
            .unwrap()
    );
    let doc = openapi(&app).await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let id = if path.starts_with("/api/v1/rules/") {
            "1".to_owned()
        } else {
            uuid::Uuid::now_v7().to_string()
        };
        let url = format!("{}{}", app.url, path.replace("{id}", &id));
        for method in item.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            for auth in [
                None,
                Some("Bearer sbt_not-a-token".to_owned()),
                Some(format!("Bearer {revoked}")),
                Some(format!("Basic {}", admin.token)),
            ] {
                let mut req = app.client.request(method.clone(), &url).json(&json!({}));
                if let Some(auth) = &auth {
                    req = req.header("authorization", auth);
                }
                let (status, p) = problem(req.send().await.unwrap()).await;
                assert_eq!(status, 401, "{method} {path} with {auth:?}: {p}");
                assert_eq!(p["type"], "urn:shopbridge:problem:unauthorized");
            }
            let resp = app
                .client
                .request(method.clone(), &url)
                .bearer_auth(&admin.token)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert!(
                !matches!(
                    resp.status(),
                    StatusCode::UNAUTHORIZED | StatusCode::METHOD_NOT_ALLOWED
                ),
                "{method} {path} with a live token: {}",
                resp.status()
            );
            assert!(
                resp.status().as_u16() < 500 || resp.status() == StatusCode::SERVICE_UNAVAILABLE,
                "{method} {path}: {}",
                resp.status()
            );
            checked += 1;
        }
    }
    assert!(checked >= 28, "every operation was checked ({checked})");
    app.cleanup().await;
}

#[tokio::test]
async fn connections_round_trip_and_bad_settings_name_the_field() {
    let app = TestApp::spawn_with(crate::helpers::Options::receiver()).await;
    let admin = Admin::new(&app).await;
    let created = admin
        .ok(Method::POST, "/api/v1/connections", Some(json!({"name": "Butikk", "channel": "nettbutikk", "process_orders_from": "2026-01-01"})))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        created["secret"].as_str().unwrap().len() > 20,
        "the secret is shown once"
    );
    assert!(
        created["webhook_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/webhooks/{id}"))
    );
    let listed = admin.ok(Method::GET, "/api/v1/connections", None).await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id.as_str() && c.get("secret").is_none())
    );

    let path = format!("/api/v1/connections/{id}");
    admin
        .invalid(
            Method::PATCH,
            &path,
            json!({"prepaid_account": "9999"}),
            "prepaid_account",
        )
        .await;
    admin
        .invalid(
            Method::PATCH,
            &path,
            json!({"process_orders_from": "2026-02-30"}),
            "process_orders_from",
        )
        .await;
    admin
        .invalid(
            Method::PATCH,
            &path,
            json!({"department": "nope"}),
            "department",
        )
        .await;
    admin
        .invalid(
            Method::POST,
            "/api/v1/connections",
            json!({"name": "X", "channel": "nettbutikk", "prepaid_account": "1234"}),
            "prepaid_account",
        )
        .await;

    let dept = admin
        .send(
            Method::POST,
            "/api/v1/departments",
            Some(json!({"code": "WEB", "name": "Nettsalg"})),
        )
        .await;
    assert_eq!(dept.status(), StatusCode::CREATED);
    let again = admin
        .send(
            Method::POST,
            "/api/v1/departments",
            Some(json!({"code": "WEB", "name": "Nettsalg"})),
        )
        .await;
    assert_eq!(problem(again).await.0, 409);
    let updated = admin
        .ok(Method::PATCH, &path, Some(json!({"prepaid_account": "1920", "process_orders_from": "2026-03-01", "department": "WEB"})))
        .await;
    assert_eq!(
        (
            updated["prepaid_account"].as_str(),
            updated["department"].as_str()
        ),
        (Some("1920"), Some("WEB"))
    );
    assert_eq!(updated["process_orders_from"], "2026-03-01");

    let disabled = admin
        .ok(Method::POST, &format!("{path}/disable"), None)
        .await;
    assert_eq!(disabled["status"], "disabled");
    let enabled = admin
        .ok(Method::POST, &format!("{path}/enable"), None)
        .await;
    assert_eq!(enabled["status"], "active");
    let rotated = admin
        .ok(
            Method::POST,
            &format!("{path}/rotate-secret"),
            Some(json!({"keep_old_for_seconds": 60})),
        )
        .await;
    assert_ne!(rotated["secret"], created["secret"]);
    let missing = admin
        .send(
            Method::GET,
            &format!("/api/v1/connections/{}", uuid::Uuid::now_v7()),
            None,
        )
        .await;
    assert_eq!(problem(missing).await.0, 404);
    let companies = admin.ok(Method::GET, "/api/v1/companies", None).await;
    assert_eq!(companies[0]["base_currency"], "NOK");
    let accounts = admin.ok(Method::GET, "/api/v1/accounts", None).await;
    assert!(
        accounts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["number"] == 1500)
    );
    app.cleanup().await;
}

#[tokio::test]
async fn rules_round_trip_with_a_dry_run_and_validation_naming_the_field() {
    let app = TestApp::spawn_with(crate::helpers::Options::receiver()).await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, NaiveDate::from_ymd_opt(2026, 1, 1))
        .await;
    let admin = Admin::new(&app).await;
    admin
        .invalid(
            Method::POST,
            "/api/v1/rules",
            json!({"account": 4242}),
            "account",
        )
        .await;
    admin
        .invalid(
            Method::POST,
            "/api/v1/rules",
            json!({"account": 3000, "kind": "gods"}),
            "kind",
        )
        .await;
    admin
        .invalid(
            Method::POST,
            "/api/v1/rules",
            json!({"account": 3000, "vat_rate": "abc"}),
            "vat_rate",
        )
        .await;
    admin
        .invalid(
            Method::POST,
            "/api/v1/rules",
            json!({"account": 3000, "set_vat_code": 77}),
            "set_vat_code",
        )
        .await;

    let rule = json!({"sku_prefix": "TS-", "vat_code": 3, "account": 3000, "connection_id": conn.connection.id});
    let created = admin.ok(Method::POST, "/api/v1/rules", Some(rule)).await;
    let path = format!("/api/v1/rules/{}", created["id"]);
    assert_eq!(
        admin.ok(Method::GET, &path, None).await["sku_prefix"],
        "TS-"
    );
    let put = admin
        .ok(
            Method::PUT,
            &path,
            Some(json!({"sku_prefix": "TS-", "vat_code": 3, "account": 3050})),
        )
        .await;
    assert_eq!(
        (put["account"].as_i64(), put["connection_id"].is_null()),
        (Some(3050), true)
    );

    let order: Value = serde_json::from_slice(ORDER_1001).unwrap();
    let placed = admin
        .ok(Method::POST, "/api/v1/rules/test", Some(json!({"channel": "nettbutikk", "connection_id": conn.connection.id, "body": order})))
        .await;
    let lines = placed.as_array().unwrap();
    let shirt = lines.iter().find(|l| l["line"] == 1).unwrap();
    assert_eq!(
        shirt["account"], 3050,
        "the more specific SKU rule wins: {shirt}"
    );
    assert!(shirt["why"].as_str().unwrap().contains("beat"), "{shirt}");

    assert_eq!(
        admin.send(Method::DELETE, &path, None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        problem(admin.send(Method::GET, &path, None).await).await.0,
        404
    );
    app.cleanup().await;
}

#[tokio::test]
async fn events_vouchers_reports_and_replay_through_the_api() {
    let app = TestApp::spawn().await;
    let conn = app
        .add_connection_from(Channel::Nettbutikk, NaiveDate::from_ymd_opt(2026, 1, 1))
        .await;
    let admin = Admin::new(&app).await;
    assert_eq!(
        app.post_native(&conn, ORDER_1001).await.status(),
        StatusCode::ACCEPTED
    );
    let event_id = serde_json::from_slice::<Value>(ORDER_1001).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.wait_for_event(&event_id).await.0, "processed");

    let events = admin
        .ok(
            Method::GET,
            &format!(
                "/api/v1/events?status=processed&connection={}",
                conn.connection.id
            ),
            None,
        )
        .await;
    assert_eq!(events.as_array().unwrap().len(), 1);
    let one = admin
        .ok(
            Method::GET,
            &format!("/api/v1/events/{}", events[0]["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(one["payload"]["id"], event_id.as_str());
    assert_eq!(one["vouchers"].as_array().unwrap().len(), 1);
    assert_eq!(one["vouchers"][0]["idempotency_key"], "invoice:1001:1");

    let vouchers = admin
        .ok(
            Method::GET,
            "/api/v1/vouchers?account=3030&from=2026-03-01&to=2026-03-31",
            None,
        )
        .await;
    assert_eq!(vouchers.as_array().unwrap().len(), 1);
    let v = admin
        .ok(
            Method::GET,
            &format!("/api/v1/vouchers/{}", vouchers[0]["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(v["lines"].as_array().unwrap().len(), 6);
    let tb = admin
        .ok(
            Method::GET,
            "/api/v1/reports/trial-balance?from=2026-01-01&to=2026-12-31",
            None,
        )
        .await;
    let receivable = tb
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["account"] == 1500)
        .unwrap();
    assert_eq!(receivable["balance"], "726.00");
    let ledger = admin
        .ok(
            Method::GET,
            "/api/v1/reports/account-ledger?account=1500&from=2026-03-01",
            None,
        )
        .await;
    assert_eq!(
        (
            ledger["opening_balance"].as_str(),
            ledger["closing_balance"].as_str()
        ),
        (Some("0.00"), Some("726.00"))
    );
    admin
        .invalid(
            Method::POST,
            "/api/v1/events/replay",
            json!({"execute": true}),
            "filter",
        )
        .await;

    let replayed = admin
        .ok(Method::POST, "/api/v1/events/replay", Some(json!({"filter": {"connection": conn.connection.id}, "execute": true, "wait_seconds": 15})))
        .await;
    assert_eq!(replayed["totals"]["duplicate"], 1, "{replayed}");
    let dlq = admin.ok(Method::GET, "/api/v1/dlq", None).await;
    assert_eq!(dlq["messages"].as_array().unwrap().len(), 0);
    let dry = admin
        .ok(Method::POST, "/api/v1/dlq/purge", Some(json!({})))
        .await;
    assert_eq!(dry["executed"], false);

    let metrics = app.metrics().await;
    assert!(
        metrics.contains("shopbridge_replayed_events_total"),
        "{metrics}"
    );
    eventually("event statuses are exported", || async {
        let m = app.metrics().await;
        m.contains("shopbridge_events{status=\"failed\"} 0")
            && m.contains("shopbridge_queue_messages{queue=\"dead\"} 0")
    })
    .await;
    app.cleanup().await;
}
