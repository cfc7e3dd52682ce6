//! Channel adapters: a verified webhook body in, canonical [`Event`]s out.
//!
//! Each channel has one file that knows its payloads; this module only picks the file. Adapters
//! are pure functions of the body (no IO, no clock), so a stored event can be replayed and gives
//! the same events again. Every error is permanent: the body will not change by retrying it, so
//! the worker dead-letters the event with the error's text as the reason. That text names the
//! field by its path in the body (`data.order.lines[2].quantity: must be at least 1`).
//!
//! Amounts are read digit by digit from the JSON text (never through `f64`), and ids are kept as
//! the exact text the shop sent (Shopify's exceed 2^53).

mod amounts;
mod json;
mod nettbutikk;
mod shopify;
mod stripe;
mod woocommerce;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::channel::Channel;
use crate::posting::event::Event;
use crate::posting::money::ParseAmountError;

/// Why a webhook body could not be turned into canonical events. Every variant is permanent.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The body is not JSON at all (or not UTF-8).
    #[error("body is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// A field that must be present is absent or `null`.
    #[error("{path}: missing")]
    Missing {
        /// Where the field should be, e.g. `data.order.total`.
        path: String,
    },
    /// A field has the wrong JSON type.
    #[error("{path}: must be {expected}")]
    WrongType {
        /// The field, e.g. `data.order.lines[0].quantity`.
        path: String,
        /// What it must be, e.g. "a whole number".
        expected: &'static str,
    },
    /// An amount or rate is not an exact decimal, has too many decimals or does not fit.
    #[error("{path}: {source}")]
    Amount {
        /// The field holding the amount.
        path: String,
        /// What is wrong with its digits.
        #[source]
        source: ParseAmountError,
    },
    /// A field has the right type but a value that cannot be posted (a zero quantity, a
    /// negative price, totals that do not add up).
    #[error("{path}: {reason}")]
    Invalid {
        /// The field, or the object whose fields disagree.
        path: String,
        /// What is wrong, for an operator reading the dead-letter reason.
        reason: String,
    },
    /// A value the channel may send that shopbridge does not handle.
    #[error("{path}: `{value}` is not supported ({expected})")]
    Unsupported {
        /// The field holding the value.
        path: String,
        /// The value as sent.
        value: String,
        /// What is supported instead.
        expected: &'static str,
    },
}

/// What a verified webhook body stands for: its canonical events, and what its content is
/// deduplicated on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    /// The canonical events, in the order they post.
    pub events: Vec<Event>,
    /// What the body says happened, to which resource and as of when
    /// (`paid:450789469:2026-03-02T10:15:31Z`), for channels whose delivery id is not signed
    /// (Shopify's webhook id; WooCommerce's topic, which its derived id contains). The worker
    /// records each key once per connection, so the same content delivered again under a fresh
    /// delivery id is a duplicate. `None` where the signed event id is the key already
    /// (nettbutikk, Stripe) and for topics that post nothing.
    pub content_key: Option<String>,
}

/// Reads one verified webhook body of `channel` into the canonical events it stands for.
///
/// `topic` is the channel's event name as the receiver got it: Shopify's `X-Shopify-Topic`
/// (`orders/paid`), WooCommerce's `X-WC-Webhook-Topic` (`order.updated`). Those headers are not
/// signed, so the topic only picks how to read the body: what is posted comes from the body,
/// and a topic the body contradicts (`orders/cancelled` for an order whose `cancelled_at` is
/// null) is an error. Native (nettbutikk) and Stripe bodies carry their own signed `type`,
/// which decides; for them `topic` is not consulted.
///
/// One webhook may stand for several events: a Shopify `orders/paid` is the order's snapshot
/// and its payment. A topic the channel sends but shopbridge does not post gives
/// [`Event::Ignored`], not an error.
///
/// # Errors
/// [`AdapterError`] when the body is not JSON, a field the event needs is missing or cannot
/// be posted exactly, or the body contradicts the topic; the message names the field by its
/// path in the body.
pub fn read(channel: Channel, topic: &str, body: &[u8]) -> Result<Reading, AdapterError> {
    match channel {
        Channel::Nettbutikk => nettbutikk::parse(body).map(Reading::signed),
        Channel::Shopify => shopify::read(topic, body),
        Channel::WooCommerce => woocommerce::read(topic, body),
        Channel::Stripe => stripe::parse(body).map(Reading::signed),
    }
}

/// The canonical events of a verified webhook body: [`read`] without the content key.
///
/// # Errors
/// As [`read`].
pub fn parse(channel: Channel, topic: &str, body: &[u8]) -> Result<Vec<Event>, AdapterError> {
    read(channel, topic, body).map(|r| r.events)
}

impl Reading {
    /// The events of a channel whose event id is signed, so needs no content key.
    fn signed(events: Vec<Event>) -> Reading {
        Reading {
            events,
            content_key: None,
        }
    }
}

/// A [`Reading::content_key`]: `{kind}:{resource id}:{as of, RFC 3339 in UTC}`. The instant is
/// normalised, so one moment written with two offsets is one key.
fn content_key(kind: &str, id: &str, as_of: DateTime<Utc>) -> String {
    format!(
        "{kind}:{id}:{}",
        as_of.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_is_not_json_is_refused_for_every_channel() {
        for channel in Channel::ALL {
            let err = parse(channel, "orders/create", b"{\"type\": ").unwrap_err();
            assert!(matches!(err, AdapterError::Json(_)), "{channel}: {err}");
            assert!(
                err.to_string().starts_with("body is not valid JSON"),
                "{err}"
            );
        }
    }

    /// Nettbutikk and Stripe sign their `type` with the body, so no unsigned topic can change
    /// what they post, and their signed event id needs no content key beside it.
    #[test]
    fn the_signed_type_decides_for_nettbutikk_and_stripe_whatever_the_topic() {
        let native = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/events/payment-captured-1001.json"
        ));
        let stripe = br#"{"id": "evt_1", "type": "payment_intent.succeeded", "created": 1772446531,
            "data": {"object": {"id": "pi_1", "amount_received": 72600, "currency": "nok",
                                "metadata": {"order_id": "1001"}}}}"#;
        for (channel, body) in [
            (Channel::Nettbutikk, &native[..]),
            (Channel::Stripe, stripe),
        ] {
            let reading = read(channel, "payment.captured", body).unwrap();
            assert!(
                matches!(reading.events.as_slice(), [Event::Payment(_)]),
                "{channel}: {reading:?}"
            );
            assert_eq!(reading.content_key, None, "{channel}");
            for topic in ["orders/cancelled", "order.cancelled", "refund.created", ""] {
                assert_eq!(read(channel, topic, body).unwrap(), reading, "{channel}");
            }
        }
    }

    #[test]
    fn errors_read_as_path_and_reason() {
        let err = AdapterError::Invalid {
            path: "data.order.lines[2].quantity".into(),
            reason: "must be at least 1".into(),
        };
        assert_eq!(
            err.to_string(),
            "data.order.lines[2].quantity: must be at least 1"
        );
        let err = AdapterError::Amount {
            path: "data.order.total".into(),
            source: ParseAmountError::TooPrecise("726.001".into(), 2),
        };
        assert_eq!(
            err.to_string(),
            "data.order.total: `726.001` has more than 2 decimals"
        );
    }
}
