//! Read-only reports over the ledger: trial balance and account ledger with dimension filters,
//! and what the SAF-T export reads (company, chart, balances, customers, vouchers).

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use super::vouchers::BalanceRow;

/// Which lines a report covers. Every field narrows; `None` does not filter.
#[derive(Clone, Debug, Default)]
pub struct LineFilter {
    /// Only this company's lines.
    pub company: Option<Uuid>,
    /// First voucher date.
    pub from: Option<NaiveDate>,
    /// Last voucher date.
    pub to: Option<NaiveDate>,
    /// Only lines with this department.
    pub department: Option<String>,
    /// Only lines with this location.
    pub location: Option<String>,
}

/// The `where` clause shared by the reports: $1 company, $2 from, $3 to, $4 department,
/// $5 location (lines `l`, vouchers `v`).
const FILTER: &str = "($1::uuid is null or l.company_id = $1) \
     and ($2::date is null or v.voucher_date >= $2) and ($3::date is null or v.voucher_date <= $3) \
     and ($4::text is null or l.department = $4) and ($5::text is null or l.location = $5)";

/// Debits and credits per account over the lines `filter` selects.
///
/// # Errors
/// A database error.
pub async fn trial_balance(
    db: &mut PgConnection,
    filter: &LineFilter,
) -> sqlx::Result<Vec<BalanceRow>> {
    sqlx::query_as(&format!(
        "select l.account, a.name, \
                coalesce(sum(l.amount) filter (where l.amount > 0), 0)::bigint as debit, \
                coalesce(-sum(l.amount) filter (where l.amount < 0), 0)::bigint as credit \
         from voucher_lines l join vouchers v on v.id = l.voucher_id \
         join accounts a on a.company_id = l.company_id and a.number = l.account \
         where {FILTER} group by l.account, a.name order by l.account"
    ))
    .bind(filter.company)
    .bind(filter.from)
    .bind(filter.to)
    .bind(&filter.department)
    .bind(&filter.location)
    .fetch_all(db)
    .await
}

/// One line of an account ledger.
#[derive(Clone, Debug, FromRow, Serialize)]
pub struct AccountLine {
    /// Voucher date.
    pub voucher_date: NaiveDate,
    /// Number series of the voucher.
    pub series: String,
    /// Year of its number.
    pub year: i32,
    /// Its number.
    pub number: i32,
    /// The voucher's description.
    pub voucher_description: String,
    /// The line's description.
    pub description: String,
    /// Øre, debit positive.
    pub amount: i64,
    /// Department.
    pub department: Option<String>,
    /// Location.
    pub location: Option<String>,
}

/// An account's balance before `filter.from` (every earlier line the other filters select),
/// and its lines in the period, in date and voucher order.
///
/// # Errors
/// A database error.
pub async fn account_ledger(
    db: &mut PgConnection,
    account: i32,
    filter: &LineFilter,
) -> sqlx::Result<(i64, Vec<AccountLine>)> {
    let opening: i64 = match filter.from {
        None => 0,
        Some(from) => {
            let before = LineFilter {
                from: None,
                to: from.pred_opt(),
                ..filter.clone()
            };
            sqlx::query_scalar(&format!(
                "select coalesce(sum(l.amount), 0)::bigint from voucher_lines l \
                 join vouchers v on v.id = l.voucher_id where {FILTER} and l.account = $6"
            ))
            .bind(before.company)
            .bind(before.from)
            .bind(before.to)
            .bind(&before.department)
            .bind(&before.location)
            .bind(account)
            .fetch_one(&mut *db)
            .await?
        }
    };
    let lines = sqlx::query_as(&format!(
        "select v.voucher_date, v.series, v.year, v.number, v.description as voucher_description, \
                l.description, l.amount, l.department, l.location \
         from voucher_lines l join vouchers v on v.id = l.voucher_id \
         where {FILTER} and l.account = $6 \
         order by v.voucher_date, v.series, v.year, v.number, l.line_no"
    ))
    .bind(filter.company)
    .bind(filter.from)
    .bind(filter.to)
    .bind(&filter.department)
    .bind(&filter.location)
    .bind(account)
    .fetch_all(db)
    .await?;
    Ok((opening, lines))
}

/// The company, as the SAF-T header names it.
#[derive(Clone, Debug, FromRow)]
pub struct CompanyRow {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Organisation number, if recorded.
    pub org_number: Option<String>,
    /// ISO 4217.
    pub base_currency: String,
}

/// One company.
///
/// # Errors
/// A database error, or [`sqlx::Error::RowNotFound`].
pub async fn company(db: &mut PgConnection, id: Uuid) -> sqlx::Result<CompanyRow> {
    sqlx::query_as("select id, name, org_number, base_currency from companies where id = $1")
        .bind(id)
        .fetch_one(db)
        .await
}

/// An account of the chart with its SAF-T grouping, if set.
#[derive(Clone, Debug, FromRow)]
pub struct ChartRow {
    /// Number.
    pub number: i32,
    /// Name.
    pub name: String,
    /// asset, liability, equity, income, expense.
    pub account_type: String,
    /// SAF-T GroupingCategory override.
    pub saft_grouping_category: Option<String>,
    /// SAF-T GroupingCode override.
    pub saft_grouping_code: Option<String>,
}

/// The company's chart, by number.
///
/// # Errors
/// A database error.
pub async fn chart(db: &mut PgConnection, company: Uuid) -> sqlx::Result<Vec<ChartRow>> {
    sqlx::query_as(
        "select number, name, account_type, saft_grouping_category, saft_grouping_code \
         from accounts where company_id = $1 order by number",
    )
    .bind(company)
    .fetch_all(db)
    .await
}

/// Sums per account (or per customer and account) around a period, in øre, debit positive.
#[derive(Clone, Debug, FromRow)]
pub struct PeriodSums {
    /// The connection (customer sums only; nil for accounts).
    pub connection_id: Uuid,
    /// The shop's customer id (customer sums only; empty for accounts).
    pub customer_id: String,
    /// The account.
    pub account: i32,
    /// Every line dated before the period.
    pub before: i64,
    /// Lines dated before the period but in its first day's year.
    pub before_in_year: i64,
    /// Lines dated in the period.
    pub within: i64,
}

/// Sums per account of the company's lines dated up to `to`.
///
/// # Errors
/// A database error.
pub async fn account_sums(
    db: &mut PgConnection,
    company: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> sqlx::Result<Vec<PeriodSums>> {
    sums(db, company, from, to, false).await
}

/// Sums per customer (connection and shop id) and account of the company's receivable lines
/// (those with a customer) dated up to `to`.
///
/// # Errors
/// A database error.
pub async fn customer_sums(
    db: &mut PgConnection,
    company: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> sqlx::Result<Vec<PeriodSums>> {
    sums(db, company, from, to, true).await
}

async fn sums(
    db: &mut PgConnection,
    company: Uuid,
    from: NaiveDate,
    to: NaiveDate,
    per_customer: bool,
) -> sqlx::Result<Vec<PeriodSums>> {
    let (keys, only) = if per_customer {
        (
            "v.connection_id as connection_id, l.customer_id as customer_id",
            "and l.customer_id is not null",
        )
    } else {
        // One row per account: the customer columns are constants.
        (
            "'00000000-0000-0000-0000-000000000000'::uuid as connection_id, ''::text as customer_id",
            "",
        )
    };
    sqlx::query_as(&format!(
        "select {keys}, l.account, \
                coalesce(sum(l.amount) filter (where v.voucher_date < $2), 0)::bigint as before, \
                coalesce(sum(l.amount) filter (where v.voucher_date < $2 \
                    and v.voucher_date >= date_trunc('year', $2::date)), 0)::bigint as before_in_year, \
                coalesce(sum(l.amount) filter (where v.voucher_date >= $2), 0)::bigint as within \
         from voucher_lines l join vouchers v on v.id = l.voucher_id \
         where l.company_id = $1 and v.voucher_date <= $3 {only} \
         group by 1, 2, 3 order by 1, 2, 3"
    ))
    .bind(company)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

/// A customer the shops told us about.
#[derive(Clone, Debug, FromRow)]
pub struct CustomerRow {
    /// The connection (shop) it belongs to.
    pub connection_id: Uuid,
    /// The shop's id for it.
    pub shop_customer_id: String,
    /// Its name.
    pub name: String,
    /// Its e-mail, if known.
    pub email: Option<String>,
}

/// The customers of the company's connections.
///
/// # Errors
/// A database error.
pub async fn customers(db: &mut PgConnection, company: Uuid) -> sqlx::Result<Vec<CustomerRow>> {
    sqlx::query_as(
        "select c.connection_id, c.shop_customer_id, c.name, c.email from customers c \
         join connections k on k.id = c.connection_id where k.company_id = $1 \
         order by c.connection_id, c.shop_customer_id",
    )
    .bind(company)
    .fetch_all(db)
    .await
}

/// A VAT code over one period of its rate.
#[derive(Clone, Debug, FromRow)]
pub struct VatCodeRow {
    /// The SAF-T standard code.
    pub code: i32,
    /// Hundredths of a percent.
    pub rate_bp: i32,
    /// First day of the rate.
    pub valid_from: NaiveDate,
    /// Last day, if it ended.
    pub valid_to: Option<NaiveDate>,
}

/// The company's VAT codes, every rate period.
///
/// # Errors
/// A database error.
pub async fn vat_codes(db: &mut PgConnection, company: Uuid) -> sqlx::Result<Vec<VatCodeRow>> {
    sqlx::query_as(
        "select code, rate_bp, valid_from, valid_to from vat_codes where company_id = $1 \
         order by code, valid_from",
    )
    .bind(company)
    .fetch_all(db)
    .await
}

/// The names of the company's departments (`kind` false) or locations (true), by code.
///
/// # Errors
/// A database error.
pub async fn dimension_names(
    db: &mut PgConnection,
    company: Uuid,
    locations: bool,
) -> sqlx::Result<Vec<(String, String)>> {
    let table = if locations {
        "locations"
    } else {
        "departments"
    };
    sqlx::query_as(&format!(
        "select code, name from {table} where company_id = $1 order by code"
    ))
    .bind(company)
    .fetch_all(db)
    .await
}

/// A voucher as the SAF-T export writes it.
#[derive(Clone, Debug, FromRow)]
pub struct ExportVoucher {
    /// Its id.
    pub id: Uuid,
    /// The connection whose event caused it.
    pub connection_id: Uuid,
    /// Number series.
    pub series: String,
    /// Year of its number.
    pub year: i32,
    /// Its number.
    pub number: i32,
    /// Accounting date.
    pub voucher_date: NaiveDate,
    /// invoice, credit_note, payment, refund_payment.
    pub kind: String,
    /// What it is.
    pub description: String,
    /// When it was written to the ledger.
    pub posted_at: DateTime<Utc>,
}

/// A voucher line as the SAF-T export writes it.
#[derive(Clone, Debug, FromRow)]
pub struct ExportLine {
    /// Its voucher.
    pub voucher_id: Uuid,
    /// Position on the voucher.
    pub line_no: i32,
    /// Account.
    pub account: i32,
    /// Øre, debit positive.
    pub amount: i64,
    /// ISO 4217 of the event.
    pub currency: String,
    /// Amount in that currency.
    pub currency_amount: i64,
    /// VAT code.
    pub vat_code: Option<i32>,
    /// VAT base.
    pub vat_base: Option<i64>,
    /// Customer (receivable lines).
    pub customer_id: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Location.
    pub location: Option<String>,
    /// Line text.
    pub description: String,
    /// Why the line is there (`output_vat`, `sales:goods`, ...).
    pub role: String,
}

/// The company's vouchers dated in `[from, to]`, by series, year and number, with their lines.
///
/// # Errors
/// A database error.
pub async fn vouchers_between(
    db: &mut PgConnection,
    company: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> sqlx::Result<(Vec<ExportVoucher>, Vec<ExportLine>)> {
    let vouchers: Vec<ExportVoucher> = sqlx::query_as(
        "select id, connection_id, series, year, number, voucher_date, kind, description, posted_at \
         from vouchers where company_id = $1 and voucher_date between $2 and $3 \
         order by series, year, number",
    )
    .bind(company)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *db)
    .await?;
    let lines = sqlx::query_as(
        "select l.voucher_id, l.line_no, l.account, l.amount, trim(l.currency) as currency, \
                l.currency_amount, l.vat_code, l.vat_base, l.customer_id, l.department, l.location, \
                l.description, l.role \
         from voucher_lines l join vouchers v on v.id = l.voucher_id \
         where v.company_id = $1 and v.voucher_date between $2 and $3 \
         order by l.voucher_id, l.line_no",
    )
    .bind(company)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    Ok((vouchers, lines))
}
