//! Settings from flags and the environment. Every field is a clap argument with an
//! `SHOPBRIDGE_*` (or `DATABASE_URL`/`AMQP_URL`) variable, so docker compose and the command line
//! speak the same interface. Values are validated here, once, and typed from then on.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use clap::Args;

/// A value that must not reach a log: `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Redacted(value)
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where the system of record lives.
#[derive(Args, Clone, Debug)]
pub struct DbSettings {
    /// PostgreSQL URL. The database is created when it does not exist.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "postgres://postgres@localhost/shopbridge",
        value_parser = parse_redacted,
        hide_env_values = true
    )]
    pub database_url: Redacted<String>,
    /// Largest number of PostgreSQL connections this process opens.
    #[arg(long, env = "SHOPBRIDGE_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,
    /// Key that encrypts connection signing secrets at rest: 32 bytes as base64 or hex. Without
    /// it, secrets are stored unencrypted and a warning is logged at start-up.
    #[arg(long, env = "SHOPBRIDGE_MASTER_KEY", value_parser = parse_master_key, hide_env_values = true)]
    pub master_key: Option<MasterKey>,
}

/// Where the queue lives.
#[derive(Args, Clone, Debug)]
pub struct BrokerSettings {
    /// RabbitMQ URL.
    #[arg(
        long = "amqp-url",
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@localhost:5672/%2f",
        value_parser = parse_redacted,
        hide_env_values = true
    )]
    pub amqp_url: Redacted<String>,
    /// Prefix for every exchange and queue name (e.g. `staging.`); empty in production. At most
    /// 200 bytes, so every name fits AMQP's 255.
    #[arg(long, env = "SHOPBRIDGE_QUEUE_PREFIX", default_value = "", value_parser = parse_queue_prefix)]
    pub queue_prefix: String,
    /// Delete queues unused for this long (sets `x-expires`). For test and demo brokers only:
    /// never set it where events must be kept.
    #[arg(long, env = "SHOPBRIDGE_QUEUE_EXPIRES", value_parser = humantime::parse_duration)]
    pub queue_expires: Option<Duration>,
}

/// The webhook receiver's settings.
#[derive(Args, Clone, Debug)]
pub struct ServeSettings {
    /// Address the HTTP server listens on.
    #[arg(long, env = "SHOPBRIDGE_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Base URL that shops reach this service at; webhook URLs handed to shops start with it.
    #[arg(
        long,
        env = "SHOPBRIDGE_PUBLIC_URL",
        default_value = "http://localhost:8080"
    )]
    pub public_url: String,
    /// Largest webhook body accepted, in bytes; larger ones get 413 without being read.
    #[arg(long, env = "SHOPBRIDGE_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    /// Time a request may take end to end, reading its body included; slower ones get 408.
    #[arg(long, env = "SHOPBRIDGE_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Time to wait for RabbitMQ's publisher confirm before answering 503.
    #[arg(long, env = "SHOPBRIDGE_CONFIRM_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub confirm_timeout: Duration,
    /// Confirm-mode AMQP channels that publishes are spread over.
    #[arg(long, env = "SHOPBRIDGE_PUBLISH_CHANNELS", default_value_t = 2)]
    pub publish_channels: u16,
    /// Webhooks accepted per second and connection before 429 (a burst of one second's worth
    /// is allowed); 0 turns the limit off.
    #[arg(long, env = "SHOPBRIDGE_RATE_LIMIT", default_value_t = 5000)]
    pub rate_limit: u32,
    /// How long a connection's settings and keys are cached before they are read again. Changes
    /// made through shopbridge reach every receiver at once (PostgreSQL NOTIFY); this bounds how
    /// long a change made behind its back goes unseen.
    #[arg(long, env = "SHOPBRIDGE_CONNECTION_CACHE_TTL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub connection_cache_ttl: Duration,
    /// How long a console login lasts before the operator must log in again.
    #[arg(long, env = "SHOPBRIDGE_SESSION_TTL", default_value = "12h", value_parser = humantime::parse_duration)]
    pub session_ttl: Duration,

    /// Address `/metrics` is served on, apart from the webhooks: loopback by default, so only
    /// this machine can scrape it. In a container, listen on `0.0.0.0:9090` and keep the port
    /// off the internet.
    #[arg(
        long,
        env = "SHOPBRIDGE_METRICS_LISTEN",
        default_value = "127.0.0.1:9090"
    )]
    pub metrics_listen: SocketAddr,

    // --- The edge: what unauthenticated clients may cost (see `crate::http::server`). ---
    /// Requests per second and connection that fail signature verification before they get 429
    /// instead of 401 (a one-second burst is allowed); 0 turns the limit off. Kept apart from
    /// `SHOPBRIDGE_RATE_LIMIT`, which only verified webhooks spend, so forged requests cannot
    /// use up a shop's allowance.
    #[arg(
        long,
        env = "SHOPBRIDGE_BAD_SIGNATURE_RATE_LIMIT",
        default_value_t = 10
    )]
    pub bad_signature_rate_limit: u32,
    /// Time a client has to send a request's head (request line and headers) once it started
    /// one, or once its connection was accepted; past it the connection is closed.
    #[arg(long, env = "SHOPBRIDGE_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub header_timeout: Duration,
    /// Time a kept-alive connection may sit idle between requests before it is closed.
    #[arg(long, env = "SHOPBRIDGE_KEEP_ALIVE_TIMEOUT", default_value = "75s", value_parser = parse_positive_duration)]
    pub keep_alive_timeout: Duration,
    /// Open HTTP connections at most; further clients wait to be accepted until one closes.
    #[arg(long, env = "SHOPBRIDGE_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_connections: usize,

    /// Proxies in front of this service whose X-Forwarded-For is believed, as a comma-separated
    /// list of IP addresses and CIDR networks (e.g. `10.0.0.0/8,::1`). The console's login
    /// throttle tells clients apart by the rightmost hop that is not one of them; empty (the
    /// default): by the socket's peer address, and the header is ignored.
    #[arg(long, env = "SHOPBRIDGE_TRUSTED_PROXIES", default_value = "", value_parser = parse_trusted_proxies)]
    pub trusted_proxies: crate::http::client::TrustedProxies,
}

fn parse_trusted_proxies(s: &str) -> Result<crate::http::client::TrustedProxies, String> {
    s.parse()
        .map_err(|e| format!("SHOPBRIDGE_TRUSTED_PROXIES: {e}"))
}

/// The worker's settings.
#[derive(Args, Clone, Debug)]
pub struct WorkerSettings {
    /// Events posted in one database transaction at most.
    #[arg(long, env = "SHOPBRIDGE_BATCH_SIZE", default_value_t = 100, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    pub batch_size: usize,
    /// How long a batch waits to fill before it is posted anyway.
    #[arg(long, env = "SHOPBRIDGE_BATCH_WAIT", default_value = "20ms", value_parser = humantime::parse_duration)]
    pub batch_wait: Duration,
    /// Batches posted at once.
    #[arg(long, env = "SHOPBRIDGE_WORKER_CONCURRENCY", default_value_t = 4, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub concurrency: usize,
    /// Tries of an event that keeps failing transiently before it is dead-lettered.
    #[arg(long, env = "SHOPBRIDGE_MAX_ATTEMPTS", default_value_t = 8)]
    pub max_attempts: u32,
    /// How long one batch's database transaction may take. A database that stops answering
    /// (a network stall, not a refused connection) would otherwise hold the batch's deliveries
    /// unacked for as long as it stalls; past this time the worker drops the connection and
    /// sends the batch's events to their retry delay.
    #[arg(long, env = "SHOPBRIDGE_BATCH_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub batch_timeout: Duration,
}

/// How logs are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors (use it in compose).
    Json,
}

/// The key for [`crate::crypto::SecretBox`]: 32 bytes.
#[derive(Clone)]
pub struct MasterKey(pub [u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// Longest queue prefix: AMQP names are short strings of at most 255 bytes, and the longest
/// name under the prefix (`shopbridge.retry.600s`) must still fit.
const MAX_QUEUE_PREFIX_BYTES: usize = 200;

fn parse_queue_prefix(s: &str) -> Result<String, String> {
    if s.len() > MAX_QUEUE_PREFIX_BYTES {
        return Err(format!(
            "SHOPBRIDGE_QUEUE_PREFIX is {} bytes, more than {MAX_QUEUE_PREFIX_BYTES}",
            s.len()
        ));
    }
    Ok(s.to_owned())
}

/// A duration that is more than zero: a zero timeout would close every connection at once.
fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("must be more than zero".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_redacted(s: &str) -> Result<Redacted<String>, String> {
    Ok(Redacted(s.to_owned()))
}

/// Accepts 32 bytes written as base64 (standard or URL-safe, padded or not) or as 64 hex digits.
fn parse_master_key(s: &str) -> Result<MasterKey, String> {
    let s = s.trim();
    let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(s).map_err(|e| e.to_string())?
    } else {
        let engines = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        engines
            .iter()
            .find_map(|e| e.decode(s).ok())
            .ok_or("SHOPBRIDGE_MASTER_KEY is neither base64 nor 64 hex digits")?
    };
    let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        format!(
            "SHOPBRIDGE_MASTER_KEY must be 32 bytes, got {} (generate one with `openssl rand -base64 32`)",
            b.len()
        )
    })?;
    Ok(MasterKey(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_accepts_base64_and_hex_and_refuses_wrong_lengths() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(parse_master_key(&b64).unwrap().0, [7u8; 32]);
        assert_eq!(parse_master_key(&"ab".repeat(32)).unwrap().0, [0xab; 32]);
        assert!(
            parse_master_key("c2hvcnQ=")
                .unwrap_err()
                .contains("32 bytes")
        );
        assert!(parse_master_key("not a key!").is_err());
    }

    #[test]
    fn a_queue_prefix_too_long_for_amqp_names_is_refused_and_zero_timeouts_too() {
        assert!(parse_queue_prefix(&"p".repeat(200)).is_ok());
        let long = "p".repeat(201);
        assert!(
            parse_queue_prefix(&long)
                .unwrap_err()
                .contains("SHOPBRIDGE_QUEUE_PREFIX")
        );
        // Every name under the longest prefix fits an AMQP short string.
        let names = crate::queue::Names::new(&"p".repeat(200));
        let tier = crate::queue::RETRY_TIERS[crate::queue::RETRY_TIERS.len() - 1];
        assert!(names.retry_queue(tier).len() <= 255);
        assert!(parse_positive_duration("0s").is_err());
        assert_eq!(parse_positive_duration("2s"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn redacted_values_do_not_print() {
        let r = Redacted::new("postgres://user:pw@db/x".to_owned());
        assert_eq!(format!("{r:?}"), "[redacted]");
        assert_eq!(format!("{:?}", MasterKey([1; 32])), "MasterKey([redacted])");
    }
}
