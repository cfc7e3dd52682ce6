//! `shopbridge bench …`: load generators that print figures. Speed goals are checked here, by a
//! person reading numbers, never by a test asserting a wall-clock time. See docs/benchmarks.md.

pub mod all;
pub mod floor;
pub mod ingest;
pub mod ledger;
pub mod mix;
pub mod raw;
pub mod report;
pub mod service;
pub mod worker;

use anyhow::Context as _;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};

use crate::channel::Channel;
use crate::cli::BenchCommand;
use crate::config::{DbSettings, Redacted};
use crate::connections::{self, AddConnection, Added, Vault};
use crate::queue::{Names, RETRY_TIERS};

pub use ingest::{IngestArgs, IngestReport};

/// `x-expires` of bench queues: what a failed clean-up leaves behind goes away by itself.
pub const QUEUE_EXPIRES: std::time::Duration = std::time::Duration::from_secs(1800);

/// Runs one bench command.
///
/// # Errors
/// When the service, the database or the broker cannot be reached.
pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Ingest(args) => ingest::ingest(args)
            .await
            .map(|report| println!("{report}")),
        BenchCommand::Worker(args) => worker::drain(args).await.map(|report| println!("{report}")),
        BenchCommand::Raw(args) => raw::limits(&args).await.map(|report| println!("{report}")),
        BenchCommand::All(args) => all::run(&args).await,
    }
}

/// Rate per second of `n` things in `secs` seconds.
#[must_use]
pub fn per_sec(n: usize, elapsed: std::time::Duration) -> f64 {
    #[allow(clippy::cast_precision_loss)] // a count, for display
    let n = n as f64;
    n / elapsed.as_secs_f64().max(1e-9)
}

/// A throwaway database next to the one `url` names, for a bench run; dropped by
/// [`drop_scratch_database`].
#[must_use]
pub fn scratch_database_url(url: &str) -> (String, String) {
    let name = format!("shopbridge_bench_{}", uuid::Uuid::new_v4().simple());
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    (format!("{base}/{name}"), name)
}

/// Drops a database made by [`scratch_database_url`].
pub async fn drop_scratch_database(url: &str, name: &str) {
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    if let Ok(pool) = sqlx::PgPool::connect(&format!("{base}/postgres")).await {
        let _ = sqlx::query(&format!("drop database if exists \"{name}\" with (force)"))
            .execute(&pool)
            .await;
        pool.close().await;
    }
}

/// A scratch database (migrated) and queue prefix for one bench run, removed by
/// [`Scratch::remove`].
pub struct Scratch {
    /// Pool on the scratch database.
    pub pool: sqlx::PgPool,
    /// URL of the scratch database, for child processes.
    pub database_url: String,
    /// The queue prefix (`bench-{uuid}.`), for child processes.
    pub prefix: String,
    /// Exchange and queue names under the prefix.
    pub names: Names,
    server_url: String,
    name: String,
    amqp_url: String,
}

impl Scratch {
    /// Creates and migrates a scratch database next to the one `database_url` names, and picks
    /// a fresh queue prefix (nothing is declared yet).
    ///
    /// # Errors
    /// When PostgreSQL cannot be reached or the migration fails.
    pub async fn create(database_url: &str, amqp_url: &str) -> anyhow::Result<Self> {
        let (url, name) = scratch_database_url(database_url);
        let settings = DbSettings {
            database_url: Redacted::new(url.clone()),
            db_pool_size: 16,
            master_key: None,
        };
        let pool = crate::db::connect(&settings)
            .await
            .context("cannot create the scratch database")?;
        if let Err(e) = crate::db::migrate(&pool).await {
            pool.close().await;
            drop_scratch_database(database_url, &name).await;
            return Err(e).context("cannot migrate the scratch database");
        }
        let prefix = format!("bench-{}.", uuid::Uuid::new_v4().simple());
        Ok(Scratch {
            pool,
            database_url: url,
            names: Names::new(&prefix),
            prefix,
            server_url: database_url.to_owned(),
            name,
            amqp_url: amqp_url.to_owned(),
        })
    }

    /// Adds `n` active native connections named `{name}-{i}` with plaintext secrets.
    /// `process_orders_from` as in [`AddConnection`].
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn connections(
        &self,
        n: usize,
        name: &str,
        process_orders_from: Option<chrono::NaiveDate>,
    ) -> anyhow::Result<Vec<Added>> {
        add_connections(&self.pool, &Vault::default(), n, name, process_orders_from).await
    }

    /// Deletes the prefixed queues and exchanges and drops the database. Best effort: what
    /// fails is left (the queues also expire when the run set `x-expires`).
    pub async fn remove(self) {
        self.pool.close().await;
        drop_scratch_database(&self.server_url, &self.name).await;
        delete_topology(&self.amqp_url, &self.names).await;
    }
}

/// Adds `n` active native connections named `{name}-{i}`.
///
/// # Errors
/// When the database refuses.
pub async fn add_connections(
    pool: &sqlx::PgPool,
    vault: &Vault,
    n: usize,
    name: &str,
    process_orders_from: Option<chrono::NaiveDate>,
) -> anyhow::Result<Vec<Added>> {
    let mut added = Vec::with_capacity(n);
    for i in 0..n.max(1) {
        let input = AddConnection {
            name: format!("{name}-{i}"),
            channel: Channel::Nettbutikk,
            process_orders_from,
            prepaid_account: None,
            department: None,
            location: None,
        };
        let one = connections::add(pool, vault, input)
            .await
            .context("cannot create a bench connection")?;
        added.push(one);
    }
    Ok(added)
}

/// Deletes every queue and exchange under `names`, ignoring what does not exist.
async fn delete_topology(amqp_url: &str, names: &Names) {
    let Ok(conn) = Connection::connect(amqp_url, ConnectionProperties::default()).await else {
        return;
    };
    if let Ok(ch) = conn.create_channel().await {
        let mut queues = vec![names.events_queue.clone(), names.dead_queue.clone()];
        queues.extend(RETRY_TIERS.iter().map(|d| names.retry_queue(*d)));
        for q in queues {
            ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await
                .ok();
        }
        for x in [
            &names.events_exchange,
            &names.dead_exchange,
            &names.retry_exchange,
        ] {
            ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
                .await
                .ok();
        }
        ch.close(200, "bench done".into()).await.ok();
    }
    conn.close(200, "bench done".into()).await.ok();
}
