//! Operator commands: each one a function the CLI calls, printing text or `--json`.

pub mod admin;
pub mod connections;
pub mod ledger;
pub mod periods;

use anyhow::Context as _;
use chrono::Utc;

use crate::cli::SendTestEventArgs;
use crate::config::DbSettings;
use crate::db::connections as q;
use crate::{samples, signature};

/// `shopbridge migrate`: creates the database if needed and applies pending migrations.
///
/// # Errors
/// When PostgreSQL is unreachable or a migration fails.
pub async fn migrate(db: &DbSettings) -> anyhow::Result<()> {
    let pool = crate::db::connect(db).await?;
    crate::db::migrate(&pool).await?;
    println!("Database is up to date.");
    Ok(())
}

/// `shopbridge send-test-event`: signs a sample order with the connection's current secret,
/// posts it, and prints the answer. Exits non-zero unless the service accepted it.
///
/// # Errors
/// Unknown connection, unreachable service, or an answer other than 2xx.
pub async fn send_test_event(args: SendTestEventArgs) -> anyhow::Result<()> {
    let pool = crate::db::connect(&args.db).await?;
    let vault = crate::app::vault(&args.db);
    let mut conn = pool.acquire().await?;
    let row = q::get(&mut conn, args.connection_id)
        .await?
        .with_context(|| format!("no connection with id {}", args.connection_id))?;
    let channel = row.channel.parse().context("stored channel is unknown")?;
    let secret = crate::connections::current_secret(&mut conn, &vault, args.connection_id).await?;
    let now = Utc::now();
    let order_id = format!("T{}", now.timestamp_millis());
    let sample = samples::order(channel, &order_id, now, 0);
    let headers = signature::sign(
        channel,
        &secret,
        &sample.event_id,
        &sample.topic,
        now,
        &sample.body,
    );
    let url = crate::connections::webhook_url(&args.url, args.connection_id);
    let response = reqwest::Client::new()
        .post(&url)
        .headers(headers)
        .header("content-type", "application/json")
        .body(sample.body)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    println!(
        "POST {url}\n{} {}\n{text}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    anyhow::ensure!(
        status.is_success(),
        "the service did not accept the test event"
    );
    Ok(())
}

/// `shopbridge healthcheck`: succeeds when `url` answers 2xx within five seconds.
///
/// # Errors
/// When the service does not answer, or answers not ready.
pub async fn healthcheck(url: &str) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .with_context(|| format!("{url} did not answer"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url} answered {}",
        response.status()
    );
    Ok(())
}
