//! The HTTP server: webhook intake and operations endpoints, with request ids, tracing,
//! timeouts and graceful shutdown.

pub mod admin;
pub mod client;
pub mod health;
pub mod metrics;
pub mod problem;
pub mod server;
pub mod webhooks;

pub use server::{ConnectionLimits, serve};

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use sqlx::PgPool;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::cache::ConnectionCache;
use crate::config::ServeSettings;
use crate::metrics::Metrics;
use crate::queue::publisher::Publisher;

/// What every handler can reach; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The system of record.
    pub db: PgPool,
    /// Connections and keys, cached.
    pub cache: Arc<ConnectionCache>,
    /// Queues accepted events.
    pub publisher: Publisher,
    /// Counters and histograms.
    pub metrics: Metrics,
    /// Limits and timeouts.
    pub settings: Arc<ServeSettings>,
    /// Where the queues are, for the admin API's DLQ and replay endpoints. Behind an `Arc`
    /// because axum clones the state for every request, and the names are six strings.
    pub broker: Arc<crate::ops::Broker>,
}

/// The whole HTTP API with its layers. `serve` and the tests both use it.
pub fn router(state: AppState) -> Router {
    let timeout = state.settings.request_timeout;
    Router::new()
        .merge(webhooks::routes())
        .merge(health::routes())
        .merge(admin::routes(state.clone()))
        .merge(crate::console::routes(state.clone()))
        // After every route: the 405 fallback is given to the routes that exist by now.
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        // The webhook handler enforces its own body limit (with a problem+json 413); this one
        // turns axum's default 2 MB cap off so there is exactly one limit to configure.
        .layer(DefaultBodyLimit::disable())
        // Not tower-http's TimeoutLayer: its 408 has an empty body, and every error here is
        // problem+json. Dropping the handler's future also stops reading a slow body.
        .layer(middleware::from_fn(
            move |req: Request<Body>, next: Next| time_limit(timeout, req, next),
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let path = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or(req.uri().path(), MatchedPath::as_str);
                let request_id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("http", method = %req.method(), path, request_id)
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Answers a path nothing is served at with 404 problem+json, as every other error is, rather
/// than axum's empty body.
pub(crate) async fn not_found() -> problem::ApiError {
    problem::ApiError::NotFound("nothing is served at this path".into())
}

/// Answers a method a path does not take with 405 problem+json; axum adds the `Allow` header.
pub(crate) async fn method_not_allowed() -> problem::ApiError {
    problem::ApiError::MethodNotAllowed
}

/// Answers 408 (problem+json) when the request, reading its body included, takes longer than
/// `limit`.
async fn time_limit(limit: Duration, req: Request<Body>, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => problem::ApiError::Timeout(limit).into_response(),
    }
}
