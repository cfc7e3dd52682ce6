//! The operators' commands that resend, delete or edit: `events show|replay`, `dlq …`,
//! `rules …`, `tokens …`. Commands that resend or delete only say what they would do unless
//! given `--execute`.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};
use uuid::Uuid;

use super::OperatorArgs;
use crate::channel::Channel;
use crate::config::BrokerSettings;

/// Database and broker access, for commands that touch the queues.
#[derive(Args, Debug, Clone)]
pub struct QueueArgs {
    /// Database settings and output format.
    #[command(flatten)]
    pub op: OperatorArgs,
    /// Broker settings.
    #[command(flatten)]
    pub broker: BrokerSettings,
}

/// Reads `2026-03-01` (midnight UTC) or an RFC 3339 time.
///
/// # Errors
/// Neither form.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        .map_err(|_| format!("`{s}` is neither YYYY-MM-DD nor an RFC 3339 time"))
}

/// How long to follow a replay: `--wait` alone waits up to a minute.
#[derive(Args, Debug, Clone)]
pub struct WaitArg {
    /// After republishing, wait (up to this long, default 60s) for the worker and report what
    /// became of each event: posted, duplicate, failed again.
    #[arg(long, num_args = 0..=1, default_missing_value = "60s", value_parser = humantime::parse_duration)]
    pub wait: Option<Duration>,
}

/// `shopbridge events replay`
#[derive(Args, Debug)]
pub struct EventsReplayArgs {
    /// One event (shopbridge's id); otherwise give filters.
    pub id: Option<Uuid>,
    /// Only events with this status (e.g. failed).
    #[arg(long)]
    pub status: Option<String>,
    /// Only this connection's events.
    #[arg(long)]
    pub connection: Option<Uuid>,
    /// Only this topic (event type).
    #[arg(long)]
    pub topic: Option<String>,
    /// Only events received from this time (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<DateTime<Utc>>,
    /// Only events received until this time (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<DateTime<Utc>>,
    /// At most this many (newest).
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    /// Republish; without it, only show what would happen.
    #[arg(long)]
    pub execute: bool,
    /// Following the outcome.
    #[command(flatten)]
    pub wait: WaitArg,
    /// Database and broker.
    #[command(flatten)]
    pub q: QueueArgs,
}

/// Which dead letters.
#[derive(Args, Debug, Clone)]
pub struct DeadFilterArgs {
    /// Only this event (the shop's event id).
    #[arg(long)]
    pub event: Option<String>,
    /// Only this connection's.
    #[arg(long)]
    pub connection: Option<Uuid>,
    /// Only this topic (event type).
    #[arg(long)]
    pub topic: Option<String>,
    /// Only those whose reason contains this text.
    #[arg(long)]
    pub reason: Option<String>,
    /// Only those dead-lettered from this time (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<DateTime<Utc>>,
    /// Only those dead-lettered until this time (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<DateTime<Utc>>,
    /// At most this many.
    #[arg(long)]
    pub limit: Option<u32>,
}

/// `shopbridge dlq …`
#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// Show dead letters (nothing is removed).
    List {
        /// Which.
        #[command(flatten)]
        filter: DeadFilterArgs,
        /// Database and broker.
        #[command(flatten)]
        q: QueueArgs,
    },
    /// Send dead letters back to the worker (after fixing their cause).
    Replay {
        /// Which.
        #[command(flatten)]
        filter: DeadFilterArgs,
        /// Replay; without it, only show what would be replayed.
        #[arg(long)]
        execute: bool,
        /// Following the outcome.
        #[command(flatten)]
        wait: WaitArg,
        /// Database and broker.
        #[command(flatten)]
        q: QueueArgs,
    },
    /// Delete dead letters for good (their events stay in the events table).
    Purge {
        /// Which.
        #[command(flatten)]
        filter: DeadFilterArgs,
        /// Delete; without it, only show what would be deleted.
        #[arg(long)]
        execute: bool,
        /// Database and broker.
        #[command(flatten)]
        q: QueueArgs,
    },
}

/// A rule's criteria and placement.
#[derive(Args, Debug, Clone)]
pub struct RuleArgs {
    /// Account to post to (must be in the chart).
    #[arg(long)]
    pub account: i64,
    /// Only for this connection.
    #[arg(long)]
    pub connection: Option<Uuid>,
    /// Line kind: goods, shipping, fee, discount, payment, refund.
    #[arg(long)]
    pub kind: Option<String>,
    /// Lines with this VAT code.
    #[arg(long)]
    pub vat_code: Option<i32>,
    /// Lines with this VAT rate, in percent.
    #[arg(long)]
    pub vat_rate: Option<String>,
    /// Lines whose SKU starts with this.
    #[arg(long)]
    pub sku_prefix: Option<String>,
    /// Lines of this product group.
    #[arg(long)]
    pub product_group: Option<String>,
    /// Payments by this method.
    #[arg(long)]
    pub payment_method: Option<String>,
    /// Post with this VAT code instead of the line's.
    #[arg(long)]
    pub set_vat_code: Option<i32>,
    /// Post with this department.
    #[arg(long)]
    pub department: Option<String>,
    /// Post with this location.
    #[arg(long)]
    pub location: Option<String>,
}

/// `shopbridge rules …`
#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// The posting rules.
    List {
        /// Only those that apply to this connection.
        #[arg(long)]
        connection: Option<Uuid>,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Add a rule.
    Add {
        /// The rule.
        #[command(flatten)]
        rule: RuleArgs,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Delete a rule.
    Remove {
        /// The rule's id.
        id: i64,
        /// Delete; without it, only show the rule.
        #[arg(long)]
        execute: bool,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Dry run: which rule places each line of a sample order file, and why.
    Test {
        /// The sample: a webhook body as the channel sends it.
        file: PathBuf,
        /// The channel whose format the file is in.
        #[arg(long, default_value = "nettbutikk")]
        channel: Channel,
        /// The topic (default: the body's `type`, or `orders/create` / `order.created`).
        #[arg(long)]
        topic: Option<String>,
        /// Whose rules and settings (default: the first connection of the channel).
        #[arg(long)]
        connection: Option<Uuid>,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
}

/// `shopbridge tokens …`
#[derive(Subcommand, Debug)]
pub enum TokensCommand {
    /// Create an admin API token; it is printed once.
    Create {
        /// Who or what it is for.
        #[arg(long)]
        name: String,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// List tokens (never the tokens themselves).
    List {
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Revoke a token: it answers 401 from now on.
    Revoke {
        /// The token's id.
        id: Uuid,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
}

/// `shopbridge users …`
#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Create a console user. The password is asked for twice at a terminal (not echoed), or
    /// read as the first line of standard input when that is not a terminal.
    Create {
        /// The user's email, which is also the login name.
        #[arg(long)]
        email: String,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// List console users (never their passwords).
    List {
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Give a user a new password (asked for as by `create`); their sessions end.
    SetPassword {
        /// The user's email.
        #[arg(long)]
        email: String,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Disable a user: they cannot log in, and their sessions end.
    Disable {
        /// The user's email.
        #[arg(long)]
        email: String,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
    /// Enable a user again: they can log in with their password, at once even if their address
    /// was waiting after failed logins (also for a user who was never disabled).
    Enable {
        /// The user's email.
        #[arg(long)]
        email: String,
        /// Common settings.
        #[command(flatten)]
        op: OperatorArgs,
    },
}
