//! The floor of a drain: how fast PostgreSQL writes the rows a drain wrote, with nothing else to
//! do. After a drain, its events, vouchers, lines and order states are copied into bare tables
//! that keep only the keys posting relies on (each table's primary key, the inbox key and the
//! vouchers' idempotency key), with no foreign keys, triggers or other indexes, in transactions
//! of the worker's batch size, as many at once as the worker runs. No broker, no worker code, no
//! checks: a drain that writes these rows with `insert`s in such batches cannot go faster on the
//! same machine (bigger batches or `COPY` might), so the floor's ratio to the raw batched commit
//! rate bounds the drain's ratio from above.
//!
//! The copy runs inside PostgreSQL (`insert … select`), so it also reads the drained rows; the
//! raw commits instead send theirs from the client. Both ways PostgreSQL parses no JSON and runs
//! no trigger; reading a row by key costs it less than receiving and decoding it. To find a
//! batch's vouchers by event, the drained `vouchers` get one more index before the clock starts
//! (dropped afterwards, with the copies).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use uuid::Uuid;

use super::per_sec;
use super::service::cpu_of;

/// What the floor measured.
#[derive(Debug, Clone, Copy)]
pub struct FloorReport {
    /// Events copied (with their vouchers, lines and order states).
    pub events: usize,
    /// Rows copied in all.
    pub rows: i64,
    /// Vouchers among them.
    pub vouchers: i64,
    /// Voucher lines among them.
    pub lines: i64,
    /// Time the copy took.
    pub elapsed: Duration,
    /// CPU time of the PostgreSQL backends that wrote the copy (PostgreSQL runs on this
    /// machine; zero where their `/proc` entries cannot be read).
    pub postgres_cpu: Duration,
}

impl FloorReport {
    /// Events written per second.
    #[must_use]
    pub fn events_per_sec(&self) -> f64 {
        per_sec(self.events, self.elapsed)
    }

    /// Per event: vouchers and lines.
    #[must_use]
    pub fn shape(&self) -> (f64, f64) {
        #[allow(clippy::cast_precision_loss)] // counts, for display
        let (events, vouchers, lines) = (
            self.events.max(1) as f64,
            self.vouchers as f64,
            self.lines as f64,
        );
        (vouchers / events, lines / events)
    }
}

impl fmt::Display for FloorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (vouchers, lines) = self.shape();
        write!(
            f,
            "drain floor: the drain's rows written bare: {:.0} events/s ({} events, {:.2} vouchers \
             and {:.1} lines each, {} rows, {:.2} s); PostgreSQL CPU {:.0} ms per 1000 events",
            self.events_per_sec(),
            self.events,
            vouchers,
            lines,
            self.rows,
            self.elapsed.as_secs_f64(),
            super::report::per_thousand(self.postgres_cpu, self.events)
        )
    }
}

/// Bare copies of the drain's tables: columns and the keys posting relies on.
const TABLES: &str = "
    create table floor_events (like events including defaults, primary key (id),
        unique (connection_id, source_event_id));
    create table floor_vouchers (like vouchers including defaults, primary key (id),
        unique (connection_id, idempotency_key));
    create table floor_lines (like voucher_lines including defaults,
        primary key (voucher_id, line_no));
    create table floor_orders (like orders including defaults,
        primary key (connection_id, order_id));
    create index floor_source_event on vouchers (source_event);
";

const DROP: &str = "
    drop table if exists floor_events, floor_vouchers, floor_lines, floor_orders;
    drop index if exists floor_source_event;
";

/// One transaction: a batch of events with their vouchers and lines, and a share of the order
/// states (an order's state is written with each of its events; the floor writes it once).
const COPY_EVENTS: &str = "insert into floor_events select * from events where id = any($1)";
const COPY_VOUCHERS: &str =
    "insert into floor_vouchers select * from vouchers where source_event = any($1)";
const COPY_LINES: &str = "insert into floor_lines select l.* from vouchers v \
     join voucher_lines l on l.voucher_id = v.id where v.source_event = any($1)";
const COPY_ORDERS: &str = "insert into floor_orders select o.* from orders o \
     join unnest($1::uuid[], $2::text[]) k (c, id) on o.connection_id = k.c and o.order_id = k.id";

/// Copies the rows of `connections`' events, `batch` events per transaction and `parallel`
/// transactions at once, then drops the copies.
///
/// # Errors
/// A database error.
pub async fn measure(
    pool: &sqlx::PgPool,
    connections: &[Uuid],
    batch: usize,
    parallel: usize,
) -> anyhow::Result<FloorReport> {
    sqlx::raw_sql(DROP).execute(pool).await?;
    sqlx::raw_sql(TABLES)
        .execute(pool)
        .await
        .context("cannot create the floor's tables")?;
    // The copy holds one pooled session per task; the bench's pools have 16.
    let result = copy(pool, connections, batch.max(1), parallel.clamp(1, 16)).await;
    sqlx::raw_sql(DROP).execute(pool).await.ok();
    result
}

async fn copy(
    pool: &sqlx::PgPool,
    connections: &[Uuid],
    batch: usize,
    parallel: usize,
) -> anyhow::Result<FloorReport> {
    let events: Vec<Uuid> =
        sqlx::query_scalar("select id from events where connection_id = any($1) order by id")
            .bind(connections)
            .fetch_all(pool)
            .await?;
    let orders: Vec<(Uuid, String)> = sqlx::query_as(
        "select connection_id, order_id from orders where connection_id = any($1) \
         order by connection_id, order_id",
    )
    .bind(connections)
    .fetch_all(pool)
    .await?;
    anyhow::ensure!(!events.is_empty(), "the drain wrote no events to copy");
    sqlx::query("analyze events, vouchers, voucher_lines, orders")
        .execute(pool)
        .await?;
    let batches = events.len().div_ceil(batch).max(1);
    let per_batch = orders.len().div_ceil(batches).max(1);
    let mut work: Vec<(Vec<Uuid>, Vec<Uuid>, Vec<String>)> = events
        .chunks(batch)
        .map(|ids| (ids.to_vec(), Vec::new(), Vec::new()))
        .collect();
    for (slot, chunk) in work.iter_mut().zip(orders.chunks(per_batch)) {
        (slot.1, slot.2) = chunk.iter().cloned().unzip();
    }
    let work = Arc::new(work);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..parallel {
        let (pool, work) = (pool.clone(), Arc::clone(&work));
        tasks.push(tokio::spawn(async move {
            // One session per task, so its backend's CPU time is the task's.
            let mut conn = pool.acquire().await?;
            let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
                .fetch_one(&mut *conn)
                .await?;
            let backend = u32::try_from(pid).ok();
            let cpu = || backend.and_then(|pid| cpu_of(pid).ok()).unwrap_or_default();
            let cpu_before = cpu();
            let mut rows = 0u64;
            for (ids, conns, orders) in work.iter().skip(p).step_by(parallel) {
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                for sql in [COPY_EVENTS, COPY_VOUCHERS, COPY_LINES] {
                    rows += sqlx::query(sql)
                        .bind(ids)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                rows += sqlx::query(COPY_ORDERS)
                    .bind(conns)
                    .bind(orders)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>((rows, cpu().saturating_sub(cpu_before)))
        }));
    }
    // Every task ends before the copies are dropped, also when one of them failed.
    let (mut rows, mut postgres_cpu) = (0u64, Duration::ZERO);
    for done in futures_util::future::join_all(tasks).await {
        let (r, c) = done??;
        rows += r;
        postgres_cpu += c;
    }
    let elapsed = started.elapsed();
    let count = |table: &'static str| async move {
        sqlx::query_scalar::<_, i64>(&format!("select count(*) from {table}"))
            .fetch_one(pool)
            .await
    };
    let (vouchers, lines) = (count("floor_vouchers").await?, count("floor_lines").await?);
    Ok(FloorReport {
        events: events.len(),
        rows: i64::try_from(rows).unwrap_or(i64::MAX),
        vouchers,
        lines,
        elapsed,
        postgres_cpu,
    })
}
