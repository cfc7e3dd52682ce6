//! Operator users of the console and their sessions.
//!
//! Passwords are hashed with argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes, the
//! OWASP minimum) on a blocking thread, so a login never stalls the webhook intake. A session
//! is 32 random bytes in an HttpOnly cookie; only their SHA-256 is stored, as for API tokens.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted (hashing is linear in it; nobody types more).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a user action failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The email is not of the form `name@domain`.
    #[error("not an email address: {0:?}")]
    BadEmail(String),
    /// Too short or too long.
    #[error(
        "a password needs at least {MIN_PASSWORD_CHARS} characters and at most {MAX_PASSWORD_BYTES} bytes"
    )]
    WeakPassword,
    /// Another user has this email (case-insensitively).
    #[error("a user with email {0} exists already")]
    Exists(String),
    /// No user has this email.
    #[error("no user with email {0}")]
    NotFound(String),
    /// Hashing failed (it does not, short of memory).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The database failed.
    #[error("database error")]
    Db(#[from] sqlx::Error),
}

/// A user as listed.
#[derive(Clone, Debug, FromRow, serde::Serialize)]
pub struct User {
    /// Id.
    pub id: Uuid,
    /// Email, as typed when created.
    pub email: String,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// When disabled, if so.
    pub disabled_at: Option<DateTime<Utc>>,
}

fn check_email(email: &str) -> Result<String, UserError> {
    let email = email.trim();
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
                && email.len() <= MAX_EMAIL_BYTES =>
        {
            Ok(email.to_owned())
        }
        _ => Err(UserError::BadEmail(email.to_owned())),
    }
}

fn check_password(password: &str) -> Result<(), UserError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(UserError::WeakPassword);
    }
    Ok(())
}

/// Hashes running at once. Each takes 19 MiB and a core for tens of milliseconds: a flood of
/// logins waits here (within the request timeout) instead of taking the machine's memory and
/// the webhook intake's CPU.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

async fn hash(password: &str) -> Result<String, UserError> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| UserError::Hash(e.to_string()))?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| UserError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| UserError::Hash(e.to_string()))?
}

/// True when `password` matches the PHC string `hash`; false for a malformed hash.
async fn verify(password: &str, hash: String) -> bool {
    let Ok(_permit) = HASHING.acquire().await else {
        return false;
    };
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// A hash of no one's password, verified against when the email is unknown so that a login
/// takes as long whether or not the user exists (no user enumeration by timing).
fn decoy_hash() -> String {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY
        .get_or_init(|| {
            let mut pw = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut pw);
            Argon2::default()
                .hash_password(&pw, &SaltString::generate(&mut OsRng))
                .map(|h| h.to_string())
                .unwrap_or_default()
        })
        .clone()
}

/// Adds a user.
///
/// # Errors
/// [`UserError::BadEmail`], [`UserError::WeakPassword`], [`UserError::Exists`], or a database
/// error.
pub async fn create(db: &PgPool, email: &str, password: &str) -> Result<User, UserError> {
    let email = check_email(email)?;
    check_password(password)?;
    let hash = hash(password).await?;
    sqlx::query_as(
        "insert into users (id, email, password_hash) values ($1, $2, $3) \
         on conflict do nothing returning id, email, created_at, disabled_at",
    )
    .bind(Uuid::now_v7())
    .bind(&email)
    .bind(hash)
    .fetch_optional(db)
    .await?
    .ok_or(UserError::Exists(email))
}

/// Every user, oldest first.
///
/// # Errors
/// A database error.
pub async fn list(db: &PgPool) -> Result<Vec<User>, UserError> {
    Ok(sqlx::query_as(
        "select id, email, created_at, disabled_at from users order by created_at, id",
    )
    .fetch_all(db)
    .await?)
}

/// Gives a user a new password, ends its sessions and clears its failed logins.
///
/// # Errors
/// [`UserError::WeakPassword`], [`UserError::NotFound`], or a database error.
pub async fn set_password(db: &PgPool, email: &str, password: &str) -> Result<(), UserError> {
    check_password(password)?;
    let hash = hash(password).await?;
    change_and_end_sessions(
        db,
        email,
        "update users set password_hash = $2 where lower(email) = lower($1) returning id",
        Some(hash),
    )
    .await?;
    // The operator has acted: the address need not wait out earlier failures.
    clear_login_failures(db, email).await
}

/// Disables a user (it can no longer log in) and ends its sessions.
///
/// # Errors
/// [`UserError::NotFound`], or a database error.
pub async fn disable(db: &PgPool, email: &str) -> Result<(), UserError> {
    change_and_end_sessions(
        db,
        email,
        "update users set disabled_at = coalesce(disabled_at, now()) \
         where lower(email) = lower($1) and $2::text is null returning id",
        None,
    )
    .await
}

/// Lets a disabled user log in again, and clears its failed logins. Its sessions ended when it
/// was disabled, so there are none to keep or end.
///
/// # Errors
/// [`UserError::NotFound`], or a database error.
pub async fn enable(db: &PgPool, email: &str) -> Result<(), UserError> {
    let id: Option<Uuid> = sqlx::query_scalar(
        "update users set disabled_at = null where lower(email) = lower($1) returning id",
    )
    .bind(email.trim())
    .fetch_optional(db)
    .await?;
    if id.is_none() {
        return Err(UserError::NotFound(email.trim().to_owned()));
    }
    clear_login_failures(db, email).await
}

/// Runs `update` (which takes the email and `value`, and returns the user's id) and ends the
/// user's sessions, in one transaction.
async fn change_and_end_sessions(
    db: &PgPool,
    email: &str,
    update: &str,
    value: Option<String>,
) -> Result<(), UserError> {
    let mut tx = db.begin().await?;
    let id: Option<Uuid> = sqlx::query_scalar(update)
        .bind(email.trim())
        .bind(value)
        .fetch_optional(&mut *tx)
        .await?;
    let id = id.ok_or_else(|| UserError::NotFound(email.trim().to_owned()))?;
    sqlx::query("delete from console_sessions where user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// What a login attempt found.
#[derive(Debug)]
pub enum Login {
    /// The pair is right and the user is not disabled.
    Ok(User),
    /// Refused; `known` says whether the typed address is a user's (for the log alone: the
    /// answer to the client is the same either way).
    Refused {
        /// A user has this address.
        known: bool,
    },
}

/// Checks an email and password pair.
///
/// # Errors
/// A database error.
pub async fn authenticate(db: &PgPool, email: &str, password: &str) -> Result<Login, UserError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(Login::Refused { known: false });
    }
    #[derive(FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: User,
        password_hash: String,
    }
    let row: Option<Row> = sqlx::query_as(
        "select id, email, created_at, disabled_at, password_hash from users \
         where lower(email) = lower($1)",
    )
    .bind(email.trim())
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        verify(password, decoy_hash()).await;
        return Ok(Login::Refused { known: false });
    };
    let ok = verify(password, row.password_hash).await;
    Ok(if ok && row.user.disabled_at.is_none() {
        Login::Ok(row.user)
    } else {
        Login::Refused { known: true }
    })
}

/// The longest email address a user can have (RFC 5321's limit on a path).
pub const MAX_EMAIL_BYTES: usize = 254;

/// Forgets the failed logins with `email`, of every client and of the address (an operator
/// acted for its user). The throttle itself: [`crate::db::logins`].
///
/// # Errors
/// A database error.
pub async fn clear_login_failures(db: &PgPool, email: &str) -> Result<(), UserError> {
    Ok(crate::db::logins::forget(db, email).await?)
}

/// The first 12 hex digits of the SHA-256 of an address in lower case: what logs above DEBUG
/// say instead of an address typed into the login form (`printf %s kari@example.no | sha256sum
/// | cut -c1-12` finds an address's lines).
#[must_use]
pub fn address_digest(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    hex::encode(&digest[..6])
}

/// A signed-in operator, as every console page sees it.
#[derive(Clone, Debug)]
pub struct Session {
    /// The user.
    pub user_id: Uuid,
    /// Their email, shown in the header.
    pub email: String,
    /// The token every form of this session must carry back.
    pub csrf: String,
}

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A random URL-safe token of 32 bytes.
#[must_use]
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Starts a session for `user` lasting `ttl`; returns the cookie's token and the session.
/// Expired sessions are removed on the way.
///
/// # Errors
/// A database error.
pub async fn open_session(
    db: &PgPool,
    user: &User,
    ttl: std::time::Duration,
) -> Result<(String, Session), UserError> {
    let token = random_token();
    let csrf = random_token();
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(12));
    sqlx::query("delete from console_sessions where expires_at < now()")
        .execute(db)
        .await?;
    sqlx::query(
        "insert into console_sessions (token_sha256, user_id, csrf_token, expires_at) \
         values ($1, $2, $3, now() + $4)",
    )
    .bind(digest(&token))
    .bind(user.id)
    .bind(&csrf)
    .bind(ttl)
    .execute(db)
    .await?;
    Ok((
        token,
        Session {
            user_id: user.id,
            email: user.email.clone(),
            csrf,
        },
    ))
}

/// The live session of a cookie token, if any.
///
/// # Errors
/// A database error.
pub async fn find_session(db: &PgPool, token: &str) -> Result<Option<Session>, UserError> {
    let row: Option<(Uuid, String, String)> = sqlx::query_as(
        "update console_sessions s set last_seen_at = now() from users u \
         where s.token_sha256 = $1 and s.expires_at > now() and u.id = s.user_id \
           and u.disabled_at is null \
         returning u.id, u.email, s.csrf_token",
    )
    .bind(digest(token))
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(user_id, email, csrf)| Session {
        user_id,
        email,
        csrf,
    }))
}

/// Ends the session of a cookie token.
///
/// # Errors
/// A database error.
pub async fn close_session(db: &PgPool, token: &str) -> Result<(), UserError> {
    sqlx::query("delete from console_sessions where token_sha256 = $1")
        .bind(digest(token))
        .execute(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_passwords_are_checked() {
        assert!(check_email("kari@example.no").is_ok());
        assert_eq!(
            check_email("  kari@example.no ").unwrap(),
            "kari@example.no"
        );
        for bad in ["", "kari", "@x", "kari@", "a@b@c", "ka ri@x.no"] {
            assert!(check_email(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_password("short").is_err());
        assert!(check_password("ten chars!").is_ok());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let h = hash("correct horse battery").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", h.clone()).await);
        assert!(!verify("correct horse batterY", h).await);
        assert!(!verify("anything", "not a phc string".into()).await);
    }
}
