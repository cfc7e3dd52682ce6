//! Wiring: turns settings into a running receiver (and, with `run`, a worker), the same way for
//! `main` and for the integration tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cache::ConnectionCache;
use crate::cli::RunArgs;
use crate::config::DbSettings;
use crate::connections::{self, Vault};
use crate::crypto::SecretBox;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::queue::Names;
use crate::queue::publisher::{Publisher, PublisherConfig};

/// Receiver and worker in one process: the default, and what compose runs. They share one
/// database pool.
///
/// # Errors
/// When start-up fails (database, listen address) or the server stops with an error.
pub async fn run(args: RunArgs, stop: CancellationToken) -> anyhow::Result<()> {
    let listener = bind(&args).await?;
    let state = build_state(&args, stop.clone()).await?;
    let mut deps = worker_deps(state.db.clone(), &args);
    deps.metrics = state.metrics.clone();
    let url = args.broker.amqp_url.expose().clone();
    let worker = tokio::spawn(crate::worker::run(
        deps,
        url,
        args.broker.queue_expires,
        stop.clone(),
    ));
    tracing::info!(address = %args.serve.listen, public_url = %args.serve.public_url, "Receiving webhooks.");
    let served = http::serve(listener, http::router(state), stop.clone())
        .await
        .context("HTTP server failed");
    // The receiver stopped (signal or failure): stop the worker too and wait for its batches.
    stop.cancel();
    let worked = worker.await.context("worker task panicked")?;
    tracing::info!("Stopped.");
    served.and(worked)
}

/// The worker until `stop` fires; batches in flight finish first.
///
/// # Errors
/// When PostgreSQL is unreachable at start.
pub async fn worker(args: RunArgs, stop: CancellationToken) -> anyhow::Result<()> {
    let db = crate::db::connect(&args.db).await?;
    crate::db::migrate(&db).await?;
    let deps = worker_deps(db, &args);
    crate::worker::run(
        deps,
        args.broker.amqp_url.expose().clone(),
        args.broker.queue_expires,
        stop,
    )
    .await
}

/// The worker's dependencies for `args` over an open pool.
#[must_use]
pub fn worker_deps(db: sqlx::PgPool, args: &RunArgs) -> crate::worker::Deps {
    crate::worker::Deps {
        db,
        contexts: Arc::new(crate::worker::contexts::Contexts::default()),
        names: Names::new(&args.broker.queue_prefix),
        settings: args.worker.clone(),
        settle_lock: Arc::default(),
        metrics: crate::metrics::Metrics::new(),
    }
}

/// The webhook receiver until `stop` fires.
///
/// # Errors
/// When start-up fails or the server stops with an error.
pub async fn serve(args: RunArgs, stop: CancellationToken) -> anyhow::Result<()> {
    let listener = bind(&args).await?;
    let state = build_state(&args, stop.clone()).await?;
    tracing::info!(address = %args.serve.listen, public_url = %args.serve.public_url, "Receiving webhooks.");
    http::serve(listener, http::router(state), stop)
        .await
        .context("HTTP server failed")?;
    tracing::info!("Receiver stopped.");
    Ok(())
}

async fn bind(args: &RunArgs) -> anyhow::Result<TcpListener> {
    TcpListener::bind(args.serve.listen)
        .await
        .with_context(|| format!("cannot listen on {} (SHOPBRIDGE_LISTEN)", args.serve.listen))
}

/// Connects, migrates and builds the receiver's state. Background tasks stop with `stop`.
///
/// # Errors
/// When PostgreSQL is unreachable or the migration fails.
pub async fn build_state(args: &RunArgs, stop: CancellationToken) -> anyhow::Result<AppState> {
    let db = crate::db::connect(&args.db).await?;
    crate::db::migrate(&db).await?;
    let vault = vault(&args.db);
    let sealed = connections::seal_plaintext_secrets(&db, &vault).await?;
    if sealed > 0 {
        tracing::info!(
            count = sealed,
            "Encrypted signing secrets that were stored in plaintext."
        );
    }
    let cache = Arc::new(ConnectionCache::new(
        db.clone(),
        vault,
        args.serve.connection_cache_ttl,
        args.serve.rate_limit,
    ));
    cache.spawn_listener(stop.clone());
    let metrics = Metrics::new();
    let publisher = Publisher::start(
        PublisherConfig {
            url: args.broker.amqp_url.expose().clone(),
            names: Names::new(&args.broker.queue_prefix),
            queue_expires: args.broker.queue_expires,
            channels: args.serve.publish_channels,
            confirm_timeout: args.serve.confirm_timeout,
            metrics: metrics.clone(),
        },
        stop,
        Duration::from_secs(5),
    )
    .await;
    Ok(AppState {
        db,
        cache,
        publisher,
        metrics,
        settings: Arc::new(args.serve.clone()),
        broker: Arc::new(crate::ops::Broker {
            url: args.broker.amqp_url.expose().clone(),
            names: Names::new(&args.broker.queue_prefix),
        }),
    })
}

/// The vault for the configured master key, warning when there is none.
#[must_use]
pub fn vault(db: &DbSettings) -> Vault {
    match &db.master_key {
        Some(key) => Vault::new(Some(SecretBox::new(key))),
        None => {
            tracing::warn!(
                "SHOPBRIDGE_MASTER_KEY is not set: connection signing secrets are stored unencrypted. \
                 Set it (32 random bytes, base64) to encrypt them at rest."
            );
            Vault::new(None)
        }
    }
}

/// The address a listener bound to, for messages and tests.
///
/// # Errors
/// When the socket has no local address.
pub fn local_addr(listener: &TcpListener) -> anyhow::Result<SocketAddr> {
    listener.local_addr().context("listener has no address")
}
