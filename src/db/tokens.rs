//! Admin API tokens: only their SHA-256 digests are stored (see migration 0004).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgConnection};
use utoipa::ToSchema;
use uuid::Uuid;

/// A token as listed (never the token itself).
#[derive(Clone, Debug, FromRow, Serialize, ToSchema)]
pub struct TokenRow {
    /// Id, for revoking.
    pub id: Uuid,
    /// Who or what it is for.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last used.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Stores a token's digest.
///
/// # Errors
/// A database error.
pub async fn insert(db: &mut PgConnection, name: &str, digest: &[u8]) -> sqlx::Result<TokenRow> {
    sqlx::query_as(
        "insert into api_tokens (id, name, token_sha256) values ($1, $2, $3) \
         returning id, name, created_at, last_used_at, revoked_at",
    )
    .bind(Uuid::now_v7())
    .bind(name)
    .bind(digest)
    .fetch_one(db)
    .await
}

/// The live token with this digest, noting its use (at most once a minute, to spare writes).
///
/// # Errors
/// A database error.
pub async fn use_digest(db: &mut PgConnection, digest: &[u8]) -> sqlx::Result<Option<Uuid>> {
    let id: Option<Uuid> = sqlx::query_scalar(
        "select id from api_tokens where token_sha256 = $1 and revoked_at is null",
    )
    .bind(digest)
    .fetch_optional(&mut *db)
    .await?;
    if let Some(id) = id {
        sqlx::query(
            "update api_tokens set last_used_at = now() where id = $1 \
             and (last_used_at is null or last_used_at < now() - interval '1 minute')",
        )
        .bind(id)
        .execute(db)
        .await?;
    }
    Ok(id)
}

/// Every token, oldest first.
///
/// # Errors
/// A database error.
pub async fn list(db: &mut PgConnection) -> sqlx::Result<Vec<TokenRow>> {
    sqlx::query_as(
        "select id, name, created_at, last_used_at, revoked_at from api_tokens order by created_at, id",
    )
    .fetch_all(db)
    .await
}

/// Revokes a token; false when no live token has this id.
///
/// # Errors
/// A database error.
pub async fn revoke(db: &mut PgConnection, id: Uuid) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update api_tokens set revoked_at = now() where id = $1 and revoked_at is null",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
