//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…][,v0=…]`, an HMAC-SHA256 over
//! `{t}.{raw body}` whose key is the whole `whsec_…` string (not base64-decoded). Any matching
//! `v1` passes; `v0` (test-mode legacy) is never accepted. The event id and type come from the
//! payload's `id` and `type`.
//!
//! The tolerance is [`TOLERANCE_SECS`](super::TOLERANCE_SECS) in both directions; stripe-python
//! checks only the past, but Stripe signs at send time, so a future `t` means a skewed clock.

use chrono::{DateTime, Utc};
use http::HeaderMap;

use super::{
    Channel, Envelope, SigningKey, Verified, VerifyError, insert_header, parse_timestamp,
    required_header, signed_by_any, within_tolerance,
};

/// `t=…,v1=…` pairs.
const SIGNATURE: &str = "stripe-signature";
/// The signing timestamp's key in the header.
const TIMESTAMP_KEY: &str = "t";
/// The only scheme we verify: HMAC-SHA256, hex.
const SCHEME: &str = "v1";

/// Verifies a Stripe delivery.
pub(super) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    keys: &[SigningKey],
    now: DateTime<Utc>,
) -> Result<Verified, VerifyError> {
    authenticate(headers, body, keys, now)?;
    let envelope = Envelope::parse(body)?;
    let occurred_at = envelope
        .created
        .as_ref()
        .and_then(serde_json::Value::as_i64)
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0));
    Ok(Verified {
        event_id: Envelope::string(envelope.id.as_ref(), "id")?,
        topic: Envelope::string(envelope.kind.as_ref(), "type")?,
        occurred_at,
    })
}

/// Checks the header's syntax (400), then the signature and the timestamp's age (401), without
/// reading the body as JSON.
fn authenticate(
    headers: &HeaderMap,
    body: &[u8],
    keys: &[SigningKey],
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    let header = required_header(headers, SIGNATURE)?;
    let pairs = || {
        header
            .split(',')
            .filter_map(|item| item.trim().split_once('='))
    };
    let Some((_, timestamp)) = pairs().find(|(key, _)| *key == TIMESTAMP_KEY) else {
        return Err(VerifyError::MalformedHeader {
            header: SIGNATURE,
            reason: "no `t=` timestamp",
        });
    };
    let signed_at = parse_timestamp(SIGNATURE, timestamp)?;
    // A `v1` that is not hex decodes to nothing and can never match, like Stripe's own
    // `v1=bad_signature` test case beside a valid one.
    let tags: Vec<Vec<u8>> = pairs()
        .filter(|(key, _)| *key == SCHEME)
        .map(|(_, value)| hex::decode(value).unwrap_or_default())
        .collect();
    if tags.is_empty() {
        return Err(VerifyError::NoSupportedSignature);
    }
    let message: [&[u8]; 3] = [timestamp.as_bytes(), b".", body];
    if !signed_by_any(Channel::Stripe, keys, &message, &tags) {
        return Err(VerifyError::BadSignature);
    }
    within_tolerance(signed_at, now)
}

/// The `Stripe-Signature` header for `body`. Stripe's event id and type travel in the body.
pub(super) fn sign(key: &SigningKey, timestamp: DateTime<Utc>, body: &[u8]) -> HeaderMap {
    let seconds = timestamp.timestamp().to_string();
    let tag = key.tag(&[seconds.as_bytes(), b".", body]);
    let mut headers = HeaderMap::new();
    let value = format!("{TIMESTAMP_KEY}={seconds},{SCHEME}={}", hex::encode(tag));
    insert_header(&mut headers, SIGNATURE, &value);
    headers
}

#[cfg(test)]
mod tests {
    use super::super::Secret;
    use super::*;

    /// ST-2 (DERIVED): stripe-python's and stripe-node's test secret.
    const ST2_SECRET: &str = "whsec_test_secret";
    const ST2_T: i64 = 1_614_265_330;
    const ST2_BODY: &[u8] = br#"{"id":"evt_test_webhook","object":"event"}"#;
    const ST2_HEADER: &str =
        "t=1614265330,v1=3c5817089d739023dd6190f70a3757e04f7a2fd8b5dab12c2e000f51970dccff";

    fn key(secret: &str) -> SigningKey {
        SigningKey::derive(Channel::Stripe, &Secret::new(secret.to_owned())).unwrap()
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn st2(header: &str, now: i64) -> Result<(), VerifyError> {
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE, header.parse().unwrap());
        authenticate(&headers, ST2_BODY, &[key(ST2_SECRET)], at(now))
    }

    /// ST-1 (OFFICIAL, stripe-node `test/crypto/helpers.ts`): the HMAC primitive.
    #[test]
    fn st1_hmac_primitive() {
        let key = key("test_secret");
        let cases: [(&str, &str); 3] = [
            (
                "",
                "f7f9bd47fb987337b5796fdc1fdb9ba221d0d5396814bfcaf9521f43fd8927fd",
            ),
            (
                r#"{"obj1":"hello","obj2":"world"}"#,
                "bebb1a643997f419b315ddba19e6f5411e1ce7f810ba6d3617ce72823092f363",
            ),
            (
                "\u{1F600}",
                "837da296d05c4fe31f61d5d7ead035099d9585a5bcde87de952012a78f0b0c43",
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(hex::encode(key.tag(&[message.as_bytes()])), expected);
        }
    }

    #[test]
    fn st2_header_verifies_and_signs() {
        st2(ST2_HEADER, ST2_T).unwrap();
        let headers = sign(&key(ST2_SECRET), at(ST2_T), ST2_BODY);
        assert_eq!(headers[SIGNATURE], ST2_HEADER);
    }

    #[test]
    fn st2_body_lacks_a_type_so_verify_names_that_field() {
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE, ST2_HEADER.parse().unwrap());
        let err = verify(&headers, ST2_BODY, &[key(ST2_SECRET)], at(ST2_T)).unwrap_err();
        assert!(matches!(err, VerifyError::MissingField("type")), "{err:?}");
    }

    #[test]
    fn only_v0_is_rejected() {
        let v0 = ST2_HEADER.replace("v1=", "v0=");
        let err = st2(&v0, ST2_T).unwrap_err();
        assert!(matches!(err, VerifyError::NoSupportedSignature), "{err:?}");
        assert_eq!(err.status(), 401);
    }

    #[test]
    fn any_valid_v1_passes() {
        st2(&format!("{ST2_HEADER},v1=bad_signature"), ST2_T).unwrap();
        let (t, v1) = ST2_HEADER.split_once(',').unwrap();
        st2(&format!("{t},v1=bad_signature,v0=00,{v1}"), ST2_T).unwrap();
        let err = st2(&format!("{t},v1=bad_signature"), ST2_T).unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature), "{err:?}");
        assert!(!err.to_string().contains("bad_signature"));
    }

    #[test]
    fn tolerance_is_300_seconds_both_ways() {
        st2(ST2_HEADER, ST2_T + 300).unwrap();
        st2(ST2_HEADER, ST2_T - 300).unwrap();
        for now in [ST2_T + 301, ST2_T - 301] {
            let err = st2(ST2_HEADER, now).unwrap_err();
            assert!(
                matches!(err, VerifyError::TimestampOutOfTolerance { .. }),
                "{err:?}"
            );
        }
    }

    #[test]
    fn malformed_headers_are_400() {
        let v1 = ST2_HEADER.split_once(',').unwrap().1;
        for header in [v1.to_owned(), format!("t=soon,{v1}")] {
            let err = st2(&header, ST2_T).unwrap_err();
            assert!(
                matches!(err, VerifyError::MalformedHeader { .. }),
                "{err:?}"
            );
            assert_eq!(err.status(), 400);
        }
        let err = authenticate(&HeaderMap::new(), ST2_BODY, &[key(ST2_SECRET)], at(ST2_T));
        assert!(matches!(err, Err(VerifyError::MissingHeader(SIGNATURE))));
    }

    #[test]
    fn event_names_come_from_the_payload() {
        let body = br#"{"id":"evt_1","type":"charge.succeeded","created":1614265000}"#;
        let key = key(ST2_SECRET);
        let headers = sign(&key, at(ST2_T), body);
        let verified = verify(&headers, body, &[key], at(ST2_T)).unwrap();
        assert_eq!(verified.event_id, "evt_1");
        assert_eq!(verified.topic, "charge.succeeded");
        assert_eq!(verified.occurred_at, Some(at(1_614_265_000)));
    }
}
