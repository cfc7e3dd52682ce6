//! RabbitMQ: names, message layout, topology, the confirming publisher, queue depths.
//!
//! A queued event is the webhook's raw body, byte for byte, as the AMQP message body; what we
//! know about it travels in AMQP properties and headers. This departs from a serde `Envelope`
//! wrapping the body: the stored source document stays exactly what the shop signed, and the
//! hot path neither escapes nor copies the body into JSON. The envelope's version is a header.

pub mod depths;
pub mod publisher;
pub mod topology;

use std::time::Duration;

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

/// Header names shopbridge sets on every queued event.
pub mod headers {
    /// Layout version of the message (currently 1).
    pub const ENVELOPE: &str = "shopbridge-envelope";
    /// The connection (uuid) the webhook arrived on.
    pub const CONNECTION_ID: &str = "shopbridge-connection-id";
    /// The connection's channel kind.
    pub const CHANNEL: &str = "shopbridge-channel";
    /// The event's topic as the channel names it (`order.created`, `orders/create`).
    pub const TOPIC: &str = "shopbridge-topic";
    /// When the receiver accepted it (RFC 3339).
    pub const RECEIVED_AT: &str = "shopbridge-received-at";
    /// When the shop says the event happened (RFC 3339), when the signature scheme says.
    pub const OCCURRED_AT: &str = "shopbridge-occurred-at";
    /// The HTTP request id, so the worker's logs share it.
    pub const REQUEST_ID: &str = "shopbridge-request-id";
    /// How many times the worker has tried it (set on retries).
    pub const ATTEMPT: &str = "shopbridge-attempt";
    /// Why it was dead-lettered (set on dead letters).
    pub const REASON: &str = "shopbridge-reason";
    /// When the worker dead-lettered it (RFC 3339; set on dead letters).
    pub const DEAD_LETTERED_AT: &str = "shopbridge-dead-lettered-at";
    /// When an operator replayed it (RFC 3339; set on replayed copies, for the audit trail).
    pub const REPLAYED_AT: &str = "shopbridge-replayed-at";
}

/// The current message layout version.
pub const ENVELOPE_VERSION: i64 = 1;

/// Exchange and queue names, all under one prefix.
#[derive(Clone, Debug)]
pub struct Names {
    /// Exchange the receiver publishes to.
    pub events_exchange: String,
    /// The quorum queue workers consume.
    pub events_queue: String,
    /// Exchange dead letters go to.
    pub dead_exchange: String,
    /// The dead-letter queue operators inspect and replay.
    pub dead_queue: String,
    /// Exchange the worker sends a transient failure to, routed by delay tier.
    pub retry_exchange: String,
}

/// Delays a transient failure waits before its next try, by attempt (the last one repeats).
pub const RETRY_TIERS: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
];

impl Names {
    /// The names under `prefix` (empty in production).
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        Names {
            events_exchange: format!("{prefix}shopbridge.events"),
            events_queue: format!("{prefix}shopbridge.events"),
            dead_exchange: format!("{prefix}shopbridge.dead"),
            dead_queue: format!("{prefix}shopbridge.dead"),
            retry_exchange: format!("{prefix}shopbridge.retry"),
        }
    }

    /// The retry queue of a delay tier, e.g. `shopbridge.retry.5s`.
    #[must_use]
    pub fn retry_queue(&self, delay: Duration) -> String {
        format!("{}.{}", self.retry_exchange, tier_name(delay))
    }
}

/// The routing key of a delay tier (`1s`, `5s`, `30s`, `120s`, `600s`).
#[must_use]
pub fn tier_name(delay: Duration) -> String {
    format!("{}s", delay.as_secs())
}

/// An accepted webhook, ready to be queued.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The event id: the AMQP `message_id`, and the worker's idempotency key with the connection.
    pub event_id: String,
    /// Connection it arrived on.
    pub connection_id: uuid::Uuid,
    /// Its channel kind.
    pub channel: crate::channel::Channel,
    /// Its topic.
    pub topic: String,
    /// When it was accepted.
    pub received_at: chrono::DateTime<chrono::Utc>,
    /// When the shop says it happened (from the signed headers or payload), if it says.
    pub occurred_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The HTTP request id.
    pub request_id: Option<String>,
}

impl Outgoing {
    /// The routing key: `{channel}.{topic}`, so bindings can later pick by channel or topic.
    #[must_use]
    pub fn routing_key(&self) -> String {
        format!("{}.{}", self.channel, self.topic)
    }

    /// Persistent properties carrying the event's id and headers.
    #[must_use]
    pub fn properties(&self) -> BasicProperties {
        let mut h = FieldTable::default();
        h.insert(
            headers::ENVELOPE.into(),
            AMQPValue::LongLongInt(ENVELOPE_VERSION),
        );
        put(
            &mut h,
            headers::CONNECTION_ID,
            self.connection_id.to_string(),
        );
        put(&mut h, headers::CHANNEL, self.channel.as_str().to_owned());
        put(&mut h, headers::TOPIC, self.topic.clone());
        put(&mut h, headers::RECEIVED_AT, self.received_at.to_rfc3339());
        if let Some(at) = self.occurred_at {
            put(&mut h, headers::OCCURRED_AT, at.to_rfc3339());
        }
        if let Some(id) = &self.request_id {
            put(&mut h, headers::REQUEST_ID, id.clone());
        }
        BasicProperties::default()
            .with_message_id(ShortString::from(self.event_id.as_str()))
            .with_content_type("application/json".into())
            .with_delivery_mode(2) // persistent: survives a broker restart
            .with_timestamp(u64::try_from(self.received_at.timestamp()).unwrap_or(0))
            .with_headers(h)
    }
}

fn put(table: &mut FieldTable, key: &str, value: String) {
    table.insert(key.into(), AMQPValue::LongString(LongString::from(value)));
}

/// A string header of a received message, if present.
#[must_use]
pub fn header_str<'a>(props: &'a BasicProperties, key: &str) -> Option<&'a str> {
    let value = props.headers().as_ref()?.inner().get(key)?;
    match value {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
        AMQPValue::ShortString(s) => Some(s.as_str()),
        _ => None,
    }
}

/// An integer header of a received message, if present.
#[must_use]
pub fn header_int(props: &BasicProperties, key: &str) -> Option<i64> {
    match props.headers().as_ref()?.inner().get(key)? {
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        _ => None,
    }
}
