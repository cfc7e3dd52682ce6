//! `shopbridge bench ingest`: signed events of the realistic mix ([`super::mix`]) against a
//! running receiver.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Args;

use super::mix::{self, MixShape};
use crate::channel::Channel;
use crate::config::DbSettings;
use crate::connections::{self, Added};
use crate::signature;

/// Settings of `bench ingest`.
#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Base URL of the running service.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Connections to spread the events over (created for the run, disabled after it).
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Requests in all.
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Every n-th request repeats an earlier event (a shop's retry); 0 for none. The rest is
    /// the realistic mix: 1–3 KB orders, early payments, updates before their original.
    #[arg(long, default_value_t = 20)]
    pub duplicate_every: usize,
    /// Database settings (the bench connections are created in it).
    #[command(flatten)]
    pub db: DbSettings,
}

/// What one ingest run measured.
#[derive(Debug)]
pub struct IngestReport {
    /// Requests sent.
    pub requests: usize,
    /// Answered 202.
    pub accepted: usize,
    /// Answered anything else, or failed to connect.
    pub failed: usize,
    /// Distinct events accepted (a retry of an accepted event counts once).
    pub accepted_events: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Sorted latencies of all requests.
    pub latencies: Vec<Duration>,
    /// Concurrency used.
    pub concurrency: usize,
    /// Mean body size in bytes.
    pub body_bytes: usize,
}

impl IngestReport {
    /// The `q`-quantile latency (0.5, 0.99, 0.999).
    #[must_use]
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        // Index arithmetic on a count, not on money.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i =
            ((self.latencies.len() as f64 * q).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        self.latencies[i]
    }

    /// Accepted requests per second.
    #[must_use]
    pub fn accepted_per_sec(&self) -> f64 {
        super::per_sec(self.accepted, self.elapsed)
    }
}

impl std::fmt::Display for IngestReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "ingest: {} requests ({} B bodies) at concurrency {} in {:.2} s",
            self.requests,
            self.body_bytes,
            self.concurrency,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "  accepted: {} ({:.0}/s), failed: {}",
            self.accepted,
            self.accepted_per_sec(),
            self.failed
        )?;
        write!(
            f,
            "  latency p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms",
            ms(self.quantile(0.5)),
            ms(self.quantile(0.99)),
            ms(self.quantile(0.999)),
            ms(self.latencies.last().copied().unwrap_or_default())
        )
    }
}

/// Milliseconds, for display.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One signed request, ready to send.
pub struct Prepared {
    url: String,
    headers: reqwest::header::HeaderMap,
    body: bytes::Bytes,
    /// Connection index and event id: requests with the same key are one event.
    key: (usize, String),
}

/// Creates bench connections, sends the signed events, disables the connections, reports.
///
/// # Errors
/// When the database cannot be reached.
pub async fn ingest(args: IngestArgs) -> anyhow::Result<IngestReport> {
    let pool = crate::db::connect(&args.db).await?;
    crate::db::migrate(&pool).await?;
    let vault = crate::app::vault(&args.db);
    let conns =
        super::add_connections(&pool, &vault, args.connections, "bench-ingest", None).await?;
    let shape = MixShape {
        retry_every: args.duplicate_every,
        ..MixShape::realistic(conns.len(), &format!("I{}-", Utc::now().timestamp()))
    };
    let prepared = prepare(&args.url, &conns, args.requests, &shape);
    let report = fire(prepared, args.concurrency).await;
    for c in &conns {
        connections::set_enabled(&pool, c.connection.id, false)
            .await
            .ok();
    }
    Ok(report)
}

/// `n` requests of the mix `shape` for the service at `base_url`, signed with the secrets of
/// `conns`.
#[must_use]
pub fn prepare(base_url: &str, conns: &[Added], n: usize, shape: &MixShape) -> Vec<Prepared> {
    let now = Utc::now();
    mix::build(n, shape, now)
        .into_iter()
        .map(|e| {
            let c = &conns[e.conn % conns.len()];
            let sample = e.sample;
            let headers = signature::sign(
                Channel::Nettbutikk,
                &c.secret,
                &sample.event_id,
                &sample.topic,
                now,
                &sample.body,
            );
            Prepared {
                url: connections::webhook_url(base_url, c.connection.id),
                headers,
                body: bytes::Bytes::from(sample.body),
                key: (e.conn, sample.event_id),
            }
        })
        .collect()
}

/// Sends `prepared`, `concurrency` requests at a time, and measures.
pub async fn fire(prepared: Vec<Prepared>, concurrency: usize) -> IngestReport {
    let concurrency = concurrency.max(1);
    let body_bytes = prepared.iter().map(|p| p.body.len()).sum::<usize>() / prepared.len().max(1);
    let prepared = Arc::new(prepared);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("a plain HTTP client always builds");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (client, prepared, next) = (client.clone(), Arc::clone(&prepared), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = prepared.get(i) else { break };
                let t = Instant::now();
                let ok = client
                    .post(&p.url)
                    .headers(p.headers.clone())
                    .header("content-type", "application/json")
                    .body(p.body.clone())
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == reqwest::StatusCode::ACCEPTED);
                mine.push((i, t.elapsed(), ok));
            }
            mine
        }));
    }
    let mut latencies = Vec::with_capacity(prepared.len());
    let mut accepted = 0;
    let mut events = HashSet::new();
    for task in tasks {
        for (i, latency, ok) in task.await.unwrap_or_default() {
            latencies.push(latency);
            accepted += usize::from(ok);
            if ok {
                events.insert(&prepared[i].key);
            }
        }
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    IngestReport {
        requests: prepared.len(),
        accepted,
        failed: prepared.len() - accepted,
        accepted_events: events.len(),
        elapsed,
        latencies,
        concurrency,
        body_bytes,
    }
}
