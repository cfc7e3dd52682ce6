//! nettbutikk, shopbridge's native format, signed with Standard Webhooks v1: headers
//! `webhook-id`, `webhook-timestamp` and `webhook-signature`, and an HMAC-SHA256 over
//! `{id}.{timestamp}.{raw body}`. The signature header holds space-separated `v1,<base64>`
//! entries; entries of other versions (`v1a`, `v2`) are skipped, not errors.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use http::HeaderMap;

use super::{
    Channel, Envelope, SigningKey, Verified, VerifyError, insert_header, parse_timestamp,
    required_header, signed_by_any, within_tolerance,
};

/// The event id, stable across retries.
const ID: &str = "webhook-id";
/// Unix seconds at signing time.
const TIMESTAMP: &str = "webhook-timestamp";
/// Space-separated `version,signature` entries.
const SIGNATURE: &str = "webhook-signature";
/// The only version we verify: HMAC-SHA256, base64.
const VERSION: &str = "v1";

/// What the headers say once the signature and timestamp check out.
#[derive(Debug)]
struct Authenticated<'h> {
    /// The `webhook-id` value.
    id: &'h str,
    /// The `webhook-timestamp` value, parsed.
    signed_at: DateTime<Utc>,
}

/// Verifies a Standard Webhooks delivery; the topic is the body's `type`.
pub(super) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    keys: &[SigningKey],
    now: DateTime<Utc>,
) -> Result<Verified, VerifyError> {
    let authenticated = authenticate(headers, body, keys, now)?;
    let envelope = Envelope::parse(body)?;
    Ok(Verified {
        event_id: authenticated.id.to_owned(),
        topic: Envelope::string(envelope.kind.as_ref(), "type")?,
        occurred_at: Some(authenticated.signed_at),
    })
}

/// Checks the headers' syntax (400), then the signature and the timestamp's age (401), without
/// reading the body as JSON.
fn authenticate<'h>(
    headers: &'h HeaderMap,
    body: &[u8],
    keys: &[SigningKey],
    now: DateTime<Utc>,
) -> Result<Authenticated<'h>, VerifyError> {
    let id = required_header(headers, ID)?;
    let timestamp = required_header(headers, TIMESTAMP)?;
    let signed_at = parse_timestamp(TIMESTAMP, timestamp)?;
    let signature = required_header(headers, SIGNATURE)?;
    let tags = v1_tags(signature);
    if tags.is_empty() {
        return Err(VerifyError::NoSupportedSignature);
    }
    let message: [&[u8]; 5] = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
    if !signed_by_any(Channel::Nettbutikk, keys, &message, &tags) {
        return Err(VerifyError::BadSignature);
    }
    within_tolerance(signed_at, now)?;
    Ok(Authenticated { id, signed_at })
}

/// The decoded `v1` signatures in a `webhook-signature` value. Entries of other versions are
/// skipped; a `v1` entry that is not base64 decodes to nothing, so it can never match.
fn v1_tags(header: &str) -> Vec<Vec<u8>> {
    header
        .split_ascii_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == VERSION)
        .map(|(_, signature)| STANDARD.decode(signature).unwrap_or_default())
        .collect()
}

/// The three Standard Webhooks headers for `body`. The topic travels in the body's `type`.
pub(super) fn sign(
    key: &SigningKey,
    event_id: &str,
    timestamp: DateTime<Utc>,
    body: &[u8],
) -> HeaderMap {
    let seconds = timestamp.timestamp().to_string();
    let tag = key.tag(&[event_id.as_bytes(), b".", seconds.as_bytes(), b".", body]);
    let mut headers = HeaderMap::new();
    insert_header(&mut headers, ID, event_id);
    insert_header(&mut headers, TIMESTAMP, &seconds);
    insert_header(
        &mut headers,
        SIGNATURE,
        &format!("{VERSION},{}", STANDARD.encode(tag)),
    );
    headers
}

#[cfg(test)]
mod tests {
    use super::super::{Secret, sign_with};
    use super::*;

    /// SW-1 (OFFICIAL, standard-webhooks `test_sign_function` and six more).
    const SW1_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SW1_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SW1_TS: i64 = 1_614_265_330;
    const SW1_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SW1_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    /// SW-2 (OFFICIAL, standardwebhooks crate `test_sign`).
    const SW2_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const SW2_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const SW2_TS: i64 = 1_649_367_553;
    const SW2_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SW2_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn key(secret: &str) -> SigningKey {
        SigningKey::derive(Channel::Nettbutikk, &Secret::new(secret.to_owned())).unwrap()
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn headers(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ID, id.parse().unwrap());
        headers.insert(TIMESTAMP, timestamp.parse().unwrap());
        headers.insert(SIGNATURE, signature.parse().unwrap());
        headers
    }

    /// Authenticates SW-1's id, timestamp and body under `signature`, with the clock at `now`.
    fn sw1(signature: &str, now: i64) -> Result<(), VerifyError> {
        let headers = headers(SW1_ID, &SW1_TS.to_string(), signature);
        authenticate(&headers, SW1_BODY, &[key(SW1_SECRET)], at(now)).map(|_| ())
    }

    fn sw2(signature: &str) -> Result<(), VerifyError> {
        let headers = headers(SW2_ID, &SW2_TS.to_string(), signature);
        authenticate(&headers, SW2_BODY, &[key(SW2_SECRET)], at(SW2_TS)).map(|_| ())
    }

    #[test]
    fn official_vectors_sign() {
        let sw1 = sign_with(&key(SW1_SECRET), SW1_ID, "", at(SW1_TS), SW1_BODY);
        assert_eq!(sw1[SIGNATURE], SW1_SIG);
        assert_eq!(sw1[TIMESTAMP], "1614265330");
        let sw2 = sign_with(&key(SW2_SECRET), SW2_ID, "", at(SW2_TS), SW2_BODY);
        assert_eq!(sw2[SIGNATURE], SW2_SIG);
    }

    #[test]
    fn official_vectors_verify() {
        sw1(SW1_SIG, SW1_TS).unwrap();
        sw2(SW2_SIG).unwrap();
    }

    #[test]
    fn official_vectors_lack_a_type_so_verify_names_that_field() {
        let headers = headers(SW1_ID, &SW1_TS.to_string(), SW1_SIG);
        let err = verify(&headers, SW1_BODY, &[key(SW1_SECRET)], at(SW1_TS)).unwrap_err();
        assert!(matches!(err, VerifyError::MissingField("type")), "{err:?}");
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn wrong_signatures_fail() {
        let changed = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
        assert!(matches!(
            sw1(changed, SW1_TS),
            Err(VerifyError::BadSignature)
        ));
        let no_verify = "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=";
        assert!(matches!(sw2(no_verify), Err(VerifyError::BadSignature)));
    }

    #[test]
    fn multiple_signatures_pass_only_with_a_valid_one() {
        let wrong = [
            "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ=",
            "v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=",
            "v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=",
        ];
        assert!(matches!(
            sw2(&wrong.join(" ")),
            Err(VerifyError::BadSignature)
        ));
        for position in 0..=wrong.len() {
            let mut entries = wrong.to_vec();
            entries.insert(position, SW2_SIG);
            sw2(&entries.join(" ")).unwrap();
        }
    }

    #[test]
    fn unknown_versions_are_skipped() {
        let stale = "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
        let header = format!("v1,{stale} v2,{stale} {SW1_SIG} v1,{stale}");
        sw1(&header, SW1_TS).unwrap();
        let only_others = format!("v2,{stale} v1a,{stale}");
        let err = sw1(&only_others, SW1_TS).unwrap_err();
        assert!(matches!(err, VerifyError::NoSupportedSignature), "{err:?}");
        assert_eq!(err.status(), 401);
    }

    #[test]
    fn partial_signatures_fail() {
        assert!(matches!(sw1("v1,", SW1_TS), Err(VerifyError::BadSignature)));
        let first_eight = &SW1_SIG["v1,".len().."v1,".len() + 8];
        let partial = format!("v1,{first_eight}");
        assert!(matches!(
            sw1(&partial, SW1_TS),
            Err(VerifyError::BadSignature)
        ));
        assert!(matches!(
            sw1("v1,!!!", SW1_TS),
            Err(VerifyError::BadSignature)
        ));
    }

    #[test]
    fn tolerance_is_300_seconds_both_ways() {
        sw1(SW1_SIG, SW1_TS + 300).unwrap();
        sw1(SW1_SIG, SW1_TS - 300).unwrap();
        for (now, skew_seconds) in [(SW1_TS + 301, 301), (SW1_TS - 301, -301)] {
            let err = sw1(SW1_SIG, now).unwrap_err();
            assert!(
                matches!(err, VerifyError::TimestampOutOfTolerance { skew_seconds: s } if s == skew_seconds),
                "{err:?}"
            );
            assert_eq!(err.status(), 401);
        }
    }

    #[test]
    fn non_integer_timestamp_is_malformed() {
        // Even correctly signed: the syntax check comes before the signature.
        let tag = key(SW1_SECRET).tag(&[SW1_ID.as_bytes(), b".hello.", SW1_BODY]);
        let signed = format!("v1,{}", STANDARD.encode(tag));
        for signature in [SW1_SIG, signed.as_str()] {
            let headers = headers(SW1_ID, "hello", signature);
            let err = authenticate(&headers, SW1_BODY, &[key(SW1_SECRET)], at(SW1_TS)).unwrap_err();
            assert!(
                matches!(
                    err,
                    VerifyError::MalformedHeader {
                        header: TIMESTAMP,
                        ..
                    }
                ),
                "{err:?}"
            );
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn missing_headers_fail() {
        for name in [ID, TIMESTAMP, SIGNATURE] {
            let mut headers = headers(SW1_ID, &SW1_TS.to_string(), SW1_SIG);
            headers.remove(name);
            let err = authenticate(&headers, SW1_BODY, &[key(SW1_SECRET)], at(SW1_TS)).unwrap_err();
            assert!(
                matches!(err, VerifyError::MissingHeader(n) if n == name),
                "{err:?}"
            );
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn typed_body_names_the_event() {
        let body = br#"{"type":"order.created","data":{"id":"o-1"}}"#;
        let key = key(SW1_SECRET);
        let headers = sign_with(&key, "msg_1", "", at(SW1_TS), body);
        let verified = verify(&headers, body, &[key], at(SW1_TS + 5)).unwrap();
        assert_eq!(verified.event_id, "msg_1");
        assert_eq!(verified.topic, "order.created");
        assert_eq!(verified.occurred_at, Some(at(SW1_TS)));
    }
}
