//! Companies, chart, departments, locations and posting rules.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ApiResult, Body, Path, Query};
use crate::channel::Channel;
use crate::db::books::{self as q, AccountRow, CompanyRow, Dimension, DimensionRow};
use crate::http::AppState;
use crate::http::problem::ApiError;
use crate::ops::books::{self, DimensionIn, LinePlacement, RuleIn, RuleOut};

/// The routes of this file.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/companies", get(companies))
        .route("/api/v1/accounts", get(accounts))
        .route("/api/v1/departments", get(departments).post(add_department))
        .route("/api/v1/locations", get(locations).post(add_location))
        .route("/api/v1/rules", get(list_rules).post(add_rule))
        .route("/api/v1/rules/test", post(test_rules))
        .route(
            "/api/v1/rules/{id}",
            get(get_rule).put(put_rule).delete(delete_rule),
        )
}

/// The companies.
#[utoipa::path(get, path = "/api/v1/companies", tag = "books", responses((status = 200, body = Vec<CompanyRow>)))]
pub async fn companies(State(app): State<AppState>) -> ApiResult<Vec<CompanyRow>> {
    Ok(Json(q::companies(&mut *app.db.acquire().await?).await?))
}

/// The default company's chart of accounts.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "books", responses((status = 200, body = Vec<AccountRow>)))]
pub async fn accounts(State(app): State<AppState>) -> ApiResult<Vec<AccountRow>> {
    let mut c = app.db.acquire().await?;
    let company = crate::db::connections::default_company(&mut c).await?;
    Ok(Json(q::accounts(&mut c, company).await?))
}

/// Departments.
#[utoipa::path(get, path = "/api/v1/departments", tag = "books", responses((status = 200, body = Vec<DimensionRow>)))]
pub async fn departments(State(app): State<AppState>) -> ApiResult<Vec<DimensionRow>> {
    Ok(Json(
        books::list_dimension(&app.db, Dimension::Department).await?,
    ))
}

/// Adds a department.
#[utoipa::path(post, path = "/api/v1/departments", tag = "books", request_body = DimensionIn,
    responses((status = 201, body = DimensionRow)))]
pub async fn add_department(
    State(app): State<AppState>,
    Body(input): Body<DimensionIn>,
) -> Result<(StatusCode, Json<DimensionRow>), ApiError> {
    let row = books::add_dimension(&app.db, Dimension::Department, &input).await?;
    Ok((StatusCode::CREATED, Json(row)))
}

/// Locations ("sted/lager").
#[utoipa::path(get, path = "/api/v1/locations", tag = "books", responses((status = 200, body = Vec<DimensionRow>)))]
pub async fn locations(State(app): State<AppState>) -> ApiResult<Vec<DimensionRow>> {
    Ok(Json(
        books::list_dimension(&app.db, Dimension::Location).await?,
    ))
}

/// Adds a location.
#[utoipa::path(post, path = "/api/v1/locations", tag = "books", request_body = DimensionIn,
    responses((status = 201, body = DimensionRow)))]
pub async fn add_location(
    State(app): State<AppState>,
    Body(input): Body<DimensionIn>,
) -> Result<(StatusCode, Json<DimensionRow>), ApiError> {
    let row = books::add_dimension(&app.db, Dimension::Location, &input).await?;
    Ok((StatusCode::CREATED, Json(row)))
}

/// Which rules to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RulesQuery {
    /// Only the rules that apply to this connection.
    pub connection: Option<Uuid>,
}

/// The posting rules.
#[utoipa::path(get, path = "/api/v1/rules", tag = "rules", params(RulesQuery), responses((status = 200, body = Vec<RuleOut>)))]
pub async fn list_rules(
    State(app): State<AppState>,
    Query(q): Query<RulesQuery>,
) -> ApiResult<Vec<RuleOut>> {
    Ok(Json(books::list_rules(&app.db, q.connection).await?))
}

/// Adds a posting rule; workers use it within 5 s.
#[utoipa::path(post, path = "/api/v1/rules", tag = "rules", request_body = RuleIn, responses((status = 201, body = RuleOut)))]
pub async fn add_rule(
    State(app): State<AppState>,
    Body(input): Body<RuleIn>,
) -> Result<(StatusCode, Json<RuleOut>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(books::save_rule(&app.db, None, &input).await?),
    ))
}

/// One posting rule.
#[utoipa::path(get, path = "/api/v1/rules/{id}", tag = "rules", params(("id" = i64, Path, description = "Rule id")),
    responses((status = 200, body = RuleOut)))]
pub async fn get_rule(State(app): State<AppState>, Path(id): Path<i64>) -> ApiResult<RuleOut> {
    Ok(Json(books::get_rule(&app.db, id).await?))
}

/// Replaces a posting rule's criteria and placement.
#[utoipa::path(put, path = "/api/v1/rules/{id}", tag = "rules", params(("id" = i64, Path, description = "Rule id")),
    request_body = RuleIn, responses((status = 200, body = RuleOut)))]
pub async fn put_rule(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    Body(input): Body<RuleIn>,
) -> ApiResult<RuleOut> {
    Ok(Json(books::save_rule(&app.db, Some(id), &input).await?))
}

/// Deletes a posting rule.
#[utoipa::path(delete, path = "/api/v1/rules/{id}", tag = "rules", params(("id" = i64, Path, description = "Rule id")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_rule(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    books::remove_rule(&app.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A dry run of the rules on a sample document.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleTestIn {
    /// The channel whose format `body` is in.
    #[schema(value_type = String, example = "nettbutikk")]
    pub channel: Channel,
    /// The topic; default: the body's `type`, or the channel's order topic.
    pub topic: Option<String>,
    /// Whose rules and settings; default: the first connection of the channel.
    pub connection_id: Option<Uuid>,
    /// The sample webhook body.
    pub body: serde_json::Value,
}

/// Which rule places each line of a sample order, and why (nothing is posted).
#[utoipa::path(post, path = "/api/v1/rules/test", tag = "rules", request_body = RuleTestIn,
    responses((status = 200, body = Vec<LinePlacement>)))]
pub async fn test_rules(
    State(app): State<AppState>,
    Body(input): Body<RuleTestIn>,
) -> ApiResult<Vec<LinePlacement>> {
    let topic = input.topic.unwrap_or_else(|| {
        input.body.get("type").and_then(|t| t.as_str()).map_or_else(
            || match input.channel {
                Channel::Shopify => "orders/create".to_owned(),
                _ => "order.created".to_owned(),
            },
            str::to_owned,
        )
    });
    let body = serde_json::to_vec(&input.body).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(
        books::test_rules(&app.db, input.channel, &topic, &body, input.connection_id).await?,
    ))
}
