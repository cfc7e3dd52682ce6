//! The dead-letter queue: list, replay and purge, all with one filter.
//!
//! Messages are taken with `basic.get` and held unacknowledged (their bodies are not kept), so
//! the broker never hands the same message out twice within one action and a walk ends; at most
//! the number of messages the queue held at the start is taken, so a replayed event that fails again (and comes back to
//! the DLQ's tail) is not taken twice either. Messages that are only looked at, or do not match,
//! go back with `basic.nack(requeue)`: the queue keeps them, and RabbitMQ ≥ 4.3 does not count
//! a nack against a quorum queue's delivery limit (see docs/operations.md for older brokers).
//! A replayed message is republished to the events exchange and acked only after the broker
//! confirmed the copy; a purged one is acked.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Acker, BasicProperties};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::track::{self, Before};
use super::{
    Broker, OpsError, Progress, ReplayReport, ReplayResult, ReplayedEvent, Session, Step,
    publish_confirmed, within,
};
use crate::queue::{Names, header_str, headers};

/// Which dead letters an action takes; every field narrows, none means all.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadFilter {
    /// Only this event: the shop's event id (the message id).
    pub event: Option<String>,
    /// Only this connection's.
    pub connection: Option<Uuid>,
    /// Only this topic (event type), as the channel names it: `order.created`, `orders/paid`.
    pub topic: Option<String>,
    /// Only those whose reason contains this text (case-insensitive).
    pub reason: Option<String>,
    /// Only those dead-lettered at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only those dead-lettered at or before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// At most this many.
    #[param(minimum = 1)]
    #[schema(minimum = 1)]
    pub limit: Option<u32>,
}

impl DeadFilter {
    /// True when `letter` passes every given criterion.
    #[must_use]
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        self.event
            .as_ref()
            .is_none_or(|e| letter.message_id.as_ref() == Some(e))
            && self
                .connection
                .is_none_or(|c| letter.connection_id == Some(c))
            && self
                .topic
                .as_ref()
                .is_none_or(|t| letter.topic.as_ref() == Some(t))
            && self.reason.as_ref().is_none_or(|r| {
                letter
                    .reason
                    .as_deref()
                    .is_some_and(|have| have.to_lowercase().contains(&r.to_lowercase()))
            })
            && within(
                letter.dead_lettered_at.or(letter.received_at),
                self.since,
                self.until,
            )
    }
}

/// A dead letter as operators see it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DeadLetter {
    /// The shop's event id (AMQP message id).
    pub message_id: Option<String>,
    /// The connection it arrived on.
    pub connection_id: Option<Uuid>,
    /// The connection's channel kind.
    pub channel: Option<String>,
    /// Its topic.
    pub topic: Option<String>,
    /// Why it was dead-lettered.
    pub reason: Option<String>,
    /// When it was dead-lettered, when known.
    pub dead_lettered_at: Option<DateTime<Utc>>,
    /// When the receiver accepted it.
    pub received_at: Option<DateTime<Utc>>,
    /// Its routing key (`{channel}.{topic}`), kept on replay.
    pub routing_key: String,
    /// Body size in bytes.
    pub bytes: usize,
}

/// Reads what a dead letter's properties say about it.
#[must_use]
pub fn describe(d: &Delivery) -> DeadLetter {
    let p = &d.properties;
    let time = |key: &str| {
        header_str(p, key)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let reason = header_str(p, headers::REASON)
        .map(str::to_owned)
        .or_else(|| {
            header_str(p, "x-first-death-reason")
                .map(|r| format!("dead-lettered by the broker ({r}): the worker never finished it"))
        });
    DeadLetter {
        message_id: p.message_id().as_ref().map(|m| m.as_str().to_owned()),
        connection_id: header_str(p, headers::CONNECTION_ID).and_then(|c| c.parse().ok()),
        channel: header_str(p, headers::CHANNEL).map(str::to_owned),
        topic: header_str(p, headers::TOPIC).map(str::to_owned),
        reason,
        dead_lettered_at: time(headers::DEAD_LETTERED_AT).or_else(|| x_death_time(p)),
        received_at: time(headers::RECEIVED_AT),
        routing_key: d.routing_key.as_str().to_owned(),
        bytes: d.data.len(),
    }
}

/// The time of the broker's last dead-lettering (`x-death[0].time`), for messages the broker
/// moved itself (delivery limit).
fn x_death_time(p: &BasicProperties) -> Option<DateTime<Utc>> {
    let AMQPValue::FieldArray(deaths) = p.headers().as_ref()?.inner().get("x-death")? else {
        return None;
    };
    let AMQPValue::FieldTable(first) = deaths.as_slice().first()? else {
        return None;
    };
    match first.inner().get("time")? {
        AMQPValue::Timestamp(secs) => DateTime::from_timestamp(i64::try_from(*secs).ok()?, 0),
        _ => None,
    }
}

/// Headers a replayed copy must not carry: the dead letter's reason and time, the retry count
/// (a replay starts afresh), and the broker's dead-lettering history.
const STRIPPED: [&str; 4] = [
    headers::REASON,
    headers::ATTEMPT,
    headers::DEAD_LETTERED_AT,
    "x-death",
];

/// The properties of a dead letter's replayed copy: the same message id, content type,
/// persistence and headers, less [`STRIPPED`] and the broker's `x-*-death-*` headers, plus
/// `shopbridge-replayed-at`.
#[must_use]
pub fn replay_properties(props: &BasicProperties) -> BasicProperties {
    let mut table = FieldTable::default();
    if let Some(old) = props.headers() {
        for (k, v) in old.inner() {
            let key = k.as_str();
            let broker_history = key.starts_with("x-first-death-")
                || key.starts_with("x-last-death-")
                || key == "x-delivery-count";
            if !STRIPPED.contains(&key) && !broker_history {
                table.insert(k.clone(), v.clone());
            }
        }
    }
    table.insert(
        headers::REPLAYED_AT.into(),
        AMQPValue::LongString(LongString::from(Utc::now().to_rfc3339())),
    );
    props.clone().with_delivery_mode(2).with_headers(table)
}

/// Republishes one dead letter to the events exchange, with its routing key, and waits for the
/// broker's confirm. The caller acks the dead letter only after this succeeded.
///
/// # Errors
/// [`OpsError`] when the copy was not confirmed: then the dead letter must stay.
pub async fn republish(
    publisher: &lapin::Channel,
    names: &Names,
    d: &Delivery,
) -> Result<(), OpsError> {
    publish_confirmed(
        publisher,
        &names.events_exchange,
        d.routing_key.as_str(),
        &d.data,
        replay_properties(&d.properties),
    )
    .await
}

/// What `list` found.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DeadLetterList {
    /// Messages in the DLQ when the listing started.
    pub in_queue: u32,
    /// The matching ones (up to the filter's limit).
    pub messages: Vec<DeadLetter>,
}

/// What `purge` removed (or, unless executed, would remove).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PurgeReport {
    /// False for a dry run: nothing was removed.
    pub executed: bool,
    /// Messages in the DLQ when the purge started.
    pub in_queue: u32,
    /// How many were (or would be) removed.
    pub purged: usize,
    /// The removed (or removable) messages.
    pub messages: Vec<DeadLetter>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Look,
    Replay,
    Purge,
}

struct Taken {
    letter: DeadLetter,
    before: Option<Before>,
}

/// Lists the dead letters matching `filter` without removing any.
///
/// # Errors
/// When RabbitMQ cannot be reached or the DLQ does not exist.
pub async fn list(broker: &Broker, filter: &DeadFilter) -> Result<DeadLetterList, OpsError> {
    let session = broker.open().await?;
    let walked = walk(
        &session,
        broker,
        None,
        filter,
        Mode::Look,
        &super::no_progress,
    )
    .await;
    session.close().await;
    let (in_queue, taken) = walked?;
    Ok(DeadLetterList {
        in_queue,
        messages: taken.into_iter().map(|t| t.letter).collect(),
    })
}

/// Replays the dead letters matching `filter` to the events exchange (only when `execute`;
/// otherwise reports what it would replay), then, with `wait`, follows what the worker made of
/// each for at most that long.
///
/// # Errors
/// When RabbitMQ or PostgreSQL fail. Messages replayed before the failure stay replayed; the
/// rest stay in the DLQ.
pub async fn replay(
    broker: &Broker,
    db: &PgPool,
    filter: &DeadFilter,
    execute: bool,
    wait: Option<Duration>,
    progress: Progress<'_>,
) -> Result<ReplayReport, OpsError> {
    let session = broker.open().await?;
    let mode = if execute { Mode::Replay } else { Mode::Look };
    let walked = walk(&session, broker, Some(db), filter, mode, progress).await;
    session.close().await;
    let (in_queue, taken) = walked?;
    let mut report = ReplayReport::new("dlq", execute);
    report.matched = taken.len();
    report.republished = if execute { taken.len() } else { 0 };
    report.left_in_queue = in_queue as usize - report.republished;
    let mut befores = Vec::with_capacity(taken.len());
    for t in taken {
        let result = match (execute, &t.before) {
            (false, _) => ReplayResult::WouldReplay,
            (true, Some(_)) => ReplayResult::Republished,
            (true, None) => ReplayResult::Untracked,
        };
        report.events.push(ReplayedEvent {
            event_id: t.letter.message_id,
            connection_id: t.letter.connection_id,
            topic: t.letter.topic,
            status_before: None,
            reason_before: t.letter.reason,
            result,
            detail: None,
            vouchers: Vec::new(),
        });
        befores.push(t.before);
    }
    for (e, b) in report.events.iter_mut().zip(&befores) {
        e.status_before = b.as_ref().and_then(Before::status);
    }
    report.count();
    if let Some(wait) = wait.filter(|_| execute) {
        track::follow(db, &mut report, &befores, wait, progress).await?;
    }
    Ok(report)
}

/// Removes the dead letters matching `filter` (only when `execute`; otherwise reports what it
/// would remove).
///
/// # Errors
/// When RabbitMQ cannot be reached or the DLQ does not exist.
pub async fn purge(
    broker: &Broker,
    filter: &DeadFilter,
    execute: bool,
    progress: Progress<'_>,
) -> Result<PurgeReport, OpsError> {
    let session = broker.open().await?;
    let mode = if execute { Mode::Purge } else { Mode::Look };
    let walked = walk(&session, broker, None, filter, mode, progress).await;
    session.close().await;
    let (in_queue, taken) = walked?;
    Ok(PurgeReport {
        executed: execute,
        in_queue,
        purged: taken.len(),
        messages: taken.into_iter().map(|t| t.letter).collect(),
    })
}

/// Takes up to the DLQ's starting depth of messages, acting on the matching ones by `mode`;
/// every message not removed is returned to the queue before this returns, even on an error.
async fn walk(
    session: &Session,
    broker: &Broker,
    db: Option<&PgPool>,
    filter: &DeadFilter,
    mode: Mode,
    progress: Progress<'_>,
) -> Result<(u32, Vec<Taken>), OpsError> {
    let queue = broker.names.dead_queue.as_str();
    let in_queue = session.depth(queue).await?;
    let limit = filter.limit.map_or(usize::MAX, |l| l as usize);
    // Only the acker of a message that goes back is held, not its body: a walk over a large
    // queue would otherwise keep every body it passed in memory until the end.
    let mut held: Vec<Acker> = Vec::new();
    let mut taken = Vec::new();
    progress(Step::Begin(
        u64::from(in_queue),
        "reading the dead-letter queue",
    ));
    let result: Result<(), OpsError> = async {
        for _ in 0..in_queue {
            if taken.len() >= limit {
                break;
            }
            let got = session
                .reader
                .basic_get(queue.into(), BasicGetOptions { no_ack: false })
                .await?;
            let Some(got) = got else { break };
            let d = got.delivery;
            progress(Step::Advance);
            let letter = describe(&d);
            if !filter.matches(&letter) {
                held.push(d.acker);
                continue;
            }
            match mode {
                Mode::Look => {
                    held.push(d.acker);
                    taken.push(Taken {
                        letter,
                        before: None,
                    });
                }
                Mode::Replay => {
                    let before = match (db, letter.connection_id, &letter.message_id) {
                        (Some(db), Some(c), Some(id)) => match track::before(db, c, id).await {
                            Ok(b) => Some(b),
                            Err(e) => {
                                held.push(d.acker);
                                return Err(e.into());
                            }
                        },
                        _ => None,
                    };
                    if let Err(e) = republish(&session.publisher, &broker.names, &d).await {
                        held.push(d.acker);
                        return Err(e);
                    }
                    // Confirmed: the copy is safe, so the dead letter may go. Should this ack
                    // be lost, the dead letter returns and a later replay is a duplicate.
                    d.ack(BasicAckOptions::default()).await?;
                    taken.push(Taken { letter, before });
                }
                Mode::Purge => {
                    d.ack(BasicAckOptions::default()).await?;
                    taken.push(Taken {
                        letter,
                        before: None,
                    });
                }
            }
        }
        Ok(())
    }
    .await;
    let requeue = BasicNackOptions {
        requeue: true,
        multiple: false,
    };
    for acker in held {
        // If this fails the channel is gone, and the broker requeues the message by itself.
        acker.nack(requeue).await.ok();
    }
    progress(Step::Done);
    result.map(|()| (in_queue, taken))
}
