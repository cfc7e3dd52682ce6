//! Signing secrets and the HMAC keys derived from them: what the shop holds, what we compute
//! with, and how each channel turns one into the other.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::Mac as _;
use rand::RngCore as _;
use rand::rngs::OsRng;

use super::{Channel, HmacSha256};

/// The prefix of Standard Webhooks and Stripe secrets.
const WHSEC_PREFIX: &str = "whsec_";

/// Bytes of randomness in a generated secret (256 bits, the HMAC-SHA256 block-size sweet spot).
const GENERATED_SECRET_BYTES: usize = 32;

/// Standard base64 that decodes with or without `=` padding and ignores non-zero trailing bits.
///
/// The Standard Webhooks libraries disagree here: Python pads and decodes leniently, the Rust
/// crate demands canonical padding. Operators paste secrets by hand and padding is the first
/// thing to get lost, so we follow Python: `…LaS`, `…LaS=` and `…Br`, `…Br==` give the same key.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// A signing secret as handed to the shop (e.g. `whsec_…`). `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret string, typically one the operator pasted from the shop's settings.
    #[must_use]
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The secret text, for storing it or showing it to the operator once.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A fresh secret from the operating system's CSPRNG, in the form `channel` expects.
    ///
    /// - nettbutikk and Stripe: `whsec_` + standard base64 of 32 random bytes (padded).
    /// - Shopify and WooCommerce: 64 lowercase hex digits (32 random bytes). Hex survives any
    ///   settings form, and WooCommerce's HTML-entity decoding of its secret cannot change it.
    ///
    /// In real use the operator pastes the shop's own secret for Shopify and Stripe; generating
    /// one lets a connection (and our test tools) work out of the box.
    #[must_use]
    pub fn generate(channel: Channel) -> Secret {
        let mut bytes = [0_u8; GENERATED_SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        Secret(match channel {
            Channel::Nettbutikk | Channel::Stripe => {
                format!("{WHSEC_PREFIX}{}", STANDARD.encode(bytes))
            }
            Channel::Shopify | Channel::WooCommerce => hex::encode(bytes),
        })
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Why a [`Secret`] cannot become a [`SigningKey`]. Messages never include the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The secret is empty, or nothing follows the `whsec_` prefix.
    #[error("the signing secret is empty")]
    Empty,
    /// A nettbutikk secret is not base64 after the optional `whsec_` prefix.
    #[error("the signing secret is not base64 after the `whsec_` prefix")]
    NotBase64,
    /// A Stripe secret contains whitespace, which is always a copy-and-paste accident
    /// (stripe-node rejects it too).
    #[error("the signing secret contains whitespace")]
    Whitespace,
    /// HMAC refused the key. HMAC-SHA256 takes keys of any length, so this is defensive only.
    #[error("the signing key has a length HMAC-SHA256 cannot use")]
    InvalidLength,
}

/// An HMAC-SHA256 key derived once from a [`Secret`] for one channel. `Debug` is redacted.
#[derive(Clone)]
pub struct SigningKey {
    /// The channel whose rules derived the key; `verify` ignores keys of other channels.
    channel: Channel,
    /// The HMAC state right after keying, cloned for every message.
    mac: HmacSha256,
}

impl SigningKey {
    /// Derives the HMAC key for `channel` from `secret`:
    ///
    /// - nettbutikk: base64-decode what follows the `whsec_` prefix (the prefix itself is
    ///   optional, as in the Standard Webhooks libraries; `=` padding is optional too).
    /// - Stripe: the whole `whsec_…` string as UTF-8 bytes, not decoded.
    /// - Shopify and WooCommerce: the secret string's bytes.
    ///
    /// # Errors
    ///
    /// [`KeyError::Empty`] for `""` or a bare `whsec_`; [`KeyError::NotBase64`] for a nettbutikk
    /// secret that does not decode; [`KeyError::Whitespace`] for a Stripe secret with whitespace.
    pub fn derive(channel: Channel, secret: &Secret) -> Result<SigningKey, KeyError> {
        let text = secret.expose();
        let bytes = match channel {
            Channel::Nettbutikk => nettbutikk_key(text)?,
            Channel::Stripe if text.chars().any(char::is_whitespace) => {
                return Err(KeyError::Whitespace);
            }
            Channel::Stripe | Channel::Shopify | Channel::WooCommerce => text.as_bytes().to_vec(),
        };
        if bytes.is_empty() {
            return Err(KeyError::Empty);
        }
        let mac = HmacSha256::new_from_slice(&bytes).map_err(|_| KeyError::InvalidLength)?;
        Ok(SigningKey { channel, mac })
    }

    /// The channel this key was derived for.
    #[must_use]
    pub fn channel(&self) -> Channel {
        self.channel
    }

    /// The HMAC state after feeding `parts` in order, ready to finalize or compare.
    pub(super) fn mac_of(&self, parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(part);
        }
        mac
    }

    /// The HMAC-SHA256 tag of the concatenated `parts`.
    pub(super) fn tag(&self, parts: &[&[u8]]) -> Vec<u8> {
        self.mac_of(parts).finalize().into_bytes().to_vec()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("channel", &self.channel)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// The raw key of a Standard Webhooks secret: base64 after an optional `whsec_` prefix.
fn nettbutikk_key(text: &str) -> Result<Vec<u8>, KeyError> {
    let encoded = text.strip_prefix(WHSEC_PREFIX).unwrap_or(text);
    if encoded.is_empty() {
        return Err(KeyError::Empty);
    }
    LENIENT_BASE64
        .decode(encoded)
        .map_err(|_| KeyError::NotBase64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(channel: Channel, secret: &str) -> Result<SigningKey, KeyError> {
        SigningKey::derive(channel, &Secret::new(secret.to_owned()))
    }

    /// Base64 of the HMAC of SW-1's signed message under the key from `secret`.
    fn sw1_signature(secret: &str) -> String {
        let signed = br#"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}"#;
        STANDARD.encode(key(Channel::Nettbutikk, secret).unwrap().tag(&[signed]))
    }

    #[test]
    fn empty_secrets_fail_at_construction() {
        for channel in Channel::ALL {
            assert_eq!(key(channel, "").unwrap_err(), KeyError::Empty, "{channel}");
        }
        assert_eq!(
            key(Channel::Nettbutikk, "whsec_").unwrap_err(),
            KeyError::Empty
        );
    }

    #[test]
    fn nettbutikk_prefix_is_optional() {
        assert_eq!(
            sw1_signature("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            sw1_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        );
    }

    /// Python `test_signature_verification_with_unpadded_secret`; expected tags computed with
    /// Python's `base64.b64decode` of the padded forms.
    #[test]
    fn nettbutikk_padding_is_optional() {
        let one_pad = "LVOXivKoo4FWasi/IaHvzhE/u+7/cu2AME+zS/nXqzk=";
        assert_eq!(
            sw1_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"),
            one_pad
        );
        assert_eq!(
            sw1_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS="),
            one_pad
        );
        let two_pad = "yK2tMbA6BHPrMEJ1lLv7UlJJbgFoqGenJkiajZ29evg=";
        assert_eq!(
            sw1_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr"),
            two_pad
        );
        assert_eq!(
            sw1_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr=="),
            two_pad
        );
    }

    #[test]
    fn nettbutikk_rejects_non_base64() {
        assert_eq!(
            key(Channel::Nettbutikk, "whsec_not base64!").unwrap_err(),
            KeyError::NotBase64
        );
    }

    #[test]
    fn stripe_rejects_whitespace() {
        assert_eq!(
            key(Channel::Stripe, "whsec_test_secret\n").unwrap_err(),
            KeyError::Whitespace
        );
        assert!(key(Channel::Stripe, "whsec_test_secret").is_ok());
    }

    #[test]
    fn generated_secrets_derive_and_differ() {
        for channel in Channel::ALL {
            let (a, b) = (Secret::generate(channel), Secret::generate(channel));
            assert_ne!(a.expose(), b.expose(), "{channel}");
            assert!(SigningKey::derive(channel, &a).is_ok(), "{channel}");
        }
        let nettbutikk = Secret::generate(Channel::Nettbutikk);
        let encoded = nettbutikk.expose().strip_prefix(WHSEC_PREFIX).unwrap();
        assert_eq!(STANDARD.decode(encoded).unwrap().len(), 32);
        assert_eq!(Secret::generate(Channel::Shopify).expose().len(), 64);
    }

    #[test]
    fn debug_does_not_leak() {
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned());
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        for channel in Channel::ALL {
            let shown = format!("{:?}", SigningKey::derive(channel, &secret).unwrap());
            assert!(shown.contains("[redacted]"), "{shown}");
            assert!(!shown.contains("MfKQ"), "{shown}");
        }
    }
}
