//! `TestApp`: a real shopbridge on a free port, with its own database and queue prefix, and
//! typed helpers to drive and inspect it.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeleteOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use shopbridge::channel::Channel;
use shopbridge::cli::RunArgs;
use shopbridge::config::{BrokerSettings, DbSettings, Redacted, ServeSettings, WorkerSettings};
use shopbridge::connections::{self, AddConnection, Added};
use shopbridge::http::AppState;
use shopbridge::queue::{Names, RETRY_TIERS};
use shopbridge::signature::Secret;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// PostgreSQL server URL without a database; `TEST_DATABASE_URL` overrides.
pub fn pg_server() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// RabbitMQ URL; `TEST_AMQP_URL` overrides.
pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// The broker's address, for proxies.
pub fn amqp_addr() -> SocketAddr {
    let url = amqp_url();
    let host_port = url
        .split('@')
        .next_back()
        .unwrap_or(&url)
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:5672");
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5672")
    };
    std::net::ToSocketAddrs::to_socket_addrs(&host_port)
        .ok()
        .and_then(|mut a| a.next())
        .expect("TEST_AMQP_URL names a reachable host")
}

/// PostgreSQL's address, for proxies.
#[allow(dead_code)] // used by tests/faults
pub fn pg_addr() -> SocketAddr {
    let url = pg_server();
    let host_port = url
        .split('@')
        .next_back()
        .unwrap_or(&url)
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:5432");
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    std::net::ToSocketAddrs::to_socket_addrs(&host_port)
        .ok()
        .and_then(|mut a| a.next())
        .expect("TEST_DATABASE_URL names a reachable host")
}

/// A message taken off a queue.
#[derive(Debug)]
pub struct Message {
    pub body: Vec<u8>,
    pub properties: BasicProperties,
}

impl Message {
    pub fn header(&self, key: &str) -> Option<String> {
        shopbridge::queue::header_str(&self.properties, key).map(str::to_owned)
    }
    pub fn message_id(&self) -> Option<String> {
        self.properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_owned())
    }
}

/// Options for [`TestApp::spawn_with`].
#[derive(Clone)]
pub struct Options {
    pub amqp_url: String,
    /// PostgreSQL server URL (no database) the app uses, e.g. through a fault proxy; the test's
    /// own checks can still go direct ([`TestApp::direct_db`]).
    pub pg_server: String,
    pub request_timeout: Duration,
    pub body_limit: usize,
    pub rate_limit: u32,
    pub bad_signature_rate_limit: u32,
    pub header_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_connections: usize,
    /// The master key the app starts with (`None`: started without one).
    pub master_key: Option<shopbridge::config::MasterKey>,
    pub confirm_timeout: Duration,
    pub worker: bool,
    pub max_attempts: u32,
    pub batch_timeout: Duration,
    /// `SHOPBRIDGE_TRUSTED_PROXIES`.
    pub trusted_proxies: &'static str,
}

impl Options {
    /// The receiver alone: events stay on the queue for the test to inspect.
    pub fn receiver() -> Options {
        Options {
            worker: false,
            ..Options::default()
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            amqp_url: amqp_url(),
            pg_server: pg_server(),
            request_timeout: Duration::from_secs(10),
            body_limit: 1024 * 1024,
            rate_limit: 0,
            bad_signature_rate_limit: 0,
            header_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(75),
            max_connections: 1024,
            master_key: Some(shopbridge::config::MasterKey([42; 32])),
            confirm_timeout: Duration::from_secs(5),
            worker: true,
            max_attempts: 5,
            batch_timeout: Duration::from_secs(60),
            trusted_proxies: "",
        }
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub url: String,
    /// Base URL of the metrics listener (`/metrics`).
    pub metrics_url: String,
    pub db: PgPool,
    #[allow(dead_code)] // kept for tests that inspect metrics or the cache
    pub state: AppState,
    pub names: Names,
    pub stop: CancellationToken,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    pub client: reqwest::Client,
    /// Drops the test's database when the app is dropped: after `cleanup`, or while a failed
    /// test unwinds.
    database: DatabaseGuard,
    args: RunArgs,
    worker: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    worker_stop: CancellationToken,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(opts: Options) -> TestApp {
        if std::env::var_os("TEST_LOG").is_some() {
            // Logs of the app under test, when asked for: TEST_LOG=1 cargo test -- --nocapture
            let _ = tracing_subscriber::fmt()
                .with_test_writer()
                .with_env_filter("shopbridge=debug")
                .try_init();
        }
        let id = Uuid::new_v4().simple().to_string();
        let db_name = format!("shopbridge_test_{id}");
        // Armed before the database exists, so that a panic while the app starts drops it too.
        let database = DatabaseGuard::new(&db_name);
        let prefix = format!("test-{id}.");
        let args = RunArgs {
            db: DbSettings {
                database_url: Redacted::new(format!("{}/{db_name}", opts.pg_server)),
                db_pool_size: 8,
                master_key: opts.master_key.clone(),
            },
            broker: BrokerSettings {
                amqp_url: Redacted::new(opts.amqp_url.clone()),
                queue_prefix: prefix.clone(),
                // Queues of a test vanish a while after it ends, even if it panicked.
                queue_expires: Some(Duration::from_secs(300)),
            },
            serve: ServeSettings {
                listen: "127.0.0.1:0".parse().unwrap(),
                public_url: "http://127.0.0.1".into(),
                body_limit: opts.body_limit,
                request_timeout: opts.request_timeout,
                confirm_timeout: opts.confirm_timeout,
                publish_channels: 2,
                rate_limit: opts.rate_limit,
                connection_cache_ttl: Duration::from_secs(60),
                session_ttl: Duration::from_secs(3600),
                metrics_listen: "127.0.0.1:0".parse().unwrap(),
                bad_signature_rate_limit: opts.bad_signature_rate_limit,
                header_timeout: opts.header_timeout,
                keep_alive_timeout: opts.keep_alive_timeout,
                max_connections: opts.max_connections,
                trusted_proxies: opts.trusted_proxies.parse().expect("trusted proxies"),
            },
            worker: WorkerSettings {
                batch_size: 50,
                batch_wait: Duration::from_millis(10),
                concurrency: 2,
                max_attempts: opts.max_attempts,
                batch_timeout: opts.batch_timeout,
            },
        };
        let stop = CancellationToken::new();
        let state = shopbridge::app::build_state(&args, stop.clone())
            .await
            .expect("app starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = shopbridge::http::router(state.clone());
        let limits = shopbridge::http::ConnectionLimits::of(&args.serve);
        let server = tokio::spawn(shopbridge::http::serve(
            listener,
            router,
            limits,
            stop.clone(),
        ));
        let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_url = format!("http://{}", metrics_listener.local_addr().unwrap());
        tokio::spawn(shopbridge::http::serve(
            metrics_listener,
            shopbridge::http::metrics::router(&state),
            limits,
            stop.clone(),
        ));
        let worker_stop = stop.child_token();
        let worker = opts
            .worker
            .then(|| Self::start_worker(&args, &state, worker_stop.clone()));
        TestApp {
            addr,
            url: format!("http://{addr}"),
            metrics_url,
            db: state.db.clone(),
            state,
            names: Names::new(&prefix),
            stop,
            server,
            client: reqwest::Client::new(),
            database,
            args,
            worker,
            worker_stop,
        }
    }

    fn start_worker(
        args: &RunArgs,
        state: &AppState,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        // One process's metrics, as `shopbridge run` shares them between its two roles.
        let mut deps = shopbridge::app::worker_deps(state.db.clone(), args);
        deps.metrics = state.metrics.clone();
        let url = args.broker.amqp_url.expose().clone();
        tokio::spawn(shopbridge::worker::run(
            deps,
            url,
            args.broker.queue_expires,
            stop,
        ))
    }

    #[allow(dead_code)] // used by tests/faults
    /// The settings the app runs with (database and broker URLs, queue prefix), e.g. to start
    /// a worker as a separate process with the same environment.
    pub fn args(&self) -> &RunArgs {
        &self.args
    }

    /// The name of the test's database.
    #[allow(dead_code)] // used by tests/api/setup.rs, not by tests/faults
    pub fn db_name(&self) -> &str {
        &self.database.name
    }

    /// What the metrics listener's `/metrics` answers.
    pub async fn metrics(&self) -> String {
        let resp = self
            .client
            .get(format!("{}/metrics", self.metrics_url))
            .send()
            .await
            .expect("the metrics listener answers");
        assert_eq!(resp.status(), reqwest::StatusCode::OK, "GET /metrics");
        resp.text().await.expect("metrics are text")
    }

    /// The URL of the test's database.
    pub fn db_url(&self) -> String {
        format!("{}/{}", pg_server(), self.database.name)
    }

    #[allow(dead_code)] // used by tests/faults
    /// A new pool straight to the test's database, bypassing any proxy the app goes through.
    pub async fn direct_db(&self) -> PgPool {
        PgPool::connect(&self.db_url())
            .await
            .expect("direct connection to the test database")
    }

    /// Starts one more worker on the same queue (workers scale out).
    pub fn spawn_extra_worker(&self) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        Self::start_worker(&self.args, &self.state, self.worker_stop.clone())
    }

    /// Worker dependencies, for calling the worker's functions directly.
    pub fn worker_deps(&self) -> shopbridge::worker::Deps {
        shopbridge::app::worker_deps(self.db.clone(), &self.args)
    }

    /// Waits until the event with this shop event id (of any connection) has a final status.
    pub async fn wait_for_event(&self, source_event_id: &str) -> (String, Option<String>) {
        self.wait_for_event_of(None, source_event_id).await
    }

    /// Waits until the event with this shop event id has a final status; returns it.
    pub async fn wait_for_event_of(
        &self,
        connection: Option<Uuid>,
        source_event_id: &str,
    ) -> (String, Option<String>) {
        let mut found = None;
        for _ in 0..400 {
            let row: Option<(String, Option<String>)> = sqlx::query_as(
                "select status, reason from events where source_event_id = $1 and status <> 'processing' \
                 and ($2::uuid is null or connection_id = $2)",
            )
            .bind(source_event_id)
            .bind(connection)
                    .fetch_optional(&self.db)
                    .await
                    .unwrap();
            if let Some(r) = row {
                found = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        found.unwrap_or_else(|| panic!("event {source_event_id} was never processed"))
    }

    /// Checks the ledger's invariants: every voucher balances, keys are unique, numbers gapless,
    /// every voucher has lines and every credit note its invoice. The queries are the ones
    /// `shopbridge bench` checks its runs with.
    pub async fn assert_ledger_invariants(&self) {
        let check = shopbridge::bench::ledger::LedgerCheck::run(&self.db)
            .await
            .unwrap();
        assert_eq!(check.unbalanced, 0, "every voucher balances: {check}");
        assert_eq!(check.duplicate_keys, 0, "no idempotency key twice: {check}");
        assert_eq!(
            check.numbering_gaps, 0,
            "numbers of each series and year are 1..=n without gaps: {check}"
        );
        assert_eq!(check.without_lines, 0, "every voucher has lines: {check}");
        assert_eq!(
            check.unlinked_credit_notes, 0,
            "every credit note references the invoice it reverses: {check}"
        );
    }

    /// Fixes a 22 % poison's cause: VAT code 99 at 22 % (a rate no code has at first) and a rule
    /// placing it on 3000. Then waits until the worker's cached books have expired, as
    /// operators are told to (docs/operations.md).
    pub async fn add_vat_22(&self) {
        sqlx::query(
            "insert into vat_codes (company_id, code, rate_bp, valid_from, output_account, default_for_rate) \
             select id, 99, 2200, '2000-01-01', 2700, true from companies where is_default",
        )
        .execute(&self.db)
        .await
        .unwrap();
        let rule = shopbridge::ops::books::RuleIn {
            vat_code: Some(99),
            account: 3000,
            ..shopbridge::ops::books::RuleIn::default()
        };
        shopbridge::ops::books::save_rule(&self.db, None, &rule)
            .await
            .expect("rule saved");
        tokio::time::sleep(shopbridge::worker::contexts::CONTEXT_TTL + Duration::from_millis(200))
            .await;
    }

    /// Adds a connection through the same code the CLI uses.
    pub async fn add_connection(&self, channel: Channel) -> Added {
        self.add_connection_from(channel, None).await
    }

    /// Adds a connection that processes orders registered from `from` (default: today).
    pub async fn add_connection_from(
        &self,
        channel: Channel,
        from: Option<chrono::NaiveDate>,
    ) -> Added {
        let input = AddConnection {
            name: format!("{channel} test shop"),
            channel,
            process_orders_from: from,
            prepaid_account: None,
            department: None,
            location: None,
        };
        connections::add(&self.db, &self.vault(), input)
            .await
            .expect("connection added")
    }

    pub fn vault(&self) -> connections::Vault {
        connections::Vault::new(Some(shopbridge::crypto::SecretBox::new(
            &shopbridge::config::MasterKey([42; 32]),
        )))
    }

    pub fn webhook_url(&self, id: Uuid) -> String {
        connections::webhook_url(&self.url, id)
    }

    /// Posts `body` signed with `secret` as `channel` would.
    pub async fn post_signed(
        &self,
        id: Uuid,
        channel: Channel,
        secret: &Secret,
        event_id: &str,
        topic: &str,
        body: &[u8],
    ) -> reqwest::Response {
        let headers =
            shopbridge::signature::sign(channel, secret, event_id, topic, Utc::now(), body);
        self.client
            .post(self.webhook_url(id))
            .headers(headers)
            .body(body.to_vec())
            .send()
            .await
            .expect("request sent")
    }

    /// The head of a correctly signed HTTP/1.1 POST of `sample` to `conn`, for tests that send
    /// the body over a raw socket at their own pace.
    #[allow(dead_code)] // used by tests/api, not by tests/faults
    pub fn signed_head(&self, conn: &Added, sample: &shopbridge::samples::Sample) -> String {
        let channel: Channel = conn.connection.channel.parse().expect("a stored channel");
        let headers = shopbridge::signature::sign(
            channel,
            &conn.secret,
            &sample.event_id,
            &sample.topic,
            Utc::now(),
            &sample.body,
        );
        let mut head = format!(
            "POST /webhooks/{} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n",
            conn.connection.id,
            sample.body.len()
        );
        for (name, value) in &headers {
            head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
        }
        head.push_str("\r\n");
        head
    }

    /// Posts a native event (a fixture's bytes), signed with its own id.
    pub async fn post_native(&self, conn: &Added, body: &[u8]) -> reqwest::Response {
        let v: serde_json::Value = serde_json::from_slice(body).expect("fixture is JSON");
        let id = v["id"].as_str().expect("event id").to_owned();
        let topic = v["type"].as_str().expect("type").to_owned();
        self.post_signed(
            conn.connection.id,
            Channel::Nettbutikk,
            &conn.secret,
            &id,
            &topic,
            body,
        )
        .await
    }

    /// Takes every message now on `queue` (acking them).
    pub async fn drain_queue(&self, queue: &str) -> Vec<Message> {
        let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
            .await
            .expect("amqp");
        let ch = conn.create_channel().await.unwrap();
        let mut out = Vec::new();
        while let Some(msg) = ch
            .basic_get(queue.into(), BasicGetOptions::default())
            .await
            .expect("basic_get")
        {
            msg.delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .unwrap();
            out.push(Message {
                body: msg.delivery.data.clone(),
                properties: msg.delivery.properties.clone(),
            });
        }
        conn.close(200, "done".into()).await.ok();
        out
    }

    /// Messages ready on `queue` now, by a passive declare; 0 when the queue does not exist
    /// (test queues expire when unused).
    #[allow(dead_code)] // used by the fault tests, which share these helpers
    pub async fn queue_depth(&self, queue: &str) -> u32 {
        let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
            .await
            .expect("amqp");
        let ch = conn.create_channel().await.unwrap();
        let q = ch
            .queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await;
        conn.close(200, "done".into()).await.ok();
        q.map_or(0, |q| q.message_count())
    }

    pub async fn queued_events(&self) -> Vec<Message> {
        self.drain_queue(&self.names.events_queue).await
    }

    /// Stops the server, drops the database and deletes the queues.
    pub async fn cleanup(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server).await;
        self.state.publisher.close(); // as `serve` does once its requests are answered
        if let Some(worker) = self.worker {
            let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
        }
        self.db.close().await;
        if let Ok(conn) = Connection::connect(&amqp_url(), ConnectionProperties::default()).await {
            if let Ok(ch) = conn.create_channel().await {
                let mut queues = vec![
                    self.names.events_queue.clone(),
                    self.names.dead_queue.clone(),
                ];
                queues.extend(RETRY_TIERS.iter().map(|d| self.names.retry_queue(*d)));
                for q in queues {
                    ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                        .await
                        .ok();
                }
            }
            conn.close(200, "done".into()).await.ok();
        }
        // The database goes with `self.database`, dropped here.
    }
}

/// Drops a test database when it goes out of scope, whether the test passed or panicked, so a
/// failed run leaves no `shopbridge_test_*` databases behind. (Queues need no guard: a test's
/// queues expire by themselves once unused.)
pub struct DatabaseGuard {
    name: String,
}

impl DatabaseGuard {
    /// Guards the database `name` (which may not exist yet).
    pub fn new(name: &str) -> DatabaseGuard {
        DatabaseGuard {
            name: name.to_owned(),
        }
    }
}

impl Drop for DatabaseGuard {
    fn drop(&mut self) {
        // `drop` cannot await, and it may run while the test's runtime unwinds a panic: the
        // statement runs on a thread of its own with its own small runtime, and `drop` waits
        // for it, so the database is gone when the test ends. `with (force)` ends the
        // connections a panicking test left open.
        let name = std::mem::take(&mut self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for dropping the test database");
            runtime.block_on(async {
                let admin = PgPool::connect(&format!("{}/postgres", pg_server())).await?;
                sqlx::query(&format!("drop database if exists \"{name}\" with (force)"))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop the test database: {e}");
        }
    }
}

/// Waits for `cond` with a bounded number of polls, panicking with `what` when it never holds.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// A problem+json body.
pub async fn problem(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        ct.as_deref(),
        Some("application/problem+json"),
        "status {status} answered without problem+json"
    );
    let body: serde_json::Value = resp.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status, "problem status matches HTTP status");
    (status, body)
}
