//! Events, and replay from the stored events and the dead-letter queue: the same library
//! functions as `shopbridge events replay` and `shopbridge dlq …`.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{ApiResult, Body, Path, Query, check_time};
use crate::db::admin as q;
use crate::db::events::EventRow;
use crate::http::AppState;
use crate::http::problem::ApiError;
use crate::ops::dlq::{self, DeadFilter, DeadLetterList, PurgeReport};
use crate::ops::stored::{self, EventFilter};
use crate::ops::views::{self, EventView};
use crate::ops::{ReplayReport, no_progress};

/// The routes of this file.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", get(list))
        .route("/api/v1/events/replay", post(replay_events))
        .route("/api/v1/events/{id}", get(show))
        .route("/api/v1/dlq", get(list_dead))
        .route("/api/v1/dlq/replay", post(replay_dead))
        .route("/api/v1/dlq/purge", post(purge_dead))
}

/// The longest a request waits for the worker after a replay (requests time out at 30 s).
const MAX_WAIT_SECONDS: u64 = 20;

/// Paging of the event list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Skip this many (newest first).
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

fn check_events(f: &EventFilter) -> Result<(), ApiError> {
    check_time("since", f.since)?;
    check_time("until", f.until)
}

/// Events, newest first, filtered by connection, status, topic (type) and time.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventFilter, Page),
    responses((status = 200, body = Vec<EventRow>)))]
pub async fn list(
    State(app): State<AppState>,
    Query(filter): Query<EventFilter>,
    Query(page): Query<Page>,
) -> ApiResult<Vec<EventRow>> {
    check_events(&filter)?;
    let rows = q::list_events(
        &mut *app.db.acquire().await?,
        &filter,
        page.offset.unwrap_or(0),
    )
    .await?;
    Ok(Json(rows))
}

/// One event: its payload, status, reason and the vouchers it produced.
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "events",
    params(("id" = Uuid, Path, description = "shopbridge's event id")), responses((status = 200, body = EventView)))]
pub async fn show(State(app): State<AppState>, Path(id): Path<Uuid>) -> ApiResult<EventView> {
    views::events(&mut *app.db.acquire().await?, &id.to_string())
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no event with id {id}")))
}

/// A replay of stored events.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsReplayIn {
    /// Which events; at least one criterion is required.
    #[serde(default)]
    pub filter: EventFilter,
    /// Republish; false (the default) only reports what would happen.
    #[serde(default)]
    pub execute: bool,
    /// After republishing, wait this many seconds (at most 20) for the worker's outcomes.
    #[schema(minimum = 0, maximum = 20)]
    pub wait_seconds: Option<u64>,
}

fn wait(seconds: Option<u64>) -> Result<Option<Duration>, ApiError> {
    match seconds {
        Some(s) if s > MAX_WAIT_SECONDS => Err(ApiError::Invalid {
            field: "wait_seconds".into(),
            message: format!("at most {MAX_WAIT_SECONDS}"),
        }),
        other => Ok(other.map(Duration::from_secs)),
    }
}

/// Queues stored events again: failed ones are posted with the current rules, done ones are
/// duplicates and change nothing. The report says which.
#[utoipa::path(post, path = "/api/v1/events/replay", tag = "replay", request_body = EventsReplayIn,
    responses((status = 200, body = ReplayReport)))]
pub async fn replay_events(
    State(app): State<AppState>,
    Body(input): Body<EventsReplayIn>,
) -> ApiResult<ReplayReport> {
    if input.filter.is_empty() {
        return Err(ApiError::Invalid {
            field: "filter".into(),
            message: "give at least one of id, connection, status, topic, since, until".into(),
        });
    }
    check_events(&input.filter)?;
    let wait = wait(input.wait_seconds)?;
    let report = stored::replay(
        &app.db,
        &app.broker,
        &input.filter,
        input.execute,
        wait,
        &no_progress,
    )
    .await?;
    if report.executed {
        app.metrics.replayed(&report);
    }
    Ok(Json(report))
}

fn check_dead(f: &DeadFilter) -> Result<(), ApiError> {
    check_time("since", f.since)?;
    check_time("until", f.until)
}

/// Dead letters (peeked: nothing is removed).
#[utoipa::path(get, path = "/api/v1/dlq", tag = "replay", params(DeadFilter), responses((status = 200, body = DeadLetterList)))]
pub async fn list_dead(
    State(app): State<AppState>,
    Query(filter): Query<DeadFilter>,
) -> ApiResult<DeadLetterList> {
    check_dead(&filter)?;
    Ok(Json(dlq::list(&app.broker, &filter).await?))
}

/// A replay or purge of dead letters.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadIn {
    /// Which dead letters; none means all.
    #[serde(default)]
    pub filter: DeadFilter,
    /// Act; false (the default) only reports what would happen.
    #[serde(default)]
    pub execute: bool,
    /// Replay only: wait this many seconds (at most 20) for the worker's outcomes.
    #[schema(minimum = 0, maximum = 20)]
    pub wait_seconds: Option<u64>,
}

/// Sends dead letters back to the worker; each is acked only after its copy was confirmed.
#[utoipa::path(post, path = "/api/v1/dlq/replay", tag = "replay", request_body = DeadIn,
    responses((status = 200, body = ReplayReport)))]
pub async fn replay_dead(
    State(app): State<AppState>,
    Body(input): Body<DeadIn>,
) -> ApiResult<ReplayReport> {
    check_dead(&input.filter)?;
    let wait = wait(input.wait_seconds)?;
    let report = dlq::replay(
        &app.broker,
        &app.db,
        &input.filter,
        input.execute,
        wait,
        &no_progress,
    )
    .await?;
    if report.executed {
        app.metrics.replayed(&report);
    }
    Ok(Json(report))
}

/// Deletes dead letters for good (their events stay in the events table).
#[utoipa::path(post, path = "/api/v1/dlq/purge", tag = "replay", request_body = DeadIn,
    responses((status = 200, body = PurgeReport)))]
pub async fn purge_dead(
    State(app): State<AppState>,
    Body(input): Body<DeadIn>,
) -> ApiResult<PurgeReport> {
    check_dead(&input.filter)?;
    Ok(Json(
        dlq::purge(&app.broker, &input.filter, input.execute, &no_progress).await?,
    ))
}
