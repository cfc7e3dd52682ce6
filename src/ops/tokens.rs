//! Admin API tokens: `sbt_` and 43 base64url characters of 32 random bytes. Only the SHA-256
//! digest is stored. A fast hash suffices because the token is random with 256 bits of entropy:
//! no dictionary or brute force can find a preimage, so a slow password hash (argon2, bcrypt)
//! would only cost CPU on every request. Looking a token up by its digest also means a timing
//! difference reveals nothing about any stored token.

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::db::tokens::{self as q, TokenRow};

/// The prefix that marks a shopbridge token (for secret scanners and people).
pub const PREFIX: &str = "sbt_";

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Creates a token named `name`; returns its row and the token, which is shown this once.
///
/// # Errors
/// An empty name, or a database error.
pub async fn create(db: &PgPool, name: &str) -> anyhow::Result<(TokenRow, String)> {
    let name = name.trim();
    anyhow::ensure!(!name.is_empty(), "name: must not be empty");
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let row = q::insert(&mut *db.acquire().await?, name, &digest(&token)).await?;
    Ok((row, token))
}

/// The id of the live token `presented` is, if it is one.
///
/// # Errors
/// A database error.
pub async fn verify(db: &PgPool, presented: &str) -> sqlx::Result<Option<Uuid>> {
    if !presented.starts_with(PREFIX) || presented.len() > 100 {
        return Ok(None);
    }
    q::use_digest(&mut *db.acquire().await?, &digest(presented)).await
}
