//! The command line: `shopbridge [run]`, `serve`, `migrate`, `connections …`,
//! `send-test-event`, `bench …`. Every setting is also an environment variable.

use std::time::Duration;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use crate::channel::Channel;
pub mod admin;

use crate::config::{BrokerSettings, DbSettings, LogFormat, ServeSettings, WorkerSettings};
use crate::posting::LockedPeriodPolicy;

/// Keeps a webshop and its accounting in step: signed webhooks in, balanced vouchers out.
#[derive(Parser, Debug)]
#[command(
    name = "shopbridge",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Log format: `pretty` for a terminal, `json` for log collectors.
    #[arg(
        long,
        env = "SHOPBRIDGE_LOG_FORMAT",
        value_enum,
        default_value_t,
        global = true
    )]
    pub log_format: LogFormat,
    /// What to do; without one, `run`.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings of `run` when no command is given.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Receiver (and worker) in one process: the default.
    Run(RunArgs),
    /// The webhook receiver only.
    Serve(RunArgs),
    /// The worker only: posts queued events to the ledger.
    Worker(RunArgs),
    /// Apply database migrations and exit.
    Migrate(MigrateArgs),
    /// Add, list, show, enable, disable connections and rotate their secrets.
    #[command(subcommand)]
    Connections(ConnectionsCommand),
    /// See the events received and what became of them.
    #[command(subcommand)]
    Events(EventsCommand),
    /// See the ledger: vouchers and balances.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Lock and unlock accounting periods (months), and list the locked ones.
    #[command(subcommand)]
    Periods(PeriodsCommand),
    /// Export the books: SAF-T Financial for the Tax Administration.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Inspect, replay and purge the dead-letter queue.
    #[command(subcommand)]
    Dlq(admin::DlqCommand),
    /// List, add, remove and test posting rules.
    #[command(subcommand)]
    Rules(admin::RulesCommand),
    /// Create, list and revoke admin API tokens.
    #[command(subcommand)]
    Tokens(admin::TokensCommand),
    /// Create, list and disable the web console's users, and set their passwords.
    #[command(subcommand)]
    Users(admin::UsersCommand),
    /// Post a correctly signed sample event to a running service and print its answer.
    SendTestEvent(SendTestEventArgs),
    /// Load generators that print throughput and latency.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Exit 0 when a running service answers ready, 1 otherwise (for container healthchecks,
    /// where images have no curl).
    Healthcheck {
        /// The readiness URL.
        #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
        url: String,
    },
}

/// Settings of `run` and `serve`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Database settings.
    #[command(flatten)]
    pub db: DbSettings,
    /// Broker settings.
    #[command(flatten)]
    pub broker: BrokerSettings,
    /// HTTP settings.
    #[command(flatten)]
    pub serve: ServeSettings,
    /// Worker settings.
    #[command(flatten)]
    pub worker: WorkerSettings,
}

/// Settings of `migrate`.
#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// Database settings.
    #[command(flatten)]
    pub db: DbSettings,
}

/// Database access plus the public URL, for commands that print webhook URLs.
#[derive(Args, Debug, Clone)]
pub struct OperatorArgs {
    /// Database settings.
    #[command(flatten)]
    pub db: DbSettings,
    /// Base URL that shops reach this service at.
    #[arg(
        long,
        env = "SHOPBRIDGE_PUBLIC_URL",
        default_value = "http://localhost:8080"
    )]
    pub public_url: String,
    /// Print JSON instead of text, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `shopbridge connections …`
#[derive(Subcommand, Debug)]
pub enum ConnectionsCommand {
    /// Add a connection; prints its id, webhook URL, client id and secret (shown once).
    Add {
        /// Name shown to operators.
        #[arg(long)]
        name: String,
        /// Sales channel: nettbutikk, shopify, woocommerce or stripe.
        #[arg(long)]
        channel: Channel,
        /// Orders registered before this date (YYYY-MM-DD) are skipped. Default: today.
        #[arg(long)]
        process_orders_from: Option<NaiveDate>,
        /// Account for prepaid orders. Default: 1522.
        #[arg(long)]
        prepaid_account: Option<String>,
        /// Department ("avdeling") to post with.
        #[arg(long)]
        department: Option<String>,
        /// Location/warehouse ("sted/lager") to post with.
        #[arg(long)]
        location: Option<String>,
        /// An event dated in a locked period: dead_letter (default) or next_open_date.
        #[arg(long)]
        locked_period_policy: Option<LockedPeriodPolicy>,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Change a connection's settings (one or more of them).
    #[command(group(clap::ArgGroup::new("setting").required(true).multiple(true)
        .args(["locked_period_policy", "max_order_amount"])))]
    Set {
        /// The connection's id.
        id: Uuid,
        /// An event dated in a locked period: dead_letter or next_open_date.
        #[arg(long)]
        locked_period_policy: Option<LockedPeriodPolicy>,
        /// Orders whose total (in the company's currency) is above this are dead-lettered for
        /// an operator. Default 1000000.00.
        #[arg(long)]
        max_order_amount: Option<String>,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// List every connection.
    List {
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Show one connection's settings (never its secret).
    Show {
        /// The connection's id.
        id: Uuid,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Disable a connection: its webhooks get 403 and nothing is queued.
    Disable {
        /// The connection's id.
        id: Uuid,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Enable a disabled connection.
    Enable {
        /// The connection's id.
        id: Uuid,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Issue a new signing secret; the old one keeps verifying for a while.
    RotateSecret {
        /// The connection's id.
        id: Uuid,
        /// How long the old secret keeps verifying (e.g. 24h, 30m, 0s).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        keep_old_for: Duration,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Use a secret the platform issued (Shopify app secret, WooCommerce or Stripe endpoint
    /// secret), read from standard input; the old one keeps verifying for a while.
    SetSecret {
        /// The connection's id.
        id: Uuid,
        /// How long the old secret keeps verifying (e.g. 24h, 30m, 0s).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        keep_old_for: Duration,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
}

/// `shopbridge events …`
#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// Events, newest first, with their status and reason.
    List {
        /// Only events of this status: processed, skipped, ignored, duplicate, failed.
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// One event: payload, status, reason and the vouchers it produced.
    Show {
        /// shopbridge's event id, or the shop's.
        id: String,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Queue stored events again (e.g. failed ones after a rule fix).
    Replay(admin::EventsReplayArgs),
}

/// `shopbridge ledger …`
#[derive(Subcommand, Debug)]
pub enum LedgerCommand {
    /// The latest vouchers with their lines.
    Vouchers {
        /// At most this many vouchers.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Debit, credit and balance per account over a period.
    TrialBalance {
        /// First day (YYYY-MM-DD); open when left out.
        #[arg(long)]
        from: Option<NaiveDate>,
        /// Last day (YYYY-MM-DD); open when left out.
        #[arg(long)]
        to: Option<NaiveDate>,
        /// Only lines with this department.
        #[arg(long)]
        department: Option<String>,
        /// Only lines with this location.
        #[arg(long)]
        location: Option<String>,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// One account's lines with a running balance, between its opening and closing balance.
    Account {
        /// The account number (1500).
        number: i32,
        /// First day (YYYY-MM-DD); earlier lines make the opening balance.
        #[arg(long)]
        from: Option<NaiveDate>,
        /// Last day (YYYY-MM-DD); open when left out.
        #[arg(long)]
        to: Option<NaiveDate>,
        /// Only lines with this department.
        #[arg(long)]
        department: Option<String>,
        /// Only lines with this location.
        #[arg(long)]
        location: Option<String>,
        /// The company (id or org number); the default company when left out.
        #[arg(long)]
        company: Option<String>,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
}

/// `shopbridge periods …`
#[derive(Subcommand, Debug)]
pub enum PeriodsCommand {
    /// Lock a month: no voucher can be dated in it until it is unlocked.
    Lock(PeriodArgs),
    /// Unlock a month (logged); dead-lettered events for it can then be replayed.
    Unlock(PeriodArgs),
    /// The locked months.
    List {
        /// The company (id or org number); the default company when left out.
        #[arg(long)]
        company: Option<String>,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
}

/// The month a `periods lock|unlock` acts on.
#[derive(Args, Debug)]
pub struct PeriodArgs {
    /// The month, YYYY-MM.
    #[arg(long, value_parser = parse_month)]
    pub month: NaiveDate,
    /// The company (id or org number); the default company when left out.
    #[arg(long)]
    pub company: Option<String>,
    /// Why, kept in the lock log.
    #[arg(long)]
    pub note: Option<String>,
    /// Who is acting, kept in the lock log. Default: $USER.
    #[arg(long, env = "USER", hide_env_values = true, default_value = "operator")]
    pub by: String,
    /// Common settings.
    #[command(flatten)]
    pub op: OperatorArgs,
}

/// `YYYY-MM` as the month's first day.
///
/// # Errors
/// When `s` is not a month.
pub fn parse_month(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(&format!("{}-01", s.trim()), "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a month (YYYY-MM)"))
}

/// `shopbridge export …`
#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    /// SAF-T Financial 1.30 (Norway) of one company over a period, as XML.
    Saft {
        /// The company (id or org number); the default company when left out.
        #[arg(long)]
        company: Option<String>,
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        from: NaiveDate,
        /// Last day (YYYY-MM-DD), inclusive.
        #[arg(long)]
        to: NaiveDate,
        /// The file to write.
        #[arg(short, long)]
        output: std::path::PathBuf,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
}

/// `shopbridge send-test-event`
#[derive(Args, Debug)]
pub struct SendTestEventArgs {
    /// The connection to send as.
    pub connection_id: Uuid,
    /// Base URL of the running service.
    #[arg(
        long,
        env = "SHOPBRIDGE_PUBLIC_URL",
        default_value = "http://localhost:8080"
    )]
    pub url: String,
    /// Database settings (the connection's secret is read from it).
    #[command(flatten)]
    pub db: DbSettings,
}

/// `shopbridge bench …`
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Send signed ~2 KB order events to a running service; print accepted/s and latency.
    Ingest(crate::bench::IngestArgs),
    /// Fill a queue with events, then time the worker draining it into vouchers.
    Worker(crate::bench::worker::WorkerBenchArgs),
    /// The machine's raw limits: RabbitMQ confirms into a quorum queue, PostgreSQL commits.
    Raw(crate::bench::raw::RawArgs),
    /// The whole report in one run: raw limits; `serve` and `worker` started as child
    /// processes on a scratch database; ingest at 16/64/256 in flight, end to end, a 100 000
    /// message backlog drain, peak RSS and CPU; each figure as a ratio to the raw limit.
    All(crate::bench::all::AllArgs),
}
