//! Bilag and Saldobalanse: vouchers with their lines, the trial balance of a period, and the
//! SAF-T export of a period as a download.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use chrono::{Datelike as _, NaiveDate};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::i18n::{Texts, fill};
use super::layout::{Nav, Notice, notice, page};
use super::{Ctx, PageError};
use crate::db::admin::{self as q, VoucherFilter, VoucherHead};
use crate::db::vouchers::LineRow;
use crate::http::AppState;
use crate::saft::SaftError;

/// Vouchers a list shows at most.
const VOUCHER_PAGE: i64 = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/vouchers", get(list))
        .route("/console/vouchers/{id}", get(show))
        .route("/console/trial-balance", get(trial_balance))
        .route("/console/saft", get(saft))
}

/// A period as a form sends it: dates as typed, empty for open.
#[derive(Debug, Default, Deserialize)]
pub struct PeriodQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    connection: String,
}

fn date(s: &str) -> Result<Option<NaiveDate>, ()> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|d| (1900..=9999).contains(&d.year()))
        .map(Some)
        .ok_or(())
}

impl PeriodQuery {
    /// The period, or the message to show for a date that is not one.
    fn period(&self, t: &Texts) -> Result<(Option<NaiveDate>, Option<NaiveDate>), &'static str> {
        match (date(&self.from), date(&self.to)) {
            (Ok(from), Ok(to)) => Ok((from, to)),
            _ => Err(t.err_date),
        }
    }
}

/// A period's from/to form; `prefix` keeps ids unique when a page has two.
fn period_form(t: &Texts, prefix: &str, action: &str, q: &PeriodQuery, button: &str) -> Markup {
    let (from, to) = (format!("{prefix}-from"), format!("{prefix}-to"));
    html! {
        form.filters method="get" action=(action) {
            fieldset {
                legend { (t.filter) }
                div.field {
                    label for=(from) { (t.from_date) }
                    input #(from) type="date" name="from" value=(q.from);
                }
                div.field {
                    label for=(to) { (t.to_date) }
                    input #(to) type="date" name="to" value=(q.to);
                }
                @if !q.connection.is_empty() {
                    input type="hidden" name="connection" value=(q.connection);
                }
                div.actions { button.primary type="submit" { (button) } }
            }
        }
    }
}

/// A voucher with its lines in øre.
pub struct Voucher {
    head: VoucherHead,
    lines: Vec<LineRow>,
}

impl Voucher {
    fn total(&self) -> i64 {
        self.lines.iter().map(|l| l.amount.max(0)).sum()
    }

    fn number(&self) -> String {
        format!(
            "{} {}-{}",
            self.head.series, self.head.year, self.head.number
        )
    }
}

/// Loads the lines of `heads`.
pub async fn with_lines(
    app: &AppState,
    heads: Vec<VoucherHead>,
) -> Result<Vec<Voucher>, PageError> {
    let ids: Vec<Uuid> = heads.iter().map(|h| h.id).collect();
    let mut lines = q::lines_of(&mut *app.db.acquire().await?, &ids).await?;
    let mut by_voucher: HashMap<Uuid, Vec<LineRow>> = HashMap::new();
    for line in lines.drain(..) {
        by_voucher.entry(line.voucher_id).or_default().push(line);
    }
    Ok(heads
        .into_iter()
        .map(|head| Voucher {
            lines: by_voucher.remove(&head.id).unwrap_or_default(),
            head,
        })
        .collect())
}

/// GET /console/vouchers
async fn list(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<PeriodQuery>,
) -> Result<Markup, PageError> {
    let t = ctx.t();
    let period = query.period(t);
    let vouchers = match period {
        Ok((from, to)) => {
            let filter = VoucherFilter {
                from,
                to,
                connection: query.connection.trim().parse().ok(),
                limit: Some(VOUCHER_PAGE),
                ..VoucherFilter::default()
            };
            let heads = q::list_vouchers(&mut *app.db.acquire().await?, &filter).await?;
            with_lines(&app, heads).await?
        }
        Err(_) => Vec::new(),
    };
    let body = html! {
        h1 { (t.vouchers_title) }
        (period_form(t, "f", "/console/vouchers", &query, t.show))
        @if let Err(message) = period { (notice(Notice::Error, message)) }
        @if vouchers.is_empty() {
            p { (t.no_vouchers) }
        } @else {
            @if i64::try_from(vouchers.len()).unwrap_or(i64::MAX) >= VOUCHER_PAGE {
                p.hint role="status" { (fill(t.list_capped, &[&vouchers.len().to_string()])) }
            }
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { (t.col_number) }
                    th scope="col" { (t.col_date) }
                    th scope="col" { (t.col_kind) }
                    th scope="col" { (t.col_description) }
                    th.num scope="col" { (t.col_amount) }
                } }
                tbody {
                    @for v in &vouchers {
                        tr {
                            td { a href={ "/console/vouchers/" (v.head.id) } { (v.number()) } }
                            td { (v.head.voucher_date) }
                            td { (t.voucher_kind(&v.head.kind)) }
                            td { (v.head.description) }
                            td.num { (t.money(v.total())) }
                        }
                    }
                }
            } }
        }
    };
    Ok(page(&ctx, Nav::Vouchers, t.vouchers_title, body))
}

fn lines_table(t: &Texts, v: &Voucher, caption: &str) -> Markup {
    let debit: i64 = v.lines.iter().map(|l| l.amount.max(0)).sum();
    let credit: i64 = v.lines.iter().map(|l| (-l.amount).max(0)).sum();
    html! {
        div.table-wrap { table {
            caption { (caption) }
            thead { tr {
                th scope="col" { (t.col_account) }
                th scope="col" { (t.col_description) }
                th.num scope="col" { (t.col_debit) }
                th.num scope="col" { (t.col_credit) }
                th scope="col" { (t.col_vat) }
                th scope="col" { (t.department) }
                th scope="col" { (t.location) }
            } }
            tbody {
                @for l in &v.lines {
                    tr {
                        td { (l.account) " " (l.account_name) }
                        td { (l.description) }
                        td.num { @if l.amount > 0 { (t.money(l.amount)) } }
                        td.num { @if l.amount < 0 { (t.money(-l.amount)) } }
                        td { @if let Some(c) = l.vat_code { (c) } }
                        td { (l.department.as_deref().unwrap_or("")) }
                        td { (l.location.as_deref().unwrap_or("")) }
                    }
                }
            }
            tfoot { tr {
                th scope="row" colspan="2" { (t.total) }
                td.num { (t.money(debit)) }
                td.num { (t.money(credit)) }
                td colspan="3" {}
            } }
        } }
    }
}

/// A voucher's lines as a table with a link to it, for an event's page.
pub fn voucher_table(t: &Texts, v: &Voucher) -> Markup {
    let caption = format!("{}{}{}", v.number(), t.separator, v.head.description);
    html! {
        p { a href={ "/console/vouchers/" (v.head.id) } { (v.number()) } }
        (lines_table(t, v, &caption))
    }
}

/// GET /console/vouchers/{id}
async fn show(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let t = ctx.t();
    let id: Uuid = id.parse().map_err(|_| PageError::NotFound)?;
    let head = q::get_voucher(&mut *app.db.acquire().await?, id)
        .await?
        .ok_or(PageError::NotFound)?;
    let v = with_lines(&app, vec![head])
        .await?
        .pop()
        .ok_or(PageError::NotFound)?;
    let title = fill(t.voucher_title, &[&v.number()]);
    let h = &v.head;
    let body = html! {
        h1 { (title) }
        dl.facts {
            dt { (t.col_date) } dd { (h.voucher_date) }
            dt { (t.col_kind) } dd { (t.voucher_kind(&h.kind)) }
            dt { (t.col_description) } dd { (h.description) }
            @if let Some(o) = &h.order_id { dt { (t.order) } dd { code { (o) } } }
            @if let Some(e) = h.source_event {
                dt { (t.source_event) } dd { a href={ "/console/events/" (e) } { code { (e) } } }
            }
            @if let Some(r) = h.reverses {
                dt { (t.reverses) } dd { a href={ "/console/vouchers/" (r) } { code { (r) } } }
            }
            dt { (t.posted_at) } dd { (t.time(h.posted_at)) }
            dt { (t.idempotency_key) } dd { code { (h.idempotency_key) } }
        }
        (lines_table(t, &v, &title))
    };
    Ok(page(&ctx, Nav::Vouchers, &title, body))
}

/// GET /console/trial-balance, with the SAF-T export form of the same period.
async fn trial_balance(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<PeriodQuery>,
) -> Result<Markup, PageError> {
    let t = ctx.t();
    let period = query.period(t);
    let rows = match period {
        Ok((from, to)) => {
            crate::db::vouchers::trial_balance(&mut *app.db.acquire().await?, from, to).await?
        }
        Err(_) => Vec::new(),
    };
    let (debit, credit) = rows
        .iter()
        .fold((0i64, 0i64), |(d, c), r| (d + r.debit, c + r.credit));
    let body = html! {
        h1 { (t.trial_balance_title) }
        (period_form(t, "f", "/console/trial-balance", &query, t.show))
        @if let Err(message) = period { (notice(Notice::Error, message)) }
        @if rows.is_empty() {
            p { (t.no_vouchers) }
        } @else {
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { (t.col_account) }
                    th.num scope="col" { (t.col_debit) }
                    th.num scope="col" { (t.col_credit) }
                    th.num scope="col" { (t.col_balance) }
                } }
                tbody {
                    @for r in &rows {
                        tr {
                            td { (r.account) " " (r.name) }
                            td.num { (t.money(r.debit)) }
                            td.num { (t.money(r.credit)) }
                            td.num { (t.money(r.debit - r.credit)) }
                        }
                    }
                }
                tfoot { tr {
                    th scope="row" { (t.total) }
                    td.num { (t.money(debit)) }
                    td.num { (t.money(credit)) }
                    td.num { (t.money(debit - credit)) }
                } }
            } }
        }
        h2 #saft { (t.saft_title) }
        p.hint { (t.saft_hint) }
        (period_form(t, "saft", "/console/saft", &query, t.saft_download))
    };
    Ok(page(&ctx, Nav::TrialBalance, t.trial_balance_title, body))
}

/// GET /console/saft?from&to: the SAF-T file as a download, or the trial balance page with
/// the reason it cannot be made.
async fn saft(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<PeriodQuery>,
) -> Result<Response, PageError> {
    let t = ctx.t();
    let problem = |status: StatusCode, message: String| {
        let body = html! {
            h1 { (t.saft_title) }
            (notice(Notice::Error, &message))
            (period_form(t, "saft", "/console/saft", &query, t.saft_download))
            p { a href="/console/trial-balance" { (t.trial_balance_title) } }
        };
        (status, page(&ctx, Nav::TrialBalance, t.saft_title, body)).into_response()
    };
    let Ok((Some(from), Some(to))) = query.period(t) else {
        return Ok(problem(StatusCode::BAD_REQUEST, t.period_required.into()));
    };
    if to < from {
        return Ok(problem(StatusCode::BAD_REQUEST, t.period_required.into()));
    }
    let mut tx = app.db.begin().await?;
    // One snapshot for balances, master files and entries while the worker keeps posting.
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    let company = crate::db::connections::default_company(&mut tx).await?;
    let result = crate::saft::export(&mut tx, company, from, to).await;
    tx.commit().await?;
    match result {
        Ok(xml) => {
            tracing::info!(user = %ctx.session.user_id, %from, %to, bytes = xml.len(), "SAF-T exported from the console");
            let file = format!("attachment; filename=\"SAF-T_{from}_{to}.xml\"");
            Ok((
                [
                    (
                        header::CONTENT_TYPE,
                        "application/xml; charset=utf-8".to_owned(),
                    ),
                    (header::CONTENT_DISPOSITION, file),
                ],
                xml,
            )
                .into_response())
        }
        Err(SaftError::NoOrgNumber { .. }) => Ok(problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            t.saft_no_org.into(),
        )),
        Err(SaftError::Db(e)) => Err(e.into()),
        Err(other) => Ok(problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{} {other}", t.saft_failed),
        )),
    }
}
