//! `shopbridge bench all`: the whole benchmark report in one run. It measures the machine's raw
//! limits, starts shopbridge's own `serve` and `worker` as child processes against a scratch
//! database and queue prefix, drives ingest, end-to-end and backlog-drain loads through them,
//! reads their peak RSS and CPU time, checks the ledger, and prints every figure as a ratio to
//! the raw limit of the same run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;

use super::ingest::{self, IngestReport};
use super::ledger::LedgerCheck;
use super::mix::MixShape;
use super::raw::{self, RawArgs};
use super::report::{AllReport, EndToEnd, RawLimits, Resources, Sizes};
use super::service::{Service, ServiceEnv, Usage, cpu_of};
use super::worker::{Backlog, DrainReport, wait_final};
use super::{Scratch, per_sec};

/// Settings of `bench all`. The children's other settings (`SHOPBRIDGE_BATCH_SIZE`,
/// `SHOPBRIDGE_PUBLISH_CHANNELS`, ...) come from the environment, as for `serve` and `worker`.
#[derive(Args, Debug)]
pub struct AllArgs {
    /// Requests sent at each ingest concurrency level; also the messages published to measure
    /// the broker at the same number in flight.
    #[arg(long, default_value_t = 10_000)]
    pub events: usize,
    /// Ingest concurrency levels (requests in flight), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,64,256")]
    pub concurrency: Vec<usize>,
    /// Shop connections the ingest and end-to-end events are spread over.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Requests of the end-to-end run (64 in flight, worker running).
    #[arg(long, default_value_t = 10_000)]
    pub e2e_events: usize,
    /// Messages queued (no worker running) for the backlog drain.
    #[arg(long, default_value_t = 100_000)]
    pub backlog: usize,
    /// Connections the backlog's events belong to.
    #[arg(long, default_value_t = 4)]
    pub backlog_connections: usize,
    /// Address the `serve` child listens on.
    #[arg(long, default_value = "127.0.0.1:18080")]
    pub listen: SocketAddr,
    /// Address the `serve` child serves `/metrics` on (the confirm latency is read there).
    #[arg(long, default_value = "127.0.0.1:18090")]
    pub metrics_listen: SocketAddr,
    /// Directory for the children's logs (default: a new one under the temp directory).
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    /// Raw limits (message and commit counts) and the PostgreSQL and RabbitMQ URLs.
    #[command(flatten)]
    pub raw: RawArgs,
}

/// Concurrency of the end-to-end run: the goal's.
const E2E_CONCURRENCY: usize = 64;

/// Runs everything, prints the report, and fails when the ledger's invariants do not hold.
///
/// # Errors
/// When a service cannot be reached or started, a phase stalls, or the ledger is wrong.
pub async fn run(args: &AllArgs) -> anyhow::Result<()> {
    let load_before = load_average();
    eprintln!("bench all: load average {load_before}");
    let raw = measure_raw(args).await?;
    let scratch =
        Scratch::create(args.raw.database_url.expose(), args.raw.amqp_url.expose()).await?;
    let measured = measure_service(args, &scratch, raw, load_before).await;
    scratch.remove().await;
    let report = measured?;
    println!("{report}");
    anyhow::ensure!(
        report.ledger.holds(),
        "THE LEDGER IS WRONG after the run: {}",
        report.ledger
    );
    Ok(())
}

/// The raw limits: pipelined confirms and commits as `bench raw` measures them, plus confirms
/// with as many messages in flight as each ingest level has requests.
async fn measure_raw(args: &AllArgs) -> anyhow::Result<RawLimits> {
    eprintln!("raw limits: RabbitMQ confirms pipelined, PostgreSQL commits ...");
    let limits = raw::limits(&args.raw).await?;
    let mut at = Vec::new();
    for &n in &args.concurrency {
        eprintln!("raw limits: RabbitMQ confirms at {n} in flight ...");
        let rate = raw::confirm_rate(
            args.raw.amqp_url.expose(),
            args.events,
            args.raw.message_bytes,
            n,
        )
        .await?;
        at.push((n, rate));
    }
    eprintln!("{limits}");
    Ok(RawLimits {
        limits,
        window: args.raw.window,
        confirms_at: at,
    })
}

/// Everything that runs against the scratch database: ingest, end to end, backlog, ledger.
async fn measure_service(
    args: &AllArgs,
    scratch: &Scratch,
    raw: RawLimits,
    load_before: String,
) -> anyhow::Result<AllReport> {
    let log_dir = match &args.log_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("shopbridge-{}", scratch.prefix)),
    };
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("cannot create {}", log_dir.display()))?;
    let env = ServiceEnv {
        database_url: scratch.database_url.clone(),
        amqp_url: args.raw.amqp_url.expose().clone(),
        queue_prefix: scratch.prefix.clone(),
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        log_dir,
    };
    let mut serve = Service::start("serve", "serve", &env)?;
    serve
        .ready(&env.base_url(), Duration::from_secs(60))
        .await?;
    let cpu_before = serve.usage()?.cpu;
    let ingest_conns = connection_ids(scratch, args.connections, "bench-ingest").await?;
    let mut levels = Vec::new();
    let mut confirm_means = Vec::new();
    for &n in &args.concurrency {
        let before = confirm_totals(&env.metrics_url()).await;
        levels.push(ingest_level(args, &env, &ingest_conns, n).await?);
        let after = confirm_totals(&env.metrics_url()).await;
        confirm_means.push(before.zip(after).map(|((s0, n0), (s1, n1))| {
            Duration::from_secs_f64((s1 - s0).max(0.0) / (n1 - n0).max(1.0))
        }));
    }
    let serve_ingest_cpu = serve.usage()?.cpu.saturating_sub(cpu_before);
    let accepted: usize = levels.iter().map(|l| l.accepted).sum();

    let worker = Service::start("worker", "worker-end-to-end", &env)?;
    let distinct: usize = levels.iter().map(|l| l.accepted_events).sum();
    let label = "posting the ingested events";
    posted(scratch, &ingest_conns.ids, distinct, label, Instant::now()).await?;
    let e2e = end_to_end(args, scratch, &env, &serve, &worker).await?;
    let serve_usage = serve.stop().await?;
    let worker_e2e = worker.stop().await?;

    let (drain, worker_drain, postgres_drain_cpu) = backlog(args, scratch, &env).await?;
    eprintln!("checking the ledger ...");
    let ledger = LedgerCheck::run(&scratch.pool).await?;
    Ok(AllReport {
        raw,
        load: (load_before, load_average()),
        ingest: levels,
        confirm_means,
        e2e,
        drain,
        resources: Resources {
            serve: serve_usage,
            serve_ingest_cpu,
            serve_ingest_accepted: accepted,
            worker_e2e,
            worker_drain,
            postgres_drain_cpu,
        },
        ledger,
        sizes: Sizes {
            connections: args.connections,
            backlog_connections: args.backlog_connections,
            e2e_concurrency: E2E_CONCURRENCY,
        },
    })
}

/// Connections of one phase and their secrets.
struct PhaseConnections {
    added: Vec<crate::connections::Added>,
    ids: Vec<uuid::Uuid>,
}

async fn connection_ids(
    scratch: &Scratch,
    n: usize,
    name: &str,
) -> anyhow::Result<PhaseConnections> {
    let added = scratch.connections(n, name, None).await?;
    let ids = added.iter().map(|a| a.connection.id).collect();
    Ok(PhaseConnections { added, ids })
}

/// One ingest level: the mix at `n` in flight, no worker running.
async fn ingest_level(
    args: &AllArgs,
    env: &ServiceEnv,
    conns: &PhaseConnections,
    n: usize,
) -> anyhow::Result<IngestReport> {
    let shape = MixShape::realistic(conns.added.len(), &format!("L{n}-"));
    let prepared = ingest::prepare(&env.base_url(), &conns.added, args.events, &shape);
    eprintln!("ingest: {} requests at {n} in flight ...", args.events);
    let report = ingest::fire(prepared, n).await;
    eprintln!(
        "ingest: {n} in flight: {:.0} accepted/s, p99 {:.1} ms, {} failed",
        report.accepted_per_sec(),
        ingest::ms(report.quantile(0.99)),
        report.failed
    );
    anyhow::ensure!(
        report.accepted > 0,
        "the service accepted nothing at {n} in flight (see its log in {})",
        env.log_dir.display()
    );
    Ok(report)
}

/// From the first request until the last accepted event has its final status, with `serve` and
/// `worker` both running.
async fn end_to_end(
    args: &AllArgs,
    scratch: &Scratch,
    env: &ServiceEnv,
    serve: &Service,
    worker: &Service,
) -> anyhow::Result<EndToEnd> {
    let conns = connection_ids(scratch, args.connections, "bench-e2e").await?;
    let shape = MixShape::realistic(conns.added.len(), "E");
    let prepared = ingest::prepare(&env.base_url(), &conns.added, args.e2e_events, &shape);
    let (serve_cpu, worker_cpu) = (serve.usage()?.cpu, worker.usage()?.cpu);
    eprintln!(
        "end to end: {} requests at {E2E_CONCURRENCY} in flight, worker running ...",
        args.e2e_events
    );
    let started = Instant::now();
    let ingest = ingest::fire(prepared, E2E_CONCURRENCY).await;
    let elapsed = posted(
        scratch,
        &conns.ids,
        ingest.accepted_events,
        "end to end",
        started,
    )
    .await?;
    Ok(EndToEnd {
        events: ingest.accepted_events,
        elapsed,
        serve_cpu: serve.usage()?.cpu.saturating_sub(serve_cpu),
        worker_cpu: worker.usage()?.cpu.saturating_sub(worker_cpu),
        ingest,
    })
}

/// Queues the backlog with no worker running, then times a fresh `worker` child draining it.
/// Returns the drain, the worker's usage and the CPU time of its PostgreSQL sessions.
async fn backlog(
    args: &AllArgs,
    scratch: &Scratch,
    env: &ServiceEnv,
) -> anyhow::Result<(DrainReport, Usage, Duration)> {
    eprintln!("backlog: queueing {} messages ...", args.backlog);
    let backlog = Backlog::queue(
        scratch,
        args.raw.amqp_url.expose(),
        args.backlog,
        args.backlog_connections,
    )
    .await?;
    eprintln!(
        "backlog: queued at {:.0}/s; starting a worker",
        backlog.publish_per_sec
    );
    let worker = Service::start("worker", "worker-backlog", env)?;
    let started = Instant::now();
    let elapsed = posted(
        scratch,
        &backlog.connections,
        backlog.distinct,
        "backlog drain",
        started,
    )
    .await?;
    let postgres = postgres_cpu(&scratch.pool, &Service::application_name("worker")).await?;
    let usage = worker.stop().await?;
    eprintln!("backlog: writing the drained rows bare (the drain's floor) ...");
    let drain = backlog
        .report(&scratch.pool, elapsed, &worker_settings_from_env()?)
        .await?;
    eprintln!(
        "backlog: {:.0} events/s",
        per_sec(drain.distinct, drain.elapsed)
    );
    Ok((drain, usage, postgres))
}

/// The settings the `worker` child reads from the environment (`SHOPBRIDGE_BATCH_SIZE`, ...).
fn worker_settings_from_env() -> anyhow::Result<crate::config::WorkerSettings> {
    #[derive(clap::Parser)]
    struct FromEnv {
        #[command(flatten)]
        worker: crate::config::WorkerSettings,
    }
    use clap::Parser as _;
    Ok(FromEnv::try_parse_from(["worker"])
        .context("bad worker settings in the environment")?
        .worker)
}

/// Waits until `distinct` events of `connections` are posted, printing progress under `label`;
/// returns the time since `started`.
async fn posted(
    scratch: &Scratch,
    connections: &[uuid::Uuid],
    distinct: usize,
    label: &str,
    started: Instant,
) -> anyhow::Result<Duration> {
    wait_final(&scratch.pool, connections, distinct, Some(label)).await?;
    Ok(started.elapsed())
}

/// CPU time so far of the PostgreSQL backends serving sessions named `application_name`
/// (PostgreSQL runs on this machine; each session is one backend process).
async fn postgres_cpu(pool: &sqlx::PgPool, application_name: &str) -> anyhow::Result<Duration> {
    let pids: Vec<i32> =
        sqlx::query_scalar("select pid from pg_stat_activity where application_name = $1")
            .bind(application_name)
            .fetch_all(pool)
            .await
            .context("cannot list PostgreSQL sessions")?;
    Ok(pids
        .into_iter()
        .filter_map(|pid| u32::try_from(pid).ok())
        .filter_map(|pid| cpu_of(pid).ok())
        .sum())
}

/// Sum (seconds) and count of the publisher-confirm waits `serve` recorded so far, from its
/// `/metrics` (`shopbridge_publish_confirm_seconds`); `None` when it cannot be read.
async fn confirm_totals(metrics_url: &str) -> Option<(f64, f64)> {
    let text = reqwest::get(format!("{metrics_url}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let total = |suffix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("shopbridge_publish_confirm_seconds{suffix}")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Some((total("_sum"), total("_count")))
}

/// `/proc/loadavg`'s three load averages, or `?` where there is none.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".to_owned())
}
