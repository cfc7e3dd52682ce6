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
    /// How many of its retries were for a database outage, which spend no attempt but still
    /// back off (set on those retries).
    pub const OUTAGE_RETRIES: &str = "shopbridge-outage-retries";
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

/// Longest event id: it becomes the AMQP `message_id`, a short string of at most 255 bytes.
pub const MAX_EVENT_ID_BYTES: usize = 255;

/// Longest topic: the routing key `{channel}.{topic}` is a short string too (255 bytes), and
/// 200 leaves room for every channel's name in front of it.
pub const MAX_TOPIC_BYTES: usize = 200;

/// Which of an event's names does not fit its AMQP field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameField {
    /// The event id (the message id).
    EventId,
    /// The topic (part of the routing key).
    Topic,
}

/// An event id or topic too long to travel in AMQP. Checked before anything is published:
/// lapin panics on a short string over 255 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the {} is {len} bytes, more than {limit}", match .field {
    NameField::EventId => "event id",
    NameField::Topic => "topic",
})]
pub struct TooLong {
    /// The field that is too long.
    pub field: NameField,
    /// Its length in bytes.
    pub len: usize,
    /// The most it may have.
    pub limit: usize,
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
    /// Checks that the event id and topic fit their AMQP fields ([`MAX_EVENT_ID_BYTES`],
    /// [`MAX_TOPIC_BYTES`]).
    ///
    /// # Errors
    /// [`TooLong`] naming the first field that does not fit.
    pub fn check(&self) -> Result<(), TooLong> {
        let fits = |field, len, limit| {
            if len > limit {
                Err(TooLong { field, len, limit })
            } else {
                Ok(())
            }
        };
        // The topic first: WooCommerce's event id is made from it, so a long topic is the cause.
        fits(NameField::Topic, self.topic.len(), MAX_TOPIC_BYTES)?;
        fits(NameField::EventId, self.event_id.len(), MAX_EVENT_ID_BYTES)
    }

    /// The routing key: `{channel}.{topic}`, so bindings can later pick by channel or topic.
    ///
    /// # Errors
    /// [`TooLong`] when the topic is longer than [`MAX_TOPIC_BYTES`].
    pub fn routing_key(&self) -> Result<ShortString, TooLong> {
        self.check()?;
        let key = format!("{}.{}", self.channel, self.topic);
        let len = key.len();
        ShortString::try_new(key).map_err(|_| TooLong {
            field: NameField::Topic,
            len,
            limit: MAX_TOPIC_BYTES,
        })
    }

    /// Persistent properties carrying the event's id and headers.
    ///
    /// # Errors
    /// [`TooLong`] when the event id or topic does not fit (see [`Outgoing::check`]).
    pub fn properties(&self) -> Result<BasicProperties, TooLong> {
        self.check()?;
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
        let message_id = ShortString::try_new(self.event_id.clone()).map_err(|_| TooLong {
            field: NameField::EventId,
            len: self.event_id.len(),
            limit: MAX_EVENT_ID_BYTES,
        })?;
        Ok(BasicProperties::default()
            .with_message_id(message_id)
            .with_content_type("application/json".into())
            .with_delivery_mode(2) // persistent: survives a broker restart
            .with_timestamp(u64::try_from(self.received_at.timestamp()).unwrap_or(0))
            .with_headers(h))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Channel;

    fn outgoing(channel: Channel, event_id: &str, topic: &str) -> Outgoing {
        Outgoing {
            event_id: event_id.to_owned(),
            connection_id: uuid::Uuid::nil(),
            channel,
            topic: topic.to_owned(),
            received_at: chrono::Utc::now(),
            occurred_at: None,
            request_id: None,
        }
    }

    #[test]
    fn the_longest_id_and_topic_fit_amqp_on_every_channel_and_longer_ones_are_refused() {
        for channel in Channel::ALL {
            let out = outgoing(
                channel,
                &"i".repeat(MAX_EVENT_ID_BYTES),
                &"t".repeat(MAX_TOPIC_BYTES),
            );
            assert!(out.routing_key().is_ok(), "{channel}");
            assert!(out.properties().is_ok(), "{channel}");

            let long_id = outgoing(channel, &"i".repeat(MAX_EVENT_ID_BYTES + 1), "t");
            let err = long_id.properties().unwrap_err();
            assert_eq!((err.field, err.len), (NameField::EventId, 256));
            let long_topic = outgoing(channel, "i", &"t".repeat(300));
            let err = long_topic.routing_key().unwrap_err();
            assert_eq!(
                (err.field, err.len, err.limit),
                (NameField::Topic, 300, 200)
            );
        }
    }
}
