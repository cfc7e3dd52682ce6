//! Liveness and readiness for orchestrators. Metrics have a listener of their own
//! ([`super::metrics`]).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use super::problem::ApiError;

/// `/healthz` and `/readyz`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
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
