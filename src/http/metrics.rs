//! `/metrics` in the Prometheus text format, on a listener of its own
//! (`SHOPBRIDGE_METRICS_LISTEN`, loopback by default), never on the public one: shops have no
//! business reading it, and every scrape reads PostgreSQL and RabbitMQ.
//!
//! What a scrape reads from a dependency (failed events, queue depths) is read at most once per
//! [`FRESH_FOR`]: scrapes in between (a second Prometheus, someone reloading the page) are
//! answered from the gauges as the last read left them. Queue depths come over one long-lived
//! AMQP connection ([`QueueDepths`]), not a connection per scrape.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sqlx::PgPool;
use tokio::sync::Mutex;

use super::AppState;
use crate::metrics::Metrics;
use crate::queue::depths::QueueDepths;

/// How long what a scrape read from PostgreSQL and RabbitMQ is served before it is read again.
pub const FRESH_FOR: Duration = Duration::from_secs(5);

/// How long a scrape waits for each dependency before it serves the gauges as they were.
const DEPENDENCY_LIMIT: Duration = Duration::from_secs(1);

/// What the metrics listener serves from.
struct Scrape {
    db: PgPool,
    metrics: Metrics,
    depths: QueueDepths,
    /// When the gauges were last read from the dependencies. Behind an async lock so that
    /// scrapes arriving together read once.
    refreshed: Mutex<Option<Instant>>,
}

/// The metrics listener's routes: `/metrics`, and problem+json for anything else.
pub fn router(app: &AppState) -> Router {
    let scrape = Arc::new(Scrape {
        db: app.db.clone(),
        metrics: app.metrics.clone(),
        depths: QueueDepths::new(app.broker.url.clone(), app.broker.names.clone()),
        refreshed: Mutex::new(None),
    });
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(super::not_found)
        .method_not_allowed_fallback(super::method_not_allowed)
        .with_state(scrape)
}

/// Refreshes the gauges read at scrape time when they are older than [`FRESH_FOR`], then
/// renders every metric.
async fn metrics(State(scrape): State<Arc<Scrape>>) -> Response {
    scrape.refresh().await;
    let mut response = scrape.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

impl Scrape {
    /// Reads event statuses and queue depths into the gauges, unless that was done less than
    /// [`FRESH_FOR`] ago. A dependency that fails or does not answer within a second leaves its
    /// gauges as they were; the next refresh tries again.
    async fn refresh(&self) {
        let mut refreshed = self.refreshed.lock().await;
        if refreshed.is_some_and(|at| at.elapsed() < FRESH_FOR) {
            return;
        }
        let statuses = async {
            let mut conn = self.db.acquire().await?;
            crate::db::admin::events_by_status(&mut conn).await
        };
        let (statuses, depths) = tokio::join!(
            tokio::time::timeout(DEPENDENCY_LIMIT, statuses),
            self.depths.read(DEPENDENCY_LIMIT),
        );
        match statuses {
            Ok(Ok(rows)) => self.metrics.set_events(&rows),
            Ok(Err(e)) => tracing::debug!(error = %e, "Metrics: event statuses not read."),
            Err(_) => tracing::debug!("Metrics: event statuses not read in time."),
        }
        match depths {
            Ok(d) => {
                self.metrics.set_queue("events", d.events);
                self.metrics.set_queue("dead", d.dead);
            }
            Err(e) => tracing::debug!(error = %e, "Metrics: queue depths not read."),
        }
        *refreshed = Some(Instant::now());
    }
}
