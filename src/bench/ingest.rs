//! `shopbridge bench ingest`: signed order events against a running receiver.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use clap::Args;

use crate::channel::Channel;
use crate::config::DbSettings;
use crate::connections::{self, AddConnection};
use crate::{samples, signature};

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
    /// Every n-th request repeats an earlier event (a shop's retry); 0 for none.
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
        #[allow(clippy::cast_precision_loss)]
        let n = self.accepted as f64;
        n / self.elapsed.as_secs_f64().max(1e-9)
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Prepared {
    url: String,
    headers: reqwest::header::HeaderMap,
    body: bytes::Bytes,
}

/// Creates bench connections, sends the signed events, disables the connections, reports.
///
/// # Errors
/// When the database cannot be reached.
pub async fn ingest(args: IngestArgs) -> anyhow::Result<IngestReport> {
    let pool = crate::db::connect(&args.db).await?;
    crate::db::migrate(&pool).await?;
    let vault = crate::app::vault(&args.db);
    let mut conns = Vec::new();
    for i in 0..args.connections.max(1) {
        let input = AddConnection {
            name: format!("bench-ingest-{i}"),
            channel: Channel::Nettbutikk,
            process_orders_from: None,
            prepaid_account: None,
            department: None,
            location: None,
        };
        let added = connections::add(&pool, &vault, input)
            .await
            .context("cannot create a bench connection")?;
        conns.push(added);
    }
    let now = Utc::now();
    let mut prepared: Vec<Prepared> = Vec::with_capacity(args.requests);
    for i in 0..args.requests {
        if args.duplicate_every > 0 && i > 0 && i % args.duplicate_every == 0 {
            let again = &prepared[i / 2];
            prepared.push(Prepared {
                url: again.url.clone(),
                headers: again.headers.clone(),
                body: again.body.clone(),
            });
            continue;
        }
        let c = &conns[i % conns.len()];
        let sample = samples::order(Channel::Nettbutikk, &format!("B{i}"), now, 12);
        let headers = signature::sign(
            Channel::Nettbutikk,
            &c.secret,
            &sample.event_id,
            &sample.topic,
            now,
            &sample.body,
        );
        prepared.push(Prepared {
            url: connections::webhook_url(&args.url, c.connection.id),
            headers,
            body: bytes::Bytes::from(sample.body),
        });
    }
    let body_bytes = prepared.iter().map(|p| p.body.len()).sum::<usize>() / prepared.len().max(1);
    let report = fire(Arc::new(prepared), args.concurrency.max(1), body_bytes).await;
    for c in &conns {
        connections::set_enabled(&pool, c.connection.id, false)
            .await
            .ok();
    }
    Ok(report)
}

async fn fire(prepared: Arc<Vec<Prepared>>, concurrency: usize, body_bytes: usize) -> IngestReport {
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
                mine.push((t.elapsed(), ok));
            }
            mine
        }));
    }
    let mut latencies = Vec::with_capacity(prepared.len());
    let mut accepted = 0;
    for task in tasks {
        for (latency, ok) in task.await.unwrap_or_default() {
            latencies.push(latency);
            accepted += usize::from(ok);
        }
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    IngestReport {
        requests: prepared.len(),
        accepted,
        failed: prepared.len() - accepted,
        elapsed,
        latencies,
        concurrency,
        body_bytes,
    }
}
