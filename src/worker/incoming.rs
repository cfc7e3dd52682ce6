//! A delivery from the events queue, read into typed fields once.

use chrono::{DateTime, Utc};
use lapin::message::Delivery;
use uuid::Uuid;

use crate::channel::Channel;
use crate::queue::{header_int, header_str, headers};

/// What the receiver put on a queued event.
#[derive(Clone, Debug)]
pub struct Meta {
    /// The shop's event id (AMQP message id).
    pub event_id: String,
    /// The connection it arrived on.
    pub connection_id: Uuid,
    /// The connection's channel kind.
    pub channel: Channel,
    /// The topic, as the channel names it.
    pub topic: String,
    /// When the receiver accepted it.
    pub received_at: DateTime<Utc>,
    /// When the shop says it happened.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The HTTP request id.
    pub request_id: Option<String>,
}

/// One delivery: the message, its parsed metadata (or why it has none), and its attempt count.
pub struct Incoming {
    /// The AMQP delivery (acked or nacked once settled).
    pub delivery: Delivery,
    /// Parsed headers; `Err` for a message no receiver of ours produced.
    pub meta: Result<Meta, String>,
    /// How many times the worker has tried it before (0 on first delivery), outages not
    /// counted: `SHOPBRIDGE_MAX_ATTEMPTS` counts these.
    pub attempt: u32,
    /// How many times it was retried because the database was unavailable.
    pub outage_retries: u32,
}

impl Incoming {
    /// Reads the headers of a delivery.
    #[must_use]
    pub fn new(delivery: Delivery) -> Incoming {
        let meta = read_meta(&delivery);
        let count = |key: &str| {
            header_int(&delivery.properties, key)
                .and_then(|a| u32::try_from(a).ok())
                .unwrap_or(0)
        };
        let (attempt, outage_retries) = (count(headers::ATTEMPT), count(headers::OUTAGE_RETRIES));
        Incoming {
            delivery,
            meta,
            attempt,
            outage_retries,
        }
    }

    /// The raw body.
    #[must_use]
    pub fn body(&self) -> &[u8] {
        &self.delivery.data
    }
}

fn read_meta(d: &Delivery) -> Result<Meta, String> {
    let p = &d.properties;
    let text = |key: &str| header_str(p, key).ok_or_else(|| format!("message has no {key} header"));
    let event_id = p
        .message_id()
        .as_ref()
        .map(|m| m.as_str().to_owned())
        .filter(|m| !m.is_empty())
        .ok_or("message has no message_id (event id)")?;
    let connection_id = text(headers::CONNECTION_ID)?
        .parse()
        .map_err(|_| "the connection id header is not a uuid".to_owned())?;
    let channel = text(headers::CHANNEL)?
        .parse()
        .map_err(|e| format!("{e}"))?;
    let time = |key: &str| {
        header_str(p, key)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    Ok(Meta {
        event_id,
        connection_id,
        channel,
        topic: text(headers::TOPIC)?.to_owned(),
        received_at: time(headers::RECEIVED_AT).unwrap_or_else(Utc::now),
        occurred_at: time(headers::OCCURRED_AT),
        request_id: header_str(p, headers::REQUEST_ID).map(str::to_owned),
    })
}
