//! Replaying stored events: the events table keeps every source document exactly as the shop
//! signed it, so an event can be queued again, with the headers the receiver set, after a rule
//! or setting was fixed. A `failed` one is posted again; a done one (`processed`, `skipped`,
//! `ignored`, `duplicate`) reaches the inbox as a duplicate and changes nothing, and the report
//! says so.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::track::{self, Before};
use super::{Broker, OpsError, Progress, ReplayReport, ReplayResult, ReplayedEvent, Step};
use crate::channel::Channel;
use crate::db::admin::{self as q, StoredEvent};
use crate::queue::Outgoing;

/// Which stored events to replay; every field narrows.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Only this event (shopbridge's id).
    pub id: Option<Uuid>,
    /// Only this connection's.
    pub connection: Option<Uuid>,
    /// Only events with this status: processed, skipped, ignored, duplicate, failed.
    pub status: Option<String>,
    /// Only this topic (event type).
    pub topic: Option<String>,
    /// Only events received at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only events received at or before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// At most this many (newest first); default 100.
    #[param(minimum = 1, maximum = 10000)]
    #[schema(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
}

impl EventFilter {
    /// True when no criterion is given (which would mean every event).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.id.is_none()
            && self.connection.is_none()
            && self.status.is_none()
            && self.topic.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }
}

/// What replaying an event in this status will do.
fn expectation(status: &str) -> String {
    match status {
        "failed" => "will be posted again with the current rules and settings".into(),
        "processing" => "is being processed now".into(),
        done => format!("already {done}: replaying it changes nothing"),
    }
}

/// Bodies read from PostgreSQL at once during a replay: at most this many events...
const BATCH_EVENTS: usize = 100;
/// ...and at most this many bytes of bodies, unless one event alone is larger. A replay may
/// match 10 000 events of up to a megabyte each; reading them all at once held that much in
/// memory, while the broker takes them one at a time anyway.
const BATCH_BYTES: i64 = 8 * 1024 * 1024;

/// Splits `rows`, in order, into runs whose bodies are read together: each holds at least one
/// event, at most [`BATCH_EVENTS`], and bodies of at most [`BATCH_BYTES`] in all unless its
/// single event is larger.
fn batches(rows: &[StoredEvent]) -> Vec<&[StoredEvent]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0i64;
    for (i, row) in rows.iter().enumerate() {
        let full = i - start == BATCH_EVENTS || bytes.saturating_add(row.bytes) > BATCH_BYTES;
        if i > start && full {
            out.push(&rows[start..i]);
            start = i;
            bytes = 0;
        }
        bytes = bytes.saturating_add(row.bytes);
    }
    if start < rows.len() {
        out.push(&rows[start..]);
    }
    out
}

/// Replays the stored events matching `filter` (only when `execute`; otherwise reports what
/// would happen), then, with `wait`, follows what the worker made of each for that long. Bodies
/// are read a batch at a time ([`batches`]), and not at all for a dry run.
///
/// # Errors
/// When PostgreSQL or RabbitMQ fail; events republished before the failure stay republished.
pub async fn replay(
    db: &PgPool,
    broker: &Broker,
    filter: &EventFilter,
    execute: bool,
    wait: Option<Duration>,
    progress: Progress<'_>,
) -> Result<ReplayReport, OpsError> {
    let rows = q::find_events(&mut *db.acquire().await?, filter).await?;
    let mut report = ReplayReport::new("events", execute);
    report.matched = rows.len();
    let mut befores: Vec<Option<Before>> = Vec::with_capacity(rows.len());
    let session = if execute && !rows.is_empty() {
        Some(broker.open().await?)
    } else {
        None
    };
    progress(Step::Begin(rows.len() as u64, "republishing stored events"));
    let mut failure = None;
    for batch in batches(&rows) {
        let mut bodies = match &session {
            Some(_) if failure.is_none() => match read_bodies(db, batch).await {
                Ok(bodies) => bodies,
                Err(e) => {
                    failure = Some(e);
                    HashMap::new()
                }
            },
            _ => HashMap::new(),
        };
        for row in batch {
            let mut event = ReplayedEvent {
                event_id: Some(row.source_event_id.clone()),
                connection_id: Some(row.connection_id),
                topic: Some(row.topic.clone()),
                status_before: Some(row.status.clone()),
                reason_before: row.reason.clone(),
                result: ReplayResult::WouldReplay,
                detail: Some(expectation(&row.status)),
                vouchers: Vec::new(),
            };
            let mut before = None;
            if let Some(session) = &session
                && failure.is_none()
            {
                let body = bodies.remove(&row.id);
                match republish(db, broker, session, row, body).await {
                    Ok(b) => {
                        report.republished += 1;
                        event.result = ReplayResult::Republished;
                        before = Some(b);
                    }
                    Err(e) => failure = Some(e),
                }
            }
            report.events.push(event);
            befores.push(before);
            progress(Step::Advance);
        }
    }
    progress(Step::Done);
    if let Some(session) = session {
        session.close().await;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    report.count();
    if let Some(wait) = wait.filter(|_| execute) {
        track::follow(db, &mut report, &befores, wait, progress).await?;
    }
    Ok(report)
}

/// The bodies of `batch`, by event id.
async fn read_bodies(
    db: &PgPool,
    batch: &[StoredEvent],
) -> Result<HashMap<Uuid, Vec<u8>>, OpsError> {
    let ids: Vec<Uuid> = batch.iter().map(|r| r.id).collect();
    let rows = q::bodies_of(&mut *db.acquire().await?, &ids).await?;
    Ok(rows.into_iter().collect())
}

/// Queues one stored event again as the receiver queued it, and waits for the confirm.
async fn republish(
    db: &PgPool,
    broker: &Broker,
    session: &super::Session,
    row: &StoredEvent,
    body: Option<Vec<u8>>,
) -> Result<Before, OpsError> {
    let channel: Channel = row.channel.parse().map_err(|_| {
        OpsError::NotConfirmed(format!("stored channel `{}` is unknown", row.channel))
    })?;
    // Events are never deleted; a missing body means someone removed the row meanwhile.
    let body = body
        .ok_or_else(|| OpsError::NotConfirmed(format!("event {} is no longer stored", row.id)))?;
    let out = Outgoing {
        event_id: row.source_event_id.clone(),
        connection_id: row.connection_id,
        channel,
        topic: row.topic.clone(),
        received_at: row.received_at,
        occurred_at: row.occurred_at,
        request_id: row.request_id.clone(),
    };
    // Stored events were checked by the receiver; one written behind its back is refused
    // here rather than panicking the AMQP client.
    let too_long = |e: crate::queue::TooLong| OpsError::NotConfirmed(e.to_string());
    let (routing_key, properties) = (
        out.routing_key().map_err(too_long)?,
        out.properties().map_err(too_long)?,
    );
    let before = track::before(db, row.connection_id, &row.source_event_id).await?;
    super::publish_confirmed(
        &session.publisher,
        &broker.names.events_exchange,
        routing_key.as_str(),
        &body,
        properties,
    )
    .await?;
    Ok(before)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bytes: i64) -> StoredEvent {
        StoredEvent {
            id: Uuid::now_v7(),
            connection_id: Uuid::nil(),
            source_event_id: String::new(),
            channel: "nettbutikk".into(),
            topic: String::new(),
            bytes,
            received_at: Utc::now(),
            occurred_at: None,
            request_id: None,
            status: "failed".into(),
            reason: None,
        }
    }

    fn sizes(rows: &[StoredEvent]) -> Vec<usize> {
        batches(rows).iter().map(|b| b.len()).collect()
    }

    #[test]
    fn replay_batches_hold_at_most_a_hundred_events_and_eight_mebibytes_in_order() {
        let small: Vec<_> = (0..250).map(|_| row(1_000)).collect();
        assert_eq!(sizes(&small), [100, 100, 50]);
        let flat: Vec<Uuid> = batches(&small)
            .iter()
            .flat_map(|b| b.iter().map(|r| r.id))
            .collect();
        let ids: Vec<Uuid> = small.iter().map(|r| r.id).collect();
        assert_eq!(flat, ids, "every event once, in order");
        let mib = 1024 * 1024;
        let big: Vec<_> = (0..10).map(|_| row(3 * mib)).collect();
        assert_eq!(
            sizes(&big),
            [2, 2, 2, 2, 2],
            "two 3 MiB bodies fit 8 MiB, three do not"
        );
        let huge = [row(20 * mib), row(1), row(20 * mib)];
        assert_eq!(
            sizes(&huge),
            [1, 1, 1],
            "a body larger than a batch goes alone"
        );
        assert!(batches(&[]).is_empty());
    }
}
