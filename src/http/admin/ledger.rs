//! Vouchers and reports.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{ApiResult, Path, Query, check_date};
use crate::db::admin::VoucherFilter;
use crate::http::AppState;
use crate::http::problem::ApiError;
use crate::ops::views::{self, AccountLedger, VoucherView};
use crate::posting::Money;

/// The routes of this file.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/vouchers", get(list))
        .route("/api/v1/vouchers/{id}", get(show))
        .route("/api/v1/reports/trial-balance", get(trial_balance))
        .route("/api/v1/reports/account-ledger", get(account_ledger))
}

/// Vouchers with their lines, filtered by period, account and connection.
#[utoipa::path(get, path = "/api/v1/vouchers", tag = "ledger", params(VoucherFilter),
    responses((status = 200, body = Vec<VoucherView>)))]
pub async fn list(
    State(app): State<AppState>,
    Query(f): Query<VoucherFilter>,
) -> ApiResult<Vec<VoucherView>> {
    check_date("from", f.from)?;
    check_date("to", f.to)?;
    Ok(Json(
        views::vouchers(&mut *app.db.acquire().await?, &f).await?,
    ))
}

/// One voucher with its lines.
#[utoipa::path(get, path = "/api/v1/vouchers/{id}", tag = "ledger",
    params(("id" = Uuid, Path, description = "Voucher id")), responses((status = 200, body = VoucherView)))]
pub async fn show(State(app): State<AppState>, Path(id): Path<Uuid>) -> ApiResult<VoucherView> {
    views::voucher(&mut *app.db.acquire().await?, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no voucher with id {id}")))
}

/// A period.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Period {
    /// First day (YYYY-MM-DD); open when absent.
    pub from: Option<NaiveDate>,
    /// Last day (YYYY-MM-DD); open when absent.
    pub to: Option<NaiveDate>,
}

/// One account's row of a trial balance (decimal strings).
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceOut {
    /// Account number.
    pub account: i32,
    /// Account name.
    pub name: String,
    /// Sum of debits.
    pub debit: String,
    /// Sum of credits.
    pub credit: String,
    /// Debit minus credit.
    pub balance: String,
}

/// Debit, credit and balance per account over a period.
#[utoipa::path(get, path = "/api/v1/reports/trial-balance", tag = "reports", params(Period),
    responses((status = 200, body = Vec<BalanceOut>)))]
pub async fn trial_balance(
    State(app): State<AppState>,
    Query(p): Query<Period>,
) -> ApiResult<Vec<BalanceOut>> {
    check_date("from", p.from)?;
    check_date("to", p.to)?;
    let rows =
        crate::db::vouchers::trial_balance(&mut *app.db.acquire().await?, p.from, p.to).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| BalanceOut {
                account: r.account,
                name: r.name,
                debit: Money(r.debit).to_string(),
                credit: Money(r.credit).to_string(),
                balance: Money(r.debit.saturating_sub(r.credit)).to_string(),
            })
            .collect(),
    ))
}

/// Which account's ledger.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// Account number.
    pub account: i32,
    /// First day (YYYY-MM-DD); open when absent.
    pub from: Option<NaiveDate>,
    /// Last day (YYYY-MM-DD); open when absent.
    pub to: Option<NaiveDate>,
}

/// One account's postings over a period, with opening, running and closing balance.
#[utoipa::path(get, path = "/api/v1/reports/account-ledger", tag = "reports", params(LedgerQuery),
    responses((status = 200, body = AccountLedger)))]
pub async fn account_ledger(
    State(app): State<AppState>,
    Query(q): Query<LedgerQuery>,
) -> ApiResult<AccountLedger> {
    check_date("from", q.from)?;
    check_date("to", q.to)?;
    Ok(Json(
        views::account_ledger(&mut *app.db.acquire().await?, q.account, q.from, q.to).await?,
    ))
}
