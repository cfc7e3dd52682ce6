//! Operator actions that resend events, shared by the CLI (`commands`) and the admin API
//! (`http::admin`): replay from the dead-letter queue ([`dlq`]) and from the stored events
//! ([`stored`]), and following what the worker made of a replay ([`track`]). Each action returns
//! a report ([`ReplayReport`]) that both front ends print as they like.
//!
//! Why a replay is always safe: the worker's inbox admits an event id once per connection (a
//! `failed` row is admitted again, which is what a replay is for), and every voucher carries a
//! unique business key. So republishing an event can post what is missing and nothing twice;
//! and a dead letter is acked only after its republished copy was confirmed by the broker, so a
//! crash in between leaves two copies (harmless) and never none.

pub mod books;
pub mod dlq;
pub mod stored;
pub mod tokens;
pub mod track;
pub mod views;

use chrono::{DateTime, Utc};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::queue::Names;

/// Why an operator action failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// RabbitMQ could not be reached, or a channel failed.
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
    /// The broker did not confirm a republished message (nack, unroutable, no confirm): the
    /// dead letter was left in place.
    #[error("the broker did not take the republished message: {0}")]
    NotConfirmed(String),
    /// PostgreSQL failed.
    #[error("database error")]
    Db(#[from] sqlx::Error),
    /// The queue does not exist on this broker: no shopbridge service has declared it, or the
    /// command runs with another prefix or vhost than the services.
    #[error(
        "queue `{0}` does not exist on this broker yet: `shopbridge run`, `serve` or `worker` \
         declares it when it starts, so start one with the same AMQP_URL and \
         SHOPBRIDGE_QUEUE_PREFIX, or give this command the ones the service runs with"
    )]
    QueueMissing(String),
}

/// Where the queues are: what replay and the DLQ commands need of the broker.
#[derive(Clone, Debug)]
pub struct Broker {
    /// AMQP URL.
    pub url: String,
    /// Exchange and queue names under the deployment's prefix.
    pub names: Names,
}

impl Broker {
    /// A connection with one confirm-mode channel to publish on and one to read queues with.
    ///
    /// # Errors
    /// When RabbitMQ cannot be reached.
    pub async fn open(&self) -> Result<Session, OpsError> {
        let props = ConnectionProperties::default().with_connection_name("shopbridge-ops".into());
        let conn = Connection::connect(&self.url, props).await?;
        let publisher = conn.create_channel().await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let reader = conn.create_channel().await?;
        Ok(Session {
            conn,
            publisher,
            reader,
        })
    }

    /// Messages ready in the events queue and in the DLQ (passive declares: nothing is
    /// created or changed).
    ///
    /// # Errors
    /// When RabbitMQ cannot be reached or a queue does not exist yet.
    pub async fn depths(&self) -> Result<(u32, u32), OpsError> {
        let session = self.open().await?;
        let events = session.depth(&self.names.events_queue).await?;
        let dead = session.depth(&self.names.dead_queue).await?;
        session.close().await;
        Ok((events, dead))
    }
}

/// An open connection of an operator action.
pub struct Session {
    conn: Connection,
    /// Confirm-mode channel for republishing.
    pub publisher: Channel,
    /// Channel for reading (basic.get) queues.
    pub reader: Channel,
}

impl Session {
    /// Ready messages in `queue`.
    ///
    /// # Errors
    /// When the queue does not exist or the channel fails.
    pub async fn depth(&self, queue: &str) -> Result<u32, OpsError> {
        let options = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let q = self
            .reader
            .queue_declare(queue.into(), options, FieldTable::default())
            .await
            .map_err(|e| missing_or(e, queue))?;
        Ok(q.message_count())
    }

    /// Closes the connection; unacked deliveries go back to their queues.
    pub async fn close(self) {
        self.conn.close(200, "done".into()).await.ok();
    }
}

/// [`OpsError::QueueMissing`] when the broker answered a passive declare of `queue` with 404
/// (an operator's first `dlq list` before any service ran), else the AMQP error as it is.
fn missing_or(e: lapin::Error, queue: &str) -> OpsError {
    use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
    match e.kind() {
        lapin::ErrorKind::ProtocolError(amqp)
            if *amqp.kind() == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND) =>
        {
            OpsError::QueueMissing(queue.to_owned())
        }
        _ => OpsError::Amqp(e),
    }
}

/// Publishes `body` with `props` on a confirm-mode channel and waits for the broker's ack.
///
/// # Errors
/// [`OpsError::NotConfirmed`] on a nack or a return; [`OpsError::Amqp`] when the channel fails.
pub async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    props: BasicProperties,
) -> Result<(), OpsError> {
    let options = BasicPublishOptions {
        mandatory: true, // an unroutable message comes back instead of vanishing
        ..BasicPublishOptions::default()
    };
    let confirmation = channel
        .basic_publish(exchange.into(), routing_key.into(), options, body, props)
        .await?
        .await?;
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(returned)) => Err(OpsError::NotConfirmed(format!(
            "unroutable: {}",
            returned.reply_text.as_str()
        ))),
        Confirmation::Nack(_) | Confirmation::NotRequested => {
            Err(OpsError::NotConfirmed("the broker refused it".into()))
        }
    }
}

/// What became of one replayed (or, in a dry run, replayable) event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplayResult {
    /// Dry run: it would be republished.
    WouldReplay,
    /// Republished; its outcome was not awaited.
    Republished,
    /// The worker posted it now (vouchers lists what was posted).
    Posted,
    /// It was done before: the inbox saw a duplicate and nothing changed.
    Duplicate,
    /// The worker skipped it (cut-off date, stale version).
    Skipped,
    /// A topic shopbridge does not post.
    Ignored,
    /// It failed again; `detail` says why.
    Failed,
    /// No final status within the wait.
    Pending,
    /// The message carries no connection or event id, so its outcome cannot be followed.
    Untracked,
}

/// One event of a replay.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReplayedEvent {
    /// The shop's event id (the AMQP message id).
    pub event_id: Option<String>,
    /// The connection it arrived on.
    pub connection_id: Option<Uuid>,
    /// Its topic.
    pub topic: Option<String>,
    /// Its status in the events table before the replay (`None`: no row).
    pub status_before: Option<String>,
    /// Why it failed before (the dead letter's or the stored reason).
    pub reason_before: Option<String>,
    /// What happened.
    pub result: ReplayResult,
    /// The reason of a failure, or what a dry run expects.
    pub detail: Option<String>,
    /// Vouchers the replay posted: `series year-number key`.
    pub vouchers: Vec<String>,
}

/// Counts of a replay by result.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct Totals {
    /// Dry run: would be republished.
    pub would_replay: usize,
    /// Republished, outcome not awaited.
    pub republished: usize,
    /// Posted by the replay.
    pub posted: usize,
    /// Already done: nothing changed.
    pub duplicate: usize,
    /// Skipped or ignored by the worker.
    pub skipped: usize,
    /// Failed again.
    pub failed: usize,
    /// No final status within the wait.
    pub pending: usize,
    /// Outcome cannot be followed.
    pub untracked: usize,
}

/// What a replay did (or, unless executed, would do).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReplayReport {
    /// `dlq` or `events`.
    pub source: String,
    /// False for a dry run: nothing was sent or removed.
    pub executed: bool,
    /// Events that matched the filter.
    pub matched: usize,
    /// Events republished to the events exchange.
    pub republished: usize,
    /// Dead letters left in the DLQ untouched (did not match, or not reached).
    pub left_in_queue: usize,
    /// Counts by result.
    pub totals: Totals,
    /// Every matched event.
    pub events: Vec<ReplayedEvent>,
}

impl ReplayReport {
    fn new(source: &str, executed: bool) -> Self {
        ReplayReport {
            source: source.to_owned(),
            executed,
            matched: 0,
            republished: 0,
            left_in_queue: 0,
            totals: Totals::default(),
            events: Vec::new(),
        }
    }

    /// Recounts `totals` from `events`.
    pub fn count(&mut self) {
        let mut t = Totals::default();
        for e in &self.events {
            match e.result {
                ReplayResult::WouldReplay => t.would_replay += 1,
                ReplayResult::Republished => t.republished += 1,
                ReplayResult::Posted => t.posted += 1,
                ReplayResult::Duplicate => t.duplicate += 1,
                ReplayResult::Skipped | ReplayResult::Ignored => t.skipped += 1,
                ReplayResult::Failed => t.failed += 1,
                ReplayResult::Pending => t.pending += 1,
                ReplayResult::Untracked => t.untracked += 1,
            }
        }
        self.totals = t;
    }
}

/// Progress of a long action, for a progress bar; the API passes [`no_progress`].
#[derive(Clone, Copy, Debug)]
pub enum Step {
    /// A phase starts with this many items.
    Begin(u64, &'static str),
    /// One more item done.
    Advance,
    /// The phase is over.
    Done,
}

/// Reports progress.
pub type Progress<'a> = &'a (dyn Fn(Step) + Send + Sync);

/// Progress nobody watches.
pub fn no_progress(_: Step) {}

/// A time filter bound (`since`/`until`) holds for `at`.
fn within(
    at: Option<DateTime<Utc>>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> bool {
    match at {
        Some(at) => since.is_none_or(|s| at >= s) && until.is_none_or(|u| at <= u),
        None => since.is_none() && until.is_none(),
    }
}
