//! Queries of the books operators edit: companies, chart, dimensions, posting rules, and a
//! connection's invoicing settings.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgConnection};
use utoipa::ToSchema;
use uuid::Uuid;

/// A company.
#[derive(Clone, Debug, FromRow, Serialize, ToSchema)]
pub struct CompanyRow {
    /// Id.
    pub id: Uuid,
    /// Organisation number.
    pub org_number: Option<String>,
    /// Name.
    pub name: String,
    /// Base currency (ISO 4217).
    pub base_currency: String,
    /// The company new connections belong to.
    pub is_default: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Every company.
///
/// # Errors
/// A database error.
pub async fn companies(db: &mut PgConnection) -> sqlx::Result<Vec<CompanyRow>> {
    sqlx::query_as(
        "select id, org_number, name, trim(base_currency) as base_currency, is_default, created_at \
         from companies order by created_at, id",
    )
    .fetch_all(db)
    .await
}

/// An account of the chart.
#[derive(Clone, Debug, FromRow, Serialize, ToSchema)]
pub struct AccountRow {
    /// Number.
    pub number: i32,
    /// Name.
    pub name: String,
    /// asset, liability, equity, income or expense.
    pub account_type: String,
    /// The VAT code normally posted on it.
    pub vat_code: Option<i32>,
}

/// The chart of `company`.
///
/// # Errors
/// A database error.
pub async fn accounts(db: &mut PgConnection, company: Uuid) -> sqlx::Result<Vec<AccountRow>> {
    sqlx::query_as(
        "select number, name, account_type, vat_code from accounts where company_id = $1 order by number",
    )
    .bind(company)
    .fetch_all(db)
    .await
}

/// True when `number` is in `company`'s chart.
///
/// # Errors
/// A database error.
pub async fn account_exists(
    db: &mut PgConnection,
    company: Uuid,
    number: i64,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from accounts where company_id = $1 and number = $2)",
    )
    .bind(company)
    .bind(number)
    .fetch_one(db)
    .await
}

/// True when `code` is one of `company`'s VAT codes.
///
/// # Errors
/// A database error.
pub async fn vat_code_exists(
    db: &mut PgConnection,
    company: Uuid,
    code: i32,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from vat_codes where company_id = $1 and code = $2)",
    )
    .bind(company)
    .bind(code)
    .fetch_one(db)
    .await
}

/// A department or location.
#[derive(Clone, Debug, FromRow, Serialize, ToSchema)]
pub struct DimensionRow {
    /// Code, as rules and connections name it.
    pub code: String,
    /// Name.
    pub name: String,
}

/// The dimension tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    /// Departments ("avdeling").
    Department,
    /// Locations ("sted/lager").
    Location,
}

impl Dimension {
    fn table(self) -> &'static str {
        match self {
            Dimension::Department => "departments",
            Dimension::Location => "locations",
        }
    }
}

/// A dimension's values of `company`.
///
/// # Errors
/// A database error.
pub async fn dimensions(
    db: &mut PgConnection,
    dim: Dimension,
    company: Uuid,
) -> sqlx::Result<Vec<DimensionRow>> {
    sqlx::query_as(&format!(
        "select code, name from {} where company_id = $1 order by code",
        dim.table()
    ))
    .bind(company)
    .fetch_all(db)
    .await
}

/// Adds a dimension value; false when the code exists.
///
/// # Errors
/// A database error.
pub async fn insert_dimension(
    db: &mut PgConnection,
    dim: Dimension,
    company: Uuid,
    code: &str,
    name: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(&format!(
        "insert into {} (company_id, code, name) values ($1, $2, $3) on conflict do nothing",
        dim.table()
    ))
    .bind(company)
    .bind(code)
    .bind(name)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// True when the dimension value exists.
///
/// # Errors
/// A database error.
pub async fn dimension_exists(
    db: &mut PgConnection,
    dim: Dimension,
    company: Uuid,
    code: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(&format!(
        "select exists (select 1 from {} where company_id = $1 and code = $2)",
        dim.table()
    ))
    .bind(company)
    .bind(code)
    .fetch_one(db)
    .await
}

/// A posting rule as stored.
#[derive(Clone, Debug, FromRow)]
pub struct RuleRow {
    /// Id.
    pub id: i64,
    /// Company.
    pub company_id: Uuid,
    /// Connection it is limited to.
    pub connection_id: Option<Uuid>,
    /// Line kind it matches.
    pub kind: Option<String>,
    /// VAT code it matches.
    pub vat_code: Option<i32>,
    /// VAT rate it matches, in hundredths of a percent.
    pub vat_rate_bp: Option<i32>,
    /// SKU prefix it matches.
    pub sku_prefix: Option<String>,
    /// Product group it matches.
    pub product_group: Option<String>,
    /// Payment method it matches.
    pub payment_method: Option<String>,
    /// Account it posts to.
    pub account: i32,
    /// VAT code it sets.
    pub set_vat_code: Option<i32>,
    /// Department it sets.
    pub department: Option<String>,
    /// Location it sets.
    pub location: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

const RULE_COLUMNS: &str = "id, company_id, connection_id, kind, vat_code, vat_rate_bp, sku_prefix, \
     product_group, payment_method, account, set_vat_code, department, location, created_at";

/// The rules of `company`, optionally only those that apply to `connection`.
///
/// # Errors
/// A database error.
pub async fn rules(
    db: &mut PgConnection,
    company: Uuid,
    connection: Option<Uuid>,
) -> sqlx::Result<Vec<RuleRow>> {
    sqlx::query_as(&format!(
        "select {RULE_COLUMNS} from posting_rules where company_id = $1 \
         and ($2::uuid is null or connection_id is null or connection_id = $2) order by id"
    ))
    .bind(company)
    .bind(connection)
    .fetch_all(db)
    .await
}

/// One rule.
///
/// # Errors
/// A database error.
pub async fn rule(db: &mut PgConnection, id: i64) -> sqlx::Result<Option<RuleRow>> {
    sqlx::query_as(&format!(
        "select {RULE_COLUMNS} from posting_rules where id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Inserts (`id` None) or replaces a rule's criteria and placement; returns its id, or `None`
/// when `id` names no rule.
///
/// # Errors
/// A database error.
pub async fn save_rule(
    db: &mut PgConnection,
    id: Option<i64>,
    r: &RuleRow,
) -> sqlx::Result<Option<i64>> {
    let sql = if id.is_some() {
        "update posting_rules set connection_id = $3, kind = $4, vat_code = $5, vat_rate_bp = $6, \
             sku_prefix = $7, product_group = $8, payment_method = $9, account = $10, set_vat_code = $11, \
             department = $12, location = $13 where id = $1 and company_id = $2 returning id"
    } else {
        "insert into posting_rules (company_id, connection_id, kind, vat_code, vat_rate_bp, sku_prefix, \
             product_group, payment_method, account, set_vat_code, department, location) \
         select $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 where $1::bigint is null returning id"
    };
    sqlx::query_scalar(sql)
        .bind(id)
        .bind(r.company_id)
        .bind(r.connection_id)
        .bind(&r.kind)
        .bind(r.vat_code)
        .bind(r.vat_rate_bp)
        .bind(&r.sku_prefix)
        .bind(&r.product_group)
        .bind(&r.payment_method)
        .bind(r.account)
        .bind(r.set_vat_code)
        .bind(&r.department)
        .bind(&r.location)
        .fetch_optional(db)
        .await
}

/// Deletes a rule; false when there is none with this id.
///
/// # Errors
/// A database error.
pub async fn delete_rule(db: &mut PgConnection, id: i64) -> sqlx::Result<bool> {
    let done = sqlx::query("delete from posting_rules where id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// New invoicing settings of a connection (each `None` leaves the setting as it is; an empty
/// department or location clears it).
#[derive(Clone, Debug, Default)]
pub struct SettingsUpdate {
    /// Name.
    pub name: Option<String>,
    /// Cut-off date.
    pub process_orders_from: Option<NaiveDate>,
    /// Prepaid account.
    pub prepaid_account: Option<String>,
    /// Department; `Some(None)` clears it.
    pub department: Option<Option<String>>,
    /// Location; `Some(None)` clears it.
    pub location: Option<Option<String>>,
    /// Ceiling on order totals, in øre.
    pub max_order_amount: Option<i64>,
}

/// Applies `u` to a connection; false when there is none with this id. A draft (a connection
/// added in the console) becomes active when `u` sets both invoicing settings, the cut-off
/// date and the prepaid account: saving its configuration is what activates it.
///
/// # Errors
/// A database error.
pub async fn update_settings(
    db: &mut PgConnection,
    id: Uuid,
    u: &SettingsUpdate,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update connections set name = coalesce($2, name), \
             process_orders_from = coalesce($3, process_orders_from), \
             prepaid_account = coalesce($4, prepaid_account), \
             department = case when $5 then $6 else department end, \
             location = case when $7 then $8 else location end, \
             max_order_amount = coalesce($9, max_order_amount), updated_at = now(), \
             status = case when status = 'draft' and $3 is not null and $4 is not null \
                           then 'active' else status end where id = $1",
    )
    .bind(id)
    .bind(&u.name)
    .bind(u.process_orders_from)
    .bind(&u.prepaid_account)
    .bind(u.department.is_some())
    .bind(u.department.clone().flatten())
    .bind(u.location.is_some())
    .bind(u.location.clone().flatten())
    .bind(u.max_order_amount)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
