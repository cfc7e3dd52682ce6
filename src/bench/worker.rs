//! `shopbridge bench worker`: fills a queue with realistic events (orders, payments, duplicates,
//! out-of-order updates), then times the worker draining it into vouchers. Runs against a
//! scratch database and queue prefix, both removed afterwards.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{NaiveDate, Utc};
use clap::Args;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{Connection, ConnectionProperties};
use tokio_util::sync::CancellationToken;

use super::floor::{self, FloorReport};
use super::mix::{self, MixShape};
use super::{Scratch, per_sec};
use crate::channel::Channel;
use crate::config::{Redacted, WorkerSettings};
use crate::queue::{Names, Outgoing, topology};
use crate::samples::Sample;

/// Settings of `bench worker`.
#[derive(Args, Debug, Clone)]
pub struct WorkerBenchArgs {
    /// Events to queue (including the duplicates mixed in).
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Connections the events are spread over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// PostgreSQL server (a scratch database is created next to the one named, then dropped).
    #[arg(long = "database-url", env = "DATABASE_URL", default_value = "postgres://postgres@localhost/shopbridge", value_parser = |s: &str| Ok::<_, String>(Redacted::new(s.to_owned())), hide_env_values = true)]
    pub database_url: Redacted<String>,
    /// RabbitMQ URL.
    #[arg(long = "amqp-url", env = "AMQP_URL", default_value = "amqp://guest:guest@localhost:5672/%2f", value_parser = |s: &str| Ok::<_, String>(Redacted::new(s.to_owned())), hide_env_values = true)]
    pub amqp_url: Redacted<String>,
    /// The worker's settings (batch size, concurrency, ...).
    #[command(flatten)]
    pub worker: WorkerSettings,
}

/// What one drain measured.
#[derive(Debug, Clone)]
pub struct DrainReport {
    /// Messages queued (with duplicates).
    pub queued: usize,
    /// Distinct events among them.
    pub distinct: usize,
    /// Rate the backlog was published at (confirmed).
    pub publish_per_sec: f64,
    /// Time from worker start until every distinct event had its final status.
    pub elapsed: Duration,
    /// Vouchers posted.
    pub vouchers: i64,
    /// Events by final status.
    pub statuses: Vec<(String, i64)>,
    /// The same rows written bare, with nothing else to do: the most a drain that writes them
    /// with `insert`s in batches of the same size and concurrency could do.
    pub floor: FloorReport,
}

impl DrainReport {
    /// Distinct events posted per second.
    #[must_use]
    pub fn drain_per_sec(&self) -> f64 {
        per_sec(self.distinct, self.elapsed)
    }
}

impl fmt::Display for DrainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "worker drain: {} messages ({} distinct events) queued at {:.0}/s",
            self.queued, self.distinct, self.publish_per_sec
        )?;
        writeln!(
            f,
            "  drained in {:.2} s: {:.0} events/s, {} vouchers",
            self.elapsed.as_secs_f64(),
            self.drain_per_sec(),
            self.vouchers
        )?;
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        writeln!(f, "  events: {}", statuses.join(", "))?;
        write!(
            f,
            "{}\n  the drain ran at {:.2} × its floor",
            self.floor,
            self.drain_per_sec() / self.floor.events_per_sec()
        )
    }
}

/// Queues the events, runs the worker until they are all posted, reports.
///
/// # Errors
/// When the database or the broker cannot be reached, or the drain stalls for a minute.
pub async fn drain(args: WorkerBenchArgs) -> anyhow::Result<DrainReport> {
    let scratch = Scratch::create(args.database_url.expose(), args.amqp_url.expose()).await?;
    let result = run(&args, &scratch).await;
    scratch.remove().await;
    result
}

async fn run(args: &WorkerBenchArgs, scratch: &Scratch) -> anyhow::Result<DrainReport> {
    let backlog = Backlog::queue(
        scratch,
        args.amqp_url.expose(),
        args.events,
        args.connections,
    )
    .await?;
    let stop = CancellationToken::new();
    let deps = crate::worker::Deps {
        db: scratch.pool.clone(),
        contexts: std::sync::Arc::new(crate::worker::contexts::Contexts::default()),
        names: scratch.names.clone(),
        settings: args.worker.clone(),
        settle_lock: std::sync::Arc::default(),
        metrics: crate::metrics::Metrics::new(),
    };
    let started = Instant::now();
    let worker = tokio::spawn(crate::worker::run(
        deps,
        args.amqp_url.expose().clone(),
        Some(super::QUEUE_EXPIRES),
        stop.clone(),
    ));
    let waited = wait_final(&scratch.pool, &backlog.connections, backlog.distinct, None).await;
    let elapsed = started.elapsed();
    stop.cancel();
    worker.await.context("worker panicked")??;
    waited?;
    backlog.report(&scratch.pool, elapsed, &args.worker).await
}

/// A backlog queued straight into the events queue, as receivers would have queued it.
#[derive(Debug, Clone)]
pub struct Backlog {
    /// Connections the events belong to.
    pub connections: Vec<uuid::Uuid>,
    /// Messages queued (with retries).
    pub queued: usize,
    /// Distinct events among them.
    pub distinct: usize,
    /// Rate the backlog was published at (confirmed).
    pub publish_per_sec: f64,
}

impl Backlog {
    /// Adds `connections` connections to the scratch database and queues `events` messages of
    /// the realistic mix for them under the scratch prefix (declaring the topology).
    ///
    /// # Errors
    /// When the database or the broker cannot be reached, or the broker refuses a message.
    pub async fn queue(
        scratch: &Scratch,
        amqp_url: &str,
        events: usize,
        connections: usize,
    ) -> anyhow::Result<Self> {
        let conns: Vec<uuid::Uuid> = scratch
            .connections(
                connections,
                "bench-worker",
                NaiveDate::from_ymd_opt(2000, 1, 1),
            )
            .await?
            .into_iter()
            .map(|a| a.connection.id)
            .collect();
        let events = mix::build(events, &MixShape::realistic(conns.len(), "B"), Utc::now());
        let messages: Vec<(Outgoing, Vec<u8>)> = events
            .iter()
            .map(|e| message(conns[e.conn], &e.sample))
            .collect();
        let publish_per_sec = publish(amqp_url, &scratch.names, &messages).await?;
        Ok(Backlog {
            connections: conns,
            queued: messages.len(),
            distinct: mix::distinct(&events),
            publish_per_sec,
        })
    }

    /// The report of a drain of this backlog that took `elapsed`, with its floor measured in
    /// batches and at the concurrency of `settings` (the drain's worker's).
    ///
    /// # Errors
    /// When the database cannot be read or written.
    pub async fn report(
        &self,
        pool: &sqlx::PgPool,
        elapsed: Duration,
        settings: &WorkerSettings,
    ) -> anyhow::Result<DrainReport> {
        let vouchers: i64 =
            sqlx::query_scalar("select count(*) from vouchers where connection_id = any($1)")
                .bind(&self.connections)
                .fetch_one(pool)
                .await?;
        let statuses: Vec<(String, i64)> = sqlx::query_as(
            "select status, count(*) from events where connection_id = any($1) \
             group by status order by status",
        )
        .bind(&self.connections)
        .fetch_all(pool)
        .await?;
        let floor = floor::measure(
            pool,
            &self.connections,
            settings.batch_size,
            settings.concurrency,
        )
        .await?;
        Ok(DrainReport {
            queued: self.queued,
            distinct: self.distinct,
            publish_per_sec: self.publish_per_sec,
            elapsed,
            vouchers,
            statuses,
            floor,
        })
    }
}

/// Waits until `distinct` events of `connections` have their final status (not `processing`).
/// With `progress`, prints a line on stderr every few seconds, starting with it.
///
/// The count reads every event of the run, so polling it at a fixed short interval would load
/// the database being measured: for a 100 000-event drain, a tenth of a core. It is polled
/// instead after half the time the drain still needs at its rate so far (at least 20 ms, at
/// most a second), which keeps the end exact to a few tens of milliseconds.
///
/// # Errors
/// When the database cannot be read, or no event was finished for a minute.
pub async fn wait_final(
    pool: &sqlx::PgPool,
    connections: &[uuid::Uuid],
    distinct: usize,
    progress: Option<&str>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut last = (0, Instant::now());
    let mut told = Instant::now();
    loop {
        let done: i64 = sqlx::query_scalar(
            "select count(*) from events where connection_id = any($1) and status <> 'processing'",
        )
        .bind(connections)
        .fetch_one(pool)
        .await?;
        if usize::try_from(done).unwrap_or(0) >= distinct {
            return Ok(());
        }
        if done != last.0 {
            last = (done, Instant::now());
        }
        anyhow::ensure!(
            last.1.elapsed() < Duration::from_secs(60),
            "the drain stalled at {done} of {distinct} events"
        );
        if let Some(label) = progress
            && told.elapsed() >= Duration::from_secs(5)
        {
            eprintln!("{label}: {done} of {distinct} events posted");
            told = Instant::now();
        }
        tokio::time::sleep(next_poll(done, distinct, start.elapsed())).await;
    }
}

/// How long to wait before counting again: half the time the rest needs at the rate so far.
fn next_poll(done: i64, distinct: usize, elapsed: Duration) -> Duration {
    let (least, most) = (Duration::from_millis(20), Duration::from_secs(1));
    let done = u32::try_from(done.max(0)).unwrap_or(u32::MAX);
    let left = u32::try_from(distinct)
        .unwrap_or(u32::MAX)
        .saturating_sub(done);
    if done == 0 {
        return Duration::from_millis(100);
    }
    (elapsed / done)
        .checked_mul(left)
        .map_or(most, |rest| rest / 2)
        .clamp(least, most)
}

fn message(connection_id: uuid::Uuid, sample: &Sample) -> (Outgoing, Vec<u8>) {
    let out = Outgoing {
        event_id: sample.event_id.clone(),
        connection_id,
        channel: Channel::Nettbutikk,
        topic: sample.topic.clone(),
        received_at: Utc::now(),
        occurred_at: None,
        request_id: None,
    };
    (out, sample.body.clone())
}

async fn publish(
    amqp_url: &str,
    names: &Names,
    messages: &[(Outgoing, Vec<u8>)],
) -> anyhow::Result<f64> {
    let conn = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .context("cannot connect to RabbitMQ")?;
    let ch = conn.create_channel().await?;
    topology::declare(&ch, names, Some(super::QUEUE_EXPIRES))
        .await
        .context("cannot declare the bench queues")?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let started = Instant::now();
    let mut pending = VecDeque::new();
    for (out, body) in messages {
        let confirm = ch
            .basic_publish(
                names.events_exchange.as_str().into(),
                out.routing_key()?,
                BasicPublishOptions::default(),
                body,
                out.properties()?,
            )
            .await?;
        pending.push_back(confirm);
        if pending.len() >= 1024
            && let Some(c) = pending.pop_front()
        {
            anyhow::ensure!(c.await?.is_ack(), "the broker refused a bench message");
        }
    }
    for c in pending {
        anyhow::ensure!(c.await?.is_ack(), "the broker refused a bench message");
    }
    let rate = per_sec(messages.len(), started.elapsed());
    conn.close(200, "queued".into()).await.ok();
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drain_is_polled_less_often_while_far_from_its_end() {
        let s = Duration::from_secs;
        // 1000 of 100 000 in a second: 99 s to go, polled at the most once a second.
        assert_eq!(next_poll(1000, 100_000, s(1)), s(1));
        // 99 000 of 100 000 in 24.75 s: 0.25 s to go, polled after half of it.
        assert_eq!(
            next_poll(99_000, 100_000, Duration::from_millis(24_750)),
            Duration::from_millis(125)
        );
        // Nearly done, or nothing done yet.
        assert_eq!(next_poll(99_999, 100_000, s(25)), Duration::from_millis(20));
        assert_eq!(next_poll(0, 100_000, s(1)), Duration::from_millis(100));
    }
}
