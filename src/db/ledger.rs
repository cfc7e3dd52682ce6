//! The company's books as the posting engine needs them: chart, VAT codes, rules, connection
//! settings (loaded into a [`Context`]), and the seed that gives a new company the defaults.

use std::collections::BTreeSet;

use chrono::{NaiveDate, Utc};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::posting::{
    AccountNo, AccountType, ConnectionSettings, Context, Criteria, Money, Placement, Rate, Rule,
    RuleKind, SystemAccounts, VatCode, VatCodeEntry, VatTable, default_accounts, default_rules,
};

/// Why the books of a connection could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The connection does not exist (deleted after its event was queued).
    #[error("no connection with id {0}")]
    UnknownConnection(Uuid),
    /// A stored value does not fit the engine's types (names the table and value).
    #[error("invalid {0} in the database: {1}")]
    Invalid(&'static str, String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Gives a company the default chart, VAT codes and rules, when it has no accounts yet.
/// Idempotent: a company with a chart is left alone, and concurrent seeds do not clash.
///
/// # Errors
/// A database error.
pub async fn seed_company(db: &mut PgConnection, company_id: Uuid) -> sqlx::Result<bool> {
    // Serialise seeding of one company between processes starting together.
    sqlx::query("select pg_advisory_xact_lock(hashtext('shopbridge-seed'), hashtext($1::text))")
        .bind(company_id)
        .execute(&mut *db)
        .await?;
    let has_chart: bool =
        sqlx::query_scalar("select exists (select 1 from accounts where company_id = $1)")
            .bind(company_id)
            .fetch_one(&mut *db)
            .await?;
    if has_chart {
        return Ok(false);
    }
    for a in default_accounts() {
        sqlx::query("insert into accounts (company_id, number, name, account_type, vat_code) values ($1, $2, $3, $4, $5)")
            .bind(company_id)
            .bind(account_i32(a.number))
            .bind(&a.name)
            .bind(account_type_name(a.account_type))
            .bind(a.vat_code.map(|c| i32::from(c.0)))
            .execute(&mut *db)
            .await?;
    }
    for e in VatTable::norwegian().entries {
        sqlx::query(
            "insert into vat_codes (company_id, code, rate_bp, valid_from, valid_to, output_account, default_for_rate) \
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(company_id)
        .bind(i32::from(e.code.0))
        .bind(i32::try_from(e.rate.0).unwrap_or(i32::MAX))
        .bind(e.valid_from)
        .bind(e.valid_to)
        .bind(e.output_account.map(account_i32))
        .bind(e.default_for_rate)
        .execute(&mut *db)
        .await?;
    }
    for r in default_rules() {
        insert_rule(db, company_id, &r).await?;
    }
    Ok(true)
}

/// Stores a rule (its `id` is ignored: the database assigns one) and returns the new id.
///
/// # Errors
/// A database error, e.g. an account not in the chart.
pub async fn insert_rule(db: &mut PgConnection, company_id: Uuid, r: &Rule) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "insert into posting_rules (company_id, connection_id, kind, vat_code, vat_rate_bp, sku_prefix, \
             product_group, payment_method, account, set_vat_code, department, location) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) returning id",
    )
    .bind(company_id)
    .bind(r.connection)
    .bind(r.when.kind.map(kind_name))
    .bind(r.when.vat_code.map(|c| i32::from(c.0)))
    .bind(r.when.vat_rate.map(|v| i32::try_from(v.0).unwrap_or(i32::MAX)))
    .bind(&r.when.sku_prefix)
    .bind(&r.when.product_group)
    .bind(&r.when.payment_method)
    .bind(account_i32(r.then.account))
    .bind(r.then.vat_code.map(|c| i32::from(c.0)))
    .bind(&r.then.department)
    .bind(&r.then.location)
    .fetch_one(db)
    .await
}

#[derive(FromRow)]
struct ConnectionBooks {
    company_id: Uuid,
    base_currency: String,
    prepaid_account: String,
    department: Option<String>,
    location: Option<String>,
    process_orders_from: NaiveDate,
    locked_period_policy: String,
    max_order_amount: i64,
}

#[derive(FromRow)]
struct RuleRow {
    id: i64,
    connection_id: Option<Uuid>,
    kind: Option<String>,
    vat_code: Option<i32>,
    vat_rate_bp: Option<i32>,
    sku_prefix: Option<String>,
    product_group: Option<String>,
    payment_method: Option<String>,
    account: i32,
    set_vat_code: Option<i32>,
    department: Option<String>,
    location: Option<String>,
}

#[derive(Clone, Copy, FromRow)]
struct VatRow {
    code: i32,
    rate_bp: i32,
    valid_from: NaiveDate,
    valid_to: Option<NaiveDate>,
    output_account: Option<i32>,
    default_for_rate: bool,
}

/// The company id and the posting [`Context`] of a connection (its event date set to today;
/// the worker sets it per event).
///
/// # Errors
/// [`LedgerError`]: unknown connection, invalid stored values, or a database error.
pub async fn load_context(
    db: &mut PgConnection,
    connection_id: Uuid,
) -> Result<(Uuid, Context), LedgerError> {
    let books: ConnectionBooks = sqlx::query_as(
        "select c.company_id, co.base_currency, c.prepaid_account, c.department, c.location, c.process_orders_from, \
                c.locked_period_policy, c.max_order_amount \
         from connections c join companies co on co.id = c.company_id where c.id = $1",
    )
    .bind(connection_id)
    .fetch_optional(&mut *db)
    .await?
    .ok_or(LedgerError::UnknownConnection(connection_id))?;
    let accounts: Vec<i32> =
        sqlx::query_scalar("select number from accounts where company_id = $1")
            .bind(books.company_id)
            .fetch_all(&mut *db)
            .await?;
    let vat: Vec<VatRow> = sqlx::query_as(
        "select code, rate_bp, valid_from, valid_to, output_account, default_for_rate from vat_codes where company_id = $1",
    )
    .bind(books.company_id)
    .fetch_all(&mut *db)
    .await?;
    let rules: Vec<RuleRow> = sqlx::query_as(
        "select id, connection_id, kind, vat_code, vat_rate_bp, sku_prefix, product_group, payment_method, \
                account, set_vat_code, department, location \
         from posting_rules where company_id = $1 and (connection_id is null or connection_id = $2) order by id",
    )
    .bind(books.company_id)
    .bind(connection_id)
    .fetch_all(&mut *db)
    .await?;
    let locked_periods: Vec<NaiveDate> =
        sqlx::query_scalar("select period from period_locks where company_id = $1")
            .bind(books.company_id)
            .fetch_all(&mut *db)
            .await?;
    let locked_period_policy = books
        .locked_period_policy
        .parse()
        .map_err(|_| LedgerError::Invalid("locked_period_policy", books.locked_period_policy))?;
    let prepaid: u32 = books
        .prepaid_account
        .parse()
        .map_err(|_| LedgerError::Invalid("prepaid_account", books.prepaid_account.clone()))?;
    let context = Context {
        base_currency: books.base_currency.trim().to_owned(),
        connection: ConnectionSettings {
            id: connection_id,
            prepaid_account: AccountNo(prepaid),
            department: books.department,
            location: books.location,
            process_orders_from: books.process_orders_from,
            locked_period_policy,
            max_order_amount: Money(books.max_order_amount),
        },
        accounts: accounts
            .into_iter()
            .map(account_no)
            .collect::<Result<BTreeSet<_>, _>>()?,
        vat: VatTable {
            entries: vat.into_iter().map(vat_entry).collect::<Result<_, _>>()?,
        },
        rules: rules.into_iter().map(rule).collect::<Result<_, _>>()?,
        system: SystemAccounts::default(),
        exchange_rate: None,
        event_date: Utc::now().date_naive(),
        locked_periods: locked_periods.into_iter().collect(),
    };
    Ok((books.company_id, context))
}

/// The company's rate for `currency` on `date` (the latest on or before it), if any.
///
/// # Errors
/// A database error.
pub async fn exchange_rate(
    db: &mut PgConnection,
    company_id: Uuid,
    currency: &str,
    date: NaiveDate,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "select micros from exchange_rates where company_id = $1 and currency = $2 and valid_on <= $3 \
         order by valid_on desc limit 1",
    )
    .bind(company_id)
    .bind(currency)
    .bind(date)
    .fetch_optional(db)
    .await
}

fn account_no(n: i32) -> Result<AccountNo, LedgerError> {
    u32::try_from(n)
        .map(AccountNo)
        .map_err(|_| LedgerError::Invalid("account", n.to_string()))
}

fn vat_code(n: i32) -> Result<VatCode, LedgerError> {
    u16::try_from(n)
        .map(VatCode)
        .map_err(|_| LedgerError::Invalid("VAT code", n.to_string()))
}

fn rate(bp: i32) -> Result<Rate, LedgerError> {
    u32::try_from(bp)
        .map(Rate)
        .map_err(|_| LedgerError::Invalid("VAT rate", bp.to_string()))
}

fn vat_entry(r: VatRow) -> Result<VatCodeEntry, LedgerError> {
    Ok(VatCodeEntry {
        code: vat_code(r.code)?,
        rate: rate(r.rate_bp)?,
        valid_from: r.valid_from,
        valid_to: r.valid_to,
        output_account: r.output_account.map(account_no).transpose()?,
        default_for_rate: r.default_for_rate,
    })
}

fn rule(r: RuleRow) -> Result<Rule, LedgerError> {
    let kind = r
        .kind
        .as_deref()
        .map(|k| parse_kind(k).ok_or_else(|| LedgerError::Invalid("rule kind", k.to_owned())))
        .transpose()?;
    Ok(Rule {
        id: r.id,
        connection: r.connection_id,
        when: Criteria {
            kind,
            vat_code: r.vat_code.map(vat_code).transpose()?,
            vat_rate: r.vat_rate_bp.map(rate).transpose()?,
            sku_prefix: r.sku_prefix,
            product_group: r.product_group,
            payment_method: r.payment_method,
        },
        then: Placement {
            account: account_no(r.account)?,
            vat_code: r.set_vat_code.map(vat_code).transpose()?,
            department: r.department,
            location: r.location,
        },
    })
}

/// The database name of a rule kind.
#[must_use]
pub fn kind_name(kind: RuleKind) -> &'static str {
    match kind {
        RuleKind::Goods => "goods",
        RuleKind::Shipping => "shipping",
        RuleKind::Fee => "fee",
        RuleKind::Discount => "discount",
        RuleKind::Payment => "payment",
        RuleKind::Refund => "refund",
    }
}

/// A rule kind from its database name.
#[must_use]
pub fn parse_kind(name: &str) -> Option<RuleKind> {
    [
        RuleKind::Goods,
        RuleKind::Shipping,
        RuleKind::Fee,
        RuleKind::Discount,
        RuleKind::Payment,
        RuleKind::Refund,
    ]
    .into_iter()
    .find(|k| kind_name(*k) == name)
}

fn account_type_name(t: AccountType) -> &'static str {
    match t {
        AccountType::Asset => "asset",
        AccountType::Liability => "liability",
        AccountType::Equity => "equity",
        AccountType::Income => "income",
        AccountType::Expense => "expense",
    }
}

fn account_i32(a: AccountNo) -> i32 {
    i32::try_from(a.0).unwrap_or(i32::MAX)
}
