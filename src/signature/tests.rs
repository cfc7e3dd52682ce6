//! Tests that hold for every channel: sign/verify round trips, key rotation, tampering,
//! and the status of shared errors.

use super::*;

/// A body each channel accepts, naming event `evt_1` of type `order.created` where the
/// channel reads names from the body.
const BODY: &[u8] = br#"{"id":"evt_1","type":"order.created","created":1700000000}"#;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_100, 0).unwrap()
}

fn keys(channel: Channel, secrets: &[&Secret]) -> Vec<SigningKey> {
    secrets
        .iter()
        .map(|secret| SigningKey::derive(channel, secret).unwrap())
        .collect()
}

fn event(delivery: Delivery) -> Verified {
    match delivery {
        Delivery::Event(verified) => verified,
        Delivery::Ping => panic!("expected an event, got a ping"),
    }
}

#[test]
fn sign_then_verify_round_trips() {
    for channel in Channel::ALL {
        let secret = Secret::generate(channel);
        let headers = sign(channel, &secret, "evt_1", "order.created", now(), BODY);
        let keys = keys(channel, &[&secret]);
        let verified = event(verify(channel, &headers, BODY, &keys, now()).unwrap());
        assert_eq!(verified.topic, "order.created", "{channel}");
        if channel == Channel::WooCommerce {
            assert!(verified.event_id.starts_with("wc:order.created:evt_1:"));
        } else {
            assert_eq!(verified.event_id, "evt_1", "{channel}");
        }
        assert_eq!(headers[CONTENT_TYPE], "application/json");
    }
}

#[test]
fn rotation_accepts_old_and_new_keys_only_while_active() {
    for channel in Channel::ALL {
        let (old, new) = (Secret::generate(channel), Secret::generate(channel));
        let both = keys(channel, &[&old, &new]);
        for secret in [&old, &new] {
            let headers = sign(channel, secret, "evt_1", "order.created", now(), BODY);
            verify(channel, &headers, BODY, &both, now()).unwrap();
        }
        let headers = sign(channel, &old, "evt_1", "order.created", now(), BODY);
        let retired = keys(channel, &[&new]);
        let err = verify(channel, &headers, BODY, &retired, now()).unwrap_err();
        assert!(
            matches!(err, VerifyError::BadSignature),
            "{channel}: {err:?}"
        );
        let err = verify(channel, &headers, BODY, &[], now()).unwrap_err();
        assert!(
            matches!(err, VerifyError::BadSignature),
            "{channel}: {err:?}"
        );
    }
}

#[test]
fn one_changed_byte_fails() {
    for channel in Channel::ALL {
        let secret = Secret::generate(channel);
        let headers = sign(channel, &secret, "evt_1", "order.created", now(), BODY);
        let mut changed = BODY.to_vec();
        changed[BODY.len() - 2] ^= 1;
        let keys = keys(channel, &[&secret]);
        let err = verify(channel, &headers, &changed, &keys, now()).unwrap_err();
        assert!(
            matches!(err, VerifyError::BadSignature),
            "{channel}: {err:?}"
        );
        assert_eq!(err.status(), 401);
    }
}

#[test]
fn keys_of_another_channel_are_ignored() {
    let secret = Secret::new("shared_secret".to_owned());
    let headers = sign(Channel::Shopify, &secret, "evt_1", "t", now(), BODY);
    let keys = keys(Channel::WooCommerce, &[&secret]);
    let err = verify(Channel::Shopify, &headers, BODY, &keys, now()).unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature), "{err:?}");
}

#[test]
fn signed_body_that_is_not_json_is_400() {
    for channel in Channel::ALL {
        let secret = Secret::generate(channel);
        let body = b"{not json";
        let headers = sign(channel, &secret, "evt_1", "order.created", now(), body);
        let keys = keys(channel, &[&secret]);
        let err = verify(channel, &headers, body, &keys, now()).unwrap_err();
        assert!(
            matches!(err, VerifyError::BodyNotJson(_)),
            "{channel}: {err:?}"
        );
        assert_eq!(err.status(), 400);
    }
}

#[test]
fn sign_with_an_unusable_secret_omits_the_signature() {
    let headers = sign(
        Channel::Nettbutikk,
        &Secret::new(String::new()),
        "e",
        "t",
        now(),
        BODY,
    );
    assert_eq!(headers.len(), 1);
    let secret = Secret::generate(Channel::Nettbutikk);
    let keys = keys(Channel::Nettbutikk, &[&secret]);
    let err = verify(Channel::Nettbutikk, &headers, BODY, &keys, now()).unwrap_err();
    assert_eq!(err.status(), 400);
}

#[test]
fn errors_do_not_echo_header_values() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "stripe-signature",
        HeaderValue::from_static("t=whsec_x,v1=ab"),
    );
    let err = verify(Channel::Stripe, &headers, BODY, &[], now()).unwrap_err();
    assert!(!err.to_string().contains("whsec_x"), "{err}");
    assert_eq!(err.status(), 400);
}
