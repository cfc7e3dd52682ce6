//! Encryption at rest for connection signing secrets (XChaCha20-Poly1305).
//!
//! A sealed secret is `nonce (24 bytes) || ciphertext+tag`; the connection id is the associated
//! data, so a sealed secret copied onto another connection does not open.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::config::MasterKey;

const NONCE_LEN: usize = 24;

/// Seals and opens secrets with the master key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

/// A sealed secret did not open: wrong master key, or the stored bytes were changed.
#[derive(Debug, thiserror::Error)]
#[error(
    "a stored secret could not be decrypted (wrong SHOPBRIDGE_MASTER_KEY, or the data was altered)"
)]
pub struct OpenError;

impl SecretBox {
    /// A box for this key.
    #[must_use]
    pub fn new(key: &MasterKey) -> Self {
        SecretBox {
            cipher: XChaCha20Poly1305::new((&key.0).into()),
        }
    }

    /// Encrypts `plaintext`, bound to `context` (the connection id's bytes).
    #[must_use]
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts what [`SecretBox::seal`] produced for the same `context`.
    ///
    /// # Errors
    /// [`OpenError`] when the key or the context differ, or the bytes were altered.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError)?;
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_the_same_key_and_context() {
        let sb = SecretBox::new(&MasterKey([1; 32]));
        let sealed = sb.seal(b"whsec_abc", b"conn-1");
        assert_ne!(&sealed[NONCE_LEN..], b"whsec_abc");
        assert_eq!(sb.open(&sealed, b"conn-1").unwrap(), b"whsec_abc");
        assert!(sb.open(&sealed, b"conn-2").is_err());
        assert!(
            SecretBox::new(&MasterKey([2; 32]))
                .open(&sealed, b"conn-1")
                .is_err()
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sb.open(&tampered, b"conn-1").is_err());
        assert!(sb.open(b"short", b"conn-1").is_err());
    }
}
