//! The confirming publisher. A publish succeeds only when RabbitMQ acked the message and did
//! not return it as unroutable; everything else is an error the receiver turns into 503.
//!
//! The connection is owned by a background task that (re)connects with backoff and declares the
//! topology, so a broker restart heals without restarting shopbridge. While it is down,
//! publishes fail fast instead of queueing up requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{Channel, Confirmation, Connection, ConnectionProperties};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Names, Outgoing, topology};

/// Why a message was not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No broker connection right now; the publisher is reconnecting.
    #[error("the message broker is unavailable")]
    Unavailable,
    /// The broker refused the message (e.g. the queue is full).
    #[error("the broker refused the message")]
    Nacked,
    /// The broker returned the message: no queue is bound to take it.
    #[error("the message was unroutable: {0}")]
    Unroutable(String),
    /// No confirm within the configured time.
    #[error("no publisher confirm within {0:?}")]
    Timeout(Duration),
    /// The event id or topic does not fit AMQP; nothing was sent. The receiver checks this
    /// first and answers 400, so reaching it is a bug, not the broker's fault.
    #[error(transparent)]
    TooLong(#[from] super::TooLong),
    /// The AMQP client failed (connection or channel lost mid-publish).
    #[error("AMQP error")]
    Amqp(#[from] lapin::Error),
}

/// Settings of a [`Publisher`].
#[derive(Clone, Debug)]
pub struct PublisherConfig {
    /// Broker URL.
    pub url: String,
    /// Exchange and queue names.
    pub names: Names,
    /// `x-expires` for declared queues (tests only).
    pub queue_expires: Option<Duration>,
    /// Confirm-mode channels to spread publishes over.
    pub channels: u16,
    /// How long to wait for a confirm.
    pub confirm_timeout: Duration,
    /// Where confirm latencies are recorded.
    pub metrics: crate::metrics::Metrics,
}

struct Live {
    conn: Connection,
    channels: Vec<Channel>,
    next: AtomicUsize,
}

struct Inner {
    config: PublisherConfig,
    live: RwLock<Option<Arc<Live>>>,
    wake: Notify,
    /// Fired by [`Publisher::close`]. Not the process's shutdown signal: requests still in
    /// flight when that fires must be able to publish and get their confirms.
    closed: CancellationToken,
}

/// Publishes events with confirms; cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

impl Publisher {
    /// Starts the publisher and its reconnect task, which runs until [`Publisher::close`]. The
    /// first connection attempt is awaited (up to `connect_wait`), so a healthy broker is ready
    /// at start; a missing one is retried in the background.
    pub async fn start(config: PublisherConfig, connect_wait: Duration) -> Self {
        let publisher = Publisher {
            inner: Arc::new(Inner {
                config,
                live: RwLock::new(None),
                wake: Notify::new(),
                closed: CancellationToken::new(),
            }),
        };
        let stop = publisher.inner.closed.clone();
        let first = tokio::time::timeout(connect_wait, publisher.reconnect()).await;
        if !matches!(first, Ok(Ok(()))) {
            tracing::warn!("RabbitMQ is not reachable yet; retrying in the background.");
        }
        let task = publisher.clone();
        tokio::spawn(async move { task.keep_connected(stop).await });
        publisher
    }

    /// Stops the reconnect task; the connection closes once the publishes in flight are done.
    /// Call it after the HTTP server has finished its requests, so that a webhook whose body
    /// was still arriving when shutdown began is queued (202) rather than refused (503).
    pub fn close(&self) {
        self.inner.closed.cancel();
    }

    /// True while connected to the broker.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.current()
            .is_some_and(|live| live.conn.status().connected())
    }

    /// Publishes `body` as the event `out` and waits for the broker's confirm.
    ///
    /// # Errors
    /// Any [`PublishError`]: the caller answers 503 and the shop retries.
    pub async fn publish(&self, out: &Outgoing, body: &[u8]) -> Result<(), PublishError> {
        let live = self.current().ok_or_else(|| {
            self.inner.wake.notify_one();
            PublishError::Unavailable
        })?;
        let i = live.next.fetch_add(1, Ordering::Relaxed) % live.channels.len();
        let channel = &live.channels[i];
        let started = Instant::now();
        let result = self.publish_on(channel, out, body).await;
        self.inner
            .config
            .metrics
            .confirm(started.elapsed(), result.is_ok());
        match &result {
            Err(PublishError::Timeout(_)) => {
                // No confirm in time: the link may be stalled (a hung network or broker keeps
                // the socket open, and heartbeats notice only after a minute). Give this
                // connection up, so that the next publishes fail fast with 503 instead of each
                // waiting out the timeout, and readiness says so; the background task
                // reconnects. What this connection already sent may still arrive: the shop's
                // resend of a 503 is deduplicated by the worker's inbox.
                self.discard(&live);
                self.inner.wake.notify_one();
            }
            Err(PublishError::Amqp(_)) => {
                // The connection or channel may be gone: let the background task check and heal.
                self.inner.wake.notify_one();
            }
            _ => {}
        }
        result
    }

    async fn publish_on(
        &self,
        channel: &Channel,
        out: &Outgoing,
        body: &[u8],
    ) -> Result<(), PublishError> {
        let config = &self.inner.config;
        // mandatory: an unroutable message comes back instead of vanishing.
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let (routing_key, properties) = (out.routing_key()?, out.properties()?);
        let confirm = channel
            .basic_publish(
                config.names.events_exchange.as_str().into(),
                routing_key,
                options,
                body,
                properties,
            )
            .await?;
        let confirmation = tokio::time::timeout(config.confirm_timeout, confirm)
            .await
            .map_err(|_| PublishError::Timeout(config.confirm_timeout))??;
        match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) => Err(PublishError::Unroutable(
                returned.reply_text.as_str().to_owned(),
            )),
            Confirmation::Nack(_) => Err(PublishError::Nacked),
            // A confirm-mode channel always confirms; treat the impossible as a failure.
            Confirmation::NotRequested => Err(PublishError::Nacked),
        }
    }

    fn current(&self) -> Option<Arc<Live>> {
        self.inner
            .live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, live: Option<Arc<Live>>) {
        *self
            .inner
            .live
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = live;
    }

    /// Stops using `live` if it is still the current connection. In-flight publishes keep
    /// their own reference; the connection closes when the last one drops it.
    fn discard(&self, live: &Arc<Live>) {
        let mut current = self
            .inner
            .live
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, live)) {
            tracing::warn!("No publisher confirm in time; dropping the RabbitMQ connection.");
            *current = None;
        }
    }

    fn healthy(&self) -> bool {
        self.current().is_some_and(|live| {
            live.conn.status().connected() && live.channels.iter().all(|c| c.status().connected())
        })
    }

    async fn keep_connected(&self, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        loop {
            if !self.healthy() {
                self.set(None);
                match self.reconnect().await {
                    Ok(()) => {
                        tracing::info!("Connected to RabbitMQ.");
                        backoff = Duration::from_millis(200);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?backoff, "Cannot connect to RabbitMQ.");
                        tokio::select! {
                            () = stop.cancelled() => break,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        // Publishes still in flight hold their own Arc<Live>; the connection closes after them.
        self.set(None);
    }

    async fn reconnect(&self) -> anyhow::Result<()> {
        let config = &self.inner.config;
        let props =
            ConnectionProperties::default().with_connection_name("shopbridge-publisher".into());
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            Connection::connect(&config.url, props),
        )
        .await
        .map_err(|_| anyhow::anyhow!("connect timed out"))??;
        let setup = conn.create_channel().await?;
        topology::declare(&setup, &config.names, config.queue_expires).await?;
        setup.close(200, "topology declared".into()).await.ok();
        let mut channels = Vec::with_capacity(usize::from(config.channels.max(1)));
        for _ in 0..config.channels.max(1) {
            let channel = conn.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            channels.push(channel);
        }
        self.set(Some(Arc::new(Live {
            conn,
            channels,
            next: AtomicUsize::new(0),
        })));
        Ok(())
    }
}
