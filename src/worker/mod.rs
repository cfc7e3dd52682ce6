//! The worker: consumes queued events in batches and turns each batch into one PostgreSQL
//! transaction of vouchers (see [`batch`]), then settles every delivery (see [`settle`]):
//! ack after commit, a delayed retry for transient failures, the dead-letter queue with a reason
//! for permanent ones.

pub mod batch;
pub mod contexts;
pub mod incoming;
pub mod settle;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt as _;
use lapin::options::{BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::WorkerSettings;
use crate::db;
use crate::queue::{Names, topology};
use batch::Outcome;
use contexts::Contexts;
use incoming::Incoming;

/// What a batch needs; cheap to clone.
#[derive(Clone)]
pub struct Deps {
    /// The ledger.
    pub db: PgPool,
    /// Cached posting contexts.
    pub contexts: Arc<Contexts>,
    /// Queue names.
    pub names: Names,
    /// Batching, retries.
    pub settings: WorkerSettings,
    /// Held while a delivery is copied to a retry or the dead-letter queue (and its failure
    /// recorded): see [`settle::settle`].
    pub settle_lock: Arc<tokio::sync::Mutex<()>>,
    /// Where flagged postings are counted; shared with the receiver's `/metrics` when both run
    /// in one process.
    pub metrics: crate::metrics::Metrics,
}

/// Consumes until `stop` fires, then finishes the batches in flight and returns. Reconnects to
/// RabbitMQ by itself when the connection drops.
///
/// # Errors
/// Never for broker trouble (it reconnects); only when `stop` is not honoured cleanly.
pub async fn run(
    deps: Deps,
    amqp_url: String,
    queue_expires: Option<Duration>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut backoff = Duration::from_millis(200);
    while !stop.is_cancelled() {
        match consume(&deps, &amqp_url, queue_expires, &stop).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), retry_in = ?backoff, "Worker lost RabbitMQ; reconnecting.");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    tracing::info!("Worker stopped.");
    Ok(())
}

async fn consume(
    deps: &Deps,
    url: &str,
    expires: Option<Duration>,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let conn = Connection::connect(
        url,
        ConnectionProperties::default().with_connection_name("shopbridge-worker".into()),
    )
    .await
    .context("cannot connect to RabbitMQ")?;
    let setup = conn.create_channel().await?;
    topology::declare(&setup, &deps.names, expires)
        .await
        .context("cannot declare the queue topology")?;
    let s = &deps.settings;
    let consumer_channel = conn.create_channel().await?;
    // Prefetch bounds what this worker holds unacked: every batch in flight plus the next one.
    let prefetch = u16::try_from(s.batch_size * (s.concurrency + 1)).unwrap_or(u16::MAX);
    consumer_channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let publisher = conn.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut consumer = consumer_channel
        .basic_consume(
            deps.names.events_queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = %deps.names.events_queue, prefetch, "Worker consuming.");
    let tasks = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(s.concurrency.max(1)));
    let result = loop {
        let first = tokio::select! {
            () = stop.cancelled() => break Ok(()),
            next = consumer.next() => next,
        };
        let Some(first) = first else {
            break Err(anyhow::anyhow!("the broker closed the consumer"));
        };
        let mut batch = vec![Incoming::new(first.context("consumer failed")?)];
        let deadline = tokio::time::Instant::now() + s.batch_wait;
        while batch.len() < s.batch_size {
            match tokio::time::timeout_at(deadline, consumer.next()).await {
                Ok(Some(Ok(d))) => batch.push(Incoming::new(d)),
                Ok(Some(Err(e))) => {
                    tracing::warn!(error = %e, "Consumer failed mid-batch.");
                    break;
                }
                Ok(None) | Err(_) => break,
            }
        }
        let permit = Arc::clone(&slots)
            .acquire_owned()
            .await
            .context("worker slots closed")?;
        let (deps, publisher) = (deps.clone(), publisher.clone());
        tasks.spawn(async move {
            handle(&deps, &publisher, batch).await;
            drop(permit);
        });
    };
    tasks.close();
    tasks.wait().await;
    conn.close(200, "worker stopping".into()).await.ok();
    result
}

/// Processes one batch and settles its deliveries. Never fails: what cannot be settled is
/// nacked back to the queue.
///
/// The deliveries are settled all at once: each one's steps stay in order (a copy confirmed
/// before its original is acked), but a hundred acks awaited one after another cost a hundred
/// round trips to lapin's I/O thread, where together they leave in a few writes. Copies are
/// still published one at a time (see [`settle::settle`]).
pub async fn handle(deps: &Deps, publisher: &Channel, batch: Vec<Incoming>) {
    let outcomes = outcomes(deps, &batch).await;
    futures_util::future::join_all(
        batch
            .iter()
            .zip(outcomes)
            .map(|(item, outcome)| settle::settle(deps, publisher, item, outcome)),
    )
    .await;
}

/// The outcomes of a batch: in one transaction, or, if that fails, each delivery on its own,
/// so one bad event cannot hold up the others.
pub async fn outcomes(deps: &Deps, batch: &[Incoming]) -> Vec<Outcome> {
    match batch::process(deps, batch).await {
        Ok(outcomes) => return outcomes,
        Err(e) if is_outage(&e) && !(e.is::<batch::TimedOut>() && database_answers(deps).await) => {
            // Posting the events one by one would only meet the same outage once per event
            // (each waiting for the pool's acquire timeout): every event goes to its retry delay.
            let reason = format!("{e:#}");
            tracing::warn!(error = %reason, size = batch.len(), "Database unavailable; the batch will be retried.");
            return batch
                .iter()
                .map(|_| Outcome::Unavailable(reason.clone()))
                .collect();
        }
        Err(e) => tracing::warn!(
            error = format!("{e:#}"),
            size = batch.len(),
            "Batch failed; posting its events one by one."
        ),
    }
    let mut out = Vec::with_capacity(batch.len());
    for item in batch {
        let one = std::slice::from_ref(item);
        out.push(match batch::process(deps, one).await {
            Ok(mut o) => o.pop().unwrap_or(Outcome::Retry("no outcome".into())),
            Err(e) if db::is_unavailable(&e) => Outcome::Unavailable(format!("{e:#}")),
            Err(e) if db::is_transient(&e) => Outcome::Retry(format!("{e:#}")),
            Err(e) => {
                // The database refused the event's postings for good (a constraint, a value out
                // of range): retrying cannot help, an operator can. Dead-lettered only once its
                // failure is recorded, so that it shows in `events`; if even that fails, it is
                // retried, and dead-lettered when a later try can record it.
                let reason = format!("the ledger refused the event: {e:#}");
                match settle::record_failure(deps, item, &reason).await {
                    Ok(()) => Outcome::Failed(reason),
                    Err(_) => {
                        Outcome::Retry(format!("{reason} (and its failure could not be recorded)"))
                    }
                }
            }
        });
    }
    out
}

/// True when the database answers a trivial query within two seconds: a batch that timed out
/// while it does was slow on its own (a lock wait, a heavy event), and its events are posted
/// one by one, so that one slow event cannot hold the others back.
async fn database_answers(deps: &Deps) -> bool {
    let ping = async {
        let mut conn = deps.db.acquire().await?;
        sqlx::query("select 1").execute(&mut *conn).await
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), ping).await,
        Ok(Ok(_))
    )
}

/// True when the database could not be reached or stopped answering (see
/// [`crate::db::Failure::Unavailable`]), or the batch's transaction outlived its time limit.
fn is_outage(e: &anyhow::Error) -> bool {
    e.is::<batch::TimedOut>() || db::is_unavailable(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_that_timed_out_counts_as_an_outage() {
        let timed_out = anyhow::Error::new(batch::TimedOut(Duration::from_secs(60)));
        assert!(is_outage(&timed_out));
        assert!(is_outage(&anyhow::Error::new(sqlx::Error::PoolTimedOut)));
        let decode = anyhow::Error::new(sqlx::Error::ColumnNotFound("state".into()));
        assert!(!is_outage(&decode));
    }
}
