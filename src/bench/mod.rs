//! `shopbridge bench …`: load generators that print figures. Speed goals are checked here, by a
//! person reading numbers, never by a test asserting a wall-clock time. See docs/benchmarks.md.

pub mod ingest;
pub mod raw;
pub mod worker;

use crate::cli::BenchCommand;

pub use ingest::{IngestArgs, IngestReport};

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
