//! PostgreSQL: the pool, the embedded migrations, and one file of queries per table group.
//!
//! Queries are checked at runtime (`sqlx::query_as` with `FromRow`), not with `query!` macros:
//! CI then needs no prepared `.sqlx/` data, and every query is exercised by an integration test
//! against a real database instead.

pub mod admin;
pub mod books;
pub mod catalog;
pub mod connections;
pub mod events;
pub mod failure;
pub mod ledger;
pub mod logins;
pub mod orders;
pub mod periods;
pub mod reports;
pub mod tokens;
pub mod vouchers;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection as _, PgPool};

use crate::config::DbSettings;

pub use failure::{Failure, is_transient, is_unavailable};

/// The schema, embedded in the binary from `migrations/`.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// Connects a pool, creating the database first when it does not exist.
///
/// # Errors
/// When the URL is invalid, the server cannot be reached, or the database cannot be created.
pub async fn connect(settings: &DbSettings) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(settings.database_url.expose())
        .context("DATABASE_URL is not a valid PostgreSQL URL")?
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
    create_database_if_missing(&options).await?;
    PgPoolOptions::new()
        .max_connections(settings.db_pool_size)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .context("cannot connect to PostgreSQL (DATABASE_URL)")
}

/// Applies the migrations that are not applied yet, then gives the default company the default
/// chart, VAT codes and posting rules if it has none. Safe to run from several processes at
/// once (sqlx and the seed take advisory locks).
///
/// # Errors
/// When a migration fails, an applied one was changed, or the seed fails.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("database migration failed")?;
    let mut tx = pool.begin().await?;
    let company = connections::default_company(&mut tx).await?;
    if ledger::seed_company(&mut tx, company).await? {
        tracing::info!(%company, "Gave the default company the default chart, VAT codes and rules.");
    }
    tx.commit()
        .await
        .context("seeding the default company failed")
}

async fn create_database_if_missing(options: &PgConnectOptions) -> anyhow::Result<()> {
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Ok(()); // no database named: the server's default for the user is used
    };
    let mut admin = options
        .clone()
        .database("postgres")
        .connect()
        .await
        .context("cannot connect to PostgreSQL (DATABASE_URL) to check that the database exists")?;
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&format!("create database {quoted}"))
            .execute(&mut admin)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "Created the database."),
            // Another process created it between our check and our create (42P04, or 23505
            // when both inserted into pg_database at once).
            Err(sqlx::Error::Database(e))
                if matches!(e.code().as_deref(), Some("42P04" | "23505")) => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create database {name}")),
        }
    }
    admin.close().await.ok();
    Ok(())
}
