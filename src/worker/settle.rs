//! Settling a delivery after its transaction: ack, retry later, or dead-letter with a reason.
//! A copy is always confirmed by the broker before the original is acked, so a crash in between
//! duplicates at worst (and the inbox makes a duplicate harmless), never loses.

use lapin::options::{BasicAckOptions, BasicNackOptions, BasicPublishOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation};
use rand::Rng as _;

use super::Deps;
use super::batch::Outcome;
use super::incoming::Incoming;
use crate::db::events::{self, NewEvent};
use crate::queue::{RETRY_TIERS, headers, tier_name};

/// Acts on one delivery's outcome.
///
/// A delivery that is only acked needs nothing else, and many are settled at once. One that is
/// copied to a retry queue or the dead-letter queue first waits for `deps.settle_lock`, so that
/// copies are published (and failures recorded) one at a time, as when deliveries were settled
/// in turn: lapin hands a returned message (an unroutable copy) to whichever confirm completes
/// next, so with several copies in flight a return could be matched to the wrong one and an
/// original acked after a copy that went nowhere; and each failure record takes a connection
/// from the pool, which a batch of failures at once could drain.
pub async fn settle(deps: &Deps, publisher: &Channel, item: &Incoming, outcome: Outcome) {
    let event_id = item
        .meta
        .as_ref()
        .map(|m| m.event_id.as_str())
        .unwrap_or("?");
    let settled = match &outcome {
        Outcome::Processed
        | Outcome::Skipped(_)
        | Outcome::Ignored(_)
        | Outcome::Duplicate
        | Outcome::DuplicateContent(_) => Ok(()),
        Outcome::Failed(reason) => {
            let _one_at_a_time = deps.settle_lock.lock().await;
            tracing::warn!(%event_id, %reason, "Event dead-lettered.");
            dead_letter(deps, publisher, item, reason).await
        }
        Outcome::Retry(reason) if item.attempt + 1 >= deps.settings.max_attempts => {
            let _one_at_a_time = deps.settle_lock.lock().await;
            let reason = format!("gave up after {} attempts: {reason}", item.attempt + 1);
            tracing::error!(%event_id, %reason, "Event dead-lettered.");
            // Dead-lettered even if the failure cannot be recorded (logged there): the dead
            // letter holds the event and its reason, and retrying past the limit would not end.
            let _ = record_failure(deps, item, &reason).await;
            dead_letter(deps, publisher, item, &reason).await
        }
        Outcome::Retry(reason) => {
            let _one_at_a_time = deps.settle_lock.lock().await;
            tracing::info!(%event_id, %reason, attempt = item.attempt + 1, "Event will be retried.");
            retry(deps, publisher, item, Spend::Attempt).await
        }
        Outcome::Unavailable(reason) => {
            let _one_at_a_time = deps.settle_lock.lock().await;
            tracing::info!(%event_id, %reason, outage_retries = item.outage_retries + 1, "Database unavailable; the event will be retried.");
            retry(deps, publisher, item, Spend::Nothing).await
        }
    };
    let done = match settled {
        Ok(()) => item.delivery.ack(BasicAckOptions::default()).await,
        Err(e) => {
            tracing::warn!(%event_id, error = %e, "Could not settle; returning the event to the queue.");
            item.delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await
        }
    };
    if let Err(e) = done {
        // The channel is gone; the broker redelivers what was not acked.
        tracing::warn!(%event_id, error = %e, "Ack failed; the event will be redelivered.");
    }
}

/// What a retry counts against the event.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spend {
    /// One of its `max_attempts`.
    Attempt,
    /// Nothing: the database was unavailable. It still backs off like any retry, up to the
    /// longest tier, so an hour's outage costs each waiting event a few deliveries, not
    /// thousands.
    Nothing,
}

async fn retry(
    deps: &Deps,
    publisher: &Channel,
    item: &Incoming,
    spend: Spend,
) -> anyhow::Result<()> {
    let (attempt, outage_retries) = match spend {
        Spend::Attempt => (item.attempt + 1, item.outage_retries),
        Spend::Nothing => (item.attempt, item.outage_retries + 1),
    };
    let tier = retry_tier(attempt + outage_retries);
    // Jitter: wait between 75 % and 100 % of the tier, so events that failed together do not
    // all come back together. The queue's own TTL caps it.
    let ms = u64::try_from(tier.as_millis()).unwrap_or(u64::MAX);
    let jittered = rand::thread_rng().gen_range(ms * 3 / 4..=ms);
    let props = with_header(
        &item.delivery.properties,
        headers::ATTEMPT,
        AMQPValue::LongLongInt(i64::from(attempt)),
    );
    let props = with_header(
        &props,
        headers::OUTAGE_RETRIES,
        AMQPValue::LongLongInt(i64::from(outage_retries)),
    )
    .with_expiration(jittered.to_string().into());
    publish(
        publisher,
        &deps.names.retry_exchange,
        &tier_name(tier),
        item,
        props,
    )
    .await
}

/// The delay before the `nth` retry (from 1) of an event: one tier longer each time, then the
/// longest.
fn retry_tier(nth: u32) -> std::time::Duration {
    let index = usize::try_from(nth.saturating_sub(1)).unwrap_or(usize::MAX);
    RETRY_TIERS[index.min(RETRY_TIERS.len() - 1)]
}

async fn dead_letter(
    deps: &Deps,
    publisher: &Channel,
    item: &Incoming,
    reason: &str,
) -> anyhow::Result<()> {
    let props = with_header(
        &item.delivery.properties,
        headers::REASON,
        AMQPValue::LongString(LongString::from(reason.to_owned())),
    );
    // Operators filter the DLQ by when things went wrong, not by when they arrived.
    let props = with_header(
        &props,
        headers::DEAD_LETTERED_AT,
        AMQPValue::LongString(LongString::from(chrono::Utc::now().to_rfc3339())),
    );
    let key = item.delivery.routing_key.as_str().to_owned();
    publish(publisher, &deps.names.dead_exchange, &key, item, props).await
}

/// Marks the delivery's event failed with `reason`, in its own transaction. A failure that
/// cannot be recorded is logged at ERROR with the event's id: the caller decides whether the
/// dead letter (which carries the reason too) or a retry keeps the event.
///
/// # Errors
/// The database error that kept the failure from being recorded.
pub async fn record_failure(deps: &Deps, item: &Incoming, reason: &str) -> sqlx::Result<()> {
    let Ok(meta) = &item.meta else {
        return Ok(()); // no event id or connection: nothing to record it under
    };
    let event = NewEvent {
        connection_id: meta.connection_id,
        source_event_id: &meta.event_id,
        channel: meta.channel.as_str(),
        topic: &meta.topic,
        body: item.body(),
        received_at: meta.received_at,
        occurred_at: meta.occurred_at,
        request_id: meta.request_id.as_deref(),
    };
    let result = async {
        let mut conn = deps.db.acquire().await?;
        events::record_failure(&mut conn, &event, reason).await
    }
    .await;
    if let Err(e) = &result {
        tracing::error!(event_id = %meta.event_id, %reason, error = %e, "Could not record the failure of an event.");
    }
    result
}

async fn publish(
    channel: &Channel,
    exchange: &str,
    key: &str,
    item: &Incoming,
    props: BasicProperties,
) -> anyhow::Result<()> {
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let confirm = channel
        .basic_publish(exchange.into(), key.into(), options, item.body(), props)
        .await?
        .await?;
    match confirm {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => anyhow::bail!("{exchange} has no queue bound for `{key}`"),
        Confirmation::Nack(_) | Confirmation::NotRequested => {
            anyhow::bail!("the broker refused the message")
        }
    }
}

fn with_header(props: &BasicProperties, key: &str, value: AMQPValue) -> BasicProperties {
    let mut table: FieldTable = props.headers().clone().unwrap_or_default();
    table.insert(key.into(), value);
    props.clone().with_headers(table)
}
