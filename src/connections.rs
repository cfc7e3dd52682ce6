//! Operator actions on connections ("koblinger"): add one with fresh credentials, rotate its
//! signing secret without downtime, enable and disable it, and load what the receiver needs to
//! verify its webhooks. Used by the CLI and (later) the admin API alike.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use rand::RngCore as _;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::channel::Channel;
use crate::crypto::{OpenError, SecretBox};
use crate::db::connections::{self as q, ConnectionRow, NewConnection, SecretRow};
use crate::signature::{KeyError, Secret, SigningKey};

/// Seals secrets before they are stored and opens them when they are read. Without a master
/// key it stores them as they are (and the service warns at start-up).
#[derive(Clone, Default)]
pub struct Vault {
    sealer: Option<SecretBox>,
}

impl Vault {
    /// A vault that encrypts with `sealer`, or stores plaintext when `None`.
    #[must_use]
    pub fn new(sealer: Option<SecretBox>) -> Self {
        Vault { sealer }
    }

    /// True when secrets are encrypted at rest.
    #[must_use]
    pub fn encrypts(&self) -> bool {
        self.sealer.is_some()
    }

    fn seal(&self, connection_id: Uuid, secret: &Secret) -> (Vec<u8>, bool) {
        match &self.sealer {
            Some(sb) => (
                sb.seal(secret.expose().as_bytes(), connection_id.as_bytes()),
                true,
            ),
            None => (secret.expose().as_bytes().to_vec(), false),
        }
    }

    fn open(&self, connection_id: Uuid, row: &SecretRow) -> Result<Secret, ConnectionError> {
        let bytes = if row.encrypted {
            let sb = self.sealer.as_ref().ok_or(ConnectionError::NoMasterKey)?;
            sb.open(&row.secret, connection_id.as_bytes())?
        } else {
            row.secret.clone()
        };
        let text = String::from_utf8(bytes).map_err(|_| ConnectionError::Decrypt(OpenError))?;
        Ok(Secret::new(text))
    }
}

/// Why an operator action on a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// No connection has this id.
    #[error("no connection with id {0}")]
    NotFound(Uuid),
    /// A setting is not acceptable; names the field.
    #[error("{field}: {message}")]
    Invalid {
        /// The setting's name, as the CLI and API spell it.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A secret is encrypted but `SHOPBRIDGE_MASTER_KEY` is not set.
    #[error("the connection's secrets are encrypted, but SHOPBRIDGE_MASTER_KEY is not set")]
    NoMasterKey,
    /// A stored secret did not decrypt.
    #[error(transparent)]
    Decrypt(#[from] OpenError),
    /// A stored secret is not usable as a key for its channel.
    #[error("a stored secret is not a valid key: {0}")]
    Key(#[from] KeyError),
    /// The database failed.
    #[error("database error")]
    Db(#[from] sqlx::Error),
}

/// What an operator gives to add a connection.
#[derive(Clone, Debug)]
pub struct AddConnection {
    /// Name shown to operators.
    pub name: String,
    /// Sales channel kind.
    pub channel: Channel,
    /// Orders registered before this date are skipped; default: today.
    pub process_orders_from: Option<NaiveDate>,
    /// Account for prepaid orders; default 1522.
    pub prepaid_account: Option<String>,
    /// Optional department.
    pub department: Option<String>,
    /// Optional location/warehouse.
    pub location: Option<String>,
}

/// A connection just added, with the secret that is shown this once.
pub struct Added {
    /// The stored connection.
    pub connection: ConnectionRow,
    /// The signing secret to give the shop.
    pub secret: Secret,
}

/// What the receiver needs to check a webhook for one connection.
#[derive(Clone, Debug)]
pub struct ConnectionAuth {
    /// The connection's id.
    pub id: Uuid,
    /// Its channel kind: decides the signature scheme.
    pub channel: Channel,
    /// False when disabled or still a draft (403).
    pub active: bool,
    /// True for a draft: added in the console, its settings not yet saved.
    pub draft: bool,
    /// Keys of every secret that verifies now (one, or two during a rotation).
    pub keys: Vec<SigningKey>,
    /// The earliest moment one of `keys` expires, so a cache entry is not used past it.
    pub keys_valid_until: Option<chrono::DateTime<Utc>>,
}

/// The URL a shop posts a connection's webhooks to.
#[must_use]
pub fn webhook_url(public_url: &str, id: Uuid) -> String {
    format!("{}/webhooks/{id}", public_url.trim_end_matches('/'))
}

/// Adds a connection to the default company with a fresh client id and signing secret.
///
/// # Errors
/// [`ConnectionError::Invalid`] naming a bad setting, or a database error.
pub async fn add(
    db: &PgPool,
    vault: &Vault,
    input: AddConnection,
) -> Result<Added, ConnectionError> {
    let added = insert(db, vault, input, "active", None).await?;
    // Without a form id the insert always returns its row.
    added.ok_or(ConnectionError::Db(sqlx::Error::RowNotFound))
}

/// What [`add_draft`] did. (Not `Debug`: it can hold a secret.)
pub enum Draft {
    /// A new draft, with the secret to show this once.
    Added(Added),
    /// The same form added this connection before (a reload posts it again); its secret was
    /// shown then and is not shown again.
    Existing(ConnectionRow),
}

/// Adds a draft connection, as the console's "Legg til ny kobling" does: it has credentials
/// at once, but answers 403 to webhooks until its settings are saved
/// ([`crate::ops::books::update_connection`]), so nothing is posted with settings nobody chose.
///
/// `form` is the id the console's form carries: posting the same form again returns the
/// connection it added, so a reload does not add a second draft.
///
/// # Errors
/// [`ConnectionError::Invalid`] for an empty name, or a database error.
pub async fn add_draft(
    db: &PgPool,
    vault: &Vault,
    name: &str,
    channel: Channel,
    form: Uuid,
) -> Result<Draft, ConnectionError> {
    let input = AddConnection {
        name: name.to_owned(),
        channel,
        process_orders_from: None,
        prepaid_account: None,
        department: None,
        location: None,
    };
    match insert(db, vault, input, "draft", Some(form)).await? {
        Some(added) => Ok(Draft::Added(added)),
        None => {
            let existing = q::by_form(&mut *db.acquire().await?, form).await?;
            // The form's connection was deleted since: the form is spent all the same.
            existing
                .map(Draft::Existing)
                .ok_or_else(|| invalid("form", "already used"))
        }
    }
}

/// Inserts a connection and its first secret; `None` when `form` already added one.
async fn insert(
    db: &PgPool,
    vault: &Vault,
    input: AddConnection,
    status: &'static str,
    form: Option<Uuid>,
) -> Result<Option<Added>, ConnectionError> {
    let name = input.name.trim().to_owned();
    if name.is_empty() {
        return Err(invalid("name", "must not be empty"));
    }
    if let Some(account) = &input.prepaid_account {
        validate_account("prepaid_account", account)?;
    }
    let mut tx = db.begin().await?;
    let company_id = q::default_company(&mut tx).await?;
    let id = Uuid::now_v7();
    let new = NewConnection {
        id,
        company_id,
        name,
        channel: input.channel.as_str().to_owned(),
        process_orders_from: input.process_orders_from,
        prepaid_account: input.prepaid_account,
        location: non_empty(input.location),
        department: non_empty(input.department),
        client_id: new_client_id(),
        status,
        form,
    };
    let Some(connection) = q::insert(&mut tx, &new).await? else {
        return Ok(None);
    };
    let secret = Secret::generate(input.channel);
    store_secret(&mut tx, vault, id, &secret).await?;
    tx.commit().await?;
    Ok(Some(Added { connection, secret }))
}

/// Gives a connection a new signing secret: `new`, or a generated one when `None`. The old one
/// keeps verifying for `keep_old_for`, so the shop can switch without a failed delivery; a
/// secret that was already retiring stops at once, so at most two verify at any time.
///
/// A given secret is how operators use the one a platform issued (Shopify's app secret, the
/// secret typed into WooCommerce, Stripe's endpoint secret); it must be a valid key for the
/// connection's channel.
///
/// # Errors
/// [`ConnectionError::NotFound`], [`ConnectionError::Invalid`] for an unusable secret, or a
/// database error.
pub async fn replace_secret(
    db: &PgPool,
    vault: &Vault,
    id: Uuid,
    new: Option<Secret>,
    keep_old_for: Duration,
) -> Result<Secret, ConnectionError> {
    let mut tx = db.begin().await?;
    let conn = q::get(&mut tx, id)
        .await?
        .ok_or(ConnectionError::NotFound(id))?;
    let channel: Channel = conn
        .channel
        .parse()
        .map_err(|_| invalid("channel", "unknown"))?;
    let secret = new.unwrap_or_else(|| Secret::generate(channel));
    SigningKey::derive(channel, &secret).map_err(|e| invalid("secret", e.to_string()))?;
    let keep = chrono::Duration::from_std(keep_old_for)
        .map_err(|_| invalid("keep_old_for", "too long"))?;
    q::retire_secrets(&mut tx, id, Utc::now() + keep).await?;
    store_secret(&mut tx, vault, id, &secret).await?;
    tx.commit().await?;
    Ok(secret)
}

/// Enables or disables a connection; a disabled one answers 403 and queues nothing.
///
/// # Errors
/// [`ConnectionError::NotFound`], [`ConnectionError::Invalid`] for a draft, or a database
/// error.
pub async fn set_enabled(db: &PgPool, id: Uuid, enabled: bool) -> Result<(), ConnectionError> {
    let status = if enabled { "active" } else { "disabled" };
    let mut tx = db.begin().await?;
    let current = q::get(&mut tx, id)
        .await?
        .ok_or(ConnectionError::NotFound(id))?;
    if current.status == "draft" {
        // Enabling would post with settings nobody chose; disabling would let a later enable
        // do the same.
        return Err(invalid(
            "status",
            "the connection is a draft: save its configuration (process_orders_from and \
             prepaid_account) to activate it",
        ));
    }
    q::set_status(&mut tx, id, status).await?;
    tx.commit().await?;
    Ok(())
}

/// Loads a connection's channel, status and verifying keys; `None` when it does not exist.
///
/// # Errors
/// A database error, or secrets that cannot be opened.
pub async fn load_auth(
    db: &mut PgConnection,
    vault: &Vault,
    id: Uuid,
) -> Result<Option<ConnectionAuth>, ConnectionError> {
    let Some(conn) = q::get(db, id).await? else {
        return Ok(None);
    };
    let channel: Channel = conn
        .channel
        .parse()
        .map_err(|_| invalid("channel", "unknown"))?;
    let rows = q::active_secrets(db, id).await?;
    let mut keys = Vec::with_capacity(rows.len());
    for row in &rows {
        keys.push(SigningKey::derive(channel, &vault.open(id, row)?)?);
    }
    Ok(Some(ConnectionAuth {
        id,
        channel,
        active: conn.status == "active",
        draft: conn.status == "draft",
        keys,
        keys_valid_until: rows.iter().filter_map(|r| r.expires_at).min(),
    }))
}

/// Checks that the vault can open the stored secrets, so that a receiver started without the
/// master key (or with another one) refuses to start instead of failing every webhook.
/// With a key, some of the newest encrypted secrets must open: one secret altered in the
/// database fails only its own connection, a wrong key fails them all.
///
/// # Errors
/// [`ConnectionError::NoMasterKey`] when secrets are encrypted and no key is set;
/// [`ConnectionError::Decrypt`] when the key opens none of them; a database error.
pub async fn check_vault(db: &PgPool, vault: &Vault) -> Result<(), ConnectionError> {
    let mut conn = db.acquire().await?;
    let sample = q::encrypted_secrets(&mut conn, 20).await?;
    if sample.is_empty() {
        return Ok(());
    }
    let Some(sealer) = &vault.sealer else {
        return Err(ConnectionError::NoMasterKey);
    };
    let opens = |(connection_id, sealed): &(Uuid, Vec<u8>)| {
        sealer.open(sealed, connection_id.as_bytes()).is_ok()
    };
    if sample.iter().any(opens) {
        Ok(())
    } else {
        Err(ConnectionError::Decrypt(OpenError))
    }
}

/// Encrypts secrets that were stored while no master key was set. Returns how many.
///
/// # Errors
/// A database error.
pub async fn seal_plaintext_secrets(db: &PgPool, vault: &Vault) -> Result<usize, ConnectionError> {
    let Some(sealer) = &vault.sealer else {
        return Ok(0);
    };
    let mut tx = db.begin().await?;
    let rows = q::plaintext_secrets(&mut tx).await?;
    for (id, connection_id, secret) in &rows {
        q::seal_secret(&mut tx, *id, &sealer.seal(secret, connection_id.as_bytes())).await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}

async fn store_secret(
    tx: &mut PgConnection,
    vault: &Vault,
    id: Uuid,
    secret: &Secret,
) -> Result<(), ConnectionError> {
    let (bytes, encrypted) = vault.seal(id, secret);
    q::insert_secret(tx, id, &bytes, encrypted).await?;
    Ok(())
}

fn new_client_id() -> String {
    let mut raw = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    format!("sb_{}", hex::encode(raw))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn invalid(field: &'static str, message: impl Into<String>) -> ConnectionError {
    ConnectionError::Invalid {
        field,
        message: message.into(),
    }
}

/// Account numbers are 4 to 6 digits in a Norwegian chart.
fn validate_account(field: &'static str, account: &str) -> Result<(), ConnectionError> {
    if (4..=6).contains(&account.len()) && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("`{account}` is not an account number (4 to 6 digits)"),
        ))
    }
}

/// The newest secret that verifies now: what a shop should be signing with.
///
/// # Errors
/// [`ConnectionError::NotFound`] when the connection has no active secret, a database error, or
/// a secret that does not open.
pub async fn current_secret(
    db: &mut PgConnection,
    vault: &Vault,
    id: Uuid,
) -> Result<Secret, ConnectionError> {
    let rows = q::active_secrets(db, id).await?;
    let newest = rows.first().ok_or(ConnectionError::NotFound(id))?;
    vault.open(id, newest)
}
