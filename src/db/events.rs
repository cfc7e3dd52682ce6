//! The event inbox and audit trail: one row per (connection, event id), holding the source
//! document and what became of it; and, for channels whose event id is not signed, one claim per
//! (connection, content key).

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

/// One delivery's claim on its content key (see [`claim_contents`]).
#[derive(Clone, Debug)]
pub struct ContentClaim<'a> {
    /// The connection it arrived on.
    pub connection_id: Uuid,
    /// What its body says happened, to which resource, as of when.
    pub content_key: &'a str,
    /// Its row in `events`, as [`arrive_all`] returned it.
    pub event_row: Uuid,
}

/// Records each delivery's content key once per connection (`event_contents_once`), in key
/// order after the inbox rows, so concurrent batches take these locks in one order too. `claims`
/// must not hold one (connection, key) twice. Answers, in `claims`' order, the shop's event id
/// of the earlier event that holds the key, when another event than the claimant holds it: the
/// claimant is a duplicate of that one. A key its own event holds already (a replay of that
/// event after it failed) is no duplicate. Two batches claiming one key at once serialise on it:
/// the second waits for the first to commit or roll back, and then sees what it did.
///
/// # Errors
/// A database error.
pub async fn claim_contents(
    db: &mut PgConnection,
    claims: &[ContentClaim<'_>],
) -> sqlx::Result<Vec<Option<String>>> {
    if claims.is_empty() {
        return Ok(Vec::new());
    }
    let conns: Vec<Uuid> = claims.iter().map(|c| c.connection_id).collect();
    let keys: Vec<&str> = claims.iter().map(|c| c.content_key).collect();
    let rows: Vec<Uuid> = claims.iter().map(|c| c.event_row).collect();
    let inserted: Vec<(Uuid, String)> = sqlx::query_as(
        "insert into event_contents (connection_id, content_key, event_id) \
         select * from unnest($1::uuid[], $2::text[], $3::uuid[]) as u(c, k, e) order by u.c, u.k \
         on conflict on constraint event_contents_once do nothing \
         returning connection_id, content_key",
    )
    .bind(&conns)
    .bind(&keys)
    .bind(&rows)
    .fetch_all(&mut *db)
    .await?;
    if inserted.len() == claims.len() {
        return Ok(vec![None; claims.len()]);
    }
    let inserted: std::collections::HashSet<(Uuid, &str)> =
        inserted.iter().map(|(c, k)| (*c, k.as_str())).collect();
    let (held_conns, held_keys): (Vec<Uuid>, Vec<&str>) = claims
        .iter()
        .filter(|c| !inserted.contains(&(c.connection_id, c.content_key)))
        .map(|c| (c.connection_id, c.content_key))
        .unzip();
    // A statement of its own, so that (at read committed) it sees the rows of the transactions
    // the insert waited for.
    let holders: Vec<(Uuid, String, Uuid, String)> = sqlx::query_as(
        "select c.connection_id, c.content_key, c.event_id, e.source_event_id \
         from event_contents c join events e on e.id = c.event_id \
         join unnest($1::uuid[], $2::text[]) as u(c, k) on c.connection_id = u.c and c.content_key = u.k",
    )
    .bind(&held_conns)
    .bind(&held_keys)
    .fetch_all(&mut *db)
    .await?;
    let holders: std::collections::HashMap<(Uuid, &str), (Uuid, &str)> = holders
        .iter()
        .map(|(c, k, row, source)| ((*c, k.as_str()), (*row, source.as_str())))
        .collect();
    Ok(claims
        .iter()
        .map(|c| match holders.get(&(c.connection_id, c.content_key)) {
            Some((row, source)) if *row != c.event_row => Some((*source).to_owned()),
            _ => None,
        })
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

/// Marks as skipped, with its reason, the event that posted each voucher `voucher_keys[i]` of
/// connection `connection_ids[i]`, and clears its flag: what it posted is reversed, so what it
/// flagged no longer stands. Vouchers not in the ledger (yet) match nothing.
///
/// # Errors
/// A database error.
pub async fn skip_by_voucher(
    db: &mut PgConnection,
    connection_ids: &[Uuid],
    voucher_keys: &[&str],
    reasons: &[&str],
) -> sqlx::Result<()> {
    sqlx::query(
        "update events e set status = 'skipped', reason = u.reason, flag = null, processed_at = now() \
         from vouchers v \
         join unnest($1::uuid[], $2::text[], $3::text[]) as u(c, k, reason) \
             on v.connection_id = u.c and v.idempotency_key = u.k \
         where e.id = v.source_event",
    )
    .bind(connection_ids)
    .bind(voucher_keys)
    .bind(reasons)
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
    /// processed, skipped, ignored, duplicate or failed.
    pub status: String,
    /// Why it was skipped, ignored, a duplicate or failed.
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
