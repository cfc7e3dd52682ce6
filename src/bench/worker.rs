//! `shopbridge bench worker`: fills a queue with realistic events (orders, payments, duplicates,
//! out-of-order updates), then times the worker draining it into vouchers. Runs against a
//! scratch database and queue prefix, both removed afterwards.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{NaiveDate, Utc};
use clap::Args;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::per_sec;
use crate::channel::Channel;
use crate::config::{DbSettings, Redacted, WorkerSettings};
use crate::connections::{self, AddConnection, Vault};
use crate::queue::{Names, Outgoing, RETRY_TIERS, topology};
use crate::samples;

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
        write!(f, "  events: {}", statuses.join(", "))
    }
}

/// Queues the events, runs the worker until they are all posted, reports.
///
/// # Errors
/// When the database or the broker cannot be reached, or the drain stalls for a minute.
pub async fn drain(args: WorkerBenchArgs) -> anyhow::Result<DrainReport> {
    let (url, name) = super::scratch_database_url(args.database_url.expose());
    let settings = DbSettings {
        database_url: Redacted::new(url),
        db_pool_size: 16,
        master_key: None,
    };
    let pool = crate::db::connect(&settings).await?;
    crate::db::migrate(&pool).await?;
    let names = Names::new(&format!("bench-{}.", uuid::Uuid::new_v4().simple()));
    let result = run(&args, &pool, &names).await;
    cleanup(&args, &names).await;
    pool.close().await;
    super::drop_scratch_database(args.database_url.expose(), &name).await;
    result
}

async fn run(
    args: &WorkerBenchArgs,
    pool: &sqlx::PgPool,
    names: &Names,
) -> anyhow::Result<DrainReport> {
    let mut conns = Vec::new();
    for i in 0..args.connections.max(1) {
        let input = AddConnection {
            name: format!("bench-worker-{i}"),
            channel: Channel::Nettbutikk,
            process_orders_from: NaiveDate::from_ymd_opt(2000, 1, 1),
            prepaid_account: None,
            department: None,
            location: None,
        };
        conns.push(
            connections::add(pool, &Vault::default(), input)
                .await?
                .connection
                .id,
        );
    }
    let messages = build_events(args.events, &conns);
    let distinct = messages
        .iter()
        .map(|(o, _)| (o.connection_id, o.event_id.clone()))
        .collect::<std::collections::HashSet<_>>()
        .len();
    let publish_per_sec = publish(args, names, &messages).await?;

    let stop = CancellationToken::new();
    let deps = crate::worker::Deps {
        db: pool.clone(),
        contexts: std::sync::Arc::new(crate::worker::contexts::Contexts::default()),
        names: names.clone(),
        settings: args.worker.clone(),
    };
    let started = Instant::now();
    let worker = tokio::spawn(crate::worker::run(
        deps,
        args.amqp_url.expose().clone(),
        Some(Duration::from_secs(1800)),
        stop.clone(),
    ));
    let mut last = (0, Instant::now());
    loop {
        let done: i64 =
            sqlx::query_scalar("select count(*) from events where status <> 'processing'")
                .fetch_one(pool)
                .await?;
        if usize::try_from(done).unwrap_or(0) >= distinct {
            break;
        }
        if done != last.0 {
            last = (done, Instant::now());
        }
        anyhow::ensure!(
            last.1.elapsed() < Duration::from_secs(60),
            "the drain stalled at {done} of {distinct} events"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    stop.cancel();
    worker.await.context("worker panicked")??;
    let vouchers: i64 = sqlx::query_scalar("select count(*) from vouchers")
        .fetch_one(pool)
        .await?;
    let statuses: Vec<(String, i64)> =
        sqlx::query_as("select status, count(*) from events group by status order by status")
            .fetch_all(pool)
            .await?;
    Ok(DrainReport {
        queued: messages.len(),
        distinct,
        publish_per_sec,
        elapsed,
        vouchers,
        statuses,
    })
}

/// Orders with three extra lines (~1.5 KB), every fourth one paid by a later payment event,
/// every tenth one updated (and the update queued before the original), and one message in
/// twenty a duplicate of an earlier one.
fn build_events(n: usize, conns: &[uuid::Uuid]) -> Vec<(Outgoing, Vec<u8>)> {
    let now = Utc::now();
    let mut out: Vec<(Outgoing, Vec<u8>)> = Vec::with_capacity(n);
    let mut order = 0usize;
    while out.len() < n {
        let i = out.len();
        if i % 20 == 19 {
            let again = out[i / 2].clone();
            out.push(again);
            continue;
        }
        order += 1;
        let conn = conns[order % conns.len()];
        let id = format!("B{order}");
        let sample = samples::order(Channel::Nettbutikk, &id, now, 3);
        let original = message(conn, &sample.event_id, &sample.topic, sample.body.clone());
        if order.is_multiple_of(10) {
            // The update arrives first; the original is then stale.
            let mut v: serde_json::Value = serde_json::from_slice(&sample.body).unwrap_or_default();
            v["id"] = format!("{}-v2", sample.event_id).into();
            v["type"] = "order.updated".into();
            v["data"]["order"]["version"] = 2.into();
            out.push(message(
                conn,
                &format!("{}-v2", sample.event_id),
                "order.updated",
                v.to_string().into_bytes(),
            ));
        }
        out.push(original);
        if order.is_multiple_of(4) {
            let total = 72_600 + 3 * 5_900;
            let pay_id = format!("evt_pay_{order}");
            let body = json!({"type": "payment.captured", "id": pay_id, "occurred_at": now,
                "data": {"payment": {"id": format!("pay_{order}"), "order_id": id,
                    "amount": format!("{}.{:02}", total / 100, total % 100), "currency": "NOK",
                    "method": "card", "fee": "2.50", "captured_at": now}}});
            out.push(message(
                conn,
                &pay_id,
                "payment.captured",
                body.to_string().into_bytes(),
            ));
        }
    }
    out.truncate(n);
    out
}

fn message(
    connection_id: uuid::Uuid,
    event_id: &str,
    topic: &str,
    body: Vec<u8>,
) -> (Outgoing, Vec<u8>) {
    let out = Outgoing {
        event_id: event_id.to_owned(),
        connection_id,
        channel: Channel::Nettbutikk,
        topic: topic.to_owned(),
        received_at: Utc::now(),
        occurred_at: None,
        request_id: None,
    };
    (out, body)
}

async fn publish(
    args: &WorkerBenchArgs,
    names: &Names,
    messages: &[(Outgoing, Vec<u8>)],
) -> anyhow::Result<f64> {
    let conn = Connection::connect(args.amqp_url.expose(), ConnectionProperties::default())
        .await
        .context("cannot connect to RabbitMQ")?;
    let ch = conn.create_channel().await?;
    topology::declare(&ch, names, Some(Duration::from_secs(1800))).await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let started = Instant::now();
    let mut pending = VecDeque::new();
    for (out, body) in messages {
        let confirm = ch
            .basic_publish(
                names.events_exchange.as_str().into(),
                out.routing_key().into(),
                BasicPublishOptions::default(),
                body,
                out.properties(),
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

async fn cleanup(args: &WorkerBenchArgs, names: &Names) {
    let Ok(conn) =
        Connection::connect(args.amqp_url.expose(), ConnectionProperties::default()).await
    else {
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
    }
    conn.close(200, "bench done".into()).await.ok();
}
