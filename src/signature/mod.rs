//! Webhook signatures: verifying what shops send us, and producing the same headers for our own
//! tools. One file per channel holds its header names and signed-message layout; this module owns
//! the public API, the constant-time "signed by any active key" check and the shared errors.
//!
//! Signatures are checked over the raw body bytes before any JSON parsing, against every active
//! key so that secrets rotate without downtime. Only then is the body parsed, just enough to name
//! the event.

mod key;
mod nettbutikk;
mod shopify;
mod stripe;
mod woocommerce;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use http::HeaderMap;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde::Deserialize;
use sha2::Sha256;

pub use crate::channel::Channel;
pub use key::{KeyError, Secret, SigningKey};

/// HMAC-SHA256, the MAC every supported channel uses.
type HmacSha256 = Hmac<Sha256>;

/// How far, in seconds, a signed timestamp may lie from our clock, in either direction.
pub const TOLERANCE_SECS: i64 = 300;

/// What a verified delivery says about itself; only [`verify`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The shop's id for the event, stable across retries: the key for deduplication.
    pub event_id: String,
    /// The event type (e.g. `orders/create`, `order.updated`), which picks the posting rule.
    pub topic: String,
    /// When the shop says the event happened, if the channel tells us.
    pub occurred_at: Option<DateTime<Utc>>,
}

/// The outcome of a successful [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A signed event to queue.
    Event(Verified),
    /// WooCommerce's unsigned creation ping (form body `webhook_id=N`): answer 200, queue nothing.
    Ping,
}

/// Why a delivery was refused. Messages name headers and fields, never secrets or signatures.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A header the channel requires is absent (400).
    #[error("missing header `{0}`")]
    MissingHeader(&'static str),
    /// A header is present but unusable: empty, not ASCII, or not in the channel's syntax (400).
    #[error("malformed header `{header}`: {reason}")]
    MalformedHeader {
        /// The header's name.
        header: &'static str,
        /// What is wrong with it, in words that do not quote the value.
        reason: &'static str,
    },
    /// The signature header lists no signature of a scheme we support, e.g. only Stripe `v0`
    /// or only Standard Webhooks `v2` (401).
    #[error("no signature with a supported scheme")]
    NoSupportedSignature,
    /// No signature matches the body under any active key (401).
    #[error("signature does not match any active key")]
    BadSignature,
    /// The signed timestamp is more than [`TOLERANCE_SECS`] from our clock: a replay or a
    /// badly skewed clock (401).
    #[error(
        "timestamp is {skew_seconds} s from our clock, outside the {TOLERANCE_SECS} s tolerance"
    )]
    TimestampOutOfTolerance {
        /// Our clock minus the signed timestamp; negative when the timestamp is in the future.
        skew_seconds: i64,
    },
    /// The body is signed but is not a JSON object (400).
    #[error("body is not a JSON object")]
    BodyNotJson(#[source] serde_json::Error),
    /// The body is a JSON object but lacks a non-empty string field naming the event (400).
    #[error("body has no usable `{0}` field")]
    MissingField(&'static str),
}

impl VerifyError {
    /// The HTTP status to answer with: 400 when the request is malformed, 401 when it is not
    /// authentic (bad signature, unsupported scheme, stale or future timestamp).
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingHeader(_)
            | Self::MalformedHeader { .. }
            | Self::BodyNotJson(_)
            | Self::MissingField(_) => 400,
            Self::NoSupportedSignature
            | Self::BadSignature
            | Self::TimestampOutOfTolerance { .. } => 401,
        }
    }
}

/// Checks that `body` was signed for `channel` by one of `keys` and names the event.
///
/// Keys derived for another channel are ignored, and an empty `keys` rejects everything.
/// `now` is a parameter so tests can pin the clock.
///
/// # Errors
///
/// Any [`VerifyError`]; [`VerifyError::status`] maps it to the HTTP answer.
pub fn verify(
    channel: Channel,
    headers: &HeaderMap,
    body: &[u8],
    keys: &[SigningKey],
    now: DateTime<Utc>,
) -> Result<Delivery, VerifyError> {
    match channel {
        Channel::Nettbutikk => nettbutikk::verify(headers, body, keys, now).map(Delivery::Event),
        Channel::Shopify => shopify::verify(headers, body, keys).map(Delivery::Event),
        Channel::WooCommerce => woocommerce::verify(headers, body, keys),
        Channel::Stripe => stripe::verify(headers, body, keys, now).map(Delivery::Event),
    }
}

/// Where `channel` takes the event id from, in words for an error message.
#[must_use]
pub fn event_id_source(channel: Channel) -> &'static str {
    match channel {
        Channel::Nettbutikk => "header `webhook-id`",
        Channel::Shopify => "header `X-Shopify-Webhook-Id`",
        Channel::WooCommerce => {
            "event id (made of header `X-WC-Webhook-Topic` and the body's `id`)"
        }
        Channel::Stripe => "body field `id`",
    }
}

/// Where `channel` takes the topic from, in words for an error message.
#[must_use]
pub fn topic_source(channel: Channel) -> &'static str {
    match channel {
        Channel::Nettbutikk | Channel::Stripe => "body field `type`",
        Channel::Shopify => "header `X-Shopify-Topic`",
        Channel::WooCommerce => "header `X-WC-Webhook-Topic`",
    }
}

/// Headers that make `body` verify under `secret` — used by our send-test-event command, load
/// generator and tests. Also sets `content-type: application/json`.
///
/// Where the channel reads the event id or topic from the body (nettbutikk's `type`, Stripe's
/// `id` and `type`, WooCommerce's derived id), the body must already carry them and the
/// arguments are not used. If `secret` does not derive a key, only `content-type` is set; if
/// an argument is not valid header text, that header is left out. Either way [`verify`] rejects
/// the result; use [`sign_with`] with a derived key to rule the first case out.
#[must_use]
pub fn sign(
    channel: Channel,
    secret: &Secret,
    event_id: &str,
    topic: &str,
    timestamp: DateTime<Utc>,
    body: &[u8],
) -> HeaderMap {
    match SigningKey::derive(channel, secret) {
        Ok(key) => sign_with(&key, event_id, topic, timestamp, body),
        Err(_) => {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers
        }
    }
}

/// [`sign`] with an already derived key, for the channel the key was derived for.
#[must_use]
pub fn sign_with(
    key: &SigningKey,
    event_id: &str,
    topic: &str,
    timestamp: DateTime<Utc>,
    body: &[u8],
) -> HeaderMap {
    let mut headers = match key.channel() {
        Channel::Nettbutikk => nettbutikk::sign(key, event_id, timestamp, body),
        Channel::Shopify => shopify::sign(key, event_id, topic, timestamp, body),
        Channel::WooCommerce => woocommerce::sign(key, topic, body),
        Channel::Stripe => stripe::sign(key, timestamp, body),
    };
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers
}

/// True when one of `tags` is the HMAC-SHA256 of the concatenated `message` parts under any of
/// `keys` derived for `channel`. Each comparison is constant time (`verify_slice`); which key or
/// tag matched may leak through timing, and need not be secret.
fn signed_by_any<T: AsRef<[u8]>>(
    channel: Channel,
    keys: &[SigningKey],
    message: &[&[u8]],
    tags: &[T],
) -> bool {
    keys.iter()
        .filter(|key| key.channel() == channel)
        .any(|key| {
            let mac = key.mac_of(message);
            tags.iter()
                .any(|tag| mac.clone().verify_slice(tag.as_ref()).is_ok())
        })
}

/// The value of a required header as non-empty ASCII text.
fn required_header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, VerifyError> {
    optional_header(headers, name)?.ok_or(VerifyError::MissingHeader(name))
}

/// The value of a header as non-empty ASCII text, or `None` when it is absent.
fn optional_header<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
) -> Result<Option<&'h str>, VerifyError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| VerifyError::MalformedHeader {
        header: name,
        reason: "not visible ASCII",
    })?;
    if text.trim().is_empty() {
        return Err(VerifyError::MalformedHeader {
            header: name,
            reason: "empty",
        });
    }
    Ok(Some(text))
}

/// Parses a signed Unix timestamp in whole seconds; `header` names the header in errors.
fn parse_timestamp(header: &'static str, text: &str) -> Result<DateTime<Utc>, VerifyError> {
    let seconds: i64 = text.parse().map_err(|_| VerifyError::MalformedHeader {
        header,
        reason: "timestamp is not an integer number of seconds",
    })?;
    DateTime::from_timestamp(seconds, 0).ok_or(VerifyError::MalformedHeader {
        header,
        reason: "timestamp is out of range",
    })
}

/// Checks that `signed_at` lies within [`TOLERANCE_SECS`] of `now`, in either direction.
fn within_tolerance(signed_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), VerifyError> {
    let skew_seconds = (now - signed_at).num_seconds();
    if skew_seconds.unsigned_abs() > TOLERANCE_SECS.unsigned_abs() {
        return Err(VerifyError::TimestampOutOfTolerance { skew_seconds });
    }
    Ok(())
}

/// The few top-level body fields that name an event. Values stay loosely typed so that a
/// field of an unexpected type reads as missing rather than as "not JSON".
#[derive(Debug, Default, Deserialize)]
struct Envelope {
    /// Stripe's event id, WooCommerce's resource id.
    #[serde(default)]
    id: Option<serde_json::Value>,
    /// The event type of nettbutikk and Stripe.
    #[serde(default, rename = "type")]
    kind: Option<serde_json::Value>,
    /// Stripe's event creation time, in Unix seconds.
    #[serde(default)]
    created: Option<serde_json::Value>,
}

impl Envelope {
    /// Parses a verified body, which must be a JSON object.
    fn parse(body: &[u8]) -> Result<Envelope, VerifyError> {
        serde_json::from_slice(body).map_err(VerifyError::BodyNotJson)
    }

    /// A required top-level field holding a non-empty string.
    fn string(
        field: Option<&serde_json::Value>,
        name: &'static str,
    ) -> Result<String, VerifyError> {
        match field.and_then(serde_json::Value::as_str) {
            Some(text) if !text.is_empty() => Ok(text.to_owned()),
            _ => Err(VerifyError::MissingField(name)),
        }
    }
}

/// Inserts a header unless `value` is not valid header text (see [`sign`]).
fn insert_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

#[cfg(test)]
mod tests;
