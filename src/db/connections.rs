//! Queries over companies, connections and their signing secrets.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

/// A connection row as stored.
#[derive(Clone, Debug, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct ConnectionRow {
    /// The id in webhook URLs.
    pub id: Uuid,
    /// The company whose books the connection posts to.
    pub company_id: Uuid,
    /// The operator's name for the shop.
    pub name: String,
    /// `nettbutikk`, `shopify`, `woocommerce` or `stripe`.
    pub channel: String,
    /// `draft` (added in the console, not yet configured), `active` or `disabled`.
    pub status: String,
    /// Orders registered before this date are skipped.
    pub process_orders_from: NaiveDate,
    /// Account for prepaid orders.
    pub prepaid_account: String,
    /// Optional location/warehouse dimension ("sted/lager").
    pub location: Option<String>,
    /// Optional department dimension ("avdeling").
    pub department: Option<String>,
    /// Public half of the credentials.
    pub client_id: String,
    /// An event dated in a locked period: `dead_letter` or `next_open_date`.
    pub locked_period_policy: String,
    /// Orders whose total (in the company's currency) is above this are dead-lettered; øre in
    /// the database, a decimal string ("1000000.00") in JSON.
    #[serde(serialize_with = "as_decimal")]
    #[schema(value_type = String, example = "1000000.00")]
    pub max_order_amount: i64,
    /// When the connection was added.
    pub created_at: DateTime<Utc>,
    /// When a setting last changed.
    pub updated_at: DateTime<Utc>,
}

/// A signing secret row as stored (sealed or plain).
#[derive(Clone, FromRow)]
pub struct SecretRow {
    /// The secret's id.
    pub id: Uuid,
    /// Sealed bytes when `encrypted`, else the secret's UTF-8.
    pub secret: Vec<u8>,
    /// Whether `secret` is sealed with the master key.
    pub encrypted: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops verifying; `None` while current.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The settings of a new connection, validated by the caller.
#[derive(Clone, Debug)]
pub struct NewConnection {
    /// The id to give it.
    pub id: Uuid,
    /// Its company.
    pub company_id: Uuid,
    /// Its name.
    pub name: String,
    /// Its channel kind.
    pub channel: String,
    /// `None` takes the database default: the day it is created.
    pub process_orders_from: Option<NaiveDate>,
    /// `None` takes the database default (1522).
    pub prepaid_account: Option<String>,
    /// Optional location.
    pub location: Option<String>,
    /// Optional department.
    pub department: Option<String>,
    /// Public client id.
    pub client_id: String,
    /// `active`, or `draft` until its settings are saved.
    pub status: &'static str,
    /// The console form that adds it, when one does: a second connection with the same form id
    /// is not inserted.
    pub form: Option<Uuid>,
}

const CONNECTION_COLUMNS: &str = "id, company_id, name, channel, status, process_orders_from, \
     prepaid_account, location, department, client_id, locked_period_policy, max_order_amount, created_at, \
     updated_at";

/// Øre as the decimal string operators type.
fn as_decimal<S: serde::Serializer>(ore: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&crate::posting::Money(*ore))
}

/// The id of the default company.
///
/// # Errors
/// A database error, or no default company (the first migration creates one).
pub async fn default_company(db: &mut PgConnection) -> sqlx::Result<Uuid> {
    sqlx::query_scalar("select id from companies where is_default")
        .fetch_one(db)
        .await
}

/// Inserts a connection.
///
/// # Errors
/// A database error (e.g. an unknown company).
pub async fn insert(
    db: &mut PgConnection,
    new: &NewConnection,
) -> sqlx::Result<Option<ConnectionRow>> {
    sqlx::query_as(&format!(
        "insert into connections (id, company_id, name, channel, process_orders_from, \
             prepaid_account, location, department, client_id, status, created_by_form) \
         values ($1, $2, $3, $4, coalesce($5, current_date), coalesce($6, '1522'), $7, $8, $9, \
                 $10, $11) \
         on conflict (created_by_form) do nothing \
         returning {CONNECTION_COLUMNS}"
    ))
    .bind(new.id)
    .bind(new.company_id)
    .bind(&new.name)
    .bind(&new.channel)
    .bind(new.process_orders_from)
    .bind(&new.prepaid_account)
    .bind(&new.location)
    .bind(&new.department)
    .bind(&new.client_id)
    .bind(new.status)
    .bind(new.form)
    .fetch_optional(db)
    .await
}

/// The connection a console form added, if it added one.
///
/// # Errors
/// A database error.
pub async fn by_form(db: &mut PgConnection, form: Uuid) -> sqlx::Result<Option<ConnectionRow>> {
    sqlx::query_as(&format!(
        "select {CONNECTION_COLUMNS} from connections where created_by_form = $1"
    ))
    .bind(form)
    .fetch_optional(db)
    .await
}

/// One connection by id.
///
/// # Errors
/// A database error.
pub async fn get(db: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<ConnectionRow>> {
    sqlx::query_as(&format!(
        "select {CONNECTION_COLUMNS} from connections where id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Every connection, oldest first.
///
/// # Errors
/// A database error.
pub async fn list(db: &mut PgConnection) -> sqlx::Result<Vec<ConnectionRow>> {
    sqlx::query_as(&format!(
        "select {CONNECTION_COLUMNS} from connections order by created_at, id"
    ))
    .fetch_all(db)
    .await
}

/// Sets `status` of a connection that is not a draft; false when there is no such connection.
///
/// # Errors
/// A database error.
pub async fn set_status(db: &mut PgConnection, id: Uuid, status: &str) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update connections set status = $2, updated_at = now() where id = $1 and status <> 'draft'",
    )
        .bind(id)
        .bind(status)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores a new current secret for a connection.
///
/// # Errors
/// A database error.
pub async fn insert_secret(
    db: &mut PgConnection,
    connection_id: Uuid,
    sealed: &[u8],
    encrypted: bool,
) -> sqlx::Result<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into connection_secrets (id, connection_id, secret, encrypted) values ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(connection_id)
    .bind(sealed)
    .bind(encrypted)
    .execute(db)
    .await?;
    Ok(id)
}

/// Retires the connection's secrets for a rotation: the current one expires at `old_until`,
/// any already retiring one expires now, so at most two verify at any time.
///
/// # Errors
/// A database error.
pub async fn retire_secrets(
    db: &mut PgConnection,
    connection_id: Uuid,
    old_until: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "update connection_secrets \
         set expires_at = case when expires_at is null then $2 else least(expires_at, now()) end \
         where connection_id = $1 and (expires_at is null or expires_at > now())",
    )
    .bind(connection_id)
    .bind(old_until)
    .execute(db)
    .await?;
    Ok(())
}

/// The secrets that verify now, newest first.
///
/// # Errors
/// A database error.
pub async fn active_secrets(
    db: &mut PgConnection,
    connection_id: Uuid,
) -> sqlx::Result<Vec<SecretRow>> {
    sqlx::query_as(
        "select id, secret, encrypted, created_at, expires_at from connection_secrets \
         where connection_id = $1 and (expires_at is null or expires_at > now()) \
         order by created_at desc",
    )
    .bind(connection_id)
    .fetch_all(db)
    .await
}

/// Secrets still stored unencrypted (written while no master key was set).
///
/// # Errors
/// A database error.
pub async fn plaintext_secrets(db: &mut PgConnection) -> sqlx::Result<Vec<(Uuid, Uuid, Vec<u8>)>> {
    sqlx::query_as("select id, connection_id, secret from connection_secrets where not encrypted")
        .fetch_all(db)
        .await
}

/// Up to `limit` of the encrypted secrets that verify now, newest first, with their
/// connection ids: enough to tell at start whether the master key opens them.
///
/// # Errors
/// A database error.
pub async fn encrypted_secrets(
    db: &mut PgConnection,
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, Vec<u8>)>> {
    sqlx::query_as(
        "select connection_id, secret from connection_secrets \
         where encrypted and (expires_at is null or expires_at > now()) \
         order by created_at desc limit $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Replaces a plaintext secret with its sealed form.
///
/// # Errors
/// A database error.
pub async fn seal_secret(db: &mut PgConnection, id: Uuid, sealed: &[u8]) -> sqlx::Result<()> {
    sqlx::query("update connection_secrets set secret = $2, encrypted = true where id = $1 and not encrypted")
        .bind(id)
        .bind(sealed)
        .execute(db)
        .await?;
    Ok(())
}
