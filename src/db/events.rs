//! The event inbox and audit trail: one row per (connection, event id), holding the source
//! document and what became of it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

/// A delivered event, as the worker records it on arrival.
#[derive(Clone, Debug)]
pub struct NewEvent<'a> {
    /// The connection it arrived on.
    pub connection_id: Uuid,
    /// The shop's event id (the AMQP message id).
    pub source_event_id: &'a str,
    /// Channel kind.
    pub channel: &'a str,
    /// Topic as the channel names it.
    pub topic: &'a str,
    /// The raw body, exactly as signed.
    pub body: &'a [u8],
    /// When the receiver accepted it.
    pub received_at: DateTime<Utc>,
    /// When the shop says it happened, if it says.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The HTTP request id.
    pub request_id: Option<&'a str>,
}

/// What the inbox says about a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// First delivery: process it (the row is written, as `processed` until [`finish`] says otherwise).
    New(Uuid),
    /// Delivered before and failed then: process it again (a replay).
    Retry(Uuid),
    /// Delivered before and done (or being done by this very transaction): skip it.
    Duplicate(Uuid),
}

/// Records a batch of deliveries in the inbox in one statement, in key order (so concurrent
/// batches take the inbox's row locks in the same order and cannot deadlock on them).
/// `events` must not hold one (connection, event id) twice; `copies` says how many deliveries
/// of each the batch held (counted in `deliveries`). The answers come in `events`' order.
/// A first delivery is `New`, one of an event that failed before `Retry`, any other `Duplicate`;
/// concurrent deliveries of one event serialise on its row, so the second sees the first's outcome.
///
/// A new row is written as `processed` already, the outcome of nearly every event: the row only
/// becomes visible when the posting transaction commits, and [`finish`] rewrites just the rows
/// whose outcome differs. That saves rewriting every row (body included, and its five index
/// entries, since a status change cannot be a HOT update) once per event.
///
/// # Errors
/// A database error.
pub async fn arrive_all(
    db: &mut PgConnection,
    events: &[NewEvent<'_>],
    copies: &[i32],
) -> sqlx::Result<Vec<Arrival>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = events.iter().map(|_| Uuid::now_v7()).collect();
    let conns: Vec<Uuid> = events.iter().map(|e| e.connection_id).collect();
    let sources: Vec<&str> = events.iter().map(|e| e.source_event_id).collect();
    let channels: Vec<&str> = events.iter().map(|e| e.channel).collect();
    let topics: Vec<&str> = events.iter().map(|e| e.topic).collect();
    let bodies: Vec<&[u8]> = events.iter().map(|e| e.body).collect();
    let received: Vec<DateTime<Utc>> = events.iter().map(|e| e.received_at).collect();
    let occurred: Vec<Option<DateTime<Utc>>> = events.iter().map(|e| e.occurred_at).collect();
    let requests: Vec<Option<&str>> = events.iter().map(|e| e.request_id).collect();
    let rows: Vec<(Uuid, Uuid, String, String, bool)> = sqlx::query_as(
        "insert into events (id, connection_id, source_event_id, channel, topic, body, received_at, \
             occurred_at, request_id, deliveries, status, processed_at) \
         select u.*, 'processed', now() from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], \
             $6::bytea[], $7::timestamptz[], $8::timestamptz[], $9::text[], $10::int[]) \
             as u(id, c, s, ch, t, b, r, o, q, n) order by u.c, u.s \
         on conflict on constraint events_inbox do update \
             set deliveries = events.deliveries + excluded.deliveries \
         returning id, connection_id, source_event_id, status, (xmax = 0) as inserted",
    )
    .bind(&ids)
    .bind(&conns)
    .bind(&sources)
    .bind(&channels)
    .bind(&topics)
    .bind(&bodies)
    .bind(&received)
    .bind(&occurred)
    .bind(&requests)
    .bind(copies)
    .fetch_all(db)
    .await?;
    let by_key: std::collections::HashMap<(Uuid, &str), (Uuid, &str, bool)> = rows
        .iter()
        .map(|(id, c, s, status, inserted)| ((*c, s.as_str()), (*id, status.as_str(), *inserted)))
        .collect();
    Ok(events
        .iter()
        .map(
            |e| match by_key.get(&(e.connection_id, e.source_event_id)) {
                Some((id, _, true)) => Arrival::New(*id),
                Some((id, "failed", false)) => Arrival::Retry(*id),
                Some((id, _, false)) => Arrival::Duplicate(*id),
                None => Arrival::Duplicate(Uuid::nil()), // cannot happen: every row returns
            },
        )
        .collect())
}

/// Sets the final status of events (one row each), with their reasons and flags (what an
/// operator should look at in a processed event); rows that already have
/// them (see [`arrive_all`]) are left as they are.
///
/// # Errors
/// A database error.
pub async fn finish(
    db: &mut PgConnection,
    ids: &[Uuid],
    statuses: &[&str],
    reasons: &[Option<String>],
    flags: &[Option<String>],
) -> sqlx::Result<()> {
    sqlx::query(
        "update events e set status = u.status, reason = u.reason, flag = u.flag, processed_at = now() \
         from unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) as u(id, status, reason, flag) \
         where e.id = u.id and (e.status, e.reason, e.flag) is distinct from (u.status, u.reason, u.flag)",
    )
    .bind(ids)
    .bind(statuses)
    .bind(reasons)
    .bind(flags)
    .execute(db)
    .await?;
    Ok(())
}

/// Marks one event failed with its reason, creating its row if the posting transaction that
/// would have created it was rolled back. Used for permanent failures found after a rollback.
///
/// # Errors
/// A database error.
pub async fn record_failure(
    db: &mut PgConnection,
    e: &NewEvent<'_>,
    reason: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into events (id, connection_id, source_event_id, channel, topic, body, received_at, \
             occurred_at, request_id, status, reason, processed_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'failed', $10, now()) \
         on conflict on constraint events_inbox do update \
             set status = 'failed', reason = excluded.reason, processed_at = now() \
             where events.status in ('failed', 'processing')",
    )
    .bind(Uuid::now_v7())
    .bind(e.connection_id)
    .bind(e.source_event_id)
    .bind(e.channel)
    .bind(e.topic)
    .bind(e.body)
    .bind(e.received_at)
    .bind(e.occurred_at)
    .bind(e.request_id)
    .bind(reason)
    .execute(db)
    .await?;
    Ok(())
}

/// An event as operators see it.
#[derive(Clone, Debug, FromRow, Serialize, utoipa::ToSchema)]
pub struct EventRow {
    /// shopbridge's id of the event.
    pub id: Uuid,
    /// Its connection.
    pub connection_id: Uuid,
    /// The shop's event id.
    pub source_event_id: String,
    /// Channel kind.
    pub channel: String,
    /// Topic.
    pub topic: String,
    /// processed, skipped, ignored or failed.
    pub status: String,
    /// Why it was skipped, ignored or failed.
    pub reason: Option<String>,
    /// What an operator should look at although it was processed (a payment above what its
    /// order owed).
    pub flag: Option<String>,
    /// Deliveries so far.
    pub deliveries: i32,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// When its status was last set.
    pub processed_at: Option<DateTime<Utc>>,
}

/// Events, newest first, optionally of one status.
///
/// # Errors
/// A database error.
pub async fn list(
    db: &mut PgConnection,
    status: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as(
        "select id, connection_id, source_event_id, channel, topic, status, reason, flag, deliveries, \
                received_at, processed_at \
         from events where ($1::text is null or status = $1) order by received_at desc, id desc limit $2",
    )
    .bind(status)
    .bind(limit)
    .fetch_all(db)
    .await
}
