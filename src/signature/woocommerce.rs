//! WooCommerce: `X-WC-Webhook-Signature` is the base64 HMAC-SHA256 of the raw body under the
//! webhook's secret, and `X-WC-Webhook-Topic` names the event. WooCommerce sends no stable
//! event id (its delivery id changes on every retry) and no signed timestamp, so the event id is
//! derived from the topic, the resource id and a hash of the body. The topic header is not
//! signed, so the same body sent under another topic gets another id: the adapter reads what
//! happened from the body, and the worker deduplicates on the body's content too
//! (`channels::Reading::content_key`).
//!
//! When a webhook is created, WooCommerce pings the URL once, unsigned, with the form body
//! `webhook_id=N`; that is answered as [`Delivery::Ping`] and queues nothing.
//!
//! WooCommerce signs with `wp_specialchars_decode(secret)`: a secret holding HTML entities such
//! as `&amp;` is signed with `&`. We use the secret's bytes verbatim; generated secrets are hex,
//! so the difference never arises for them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use sha2::{Digest as _, Sha256};

use super::{
    Channel, Delivery, Envelope, SigningKey, Verified, VerifyError, insert_header, optional_header,
    required_header, signed_by_any,
};

/// Base64 HMAC-SHA256 of the raw body.
const SIGNATURE: &str = "x-wc-webhook-signature";
/// The webhook topic, e.g. `order.updated`.
const TOPIC: &str = "x-wc-webhook-topic";
/// How many leading bytes of the body's SHA-256 go into the event id (128 bits).
const BODY_HASH_BYTES: usize = 16;
/// What stands in the event id for a body without an `id` (e.g. `action.*` topics).
const NO_RESOURCE_ID: &str = "-";

/// Verifies a WooCommerce delivery, or recognises its creation ping.
pub(super) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    keys: &[SigningKey],
) -> Result<Delivery, VerifyError> {
    let Some(signature) = optional_header(headers, SIGNATURE)? else {
        return if is_ping(body) {
            Ok(Delivery::Ping)
        } else {
            Err(VerifyError::MissingHeader(SIGNATURE))
        };
    };
    let topic = required_header(headers, TOPIC)?;
    let tag = STANDARD
        .decode(signature)
        .map_err(|_| VerifyError::MalformedHeader {
            header: SIGNATURE,
            reason: "not base64",
        })?;
    if !signed_by_any(Channel::WooCommerce, keys, &[body], &[tag]) {
        return Err(VerifyError::BadSignature);
    }
    let envelope = Envelope::parse(body)?;
    Ok(Delivery::Event(Verified {
        event_id: event_id(topic, envelope.id.as_ref(), body),
        topic: topic.to_owned(),
        occurred_at: None,
    }))
}

/// True for WooCommerce's creation ping: exactly `webhook_id=` and a decimal number.
fn is_ping(body: &[u8]) -> bool {
    body.strip_prefix(b"webhook_id=")
        .is_some_and(|id| !id.is_empty() && id.iter().all(u8::is_ascii_digit))
}

/// `wc:{topic}:{resource id}:{hex of the first 16 bytes of the body's SHA-256}`. Retries carry
/// the same body, so they get the same id; a later change to the same resource does not.
fn event_id(topic: &str, resource_id: Option<&serde_json::Value>, body: &[u8]) -> String {
    let resource_id = match resource_id {
        Some(serde_json::Value::Number(number)) => number.to_string(),
        Some(serde_json::Value::String(text)) if !text.is_empty() => text.clone(),
        _ => NO_RESOURCE_ID.to_owned(),
    };
    let digest = Sha256::digest(body);
    let hash = hex::encode(&digest[..BODY_HASH_BYTES]);
    format!("wc:{topic}:{resource_id}:{hash}")
}

/// The headers WooCommerce would send for `body`. The event id is derived from the body, so
/// none is sent.
pub(super) fn sign(key: &SigningKey, topic: &str, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    insert_header(&mut headers, SIGNATURE, &STANDARD.encode(key.tag(&[body])));
    insert_header(&mut headers, TOPIC, topic);
    headers
}

#[cfg(test)]
mod tests {
    use super::super::Secret;
    use super::*;

    /// WC-1 (DERIVED): secret `wc_secret`.
    const WC1_BODY: &[u8] = br#"{"id":727,"status":"processing","total":"29.35"}"#;
    const WC1_SIGNATURE: &str = "OlZlrlaLPcFe6qqZlEwBCjExkm9hhyKiY1JbdQS5XWg=";
    /// WC-2 (DERIVED): secret `wc_test_secret` over the docs sample's exact bytes.
    const WC2_BODY: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/webhooks/woocommerce-order-docs-sample.json"
    ));
    const WC2_SIGNATURE: &str = "j1bsC9fSyEDssUtA9yZXx5gEF589iH9q9J4Nc0bvSH4=";

    fn key(secret: &str) -> SigningKey {
        SigningKey::derive(Channel::WooCommerce, &Secret::new(secret.to_owned())).unwrap()
    }

    fn headers(signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE, signature.parse().unwrap());
        headers.insert(TOPIC, "order.updated".parse().unwrap());
        headers
    }

    fn event(delivery: Delivery) -> Verified {
        match delivery {
            Delivery::Event(verified) => verified,
            Delivery::Ping => panic!("expected an event, got a ping"),
        }
    }

    #[test]
    fn wc1_verifies_and_signs() {
        let delivery = verify(&headers(WC1_SIGNATURE), WC1_BODY, &[key("wc_secret")]).unwrap();
        let verified = event(delivery);
        assert_eq!(verified.topic, "order.updated");
        let hash = hex::encode(&Sha256::digest(WC1_BODY)[..16]);
        assert_eq!(verified.event_id, format!("wc:order.updated:727:{hash}"));
        assert_eq!(verified.occurred_at, None);
        let signed = sign(&key("wc_secret"), "order.updated", WC1_BODY);
        assert_eq!(signed[SIGNATURE], WC1_SIGNATURE);
    }

    #[test]
    fn wc2_sample_verifies() {
        assert_eq!(WC2_BODY.len(), 3468);
        let keys = [key("wc_test_secret")];
        let verified = event(verify(&headers(WC2_SIGNATURE), WC2_BODY, &keys).unwrap());
        assert!(verified.event_id.starts_with("wc:order.updated:727:"));
        let mut changed = WC2_BODY.to_vec();
        changed[10] ^= 1;
        let err = verify(&headers(WC2_SIGNATURE), &changed, &keys).unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature), "{err:?}");
    }

    #[test]
    fn creation_ping_is_recognised_unsigned_only() {
        let keys = [key("wc_secret")];
        let delivery = verify(&HeaderMap::new(), b"webhook_id=12", &keys).unwrap();
        assert_eq!(delivery, Delivery::Ping);
        for body in [&b"webhook_id="[..], b"webhook_id=12&x=1", b"{}", b""] {
            let err = verify(&HeaderMap::new(), body, &keys).unwrap_err();
            assert!(
                matches!(err, VerifyError::MissingHeader(SIGNATURE)),
                "{err:?}"
            );
        }
        // With a signature header it is an ordinary delivery, and this one is not signed.
        let err = verify(&headers(WC1_SIGNATURE), b"webhook_id=12", &keys).unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature), "{err:?}");
    }

    #[test]
    fn missing_topic_is_400() {
        let mut headers = headers(WC1_SIGNATURE);
        headers.remove(TOPIC);
        let err = verify(&headers, WC1_BODY, &[key("wc_secret")]).unwrap_err();
        assert!(matches!(err, VerifyError::MissingHeader(TOPIC)), "{err:?}");
    }

    #[test]
    fn event_id_tolerates_odd_resource_ids() {
        let hash = hex::encode(&Sha256::digest(b"x")[..16]);
        let text = serde_json::Value::String("a-1".to_owned());
        assert_eq!(event_id("t", Some(&text), b"x"), format!("wc:t:a-1:{hash}"));
        assert_eq!(event_id("t", None, b"x"), format!("wc:t:-:{hash}"));
    }
}
