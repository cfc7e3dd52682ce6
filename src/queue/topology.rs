//! Declares every exchange and queue shopbridge uses. Idempotent: both roles run it at start,
//! and declaring what exists with the same arguments changes nothing.
//!
//! ```text
//! receiver ─▶ [shopbridge.events] topic ─#─▶ (shopbridge.events) quorum ─▶ workers
//!                    ▲                          │ dead-letters (delivery limit)
//!                    │ TTL expiry               ▼
//! worker ─▶ [shopbridge.retry] ─tier─▶ (shopbridge.retry.5s …)   [shopbridge.dead] ─▶ (shopbridge.dead)
//! worker (permanent failure, with reason) ──────────────────────────────▲
//! ```

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use super::{Names, RETRY_TIERS, tier_name};

/// How often the broker redelivers one message (a worker died while holding it) before it
/// dead-letters it: a message that crashes every worker that takes it must not loop forever,
/// and twenty crashes are far beyond what a restart or a deploy causes.
const DELIVERY_LIMIT: i64 = 20;

/// Declares the exchanges, queues and bindings under `names`.
///
/// `expires` sets `x-expires` on every queue (tests and demos only).
///
/// # Errors
/// When the broker refuses a declaration, e.g. a queue exists with other arguments.
pub async fn declare(
    channel: &Channel,
    names: &Names,
    expires: Option<Duration>,
) -> lapin::Result<()> {
    // Durable exchanges: they outlive broker restarts, as the messages bound to them must.
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    // Topic: routing keys are `{channel}.{topic}`, so a future consumer can bind to one channel.
    channel
        .exchange_declare(
            names.events_exchange.as_str().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    // Fanout: dead letters keep their original routing key; the DLQ takes them whatever it is.
    channel
        .exchange_declare(
            names.dead_exchange.as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
    // Direct: the worker routes a retry to the queue of its delay tier by the tier's name.
    channel
        .exchange_declare(
            names.retry_exchange.as_str().into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await?;

    let mut events = quorum(expires);
    // Messages the broker gives up on (delivery limit) go to the DLQ, not into the void.
    put_str(&mut events, "x-dead-letter-exchange", &names.dead_exchange);
    // At-least-once dead-lettering: the broker keeps a message until the DLQ confirmed it.
    // The default (at-most-once) could lose one if a node fails mid-way.
    put_str(&mut events, "x-dead-letter-strategy", "at-least-once");
    // Required by at-least-once; also, a full queue then refuses new messages (the publisher
    // sees a nack and answers 503) instead of dropping the oldest.
    put_str(&mut events, "x-overflow", "reject-publish");
    events.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(DELIVERY_LIMIT),
    );
    declare_queue(channel, &names.events_queue, events).await?;
    bind(channel, &names.events_queue, &names.events_exchange, "#").await?;

    // The DLQ keeps its messages until an operator replays or purges them: no TTL, no DLX.
    declare_queue(channel, &names.dead_queue, quorum(expires)).await?;
    bind(channel, &names.dead_queue, &names.dead_exchange, "").await?;

    for delay in RETRY_TIERS {
        let queue = names.retry_queue(delay);
        let mut args = quorum(expires);
        // A retry waits out its tier's delay, then the broker dead-letters it back to the
        // events exchange, keeping its routing key and headers (the attempt count).
        let ttl = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
        put_str(&mut args, "x-dead-letter-exchange", &names.events_exchange);
        put_str(&mut args, "x-dead-letter-strategy", "at-least-once");
        put_str(&mut args, "x-overflow", "reject-publish");
        declare_queue(channel, &queue, args).await?;
        bind(channel, &queue, &names.retry_exchange, &tier_name(delay)).await?;
    }
    Ok(())
}

/// Quorum queues: replicated (Raft) and durable, so an event the broker confirmed survives the
/// loss of a node, which classic mirrored queues did not promise.
fn quorum(expires: Option<Duration>) -> FieldTable {
    let mut args = FieldTable::default();
    put_str(&mut args, "x-queue-type", "quorum");
    if let Some(expires) = expires {
        let ms = i64::try_from(expires.as_millis()).unwrap_or(i64::MAX);
        args.insert("x-expires".into(), AMQPValue::LongLongInt(ms));
    }
    args
}

async fn declare_queue(channel: &Channel, name: &str, args: FieldTable) -> lapin::Result<()> {
    channel
        .queue_declare(name.into(), QueueDeclareOptions::durable(), args)
        .await
        .map(|_| ())
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, key: &str) -> lapin::Result<()> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

fn put_str(table: &mut FieldTable, key: &str, value: &str) {
    table.insert(key.into(), AMQPValue::LongString(LongString::from(value)));
}
