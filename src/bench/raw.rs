//! `shopbridge bench raw`: what this machine's RabbitMQ and PostgreSQL can do at most, measured
//! the way shopbridge uses them, so shopbridge's own figures can be read as ratios of these.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use uuid::Uuid;

use super::per_sec;
use crate::config::Redacted;

/// Settings of `bench raw`.
#[derive(Args, Debug, Clone)]
pub struct RawArgs {
    /// Messages to publish.
    #[arg(long, default_value_t = 50_000)]
    pub messages: usize,
    /// Size of each message in bytes.
    #[arg(long, default_value_t = 2048)]
    pub message_bytes: usize,
    /// Unconfirmed publishes in flight at once.
    #[arg(long, default_value_t = 1024)]
    pub window: usize,
    /// Single-voucher transactions to commit.
    #[arg(long, default_value_t = 5_000)]
    pub single_commits: usize,
    /// Batched transactions to commit (100 vouchers each).
    #[arg(long, default_value_t = 300)]
    pub batches: usize,
    /// PostgreSQL server (a scratch database is created next to the one named, then dropped).
    #[arg(long = "database-url", env = "DATABASE_URL", default_value = "postgres://postgres@localhost/shopbridge", value_parser = |s: &str| Ok::<_, String>(Redacted::new(s.to_owned())), hide_env_values = true)]
    pub database_url: Redacted<String>,
    /// RabbitMQ URL.
    #[arg(long = "amqp-url", env = "AMQP_URL", default_value = "amqp://guest:guest@localhost:5672/%2f", value_parser = |s: &str| Ok::<_, String>(Redacted::new(s.to_owned())), hide_env_values = true)]
    pub amqp_url: Redacted<String>,
}

/// The raw limits of one run.
#[derive(Debug, Clone, Copy)]
pub struct RawReport {
    /// Persistent messages confirmed per second into a quorum queue.
    pub confirms_per_sec: f64,
    /// Transactions of one voucher (6 lines) committed per second, 8 at a time.
    pub single_commits_per_sec: f64,
    /// Vouchers per second when 100 share a transaction, 4 transactions at a time.
    pub batched_vouchers_per_sec: f64,
}

impl fmt::Display for RawReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "raw limits:")?;
        writeln!(
            f,
            "  RabbitMQ publish with confirms, quorum queue:  {:>9.0} msg/s",
            self.confirms_per_sec
        )?;
        writeln!(
            f,
            "  PostgreSQL, one voucher per commit:            {:>9.0} tx/s",
            self.single_commits_per_sec
        )?;
        write!(
            f,
            "  PostgreSQL, 100 vouchers per commit:           {:>9.0} vouchers/s",
            self.batched_vouchers_per_sec
        )
    }
}

/// Measures both limits.
///
/// # Errors
/// When the broker or the database cannot be reached.
pub async fn limits(args: &RawArgs) -> anyhow::Result<RawReport> {
    let confirms_per_sec = confirm_rate(
        args.amqp_url.expose(),
        args.messages,
        args.message_bytes,
        args.window,
    )
    .await?;
    let (single, batched) = postgres_commits(args).await?;
    Ok(RawReport {
        confirms_per_sec,
        single_commits_per_sec: single,
        batched_vouchers_per_sec: batched,
    })
}

/// Publishes `messages` persistent messages of `bytes` bytes into a fresh quorum queue on one
/// confirm-mode channel with `window` unconfirmed at once; returns confirmed messages per
/// second. The queue is deleted afterwards.
///
/// # Errors
/// When the broker cannot be reached or refuses the queue.
pub async fn confirm_rate(
    amqp_url: &str,
    messages: usize,
    bytes: usize,
    window: usize,
) -> anyhow::Result<f64> {
    let conn = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .context("cannot connect to RabbitMQ")?;
    let ch = conn.create_channel().await?;
    let queue = format!("bench-{}.raw", Uuid::new_v4().simple());
    let mut qargs = FieldTable::default();
    qargs.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    ch.queue_declare(queue.as_str().into(), QueueDeclareOptions::durable(), qargs)
        .await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let body = vec![b'x'; bytes];
    let props = BasicProperties::default().with_delivery_mode(2);
    let started = Instant::now();
    let mut pending = VecDeque::with_capacity(window);
    let mut acked = 0usize;
    for _ in 0..messages {
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                props.clone(),
            )
            .await?;
        pending.push_back(confirm);
        if pending.len() >= window.max(1)
            && let Some(oldest) = pending.pop_front()
        {
            acked += usize::from(oldest.await?.is_ack());
        }
    }
    for confirm in pending {
        acked += usize::from(confirm.await?.is_ack());
    }
    let rate = per_sec(acked, started.elapsed());
    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .ok();
    conn.close(200, "bench done".into()).await.ok();
    Ok(rate)
}

async fn postgres_commits(args: &RawArgs) -> anyhow::Result<(f64, f64)> {
    let (url, name) = super::scratch_database_url(args.database_url.expose());
    let settings = crate::config::DbSettings {
        database_url: Redacted::new(url),
        db_pool_size: 16,
        master_key: None,
    };
    let pool = crate::db::connect(&settings).await?;
    let result = async {
        sqlx::query(
            "create table raw_vouchers (id uuid primary key, key text unique not null, number int not null, \
             day date not null, description text not null)",
        )
        .execute(&pool)
        .await?;
        sqlx::query(
            "create table raw_lines (voucher_id uuid not null references raw_vouchers (id), line_no int not null, \
             account int not null, amount bigint not null, description text not null, primary key (voucher_id, line_no))",
        )
        .execute(&pool)
        .await?;
        let pool = Arc::new(pool.clone());
        let single = timed(&pool, args.single_commits, 8, 1).await?;
        let batched = timed(&pool, args.batches, 4, 100).await?;
        Ok::<_, anyhow::Error>((per_sec(args.single_commits, single), per_sec(args.batches * 100, batched)))
    }
    .await;
    pool.close().await;
    super::drop_scratch_database(args.database_url.expose(), &name).await;
    result
}

/// Commits `transactions` transactions of `per_tx` vouchers, `parallel` at a time.
async fn timed(
    pool: &Arc<sqlx::PgPool>,
    transactions: usize,
    parallel: usize,
    per_tx: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..parallel {
        let pool = Arc::clone(pool);
        let mine = (p..transactions).step_by(parallel).count();
        tasks.push(tokio::spawn(async move {
            for _ in 0..mine {
                commit_vouchers(&pool, per_tx).await?;
            }
            Ok::<_, sqlx::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(started.elapsed())
}

async fn commit_vouchers(pool: &sqlx::PgPool, n: usize) -> sqlx::Result<()> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let keys: Vec<String> = ids.iter().map(|i| format!("invoice:{i}:1")).collect();
    let (mut lv, mut ln, mut la, mut lm, mut ld) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for id in &ids {
        for (no, (account, amount)) in [
            (1500, 72_600_i64),
            (3000, -39_840),
            (3030, -11_217),
            (3080, -7_920),
            (2700, -11_940),
            (2701, -1_683),
        ]
        .into_iter()
        .enumerate()
        {
            lv.push(*id);
            ln.push(i32::try_from(no).unwrap_or(0));
            la.push(account);
            lm.push(amount);
            ld.push("line");
        }
    }
    let mut tx = pool.begin().await?;
    sqlx::query(
        "insert into raw_vouchers (id, key, number, day, description) \
         select id, key, 1, current_date, 'Faktura' from unnest($1::uuid[], $2::text[]) as u(id, key)",
    )
    .bind(&ids)
    .bind(&keys)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into raw_lines select * from unnest($1::uuid[], $2::int[], $3::int[], $4::bigint[], $5::text[])",
    )
    .bind(&lv)
    .bind(&ln)
    .bind(&la)
    .bind(&lm)
    .bind(&ld)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
