//! The figures of one `bench all` run, each printed with its ratio to the same run's raw limit,
//! and the goals judged met or not met.

use std::fmt;
use std::time::Duration;

use super::ingest::{IngestReport, ms};
use super::ledger::LedgerCheck;
use super::per_sec;
use super::raw::RawReport;
use super::service::Usage;
use super::worker::DrainReport;

/// Ingest goal: accepted/s at 64 in flight as a share of the raw pipelined confirm rate.
pub const INGEST_RATIO_GOAL: f64 = 0.7;
/// Ingest goal: p99 latency at 64 in flight.
pub const INGEST_P99_GOAL: Duration = Duration::from_millis(25);
/// The concurrency the ingest goals are judged at.
pub const GOAL_CONCURRENCY: usize = 64;
/// Drain goal: distinct events/s as a share of the raw batched commit rate (vouchers/s).
pub const DRAIN_RATIO_GOAL: f64 = 0.5;
/// Memory goal: peak RSS of each shopbridge process, in bytes (100 MB).
pub const RSS_GOAL_BYTES: u64 = 100_000_000;

/// The raw limits of the run.
#[derive(Debug, Clone)]
pub struct RawLimits {
    /// What `bench raw` measures: pipelined confirms, single and batched commits.
    pub limits: RawReport,
    /// Confirms in flight of the pipelined measurement.
    pub window: usize,
    /// Confirms per second with n messages in flight, for each ingest level n.
    pub confirms_at: Vec<(usize, f64)>,
}

impl RawLimits {
    /// The confirm rate measured with `n` messages in flight, if it was.
    #[must_use]
    pub fn confirms_at(&self, n: usize) -> Option<f64> {
        self.confirms_at
            .iter()
            .find_map(|&(at, rate)| (at == n).then_some(rate))
    }
}

/// The end-to-end run: requests in, events posted.
#[derive(Debug)]
pub struct EndToEnd {
    /// Distinct events accepted (and then posted).
    pub events: usize,
    /// From the first request until the last of them had its final status.
    pub elapsed: Duration,
    /// CPU time of `serve` during the run.
    pub serve_cpu: Duration,
    /// CPU time of `worker` during the run.
    pub worker_cpu: Duration,
    /// The requests' own figures.
    pub ingest: IngestReport,
}

/// Memory and CPU of the children.
#[derive(Debug, Clone, Copy)]
pub struct Resources {
    /// `serve` over its whole life (ingest and end to end).
    pub serve: Usage,
    /// CPU time of `serve` during the ingest levels.
    pub serve_ingest_cpu: Duration,
    /// Requests `serve` accepted during the ingest levels.
    pub serve_ingest_accepted: usize,
    /// The `worker` of the end-to-end run (it also posted the ingest levels' events).
    pub worker_e2e: Usage,
    /// The `worker` that drained the backlog.
    pub worker_drain: Usage,
    /// CPU time of the PostgreSQL backends of the draining worker.
    pub postgres_drain_cpu: Duration,
}

/// Sizes of the run that the report names.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Shop connections of ingest and end to end.
    pub connections: usize,
    /// Connections of the backlog.
    pub backlog_connections: usize,
    /// Requests in flight in the end-to-end run.
    pub e2e_concurrency: usize,
}

/// Everything one `bench all` run measured.
#[derive(Debug)]
pub struct AllReport {
    /// The raw limits.
    pub raw: RawLimits,
    /// Load averages (1, 5, 15 min) before and after the run.
    pub load: (String, String),
    /// Ingest, one report per concurrency level.
    pub ingest: Vec<IngestReport>,
    /// Mean wait for the broker's confirm inside `serve`, per ingest level (from its metrics).
    pub confirm_means: Vec<Option<Duration>>,
    /// End to end.
    pub e2e: EndToEnd,
    /// The backlog drain.
    pub drain: DrainReport,
    /// Memory and CPU.
    pub resources: Resources,
    /// The ledger's invariants after the run.
    pub ledger: LedgerCheck,
    /// Sizes of the run.
    pub sizes: Sizes,
}

impl AllReport {
    /// The ingest level at `n` in flight, if measured.
    #[must_use]
    pub fn ingest_at(&self, n: usize) -> Option<&IngestReport> {
        self.ingest.iter().find(|r| r.concurrency == n)
    }

    /// Largest peak RSS of the children, in bytes.
    #[must_use]
    pub fn peak_rss_bytes(&self) -> u64 {
        let r = &self.resources;
        [r.serve, r.worker_e2e, r.worker_drain]
            .iter()
            .map(|u| u.peak_rss_kib * 1024)
            .max()
            .unwrap_or(0)
    }

    fn write_raw(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = &self.raw.limits;
        writeln!(f, "raw limits")?;
        writeln!(
            f,
            "  RabbitMQ confirms, quorum queue, 2 KB, {} in flight: {:>8.0} msg/s",
            self.raw.window, raw.confirms_per_sec
        )?;
        for &(n, rate) in &self.raw.confirms_at {
            writeln!(
                f,
                "  RabbitMQ confirms, quorum queue, 2 KB, {n:>4} in flight: {rate:>8.0} msg/s"
            )?;
        }
        writeln!(
            f,
            "  PostgreSQL, one voucher per commit (8 at once):     {:>8.0} tx/s",
            raw.single_commits_per_sec
        )?;
        writeln!(
            f,
            "  PostgreSQL, 100 vouchers per commit (4 at once):    {:>8.0} vouchers/s",
            raw.batched_vouchers_per_sec
        )
    }

    fn write_ingest(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let confirms = self.raw.limits.confirms_per_sec;
        writeln!(
            f,
            "ingest: `serve` alone, {} connections, 1–3 KB signed events, 5 % retries, early payments and updates",
            self.sizes.connections
        )?;
        writeln!(
            f,
            "  in flight  accepted/s  × raw pipelined  × raw same in flight    p50 ms    p99 ms  p99.9 ms  failed  confirm wait ms"
        )?;
        for (i, r) in self.ingest.iter().enumerate() {
            let confirm = self
                .confirm_means
                .get(i)
                .copied()
                .flatten()
                .map_or_else(|| "-".to_owned(), |d| format!("{:.1}", ms(d)));
            let rate = r.accepted_per_sec();
            let same = self
                .raw
                .confirms_at(r.concurrency)
                .map_or_else(|| "-".to_owned(), |raw| format!("{:.2}", rate / raw));
            writeln!(
                f,
                "  {:>9}  {:>10.0}  {:>15.2}  {:>19}  {:>8.1}  {:>8.1}  {:>8.1}  {:>6}  {confirm:>15}",
                r.concurrency,
                rate,
                rate / confirms,
                same,
                ms(r.quantile(0.5)),
                ms(r.quantile(0.99)),
                ms(r.quantile(0.999)),
                r.failed
            )?;
        }
        Ok(())
    }

    fn write_flow(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = &self.raw.limits;
        let e2e = &self.e2e;
        let e2e_rate = per_sec(e2e.events, e2e.elapsed);
        writeln!(
            f,
            "end to end: `serve` + `worker`, {} requests at {} in flight, {} distinct events accepted",
            e2e.ingest.requests, self.sizes.e2e_concurrency, e2e.events
        )?;
        writeln!(
            f,
            "  first request to last event posted: {:.2} s = {e2e_rate:.0} events/s \
             ({:.2} × raw pipelined confirms, {:.2} × raw batched commits); requests alone {:.0}/s, p99 {:.1} ms",
            e2e.elapsed.as_secs_f64(),
            e2e_rate / raw.confirms_per_sec,
            e2e_rate / raw.batched_vouchers_per_sec,
            e2e.ingest.accepted_per_sec(),
            ms(e2e.ingest.quantile(0.99)),
        )?;
        let d = &self.drain;
        let statuses: Vec<String> = d.statuses.iter().map(|(s, n)| format!("{s} {n}")).collect();
        writeln!(
            f,
            "backlog drain: {} messages ({} distinct events, {} connections) queued at {:.0}/s, then a fresh `worker`",
            d.queued, d.distinct, self.sizes.backlog_connections, d.publish_per_sec
        )?;
        writeln!(
            f,
            "  drained in {:.2} s: {:.0} events/s = {:.2} × raw batched commits ({:.2} × raw single commits); \
             {} vouchers; events: {}",
            d.elapsed.as_secs_f64(),
            d.drain_per_sec(),
            d.drain_per_sec() / raw.batched_vouchers_per_sec,
            d.drain_per_sec() / raw.single_commits_per_sec,
            d.vouchers,
            statuses.join(", ")
        )?;
        let floor = d.floor.events_per_sec();
        writeln!(
            f,
            "  {}\n  floor = {:.2} × raw batched commits; the drain ran at {:.2} × its floor",
            d.floor,
            floor / raw.batched_vouchers_per_sec,
            d.drain_per_sec() / floor
        )
    }

    fn write_resources(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.resources;
        let e2e = &self.e2e;
        writeln!(f, "resources (peak RSS = VmHWM just before SIGTERM)")?;
        writeln!(
            f,
            "  serve:           peak RSS {:>6.1} MB; CPU {:.0} ms per 1000 accepted (ingest), {:.0} ms per 1000 events (end to end)",
            mb(r.serve),
            per_thousand(r.serve_ingest_cpu, r.serve_ingest_accepted),
            per_thousand(e2e.serve_cpu, e2e.events)
        )?;
        writeln!(
            f,
            "  worker (e2e):    peak RSS {:>6.1} MB; CPU {:.0} ms per 1000 events (end to end)",
            mb(r.worker_e2e),
            per_thousand(e2e.worker_cpu, e2e.events)
        )?;
        writeln!(
            f,
            "  worker (drain):  peak RSS {:>6.1} MB; CPU {:.0} ms per 1000 events; its PostgreSQL backends {:.0} ms per 1000 events",
            mb(r.worker_drain),
            per_thousand(r.worker_drain.cpu, self.drain.distinct),
            per_thousand(r.postgres_drain_cpu, self.drain.distinct)
        )
    }

    fn write_goals(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = &self.raw.limits;
        writeln!(f, "goals")?;
        if let Some(r) = self.ingest_at(GOAL_CONCURRENCY) {
            let ratio = r.accepted_per_sec() / raw.confirms_per_sec;
            goal(
                f,
                &format!(
                    "ingest at {GOAL_CONCURRENCY} ≥ {INGEST_RATIO_GOAL} × raw confirms: {ratio:.2}"
                ),
                ratio >= INGEST_RATIO_GOAL,
            )?;
            let p99 = r.quantile(0.99);
            goal(
                f,
                &format!(
                    "ingest p99 at {GOAL_CONCURRENCY} ≤ {} ms: {:.1} ms",
                    INGEST_P99_GOAL.as_millis(),
                    ms(p99)
                ),
                p99 <= INGEST_P99_GOAL,
            )?;
        } else {
            writeln!(f, "  ingest at {GOAL_CONCURRENCY}: not measured")?;
        }
        let ratio = self.drain.drain_per_sec() / raw.batched_vouchers_per_sec;
        goal(
            f,
            &format!(
                "drain ≥ {DRAIN_RATIO_GOAL} × raw batched commits: {ratio:.2} (its floor: {:.2})",
                self.drain.floor.events_per_sec() / raw.batched_vouchers_per_sec
            ),
            ratio >= DRAIN_RATIO_GOAL,
        )?;
        let rss = self.peak_rss_bytes();
        goal(
            f,
            &format!(
                "peak RSS ≤ {} MB: {:.1} MB",
                RSS_GOAL_BYTES / 1_000_000,
                bytes_mb(rss)
            ),
            rss <= RSS_GOAL_BYTES,
        )
    }
}

impl fmt::Display for AllReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "shopbridge bench all — load average {} before, {} after",
            self.load.0, self.load.1
        )?;
        self.write_raw(f)?;
        self.write_ingest(f)?;
        self.write_flow(f)?;
        self.write_resources(f)?;
        let verdict = if self.ledger.holds() {
            "holds"
        } else {
            "BROKEN"
        };
        writeln!(f, "ledger {verdict}: {}", self.ledger)?;
        self.write_goals(f)
    }
}

fn goal(f: &mut fmt::Formatter<'_>, what: &str, met: bool) -> fmt::Result {
    writeln!(f, "  {what:<58} {}", if met { "met" } else { "NOT MET" })
}

/// Milliseconds of CPU per 1000 of `n` things.
pub(crate) fn per_thousand(cpu: Duration, n: usize) -> f64 {
    cpu.as_secs_f64() * 1_000_000.0 / per_sec(n, Duration::from_secs(1)).max(1.0)
}

fn mb(usage: Usage) -> f64 {
    bytes_mb(usage.peak_rss_kib * 1024)
}

fn bytes_mb(bytes: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)] // a byte count, for display
    let bytes = bytes as f64;
    bytes / 1_000_000.0
}
