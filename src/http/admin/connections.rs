//! Connections: create (the secret is shown once), read, change settings, disable, enable,
//! rotate the secret. The same operations as `shopbridge connections …`.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ApiResult, Body, Path};
use crate::channel::Channel;
use crate::connections::{self, AddConnection, webhook_url};
use crate::db::connections::{self as q, ConnectionRow};
use crate::http::AppState;
use crate::http::problem::ApiError;
use crate::ops::books::{self, SettingsIn};

/// The routes of this file.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/connections", get(list).post(create))
        .route("/api/v1/connections/{id}", get(show).patch(update))
        .route("/api/v1/connections/{id}/disable", post(disable))
        .route("/api/v1/connections/{id}/enable", post(enable))
        .route(
            "/api/v1/connections/{id}/rotate-secret",
            post(rotate_secret),
        )
}

/// A connection with the URL its shop posts to.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionOut {
    /// The stored connection.
    #[serde(flatten)]
    pub connection: ConnectionRow,
    /// Where the shop sends its webhooks.
    pub webhook_url: String,
}

fn out(app: &AppState, connection: ConnectionRow) -> ConnectionOut {
    ConnectionOut {
        webhook_url: webhook_url(&app.settings.public_url, connection.id),
        connection,
    }
}

/// A new connection.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionIn {
    /// Name shown to operators.
    #[schema(min_length = 1)]
    pub name: String,
    /// nettbutikk, shopify, woocommerce or stripe.
    #[schema(value_type = String, example = "nettbutikk")]
    pub channel: Channel,
    /// Orders registered before this date (YYYY-MM-DD) are skipped; default today.
    #[schema(format = Date)]
    pub process_orders_from: Option<String>,
    /// Account for prepaid orders (must be in the chart); default 1522.
    pub prepaid_account: Option<String>,
    /// Department to post with (must exist).
    pub department: Option<String>,
    /// Location to post with (must exist).
    pub location: Option<String>,
}

/// A created connection with its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionCreated {
    /// The connection.
    #[serde(flatten)]
    pub connection: ConnectionOut,
    /// The signing secret to give the shop; never shown again.
    pub secret: String,
}

/// Every connection.
#[utoipa::path(get, path = "/api/v1/connections", tag = "connections", responses((status = 200, body = Vec<ConnectionOut>)))]
pub async fn list(State(app): State<AppState>) -> ApiResult<Vec<ConnectionOut>> {
    let rows = q::list(&mut *app.db.acquire().await?).await?;
    Ok(Json(rows.into_iter().map(|c| out(&app, c)).collect()))
}

/// Adds a connection; the answer holds its secret, shown only this once.
#[utoipa::path(post, path = "/api/v1/connections", tag = "connections", request_body = ConnectionIn,
    responses((status = 201, body = ConnectionCreated)))]
pub async fn create(
    State(app): State<AppState>,
    Body(input): Body<ConnectionIn>,
) -> Result<(StatusCode, Json<ConnectionCreated>), ApiError> {
    // The settings a connection may carry are checked against the books first, the same way
    // an update checks them; a new connection has no settings to keep, so "empty" is absence.
    let settings = SettingsIn {
        name: Some(input.name.clone()),
        process_orders_from: input.process_orders_from.clone(),
        prepaid_account: input.prepaid_account.clone(),
        department: input.department.clone(),
        location: input.location.clone(),
        max_order_amount: None,
    };
    books::check_settings(&app.db, &settings).await?;
    let from = input
        .process_orders_from
        .as_deref()
        .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d"))
        .transpose()
        .map_err(|_| ApiError::Invalid {
            field: "process_orders_from".into(),
            message: "not a date (YYYY-MM-DD)".into(),
        })?;
    let added = connections::add(
        &app.db,
        app.cache.vault(),
        AddConnection {
            name: input.name,
            channel: input.channel,
            process_orders_from: from,
            prepaid_account: input.prepaid_account.map(|a| a.trim().to_owned()),
            department: input.department,
            location: input.location,
        },
    )
    .await?;
    let created = ConnectionCreated {
        connection: out(&app, added.connection),
        secret: added.secret.expose().to_owned(),
    };
    Ok((StatusCode::CREATED, Json(created)))
}

async fn load(app: &AppState, id: Uuid) -> ApiResult<ConnectionOut> {
    let row = q::get(&mut *app.db.acquire().await?, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no connection with id {id}")))?;
    Ok(Json(out(app, row)))
}

/// One connection (never its secret).
#[utoipa::path(get, path = "/api/v1/connections/{id}", tag = "connections",
    params(("id" = Uuid, Path, description = "Connection id")), responses((status = 200, body = ConnectionOut)))]
pub async fn show(State(app): State<AppState>, Path(id): Path<Uuid>) -> ApiResult<ConnectionOut> {
    load(&app, id).await
}

/// Changes a connection's settings; absent fields stay as they are. A draft connection (one
/// added in the console) becomes active when both `process_orders_from` and `prepaid_account`
/// are given.
#[utoipa::path(patch, path = "/api/v1/connections/{id}", tag = "connections",
    params(("id" = Uuid, Path, description = "Connection id")), request_body = SettingsIn,
    responses((status = 200, body = ConnectionOut)))]
pub async fn update(
    State(app): State<AppState>,
    Path(id): Path<Uuid>,
    Body(input): Body<SettingsIn>,
) -> ApiResult<ConnectionOut> {
    books::update_connection(&app.db, id, &input).await?;
    load(&app, id).await
}

/// Disables a connection: its webhooks get 403 and nothing is queued.
#[utoipa::path(post, path = "/api/v1/connections/{id}/disable", tag = "connections",
    params(("id" = Uuid, Path, description = "Connection id")), responses((status = 200, body = ConnectionOut)))]
pub async fn disable(
    State(app): State<AppState>,
    Path(id): Path<Uuid>,
) -> ApiResult<ConnectionOut> {
    connections::set_enabled(&app.db, id, false).await?;
    load(&app, id).await
}

/// Enables a disabled connection.
#[utoipa::path(post, path = "/api/v1/connections/{id}/enable", tag = "connections",
    params(("id" = Uuid, Path, description = "Connection id")), responses((status = 200, body = ConnectionOut)))]
pub async fn enable(State(app): State<AppState>, Path(id): Path<Uuid>) -> ApiResult<ConnectionOut> {
    connections::set_enabled(&app.db, id, true).await?;
    load(&app, id).await
}

/// How long the old secret keeps verifying.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    /// Seconds the old secret keeps verifying (default 86400, at most 30 days).
    #[schema(minimum = 0, maximum = 2592000)]
    pub keep_old_for_seconds: Option<u64>,
}

/// A new secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretOut {
    /// The connection.
    pub id: Uuid,
    /// The new signing secret; never shown again.
    pub secret: String,
    /// Until when the old secret keeps verifying.
    pub old_secret_expires_at: DateTime<Utc>,
}

/// Issues a new signing secret; the old one keeps verifying for a while.
#[utoipa::path(post, path = "/api/v1/connections/{id}/rotate-secret", tag = "connections",
    params(("id" = Uuid, Path, description = "Connection id")), request_body = RotateIn,
    responses((status = 200, body = SecretOut)))]
pub async fn rotate_secret(
    State(app): State<AppState>,
    Path(id): Path<Uuid>,
    Body(input): Body<RotateIn>,
) -> ApiResult<SecretOut> {
    let secs = input.keep_old_for_seconds.unwrap_or(86_400);
    if secs > 2_592_000 {
        return Err(ApiError::Invalid {
            field: "keep_old_for_seconds".into(),
            message: "at most 30 days (2592000)".into(),
        });
    }
    let keep = Duration::from_secs(secs);
    let secret = connections::replace_secret(&app.db, app.cache.vault(), id, None, keep).await?;
    Ok(Json(SecretOut {
        id,
        secret: secret.expose().to_owned(),
        old_secret_expires_at: Utc::now()
            + chrono::Duration::seconds(i64::try_from(secs).unwrap_or(0)),
    }))
}
