//! The admin API at `/api/v1`: JSON for operators and the console, behind bearer tokens
//! (`shopbridge tokens create`). Handlers are thin: each reads its input, calls the library
//! function the CLI calls too ([`crate::ops`], [`crate::connections`]), and returns its result.
//! Errors are problem+json ([`ApiError`]); the OpenAPI document is generated from these
//! handlers ([`openapi`]).

pub mod books;
pub mod connections;
pub mod events;
pub mod ledger;
pub mod openapi;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Datelike, NaiveDate};

use super::AppState;
use super::problem::ApiError;
use crate::connections::ConnectionError;
use crate::ops::OpsError;
use crate::ops::books::BooksError;

/// Largest request body the admin API reads, in bytes; larger ones get 413. The largest real
/// body (a rule set to test, a connection's configuration) is a few kilobytes.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The admin routes, nested under `/api/v1` by the caller; all but the OpenAPI document need a
/// token.
pub fn routes(state: AppState) -> Router<AppState> {
    let guarded = Router::new()
        .merge(books::routes())
        .merge(connections::routes())
        .merge(events::routes())
        .merge(ledger::routes())
        .route_layer(middleware::from_fn_with_state(state, require_token));
    Router::new()
        .route("/api/v1/openapi.json", get(openapi::document))
        .merge(guarded)
        // The app turns axum's body limit off for webhooks (they have their own); the JSON
        // extractor stops reading here instead, and its rejection becomes a 413.
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// Lets a request through only with `Authorization: Bearer <live token>`.
async fn require_token(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    match crate::ops::tokens::verify(&app.db, presented).await {
        Ok(Some(_)) => Ok(next.run(request).await),
        Ok(None) => Err(ApiError::Unauthorized),
        // An outage answers 503 even for a token that would not have verified: it could not be
        // checked, and the client should try again rather than give up on its token.
        Err(e) => Err(e.into()),
    }
}

/// A JSON body whose rejections are problem+json.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Body<T>(pub T);

/// A query string whose rejections are problem+json.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// Path parameters whose rejections are problem+json.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        match e {
            JsonRejection::JsonDataError(e) => ApiError::Invalid {
                field: "body".into(),
                message: e.body_text(),
            },
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::TooLarge(BODY_LIMIT)
            }
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::BadRequest(e.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::BadRequest(e.body_text())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            // Data exceptions (class 22): a value PostgreSQL cannot store, such as a NUL
            // character in text or a date out of its range. The caller sent it.
            sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22")) => {
                ApiError::BadRequest("a value is out of range or not valid text".into())
            }
            _ => outage_or_internal(e),
        }
    }
}

/// 503 (with Retry-After) when `e` says PostgreSQL is unreachable, overloaded or shutting
/// down, or the statement lost a conflict worth retrying, as the webhooks and the console
/// answer; 500 otherwise. The admin API's one place that tells an outage from a failure, by
/// the one classification in `db`.
fn outage_or_internal(e: sqlx::Error) -> ApiError {
    use crate::db::Failure;
    match Failure::of_sqlx(&e) {
        Failure::Unavailable | Failure::Conflict => ApiError::Database(e),
        Failure::Refused | Failure::Unknown => ApiError::Internal(e.into()),
    }
}

impl From<BooksError> for ApiError {
    fn from(e: BooksError) -> Self {
        match e {
            BooksError::Invalid { field, message } => ApiError::Invalid {
                field: field.into(),
                message,
            },
            BooksError::NotFound(m) => ApiError::NotFound(m),
            BooksError::Conflict(m) => ApiError::Conflict(m),
            BooksError::Db(e) => e.into(),
        }
    }
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> Self {
        match e {
            // The detail is logged, not shown: lapin's errors name the broker's user and vhost.
            OpsError::Amqp(e) => ApiError::Broker(e.to_string()),
            OpsError::NotConfirmed(m) => ApiError::Broker(m),
            OpsError::QueueMissing(q) => ApiError::Broker(format!("queue {q} does not exist")),
            OpsError::Db(e) => e.into(),
        }
    }
}

impl From<ConnectionError> for ApiError {
    fn from(e: ConnectionError) -> Self {
        match e {
            ConnectionError::NotFound(id) => {
                ApiError::NotFound(format!("no connection with id {id}"))
            }
            ConnectionError::Invalid { field, message } => ApiError::Invalid {
                field: field.into(),
                message,
            },
            ConnectionError::Db(e) => e.into(),
            other => ApiError::Internal(other.into()),
        }
    }
}

/// The answer of a handler.
pub type ApiResult<T> = Result<Json<T>, ApiError>;

/// Refuses dates PostgreSQL and the books cannot hold, naming the field.
///
/// # Errors
/// [`ApiError::Invalid`] for a year outside 1900–9999.
pub fn check_date(field: &str, date: Option<NaiveDate>) -> Result<(), ApiError> {
    match date {
        Some(d) if !(1900..=9999).contains(&d.year()) => Err(ApiError::Invalid {
            field: field.into(),
            message: format!("{d} is outside the years 1900 to 9999"),
        }),
        _ => Ok(()),
    }
}

/// [`check_date`] for a time.
///
/// # Errors
/// [`ApiError::Invalid`] for a year outside 1900–9999.
pub fn check_time(field: &str, t: Option<chrono::DateTime<chrono::Utc>>) -> Result<(), ApiError> {
    check_date(field, t.map(|t| t.date_naive()))
}
