//! Shopify: `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the raw body under the app's
//! client secret. The event id and topic come from headers, which the HMAC does not cover, and
//! there is no signed timestamp: a captured body verifies under any topic and any id, at any
//! time. So the topic is passed on only as a hint that the adapter checks against the body, and
//! the worker deduplicates on the body's content as well as on the event id
//! (`channels::Reading::content_key`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use http::HeaderMap;

use super::{
    Channel, Envelope, SigningKey, Verified, VerifyError, insert_header, optional_header,
    required_header, signed_by_any,
};

/// Base64 HMAC-SHA256 of the raw body.
const HMAC: &str = "x-shopify-hmac-sha256";
/// The delivery's id, the same on every retry.
const WEBHOOK_ID: &str = "x-shopify-webhook-id";
/// The subscription topic, e.g. `orders/create`.
const TOPIC: &str = "x-shopify-topic";
/// When Shopify triggered the webhook (RFC 3339); optional and unsigned, so informative only.
const TRIGGERED_AT: &str = "x-shopify-triggered-at";

/// Verifies a Shopify delivery.
pub(super) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    keys: &[SigningKey],
) -> Result<Verified, VerifyError> {
    let signature = required_header(headers, HMAC)?;
    let event_id = required_header(headers, WEBHOOK_ID)?;
    let topic = required_header(headers, TOPIC)?;
    let tag = STANDARD
        .decode(signature)
        .map_err(|_| VerifyError::MalformedHeader {
            header: HMAC,
            reason: "not base64",
        })?;
    if !signed_by_any(Channel::Shopify, keys, &[body], &[tag]) {
        return Err(VerifyError::BadSignature);
    }
    Envelope::parse(body)?;
    let occurred_at = optional_header(headers, TRIGGERED_AT)
        .ok()
        .flatten()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|at| at.with_timezone(&Utc));
    Ok(Verified {
        event_id: event_id.to_owned(),
        topic: topic.to_owned(),
        occurred_at,
    })
}

/// The headers Shopify would send for `body`.
pub(super) fn sign(
    key: &SigningKey,
    event_id: &str,
    topic: &str,
    timestamp: DateTime<Utc>,
    body: &[u8],
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    insert_header(&mut headers, HMAC, &STANDARD.encode(key.tag(&[body])));
    insert_header(&mut headers, WEBHOOK_ID, event_id);
    insert_header(&mut headers, TOPIC, topic);
    let triggered_at = timestamp.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    insert_header(&mut headers, TRIGGERED_AT, &triggered_at);
    headers
}

#[cfg(test)]
mod tests {
    use super::super::Secret;
    use super::*;

    /// SH-1 (DERIVED): secret `hush`.
    const SH1_BODY: &[u8] = br##"{"id":820982911946154508,"name":"#9999","total_price":"254.98"}"##;
    const SH1_HMAC: &str = "1LNHWlDvIogj7hz8lvgjcOfsSri+zr2WJbKp5XLMNXw=";

    fn key(secret: &str) -> SigningKey {
        SigningKey::derive(Channel::Shopify, &Secret::new(secret.to_owned())).unwrap()
    }

    fn headers(hmac: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HMAC, hmac.parse().unwrap());
        headers.insert(
            WEBHOOK_ID,
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".parse().unwrap(),
        );
        headers.insert(TOPIC, "orders/create".parse().unwrap());
        headers
    }

    #[test]
    fn sh1_verifies() {
        let verified = verify(&headers(SH1_HMAC), SH1_BODY, &[key("hush")]).unwrap();
        assert_eq!(verified.event_id, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
        assert_eq!(verified.topic, "orders/create");
        assert_eq!(verified.occurred_at, None);
    }

    #[test]
    fn sh1_signs() {
        let at = DateTime::from_timestamp(0, 0).unwrap();
        let headers = sign(&key("hush"), "id", "orders/create", at, SH1_BODY);
        assert_eq!(headers[HMAC], SH1_HMAC);
    }

    #[test]
    fn sh1_fails_under_another_secret() {
        let err = verify(&headers(SH1_HMAC), SH1_BODY, &[key("hush2")]).unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature), "{err:?}");
    }

    #[test]
    fn triggered_at_is_read_when_parseable() {
        let mut headers = headers(SH1_HMAC);
        headers.insert(
            TRIGGERED_AT,
            "2023-03-29T18:00:27.877041743Z".parse().unwrap(),
        );
        let verified = verify(&headers, SH1_BODY, &[key("hush")]).unwrap();
        let expected = DateTime::parse_from_rfc3339("2023-03-29T18:00:27.877041743Z").unwrap();
        assert_eq!(verified.occurred_at, Some(expected.with_timezone(&Utc)));
        headers.insert(TRIGGERED_AT, "yesterday".parse().unwrap());
        let verified = verify(&headers, SH1_BODY, &[key("hush")]).unwrap();
        assert_eq!(verified.occurred_at, None);
    }

    #[test]
    fn required_headers_are_400() {
        for name in [HMAC, WEBHOOK_ID, TOPIC] {
            let mut headers = headers(SH1_HMAC);
            headers.remove(name);
            let err = verify(&headers, SH1_BODY, &[key("hush")]).unwrap_err();
            assert!(
                matches!(err, VerifyError::MissingHeader(n) if n == name),
                "{err:?}"
            );
            assert_eq!(err.status(), 400);
        }
        let err = verify(&headers("not*base64"), SH1_BODY, &[key("hush")]).unwrap_err();
        assert!(matches!(
            err,
            VerifyError::MalformedHeader { header: HMAC, .. }
        ));
        assert!(!err.to_string().contains("not*base64"), "{err}");
    }

    /// The docs sample verifies as its exact bytes, and not once re-serialized.
    #[test]
    fn sample_verifies_only_as_raw_bytes() {
        let sample = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/webhooks/shopify-order-docs-sample.json"
        ));
        let key = key("shpss_test_secret_0123456789");
        let at = DateTime::from_timestamp(0, 0).unwrap();
        let headers = sign(&key, "id", "orders/paid", at, sample);
        verify(&headers, sample, std::slice::from_ref(&key)).unwrap();
        let value: serde_json::Value = serde_json::from_slice(sample).unwrap();
        let compact = serde_json::to_vec(&value).unwrap();
        let err = verify(&headers, &compact, &[key]).unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature), "{err:?}");
    }
}
