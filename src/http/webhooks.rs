//! `POST /webhooks/{connection_id}`: verify a shop's webhook and queue it durably.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Limited};
use serde_json::json;
use uuid::Uuid;

use super::AppState;
use super::problem::ApiError;
use crate::connections::ConnectionError;
use crate::queue::{NameField, Outgoing};
use crate::signature::{self, Delivery};

/// The webhook route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/webhooks/{connection_id}", post(receive))
}

/// Accepts one webhook, verifies its signature and queues it durably. Answers 202 only after
/// RabbitMQ confirmed the message: a shop that got 202 will not send the event again, so it
/// must not be lost.
#[tracing::instrument(skip_all, fields(connection = %id, event_id = tracing::field::Empty))]
async fn receive(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body, // raw bytes: the signature covers them, so parse only after verifying
) -> Response {
    let result = accept(&app, &id, &headers, body).await;
    let outcome = match &result {
        Ok(Accepted::Event(_)) => "accepted",
        Ok(Accepted::Ping) => "ping",
        Err(ApiError::UnknownConnection) => "unknown_connection",
        Err(e) => e.slug(),
    };
    app.metrics.request(outcome);
    match result {
        Ok(Accepted::Event(event_id)) => {
            (StatusCode::ACCEPTED, Json(json!({ "event_id": event_id }))).into_response()
        }
        Ok(Accepted::Ping) => {
            (StatusCode::OK, Json(json!({ "status": "ping received" }))).into_response()
        }
        Err(e) => e.into_response(),
    }
}

enum Accepted {
    Event(String),
    Ping,
}

async fn accept(
    app: &AppState,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Accepted, ApiError> {
    let id: Uuid = id.parse().map_err(|_| ApiError::UnknownConnection)?;
    let limit = app.settings.body_limit;
    if declared_length(headers).is_some_and(|len| len > limit) {
        return Err(ApiError::TooLarge(limit)); // refused before a byte of the body is read
    }
    let conn = app
        .cache
        .get(id)
        .await
        .map_err(|e| match e {
            ConnectionError::Db(e) => ApiError::Database(e),
            other => ApiError::Internal(other.into()),
        })?
        .ok_or(ApiError::UnknownConnection)?;
    if conn.draft {
        return Err(ApiError::NotActivated);
    }
    if !conn.active {
        return Err(ApiError::Disabled);
    }
    let body = read_limited(body, limit).await?;
    // Anyone can send a request that fails verification, so those spend an allowance of their
    // own; the shop's is charged only once a webhook is known to be the shop's.
    let verified = match signature::verify(conn.channel, headers, &body, &conn.keys, Utc::now()) {
        Ok(Delivery::Event(v)) => v,
        Ok(Delivery::Ping) => {
            app.cache
                .admit_unverified(id)
                .map_err(ApiError::RateLimited)?;
            return Ok(Accepted::Ping); // unsigned by design, so it is charged as unverified
        }
        Err(e) => {
            app.cache
                .admit_unverified(id)
                .map_err(ApiError::RateLimited)?;
            return Err(e.into());
        }
    };
    tracing::Span::current().record("event_id", verified.event_id.as_str());
    let out = Outgoing {
        event_id: verified.event_id,
        connection_id: id,
        channel: conn.channel,
        topic: verified.topic,
        received_at: Utc::now(),
        occurred_at: verified.occurred_at,
        request_id: headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    out.check().map_err(|e| ApiError::NameTooLong {
        what: match e.field {
            NameField::EventId => signature::event_id_source(conn.channel),
            NameField::Topic => signature::topic_source(conn.channel),
        },
        len: e.len,
        limit: e.limit,
    })?;
    app.cache.admit(id).map_err(ApiError::RateLimited)?;
    app.publisher.publish(&out, &body).await?;
    Ok(Accepted::Event(out.event_id))
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Reads at most `limit` bytes; a longer body (chunked, or lying about its length) is cut off
/// with 413 as soon as it crosses the limit.
async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::TooLarge(limit))
        }
        Err(_) => Err(ApiError::BadBody),
    }
}
