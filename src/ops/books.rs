//! Editing the books operators own, with validation that names the field: posting rules (and
//! their dry run on a sample order), departments and locations, a connection's invoicing
//! settings. Shared by the CLI and the admin API.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::channel::Channel;
use crate::db::books::{self as q, Dimension, RuleRow, SettingsUpdate};
use crate::db::connections as conns;
use crate::posting::{Event, Rate};

/// Why an edit was refused.
#[derive(Debug, thiserror::Error)]
pub enum BooksError {
    /// A field is not acceptable; names it.
    #[error("{field}: {message}")]
    Invalid {
        /// The field, as the API and CLI spell it.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It exists already.
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("database error")]
    Db(#[from] sqlx::Error),
}

fn invalid(field: &'static str, message: impl Into<String>) -> BooksError {
    BooksError::Invalid {
        field,
        message: message.into(),
    }
}

/// A posting rule: criteria (every given one must match; the most specific rule wins) and a
/// placement.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleIn {
    /// Only for this connection; company-wide when absent.
    pub connection_id: Option<Uuid>,
    /// Line kind: goods, shipping, fee, discount, payment or refund.
    pub kind: Option<String>,
    /// VAT code the line has.
    pub vat_code: Option<i32>,
    /// VAT rate the line has, in percent (`25`, `12.5`).
    pub vat_rate: Option<String>,
    /// SKU prefix.
    pub sku_prefix: Option<String>,
    /// Product group.
    pub product_group: Option<String>,
    /// Payment method.
    pub payment_method: Option<String>,
    /// Account to post to (must be in the chart).
    pub account: i64,
    /// VAT code to post with, instead of the line's.
    pub set_vat_code: Option<i32>,
    /// Department to post with (must exist).
    pub department: Option<String>,
    /// Location to post with (must exist).
    pub location: Option<String>,
}

/// A stored posting rule.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RuleOut {
    /// Id.
    pub id: i64,
    /// Only for this connection; company-wide when null.
    pub connection_id: Option<Uuid>,
    /// Line kind.
    pub kind: Option<String>,
    /// VAT code matched.
    pub vat_code: Option<i32>,
    /// VAT rate matched, in percent.
    pub vat_rate: Option<String>,
    /// SKU prefix matched.
    pub sku_prefix: Option<String>,
    /// Product group matched.
    pub product_group: Option<String>,
    /// Payment method matched.
    pub payment_method: Option<String>,
    /// Account posted to.
    pub account: i32,
    /// VAT code posted with.
    pub set_vat_code: Option<i32>,
    /// Department posted with.
    pub department: Option<String>,
    /// Location posted with.
    pub location: Option<String>,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<RuleRow> for RuleOut {
    fn from(r: RuleRow) -> Self {
        RuleOut {
            id: r.id,
            connection_id: r.connection_id,
            kind: r.kind,
            vat_code: r.vat_code,
            vat_rate: r.vat_rate_bp.map(percent),
            sku_prefix: r.sku_prefix,
            product_group: r.product_group,
            payment_method: r.payment_method,
            account: r.account,
            set_vat_code: r.set_vat_code,
            department: r.department,
            location: r.location,
            created_at: r.created_at,
        }
    }
}

/// Hundredths of a percent as a percent: 2500 → `25`, 1250 → `12.5`.
fn percent(bp: i32) -> String {
    let text = format!("{}.{:02}", bp / 100, bp % 100);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

const KINDS: [&str; 6] = ["goods", "shipping", "fee", "discount", "payment", "refund"];

async fn default_company(db: &mut PgConnection) -> Result<Uuid, BooksError> {
    Ok(conns::default_company(db).await?)
}

/// The rules of the default company (with `connection`: only those that apply to it).
///
/// # Errors
/// A database error.
pub async fn list_rules(db: &PgPool, connection: Option<Uuid>) -> Result<Vec<RuleOut>, BooksError> {
    let mut c = db.acquire().await?;
    let company = default_company(&mut c).await?;
    Ok(q::rules(&mut c, company, connection)
        .await?
        .into_iter()
        .map(RuleOut::from)
        .collect())
}

/// One rule.
///
/// # Errors
/// [`BooksError::NotFound`], or a database error.
pub async fn get_rule(db: &PgPool, id: i64) -> Result<RuleOut, BooksError> {
    q::rule(&mut *db.acquire().await?, id)
        .await?
        .map(RuleOut::from)
        .ok_or_else(|| BooksError::NotFound(format!("no posting rule with id {id}")))
}

/// Adds a rule (`id` None) or replaces one, after checking every field against the books.
///
/// # Errors
/// [`BooksError::Invalid`] naming the field, [`BooksError::NotFound`], or a database error.
pub async fn save_rule(
    db: &PgPool,
    id: Option<i64>,
    input: &RuleIn,
) -> Result<RuleOut, BooksError> {
    let mut tx = db.begin().await?;
    let row = validate_rule(&mut tx, input).await?;
    let saved = q::save_rule(&mut tx, id, &row).await?.ok_or_else(|| {
        BooksError::NotFound(format!("no posting rule with id {}", id.unwrap_or(0)))
    })?;
    let out = q::rule(&mut tx, saved)
        .await?
        .map(RuleOut::from)
        .ok_or_else(|| BooksError::NotFound(format!("no posting rule with id {saved}")))?;
    tx.commit().await?;
    Ok(out)
}

/// Deletes a rule.
///
/// # Errors
/// [`BooksError::NotFound`], or a database error.
pub async fn remove_rule(db: &PgPool, id: i64) -> Result<(), BooksError> {
    if q::delete_rule(&mut *db.acquire().await?, id).await? {
        Ok(())
    } else {
        Err(BooksError::NotFound(format!(
            "no posting rule with id {id}"
        )))
    }
}

async fn validate_rule(db: &mut PgConnection, r: &RuleIn) -> Result<RuleRow, BooksError> {
    let company = default_company(db).await?;
    if let Some(kind) = &r.kind
        && !KINDS.contains(&kind.as_str())
    {
        return Err(invalid(
            "kind",
            format!("`{kind}` is not one of {}", KINDS.join(", ")),
        ));
    }
    if let Some(c) = r.connection_id
        && conns::get(db, c).await?.is_none()
    {
        return Err(invalid(
            "connection_id",
            format!("no connection with id {c}"),
        ));
    }
    let account =
        i32::try_from(r.account).map_err(|_| invalid("account", "not an account number"))?;
    if !q::account_exists(db, company, r.account).await? {
        return Err(invalid(
            "account",
            format!("account {} is not in the chart", r.account),
        ));
    }
    for (field, code) in [("vat_code", r.vat_code), ("set_vat_code", r.set_vat_code)] {
        if let Some(code) = code
            && !q::vat_code_exists(db, company, code).await?
        {
            return Err(invalid(field, format!("VAT code {code} is not defined")));
        }
    }
    let vat_rate_bp = match &r.vat_rate {
        Some(text) => {
            let rate = Rate::parse_percent(text)
                .map_err(|e| invalid("vat_rate", format!("`{text}` is not a percentage: {e}")))?;
            Some(i32::try_from(rate.0).map_err(|_| invalid("vat_rate", "too large"))?)
        }
        None => None,
    };
    for (field, dim, code) in [
        ("department", Dimension::Department, &r.department),
        ("location", Dimension::Location, &r.location),
    ] {
        if let Some(code) = code
            && !q::dimension_exists(db, dim, company, code).await?
        {
            return Err(invalid(
                field,
                format!("`{code}` is not defined; add it first"),
            ));
        }
    }
    let text = |v: &Option<String>| {
        v.as_ref()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    Ok(RuleRow {
        id: 0,
        company_id: company,
        connection_id: r.connection_id,
        kind: r.kind.clone(),
        vat_code: r.vat_code,
        vat_rate_bp,
        sku_prefix: text(&r.sku_prefix),
        product_group: text(&r.product_group),
        payment_method: text(&r.payment_method),
        account,
        set_vat_code: r.set_vat_code,
        department: text(&r.department),
        location: text(&r.location),
        created_at: chrono::Utc::now(),
    })
}

/// How one line of a sample order would be placed.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LinePlacement {
    /// The order it belongs to.
    pub order_id: String,
    /// 1-based line number.
    pub line: usize,
    /// The line as errors name it.
    pub text: String,
    /// What is placed: the line's kind, or `discount`.
    pub kind: String,
    /// VAT code it would post with.
    pub vat_code: Option<u16>,
    /// The winning rule.
    pub rule: Option<i64>,
    /// The account it would post to; null when it cannot be placed.
    pub account: Option<u32>,
    /// Why, in words.
    pub why: String,
}

/// Dry run of the rules on a sample document: reads it with the channel's adapter (as the
/// worker would) and explains, for every order in it, which rule places each line and why.
/// `connection` picks the rules and settings; by default the first connection of `channel`.
///
/// # Errors
/// [`BooksError::Invalid`] when the sample cannot be read (field `body`) or holds no order, or
/// when no connection can supply the context.
pub async fn test_rules(
    db: &PgPool,
    channel: Channel,
    topic: &str,
    body: &[u8],
    connection: Option<Uuid>,
) -> Result<Vec<LinePlacement>, BooksError> {
    let events =
        crate::channels::parse(channel, topic, body).map_err(|e| invalid("body", e.to_string()))?;
    let orders: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Order(o) => Some(o),
            _ => None,
        })
        .collect();
    if orders.is_empty() {
        return Err(invalid(
            "body",
            format!("a `{topic}` event holds no order to place"),
        ));
    }
    let mut c = db.acquire().await?;
    let connection = match connection {
        Some(id) => id,
        None => conns::list(&mut c)
            .await?
            .into_iter()
            .find(|row| row.channel == channel.as_str())
            .map(|row| row.id)
            .ok_or_else(|| {
                invalid(
                    "connection",
                    format!("no {channel} connection to take rules and settings from"),
                )
            })?,
    };
    let (_, ctx) = crate::db::ledger::load_context(&mut c, connection)
        .await
        .map_err(|e| match e {
            crate::db::ledger::LedgerError::Db(e) => BooksError::Db(e),
            other => invalid("connection", other.to_string()),
        })?;
    let mut out = Vec::new();
    for order in orders {
        let ctx = ctx.for_event(None, crate::posting::oslo_date(order.registered_at));
        for e in crate::posting::explain(order, &ctx) {
            out.push(LinePlacement {
                order_id: order.id.clone(),
                line: e.line,
                text: e.text,
                kind: crate::db::ledger::kind_name(e.kind).to_owned(),
                vat_code: e.vat_code.map(|c| c.0),
                rule: e.rule,
                account: e.account.map(|a| a.0),
                why: e.why,
            });
        }
    }
    Ok(out)
}

/// Lists a dimension of the default company.
///
/// # Errors
/// A database error.
pub async fn list_dimension(
    db: &PgPool,
    dim: Dimension,
) -> Result<Vec<q::DimensionRow>, BooksError> {
    let mut c = db.acquire().await?;
    let company = default_company(&mut c).await?;
    Ok(q::dimensions(&mut c, dim, company).await?)
}

/// A new department or location.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DimensionIn {
    /// Code, as rules and connections name it (1 to 32 characters).
    #[schema(min_length = 1, max_length = 32)]
    pub code: String,
    /// Name.
    #[schema(min_length = 1)]
    pub name: String,
}

/// Adds a department or location to the default company.
///
/// # Errors
/// [`BooksError::Invalid`] for an empty code or name, [`BooksError::Conflict`] when the code
/// exists, or a database error.
pub async fn add_dimension(
    db: &PgPool,
    dim: Dimension,
    input: &DimensionIn,
) -> Result<q::DimensionRow, BooksError> {
    let code = input.code.trim();
    let name = input.name.trim();
    if code.is_empty() || code.chars().count() > 32 {
        return Err(invalid("code", "must be 1 to 32 characters"));
    }
    if name.is_empty() {
        return Err(invalid("name", "must not be empty"));
    }
    let mut c = db.acquire().await?;
    let company = default_company(&mut c).await?;
    if !q::insert_dimension(&mut c, dim, company, code, name).await? {
        return Err(BooksError::Conflict(format!("`{code}` exists already")));
    }
    Ok(q::DimensionRow {
        code: code.to_owned(),
        name: name.to_owned(),
    })
}

/// New settings of a connection; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsIn {
    /// Name shown to operators.
    pub name: Option<String>,
    /// Orders registered before this date (YYYY-MM-DD) are skipped.
    #[schema(format = Date)]
    pub process_orders_from: Option<String>,
    /// Account for prepaid orders; must be in the chart.
    pub prepaid_account: Option<String>,
    /// Department to post with; empty clears it.
    pub department: Option<String>,
    /// Location to post with; empty clears it.
    pub location: Option<String>,
    /// Orders whose total is above this amount (in the company's currency, "1000000.00") are
    /// dead-lettered for an operator; must be positive.
    pub max_order_amount: Option<String>,
}

/// A `max_order_amount` as typed: a positive amount with at most two decimals, in øre.
///
/// # Errors
/// [`BooksError::Invalid`] naming `max_order_amount`.
pub fn parse_ceiling(amount: &str) -> Result<i64, BooksError> {
    match crate::posting::Money::parse(amount.trim()) {
        Ok(m) if m.0 > 0 => Ok(m.0),
        Ok(_) => Err(invalid("max_order_amount", "must be more than 0")),
        Err(e) => Err(invalid("max_order_amount", e.to_string())),
    }
}

/// Checks settings as a new connection of the default company would carry them.
///
/// # Errors
/// [`BooksError::Invalid`] naming the field, or a database error.
pub async fn check_settings(db: &PgPool, s: &SettingsIn) -> Result<(), BooksError> {
    let mut c = db.acquire().await?;
    let company = default_company(&mut c).await?;
    settings_update(&mut c, company, s).await.map(|_| ())
}

/// Changes a connection's settings after checking each against the books; a draft whose
/// cut-off date and prepaid account are both given becomes active.
///
/// # Errors
/// [`BooksError::Invalid`] naming the field, [`BooksError::NotFound`], or a database error.
pub async fn update_connection(db: &PgPool, id: Uuid, s: &SettingsIn) -> Result<(), BooksError> {
    let mut tx = db.begin().await?;
    let conn = conns::get(&mut tx, id)
        .await?
        .ok_or_else(|| BooksError::NotFound(format!("no connection with id {id}")))?;
    let u = settings_update(&mut tx, conn.company_id, s).await?;
    q::update_settings(&mut tx, id, &u).await?;
    tx.commit().await?;
    Ok(())
}

async fn settings_update(
    db: &mut PgConnection,
    company: Uuid,
    s: &SettingsIn,
) -> Result<SettingsUpdate, BooksError> {
    let mut u = SettingsUpdate::default();
    if let Some(name) = &s.name {
        let name = name.trim();
        if name.is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        u.name = Some(name.to_owned());
    }
    if let Some(date) = &s.process_orders_from {
        let parsed = NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .ok()
            .filter(|d| (1900..=9999).contains(&chrono::Datelike::year(d)))
            .ok_or_else(|| {
                invalid(
                    "process_orders_from",
                    format!("`{date}` is not a date (YYYY-MM-DD)"),
                )
            })?;
        u.process_orders_from = Some(parsed);
    }
    if let Some(account) = &s.prepaid_account {
        let number: i64 = account.trim().parse().map_err(|_| {
            invalid(
                "prepaid_account",
                format!("`{account}` is not an account number"),
            )
        })?;
        if !q::account_exists(db, company, number).await? {
            return Err(invalid(
                "prepaid_account",
                format!("account {number} is not in the chart"),
            ));
        }
        u.prepaid_account = Some(number.to_string());
    }
    if let Some(amount) = &s.max_order_amount {
        u.max_order_amount = Some(parse_ceiling(amount)?);
    }
    for (field, dim, value, slot) in [
        (
            "department",
            Dimension::Department,
            &s.department,
            &mut u.department,
        ),
        (
            "location",
            Dimension::Location,
            &s.location,
            &mut u.location,
        ),
    ] {
        if let Some(value) = value {
            let code = value.trim();
            if code.is_empty() {
                *slot = Some(None);
            } else if q::dimension_exists(db, dim, company, code).await? {
                *slot = Some(Some(code.to_owned()));
            } else {
                return Err(invalid(
                    field,
                    format!("`{code}` is not defined; add it first"),
                ));
            }
        }
    }
    Ok(u)
}
