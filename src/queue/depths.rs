//! Queue depths for `/metrics`, read over one long-lived connection.
//!
//! A scrape used to open an AMQP connection, read two depths and close it again: a handshake
//! and a connection churned on the broker every 15 s per receiver, and a broker that is slow to
//! accept connections made every scrape slow. One connection, opened on first use and opened
//! again only after it dropped (or stopped answering), costs the broker nothing between scrapes.

use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;

use super::Names;

/// Messages ready in the events queue and in the dead-letter queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Depths {
    /// Ready in the events queue.
    pub events: u32,
    /// Ready in the dead-letter queue.
    pub dead: u32,
}

/// Why the depths could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DepthError {
    /// RabbitMQ could not be reached, or refused the declare (a queue does not exist yet).
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
    /// No answer within the time limit; the connection is dropped and opened anew next time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

struct Live {
    conn: Connection,
    channel: Channel,
}

/// Reads queue depths over one connection it keeps open; cheap to share behind an `Arc`.
pub struct QueueDepths {
    url: String,
    names: Names,
    /// One read at a time: concurrent scrapes wait for the one in flight instead of each
    /// opening a connection of their own.
    live: Mutex<Option<Live>>,
}

impl std::fmt::Debug for QueueDepths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it holds the broker's credentials.
        f.debug_struct("QueueDepths")
            .field("events_queue", &self.names.events_queue)
            .finish_non_exhaustive()
    }
}

impl QueueDepths {
    /// A reader for the queues under `names`; it connects on first use.
    #[must_use]
    pub fn new(url: String, names: Names) -> Self {
        QueueDepths {
            url,
            names,
            live: Mutex::new(None),
        }
    }

    /// The current depths (passive declares: nothing is created or changed), within `limit`.
    ///
    /// # Errors
    /// When RabbitMQ cannot be reached, a queue does not exist, or no answer came in time. The
    /// next call connects again when the connection was lost or timed out.
    pub async fn read(&self, limit: Duration) -> Result<Depths, DepthError> {
        let mut live = self.live.lock().await;
        match tokio::time::timeout(limit, self.read_on(&mut live)).await {
            Ok(read) => Ok(read?),
            Err(_) => {
                // A broker that accepts bytes but does not answer: start over next time rather
                // than wait on this connection again.
                *live = None;
                Err(DepthError::Timeout(limit))
            }
        }
    }

    async fn read_on(&self, live: &mut Option<Live>) -> lapin::Result<Depths> {
        let l = match live.take() {
            Some(l) if l.conn.status().connected() => live.insert(l),
            _ => live.insert(self.connect().await?),
        };
        // A passive declare of a queue that does not exist (yet) closes the channel, not the
        // connection: open another one on the same connection.
        if !l.channel.status().connected() {
            l.channel = l.conn.create_channel().await?;
        }
        Ok(Depths {
            events: depth(&l.channel, &self.names.events_queue).await?,
            dead: depth(&l.channel, &self.names.dead_queue).await?,
        })
    }

    async fn connect(&self) -> lapin::Result<Live> {
        let props =
            ConnectionProperties::default().with_connection_name("shopbridge-metrics".into());
        let conn = Connection::connect(&self.url, props).await?;
        let channel = conn.create_channel().await?;
        Ok(Live { conn, channel })
    }
}

async fn depth(channel: &Channel, queue: &str) -> lapin::Result<u32> {
    let options = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let q = channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await?;
    Ok(q.message_count())
}
