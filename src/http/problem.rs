//! Errors at the HTTP edge, each one an RFC 9457 `application/problem+json` answer.
//!
//! Client errors say what is wrong in `detail`; server errors say nothing and are logged once,
//! here, inside the request's span. No answer ever echoes a secret or a signature.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::queue::publisher::PublishError;
use crate::signature::VerifyError;

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Everything a webhook or operations handler can fail with; each variant is one problem type.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404: the path names no connection.
    #[error("no connection has this id")]
    UnknownConnection,
    /// 403: the connection exists but is disabled.
    #[error("this connection is disabled")]
    Disabled,
    /// 403: the connection was added in the console and its configuration is not saved yet.
    #[error("this connection is not activated yet: save its configuration in the console")]
    NotActivated,
    /// 400 or 401: the signature headers are missing/malformed, or do not verify.
    #[error(transparent)]
    Signature(#[from] VerifyError),
    /// 413: the body is larger than the limit.
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    /// 400: a verified event's id or topic is longer than the queue can carry; `what` says
    /// where the channel takes it from (e.g. header `webhook-id`).
    #[error("{what} is {len} bytes, more than the {limit} allowed")]
    NameTooLong {
        /// Where the value came from, as the channel names it.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The most allowed.
        limit: usize,
    },
    /// 400: the body could not be read (the client closed or sent garbage framing).
    #[error("the request body could not be read")]
    BadBody,
    /// 429: the connection sends faster than its limit.
    #[error("too many requests for this connection")]
    RateLimited(Duration),
    /// 503: the event could not be queued; the shop should retry.
    #[error("the event could not be queued; retry later")]
    Queue(#[from] PublishError),
    /// 503: PostgreSQL is unreachable or overloaded; the client should retry.
    #[error("the database is unavailable; retry later")]
    Database(#[source] sqlx::Error),
    /// 408: the request took longer than the request timeout (e.g. a body sent too slowly).
    #[error("the request took longer than {0:?}")]
    Timeout(Duration),
    /// 503: a dependency is down (readiness).
    #[error("not ready: {0}")]
    NotReady(String),
    /// 401: the admin API was called without a live bearer token.
    #[error("a valid bearer token is required (Authorization: Bearer sbt_…)")]
    Unauthorized,
    /// 404: the admin API path names nothing.
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists, but not with this method.
    #[error("this path does not take this method; the Allow header lists those it takes")]
    MethodNotAllowed,
    /// 400: a parameter or body could not be read.
    #[error("{0}")]
    BadRequest(String),
    /// 422: a field is not acceptable; `field` names it.
    #[error("{field}: {message}")]
    Invalid {
        /// The field, as the API spells it.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// 409: it exists already.
    #[error("{0}")]
    Conflict(String),
    /// 503: RabbitMQ is needed (DLQ, replay) and unavailable. The string is logged, never
    /// shown: the broker's messages name its user and virtual host.
    #[error("the message broker is unavailable; retry later")]
    Broker(String),
    /// 500: logged with its cause chain, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    /// The invalid field (an RFC 9457 extension member), for 422.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl ApiError {
    /// The HTTP status of this error.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownConnection => StatusCode::NOT_FOUND,
            ApiError::Disabled | ApiError::NotActivated => StatusCode::FORBIDDEN,
            ApiError::Signature(e) => {
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED)
            }
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadBody | ApiError::NameTooLong { .. } => StatusCode::BAD_REQUEST,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Queue(_)
            | ApiError::Database(_)
            | ApiError::NotReady(_)
            | ApiError::Broker(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short stable name, used in the problem type and as the metrics outcome.
    #[must_use]
    pub fn slug(&self) -> &'static str {
        match self {
            ApiError::UnknownConnection => "unknown-connection",
            ApiError::Disabled => "connection-disabled",
            ApiError::NotActivated => "connection-not-activated",
            ApiError::Signature(e) if e.status() == 400 => "malformed-request",
            ApiError::Signature(_) => "invalid-signature",
            ApiError::TooLarge(_) => "body-too-large",
            ApiError::BadBody => "unreadable-body",
            ApiError::NameTooLong { .. } => "name-too-long",
            ApiError::RateLimited(_) => "rate-limited",
            ApiError::Queue(_) => "queue-unavailable",
            ApiError::Database(_) => "database-unavailable",
            ApiError::Timeout(_) => "request-timeout",
            ApiError::NotReady(_) => "not-ready",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed => "method-not-allowed",
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Invalid { .. } => "invalid-field",
            ApiError::Conflict(_) => "conflict",
            ApiError::Broker(_) => "broker-unavailable",
            ApiError::Internal(_) => "internal-error",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => return "Unauthorized",
            ApiError::NotFound(_) => return "Not found",
            ApiError::MethodNotAllowed => return "Method not allowed",
            ApiError::BadRequest(_) => return "Bad request",
            ApiError::Invalid { .. } => return "Invalid field",
            ApiError::Conflict(_) => return "Conflict",
            _ => {}
        }
        match self.status() {
            StatusCode::NOT_FOUND => "Unknown connection",
            StatusCode::FORBIDDEN => "Connection disabled",
            StatusCode::BAD_REQUEST => "Malformed request",
            StatusCode::UNAUTHORIZED => "Signature rejected",
            StatusCode::PAYLOAD_TOO_LARGE => "Body too large",
            StatusCode::REQUEST_TIMEOUT => "Request timeout",
            StatusCode::TOO_MANY_REQUESTS => "Too many requests",
            StatusCode::SERVICE_UNAVAILABLE => "Service unavailable",
            _ => "Internal error",
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited(wait) => Some(*wait),
            ApiError::Queue(_)
            | ApiError::Database(_)
            | ApiError::NotReady(_)
            | ApiError::Broker(_) => Some(Duration::from_secs(5)),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "Request failed.");
                None
            }
            ApiError::Queue(e) => {
                tracing::warn!(error = %e, cause = ?std::error::Error::source(e), "Event not queued.");
                Some(self.to_string())
            }
            ApiError::Database(e) => {
                tracing::warn!(error = %e, "PostgreSQL unavailable; answered 503.");
                Some(self.to_string())
            }
            ApiError::Broker(why) => {
                tracing::warn!(error = %why, "Admin action needs RabbitMQ, which is unavailable.");
                Some(self.to_string())
            }
            other => Some(other.to_string()),
        };
        let field = match &self {
            ApiError::Invalid { field, .. } => Some(field.clone()),
            _ => None,
        };
        let body = Problem {
            kind: format!("urn:shopbridge:problem:{}", self.slug()),
            title: self.title(),
            status: status.as_u16(),
            detail,
            field,
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if matches!(self, ApiError::Unauthorized) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(wait) = self.retry_after() {
            // Whole seconds, rounded up: "Retry-After: 0" would invite a hot loop.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}
