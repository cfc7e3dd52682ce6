//! Queries of the operators' views: events with filters, one event with its vouchers, vouchers
//! with filters, an account's ledger, and what replay needs to follow an event.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgConnection};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ops::stored::EventFilter;

/// The database's clock.
///
/// # Errors
/// A database error.
pub async fn now(db: &mut PgConnection) -> sqlx::Result<DateTime<Utc>> {
    sqlx::query_scalar("select clock_timestamp()")
        .fetch_one(db)
        .await
}

/// Where an event stands, for following a replay.
#[derive(Clone, Debug, FromRow)]
pub struct EventState {
    /// Row id.
    pub id: Uuid,
    /// Status.
    pub status: String,
    /// Reason.
    pub reason: Option<String>,
    /// Deliveries so far.
    pub deliveries: i32,
}

/// The state of the event `(connection, shop event id)`, if it has a row.
///
/// # Errors
/// A database error.
pub async fn event_state(
    db: &mut PgConnection,
    connection_id: Uuid,
    source_event_id: &str,
) -> sqlx::Result<Option<EventState>> {
    sqlx::query_as(
        "select id, status, reason, deliveries from events where connection_id = $1 and source_event_id = $2",
    )
    .bind(connection_id)
    .bind(source_event_id)
    .fetch_optional(db)
    .await
}

/// Vouchers of an event posted at or after `since`, as `series year-number key`.
///
/// # Errors
/// A database error.
pub async fn vouchers_of_event_since(
    db: &mut PgConnection,
    event: Uuid,
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select series || ' ' || year || '-' || number || ' ' || idempotency_key from vouchers \
         where source_event = $1 and posted_at >= $2 order by series, year, number",
    )
    .bind(event)
    .bind(since)
    .fetch_all(db)
    .await
}

/// A stored event, for replay; its source document is read apart ([`bodies_of`]), a batch at a
/// time.
#[derive(Clone, Debug, FromRow)]
pub struct StoredEvent {
    /// Row id.
    pub id: Uuid,
    /// Connection.
    pub connection_id: Uuid,
    /// The shop's event id.
    pub source_event_id: String,
    /// Channel kind.
    pub channel: String,
    /// Topic.
    pub topic: String,
    /// Size of the body in bytes.
    pub bytes: i64,
    /// When the receiver accepted it.
    pub received_at: DateTime<Utc>,
    /// When the shop says it happened.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The original request id.
    pub request_id: Option<String>,
    /// Status.
    pub status: String,
    /// Reason.
    pub reason: Option<String>,
}

const FILTER: &str = "($1::uuid is null or id = $1) and ($2::uuid is null or connection_id = $2) \
     and ($3::text is null or status = $3) and ($4::text is null or topic = $4) \
     and ($5::timestamptz is null or received_at >= $5) and ($6::timestamptz is null or received_at <= $6)";

/// Stored events matching `f`, without their bodies, oldest first (a replay keeps their order).
/// `octet_length` reads a stored body's size from its header, not the body itself.
///
/// # Errors
/// A database error.
pub async fn find_events(db: &mut PgConnection, f: &EventFilter) -> sqlx::Result<Vec<StoredEvent>> {
    sqlx::query_as(&format!(
        "select * from (select id, connection_id, source_event_id, channel, topic, \
                octet_length(body)::bigint as bytes, received_at, occurred_at, request_id, status, \
                reason from events where {FILTER} \
                order by received_at desc, id desc limit $7) e order by received_at, id"
    ))
    .bind(f.id)
    .bind(f.connection)
    .bind(&f.status)
    .bind(&f.topic)
    .bind(f.since)
    .bind(f.until)
    .bind(f.limit.unwrap_or(100).clamp(1, 10_000))
    .fetch_all(db)
    .await
}

/// The bodies of the events `ids`, exactly as signed, as `(id, body)` in no particular order.
///
/// # Errors
/// A database error.
pub async fn bodies_of(db: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<Vec<(Uuid, Vec<u8>)>> {
    sqlx::query_as("select id, body from events where id = any($1)")
        .bind(ids)
        .fetch_all(db)
        .await
}

/// Events matching `f` (without bodies), newest first, skipping `offset`.
///
/// # Errors
/// A database error.
pub async fn list_events(
    db: &mut PgConnection,
    f: &EventFilter,
    offset: i64,
) -> sqlx::Result<Vec<crate::db::events::EventRow>> {
    sqlx::query_as(&format!(
        "select id, connection_id, source_event_id, channel, topic, status, reason, flag, deliveries, \
                received_at, processed_at from events where {FILTER} \
         order by received_at desc, id desc limit $7 offset $8"
    ))
    .bind(f.id)
    .bind(f.connection)
    .bind(&f.status)
    .bind(&f.topic)
    .bind(f.since)
    .bind(f.until)
    .bind(f.limit.unwrap_or(100).clamp(1, 10_000))
    .bind(offset.max(0))
    .fetch_all(db)
    .await
}

/// One event with its source document.
#[derive(Clone, Debug, FromRow)]
pub struct EventDetail {
    /// Row id.
    pub id: Uuid,
    /// Connection.
    pub connection_id: Uuid,
    /// The shop's event id.
    pub source_event_id: String,
    /// Channel kind.
    pub channel: String,
    /// Topic.
    pub topic: String,
    /// Status.
    pub status: String,
    /// Reason.
    pub reason: Option<String>,
    /// What an operator should look at although it was processed.
    pub flag: Option<String>,
    /// Deliveries.
    pub deliveries: i32,
    /// When received.
    pub received_at: DateTime<Utc>,
    /// When the shop says it happened.
    pub occurred_at: Option<DateTime<Utc>>,
    /// When its status was last set.
    pub processed_at: Option<DateTime<Utc>>,
    /// The request id.
    pub request_id: Option<String>,
    /// The body as signed.
    pub body: Vec<u8>,
}

/// Events by shopbridge id, or else by the shop's event id (which several connections may share).
///
/// # Errors
/// A database error.
pub async fn get_events(db: &mut PgConnection, key: &str) -> sqlx::Result<Vec<EventDetail>> {
    let id: Option<Uuid> = key.parse().ok();
    sqlx::query_as(
        "select id, connection_id, source_event_id, channel, topic, status, reason, flag, deliveries, \
                received_at, occurred_at, processed_at, request_id, body from events \
         where ($1::uuid is not null and id = $1) or source_event_id = $2 order by received_at",
    )
    .bind(id)
    .bind(key)
    .fetch_all(db)
    .await
}

/// Which vouchers to list.
#[derive(Clone, Debug, Default, serde::Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VoucherFilter {
    /// First voucher date (YYYY-MM-DD).
    pub from: Option<NaiveDate>,
    /// Last voucher date (YYYY-MM-DD).
    pub to: Option<NaiveDate>,
    /// Only vouchers with a line on this account.
    pub account: Option<i32>,
    /// Only this connection's.
    pub connection: Option<Uuid>,
    /// Only the vouchers of this event.
    pub event: Option<Uuid>,
    /// At most this many; default 100.
    #[param(minimum = 1, maximum = 10000)]
    #[schema(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
}

/// A voucher head.
#[derive(Clone, Debug, FromRow, Serialize, ToSchema)]
pub struct VoucherHead {
    /// Id.
    pub id: Uuid,
    /// Connection whose event caused it.
    pub connection_id: Uuid,
    /// Number series.
    pub series: String,
    /// Year of its number.
    pub year: i32,
    /// Number in series and year.
    pub number: i32,
    /// Accounting date.
    pub voucher_date: NaiveDate,
    /// invoice, credit_note, payment or refund_payment.
    pub kind: String,
    /// Description.
    pub description: String,
    /// Business idempotency key.
    pub idempotency_key: String,
    /// Order.
    pub order_id: Option<String>,
    /// Event that caused it.
    pub source_event: Option<Uuid>,
    /// Voucher it reverses.
    pub reverses: Option<Uuid>,
    /// When it was posted.
    pub posted_at: DateTime<Utc>,
}

/// Vouchers matching `f`, in number order.
///
/// # Errors
/// A database error.
pub async fn list_vouchers(
    db: &mut PgConnection,
    f: &VoucherFilter,
) -> sqlx::Result<Vec<VoucherHead>> {
    sqlx::query_as(
        "select id, connection_id, series, year, number, voucher_date, kind, description, idempotency_key, \
                order_id, source_event, reverses, posted_at from vouchers v \
         where ($1::date is null or voucher_date >= $1) and ($2::date is null or voucher_date <= $2) \
           and ($3::int is null or exists (select 1 from voucher_lines l where l.voucher_id = v.id and l.account = $3)) \
           and ($4::uuid is null or connection_id = $4) and ($5::uuid is null or source_event = $5) \
         order by year, series, number limit $6",
    )
    .bind(f.from)
    .bind(f.to)
    .bind(f.account)
    .bind(f.connection)
    .bind(f.event)
    .bind(f.limit.unwrap_or(100).clamp(1, 10_000))
    .fetch_all(db)
    .await
}

/// One voucher head.
///
/// # Errors
/// A database error.
pub async fn get_voucher(db: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<VoucherHead>> {
    sqlx::query_as(
        "select id, connection_id, series, year, number, voucher_date, kind, description, idempotency_key, \
                order_id, source_event, reverses, posted_at from vouchers where id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The lines of `vouchers`, in voucher and line order.
///
/// # Errors
/// A database error.
pub async fn lines_of(
    db: &mut PgConnection,
    vouchers: &[Uuid],
) -> sqlx::Result<Vec<crate::db::vouchers::LineRow>> {
    sqlx::query_as(
        "select l.voucher_id, l.line_no, l.account, a.name as account_name, l.amount, l.vat_code, l.vat_base, \
                l.customer_id, l.department, l.location, l.description \
         from voucher_lines l join accounts a on a.company_id = l.company_id and a.number = l.account \
         where l.voucher_id = any($1) order by l.voucher_id, l.line_no",
    )
    .bind(vouchers)
    .fetch_all(db)
    .await
}

/// One posting on an account.
#[derive(Clone, Debug, FromRow)]
pub struct LedgerEntry {
    /// Voucher.
    pub voucher_id: Uuid,
    /// Series.
    pub series: String,
    /// Year.
    pub year: i32,
    /// Number.
    pub number: i32,
    /// Date.
    pub voucher_date: NaiveDate,
    /// Line text.
    pub description: String,
    /// Øre, debit positive.
    pub amount: i64,
}

/// The balance of `account` before `from`, and its postings within `[from, to]`.
///
/// # Errors
/// A database error.
pub async fn account_ledger(
    db: &mut PgConnection,
    account: i32,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> sqlx::Result<(i64, Vec<LedgerEntry>)> {
    let opening: i64 = sqlx::query_scalar(
        "select coalesce(sum(l.amount), 0)::bigint from voucher_lines l join vouchers v on v.id = l.voucher_id \
         where l.account = $1 and $2::date is not null and v.voucher_date < $2",
    )
    .bind(account)
    .bind(from)
    .fetch_one(&mut *db)
    .await?;
    let entries = sqlx::query_as(
        "select v.id as voucher_id, v.series, v.year, v.number, v.voucher_date, l.description, l.amount \
         from voucher_lines l join vouchers v on v.id = l.voucher_id \
         where l.account = $1 and ($2::date is null or v.voucher_date >= $2) and ($3::date is null or v.voucher_date <= $3) \
         order by v.voucher_date, v.series, v.number, l.line_no",
    )
    .bind(account)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    Ok((opening, entries))
}

/// The statuses `/metrics` counts: events in flight and events waiting for an operator.
pub const GAUGED_STATUSES: [&str; 2] = ["processing", "failed"];

/// Events per status in [`GAUGED_STATUSES`] (for metrics).
///
/// Only these: they are few, and the `events_status` index (status, received_at) lets
/// PostgreSQL count them without reading any other row. The done statuses grow with every event
/// ever received, so counting them reads the whole table, and doing that on every scrape costs
/// more the longer shopbridge runs; their rate is `shopbridge_webhook_requests_total`'s.
///
/// # Errors
/// A database error.
pub async fn events_by_status(db: &mut PgConnection) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "select status, count(*) from events where status = any($1) group by status order by status",
    )
    .bind(&GAUGED_STATUSES[..])
    .fetch_all(db)
    .await
}
