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
    let metrics_listener = bind_metrics(&args).await?;
    let state = build_state(&args, stop.clone()).await?;
    let metrics = serve_metrics(metrics_listener, &state, &args, stop.clone());
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
    let limits = http::ConnectionLimits::of(&args.serve);
    let publisher = state.publisher.clone();
    let served = http::serve(listener, http::router(state), limits, stop.clone())
        .await
        .context("HTTP server failed");
    // Its requests are answered: only now may the publisher go.
    publisher.close();
    // The receiver stopped (signal or failure): stop the worker too and wait for its batches.
    stop.cancel();
    let worked = worker.await.context("worker task panicked")?;
    let metrics_served = metrics.await.context("metrics server panicked")?;
    tracing::info!("Stopped.");
    served.and(worked).and(metrics_served)
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
    let metrics_listener = bind_metrics(&args).await?;
    let state = build_state(&args, stop.clone()).await?;
    let metrics = serve_metrics(metrics_listener, &state, &args, stop.clone());
    tracing::info!(address = %args.serve.listen, public_url = %args.serve.public_url, "Receiving webhooks.");
    let limits = http::ConnectionLimits::of(&args.serve);
    let publisher = state.publisher.clone();
    let served = http::serve(listener, http::router(state), limits, stop.clone())
        .await
        .context("HTTP server failed");
    // Its requests are answered: only now may the publisher go.
    publisher.close();
    stop.cancel();
    let metrics_served = metrics.await.context("metrics server panicked")?;
    tracing::info!("Receiver stopped.");
    served.and(metrics_served)
}

async fn bind(args: &RunArgs) -> anyhow::Result<TcpListener> {
    TcpListener::bind(args.serve.listen)
        .await
        .with_context(|| format!("cannot listen on {} (SHOPBRIDGE_LISTEN)", args.serve.listen))
}

/// The metrics listener, bound before anything connects so that a taken address fails at once.
async fn bind_metrics(args: &RunArgs) -> anyhow::Result<TcpListener> {
    let addr = args.serve.metrics_listen;
    anyhow::ensure!(
        addr != args.serve.listen || addr.port() == 0,
        "SHOPBRIDGE_METRICS_LISTEN must differ from SHOPBRIDGE_LISTEN ({addr}): /metrics is not \
         served to the public listener's clients"
    );
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (SHOPBRIDGE_METRICS_LISTEN)"))
}

/// Serves `/metrics` on `listener` until `stop` fires. A failure of this server stops the
/// process too: a receiver that cannot be watched should not run unnoticed.
fn serve_metrics(
    listener: TcpListener,
    state: &AppState,
    args: &RunArgs,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let limits = http::ConnectionLimits::of(&args.serve);
    let address = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let router = http::metrics::router(state);
    tokio::spawn(async move {
        tracing::info!(%address, "Serving /metrics.");
        let served = http::serve(listener, router, limits, stop.clone())
            .await
            .context("metrics server failed");
        stop.cancel();
        served
    })
}

/// Connects, migrates and builds the receiver's state. Background tasks stop with `stop`.
///
/// # Errors
/// When PostgreSQL is unreachable or the migration fails.
pub async fn build_state(args: &RunArgs, stop: CancellationToken) -> anyhow::Result<AppState> {
    let db = crate::db::connect(&args.db).await?;
    crate::db::migrate(&db).await?;
    let vault = vault(&args.db);
    // Without the key that sealed the stored secrets no webhook can be verified: refuse to
    // start, saying what is missing, rather than answer 500 to every shop.
    connections::check_vault(&db, &vault)
        .await
        .context("cannot open the connections' signing secrets")?;
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
        args.serve.bad_signature_rate_limit,
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
