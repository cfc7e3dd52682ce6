//! Liveness, readiness and metrics for orchestrators and Prometheus.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use super::problem::ApiError;

/// `/healthz`, `/readyz` and `/metrics`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up and serving.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// PostgreSQL answers and the publisher is connected to RabbitMQ; 503 otherwise.
async fn readyz(State(app): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    // Bounded: a stalled PostgreSQL must make this answer "not ready", not hang it.
    let db_ok = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        sqlx::query("select 1").execute(&app.db),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let broker_ok = app.publisher.is_connected();
    if db_ok && broker_ok {
        Ok(Json(
            json!({ "status": "ready", "postgres": "ok", "rabbitmq": "ok" }),
        ))
    } else {
        let down: Vec<&str> = [
            (!db_ok).then_some("postgres"),
            (!broker_ok).then_some("rabbitmq"),
        ]
        .into_iter()
        .flatten()
        .collect();
        Err(ApiError::NotReady(format!(
            "{} unreachable",
            down.join(" and ")
        )))
    }
}

/// Refreshes the gauges read at scrape time (event statuses, queue depths), then renders. A
/// dependency that does not answer within a second leaves its gauges as they were.
async fn metrics(State(app): State<AppState>) -> Response {
    let limit = std::time::Duration::from_secs(1);
    let statuses = async {
        let mut conn = app.db.acquire().await?;
        crate::db::admin::events_by_status(&mut conn).await
    };
    if let Ok(Ok(rows)) = tokio::time::timeout(limit, statuses).await {
        app.metrics.set_events(&rows);
    }
    if let Ok(Ok((events, dead))) = tokio::time::timeout(limit, app.broker.depths()).await {
        app.metrics.set_queue("events", events);
        app.metrics.set_queue("dead", dead);
    }
    let mut response = app.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
